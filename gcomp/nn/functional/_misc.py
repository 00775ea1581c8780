"""dropout, embedding, one_hot and pad (torch.nn.functional)."""

from __future__ import annotations

import numpy as np

import gcomp
from gcomp import GcompError, Tensor
from gcomp.core import prims as P

from ._common import NNValueError, expand, full, host_value

__all__ = ["dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout",
           "feature_alpha_dropout", "embedding", "embedding_bag", "one_hot", "pad"]


# -- dropout ------------------------------------------------------------------------------------
def _check_p(p):
    if p < 0.0 or p > 1.0:
        raise NNValueError(f"dropout probability has to be between 0 and 1, but got {p}")


def _dropout_mask(shape, p: float, like: Tensor) -> Tensor:
    """1/(1-p) with probability 1-p, else 0. The bits come from gcomp's global generator (so a
    compiled step draws what the eager step would) and are compared as integers: keep where
    bits < (1-p) 2^32, with no conversion to floats."""
    shape = tuple(shape)
    bits = P.random_bits(gcomp.default_generator.next_key(), shape=shape)
    limit = min(round((1.0 - p) * 2.0**32), 2**32 - 1)
    keep = P.lt(bits, P.full(shape=shape, value=limit, dtype=gcomp.uint32))
    return P.select(keep, P.full(shape=shape, value=1.0 / (1.0 - p), dtype=like.dtype),
                    P.full(shape=shape, value=0.0, dtype=like.dtype))


def _apply_mask(input: Tensor, mask: Tensor, inplace: bool) -> Tensor:
    out = P.mul(input, expand(mask, input._type.shape, range(input.ndim)))
    return input.copy_(out) if inplace else out


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    _check_p(p)
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return _apply_mask(input, full(input, 0.0), inplace)
    return _apply_mask(input, _dropout_mask(input.shape, p, input), inplace)


def _feature_dropout(input, p, training, inplace, batched: bool):
    """Zero whole channels: one draw per (batch, channel), broadcast over the rest."""
    _check_p(p)
    if not training or p == 0.0:
        return input
    keep_dims = 2 if batched else 1
    shape = tuple(input.shape[:keep_dims]) + (1,) * (input.ndim - keep_dims)
    if p == 1.0:
        return _apply_mask(input, full(input, 0.0), inplace)
    return _apply_mask(input, _dropout_mask(shape, p, input), inplace)


def dropout1d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False):
    if input.ndim not in (2, 3):
        raise GcompError(f"dropout1d: Expected 2D or 3D input, but received a {input.ndim}D "
                         "input.")
    return _feature_dropout(input, p, training, inplace, input.ndim == 3)


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False):
    if input.ndim not in (3, 4):
        raise GcompError(f"dropout2d: Expected 3D or 4D input, but received a {input.ndim}D "
                         "input.")
    return _feature_dropout(input, p, training, inplace, True)  # 3-d: (N, C, L) as PyTorch


def dropout3d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False):
    if input.ndim not in (4, 5):
        raise GcompError(f"dropout3d: Expected 4D or 5D input, but received a {input.ndim}D "
                         "input.")
    return _feature_dropout(input, p, training, inplace, input.ndim == 5)


_SELU_ALPHA = 1.7580993408473766  # selu's scale * alpha: the value selu saturates to, negated


def alpha_dropout(input: Tensor, p: float = 0.5, training: bool = False,
                  inplace: bool = False) -> Tensor:
    """Dropout for selu networks (torch's formula): dropped entries are set to selu's negative
    saturation value, then an affine map a x + b restores mean 0 and variance 1."""
    return _alpha_dropout(input, p, training, inplace, tuple(input.shape))


def feature_alpha_dropout(input: Tensor, p: float = 0.5, training: bool = False,
                          inplace: bool = False) -> Tensor:
    """alpha_dropout of whole channels: one draw per (batch, channel)."""
    if input.ndim < 2:
        raise GcompError("Feature dropout requires at least 2 dimensions in the input")
    shape = tuple(input.shape[:2]) + (1,) * (input.ndim - 2)
    return _alpha_dropout(input, p, training, inplace, shape)


