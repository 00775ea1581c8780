"""linear and bilinear: one dot_general each (no transpose of the weight), plus a broadcast add."""

from __future__ import annotations

from gcomp import GcompError, Tensor
from gcomp.core import prims as P
from gcomp.frontend.autocast import lower_precision
from gcomp.runtime.compiled import composite

from ._common import expand

__all__ = ["linear", "bilinear"]


def _check_dtypes(name, *ts):
    dts = {t.dtype for t in ts if t is not None}
    if len(dts) > 1:
        raise GcompError(f"{name}: expected all tensors to have the same dtype, got "
                         f"{', '.join(sorted(d.name for d in dts))} (cast the input or the "
                         "module with .to(dtype))")


def _add_bias(out: Tensor, bias) -> Tensor:
    if bias is None:
        return out
    if bias.ndim == 1 and out.ndim >= 1 and bias.shape[0] == out.shape[-1]:
        return P.add(out, expand(bias, out._type.shape))
    return out + bias  # unusual shapes: PyTorch's broadcasting rules


@lower_precision
def linear(input: Tensor, weight: Tensor, bias=None) -> Tensor:
    """y = x W^T + b, contracting x's last dim with W's dim 1."""
    _check_dtypes("linear", input, weight, bias)
    if input.ndim == 0 or weight.ndim not in (1, 2) or input.shape[-1] != weight.shape[-1]:
        rows = 1
        for d in input.shape[:-1]:
            rows *= d
        a = f"{rows}x{input.shape[-1] if input.ndim else 1}"
        b = "x".join(map(str, reversed(weight.shape)))
        raise GcompError(f"mat1 and mat2 shapes cannot be multiplied ({a} and {b})")
    return _linear(input, weight, bias)


@composite
def _linear(input, weight, bias):
    """Eagerly one compiled call forward and one backward (runtime.compiled.composite)."""
    out = P.dot_general(input, weight, contract=((input.ndim - 1, weight.ndim - 1),))
    return _add_bias(out, bias)


def bilinear(input1: Tensor, input2: Tensor, weight: Tensor, bias=None) -> Tensor:
    """y_k = x1^T W_k x2 + b_k over leading batch dims: two dot_generals."""
    _check_dtypes("bilinear", input1, input2, weight, bias)
    if weight.ndim != 3 or input1.shape[-1] != weight.shape[1] or \
            input2.shape[-1] != weight.shape[2] or input1.shape[:-1] != input2.shape[:-1]:
        raise GcompError(f"bilinear: input1 {list(input1.shape)}, input2 {list(input2.shape)} "
                         f"and weight {list(weight.shape)} do not fit (weight must be "
                         "[out, in1, in2] and the inputs must agree on their leading dims)")
    lead = tuple(input1.shape[:-1])
    n = 1
    for d in lead:
        n *= d
    x1 = P.reshape(input1, shape=(n, input1.shape[-1])) if input1.ndim != 2 else input1
    x2 = P.reshape(input2, shape=(n, input2.shape[-1])) if input2.ndim != 2 else input2
    tmp = P.dot_general(x1, weight, contract=((1, 1),))  # [n, out, in2]
    out = P.dot_general(tmp, x2, contract=((2, 1),), batch=((0, 0),))  # [n, out]
    if input1.ndim != 2:
        out = P.reshape(out, shape=lead + (weight.shape[0],))
    return _add_bias(out, bias)
