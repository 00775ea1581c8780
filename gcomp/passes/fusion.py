"""Fusion: group elementwise work with the producers and reductions it feeds into ``fusion``
regions, one per kernel a backend would make of it.

Note [Fusion]
XLA fuses on its own; this pass does not change what runs (a ``fusion`` node lowers to its body
inline, in a named scope). It makes the grouping *visible* and *addressable*: the IR dump shows
which ops belong together, indented under one ``fusion`` line, and the named scope of each
fusion (and of every node in it) lands in the optimized HLO's metadata, so ``kernels()`` can say
which IR nodes, and which lines of the user's model, each XLA kernel came from.

What joins a group: elementwise ops (the ``elementwise`` family, casts and selects included),
the cheap data movement XLA fuses into loops (broadcast, reshape, transpose, slice, rev, pad,
concatenate), and reductions, which end a group: a reduction's result may leave its group but
no member reads it (XLA's reduce fusions have the reduce as root; a softmax is several groups).
Matmuls, convolutions, windows, gathers and scatters, random draws and region ops stay outside:
they are kernels of their own. Splats (``full``, ``iota``) are never members: each group that
reads one gets its own copy in its body (as XLA duplicates broadcast constants into every
fusion), so no group exports a splat; ``constant`` arrays stay where they are.

The clustering is greedy in program order: each fusible node merges with the groups of the
fusible producers it reads, one at a time, the nearest first, when the merge keeps the graph
acyclic and the group within MAX_MEMBERS nodes. Merging
groups A and B is cycle-free when no value A reads from outside depends on B and none B reads
depends on A, where "depends" is taken in the graph with every group contracted to one node (a
path may enter group C at one member and leave it from another: A -> matmul -> C -> matmul -> B
makes A and B unmergeable although no single node links them). It is a backwards walk that
stops at nodes (and groups) placed wholly before the other group's first member (program order
is topological, so they cannot depend on it) and, past a bound on its length, answers yes,
which only refuses a merge. A group keeps the values it reads from outside
and its reductions' results up to date as it grows; a merge relabels the smaller side. So the
work is O(n log n) plus walks of bounded length. A group of one node, or of data movement
only, is left alone.
Last, the graph of groups and remaining nodes is sorted topologically (networkx, keyed by
program position so the text keeps the user's order wherever it can) and rebuilt: each group
becomes one node whose operands are what its members read from outside and whose results are
what is read outside (by other nodes, outputs or state updates). The fusion node carries the
source location of its last member; the members keep their own.
"""

from __future__ import annotations

import logging

import networkx as nx

from ..ir.graph import Graph, Node, Value
from ..ir.ops import OPS
from .dce import dce
from .manager import register

MOVEMENT = frozenset({"broadcast", "reshape", "transpose", "slice", "rev", "pad", "concatenate"})
REDUCTIONS = frozenset({"reduce_sum", "reduce_prod", "reduce_max", "reduce_min", "argmax",
                        "argmin"})
SPLATS = frozenset({"full", "iota"})  # copied into each group that reads them, never members
NOT_FUSED = frozenset({"constant"}) | SPLATS
log = logging.getLogger("gcomp.passes")
WALK_LIMIT = 256  # nodes a dependence walk may visit before it gives up (refusing the merge)
MAX_MEMBERS = 64  # a bigger group is several kernels anyway, and unreadable in a dump


def fusible(node: Node) -> bool:
    if node.op in NOT_FUSED or node.regions:
        return False
    return node.op in MOVEMENT or node.op in REDUCTIONS or (
        node.op in OPS and OPS[node.op].family == "elementwise")


def _computes(node: Node) -> bool:
    return node.op not in MOVEMENT


class _Group:
    """Members (in no particular order until the end), the first member's position, the
    values members read from outside (``reads``, insertion-ordered) and the reductions'
    results (which no member may read)."""

    __slots__ = ("members", "first", "last", "reads", "reduced")

    def __init__(self, node: Node, pos: int):
        self.members = [node]
        self.first = self.last = pos
        self.reads = dict.fromkeys(v for v in node.inputs if v.producer is not None)
        self.reduced = set(node.outputs) if node.op in REDUCTIONS else set()


