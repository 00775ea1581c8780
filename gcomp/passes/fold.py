"""Constant folding: a node whose operands are all constants becomes a constant.

Constants are ``full`` (every element one value), ``iota`` and ``constant`` (an array written out
in the IR) nodes. The values are computed by the lowering rules, never by a second
implementation: the pass first collects every node computable from constants into one small
graph, runs it with the reference interpreter under one ``jax.jit`` (one XLA compile per pass,
cached by the graph's text, instead of one per op; see _Evaluation for how XLA is kept
from folding them itself), then replaces each such node. What a result becomes is chosen so
that folding never inflates the graph or the executable:

- a result whose elements all have the same bits (or that has no elements), of any size, becomes
  a ``full``. An elementwise op on ``full`` operands is evaluated on one element, and a reshape,
  broadcast, transpose, slice or reverse of a ``full`` is a ``full`` of the same value, so a
  splat is never materialized, whatever its size;
- another result of at most MAX_ELEMENTS elements becomes a ``constant``;
- anything else stays as it is (its users may still fold), as does a node whose operands or
  result exceed EVAL_LIMIT elements.

Region nodes and ``grad`` requests are never folded (rewrite.rewritable), nor is anything
that is or comes from a subnormal float (XLA flushes those to zero in fused code but not op by
op: _without_subnormals). The folded values are
what XLA computes for the same ops; the executable, which fuses them with their neighbours, may
round transcendental functions differently in the last place, so folding preserves results to
float tolerance (the other rewriting passes preserve them exactly).
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from ..ir.graph import Graph, Value
from ..ir.ops import OPS
from .manager import register
from .rewrite import Context, Pat, Rules, graph_rewrite, rewritable

CONSTANTS = ("full", "iota", "constant")
MAX_ELEMENTS = 1024  # non-splat results up to this size become `constant` nodes
EVAL_LIMIT = 1 << 16  # operands and results larger than this are not evaluated
SPLAT_KEEPING = ("reshape", "broadcast", "transpose", "slice", "rev")
_CACHE: OrderedDict[str, list[np.ndarray]] = OrderedDict()  # evaluation graph text -> values
_CACHE_SIZE = 64


class _Known:
    """A value that constants determine: whether it is a splat, the constant node it is (for a
    leaf), and, once needed, one element (``scalar``, 0-d) or the whole array (``array``) as
    Values of the evaluation graph."""

    __slots__ = ("splat", "leaf", "scalar", "array", "index")

    def __init__(self, splat: bool, leaf=None, scalar: Value | None = None,
                 array: Value | None = None):
        self.splat, self.leaf, self.scalar, self.array = splat, leaf, scalar, array
        self.index = None


class _Evaluation:
    """What to evaluate: ``leaves``, a graph of the constant nodes used, and ``graph``, the
    ops computed from them, which takes the leaves' values as inputs.

    An optimization barrier stands between the two on purpose: XLA folds constants itself while
    compiling, and its folding of an integer division by zero kills the process with SIGFPE
    (jax 0.10, CPU); on values it cannot see through, the same division gives -1, as it does at
    run time everywhere."""

    def __init__(self):
        self.leaves, self.graph = Graph("constants"), Graph("fold")

    def leaf(self, op: str, attrs: dict) -> Value:
        node = self.leaves.add_node(op, [], attrs)
        self.leaves.outputs.append(node.outputs[0])
        return self.graph.add_input(node.outputs[0].type)

    def scalar(self, k: _Known) -> Value:
        if k.scalar is None:
            k.scalar = self.leaf("full", {**k.leaf.attrs, "shape": ()})
        return k.scalar

    def array(self, k: _Known, t) -> Value | None:
        if k.array is None and t.size <= EVAL_LIMIT:
            if k.splat:
                dims = {"shape": t.shape, "dims": ()}
                k.array = self.graph.add_node("broadcast", [self.scalar(k)], dims).outputs[0]
            else:
                k.array = self.leaf(k.leaf.op, k.leaf.attrs)
        return k.array


def _collect(graph: Graph) -> tuple[_Evaluation, dict[Value, _Known]]:
    """The evaluation of every node that constants alone determine."""
    e = _Evaluation()
    ev = e.graph
    known: dict[Value, _Known] = {}
    for n in graph.nodes:
        if not rewritable(n) or OPS[n.op].family == "control":
            continue
        out = n.outputs[0]
        if n.op == "full":
            known[out] = _Known(True, leaf=n)
            continue
        if not n.inputs:
            if out.type.size <= EVAL_LIMIT:
                known[out] = _Known(False, leaf=n)
            continue
        if not all(v in known for v in n.inputs):
            continue
        ks = [known[v] for v in n.inputs]
        if all(k.splat for k in ks):
            if OPS[n.op].family == "elementwise":
                scalars = [e.scalar(k) for k in ks]
                known[out] = _Known(True, scalar=ev.add_node(n.op, scalars, n.attrs).outputs[0])
                continue
            if n.op in SPLAT_KEEPING:
                known[out] = _Known(True, scalar=e.scalar(ks[0]))
                continue
        if out.type.size > EVAL_LIMIT:
            continue
        arrays = [e.array(k, v.type) for k, v in zip(ks, n.inputs)]
        if all(a is not None for a in arrays):
            known[out] = _Known(False, array=ev.add_node(n.op, arrays, n.attrs).outputs[0])
    for k in known.values():
        if k.leaf is None:
            k.index = len(ev.outputs)
            ev.outputs.append(k.scalar if k.splat else k.array)
    return e, known


def _evaluate(e: _Evaluation) -> list[np.ndarray]:
    """The evaluation's outputs, by the reference interpreter under one jax.jit."""
    text = str(e.leaves) + str(e.graph)
    if text in _CACHE:
        _CACHE.move_to_end(text)
        return _CACHE[text]
    import jax

    from ..lowering.interpreter import interpret

    def run():
        return interpret(e.graph, *jax.lax.optimization_barrier(interpret(e.leaves)))

    values = [np.asarray(a) for a in jax.jit(run)()]
    _CACHE[text] = values
    if len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return values


