"""Regions (Note [Regions] in gcomp/ir/graph.py): cond and scan nodes hold closed graphs that
print indented after their node, parse back to the same text, verify and run.

Random region graphs are property-tested in test_roundtrip.py; here are hand-written texts for
every form (nested regions included) and the errors of the parser and the verifier. What the
texts compute is checked against numpy loops written independently of gcomp.
"""

from __future__ import annotations

import numpy as np
import pytest

import gcomp.ir as ir
from gcomp.ir import Graph, IRParseError, IRVerifyError, TensorType, bool_, float32, parse, verify


def _text(*lines: str) -> str:
    return "\n".join(lines) + "\n"


RNN = _text(
    "graph @rnn(%w: f32[3,3] state, %h0: f32[2,3], %xs: f32[4,2,3]) {",
    "  %0: f32[2,3], %1: f32[4,2,3] = scan(%w, %h0, %xs) {length=4, num_consts=1, num_carry=1}"
    "  # rnn.py:7",
    "    body(%w: f32[3,3], %h: f32[2,3], %x: f32[2,3]) {",
    "      %0: f32[2,3] = dot_general(%h, %w) {contract=[[1, 0]]}  # rnn.py:8",
    "      %1: f32[2,3] = add(%0, %x)                              # rnn.py:8",
    "      %2: f32[2,3] = tanh(%1)                                 # rnn.py:8",
    "      return %2, %2",
    "    }",
    "  return %0, %1",
    "}")

TEXTS = {
    "scan with a const, a carry and xs": RNN,
    "reverse scan without xs, two carries, unrolled": _text(
        "graph @count(%a: f32[], %n: i64[]) {",
        "  %0: f32[], %1: i64[], %2: f32[3] = scan(%a, %n) {length=3, reverse=true, num_consts=0,"
        " num_carry=2, unroll=2}",
        "    body(%acc: f32[], %i: i64[]) {",
        "      %0: f32[] = full() {shape=[], value=2.0, dtype=f32}",
        "      %1: f32[] = mul(%acc, %0)",
        "      %2: i64[] = full() {shape=[], value=1, dtype=i64}",
        "      %3: i64[] = add(%i, %2)",
        "      return %1, %3, %acc",
        "    }",
        "  return %0, %1, %2",
        "}"),
    "cond with an unused input and no nodes in a branch": _text(
        "graph @pick(%p: bool[], %x: f32[2], %y: f32[2]) {",
        "  %0: f32[2] = cond(%p, %x, %y)  # m.py:1",
        "    then(%a: f32[2], %b: f32[2]) {",
        "      %0: f32[2] = sub(%a, %b)  # m.py:2",
        "      return %0",
        "    }",
        "    else(%a: f32[2], %b: f32[2]) {",
        "      return %a",
        "    }",
        "  %1: f32[2] = neg(%0)",
        "  return %1",
        "}"),
    "a cond inside a scan body": _text(
        "graph @nested(%xs: f32[3,2], %c: f32[2]) {",
        "  %0: f32[2], %1: f32[3,2] = scan(%c, %xs) {length=3, num_consts=0, num_carry=1}",
        "    body(%c: f32[2], %x: f32[2]) {",
        "      %0: f32[] = reduce_sum(%x) {axes=[0]}",
        "      %1: f32[] = full() {shape=[], value=0.0, dtype=f32}",
        "      %2: bool[] = gt(%0, %1)",
        "      %3: f32[2] = cond(%2, %c, %x)",
        "        then(%c: f32[2], %x: f32[2]) {",
        "          %0: f32[2] = add(%c, %x)",
        "          return %0",
        "        }",
        "        else(%c: f32[2], %x: f32[2]) {",
        "          return %c",
        "        }",
        "      return %3, %3",
        "    }",
        "  return %0, %1",
        "}"),
}


@pytest.mark.parametrize("text", TEXTS.values(), ids=TEXTS.keys())
def test_region_texts_round_trip(text):
    g = parse(text)
    verify(g)
    assert str(g) == text
    assert g.nodes[0].regions and all(isinstance(r, Graph) for r in g.nodes[0].regions)