class _Groups:
    def __init__(self, graph: Graph):
        self.pos = {n: i for i, n in enumerate(graph.nodes)}
        self.group: dict[Node, _Group] = {}

    def depends(self, reads, g: _Group) -> bool:
        """Whether a value in ``reads`` (made outside g) depends on a member of g, in the graph
        where every group is one node (so a path may enter another group at one member and
        leave it at another)."""
        start, group, pos = g.first, self.group, self.pos
        stack = [v.producer for v in reads]
        seen: set = set()
        while stack:
            n = stack.pop()
            h = group.get(n)
            if h is g:
                return True
            unit = n if h is None else h
            if unit in seen:
                continue
            seen.add(unit)
            if (pos[n] if h is None else h.last) < start:
                continue  # all of it comes before g: it cannot depend on g
            if len(seen) > WALK_LIMIT:
                return True  # too far to tell: refuse
            for v in (n.inputs if h is None else h.reads):
                if v.producer is not None:
                    stack.append(v.producer)
        return False

    def can_merge(self, a: _Group, b: _Group) -> bool:
        if len(a.members) + len(b.members) > MAX_MEMBERS:
            return False
        if any(v in a.reads for v in b.reduced) or any(v in b.reads for v in a.reduced):
            return False  # a reduction would feed its own group
        group = self.group
        return not self.depends([v for v in a.reads if group.get(v.producer) is not b], b) \
            and not self.depends([v for v in b.reads if group.get(v.producer) is not a], a)

    def merge(self, a: _Group, b: _Group) -> _Group:
        small, big = (a, b) if len(a.members) < len(b.members) else (b, a)
        for n in small.members:
            self.group[n] = big
            for o in n.outputs:
                big.reads.pop(o, None)
        for v in small.reads:
            if self.group.get(v.producer) is not big:
                big.reads[v] = None
        big.members += small.members
        big.first = min(big.first, small.first)
        big.last = max(big.last, small.last)
        big.reduced |= small.reduced
        return big


def clusters(graph: Graph) -> list[list[Node]]:
    """The groups, each in program order, of two or more nodes including real work."""
    gs = _Groups(graph)
    for node in graph.nodes:
        if not fusible(node):
            continue
        mine = gs.group[node] = _Group(node, gs.pos[node])
        candidates: list[_Group] = []
        for v in node.inputs:
            g = gs.group.get(v.producer) if v.producer is not None else None
            if g is not None and g is not mine and all(g is not c for c in candidates):
                candidates.append(g)
        for g in sorted(candidates, key=lambda g: -g.first):  # the nearest first
            if gs.can_merge(mine, g):
                mine = gs.merge(mine, g)
    seen, out = set(), []
    for node in graph.nodes:
        g = gs.group.get(node)
        if g is None or id(g) in seen:
            continue
        seen.add(id(g))
        if len(g.members) > 1 and any(_computes(n) for n in g.members):
            out.append(sorted(g.members, key=gs.pos.__getitem__))
    return out


@register("fusion")
def fusion(graph: Graph) -> Graph:
    groups = clusters(graph)
    if not groups:
        return graph
    group_of = {n: g for g in groups for n in g}
    pos = {n: i for i, n in enumerate(graph.nodes)}
    units: list = []  # a group (list of members) or a single node, in program order
    unit_of: dict[Node, int] = {}
    for n in graph.nodes:
        g = group_of.get(n)
        if g is None or g[0] is n:
            for m in (g or [n]):
                unit_of[m] = len(units)
            units.append(g if g is not None else n)
    key = [pos[u[0] if isinstance(u, list) else u] for u in units]
    dag = nx.DiGraph()
    dag.add_nodes_from(range(len(units)))
    used_outside: set[Value] = set(graph.all_outputs)
    for n in graph.nodes:
        u = unit_of[n]
        for v in n.inputs:
            p = v.producer
            if p is None or unit_of[p] == u or (p.op in SPLATS and n in group_of):
                continue  # a group copies the splats it reads (_fuse)
            dag.add_edge(unit_of[p], u)
            used_outside.add(v)
    try:
        order = list(nx.lexicographical_topological_sort(dag, key=key.__getitem__))
    except nx.NetworkXUnfeasible:  # a bug in clusters(): leave the graph as it is
        log.warning("fusion: the groups of %s would form a cycle; graph left unfused",
                    graph.name)
        return graph

    nodes: list[Node] = []
    for u in order:
        unit = units[u]
        if isinstance(unit, Node):
            nodes.append(unit)
        else:
            nodes.append(_fuse(unit, used_outside))
    graph.nodes = nodes
    return dce(graph)  # splats only the groups read are gone


def _fuse(members: list[Node], used_outside: set[Value]) -> Node:
    """One fusion node for ``members``, taking over the results read outside the group."""
    inside = set(members)
    body = Graph("body")
    vmap: dict[Value, Value] = {}
    operands: list[Value] = []
    for n in members:
        for v in n.inputs:
            if v in vmap or v.producer in inside:
                continue
            p = v.producer
            if p is not None and p.op in SPLATS:  # a splat is recomputed, not read
                vmap[v] = body.add_node(p.op, [], dict(p.attrs), [v.type], p.loc).outputs[0]
            else:
                vmap[v] = body.add_input(v.type)
                operands.append(v)
        new = Node(n.op, [vmap[v] for v in n.inputs], dict(n.attrs), [], n.loc)
        new.outputs = [Value(o.type, new, i) for i, o in enumerate(n.outputs)]
        vmap.update(zip(n.outputs, new.outputs))
        body.nodes.append(new)
    results = [o for n in members for o in n.outputs if o in used_outside]
    body.outputs = [vmap[v] for v in results]
    node = Node("fusion", operands, {"regions": (body,)}, results, members[-1].loc)
    for i, v in enumerate(results):  # the outer graph's users keep pointing at these Values
        v.producer, v.index = node, i
    return node
