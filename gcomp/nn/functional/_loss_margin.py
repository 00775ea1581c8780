"""Margin, ranking and likelihood losses (torch.nn.functional.margin_ranking_loss,
triplet_margin_loss, hinge_embedding_loss, soft_margin_loss, multilabel_soft_margin_loss,
multilabel_margin_loss, multi_margin_loss, poisson_nll_loss, gaussian_nll_loss,
cosine_embedding_loss), written with gcomp's public tensor ops after torch's formulas."""

from __future__ import annotations

import math

import gcomp
from gcomp import GcompError, Tensor
from gcomp.core.dispatch import user_error
from gcomp.frontend.autocast import float32 as amp_float32

from ._activation import _softplus_neg, logsigmoid
from ._common import NNValueError, check_reduction, host_value, legacy_reduction, reduce_loss
from ._distance import pairwise_distance

__all__ = ["margin_ranking_loss", "triplet_margin_loss", "hinge_embedding_loss",
           "soft_margin_loss", "multilabel_soft_margin_loss", "multilabel_margin_loss",
           "multi_margin_loss", "poisson_nll_loss", "gaussian_nll_loss", "cosine_embedding_loss",
           "triplet_margin_with_distance_loss"]


def _reduction(size_average, reduce, reduction):
    return check_reduction(legacy_reduction(size_average, reduce, reduction))


def _relu(x: Tensor) -> Tensor:
    """max(x, 0) with torch's clamp_min gradient (passed at 0)."""
    return gcomp.where(x >= 0, x, 0.0).to(x.dtype)


@amp_float32
def margin_ranking_loss(input1, input2, target, margin: float = 0.0, size_average=None,
                        reduce=None, reduction: str = "mean") -> Tensor:
    """max(0, -target * (input1 - input2) + margin)."""
    reduction = _reduction(size_average, reduce, reduction)
    if not (input1.ndim == input2.ndim == target.ndim):
        raise user_error(GcompError, f"margin_ranking_loss : All input tensors should have same "
                         f"dimension but got sizes: input1: {input1.shape}, input2: "
                         f"{input2.shape}, target: {target.shape} ")
    return reduce_loss(_relu(-target * (input1 - input2) + margin), reduction)


@amp_float32
def triplet_margin_loss(anchor, positive, negative, margin: float = 1.0, p: float = 2,
                        eps: float = 1e-6, swap: bool = False, size_average=None, reduce=None,
                        reduction: str = "mean") -> Tensor:
    """max(d(a, p) - d(a, n) + margin, 0), d the pairwise p-norm distance (with swap, d(a, n)
    is replaced by min(d(a, n), d(p, n)))."""
    reduction = _reduction(size_average, reduce, reduction)
    if not (anchor.ndim == positive.ndim == negative.ndim):
        raise user_error(GcompError, f"The anchor, positive, and negative tensors are expected to "
                         f"have the same number of dimensions, but got: anchor {anchor.ndim}D, "
                         f"positive {positive.ndim}D, and negative {negative.ndim}D inputs")
    d_pos = pairwise_distance(anchor, positive, p, eps)
    d_neg = pairwise_distance(anchor, negative, p, eps)
    if swap:
        d_neg = gcomp.minimum(d_neg, pairwise_distance(positive, negative, p, eps))
    return reduce_loss(_relu(margin + d_pos - d_neg), reduction)


@amp_float32
def hinge_embedding_loss(input, target, margin: float = 1.0, size_average=None, reduce=None,
                         reduction: str = "mean") -> Tensor:
    """input where target is 1, max(0, margin - input) where target is -1 (torch adds both
    terms where target is neither)."""
    reduction = _reduction(size_average, reduce, reduction)
    zero = gcomp.zeros_like(input)
    margin_part = gcomp.where(target != 1, _relu(margin - input), zero)
    self_part = gcomp.where(target != -1, input, zero)
    return reduce_loss(margin_part + self_part, reduction)


@amp_float32
def soft_margin_loss(input, target, size_average=None, reduce=None,
                     reduction: str = "mean") -> Tensor:
    """log(1 + exp(-target * input)), computed stably."""
    reduction = _reduction(size_average, reduce, reduction)
    return reduce_loss(_softplus_neg(input * target), reduction)


