"""VJP rules of the control-flow ops: the backward of a ``scan`` is a reverse scan, the backward of
a ``cond`` a cond of the branches' VJPs. Their regions are differentiated with the same reverse
walk and VJP rules as everything else (core.autograd.expand_grads on a copy of the region with a
grad request), so regions nest and higher derivatives work.

Note [Differentiating scan]
The backward of ``scan(consts, init, xs)`` with body ``f(consts, carry, x) -> (carry, y)`` runs the
steps in the opposite order, each one the VJP of ``f`` at that step. That VJP needs values of the
forward step (the carry it started from, activations such as a sigmoid's output). Recomputing
each step's forward inside the backward body would still need the carry of every step, so it
saves less than it seems and runs the body's forward twice; instead the forward *saves residuals*:

1. ``joint``: the body followed by its VJP, made by the autodiff expansion of a copy of the body
   with a grad request (inputs: the body's inputs and the cotangents of its float outputs;
   outputs: the gradients of its float inputs).
2. Its nodes are split by what they depend on. *Tangent* nodes depend on a cotangent: they form
   the backward body. The others are primal. Walking back from the gradients, a primal value the
   backward body reads is recomputed there when it is cheap (elementwise and shape ops, which
   XLA fuses into the backward's own kernels) or the same at every step (it depends only on
   consts); otherwise (a matmul's result, a carry) it is a *residual*: an extra y of the forward
   scan, stacked over the steps. For an LSTM cell the residuals are h, c and h @ W_hh^T; the
   gates' activations are recomputed from them and x, the way AOTAutograd's default partitioner
   and jax.checkpoint's dots-saveable policy choose.
3. The VJP rule emits the forward scan again, with the residuals as extra ys (its body is the
   original body followed by the primal nodes of the VJP), then the reverse scan:
   consts = consts; carry = (gradient accumulators of the float consts, cotangents of the float
   carries); xs = (xs, residuals, cotangents of the float ys); ys = gradients of the float xs.
   A const's gradient that is a matmul of two per-step values (an RNN's weight gradient
   sum_t g_t^T h_t) is not accumulated in the loop: its operands are stacked (as ys of the
   reverse scan, or they are residual stacks or xs already) and one dot_general contracting the
   step axis too computes it after the loop: one big matmul instead of a small one per step
   (an LSTM's backward executable ran about 20% faster for it on CPU).
4. The forward now runs twice: once where the user wrote it, once in the VJP. The autodiff pass
   ends with ``merge_scans``: a scan whose operands and attributes equal an earlier scan's and
   whose body begins with that scan's body (the residual-saving re-run) computes everything the
   earlier one does, so it takes its place and the earlier one goes. The forward runs once, and
   the backward once. (A compiled call inside eager autograd cuts that graph in two,
   passes/partition.py: the residual-saving scan lands in the forward executable, its residual
   stacks are saved for the backward executable, which holds the reverse scan.)

What the rule differentiates: the float operands the reverse walk asks for
(core.autograd.needs_input_grad, as for every other VJP): on the eager tape only those that
require grad, where nothing prunes; under the autodiff pass every float operand (dce then prunes
the gradients nobody uses, see passes/dce.py).

Note [Differentiating cond]
The backward of ``cond(pred, *operands)`` is ``cond(pred, *operands, *cotangents)`` whose regions
are the branches' VJPs, each recomputing its branch's forward: only one branch runs, and saving
residuals would need both branches to give the same residual types (zeros for the other branch's)
for the cost of one branch's forward.

Note [Custom VJPs]
A ``gcomp.autograd.Function`` (torch.autograd.Function) called with inputs that need grad inside
gcomp.compile becomes one ``custom_vjp`` node: its forward traced into region ``forward``
(operands -> results), its backward into region ``backward`` ((operands, cotangents) ->
gradients of the float arguments). What ``ctx.save_for_backward`` (or a tensor attribute of ctx)
held is, in the backward region, recomputed from the operands: the backward region begins with
a second trace of the forward. The VJP rule inlines the backward region's nodes into the graph,
so after autodiff the forward's recomputation is ordinary nodes: cse merges it with the forward
where the node's forward was inlined too (lowering inlines the forward region; XLA's own CSE
sees both), and in a compiled call inside eager autograd the partition's minimum cut chooses
what to save, as for every other op. A backward that reads its saved tensors only pays nothing
for this; one that recomputes would pay once. Tensors the methods read from outside (a
parameter used inside forward) are extra operands that get no gradient, as torch gives them
none through a Function.
"""

from __future__ import annotations

import weakref

