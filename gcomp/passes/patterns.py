"""Pattern fusion: attention and log_softmax + NLL into the fused ops of ir/ops/fused.py, and
the last step of a recurrence's outputs into its final state.

Note [Fused patterns]
Composites trace to primitives: ``F.scaled_dot_product_attention``, ``nn.MultiheadAttention`` and
hand-written ``softmax(q @ k^T / sqrt(d)) @ v`` to two dot_generals around a softmax;
``F.cross_entropy`` (and ``F.nll_loss(F.log_softmax(x, 1), y)``) to a log_softmax, a ``take`` of
each target's log-probability at a flat index computed with iotas, and the weight, ignore_index,
label-smoothing and reduction arithmetic. ``fuse_patterns`` finds those shapes and replaces each
by one ``scaled_dot_product_attention`` or ``cross_entropy`` node, whose lowering is one call
(jax.nn.dot_product_attention, a stable closed-form loss) and whose VJP is closed-form.

What is matched, exactly (anything else is left as it is):

- attention: ``dot_general(P, v)`` contracting P's last dim, batch dims paired in order, where P
  is a softmax over its last dim (``exp(x - max) / sum``, the max possibly behind stop_gradient
  and possibly guarded to 0 where infinite, gcomp.softmax's form: the two agree on every row
  without a +inf score) of x, and x is the scores ``dot_general(q, k)`` (q (*b, L, E), k or k^T
  with the batch dims paired in order), times or divided by a splat constant (or not scaled; a
  splat scale on q whose only user is the contraction is folded in too), then optionally plus a
  float mask of the scores' dtype or with -inf selected where a bool mask forbids (``where(m, s,
  -inf)`` or ``masked_fill(m, -inf)``, which becomes ``logical_not(m)``). A finite fill
  (``masked_fill(m, -1e9)``) is not -inf: a row it masks entirely is uniform, not NaN, and a
  score as low as the fill still counts, so it is not fused. Neither is dropout between softmax
  and v, a mask added before scaling, a softmax over another dim, or a contraction that
  accumulates in another dtype.
- cross entropy: ``neg`` of (the mean, the sum, or each element of) ``take(reshape(logp), lin)``
  times its coefficient, logp a log_softmax over dim 1 (dim 0 of an unbatched input), lin the
  flat index n C D + t D + d of the target t with ignored targets at 0, the coefficient the
  not-ignored mask or the weight at t times it, the mean divided by the coefficients' sum, and
  label smoothing's ``(1 - s) picked + s / C (sum_c w_c logp_c) valid``.

- the last step of a scan's ys: a ``slice`` (through any transposes) taking only the last step
  (index length - 1; 0 for a reverse scan, whose ys stay in index order) of a scan output y
  whose body returns, as that y, the very value it returns as a carry k. The slice is that
  final carry, reshaped and transposed: exact. nn.LSTM/GRU/RNN return the stacked hidden states
  and the classic classifier reads ``out[:, -1]``; rewritten, the stack has no reader, so the
  scan's VJP seeds no cotangent for it (no mostly-zero [T, B, H] stack feeds the backward loop)
  and dce drops the stack from the forward loop: what hand-written JAX keeping only the final
  carry does. A stack also read elsewhere stays for that reader.

The intermediate values (scores, probabilities, log-probabilities, the picked values) must have
no users outside the pattern, or the fused op would compute them a second time; the index
arithmetic and coefficients may (they stay for their other users; dce drops them otherwise).

The pass runs before autodiff: the grad request then differentiates the fused ops with their
own VJP rules (autodiff/fused.py), so a training step is fused too. After autodiff the backward
reads the probabilities and log-probabilities of the forward, so nothing in a training step
would be fusable any more. Replacing a value the grad request reads (the loss) by an equal one
keeps the request's meaning; the interior values it could name are private, so never replaced.
Each fusion takes one unit of fuel (Note [Pass fuel] in manager.py). Regions are opaque.

Where attention is worth fusing (option ``attention``): the fused op's VJP recomputes the scores
and the softmax instead of saving the probabilities, as flash attention does, which saves the
(L, L) probabilities of every head for the backward; on an accelerator, where
jax.nn.dot_product_attention can use a fused kernel, that is the point. On the CPU, XLA runs the
same arithmetic fused or not, so the recomputation is pure cost: measured on the Transformer
encoder's training step, +2% flops, +16% bytes and about 5-8% step time. So ``attention="auto"``
(the default) fuses it on every backend but the CPU; "fused" and "unfused" force either.
Cross entropy is fused everywhere (its VJP recomputes a softmax over the classes, which is cheap
next to the logits' matmul).
"""

