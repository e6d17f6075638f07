"""The :class:`Kernel` value type and the limits every kernel, read or generated, keeps to."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from convcli.errors import KernelError

# Largest kernel side convcli accepts, from a file or a family (documented in the README).
MAX_KERNEL_SIDE = 255
# Most input or output channels a mixing kernel may have.
MAX_CHANNELS = 64
# Most matrices in a set (`matrices` or `members`): compass sets have 8; each one is a full
# filtering pass, so thousands of them turn a small file into minutes of work.
MAX_SET_MATRICES = 256
# Most taps a kernel may hold in all (every matrix, or out x in x kh x kw weights): checked from
# a family's parameters before its taps are allocated. 64 x 64 channels of 31 x 31 fit.
MAX_KERNEL_TAPS = 4 * 1024 * 1024
# The filters compute in float32: a tap, or a response on 0..255 pixels, beyond this is infinite.
FLOAT32_MAX = float(np.finfo(np.float32).max)

# Bias units of a mixing kernel: "unit" is PyTorch's scale (ToTensor maps 0..255 to 0..1), so a
# bias copied from ``conv.bias`` is multiplied by 255 before it is added to 0..255 pixels.
BIAS_UNITS: dict[str, float] = {"unit": 255.0, "pixel": 1.0}
DEFAULT_BIAS_UNITS = "unit"


@dataclass(frozen=True)
class Kernel:
    """A named kernel: one matrix, several whose responses are combined, or a channel mixer.

    ``combine`` is ``"single"`` for one matrix, else ``"magnitude"`` (sqrt of the sum of
    squares, as for sobel), ``"max"`` (per-pixel maximum, as for compass sets) or ``"sum"``.

    A channel-mixing kernel has ``weights`` of shape ``(out, in, kh, kw)`` and ``bias``
    ``(out,)`` in ``bias_units`` (``"unit"``: PyTorch's 0..1 scale; ``"pixel"``: 0..255), and
    no ``matrices``. ``offset`` is added to the final response (0..255 scale). ``anchor`` is the
    ``(row, col)`` of the tap that sits over the output pixel with ``padding="same"``; None
    means the centre, ``(k - 1) // 2`` along each axis.

    >>> kernel = Kernel("edge", "a horizontal difference", (np.array([[-1.0, 0.0, 1.0]]),))
    >>> kernel.kind, kernel.shape, kernel.anchor_position
    ('single', (1, 3), (0, 1))
    """

    name: str
    description: str
    matrices: tuple[NDArray[np.float64], ...]
    combine: str = "single"
    source: str = "built-in"
    family: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    reference: str = ""
    offset: float = 0.0
    anchor: tuple[int, int] | None = None
    weights: NDArray[np.float64] | None = None
    bias: NDArray[np.float64] | None = None
    bias_units: str = DEFAULT_BIAS_UNITS
    normalization: str = "none"

    @property
    def matrix(self) -> NDArray[np.float64]:
        """The only matrix of a single kernel."""
        if self.weights is not None:
            raise KernelError(f"kernel {self.name!r} mixes channels; it has weights, not one matrix")
        if len(self.matrices) != 1:
            raise KernelError(f"kernel {self.name!r} is a set of {len(self.matrices)} matrices")
        return self.matrices[0]

    @property
    def shape(self) -> tuple[int, int]:
        """Shape of the (largest) matrix; for a mixing kernel, of each of its 2-D kernels."""
        if self.weights is not None:
            return (int(self.weights.shape[2]), int(self.weights.shape[3]))
        return max((m.shape for m in self.matrices), key=lambda s: s[0] * s[1])

    @property
    def kind(self) -> str:
        """``single``, ``set``, ``mixing`` or ``family``: how the kernel is defined."""
        if self.family:
            return "family"
        if self.weights is not None:
            return "mixing"
        return "set" if len(self.matrices) > 1 else "single"

    @property
    def is_mixing(self) -> bool:
        """True for a kernel that mixes channels (has ``weights``)."""
        return self.weights is not None

    @property
    def channels(self) -> tuple[int, int] | None:
        """``(in, out)`` channel counts of a mixing kernel, else None."""
        if self.weights is None:
            return None
        return (int(self.weights.shape[1]), int(self.weights.shape[0]))

    @property
    def bias_pixels(self) -> NDArray[np.float64] | None:
        """The bias on the 0..255 pixel scale the pipeline works in (``unit`` bias times 255)."""
        if self.bias is None:
            return None
        return self.bias * BIAS_UNITS[self.bias_units]

    @property
    def anchor_position(self) -> tuple[int, int]:
        """The anchor, or the default centre ``((kh - 1) // 2, (kw - 1) // 2)``."""
        if self.anchor is not None:
            return self.anchor
        kh, kw = self.shape
        return ((kh - 1) // 2, (kw - 1) // 2)

    @property
    def slug(self) -> str:
        """The name made safe for a file name: ``gaussian:sigma=2`` gives ``gaussian-sigma2``."""
        text = self.name.replace(":", "-").replace(",", "-").replace("=", "")
        return "".join(ch if ch.isalnum() or ch in "-_.+" else "_" for ch in text)