from ..core import prims as P
from ..core.autograd import expand_grads, needs_input_grad
from ..core.dispatch import bind_many
from ..ir.graph import Graph, Node, Value
from . import defvjp

_JOINTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # region -> {key: result}


def _is_float(t) -> bool:
    return t._type.dtype.is_floating_point


def _cached(region: Graph, key, make):
    per = _JOINTS.setdefault(region, {})
    if key not in per:
        per[key] = make()
    return per[key]


def joint(region: Graph, seeded: tuple[int, ...], wrt: tuple[int, ...]) -> tuple[Graph, int]:
    """The region followed by its VJP, and how many of its nodes are the region's forward.

    Inputs: the region's inputs, then one cotangent per output in ``seeded``; outputs: the
    gradient of each input in ``wrt``."""
    g = region.copy()
    n_forward = len(g.nodes)
    outs = [g.outputs[i] for i in seeded]
    cts = [g.add_input(v.type, name="ct") for v in outs]
    request = g.add_node("grad", outs + cts + [g.inputs[i] for i in wrt], {"outputs": len(outs)})
    g.outputs = list(request.outputs)
    return expand_grads(g), n_forward


def _wanted(inputs, candidates):
    """The candidate operands to differentiate (Note [Differentiating scan], last paragraph)."""
    return [i for i in candidates if _is_float(inputs[i]) and needs_input_grad(i)]


# -- cond --------------------------------------------------------------------------------------
@defvjp("cond")
def _cond(cts, inputs, outputs, regions):
    pred, n = inputs[0], len(inputs) - 1
    seeded = tuple(i for i, o in enumerate(outputs) if _is_float(o))
    wrt = tuple(i - 1 for i in _wanted(inputs, range(1, len(inputs))))
    grads: list = [None] * len(inputs)
    if not seeded or not wrt:
        return grads
    branches = tuple(_cached(r, ("cond", seeded, wrt), lambda r=r: joint(r, seeded, wrt)[0])
                     for r in regions)
    seeds = [cts[i] if cts[i] is not None else P.zeros_like(outputs[i]) for i in seeded]
    res = bind_many("cond", pred, *inputs[1:n + 1], *seeds, regions=branches)
    for i, g in zip(wrt, res, strict=True):
        grads[1 + i] = g
    return grads


# -- fusion ------------------------------------------------------------------------------------
@defvjp("fusion")
def _fusion(cts, inputs, outputs, regions):
    """The backward of a fusion is a fusion of its body's VJP (recomputing the body: a fusion
    is a group of cheap ops; the autodiff pass runs before the fusion pass, so this serves
    graphs written with fusions by hand)."""
    seeded = tuple(i for i, o in enumerate(outputs) if _is_float(o))
    wrt = tuple(_wanted(inputs, range(len(inputs))))
    grads: list = [None] * len(inputs)
    if not seeded or not wrt:
        return grads
    body = _cached(regions[0], ("fusion", seeded, wrt), lambda: joint(regions[0], seeded, wrt)[0])
    seeds = [cts[i] if cts[i] is not None else P.zeros_like(outputs[i]) for i in seeded]
    for i, g in zip(wrt, bind_many("fusion", *inputs, *seeds, regions=(body,)), strict=True):
        grads[i] = g
    return grads


