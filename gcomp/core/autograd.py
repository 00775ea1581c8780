"""The one reverse walk (DESIGN.md rule 3), used by eager ``backward()`` and the autodiff pass.

Nodes are anything with ``op``, ``attrs``, ``inputs``, ``outputs`` (tensors the VJP rules read),
``input_keys`` (each input's autograd edge, or None) and ``output_keys``. Eager autograd makes
TapeNodes as ops run; the autodiff pass makes equivalent nodes from IR nodes. Both then call
:func:`backprop`, which calls the same VJP rules through the same dispatcher.
"""

from __future__ import annotations

from ..ir.errors import GcompError
from . import dispatch

# Note [Freeing the graph]
# ~~~~~~~~~~~~~~~~~~~~~~~~
# As in torch, a backward() or autograd.grad() without retain_graph (which defaults to
# create_graph) frees what each node it ran saved: the snapshots of its inputs and outputs
# become stand-ins of the same types holding dispatch.FREED, and a custom node's ``release``
# drops what its VJP closes over (an autograd.Function's ctx.saved_tensors, a compiled call's
# residuals). So the activations of a step are released as soon as its backward is done, even
# while the loss is still referenced, and a second backward through a node that needs a
# saved value raises torch's "backward through the graph a second time" error. That happens
# when a rule reads a freed value (the dispatcher refuses FREED data), so nodes that save
# nothing (add, sum, reshape: their VJPs read only types) can be walked again, as in torch,
# and those that read a saved value (x * x, relu, exp) raise, as in torch. A VJP rule computes
# only the cotangents the walk needs (needs_input_grad), so it reads only what torch would
# have saved for them. Constants made from Python numbers (``Tensor._number``) are never
# freed: the composites build them (mean divides by a count), where torch saves a size. So
# ``(x * 2).sum()``, which torch refuses to backward twice, can be here.


class TapeNode:
    """One recorded op: snapshots of its inputs and outputs (Note [Tape snapshots])."""

    __slots__ = ("op", "attrs", "inputs", "outputs", "input_keys", "output_keys", "custom",
                 "release", "where", "__weakref__")

    def __init__(self, op, attrs, inputs, outputs, input_keys, output_keys, custom=None,
                 release=None):
        self.custom = custom  # a VJP callable of its own (autograd.Function, compiled calls)
        self.release = release  # frees what ``custom`` saved (Note [Freeing the graph])
        self.where = None  # the user's file:line that ran the op, under detect_anomaly
        self.op = op
        self.attrs = attrs
        self.inputs = inputs
        self.outputs = outputs
        self.input_keys = input_keys
        self.output_keys = output_keys

    def __repr__(self):
        return f"<{self.name()} object (gcomp op {self.op})>"

    # -- torch's grad_fn interface: name() and next_functions, to walk the graph ----------------
    def name(self) -> str:
        """torch's Node.name(): ``MulBackward`` for gcomp's ``mul`` (gcomp's ops are its own
        primitives, so names and granularity differ from torch's ATen nodes)."""
        base = self.op.split(":", 1)[0]
        return "".join(p[:1].upper() + p[1:] for p in base.split("_")) + "Backward"

    @property
    def next_functions(self) -> tuple:
        """((node, output index), ...) per input, as torch's: the producer of a computed input,
        an AccumulateGrad for a leaf that requires grad, (None, 0) for an input that needs none."""
        out = []
        for k in self.input_keys:
            if k is None:
                out.append((None, 0))
            elif isinstance(k, tuple):
                out.append(k)
            else:
                out.append((AccumulateGrad(k), 0))
        return tuple(out)

    def free(self) -> None:
        """Drop what the node saved for its VJP (Note [Freeing the graph]): its snapshots become
        stand-ins of the same types whose data raises when an op reads it."""
        self.inputs = [_freed(s) for s in self.inputs]
        self.outputs = [_freed(s) for s in self.outputs]
        if self.release is not None:
            self.release()