from __future__ import annotations

import math

from ..ir.graph import Graph, Node, Value
from .manager import current_fuel, current_options, option, register
from .rewrite import rewritable, splat

SWAP_LAST = {}  # ndim -> the permutation swapping the last two dims


def _swap(ndim: int) -> tuple[int, ...]:
    return SWAP_LAST.setdefault(ndim, tuple(range(ndim - 2)) + (ndim - 1, ndim - 2))


def _node(v: Value, *ops: str) -> Node | None:
    n = v.producer
    return n if n is not None and n.op in ops and not n.regions else None


def _float_splat(v: Value) -> float | None:
    c = splat(v)
    return float(c) if c is not None and math.isfinite(float(c)) else None


class _Match:
    """A candidate fusion: the private values it consumed and the nodes it will emit."""

    def __init__(self, graph_users: dict, root: Node):
        self.users, self.root = graph_users, root
        self.private: list[Value] = []
        self.emitted: list[Node] = []

    def take(self, v: Value, *ops: str) -> Node | None:
        """v's producer if its op is one of ``ops``, v becoming private to the pattern."""
        n = _node(v, *ops)
        if n is not None:
            self.private.append(v)
        return n

    def sole_use(self, v: Value, node: Node) -> bool:
        return self.users.get(v, ()) == [node]

    def closed(self) -> bool:
        """Whether every private value is read only by the pattern's own nodes."""
        inside = {v.producer for v in self.private} | {self.root}
        return all(all(u in inside for u in self.users.get(v, ())) for v in self.private)

    def emit(self, op: str, inputs: list[Value], attrs: dict | None = None) -> Value:
        node = Graph().add_node(op, inputs, attrs, loc=self.root.loc)
        self.emitted.append(node)
        return node.outputs[0]

    def transposed(self, v: Value, perm: tuple[int, ...]) -> Value:
        """v transposed by ``perm``: the operand of a transpose that this one undoes, or new."""
        n = _node(v, "transpose")
        if n is not None and all(n.attrs["perm"][perm[i]] == i for i in range(len(perm))):
            return n.inputs[0]
        return self.emit("transpose", [v], {"perm": perm})


# -- softmax and log_softmax ---------------------------------------------------------------------
def _kept(mt: _Match, b: Value, op: str, axis: int) -> Value | None:
    """The operand y of ``broadcast(op(y, axes=[axis], keepdims), b's shape)``."""
    n = mt.take(b, "broadcast")
    if n is None or tuple(n.attrs["dims"]) != tuple(range(len(b.shape))):
        return None
    r = mt.take(n.inputs[0], op)
    if r is None or tuple(r.attrs["axes"]) != (axis,) or not r.attrs["keepdims"]:
        return None
    return r.inputs[0]


def _maximum(mt: _Match, m: Value, axis: int) -> Value | None:
    """x of a (stop_gradient'ed) max of x over axis, kept, possibly zeroed where infinite."""
    sg = mt.take(m, "stop_gradient")
    if sg is not None:
        m = sg.inputs[0]
    guard = mt.take(m, "select")
    if guard is not None:  # select(abs(mx) == inf, 0, mx): gcomp.softmax's _stable_max
        cond, zero, mx = guard.inputs
        eq = mt.take(cond, "eq")
        if eq is None or splat(zero) != 0 or _node(eq.inputs[0], "abs") is None:
            return None
        mt.take(eq.inputs[0], "abs")
        if eq.inputs[0].producer.inputs[0] is not mx or splat(eq.inputs[1]) != math.inf:
            return None
        m = mx
    r = mt.take(m, "reduce_max")
    if r is None or tuple(r.attrs["axes"]) != (axis,) or not r.attrs["keepdims"]:
        return None
    x = r.inputs[0]
    sg = mt.take(x, "stop_gradient")
    return sg.inputs[0] if sg is not None else x


