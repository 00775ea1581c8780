"""Dead-code elimination: drop nodes none of whose results reach an output or a state update.

Every primitive is pure (random draws are functions of their key), so liveness is all there is.
"""

from __future__ import annotations

from ..ir.graph import Graph
from .manager import register


@register("dce")
def dce(graph: Graph) -> Graph:
    live = set(graph.all_outputs)
    kept = []
    for node in reversed(graph.nodes):
        if any(o in live for o in node.outputs):
            kept.append(node)
            live.update(node.inputs)
    graph.nodes = kept[::-1]
    return graph
