"""Kernels: the :class:`Kernel` value type, the built-in catalogue and kernel files (TOML).

A kernel is named as

* ``NAME`` — a built-in kernel (``sobel``) or one found in a directory of ``CONVCLI_KERNEL_PATH``;
* ``NAME:key=value,...`` — a parametric kernel (``gaussian:sigma=2,radius=6``);
* a path to a ``.toml`` file.

A kernel file holds ``name``, ``description`` and exactly one of

* ``matrix = [[...], ...]`` — one 2-D kernel;
* ``matrices = [[[...]], ...]`` with ``combine`` — a set whose responses are combined per pixel;
* ``members = ["sobel-x", "sobel-y"]`` with ``combine`` — a set made of other kernels by name;
* ``family = "gaussian"`` with an optional ``[params]`` table — a generated kernel;
* ``weights = [[[[...]]]]`` (``[out][in][kh][kw]``) with an optional ``bias`` — a kernel that
  mixes channels as PyTorch's ``conv2d`` does.

Optional keys: ``scale`` (multiply every tap), ``divisor`` (divide every tap),
``normalize = true`` (divide by the sum; refused for a zero-sum kernel), ``offset`` (added to
the response, 0..255 scale), ``anchor = [row, col]`` (the tap over the output pixel),
``bias_units`` (``"unit"``, the default, or ``"pixel"``), ``reference``.

The package, one job per module:

* :mod:`~convcli.kernels.kernel` — the :class:`Kernel` value type and the size limits;
* :mod:`~convcli.kernels.names` — ``NAME:key=value`` specs and the message for an unknown name;
* :mod:`~convcli.kernels.catalogue` — the built-in and user directories, loading by name or path;
* :mod:`~convcli.kernels.files` — reading a kernel file and building the kernel it describes;
* :mod:`~convcli.kernels.values` — checking the values in it: numbers, matrices, weights, anchor;
* :mod:`~convcli.kernels.export` — the separability test and writing a kernel back as a file;
* :mod:`~convcli.kernels.family` — :class:`Family` and :class:`Param`: generators with checked parameters;
* :mod:`~convcli.kernels.families` — the registry :data:`FAMILIES`;
* :mod:`~convcli.kernels.matrices` — the generators: pure functions from numbers to taps.

To add a family, write its generator in ``matrices.py``: a pure function of the family's
parameters that returns float64 taps, with a doctest. Then register it with one entry in
``FAMILIES`` in ``families.py``: ``Family(name, description, params, _single(generator))``,
each ``Param`` with its type, default and range, or ``_windowed(...)`` for a kernel drawn on
a Gaussian's window (it adds ``radius`` and ``size``). Every family also has a built-in file
``kernels/NAME.toml`` at the repository root with ``family = "NAME"`` (a test checks this),
which is what puts it in ``convcli kernels list``.

The package imports numpy, tomllib and the engines' rank test, nothing heavier.

>>> from convcli.kernels import load_kernel
>>> kernel = load_kernel("gaussian:sigma=2")
>>> kernel.shape, kernel.params["radius"], kernel.family
((13, 13), 6, 'gaussian')
"""

from __future__ import annotations

from convcli.kernels.catalogue import (
    KERNEL_PATH_ENV,
    KernelWarning,
    builtin_dir,
    builtin_names,
    catalogue,
    iter_kernels,
    load_kernel,
    user_dirs,
)
from convcli.kernels.export import export_toml, is_separable
from convcli.kernels.families import FAMILIES
from convcli.kernels.family import Built, Family, Param
from convcli.kernels.files import COMBINE_RULES, MAX_KERNEL_FILE_BYTES, kernel_from_dict, load_kernel_file
from convcli.kernels.kernel import BIAS_UNITS, DEFAULT_BIAS_UNITS, MAX_CHANNELS, MAX_KERNEL_SIDE, Kernel
from convcli.kernels.matrices import (
    COMPASS,
    box_matrix,
    dog_matrix,
    emboss_matrix,
    gaussian_matrix,
    log_matrix,
    motion_matrix,
    random_weights,
    sobel_pair,
    unsharp_matrix,
)
from convcli.kernels.names import parse_spec
from convcli.kernels.values import parse_matrix, parse_weights

__all__ = [
    "BIAS_UNITS",
    "COMBINE_RULES",
    "COMPASS",
    "DEFAULT_BIAS_UNITS",
    "FAMILIES",
    "KERNEL_PATH_ENV",
    "MAX_CHANNELS",
    "MAX_KERNEL_FILE_BYTES",
    "MAX_KERNEL_SIDE",
    "Built",
    "Family",
    "Kernel",
    "KernelWarning",
    "Param",
    "box_matrix",
    "builtin_dir",
    "builtin_names",
    "catalogue",
    "dog_matrix",
    "emboss_matrix",
    "export_toml",
    "gaussian_matrix",
    "is_separable",
    "iter_kernels",
    "kernel_from_dict",
    "load_kernel",
    "load_kernel_file",
    "log_matrix",
    "motion_matrix",
    "parse_matrix",
    "parse_spec",
    "parse_weights",
    "random_weights",
    "sobel_pair",
    "unsharp_matrix",
    "user_dirs",
]
