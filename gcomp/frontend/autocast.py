"""torch.autocast: mixed precision chosen per op, eagerly and inside gcomp.compile.

Note [Autocast]
~~~~~~~~~~~~~~~
``with gcomp.autocast("cpu", dtype=gcomp.bfloat16):`` runs the ops torch lists as safe in low
precision (matmul, mm, bmm, linear, the add*mm family, convolutions, prelu, the recurrent layers,
attention) with their floating inputs cast to the autocast dtype, and the ops it lists as needing
float32 (the losses, avg_pool3d) with 16-bit inputs cast to float32. Every other op runs in the
dtype of its inputs, so a ReLU after an autocast linear runs in bfloat16 and adding a float32
tensor to it promotes back to float32, exactly as in torch. float64 inputs are never cast, and
in-place ops are not affected.

The policy is applied where torch applies it, at the level of the torch function, not of gcomp's
primitives: ``lower_precision`` and ``float32`` below wrap those functions, cast their tensor
arguments (also inside lists and tuples) and run the function with autocast switched off, as
torch's autocast kernels do, so that the ops a function is made of are not cast again. gcomp's
``mv`` and ``dot`` share the ``dot_general`` primitive with ``matmul`` but stay float32, as in
torch. Casts are ordinary ``cast`` ops: they are on the tape, so gradients reach the float32
leaves in float32, and under ``gcomp.compile`` they are IR nodes like any other (the dump shows
them). The backward pass never autocasts (``core.autograd.backprop`` switches it off): each
backward op runs in the dtype its forward op ran in.

What applies is ``Mode.autocast``: the autocast dtype of the device type of the default device
(``cpu`` here, ``cuda`` on a GPU machine), or None. It is part of every compiled function's
signature, so calling a compiled function inside and outside autocast gives two executables and
the recompile reason names the change. Tensors placed explicitly on a device of another type than
the default one follow the default device's setting (a known simplification).

As torch does, a cast of a leaf parameter to the autocast dtype is cached within the outermost
autocast region (``cache_enabled``), so a weight used at every step of a loop is cast once; the
cache is keyed by the parameter's storage version and the grad mode, so an in-place update or a
no_grad use never hands out a stale or a detached cast.
"""

from __future__ import annotations

import functools
import warnings
import weakref

from ..core.dispatch import Mode, user_error
from ..ir import types as T
from ..ir.errors import GcompError

# torch's autocast device types; those without a device here warn and disable, as torch does for
# "cuda" on a machine without a GPU
DEVICE_TYPES = ("cpu", "cuda", "xla", "xpu", "mps", "hpu", "mtia", "maia", "ipu")
_SUPPORTED = {"cpu": (T.bfloat16, T.float16), "cuda": (T.float16, T.bfloat16),
              "xla": (T.bfloat16,)}
_DEFAULT = {"cuda": T.float16}  # every other device type: bfloat16
_KIND = {"cpu": "cpu", "cuda": "cuda", "tpu": "xla"}  # gcomp's device type -> autocast's


class _State:
    enabled: dict = {k: False for k in DEVICE_TYPES}
    dtype: dict = {k: _DEFAULT.get(k, T.bfloat16) for k in DEVICE_TYPES}
    cache_enabled: bool = True
    depth: int = 0
    cache: dict = {}  # id(leaf) -> (weakref, version, grad mode, dtype, cast)
    kind: str | None = None  # the default device's autocast device type, once asked


def _default_kind() -> str:
    if _State.kind is None:
        from .device import default_device

        _State.kind = _KIND.get(default_device().type, "cpu")
    return _State.kind


def _refresh() -> None:
    kind = _default_kind()
    Mode.autocast = _State.dtype[kind] if _State.enabled[kind] else None


def _available(device_type: str) -> bool:
    if device_type == "cpu":
        return True
    if device_type == "cuda":
        from .device import cuda_is_available

        return cuda_is_available()
    if device_type == "xla":
        import jax

        return any(d.platform == "tpu" for d in jax.devices())
    return False


def _check_type(device_type, what: str) -> str:
    if not isinstance(device_type, str):
        raise user_error(GcompError, f"{what}: expected `device_type` of type `str`, got "
                         f"`{type(device_type).__name__}` (write e.g. device_type=\"cpu\")")
    if device_type not in DEVICE_TYPES:
        raise user_error(GcompError, f"{what}: unsupported autocast device_type "
                         f"{device_type!r}; use one of {', '.join(map(repr, DEVICE_TYPES))}")
    return device_type


def _check_dtype(dtype, what: str):
    if not isinstance(dtype, T.DType):
        raise user_error(GcompError, f"{what}: expected `dtype` to be a gcomp dtype such as "
                         f"gcomp.bfloat16, got {dtype!r}")
    return dtype


