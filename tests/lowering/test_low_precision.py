"""Ops on bfloat16 and float16 tensors take the float lowerings, eagerly and compiled, and agree
with torch's CPU results in the same dtype. (numpy's issubdtype does not count ml_dtypes'
bfloat16 as inexact: bf16 division, remainder and power once took the integer paths and max
pooling looked up an integer minimum.)"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import gcomp

OPS = {
    "div": lambda T, a, b: a / b,
    "div_scalar": lambda T, a, b: a / 3,
    "remainder": lambda T, a, b: a % b,
    "pow": lambda T, a, b: a.abs() ** b,
    "floor_divide": lambda T, a, b: T.floor_divide(a, b),
    "max_pool": lambda T, a, b: T.nn.functional.max_pool2d(a.reshape(1, 1, 4, 6), 2),
}


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize("op", sorted(OPS))
def test_low_precision_float_ops_match_torch(op, dtype):
    rng = np.random.default_rng(0)
    a = rng.uniform(-4, 4, (4, 6)).astype(np.float32)
    b = rng.choice([-1.5, 0.75, 2.0, 3.0], (4, 6)).astype(np.float32)
    want = OPS[op](torch, *(torch.tensor(v).to(getattr(torch, dtype)) for v in (a, b)))
    args = [gcomp.tensor(v).to(getattr(gcomp, dtype)) for v in (a, b)]
    fn = lambda a, b: OPS[op](gcomp, a, b)  # noqa: E731
    for got in (fn(*args), gcomp.compile(fn)(*args)):
        assert got.dtype == getattr(gcomp, dtype)
        np.testing.assert_allclose(got.float().numpy(), want.float().numpy(), rtol=1e-2,
                                   atol=1e-2)
