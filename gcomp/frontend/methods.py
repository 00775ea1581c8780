"""Tensor methods and operators, attached from the functional ops (one definition each)."""

from __future__ import annotations

from ..core.dispatch import user_error
from ..ir import types as T
from ..ir.errors import GcompError
from . import creation, ops, shape_ops
from .inplace import assign, copy_, fill_, zero_
from .tensor import Tensor

_FUNCTIONS = {
    # math
    "add": ops.add, "sub": ops.sub, "subtract": ops.sub, "mul": ops.mul, "multiply": ops.mul,
    "div": ops.div, "divide": ops.div, "true_divide": ops.div, "floor_divide": ops.floor_divide,
    "remainder": ops.remainder, "fmod": ops.fmod, "pow": ops.pow, "atan2": ops.atan2,
    "maximum": ops.maximum, "minimum": ops.minimum, "neg": ops.neg, "negative": ops.neg,
    "abs": ops.abs, "sign": ops.sign, "exp": ops.exp, "expm1": ops.expm1, "exp2": ops.exp2,
    "log": ops.log, "log2": ops.log2, "log10": ops.log10, "log1p": ops.log1p, "sqrt": ops.sqrt,
    "rsqrt": ops.rsqrt, "sin": ops.sin, "cos": ops.cos, "tan": ops.tan, "tanh": ops.tanh,
    "sigmoid": ops.sigmoid, "erf": ops.erf, "erfinv": ops.erfinv, "floor": ops.floor,
    "ceil": ops.ceil, "round": ops.round, "trunc": ops.trunc, "reciprocal": ops.reciprocal,
    "square": ops.square, "relu": ops.relu, "clamp": ops.clamp, "clip": ops.clamp,
    "eq": ops.eq, "ne": ops.ne, "lt": ops.lt, "le": ops.le, "gt": ops.gt, "ge": ops.ge,
    "greater": ops.gt, "less": ops.lt, "not_equal": ops.ne, "equal": ops.equal,
    "allclose": ops.allclose, "isclose": ops.isclose,
    "logical_and": ops.logical_and, "logical_or": ops.logical_or,
    "logical_xor": ops.logical_xor, "logical_not": ops.logical_not,
    "bitwise_and": ops.bitwise_and, "bitwise_or": ops.bitwise_or,
    "bitwise_xor": ops.bitwise_xor, "bitwise_not": ops.bitwise_not,
    "isnan": ops.isnan, "isinf": ops.isinf, "isfinite": ops.isfinite, "lerp": ops.lerp,
    "where": lambda self, cond, other: ops.where(cond, self, other),
    # reductions
    "sum": ops.sum, "mean": ops.mean, "prod": ops.prod, "max": ops.max, "min": ops.min,
    "amax": ops.amax, "amin": ops.amin, "argmax": ops.argmax, "argmin": ops.argmin,
    "var": ops.var, "std": ops.std, "all": ops.all, "any": ops.any, "logsumexp": ops.logsumexp,
    "cumsum": ops.cumsum, "softmax": ops.softmax, "log_softmax": ops.log_softmax,
    "norm": ops.norm,
    # linear algebra
    "matmul": ops.matmul, "mm": ops.mm, "bmm": ops.bmm, "dot": ops.dot, "mv": ops.mv,
    "outer": ops.outer,
    # shapes
    "reshape": shape_ops.reshape, "view": shape_ops.view, "flatten": shape_ops.flatten,
    "unflatten": shape_ops.unflatten, "permute": shape_ops.permute,
    "transpose": shape_ops.transpose, "swapaxes": shape_ops.transpose, "t": shape_ops.t,
    "squeeze": shape_ops.squeeze, "unsqueeze": shape_ops.unsqueeze, "expand": shape_ops.expand,
    "expand_as": shape_ops.expand_as, "broadcast_to": shape_ops.broadcast_to,
    "repeat": shape_ops.repeat, "split": shape_ops.split, "chunk": shape_ops.chunk,
    "unbind": shape_ops.unbind, "narrow": shape_ops.narrow, "flip": shape_ops.flip,
    "roll": shape_ops.roll, "index_select": shape_ops.index_select, "gather": shape_ops.gather,
    "take": shape_ops.take, "nonzero": shape_ops.nonzero, "tril": shape_ops.tril,
    "triu": shape_ops.triu, "masked_select": shape_ops.masked_select,
    "take_along_dim": shape_ops.take_along_dim,
}

