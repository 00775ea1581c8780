"""jax rule for dot_general."""

from __future__ import annotations

from jax import lax

from . import lowers


@lowers("dot_general")
def _dot_general(x, y, contract, batch):
    dnums = ((tuple(a for a, _ in contract), tuple(b for _, b in contract)),
             (tuple(a for a, _ in batch), tuple(b for _, b in batch)))
    return lax.dot_general(x, y, dnums, precision=lax.Precision.HIGHEST,
                           preferred_element_type=x.dtype)
