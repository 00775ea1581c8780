"""Printer and parser are exact inverses, and a parsed graph computes what the original did.

Random valid graphs (hypothesis) are printed, parsed back and printed again; the reparsed graph is
run by the reference interpreter on random inputs and compared bit for bit with the original, and
the original is compiled to one XLA executable and compared within float tolerance. Hand-written
texts cover every kind of attribute and every line form of the format.
"""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gcomp.ir as ir
from gcomp.ir import (
    Graph,
    TensorType,
    bfloat16,
    bool_,
    float16,
    float32,
    float64,
    int8,
    int16,
    int32,
    int64,
    parse,
    uint8,
    uint32,
    verify,
)

NP_DTYPES = {bool_: np.bool_, uint8: np.uint8, uint32: np.uint32, int8: np.int8, int16: np.int16,
             int32: np.int32, int64: np.int64, float16: np.float16, bfloat16: ml_dtypes.bfloat16, float32: np.float32,
             float64: np.float64}
INPUT_DTYPES = [float32, float32, float32, float64, int8, int16, int32, int64, bool_]
ARG_NAMES = ["x", "y", "input_ids", "fc1.weight", "h"]  # "fc1.weight" clashes with a state
STATE_NAMES = ["fc1.weight", "fc1.bias", "bn.running_mean", "layers.0.w", "step"]
NEW_STATES = ["fc1.weight.grad", "w.grad", "x"]  # "x" may also be an argument's name
LOCS = [None, None, "model.py:12", "layers/attention.py:7", "<stdin>:1", "train step.py:3"]
FULL_FLOATS = [0.0, -0.0, 1.0, -2.5, 1e-05, 3.0e20, math.inf, -math.inf, math.nan]

# ops whose result jumps when the operand moves by one ulp: they only take values that the
# interpreter and the compiled executable compute bit-identically ("exact" values, see below)
COMPARE = ["eq", "ne", "lt", "le", "gt", "ge"]
FLOAT_UNARY = ["exp", "tanh", "sin", "cos", "logistic", "sqrt", "log1p", "erf"]
JUMPY_UNARY = ["floor", "ceil", "round", "sign"]
ARITH = ["add", "sub", "mul", "maximum", "minimum"]


class _Pool:
    """The values built so far. A value is *exact* when it is computed from graph inputs and
    constants by ops that XLA evaluates bit-identically whether fused or not (data movement,
    neg/abs, max/min, comparisons, integer arithmetic); float arithmetic and transcendental
    functions may differ in the last ulp between the interpreter and the compiled executable."""

    def __init__(self):
        self.values: list = []
        self.exact: dict = {}

    def add(self, value, exact: bool):
        self.values.append(value)
        self.exact[value] = exact

    def pick(self, draw, pred=lambda v: True):
        cands = [v for v in self.values if pred(v)]
        return draw(st.sampled_from(cands)) if cands else None


def _shape(draw, max_rank=3):
    return tuple(draw(st.lists(st.integers(1, 4), max_size=max_rank)))


def _reshape_target(draw, size):
    if size == 0:
        return draw(st.sampled_from([(0,), (2, 0), (0, 1, 3)]))
    if size == 1 and draw(st.booleans()):
        return ()
    dims, rest = [], size
    for _ in range(draw(st.integers(0, 2))):
        d = draw(st.sampled_from([k for k in range(1, rest + 1) if rest % k == 0]))
        dims.append(d)
        rest //= d
    dims.append(rest)
    return tuple(draw(st.permutations(dims)))


def _is_float(v):
    return v.dtype.is_floating_point


