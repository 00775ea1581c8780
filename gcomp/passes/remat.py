"""Rematerialization: what the forward keeps for the backward, chosen by a minimum cut.

Note [What the forward saves: a minimum cut]
The backward reads forward values (a layer's input for its weight gradient, a GELU's input for
its derivative). Each one is either *saved* (kept alive from the forward to its use) or
*recomputed* in the backward from saved values. The choice is a minimum cut, as in AOTAutograd's
partitioner: every forward value v becomes two nodes of a flow network, ``v_in`` and ``v_out``,
joined by an edge whose capacity is v's bytes (cutting it means saving v); an edge of infinite
capacity runs from ``u_out`` to ``v_in`` for each operand u of v's node, from the source into
``v_in`` for each node that the forward computes and that must not be recomputed, and from
``v_out`` to the sink for each value the backward reads. Graph inputs (parameters, the batch)
are live for the whole call anyway and constants cost nothing: they are not in the network, so
what only they determine is recomputed for free. The values whose edge a minimum cut crosses
are saved; the nodes between the cut and the backward's reads are recomputed (networkx
``minimum_cut``; of equal cuts it gives the one nearest the sink, so a tie saves the later
value, which leaves less to recompute). Which nodes may be recomputed (``recompute_class``):

- elementwise and shape ops: recomputing them costs less than keeping them;
- matmuls, convolutions, reductions, windows, gathers and scatters only when a budget asks;
- never: random draws (a draw is a function of its key, so recomputing it would give the same
  bits, but at the generator's cost: it is refused), region ops, nodes with several results,
  optimization barriers and ``grad_seed``.

With the option ``remat_budget`` (bytes), a cut that saves more than the budget is repeated with
one more expensive node allowed to be recomputed, until the saved bytes fit. The one allowed is,
of the expensive nodes the saved values are computed from through cheap ones, the largest, and
of equal ones the farthest in program order from those already allowed (then the latest): the
recomputations spread out (every other layer of a deep MLP, as in checkpointing) instead of
growing chains that would hold in the backward as much as the saved values did. When no
expensive node is left, the pass says so on the ``gcomp.passes`` logger and keeps the last cut.
The same choice serves both places where a forward meets a backward: the partition of a
compiled module's joint graph into two executables (passes/partition.py) and a training step,
one graph (Note [Rematerialization in one graph]).

Note [Rematerialization in one graph]
After the autodiff pass, ``loss.backward(); opt.step()`` inside gcomp.compile is one graph. Its
backward is what depends on a ``grad_seed`` node: the autodiff expansion passes each cotangent
seed through one (core/autograd.py ``_expand``), and no pass folds, merges or simplifies a
``grad_seed`` away (fold leaves its family alone; no rule matches it), so the dependence
survives every rewrite, even where the seed is the constant 1.0 and its products are folded.
The optimizer reads gradients, so it is backward too. Every other node is forward; nodes that
VJP rules made of forward values only are forward values only the backward reads (AOTAutograd's
"unclaimed" nodes). The pass cuts, then walks the backward in program order and, before each
backward node, emits copies of the recomputed nodes it reads (operands first); the node reads
the copies. A copy of a cheap node serves only the node it was made for, a copy of an expensive
one (a budget allowed it) every later use: reusing cheap copies across backward nodes keeps
them alive as long as the saved values they replace (measured on the deep MLP of
benchmarks/remat.py: 16.5 MiB of temporaries against 9.5 MiB, and 16 MiB without remat).
Originals that only the backward read are then dead and go. Cheap nodes of inputs and
constants alone (the optimizer's ``-lr``, a broadcast bias) stay where they are.

XLA would undo the copies: CSE merges a copy into its original (the same op on the same
operands), and the scheduler may run it early, in the forward. So the operands a batch of
copies reads from outside it (saved values, graph inputs; constants are folded in) first pass
through one ``optimization_barrier`` with a value of the backward (one the node reads, else the
latest before it), as jax.checkpoint does: behind it they are new values that exist only once
the backward has got there. Measured on jax 0.10.2 CPU (benchmarks/remat.py, the deep MLP's
step, parameters donated as the runtime does): 16 MiB of temporaries without remat, 9.5 MiB
with it, 16 MiB again with the barrier lowered as the identity. A graph without ``grad_seed``
(no backward), or whose backward reads nothing cheap to recompute, is returned unchanged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ..ir.graph import Graph, Node, Value
from ..ir.ops import OPS
from .manager import current_options, option, register

log = logging.getLogger("gcomp.passes")

CHEAP_FAMILIES = ("elementwise", "shape")
EXPENSIVE_FAMILIES = ("linalg", "conv", "reduce", "window")
EXPENSIVE_OPS = frozenset({"take", "scatter_add"})  # shape ops that gather or scatter


def _budget(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("expected a number of bytes >= 0")
    return value


def _flag(value) -> bool:
    if not isinstance(value, bool):
        raise ValueError("expected True or False")
    return value


# Off by default: in one executable XLA already frees what it can, and the copies behind
# barriers cost step time (measured: the MLP step 0.71 -> 0.97 ms, the LSTM 22 -> 25 ms on CPU)
# for memory (-41% temporary bytes on a 16-layer GELU MLP): a trade to ask for, as
# jax.checkpoint is. The tape split (partition.py) always uses the minimum cut.
option("remat", False, _flag,
       "rematerialize cheap forward work next to its backward uses in a whole training step",
       needs="remat")
option("remat_budget", None, _budget,
       "bytes the forward may keep for the backward; over it, rematerialization recomputes "
       "matmuls and reductions too", needs="remat")


def recompute_class(node: Node) -> str:
    """'cheap', 'expensive' (recomputed only to meet a budget) or 'never'."""
    if len(node.outputs) != 1 or node.regions or node.op not in OPS:
        return "never"
    family = OPS[node.op].family
    if node.op in EXPENSIVE_OPS or family in EXPENSIVE_FAMILIES:
        return "expensive"
    return "cheap" if family in CHEAP_FAMILIES else "never"


@dataclass
class Choice:
    """What the forward keeps for the backward and what the backward recomputes."""

    saved: list[Value]  # forward values kept, in program order
    recompute: list[Node]  # forward nodes the backward computes again, in program order
    saved_bytes: int


def choose(nodes: list[Node], needed: list[Value], required: set[Node] | None = None,
           budget: int | None = None, what: str = "", keep_input_values: bool = False) -> Choice:
    """The minimum cut (Note [What the forward saves: a minimum cut]) over the forward ``nodes``
    (program order) for the values the backward reads, ``needed`` (values no node of ``nodes``
    makes, such as graph inputs, cost nothing). ``required``: the nodes the forward computes in
    any case (None: all); an expensive node outside it may move to the backward. With
    ``keep_input_values``, cheap nodes that graph inputs and constants alone determine are
    neither saved nor recomputed: they stay where they are, like inputs."""
    order = {n: i for i, n in enumerate(nodes)}
    free = {n for n in nodes if not n.inputs}  # constants cost nothing, as inputs do
    if keep_input_values:
        for n in nodes:
            if recompute_class(n) == "cheap" and all(v.producer is None or v.producer in free
                                                     for v in n.inputs):
                free.add(n)
    needed = [v for v in needed if v.producer in order and v.producer not in free]
    allowed: set[Node] = set()
    while True:
        choice = _cut(nodes, order, free, needed, required, allowed)
        if budget is None or choice.saved_bytes <= budget:
            return choice
        more = _expensive_sources(choice.saved, allowed)
        if not more:
            log.info("remat%s: the forward keeps %d bytes for the backward, over the budget of "
                     "%d bytes; nothing else may be recomputed (random draws, control flow)",
                     what, choice.saved_bytes, budget)
            return choice
        allowed.add(max(more, key=lambda n: (n.outputs[0].type.nbytes, _distance(n, allowed,
                                                                              order), order[n])))


def _distance(n: Node, allowed: set[Node], order: dict[Node, int]) -> int:
    """How far in program order ``n`` is from the nearest node already allowed."""
    return min((abs(order[n] - order[a]) for a in allowed), default=len(order))


def _expensive_sources(saved: list[Value], allowed: set[Node]) -> list[Node]:
    """The expensive nodes not allowed yet that the saved values are computed from through
    cheap nodes only: allowing one lets the cut move past it."""
    found: list[Node] = []
    seen: set[Node] = set()
    stack = [v.producer for v in saved]
    while stack:
        n = stack.pop()
        if n is None or n in seen:
            continue
        seen.add(n)
        kind = recompute_class(n)
        if kind == "expensive" and n not in allowed:
            found.append(n)
        elif kind == "cheap" or n in allowed:
            stack.extend(v.producer for v in n.inputs)
    return found


def _cut(nodes, order, free, needed, required, allowed) -> Choice:
    import networkx as nx

    # value k: node 2k is v_in, 2k + 1 is v_out; -1 the source, -2 the sink
    index: dict[Value, int] = {}
    g = nx.DiGraph()
    g.add_node(-1)
    g.add_node(-2)
    for n in nodes:
        if n in free:
            continue
        fixed = recompute_class(n) == "never" or (
            recompute_class(n) == "expensive" and n not in allowed)
        fixed = fixed and (required is None or n in required)
        for o in n.outputs:
            k = index[o] = len(index)
            g.add_edge(2 * k, 2 * k + 1, capacity=o.type.nbytes)
            if fixed:
                g.add_edge(-1, 2 * k)  # no capacity: infinite
            for u in n.inputs:
                if u in index:
                    g.add_edge(2 * index[u] + 1, 2 * k)
    for v in needed:
        g.add_edge(2 * index[v] + 1, -2)
    _, (source_side, _) = nx.minimum_cut(g, -1, -2)

    saved: set[Value] = set()
    recompute: set[Node] = set()
    stack = list(needed)
    while stack:
        v = stack.pop()
        if v not in index or v in saved or v.producer in recompute:
            continue
        if 2 * index[v] in source_side:
            saved.add(v)
        else:
            recompute.add(v.producer)
            stack.extend(v.producer.inputs)
    kept = sorted(saved, key=lambda v: index[v])
    return Choice(kept, sorted(recompute, key=order.__getitem__),
                  sum(v.type.nbytes for v in kept))


@register("remat")
def remat(graph: Graph) -> Graph:
    """Recompute cheap forward values next to their backward uses instead of keeping them
    (Note [Rematerialization in one graph])."""
    if graph.contains("grad"):
        log.debug("remat: skipped, the graph still holds grad requests (run autodiff first)")
        return graph
    backward: set[Node] = set()
    tainted: set[Value] = set()
    for n in graph.nodes:
        if n.op == "grad_seed" or any(v in tainted for v in n.inputs):
            backward.add(n)
            tainted.update(n.outputs)
    if not backward:
        return graph
    forward = [n for n in graph.nodes if n not in backward]
    needed = list(dict.fromkeys(v for n in graph.nodes if n in backward for v in n.inputs
                                if v not in tainted))
    choice = choose(forward, needed, budget=current_options()["remat_budget"],
                    keep_input_values=True)
    if not choice.recompute:
        return graph
    _emit(graph, backward, set(choice.recompute))
    log.debug("remat: keeps %d values (%d bytes), recomputes %d nodes", len(choice.saved),
              choice.saved_bytes, len(choice.recompute))
    return graph


def _batch(values: list[Value], recompute: set[Node], kept: dict[Value, Value]) -> list[Node]:
    """The recomputed nodes ``values`` need that have no kept copy, operands first."""
    batch: list[Node] = []
    seen: set[Node] = set()
    stack = [(v, False) for v in reversed(values)]
    while stack:
        v, done = stack.pop()
        p = v.producer
        if done:
            batch.append(p)
        elif p in recompute and v not in kept and p not in seen:
            seen.add(p)
            stack.append((v, True))
            stack.extend((u, False) for u in reversed(p.inputs))
    return batch


def _emit(graph: Graph, backward: set[Node], recompute: set[Node]) -> None:
    """Copy the recomputed nodes before the backward nodes that read them, behind a barrier;
    drop the originals that nothing reads any more. A copy of a cheap node serves the node it
    was made for; a copy of an expensive one (allowed by a budget) serves every later use."""
    kept: dict[Value, Value] = {}  # original -> copy, for expensive nodes
    nodes: list[Node] = []
    last: Value | None = None  # the latest backward value
    for n in graph.nodes:
        if n not in backward:
            nodes.append(n)
            continue
        local: dict[Value, Value] = {}  # original -> what this node's batch made of it
        batch = _batch(n.inputs, recompute, kept)
        seen = set(batch)
        if batch:
            outside = list(dict.fromkeys(  # constants need no barrier: XLA folds them in
                u for p in batch for u in p.inputs if u.producer not in seen
                and (u.producer is None or u.producer.inputs)))
            trigger = next((v for v in n.inputs if v.producer in backward), last)
            if outside:
                operands = outside + ([trigger] if trigger is not None else [])
                barrier = Node("optimization_barrier", [kept.get(v, v) for v in operands], {},
                               [], n.loc)
                barrier.outputs = [Value(v.type, barrier, i) for i, v in enumerate(operands)]
                nodes.append(barrier)
                local.update(zip(operands, barrier.outputs))
            for p in batch:
                new = Node(p.op, [local.get(u, u) for u in p.inputs], dict(p.attrs), [], p.loc)
                new.outputs = [Value(o.type, new, i) for i, o in enumerate(p.outputs)]
                nodes.append(new)
                local.update(zip(p.outputs, new.outputs))
                if recompute_class(p) != "cheap":
                    kept.update(zip(p.outputs, new.outputs))
        n.inputs = [local.get(v, kept.get(v, v)) for v in n.inputs]
        nodes.append(n)
        if n.outputs:
            last = n.outputs[0]
    live = set(graph.all_outputs)
    survivors = []
    for n in reversed(nodes):
        if n not in recompute or any(o in live for o in n.outputs):
            survivors.append(n)
            live.update(n.inputs)
    graph.nodes = survivors[::-1]
