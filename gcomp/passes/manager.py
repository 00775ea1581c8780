"""The pass manager: passes by name, run in order, verified, timed and recorded as stages.

Note [Pass fuel]
Every rewrite a rule-table pass makes (simplify, fold, cse: one node replaced by an equivalent
value) first takes one unit of *fuel*. ``GCOMP_PASS_FUEL=N`` (or ``gcomp opt --fuel N``, or
``run_passes(..., fuel=N)``) gives each run of the pipeline N units for all its passes together;
when they are spent every later rewrite is skipped and the passes leave the graph as it is. So
when a compiled function computes something wrong, bisecting N finds the one rewrite that breaks
it: with fuel N the result is right, with N + 1 wrong, and ``Fuel.last`` (printed by ``gcomp opt
--fuel``, logged under GCOMP_LOG=passes) names rewrite N + 1. The autodiff transform (which
lowering needs) and dce (which only drops what nothing reads) take no fuel. A compiled function
may run the pipeline twice (a compiled module's joint forward-backward graph is a second run);
each run gets its own N.

Note [Pass options]
Passes are functions Graph -> Graph; what tunes them (a rematerialization memory budget, a
precision, a convolution algorithm) is a pipeline *option*, declared once by the pass that reads
it with :func:`option` (name, default, a check, one line of help) and read while it runs with
:func:`current_options`. ``gcomp.compile(fn, options={...})`` (or the named keywords, such as
``precision="bf16"``), ``run_passes(..., options=...)`` and ``gcomp opt --option k=v`` set them
for one pipeline run; an unknown name or a bad value is a GcompError listing what is known. An
option may also name the pass it needs (``precision`` needs the ``precision`` pass): setting it
adds that pass to a pipeline that lacks it, at its place in the default order.
"""

from __future__ import annotations

import contextvars
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..ir.errors import GcompError
from ..ir.graph import Graph
from ..ir.verify import verify

PASSES: dict[str, Callable[[Graph], Graph]] = {}
DEFAULT_PIPELINE = ("fuse_patterns", "autodiff", "simplify", "fold", "cse", "dce", "conv_choice",
                    "fusion")
REQUIRED = ("autodiff",)  # what lowering needs: no grad node may reach it
# Passes that group nodes into regions: a compiled module's joint graph is cut in two before
# them, and each half runs them (runtime/compiled.py, _split).
LATE = ("fusion",)
# Where a pass an option asks for goes when the pipeline lacks it (Note [Pass options]).
ORDER = ("fuse_patterns", "autodiff", "simplify", "fold", "cse", "precision", "dce", "remat",
         "conv_choice", "fusion")

log = logging.getLogger("gcomp.passes")


class Fuel:
    """A budget of rewrites shared by the passes of one pipeline run (Note [Pass fuel])."""

    def __init__(self, limit: int | None = None):
        if limit is not None and limit < 0:
            raise GcompError(f"pass fuel must be >= 0, got {limit}")
        self.limit = limit  # None: unlimited
        self.used = 0
        self.last: str | None = None  # the last rewrite taken
        self.refused: str | None = None  # the first rewrite refused for lack of fuel

    @classmethod
    def from_env(cls) -> Fuel:
        text = os.environ.get("GCOMP_PASS_FUEL", "").strip()
        if not text:
            return cls()
        try:
            return cls(int(text))
        except ValueError:
            raise GcompError(f"GCOMP_PASS_FUEL must be a number of rewrites, got {text!r}") \
                from None

    @property
    def empty(self) -> bool:
        return self.limit is not None and self.used >= self.limit

    def take(self, what: str) -> bool:
        """Spend one unit on the rewrite ``what``; False (and nothing spent) when none is left."""
        if self.empty:
            if self.refused is None:
                self.refused = what
                log.info("pass fuel spent after %d rewrites; the last was %s; skipping %s",
                         self.used, self.last, what)
            return False
        self.used += 1
        self.last = what
        return True

    def __repr__(self) -> str:
        return f"Fuel(used={self.used}, limit={self.limit})"


_FUEL: contextvars.ContextVar[Fuel | None] = contextvars.ContextVar("gcomp_pass_fuel",
                                                                    default=None)


def current_fuel() -> Fuel:
    """The fuel of the pipeline running now; a pass called on its own gets a fresh one."""
    current = _FUEL.get()
    return current if current is not None else Fuel.from_env()


@dataclass(frozen=True)
class Option:
    name: str
    default: object
    check: Callable[[object], object]  # value -> normalized value, or raises ValueError
    help: str
    needs: str | None = None  # the pass this option turns on when set (not None/default)


OPTIONS: dict[str, Option] = {}


