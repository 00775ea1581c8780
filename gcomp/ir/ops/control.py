"""``grad``, the request node that the autodiff pass expands into the backward graph, and the
structured control flow ops ``cond`` and ``scan``, which hold regions (Note [Regions] in
ir/graph.py)."""

from __future__ import annotations

from ..errors import ShapeError
from ..types import TensorType, bool_
from . import declare


@declare("grad", "control", None, {"outputs": "int"}, {"outputs": 1}, differentiable=False)
def _grad(types, outputs):
    """grad(out_1..out_n, seed_1..seed_n, wrt_1..wrt_k) -> d(sum_i <seed_i, out_i>)/d wrt_j.

    Each seed has its output's type; the results have the types of the ``wrt`` operands."""
    if outputs < 1 or len(types) < 2 * outputs + 1:
        raise ShapeError(f"grad: needs {outputs} outputs, {outputs} seeds and at least one wrt")
    outs, seeds, wrt = types[:outputs], types[outputs:2 * outputs], types[2 * outputs:]
    for o, s in zip(outs, seeds, strict=True):
        if o != s:
            raise ShapeError(f"grad: seed {s} does not match output {o}")
    for w in wrt:
        if not w.dtype.is_floating_point:
            raise ShapeError(f"grad: can only differentiate with respect to floats, got {w}")
    return list(wrt)


def _signature(region):
    return [v.type for v in region.inputs], [v.type for v in region.outputs]


def _types(types) -> str:
    return "(" + ", ".join(map(str, types)) + ")"


@declare("cond", "control", None, regions=("then", "else"))
def _cond(types, regions):
    """cond(pred, *operands) -> then(*operands) if pred else else(*operands), as jax.lax.cond.

    ``pred`` is a bool scalar; both regions take the operands' types and give the same types."""
    if not types or types[0] != TensorType((), bool_):
        got = types[0] if types else "nothing"
        raise ShapeError(f"cond: the predicate must be bool[], got {got}")
    operands = types[1:]
    outs = []
    for name, region in zip(("then", "else"), regions, strict=True):
        ins, res = _signature(region)
        if ins != operands:
            raise ShapeError(f"cond: region {name} takes {_types(ins)}, the operands are "
                             f"{_types(operands)}")
        outs.append(res)
    if outs[0] != outs[1]:
        raise ShapeError(f"cond: region then gives {_types(outs[0])}, region else gives "
                         f"{_types(outs[1])}; both branches must give the same types")
    return outs[0]


@declare("scan", "control", None,
         {"length": "int", "reverse": "bool", "num_consts": "int", "num_carry": "int",
          "unroll": "int"}, {"reverse": False, "unroll": 1}, regions=("body",))
def _scan(types, regions, length, reverse, num_consts, num_carry, unroll):
    """scan(*consts, *init, *xs) -> (*final carry, *stacked ys), as jax.lax.scan.

    The body takes (*consts, *carry, *x) with each x one slice of xs along its first axis (which
    has ``length`` entries) and gives (*carry, *y); the results are the last carry and each y
    stacked along a new first axis, steps taken from the last to the first when ``reverse``."""
    if length < 0 or num_consts < 0 or num_carry < 0 or unroll < 1:
        raise ShapeError(f"scan: length, num_consts and num_carry must be >= 0 and unroll >= 1, "
                         f"got {length}, {num_consts}, {num_carry}, {unroll}")
    if num_consts + num_carry > len(types):
        raise ShapeError(f"scan: {num_consts} consts and {num_carry} carries, but only "
                         f"{len(types)} operands")
    consts, carry = types[:num_consts], types[num_consts:num_consts + num_carry]
    xs = types[num_consts + num_carry:]
    for x in xs:
        if x.ndim == 0 or x.shape[0] != length:
            raise ShapeError(f"scan: each xs operand needs a first axis of length {length}, "
                             f"got {x}")
    ins, outs = _signature(regions[0])
    want = consts + carry + [TensorType(x.shape[1:], x.dtype) for x in xs]
    if ins != want:
        raise ShapeError(f"scan: region body takes {_types(ins)}, the operands give "
                         f"{_types(want)} (consts, carry, one slice of each xs)")
    if outs[:num_carry] != carry:
        raise ShapeError(f"scan: region body gives the carry {_types(outs[:num_carry])}, it "
                         f"takes {_types(carry)}; the carry must keep its types")
    ys = [TensorType((length,) + y.shape, y.dtype) for y in outs[num_carry:]]
    return carry + ys


@declare("fusion", "control", None, regions=("body",))
def _fusion(types, regions):
    """fusion(*operands) -> body(*operands): a group of ops meant to run as one kernel.

    Made by the fusion pass (Note [Fusion] in passes/fusion.py): the body is the group's nodes,
    the operands what they read from outside, the results what is read outside. It computes
    exactly what its body does; it only names a group, lowered as one named scope so that the
    optimized HLO's kernels can be mapped back to it."""
    ins, outs = _signature(regions[0])
    if ins != list(types):
        raise ShapeError(f"fusion: region body takes {_types(ins)}, the operands are "
                         f"{_types(types)}")
    return outs


@declare("custom_vjp", "control", None, {"wrt": "ints"}, regions=("forward", "backward"))
def _custom_vjp(types, regions, wrt):
    """custom_vjp(*operands) -> forward(*operands), differentiated by ``backward``: a
    ``gcomp.autograd.Function`` (torch.autograd.Function) inside gcomp.compile.

    forward takes the operands and gives the results; backward takes the operands and one
    cotangent per result and gives the gradients of the float operands ``wrt`` (the Function's
    tensor arguments that its backward gives a gradient, not None, for; the other operands, such
    as tensors its methods read from outside, get none, as in torch). The backward recomputes
    what it needs of the forward from the operands (Note [Custom VJPs] in autodiff/control.py)."""
    fwd, bwd = regions
    ins, outs = _signature(fwd)
    if ins != list(types):
        raise ShapeError(f"custom_vjp: region forward takes {_types(ins)}, the operands are "
                         f"{_types(types)}")
    if any(not 0 <= i < len(types) or not types[i].dtype.is_floating_point for i in wrt):
        raise ShapeError(f"custom_vjp: wrt {list(wrt)} must name float operands of "
                         f"{_types(types)}")
    b_ins, b_outs = _signature(bwd)
    if b_ins != list(types) + outs:
        raise ShapeError(f"custom_vjp: region backward takes {_types(b_ins)}, it must take the "
                         f"operands and the cotangents of the results {_types(list(types) + outs)}")
    wants = [types[i] for i in wrt]
    if b_outs != wants:
        raise ShapeError(f"custom_vjp: region backward gives {_types(b_outs)}, it must give the "
                         f"gradients of the operands wrt {_types(wants)}")
    return outs
