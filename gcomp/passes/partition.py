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

Which forward values are residuals and which the backward graph recomputes is the minimum cut
of Note [What the forward saves: a minimum cut] in passes/remat.py: the forward graph computes
its outputs and state updates in any case; the backward reads what it needs either as residuals
or by recomputing cheap nodes from residuals and inputs (a 64x128 broadcast of a bias is never
saved; a GELU's input is saved and its output recomputed, where the old choice kept both).
Forward nodes that only the backward reads (the derivative of an erf, built by the VJP from
forward values) may move to the backward graph whatever their cost. The pipeline option
``remat_budget`` bounds the residual bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..ir.graph import Graph, Node, Value
from .dce import dce
from .remat import choose


@dataclass
class Partition:
    forward: Graph  # outputs: the user's outputs, then the residuals; updates as the joint's
    backward: Graph  # inputs: residuals, then saved forward inputs, then cotangents
    n_residuals: int
    saved_inputs: list[int]  # forward input indices the backward graph reads


def partition(joint: Graph, n_outputs: int, cotangents: list[Value],
              budget: int | None = None) -> Partition:
    """``joint``'s outputs are the forward outputs (``n_outputs`` of them) then the gradients;
    ``cotangents`` are its last inputs. ``budget``: the most residual bytes (None: no bound)."""
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
    needed = list(dict.fromkeys(v for v in [v for n in backward_nodes for v in n.inputs] + grads
                                if v not in tainted))
    # what the forward graph computes in any case: its outputs and state updates
    required: set[Node] = set()
    stack = [v.producer for v in joint.outputs[:n_outputs] + [v for _, v in joint.updates]]
    while stack:
        n = stack.pop()
        if n is not None and n not in required:
            required.add(n)
            stack.extend(v.producer for v in n.inputs)
    choice = choose(forward_nodes, needed, required, budget, " (forward/backward partition)")
    residuals = choice.saved
    reads = [v for n in choice.recompute for v in n.inputs] + needed
    constants = {v.producer for v in reads if v.producer is not None and not v.producer.inputs
                 and v not in tainted}  # free to recompute: the backward makes its own
    recompute_nodes = [n for n in forward_nodes if n in constants] + choice.recompute
    saved_inputs = sorted({inputs[v] for v in reads if v in inputs})

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
