"""Convolutions (torch.nn.functional.conv1d/2d/3d, conv_transpose1d/2d/3d).

Each is one ``convolution`` primitive plus a broadcast add for the bias. A transposed
convolution is the gradient of a convolution with respect to its input: a convolution of the
input dilated by ``stride`` (``lhs_dilation``) with the kernel flipped and its in/out channels
swapped within each group.
"""

from __future__ import annotations

from gcomp import GcompError, Tensor
from gcomp.core import prims as P
from gcomp.core.dispatch import user_error
from gcomp.frontend.autocast import lower_precision

__all__ = ["conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
           "conv_transpose3d"]


def _tuple(v, n: int, name: str = "argument") -> tuple:
    """torch's _single/_pair/_triple: an int repeated n times, or a sequence of length n."""
    if isinstance(v, int):
        return (v,) * n
    t = tuple(v)
    if len(t) == 1 and n > 1:
        t = t * n
    if len(t) != n or not all(isinstance(a, int) for a in t):
        raise user_error(GcompError, f"expected {name} to be an int or a tuple of {n} ints, "
                         f"got {v!r}")
    return t


def _batched(x: Tensor, nsp: int, fn: str):
    """(x with a batch dim, whether one was added): torch accepts unbatched (C, *spatial)."""
    if not isinstance(x, Tensor):
        raise user_error(GcompError, f"{fn}(): expected a gcomp.Tensor input, got "
                         f"{type(x).__name__}")
    shape = tuple(x.shape)
    if len(shape) == nsp + 2:
        return x, False
    if len(shape) == nsp + 1:
        return P.reshape(x, shape=(1, *shape)), True
    raise user_error(GcompError, f"{fn}(): expected {nsp + 1}D (unbatched) or {nsp + 2}D "
                     f"(batched) input, but got input of size: {list(shape)}")


def _unbatch(out: Tensor, squeeze: bool) -> Tensor:
    return P.reshape(out, shape=tuple(out.shape)[1:]) if squeeze else out


def _check_same_dtype(fn, x, *others):
    for t in others:
        if t is not None and t.dtype != x.dtype:
            raise user_error(GcompError, f"{fn}(): input ({x.dtype.name}) and weight/bias "
                             f"({t.dtype.name}) must have the same dtype; cast one of them")


def _add_bias(out: Tensor, bias) -> Tensor:
    if bias is None:
        return out
    return P.add(out, P.broadcast(bias, shape=tuple(out.shape), dims=(1,)))


