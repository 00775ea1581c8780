"""jax rules for counter-based random numbers (threefry keys as u32[2])."""

from __future__ import annotations

import math

import jax
import numpy as np

from . import lowers


def _key(raw):
    return jax.random.wrap_key_data(raw, impl="threefry2x32")


@lowers("random_bits")
def _random_bits(key, shape):
    # Drawn flat and reshaped: the same bits (threefry counts over the flat index either way),
    # but XLA compiles a multi-dimensional threefry draw many times slower (seconds for a
    # 32x4x8x8 dropout mask, against a fraction of one flat).
    shape = tuple(shape)
    return jax.random.bits(_key(key), (math.prod(shape),), np.uint32).reshape(shape)


@lowers("random_split")
def _random_split(key, num):
    return jax.random.key_data(jax.random.split(_key(key), num))
