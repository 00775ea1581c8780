"""Split a joint forward+backward graph into a forward graph that saves residuals and a backward
graph that reads them.

Note [What the forward saves for backward]
A compiled function called with inputs that require grad gets one node on the eager tape
(Note [Compiled calls inside eager autograd] in runtime/compiled.py). Its forward and backward are
two executables cut from one *joint* graph: the forward graph followed by a ``grad`` request for
the differentiable outputs, with a cotangent input per output, expanded by the autodiff pass.
Every node of the joint graph that depends on a cotangent is backward; the rest is forward. The
backward graph needs some forward values: those are the *residuals*, extra outputs of the forward
executable that the tape node holds until backward runs (and drops after, or when the outputs die).
Residuals that are graph inputs (parameters, the batch) are not returned again: the tape node
keeps the input arrays it was called with.

Cheap nodes whose operands are graph inputs or other such nodes (constants, broadcasts, reshapes,
transposes, casts of a weight or bias) are recomputed in the backward graph instead of saved:
saving the 64x128 broadcast of a bias costs memory that recomputing it never does. This is the
default, AOTAutograd-like choice; rematerialization (a min-cut over the joint graph) is a pass
that refines it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..ir.graph import Graph, Node, Value
from .dce import dce

# Ops recomputed in the backward graph when their operands are graph inputs or recomputed values.
RECOMPUTE = frozenset({"full", "constant", "iota", "broadcast", "reshape", "transpose", "cast", "slice",
                       "squeeze", "expand_dims", "neg", "stop_gradient", "concatenate"})


@dataclass
class Partition:
    forward: Graph  # outputs: the user's outputs, then the residuals; updates as the joint's
    backward: Graph  # inputs: residuals, then saved forward inputs, then cotangents
    n_residuals: int
    saved_inputs: list[int]  # forward input indices the backward graph reads


def partition(joint: Graph, n_outputs: int, cotangents: list[Value]) -> Partition:
    """``joint``'s outputs are the forward outputs (``n_outputs`` of them) then the gradients;
    ``cotangents`` are its last inputs."""
    tainted: set[Value] = set(cotangents)
    backward_nodes: list[Node] = []
    forward_nodes: list[Node] = []
    for n in joint.nodes:
        if any(v in tainted for v in n.inputs):
            tainted.update(n.outputs)
            backward_nodes.append(n)
        else:
            forward_nodes.append(n)
    inputs = {v: i for i, v in enumerate(joint.inputs) if v not in tainted}

    # forward values the backward part reads (including gradients that need no cotangent)
    grads = joint.outputs[n_outputs:]
    needed: list[Value] = []
    seen: set[Value] = set()
    for v in [v for n in backward_nodes for v in n.inputs] + list(grads):
        if v not in tainted and v not in seen:
            seen.add(v)
            needed.append(v)

    # the cheap forward nodes reachable from graph inputs alone are recomputed, not saved
    recomputable: set[Value] = set(inputs)
    for n in forward_nodes:
        if n.op in RECOMPUTE and all(v in recomputable for v in n.inputs):
            recomputable.update(n.outputs)
    recompute_nodes: list[Node] = []
    want = {v for v in needed if v in recomputable and v not in inputs}
    for n in reversed(forward_nodes):
        if any(o in want for o in n.outputs):
            recompute_nodes.append(n)
            want.update(v for v in n.inputs if v not in inputs)
    recompute_nodes.reverse()
    recomputed = {o for n in recompute_nodes for o in n.outputs}
    reads = [v for n in recompute_nodes for v in n.inputs] + needed
    saved_inputs = sorted({inputs[v] for v in reads if v in inputs})
    residuals = [v for v in needed if v not in inputs and v not in recomputed]

    fwd = Graph(joint.name)
    fwd.inputs = [v for v in joint.inputs if v not in tainted]
    fwd.nodes = forward_nodes
    fwd.outputs = list(joint.outputs[:n_outputs]) + residuals
    fwd.updates = list(joint.updates)
    fwd = dce(fwd.copy())

    bwd = Graph(joint.name + "_backward")
    vmap: dict[Value, Value] = {}
    for k, v in enumerate(residuals):
        vmap[v] = bwd.add_input(v.type, name=f"saved{k}")
    for i in saved_inputs:
        v = joint.inputs[i]
        vmap[v] = bwd.add_input(v.type, name=v.state or v.name or f"in{i}")
    for k, v in enumerate(cotangents):
        vmap[v] = bwd.add_input(v.type, name=f"ct{k}")
    for n in recompute_nodes + backward_nodes:
        new = Node(n.op, [vmap[v] for v in n.inputs], dict(n.attrs), [], n.loc)
        new.outputs = [Value(o.type, new, i) for i, o in enumerate(n.outputs)]
        vmap.update(zip(n.outputs, new.outputs))
        bwd.nodes.append(new)
    bwd.outputs = [vmap[v] for v in grads]
    bwd = dce(bwd)
    return Partition(fwd, bwd, len(residuals), saved_inputs)