def same_padding(kernel, dilation) -> tuple:
    """padding='same': total d*(k-1) per dim, the odd element on the high side (as torch)."""
    pads = []
    for k, d in zip(kernel, dilation, strict=True):
        total = d * (k - 1)
        pads.append((total // 2, total - total // 2))
    return tuple(pads)


@lower_precision
def _conv(x, weight, bias, stride, padding, dilation, groups, nsp, fn):
    x, squeeze = _batched(x, nsp, fn)
    _check_same_dtype(fn, x, weight, bias)
    xs, ws = tuple(x.shape), tuple(weight.shape)
    if len(ws) != nsp + 2:
        raise user_error(GcompError, f"{fn}(): expected a {nsp + 2}-d weight (out_channels, "
                         f"in_channels/groups, *kernel), got size {list(ws)}")
    if xs[1] != ws[1] * groups:
        raise user_error(GcompError, f"{fn}(): given groups={groups}, weight of size {list(ws)}, "
                         f"expected input{list(xs)} to have {ws[1] * groups} channels, but got "
                         f"{xs[1]} channels instead")
    stride = _tuple(stride, nsp, "stride")
    dilation = _tuple(dilation, nsp, "dilation")
    if isinstance(padding, str):
        if padding == "valid":
            pads = ((0, 0),) * nsp
        elif padding == "same":
            if any(s != 1 for s in stride):
                raise user_error(GcompError, f"{fn}(): padding='same' is not supported for "
                                 "strided convolutions")
            pads = same_padding(ws[2:], dilation)
        else:
            raise user_error(GcompError, f"{fn}(): invalid padding string {padding!r}, should "
                             "be one of 'valid', 'same'")
    else:
        padding = _tuple(padding, nsp, "padding")
        if min(padding) < 0:
            raise user_error(GcompError, f"{fn}(): negative padding is not supported, got "
                             f"{padding}")
        pads = tuple((p, p) for p in padding)
    out = P.convolution(x, weight, stride=stride, padding=pads, lhs_dilation=(1,) * nsp,
                        rhs_dilation=dilation, groups=groups)
    return _unbatch(_add_bias(out, bias), squeeze)


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    return _conv(input, weight, bias, stride, padding, dilation, groups, 1, "conv1d")


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    return _conv(input, weight, bias, stride, padding, dilation, groups, 2, "conv2d")


def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    return _conv(input, weight, bias, stride, padding, dilation, groups, 3, "conv3d")


def transposed_kernel(weight: Tensor, groups: int) -> Tensor:
    """(in, out/groups, *k) -> (out, in/groups, *k), flipped in space: the kernel with which a
    convolution computes the transposed convolution."""
    ws = tuple(weight.shape)
    nsp = len(ws) - 2
    sp = tuple(range(2, 2 + nsp))
    if groups == 1:
        w = P.transpose(weight, perm=(1, 0, *sp))
    else:
        cin, cout_g = ws[0] // groups, ws[1]
        w = P.reshape(weight, shape=(groups, cin, cout_g, *ws[2:]))
        w = P.transpose(w, perm=(0, 2, 1, *range(3, 3 + nsp)))
        w = P.reshape(w, shape=(groups * cout_g, cin, *ws[2:]))
    return P.rev(w, dims=sp)


@lower_precision
def _conv_transpose(x, weight, bias, stride, padding, output_padding, groups, dilation, nsp, fn):
    x, squeeze = _batched(x, nsp, fn)
    _check_same_dtype(fn, x, weight, bias)
    xs, ws = tuple(x.shape), tuple(weight.shape)
    if len(ws) != nsp + 2:
        raise user_error(GcompError, f"{fn}(): expected a {nsp + 2}-d weight (in_channels, "
                         f"out_channels/groups, *kernel), got size {list(ws)}")
    if xs[1] != ws[0] or ws[0] % groups:
        raise user_error(GcompError, f"{fn}(): given transposed=1, weight of size {list(ws)}, "
                         f"expected input{list(xs)} to have {ws[0]} channels (divisible by "
                         f"groups={groups}), but got {xs[1]} channels instead")
    stride = _tuple(stride, nsp, "stride")
    dilation = _tuple(dilation, nsp, "dilation")
    padding = _tuple(padding, nsp, "padding")
    output_padding = _tuple(output_padding, nsp, "output_padding")
    pads = []
    for k, s, d, p, op in zip(ws[2:], stride, dilation, padding, output_padding, strict=True):
        if op >= s and op >= d:
            raise user_error(GcompError, f"{fn}(): output padding must be smaller than either "
                             f"stride or dilation, got output_padding={output_padding}, "
                             f"stride={stride}, dilation={dilation}")
        span = d * (k - 1)
        pads.append((span - p, span - p + op))
    out = P.convolution(x, transposed_kernel(weight, groups), stride=(1,) * nsp,
                        padding=tuple(pads), lhs_dilation=stride, rhs_dilation=dilation,
                        groups=groups)
    if any(n <= 0 for n in tuple(out.shape)[2:]):
        raise user_error(GcompError, f"{fn}(): the output size {list(out.shape)[2:]} is too "
                         f"small for input {list(xs)} (padding {padding} too large)")
    return _unbatch(_add_bias(out, bias), squeeze)


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    return _conv_transpose(input, weight, bias, stride, padding, output_padding, groups,
                           dilation, 1, "conv_transpose1d")


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    return _conv_transpose(input, weight, bias, stride, padding, output_padding, groups,
                           dilation, 2, "conv_transpose2d")


def conv_transpose3d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    return _conv_transpose(input, weight, bias, stride, padding, output_padding, groups,
                           dilation, 3, "conv_transpose3d")


def _slice_dim(x: Tensor, dim: int, start: int, stop: int) -> Tensor:
    shape = tuple(x.shape)
    lo = [0] * len(shape)
    hi = list(shape)
    lo[dim], hi[dim] = start, stop
    return P.slice(x, start=tuple(lo), limit=tuple(hi), stride=(1,) * len(shape))


def _edge(x: Tensor, dim: int, index: int, size: int) -> Tensor:
    """x's slice at ``index`` of ``dim``, repeated ``size`` times along it."""
    shape = list(x.shape)
    shape[dim] = size
    return P.broadcast(_slice_dim(x, dim, index, index + 1), shape=tuple(shape),
                       dims=tuple(range(len(shape))))


def _pad_piece(x: Tensor, d: int, n: int, size: int, mode: str, low: bool) -> Tensor:
    """The ``size`` rows that ``mode`` pads before (low) or after dim d of size n."""
    if mode == "circular":
        return _slice_dim(x, d, n - size, n) if low else _slice_dim(x, d, 0, size)
    if mode == "reflect":
        rows = _slice_dim(x, d, 1, size + 1) if low else _slice_dim(x, d, n - 1 - size, n - 1)
        return P.rev(rows, dims=(d,))
    return _edge(x, d, 0 if low else n - 1, size)


def pad_spatial(x: Tensor, pads, mode: str) -> Tensor:
    """Pad the trailing len(pads) dims by (lo, hi) each with a non-constant mode: 'reflect',
    'replicate' or 'circular' (conv's padding_mode), from slices, rev and one concatenate."""
    nd = len(tuple(x.shape))
    for i, (lo, hi) in enumerate(pads):
        if not lo and not hi:
            continue
        d = nd - len(pads) + i
        n = tuple(x.shape)[d]
        limit = n - 1 if mode == "reflect" else n
        if max(lo, hi) > limit:
            raise user_error(GcompError, f"padding_mode={mode!r}: padding ({lo}, {hi}) must be "
                             f"{'<' if mode == 'reflect' else '<='} the input size {n} of dim {d}")
        if mode not in ("circular", "reflect", "replicate"):
            raise user_error(GcompError, f"padding_mode must be 'zeros', 'reflect', 'replicate' "
                             f"or 'circular', got {mode!r}")
        parts = [x]
        if lo:
            parts.insert(0, _pad_piece(x, d, n, lo, mode, low=True))
        if hi:
            parts.append(_pad_piece(x, d, n, hi, mode, low=False))
        x = P.concatenate(*parts, axis=d)
    return x
