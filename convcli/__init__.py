"""convcli: image convolution from the command line and from Python.

>>> import convcli
>>> convcli.convolve([[0, 0, 0], [0, 1, 0], [0, 0, 0]], [[0, 1], [0, 0]], border="zero").tolist()
[[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from convcli.core import convolve, map_to_uint8
    from convcli.kernels import Kernel, load_kernel
    from convcli.pipeline import apply_kernels

__all__ = ["Kernel", "__version__", "apply_kernels", "convolve", "load_kernel", "map_to_uint8"]

# Imported on first use so that `convcli --version` and `import convcli.errors` stay cheap.
_LAZY = {
    "convolve": "convcli.core",
    "map_to_uint8": "convcli.core",
    "Kernel": "convcli.kernels",
    "load_kernel": "convcli.kernels",
    "apply_kernels": "convcli.pipeline",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'convcli' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
