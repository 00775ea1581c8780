"""jax lowering rules, one per primitive, in one table shared by eager execution, the reference
interpreter and whole-graph compilation (DESIGN.md rule 1).

A rule is ``rule(*arrays, **attrs) -> array | tuple[array, ...]`` written with ``jax.lax`` and
explicit dtypes. Family modules register theirs with :func:`lowers`.
"""

from __future__ import annotations

import functools

import jax
import numpy as np

# int64 is PyTorch's default integer; dtypes stay explicit
jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import ml_dtypes  # noqa: E402

from ..ir import types as T  # noqa: E402

LOWERINGS: dict[str, callable] = {}

_JAX_DTYPES = {
    T.bool_: np.dtype(np.bool_), T.uint8: np.dtype(np.uint8), T.uint32: np.dtype(np.uint32),
    T.int8: np.dtype(np.int8), T.int16: np.dtype(np.int16), T.int32: np.dtype(np.int32),
    T.int64: np.dtype(np.int64), T.float16: np.dtype(np.float16),
    T.bfloat16: np.dtype(ml_dtypes.bfloat16), T.float32: np.dtype(np.float32),
    T.float64: np.dtype(np.float64),
}
_FROM_JAX = {v: k for k, v in _JAX_DTYPES.items()}


def to_jax_dtype(dtype: T.DType) -> np.dtype:
    return _JAX_DTYPES[dtype]


def from_jax_dtype(dtype) -> T.DType:
    try:
        return _FROM_JAX[np.dtype(dtype)]
    except KeyError:
        from ..ir.errors import GcompError

        raise GcompError(f"gcomp has no dtype for {dtype}; use one of "
                         f"{', '.join(d.name for d in T.ALL_DTYPES)}") from None


def lowers(*names: str):
    """Register ``rule`` as the jax lowering of each primitive in ``names``."""

    def deco(rule):
        for n in names:
            if n in LOWERINGS:
                raise RuntimeError(f"lowering for {n} registered twice")
            LOWERINGS[n] = rule
        return rule

    return deco


def rule_for(op: str):
    try:
        return LOWERINGS[op]
    except KeyError:
        from ..ir.errors import GcompError

        raise GcompError(f"op {op!r} has no lowering rule") from None


@functools.cache
def jitted(op: str, attrs: tuple) -> callable:
    """A cached ``jax.jit`` of one primitive with its attributes bound: the eager fast path."""
    rule = rule_for(op)
    kwargs = dict(attrs)
    return jax.jit(functools.partial(rule, **kwargs))


from . import (  # noqa: E402,F401
    control,
    conv,
    elementwise,
    fused,
    linalg,
    random,
    reduce,
    remat,
    shape,
    sort,
    window,
)

__all__ = ["LOWERINGS", "lowers", "rule_for", "jitted", "to_jax_dtype", "from_jax_dtype", "jnp"]