def multilabel_soft_margin_loss(input, target, weight=None, size_average=None, reduce=None,
                                reduction: str = "mean") -> Tensor:
    """The mean over classes (the last dim) of the binary logistic loss of each class."""
    reduction = _reduction(size_average, reduce, reduction)
    loss = -(target * logsigmoid(input) + (1 - target) * logsigmoid(-input))
    if weight is not None:
        loss = loss * weight
    loss = loss.sum(dim=input.ndim - 1) / input.shape[-1]
    return reduce_loss(loss, reduction)


def _class_input(input, target, fn):
    if input.ndim not in (1, 2) or input.numel() == 0 and input.ndim != 2:
        raise user_error(GcompError, f"{fn}(): Expected non-empty vector or matrix with optional "
                         f"0-dim batch size, but got: {list(input.shape)}")
    x = input if input.ndim == 2 else input.unsqueeze(0)
    t = target.reshape(x.shape[0], -1) if target.ndim <= 1 else target
    return x, t


@amp_float32
def multilabel_margin_loss(input, target, size_average=None, reduce=None,
                           reduction: str = "mean") -> Tensor:
    """sum over target classes j and non-target classes i of max(0, 1 - (x[j] - x[i])) / C;
    target holds class indices, ended by the first -1."""
    reduction = _reduction(size_average, reduce, reduction)
    x, t = _class_input(input, target, "multilabel_margin_loss")
    if tuple(t.shape) != tuple(x.shape):
        raise user_error(GcompError, f"multilabel_margin_loss(): inconsistent target size: "
                         f"{list(target.shape)} for input of size: {list(input.shape)}")
    h = host_value(t)
    c = x.shape[1]
    if h is not None and h.size and (h.max() >= c or h.min() < -1):
        raise user_error(GcompError, "multilabel_margin_loss(): target out of range")
    t = t.to(gcomp.int64)
    valid = gcomp.cumsum((t < 0).to(gcomp.int64), 1) == 0  # before the first -1
    tc = gcomp.where(valid, t, 0)
    x_t = gcomp.gather(x, 1, tc)  # (N, J): input at each target class
    classes = gcomp.arange(c)
    is_target = ((tc.unsqueeze(2) == classes) & valid.unsqueeze(2)).any(1)  # (N, C)
    hinge = _relu(1 - x_t.unsqueeze(2) + x.unsqueeze(1))  # (N, J, C)
    mask = (valid.unsqueeze(2) & ~is_target.unsqueeze(1)).to(x.dtype)
    loss = (hinge * mask).sum((1, 2)) / c
    if input.ndim == 1:
        loss = loss.reshape(())
    return reduce_loss(loss, reduction)


