"""Attention: scaled_dot_product_attention and multi_head_attention_forward, in gcomp ops.

Heads stay a dimension of their own: projections are reshaped to (batch, heads, length,
head_dim) and every contraction is one dot_general with batch dimensions, so nothing is flattened
into PyTorch's (batch * heads, ...) layout and back. Masks are PyTorch's: for
scaled_dot_product_attention a bool mask is True where attention is allowed; for multi-head
attention a bool attn_mask or key_padding_mask is True where it is not. Float masks are added to
the scores.
"""

from __future__ import annotations

import math

import gcomp
from gcomp import GcompError, Tensor
from gcomp.core import prims as P
from gcomp.frontend.autocast import lower_precision

__all__ = ["scaled_dot_product_attention", "multi_head_attention_forward"]


def _scores(q, k, scale):
    """(..., L, E) x (..., S, E) -> (..., L, S), q scaled first (as PyTorch does)."""
    if scale != 1.0:
        q = q * scale
    if q.ndim == k.ndim and q.shape[:-2] == k.shape[:-2]:
        nb = q.ndim - 2
        return P.dot_general(q, k, contract=((nb + 1, nb + 1),),
                             batch=tuple((i, i) for i in range(nb)))
    return gcomp.matmul(q, k.transpose(-2, -1))


def _causal_mask(length, source):
    """Bool (L, S), True on and below the diagonal: what may be attended."""
    return gcomp.ones(length, source, dtype=gcomp.bool).tril()


def _apply_mask(scores, mask, allowed_when_true):
    """Add a float mask, or set -inf where a bool mask forbids attention."""
    if mask is None:
        return scores
    if mask.dtype == gcomp.bool:
        keep = mask if allowed_when_true else mask.logical_not()
        return gcomp.where(keep, scores, -math.inf)
    if not mask.dtype.is_floating_point:
        raise GcompError(f"attention masks must be bool or floating point, got {mask.dtype.name}")
    return scores + mask


def _softmax_dropout_matmul(scores, v, dropout_p, training=True):
    from . import _activation

    weights = _activation.softmax(scores, -1)
    if dropout_p > 0.0 and training:
        from . import dropout

        weights = dropout(weights, dropout_p, True)
    if weights.ndim == v.ndim and weights.shape[:-2] == v.shape[:-2]:
        nb = v.ndim - 2
        out = P.dot_general(weights, v, contract=((nb + 1, nb),),
                            batch=tuple((i, i) for i in range(nb)))
    else:
        out = gcomp.matmul(weights, v)
    return out, weights


@lower_precision
def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0,
                                 is_causal=False, scale=None, enable_gqa=False) -> Tensor:
    """softmax(q k^T * scale + mask) v over the last two dims (torch's math definition).

    A bool ``attn_mask`` is True where attention is allowed; a float one is added. ``is_causal``
    masks above the diagonal (aligned top-left, as in PyTorch) and excludes ``attn_mask``."""
    if query.ndim < 2 or key.ndim < 2 or value.ndim < 2:
        raise GcompError("scaled_dot_product_attention: query, key and value need at least 2 "
                         "dims (..., length, features)")
    if query.shape[-1] != key.shape[-1] or key.shape[-2] != value.shape[-2]:
        raise GcompError(f"scaled_dot_product_attention: query {list(query.shape)}, key "
                         f"{list(key.shape)} and value {list(value.shape)} do not fit (query and "
                         "key share the feature size, key and value the length)")
    if enable_gqa and query.ndim >= 3 and query.shape[-3] != key.shape[-3]:
        groups = query.shape[-3] // key.shape[-3]
        key = _repeat_heads(key, groups)
        value = _repeat_heads(value, groups)
    if scale is None:
        scale = 1.0 / math.sqrt(query.shape[-1])
    scores = _scores(query, key, scale)
    if is_causal:
        if attn_mask is not None:
            raise GcompError("scaled_dot_product_attention: pass either attn_mask or "
                             "is_causal=True, not both")
        attn_mask = _causal_mask(query.shape[-2], key.shape[-2])
    scores = _apply_mask(scores, attn_mask, allowed_when_true=True)
    return _softmax_dropout_matmul(scores, value, dropout_p)[0]


def _repeat_heads(x, groups):
    """(..., Hk, S, E) -> (..., Hk * groups, S, E), each head repeated ``groups`` times."""
    shape = tuple(x.shape)
    y = gcomp.broadcast_to(x.unsqueeze(-3), shape[:-2] + (groups,) + shape[-2:])
    return y.reshape(shape[:-3] + (shape[-3] * groups,) + shape[-2:])


def _float_mask(mask, name):
    """An MHA mask (bool True = masked out) as an additive float mask."""
    if mask is None or mask.dtype.is_floating_point:
        return mask
    if mask.dtype != gcomp.bool:
        raise GcompError(f"only bool and floating types of {name} are supported")
    return gcomp.where(mask, -math.inf, 0.0)


