"""Resampling and patch ops (torch.nn.functional.interpolate, pixel_shuffle, pixel_unshuffle,
unfold, fold, affine_grid, grid_sample), as compositions of primitives.

interpolate is separable: along each spatial dim the output is a weighted sum of a few ``take``s
of the input, with indices and weights computed on the host from the static sizes (torch's
source-index formulas; 'nearest' in float32 exactly as torch's floor indexing). unfold is one
strided slice per kernel offset; fold, its adjoint, pads each offset's block into place.
"""

from __future__ import annotations

import math

import numpy as np

import gcomp
from gcomp import GcompError, Tensor
from gcomp.core import prims as P
from gcomp.core.dispatch import user_error

from ._common import NNValueError, expand
from ._conv import _tuple
from ._pool import _adaptive_avg_pool

__all__ = ["interpolate", "upsample", "upsample_nearest", "upsample_bilinear", "pixel_shuffle",
           "pixel_unshuffle", "unfold", "fold", "affine_grid", "grid_sample",
           "channel_shuffle"]

_MODE_DIMS = {"linear": 1, "bilinear": 2, "bicubic": 2, "trilinear": 3}
_CUBIC_A = -0.75


# -- interpolate --------------------------------------------------------------------------------
def _source_index(scale, dst, align_corners, cubic):
    """torch's area_pixel_compute_source_index."""
    if align_corners:
        return scale * dst
    src = scale * (dst + 0.5) - 0.5
    return src if cubic else np.maximum(src, 0.0)


