"""The user-facing Tensor: PyTorch's methods and operators over the dispatcher."""

from __future__ import annotations

import sys

import numpy as np

from ..core.dispatch import Mode, TraceInterpreter, user_error
from ..core.tensor import Storage, TensorBase
from ..ir.errors import GcompError
from ..ir.graph import Value
from ..ir.types import TensorType


class TracedValueError(GcompError):
    """A traced tensor was used where Python needs a concrete value."""


def _concrete_error(what: str) -> GcompError:
    return user_error(TracedValueError, (
        f"{what} needs a concrete value, but this tensor is being traced by gcomp.compile (its "
        "value is only known when the compiled program runs). Use gcomp.where(cond, a, b) for "
        "data-dependent choices of values, gcomp.cond(pred, true_fn, false_fn, *operands) for "
        "data-dependent branches, or move this code outside the compiled function."))


# torch.set_printoptions' settings (its defaults)
PRINT_OPTIONS = {"precision": 4, "threshold": 1000, "edgeitems": 3, "linewidth": 80,
                 "sci_mode": None}
_PROFILES = {"default": {"precision": 4, "threshold": 1000, "edgeitems": 3, "linewidth": 80},
             "short": {"precision": 2, "threshold": 1000, "edgeitems": 2, "linewidth": 80},
             "full": {"precision": 4, "threshold": sys.maxsize, "edgeitems": 3,
                      "linewidth": 80}}


def set_printoptions(precision=None, threshold=None, edgeitems=None, linewidth=None,
                     profile=None, sci_mode=None):
    """torch.set_printoptions: how tensors print (precision digits, summarizing past
    ``threshold`` elements with ``edgeitems`` each side, ``sci_mode`` True/False/None=auto)."""
    if profile is not None:
        if profile not in _PROFILES:
            raise GcompError(f"set_printoptions: unknown profile {profile!r}; use one of "
                             f"{sorted(_PROFILES)}")
        PRINT_OPTIONS.update(_PROFILES[profile])
    for k, v in (("precision", precision), ("threshold", threshold), ("edgeitems", edgeitems),
                 ("linewidth", linewidth)):
        if v is not None:
            PRINT_OPTIONS[k] = int(v)
    PRINT_OPTIONS["sci_mode"] = sci_mode


def _format_array(a: np.ndarray) -> str:
    """The body of a tensor's repr, laid out as torch does: floats with ``precision`` fixed
    digits unless every value is integral (``1.``), scientific when the magnitudes span more
    than 1e3 or exceed 1e8 (or as sci_mode says), booleans as wide as the widest value."""
    o = PRINT_OPTIONS
    if a.dtype.kind == "V":  # bfloat16 and other ml_dtypes
        a = a.astype(np.float64)
    kw = dict(separator=", ", prefix="tensor(", threshold=o["threshold"],
              edgeitems=o["edgeitems"], max_line_width=o["linewidth"])
    if a.dtype == np.bool_:
        width = 5 if not a.all() else 4
        return np.array2string(a, formatter={"bool": lambda b: str(bool(b)).rjust(width)}, **kw)
    if a.dtype.kind != "f" or a.size == 0:
        return np.array2string(a, **kw)
    finite = np.abs(a[np.isfinite(a)]).astype(np.float64)
    integral = finite.size == 0 or bool(np.all(finite == np.round(finite)))
    sci = o["sci_mode"]
    if sci is None:
        nz = finite[finite != 0]
        sci = bool(nz.size) and (nz.max() / nz.min() > 1000.0 or nz.max() > 1e8 or
                                 (not integral and nz.min() < 1e-4))
    p = o["precision"]
    return _fixed(a, sci, integral, p, kw).replace(", ..., ", ",  ..., ")  # torch's spacing


def _fixed(a, sci, integral, p, kw) -> str:
    if sci:
        return np.array2string(a, formatter={"float_kind": lambda v: f"{v:.{p}e}"}, **kw)
    if integral:
        return np.array2string(a, precision=p, **kw)
    return np.array2string(a, precision=p, floatmode="fixed", suppress_small=True, **kw)