# -- the public functions: torch's names ---------------------------------------------------------
def is_autocast_available(device_type: str) -> bool:
    """Whether ``device_type`` is one autocast knows (torch.amp.is_autocast_available)."""
    return device_type in DEVICE_TYPES


def is_autocast_enabled(device_type: str | None = None) -> bool:
    """torch.is_autocast_enabled: of ``device_type``; without one, of "cuda" (torch's legacy
    meaning)."""
    return _State.enabled[_check_type(device_type or "cuda", "is_autocast_enabled")]


def set_autocast_enabled(device_type, enabled=None) -> None:
    """torch.set_autocast_enabled(device_type, enabled), or the legacy (enabled) for "cuda"."""
    if enabled is None:
        device_type, enabled = "cuda", device_type
    _State.enabled[_check_type(device_type, "set_autocast_enabled")] = bool(enabled)
    _refresh()


def get_autocast_dtype(device_type: str):
    return _State.dtype[_check_type(device_type, "get_autocast_dtype")]


def set_autocast_dtype(device_type: str, dtype) -> None:
    _check_type(device_type, "set_autocast_dtype")
    _State.dtype[device_type] = _check_dtype(dtype, "set_autocast_dtype")
    _refresh()


def is_autocast_cpu_enabled() -> bool:
    return _State.enabled["cpu"]


def get_autocast_cpu_dtype():
    return _State.dtype["cpu"]


def get_autocast_gpu_dtype():
    return _State.dtype["cuda"]


def is_autocast_cache_enabled() -> bool:
    return _State.cache_enabled


def set_autocast_cache_enabled(enabled: bool) -> None:
    _State.cache_enabled = bool(enabled)


def clear_autocast_cache() -> None:
    _State.cache.clear()


class autocast:  # noqa: N801 - torch's name
    """``torch.autocast(device_type, dtype=None, enabled=True, cache_enabled=None)``: a context
    manager and a decorator (Note [Autocast]). ``dtype`` defaults to the device type's autocast
    dtype (bfloat16 on "cpu", float16 on "cuda")."""

    def __init__(self, device_type, dtype=None, enabled=True, cache_enabled=None):
        self.device = _check_type(device_type, "autocast")
        self.fast_dtype = get_autocast_dtype(device_type) if dtype is None else \
            _check_dtype(dtype, "autocast")
        self._cache_enabled = _State.cache_enabled if cache_enabled is None else \
            bool(cache_enabled)
        self._enabled = bool(enabled)
        if not self._enabled:
            return
        if not _available(device_type):
            warnings.warn(f"gcomp.autocast({device_type!r}): no {device_type} device is "
                          "available here; autocast is disabled", UserWarning, stacklevel=2)
            self._enabled = False
        elif self.fast_dtype not in _SUPPORTED.get(device_type, (T.bfloat16,)):
            ok = ", ".join(f"gcomp.{d}" for d in _SUPPORTED.get(device_type, (T.bfloat16,)))
            warnings.warn(f"gcomp.autocast({device_type!r}) supports {ok}, not gcomp."
                          f"{self.fast_dtype}; autocast is disabled", UserWarning, stacklevel=2)
            self._enabled = False

    def __enter__(self):
        d = self.device
        if not hasattr(self, "_saved"):
            self._saved = []
        self._saved.append((_State.enabled[d], _State.dtype[d], _State.cache_enabled))
        _State.depth += 1
        _State.enabled[d], _State.dtype[d] = self._enabled, self.fast_dtype
        _State.cache_enabled = self._cache_enabled
        _refresh()
        return self

    def __exit__(self, *exc):
        d = self.device
        _State.depth -= 1
        if _State.depth == 0:
            _State.cache.clear()  # torch drops its cast cache on leaving the outermost region
        _State.enabled[d], _State.dtype[d], _State.cache_enabled = self._saved.pop()
        _refresh()
        return False

    def __call__(self, func):
        @functools.wraps(func)
        def decorated(*args, **kwargs):
            with self:
                return func(*args, **kwargs)

        return decorated

    def __repr__(self):
        return (f"gcomp.autocast({self.device!r}, dtype=gcomp.{self.fast_dtype}, "
                f"enabled={self._enabled})")


# -- the policies --------------------------------------------------------------------------------
def _cached_cast(x, dtype):
    """x cast to ``dtype``, from the cache for a float32 leaf that requires grad (torch's
    cached_cast; Note [Autocast])."""
    from .ops import cast

    if not (_State.cache_enabled and _State.depth and x.requires_grad and x._grad_fn is None
            and x._base is None and x._type.dtype is T.float32 and len(Mode.stack) == 1):
        return cast(x, dtype)
    hit = _State.cache.get(id(x))
    grad = Mode.grad_enabled
    if hit is not None and hit[0]() is x and hit[1] == x._storage.version and hit[2] == grad \
            and hit[3] is dtype:
        return hit[4]
    out = cast(x, dtype)
    _State.cache[id(x)] = (weakref.ref(x), x._storage.version, grad, dtype, out)
    return out