def _pixel_scale(n_in, n_out, align_corners, scale):
    """torch's area_pixel_compute_scale."""
    if align_corners:
        return (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
    return 1.0 / scale if scale is not None and scale > 0 else n_in / n_out


def _taps(mode, n_in, n_out, align_corners, scale):
    """[(indices, weights or None)] along one dim: output[j] = sum_k w_k[j] * input[idx_k[j]]."""
    dst = np.arange(n_out)
    if mode in ("nearest", "nearest-exact"):
        s = np.float32(1.0 / scale) if scale is not None and scale > 0 else \
            np.float32(n_in) / np.float32(n_out)
        off = np.float32(0.5) if mode == "nearest-exact" else np.float32(0.0)
        src = np.floor((dst.astype(np.float32) + off) * s).astype(np.int64)
        return [(np.minimum(src, n_in - 1), None)]
    s = _pixel_scale(n_in, n_out, align_corners, scale)
    if mode == "cubic":
        src = _source_index(s, dst.astype(np.float64), align_corners, True)
        i0 = np.floor(src).astype(np.int64)
        t = src - i0
        a = _CUBIC_A

        def near(x):  # |x| <= 1
            return ((a + 2) * x - (a + 3)) * x * x + 1

        def far(x):  # 1 < |x| < 2
            return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

        ws = (far(t + 1), near(t), near(1 - t), far(2 - t))
        return [(np.clip(i0 - 1 + k, 0, n_in - 1), w) for k, w in enumerate(ws)]
    src = _source_index(s, dst.astype(np.float64), align_corners, False)
    i0 = np.minimum(src.astype(np.int64), n_in - 1)
    lam = src - i0
    i1 = np.minimum(i0 + 1, n_in - 1)
    return [(i0, 1.0 - lam), (i1, lam)]


def _resample(x: Tensor, d: int, taps) -> Tensor:
    out = None
    for idx, w in taps:
        if w is None and len(taps) == 1 and np.array_equal(idx, np.arange(x.shape[d])):
            return x
        y = P.take(x, gcomp.tensor(idx), axis=d)
        if w is not None:
            y = P.mul(y, expand(gcomp.tensor(w, dtype=x.dtype), tuple(y.shape), (d,)))
        out = y if out is None else P.add(out, y)
    return out


def _output_sizes(x, nsp, size, scale_factor, recompute_scale_factor):
    spatial = tuple(x.shape)[2:]
    if size is not None and scale_factor is not None:
        raise user_error(NNValueError, "only one of size or scale_factor should be defined")
    if size is not None:
        sizes = (size,) * nsp if isinstance(size, int) else tuple(size)
        if len(sizes) != nsp:
            raise user_error(NNValueError, f"Input and output must have the same number of "
                             f"spatial dimensions, but got input with spatial dimensions of "
                             f"{list(spatial)} and output size of {list(size)}. Please provide "
                             "input tensor in (N, C, d1, d2, ...,dK) format and output size in "
                             "(o1, o2, ...,oK) format.")
        return tuple(int(s) for s in sizes), (None,) * nsp
    if scale_factor is None:
        raise user_error(NNValueError, "either size or scale_factor should be defined")
    if isinstance(scale_factor, (list, tuple)):
        if len(scale_factor) != nsp:
            raise user_error(NNValueError, f"Input and scale_factor must have the same number of "
                             f"spatial dimensions, but got input with spatial dimensions of "
                             f"{list(spatial)} and scale_factor of shape {list(scale_factor)}.")
        factors = tuple(float(f) for f in scale_factor)
    else:
        factors = (float(scale_factor),) * nsp
    sizes = tuple(math.floor(n * f) for n, f in zip(spatial, factors, strict=True))
    return sizes, ((None,) * nsp if recompute_scale_factor else factors)


def interpolate(input: Tensor, size=None, scale_factor=None, mode: str = "nearest",
                align_corners=None, recompute_scale_factor=None, antialias: bool = False):
    """Resize the spatial dims of (N, C, *spatial) input: 'nearest', 'nearest-exact', 'linear',
    'bilinear', 'bicubic', 'trilinear' or 'area', with torch's index and weight formulas."""
    nsp = input.ndim - 2
    if mode in ("nearest", "nearest-exact", "area"):
        if align_corners is not None:
            raise user_error(NNValueError, "align_corners option can only be set with the "
                             "interpolating modes: linear | bilinear | bicubic | trilinear")
    elif mode in _MODE_DIMS:
        align_corners = bool(align_corners)
    else:
        raise user_error(GcompError, f"Input Error: Only 3D, 4D and 5D input Tensors supported "
                         f"(got {input.ndim}D) for the modes: nearest | linear | bilinear | "
                         f"bicubic | trilinear | area | nearest-exact (got {mode})")
    if antialias:
        raise user_error(GcompError, "interpolate: antialias=True is not supported")
    want = _MODE_DIMS.get(mode)
    if nsp not in (1, 2, 3) or (want is not None and nsp != want):
        need = f"{want + 2}D" if want is not None else "3D, 4D or 5D"
        raise user_error(GcompError, f"Got {input.ndim}D input, but {mode} mode needs {need} "
                         "input")
    sizes, scales = _output_sizes(input, nsp, size, scale_factor, recompute_scale_factor)
    if min(sizes) <= 0:
        raise user_error(GcompError, f"interpolate: output size {list(sizes)} must be positive")
    if mode == "area":
        return _adaptive_avg_pool(input, nsp, sizes, "interpolate")
    kind = "cubic" if mode == "bicubic" else ("linear" if mode in _MODE_DIMS else mode)
    out = input
    for i in range(nsp):
        n = input.shape[2 + i]
        out = _resample(out, 2 + i, _taps(kind, n, sizes[i], align_corners, scales[i]))
    return out


def upsample(input, size=None, scale_factor=None, mode="nearest", align_corners=None):
    """Deprecated alias of interpolate."""
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_nearest(input, size=None, scale_factor=None):
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(input, size=None, scale_factor=None):
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)


