"""torch.finfo and torch.iinfo: the numeric limits of gcomp's dtypes (from numpy / ml_dtypes)."""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np

from ..core.dispatch import user_error
from ..ir import types as T
from ..ir.errors import GcompError
from ..lowering import to_jax_dtype


def _dtype(dtype):
    if isinstance(dtype, T.DType):
        return dtype
    if isinstance(dtype, str):
        try:
            return T.dtype_from_name(dtype)
        except GcompError:
            pass
    raise user_error(GcompError, f"expected a gcomp dtype (gcomp.float32, ...), got {dtype!r}")


class finfo:  # noqa: N801 - torch's name
    """Limits of a floating-point dtype: eps, max, min, tiny (= smallest_normal), resolution,
    bits, dtype. ``finfo()`` is float32's (the default dtype)."""

    def __init__(self, type=None):  # noqa: A002 - torch's argument name
        dtype = T.DEFAULT_FLOAT if type is None else _dtype(type)
        if not dtype.is_floating_point:
            raise user_error(GcompError, f"finfo: {dtype.name} is not a floating point dtype; "
                             "use gcomp.iinfo for integer dtypes")
        info = ml_dtypes.finfo(to_jax_dtype(dtype))
        self.dtype = dtype
        self.bits = dtype.bits
        self.eps = float(info.eps)
        self.max = float(info.max)
        self.min = float(info.min)
        self.tiny = self.smallest_normal = float(info.tiny)
        self.resolution = 10.0 ** -math.floor(-math.log10(self.eps))  # torch's: 10^-digits

    def __repr__(self):
        return (f"finfo(resolution={self.resolution:g}, min={self.min:g}, max={self.max:g}, "
                f"eps={self.eps:g}, smallest_normal={self.smallest_normal:g}, "
                f"tiny={self.tiny:g}, dtype={self.dtype.name})")

    def __eq__(self, other):
        return isinstance(other, finfo) and other.dtype is self.dtype

    def __hash__(self):
        return hash(("finfo", self.dtype.name))


class iinfo:  # noqa: N801 - torch's name
    """Limits of an integer dtype: max, min, bits, dtype."""

    def __init__(self, type):  # noqa: A002 - torch's argument name
        dtype = _dtype(type)
        if not dtype.is_integer:
            raise user_error(GcompError, f"iinfo: {dtype.name} is not an integer dtype (as in "
                             "torch); use gcomp.finfo for floating point dtypes")
        info = np.iinfo(to_jax_dtype(dtype))
        self.dtype, self.bits = dtype, dtype.bits
        self.min, self.max = int(info.min), int(info.max)

    def __repr__(self):
        return f"iinfo(min={self.min}, max={self.max}, dtype={self.dtype.name})"

    def __eq__(self, other):
        return isinstance(other, iinfo) and other.dtype is self.dtype

    def __hash__(self):
        return hash(("iinfo", self.dtype.name))