# -- scan --------------------------------------------------------------------------------------
class _ScanVJP:
    """The two bodies of a scan's VJP (Note [Differentiating scan]): ``forward``, the body with
    the residuals as extra ys, and ``backward``, the transposed body; and ``hoisted``, the const
    gradients contracted over all steps after the loop instead of accumulated in it."""

    def __init__(self, body: Graph, nc: int, nk: int, fc, fk, fx, fy):
        nx = len(body.inputs) - nc - nk
        seeded = tuple(fk) + tuple(nk + j for j in fy)
        wrt = tuple(fc) + tuple(nc + k for k in fk) + tuple(nc + nk + i for i in fx)
        j, n_forward = joint(body, seeded, wrt)
        ins = j.inputs
        consts, carry = ins[:nc], ins[nc:nc + nk]
        xs, cts = ins[nc + nk:nc + nk + nx], ins[nc + nk + nx:]
        forward_nodes, tail = j.nodes[:n_forward], j.nodes[n_forward:]
        # what depends on a cotangent (tangent), and on the carry or x (varying)
        tangent, varying = set(cts), set(carry) | set(xs)
        for n in j.nodes:
            if any(v in tangent for v in n.inputs):
                tangent.update(n.outputs)
            if any(v in varying for v in n.inputs):
                varying.update(n.outputs)
        grads = list(j.outputs)
        hoisted = {k: h for k in range(len(fc)) if (h := _hoistable(grads[k], varying, tangent))}
        # walk back from the gradients: tangent, invariant and cheap nodes go to the backward
        # body; the other (varying) primal values it reads become residuals
        in_backward: set = set()
        residuals: list[Value] = []
        stack = [v for k, v in enumerate(grads) if k not in hoisted] + [
            v for a, b, _, _ in hoisted.values() for v in (a, b)]
        seen: set = set()
        while stack:
            v = stack.pop()
            if v in seen:
                continue
            seen.add(v)
            p = v.producer
            if p is None:
                if v in carry:
                    residuals.append(v)
                continue
            if v in tangent or v not in varying or _cheap(p):
                in_backward.add(p)
                stack.extend(p.inputs)
            else:
                residuals.append(v)
        residuals.sort(key=lambda v: (_position(j, v), v.index))
        # the primal nodes of the VJP that compute residuals join the forward body
        extra: set = set()
        stack = [v.producer for v in residuals if v.producer is not None]
        own = set(forward_nodes)
        while stack:
            p = stack.pop()
            if p in own or p in extra:
                continue
            extra.add(p)
            stack.extend(v.producer for v in p.inputs if v.producer is not None)
        self.forward, _ = _subgraph(
            body.name, [(v, v.name) for v in ins[:nc + nk + nx]],
            forward_nodes + [n for n in tail if n in extra],
            _forward_outputs(body, j, n_forward) + residuals)
        self.forward = _merged(self.forward)
        self.n_residuals = len(residuals)
        # the backward body: consts; carry = (accumulators, carry cotangents);
        # xs = (x, residuals, y cotangents); ys = (x gradients, operands of hoisted gradients)
        accumulated = [k for k in range(len(fc)) if k not in hoisted]
        b = Graph(body.name)
        vmap: dict = {}
        for v in consts:
            vmap[v] = b.add_input(v.type, v.name)
        accs = [b.add_input(consts[fc[k]].type, f"ct_{consts[fc[k]].name or 'const'}")
                for k in accumulated]
        for k, v in zip(fk, cts[:len(fk)]):
            vmap[v] = b.add_input(v.type, f"ct_{carry[k].name or 'carry'}")
        for v in xs:
            vmap[v] = b.add_input(v.type, v.name)
        for v in residuals:
            vmap[v] = b.add_input(v.type, "res")
        for v in cts[len(fk):]:
            vmap[v] = b.add_input(v.type, "ct_y")
        _copy_into(b, [n for n in j.nodes if n in in_backward], vmap)
        sums = [b.add_node("add", [a, vmap[grads[k]]]).outputs[0]
                for a, k in zip(accs, accumulated)]
        g_carry = [vmap[v] for v in grads[len(fc):len(fc) + len(fk)]]
        g_xs = [vmap[v] for v in grads[len(fc) + len(fk):]]
        # where each hoisted operand's stack comes from: the scan's xs, a residual, or a y
        self.hoisted, stacked = [], []
        for k, (a, bv, contract, perms) in hoisted.items():
            where = []
            for v in (a, bv):
                if v in xs:
                    where.append(("xs", xs.index(v)))
                elif v in residuals:
                    where.append(("residual", residuals.index(v)))
                elif vmap[v] in g_xs or vmap[v] in stacked:  # a stack the loop already writes
                    where.append(("y", (g_xs + stacked).index(vmap[v])))
                else:
                    where.append(("y", len(g_xs) + len(stacked)))
                    stacked.append(vmap[v])
            self.hoisted.append((k, where, contract, perms))
        b.outputs = sums + g_carry + g_xs + stacked
        self.accumulated = accumulated
        self.backward = b


def _hoistable(g: Value, varying: set, tangent: set):
    """A const's per-step gradient ``transpose*(dot_general(a, b))`` of two per-step values:
    summed over the steps it is one dot_general of their stacks, contracting the step axis too.
    Returns (a, b, contraction of the stacks, the transposes' perms) or None."""
    perms = []
    p = g.producer
    while p is not None and p.op == "transpose":
        perms.append(p.attrs["perm"])
        p = p.inputs[0].producer
    if p is None or p.op != "dot_general" or p.attrs["batch"] or p.attrs.get("accumulate"):
        return None
    a, b = p.inputs
    if not all(v in varying or v in tangent for v in (a, b)):
        return None
    contract = ((0, 0),) + tuple((i + 1, k + 1) for i, k in p.attrs["contract"])
    return a, b, contract, perms[::-1]


