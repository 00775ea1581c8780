"""Tensor creation functions and the global random generator."""

from __future__ import annotations

import math

import numpy as np

from ..core.dispatch import Mode, TraceInterpreter, bind, user_error
from ..ir import types as T
from ..ir.errors import GcompError
from ..lowering import from_jax_dtype, to_jax_dtype
from .tensor import Tensor, new_tensor

_NP_KINDS = {"f": T.DEFAULT_FLOAT, "i": T.int64, "u": T.int64, "b": T.bool_}


def set_default_dtype(d) -> None:
    """torch.set_default_dtype: the dtype of Python floats made tensors, of float factories
    (zeros, randn, arange with a float, ...), of modules' parameters and of a Python float
    combined with an integer tensor. A compiled function retraces when it changes (a guard, as
    grad mode is)."""
    dt = d if isinstance(d, T.DType) else None
    if dt not in (T.float16, T.bfloat16, T.float32, T.float64):
        raise user_error(GcompError, f"set_default_dtype: only floating-point types are "
                         f"supported as the default type, got {d!r}")
    T.DEFAULT_FLOAT = dt
    _NP_KINDS["f"] = dt


def get_default_dtype():
    return T.DEFAULT_FLOAT


def _infer_dtype(arr: np.ndarray, from_python: bool) -> T.DType:
    if from_python:
        return _NP_KINDS.get(arr.dtype.kind) or _bad_dtype(arr.dtype)
    if arr.dtype == np.float64:
        return T.float64
    try:
        return from_jax_dtype(arr.dtype)
    except GcompError:
        if arr.dtype.kind in "iu":
            return T.int64
        return _bad_dtype(arr.dtype)


def _bad_dtype(dt):
    raise user_error(GcompError, f"can't convert data of dtype {dt} to a tensor; supported: "
                     f"{', '.join(d.name for d in T.ALL_DTYPES)}")


def _to_numpy(data):
    if isinstance(data, Tensor):
        return np.asarray(data.detach()._array("tensor(...)")), False
    if isinstance(data, (list, tuple)) and any(isinstance(x, Tensor) for x in _flat(data)):
        return np.asarray(_map(data, lambda x: x.item() if isinstance(x, Tensor) else x)), True
    if isinstance(data, np.ndarray) or hasattr(data, "__array__") and not isinstance(
            data, (list, tuple)):
        return np.asarray(data), False
    return np.asarray(data), True


def _flat(xs):
    for x in xs:
        if isinstance(x, (list, tuple)):
            yield from _flat(x)
        else:
            yield x


def _map(xs, f):
    return [_map(x, f) if isinstance(x, (list, tuple)) else f(x) for x in xs]


