"""Rule tables and the one driver that runs them (tinygrad's PatternMatcher and graph_rewrite).

A rule is ``(pattern, function)``. A :class:`Pat` matches a Value by its producer's op and,
recursively, its operands, binding names to the Values it matched; the function receives a
:class:`Context` and those bindings and returns the Value that replaces the match (an existing
one, or one it builds with ``ctx.emit``), or None when the rule does not apply after all.

:func:`graph_rewrite` walks the nodes in program order. Each node's operands are first replaced
by what they were rewritten to, then the rules for its op are tried on its result; when one fires
(and the pipeline has fuel left, Note [Pass fuel] in manager.py) every use of the result takes the
replacement, the node goes, and the nodes the rule emitted are visited the same way before the
walk goes on. A pattern looks only at a node and its producers, which the walk has already
finished, so one walk reaches the fixpoint. Nodes that a rewrite left without users are removed
(nodes dead before the pass are dce's business).

Only plain nodes are rewritten: a node with one result, no regions, not a ``grad`` request.
Control-flow nodes are opaque (Note [Regions] in ir/graph.py): their operands follow rewrites, but
their regions are never entered and no rule matches them. A graph that still holds a ``grad``
request is left alone: the request names the values to differentiate with respect to, so
replacing or merging those would change which derivative it asks for (rewrites run after
autodiff).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ..ir.errors import GcompError
from ..ir.graph import Graph, Node, Value
from .manager import current_fuel

log = logging.getLogger("gcomp.passes")


class Pat:
    """Matches a Value whose producer's op is in ``ops`` (None: any Value, a graph input too),
    whose operands match ``src`` in order (both orders with ``commute``; no ``src``: any
    operands), and for which ``where(value)`` holds; binds it to ``name``. A name bound twice must
    bind the same Value."""

    __slots__ = ("ops", "src", "name", "where", "commute")

    def __init__(self, ops: str | tuple[str, ...] | None = None, *src: Pat,
                 name: str | None = None, where: Callable[[Value], bool] | None = None,
                 commute: bool = False):
        self.ops = (ops,) if isinstance(ops, str) else ops
        self.src = src or None
        self.name = name
        self.where = where
        self.commute = commute

    def match(self, v: Value, bound: dict[str, Value]) -> bool:
        if self.ops is not None:
            n = v.producer
            if n is None or n.op not in self.ops or n.regions:
                return False
            if self.src is not None:
                if len(n.inputs) != len(self.src):
                    return False
                orders = [n.inputs, n.inputs[::-1]] if self.commute else [n.inputs]
                for operands in orders:
                    trial = dict(bound)
                    if all(p.match(x, trial) for p, x in zip(self.src, operands)):
                        bound.update(trial)
                        break
                else:
                    return False
        if self.where is not None and not self.where(v):
            return False
        if self.name is not None:
            if bound.setdefault(self.name, v) is not v:
                return False
        return True


Rule = tuple[Pat, Callable[..., Value | None]]


class Rules:
    """A rule table, indexed by the op of each pattern's root (None: rules for every op)."""

    def __init__(self, rules: list[Rule]):
        self.by_op: dict[str | None, list[Rule]] = {}
        for pat, fn in rules:
            for op in pat.ops if pat.ops is not None else (None,):
                self.by_op.setdefault(op, []).append((pat, fn))

    def candidates(self, op: str) -> list[Rule]:
        return self.by_op.get(op, []) + self.by_op.get(None, [])


class Context:
    """What a rule's function sees: the node being rewritten, ``emit`` to build new nodes in
    front of it, and ``memo``, a dict that lives for one run of the driver."""

    def __init__(self):
        self.node: Node | None = None
        self.memo: dict[Any, Any] = {}
        self.emitted: list[Node] = []

    def emit(self, op: str, inputs: list[Value], attrs: dict | None = None) -> Value:
        """A new node (types from the op's rule, the rewritten node's source line); it is placed
        and itself rewritten only if the rule's replacement is taken."""
        node = Graph().add_node(op, inputs, attrs, loc=self.node.loc if self.node else None)
        self.emitted.append(node)
        return node.outputs[0]


