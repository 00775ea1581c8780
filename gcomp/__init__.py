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
# elementwise math API: inverse trig, special functions, NaN-aware helpers, dtype limits
from .frontend.dtype_info import finfo, iinfo
from math import e, inf, nan, pi  # torch.e, torch.inf, torch.nan, torch.pi
from .frontend.ops import (absolute, acos, acosh, addcdiv, addcmul, arccos, arccosh, arcsin,
                           arcsinh, arctan, arctan2, arctanh, asin, asinh, atan, atanh, clamp_max,
                           clamp_min, copysign, cosh, count_nonzero, deg2rad, digamma, erfc,
                           float_power, fmax, fmin, frac, heaviside, hypot, is_complex,
                           is_floating_point, is_nonzero, isneginf, isposinf, isreal, lgamma,
                           logaddexp, logaddexp2, logit, nan_to_num, nanmean, nansum, not_equal,
                           polygamma, rad2deg, sgn, signbit, sinc, sinh, xlogy)
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
from .runtime.compiled import CompiledFunction, compile  # noqa: A004
from .runtime.log import configure as _configure_log

from . import autograd, cuda, distributed, ir  # noqa: E402

half, float, double, long, int, short = float16, float32, float64, int64, int32, int16  # noqa: A001
dtype = DType
newaxis = None  # math API: torch.newaxis (inf, nan, pi, e come from math above)
__version__ = "0.1.0"


def is_tensor(obj) -> bool:
    return isinstance(obj, Tensor)


def numel(t) -> int:
    return t.numel()


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

from . import data, nn, optim, testing, utils  # noqa: E402, F401
from . import distributions  # noqa: E402, F401
from .nn.modules.compiled import CompiledModule  # noqa: E402, F401

# -- PyTorch's runtime names: legacy constructors, random sampling, accelerator, backends ------
from . import accelerator, backends  # noqa: E402, F401
from .frontend.creation import (get_default_dtype, get_rng_state, initial_seed,  # noqa: E402, F401
                                set_default_dtype, set_rng_state)
from .frontend.runtime_config import (get_float32_matmul_precision,  # noqa: E402, F401
                                      get_num_interop_threads, get_num_threads,
                                      set_float32_matmul_precision, set_num_interop_threads,
                                      set_num_threads)
from .frontend.legacy import LEGACY as _LEGACY  # noqa: E402
from .frontend.random_ops import multinomial, normal, randperm  # noqa: E402, F401
from . import amp, cpu, special  # noqa: E402, F401
from .frontend.autocast import (autocast, clear_autocast_cache,  # noqa: E402, F401
                                get_autocast_cpu_dtype, get_autocast_dtype,
                                get_autocast_gpu_dtype, is_autocast_cache_enabled,
                                is_autocast_cpu_enabled, is_autocast_enabled,
                                set_autocast_cache_enabled, set_autocast_dtype,
                                set_autocast_enabled)

globals().update(_LEGACY)  # FloatTensor, LongTensor, ... (Note [Legacy constructors])

from . import compiler  # noqa: E402
from .frontend.tensor import set_printoptions  # noqa: E402, F401

_dynamo = compiler  # torch._dynamo.reset()
import sys as _sys  # noqa: E402

_sys.modules[__name__ + "._dynamo"] = compiler
_DETERMINISTIC = [False]


def use_deterministic_algorithms(mode: bool, *, warn_only: bool = False) -> None:
    """Recorded for are_deterministic_algorithms_enabled(): XLA's CPU kernels are deterministic;
    on GPU, set XLA_FLAGS=--xla_gpu_deterministic_ops=true before gcomp starts for bitwise
    reproducible scatters and reductions."""
    _DETERMINISTIC[0] = True if mode else False  # (bool is gcomp.bool here, the dtype)


def are_deterministic_algorithms_enabled() -> bool:
    return _DETERMINISTIC[0]