def _freed(s):
    if s is None or s._number or s._storage.data.__class__ is dispatch.Freed:
        return s
    return s._snapshot(data=dispatch.FREED)


class AccumulateGrad:
    """What next_functions shows for a leaf: torch's AccumulateGrad, with the leaf as
    ``variable``."""

    __slots__ = ("variable",)

    def __init__(self, variable):
        self.variable = variable

    def name(self) -> str:
        return "torch::autograd::AccumulateGrad"

    next_functions = ()

    def __eq__(self, other):
        return isinstance(other, AccumulateGrad) and other.variable is self.variable

    def __hash__(self):
        return id(self.variable)

    def __repr__(self):
        return "<AccumulateGrad object>"


def record(op, attrs, inputs, outs) -> None:
    """Tape ``op`` if it is differentiable: its float outputs then require grad."""
    from ..ir.ops import OPS

    if not OPS[op].differentiable:
        return
    interp = dispatch.Mode.stack[-1]
    if isinstance(interp, dispatch.TraceInterpreter):  # snapshot what the trace sees
        snaps = [t._snapshot(_traced_input(interp, t)) for t in inputs]
    else:
        snaps = [t._snapshot() for t in inputs]
    node = TapeNode(op, attrs, snaps, None, [t._edge() for t in inputs], None)
    if ANOMALY[0]:
        f = dispatch.user_frame()
        node.where = f"{f.f_code.co_filename}:{f.f_lineno}" if f is not None else None
    node.output_keys = [(node, i) for i in range(len(outs))]
    for i, o in enumerate(outs):
        if o._type.dtype.is_floating_point:
            o.requires_grad = True
            o._grad_fn = node
            o._out_index = i
    node.outputs = [o._snapshot() for o in outs]


def _traced_input(interp, t):
    """The value the traced node read for ``t``: for a value computed under no_grad from values
    needing grad, the stop_gradient the trace inserted (TraceInterpreter._cut_value). So a leaf
    updated in place under no_grad is differentiated at its new value only, never through the
    update, as eagerly."""
    v = interp.value_of(t)
    return interp.cut_done.get(v, v) if v in interp.cut else v


def _producer(key):
    return key[0] if isinstance(key, tuple) else None


_NEEDS: list = [None]  # the input_keys mask of the node whose VJP is running
ANOMALY = [False]  # torch.autograd.detect_anomaly: record lines, check cotangents for NaN


def _check_anomaly(node, in_cts) -> None:
    """torch's anomaly mode: a VJP that gives a NaN names the op and the line that ran it."""
    import numpy as np

    for i, ct in enumerate(in_cts):
        if ct is None or not ct._type.dtype.is_floating_point:
            continue
        data = ct._storage.data
        if isinstance(data, dispatch.Value):  # inside a trace: nothing concrete to check
            return
        if bool(np.isnan(np.asarray(data)).any()):
            where = f", ran at {node.where}" if node.where else ""
            raise GcompError(f"Function '{node.name()}' returned nan values in its {i}th output "
                             f"(the gradient of gcomp's {node.op}{where}; raised by "
                             f"detect_anomaly at the first NaN gradient)")


def needs_input_grad(i: int) -> bool:
    """Whether the VJP rule now running must give its input ``i``'s cotangent (torch's
    ``ctx.needs_input_grad``). Rules of expensive ops (matmul, convolution) skip the others:
    the weight gradient of a first layer needs no input gradient."""
    needs = _NEEDS[0]
    return needs is None or needs[i] is not None


def backprop(seeds, targets=None, producer=_producer, accumulate=None, retain=(), hooks=None,
             free=False):
    """Reverse-mode accumulation from ``seeds``: :func:`_backprop`, with autocast off (each
    backward op runs in the dtype its forward op ran in; Note [Autocast] in
    frontend/autocast.py)."""
    mode = dispatch.Mode
    saved = mode.autocast
    if saved is None:
        return _backprop(seeds, targets, producer, accumulate, retain, hooks, free)
    mode.autocast = None
    try:
        return _backprop(seeds, targets, producer, accumulate, retain, hooks, free)
    finally:
        mode.autocast = saved