def _alpha_dropout(input: Tensor, p, training, inplace, shape) -> Tensor:
    _check_p(p)
    if not training or p == 0.0 or input.numel() == 0:
        return input
    if p == 1.0:
        return _apply_mask(input, full(input, 0.0), inplace)
    bits = P.random_bits(gcomp.default_generator.next_key(), shape=shape)
    keep = P.lt(bits, P.full(shape=shape, value=min(round((1.0 - p) * 2.0**32), 2**32 - 1),
                             dtype=gcomp.uint32))
    a = 1.0 / float(np.sqrt((_SELU_ALPHA**2 * p + 1) * (1 - p)))
    b_keep, b_drop = _SELU_ALPHA * a * p, _SELU_ALPHA * a * p - _SELU_ALPHA * a
    dtype = input.dtype
    mult = P.select(keep, P.full(shape=shape, value=a, dtype=dtype),
                    P.full(shape=shape, value=0.0, dtype=dtype))
    shift = P.select(keep, P.full(shape=shape, value=b_keep, dtype=dtype),
                     P.full(shape=shape, value=b_drop, dtype=dtype))
    dims = tuple(range(input.ndim))
    out = P.add(P.mul(input, expand(mult, tuple(input.shape), dims)),
                expand(shift, tuple(input.shape), dims))
    return input.copy_(out) if inplace else out


# -- embedding ----------------------------------------------------------------------------------
def embedding(input: Tensor, weight: Tensor, padding_idx=None, max_norm=None, norm_type=2.0,
              scale_grad_by_freq=False, sparse=False) -> Tensor:
    """weight[input] as one ``take``. Rows at padding_idx get no gradient (their output goes
    through stop_gradient), as in PyTorch."""
    if input.dtype.is_floating_point or input.dtype == gcomp.bool:
        raise GcompError(f"embedding: indices must be an integer tensor, got {input.dtype.name}")
    if scale_grad_by_freq or sparse:
        raise GcompError("embedding: scale_grad_by_freq and sparse gradients are not supported")
    V = weight.shape[0]
    if padding_idx is not None:
        if not -V <= padding_idx < V:
            raise GcompError("Padding_idx must be within num_embeddings")
        padding_idx %= V
    idx_host = host_value(input)
    if idx_host is not None and idx_host.size:
        if idx_host.min() < 0 or idx_host.max() >= V:
            raise _IndexError("index out of range in self")
    if max_norm is not None:
        _renorm_rows(weight, input, max_norm, norm_type)
    out = P.take(weight, input, axis=0)
    if padding_idx is None or not weight.requires_grad:
        return out
    if idx_host is not None:
        if not (idx_host == padding_idx).any():
            return out
        is_pad = gcomp.tensor(idx_host == padding_idx)
    else:
        is_pad = P.eq(input, full(input, padding_idx))
    with gcomp.no_grad():
        frozen = out.detach()
    return P.select(expand(is_pad, out._type.shape, range(input.ndim)), frozen, out)


class _IndexError(GcompError, IndexError):
    pass


def _renorm_rows(weight: Tensor, input: Tensor, max_norm: float, norm_type: float) -> None:
    """PyTorch's max_norm: rows that input looks up and whose norm exceeds max_norm are scaled
    down to it, in place and without gradient."""
    with gcomp.no_grad():
        w = weight.detach()
        norms = gcomp.norm(w, norm_type, dim=1)
        V = w.shape[0]
        flat = input.reshape(-1)
        hits = P.scatter_add(P.full(shape=(V,), value=0.0, dtype=w.dtype), flat,
                             P.full(shape=tuple(flat.shape), value=1.0, dtype=w.dtype), axis=0)
        factor = gcomp.where((hits > 0) & (norms > max_norm), max_norm / (norms + 1e-7), 1.0)
        weight.copy_(w * factor.to(w.dtype).unsqueeze(1))


