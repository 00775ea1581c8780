"""Pass fuel (Note [Pass fuel] in gcomp/passes/manager.py): N units allow N rewrites across all
rewriting passes of one pipeline run, so a wrong result can be bisected to one rewrite."""

from __future__ import annotations

import numpy as np
import pytest

import gcomp
from gcomp.ir import GcompError, interpret, parse
from gcomp.passes import run_passes, simplify
from gcomp.passes.manager import Fuel
from gcomp.passes.rewrite import Pat, Rules, splat

TEXT = """graph @f(%x: f32[3]) {
  %0: f32[3] = full() {shape=[3], value=1.0, dtype=f32}
  %1: f32[3] = mul(%x, %0)
  %2: f32[3] = neg(%1)
  %3: f32[3] = neg(%2)
  %4: f32[3] = full() {shape=[3], value=0.0, dtype=f32}
  %5: f32[3] = add(%3, %4)
  %6: f32[3] = exp(%x)
  %7: f32[3] = exp(%x)
  %8: f32[3] = mul(%6, %7)
  %9: f32[3] = sub(%5, %8)
  return %9, %5
}
"""
PIPELINE = ["simplify", "fold", "cse", "dce"]
X = np.float32([-0.0, 1.5, -2.0])


def test_each_unit_of_fuel_is_one_rewrite():
    counts = []
    for n in range(6):
        fuel = Fuel(n)
        out = run_passes(parse(TEXT), PIPELINE, fuel=fuel)
        counts.append((fuel.used, len(out.nodes)))
    # mul(x, 1) -> x, neg(neg) -> x, then cse merges the two exps; nothing more to do
    assert counts == [(0, 10), (1, 8), (2, 6), (3, 5), (3, 5), (3, 5)]
    unlimited = Fuel()
    assert str(run_passes(parse(TEXT), PIPELINE, fuel=unlimited)) == str(
        run_passes(parse(TEXT), PIPELINE, fuel=3))
    assert unlimited.used == 3 and unlimited.refused is None


def test_bisecting_fuel_finds_a_wrong_rewrite(monkeypatch):
    """With a wrong rule (x + 0.0 -> x, false for x = -0.0) in the table, the smallest fuel
    that gives a wrong result names that rule as its last rewrite."""
    wrong = (Pat("add", Pat(name="x"), Pat(name="c", where=lambda v: splat(v) == 0)),
             simplify._identity)
    rules = Rules([*[r for rs in simplify.RULES.by_op.values() for r in rs], wrong])
    monkeypatch.setattr(simplify, "RULES", rules)
    def result(g):
        return b"".join(np.asarray(a).tobytes() for a in interpret(g, X))

    want = result(parse(TEXT))

    def wrong_with(n):
        fuel = Fuel(n)
        out = run_passes(parse(TEXT), PIPELINE, fuel=fuel)
        return result(out) != want, fuel

    lo, hi = 0, 16  # wrong_with(lo) is False, wrong_with(hi) is True
    assert not wrong_with(lo)[0] and wrong_with(hi)[0]
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if wrong_with(mid)[0] else (mid, hi)
    _, fuel = wrong_with(hi)
    assert fuel.last.startswith("simplify/identity on add")
    assert wrong_with(hi - 1)[1].refused == fuel.last


def test_environment_variable_limits_compiled_functions(monkeypatch):
    def f(x):
        return (x * 1.0).neg().neg() + x.exp() * x.exp()

    x = gcomp.tensor(X)
    nodes = {}
    for fuel in ("0", "1", ""):
        monkeypatch.setenv("GCOMP_PASS_FUEL", fuel)
        stages = gcomp.compile(f).stages(x)
        nodes[fuel] = next(s.nodes for s in stages if s.name == "dce")  # before fusion
        np.testing.assert_allclose(np.asarray(gcomp.compile(f)(x)), np.asarray(f(x)), rtol=1e-6)
    assert nodes["0"] > nodes["1"] > nodes[""]


def test_bad_fuel_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("GCOMP_PASS_FUEL", "lots")
    with pytest.raises(GcompError, match="GCOMP_PASS_FUEL must be a number"):
        run_passes(parse(TEXT), ["simplify"])
    with pytest.raises(GcompError, match=">= 0"):
        Fuel(-1)
