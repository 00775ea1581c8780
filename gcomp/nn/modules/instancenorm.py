"""Instance normalization layers (torch.nn.InstanceNorm1d/2d/3d): batch norm's parameters and
buffers (affine=False and track_running_stats=False by default), statistics per sample."""

from __future__ import annotations

import warnings

from ..functional import _norm as F
from ..functional._common import NNValueError
from .batchnorm import _BatchNorm

__all__ = ["InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d"]


class _InstanceNorm(_BatchNorm):
    _nsp = 2

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=False,
                 track_running_stats=False, device=None, dtype=None, *, bias=True):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype,
                         bias=bias)

    def forward(self, input):
        if input.dim() not in (self._nsp + 1, self._nsp + 2):
            raise NNValueError(f"expected {self._nsp + 1}D or {self._nsp + 2}D input (got "
                               f"{input.dim()}D input)")
        feature_dim = input.dim() - self._nsp - 1
        if input.size(feature_dim) != self.num_features:
            if self.affine:
                raise NNValueError(f"expected input's size at dim={feature_dim} to match "
                                   f"num_features ({self.num_features}), but got: "
                                   f"{input.size(feature_dim)}.")
            warnings.warn(f"input's size at dim={feature_dim} does not match num_features. You "
                          "can silence this warning by not passing in num_features, which is "
                          "not used because affine=False", stacklevel=2)
        unbatched = input.dim() == self._nsp + 1
        x = input.unsqueeze(0) if unbatched else input
        out = F.instance_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                              self.training or not self.track_running_stats,
                              self.momentum if self.momentum is not None else 0.0, self.eps)
        return out.squeeze(0) if unbatched else out


class InstanceNorm1d(_InstanceNorm):
    """Instance normalization over (N, C, L) or (C, L) input."""

    _nsp = 1


class InstanceNorm2d(_InstanceNorm):
    """Instance normalization over (N, C, H, W) or (C, H, W) input."""

    _nsp = 2


class InstanceNorm3d(_InstanceNorm):
    """Instance normalization over (N, C, D, H, W) or (C, D, H, W) input."""

    _nsp = 3
