"""Batch normalization layers (torch.nn.BatchNorm1d/2d/3d): PyTorch's parameters, buffers
(running_mean, running_var, num_batches_tracked as int64), momentum rules and train/eval modes."""

from __future__ import annotations

import gcomp

from ..functional import _norm as F
from ..functional._common import NNValueError
from ..parameter import Parameter
from .module import Module
from .normalization import host_full

__all__ = ["BatchNorm1d", "BatchNorm2d", "BatchNorm3d"]


class _BatchNorm(Module):
    _dims: tuple = (4,)

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, device=None, dtype=None, *, bias=True):
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        if affine:
            self.weight = Parameter(host_full((num_features,), 1.0, dtype, device))
            if bias:
                self.bias = Parameter(host_full((num_features,), 0.0, dtype, device))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", host_full((num_features,), 0.0, dtype, device))
            self.register_buffer("running_var", host_full((num_features,), 1.0, dtype, device))
            self.register_buffer("num_batches_tracked", gcomp.tensor(0, dtype=gcomp.int64,
                                                                   device=device))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            with gcomp.no_grad():
                self.running_mean.zero_()
                self.running_var.fill_(1)
                self.num_batches_tracked.zero_()

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        if self.affine:
            with gcomp.no_grad():
                self.weight.fill_(1)
                if self.bias is not None:
                    self.bias.zero_()

    def _check_input_dim(self, input) -> None:
        if input.dim() not in self._dims:
            want = " or ".join(f"{d}D" for d in self._dims)
            raise NNValueError(f"{type(self).__name__}: expected {want} input (got "
                             f"{input.dim()}D input)")

    def forward(self, input):
        self._check_input_dim(input)
        update = self.training and self.track_running_stats
        if update and self.num_batches_tracked is not None:
            with gcomp.no_grad():
                self.num_batches_tracked.add_(1)
        # torch: use batch statistics in training, or in eval when no running stats are kept.
        bn_training = self.training or (self.running_mean is None and self.running_var is None)
        use_stats = not self.training or self.track_running_stats
        momentum = self.momentum
        if momentum is None and not (update and self.num_batches_tracked is not None):
            momentum = 0.0
        return F._batch_norm(input, self.running_mean if use_stats else None,
                             self.running_var if use_stats else None, self.weight, self.bias,
                             bn_training, momentum, self.eps, self.num_batches_tracked)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, bias={self.bias is not None}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch normalization over (N, C) or (N, C, L) input."""

    _dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalization over (N, C, H, W) input."""

    _dims = (4,)


class BatchNorm3d(_BatchNorm):
    """Batch normalization over (N, C, D, H, W) input."""

    _dims = (5,)