@amp_float32
def multi_margin_loss(input, target, p: int = 1, margin: float = 1.0, weight=None,
                      size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    """sum over classes i != y of max(0, margin - x[y] + x[i])^p / C (times weight[y])."""
    reduction = _reduction(size_average, reduce, reduction)
    if p not in (1, 2):
        raise user_error(NNValueError, "only p == 1 and p == 2 supported")
    x, t = _class_input(input, target, "multi_margin_loss")
    t = t.reshape(-1).to(gcomp.int64)
    if t.shape[0] != x.shape[0]:
        raise user_error(GcompError, f"multi_margin_loss(): inconsistent target size, expected "
                         f"{x.shape[0]} but got {list(target.shape)}")
    c = x.shape[1]
    h = host_value(t)
    if h is not None and h.size and (h.max() >= c or h.min() < 0):
        raise user_error(GcompError, "multi_margin_loss(): target out of range")
    x_y = gcomp.gather(x, 1, t.unsqueeze(1))  # (N, 1)
    z = margin - x_y + x
    z = gcomp.where(z > 0, z, 0.0).to(x.dtype)
    if p == 2:
        z = z * z
    if weight is not None:
        z = z * weight.to(x.dtype)[t].unsqueeze(1)
    not_y = (gcomp.arange(c) != t.unsqueeze(1)).to(x.dtype)
    loss = (z * not_y).sum(1) / c
    if input.ndim == 1:
        loss = loss.reshape(())
    return reduce_loss(loss, reduction)


@amp_float32
def poisson_nll_loss(input, target, log_input: bool = True, full: bool = False,
                     size_average=None, eps: float = 1e-8, reduce=None,
                     reduction: str = "mean") -> Tensor:
    """exp(input) - target * input (log_input), else input - target * log(input + eps); full
    adds Stirling's approximation of log(target!) where target > 1."""
    reduction = _reduction(size_average, reduce, reduction)
    if log_input:
        loss = gcomp.exp(input) - target * input
    else:
        loss = input - target * gcomp.log(input + eps)
    if full:
        safe = gcomp.where(target > 1, target, 2.0).to(target.dtype)
        stirling = safe * gcomp.log(safe) - safe + 0.5 * gcomp.log(2 * math.pi * safe)
        loss = loss + gcomp.where(target > 1, stirling, 0.0).to(loss.dtype)
    return reduce_loss(loss, reduction)


def gaussian_nll_loss(input, target, var, full: bool = False, eps: float = 1e-6,
                      reduction: str = "mean") -> Tensor:
    """0.5 (log(var) + (input - target)^2 / var), var clamped below by eps without gradient (as
    torch); var may omit the last dim or have size 1 there."""
    check_reduction(reduction)
    if not isinstance(var, Tensor):
        var = gcomp.full(tuple(input.shape), float(var), dtype=input.dtype)
    if tuple(var.shape) != tuple(input.shape):
        if tuple(input.shape[:-1]) == tuple(var.shape):
            var = var.unsqueeze(-1)
        elif not (tuple(input.shape[:-1]) == tuple(var.shape[:-1]) and var.shape[-1] == 1):
            raise user_error(NNValueError, "var is of incorrect size")
    h = host_value(var)
    if h is not None and (h < 0).any():
        raise user_error(NNValueError, "var has negative entry/entries")
    v = var.detach()
    var = var + (v.clamp(min=eps) - v)
    loss = 0.5 * (gcomp.log(var) + (input - target) ** 2 / var)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return reduce_loss(loss, reduction)


@amp_float32
def cosine_embedding_loss(input1, input2, target, margin: float = 0.0, size_average=None,
                          reduce=None, reduction: str = "mean") -> Tensor:
    """1 - cos(x1, x2) where target is 1, max(0, cos(x1, x2) - margin) where it is -1."""
    reduction = _reduction(size_average, reduce, reduction)
    if input1.ndim != input2.ndim or input1.ndim not in (1, 2):
        raise user_error(GcompError, f"cosine_embedding_loss(): expected 1D or 2D inputs of the "
                         f"same dims, got {input1.ndim}D and {input2.ndim}D")
    d = input1.ndim - 1
    eps = 1e-12
    prod = (input1 * input2).sum(d)
    m1 = (input1 * input1).sum(d) + eps
    m2 = (input2 * input2).sum(d) + eps
    cos = prod / gcomp.sqrt(m1 * m2)
    zero = gcomp.zeros_like(cos)
    pos = gcomp.where(target == 1, 1 - cos, zero)
    neg = gcomp.where(target == -1, _relu(cos - margin), zero)
    return reduce_loss(pos + neg, reduction)


def triplet_margin_with_distance_loss(anchor, positive, negative, *, distance_function=None,
                                      margin: float = 1.0, swap: bool = False,
                                      reduction: str = "mean") -> Tensor:
    """triplet_margin_loss with any distance (default pairwise_distance)."""
    check_reduction(reduction)
    if margin <= 0:
        raise user_error(NNValueError, f"margin must be greater than 0, got {margin}")
    dist = pairwise_distance if distance_function is None else distance_function
    d_pos, d_neg = dist(anchor, positive), dist(anchor, negative)
    if swap:
        d_neg = gcomp.minimum(d_neg, dist(positive, negative))
    return reduce_loss(_relu(margin + d_pos - d_neg), reduction)