# recomputed in the backward body rather than saved: XLA fuses them into the backward's kernels
_CHEAP_SHAPE_OPS = frozenset({"reshape", "broadcast", "transpose", "slice", "pad", "concatenate",
                              "rev"})


def _cheap(node: Node) -> bool:
    from ..ir.ops import OPS

    return OPS[node.op].family == "elementwise" or node.op in _CHEAP_SHAPE_OPS


def _position(graph: Graph, v: Value) -> int:
    return -1 if v.producer is None else graph.nodes.index(v.producer)


def _forward_outputs(body: Graph, j: Graph, n_forward: int) -> list[Value]:
    """The joint graph's copies of the body's outputs (its first n_forward nodes copy the body)."""
    vmap = dict(zip(body.inputs, j.inputs))
    for a, b in zip(body.nodes, j.nodes[:n_forward], strict=True):
        vmap.update(zip(a.outputs, b.outputs))
    return [vmap[v] for v in body.outputs]


def _copy_into(g: Graph, nodes, vmap: dict) -> None:
    for n in nodes:
        new = Node(n.op, [vmap[v] for v in n.inputs], dict(n.attrs), [], n.loc)
        new.outputs = [Value(o.type, new, i) for i, o in enumerate(n.outputs)]
        vmap.update(zip(n.outputs, new.outputs))
        g.nodes.append(new)


def _subgraph(name, inputs, nodes, outputs) -> tuple[Graph, dict]:
    g = Graph(name)
    vmap = {v: g.add_input(v.type, nm) for v, nm in inputs}
    _copy_into(g, nodes, vmap)
    g.outputs = [vmap[v] for v in outputs]
    return g, vmap


def _merged(g: Graph) -> Graph:
    return merge_scans(g) if sum(n.op == "scan" for n in g.nodes) > 1 else g


def _scan_vjp(body, nc, nk, fc, fk, fx, fy) -> _ScanVJP:
    return _cached(body, ("scan", nc, nk, fc, fk, fx, fy),
                   lambda: _ScanVJP(body, nc, nk, fc, fk, fx, fy))


@defvjp("scan")
def _scan(cts, inputs, outputs, regions, length, reverse, num_consts, num_carry, unroll):
    (body,) = regions
    nc, nk = num_consts, num_carry
    consts, init, xs = inputs[:nc], inputs[nc:nc + nk], inputs[nc + nk:]
    ny = len(outputs) - nk
    # a ys nobody reads (fuse_patterns' scan_last leaves the stack of an LSTM's outputs unread
    # when only the last is used) takes no cotangent: no zeros stack feeds the reverse scan
    fy = tuple(j for j in range(ny) if _is_float(outputs[nk + j]) and cts[nk + j] is not None)
    fk = tuple(k for k in range(nk) if _is_float(init[k]))  # carries keep their types
    wanted = set(_wanted(inputs, range(len(inputs))))
    # a float carry's cotangent flows through every step, so all float carries are seeded
    fc = tuple(i for i in range(nc) if i in wanted)
    fx = tuple(i for i in range(len(xs)) if nc + nk + i in wanted)
    grads: list = [None] * len(inputs)
    if not (fk or fy) or not (fc or fk or fx):
        return grads
    vjp = _scan_vjp(body, nc, nk, fc, fk, fx, fy)
    fwd = bind_many("scan", *consts, *init, *xs, regions=(vjp.forward,), length=length,
                    reverse=reverse, num_consts=nc, num_carry=nk, unroll=unroll)
    residuals = fwd[len(fwd) - vjp.n_residuals:] if vjp.n_residuals else ()
    accs = [P.zeros_like(consts[fc[k]]) for k in vjp.accumulated]
    carry_cts = [cts[k] if cts[k] is not None else P.zeros_like(outputs[k]) for k in fk]
    y_cts = [cts[nk + j] for j in fy]
    res = bind_many("scan", *consts, *accs, *carry_cts, *xs, *residuals, *y_cts,
                    regions=(vjp.backward,), length=length, reverse=not reverse,
                    num_consts=nc, num_carry=len(accs) + len(fk), unroll=unroll)
    nk2 = len(accs) + len(fk)
    for k, g in zip(vjp.accumulated, res[:len(accs)]):
        grads[fc[k]] = g
    for k, g in zip(fk, res[len(accs):nk2]):
        if nc + k in wanted:
            grads[nc + k] = g
    for i, g in zip(fx, res[nk2:nk2 + len(fx)]):
        grads[nc + nk + i] = g
    stacks = {"xs": xs, "residual": residuals, "y": res[nk2:]}
    for k, where, contract, perms in vjp.hoisted:
        a, b = (stacks[kind][i] for kind, i in where)
        g = P.dot_general(a, b, contract=contract, batch=())
        for perm in perms:
            g = P.transpose(g, perm=perm)
        grads[fc[k]] = g
    return grads


