"""The one dispatcher (DESIGN.md rule 2).

Every op, from user code, composite functions and VJP rules alike, goes through :func:`bind`.
``bind`` asks the current interpreter to compute the op (eager: the op's cached, jitted lowering
rule on jax arrays) or to record it (tracing: append a Node to the graph), then records a tape
node when gradients are wanted, in both modes the same way.
"""

from __future__ import annotations

import os
import sys
import threading

from ..ir import ops as _ops
from ..ir.errors import GcompError, ShapeError
from ..ir.graph import Graph, Value
from ..ir.types import TensorType
from ..lowering import jitted
from .tensor import Storage, TensorBase


# Note [Tracing and threads]
# ~~~~~~~~~~~~~~~~~~~~~~~~~~
# The interpreter stack is process-wide (a per-thread stack would cost every eager op a lookup),
# so an op run by another thread while this one traces would be recorded into the trace. Every
# push of a tracing interpreter holds TRACE_LOCK, and gcomp's own background work that runs user
# code (the DataLoader's prefetch thread calling a Dataset's __getitem__) holds it too while it
# runs: the two take turns, and a batch is never half-recorded into a compiled step.
TRACE_LOCK = threading.RLock()


class Mode:
    """Process-wide switches: gradient recording and the interpreter stack."""

    grad_enabled: bool = True
    stack: list = []  # interpreters; the eager one is at the bottom
    tensor_class: type = TensorBase  # set by the front end to its Tensor
    # the dtype autocast runs low-precision ops in now, or None (Note [Autocast] in
    # frontend/autocast.py); part of every compiled function's signature
    autocast = None
    # (op, inputs, exception) -> a GcompError for tensors on different devices, or None; set by
    # the front end (Note [Devices and committed arrays] in frontend/device.py)
    device_error = None


def current():
    return Mode.stack[-1]


# ---------------------------------------------------------------------------------------------
# Source locations: the first frame outside gcomp's own files.

_PKG_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# files inside the package that are user code: the models `gcomp bench` ships, whose lines the IR
# and errors should name
_USER_FILES = frozenset({os.path.join(_PKG_DIR, "bench", "workloads.py")})


def user_frame():
    f = sys._getframe(1)
    while f is not None and f.f_code.co_filename.startswith(_PKG_DIR) and \
            f.f_code.co_filename not in _USER_FILES:
        f = f.f_back
    return f


def user_location() -> str | None:
    f = user_frame()
    if f is None:
        return None
    return f"{os.path.basename(f.f_code.co_filename)}:{f.f_lineno}"


def user_error(cls, message: str):
    """An error whose message starts with the user's file and line."""
    f = user_frame()
    if f is not None:
        message = f"{f.f_code.co_filename}:{f.f_lineno}: {message}"
    return cls(message)


# ---------------------------------------------------------------------------------------------
# Interpreters

class Freed:
    """The data of a tape snapshot whose graph was backpropagated without retain_graph (Note
    [Freeing the graph] in core/autograd.py): reading it is torch's "backward through the graph a
    second time" error."""

    __slots__ = ()


FREED = Freed()
FREED_MESSAGE = (
    "Trying to backward through the graph a second time (or directly access saved tensors after "
    "they have already been freed). Saved intermediate values of the graph are freed when you "
    "call .backward() or autograd.grad(). Specify retain_graph=True if you need to backward "
    "through the graph a second time or if you need to access saved tensors after calling "
    "backward.")
_NOT_ARRAYS = frozenset({Value, Freed})


class EagerInterpreter:
    """Runs each op now with its jitted lowering rule."""

    def apply(self, op, inputs, attrs, akey, cache):
        arrays = []
        for t in inputs:
            d = t._storage.data
            if d.__class__ in _NOT_ARRAYS:
                if d.__class__ is Freed:
                    raise user_error(GcompError, FREED_MESSAGE)
                raise user_error(GcompError, f"{op}: a traced tensor from a gcomp.compile trace "
                                 "was used outside it; return it from the compiled function "
                                 "instead")
            arrays.append(d)
        in_types = tuple(t._type for t in inputs)
        out_types = cache.types.get(in_types)
        if out_types is None:
            try:
                out_types = _ops.infer_types(op, list(in_types), attrs)
            except ShapeError as e:
                raise user_error(ShapeError, str(e)) from None
            if len(cache.types) < 10_000:
                cache.types[in_types] = out_types
        fn = cache.fn
        if fn is None:
            fn = cache.fn = jitted(op, akey)
        try:
            res = fn(*arrays)
        except ValueError as e:  # costs nothing unless raised
            err = Mode.device_error and Mode.device_error(op, inputs, e)
            if err is None:
                raise
            raise err from None
        if len(out_types) == 1:
            res = (res,)
        cls = Mode.tensor_class
        return [cls(Storage(r), t) for r, t in zip(res, out_types)]


