"""Convolution layers (torch.nn.Conv1d/2d/3d, ConvTranspose1d/2d/3d): parameters, defaults,
initialization and repr as PyTorch's; the computation is gcomp.nn.functional's."""

from __future__ import annotations

import math

from .. import init
from ..functional import _conv as F
from ..functional._common import NNValueError, uninitialized
from ..parameter import Parameter
from .module import Module

__all__ = ["Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d",
           "ConvTranspose3d"]

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


class _ConvNd(Module):
    """Shared by convolutions and transposed convolutions of every rank."""

    _nsp = 2
    transposed = False

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", output_padding=0, device=None,
                 dtype=None):
        super().__init__()
        n, name = self._nsp, type(self).__name__
        if groups <= 0:
            raise NNValueError(f"{name}: groups must be a positive integer")
        if in_channels % groups:
            raise NNValueError(f"{name}: in_channels must be divisible by groups")
        if out_channels % groups:
            raise NNValueError(f"{name}: out_channels must be divisible by groups")
        if padding_mode not in _PADDING_MODES:
            raise NNValueError(f"{name}: padding_mode must be one of {list(_PADDING_MODES)}, but "
                             f"got padding_mode='{padding_mode}'")
        if self.transposed and padding_mode != "zeros":
            raise NNValueError(f"Only \"zeros\" padding mode is supported for {name}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = F._tuple(kernel_size, n, "kernel_size")
        self.stride = F._tuple(stride, n, "stride")
        self.dilation = F._tuple(dilation, n, "dilation")
        if isinstance(padding, str):
            if padding not in ("valid", "same"):
                raise NNValueError(f"Invalid padding string {padding!r}, should be one of "
                                 "['valid', 'same']")
            if padding == "same" and any(s != 1 for s in self.stride):
                raise NNValueError("padding='same' is not supported for strided convolutions")
            self.padding = padding
        else:
            self.padding = F._tuple(padding, n, "padding")
        self.output_padding = F._tuple(output_padding, n, "output_padding")
        self.groups = groups
        self.padding_mode = padding_mode
        if self.transposed:
            shape = (in_channels, out_channels // groups, *self.kernel_size)
        else:
            shape = (out_channels, in_channels // groups, *self.kernel_size)
        self.weight = Parameter(uninitialized(*shape, dtype=dtype, device=device))
        if bias:
            self.bias = Parameter(uninitialized(out_channels, dtype=dtype, device=device))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """torch's: kaiming_uniform_(a=sqrt(5)) for the weight, which is uniform(+-1/sqrt(fan_in)),
        and uniform(+-1/sqrt(fan_in)) for the bias, fan_in = weight.size(1) * prod(kernel)."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            init.uniform_(self.bias, -bound, bound)

    def extra_repr(self) -> str:
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0,) * self._nsp:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * self._nsp:
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * self._nsp:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class _Conv(_ConvNd):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, 0, device, dtype)

    def _conv_forward(self, input, weight, bias):
        padding = self.padding
        if self.padding_mode != "zeros":
            if padding == "same":
                pads = F.same_padding(self.kernel_size, self.dilation)
            elif padding == "valid":
                pads = ((0, 0),) * self._nsp
            else:
                pads = tuple((p, p) for p in padding)
            input = F.pad_spatial(input, pads, self.padding_mode)
            padding = 0
        return F._conv(input, weight, bias, self.stride, padding, self.dilation, self.groups,
                       self._nsp, f"conv{self._nsp}d")

    def forward(self, input):
        return self._conv_forward(input, self.weight, self.bias)


class Conv1d(_Conv):
    """1-d convolution over (N, C, L) or (C, L) input."""

    _nsp = 1


class Conv2d(_Conv):
    """2-d convolution over (N, C, H, W) or (C, H, W) input."""

    _nsp = 2


class Conv3d(_Conv):
    """3-d convolution over (N, C, D, H, W) or (C, D, H, W) input."""

    _nsp = 3


class _ConvTranspose(_ConvNd):
    transposed = True

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1, padding_mode="zeros",
                 device=None, dtype=None):
        if isinstance(padding, str):
            raise NNValueError(f"{type(self).__name__} does not support a padding string, got "
                             f"padding={padding!r}")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, output_padding, device, dtype)

    def _output_padding(self, input, output_size):
        """torch's ConvTransposeNd._output_padding: the output_padding that gives output_size."""
        if output_size is None:
            return self.output_padding
        n = self._nsp
        output_size = list(output_size)[-n:]
        if len(output_size) != n:
            raise NNValueError(f"output_size must have {n} or {n + 2} elements (got "
                             f"{len(output_size)})")
        spatial = list(input.shape)[-n:]
        out = []
        for d in range(n):
            k, s, p, dl = (self.kernel_size[d], self.stride[d], self.padding[d],
                           self.dilation[d])
            min_size = (spatial[d] - 1) * s - 2 * p + dl * (k - 1) + 1
            if not min_size <= output_size[d] <= min_size + s - 1:
                raise NNValueError(f"requested an output size of {output_size}, but valid sizes "
                                 f"range from {min_size} to {min_size + s - 1} in dim {d} (for "
                                 f"an input of {spatial})")
            out.append(output_size[d] - min_size)
        return tuple(out)

    def forward(self, input, output_size=None):
        output_padding = self._output_padding(input, output_size)
        return F._conv_transpose(input, self.weight, self.bias, self.stride, self.padding,
                                 output_padding, self.groups, self.dilation, self._nsp,
                                 f"conv_transpose{self._nsp}d")


class ConvTranspose1d(_ConvTranspose):
    """1-d transposed convolution (the gradient of Conv1d with respect to its input)."""

    _nsp = 1


class ConvTranspose2d(_ConvTranspose):
    """2-d transposed convolution (the gradient of Conv2d with respect to its input)."""

    _nsp = 2


class ConvTranspose3d(_ConvTranspose):
    """3-d transposed convolution (the gradient of Conv3d with respect to its input)."""

    _nsp = 3
