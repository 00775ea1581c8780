"""Counter-based random numbers: a key is u32[2] (threefry); draws never mutate a key."""

from __future__ import annotations

from ..errors import ShapeError
from ..types import TensorType, uint32
from . import declare


def _check_key(op, key):
    if key.shape != (2,) or key.dtype != uint32:
        raise ShapeError(f"{op}: a key is u32[2], got {key}")


@declare("random_bits", "random", 1, {"shape": "shape"}, differentiable=False)
def _random_bits(types, shape):
    _check_key("random_bits", types[0])
    return [TensorType(tuple(shape), uint32)]


@declare("random_split", "random", 1, {"num": "int"}, differentiable=False)
def _random_split(types, num):
    _check_key("random_split", types[0])
    if num < 1:
        raise ShapeError("random_split: num must be >= 1")
    return [TensorType((num, 2), uint32)]