def embedding_bag(input: Tensor, weight: Tensor, offsets=None, max_norm=None, norm_type=2,
                  scale_grad_by_freq=False, mode="mean", sparse=False, per_sample_weights=None,
                  include_last_offset=False, padding_idx=None) -> Tensor:
    """Sums, means or maxima of bags of embeddings. input is 2-d (one bag a row) or 1-d with
    ``offsets`` (bag b is input[offsets[b]:offsets[b+1]]). Bags are gathered through a 0/1
    membership matrix (bags x indices, computed with ops so offsets may be traced); entries at
    padding_idx are left out, and an empty bag gives zeros."""
    if input.dtype.is_floating_point or input.dtype == gcomp.bool:
        raise GcompError(f"embedding_bag: indices must be an integer tensor, got "
                         f"{input.dtype.name}")
    if mode not in ("sum", "mean", "max"):
        raise NNValueError(f"mode has to be one of sum, mean or max, got {mode!r}")
    if scale_grad_by_freq or sparse:
        raise GcompError("embedding_bag: scale_grad_by_freq and sparse gradients are not "
                         "supported")
    if per_sample_weights is not None:
        if mode != "sum":
            raise NNValueError(f"embedding_bag: per_sample_weights was not None. "
                               f"per_sample_weights is only supported for mode='sum' (got "
                               f"mode='{mode}'). Please open a feature request on GitHub.")
        if tuple(per_sample_weights.shape) != tuple(input.shape):
            raise NNValueError(f"embedding_bag: If per_sample_weights ({per_sample_weights.shape})"
                               f" is not None, then it must have the same shape as the input "
                               f"({input.shape})")
    V, D = weight.shape
    if padding_idx is not None:
        if not -V <= padding_idx < V:
            raise GcompError("padding_idx must be within the number of embeddings")
        padding_idx %= V
    if input.ndim == 2:
        if offsets is not None:
            raise NNValueError("if input is 2D, then offsets has to be None, as input is treated "
                               "is a mini-batch of fixed length sequences.")
        nbags, bag = input.shape
        flat = input.reshape(-1)
        psw = per_sample_weights.reshape(-1) if per_sample_weights is not None else None
        member = None  # bag b holds entries b*bag .. b*bag+bag-1
    elif input.ndim == 1:
        if offsets is None:
            raise NNValueError("offsets has to be a 1D Tensor but got None")
        if offsets.ndim != 1:
            raise NNValueError("offsets has to be a 1D Tensor")
        flat, psw = input, per_sample_weights
        first = host_value(offsets[:1])
        if first is not None and first.size and first[0] != 0:
            raise NNValueError(f"offsets[0] has to be 0, i.e., the first sequence in the "
                               f"mini-batch has to start from position 0. However, got "
                               f"{int(first[0])}")
        n = flat.shape[0]
        nbags = offsets.shape[0] - (1 if include_last_offset else 0)
        starts = offsets[:nbags]
        if include_last_offset:
            ends = offsets[1:]
        else:
            ends = gcomp.cat([offsets[1:], gcomp.full((1,), n, dtype=offsets.dtype)])
        pos = gcomp.arange(n, dtype=offsets.dtype)
        member = (pos.unsqueeze(0) >= starts.unsqueeze(1)) & (pos.unsqueeze(0) < ends.unsqueeze(1))
    else:
        raise NNValueError(f"input has to be 1D or 2D Tensor, but got Tensor of dimension "
                           f"{input.ndim}")
    if max_norm is not None:
        _renorm_rows(weight, flat, max_norm, norm_type)
    rows = embedding(flat, weight)  # (n, D)
    valid = None if padding_idx is None else flat != padding_idx
    if member is None:  # fixed-size bags: a reshape
        grid = rows.reshape(nbags, bag, D)
        keep = None if valid is None else valid.reshape(nbags, bag)
        w = None if psw is None else psw.reshape(nbags, bag).to(rows.dtype)
    else:
        grid = None
        keep = member if valid is None else member & valid.unsqueeze(0)
        w = None if psw is None else psw.to(rows.dtype).unsqueeze(0)
    if mode == "max":
        if keep is None:
            return grid.amax(1) if bag else gcomp.zeros(nbags, D, dtype=rows.dtype)
        if grid is None:
            grid = rows.unsqueeze(0).expand(nbags, rows.shape[0], D)
        best = gcomp.where(keep.unsqueeze(-1), grid, -float("inf")).amax(1)
        return gcomp.where(keep.any(1).unsqueeze(-1), best, 0.0).to(rows.dtype)
    coef = None if keep is None else keep.to(rows.dtype)
    if w is not None:
        coef = w if coef is None else coef * w
    if grid is None:  # bags of any size: (bags x n) @ (n x D)
        total = gcomp.matmul(coef, rows)
    else:
        total = grid.sum(1) if coef is None else (grid * coef.unsqueeze(-1)).sum(1)
    if mode == "sum":
        return total
    if keep is None:
        return total * (1.0 / bag) if bag else total
    return total / keep.to(rows.dtype).sum(1).clamp(min=1).unsqueeze(-1)


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    if tensor.dtype.is_floating_point or tensor.dtype == gcomp.bool:
        raise GcompError("one_hot is only applicable to index tensor of type LongTensor.")
    h = host_value(tensor)
    if num_classes == -1:
        if h is None:
            raise GcompError("one_hot: num_classes=-1 needs the tensor's values, which are not "
                             "known inside gcomp.compile; pass num_classes")
        num_classes = int(h.max()) + 1 if h.size else 0
    if h is not None and h.size:
        if h.min() < 0:
            raise GcompError("Class values must be non-negative.")
        if h.max() >= num_classes:
            raise GcompError("Class values must be smaller than num_classes.")
    t = tensor if tensor.dtype == gcomp.int64 else P.cast(tensor, dtype=gcomp.int64)
    shape = tuple(t.shape) + (num_classes,)
    classes = P.iota(shape=shape, dim=t.ndim, dtype=gcomp.int64)
    return P.cast(P.eq(expand(t, shape, range(t.ndim)), classes), dtype=gcomp.int64)


