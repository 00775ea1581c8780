"""convolution: N-d, layout (N, C, *spatial) x (O, I/groups, *kernel) -> (N, O, *spatial)."""

from __future__ import annotations

from ..errors import ShapeError
from ..types import TensorType
from . import declare, same_dtype
from .linalg import accumulate_dtype

# how the lowering computes a convolution (passes/conv_choice.py, lowering/conv.py)
ALGORITHMS = ("xla", "im2col", "kn2row")


def conv_out_size(n, k, stride, lo, hi, lhs_dil, rhs_dil):
    if min(stride, lhs_dil, rhs_dil) < 1:
        raise ShapeError(f"strides and dilations must be >= 1, got stride {stride}, dilations "
                         f"{lhs_dil} and {rhs_dil}")
    n_dil = (n - 1) * lhs_dil + 1 if n > 0 else 0
    k_dil = (k - 1) * rhs_dil + 1
    span = n_dil + lo + hi - k_dil
    return span // stride + 1 if span >= 0 else 0


@declare("convolution", "conv", 2,
         {"stride": "ints", "padding": "int_pairs", "lhs_dilation": "ints",
          "rhs_dilation": "ints", "groups": "int", "batch_groups": "int", "accumulate": "str",
          "algorithm": "str"},
         {"groups": 1, "batch_groups": 1, "accumulate": "", "algorithm": "xla"})
def _convolution(types, stride, padding, lhs_dilation, rhs_dilation, groups, batch_groups,
                 accumulate, algorithm):
    """lax.conv_general_dilated in NC*/OI* layout; ``groups`` is feature_group_count;
    ``accumulate`` as dot_general's (Note [Accumulation dtype] in linalg.py); ``algorithm`` how
    the lowering computes it, "xla", "im2col" or "kn2row" (Note [im2col lowering] in
    lowering/conv.py)."""
    x, w = types
    if algorithm not in ALGORITHMS:
        raise ShapeError(f"convolution: algorithm must be one of {', '.join(ALGORITHMS)}, got "
                         f"{algorithm!r}")
    dtype = accumulate_dtype("convolution", same_dtype("convolution", types), accumulate)
    nsp = x.ndim - 2
    if nsp < 1 or w.ndim != x.ndim:
        raise ShapeError(f"convolution: need (N, C, *spatial) and (O, I, *kernel), got {x} and {w}")
    for name, v in (("stride", stride), ("padding", padding), ("lhs_dilation", lhs_dilation),
                    ("rhs_dilation", rhs_dilation)):
        if len(v) != nsp:
            raise ShapeError(f"convolution: {name} needs {nsp} entries, got {list(v)}")
    n, c = x.shape[:2]
    o, i = w.shape[:2]
    if groups < 1 or batch_groups < 1:
        raise ShapeError(f"convolution: groups and batch_groups must be >= 1, got {groups} and "
                         f"{batch_groups}")
    if c != i * groups:
        raise ShapeError(f"convolution: input has {c} channels but weight expects {i}x{groups} "
                         "groups")
    if o % groups or o % batch_groups or n % batch_groups:
        raise ShapeError(f"convolution: {o} output channels not divisible by the groups")
    spatial = [conv_out_size(x.shape[2 + d], w.shape[2 + d], stride[d], *padding[d],
                             lhs_dilation[d], rhs_dilation[d]) for d in range(nsp)]
    return [TensorType((n // batch_groups, o, *spatial), dtype)]