def _backprop(seeds, targets, producer, accumulate, retain, hooks, free):
    """Reverse-mode accumulation from ``seeds`` ({key: cotangent}) back through the nodes.

    Returns {key: cotangent} for each key in ``targets`` (every leaf reached when None, plus the
    keys in ``retain`` that were reached: non-leaf tensors that asked for retain_grad()). When
    ``accumulate`` is given it is called as accumulate(key, cotangent) for each leaf key instead.
    ``hooks`` ({key: fn(cotangent) -> cotangent}, Tensor.register_hook) sees a key's total
    cotangent once it is complete: before the key's producer uses it, or before a leaf's is
    returned. ``free``: release what each node that ran saved (a backward without retain_graph,
    Note [Freeing the graph]).
    """
    hooks = hooks or {}
    from ..autodiff import vjp_rule

    # Topological order of the nodes reachable from the seeds (iterative DFS, post-order).
    order, seen = [], set()
    for key in seeds:
        root = producer(key)
        if root is None or id(root) in seen:
            continue
        stack = [(root, False)]
        while stack:
            node, done = stack.pop()
            if done:
                order.append(node)
                continue
            if id(node) in seen:
                continue
            seen.add(id(node))
            stack.append((node, True))
            for k in node.input_keys:
                p = producer(k) if k is not None else None
                if p is not None and id(p) not in seen:
                    stack.append((p, False))
    # Prune to nodes on a path to a target.
    if targets is not None:
        targets = set(targets)
        useful: set[int] = set()
        for node in order:  # inputs come before their users in `order`
            if any(k is not None and (k in targets or id(producer(k)) in useful)
                   for k in node.input_keys if k is not None):
                useful.add(id(node))
        order = [n for n in order if id(n) in useful]

    cts: dict = {}
    keep = set(targets) if targets is not None else set(retain)

    def add(key, ct):
        prev = cts.get(key)
        cts[key] = ct if prev is None else dispatch.bind("add", prev, ct)

    for key, ct in seeds.items():
        add(key, ct)
    for node in reversed(order):
        if hooks:
            for k in node.output_keys:
                if k in hooks and cts.get(k) is not None:
                    cts[k] = hooks[k](cts[k])
        out_cts = [cts.get(k) if k in keep else cts.pop(k, None) for k in node.output_keys]
        if all(c is None for c in out_cts):
            continue
        rule = getattr(node, "custom", None) or vjp_rule(node.op)
        outer, _NEEDS[0] = _NEEDS[0], node.input_keys  # a rule may run a nested backprop
        try:
            in_cts = rule(out_cts, node.inputs, node.outputs, **node.attrs)
        finally:
            _NEEDS[0] = outer
        if ANOMALY[0]:
            _check_anomaly(node, in_cts)
        if free:
            node.free()
        for k, ct, x in zip(node.input_keys, in_cts, node.inputs):
            if k is None or ct is None:
                continue
            if ct._type != x._type:
                raise GcompError(f"internal: the VJP of {node.op} gave {ct._type} for an input of "
                                 f"type {x._type}")
            add(k, ct)
    for k, fn in hooks.items():  # leaves (a non-leaf's ran before its producer)
        if producer(k) is None and cts.get(k) is not None:
            cts[k] = fn(cts[k])
    if targets is None:
        result = {k: v for k, v in cts.items() if producer(k) is None or k in keep}
    else:
        result = {k: cts[k] for k in targets if k in cts}
    if accumulate is not None:
        for k, v in result.items():
            accumulate(k, v)
    return result


# ---------------------------------------------------------------------------------------------
# The same walk over IR: expanding grad requests (the autodiff pass, and the VJP rules of the
# region ops, which differentiate their regions: autodiff/control.py).