def _node(draw, pool: _Pool):
    """One random node over the pool: (op, operands, attrs, exact) or None when none fits."""
    kind = draw(st.sampled_from([
        "float_unary", "jumpy_unary", "neg_abs", "arith", "compare", "logical", "reduce",
        "argmax", "cumsum", "reshape", "transpose", "slice", "broadcast", "concatenate",
        "dot_general", "cast", "select", "full", "iota"]))
    exact = lambda v: pool.exact[v]  # noqa: E731
    if kind == "float_unary":
        x = pool.pick(draw, _is_float)
        return x and (draw(st.sampled_from(FLOAT_UNARY)), [x], {}, False)
    if kind == "jumpy_unary":
        x = pool.pick(draw, lambda v: _is_float(v) and exact(v))
        return x and (draw(st.sampled_from(JUMPY_UNARY)), [x], {}, True)
    if kind == "neg_abs":
        x = pool.pick(draw, lambda v: v.dtype.kind in "if")  # lax.abs refuses unsigned
        return x and (draw(st.sampled_from(["neg", "abs"])), [x], {}, exact(x))
    if kind == "arith":
        x = pool.pick(draw, lambda v: v.dtype != bool_)
        if x is None:
            return None
        y = pool.pick(draw, lambda v: v.type == x.type)
        op = draw(st.sampled_from(ARITH))
        ok = exact(x) and exact(y) and (op in ("maximum", "minimum") or not _is_float(x))
        return op, [x, y], {}, ok
    if kind == "compare":
        x = pool.pick(draw, exact)
        if x is None:
            return None
        y = pool.pick(draw, lambda v: v.type == x.type and exact(v))
        return draw(st.sampled_from(COMPARE)), [x, y], {}, True
    if kind == "logical":
        x = pool.pick(draw, lambda v: v.dtype == bool_)
        if x is None:
            return None
        y = pool.pick(draw, lambda v: v.type == x.type)
        op = draw(st.sampled_from(["logical_and", "logical_or", "logical_xor"]))
        return op, [x, y], {}, exact(x) and exact(y)
    if kind == "reduce":
        x = pool.pick(draw, lambda v: v.dtype != bool_)
        if x is None:
            return None
        op = draw(st.sampled_from(["reduce_sum", "reduce_max", "reduce_min"]))
        axes = draw(st.lists(st.integers(0, max(x.type.ndim - 1, 0)), unique=True,
                             max_size=x.type.ndim)) if x.type.ndim else []
        attrs = {"axes": axes}
        if draw(st.booleans()):
            attrs["keepdims"] = draw(st.booleans())
        return op, [x], attrs, exact(x) and (op != "reduce_sum" or not _is_float(x))
    if kind == "argmax":
        x = pool.pick(draw, lambda v: v.type.ndim and v.type.size and v.dtype != bool_ and exact(v))
        if x is None:
            return None
        attrs = {"axis": draw(st.integers(0, x.type.ndim - 1)), "keepdims": draw(st.booleans()),
                 "dtype": draw(st.sampled_from([int32, int64]))}
        return draw(st.sampled_from(["argmax", "argmin"])), [x], attrs, True
    if kind == "cumsum":
        x = pool.pick(draw, lambda v: v.type.ndim > 0 and v.dtype != bool_)
        if x is None:
            return None
        attrs = {"axis": draw(st.integers(0, x.type.ndim - 1))}
        if draw(st.booleans()):
            attrs["reverse"] = draw(st.booleans())
        return "cumsum", [x], attrs, exact(x) and not _is_float(x)
    if kind == "reshape":
        x = pool.pick(draw)
        return "reshape", [x], {"shape": _reshape_target(draw, x.type.size)}, exact(x)
    if kind == "transpose":
        x = pool.pick(draw)
        return "transpose", [x], {"perm": draw(st.permutations(range(x.type.ndim)))}, exact(x)
    if kind == "slice":
        x = pool.pick(draw, lambda v: v.type.ndim > 0)
        if x is None:
            return None
        start, limit, stride = [], [], []
        for d in x.type.shape:
            s = draw(st.integers(0, d))
            start.append(s)
            limit.append(draw(st.integers(s, d)))
            stride.append(draw(st.integers(1, 3)))
        return "slice", [x], {"start": start, "limit": limit, "stride": stride}, exact(x)
    if kind == "broadcast":
        x = pool.pick(draw, lambda v: v.type.ndim < 3)
        if x is None:
            return None
        rank = draw(st.integers(x.type.ndim, 3))
        dims = sorted(draw(st.permutations(range(rank)))[:x.type.ndim])
        shape = [draw(st.integers(1, 3)) for _ in range(rank)]
        for i, d in enumerate(dims):
            if x.type.shape[i] != 1:
                shape[d] = x.type.shape[i]
        return "broadcast", [x], {"shape": shape, "dims": dims}, exact(x)
    if kind == "concatenate":
        x = pool.pick(draw, lambda v: v.type.ndim > 0)
        if x is None:
            return None
        axis = draw(st.integers(0, x.type.ndim - 1))

        def fits(v):
            return (v.dtype == x.dtype and v.type.ndim == x.type.ndim and all(
                a == b for i, (a, b) in enumerate(zip(v.type.shape, x.type.shape, strict=True))
                if i != axis))

        rest = draw(st.lists(st.sampled_from([v for v in pool.values if fits(v)]), max_size=2))
        ops = [x, *rest]
        return "concatenate", ops, {"axis": axis}, all(exact(v) for v in ops)
    if kind == "dot_general":
        x = pool.pick(draw, lambda v: v.dtype in (float32, float64, int32, int64))
        if x is None:
            return None
        y = pool.pick(draw, lambda v: v.dtype == x.dtype)
        pairs = [(a, b) for a in range(x.type.ndim) for b in range(y.type.ndim)
                 if x.type.shape[a] == y.type.shape[b]]
        chosen = draw(st.lists(st.sampled_from(pairs), max_size=3)) if pairs else []
        contract, batch, used_l, used_r = [], [], set(), set()
        for a, b in chosen:
            if a in used_l or b in used_r:
                continue
            used_l.add(a)
            used_r.add(b)
            (batch if draw(st.booleans()) else contract).append([a, b])
        attrs = {"contract": contract}
        if batch or draw(st.booleans()):
            attrs["batch"] = batch
        return "dot_general", [x, y], attrs, not _is_float(x) and exact(x) and exact(y)
    if kind == "cast":
        x = pool.pick(draw)
        targets = [float32, float64, float16, bfloat16, bool_]
        if exact(x) or not _is_float(x):
            targets += [int32, int64, uint8]  # float -> int only from bit-exact operands
        to = draw(st.sampled_from(targets))
        ok = exact(x) and (to.bits >= x.dtype.bits or not _is_float(x) or to == bool_)
        return "cast", [x], {"dtype": to}, ok and not (to.is_floating_point and to.bits == 16)
    if kind == "select":
        p = pool.pick(draw, lambda v: v.dtype == bool_)
        if p is None:
            return None
        a = pool.pick(draw, lambda v: v.type.shape == p.type.shape)
        b = pool.pick(draw, lambda v: v.type == a.type)
        return "select", [p, a, b], {}, exact(p) and exact(a) and exact(b)
    if kind == "full":
        dtype = draw(st.sampled_from([float32, float64, int32, int64, bool_]))
        if dtype.is_floating_point:  # any float the dtype holds: each one must print exactly
            value = draw(st.sampled_from(FULL_FLOATS) | st.floats(width=dtype.bits))
        elif dtype == bool_:
            value = draw(st.sampled_from([0, 1, 0.0, 1.0]))
        else:
            value = draw(st.sampled_from([0, 7, -3, 2.0]))
        attrs = {"shape": _shape(draw), "value": value, "dtype": dtype}
        return "full", [], attrs, not (isinstance(value, float) and not math.isfinite(value))
    shape = _shape(draw) or (3,)
    attrs = {"shape": shape, "dim": draw(st.integers(0, len(shape) - 1)),
             "dtype": draw(st.sampled_from([int32, int64, float32]))}
    return "iota", [], attrs, True