def multi_head_attention_forward(query, key, value, embed_dim_to_check, num_heads,
                                 in_proj_weight, in_proj_bias, bias_k, bias_v, add_zero_attn,
                                 dropout_p, out_proj_weight, out_proj_bias, training=True,
                                 key_padding_mask=None, need_weights=True, attn_mask=None,
                                 use_separate_proj_weight=False, q_proj_weight=None,
                                 k_proj_weight=None, v_proj_weight=None, static_k=None,
                                 static_v=None, average_attn_weights=True, is_causal=False,
                                 batch_first=False):
    """torch.nn.functional.multi_head_attention_forward. Inputs are (L, N, E), or (N, L, E) with
    the gcomp-only ``batch_first=True`` (which saves the transposes), or unbatched (L, E).

    Returns (output, weights): weights (N, L, S) averaged over heads, (N, H, L, S) otherwise, or
    None when ``need_weights`` is False."""
    if bias_k is not None or bias_v is not None:
        raise GcompError("multi_head_attention_forward: bias_k/bias_v (add_bias_kv=True) are not "
                         "supported by gcomp")
    if static_k is not None or static_v is not None:
        raise GcompError("multi_head_attention_forward: static_k/static_v are not supported by "
                         "gcomp")
    from ._linear import linear

    batched = query.ndim == 3
    if query.ndim not in (2, 3) or key.ndim != query.ndim or value.ndim != query.ndim:
        raise GcompError(f"query, key and value must all be 2-D (unbatched) or 3-D (batched); "
                         f"got {query.ndim}-D, {key.ndim}-D and {value.ndim}-D")
    self_attention = query is key and key is value
    if not batched:  # one batch element, in whichever layout
        batch_first = True
        query, key, value = query.unsqueeze(0), key.unsqueeze(0), value.unsqueeze(0)
        if key_padding_mask is not None:
            key_padding_mask = key_padding_mask.unsqueeze(0)
    n_dim, l_dim = (0, 1) if batch_first else (1, 0)
    batch, tgt_len, embed_dim = query.shape[n_dim], query.shape[l_dim], query.shape[2]
    src_len = key.shape[l_dim]
    if embed_dim != embed_dim_to_check:
        raise GcompError(f"was expecting embedding dimension of {embed_dim_to_check}, but got "
                         f"{embed_dim}")
    head_dim = embed_dim // num_heads
    if head_dim * num_heads != embed_dim:
        raise GcompError(f"embed_dim {embed_dim} not divisible by num_heads {num_heads}")
    if key.shape[:2] != value.shape[:2]:
        raise GcompError(f"key shape {list(key.shape)} does not match value shape "
                         f"{list(value.shape)}")
    if is_causal and attn_mask is None:
        raise GcompError("Need attn_mask if specifying the is_causal hint. You may use the "
                         "Transformer module method `generate_square_subsequent_mask` to create "
                         "this mask.")

    # projections
    b_q = b_k = b_v = None
    if in_proj_bias is not None:
        b_q, b_k, b_v = in_proj_bias.split(embed_dim)
    if not use_separate_proj_weight:
        if self_attention:
            q, k, v = linear(query, in_proj_weight, in_proj_bias).split(embed_dim, -1)
        else:
            w_q, w_k, w_v = in_proj_weight.split(embed_dim)
            q, k, v = linear(query, w_q, b_q), linear(key, w_k, b_k), linear(value, w_v, b_v)
    else:
        if q_proj_weight is None or k_proj_weight is None or v_proj_weight is None:
            raise GcompError("use_separate_proj_weight=True needs q_proj_weight, k_proj_weight "
                             "and v_proj_weight")
        q = linear(query, q_proj_weight, b_q)
        k = linear(key, k_proj_weight, b_k)
        v = linear(value, v_proj_weight, b_v)

    def heads(x, length):  # -> (N, H, length, head_dim)
        x = x.reshape(x.shape[0], x.shape[1], num_heads, head_dim)
        return x.permute(0, 2, 1, 3) if batch_first else x.permute(1, 2, 0, 3)

    q, k, v = heads(q, tgt_len), heads(k, src_len), heads(v, src_len)

    # masks, merged into one additive mask broadcastable to (N, H, L, S)
    mask = _float_mask(attn_mask, "attn_mask")
    if mask is not None:
        if mask.ndim == 2:
            if tuple(mask.shape) != (tgt_len, src_len):
                raise GcompError(f"The shape of the 2D attn_mask is {list(mask.shape)}, but "
                                 f"should be {[tgt_len, src_len]}.")
        elif mask.ndim == 3:
            want = (batch * num_heads, tgt_len, src_len) if batched else \
                (num_heads, tgt_len, src_len)
            if tuple(mask.shape) != want:
                raise GcompError(f"The shape of the 3D attn_mask is {list(mask.shape)}, but "
                                 f"should be {list(want)}.")
            mask = mask.reshape(batch, num_heads, tgt_len, src_len)
        else:
            raise GcompError(f"attn_mask's dimension {mask.ndim} is not supported")
    kpm = _float_mask(key_padding_mask, "key_padding_mask")
    if kpm is not None:
        if tuple(kpm.shape) != (batch, src_len):
            raise GcompError(f"expecting key_padding_mask shape of {[batch, src_len]}, but got "
                             f"{list(kpm.shape)}")
        kpm = kpm.reshape(batch, 1, 1, src_len)
        mask = kpm if mask is None else mask + kpm
    if add_zero_attn:
        zeros = gcomp.zeros(batch, num_heads, 1, head_dim, dtype=k.dtype)
        k, v = gcomp.cat([k, zeros], 2), gcomp.cat([v, zeros], 2)
        if mask is not None:
            pad = gcomp.zeros(*mask.shape[:-1], 1, dtype=mask.dtype)
            mask = gcomp.cat([mask, pad], -1)
        src_len += 1

    scores = _scores(q, k, 1.0 / math.sqrt(head_dim))
    if mask is not None:
        scores = scores + mask
    out, weights = _softmax_dropout_matmul(scores, v, dropout_p, training)
    # (N, H, L, hd) -> (N, L, E) or (L, N, E)
    out = out.permute(0, 2, 1, 3) if batch_first else out.permute(2, 0, 1, 3)
    out = linear(out.reshape(out.shape[0], out.shape[1], embed_dim), out_proj_weight,
                 out_proj_bias)
    if not batched:
        out = out.squeeze(0)
    if not need_weights:
        return out, None
    if average_attn_weights:
        weights = weights.mean(1)
    if not batched:
        weights = weights.squeeze(0)
    return out, weights
