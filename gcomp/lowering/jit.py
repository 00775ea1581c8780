"""Graph -> one jax function -> one XLA executable.

Each node becomes its lowering rule inside a ``jax.named_scope`` named after the node (op and
source line), so the optimized HLO's metadata points back to the IR and the user's code.
"""

from __future__ import annotations

import re

import jax

from . import rule_for
from .interpreter import check_inputs

_SCOPE_BAD = re.compile(r"[^A-Za-z0-9_.:\-]")


def scope_name(i: int, node) -> str:
    loc = f"/{node.loc}" if node.loc else ""
    return _SCOPE_BAD.sub("_", f"n{i}.{node.op}{loc}")


def to_function(graph, named_scopes: bool = True):
    """A pure function of jax arrays computing the graph's outputs and state updates."""

    def fn(*arrays):
        env = dict(zip(graph.inputs, arrays))
        for i, node in enumerate(graph.nodes):
            args = [env[v] for v in node.inputs]
            if named_scopes:
                with jax.named_scope(scope_name(i, node)):
                    res = rule_for(node.op)(*args, **node.attrs)
            else:
                res = rule_for(node.op)(*args, **node.attrs)
            if len(node.outputs) == 1:
                res = (res,)
            for v, r in zip(node.outputs, res):
                env[v] = r
        return tuple(env[v] for v in graph.all_outputs)

    fn.__name__ = graph.name
    return fn


def compile_graph(graph, donate: tuple[int, ...] = ()):
    """Verify and jit a graph (with no grad nodes left). Returns a callable on arrays."""
    from ..ir.verify import verify

    verify(graph)
    jitted = jax.jit(to_function(graph), donate_argnums=donate)

    def call(*arrays):
        return jitted(*check_inputs(graph, arrays))

    call.graph = graph
    call.jitted = jitted
    return call
