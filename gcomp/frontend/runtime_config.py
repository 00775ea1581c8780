"""torch's process-wide knobs: thread counts and float32 matmul precision.

XLA's CPU client sizes its thread pool once, when jax first creates it (one thread per core it
may run on), and cannot resize it afterwards. So ``get_num_threads`` reports that pool's size,
and ``set_num_threads`` to another number warns once, saying how to choose the size: start the
process pinned to fewer cores (``taskset -c 0 python ...``), which jax reads at start-up.
``set_float32_matmul_precision`` is recorded and returned by the getter: gcomp runs float32
matmuls and convolutions at full float32 precision on every backend, which every setting
allows ("high" and "medium" permit, not require, TF32 or bfloat16 passes); low precision is
``gcomp.compile(..., precision="bf16")``.
"""

from __future__ import annotations

import os
import warnings

from ..core.dispatch import user_error
from ..ir.errors import GcompError

_PRECISION = ["highest"]
_WARNED = [False]


def _pool_size() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def get_num_threads() -> int:
    return _pool_size()


def set_num_threads(n: int) -> None:
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise user_error(GcompError, f"set_num_threads: expected a positive int, got {n!r}")
    if n != _pool_size() and not _WARNED[0]:
        _WARNED[0] = True
        warnings.warn(f"set_num_threads({n}): XLA's CPU thread pool keeps its start-up size "
                      f"({_pool_size()} threads); to run on fewer cores start the process "
                      f"pinned to them (taskset -c 0-{n - 1} python ...)", stacklevel=2)


def get_num_interop_threads() -> int:
    return _pool_size()


def set_num_interop_threads(n: int) -> None:
    set_num_threads(n)


def set_float32_matmul_precision(precision: str) -> None:
    if precision not in ("highest", "high", "medium"):
        raise user_error(GcompError, f"set_float32_matmul_precision: expected 'highest', 'high' "
                         f"or 'medium', got {precision!r}")
    _PRECISION[0] = precision


def get_float32_matmul_precision() -> str:
    return _PRECISION[0]