for _name, _fn in _FUNCTIONS.items():
    setattr(Tensor, _name, _fn)


def _view_as(self, other):
    return shape_ops.reshape(self, other.shape)


def _masked_fill(self, mask, value):
    return ops.where(mask, value, self)


def _type_as(self, other):
    return ops.cast(self, other.dtype)


def _to(self, *args, **kwargs):
    """to(dtype), to(device), to(device, dtype), to(other_tensor), then optionally non_blocking
    and copy (torch's order). Returns self when nothing changes and copy is false; a move is
    differentiable (Note [Devices and committed arrays] in frontend/device.py)."""
    from .device import device as Device

    dtype, dev = kwargs.get("dtype"), kwargs.get("device")
    flags = []
    for a in args:
        if isinstance(a, bool):
            flags.append(a)  # non_blocking (ignored: jax transfers are asynchronous), copy
        elif isinstance(a, T.DType):
            dtype = a
        elif isinstance(a, Tensor):
            dtype, dev = a.dtype, a.device
        elif isinstance(a, (str, int, Device)):
            dev = a
        elif a is not None:
            raise user_error(GcompError, f"to(): unexpected argument {a!r}; expected a device "
                             "('cpu', 'cuda:0', gcomp.device(...)), a dtype or a tensor")
    copy = kwargs.get("copy", flags[1] if len(flags) > 1 else False)
    out = self
    if dev is not None:
        from .device import to_device

        out = to_device(out, Device(dev))
    if dtype is not None and dtype != out.dtype:
        out = ops.cast(out, dtype)
    if copy and out is self:
        out = _clone(self)
    return out


def _clone(self):
    out = ops.add(self, ops.full(self._type.shape, 0, self.dtype)) if self.dtype != T.bool_ \
        else ops.logical_or(self, False)
    return out


def _contiguous(self, memory_format=None):
    return shape_ops.contiguous(self)


def _new(fill):
    def f(self, *size, dtype=None, device=None, requires_grad=False):
        return _new_full(self, shape_ops._sizes(size), fill, dtype=dtype, device=device,
                         requires_grad=requires_grad)

    return f


def _new_full(self, size, fill_value, *, dtype=None, device=None, requires_grad=False):
    """On ``device``, else on self's device (torch's new_* methods)."""
    out = creation.full(tuple(size), fill_value, dtype=dtype or self.dtype)
    return creation._finish(creation._like(out, self, device), requires_grad)


def _new_tensor(self, data, dtype=None, device=None, requires_grad=False):
    out = creation.tensor(data, dtype=dtype or self.dtype)
    return creation._finish(creation._like(out, self, device), requires_grad)


def _cuda(device):
    """tensor.cuda(), .cuda(1), .cuda("cuda:1"), .cuda(gcomp.device("cuda", 1))."""
    if device is None:
        return "cuda"
    return device if not isinstance(device, int) else f"cuda:{device}"


def _dtype_method(dtype):
    def f(self):
        return ops.cast(self, dtype)

    return f


def _uniform_(self, a=0.0, b=1.0, *, generator=None):
    from .autograd import no_grad

    with no_grad():
        u = creation.rand(self.shape, generator=generator, dtype=T.float32)
        return assign(self, ops.add(ops.mul(u, b - a), a), check=not self.requires_grad)


def _normal_(self, mean=0.0, std=1.0, *, generator=None):
    from .autograd import no_grad

    with no_grad():
        z = creation.randn(self.shape, generator=generator, dtype=T.float32)
        return assign(self, ops.add(ops.mul(z, std), mean), check=not self.requires_grad)


def _update(self, new):
    """Write an in-place op's result into self. As in torch, a result that self's dtype can't
    hold (a float into an integer tensor, a number into a bool tensor) is an error, not a cast."""
    from .inplace import check_result_type

    check_result_type(new, self, "", " of an in-place op; use the out-of-place op (x = x + y) "
                      "or convert the tensor first (x = x.float())")
    return assign(self, new)


def _inplace(fn, name):
    def method(self, *args, **kwargs):
        return _update(self, fn(self, *args, **kwargs))

    method.__name__ = name
    return method