from .bench import benchmark  # noqa: E402, F401
from .runtime.aot import Compiled, Loaded, Lowered, Spec  # noqa: E402, F401
from .runtime.cache import config  # noqa: E402, F401
from .serialization import load_state, save  # noqa: E402, F401


def load(f, map_location=None, pickle_module=None, *, weights_only=None, mmap=None, **options):
    """What ``f`` (a path or a binary file object) holds, by its content: a saved program
    (``Compiled.save``, Note [Artifacts] in gcomp/runtime/aot.py) as a callable ``gcomp.Loaded``;
    else, like ``torch.load``, what ``gcomp.save`` or ``torch.save`` wrote (tensors, state dicts,
    checkpoint dicts; Note [Reading torch.save files] in gcomp/serialization.py), with tensors
    moved to ``map_location`` if given. A pickled object (``gcomp.save(model)``) loads only with
    ``weights_only=False``. ``options`` go to the artifact loader (``use_executable=False``)."""
    import os
    import zipfile

    from .runtime import aot
    from .serialization import _STRUCTURE, _is_torch_zip, load_any, map_location_device

    where = getattr(f, "name", "the file") if hasattr(f, "read") else os.fspath(f)
    if not hasattr(f, "read") and not os.path.exists(where):
        raise GcompError(f"gcomp.load: no such file: {where}")
    try:
        with zipfile.ZipFile(f) as z:
            names = z.namelist()
        is_state = f"{_STRUCTURE}.npy" in names or _is_torch_zip(names) is not None
    except (OSError, zipfile.BadZipFile):
        is_state = False
    if hasattr(f, "seek"):
        f.seek(0)
    if is_state:
        return load_any(f, map_location_device(map_location), weights_only, where)
    return aot.load(f, **options)  # an artifact, or the error that says what the file is not


from .runtime import cache as _cache  # noqa: E402

_cache.from_env()  # GCOMP_CACHE_DIR (Note [Persistent cache] in gcomp/runtime/cache.py)

# -- scatter / index / shape helpers and linear algebra (scatter-index-linalg work) ----------
from .frontend.shape_ops import (index_add, index_copy, index_fill, index_put,  # noqa: E402
                                 masked_fill, masked_scatter, put, scatter, scatter_add,
                                 scatter_reduce)
# -- end scatter-index-linalg block --
from .frontend.shape_ops import (argwhere, atleast_1d, atleast_2d, atleast_3d,  # noqa: E402
                                 block_diag, broadcast_shapes, broadcast_tensors, cartesian_prod,
                                 column_stack, combinations, diag, diag_embed, diagflat, diagonal,
                                 dsplit, dstack, fliplr, flipud, hsplit, hstack, meshgrid,
                                 moveaxis, movedim, ravel, repeat_interleave, rot90, row_stack,
                                 select, select_scatter, slice_scatter, swapdims, tensor_split,
                                 tile, trace, tril_indices, triu_indices, unravel_index, vsplit,
                                 vstack)
# -- end scatter-index-linalg block (2) --
from . import linalg  # noqa: E402
from .linalg.legacy import (cholesky, det, inverse, logdet, matrix_power,  # noqa: E402
                            pinverse, qr, slogdet, svd)
from .linalg.products import (addbmm, addmm, addmv, addr, baddbmm, cdist,  # noqa: E402
                              chain_matmul, cross, diff, ger, inner, kron, tensordot, vdot)
# -- end scatter-index-linalg block (3) --

# -- sorting, selection and cumulative ops (frontend/sorting.py) ------------------------------
from .frontend.sorting import (argsort, bincount, bucketize, cummax, cummin,  # noqa: E402
                               cumprod, histc, kthvalue, logcumsumexp, median, mode, msort,
                               nanmedian, nanquantile, quantile, searchsorted, sort, topk, unique,
                               unique_consecutive)
# -- end sorting block --

# out= for the torch namespace's tensor functions (gcomp/frontend/out.py); keep this last, after
# every export
from .frontend.out import wrap_namespace as _wrap_out  # noqa: E402

_wrap_out(globals())