def option(name: str, default, check: Callable[[object], object], help: str,
           needs: str | None = None) -> None:
    """Declare a pipeline option (Note [Pass options])."""
    if name in OPTIONS:
        raise RuntimeError(f"pass option {name} declared twice")
    OPTIONS[name] = Option(name, default, check, help, needs)


def check_options(options) -> dict:
    """Every declared option with its value: ``options``' (checked) or the default."""
    options = dict(options or {})
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        known = "; ".join(f"{o.name} ({o.help})" for o in OPTIONS.values()) or "(none)"
        raise GcompError(f"unknown pass option{'s' if len(unknown) > 1 else ''} "
                         f"{', '.join(map(repr, unknown))}; known options: {known}")
    out = {}
    for o in OPTIONS.values():
        if o.name in options and options[o.name] is not None:
            try:
                out[o.name] = o.check(options[o.name])
            except (TypeError, ValueError) as e:
                raise GcompError(f"pass option {o.name}={options[o.name]!r}: {e} "
                                 f"({o.help})") from None
        else:
            out[o.name] = o.default
    return out


_OPTIONS: contextvars.ContextVar[dict | None] = contextvars.ContextVar("gcomp_pass_options",
                                                                       default=None)


def current_options() -> dict:
    """The options of the pipeline running now (every declared one, defaults filled)."""
    current = _OPTIONS.get()
    return current if current is not None else check_options({})


def register(name: str):
    def deco(fn):
        if name in PASSES:
            raise RuntimeError(f"pass {name} registered twice")
        PASSES[name] = fn
        fn.pass_name = name
        return fn

    return deco


@dataclass
class Stage:
    """One step of a compiled function's history: the graph after a pass."""

    name: str
    ms: float
    graph: str
    nodes: int

    def __str__(self):
        return f"# {self.name} ({self.ms:.2f} ms, {self.nodes} nodes)\n{self.graph}"


def resolve(passes, options: dict | None = None) -> list[str]:
    """'default', 'none' (only what lowering needs) or a list of pass names; plus the passes
    that set ``options`` need (Note [Pass options])."""
    if passes is None or passes == "default":
        names = list(DEFAULT_PIPELINE)
    elif passes == "none":
        names = list(REQUIRED)
    elif isinstance(passes, str):
        names = [p.strip() for p in passes.split(",") if p.strip()]
    else:
        names = list(passes)
    for n in names:
        if n not in PASSES:
            raise GcompError(f"unknown pass {n!r}; known passes: {', '.join(sorted(PASSES))}")
    for n in REQUIRED:
        if n not in names:
            names.insert(0, n)
    for o in OPTIONS.values():
        value = (options or {}).get(o.name, o.default)
        if o.needs and value is not None and value != o.default and o.needs not in names:
            _insert(names, o.needs)
    return names


def _insert(names: list[str], name: str) -> None:
    """Put ``name`` after the last pass that comes before it in ORDER (else last)."""
    rank = {n: i for i, n in enumerate(ORDER)}
    if name not in rank:
        names.append(name)
        return
    at = 0
    for i, n in enumerate(names):
        if rank.get(n, -1) < rank[name]:
            at = i + 1
    names.insert(at, name)


def run_passes(graph: Graph, names, stages: list | None = None, check: bool | None = None,
               fuel: Fuel | int | None = None, options: dict | None = None,
               exact: bool = False) -> Graph:
    """Run the named passes in order. With ``stages``, append a Stage after each one. ``fuel``
    (a Fuel, a number of rewrites, or None for GCOMP_PASS_FUEL) bounds the rewrites of all of
    them together (Note [Pass fuel]); ``options`` tune them (Note [Pass options]). ``exact``:
    run ``names`` as given (a list already resolved), adding neither autodiff nor the passes
    options need."""
    if check is None:
        check = os.environ.get("GCOMP_VERIFY", "1") != "0"
    if not isinstance(fuel, Fuel):
        fuel = Fuel.from_env() if fuel is None else Fuel(fuel)
    options = check_options(options)
    names = list(names) if exact else resolve(names, options)
    token, otoken = _FUEL.set(fuel), _OPTIONS.set(options)
    try:
        return _run(graph, names, stages, check)
    finally:
        _FUEL.reset(token)
        _OPTIONS.reset(otoken)


def _run(graph: Graph, names: list[str], stages: list | None, check: bool) -> Graph:
    for name in names:
        t0 = time.perf_counter()
        before = len(graph.nodes)
        graph = PASSES[name](graph)
        ms = (time.perf_counter() - t0) * 1e3
        if check:
            try:
                verify(graph)
            except GcompError as e:
                raise GcompError(f"internal: pass {name!r} produced an invalid graph: "
                                 f"{e}") from None
        log.debug("%s: %d -> %d nodes in %.2f ms", name, before, len(graph.nodes), ms)
        if stages is not None:
            stages.append(Stage(name, ms, str(graph), len(graph.nodes)))
    return graph