_INPLACE = ["add", "sub", "mul", "div", "pow", "clamp", "clip", "neg", "exp", "log", "sqrt",
            "abs", "relu", "sigmoid", "tanh", "floor", "ceil", "round", "fmod", "remainder",
            "lerp", "sin", "cos", "reciprocal", "square", "masked_fill", "logical_not",
            "maximum", "minimum", "floor_divide"]


def _reshaping_inplace(name):
    def method(self, *args, **kwargs):
        raise user_error(GcompError, f"{name}_() changes the shape of a tensor in place, which "
                         f"gcomp does not support; use x = x.{name}(...) instead")

    method.__name__ = name + "_"
    return method

Tensor.view_as = _view_as
Tensor.reshape_as = _view_as
Tensor.masked_fill = _masked_fill
Tensor.type_as = _type_as
Tensor.to = _to
Tensor.clone = _clone
Tensor.contiguous = _contiguous
Tensor.is_contiguous = lambda self, memory_format=None: shape_ops.is_contiguous(self)
Tensor.stride = lambda self, dim=None: (shape_ops.strides_of(self) if dim is None
                                       else shape_ops.strides_of(self)[dim])
Tensor.new_zeros = _new(0)
Tensor.new_ones = _new(1)
Tensor.new_empty = _new(0)
Tensor.new_full = _new_full
Tensor.new_tensor = _new_tensor
Tensor.float = _dtype_method(T.float32)
Tensor.double = _dtype_method(T.float64)
Tensor.half = _dtype_method(T.float16)
Tensor.bfloat16 = _dtype_method(T.bfloat16)
Tensor.long = _dtype_method(T.int64)
Tensor.int = _dtype_method(T.int32)
Tensor.short = _dtype_method(T.int16)
Tensor.char = _dtype_method(T.int8)
Tensor.byte = _dtype_method(T.uint8)
Tensor.bool = _dtype_method(T.bool_)


def _type(self, dtype=None, non_blocking=False, **kwargs):
    """``t.type()`` is PyTorch's legacy name ('torch.FloatTensor'); ``t.type(spec)`` casts to a
    dtype, a legacy class or its name (Note [Legacy constructors] in frontend/legacy.py)."""
    from . import legacy

    if dtype is None:
        return legacy.type_name(self)
    dt = legacy.dtype_of_type(dtype)
    return self if dt == self.dtype else ops.cast(self, dt)


Tensor.type = _type
Tensor.cpu = lambda self, memory_format=None: _to(self, "cpu")
Tensor.cuda = lambda self, device=None, non_blocking=False: _to(self, _cuda(device))

Tensor.zero_ = zero_
Tensor.fill_ = fill_
Tensor.copy_ = copy_
Tensor.uniform_ = _uniform_
Tensor.normal_ = _normal_
for _name in _INPLACE:
    setattr(Tensor, _name + "_", _inplace(getattr(Tensor, _name), _name + "_"))
for _name in ("t", "squeeze", "unsqueeze", "transpose"):
    setattr(Tensor, _name + "_", _reshaping_inplace(_name))

