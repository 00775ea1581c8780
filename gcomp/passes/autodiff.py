"""The autodiff transform: expand each ``grad`` node into the backward graph.

The expansion itself (core.autograd.expand_grads) wraps the IR nodes before the request as tape
nodes keyed by their Values and runs the same reverse walk (core.autograd.backprop) and the same
VJP rules as eager ``backward()``, with a trace interpreter recording what the rules emit. The new
nodes replace the request in place; each carries the source location of the forward node whose
VJP made it. Requests inside regions (a gcomp.grad inside a scan body) are expanded too. Last,
each forward scan whose VJP re-ran it to save residuals is merged into that re-run
(Note [Differentiating scan] in autodiff/control.py), and each custom_vjp node (a traced
autograd.Function) is replaced by its forward region's nodes: its backward has been used, and
inline the forward is ordinary nodes that cse can merge with the backward's recomputation of it
(Note [Custom VJPs]).
"""

from __future__ import annotations

from ..autodiff.control import inline_custom_vjps, merge_scans
from ..core.autograd import expand_grads
from ..ir.graph import Graph
from .manager import register


@register("autodiff")
def autodiff(graph: Graph) -> Graph:
    """Expand grad requests in program order (so nested requests differentiate expanded code)."""
    if not graph.contains("grad"):
        return graph
    return inline_custom_vjps(merge_scans(expand_grads(graph)))
