"""Mixed precision: matmuls and convolutions in bf16 or f16 with float32 accumulation.

Note [Mixed precision]
``gcomp.compile(fn, precision="bf16")`` (or ``"f16"``; the pass option ``precision``) adds this
pass to the pipeline, after autodiff, so it sees the whole forward and backward graph of a
training step. Every float32 contraction that is a real matrix product, a ``dot_general`` whose
operands both keep a free dimension, and every float32 ``convolution``, reads its operands cast
to the low dtype and sums the products in float32: its ``accumulate`` attribute is ``"f32"``
(Note [Accumulation dtype] in ir/ops/linalg.py), so its result is float32 as before and nothing
downstream changes type. Everything else stays float32: the parameters (the master weights, which
the optimizer updates in float32), adds and activations, reductions, softmax, normalization, losses
and the optimizer's arithmetic. A contraction where one side has no free dimension (a dot product,
a matrix-vector product) is a weighted reduction, the form losses and gradient norms take, and
stays float32 too.

One value feeding several contractions (a weight read by the forward matmul and by the backward
one for the input gradient, an activation read by the forward and by the weight gradient) is cast
once: the first contraction that needs it emits the cast, the later ones reuse it. Casts get the
source line of the first contraction that reads them.

Contractions already in bf16, f16, float64 or integers are left alone. The regions of ``scan``
and ``cond`` (an LSTM's recurrent matmul) are rewritten the same way, each as a graph of its own
with casts of its own, and their node is rebuilt around the new regions (regions are never
mutated, Note [Regions] in ir/graph.py). Each rewrite takes one unit of fuel (Note [Pass fuel]
in manager.py). Run by name without the option (``gcomp opt --passes precision``), the pass casts
to bf16.
"""

from __future__ import annotations

from ..ir.graph import Graph, Node, Value
from ..ir.types import DType, bfloat16, float16, float32
from .manager import current_options, option, register
from .rewrite import Context, Pat, Rules, graph_rewrite

_NAMES = {
    "bf16": "bf16", "bfloat16": "bf16",
    "f16": "f16", "float16": "f16", "fp16": "f16", "half": "f16",
    "f32": None, "float32": None, "fp32": None, "float": None,
}
LOW = {"bf16": bfloat16, "f16": float16}


def check_precision(value) -> str | None:
    """'bf16', 'f16', or None (float32 throughout) from the names people write for them."""
    name = value.name if isinstance(value, DType) else value
    if isinstance(name, str) and name.lower() in _NAMES:
        return _NAMES[name.lower()]
    raise ValueError("precision must be 'bf16' (or 'bfloat16', gcomp.bfloat16), 'f16' (or "
                     "'float16', 'fp16', gcomp.float16) or 'f32'/None for float32 throughout")


option("precision", None, check_precision,
       "bf16 or f16: matmuls and convolutions in that dtype with float32 accumulation",
       needs="precision")


def _is_matrix_product(v: Value) -> bool:
    """Both operands keep a free (neither contracted nor batch) dimension (Note [Mixed
    precision]); one without is a weighted reduction."""
    n = v.producer
    pairs = list(n.attrs["contract"]) + list(n.attrs["batch"])
    return all(len({p[side] for p in pairs}) < n.inputs[side].type.ndim for side in (0, 1))


def _f32(v: Value) -> bool:
    n = v.producer
    return v.dtype == float32 and all(x.dtype == float32 for x in n.inputs) \
        and not n.attrs["accumulate"]


def _low(ctx: Context, v: Value) -> Value:
    """``v`` cast to the low dtype, one cast node per value (Note [Mixed precision])."""
    low = ctx.memo["low"]
    cast = ctx.memo.get(v)
    if cast is None:
        cast = ctx.memo[v] = ctx.emit("cast", [v], {"dtype": low})
    return cast


def _in_low_precision(ctx: Context, y: Value) -> Value:
    n = y.producer
    attrs = dict(n.attrs, accumulate=float32.short)
    return ctx.emit(n.op, [_low(ctx, x) for x in n.inputs], attrs)


RULES = Rules([
    (Pat("dot_general", name="y", where=lambda v: _f32(v) and _is_matrix_product(v)),
     _in_low_precision),
    (Pat("convolution", name="y", where=_f32), _in_low_precision),
])


def _rewrite(graph: Graph, low: DType) -> Graph:
    """The rules over ``graph`` (in place) and, first, over copies of its nodes' regions."""
    renamed: dict[Value, Value] = {}
    for i, n in enumerate(graph.nodes):
        if not any(r.contains(op) for r in n.regions for op in ("dot_general", "convolution")):
            continue
        regions = tuple(_rewrite(r.copy(), low) for r in n.regions)
        new = Node(n.op, list(n.inputs), {**n.attrs, "regions": regions}, [], n.loc)
        new.outputs = [Value(o.type, new, k, name=o.name) for k, o in enumerate(n.outputs)]
        renamed.update(zip(n.outputs, new.outputs))
        graph.nodes[i] = new
    graph.replace_all_uses(renamed)
    return graph_rewrite(graph, RULES, "precision", memo={"low": low})


@register("precision")
def precision(graph):
    """Run matmuls and convolutions in the ``precision`` option's dtype (Note [Mixed
    precision])."""
    return _rewrite(graph, LOW[current_options()["precision"] or "bf16"])
