"""jax rules for shape ops."""

from __future__ import annotations

import numpy as np
from jax import lax

from . import lowers


@lowers("reshape")
def _reshape(x, shape):
    return lax.reshape(x, tuple(shape))


@lowers("broadcast")
def _broadcast(x, shape, dims):
    return lax.broadcast_in_dim(x, tuple(shape), tuple(dims))


@lowers("transpose")
def _transpose(x, perm):
    return lax.transpose(x, tuple(perm))


@lowers("slice")
def _slice(x, start, limit, stride):
    return lax.slice(x, tuple(start), tuple(limit), tuple(stride))


@lowers("pad")
def _pad(x, low, high, interior, value):
    return lax.pad(x, np.array(value, dtype=x.dtype), tuple(zip(low, high, interior)))


@lowers("concatenate")
def _concatenate(*xs, axis):
    return lax.concatenate(xs, axis)


@lowers("rev")
def _rev(x, dims):
    return lax.rev(x, tuple(dims))


def _take_dnums(x, idx, axis):
    offset_dims = tuple(range(axis)) + tuple(range(axis + idx.ndim, x.ndim - 1 + idx.ndim))
    return lax.GatherDimensionNumbers(offset_dims=offset_dims, collapsed_slice_dims=(axis,),
                                      start_index_map=(axis,))


@lowers("take")
def _take(x, idx, axis):
    dnums = _take_dnums(x, idx, axis)
    slice_sizes = tuple(1 if i == axis else d for i, d in enumerate(x.shape))
    return lax.gather(x, idx[..., None], dnums, slice_sizes, mode=lax.GatherScatterMode.CLIP)


def _scatter_dnums(x, idx, axis):
    update_window_dims = tuple(range(axis)) + tuple(range(axis + idx.ndim, x.ndim - 1 + idx.ndim))
    return lax.ScatterDimensionNumbers(update_window_dims=update_window_dims,
                                       inserted_window_dims=(axis,),
                                       scatter_dims_to_operand_dims=(axis,))


@lowers("scatter_add")
def _scatter_add(x, idx, upd, axis):
    return lax.scatter_add(x, idx[..., None], upd, _scatter_dnums(x, idx, axis),
                           mode=lax.GatherScatterMode.CLIP)


_SCATTERS = {"set": lax.scatter, "mul": lax.scatter_mul, "max": lax.scatter_max,
             "min": lax.scatter_min}


@lowers("scatter")
def _scatter(x, idx, upd, axis, mode):
    return _SCATTERS[mode](x, idx[..., None], upd, _scatter_dnums(x, idx, axis),
                           mode=lax.GatherScatterMode.CLIP)