# -- custom_vjp: a traced autograd.Function -----------------------------------------------------
@defvjp("custom_vjp")
def _custom_vjp(cts, inputs, outputs, regions, wrt):
    """Note [Custom VJPs]: the backward region, inlined."""
    grads: list = [None] * len(inputs)
    if not any(needs_input_grad(i) for i in wrt):
        return grads
    seeds = [c if c is not None else P.zeros_like(o) for c, o in zip(cts, outputs)]
    for i, g in zip(wrt, inline(regions[1], [*inputs, *seeds]), strict=True):
        if needs_input_grad(i):
            grads[i] = g
    return grads


def inline(region: Graph, args: list) -> list:
    """Bind the region's nodes to ``args`` in the current interpreter: its outputs."""
    from ..core.dispatch import Mode

    env = dict(zip(region.inputs, args, strict=True))
    interp = Mode.stack[-1]
    located = hasattr(interp, "loc")  # the autodiff pass's emitter: keep the user's lines
    here = interp.loc if located else None
    try:
        for n in region.nodes:
            if located:
                interp.loc = n.loc or here
            env.update(zip(n.outputs, bind_many(n.op, *[env[v] for v in n.inputs], **n.attrs)))
    finally:
        if located:
            interp.loc = here
    return [env[v] for v in region.outputs]


def inline_custom_vjps(graph: Graph) -> Graph:
    """Replace each custom_vjp node of the graph (not of its regions) by its forward region's
    nodes, once the autodiff pass has expanded every grad request. In place; returns the graph."""
    if not any(n.op == "custom_vjp" for n in graph.nodes):
        return graph
    nodes, graph.nodes, mapping = graph.nodes, [], {}
    for n in nodes:
        if n.op != "custom_vjp":
            graph.nodes.append(n)
            continue
        fwd = n.regions[0]
        vmap = dict(zip(fwd.inputs, n.inputs, strict=True))
        _copy_into(graph, fwd.nodes, vmap)
        mapping.update(zip(n.outputs, (vmap[v] for v in fwd.outputs)))
    graph.replace_all_uses(mapping)
    return graph


# -- merging a scan into its residual-saving re-run ----------------------------------------------
def merge_scans(graph: Graph) -> Graph:
    """Replace each scan that a later scan over the same operands also computes (its body
    begins with the earlier body: the re-run of Note [Differentiating scan]) by that later scan,
    moved to the earlier one's place. Works in place; returns the graph."""
    i = 0
    while i < len(graph.nodes):
        big = graph.nodes[i]
        if big.op == "scan":
            for k in range(i):
                small = graph.nodes[k]
                if small.op == "scan" and _node_extends(small, big, {}):
                    del graph.nodes[i]
                    graph.nodes[k] = big
                    graph.replace_all_uses(dict(zip(small.outputs, big.outputs)))
                    i = k
                    break
        i += 1
    return graph


def _node_extends(a: Node, b: Node, vmap: dict) -> bool:
    """Whether node b computes what node a does (and maybe more ys), under the value map."""
    if a.op != b.op or len(a.inputs) != len(b.inputs) or len(b.outputs) < len(a.outputs):
        return False
    if any(vmap.get(x, x) is not y for x, y in zip(a.inputs, b.inputs)):
        return False
    if any(a.attrs[k] != b.attrs[k] for k in a.attrs if k != "regions"):
        return False
    if a.regions != b.regions or len(a.outputs) != len(b.outputs):
        if a.op != "scan" or not _graph_extends(a.regions[0], b.regions[0]):
            return False
    if any(x.type != y.type for x, y in zip(a.outputs, b.outputs)):
        return False
    vmap.update(zip(a.outputs, b.outputs))
    return True


def _graph_extends(small: Graph, big: Graph) -> bool:
    """Whether big's nodes begin with small's and its outputs with small's outputs."""
    if [v.type for v in small.inputs] != [v.type for v in big.inputs]:
        return False
    if len(big.nodes) < len(small.nodes) or len(big.outputs) < len(small.outputs):
        return False
    vmap = dict(zip(small.inputs, big.inputs))
    if not all(_node_extends(a, b, vmap) for a, b in zip(small.nodes, big.nodes)):
        return False
    return all(vmap.get(v) is w for v, w in zip(small.outputs, big.outputs))
