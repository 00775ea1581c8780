"""nn.MultiheadAttention with PyTorch's parameters (in_proj_weight, in_proj_bias, out_proj, or
q/k/v_proj_weight when kdim/vdim differ from embed_dim). The math is
gcomp.nn.functional.multi_head_attention_forward."""

from __future__ import annotations

import math

import gcomp
from gcomp import GcompError

from ..functional import _attention
from ..parameter import Parameter
from .module import Module

__all__ = ["MultiheadAttention"]


_OUT_PROJ_CLASS = []


def _out_proj_class():
    """torch's NonDynamicallyQuantizableLinear: a plain Linear under its own name (made on first
    use, so that this file imports before linear.py does)."""
    if not _OUT_PROJ_CLASS:
        from .linear import Linear

        _OUT_PROJ_CLASS.append(type("NonDynamicallyQuantizableLinear", (Linear,),
                                    {"__module__": __name__}))
    return _OUT_PROJ_CLASS[0]


def _xavier_uniform(shape, dtype):
    fan_out, fan_in = shape
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    p = Parameter(gcomp.empty(*shape, dtype=dtype or gcomp.get_default_dtype()))
    p.uniform_(-bound, bound)
    return p


class MultiheadAttention(Module):
    """Attention over ``num_heads`` heads of embed_dim / num_heads features each
    (torch.nn.MultiheadAttention).

    forward(query, key, value) takes (L, N, E) inputs, (N, L, E) with batch_first, or unbatched
    (L, E), and returns (output, weights); weights are averaged over heads unless
    ``average_attn_weights=False``, and None when ``need_weights=False``."""

    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True, add_bias_kv=False,
                 add_zero_attn=False, kdim=None, vdim=None, batch_first=False, device=None,
                 dtype=None):
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0:
            raise GcompError(f"embed_dim and num_heads must be greater than 0, got "
                             f"embed_dim={embed_dim} and num_heads={num_heads} instead")
        if add_bias_kv:
            raise GcompError("MultiheadAttention(add_bias_kv=True) is not supported by gcomp; "
                             "use add_bias_kv=False")
        if embed_dim // num_heads * num_heads != embed_dim:
            raise GcompError("embed_dim must be divisible by num_heads")
        self.embed_dim = embed_dim
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.num_heads = num_heads
        self.dropout = dropout
        self.batch_first = batch_first
        self.head_dim = embed_dim // num_heads
        if not self._qkv_same_embed_dim:
            self.q_proj_weight = _xavier_uniform((embed_dim, embed_dim), dtype)
            self.k_proj_weight = _xavier_uniform((embed_dim, self.kdim), dtype)
            self.v_proj_weight = _xavier_uniform((embed_dim, self.vdim), dtype)
            self.register_parameter("in_proj_weight", None)
        else:
            self.in_proj_weight = _xavier_uniform((3 * embed_dim, embed_dim), dtype)
            self.register_parameter("q_proj_weight", None)
            self.register_parameter("k_proj_weight", None)
            self.register_parameter("v_proj_weight", None)
        if bias:
            self.in_proj_bias = Parameter(gcomp.zeros(3 * embed_dim,
                                                      dtype=dtype or gcomp.get_default_dtype()))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = _out_proj_class()(embed_dim, embed_dim, bias=bias, dtype=dtype)
        if bias:
            with gcomp.no_grad():
                self.out_proj.bias.zero_()
        self.bias_k = self.bias_v = None
        self.add_zero_attn = add_zero_attn

    def forward(self, query, key, value, key_padding_mask=None, need_weights=True,
                attn_mask=None, average_attn_weights=True, is_causal=False):
        return _attention.multi_head_attention_forward(
            query, key, value, self.embed_dim, self.num_heads, self.in_proj_weight,
            self.in_proj_bias, None, None, self.add_zero_attn,
            self.dropout, self.out_proj.weight, self.out_proj.bias, training=self.training,
            key_padding_mask=key_padding_mask, need_weights=need_weights, attn_mask=attn_mask,
            use_separate_proj_weight=not self._qkv_same_embed_dim,
            q_proj_weight=self.q_proj_weight, k_proj_weight=self.k_proj_weight,
            v_proj_weight=self.v_proj_weight, average_attn_weights=average_attn_weights,
            is_causal=is_causal, batch_first=self.batch_first)
