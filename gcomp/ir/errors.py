"""The root of every error a user can cause. Lives in ``ir`` because ``ir`` imports nothing else."""

from __future__ import annotations


class GcompError(RuntimeError):
    """An error caused by the user's program or input; the message says what to do next.

    A RuntimeError, as PyTorch's errors mostly are, so ``except RuntimeError`` in torch code
    catches it (index errors are also IndexErrors: GcompIndexError)."""


class IRParseError(GcompError):
    """Bad IR text: carries the line and column where parsing failed."""

    def __init__(self, message: str, line: int, column: int):
        super().__init__(f"line {line}, column {column}: {message}")
        self.line = line
        self.column = column


class IRVerifyError(GcompError):
    """A graph that breaks SSA, typing or an op's shape rule."""


class ShapeError(GcompError):
    """Operands whose shapes or dtypes an op does not accept."""
