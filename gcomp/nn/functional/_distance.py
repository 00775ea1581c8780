"""Norms and distances between vectors (torch.nn.functional.normalize, cosine_similarity,
pairwise_distance), written with gcomp's public tensor ops."""

from __future__ import annotations

import gcomp
from gcomp import Tensor

from ._loss import _bshape

__all__ = ["normalize", "cosine_similarity", "pairwise_distance"]


def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12,
              out=None) -> Tensor:
    """input / max(||input||_p over dim, eps)."""
    denom = gcomp.norm(input, p, dim=dim, keepdim=True).clamp(min=eps)
    result = input / denom
    return out.copy_(result) if out is not None else result


def _broadcast_pair(x1: Tensor, x2: Tensor):
    shape = _bshape(x1, x2)
    return (x1 if tuple(x1.shape) == shape else x1.expand(shape),
            x2 if tuple(x2.shape) == shape else x2.expand(shape))


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """sum(x1/||x1|| * x2/||x2||) over dim, each norm clamped below by eps (as torch, the clamp
    carries no gradient of its own)."""
    x1, x2 = _broadcast_pair(x1, x2)
    n1 = gcomp.norm(x1, 2, dim=dim, keepdim=True)
    n2 = gcomp.norm(x2, 2, dim=dim, keepdim=True)
    n1 = n1 + (n1.detach().clamp(min=eps) - n1.detach())
    n2 = n2 + (n2.detach().clamp(min=eps) - n2.detach())
    return ((x1 / n1) * (x2 / n2)).sum(dim)


def pairwise_distance(x1: Tensor, x2: Tensor, p: float = 2.0, eps: float = 1e-6,
                      keepdim: bool = False) -> Tensor:
    """||x1 - x2 + eps||_p over the last dim."""
    nd = max(x1.ndim, x2.ndim)
    diff = x1 - x2 + eps
    if nd == 0:
        return diff.abs()
    return gcomp.norm(diff, p, dim=nd - 1, keepdim=keepdim)
