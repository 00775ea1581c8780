"""gcomp's IR: types, graphs, the op table, printer, parser and verifier. Imports no jax.

``interpret`` and ``compile`` run graphs through the lowering rules; they are loaded on first use
so that importing ``gcomp.ir`` alone never imports jax.
"""

from .errors import GcompError, IRParseError, IRVerifyError, ShapeError
from .graph import Graph, Node, Value
from .ops import OPS, OpDef, infer_types
from .parser import parse
from .printer import print_graph
from .types import (ALL_DTYPES, DType, TensorType, bfloat16, bool_, broadcast_shapes,
                    dtype_from_name, float16, float32, float64, int8, int16, int32, int64,
                    promote_types,
                    result_type, uint8, uint32)
from .verify import verify


def interpret(graph, *arrays):
    """Run ``graph`` node by node with the lowering rules (the reference semantics)."""
    from ..lowering.interpreter import interpret as _interpret

    return _interpret(graph, *arrays)


def compile(graph):  # noqa: A001 - mirrors jax.jit's role for a graph
    """Return a callable running ``graph`` as one XLA executable (grad nodes are expanded first)."""
    from ..lowering.jit import compile_graph

    if graph.contains("grad"):
        from ..passes import run_passes

        graph = run_passes(graph, ["autodiff", "dce"])
    return compile_graph(graph)


__all__ = ["GcompError", "IRParseError", "IRVerifyError", "ShapeError", "Graph", "Node", "Value",
           "OPS", "OpDef", "infer_types", "parse", "print_graph", "verify", "interpret", "compile",
           "DType", "TensorType", "ALL_DTYPES", "bool_", "uint8", "uint32", "int8", "int16",
           "int32", "int64",
           "float16", "bfloat16", "float32", "float64", "promote_types", "result_type",
           "broadcast_shapes", "dtype_from_name"]