# -- pad ----------------------------------------------------------------------------------------
def pad(input: Tensor, pad, mode: str = "constant", value=None) -> Tensor:
    """pad = (last dim's left, right, the dim before's left, right, ...). 'constant' pads (or
    crops, for negative sizes) with value; 'reflect', 'replicate' and 'circular' gather rows
    with one ``take`` per padded dim."""
    pad = [int(p) for p in pad]
    if len(pad) % 2 or len(pad) // 2 > input.ndim:
        raise GcompError(f"Padding length must be divisible by 2 and at most twice the input's "
                         f"dims ({input.ndim}), got {len(pad)}")
    n = len(pad) // 2
    low = [0] * input.ndim
    high = [0] * input.ndim
    for i in range(n):
        d = input.ndim - 1 - i
        low[d], high[d] = pad[2 * i], pad[2 * i + 1]
    if mode == "constant":
        if not any(low) and not any(high):
            return input
        v = 0.0 if value is None else value
        return P.pad(input, low=tuple(low), high=tuple(high), interior=(0,) * input.ndim,
                     value=float(v) if input.dtype.is_floating_point else int(v))
    if value not in (None, 0, 0.0):
        raise GcompError(f"Padding mode \"{mode}\" doesn't take in value argument")
    out = input
    for d in range(input.ndim):
        if low[d] or high[d]:
            out = P.take(out, gcomp.tensor(_pad_index(mode, input.shape[d], low[d], high[d])),
                         axis=d)
    return out


def _pad_index(mode: str, size: int, lo: int, hi: int) -> np.ndarray:
    i = np.arange(-lo, size + hi)
    if mode == "reflect":
        if lo >= size or hi >= size:
            raise GcompError(f"Argument #4: Padding size should be less than the corresponding "
                             f"input dimension, but got: padding ({lo}, {hi}) at dimension of "
                             f"size {size}")
        i = np.abs(i)
        i = np.where(i >= size, 2 * (size - 1) - i, i)
    elif mode == "replicate":
        i = np.clip(i, 0, size - 1)
    elif mode == "circular":
        if lo > size or hi > size:
            raise GcompError("Padding value causes wrapping around more than once.")
        i = np.mod(i, size)
    else:
        raise GcompError(f"Unrecognised padding mode {mode}; use 'constant', 'reflect', "
                         "'replicate' or 'circular'")
    return i.astype(np.int64)