def rewritable(node: Node) -> bool:
    return len(node.outputs) == 1 and not node.regions and node.op != "grad"


def graph_rewrite(graph: Graph, rules: Rules, name: str, memo: dict | None = None) -> Graph:
    """Apply ``rules`` to ``graph`` (in place) until none fires; returns the graph. ``memo``
    starts the rules' Context.memo."""
    if any(n.op == "grad" for n in graph.nodes):
        log.debug("%s: skipped, the graph still holds grad requests (run autodiff first)", name)
        return graph
    driver = _Driver(graph, rules, name)
    driver.ctx.memo.update(memo or {})
    return driver.run()


class _Driver:
    def __init__(self, graph: Graph, rules: Rules, name: str):
        self.graph, self.rules, self.name = graph, rules, name
        self.fuel = current_fuel()
        self.ctx = Context()
        self.subst: dict[Value, Value] = {}
        self.new: set[Node] = set()
        self.rewrites = 0

    def resolve(self, v: Value) -> Value:
        while v in self.subst:
            v = self.subst[v]
        return v

    def run(self) -> Graph:
        g = self.graph
        used_before = {v for n in g.nodes for v in n.inputs} | set(g.all_outputs)
        nodes, g.nodes = g.nodes, []
        for node in nodes:
            self.visit(node)
        if not self.subst:
            return g
        g.outputs = [self.resolve(v) for v in g.outputs]
        g.updates = [(s, self.resolve(v)) for s, v in g.updates]
        # drop the nodes that rewrites left unused (not those that were dead already)
        live = set(g.all_outputs)
        kept = []
        for n in reversed(g.nodes):
            orphan = rewritable(n) and (n in self.new or n.outputs[0] in used_before)
            if not orphan or n.outputs[0] in live:
                kept.append(n)
                live.update(n.inputs)
        g.nodes = kept[::-1]
        log.debug("%s: %d rewrites", self.name, self.rewrites)
        return g

    def visit(self, node: Node) -> None:
        node.inputs = [self.resolve(v) for v in node.inputs]
        fuel = self.fuel
        if rewritable(node) and (not fuel.empty or fuel.refused is None):
            out = node.outputs[0]
            for pat, fn in self.rules.candidates(node.op):
                bound: dict[str, Value] = {}
                if not pat.match(out, bound):
                    continue
                self.ctx.node, self.ctx.emitted = node, []
                new = fn(self.ctx, **bound)
                emitted = self.ctx.emitted
                if new is None or new is out:
                    continue
                where = f" at {node.loc}" if node.loc else ""
                if not fuel.take(f"{self.name}/{fn.__name__.strip('_')} on {node.op} -> "
                                 f"{out.type}{where}"):
                    break
                if new.type != out.type:
                    raise GcompError(f"internal: {self.name} rule {fn.__name__} replaced "
                                     f"{out.type} by {new.type}")
                self.rewrites += 1
                self.subst[out] = new
                self.new.update(emitted)
                for e in emitted:
                    self.visit(e)
                return
        self.graph.nodes.append(node)


def splat(v: Value) -> int | float | None:
    """The value of every element of ``v`` when it is a ``full`` (or an ``iota`` along a dim of
    size 1: zeros), or a broadcast or reshape of one (the forms tracing gives scalar constants);
    else None. The value is the ``full``'s attribute as written (1, 1.0 or -0.0)."""
    while v.producer is not None and v.producer.op in ("broadcast", "reshape"):
        v = v.producer.inputs[0]
    n = v.producer
    if n is not None and n.op == "iota" and n.attrs["shape"][n.attrs["dim"]] == 1:
        return 0
    return n.attrs["value"] if n is not None and n.op == "full" else None