@st.composite
def graphs(draw):
    """A random valid graph and random inputs for it."""
    g = Graph(draw(st.sampled_from(["f", "train_step", "model.forward"])))
    pool = _Pool()
    states = draw(st.lists(st.sampled_from(STATE_NAMES), unique=True, max_size=2))
    n_args = draw(st.integers(0 if states else 1, 3))
    kinds = [None] * n_args + states
    for state in draw(st.permutations(kinds)):
        t = TensorType(_shape(draw), draw(st.sampled_from(INPUT_DTYPES)))
        name = state or draw(st.sampled_from(ARG_NAMES))
        pool.add(g.add_input(t, name, state=state), True)
    for _ in range(draw(st.integers(2, 12))):
        made = _node(draw, pool)
        if not made:
            continue
        op, operands, attrs, exact = made
        node = g.add_node(op, operands, attrs, loc=draw(st.sampled_from(LOCS)))
        pool.add(node.outputs[0], exact)
    g.outputs = draw(st.lists(st.sampled_from(pool.values), min_size=1, max_size=3))
    for v in g.state_inputs:
        if draw(st.booleans()):
            g.updates.append((v.state, pool.pick(draw, lambda u, v=v: u.type == v.type)))
    for state in draw(st.lists(st.sampled_from(NEW_STATES), unique=True, max_size=2)):
        if all(v.state != state for v in g.inputs):
            g.updates.append((state, pool.pick(draw)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return g, [_random_array(rng, v.type) for v in g.inputs]


def _random_array(rng, t: TensorType):
    if t.dtype == bool_:
        return rng.random(t.shape) < 0.5
    if t.dtype.is_floating_point:
        return rng.uniform(-2, 2, t.shape).astype(NP_DTYPES[t.dtype])
    return rng.integers(-5, 6, t.shape).astype(NP_DTYPES[t.dtype])


def _tolerance(dtype):
    if dtype in (float16, bfloat16):
        return {"rtol": 2e-2, "atol": 2e-2}
    if dtype == float32:
        return {"rtol": 2e-5, "atol": 1e-5}
    return {"rtol": 1e-12, "atol": 1e-12} if dtype == float64 else {"rtol": 0, "atol": 0}


def _check_same_bits(got, want):
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        a, b = np.asarray(a), np.asarray(b)
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
        assert a.tobytes() == b.tobytes()  # bitwise: -0.0 and NaN payloads included


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graphs())
def test_random_graphs_round_trip_and_compute_the_same(case):
    _check_round_trip(*case)


def _check_round_trip(g, inputs):
    verify(g)
    text = str(g)
    g2 = parse(text)
    verify(g2)
    assert str(g2) == text
    assert [v.state for v in g2.inputs] == [v.state for v in g.inputs]
    assert [s for s, _ in g2.updates] == [s for s, _ in g.updates]
    assert [n.loc for n in g2.nodes] == [n.loc and " ".join(n.loc.split()) for n in g.nodes]

    want = ir.interpret(g, *inputs)
    _check_same_bits(ir.interpret(g2, *inputs), want)
    for value, a, b in zip(g.all_outputs, ir.compile(g)(*inputs), want, strict=True):
        a, b = np.asarray(a), np.asarray(b)
        assert a.dtype == b.dtype == NP_DTYPES[value.dtype] and a.shape == value.shape
        np.testing.assert_allclose(a.astype(np.float64), b.astype(np.float64),
                                   **_tolerance(value.dtype), equal_nan=True)


# -- graphs with regions (Note [Regions] in gcomp/ir/graph.py) ---------------------------------
def _fill(draw, g, pool, count):
    for _ in range(count):
        made = _node(draw, pool)
        if made:
            op, operands, attrs, exact = made
            pool.add(g.add_node(op, operands, attrs, loc=draw(st.sampled_from(LOCS))).outputs[0],
                     exact)


def _region(draw, name, inputs):
    """A random region over inputs given as (type, exact)."""
    r, pool = Graph(name), _Pool()
    for t, exact in inputs:
        pool.add(r.add_input(t, draw(st.sampled_from(ARG_NAMES))), exact)
    _fill(draw, r, pool, draw(st.integers(0, 5)))
    return r, pool


def _of_type(draw, pool, t):
    return pool.pick(draw, lambda v: v.type == t)


@st.composite
def region_graphs(draw):
    """A random graph around one scan or cond node with random regions, and inputs for it.

    A float carry changes from step to step, so inside a scan body it counts as inexact (ops
    whose result jumps by one ulp never read it); other values keep their exactness."""
    g, pool = Graph("f"), _Pool()
    for _ in range(draw(st.integers(1, 3))):
        t = TensorType(_shape(draw), draw(st.sampled_from(INPUT_DTYPES)))
        pool.add(g.add_input(t, draw(st.sampled_from(ARG_NAMES))), True)
    _fill(draw, g, pool, draw(st.integers(0, 3)))
    ex = pool.exact
    loc = draw(st.sampled_from(LOCS))
    if draw(st.booleans()):
        consts = draw(st.lists(st.sampled_from(pool.values), max_size=2))
        carry = draw(st.lists(st.sampled_from(pool.values), min_size=1, max_size=2))
        seqs = [v for v in pool.values if v.type.ndim]
        xs, length = [], draw(st.integers(0, 3))
        if seqs and draw(st.booleans()):
            first = draw(st.sampled_from(seqs))
            length = first.type.shape[0]
            xs = [first] + draw(st.lists(st.sampled_from(
                [v for v in seqs if v.type.shape[0] == length]), max_size=1))
        body, bpool = _region(draw, "body", [(v.type, ex[v]) for v in consts] + [
            (v.type, ex[v] and not _is_float(v)) for v in carry] + [
            (TensorType(v.type.shape[1:], v.dtype), ex[v]) for v in xs])
        body.outputs = [_of_type(draw, bpool, v.type) for v in carry] + draw(
            st.lists(st.sampled_from(bpool.values), max_size=2))
        exact = [bpool.exact[v] for v in body.outputs]
        attrs = {"regions": (body,), "length": length, "num_consts": len(consts),
                 "num_carry": len(carry), "reverse": draw(st.booleans())}
        node = g.add_node("scan", consts + carry + xs, attrs, loc=loc)
    else:
        pred = g.add_input(TensorType((), bool_), "p")
        operands = draw(st.lists(st.sampled_from(pool.values), min_size=1, max_size=3))
        spec = [(v.type, ex[v]) for v in operands]
        then, tpool = _region(draw, "then", spec)
        types = {v.type for v in operands}
        then.outputs = draw(st.lists(st.sampled_from(
            [v for v in tpool.values if v.type in types]), min_size=1, max_size=2))
        other, epool = _region(draw, "else", spec)
        other.outputs = [_of_type(draw, epool, v.type) for v in then.outputs]
        exact = [tpool.exact[a] and epool.exact[b]
                 for a, b in zip(then.outputs, other.outputs, strict=True)]
        node = g.add_node("cond", [pred, *operands], {"regions": (then, other)}, loc=loc)
    for v, e in zip(node.outputs, exact, strict=True):
        pool.add(v, e)
    _fill(draw, g, pool, draw(st.integers(0, 2)))
    g.outputs = node.outputs + draw(st.lists(st.sampled_from(pool.values), max_size=2))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return g, [_random_array(rng, v.type) for v in g.inputs]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(region_graphs())
def test_random_region_graphs_round_trip_and_compute_the_same(case):
    """Regions print indented, parse back to the same text, and the interpreter (which runs a
    scan step by step in Python) agrees with the lowering to jax.lax.scan and jax.lax.cond."""
    _check_round_trip(*case)


# -- hand-written texts ----------------------------------------------------------------------------
# Each is in printed form, so parse -> print gives back the same text, character for character.
def _text(*lines: str) -> str:
    return "\n".join(lines) + "\n"


_WINDOW = "stride=[1, 1], padding=[[0, 0], [0, 1]], base_dilation=[1, 1], window_dilation=[1, 1]"
TEXTS = {
    "attributes of every kind": _text(
        "graph @attrs(%x: f32[2,3], %k: u32[2]) {",
        "  %0: f32[4,4] = pad(%x) {low=[-1, 0], high=[2, 1], interior=[1, 0], value=-inf}",
        "  %1: f32[3,4] = pad(%x) {low=[0, 0], high=[1, 1], interior=[0, 0], value=nan}",
        "  %2: f32[2,3] = pad(%x) {low=[0, 0], high=[0, 0], interior=[0, 0], value=1e-05}",
        "  %3: f32[4] = full() {shape=[4], value=inf, dtype=f32}",
        "  %4: f32[] = full() {shape=[], value=-3, dtype=f32}",
        "  %5: f32[3] = reduce_sum(%x) {axes=[0]}",
        "  %6: f32[2,1] = reduce_max(%x) {axes=[1], keepdims=true}",
        "  %7: i64[2] = argmax(%x) {axis=1, keepdims=false, dtype=i64}",
        "  %8: f32[2,3] = cumsum(%x) {axis=1, reverse=true}",
        '  %9: f32[2,3] = reduce_window(%x) {kind="max", window=[1, 2], ' + _WINDOW + "}",
        "  %10: f32[2,2] = constant() {value=[[1, -2.5], [1e+20, -0.0]], dtype=f32}",
        "  %11: f32[0] = constant() {value=[], dtype=f32}",
        "  %12: i32[3,2] = constant() {value=[[true, false], [1, 2], [3, -4]], dtype=i32}",
        "  %13: u32[3,2] = random_split(%k) {num=3}",
        "  %14: bf16[2,3] = cast(%x) {dtype=bf16}",
        "  %15: f32[2,2] = dot_general(%x, %x) {contract=[[1, 1]]}",
        "  %16: f32[2] = dot_general(%x, %x) {contract=[[1, 1]], batch=[[0, 0]]}",
        "  %17: f32[2,3] = reshape(%x) {shape=[2, 3]}",
        "  return %0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16",
        "}"),
    "strings with escapes": _text(
        "graph @s(%x: f32[4]) {",
        '  %0: f32[4] = note(%x) {text="plain"}',
        r'  %1: f32[4] = note(%0) {text="a \"quoted\" \\ back\nslash\t"}',
        '  %2: f32[4] = note(%1) {text=""}',
        "  return %2",
        "}"),
    "multi-output node, zero-dim types, state and new state": _text(
        "graph @train_step(%x: f32[8,3], %fc1.weight: f32[3] state, %step: i64[] state, "
        "%lr: f32[]) {",
        "  %0: f32[8] = dot_general(%x, %fc1.weight) {contract=[[1, 0]]}  # model.py:12",
        "  %1: f32[] = reduce_sum(%0) {axes=[0]}                          # model.py:13",
        "  %2: f32[] = full() {shape=[], value=1.0, dtype=f32}",
        "  %3: f32[3], %4: f32[] = grad(%1, %2, %fc1.weight, %lr)         # train.py:40",
        "  %5: i64[] = full() {shape=[], value=1, dtype=i64}",
        "  %6: i64[] = add(%step, %5)                                     # optim/sgd.py:7",
        "  return %1, %4",
        "  update %fc1.weight <- %fc1.weight",
        "  update %step <- %6",
        "  update %fc1.weight.grad <- %3",
        "}"),
    "no outputs, no nodes": _text("graph @empty() {", "  return", "}"),
    "zero-size and every dtype": _text(
        "graph @dtypes(%a: bool[0,3], %b: u8[], %c: u32[2], %d: i32[1,1,1], %e: i64[5], "
        "%f: f16[2], %g: bf16[2], %h: f64[]) {",
        "  %0: bool[0,3] = logical_not(%a)",
        "  %1: u8[] = bitwise_not(%b)",
        "  %2: f16[2] = sqrt(%f)",
        "  %3: bf16[2] = tanh(%g)",
        "  return %0, %1, %2, %3, %c, %d, %e, %h",
        "}"),
    "comments align and state names keep dots": _text(
        "graph @f(%layers.0.attn.q_proj.weight: f32[2,2] state, %x: f32[2]) {",
        "  %0: f32[2] = dot_general(%layers.0.attn.q_proj.weight, %x) {contract=[[1, 0]]}"
        "  # a.py:1",
        "  %1: f32[2] = neg(%0)" + " " * 58 + "  # a.py:2",
        "  %2: f32[2] = exp(%1)",
        "  return %2",
        "  update %layers.0.attn.q_proj.weight <- %layers.0.attn.q_proj.weight",
        "}"),
}


@pytest.fixture(scope="module", autouse=True)
def note_op():
    """A test-only primitive with a free string attribute (no real op has one), removed after."""
    from gcomp.ir import ops

    ops.declare("note", "test", 1, {"text": "str"}, differentiable=False)(lambda types, text: types)
    yield
    del ops.OPS["note"]


@pytest.mark.parametrize("text", TEXTS.values(), ids=TEXTS.keys())
def test_hand_written_texts_round_trip(text):
    g = parse(text)
    verify(g)
    assert str(g) == text
    assert str(parse(text.encode("utf-8"))) == text


def test_attribute_values_are_read_back_exactly():
    """What the texts above mean, checked against Python's own reading of the literals."""
    g = parse(TEXTS["attributes of every kind"])
    attrs = [n.attrs for n in g.nodes]
    assert attrs[0]["low"] == (-1, 0) and attrs[0]["value"] == -math.inf
    assert math.isnan(attrs[1]["value"])
    assert attrs[2]["value"] == float("1e-05") and type(attrs[2]["value"]) is float
    assert attrs[3]["value"] == math.inf and attrs[3]["dtype"] is float32
    assert attrs[4]["value"] == -3 and type(attrs[4]["value"]) is int and attrs[4]["shape"] == ()
    assert attrs[5]["keepdims"] is False and attrs[6]["keepdims"] is True
    assert attrs[7]["dtype"] is int64 and attrs[8]["reverse"] is True
    assert attrs[9]["padding"] == ((0, 0), (0, 1)) and attrs[9]["kind"] == "max"
    value = attrs[10]["value"]
    assert value == ((1, -2.5), (1e20, -0.0)) and math.copysign(1, value[1][1]) == -1
    assert attrs[11]["value"] == () and g.nodes[11].outputs[0].type == TensorType((0,), float32)
    assert attrs[12]["value"][0] == (True, False) and type(attrs[12]["value"][0][0]) is bool
    assert attrs[15]["batch"] == () and attrs[16]["batch"] == ((0, 0),)
    assert attrs[17]["shape"] == (2, 3)
    notes = [n.attrs["text"] for n in parse(TEXTS["strings with escapes"]).nodes]
    assert notes == ["plain", 'a "quoted" \\ back\nslash\t', ""]


def test_multi_output_state_and_new_state_are_read_back():
    g = parse(TEXTS["multi-output node, zero-dim types, state and new state"])
    grad = g.nodes[3]
    assert grad.op == "grad" and len(grad.outputs) == 2 and grad.loc == "train.py:40"
    assert [o.type for o in grad.outputs] == [TensorType((3,), float32), TensorType((), float32)]
    assert [(v.name, v.state) for v in g.inputs] == [
        ("x", None), ("fc1.weight", "fc1.weight"), ("step", "step"), ("lr", None)]
    assert [(s, v.producer.op if v.producer else v.name) for s, v in g.updates] == [
        ("fc1.weight", "fc1.weight"), ("step", "add"), ("fc1.weight.grad", "grad")]
    assert g.updates[2][1] is grad.outputs[0]
    assert g.outputs == [g.nodes[1].outputs[0], grad.outputs[1]]


def test_zero_dim_and_zero_size_graph_runs():
    g = parse(TEXTS["zero-size and every dtype"])
    inputs = [_random_array(np.random.default_rng(0), v.type) for v in g.inputs]
    inputs[5] = np.abs(inputs[5])
    out = [np.asarray(a) for a in ir.interpret(g, *inputs)]
    assert out[0].shape == (0, 3) and out[1] == np.bitwise_not(inputs[1])
    np.testing.assert_allclose(out[2].astype(np.float64), np.sqrt(inputs[5].astype(np.float64)),
                               rtol=1e-3)


def test_attributes_print_in_declaration_order_and_defaults_drop_out():
    """Insertion order and explicit defaults do not change the text (one printed form)."""
    g = Graph("f")
    x = g.add_input(TensorType((2, 3), float32), "x")
    a = g.add_node("reduce_sum", [x], {"keepdims": True, "axes": [1]}).outputs[0]
    b = g.add_node("reduce_sum", [x], {"axes": [1], "keepdims": False}).outputs[0]
    c = g.add_node("pad", [x], {"value": -0.0, "interior": [0, 0], "high": [0, 0],
                                "low": [0, 0]}).outputs[0]
    g.outputs = [a, b, c]
    text = str(g)
    assert "{axes=[1], keepdims=true}" in text
    assert "reduce_sum(%x) {axes=[1]}\n" in text
    assert "value=-0.0" in text  # -0.0 is not the default 0.0: the sign matters to pad
    assert str(parse(text)) == text
    pad = parse(text).nodes[2].attrs["value"]
    assert pad == 0 and math.copysign(1, pad) == -1


def test_names_that_clash_with_states_are_renamed():
    """An argument never takes the name of a state, captured or created by an update."""
    g = Graph("f")
    x = g.add_input(TensorType((2,), float32), "w")
    w = g.add_input(TensorType((2,), float32), "w", state="w")
    y = g.add_input(TensorType((2,), float32), "x.grad")
    s = g.add_node("add", [x, w]).outputs[0]
    g.outputs = [s]
    g.updates = [("w", s), ("x.grad", y)]
    g2 = parse(str(g))
    assert str(g2) == str(g)
    assert [v.state for v in g2.inputs] == [None, "w", None]
    assert [s for s, _ in g2.updates] == ["w", "x.grad"]
    assert g2.updates[1][1] is g2.inputs[2]
    np.testing.assert_array_equal(
        np.asarray(ir.interpret(g2, *[np.float32([1, 2]), np.float32([3, 4]),
                                      np.float32([5, 6])])[0]), np.float32([4, 6]))


def test_every_state_path_survives_printing():
    """A Sequential's paths start with a digit ("0.weight"), a ParameterList's are numbers, and a
    path may hold any character: each is read back as the same state, updates included."""
    paths = ["0.weight", "7", "odd path \"q\"", "fc.bias"]
    g = Graph("f")
    x = g.add_input(TensorType((2,), float32), "x")
    ins = [g.add_input(TensorType((2,), float32), p, state=p) for p in paths]
    s = g.add_node("add", [x, ins[0]]).outputs[0]
    g.outputs = [s]
    g.updates = [("0.weight", s), ("7", s), ("odd path \"q\"", s), ("7 grad", s),
                 ("1.weight.grad", s)]
    text = str(g)
    assert '%0.weight: f32[2] state, %arg: f32[2] state "7", ' in text
    assert 'state "odd path \\"q\\""' in text and '%fc.bias: f32[2] state' in text
    assert 'update "7 grad" <- %0' in text and "update %1.weight.grad <- %0" in text
    g2 = parse(text)
    assert str(g2) == text
    assert [v.state for v in g2.inputs] == [None, *paths]
    assert [st for st, _ in g2.updates] == [st for st, _ in g.updates]
    np.testing.assert_array_equal(
        np.asarray(ir.interpret(g2, *[np.float32([1, 2])] * 5)[0]), np.float32([2, 4]))


def test_a_state_named_twice_is_an_error():
    with pytest.raises(ir.IRParseError, match="state 'w' is an input twice"):
        parse('graph @f(%a: f32[2] state "w", %w: f32[2] state) {\n  return %a\n}\n')


def test_locations_are_normalized_to_one_line():
    g = Graph("f")
    x = g.add_input(TensorType((2,), float32), "x")
    g.outputs = [g.add_node("neg", [x], loc="  weird\nfile.py:3 ").outputs[0],
                 g.add_node("abs", [x], loc="").outputs[0]]
    text = str(g)
    assert "# weird file.py:3\n" in text and text.count("#") == 1
    assert str(parse(text)) == text
    assert [n.loc for n in parse(text).nodes] == ["weird file.py:3", None]


def _same_literal(a, b) -> bool:
    """Equal in type and value, floats bit for bit (so -0.0 and NaN count)."""
    if isinstance(a, (list, tuple)):
        return (isinstance(b, tuple) and len(a) == len(b)
                and all(_same_literal(x, y) for x, y in zip(a, b, strict=True)))
    if isinstance(a, float):
        return type(b) is float and np.float64(a).tobytes() == np.float64(b).tobytes() or (
            math.isnan(a) and math.isnan(b))
    return type(a) is type(b) and a == b


_SCALARS = st.one_of(st.integers(), st.floats(), st.booleans())


@settings(max_examples=150, deadline=None)
@given(st.lists(_SCALARS, max_size=6) | st.lists(st.lists(_SCALARS, min_size=2, max_size=2),
                                                 min_size=1, max_size=3))
def test_literal_attributes_are_read_back_exactly(value):
    g = Graph("lit")
    g.outputs = [g.add_node("constant", [], {"value": value, "dtype": float64}).outputs[0]]
    text = str(g)
    g2 = parse(text)
    assert str(g2) == text
    assert _same_literal(value, g2.nodes[0].attrs["value"]), text


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=12))
def test_string_attributes_are_read_back_exactly(s):
    g = Graph("s")
    x = g.add_input(TensorType((), float32), "x")
    g.outputs = [g.add_node("note", [x], {"text": s}).outputs[0]]
    text = str(g)
    assert text.count("\n") == 4  # the string stays on its line
    g2 = parse(text)
    assert g2.nodes[0].attrs["text"] == s and str(g2) == text
