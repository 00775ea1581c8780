"""Structured control flow: ``gcomp.cond`` and ``gcomp.scan``, with jax.lax's semantics.

Both trace their functions into closed regions (Note [Regions] in ir/graph.py) with a
RegionTracer: every tensor a body reads from outside (a parameter, a value of the enclosing trace)
becomes an input of the region and an operand of the node. ``scan`` then binds one ``scan`` op,
eagerly too: eager execution runs the whole loop as one jitted call, and the eager tape records one
node whose VJP is a reverse scan (Note [Differentiating scan] in autodiff/control.py). ``cond``
eagerly just calls the branch its predicate picks, as torch.cond does; inside gcomp.compile it
becomes one ``cond`` node holding both branches.
"""

from __future__ import annotations

import inspect

from ..core.autograd import expand_grads
from ..core.dispatch import (TRACE_LOCK, EagerInterpreter, Mode, TraceInterpreter, bind_many,
                             user_error)
from ..core.tensor import Storage
from ..ir.errors import GcompError
from ..ir.graph import Graph, Value
from ..ir.types import TensorType, bool_
from .tensor import Tensor


class RegionTracer(TraceInterpreter):
    """Traces a function into a region. Tensors from outside it are lifted to region inputs,
    one per (storage, autograd identity), and listed in ``outer``: the node's extra operands."""

    def __init__(self, name: str, enclosing):
        super().__init__(Graph(name))
        self.enclosing = enclosing
        self.outer: list[Tensor] = []
        self.lifted: dict = {}

    def _value_of_storage(self, t):
        st = t._storage
        v = self.overlay.get(st)
        if v is not None:
            return v
        d = st.data
        if isinstance(d, Value) and d in self.values:
            return d
        key = (st, t._edge())
        v = self.lifted.get(key)
        if v is None:
            v = self.lifted[key] = self.add_input(t._type, name=self._hint(t))
            self.outer.append(t)
        return v

    def _hint(self, t) -> str | None:
        """The input's name: that of the enclosing graph's input it comes from, if any."""
        enc = self.enclosing
        if isinstance(enc, TraceInterpreter):
            v = enc.value_of(t)  # the operand it will be (a capture is lifted there now)
            return (v.state or v.name) if v.producer is None else None
        return t._name

    def check_closed(self, what: str) -> None:
        """Refuse side effects on outside tensors: a region is a pure function of its inputs."""
        if self.overlay:
            raise user_error(GcompError, f"{what} updates a tensor from outside it in place "
                             "(a parameter, a buffer, the random generator); make it part of the "
                             "carry or the result instead")
        if self.grad_overlay:
            raise user_error(GcompError, f"{what} sets the .grad of a tensor from outside it; "
                             "compute gradients outside the body")


# -- pytrees of tensors --------------------------------------------------------------------------
def _flatten(tree, what: str):
    """The tensors of nested tuples, lists and dicts (None: no tensor), and the structure."""
    leaves: list[Tensor] = []

    def walk(x):
        if isinstance(x, Tensor):
            leaves.append(x)
            return "*"
        if x is None:
            return None
        if isinstance(x, (tuple, list)):
            return (type(x), tuple(walk(v) for v in x))
        if isinstance(x, dict):
            return (dict, tuple(x), tuple(walk(v) for v in x.values()))
        raise user_error(GcompError, f"{what} must be tensors or tuples, lists and dicts of "
                         f"tensors, got a {type(x).__name__} (wrap numbers with gcomp.tensor)")

    return leaves, walk(tree)


def _unflatten(spec, leaves):
    it = iter(leaves)

    def build(s):
        if s == "*":
            return next(it)
        if s is None:
            return None
        if s[0] is dict:
            return dict(zip(s[1], (build(v) for v in s[2])))
        kind, parts = s
        items = [build(v) for v in parts]
        return kind(*items) if hasattr(kind, "_fields") else kind(items)

    return build(spec)


