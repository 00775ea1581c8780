"""``gcomp.benchmark``: a function or a training step, eager against compiled (and peers).

Each *variant* of the target is timed in turns with the others (Note [Timing in turns] in
measure.py): ``eager`` calls the function, ``compiled`` calls ``gcomp.compile(function)``; a
built-in workload (workloads.py) can add ``torch`` (PyTorch eager), ``torch.compile`` (the same
torch model through ``torch.compile``, optimizer step eager) and ``jax`` (the hand-written JAX
step of jax_steps.py, jitted, parameters and optimizer state donated).

The JSON that ``gcomp bench --json`` writes (``BenchResult.to_json`` is one entry of ``targets``):

    versions            {"gcomp", "jax", "torch" (null without torch), "python"}
    machine             {"platform", "cores", "load_average"}
    settings            {"steps", "repeat", "warmup", "budget_s", "compare"}: null is automatic
    targets[]           {"name", "what", "rows"[], "ratios"}
      rows[]            one per variant:
        name            "eager", "compiled", "torch", "torch.compile", "jax" or a compare name
        median_ms       median time of one call over the rounds (null when it failed)
        min_ms, max_ms  the fastest and slowest round (ms per call)
        interval_ms     [lo, hi]: a 95% confidence interval of the median
        rounds, steps   how many rounds were timed, of how many calls each
        first_ms        the first call, waited for: for compiled code trace + passes + compile
        compile_s       first_ms minus median_ms, in seconds: what the first call paid extra
        rss_mb          growth of the process's peak resident memory over the first calls
        first_value     the first call's result where it is one number (a loss), else null
        vs_eager        median_ms / the eager median_ms
        xla             compiled rows: {"temp_bytes", "argument_bytes", "output_bytes",
                        "alias_bytes"} summed over the executables, "executables": [{"name",
                        those four}] from XLA's memory analysis, "cache_size": the
                        CompiledFunction's cache_info().size; null for other rows
        error           why the variant has no timing ("Type: message"), else null
      ratios            {"compiled/eager", "compiled/torch", ...}: medians over medians
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from .measure import block, cores, error_text, run_in_turns, torch_version

COMPARE = {"torch": ("torch", "torch.compile"), "torch-eager": ("torch",),
           "torch.compile": ("torch.compile",), "jax": ("jax",)}


@dataclass
class Case:
    """One variant: ``step()`` makes one call, ``sync(result)`` waits for it and its state."""

    name: str
    step: Callable | None
    sync: Callable | None
    xla: Callable | None = None  # () -> the "xla" dict of its row
    error: str | None = None  # it could not be set up
    compiled: object = None  # gcomp's compiled function, with the inputs it is called on
    inputs: tuple = ()


@dataclass
class Row:
    name: str
    median_ms: float | None = None
    min_ms: float | None = None
    max_ms: float | None = None
    interval_ms: list | None = None
    rounds: int = 0
    steps: int = 0
    first_ms: float | None = None
    compile_s: float | None = None
    rss_mb: float | None = None
    first_value: float | None = None
    vs_eager: float | None = None
    xla: dict | None = None
    error: str | None = None


@dataclass
class BenchResult:
    """What :func:`benchmark` measured: ``result["compiled"].median_ms``, ``print(result)``."""

    name: str
    what: str = ""
    rows: list[Row] = field(default_factory=list)

    def __getitem__(self, variant: str) -> Row:
        for r in self.rows:
            if r.name == variant:
                return r
        raise KeyError(f"{variant!r}: this result has {[r.name for r in self.rows]}")

    def median(self, variant: str) -> float | None:
        return self[variant].median_ms

    @property
    def ratios(self) -> dict[str, float]:
        """compiled/eager, compiled/torch, ...: medians over medians."""
        med = {r.name: r.median_ms for r in self.rows if r.median_ms is not None}
        c = med.get("compiled")
        return {f"compiled/{o}": c / m for o, m in med.items() if c is not None and o != "compiled"}

    def table(self) -> str:
        from .report import table

        return table([self])

    def __str__(self) -> str:
        return self.table()

    def to_json(self) -> dict:
        return {"name": self.name, "what": self.what, "rows": [asdict(r) for r in self.rows],
                "ratios": self.ratios}


def benchmark(fn, *args, steps: int | None = None, repeat: int | None = None, warmup: int = 3,
              compare=(), name: str | None = None, budget: float = 10.0, progress=None,
              compile_options: dict | None = None, seed: int = 0, **kwargs) -> BenchResult:
    """Time ``fn(*args, **kwargs)`` eagerly and ``gcomp.compile(fn)`` on the same arguments.

    ``fn`` may also be a compiled function (its original is the eager variant), a module, or
    the name of a built-in workload (``"mlp"``: its training step, with ``compare`` from
    ``"torch"``, ``"torch-eager"``, ``"torch.compile"`` and ``"jax"``). For your own function
    ``compare`` is ``(name, step)`` pairs (or a dict) of functions of no arguments to time too.
    ``steps`` calls a round and ``repeat`` rounds; by default both adapt: rounds of about 20 ms
    until the median is known within 5% or ``budget`` seconds of rounds are spent (Note [Timing
    in turns] in gcomp/bench/measure.py). ``warmup`` calls come first, the first timed alone
    (compile time). ``compile_options`` go to ``gcomp.compile`` (passes=, options=, ...).
    ``progress``: show a progress line on stderr (default: when stderr is a terminal).
    Returns a :class:`BenchResult`; ``print`` it for the table."""
    from ..core.dispatch import user_error
    from ..ir.errors import GcompError
    from .workloads import WORKLOADS, Workload

    if isinstance(fn, str):
        if fn not in WORKLOADS:
            raise user_error(GcompError, f"gcomp.benchmark: {fn!r} is not a built-in workload; "
                             f"choose from {', '.join(WORKLOADS)} or pass a function")
        fn = WORKLOADS[fn]
    if isinstance(fn, Workload):
        if args or kwargs:
            raise user_error(GcompError, "gcomp.benchmark: a built-in workload makes its own "
                             "inputs; pass no arguments (use Workload.with_batch for the batch)")
        cases = workload_cases(fn, _compare_names(compare), seed)
        what, name = fn.what, name or fn.name
    elif callable(fn):
        cases = function_cases(fn, args, kwargs, name, compile_options)
        cases += _compare_steps(compare)
        cf = getattr(fn, "_compiled", fn)  # a CompiledModule's CompiledFunction
        name = name or getattr(cf, "name", None) or getattr(fn, "__name__", type(fn).__name__)
        what = _describe(args)
    else:
        raise user_error(GcompError, f"gcomp.benchmark expects a function or a workload name, "
                         f"got {type(fn).__name__}")
    return run_cases(name, what, cases, steps=steps, repeat=repeat, warmup=warmup,
                     budget=budget, progress=progress)


def run_cases(name, what, cases: list[Case], *, steps=None, repeat=None, warmup=3,
              budget=10.0, progress=None) -> BenchResult:
    """Time ``cases`` in turns and assemble the rows."""
    from ..core.dispatch import user_error
    from ..ir.errors import GcompError
    from .report import Progress

    for label, value in (("steps", steps), ("repeat", repeat), ("warmup", warmup)):
        if value is not None and value < 1:
            raise user_error(GcompError, f"gcomp.benchmark: {label} must be at least 1 (warmup "
                             f"includes the first call, which compiles), got {value}")
    runnable = {c.name: (c.step, c.sync) for c in cases if c.error is None}
    with Progress(name, progress) as bar:
        timings = run_in_turns(runnable, steps=steps, repeat=repeat, warmup=warmup,
                               budget=budget, progress=bar)
    result = BenchResult(name, what)
    for c in cases:
        result.rows.append(_row(c, timings.get(c.name)))
    eager = result.rows[0].median_ms if result.rows and result.rows[0].name == "eager" else None
    for r in result.rows:
        if eager and r.median_ms is not None:
            r.vs_eager = r.median_ms / eager
    return result


def _row(case: Case, t) -> Row:
    from .measure import median_interval

    row = Row(case.name, error=case.error)
    if t is None:
        return row
    row.first_ms, row.rss_mb, row.first_value = t.first_ms, t.rss_mb, t.first_value
    row.steps, row.rounds, row.error = t.steps, len(t.times), t.error
    if t.times:
        row.median_ms, row.min_ms, row.max_ms = t.median, min(t.times), max(t.times)
        row.interval_ms = list(median_interval(t.times))
        row.compile_s = max(0.0, (t.first_ms - t.median) / 1e3)
    if case.xla is not None and t.first_ms is not None:
        try:
            row.xla = case.xla()
        except Exception as e:  # noqa: BLE001 - the timing stands without it
            row.xla = {"error": error_text(e)}
    return row


# -- the variants of a function ----------------------------------------------------------------


def function_cases(fn, args, kwargs, name, compile_options) -> list[Case]:
    """``eager``: ``fn(*args)``; ``compiled``: ``gcomp.compile(fn)(*args)``. Both wait for the
    results, the arguments and the state the compiled function writes back (the same state
    objects the eager calls update)."""
    from ..nn.modules.compiled import CompiledModule
    from ..runtime.compiled import CompiledFunction, compile

    if isinstance(fn, (CompiledFunction, CompiledModule)):
        eager = fn._orig_mod if isinstance(fn, CompiledModule) else fn.fn
        compiled = fn
    else:
        eager = fn
        compiled = compile(fn, name=name, **(compile_options or {}))

    def sync(result):
        block(result, args, kwargs, state_arrays(compiled))

    return [Case("eager", lambda: eager(*args, **kwargs), sync),
            Case("compiled", lambda: compiled(*args, **kwargs), sync,
                 xla=lambda: xla_memory(compiled), compiled=compiled, inputs=args)]


def _entries(compiled) -> list:
    cf = getattr(compiled, "_compiled", compiled)  # a CompiledModule's CompiledFunction
    return [e for entries in cf._cache.values() for e in entries]


def state_arrays(compiled) -> list:
    """The arrays of the state (parameters, optimizer state, ...) a compiled function captured."""
    return [st.data for e in _entries(compiled) for st in e.state_storages]


def xla_memory(compiled) -> dict:
    """XLA's memory analysis of every executable a compiled function holds."""
    from ..runtime.compiled import _lowered

    exes = []
    for e in _entries(compiled):
        for exe, graph, jitted in e.executables:
            exes.append({"name": exe, **_memory(_lowered(jitted, graph).compile())})
    cf = getattr(compiled, "_compiled", compiled)
    return {**_totals(exes), "executables": exes, "cache_size": cf.cache_info().size}


