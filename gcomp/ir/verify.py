"""The verifier: SSA, types, shapes and attributes. Separate from the parser and the printer."""

from __future__ import annotations

from .errors import IRVerifyError, ShapeError
from .graph import Graph


def verify(graph: Graph) -> Graph:
    """Raise IRVerifyError naming the first broken node; return the graph when it is sound.

    Regions are verified as graphs of their own: closed (their nodes use only their own inputs
    and values), without state; their types against the node are the op's shape rule's job."""
    from .ops import infer_types, normalize_attrs

    defined: set = set()
    states: set[str] = set()
    for v in graph.inputs:
        if v.producer is not None:
            raise IRVerifyError(f"graph input {v} has a producer")
        if v in defined:
            raise IRVerifyError(f"graph input {v} is listed twice")
        if v.state is not None:
            if v.state in states:
                raise IRVerifyError(f"state {v.state!r} is captured twice")
            states.add(v.state)
        defined.add(v)
    for i, n in enumerate(graph.nodes):
        where = f"node {i} ({n.op}{', ' + n.loc if n.loc else ''})"
        for v in n.inputs:
            if v not in defined:
                raise IRVerifyError(f"{where}: operand {v} is not defined before use")
        try:
            attrs = normalize_attrs(n.op, n.attrs)
            want = infer_types(n.op, [v.type for v in n.inputs], attrs)
        except ShapeError as e:
            raise IRVerifyError(f"{where}: {e}") from None
        for label, region in zip(_ops_regions(n.op), n.regions):
            if region.state_inputs or region.updates:
                raise IRVerifyError(f"{where}: region {label} has state inputs or updates")
            try:
                verify(region)
            except IRVerifyError as e:
                raise IRVerifyError(f"{where}, region {label}: {e}") from None
        missing = [k for k in attrs if k not in n.attrs]
        if missing:  # the lowering rules take every attribute; Graph.add_node fills defaults
            raise IRVerifyError(f"{where}: attribute(s) {', '.join(missing)} missing; build nodes "
                                "with Graph.add_node or fill them with ops.normalize_attrs")
        if [o.type for o in n.outputs] != want:
            got = ", ".join(str(o.type) for o in n.outputs)
            raise IRVerifyError(f"{where}: results are {got}, the op's rule gives "
                                f"{', '.join(map(str, want))}")
        for k, o in enumerate(n.outputs):
            if o.producer is not n or o.index != k:
                raise IRVerifyError(f"{where}: result {k} does not point back to its node")
            if o in defined:
                raise IRVerifyError(f"{where}: result {k} is defined twice")
            defined.add(o)
    for v in graph.outputs:
        if v not in defined:
            raise IRVerifyError(f"graph output {v} is not defined")
    seen = set()
    by_state = {v.state: v for v in graph.inputs if v.state is not None}
    for state, v in graph.updates:
        if state in seen:
            raise IRVerifyError(f"state {state!r} is updated twice")
        seen.add(state)
        if v not in defined:
            raise IRVerifyError(f"update of {state!r} uses an undefined value")
        if state in by_state and v.type != by_state[state].type:
            raise IRVerifyError(f"update of {state!r}: {v.type} does not match "
                                f"{by_state[state].type}")
    return graph


def _ops_regions(op: str) -> tuple[str, ...]:
    from .ops import OPS

    return OPS[op].regions