class Tensor(TensorBase):
    """A multi-dimensional array with PyTorch's API; eager or symbolic (inside gcomp.compile)."""

    __hash__ = object.__hash__
    __array_priority__ = 1000  # make numpy defer to our reflected operators

    # -- properties ---------------------------------------------------------------------------
    @property
    def shape(self):
        return Size(self._type.shape)

    @property
    def dtype(self):
        return self._type.dtype

    @property
    def ndim(self) -> int:
        return len(self._type.shape)

    @property
    def device(self):
        from .device import device_of

        return device_of(self)

    @property
    def is_traced(self) -> bool:
        return isinstance(self._current(), Value)

    def _current(self):
        """The data as the current interpreter sees it (a captured tensor's traced value)."""
        self._fresh()
        interp = Mode.stack[-1]
        if isinstance(interp, TraceInterpreter):
            v = interp.overlay.get(self._storage)
            if v is not None:
                return v
        return self._storage.data

    def _fresh(self):
        """Recompute this view if its root changed since (Note [Views] in shape_ops.py)."""
        base = self._base
        if base is not None and base._storage.version != self._base_version:
            from ..core.dispatch import refresh_view

            refresh_view(self)

    def size(self, dim=None):
        if dim is None:
            return self.shape
        return self._type.shape[_dim(dim, self.ndim)]

    def dim(self) -> int:
        return self.ndim

    def numel(self) -> int:
        return self._type.size

    def nelement(self) -> int:
        return self._type.size

    def element_size(self) -> int:
        return self._type.dtype.itemsize

    def __len__(self) -> int:
        if not self._type.shape:
            raise user_error(GcompError, "len() of a 0-d tensor")
        return self._type.shape[0]

    def is_floating_point(self) -> bool:
        return self._type.dtype.is_floating_point

    # -- conversion to Python -----------------------------------------------------------------
    def _array(self, what: str):
        d = self._current()
        if isinstance(d, Value):
            raise _concrete_error(what)
        return d

    def numpy(self) -> np.ndarray:
        if self.requires_grad:
            raise user_error(GcompError, "Can't call numpy() on a tensor that requires grad. Use "
                             "tensor.detach().numpy() instead.")
        return np.asarray(self._array("numpy()"))

    def __array__(self, dtype=None, copy=None):
        a = np.asarray(self._array("converting to a numpy array"))
        if dtype is not None:
            return a.astype(dtype)
        return a.copy() if copy else a  # np.array(t) asks for a (writable) copy

    def item(self):
        a = self._array("item()")
        if self.numel() != 1:
            raise user_error(GcompError, f"a Tensor with {self.numel()} elements cannot be "
                             "converted to a Python scalar")
        return np.asarray(a).reshape(()).item()

    def tolist(self):
        return np.asarray(self._array("tolist()")).tolist()

    def __bool__(self) -> bool:
        if self.is_traced:
            raise _concrete_error("bool() (an `if`, `while`, `and`/`or` or `not` on a tensor)")
        if self.numel() != 1:
            raise user_error(GcompError, f"Boolean value of Tensor with {self.numel()} values is "
                             "ambiguous; use .any() or .all()")
        return bool(self.item())

    def __int__(self) -> int:
        if self.is_traced:
            raise _concrete_error("int()")
        return int(self.item())

    def __float__(self) -> float:
        if self.is_traced:
            raise _concrete_error("float()")
        return float(self.item())

    def __index__(self) -> int:
        if self.is_traced:
            raise _concrete_error("use as a Python index")
        if self.dtype.is_floating_point or self.numel() != 1:
            raise user_error(GcompError, "only integer tensors of a single element can be "
                             "converted to an index")
        return int(self.item())

    def __repr__(self) -> str:
        d = self._current()
        grad = ""
        if self._grad_fn is not None:
            grad = f", grad_fn=<{self._grad_fn.op}>"
        elif self.requires_grad:
            grad = ", requires_grad=True"
        if isinstance(d, Value):
            return f"tensor(<traced {self._type}>{grad})"
        body = _format_array(np.asarray(d))
        dt = "" if self.dtype.name in ("float32", "int64", "bool") else f", dtype={self.dtype}"
        return f"tensor({body}{dt}{grad})"

    __str__ = __repr__

    def __format__(self, spec):
        if self.ndim == 0 and not self.is_traced:
            return format(self.item(), spec)
        return format(repr(self), spec)

    def __iter__(self):
        if self.ndim == 0:
            raise user_error(GcompError, "iteration over a 0-d tensor")
        return iter(self.unbind(0))

    def __reduce_ex__(self, protocol):
        return (_rebuild, (np.asarray(self.detach()._array("pickling")), self.requires_grad))

    def __deepcopy__(self, memo):
        out = Tensor(Storage(self._array("copy.deepcopy")), self._type, self.requires_grad)
        if self._grad is not None:
            out._grad = Tensor(Storage(self._grad._storage.data), self._grad._type)
        memo[id(self)] = out
        return out

    # -- autograd -----------------------------------------------------------------------------
    @property
    def grad(self):
        interp = Mode.stack[-1]
        if isinstance(interp, TraceInterpreter):
            from .tracing import traced_grad

            return traced_grad(interp, self)
        return self._grad

    @grad.setter
    def grad(self, value):
        if value is not None:
            if not isinstance(value, Tensor):
                raise user_error(GcompError, "assigned grad must be a Tensor or None")
            if value._type != self._type:
                raise user_error(GcompError, f"assigned grad has type {value._type}, but the "
                                 f"tensor is {self._type}")
        interp = Mode.stack[-1]
        if isinstance(interp, TraceInterpreter):
            from .tracing import set_traced_grad

            set_traced_grad(interp, self, value)
            return
        self._grad = value

    @property
    def grad_fn(self):
        return self._grad_fn

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if requires_grad and not self.dtype.is_floating_point:
            raise user_error(GcompError, "only tensors of floating point dtype can require "
                             f"gradients, this one is {self.dtype}")
        if not requires_grad and self._grad_fn is not None:
            raise user_error(GcompError, "you can only change requires_grad flags of leaf "
                             "variables; use .detach()")
        self.requires_grad = requires_grad
        return self

    def register_hook(self, hook):
        from .autograd import register_hook

        return register_hook(self, hook)

    @property
    def retains_grad(self) -> bool:
        return bool(self._retains_grad) and self._grad_fn is not None

    def retain_grad(self):
        from .autograd import retain_grad

        retain_grad(self)
        self._retains_grad = True

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        from .autograd import backward

        backward(self, gradient, retain_graph=retain_graph, create_graph=create_graph,
                 inputs=inputs)

    def detach(self) -> Tensor:
        """Shares storage with self (Note [Storage and aliasing]); no gradient flows through."""
        self._fresh()
        if self.is_traced and self.requires_grad:
            from ..core.prims import stop_gradient
            from .autograd import no_grad

            with no_grad():
                return stop_gradient(self)
        return self._alias_nograd()

    def _alias_nograd(self) -> Tensor:
        """Same data, no autograd history. For a view: a view of the same root whose in-place
        updates write through without recording gradients (what .data and .detach() do)."""
        out = Tensor(self._storage, self._type)
        if self._base is not None:
            out._storage = type(self._storage)(self._storage.data)
            out._base, out._base_version = self._base, self._base_version
            out._view_fn, out._view_writable = self._view_fn, self._view_writable
            out._view_nograd = True
        return out

    def detach_(self) -> Tensor:
        self._grad_fn = None
        self.requires_grad = False
        return self

    @property
    def data(self) -> Tensor:
        self._fresh()
        return self._alias_nograd()

    @data.setter
    def data(self, value: Tensor):
        """``t.data = other``: t keeps its autograd identity and takes other's data. Of the same
        shape and dtype, the data is written into t (an in-place update, as a state update in a
        compiled function); of another, t takes other's shape, dtype and memory, as PyTorch's
        ``p.data = p.data.double()`` does (eagerly only: a traced tensor's type is fixed)."""
        from .inplace import assign

        if not isinstance(value, TensorBase):
            raise user_error(GcompError, f"assigned data must be a tensor, got "
                             f"{type(value).__name__}; wrap it with gcomp.tensor(...)")
        if value._type == self._type:
            assign(self, value, check=False)
            return
        if isinstance(Mode.stack[-1], TraceInterpreter) or isinstance(value._data, Value):
            raise user_error(GcompError, (
                f"`.data = ` of another shape or dtype ({self._type} to {value._type}) inside "
                "gcomp.compile: a traced tensor keeps its type. Change the tensor (or call "
                "module.to(dtype)) before calling the compiled function"))
        if self._base is not None:
            raise user_error(GcompError, (
                f"`.data = ` of another shape or dtype ({self._type} to {value._type}) on a view: "
                "assign to the tensor it views, or clone() the view first"))
        self._storage, self._type, self._strides = value._storage, value._type, None

    @property
    def T(self):
        return self.permute(*reversed(range(self.ndim)))

    @property
    def mT(self):
        return self.transpose(-2, -1)


class Size(tuple):
    """torch.Size: a tuple of ints with a PyTorch repr."""

    def __repr__(self) -> str:
        return f"gcomp.Size({list(self)})"

    def numel(self) -> int:
        n = 1
        for d in self:
            n *= d
        return n


def _rebuild(array, requires_grad):
    from .creation import tensor

    return tensor(array, requires_grad=requires_grad)


def _dim(dim: int, ndim: int) -> int:
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise user_error(GcompError, f"Dimension out of range (expected to be in range of "
                         f"[{-n}, {n - 1}], but got {dim})")
    return dim % n


def new_tensor(data, type: TensorType, requires_grad=False) -> Tensor:
    return Tensor(Storage(data), type, requires_grad)


Mode.tensor_class = Tensor