def tensor(data, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A new tensor holding a copy of ``data`` (PyTorch's dtype inference)."""
    try:
        arr, from_python = _to_numpy(data)
    except ValueError as e:  # numpy: "inhomogeneous shape" for ragged nested lists
        raise user_error(GcompError, f"tensor(): could not make a tensor of this data (ragged "
                         f"nested lists?): {e}") from None
    if arr.dtype == object:
        raise user_error(GcompError, "tensor(): could not infer a dtype (ragged nested lists?)")
    dt = dtype or _infer_dtype(arr, from_python)
    # A copy: jax.device_put may alias an aligned numpy buffer on CPU, and the caller's array
    # (a torch tensor's .numpy(), say) can change afterwards.
    arr = np.array(arr, dtype=to_jax_dtype(dt), copy=True)
    if isinstance(Mode.stack[-1], TraceInterpreter):
        out = bind("constant", value=arr.tolist(), dtype=dt) if arr.size else \
            bind("full", shape=arr.shape, value=0, dtype=dt)  # [] has no shape [0, 2, 3]
    else:
        out = new_tensor(_put(arr, device), T.TensorType(arr.shape, dt))
    if requires_grad:
        out.requires_grad_()
    return out


def _put(arr, device):
    import jax

    if device is None:
        return jax.device_put(arr)
    from .device import device as Device

    return jax.device_put(arr, Device(device).jax_device())


def concrete_full(shape, fill_value, dtype, device=None) -> Tensor:
    """A tensor filled with ``fill_value`` that holds a real array even inside gcomp.compile.

    For state created while a trace runs (an optimizer's first moments, say): it must outlive
    the trace, which then captures it as an input instead of computing it as a constant.
    """
    arr = np.full(tuple(shape), fill_value, dtype=to_jax_dtype(dtype))
    return new_tensor(_put(arr, device), T.TensorType(arr.shape, dtype))


def as_tensor(data, dtype=None, device=None) -> Tensor:
    if isinstance(data, Tensor):
        from .ops import cast

        out = cast(data, dtype) if dtype is not None and dtype != data.dtype else data
        if device is None:
            return out
        from .device import device as Device
        from .device import to_device

        return to_device(out, Device(device))  # no copy when it is already there
    return tensor(data, dtype=dtype, device=device)


def from_numpy(arr: np.ndarray) -> Tensor:
    return tensor(arr)


def _shape(size):
    if len(size) == 1 and isinstance(size[0], (list, tuple)):
        size = tuple(size[0])
    shape = tuple(int(s) for s in size)
    if any(s < 0 for s in shape):
        raise user_error(GcompError, f"negative dimension in {list(shape)}")
    return shape


def _finish(out, requires_grad):
    if requires_grad:
        out.requires_grad_()
    return out


def _on(out: Tensor, device) -> Tensor:
    """``out`` committed to ``device`` when one is given (Note [Devices and committed arrays] in
    frontend/device.py); inside gcomp.compile the executable's device decides."""
    if device is None:
        return out
    from .device import device as Device
    from .device import to_device

    return to_device(out, Device(device), commit=True)


def _like(out: Tensor, x, device) -> Tensor:
    """For *_like: ``device`` if given, else ``x``'s device when ``x`` is committed (torch)."""
    if device is not None:
        return _on(out, device)
    if isinstance(x, Tensor):
        from .device import place_like

        return place_like(out, x)
    return out


def full(size, fill_value, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    from . import ops

    if dtype is None:
        dtype = (T.bool_ if isinstance(fill_value, bool) else T.int64
                 if isinstance(fill_value, int) else T.DEFAULT_FLOAT)
    return _finish(_on(ops.full(tuple(size), fill_value, dtype), device), requires_grad)


def zeros(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    return full(_shape(size), 0.0, dtype=dtype or T.DEFAULT_FLOAT, device=device,
                requires_grad=requires_grad)


def ones(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    return full(_shape(size), 1.0, dtype=dtype or T.DEFAULT_FLOAT, device=device,
                requires_grad=requires_grad)


empty = zeros


def zeros_like(x, *, dtype=None, device=None, requires_grad=False):
    return full_like(x, 0, dtype=dtype, device=device, requires_grad=requires_grad)


def ones_like(x, *, dtype=None, device=None, requires_grad=False):
    return full_like(x, 1, dtype=dtype, device=device, requires_grad=requires_grad)


empty_like = zeros_like


def full_like(x, fill_value, *, dtype=None, device=None, requires_grad=False):
    out = full(x.shape, fill_value, dtype=dtype or x.dtype)
    return _finish(_like(out, x, device), requires_grad)


def arange(start, end=None, step=1, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    if end is None:
        start, end = 0, start
    vals = [v.item() if isinstance(v, Tensor) else v for v in (start, end, step)]
    start, end, step = vals
    if step == 0:
        raise user_error(GcompError, "arange: step must be nonzero")
    if (step > 0 and end < start) or (step < 0 and end > start):
        raise user_error(GcompError, f"arange: upper bound and lower bound inconsistent with step "
                         f"sign (start={start}, end={end}, step={step})")
    if dtype is None:
        dtype = T.int64 if all(isinstance(v, int) for v in vals) else T.DEFAULT_FLOAT
    n = max(0, math.ceil((end - start) / step))
    if dtype.is_floating_point:
        idx = bind("iota", shape=(n,), dim=0, dtype=T.float64)
        from .ops import add, cast, mul

        if step != 1:
            idx = mul(idx, float(step))
        out = cast(add(idx, float(start)) if start != 0 else idx, dtype)
    else:
        idx = bind("iota", shape=(n,), dim=0, dtype=dtype)
        from .ops import add, mul

        out = idx if (start, step) == (0, 1) else add(mul(idx, int(step)), int(start))
    return _finish(_on(out, device), requires_grad)


def linspace(start, end, steps, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    """PyTorch's symmetric formula: the first half steps up from start, the second down from end."""
    from .ops import add, cast, lt, mul, sub, where

    dtype = dtype or T.DEFAULT_FLOAT
    if steps == 1:
        return full((1,), start, dtype=dtype, device=device, requires_grad=requires_grad)
    step = (end - start) / (steps - 1)
    i = bind("iota", shape=(steps,), dim=0, dtype=T.float64)
    up = add(mul(i, step), float(start))
    down = sub(float(end), mul(sub(float(steps - 1), i), step))
    out = cast(where(lt(i, steps // 2), up, down), dtype)
    return _finish(_on(out, device), requires_grad)


def eye(n, m=None, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    from .ops import cast, eq

    m = n if m is None else m
    rows = bind("iota", shape=(n, m), dim=0, dtype=T.int64)
    cols = bind("iota", shape=(n, m), dim=1, dtype=T.int64)
    return _finish(_on(cast(eq(rows, cols), dtype or T.DEFAULT_FLOAT), device), requires_grad)


# -- random numbers --------------------------------------------------------------------------
class Generator:
    """PyTorch's global generator over a counter-based jax key (state path ``rng.key``).

    Each draw splits the key: one half becomes the new state, the other feeds the draw. Inside
    gcomp.compile the key is captured state like a parameter, so a compiled step draws exactly the
    numbers the eager step would.
    """

    def __init__(self, device=None, seed: int | None = None):
        from .device import device as Device

        if isinstance(device, int) and not isinstance(device, bool) and seed is None:
            device, seed = None, device  # gcomp.Generator(7): a seed (gcomp's shorthand)
        # torch.Generator(device="cuda"): one generator serves every device here (the key is
        # state that moves with the computation), so the device is checked and kept for .device
        self.device = Device(device) if device is not None else Device("cpu")
        self.key = new_tensor(None, T.TensorType((2,), T.uint32))
        self.key._name = "rng.key"
        self.manual_seed(0 if seed is None else seed)

    def manual_seed(self, seed: int):
        import jax

        seed = int(seed)
        self._initial_seed = seed
        raw = np.array([(seed >> 32) & 0xFFFFFFFF, seed & 0xFFFFFFFF], dtype=np.uint32)
        if isinstance(Mode.stack[-1], TraceInterpreter):
            raise user_error(GcompError, "manual_seed inside gcomp.compile is not supported; "
                             "seed before calling the compiled function")
        self.key._storage.data = jax.device_put(raw)
        self.key._storage.version += 1
        return self

    def seed(self) -> int:
        """Seed from a non-deterministic random number and return it (torch.Generator.seed)."""
        import random

        s = random.getrandbits(63)
        self.manual_seed(s)
        return s

    def initial_seed(self) -> int:
        """The seed of the last manual_seed/seed call."""
        return self._initial_seed

    def get_state(self) -> Tensor:
        return new_tensor(self.key._array("get_state"), self.key._type)

    def set_state(self, state: Tensor):
        from .inplace import assign

        if not isinstance(state, Tensor) or state._type != self.key._type:
            got = f"{state.dtype} {list(state.shape)}" if isinstance(state, Tensor) else \
                type(state).__name__
            raise user_error(GcompError, f"set_state expects what get_state returns (a uint32 "
                             f"tensor of shape [2]), got {got}")
        assign(self.key, state, check=False)
        return self

    def next_key(self) -> Tensor:
        from .autograd import no_grad
        from .inplace import assign

        with no_grad():
            both = bind("random_split", self.key, num=2)
            new_state = bind("reshape", bind("slice", both, start=(0, 0), limit=(1, 2),
                                             stride=(1, 1)), shape=(2,))
            sub = bind("reshape", bind("slice", both, start=(1, 0), limit=(2, 2), stride=(1, 1)),
                       shape=(2,))
            assign(self.key, new_state, check=False)
        return sub


default_generator = Generator(0)


def manual_seed(seed: int) -> Generator:
    return default_generator.manual_seed(seed)


def seed() -> int:
    return default_generator.seed()


def initial_seed() -> int:
    return default_generator.initial_seed()


def get_rng_state() -> Tensor:
    """The global generator's state (its jax key, a uint32 tensor of 2; torch's is a uint8
    ByteTensor of another layout, so states do not move between the two)."""
    return default_generator.get_state()


def set_rng_state(new_state: Tensor) -> None:
    default_generator.set_state(new_state)


def _uniform_bits(shape, generator=None, open_interval=False):
    """Uniform floats in [0, 1) (or (0, 1)) with 24 random bits, as float32."""
    from .ops import add, cast, mul

    gen = generator or default_generator
    bits = bind("random_bits", gen.next_key(), shape=tuple(shape))
    top = bind("shift_right_logical", bits, bind("full", shape=tuple(shape), value=8,
                                                   dtype=T.uint32))
    u = cast(top, T.float32)
    if open_interval:
        u = add(u, 0.5)
    return mul(u, 2.0 ** -24)


def rand(*size, generator=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    from .ops import cast

    dtype = _random_float_dtype("rand", dtype)  # before drawing: an error leaves the state as is
    out = cast(_uniform_bits(_shape(size), generator), dtype)
    return _finish(_on(out, device), requires_grad)


def _random_float_dtype(name, dtype):
    if dtype is None:
        return T.DEFAULT_FLOAT
    if not dtype.is_floating_point:
        raise user_error(GcompError, f"{name}: dtype must be a floating point dtype, got "
                         f"{dtype.name} (use randint for integers)")
    return dtype


def randn(*size, generator=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    from .ops import cast, erfinv, mul, sub

    dtype = _random_float_dtype("randn", dtype)
    u = _uniform_bits(_shape(size), generator, open_interval=True)
    z = mul(erfinv(sub(mul(u, 2.0), 1.0)), math.sqrt(2.0))
    return _finish(_on(cast(z, dtype), device), requires_grad)


def randint(low, high=None, size=None, *, generator=None, dtype=None, device=None) -> Tensor:
    from .ops import add, cast, floor, mul

    if size is None and isinstance(high, (tuple, list)):  # randint(high, size)
        low, high, size = 0, low, high
    if size is None:
        raise user_error(GcompError, "randint() needs a size, e.g. randint(0, 10, (3,))")
    if high is None:
        low, high = 0, low
    if high <= low:
        raise user_error(GcompError, f"randint: high ({high}) must be greater than low ({low})")
    u = cast(_uniform_bits(tuple(size), generator), T.float64)
    out = add(cast(floor(mul(u, float(high - low))), T.int64), int(low))
    return _on(cast(out, dtype or T.int64), device)


def rand_like(x, *, dtype=None, device=None, requires_grad=False):
    out = rand(x.shape, dtype=dtype or x.dtype)
    return _finish(_like(out, x, device), requires_grad)


def randn_like(x, *, dtype=None, device=None, requires_grad=False):
    out = randn(x.shape, dtype=dtype or x.dtype)
    return _finish(_like(out, x, device), requires_grad)


def randint_like(x, low, high=None, *, dtype=None, device=None):
    return _like(randint(low, high, x.shape, dtype=dtype or x.dtype), x, device)


def bernoulli(p, *, generator=None) -> Tensor:
    from .ops import cast, lt

    return cast(lt(_uniform_bits(p.shape, generator), p), p.dtype)
