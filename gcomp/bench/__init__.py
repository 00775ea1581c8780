"""Measuring gcomp: ``gcomp.benchmark``, ``gcomp bench``, ``gcomp dump`` and the built-in workloads.

    gcomp.benchmark(step, x, y)          eager against compiled: medians, compile time, memory
    gcomp.bench.dump(step, x, y)         every stage's IR, StableHLO, optimized HLO, summary.json
    gcomp.bench.WORKLOADS                linreg, mlp, cnn, lstm, transformer at example shapes

runner.py documents the JSON that ``gcomp bench --json`` writes; measure.py how the timing works
(Note [Timing in turns]); targets.py how a user script is read (Note [User scripts]).
"""

from .dump import DumpResult, dump
from .runner import BenchResult, Row, benchmark
from .targets import resolve
from .workloads import WORKLOADS, Workload

__all__ = ["WORKLOADS", "BenchResult", "DumpResult", "Row", "Workload", "benchmark", "dump",
           "resolve"]
