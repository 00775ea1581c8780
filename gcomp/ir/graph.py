"""Typed SSA graphs: Value, Node, Graph.

A Graph is one linear list of nodes in program order (like a jaxpr or an FX graph). Every value
has a TensorType. Graph inputs are arguments or captured state (with the state's path as name).
Outputs are the user's results followed by state updates, each update naming the state input it
replaces.

Note [Regions]
Structured control flow (``cond``, ``scan``) holds nested graphs, *regions*: a region is a Graph
with inputs and outputs (no state inputs, no updates) kept in its node's ``regions`` attribute, a
tuple with one Graph per name the op declares (cond: ``then``, ``else``; scan: ``body``). Regions
are closed: their nodes use only the region's own inputs and values. Everything a body reads from
outside (a parameter, a value of the enclosing graph) is an explicit operand of the node, which
the region receives as an input; tracing lifts captured tensors to such operands
(frontend/control.py). So a region is printed, parsed, verified, interpreted, lowered and
differentiated as a graph of its own, the operands of a node say everything it depends on, and a
pass over the enclosing graph (dce, replace_all_uses, the autodiff walk) never looks inside.
Regions are values like any attribute: never mutated once their node is built (Graph.copy shares
them); a pass that rewrites one builds a new Graph and a new node. The shape rule of a region op
checks the region's input and output types against the node's operands and results.

In the text each region follows its node's line, two spaces deeper, with its own value names:

    %3: f32[2,4], %4: f32[5,2,4] = scan(%w, %h0, %xs) {length=5, num_consts=1, num_carry=1}
      body(%w: f32[4,4], %h: f32[2,4], %x: f32[2,4]) {
        %0: f32[2,4] = dot_general(%h, %w) {contract=[[1, 0]]}
        %1: f32[2,4] = add(%0, %x)
        %2: f32[2,4] = tanh(%1)
        return %2, %2
      }
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .types import TensorType


class Value:
    """One SSA value. ``producer`` is the Node that defines it, or None for a graph input."""

    __slots__ = ("type", "producer", "index", "name", "state", "__weakref__")

    def __init__(self, type: TensorType, producer: Node | None = None, index: int = 0,
                 name: str | None = None, state: str | None = None):
        self.type = type
        self.producer = producer
        self.index = index
        self.name = name  # a name hint for printing (graph inputs use theirs)
        self.state = state  # for a graph input: the state path it was captured from

    @property
    def shape(self) -> tuple[int, ...]:
        return self.type.shape

    @property
    def dtype(self):
        return self.type.dtype

    def __repr__(self) -> str:
        return f"Value({self.name or hex(id(self))}: {self.type})"


@dataclass(eq=False)
class Node:
    op: str
    inputs: list[Value]
    attrs: dict[str, Any]
    outputs: list[Value] = field(default_factory=list)
    loc: str | None = None  # "file.py:line" of the user code that made it

    @property
    def regions(self) -> tuple[Graph, ...]:
        """The nested graphs of a control-flow node (Note [Regions]); () for other ops."""
        return self.attrs.get("regions", ())

    def __repr__(self) -> str:
        return f"Node({self.op}, {len(self.inputs)} in, {len(self.outputs)} out, {self.loc})"


class Graph:
    """A function in the IR: inputs, nodes in program order, outputs and state updates."""

    def __init__(self, name: str = "main"):
        self.name = name
        self.inputs: list[Value] = []
        self.nodes: list[Node] = []
        self.outputs: list[Value] = []
        # (state path, new value); a path with no state input creates that state (a new .grad)
        self.updates: list[tuple[str, Value]] = []

    # -- building -----------------------------------------------------------------------------
    def add_input(self, type: TensorType, name: str | None = None,
                  state: str | None = None) -> Value:
        v = Value(type, None, len(self.inputs), name=name, state=state)
        self.inputs.append(v)
        return v

    def add_node(self, op: str, inputs: Iterable[Value], attrs: dict | None = None,
                 out_types: Iterable[TensorType] | None = None, loc: str | None = None,
                 position: int | None = None) -> Node:
        """Append (or insert at ``position``) a node; result types come from the op's shape rule
        when ``out_types`` is not given. Attributes of a known op are normalized (defaults filled,
        lists frozen to tuples, declaration order), as the parser and the lowering rules expect."""
        from .ops import OPS, infer_types, normalize_attrs

        inputs = list(inputs)
        attrs = dict(attrs or {})
        if op in OPS:
            attrs = normalize_attrs(op, attrs)
        if out_types is None:
            out_types = infer_types(op, [v.type for v in inputs], attrs)
        node = Node(op, inputs, attrs, [], loc)
        node.outputs = [Value(t, node, i) for i, t in enumerate(out_types)]
        if position is None:
            self.nodes.append(node)
        else:
            self.nodes.insert(position, node)
        return node

    @property
    def args(self) -> list[Value]:
        return [v for v in self.inputs if v.state is None]

    @property
    def state_inputs(self) -> list[Value]:
        return [v for v in self.inputs if v.state is not None]

    @property
    def all_outputs(self) -> list[Value]:
        return self.outputs + [v for _, v in self.updates]

    # -- rewriting ----------------------------------------------------------------------------
    def replace_all_uses(self, mapping: dict[Value, Value]) -> None:
        """Replace every use of each key by its value, in nodes and outputs."""
        if not mapping:
            return

        def sub(v: Value) -> Value:
            while v in mapping:
                v = mapping[v]
            return v

        for n in self.nodes:
            n.inputs = [sub(v) for v in n.inputs]
        self.outputs = [sub(v) for v in self.outputs]
        self.updates = [(s, sub(v)) for s, v in self.updates]

    def users(self) -> dict[Value, list[Node]]:
        out: dict[Value, list[Node]] = {}
        for n in self.nodes:
            for v in n.inputs:
                out.setdefault(v, []).append(n)
        return out

    def copy(self) -> Graph:
        """A structural copy with fresh Values and Nodes (attrs are shared, they are immutable)."""
        g = Graph(self.name)
        vmap: dict[Value, Value] = {}
        for v in self.inputs:
            vmap[v] = g.add_input(v.type, v.name, v.state)
        for n in self.nodes:
            new = Node(n.op, [vmap[v] for v in n.inputs], dict(n.attrs), [], n.loc)
            new.outputs = [Value(o.type, new, i, name=o.name) for i, o in enumerate(n.outputs)]
            for o, no in zip(n.outputs, new.outputs, strict=True):
                vmap[o] = no
            g.nodes.append(new)
        g.outputs = [vmap[v] for v in self.outputs]
        g.updates = [(s, vmap[v]) for s, v in self.updates]
        return g

    def op_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for n in self.nodes:
            counts[n.op] = counts.get(n.op, 0) + 1
        return counts

    def contains(self, op: str) -> bool:
        """Whether a node of ``op`` is in the graph or in one of its regions, at any depth."""
        return any(n.op == op or any(r.contains(op) for r in n.regions) for n in self.nodes)

    def __str__(self) -> str:
        from .printer import print_graph

        return print_graph(self)

    def __repr__(self) -> str:
        return f"<Graph @{self.name}: {len(self.inputs)} inputs, {len(self.nodes)} nodes>"
