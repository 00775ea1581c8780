"""Constant folding: a node whose operands are all constants becomes a constant.

Constants are ``full`` (every element one value), ``iota`` and ``constant`` (an array written out
in the IR) nodes. The values are computed by the lowering rules, never by a second
implementation: the pass first collects every node computable from constants into one small
graph, runs it with the reference interpreter under one ``jax.jit`` (one XLA compile per pass,
cached by the graph's text, instead of one per op), then replaces each such node. What a result
becomes is chosen so that folding never inflates the graph or the executable:

- a result whose elements all have the same bits (or that has no elements), of any size, becomes
  a ``full``. An elementwise op on ``full`` operands is evaluated on one element, and a reshape,
  broadcast, transpose, slice or reverse of a ``full`` is a ``full`` of the same value, so a
  splat is never materialized, whatever its size;
- another result of at most MAX_ELEMENTS elements becomes a ``constant``;
- anything else stays as it is (its users may still fold), as does a node whose operands or
  result exceed EVAL_LIMIT elements.

Region nodes and ``grad`` requests are never folded (rewrite.rewritable). The folded values are
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
    """How the evaluation graph gives a value: one element of a splat (``scalar``, 0-d) or the
    whole array (``array``), either as Values of the evaluation graph."""

    __slots__ = ("scalar", "array", "index")

    def __init__(self, scalar: Value | None = None, array: Value | None = None):
        self.scalar, self.array, self.index = scalar, array, None


def _collect(graph: Graph) -> tuple[Graph, dict[Value, _Known]]:
    """The evaluation graph: one result for each node computable from constants alone."""
    ev = Graph("fold")
    known: dict[Value, _Known] = {}

    def array(v: Value) -> Value | None:
        k = known[v]
        if k.array is None and v.type.size <= EVAL_LIMIT:
            dims = {"shape": v.type.shape, "dims": ()}
            k.array = ev.add_node("broadcast", [k.scalar], dims).outputs[0]
        return k.array

    for n in graph.nodes:
        if not rewritable(n) or OPS[n.op].family == "control":
            continue
        out = n.outputs[0]
        if n.op == "full":
            known[out] = _Known(ev.add_node("full", [], {**n.attrs, "shape": ()}).outputs[0])
            continue
        if not n.inputs:
            if out.type.size <= EVAL_LIMIT:
                known[out] = _Known(array=ev.add_node(n.op, [], n.attrs).outputs[0])
            continue
        if not all(v in known for v in n.inputs):
            continue
        splats = [known[v].scalar for v in n.inputs]
        if all(s is not None for s in splats):
            if OPS[n.op].family == "elementwise":
                known[out] = _Known(ev.add_node(n.op, splats, n.attrs).outputs[0])
                continue
            if n.op in SPLAT_KEEPING:
                known[out] = _Known(splats[0])
                continue
        if out.type.size > EVAL_LIMIT:
            continue
        arrays = [array(v) for v in n.inputs]
        if all(a is not None for a in arrays):
            known[out] = _Known(array=ev.add_node(n.op, arrays, n.attrs).outputs[0])
    results = []
    for v, k in known.items():
        if v.producer.op not in CONSTANTS:
            k.index = len(results)
            results.append(k.scalar if k.scalar is not None else k.array)
    ev.outputs = results
    return ev, known


def _evaluate(ev: Graph) -> list[np.ndarray]:
    """The outputs of the evaluation graph (no inputs) by the reference interpreter, jitted."""
    text = str(ev)
    if text in _CACHE:
        _CACHE.move_to_end(text)
        return _CACHE[text]
    import jax

    from ..lowering.interpreter import interpret

    values = [np.asarray(a) for a in jax.jit(lambda: interpret(ev))()]
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


def _literal(a: np.ndarray):
    return (a.astype(np.float64) if a.dtype.kind == "f" else a).tolist()


def _fold(ctx: Context, x: Value) -> Value | None:
    k = ctx.memo["known"].get(x)
    if k is None or k.index is None:
        return None
    a = ctx.memo["values"][k.index]
    t = x.type
    first = a if k.scalar is not None else _splat_element(a)
    if first is not None:
        return ctx.emit("full", [], {"shape": t.shape, "value": _number(first), "dtype": t.dtype})
    if t.size <= MAX_ELEMENTS:
        return ctx.emit("constant", [], {"value": _literal(a), "dtype": t.dtype})
    return None


RULES = Rules([(Pat(name="x"), _fold)])


@register("fold")
def fold(graph):
    """Evaluate what constants determine, once, then replace it (rewrite.graph_rewrite)."""
    if any(n.op == "grad" for n in graph.nodes):
        return graph  # graph_rewrite leaves such graphs alone; evaluate nothing either
    ev, known = _collect(graph)
    if not ev.outputs:
        return graph
    memo = {"known": known, "values": _evaluate(ev)}
    return graph_rewrite(graph, RULES, "fold", memo=memo)