def _run(text, *arrays):
    g = parse(text)
    interpreted = [np.asarray(a) for a in ir.interpret(g, *arrays)]
    compiled = [np.asarray(a) for a in ir.compile(g)(*arrays)]
    for a, b in zip(interpreted, compiled, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    return interpreted


def test_region_texts_compute_what_numpy_loops_do():
    rng = np.random.default_rng(0)
    w, h0, xs = (rng.standard_normal(s).astype(np.float32) for s in ((3, 3), (2, 3), (4, 2, 3)))
    h, hs = h0, []
    for x in xs:
        h = np.tanh(h @ w + x)
        hs.append(h)
    last, ys = _run(RNN, w, h0, xs)
    np.testing.assert_allclose(last, hs[-1], rtol=1e-5)
    np.testing.assert_allclose(ys, np.stack(hs), rtol=1e-5)

    acc, i, seen = _run(TEXTS["reverse scan without xs, two carries, unrolled"], np.float32(1.5),
                        np.int64(4))
    assert (acc, i) == (12.0, 7)
    np.testing.assert_array_equal(seen, [6.0, 3.0, 1.5])  # step 2 ran first: ys in index order

    x, y = np.float32([1, 2]), np.float32([5, 1])
    for p, want in ((True, y - x), (False, -x)):
        np.testing.assert_array_equal(
            _run(TEXTS["cond with an unused input and no nodes in a branch"], np.bool_(p), x, y)[0],
            want)

    xs = np.float32([[1, 2], [-5, 1], [0.5, 0.5]])
    c, cs = _run(TEXTS["a cond inside a scan body"], xs, np.float32([0, 0]))
    np.testing.assert_allclose(cs, [[1, 2], [1, 2], [1.5, 2.5]])


def _sub(old, new, text=RNN):
    assert text.count(old) == 1, old
    return text.replace(old, new)


PARSE_ERRORS = [
    ("outer value used in a region", _sub("add(%0, %x)", "add(%0, %xs)"),
     "defined outside this region; regions are closed"),
    ("wrong region name", _sub("body(", "loop("), "expected region 'body' here, got 'loop'"),
    ("region missing", RNN.replace(RNN[RNN.index("    body("):RNN.index("  return %0, %1")], ""),
     r"scan has 1 region\(s\) \(body\), the text gives 0"),
    ("region on an op without any", _sub("# rnn.py:8\n      %2", "\n      b() {\n      return\n"
                                         "      }\n      %2"), r"add has 0 region\(s\) \(none\)"),
    ("state input in a region", _sub("%h: f32[2,3], %x", "%h: f32[2,3] state, %x"),
     "a region input cannot be state"),
    ("regions written as an attribute", _sub("num_carry=1}", "num_carry=1, regions=[1]}"),
     "regions are blocks after the node's line"),
    ("carry type changes", _sub("return %2, %2", "return %w, %2"),
     "the carry must keep its types"),
    ("body input types differ from the operands", _sub("%xs: f32[4,2,3]", "%xs: f32[4,3,2]"),
     r"scan: region body takes \(.*f32\[2,3\]\), the operands give \(.*f32\[3,2\]\)"),
]


@pytest.mark.parametrize("text,message", [(t, m) for _, t, m in PARSE_ERRORS],
                         ids=[n for n, _, _ in PARSE_ERRORS])
def test_bad_region_text_is_a_parse_error(text, message):
    with pytest.raises(IRParseError, match=message):
        parse(text)


F23 = TensorType((2, 3), float32)


def _body(g):
    return g.nodes[0].regions[0]


def _not_closed(g):
    _body(g).nodes[1].inputs[1] = g.inputs[2]


def _state_in_region(g):
    _body(g).inputs[0].state = "w"


def _carry_type_changes(g):
    body = _body(g)
    body.outputs[0] = body.add_node("cast", [body.outputs[0]], {"dtype": ir.float64}).outputs[0]


def _update_in_region(g):
    _body(g).updates.append(("w", _body(g).inputs[0]))


def _cond_branches_differ(g):
    then, other = Graph("then"), Graph("else")
    for r in (then, other):
        r.add_input(F23, "a")
    then.outputs = [then.inputs[0]]
    other.outputs = [other.add_node("reduce_sum", [other.inputs[0]], {"axes": [0]}).outputs[0]]
    p = g.add_input(TensorType((), bool_), "p")
    g.nodes.append(ir.Node("cond", [p, g.inputs[1]], {"regions": (then, other)},
                           [ir.Value(F23, None, 0)]))


def _wrong_region_count(g):
    g.nodes[0].attrs = {**g.nodes[0].attrs, "regions": ()}


VERIFY_ERRORS = [
    (_not_closed, "region body: node 1 .*operand .* is not defined before use"),
    (_state_in_region, "region body has state inputs or updates"),
    (_update_in_region, "region body has state inputs or updates"),
    (_carry_type_changes, "the carry must keep its types"),
    (_cond_branches_differ, "both branches must give the same types"),
    (_wrong_region_count, "regions=.* is not a valid regions"),
]


@pytest.mark.parametrize("breaks,message", VERIFY_ERRORS, ids=[f.__name__[1:] for f, _ in
                                                                VERIFY_ERRORS])
def test_broken_region_graphs_fail_verification(breaks, message):
    g = parse(RNN)
    verify(g)
    breaks(g)
    with pytest.raises(IRVerifyError, match=message):
        verify(g)


def test_copies_share_regions_and_contains_looks_inside():
    g = parse(TEXTS["a cond inside a scan body"])
    c = g.copy()
    assert c.nodes[0].regions[0] is g.nodes[0].regions[0]  # regions are immutable values
    assert g.contains("cond") and g.contains("scan") and not g.contains("grad")
