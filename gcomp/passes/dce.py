"""Dead-code elimination: drop nodes none of whose results reach an output or a state update.

Every primitive is pure (random draws are functions of their key), so liveness is all there is.
A control-flow node that stays is pruned too: a scan loses the ys nobody reads and the carries
whose final value nobody reads and that no kept result depends on (such as the gradient
accumulator of a const nobody differentiates), a cond or a fusion the results nobody reads;
then their regions are cleaned the same way and operands no region reads any more are dropped.
Regions are never edited in place (Note [Regions]): a pruned node gets new regions.
"""

from __future__ import annotations

from ..ir.graph import Graph, Node
from .manager import register


@register("dce")
def dce(graph: Graph) -> Graph:
    live = set(graph.all_outputs)
    kept = []
    for node in reversed(graph.nodes):
        if any(o in live for o in node.outputs):
            if node.op in _PRUNE:
                node = _PRUNE[node.op](node, live)
            kept.append(node)
            live.update(node.inputs)
    graph.nodes = kept[::-1]
    return graph


def _input_deps(g: Graph) -> list[set[int]]:
    """For each output of g, the indices of the inputs it depends on."""
    deps = {v: {i} for i, v in enumerate(g.inputs)}
    for n in g.nodes:
        d = set().union(*(deps.get(v, set()) for v in n.inputs))
        for o in n.outputs:
            deps[o] = d
    return [deps.get(v, set()) for v in g.outputs]


def _region(g: Graph, outputs: list[int]) -> Graph:
    """A copy of region g with only the given outputs, cleaned by dce (inputs all kept)."""
    r = g.copy()
    r.outputs = [r.outputs[k] for k in outputs]
    return dce(r)


def _keep_inputs(g: Graph, indices: list[int]) -> None:
    g.inputs = [g.inputs[i] for i in indices]
    for i, v in enumerate(g.inputs):
        v.index = i


def _used_inputs(g: Graph) -> set[int]:
    used = set(g.outputs)
    for n in g.nodes:
        used.update(n.inputs)
    return {i for i, v in enumerate(g.inputs) if v in used}


def _rebuilt(node: Node, inputs, attrs, outputs) -> Node:
    """A node replacing ``node``, taking over the result Values that stay (their users keep
    pointing at them)."""
    new = Node(node.op, inputs, attrs, list(outputs), node.loc)
    for i, v in enumerate(new.outputs):
        v.producer, v.index = new, i
    return new


def _prune_scan(node: Node, live: set) -> Node:
    a = node.attrs
    nc, nk = a["num_consts"], a["num_carry"]
    (body,) = node.regions
    ny = len(node.outputs) - nk
    nx = len(body.inputs) - nc - nk
    keep_y = [j for j in range(ny) if node.outputs[nk + j] in live]
    drop = {k for k in range(nk) if node.outputs[k] not in live}
    deps = _input_deps(body)
    while drop:
        kept = [k for k in range(nk) if k not in drop] + [nk + j for j in keep_y]
        needed = set().union(*(deps[o] for o in kept))
        held = {k for k in drop if nc + k in needed}
        if not held:
            break
        drop -= held
    keep_k = [k for k in range(nk) if k not in drop]
    pruned = _region(body, keep_k + [nk + j for j in keep_y])
    used = _used_inputs(pruned)
    keep_c = [i for i in range(nc) if i in used]
    keep_x = [i for i in range(nx) if nc + nk + i in used]
    if len(keep_y) == ny and not drop and len(keep_c) == nc and len(keep_x) == nx:
        return node
    order = keep_c + [nc + k for k in keep_k] + [nc + nk + i for i in keep_x]
    _keep_inputs(pruned, order)
    attrs = {**a, "regions": (pruned,), "num_consts": len(keep_c), "num_carry": len(keep_k)}
    outputs = [node.outputs[k] for k in keep_k] + [node.outputs[nk + j] for j in keep_y]
    return _rebuilt(node, [node.inputs[i] for i in order], attrs, outputs)


def _prune_cond(node: Node, live: set) -> Node:
    keep = [k for k, o in enumerate(node.outputs) if o in live]
    branches = [_region(r, keep) for r in node.regions]
    used = set().union(*(_used_inputs(r) for r in branches))
    ops = [i for i in range(len(node.inputs) - 1) if i in used]
    if len(keep) == len(node.outputs) and len(ops) == len(node.inputs) - 1:
        return node
    for r in branches:
        _keep_inputs(r, ops)
    attrs = {**node.attrs, "regions": tuple(branches)}
    return _rebuilt(node, [node.inputs[0]] + [node.inputs[1 + i] for i in ops], attrs,
                    [node.outputs[k] for k in keep])


def _prune_fusion(node: Node, live: set) -> Node:
    keep = [k for k, o in enumerate(node.outputs) if o in live]
    body = _region(node.regions[0], keep)
    ops = sorted(_used_inputs(body))
    if len(keep) == len(node.outputs) and len(ops) == len(node.inputs):
        return node
    _keep_inputs(body, ops)
    return _rebuilt(node, [node.inputs[i] for i in ops], {**node.attrs, "regions": (body,)},
                    [node.outputs[k] for k in keep])


_PRUNE = {"scan": _prune_scan, "cond": _prune_cond, "fusion": _prune_fusion}
