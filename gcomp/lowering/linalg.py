"""jax rule for dot_general."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax import lax

from ..ir.types import dtype_from_name
from . import lowers, to_jax_dtype


def result_dtype(x, accumulate: str):
    """lax's preferred_element_type for ``accumulate`` (Note [Accumulation dtype] in
    ir/ops/linalg.py): the operands' dtype unless it names another."""
    return to_jax_dtype(dtype_from_name(accumulate)) if accumulate else x.dtype


# Note [Narrow contractions on CPU]
# ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
# A bf16 or f16 dot_general or convolution without an ``accumulate`` attribute (autocast's, or a
# model cast to bfloat16) gives a result of the operands' dtype. On CPU XLA computes such a dot
# about 2x slower than the same dot with float32 accumulation (measured: a 1024x400 @ 400x120
# bf16 dot 0.90 ms, with preferred_element_type=f32 0.52 ms, f32 0.43 ms), and its result differs
# by up to one bf16 ulp from the correctly accumulated one. So on CPU the lowering accumulates
# in float32 and rounds the result once, which is what torch's CPU kernels do; the IR type is
# unchanged. Other backends accumulate 16-bit products in float32 in their matrix units
# already and keep XLA's own lowering.
def accumulation(x, accumulate: str):
    """(the dtype to accumulate in, the result's dtype) of a contraction of ``x``'s dtype."""
    out = result_dtype(x, accumulate)
    if not accumulate and out in _NARROW and _on_cpu():
        return np.float32, out
    return out, out


def _on_cpu() -> bool:
    import jax

    return jax.default_backend() == "cpu"


_NARROW = (jnp.bfloat16, jnp.float16)


@lowers("dot_general")
def _dot_general(x, y, contract, batch, accumulate=""):
    dnums = ((tuple(a for a, _ in contract), tuple(b for _, b in contract)),
             (tuple(a for a, _ in batch), tuple(b for _, b in batch)))
    acc, out = accumulation(x, accumulate)
    r = lax.dot_general(x, y, dnums, precision=lax.Precision.HIGHEST, preferred_element_type=acc)
    return r if acc == out else r.astype(out)


# -- decompositions (Note [Packed results] in ir/ops/linalg.py) ----------------------------------
def _packed(batch, *xs):
    import jax.numpy as jnp

    return jnp.concatenate([x.reshape(batch + (-1,)) for x in xs], axis=-1)


def _column_signs(x):
    """+1 or -1 per column of x [..., m, k]: the sign of the column's largest-magnitude entry
    (the first of ties), so that flipping by it makes that entry positive."""
    import jax.numpy as jnp

    big = jnp.argmax(jnp.abs(x), axis=-2)
    s = jnp.sign(jnp.take_along_axis(x, big[..., None, :], axis=-2))[..., 0, :]
    return jnp.where(s == 0, 1, s).astype(x.dtype)


@lowers("linalg_solve")
def _linalg_solve(a, b):
    import jax.numpy as jnp

    return jnp.linalg.solve(a, b)


@lowers("slogdet")
def _slogdet(a):
    import jax.numpy as jnp

    sign, logabs = jnp.linalg.slogdet(a)
    return jnp.stack([sign.astype(a.dtype), logabs.astype(a.dtype)], axis=-1)


@lowers("cholesky")
def _cholesky(a):
    return lax.linalg.cholesky(a, symmetrize_input=False)


@lowers("eigh")
def _eigh(a):
    v, w = lax.linalg.eigh(a, lower=True, symmetrize_input=False)
    return _packed(a.shape[:-2], w, v * _column_signs(v)[..., None, :])


@lowers("svd")
def _svd(a, full_matrices=False):
    import jax.numpy as jnp

    u, s, vh = jnp.linalg.svd(a, full_matrices=full_matrices)
    v = jnp.swapaxes(vh, -1, -2)
    k = s.shape[-1]
    flip = _column_signs(u[..., :k])[..., None, :]
    u = jnp.concatenate([u[..., :k] * flip, u[..., k:] * _column_signs(u[..., k:])[..., None, :]],
                        axis=-1)
    v = jnp.concatenate([v[..., :k] * flip, v[..., k:] * _column_signs(v[..., k:])[..., None, :]],
                        axis=-1)
    return _packed(a.shape[:-2], u, s, v)


@lowers("qr")
def _qr(a):
    import jax.numpy as jnp

    q, r = jnp.linalg.qr(a, mode="reduced")
    d = jnp.sign(jnp.diagonal(r, axis1=-2, axis2=-1))
    d = jnp.where(d == 0, 1, d).astype(a.dtype)
    return _packed(a.shape[:-2], q * d[..., None, :], r * d[..., :, None])
