"""jax rule for dot_general."""

from __future__ import annotations

from jax import lax

from ..ir.types import dtype_from_name
from . import lowers, to_jax_dtype


def result_dtype(x, accumulate: str):
    """lax's preferred_element_type for ``accumulate`` (Note [Accumulation dtype] in
    ir/ops/linalg.py): the operands' dtype unless it names another."""
    return to_jax_dtype(dtype_from_name(accumulate)) if accumulate else x.dtype


@lowers("dot_general")
def _dot_general(x, y, contract, batch, accumulate=""):
    dnums = ((tuple(a for a, _ in contract), tuple(b for _, b in contract)),
             (tuple(a for a, _ in batch), tuple(b for _, b in batch)))
    return lax.dot_general(x, y, dnums, precision=lax.Precision.HIGHEST,
                           preferred_element_type=result_dtype(x, accumulate))