MEMORY_FIELDS = {"temp_bytes": "temp_size_in_bytes", "argument_bytes": "argument_size_in_bytes",
                 "output_bytes": "output_size_in_bytes", "alias_bytes": "alias_size_in_bytes"}


def _memory(executable) -> dict:
    stats = executable.memory_analysis()
    if stats is None:  # a backend without the analysis
        return dict.fromkeys(MEMORY_FIELDS)
    return {k: getattr(stats, attr, None) for k, attr in MEMORY_FIELDS.items()}


def _totals(exes) -> dict:
    return {k: sum(e[k] or 0 for e in exes) if exes else None for k in MEMORY_FIELDS}


def _describe(args) -> str:
    from ..frontend.tensor import Tensor

    parts = [f"{a.dtype}{list(a.shape)}" if isinstance(a, Tensor) else type(a).__name__
             for a in args]
    return f"({', '.join(parts)})" if parts else "()"


def _compare_steps(compare) -> list[Case]:
    from ..core.dispatch import user_error
    from ..ir.errors import GcompError

    items = compare.items() if isinstance(compare, dict) else compare
    cases = []
    for item in items:
        if isinstance(item, str) or not (len(item) == 2 and callable(item[1])):
            raise user_error(GcompError, f"gcomp.benchmark: compare={item!r}: for your own "
                             "function, compare takes (name, function of no arguments) pairs; "
                             "'torch' and 'jax' need a built-in workload such as 'mlp'")
        cases.append(Case(str(item[0]), item[1], block))
    return cases


