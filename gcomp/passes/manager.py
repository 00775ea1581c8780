"""The pass manager: passes by name, run in order, verified, timed and recorded as stages."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import Callable

from ..ir.errors import GcompError
from ..ir.graph import Graph
from ..ir.verify import verify

PASSES: dict[str, Callable[[Graph], Graph]] = {}
DEFAULT_PIPELINE = ("autodiff", "dce")
REQUIRED = ("autodiff",)  # what lowering needs: no grad node may reach it

log = logging.getLogger("gcomp.passes")


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


def run_passes(graph: Graph, names, stages: list | None = None, check: bool | None = None) -> Graph:
    """Run the named passes in order. With ``stages``, append a Stage after each one."""
    if check is None:
        check = os.environ.get("GCOMP_VERIFY", "1") != "0"
    for name in resolve(names):
        t0 = time.perf_counter()
        before = len(graph.nodes)
        graph = PASSES[name](graph)
        ms = (time.perf_counter() - t0) * 1e3
        if check:
            try:
                verify(graph)
            except GcompError as e:
                raise GcompError(f"internal: pass {name!r} produced an invalid graph: {e}") from None
        log.debug("%s: %d -> %d nodes in %.2f ms", name, before, len(graph.nodes), ms)
        if stages is not None:
            stages.append(Stage(name, ms, str(graph), len(graph.nodes)))
    return graph