# operators
Tensor.__add__ = lambda a, b: ops.add(a, b)
Tensor.__radd__ = lambda a, b: ops.add(b, a)
Tensor.__sub__ = lambda a, b: ops.sub(a, b)
Tensor.__rsub__ = lambda a, b: ops.sub(b, a)
Tensor.__mul__ = lambda a, b: ops.mul(a, b)
Tensor.__rmul__ = lambda a, b: ops.mul(b, a)
Tensor.__truediv__ = lambda a, b: ops.div(a, b)
Tensor.__rtruediv__ = lambda a, b: ops.div(b, a)
Tensor.__floordiv__ = lambda a, b: ops.floor_divide(a, b)
Tensor.__rfloordiv__ = lambda a, b: ops.floor_divide(b, a)
Tensor.__mod__ = lambda a, b: ops.remainder(a, b)
Tensor.__rmod__ = lambda a, b: ops.remainder(b, a)
Tensor.__pow__ = lambda a, b: ops.pow(a, b)
Tensor.__rpow__ = lambda a, b: ops.pow(b, a)
Tensor.__matmul__ = lambda a, b: ops.matmul(a, b)
Tensor.__rmatmul__ = lambda a, b: ops.matmul(b, a)
Tensor.__neg__ = lambda a: ops.neg(a)
Tensor.__pos__ = lambda a: a
Tensor.__abs__ = lambda a: ops.abs(a)
Tensor.__invert__ = lambda a: ops.bitwise_not(a)
Tensor.__and__ = lambda a, b: ops.bitwise_and(a, b)
Tensor.__rand__ = lambda a, b: ops.bitwise_and(b, a)
Tensor.__or__ = lambda a, b: ops.bitwise_or(a, b)
Tensor.__ror__ = lambda a, b: ops.bitwise_or(b, a)
Tensor.__xor__ = lambda a, b: ops.bitwise_xor(a, b)
Tensor.__rxor__ = lambda a, b: ops.bitwise_xor(b, a)
Tensor.__eq__ = lambda a, b: ops.eq(a, b) if _operand(b) else NotImplemented
Tensor.__ne__ = lambda a, b: ops.ne(a, b) if _operand(b) else NotImplemented
Tensor.__lt__ = lambda a, b: ops.lt(a, b)
Tensor.__le__ = lambda a, b: ops.le(a, b)
Tensor.__gt__ = lambda a, b: ops.gt(a, b)
Tensor.__ge__ = lambda a, b: ops.ge(a, b)
Tensor.__getitem__ = lambda self, key: shape_ops.getitem(self, key)
Tensor.__setitem__ = lambda self, key, value: shape_ops.setitem(self, key, value)
Tensor.__iadd__ = lambda a, b: _update(a, ops.add(a, b))
Tensor.__isub__ = lambda a, b: _update(a, ops.sub(a, b))
Tensor.__imul__ = lambda a, b: _update(a, ops.mul(a, b))
Tensor.__itruediv__ = lambda a, b: _update(a, ops.div(a, b))
Tensor.__ifloordiv__ = lambda a, b: _update(a, ops.floor_divide(a, b))
Tensor.__imod__ = lambda a, b: _update(a, ops.remainder(a, b))
Tensor.__ipow__ = lambda a, b: _update(a, ops.pow(a, b))
Tensor.__iand__ = lambda a, b: _update(a, ops.bitwise_and(a, b))
Tensor.__ior__ = lambda a, b: _update(a, ops.bitwise_or(a, b))
Tensor.__ixor__ = lambda a, b: _update(a, ops.bitwise_xor(a, b))


def _operand(b) -> bool:
    import numpy as np

    return isinstance(b, (Tensor, bool, int, float, np.generic, np.ndarray))


# -- elementwise math API (inverse trig, special functions, NaN-aware helpers) ----------------
def _float_power_(self, exponent):
    if self.dtype != T.float64:
        raise user_error(GcompError, f"the base given to float_power_ has dtype {self.dtype.name} "
                         "but the operation's result requires dtype float64 (as in torch); use "
                         "x = x.float_power(e) or x.double() first")
    return _update(self, ops.float_power(self, exponent))


_MATH_METHODS = {
    "asin": ops.asin, "arcsin": ops.asin, "acos": ops.acos, "arccos": ops.acos,
    "atan": ops.atan, "arctan": ops.atan, "sinh": ops.sinh, "cosh": ops.cosh,
    "asinh": ops.asinh, "arcsinh": ops.asinh, "acosh": ops.acosh, "arccosh": ops.acosh,
    "atanh": ops.atanh, "arctanh": ops.atanh, "arctan2": ops.atan2, "absolute": ops.abs,
    "clamp_min": ops.clamp_min, "clamp_max": ops.clamp_max, "erfc": ops.erfc, "sgn": ops.sgn,
    "signbit": ops.signbit, "frac": ops.frac, "deg2rad": ops.deg2rad, "rad2deg": ops.rad2deg,
    "copysign": ops.copysign, "addcmul": ops.addcmul, "addcdiv": ops.addcdiv,
    "xlogy": ops.xlogy, "logaddexp": ops.logaddexp, "logaddexp2": ops.logaddexp2,
    "hypot": ops.hypot, "fmax": ops.fmax, "fmin": ops.fmin, "heaviside": ops.heaviside,
    "logit": ops.logit, "sinc": ops.sinc, "float_power": ops.float_power,
    "nan_to_num": ops.nan_to_num, "lgamma": ops.lgamma, "digamma": ops.digamma,
    "polygamma": lambda self, n: ops.polygamma(n, self), "isneginf": ops.isneginf,
    "isposinf": ops.isposinf, "isreal": ops.isreal, "is_complex": ops.is_complex,
    "is_nonzero": ops.is_nonzero, "nansum": ops.nansum, "nanmean": ops.nanmean,
    "count_nonzero": ops.count_nonzero,
}
for _name, _fn in _MATH_METHODS.items():
    setattr(Tensor, _name, _fn)
