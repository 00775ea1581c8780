"""Timing that asynchronous dispatch cannot fake: calls in turns, every result waited for.

A *case* is ``(step, sync)``: ``step()`` runs one call (a training step, a function) and returns
its result; ``sync(result)`` waits until that result and the state the call wrote back are
computed. :func:`run_in_turns` times several cases against each other; :func:`measure` is the
fixed-count form the scripts in ``benchmarks/`` use.
"""

from __future__ import annotations

import math
import os
import statistics
import sys
import time
from dataclasses import dataclass, field

# ---------------------------------------------------------------------------------------------
# Note [Timing in turns]
# Each case first makes its first call alone, timed (for a compiled case that is trace, passes,
# XLA compile and one run), then ``warmup - 1`` untimed calls, then, when ``steps`` is not
# given, one more call that sets how many steps a round takes (about ROUND_MS). Then rounds:
# each round times ``steps`` calls of every case in turn and waits for the last result and the
# written-back state before the clock stops, so a load spike hits all cases alike and jax's
# asynchronous dispatch cannot hide work that is still queued. The number of rounds is ``repeat``
# when given; otherwise rounds go on until the median is pinned down (the distribution-free 95%
# confidence interval of every case's median is within ``tol`` of it) after MIN_ROUNDS, or the
# time ``budget`` is spent after at least 3, or MAX_ROUNDS. The compile time of a case is its
# first call minus its steady median: what the first call paid beyond a normal one.

ROUND_MS = 20.0  # a round of a case lasts about this long when steps are not given
MIN_ROUNDS, MAX_ROUNDS = 5, 200


@dataclass
class Timing:
    """One case's measurements, in milliseconds per call."""

    first_ms: float | None = None  # the first call, waited for (compiling, for compiled code)
    times: list = field(default_factory=list)  # ms per call, one number per round
    steps: int = 0  # calls per round
    first_value: float | None = None  # the first call's result, where it is one number
    rss_mb: float | None = None  # growth of the process's peak RSS over the first calls
    error: str | None = None

    @property
    def median(self) -> float | None:
        return statistics.median(self.times) if self.times else None


def run_in_turns(cases: dict, *, steps: int | None = None, repeat: int | None = None,
                 warmup: int = 3, budget: float = 10.0, tol: float = 0.05,
                 progress=None) -> dict[str, Timing]:
    """Time ``cases`` (name -> (step, sync)) against each other (Note [Timing in turns]).

    A case that raises gets ``Timing.error`` and drops out; the others carry on."""
    if warmup < 1:
        raise ValueError(f"warmup must be at least 1 (the first call compiles), got {warmup}")
    out = {name: Timing() for name in cases}
    per_round = {}
    for name, (step, sync) in cases.items():
        _stage(progress, f"{name}: first call" + (" (compiling)" if "compile" in name else ""))
        try:
            per_round[name] = _first_calls(out[name], step, sync, steps, warmup)
        except Exception as e:  # noqa: BLE001 - reported in the table
            out[name].error = error_text(e, where(e))
    live = [n for n in cases if out[n].error is None]
    start, rounds = time.perf_counter(), 0
    while live:
        _stage(progress, f"timing round {rounds + 1}" + (f"/{repeat}" if repeat else ""))
        for name in list(live):
            step, sync = cases[name]
            try:
                out[name].times.append(_round(step, sync, per_round[name]))
            except Exception as e:  # noqa: BLE001
                out[name].error = error_text(e, where(e))
                live.remove(name)
        rounds += 1
        if _done(rounds, repeat, time.perf_counter() - start, budget,
                 [out[n].times for n in live], tol):
            break
    return out


def _first_calls(t: Timing, step, sync, steps, warmup) -> int:
    """The first call (timed), the warm-up, and the steps a round takes."""
    rss0 = peak_rss_mb()
    t0 = time.perf_counter()
    result = step()
    sync(result)
    t.first_ms = (time.perf_counter() - t0) * 1e3
    t.first_value = _number(result)
    for _ in range(warmup - 1):
        sync(step())
    if steps is None:
        t0 = time.perf_counter()
        sync(step())
        ms = (time.perf_counter() - t0) * 1e3
        steps = max(1, min(1000, math.ceil(ROUND_MS / max(ms, 1e-3))))
    t.rss_mb = peak_rss_mb() - rss0
    t.steps = steps
    return steps


def _round(step, sync, steps: int) -> float:
    t0 = time.perf_counter()
    for _ in range(steps):
        result = step()
    sync(result)
    return (time.perf_counter() - t0) / steps * 1e3


def _done(rounds, repeat, elapsed, budget, series, tol) -> bool:
    if repeat is not None:
        return rounds >= repeat
    if rounds >= MAX_ROUNDS:
        return True
    if rounds >= MIN_ROUNDS and all(relative_interval(ts) <= tol for ts in series):
        return True
    return rounds >= 3 and elapsed >= budget