def _input_names(fn, count: int) -> list[str]:
    """The function's parameter names, as name hints for the region's inputs."""
    try:
        names = [p.name for p in inspect.signature(fn).parameters.values()
                 if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        names = []
    return (names + ["arg"] * count)[:count]


def _trace_region(name: str, fn, args: list, hints: list[str], what: str):
    """Run fn on symbolic stand-ins for ``args`` (each a pytree of tensors) under a
    RegionTracer. Returns the tracer, the region inputs of the arguments and fn's result."""
    enclosing = Mode.stack[-1]
    tracer = RegionTracer(name, enclosing)
    stand_ins, arg_values = [], []
    for arg, hint in zip(args, hints):
        leaves, spec = _flatten(arg, what)
        made = []
        for k, leaf in enumerate(leaves):
            v = tracer.add_input(leaf._type, name=hint if len(leaves) == 1 else f"{hint}_{k}")
            arg_values.append(v)
            rg = bool(leaf.requires_grad and Mode.grad_enabled and leaf.dtype.is_floating_point)
            made.append(Tensor(Storage(v), leaf._type, rg))
        stand_ins.append(_unflatten(spec, made))
    with TRACE_LOCK:  # Note [Tracing and threads] in core/dispatch.py
        Mode.stack.append(tracer)
        try:
            out = fn(*stand_ins)
        finally:
            Mode.stack.pop()
    tracer.check_closed(what)
    return tracer, arg_values, out


def _close(tracer: RegionTracer, outputs: list[Tensor]) -> Graph:
    """Give the region its outputs (lifting outside tensors returned as they are). Eagerly,
    gradients requested inside it are expanded now (in a trace the autodiff pass does it)."""
    g = tracer.graph
    with TRACE_LOCK:
        Mode.stack.append(tracer)
        try:
            g.outputs = [tracer.value_of(t) for t in outputs]
        finally:
            Mode.stack.pop()
    if isinstance(tracer.enclosing, EagerInterpreter) and g.contains("grad"):
        expand_grads(g)
    return g


def _reorder(g: Graph, order: list[Value]) -> None:
    g.inputs = list(order)
    for i, v in enumerate(g.inputs):
        v.index = i


_INTERNED: dict[str, Graph] = {}


def _intern(g: Graph) -> Graph:
    """Eagerly, one Graph per distinct region text: the jitted scan is cached per region, so an
    eager loop over the same body compiles once."""
    if not isinstance(Mode.stack[-1], EagerInterpreter):
        return g
    text = str(g)
    hit = _INTERNED.get(text)
    if hit is None:
        if len(_INTERNED) >= 10_000:
            return g
        hit = _INTERNED[text] = g
    return hit


def _types(ts) -> str:
    return "(" + ", ".join(str(t._type if isinstance(t, Tensor) else t) for t in ts) + ")"


# -- scan --------------------------------------------------------------------------------------
def scan(fn, init, xs=None, length=None, reverse=False, unroll=1):
    """jax.lax.scan: ``fn(carry, x) -> (carry, y)`` over the leading axis of ``xs``.

    ``init`` and ``xs`` are tensors or tuples/lists/dicts of them (``xs=None`` with ``length``:
    ``x`` is None); returns ``(final carry, ys)`` with each y stacked along a new first axis.
    With ``reverse=True`` the steps run from the last to the first (ys stay in index order).
    Eagerly the loop runs as one compiled call; inside gcomp.compile it is one ``scan`` node, not
    an unrolled loop, and gradients flow through it both ways."""
    init_leaves, init_spec = _flatten(init, "scan's init")
    xs_leaves, xs_spec = _flatten(xs, "scan's xs")
    for x in xs_leaves:
        if x.ndim == 0:
            raise user_error(GcompError, "scan: every xs tensor needs a leading axis to scan "
                             "over, got a 0-d tensor")
    lengths = {x.shape[0] for x in xs_leaves}
    if length is not None:
        lengths.add(int(length))
    if len(lengths) != 1:
        raise user_error(GcompError, "scan: " + (
            "give xs or length" if not lengths else
            f"xs and length disagree on the number of steps: {sorted(lengths)}"))
    (steps,) = lengths
    x_slices = [Tensor(Storage(None), TensorType(x._type.shape[1:], x._type.dtype),
                       x.requires_grad) for x in xs_leaves]
    hints = _input_names(fn, 2)
    tracer, arg_values, out = _trace_region(
        "body", fn, [init, _unflatten(xs_spec, x_slices)], hints, "scan's carry and xs")
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        raise user_error(GcompError, "scan: the body must return a pair (carry, y), got "
                         f"{type(out).__name__}")
    carry_leaves, carry_spec = _flatten(out[0], "the carry a scan body returns")
    y_leaves, y_spec = _flatten(out[1], "the y a scan body returns")
    if carry_spec != init_spec or [t._type for t in carry_leaves] != [t._type for t in
                                                                       init_leaves]:
        raise user_error(GcompError, "scan: the body must return a carry of the same structure "
                         f"and types as init: init is {_types(init_leaves)}, the body returned "
                         f"{_types(carry_leaves)}")
    body = _close(tracer, carry_leaves + y_leaves)
    _reorder(body, body.inputs[len(arg_values):] + arg_values)
    body = _intern(body)
    outs = bind_many("scan", *tracer.outer, *init_leaves, *xs_leaves, regions=(body,),
                     length=steps, reverse=bool(reverse), num_consts=len(tracer.outer),
                     num_carry=len(init_leaves), unroll=int(unroll))
    k = len(init_leaves)
    return _unflatten(init_spec, outs[:k]), _unflatten(y_spec, outs[k:])


# -- cond --------------------------------------------------------------------------------------
def cond(pred, true_fn, false_fn, *operands):
    """``true_fn(*operands)`` if ``pred`` else ``false_fn(*operands)`` (jax.lax.cond, torch.cond).

    ``pred`` is a bool or a one-element tensor. Eagerly the chosen branch just runs; inside
    gcomp.compile both branches are traced into one ``cond`` node, so they must return the same
    structure of tensors with the same types."""
    if not isinstance(pred, Tensor) or not isinstance(Mode.stack[-1], TraceInterpreter):
        return true_fn(*operands) if bool(pred) else false_fn(*operands)
    if pred.numel() != 1:
        raise user_error(GcompError, f"cond: the predicate must have one element, got shape "
                         f"{list(pred.shape)}")
    p = pred.reshape(())
    if p.dtype != bool_:
        p = p != 0
    leaves, spec = _flatten(list(operands), "cond's operands")
    branches = []
    for name, fn in (("then", true_fn), ("else", false_fn)):
        tracer, arg_values, out = _trace_region(name, fn, list(operands),
                                                _input_names(fn, len(operands)),
                                                f"the {name} branch of cond")
        out_leaves, out_spec = _flatten(out, f"what the {name} branch of cond returns")
        branches.append((tracer, arg_values, out_leaves, out_spec))
    (t_tr, _, t_out, t_spec), (f_tr, _, f_out, f_spec) = branches
    if t_spec != f_spec or [t._type for t in t_out] != [t._type for t in f_out]:
        raise user_error(GcompError, "cond: both branches must return the same structure and "
                         f"types: true_fn gives {_types(t_out)}, false_fn {_types(f_out)}")
    # both regions take the operands, then every tensor either branch lifted
    outer: list[Tensor] = []
    keys: dict = {}
    for tracer, *_ in branches:
        for key, t in zip(tracer.lifted, tracer.outer):
            keys.setdefault(key, len(outer))
            if keys[key] == len(outer):
                outer.append(t)
    regions = []
    for tracer, arg_values, out_leaves, _ in branches:
        g = _close(tracer, out_leaves)
        extra = [None] * len(outer)
        for key, v in tracer.lifted.items():
            extra[keys[key]] = v
        extra = [v if v is not None else Value(t._type, name=f"unused_{i}")
                 for i, (v, t) in enumerate(zip(extra, outer))]
        _reorder(g, arg_values + extra)
        regions.append(g)
    outs = bind_many("cond", p, *leaves, *outer, regions=tuple(regions))
    return _unflatten(t_spec, outs)
