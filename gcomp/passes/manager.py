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
DEFAULT_PIPELINE = ("autodiff", "simplify", "fold", "cse", "dce")
REQUIRED = ("autodiff",)  # what lowering needs: no grad node may reach it

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


def resolve(passes) -> list[str]:
    """'default', 'none' (only what lowering needs) or a list of pass names."""
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
    return names


def run_passes(graph: Graph, names, stages: list | None = None, check: bool | None = None,
               fuel: Fuel | int | None = None) -> Graph:
    """Run the named passes in order. With ``stages``, append a Stage after each one. ``fuel``
    (a Fuel, a number of rewrites, or None for GCOMP_PASS_FUEL) bounds the rewrites of all of
    them together (Note [Pass fuel])."""
    if check is None:
        check = os.environ.get("GCOMP_VERIFY", "1") != "0"
    if not isinstance(fuel, Fuel):
        fuel = Fuel.from_env() if fuel is None else Fuel(fuel)
    token = _FUEL.set(fuel)
    try:
        return _run(graph, resolve(names), stages, check)
    finally:
        _FUEL.reset(token)


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