def median_interval(ts) -> tuple[float, float]:
    """A distribution-free 95% confidence interval of the median of ``ts`` (order statistics
    n/2 -+ 0.98 sqrt(n)); the whole range for fewer than about 10 samples."""
    s = sorted(ts)
    n = len(s)
    half = 0.98 * math.sqrt(n)
    lo = max(1, math.floor(n / 2 - half))
    hi = min(n, math.ceil(n / 2 + half))
    return s[lo - 1], s[hi - 1]


def relative_interval(ts) -> float:
    """The width of the median's confidence interval over the median."""
    if len(ts) < 2:
        return math.inf
    lo, hi = median_interval(ts)
    return (hi - lo) / max(statistics.median(ts), 1e-12)


def measure(cases: dict, steps: int, repeat: int, warmup: int) -> dict:
    """Median, min and max ms/step of each case, timed in turns so that load hits all alike.

    ``cases`` maps a name to ``(step, sync)``: ``step()`` runs one training step and returns the
    loss, ``sync(loss)`` waits until it and the updated state are computed. Each case first runs
    ``warmup`` steps (the first of which compiles); then each of ``repeat`` rounds times ``steps``
    steps of every case in turn. A case that raises gets ``{"error": message}`` and drops out.
    """
    res = run_in_turns(cases, steps=steps, repeat=repeat, warmup=max(1, warmup))
    out = {}
    for name, t in res.items():
        if t.error is not None:
            out[name] = {"error": t.error}
        else:
            out[name] = {"median": t.median, "min": min(t.times), "max": max(t.times),
                         "times": list(t.times), "first_loss": t.first_value}
    return out


def _number(result) -> float | None:
    try:
        return float(result.item()) if hasattr(result, "item") else None
    except Exception:  # noqa: BLE001 - not one number
        return None


def _stage(progress, text: str) -> None:
    if progress is not None:
        progress(text)


# -- synchronization ---------------------------------------------------------------------------


def arrays_in(obj) -> list:
    """The jax arrays behind the gcomp tensors and jax arrays of a (nested) result."""
    import jax

    from ..frontend.tensor import Tensor

    if isinstance(obj, Tensor):
        return [obj._array("gcomp.benchmark")]
    if isinstance(obj, jax.Array):
        return [obj]
    if isinstance(obj, (tuple, list)):
        return [a for o in obj for a in arrays_in(o)]
    if isinstance(obj, dict):
        return [a for o in obj.values() for a in arrays_in(o)]
    return []


def block(*objs) -> None:
    """Wait for every jax computation behind ``objs`` (results, tensors, arrays, storages)."""
    import jax

    jax.block_until_ready(arrays_in(list(objs)))


def gcomp_sync(*tensors) -> None:
    """Wait for gcomp's asynchronous jax work behind these tensors (eager dispatch is async)."""
    block(*tensors)


# -- reporting helpers -------------------------------------------------------------------------


def where(e: BaseException) -> str | None:
    """``file:line`` of the innermost frame of ``e``'s traceback in the user's code: outside
    gcomp, the standard library and installed packages."""
    import sysconfig

    skip = [os.path.dirname(os.path.dirname(os.path.abspath(__file__)))]
    skip += [p for k in ("stdlib", "purelib", "platlib") if (p := sysconfig.get_paths().get(k))]
    found, tb = None, e.__traceback__
    while tb is not None:
        path = tb.tb_frame.f_code.co_filename
        if not path.startswith("<") and not any(path.startswith(s) for s in skip):
            found = f"{os.path.basename(path)}:{tb.tb_lineno}"
        tb = tb.tb_next
    return found


def error_text(e: BaseException, at: str | None = None) -> str:
    """One line: ``[file:line: ]Type: message``."""
    text = f"{type(e).__name__}: {' '.join(str(e).split()) or '(no message)'}"
    return f"{at}: {text}" if at and at not in text else text


def short(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def peak_rss_mb() -> float:
    """The process's peak resident set so far, in MB (0 where ``resource`` is missing)."""
    try:
        import resource
    except ImportError:  # Windows
        return 0.0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes vs KiB


def torch_version() -> str | None:
    try:
        import torch
    except ImportError:
        return None
    return torch.__version__


def versions() -> str:
    import jax

    import gcomp

    return f"gcomp {gcomp.__version__}, jax {jax.__version__}, torch {torch_version() or '-'}"


def load_note(n_cores: int, hint: str = ", and torch with one thread per core can slow down "
              "many times over; compare --threads 1") -> str:
    """The 1-minute load average, with a warning where other work competes for the cores."""
    load = os.getloadavg()[0]
    note = f"load average {load:.1f} on {n_cores} cores"
    if load > 0.5 * n_cores:
        note += f" (loaded: timings are noisy{hint})"
    return note
