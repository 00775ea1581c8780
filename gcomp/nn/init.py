"""Parameter initialization (torch.nn.init): each function fills a tensor in place under no_grad
and returns it. The formulas are PyTorch's.

Random fills take one key from gcomp's generator (so gcomp.manual_seed makes them reproducible)
and draw on the host with numpy seeded by that key: eager gcomp ops compile once per new shape,
and a model has many parameter shapes, so drawing with ops would make building a model slow.
Inside gcomp.compile (keys are not concrete there) they draw with gcomp ops instead.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

import gcomp
from gcomp import GcompError, Tensor

from .functional._common import tracing

__all__ = ["calculate_gain", "uniform_", "normal_", "trunc_normal_", "constant_", "ones_",
           "zeros_", "eye_", "dirac_", "xavier_uniform_", "xavier_normal_", "kaiming_uniform_",
           "kaiming_normal_", "orthogonal_"]


class InitValueError(GcompError, ValueError):
    pass


def calculate_gain(nonlinearity: str, param=None) -> float:
    """The recommended gain for a nonlinearity (PyTorch's table)."""
    linear_fns = ["linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                  "conv_transpose3d"]
    if nonlinearity in linear_fns or nonlinearity == "sigmoid":
        return 1
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            negative_slope = 0.01
        elif not isinstance(param, bool) and isinstance(param, (int, float)):
            negative_slope = param
        else:
            raise InitValueError(f"negative_slope {param} not a valid number")
        return math.sqrt(2.0 / (1 + negative_slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise InitValueError(f"Unsupported nonlinearity {nonlinearity}")


def _calculate_fan_in_and_fan_out(tensor: Tensor):
    if tensor.dim() < 2:
        raise InitValueError("Fan in and fan out can not be computed for tensor with fewer than "
                             "2 dimensions")
    receptive = math.prod(tensor.shape[2:])
    return tensor.size(1) * receptive, tensor.size(0) * receptive


def _calculate_correct_fan(tensor: Tensor, mode: str) -> int:
    mode = mode.lower()
    if mode not in ("fan_in", "fan_out"):
        raise InitValueError(f"Mode {mode} not supported, please use one of fan_in, fan_out")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def _host_rng(generator):
    """A numpy generator seeded by a fresh key of gcomp's generator; None inside a trace."""
    if tracing():
        return None
    key = np.asarray((generator or gcomp.default_generator).next_key())
    return np.random.default_rng([int(k) for k in key])


def _fill(tensor: Tensor, values: np.ndarray) -> Tensor:
    with gcomp.no_grad():
        return tensor.copy_(gcomp.tensor(np.reshape(values, tuple(tensor.shape)),
                                         dtype=tensor.dtype))


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0, generator=None) -> Tensor:
    rng = _host_rng(generator)
    if rng is None:
        with gcomp.no_grad():
            return tensor.uniform_(a, b, generator=generator)
    return _fill(tensor, rng.uniform(a, b, size=tuple(tensor.shape)))


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, generator=None) -> Tensor:
    rng = _host_rng(generator)
    if rng is None:
        with gcomp.no_grad():
            return tensor.normal_(mean, std, generator=generator)
    return _fill(tensor, rng.normal(mean, std, size=tuple(tensor.shape)))


def trunc_normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0,
                  b: float = 2.0, generator=None) -> Tensor:
    """normal(mean, std) restricted to [a, b] (the inverse CDF of a uniform draw)."""
    def norm_cdf(x):
        return (1.0 + math.erf(x / math.sqrt(2.0))) / 2.0

    if mean < a - 2 * std or mean > b + 2 * std:
        warnings.warn("mean is more than 2 std from [a, b] in nn.init.trunc_normal_. The "
                      "distribution of values may be incorrect.", stacklevel=2)
    lo, hi = norm_cdf((a - mean) / std), norm_cdf((b - mean) / std)
    rng = _host_rng(generator)
    with gcomp.no_grad():
        if rng is None:
            u = gcomp.rand(tuple(tensor.shape), generator=generator, dtype=gcomp.float32)
        else:
            u = gcomp.tensor(rng.uniform(size=tuple(tensor.shape)), dtype=gcomp.float64)
        z = gcomp.erfinv(u * (2 * hi - 2 * lo) + (2 * lo - 1)) * (std * math.sqrt(2.0)) + mean
        return tensor.copy_(gcomp.clamp(z, a, b))


def constant_(tensor: Tensor, val: float) -> Tensor:
    with gcomp.no_grad():
        return tensor.fill_(val)


def ones_(tensor: Tensor) -> Tensor:
    return constant_(tensor, 1.0)


def zeros_(tensor: Tensor) -> Tensor:
    return constant_(tensor, 0.0)


def eye_(tensor: Tensor) -> Tensor:
    if tensor.ndim != 2:
        raise InitValueError("Only tensors with 2 dimensions are supported")
    with gcomp.no_grad():
        return tensor.copy_(gcomp.eye(*tensor.shape, dtype=tensor.dtype))


def dirac_(tensor: Tensor, groups: int = 1) -> Tensor:
    """The Dirac delta for {3,4,5}-d conv weights: identity over channels (per group)."""
    if tensor.ndim not in (3, 4, 5):
        raise InitValueError("Only tensors with 3, 4, or 5 dimensions are supported")
    sizes = tensor.shape
    if sizes[0] % groups != 0:
        raise InitValueError("dim 0 must be divisible by groups")
    out_per_group = sizes[0] // groups
    min_dim = min(out_per_group, sizes[1])
    w = np.zeros(tuple(sizes))
    centre = tuple(s // 2 for s in sizes[2:])
    for g in range(groups):
        for d in range(min_dim):
            w[(g * out_per_group + d, d) + centre] = 1
    return _fill(tensor, w)


def xavier_uniform_(tensor: Tensor, gain: float = 1.0, generator=None) -> Tensor:
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    a = math.sqrt(3.0) * std
    return uniform_(tensor, -a, a, generator)


def xavier_normal_(tensor: Tensor, gain: float = 1.0, generator=None) -> Tensor:
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return normal_(tensor, 0.0, std, generator)


def _kaiming_std(tensor, a, mode, nonlinearity):
    fan = _calculate_correct_fan(tensor, mode)
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def kaiming_uniform_(tensor: Tensor, a: float = 0, mode: str = "fan_in",
                     nonlinearity: str = "leaky_relu", generator=None) -> Tensor:
    if 0 in tensor.shape:
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=2)
        return tensor
    bound = math.sqrt(3.0) * _kaiming_std(tensor, a, mode, nonlinearity)
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(tensor: Tensor, a: float = 0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu", generator=None) -> Tensor:
    if 0 in tensor.shape:
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=2)
        return tensor
    return normal_(tensor, 0.0, _kaiming_std(tensor, a, mode, nonlinearity), generator)


def orthogonal_(tensor: Tensor, gain: float = 1.0, generator=None) -> Tensor:
    """A (semi-)orthogonal matrix from the QR decomposition of a normal draw, sign-fixed so the
    distribution is uniform (Haar), as PyTorch; dims after the first are flattened."""
    if tensor.ndim < 2:
        raise InitValueError("Only tensors with 2 or more dimensions are supported")
    if tensor.numel() == 0:
        return tensor
    rows = tensor.shape[0]
    cols = tensor.numel() // rows
    rng = _host_rng(generator)
    if rng is None:
        raise GcompError("orthogonal_ needs a QR decomposition on the host; initialize "
                         "outside gcomp.compile")
    flat = rng.standard_normal((rows, cols))
    if rows < cols:
        flat = flat.T
    q, r = np.linalg.qr(flat)
    q = q * np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return _fill(tensor, q * gain)