class TraceInterpreter:
    """Appends each op to a Graph. Concrete tensors it meets are lifted to state inputs.

    See Note [Functionalization] in frontend/tracing.py for the overlay of captured storages.
    """

    def __init__(self, graph: Graph, name_of=None):
        self.graph = graph
        self.values: set[Value] = set()
        self.overlay: dict[Storage, Value] = {}  # captured storage -> its current value
        self.captured: list[tuple[Storage, TensorBase, Value]] = []
        self.cut: set[Value] = set()  # values computed under no_grad from values needing grad
        self.cut_done: dict[Value, Value] = {}
        self.name_of = name_of or (lambda t: None)
        self.grad_overlay: dict = {}  # captured tensor -> its .grad inside the trace
        self.grad_reads: dict = {}  # captured tensor -> its .grad object when first read
        self.view_versions: dict = {}  # outside views refreshed here -> root version then
        self.names: dict[Storage, str] = {}  # state names given by the tracer (".grad" states)
        self.modes: dict[int, tuple] = {}  # id(module) -> (module, its .training when called)

    def note_mode(self, module) -> None:
        """Guard on a module's train/eval flag: called by Module.__call__ while tracing."""
        if id(module) not in self.modes:
            self.modes[id(module)] = (module, module.training)

    def add_input(self, type: TensorType, name: str | None = None, state: str | None = None):
        v = self.graph.add_input(type, name=name, state=state)
        self.values.add(v)
        return v

    def unique_state_name(self, base: str) -> str:
        used = {v.state for v in self.graph.inputs if v.state}
        name, k = base, 1
        while name in used:
            name, k = f"{base}_{k}", k + 1
        return name

    def value_of(self, t: TensorBase) -> Value:
        base = t._base
        if base is not None and base._storage.version != t._base_version and \
                self.view_versions.get(t._storage) != base._storage.version:
            refresh_view(t)
        return self._value_of_storage(t)

    def _value_of_storage(self, t: TensorBase) -> Value:
        st = t._storage
        v = self.overlay.get(st)
        if v is not None:
            return v
        d = st.data
        if isinstance(d, Value):
            if d not in self.values:
                raise user_error(GcompError, "a traced tensor from another gcomp.compile trace was "
                                 "used here (was it stored in a global or attribute?)")
            return d
        name = self.names.get(st) or t._name or self.name_of(t) or f"captured_{len(self.captured)}"
        v = self.add_input(t._type, name=name, state=self.unique_state_name(name))
        self.overlay[st] = v
        self.captured.append((st, t, v))
        return v

    def apply(self, op, inputs, attrs, akey, cache=None):
        values = [self.value_of(t) for t in inputs]
        if self.cut and Mode.grad_enabled:
            values = [self._cut_value(v) if v in self.cut else v for v in values]
        try:
            node = self.graph.add_node(op, values, attrs, loc=user_location())
        except ShapeError as e:
            raise user_error(ShapeError, str(e)) from None
        cls = Mode.tensor_class
        outs = []
        for v in node.outputs:
            self.values.add(v)
            outs.append(cls(Storage(v), v.type))
        if not Mode.grad_enabled and any(t.requires_grad or values[i] in self.cut
                                         for i, t in enumerate(inputs)):
            self.cut.update(node.outputs)
        return outs

    def _cut_value(self, v: Value) -> Value:
        """A value computed under no_grad: PyTorch's tape has no edge through it, so the IR gets
        an explicit stop_gradient before it feeds an op that records gradients."""
        out = self.cut_done.get(v)
        if out is None:
            node = self.graph.add_node("stop_gradient", [v], {}, loc=user_location())
            out = node.outputs[0]
            self.values.add(out)
            self.cut_done[v] = out
        return out


Mode.stack.append(EagerInterpreter())


# ---------------------------------------------------------------------------------------------

_ATTR_CACHE: dict = {}


def _attrs(op: str, attrs: dict):
    try:
        key = (op, tuple(attrs.items()))
        hit = _ATTR_CACHE.get(key)
    except TypeError:  # an unhashable (list) attribute: normalize first
        key, hit = None, None
    if hit is not None:
        return hit
    try:
        norm = _ops.normalize_attrs(op, attrs)
    except ShapeError as e:
        raise user_error(ShapeError, str(e)) from None
    hit = (norm, tuple(norm.items()), _OpCache())
    if key is not None and len(_ATTR_CACHE) < 100_000:
        _ATTR_CACHE[key] = hit
    return hit


def refresh_view(t: TensorBase) -> None:
    """Recompute a view from its root after the root was updated in place (Note [Views] in
    frontend/shape_ops.py). Inside a trace, a view made outside it gets an overlay value."""
    root = t._base
    fresh = t._view_fn(root)
    interp = Mode.stack[-1]
    st = t._storage
    if isinstance(interp, TraceInterpreter) and not (
            isinstance(st.data, Value) and st.data in interp.values and st not in interp.overlay):
        # a view made outside the trace: never mutate it, give it an overlay value instead
        interp.view_versions[st] = root._storage.version
        interp._value_of_storage(t)
        interp.overlay[st] = interp.value_of(fresh)
        return
    t._base_version = root._storage.version
    st.data = fresh._storage.data
    t._grad_fn, t._out_index = fresh._grad_fn, fresh._out_index
    t.requires_grad = fresh.requires_grad


class _OpCache:
    """Per (op, attributes): the jitted eager callable and the result types seen so far."""

    __slots__ = ("fn", "types")

    def __init__(self):
        self.fn = None
        self.types: dict = {}


def bind(op: str, *inputs: TensorBase, **attrs):
    """Apply primitive ``op`` to tensors: compute or record it, and tape it for autograd."""
    norm, akey, cache = _attrs(op, attrs)
    needs_grad = False
    for t in inputs:
        if t.requires_grad:
            needs_grad = True
        base = t._base
        if base is not None and base._storage.version != t._base_version and \
                len(Mode.stack) == 1:
            refresh_view(t)  # (a trace interpreter refreshes views in value_of)
    outs = Mode.stack[-1].apply(op, inputs, norm, akey, cache)
    if needs_grad and Mode.grad_enabled:
        from .autograd import record

        record(op, norm, inputs, outs)
    return outs[0] if len(outs) == 1 else tuple(outs)


def bind_many(op: str, *inputs: TensorBase, **attrs) -> tuple:
    """Like bind, always returning a tuple of results."""
    out = bind(op, *inputs, **attrs)
    return out if isinstance(out, tuple) else (out,)
