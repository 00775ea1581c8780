"""Ties the op table (gcomp.ir.ops.OPS) to its rule tables and to the op-table tests: every
primitive has a lowering rule, every differentiable one a VJP rule, and every one a row in
tests/op_table_rows.py (differentiable ones a row that checks the gradient)."""

from __future__ import annotations

from collections import Counter

from op_table_rows import ROWS, TABLE_OPS

from gcomp.autodiff import VJPS
from gcomp.ir.ops import OPS
from gcomp.lowering import LOWERINGS

# Primitives without a row, and where they are tested instead.
NO_ROW = {"grad": "the autodiff pass's request node: tests/passes and the gradient checks of "
                  "every differentiable row in the op table"}


def test_every_primitive_has_a_lowering_rule():
    missing = sorted(set(OPS) - set(LOWERINGS))
    assert not missing, f"primitives without a lowering rule in gcomp/lowering/: {missing}"


def test_every_differentiable_primitive_has_a_vjp_rule():
    missing = sorted(n for n, d in OPS.items() if d.differentiable and n not in VJPS)
    assert not missing, f"differentiable primitives without a VJP rule (gcomp/autodiff/): {missing}"


def test_rules_belong_to_declared_primitives():
    assert not set(LOWERINGS) - set(OPS), "lowering rules for undeclared primitives"
    stray = sorted(n for n in VJPS if n not in OPS or not OPS[n].differentiable)
    assert not stray, f"VJP rules for undeclared or non-differentiable primitives: {stray}"


def test_every_primitive_has_a_row_in_the_op_table():
    missing = sorted(set(OPS) - TABLE_OPS - set(NO_ROW))
    assert not missing, f"primitives without a row in tests/op_table_rows.py: {missing}"
    assert not TABLE_OPS - set(OPS), f"rows for unknown primitives: {sorted(TABLE_OPS - set(OPS))}"
    assert set(NO_ROW) <= set(OPS), "NO_ROW names a primitive that no longer exists"


def test_every_differentiable_primitive_has_a_gradient_row():
    checked = {r.op for r in ROWS if r.wrt}
    missing = sorted(n for n, d in OPS.items()
                     if d.differentiable and n not in checked and n not in NO_ROW)
    assert not missing, f"differentiable primitives whose gradient no row checks: {missing}"


def test_row_ids_are_unique():
    dup = [i for i, k in Counter(r.id for r in ROWS).items() if k > 1]
    assert not dup, f"duplicate row ids: {dup}"