# -- the variants of a built-in workload -------------------------------------------------------


def _compare_names(compare) -> list[str]:
    from ..core.dispatch import user_error
    from ..ir.errors import GcompError

    names = []
    for c in [compare] if isinstance(compare, str) else compare:
        if c not in COMPARE:
            raise user_error(GcompError, f"gcomp.benchmark: unknown compare={c!r}; choose from "
                             f"{', '.join(COMPARE)}")
        names += [n for n in COMPARE[c] if n not in names]
    return names


def workload_cases(w, compare: list[str], seed: int = 0) -> list[Case]:
    """The training step of ``w`` as gcomp eager and compiled (and the peers in ``compare``),
    every one from the same initial weights (gcomp's init from ``seed``) and the same batch."""
    import gcomp

    state = w.reference_state(seed, gcomp)
    x, y = w.data(seed)
    cases = [gcomp_case(w, state, x, y, False), gcomp_case(w, state, x, y, True)]
    for c in compare:
        cases.append(_jax_case(w, state, x, y) if c == "jax" else
                     _torch_case(w, state, x, y, c == "torch.compile"))
    return cases


def gcomp_case(w, state, x, y, compiled: bool) -> Case:
    import gcomp

    from .workloads import train_step

    model, crit, opt = w.build(gcomp, state)
    params = list(model.parameters())
    gx, gy = gcomp.tensor(x), gcomp.tensor(y)

    def step(x, y):
        return train_step(model, crit, opt, x, y)

    def sync(loss):
        block(loss, params)

    if not compiled:
        return Case("eager", lambda: step(gx, gy), sync)
    c = gcomp.compile(step, name=f"{w.name}_step")
    return Case("compiled", lambda: c(gx, gy), sync, xla=lambda: xla_memory(c), compiled=c,
                inputs=(gx, gy))