def _shifted(mt: _Match, z: Value, axis: int) -> Value | None:
    """x of ``x - max(x)`` over axis (the max broadcast back)."""
    n = mt.take(z, "sub")
    if n is None:
        return None
    x, b = n.inputs
    bn = mt.take(b, "broadcast")
    if bn is None or tuple(bn.attrs["dims"]) != tuple(range(len(b.shape))):
        return None
    return x if _maximum(mt, bn.inputs[0], axis) is x else None


def _softmax(mt: _Match, p: Value, axis: int) -> Value | None:
    """x of ``softmax(x, axis)``: exp(x - max) / sum(exp(x - max))."""
    n = mt.take(p, "div")
    if n is None:
        return None
    e, b = n.inputs
    ex = mt.take(e, "exp")
    if ex is None or _kept(mt, b, "reduce_sum", axis) is not e:
        return None
    return _shifted(mt, ex.inputs[0], axis)


def _log_softmax(mt: _Match, lp: Value, axis: int) -> Value | None:
    """x of ``log_softmax(x, axis)``: (x - max) - log(sum(exp(x - max)))."""
    n = mt.take(lp, "sub")
    if n is None:
        return None
    z, b = n.inputs
    log = _kept_log(mt, b, axis)
    ex = mt.take(log, "exp") if log is not None else None
    if ex is None or ex.inputs[0] is not z:
        return None
    return _shifted(mt, z, axis)


def _kept_log(mt: _Match, b: Value, axis: int) -> Value | None:
    """y of ``broadcast(log(reduce_sum(y, axis, keepdims)))``."""
    n = mt.take(b, "broadcast")
    if n is None or tuple(n.attrs["dims"]) != tuple(range(len(b.shape))):
        return None
    lg = mt.take(n.inputs[0], "log")
    r = mt.take(lg.inputs[0], "reduce_sum") if lg is not None else None
    if r is None or tuple(r.attrs["axes"]) != (axis,) or not r.attrs["keepdims"]:
        return None
    return r.inputs[0]


# -- attention -----------------------------------------------------------------------------------
def _paired(n: Node, nb: int) -> bool:
    return tuple(n.attrs["batch"]) == tuple((i, i) for i in range(nb)) and \
        not n.attrs.get("accumulate") and len(n.attrs["contract"]) == 1 and \
        all(len(v.shape) == nb + 2 for v in n.inputs)


def _scores(mt: _Match, y: Value, nb: int):
    """(q, k, scale) of y = scale * q k^T in one of its traced forms, or None."""
    scale, s = 1.0, y
    n = _node(y, "mul", "div")
    if n is not None:
        a, b = n.inputs
        if n.op == "div" and _node(a, "dot_general") and _float_splat(b):
            scale, s = 1.0 / _float_splat(b), a
        elif n.op == "mul":
            for x, c in ((a, b), (b, a)):
                if _node(x, "dot_general") and _float_splat(c) is not None:
                    scale, s = _float_splat(c), x
                    break
        if s is not y:
            mt.private.append(y)
    d = mt.take(s, "dot_general")
    if d is None or not _paired(d, nb):
        return None
    (ca, cb), = d.attrs["contract"]
    a, b = d.inputs
    if {ca, cb} - {nb, nb + 1}:
        return None
    pre = _node(a, "mul")
    if pre is not None and mt.sole_use(a, d):  # q * scale, read only here: fold the scale
        for x, c in (pre.inputs, pre.inputs[::-1]):
            if _float_splat(c) is not None and x.dtype == a.dtype:
                scale, a = scale * _float_splat(c), x
                mt.private.append(d.inputs[0])
                break
    q = a if ca == nb + 1 else mt.transposed(a, _swap(nb + 2))
    k = b if cb == nb + 1 else mt.transposed(b, _swap(nb + 2))
    return q, k, scale