def _number(a: np.ndarray) -> int | float:
    """One element as the ``value`` attribute of a ``full`` of its dtype."""
    if a.dtype.kind == "b":
        return int(bool(a))
    if a.dtype.kind in "ui":
        return int(a)
    return float(a)


def _splat_element(a: np.ndarray) -> np.ndarray | None:
    """The first element when every element has the same bits; None otherwise."""
    flat = a.reshape(-1)
    if flat.size == 0:
        return np.zeros((), a.dtype)
    raw = flat.view(np.uint8).reshape(flat.size, -1)
    return flat[0] if (raw == raw[0]).all() else None


def _literal(a: np.ndarray, floating: bool):
    """Nested lists of Python numbers (floats through float64: exact for every float dtype)."""
    return (a.astype(np.float64) if floating else a).tolist()


def _fold(ctx: Context, x: Value) -> Value | None:
    k = ctx.memo["known"].get(x)
    if k is None or k.index is None:  # not determined by constants, or a constant already
        return None
    a = ctx.memo["values"][k.index]
    t = x.type
    first = a if k.splat else _splat_element(a)
    if first is not None:
        return ctx.emit("full", [], {"shape": t.shape, "value": _number(first), "dtype": t.dtype})
    if t.size <= MAX_ELEMENTS:
        literal = _literal(a, t.dtype.is_floating_point)
        return ctx.emit("constant", [], {"value": literal, "dtype": t.dtype})
    return None


RULES = Rules([(Pat(name="x"), _fold)])


@register("fold")
def fold(graph):
    """Evaluate what constants determine, once, then replace it (rewrite.graph_rewrite)."""
    if any(n.op == "grad" for n in graph.nodes):
        return graph  # graph_rewrite leaves such graphs alone; evaluate nothing either
    e, known = _collect(graph)
    if not e.graph.outputs:
        return graph
    values = _evaluate(e)
    memo = {"known": _without_subnormals(graph, known, values), "values": values}
    return graph_rewrite(graph, RULES, "fold", memo=memo)


def _subnormal(a: np.ndarray) -> bool:
    if a.dtype.kind != "f" and a.dtype.name != "bfloat16":
        return False
    import ml_dtypes

    a = np.asarray(a)
    return bool(((a != 0) & (np.abs(a) < ml_dtypes.finfo(a.dtype).tiny)).any())


def _without_subnormals(graph: Graph, known: dict, values: list) -> dict:
    """``known`` less every value that is, or was evaluated from, a subnormal float: XLA
    flushes subnormals to zero inside a fused computation (such as the evaluation's one jit)
    but not when it runs an op on its own, as eager mode does, so such folds would change
    results (sign(-1e-308) is -1 op by op and 0 under the evaluation's jit)."""
    from ..lowering import to_jax_dtype

    unsafe: set[Value] = set()
    for n in graph.nodes:
        if not n.outputs or n.outputs[0] not in known:
            continue
        k = known[n.outputs[0]]
        if k.index is None:  # a leaf: its value is its attribute
            bad = n.op in ("full", "constant") and _subnormal(
                np.asarray(n.attrs["value"], to_jax_dtype(n.attrs["dtype"])))
        else:
            bad = any(v in unsafe for v in n.inputs) or _subnormal(values[k.index])
        if bad:
            unsafe.add(n.outputs[0])
    return {v: k for v, k in known.items() if v not in unsafe}
