"""The autodiff transform: expand each ``grad`` node into the backward graph.

It wraps the IR nodes before the request as tape nodes keyed by their Values and runs the same
reverse walk (core.autograd.backprop) and the same VJP rules as eager ``backward()``, with a trace
interpreter recording what the rules emit. The new nodes replace the request in place; each
carries the source location of the forward node whose VJP made it.
"""

from __future__ import annotations

from ..autodiff import vjp_rule
from ..core import autograd as core_ag
from ..core.dispatch import Mode, TraceInterpreter
from ..core.tensor import Storage
from ..ir.graph import Graph, Value
from ..ir.ops import OPS
from .manager import register


class _Node:
    __slots__ = ("op", "attrs", "inputs", "outputs", "input_keys", "output_keys", "custom")

    def __init__(self, node, tensor_of, interp):
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


class _Emitter(TraceInterpreter):
    """Records into a scratch list of nodes, with a fixed source location."""

    loc = None

    def apply(self, op, inputs, attrs, akey, cache=None):
        outs = super().apply(op, inputs, attrs, akey, cache)
        node = self.graph.nodes[-1]
        node.loc = self.loc
        return outs


def _expand(graph: Graph, index: int) -> None:
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

    nodes = {n: _Node(n, tensor_of, interp) for n in graph.nodes[:index]}

    def producer(key):
        return nodes.get(key.producer) if isinstance(key, Value) and key.producer else None

    Mode.stack.append(interp)
    grad_mode, Mode.grad_enabled = Mode.grad_enabled, False
    try:
        if True:
            interp.loc = request.loc
            seed_map: dict = {}
            for o, s in zip(outs, seeds):
                seed_map[o] = tensor_of(s) if o not in seed_map else \
                    core_ag.dispatch.bind("add", seed_map[o], tensor_of(s))
            result = core_ag.backprop(seed_map, targets=list(wrt), producer=producer)
            interp.loc = request.loc
            grads = []
            for w in wrt:
                g = result.get(w)
                if g is None:
                    g = core_ag.dispatch.bind("full", shape=w.type.shape, value=0.0,
                                              dtype=w.type.dtype)
                grads.append(interp.value_of(g))
    finally:
        Mode.stack.pop()
        Mode.grad_enabled = grad_mode
    graph.nodes[index:index + 1] = scratch.nodes
    graph.replace_all_uses(dict(zip(request.outputs, grads)))


@register("autodiff")
def autodiff(graph: Graph) -> Graph:
    """Expand grad requests in program order (so nested requests differentiate expanded code)."""
    while True:
        index = next((i for i, n in enumerate(graph.nodes) if n.op == "grad"), None)
        if index is None:
            return graph
        _expand(graph, index)