def _attention(mt: _Match, out: Value) -> Value | None:
    n2 = out.producer
    nb = len(n2.attrs["batch"])
    if not _paired(n2, nb) or n2.attrs["contract"][0][0] != nb + 1:
        return None
    p, v = n2.inputs
    if not p.dtype.is_floating_point:
        return None
    x = _softmax(mt, p, nb + 1)
    if x is None:
        return None
    mask, m, sc = "none", None, None
    n = _node(x, "add", "select")
    if n is not None and n.op == "add":
        for s, c in (n.inputs, n.inputs[::-1]):
            trial = _Match(mt.users, mt.root)
            sc = _scores(trial, s, nb)
            if sc is not None:
                mask, m = "add", c
                break
    elif n is not None:
        cond, a, b = n.inputs
        for s, fill, allow in ((a, b, True), (b, a, False)):
            trial = _Match(mt.users, mt.root)
            if splat(fill) == -math.inf and (sc := _scores(trial, s, nb)) is not None:
                mask, m = "allow", cond if allow else trial.emit("logical_not", [cond])
                break
    if sc is None:
        trial = _Match(mt.users, mt.root)
        sc = _scores(trial, x, nb)
        if sc is None:
            return None
    else:
        mt.private.append(x)
    mt.private += trial.private
    mt.emitted += trial.emitted
    q, k, scale = sc
    cv = n2.attrs["contract"][0][1]
    v = v if cv == nb else mt.transposed(v, _swap(nb + 2))
    inputs = [q, k, v] + ([m] if m is not None else [])
    return mt.emit("scaled_dot_product_attention", inputs, {"scale": scale, "mask": mask})


# -- cross entropy -------------------------------------------------------------------------------
def _all_axes(n: Node | None) -> bool:
    return n is not None and tuple(n.attrs["axes"]) == tuple(range(len(n.inputs[0].shape))) \
        and not n.attrs["keepdims"]


def _targets(lin: Value, N: int, C: int, D: int):
    """(t, ignore_index, valid, safe) of the flat index n C D + safe D + d (safe: t, 0 where
    t == ignore_index) of _nll's masked form, or None."""
    r = _node(lin, "reshape")
    outer = _node(r.inputs[0], "add") if r is not None else None
    inner = _node(outer.inputs[0], "add") if outer is not None else None
    if inner is None or not _iota(outer.inputs[1], (N, D), 1):
        return None
    rows, cols = (_node(v, "mul") for v in inner.inputs)
    if rows is None or cols is None or not _iota(rows.inputs[0], (N, D), 0) or \
            splat(rows.inputs[1]) != C * D or splat(cols.inputs[1]) != D:
        return None
    rs = _node(cols.inputs[0], "reshape")
    sel = _node(rs.inputs[0], "select") if rs is not None else None
    if sel is None or splat(sel.inputs[2]) != 0:
        return None
    valid, t = sel.inputs[:2]
    ne = _node(valid, "ne")
    if ne is None or ne.inputs[0] is not t or splat(ne.inputs[1]) is None or t.shape != lin.shape:
        return None
    return t, int(splat(ne.inputs[1])), valid, sel.outputs[0]


def _iota(v: Value, shape: tuple, dim: int) -> bool:
    n = _node(v, "iota")
    return n is not None and tuple(n.attrs["shape"]) == shape and n.attrs["dim"] == dim


def _coefficient(coef: Value, valid: Value, safe: Value):
    """(validf, weight or None) of ``cast(valid)`` or ``take(weight, safe) * cast(valid)``."""
    c = _node(coef, "cast")
    if c is not None:
        return (coef, None) if c.inputs[0] is valid else None
    m = _node(coef, "mul")
    if m is None:
        return None
    tk, vf = m.inputs
    tn, cn = _node(tk, "take"), _node(vf, "cast")
    if tn is None or cn is None or cn.inputs[0] is not valid or tn.inputs[1] is not safe or \
            tn.attrs["axis"] != 0 or len(tn.inputs[0].shape) != 1:
        return None
    return vf, tn.inputs[0]


