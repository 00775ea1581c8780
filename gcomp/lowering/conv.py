"""jax rules for convolution (NC*/OI* layout): XLA's convolution, im2col or kn2row.

Note [im2col lowering]
``convolution`` has one meaning (lax.conv_general_dilated in NC*/OI* layout) and three ways to
compute it, picked by its ``algorithm`` attribute (set by the conv_choice pass, Note [Choosing a
convolution algorithm] in passes/conv_choice.py):

- ``"xla"``: ``lax.conv_general_dilated``, which XLA runs as its own convolution (cuDNN on GPU,
  an Eigen spatial convolution on CPU, slow there for the small channel counts of most CNNs);
- ``"im2col"``: gather the input windows into a patches array and contract it with the kernel in
  one ``lax.dot_general``, which XLA runs as a matrix multiply (fast on CPU);
- ``"kn2row"``: the other way round: one dot_general multiplies every kernel tap's weights with
  the unpadded input (per tap and output channel an image), then the output is the sum over taps
  of each image's strided slice, shifted by the tap's offset. Cheaper than im2col where the
  padding is large and the output has few channels (the input gradient of a convolution).

The patches are built without a convolution (jax's ``conv_general_dilated_patches`` is one):
``lax.pad`` applies the padding and, as interior padding, the input dilation; then strided
``lax.slice``s enumerate a set, one spatial dim at a time: per dim, one slice per index along
it, stacked with a concatenate (kh + kw slices for a 2-d kernel, not kh * kw: XLA's CPU backend
took about 0.25 s to compile a 25-way concatenate, and ran it slower). There are two sets to
enumerate, and the smaller one is taken:

- the kernel taps (kh*kw of them): tap t's slice starts at t * rhs_dilation and steps by
  ``stride`` over the output size;
- the output positions (oh*ow of them): position p's slice starts at p * stride and steps by
  ``rhs_dilation`` over the kernel size.

Both hold the same numbers in another order; the second is what the weight gradient of a
convolution needs (its "kernel" is the whole cotangent image, its "output" the original kernel's
size). The enumerated dim goes first and the patches are laid out as the plain matrix the
dot_general reads ((taps x channels) by (batch x positions), or (positions x batch) by (channels
x taps)): a layout XLA would have to transpose costs more than the whole matmul. Feature groups
(``groups``) and batch groups (``batch_groups``, the weight gradient's form) become the batch
dimension of the dot_general: the channels (or the batch) split into groups, and the kernel's
output channels with them. kn2row pads its images (padding and input dilation: zeros times
weights are zeros) instead of the input. The accumulation dtype is the ``accumulate`` attribute
(Note [Accumulation dtype] in ir/ops/linalg.py), as in the XLA path.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from jax import lax

from . import lowers
from .linalg import accumulation


def _dimension_numbers(x, w):
    spatial = "".join("DHW"[-(x.ndim - 2):]) if x.ndim <= 5 else None
    if spatial is None:
        return lax.conv_dimension_numbers(x.shape, w.shape, None)
    return lax.conv_dimension_numbers(x.shape, w.shape,
                                      (f"NC{spatial}", f"OI{spatial}", f"NC{spatial}"))


def _xla(x, w, stride, padding, lhs_dilation, rhs_dilation, groups, batch_groups, acc):
    return lax.conv_general_dilated(
        x, w, tuple(stride), tuple(tuple(p) for p in padding), tuple(lhs_dilation),
        tuple(rhs_dilation), _dimension_numbers(x, w), feature_group_count=groups,
        batch_group_count=batch_groups, precision=lax.Precision.HIGHEST,
        preferred_element_type=acc)


def im2col_enumerates_taps(kernel: tuple[int, ...], out: tuple[int, ...]) -> bool:
    """Whether im2col slices once per kernel tap (else once per output position): the fewer."""
    return math.prod(kernel) <= math.prod(out)


def _stack(xg, enum, size, step, width):
    """A strided slice of the spatial dims of ``xg`` (Gr, A, B, *spatial) per index of
    ``enum``, stacked after the group dim: (Gr, len(enum), A, B, *size)."""
    # one spatial dim at a time: sum(enum) slices and len(enum) concatenates, not prod(enum)
    # slices and a prod(enum)-way concatenate, which XLA's CPU backend took ~0.25 s to compile
    # for a 5x5 kernel (the results are the same numbers in the same order)
    nsp = len(enum)
    for d in range(nsp):
        axis = 3 + 2 * d  # after the group dim, the d stacked dims and A, B, the d-th spatial dim
        slices = []
        for k in range(enum[d]):
            start, limit, strides = [0] * xg.ndim, list(xg.shape), [1] * xg.ndim
            start[axis] = k * width[d]
            limit[axis] = start[axis] + (size[d] - 1) * step[d] + 1
            strides[axis] = step[d]
            slices.append(lax.expand_dims(lax.slice(xg, start, limit, strides), (1 + d,)))
        xg = slices[0] if len(slices) == 1 else lax.concatenate(slices, 1 + d)
    return lax.reshape(xg, (xg.shape[0], math.prod(enum), *xg.shape[1 + nsp:]))


def _grouped_dot(a, b, ca: int, cb: int, acc):
    """dot_general of (Gr, ...) operands, batched over the group dim Gr and contracting dim
    ``ca`` of ``a`` with ``cb`` of ``b``; a single group is no batch dim at all."""
    if a.shape[0] > 1:
        dn = (((ca,), (cb,)), ((0,), (0,)))
        return lax.dot_general(a, b, dn, precision=lax.Precision.HIGHEST,
                               preferred_element_type=acc)
    dn = (((ca - 1,), (cb - 1,)), ((), ()))
    y = lax.dot_general(lax.squeeze(a, (0,)), lax.squeeze(b, (0,)), dn,
                        precision=lax.Precision.HIGHEST, preferred_element_type=acc)
    return lax.expand_dims(y, (0,))


def _grouped(x, groups, batch_groups, channels_first=True):
    """x (N, C, *spatial) as (groups, channels per group, batch per group, *spatial), or with
    the batch before the channels: feature groups split the channels, batch groups the batch (at
    most one of them is > 1). With one group it is one transpose (or none) and a unit dim, so
    that a forward convolution's patches and its weight gradient's (the same windows of the
    same input, Note [im2col lowering]) are the same XLA ops, which XLA's CSE computes once."""
    n, c = x.shape[:2]
    ng = groups * batch_groups
    sp = tuple(range(3, x.ndim + 1))
    if ng == 1:
        x = lax.transpose(x, (1, 0, *range(2, x.ndim))) if channels_first else x
        return lax.expand_dims(x, (0,))
    if batch_groups > 1:
        x = lax.reshape(x, (ng, n // ng, c, *x.shape[2:]))
        return lax.transpose(x, (0, 2, 1, *sp)) if channels_first else x
    x = lax.reshape(x, (n, ng, c // ng, *x.shape[2:]))
    return lax.transpose(x, (1, 2, 0, *sp) if channels_first else (1, 0, 2, *sp))


def _im2col(x, w, stride, padding, lhs_dilation, rhs_dilation, groups, batch_groups, acc, out):
    nsp = x.ndim - 2
    o, i = w.shape[:2]
    kernel, taps = tuple(w.shape[2:]), math.prod(w.shape[2:])
    ng = groups * batch_groups
    nb = x.shape[0] // batch_groups
    wg = lax.reshape(w, (ng, o // ng, i, taps))
    m = nb * math.prod(out)
    taps_first = im2col_enumerates_taps(kernel, out)
    xg = _grouped(x, groups, batch_groups, channels_first=taps_first)
    xg = lax.pad(xg, np.zeros((), x.dtype), [(0, 0, 0)] * 3 + [
        (lo, hi, ld - 1) for (lo, hi), ld in zip(padding, lhs_dilation)])
    if taps_first:
        # patches (Gr, taps * C/Gr, N/Gr * out), the kernel's dims first: (O/Gr, K) x (K, M)
        p = lax.reshape(_stack(xg, kernel, out, stride, rhs_dilation), (ng, taps * i, m))
        wt = lax.reshape(lax.transpose(wg, (0, 1, 3, 2)), (ng, o // ng, taps * i))
        y = _grouped_dot(wt, p, 2, 1, acc)  # (Gr, O/Gr, N/Gr * out)
        return lax.transpose(lax.reshape(y, (o, nb, *out)), (1, 0, *range(2, 2 + nsp)))
    # patches (Gr, out * N/Gr, C/Gr * kernel), the positions first: (M, K) x (K, O/Gr)
    p = lax.reshape(_stack(xg, out, kernel, rhs_dilation, stride), (ng, m, i * taps))
    y = _grouped_dot(p, lax.reshape(wg, (ng, o // ng, i * taps)), 2, 2, acc)
    y = lax.transpose(lax.reshape(y, (ng, *out, nb, o // ng)),
                      (1 + nsp, 0, 2 + nsp, *range(1, 1 + nsp)))  # (N/Gr, Gr, O/Gr, *out)
    return lax.reshape(y, (nb, o, *out))


def _kn2row(x, w, stride, padding, lhs_dilation, rhs_dilation, groups, batch_groups, acc, out):
    """One matmul of every kernel tap with the unpadded input, then a shifted sum of the taps'
    images (Note [im2col lowering])."""
    nsp = x.ndim - 2
    o, i = w.shape[:2]
    kernel, taps = tuple(w.shape[2:]), math.prod(w.shape[2:])
    ng = groups * batch_groups
    xg = _grouped(x, groups, batch_groups)  # (Gr, C/Gr, N/Gr, *spatial)
    nb, spatial = xg.shape[2], xg.shape[3:]
    wt = lax.reshape(lax.transpose(lax.reshape(w, (ng, o // ng, i, taps)), (0, 1, 3, 2)),
                     (ng, o // ng * taps, i))
    z = _grouped_dot(wt, lax.reshape(xg, (ng, i, nb * math.prod(spatial))), 2, 1, acc)
    z = lax.reshape(z, (o, taps, nb, *spatial))  # every tap's image of every output channel
    z = lax.pad(z, np.zeros((), z.dtype), [(0, 0, 0)] * 3 + [
        (lo, hi, ld - 1) for (lo, hi), ld in zip(padding, lhs_dilation)])
    y = None
    for t, idx in enumerate(itertools.product(*map(range, kernel))):
        start = [k * d for k, d in zip(idx, rhs_dilation)]
        limit = [a + (m - 1) * s + 1 for a, m, s in zip(start, out, stride)]
        piece = lax.slice(z, (0, t, 0, *start), (o, t + 1, nb, *limit), (1, 1, 1, *stride))
        y = piece if y is None else lax.add(y, piece)
    y = lax.reshape(y, (o, nb, *out))
    return lax.transpose(y, (1, 0, *range(2, 2 + nsp)))


def _out_size(n, k, s, lo, hi, ld, rd) -> int:
    """The output size along one spatial dim, or 0 where the padded input is empty or shorter
    than the dilated kernel (the shape rule's conv_out_size, which raises on bad strides)."""
    padded = ((n - 1) * ld + 1 if n else 0) + lo + hi
    span = padded - (k - 1) * rd - 1
    return span // s + 1 if padded > 0 and span >= 0 else 0


def im2col_supported(x_shape, w_shape, stride, padding, lhs_dilation, rhs_dilation, groups,
                     batch_groups) -> bool:
    """im2col computes every convolution but one with both kinds of groups (which XLA rejects)
    or an empty operand or result (nothing to multiply; XLA's path is as good)."""
    out = [_out_size(n, k, s, lo, hi, ld, rd) for n, k, s, (lo, hi), ld, rd in zip(
        x_shape[2:], w_shape[2:], stride, padding, lhs_dilation, rhs_dilation)]
    return (groups == 1 or batch_groups == 1) and 0 not in (*x_shape, *w_shape, *out)


@lowers("convolution")
def _convolution(x, w, stride, padding, lhs_dilation, rhs_dilation, groups, batch_groups,
                 algorithm="xla", accumulate=""):
    # Note [Accumulation dtype] in ir/ops/linalg.py; Note [Narrow contractions on CPU]
    acc, dtype = accumulation(x, accumulate)
    args = (stride, padding, lhs_dilation, rhs_dilation, groups, batch_groups)
    if algorithm != "xla" and im2col_supported(x.shape, w.shape, *args):
        out = tuple(_out_size(n, k, s, lo, hi, ld, rd) for n, k, s, (lo, hi), ld, rd in zip(
            x.shape[2:], w.shape[2:], stride, padding, lhs_dilation, rhs_dilation))
        r = (_im2col if algorithm == "im2col" else _kn2row)(x, w, *args, acc, out)
    else:
        r = _xla(x, w, *args, acc)
    return r if r.dtype == dtype else r.astype(dtype)
