"""gcomp: PyTorch-style eager tensors and autograd, traced into a typed IR and compiled through
JAX to XLA.

``import gcomp as torch`` gives PyTorch's names for tensors, math, autograd and dtypes;
``gcomp.compile(fn)`` turns a function (a whole training step included) into one executable.
"""

from __future__ import annotations

from . import lowering as _lowering  # noqa: F401  (enables jax x64 before anything runs)
from .frontend import methods as _methods  # noqa: F401  (attaches Tensor methods)
from .frontend.autograd import (enable_grad, inference_mode, is_grad_enabled, no_grad,
                                set_grad_enabled, value_and_grad)
from .frontend.autograd import grad_of as grad
from .frontend.control import cond, scan
from .frontend.creation import (Generator, arange, as_tensor, bernoulli, default_generator, empty,
                                empty_like, eye, from_numpy, full, full_like, linspace,
                                manual_seed, ones, ones_like, rand, rand_like, randint,
                                randint_like, randn, randn_like, seed, tensor, zeros, zeros_like)
from .frontend.device import device
from .frontend.ops import (abs, add, all, allclose, amax, amin, any, argmax, argmin, atan2,
                           bitwise_and, bitwise_not, bitwise_or, bitwise_xor, bmm, ceil, clamp,
                           clip, cos, cumsum, div, divide, dot, einsum, eq, equal, erf, erfinv,
                           exp, exp2, expm1, floor, floor_divide, fmod, ge, greater, gt, isclose,
                           isfinite, isinf, isnan, le, lerp, less, log, log1p, log2, log10,
                           log_softmax, logical_and, logical_not, logical_or, logical_xor,
                           logsumexp, lt, matmul, max, maximum, mean, min, minimum, mm, mul,
                           multiply, mv, ne, neg, negative, norm, outer, pow, prod, reciprocal,
                           relu, remainder, round, rsqrt, sigmoid, sign, sin, softmax, sqrt,
                           square, std, sub, subtract, sum, tan, tanh, true_divide, trunc, var,
                           where)
from .frontend.shape_ops import (broadcast_to, cat, chunk, concat, concatenate, expand, flatten,
                                 flip, gather, index_select, masked_select, narrow, nonzero,
                                 permute, repeat, reshape, roll, split, squeeze, stack, swapaxes,
                                 t, take, take_along_dim, transpose, tril, triu, unbind, unflatten,
                                 unsqueeze)
from .frontend.tensor import Size, Tensor, TracedValueError
from .ir.errors import GcompError, IRParseError, IRVerifyError, ShapeError
from .ir.types import (
    DType,
    bfloat16,
    float16,
    float32,
    float64,
    int8,
    int16,
    int32,
    int64,
    uint8,
    uint32,
)
from .ir.types import bool_ as bool  # noqa: A001 - torch.bool
from .runtime.compiled import CompiledFunction, CompiledModule, compile  # noqa: A004
from .runtime.log import configure as _configure_log

from . import autograd, cuda, distributed, ir  # noqa: E402

half, float, double, long, int, short = float16, float32, float64, int64, int32, int16  # noqa: A001
dtype = DType
__version__ = "0.1.0"


def is_tensor(obj) -> bool:
    return isinstance(obj, Tensor)


def numel(t) -> int:
    return t.numel()


def get_default_dtype():
    return float32


def promote_types(a, b):
    from .ir.types import promote_types as _p

    return _p(a, b)


def result_type(a, b):
    from .frontend.ops import _operand_info
    from .ir.types import result_type as _r

    return _r(_operand_info(a), _operand_info(b))


def clone(t):
    return t.clone()


_configure_log()

from . import data, nn, optim, utils  # noqa: E402, F401
from .bench import benchmark  # noqa: E402, F401
from .runtime.aot import Compiled, Loaded, Lowered, Spec  # noqa: E402, F401
from .runtime.cache import config  # noqa: E402, F401
from .serialization import load_state, save  # noqa: E402, F401


def load(path, **options):
    """What ``path`` holds, by its content: a saved program (``Compiled.save``, Note [Artifacts]
    in gcomp/runtime/aot.py) as a callable ``gcomp.Loaded``; else, like ``torch.load``, what
    ``gcomp.save`` wrote (tensors, state dicts). ``options`` go to the artifact loader
    (``use_executable=False``)."""
    import zipfile

    from .runtime import aot
    from .serialization import _STRUCTURE

    try:
        with zipfile.ZipFile(path) as z:
            is_state = f"{_STRUCTURE}.npy" in z.namelist()
    except (OSError, zipfile.BadZipFile):
        is_state = False
    if is_state:
        return load_state(path)
    return aot.load(path, **options)  # an artifact, or the error that says what the file is not


from .runtime import cache as _cache  # noqa: E402

_cache.from_env()  # GCOMP_CACHE_DIR (Note [Persistent cache] in gcomp/runtime/cache.py)
