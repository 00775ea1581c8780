"""jax rules for counter-based random numbers (threefry keys as u32[2])."""

from __future__ import annotations

import jax
import numpy as np

from . import lowers


def _key(raw):
    return jax.random.wrap_key_data(raw, impl="threefry2x32")


@lowers("random_bits")
def _random_bits(key, shape):
    return jax.random.bits(_key(key), tuple(shape), np.uint32)


@lowers("random_split")
def _random_split(key, num):
    return jax.random.key_data(jax.random.split(_key(key), num))
