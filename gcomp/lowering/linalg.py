"""jax rule for dot_general."""

from __future__ import annotations

from jax import lax

from ..ir.types import dtype_from_name
from . import lowers, to_jax_dtype


def result_dtype(x, accumulate: str):
    """lax's preferred_element_type for ``accumulate`` (Note [Accumulation dtype] in
    ir/ops/linalg.py): the operands' dtype unless it names another."""
    return to_jax_dtype(dtype_from_name(accumulate)) if accumulate else x.dtype


@lowers("dot_general")
def _dot_general(x, y, contract, batch, accumulate=""):
    dnums = ((tuple(a for a, _ in contract), tuple(b for _, b in contract)),
             (tuple(a for a, _ in batch), tuple(b for _, b in batch)))
    return lax.dot_general(x, y, dnums, precision=lax.Precision.HIGHEST,
                           preferred_element_type=result_dtype(x, accumulate))


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