def _lower(x, dtype):
    tensor = Mode.tensor_class
    if isinstance(x, tensor):
        dt = x._type.dtype
        if dt.is_floating_point and dt is not T.float64 and dt is not dtype:
            return _cached_cast(x, dtype)
        return x
    if type(x) in (list, tuple) and any(isinstance(v, tensor) for v in x):
        return type(x)(_lower(v, dtype) for v in x)
    return x


def _widen(x, dtype):
    from .ops import cast

    tensor = Mode.tensor_class
    if isinstance(x, tensor):
        return cast(x, T.float32) if x._type.dtype in (T.float16, T.bfloat16) else x
    if type(x) in (list, tuple) and any(isinstance(v, tensor) for v in x):
        return type(x)(_widen(v, dtype) for v in x)
    return x


def _policy(fn, cast_one):
    @functools.wraps(fn)
    def under_autocast(*args, **kwargs):
        dtype = Mode.autocast
        if dtype is None:
            return fn(*args, **kwargs)
        args = tuple(cast_one(a, dtype) for a in args)
        kwargs = {k: cast_one(v, dtype) for k, v in kwargs.items()}
        Mode.autocast = None  # the ops fn is made of are not autocast again (as torch's kernels)
        try:
            return fn(*args, **kwargs)
        finally:
            Mode.autocast = dtype

    under_autocast.autocast_policy = cast_one.__name__.strip("_")
    return under_autocast


def lower_precision(fn):
    """Under autocast, ``fn`` runs with its floating inputs (but float64) in the autocast dtype."""
    return _policy(fn, _lower)


def float32(fn):
    """Under autocast, ``fn`` runs with its 16-bit floating inputs in float32."""
    return _policy(fn, _widen)


def _keep(x, dtype):
    return x


def lower_precision_for(kinds):
    """``lower_precision`` for calls whose first argument (a layer kind) is in ``kinds``; the
    others run with autocast off and their inputs as they are (the recurrent layers: torch casts
    some kinds and not others)."""
    def wrap(fn):
        low, kept = _policy(fn, _lower), _policy(fn, _keep)

        @functools.wraps(fn)
        def by_kind(kind, *args, **kwargs):
            return (low if kind in kinds else kept)(kind, *args, **kwargs)

        return by_kind

    return wrap


def cast_inputs(*tensors):
    """The tensors cast as ``lower_precision`` would (for modules whose weights are attributes,
    not arguments: the recurrent cells); unchanged outside autocast."""
    dtype = Mode.autocast
    if dtype is None:
        return tensors
    return tuple(_lower(t, dtype) if t is not None else None for t in tensors)


# -- torch.amp.custom_fwd / custom_bwd -----------------------------------------------------------
def custom_fwd(fwd=None, *, device_type: str, cast_inputs=None):
    """torch.amp.custom_fwd for an autograd.Function's forward: with ``cast_inputs`` set, the
    forward runs with autocast off and its floating inputs in that dtype when autocast is on;
    without it, in the caller's autocast state. The state is recorded for ``custom_bwd``."""
    _check_type(device_type, "custom_fwd")
    if fwd is None:
        return functools.partial(custom_fwd, device_type=device_type, cast_inputs=cast_inputs)

    @functools.wraps(fwd)
    def forward(*args, **kwargs):
        ctx = args[0]
        ctx._fwd_autocast = (_State.enabled[device_type], _State.dtype[device_type])
        if cast_inputs is None or not _State.enabled[device_type]:
            return fwd(*args, **kwargs)
        cast_args = tuple(_to(a, cast_inputs) for a in args[1:])
        cast_kwargs = {k: _to(v, cast_inputs) for k, v in kwargs.items()}
        ctx._fwd_autocast = (False, _State.dtype[device_type])
        with autocast(device_type, enabled=False):
            return fwd(ctx, *cast_args, **cast_kwargs)

    return forward


def custom_bwd(bwd=None, *, device_type: str):
    """torch.amp.custom_bwd: the backward runs in the autocast state its forward ran in."""
    _check_type(device_type, "custom_bwd")
    if bwd is None:
        return functools.partial(custom_bwd, device_type=device_type)

    @functools.wraps(bwd)
    def backward(*args, **kwargs):
        enabled, dtype = getattr(args[0], "_fwd_autocast", (False, None))
        with autocast(device_type, dtype=dtype, enabled=enabled):
            return bwd(*args, **kwargs)

    return backward


def _to(x, dtype):
    from .ops import cast

    if isinstance(x, Mode.tensor_class) and x._type.dtype.is_floating_point and \
            x._type.dtype is not T.float64:
        return cast(x, dtype)
    return x
