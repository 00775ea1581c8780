"""Common-subexpression elimination: a node with the same op, operands and attributes as an
earlier one is that one.

Every primitive is pure: a random draw is a function of its key operand, so two draws merge only
when they read the same key (and then they are the same bits); draws from different keys have
different operands and never merge. Nodes without operands (``full``, ``iota``, ``constant``,
the only ones the op table has) are values too. Float attributes compare by their bits, so
``full`` of 0.0 and of -0.0 stay apart. Region-holding nodes (``scan``, ``cond``) and ``grad``
requests are never merged (rewrite.rewritable). State updates read the surviving node.
"""

from __future__ import annotations

from ..ir.graph import Value
from .manager import register
from .rewrite import Context, Pat, Rules, graph_rewrite


def _key(a):
    if isinstance(a, float):
        return ("float", a.hex())  # -0.0 is not 0.0; every NaN is one NaN
    if isinstance(a, (tuple, list)):
        return tuple(_key(x) for x in a)
    return a


def _same_as_earlier(ctx: Context, x: Value) -> Value | None:
    n = x.producer
    key = (n.op, tuple(n.inputs), x.type, tuple((k, _key(v)) for k, v in n.attrs.items()))
    earlier = ctx.memo.setdefault(key, x)
    return earlier if earlier is not x else None


RULES = Rules([(Pat(name="x"), _same_as_earlier)])


@register("cse")
def cse(graph):
    """Merge equal nodes in program order (rewrite.graph_rewrite)."""
    return graph_rewrite(graph, RULES, "cse")
