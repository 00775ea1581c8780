"""VJP of convolution (following jax's _conv_general_dilated_transpose_lhs/rhs, in NC*/OI*).

With an ``accumulate`` dtype (Note [Accumulation dtype] in ir/ops/linalg.py) the cotangent is cast
to the operands' dtype, both transposed convolutions accumulate like the node, and their results
are cast back to the operands' dtype (as dot_general's VJP in linalg.py does).
"""

from __future__ import annotations

from ..core import prims as P
from ..core.autograd import needs_input_grad
from ..ir.errors import GcompError
from . import defvjp


def _dilate(n, d):
    return 0 if n == 0 else 1 + d * (n - 1)


def _lhs_padding(in_sp, k_sp, stride, out_sp, padding, lhs_dil, rhs_dil):
    pads = []
    for n, k, s, o, (lo, _), ld, rd in zip(in_sp, k_sp, stride, out_sp, padding, lhs_dil, rhs_dil):
        before = _dilate(k, rd) - lo - 1
        after = _dilate(n, ld) + _dilate(k, rd) - 1 - _dilate(o, s) - before
        pads.append((before, after))
    return tuple(pads)


def _rhs_padding(in_sp, k_sp, stride, out_sp, padding, lhs_dil, rhs_dil):
    pads = []
    for n, k, s, o, (lo, _), ld, rd in zip(in_sp, k_sp, stride, out_sp, padding, lhs_dil, rhs_dil):
        hi = (_dilate(o, s) - _dilate(n, ld)) + (_dilate(k, rd) - lo - 1)
        pads.append((lo, hi))
    return tuple(pads)


def _swap01(t):
    nd = len(t._type.shape)
    return P.transpose(t, perm=(1, 0, *range(2, nd)))


@defvjp("convolution")
def _convolution(cts, inputs, outputs, stride, padding, lhs_dilation, rhs_dilation, groups,
                 batch_groups, accumulate="", algorithm="xla"):
    # ``algorithm`` is how the node is computed, not what: the gradient's convolutions get theirs
    # from the conv_choice pass, by their own shapes (Note [Choosing a convolution algorithm]).
    (g,), (x, w) = cts, inputs
    if accumulate:
        g = P.cast(g, dtype=x._type.dtype)
    if batch_groups != 1:
        raise GcompError("differentiating a batch-grouped convolution (the weight gradient of a "
                         "convolution) is not supported: third derivatives of conv layers")
    xs, ws, gs = x._type.shape, w._type.shape, g._type.shape
    nsp = len(xs) - 2
    sp = tuple(range(2, 2 + nsp))
    o, i = ws[0], ws[1]
    gx = _input_grad(g, w, xs, ws, gs, nsp, sp, o, i, stride, padding, lhs_dilation,
                     rhs_dilation, groups, accumulate) if needs_input_grad(0) else None
    if not needs_input_grad(1):
        return [gx, None]
    # d/dw: correlate the input with the cotangent, batch as features, groups as batch groups.
    pad_w = _rhs_padding(xs[2:], ws[2:], stride, gs[2:], padding, lhs_dilation, rhs_dilation)
    gw = P.convolution(_swap01(x), _swap01(g), stride=tuple(rhs_dilation), padding=pad_w,
                       lhs_dilation=tuple(lhs_dilation), rhs_dilation=tuple(stride),
                       groups=1, batch_groups=groups, accumulate=accumulate)
    gw = _swap01(P.cast(gw, dtype=w._type.dtype) if accumulate else gw)
    if gw._type.shape != ws:  # strides that skip trailing input rows leave extra taps: crop
        gw = P.slice(gw, start=(0,) * len(ws), limit=ws, stride=(1,) * len(ws))
    return [gx, gw]


def _input_grad(g, w, xs, ws, gs, nsp, sp, o, i, stride, padding, lhs_dilation, rhs_dilation,
                groups, accumulate=""):
    # d/dx: a transposed convolution with the flipped kernel, channels swapped within groups.
    wt = P.reshape(w, shape=(groups, o // groups, i, *ws[2:]))
    wt = P.transpose(wt, perm=(0, 2, 1, *range(3, 3 + nsp)))
    wt = P.reshape(wt, shape=(groups * i, o // groups, *ws[2:]))
    wt = P.rev(wt, dims=sp)
    pad_x = _lhs_padding(xs[2:], ws[2:], stride, gs[2:], padding, lhs_dilation, rhs_dilation)
    gx = P.convolution(g, wt, stride=tuple(lhs_dilation), padding=pad_x, lhs_dilation=tuple(stride),
                       rhs_dilation=tuple(rhs_dilation), groups=groups, accumulate=accumulate)
    if accumulate:
        gx = P.cast(gx, dtype=w._type.dtype)
    if gx._type.shape != xs:
        gx = P.pad(gx, low=(0,) * len(xs), high=tuple(a - b for a, b in zip(xs, gx._type.shape)),
                   interior=(0,) * len(xs))
    return gx
