"""random_bits draws flat and reshapes (faster XLA compiles): the bits must be jax's own."""

import jax
import numpy as np
import pytest

from gcomp.lowering.random import _random_bits


@pytest.mark.parametrize("shape", [(), (7,), (4, 3, 2, 5), (32, 4, 8, 8)])
def test_random_bits_equal_jax_multidimensional_draw(shape):
    key = np.array([3, 42], np.uint32)
    want = jax.random.bits(jax.random.wrap_key_data(key, impl="threefry2x32"), shape, np.uint32)
    np.testing.assert_array_equal(np.asarray(_random_bits(key, shape)), np.asarray(want))