def _torch_case(w, state, x, y, compiled: bool) -> Case:
    """PyTorch eager, or ``torch.compile(model)`` (forward and backward compiled by inductor,
    the optimizer step eager: how torch.compile is usually applied to training)."""
    import os
    import shutil

    from .workloads import train_step

    name = "torch.compile" if compiled else "torch"
    try:
        import torch
    except ImportError:
        return Case(name, None, None, error="torch is not installed: pip install torch "
                    "(--compare torch measures PyTorch eager and torch.compile)")
    cxx = os.environ.get("CXX", "g++")
    if compiled and shutil.which(cxx) is None:
        return Case(name, None, None, error=f"torch.compile on CPU needs a C++ compiler: {cxx} "
                    "is not on PATH (install g++ or set CXX)")
    model, crit, opt = w.build(torch, state)
    run = torch.compile(model) if compiled else model
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    return Case(name, lambda: train_step(run, crit, opt, tx, ty), lambda loss: None)  # synchronous


def _jax_case(w, state, x, y) -> Case:
    import jax.numpy as jnp

    from . import jax_steps

    if w.name not in jax_steps.FORWARD:
        return Case("jax", None, None, error=f"no hand-written JAX step for {w.name}")
    step, sync, jitted, held = jax_steps.timed_case(w, state, x, y)
    jx, jy = jnp.asarray(x), jnp.asarray(y)

    def memory():
        exe = jitted.lower(held[0], held[1], jx, jy).compile()
        exes = [{"name": f"jax_{w.name}_step", **_memory(exe)}]
        return {**_totals(exes), "executables": exes, "cache_size": None}

    return Case("jax", step, sync, xla=memory)


def environment() -> dict:
    """The versions and machine facts of the JSON's ``versions`` and ``machine``."""
    import os
    import platform

    import jax

    import gcomp

    return {"versions": {"gcomp": gcomp.__version__, "jax": jax.__version__,
                         "torch": torch_version(), "python": platform.python_version()},
            "machine": {"platform": platform.platform(), "cores": cores(),
                        "load_average": round(os.getloadavg()[0], 2)
                        if hasattr(os, "getloadavg") else None}}