for _name in ("asin", "arcsin", "acos", "arccos", "atan", "arctan", "sinh", "cosh", "asinh",
              "arcsinh", "acosh", "arccosh", "atanh", "arctanh", "atan2", "arctan2", "absolute",
              "negative", "ne", "not_equal", "clamp_min", "clamp_max", "erfc", "sgn", "frac",
              "deg2rad", "rad2deg", "copysign", "addcmul", "addcdiv", "xlogy", "hypot",
              "heaviside", "logit", "sinc", "nan_to_num", "lgamma", "digamma", "polygamma"):
    setattr(Tensor, _name + "_", _inplace(getattr(Tensor, _name), _name + "_"))
Tensor.float_power_ = _float_power_


# -- scatter / index / shape helpers and linear algebra (scatter-index-linalg work) ----------
_SCATTER_INDEX_METHODS = {
    "scatter": shape_ops.scatter, "scatter_add": shape_ops.scatter_add,
    "scatter_reduce": shape_ops.scatter_reduce, "index_add": shape_ops.index_add,
    "index_copy": shape_ops.index_copy, "index_fill": shape_ops.index_fill,
    "index_put": shape_ops.index_put, "masked_fill": shape_ops.masked_fill,
    "masked_scatter": shape_ops.masked_scatter, "put": shape_ops.put,
}
for _name, _fn in _SCATTER_INDEX_METHODS.items():
    setattr(Tensor, _name, _fn)
    setattr(Tensor, _name + "_", _inplace(_fn, _name + "_"))
for _name in ("diagonal", "diag", "diag_embed", "diagflat", "trace", "tile", "repeat_interleave",
              "movedim", "moveaxis", "swapdims", "ravel", "select", "select_scatter",
              "slice_scatter", "rot90", "fliplr", "flipud", "unfold", "argwhere", "hsplit",
              "vsplit", "dsplit", "tensor_split"):
    setattr(Tensor, _name, getattr(shape_ops, _name))
Tensor.fill_diagonal_ = shape_ops.fill_diagonal_
Tensor.swapdims_ = _reshaping_inplace("swapdims")


def _linalg_method(module, name):
    """A method over gcomp.linalg (imported when first called: linalg sits above frontend)."""
    def method(self, *args, **kwargs):
        import importlib

        return getattr(importlib.import_module(f"gcomp.linalg{module}"), name)(self, *args,
                                                                                **kwargs)

    method.__name__ = name
    return method


for _name in ("det", "inverse", "logdet", "slogdet", "cholesky", "pinverse", "matrix_power",
              "svd", "qr"):
    setattr(Tensor, _name, _linalg_method(".legacy", _name))
for _name in ("addmm", "addmv", "addbmm", "baddbmm", "addr", "cross", "diff", "ger", "inner",
              "kron", "tensordot", "vdot"):
    setattr(Tensor, _name, _linalg_method(".products", _name))
for _name in ("addmm", "addmv", "addbmm", "baddbmm", "addr"):
    setattr(Tensor, _name + "_", _inplace(getattr(Tensor, _name), _name + "_"))
# -- end scatter-index-linalg block --


# -- sorting, selection and cumulative ops (frontend/sorting.py) ------------------------------
def _sorting_methods():
    from . import sorting

    for name in ("sort", "argsort", "msort", "topk", "kthvalue", "median", "nanmedian", "mode",
                 "quantile", "nanquantile", "cumprod", "cummax", "cummin", "logcumsumexp",
                 "bincount", "histc", "unique", "unique_consecutive"):
        setattr(Tensor, name, getattr(sorting, name))
    Tensor.cumprod_ = _inplace(Tensor.cumprod, "cumprod_")


_sorting_methods()
# -- end sorting block --