# -- pixel shuffle ------------------------------------------------------------------------------
def pixel_shuffle(input: Tensor, upscale_factor: int) -> Tensor:
    """(*, C r^2, H, W) -> (*, C, H r, W r)."""
    r = int(upscale_factor)
    shape = tuple(input.shape)
    if len(shape) < 3:
        raise user_error(GcompError, f"pixel_shuffle expects input to have at least 3 dimensions,"
                         f" but got input with {len(shape)} dimension(s)")
    if r <= 0:
        raise user_error(GcompError, f"pixel_shuffle expects a positive upscale_factor, but got "
                         f"{r}")
    *lead, c, h, w = shape
    if c % (r * r):
        raise user_error(GcompError, f"pixel_shuffle expects its input's 'channel' dimension to "
                         f"be divisible by the square of upscale_factor, but input.size(-3)={c} "
                         f"is not divisible by {r * r}")
    n = len(lead)
    x = P.reshape(input, shape=(*lead, c // (r * r), r, r, h, w))
    x = P.transpose(x, perm=(*range(n), n, n + 3, n + 1, n + 4, n + 2))
    return P.reshape(x, shape=(*lead, c // (r * r), h * r, w * r))


def pixel_unshuffle(input: Tensor, downscale_factor: int) -> Tensor:
    """(*, C, H r, W r) -> (*, C r^2, H, W)."""
    r = int(downscale_factor)
    shape = tuple(input.shape)
    if len(shape) < 3:
        raise user_error(GcompError, f"pixel_unshuffle expects input to have at least 3 "
                         f"dimensions, but got input with {len(shape)} dimension(s)")
    if r <= 0:
        raise user_error(GcompError, f"pixel_unshuffle expects a positive downscale_factor, but "
                         f"got {r}")
    *lead, c, h, w = shape
    if h % r or w % r:
        which, size = ("height", h) if h % r else ("width", w)
        raise user_error(GcompError, f"pixel_unshuffle expects {which} to be divisible by "
                         f"downscale_factor, but input.size({-2 if h % r else -1})={size} is "
                         f"not divisible by {r}")
    n = len(lead)
    x = P.reshape(input, shape=(*lead, c, h // r, r, w // r, r))
    x = P.transpose(x, perm=(*range(n), n, n + 2, n + 4, n + 1, n + 3))
    return P.reshape(x, shape=(*lead, c * r * r, h // r, w // r))


# -- unfold / fold ------------------------------------------------------------------------------
def _patch_geometry(spatial, kernel_size, dilation, padding, stride):
    k = _tuple(kernel_size, 2, "kernel_size")
    d = _tuple(dilation, 2, "dilation")
    p = _tuple(padding, 2, "padding")
    s = _tuple(stride, 2, "stride")
    if min(k) <= 0 or min(d) <= 0 or min(s) <= 0 or min(p) < 0:
        raise user_error(GcompError, f"kernel_size, dilation and stride must be positive and "
                         f"padding non-negative, got kernel_size={k}, dilation={d}, "
                         f"padding={p}, stride={s}")
    blocks = tuple((n + 2 * pp - dd * (kk - 1) - 1) // ss + 1
                   for n, kk, dd, pp, ss in zip(spatial, k, d, p, s, strict=True))
    return k, d, p, s, blocks


def unfold(input: Tensor, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """im2col: (N, C, H, W) -> (N, C kh kw, L), L the number of sliding blocks."""
    if input.ndim not in (3, 4):
        raise user_error(GcompError, f"Input Error: Only 3D or 4D input Tensors are supported "
                         f"(got {input.ndim}D)")
    x = input if input.ndim == 4 else P.reshape(input, shape=(1, *input.shape))
    n, c, h, w = x.shape
    k, d, p, s, blocks = _patch_geometry((h, w), kernel_size, dilation, padding, stride)
    if min(blocks) <= 0:
        raise user_error(GcompError, f"Given input with spatial size ({h}, {w}), kernel_size="
                         f"{k}, dilation={d}, padding={p}, calculated shape of the array of "
                         f"sliding blocks as {blocks}, but its components must be at least one.")
    if any(p):
        x = P.pad(x, low=(0, 0, *p), high=(0, 0, *p), interior=(0,) * 4, value=0.0)
    pieces = []
    for i, j in np.ndindex(*k):
        start = (0, 0, i * d[0], j * d[1])
        limit = (n, c, start[2] + (blocks[0] - 1) * s[0] + 1, start[3] + (blocks[1] - 1) * s[1]
                 + 1)
        piece = P.slice(x, start=start, limit=limit, stride=(1, 1, *s))
        pieces.append(P.reshape(piece, shape=(n, c, 1, blocks[0] * blocks[1])))
    out = P.concatenate(*pieces, axis=2) if len(pieces) > 1 else pieces[0]
    out = P.reshape(out, shape=(n, c * k[0] * k[1], blocks[0] * blocks[1]))
    return out if input.ndim == 4 else P.reshape(out, shape=tuple(out.shape)[1:])


def fold(input: Tensor, output_size, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """col2im, the adjoint of unfold: (N, C kh kw, L) -> (N, C, H, W), overlapping values
    summed."""
    if input.ndim not in (2, 3):
        raise user_error(GcompError, f"Input Error: Only unbatched (2D) or batched (3D) input "
                         f"Tensors are supported (got {input.ndim}D)")
    x = input if input.ndim == 3 else P.reshape(input, shape=(1, *input.shape))
    n, ck, L = x.shape
    out_hw = _tuple(output_size, 2, "output_size")
    k, d, p, s, blocks = _patch_geometry(out_hw, kernel_size, dilation, padding, stride)
    kk = k[0] * k[1]
    if ck % kk:
        raise user_error(GcompError, f"Expected size of input's dimension 1 to be divisible by "
                         f"the product of kernel_size, but got input.size(1)={ck} and "
                         f"kernel_size={k}")
    if blocks[0] * blocks[1] != L:
        raise user_error(GcompError, f"Given output_size={out_hw}, kernel_size={k}, dilation="
                         f"{d}, padding={p}, stride={s}, expected size of input's dimension 2 "
                         f"to match the calculated number of sliding blocks {blocks[0]} * "
                         f"{blocks[1]} = {blocks[0] * blocks[1]}, but got input.size(2)={L}.")
    c = ck // kk
    x = P.reshape(x, shape=(n, c, kk, blocks[0], blocks[1]))
    hp, wp = out_hw[0] + 2 * p[0], out_hw[1] + 2 * p[1]
    out = None
    for t, (i, j) in enumerate(np.ndindex(*k)):
        piece = P.slice(x, start=(0, 0, t, 0, 0), limit=(n, c, t + 1, *blocks),
                        stride=(1,) * 5)
        piece = P.reshape(piece, shape=(n, c, *blocks))
        lo = (i * d[0], j * d[1])
        hi = tuple(size - lo_ - (b - 1) * ss - 1
                   for size, lo_, b, ss in zip((hp, wp), lo, blocks, s, strict=True))
        placed = P.pad(piece, low=(0, 0, *lo), high=(0, 0, *hi),
                       interior=(0, 0, s[0] - 1, s[1] - 1), value=0.0)
        out = placed if out is None else P.add(out, placed)
    if any(p):
        out = P.slice(out, start=(0, 0, p[0], p[1]), limit=(n, c, p[0] + out_hw[0],
                                                               p[1] + out_hw[1]),
                      stride=(1,) * 4)
    return out if input.ndim == 3 else P.reshape(out, shape=tuple(out.shape)[1:])


# -- affine_grid / grid_sample ------------------------------------------------------------------
def _base_coords(n: int, align_corners: bool) -> np.ndarray:
    """torch's linspace of normalized pixel centers along one dim."""
    if n <= 1:
        return np.zeros(max(n, 0))
    c = np.linspace(-1.0, 1.0, n)
    return c if align_corners else c * (n - 1) / n


def affine_grid(theta: Tensor, size, align_corners=None) -> Tensor:
    """The sampling grid (N, H, W, 2) (or (N, D, H, W, 3)) of the affine maps theta (N, 2, 3)
    (or (N, 3, 4)) over a normalized output of ``size``."""
    align_corners = bool(align_corners)
    size = tuple(int(v) for v in size)
    if not theta.dtype.is_floating_point:
        raise user_error(GcompError, f"Expected theta to have floating point type, but got "
                         f"{theta.dtype.name}")
    if len(size) == 4:
        if theta.ndim != 3 or tuple(theta.shape[1:]) != (2, 3):
            raise user_error(GcompError, f"Expected a batch of 2D affine matrices of shape Nx2x3 "
                             f"for size {list(size)}. Got {list(theta.shape)}.")
        n, _, h, w = size
        ys, xs = np.meshgrid(_base_coords(h, align_corners), _base_coords(w, align_corners),
                             indexing="ij")
        base = np.stack([xs, ys, np.ones_like(xs)], -1).reshape(1, h * w, 3)
        out_shape = (n, h, w, 2)
    elif len(size) == 5:
        if theta.ndim != 3 or tuple(theta.shape[1:]) != (3, 4):
            raise user_error(GcompError, f"Expected a batch of 3D affine matrices of shape Nx3x4 "
                             f"for size {list(size)}. Got {list(theta.shape)}.")
        n, _, d, h, w = size
        zs, ys, xs = np.meshgrid(_base_coords(d, align_corners), _base_coords(h, align_corners),
                                 _base_coords(w, align_corners), indexing="ij")
        base = np.stack([xs, ys, zs, np.ones_like(xs)], -1).reshape(1, d * h * w, 4)
        out_shape = (n, d, h, w, 3)
    else:
        raise user_error(NNValueError, f"affine_grid only supports 4D and 5D sizes, for 2D and "
                         f"3D affine transforms, respectively. Got size {list(size)}.")
    if min(size) <= 0:
        raise user_error(NNValueError, f"Expected non-zero, positive output size. Got {size}")
    if theta.shape[0] != n:
        raise user_error(GcompError, f"Expected theta's batch size {theta.shape[0]} to match "
                         f"size[0]={n}")
    grid = gcomp.matmul(gcomp.tensor(base, dtype=theta.dtype), theta.transpose(1, 2))
    return grid.reshape(out_shape)


def _unnormalize(coord: Tensor, n: int, align_corners: bool) -> Tensor:
    if align_corners:
        return (coord + 1) * (0.5 * (n - 1))
    return ((coord + 1) * n - 1) * 0.5


def grid_sample(input: Tensor, grid: Tensor, mode: str = "bilinear",
                padding_mode: str = "zeros", align_corners=None) -> Tensor:
    """Sample (N, C, H, W) input at the normalized (x, y) positions of grid (N, Ho, Wo, 2):
    'bilinear' or 'nearest', padding 'zeros' or 'border'. Corners outside the input weigh 0
    ('zeros'); each corner is one gather from the flattened input."""
    if mode not in ("bilinear", "nearest"):
        raise user_error(GcompError, f"grid_sample: mode {mode!r} is not supported; use "
                         "'bilinear' or 'nearest'")
    if padding_mode not in ("zeros", "border"):
        raise user_error(GcompError, f"grid_sample: padding_mode {padding_mode!r} is not "
                         "supported; use 'zeros' or 'border'")
    if input.ndim != 4 or grid.ndim != 4 or grid.shape[-1] != 2 or \
            grid.shape[0] != input.shape[0]:
        raise user_error(GcompError, f"grid_sample(): expected 4D input (N, C, H, W) and grid "
                         f"(N, H_out, W_out, 2) with the same N, got input of size "
                         f"{list(input.shape)} and grid of size {list(grid.shape)}")
    align_corners = bool(align_corners)
    n, c, h, w = input.shape
    _, ho, wo, _ = grid.shape
    grid = grid.to(input.dtype)
    ix = _unnormalize(grid[..., 0], w, align_corners)
    iy = _unnormalize(grid[..., 1], h, align_corners)
    if padding_mode == "border":
        ix = ix.clamp(0, w - 1)
        iy = iy.clamp(0, h - 1)
    flat = input.reshape(n, c, h * w)

    def corner(xi: Tensor, yi: Tensor) -> Tensor:
        """input at integer positions (N, Ho, Wo), 0 outside: (N, C, Ho, Wo)."""
        inside = (xi >= 0) & (xi <= w - 1) & (yi >= 0) & (yi <= h - 1)
        idx = (yi.clamp(0, h - 1) * w + xi.clamp(0, w - 1)).to(gcomp.int64)
        idx = idx.reshape(n, 1, ho * wo).expand(n, c, ho * wo)
        vals = gcomp.gather(flat, 2, idx).reshape(n, c, ho, wo)
        return gcomp.where(inside.unsqueeze(1), vals, 0.0).to(input.dtype)

    if mode == "nearest":
        return corner(gcomp.round(ix.detach()), gcomp.round(iy.detach()))
    x0, y0 = gcomp.floor(ix.detach()), gcomp.floor(iy.detach())
    x1, y1 = x0 + 1, y0 + 1
    wx1, wy1 = ix - x0, iy - y0
    wx0, wy0 = 1 - wx1, 1 - wy1
    out = None
    for xi, yi, wgt in ((x0, y0, wx0 * wy0), (x1, y0, wx1 * wy0), (x0, y1, wx0 * wy1),
                        (x1, y1, wx1 * wy1)):
        term = corner(xi, yi) * wgt.unsqueeze(1)
        out = term if out is None else out + term
    return out


def channel_shuffle(input: Tensor, groups: int) -> Tensor:
    """(N, g k, *) -> (N, k g, *): channel j of group i moves to position j g + i."""
    shape = tuple(input.shape)
    if len(shape) < 3:
        raise user_error(GcompError, f"channel_shuffle expects input to have at least 3 "
                         f"dimensions, but got input with {len(shape)} dimension(s)")
    if groups <= 0 or shape[1] % groups:
        raise user_error(GcompError, f"Number of channels must be divisible by groups. Got "
                         f"{shape[1]} channels and {groups} groups.")
    x = P.reshape(input, shape=(shape[0], groups, shape[1] // groups, *shape[2:]))
    x = P.transpose(x, perm=(0, 2, 1, *range(3, len(shape) + 1)))
    return P.reshape(x, shape=shape)