def _cross_entropy(mt: _Match, out: Value) -> Value | None:
    a = out.producer.inputs[0]
    reduction, denom = "none", None
    d = mt.take(a, "div")
    if d is not None:
        reduction, (total, denom) = "mean", d.inputs
        r = mt.take(total, "reduce_sum")
        if not _all_axes(r):
            return None
        loss = r.inputs[0]
    elif _all_axes(_node(a, "reduce_sum")):
        reduction, loss = "sum", mt.take(a, "reduce_sum").inputs[0]
    else:
        loss = a
    smoothing, smooth = 0.0, None
    add = mt.take(loss, "add")
    if add is not None:  # (1 - s) picked + (s / C) smooth
        m1, m2 = mt.take(add.inputs[0], "mul"), mt.take(add.inputs[1], "mul")
        if m1 is None or m2 is None:
            return None
        c1, c2 = _float_splat(m1.inputs[1]), _float_splat(m2.inputs[1])
        if c1 is None or c2 is None:
            return None
        loss, smooth, scales = m1.inputs[0], m2.inputs[0], (c1, c2)
    pm = mt.take(loss, "mul")
    raw = mt.take(pm.inputs[0], "take") if pm is not None else None
    if raw is None or raw.attrs["axis"] != 0:
        return None
    coef = pm.inputs[1]
    flat = mt.take(raw.inputs[0], "reshape")
    if flat is None or len(flat.inputs[0].shape) < 2:
        return None
    L = flat.inputs[0]
    (N, C), rest = L.shape[:2], L.shape[2:]
    unbatched = _node(L, "reshape") is not None and N == 1 and not rest and \
        _node(L, "reshape").inputs[0].shape == (C,)
    logp = mt.take(L, "reshape").inputs[0] if unbatched else L
    x = _log_softmax(mt, logp, 0 if unbatched else 1)
    found = _targets(raw.inputs[1], N, C, math.prod(rest))
    if x is None or found is None:
        return None
    t, ignore, valid, safe = found
    co = _coefficient(coef, valid, safe)
    if co is None:
        return None
    validf, weight = co
    if denom is not None and (not _all_axes(_node(denom, "reduce_sum")) or
                              denom.producer.inputs[0] is not coef):
        return None
    if smooth is not None:
        sm = mt.take(smooth, "mul")
        if sm is None or sm.inputs[1] is not validf:
            return None
        r = sm.inputs[0]
        if weight is None:
            rn = mt.take(r, "reduce_sum")
            ok = rn is not None and tuple(rn.attrs["axes"]) == (1,) and not rn.attrs["keepdims"]
        else:
            rn = mt.take(r, "dot_general")
            ok = rn is not None and rn.inputs[1] is weight and not rn.attrs["batch"] and \
                tuple(rn.attrs["contract"]) == ((1, 0),) and not rn.attrs.get("accumulate")
        if not ok or rn.inputs[0] is not L:
            return None
        smoothing = scales[1] * C
        if not math.isclose(1.0 - smoothing, scales[0], rel_tol=1e-9, abs_tol=1e-12) or \
                not 0.0 < smoothing <= 1.0:
            return None
    if x.dtype != out.dtype or (weight is not None and weight.dtype != x.dtype):
        return None
    logits = mt.emit("reshape", [x], {"shape": (1, C)}) if unbatched else x
    inputs = [logits, t] + ([weight] if weight is not None else [])
    return mt.emit("cross_entropy", inputs, {
        "ignore_index": ignore, "reduction": reduction, "label_smoothing": smoothing,
        "weighted": weight is not None})