class _IRNode:
    """An IR node seen as a tape node: tensors holding its Values, keyed by the Values."""

    __slots__ = ("op", "attrs", "inputs", "outputs", "input_keys", "output_keys", "custom")

    def __init__(self, node, tensor_of, interp):
        from ..autodiff import vjp_rule
        from ..ir.ops import OPS

        self.op = node.op
        self.attrs = node.attrs
        self.inputs = [tensor_of(v) for v in node.inputs]
        self.outputs = [tensor_of(v) for v in node.outputs]
        differentiable = OPS[node.op].differentiable
        self.input_keys = [v if differentiable and v.dtype.is_floating_point else None
                           for v in node.inputs]
        self.output_keys = list(node.outputs)
        loc = node.loc

        def custom(cts, inputs, outputs, **attrs):
            if not differentiable:
                return [None] * len(inputs)
            interp.loc = loc
            return vjp_rule(self.op)(cts, inputs, outputs, **attrs)

        self.custom = custom


class _Emitter(dispatch.TraceInterpreter):
    """Records into a scratch list of nodes, with a fixed source location."""

    loc = None

    def apply(self, op, inputs, attrs, akey, cache=None):
        outs = super().apply(op, inputs, attrs, akey, cache)
        node = self.graph.nodes[-1]
        node.loc = self.loc
        return outs


def _expand(graph, index: int) -> None:
    from ..core.tensor import Storage
    from ..ir.graph import Graph, Value

    Mode = dispatch.Mode  # noqa: N806
    Tensor = Mode.tensor_class  # noqa: N806 - the front end's Tensor, without importing it
    request = graph.nodes[index]
    k = request.attrs["outputs"]
    outs, seeds, wrt = request.inputs[:k], request.inputs[k:2 * k], request.inputs[2 * k:]
    scratch = Graph(graph.name)
    interp = _Emitter(scratch)
    interp.values = set(graph.inputs)
    for n in graph.nodes[:index]:
        interp.values.update(n.outputs)
    tensors: dict = {}

    def tensor_of(v: Value):
        t = tensors.get(v)
        if t is None:
            t = tensors[v] = Tensor(Storage(v), v.type)
        return t

    nodes = {n: _IRNode(n, tensor_of, interp) for n in graph.nodes[:index]}

    def producer(key):
        return nodes.get(key.producer) if isinstance(key, Value) and key.producer else None

    Mode.stack.append(interp)
    grad_mode, Mode.grad_enabled = Mode.grad_enabled, False
    try:
        interp.loc = request.loc
        seed_map: dict = {}
        for o, s in zip(outs, seeds):
            # marks where the backward starts (Note [Rematerialization in one graph])
            seed = dispatch.bind("grad_seed", tensor_of(s))
            seed_map[o] = seed if o not in seed_map else dispatch.bind("add", seed_map[o], seed)
        result = backprop(seed_map, targets=list(wrt), producer=producer)
        interp.loc = request.loc
        grads = []
        for w in wrt:
            g = result.get(w)
            if g is None:
                g = dispatch.bind("full", shape=w.type.shape, value=0.0, dtype=w.type.dtype)
            grads.append(interp.value_of(g))
    finally:
        Mode.stack.pop()
        Mode.grad_enabled = grad_mode
    graph.nodes[index:index + 1] = scratch.nodes
    graph.replace_all_uses(dict(zip(request.outputs, grads)))


def expand_grads(graph):
    """Expand the graph's grad requests in place, in program order (so nested requests
    differentiate expanded code); requests inside regions first, in new regions."""
    for node in graph.nodes:
        if any(r.contains("grad") for r in node.regions):
            node.attrs = {**node.attrs, "regions": tuple(
                expand_grads(r.copy()) if r.contains("grad") else r for r in node.regions)}
    while True:
        index = next((i for i, n in enumerate(graph.nodes) if n.op == "grad"), None)
        if index is None:
            return graph
        _expand(graph, index)