# -- the last element of a scan's ys ------------------------------------------------------------
def _scan_last(mt: _Match, out: Value) -> Value | None:
    """The final carry, for a slice taking the last step of a scan's ys that is that carry."""
    sl = out.producer
    v, perm = sl.inputs[0], tuple(range(len(out.shape)))
    while (t := _node(v, "transpose")) is not None:  # look through transposes of the stack
        perm = tuple(t.attrs["perm"][d] for d in perm)
        v, = t.inputs
    scan = v.producer
    if scan is None or scan.op != "scan":
        return None
    nk, length = scan.attrs["num_carry"], scan.attrs["length"]
    j = v.index - nk
    body = scan.regions[0]
    if j < 0 or length < 1:
        return None
    y = body.outputs[nk + j]
    k = next((k for k in range(nk) if body.outputs[k] is y), None)
    axis = perm.index(0)
    last = 0 if scan.attrs.get("reverse") else length - 1
    if k is None or sl.attrs["start"][axis] != last or out.shape[axis] != 1:
        return None
    r = mt.emit("reshape", [scan.outputs[k]], {"shape": (1,) + scan.outputs[k].shape})
    if perm != tuple(range(len(perm))):
        r = mt.emit("transpose", [r], {"perm": perm})
    start = tuple(0 if d == axis else s for d, s in enumerate(sl.attrs["start"]))
    limit = tuple(1 if d == axis else s for d, s in enumerate(sl.attrs["limit"]))
    stride = tuple(1 if d == axis else s for d, s in enumerate(sl.attrs["stride"]))
    if any(start) or limit != r.shape or any(s != 1 for s in stride):
        r = mt.emit("slice", [r], {"start": start, "limit": limit, "stride": stride})
    return r


MATCHERS = {"dot_general": (("attention", _attention),),
            "neg": (("cross_entropy", _cross_entropy),),
            "slice": (("scan_last", _scan_last),)}
ATTENTION = ("auto", "fused", "unfused")


def _check_attention(value) -> str:
    if value not in ATTENTION:
        raise ValueError(f"expected one of {', '.join(map(repr, ATTENTION))}")
    return value


option("attention", "auto", _check_attention,
       "whether fuse_patterns fuses attention: 'auto' (on every backend but the CPU, where "
       "the fused op's recomputing backward only costs time), 'fused' or 'unfused'",
       needs="fuse_patterns")


def _skipped() -> set[str]:
    """The patterns this run leaves alone (Note [Fused patterns], option ``attention``)."""
    choice = current_options()["attention"]
    if choice == "auto":
        import jax

        choice = "unfused" if jax.default_backend() == "cpu" else "fused"
    return {"attention"} if choice == "unfused" else set()


@register("fuse_patterns")
def fuse_patterns(graph: Graph) -> Graph:
    """Replace attention and cross-entropy patterns by fused ops, and the last step of a scan's
    ys by its final carry (Note [Fused patterns])."""
    if not any(n.op in MATCHERS for n in graph.nodes):
        return graph
    users: dict[Value, list] = {}
    for n in graph.nodes:
        for v in n.inputs:
            users.setdefault(v, []).append(n)
    for v in graph.all_outputs:
        users.setdefault(v, []).append(None)  # None: read by the graph's caller
    fuel = current_fuel()
    skipped = _skipped()
    subst: dict[Value, Value] = {}
    used_before = set(users)
    nodes, graph.nodes = graph.nodes, []
    for node in nodes:
        node.inputs = [subst.get(v, v) for v in node.inputs]
        new = _fuse(node, users, fuel, skipped)
        if new is None:
            graph.nodes.append(node)
            continue
        mt, value = new
        graph.nodes += mt.emitted
        subst[node.outputs[0]] = value
    if not subst:
        return graph
    graph.outputs = [subst.get(v, v) for v in graph.outputs]
    graph.updates = [(s, subst.get(v, v)) for s, v in graph.updates]
    live, kept = set(graph.all_outputs), []
    for n in reversed(graph.nodes):  # drop what the fusions left unread (not what was dead)
        if not (rewritable(n) and n.outputs[0] in used_before) or n.outputs[0] in live:
            kept.append(n)
            live.update(n.inputs)
    graph.nodes = kept[::-1]
    return graph


def _fuse(node: Node, users: dict, fuel, skipped=()) -> tuple[_Match, Value] | None:
    if not rewritable(node):
        return None
    for name, matcher in MATCHERS.get(node.op, ()):
        if name in skipped:
            continue
        mt = _Match(users, node)
        value = matcher(mt, node.outputs[0])
        if value is None or value.type != node.outputs[0].type or not mt.closed():
            continue
        where = f" at {node.loc}" if node.loc else ""
        if not fuel.take(f"fuse_patterns/{name} on {node.op} -> {value.type}{where}"):
            return None
        return mt, value
    return None
