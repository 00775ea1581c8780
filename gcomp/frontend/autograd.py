"""PyTorch's autograd API over the one reverse walk (core/autograd.py)."""

from __future__ import annotations

import functools
import weakref

from ..core import autograd as core_ag
from ..core import dispatch
from ..core.dispatch import Mode, TraceInterpreter, bind_many, user_error
from ..core.tensor import Storage
from ..ir.errors import GcompError
from .tensor import Tensor


class _GradMode:
    """Context manager and decorator setting the grad mode (no_grad, enable_grad, ...)."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.prev = []

    def __enter__(self):
        self.prev.append(Mode.grad_enabled)
        Mode.grad_enabled = self.enabled
        return self

    def __exit__(self, *exc):
        Mode.grad_enabled = self.prev.pop()
        return False

    def __call__(self, fn):
        enabled = self.enabled

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with _GradMode(enabled):
                return fn(*args, **kwargs)

        return wrapper


def no_grad(fn=None):
    m = _GradMode(False)
    return m(fn) if callable(fn) else m


def enable_grad(fn=None):
    m = _GradMode(True)
    return m(fn) if callable(fn) else m


def inference_mode(mode=True):
    return _GradMode(not mode)


class set_grad_enabled(_GradMode):  # noqa: N801 - torch's name
    def __init__(self, mode: bool):
        super().__init__(bool(mode))
        self.prev.append(Mode.grad_enabled)
        Mode.grad_enabled = bool(mode)  # also works as a plain function call, like torch

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        Mode.grad_enabled = self.prev.pop()
        return False


def is_grad_enabled() -> bool:
    return Mode.grad_enabled


def _seed_for(out: Tensor, gradient):
    from .creation import ones_like
    from .ops import as_tensor

    if gradient is None:
        if out.numel() != 1:
            raise user_error(GcompError, "grad can be implicitly created only for scalar outputs; "
                             "pass gradient= (a tensor shaped like the output)")
        return ones_like(out)
    g = as_tensor(gradient)
    if g.shape != out.shape:
        raise user_error(GcompError, f"gradient has shape {list(g.shape)}, but the output is "
                         f"{list(out.shape)}")
    return g


def _check_differentiable(t: Tensor, i: int = 0):
    if not t.requires_grad:
        raise user_error(GcompError, f"element {i} of tensors does not require grad and does not "
                         "have a grad_fn")


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    """Accumulate d(tensors)/d(leaf) into each leaf's ``.grad``."""
    tensors = [tensors] if isinstance(tensors, Tensor) else list(tensors)
    grads = grad_tensors if isinstance(grad_tensors, (list, tuple)) else [grad_tensors] * len(
        tensors)
    if isinstance(Mode.stack[-1], TraceInterpreter):
        from .tracing import traced_backward

        return traced_backward(Mode.stack[-1], tensors, grads, create_graph, inputs)
    for i, t in enumerate(tensors):
        _check_differentiable(t, i)
    seeds: dict = {}
    with no_grad():
        for t, g in zip(tensors, grads):
            seed = _seed_for(t, g)
            key = t._edge()
            seeds[key] = seed if key not in seeds else seeds[key] + seed
    targets, retained = None, {}
    if inputs is not None:
        inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
        targets = [x._edge() for x in inputs]
    elif _RETAINED:
        for t in list(_RETAINED.values()):
            if t._grad_fn is not None:
                retained.setdefault(t._edge(), []).append(t)
    free = not (create_graph if retain_graph is None else retain_graph)
    with _GradMode(bool(create_graph)):
        result = core_ag.backprop(seeds, targets, retain=retained, hooks=_hooks(), free=free)
        for key, g in result.items():
            leaf = key if isinstance(key, Tensor) else None
            if leaf is None:
                continue
            _accumulate(leaf, g, create_graph)
    for key, ts in retained.items():
        if key in result:
            for t in ts:
                _accumulate(t, result[key], create_graph)
    if inputs is not None:
        for x in inputs:
            k = x._edge()
            if isinstance(k, tuple) and k in result:
                _accumulate(x, result[k], create_graph)


_RETAINED: weakref.WeakValueDictionary = weakref.WeakValueDictionary()  # id -> tensor


def retain_grad(t: Tensor) -> None:
    """Tensor.retain_grad(): a non-leaf tensor gets its .grad filled by backward()."""
    if not t.requires_grad:
        raise user_error(GcompError, "can't retain_grad on a tensor that has "
                         "requires_grad=False")
    if t._grad_fn is not None:
        _RETAINED[id(t)] = t


# -- Tensor.register_hook -----------------------------------------------------------------------
_HOOKED: weakref.WeakValueDictionary = weakref.WeakValueDictionary()  # id -> tensor with hooks


class RemovableHandle:
    """What register_hook returns: ``handle.remove()`` unregisters the hook."""

    _next = 0

    def __init__(self, table):
        self._table = weakref.ref(table) if table is not None else None
        RemovableHandle._next += 1
        self.id = RemovableHandle._next

    def remove(self):
        table = self._table() if self._table is not None else None
        if table is not None:
            table.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


class _HookTable(dict):  # a dict subclass, so a handle can hold a weak reference to it
    pass


def register_hook(t: Tensor, hook) -> RemovableHandle:
    """Tensor.register_hook(hook): ``hook(grad)`` runs each time the gradient with respect to
    ``t`` is computed, eagerly (backward() and autograd.grad), and may return a tensor to use
    instead. A leaf's hook runs before the gradient is accumulated into ``.grad``."""
    if not callable(hook):
        raise user_error(GcompError, f"register_hook expects a callable, got "
                         f"{type(hook).__name__}")
    if not t.requires_grad:
        raise user_error(GcompError, "cannot register a hook on a tensor that doesn't require "
                         "gradient")
    if t.is_traced:
        raise user_error(GcompError, "register_hook inside gcomp.compile is not supported: "
                         "hooks run eagerly; register it outside, on an eager tensor, and "
                         "call the compiled module inside eager autograd")
    table = t.__dict__.get("_hook_table")
    if table is None:
        table = t._hook_table = _HookTable()
    handle = RemovableHandle(table)
    table[handle.id] = hook
    _HOOKED[id(t)] = t
    return handle


def _hooks() -> dict:
    """{key: fn} for the live tensors with hooks (core/autograd.py backprop's ``hooks``)."""
    out: dict = {}
    for t in list(_HOOKED.values()):
        table = t.__dict__.get("_hook_table")
        if not table:
            continue
        fns = list(table.values())
        key = t._edge()

        def run(g, fns=fns, t=t, prev=out.get(key)):
            if prev is not None:
                g = prev(g)
            for fn in fns:
                r = fn(g)
                if r is not None:
                    if not isinstance(r, Tensor) or r._type != g._type:
                        got = f"{r.dtype} {list(r.shape)}" if isinstance(r, Tensor) else \
                            type(r).__name__
                        raise user_error(GcompError, f"a gradient hook returned {got}; it must "
                                         f"return None or a tensor of {g.dtype} "
                                         f"{list(g.shape)}")
                    g = r
            return g

        out[key] = run
    return out


def _accumulate(leaf: Tensor, g: Tensor, create_graph: bool):
    from .ops import add

    if leaf._grad is None:
        # a cell of its own: the same cotangent can reach several leaves (x + w), or be the
        # caller's gradient= tensor, and a later backward accumulates into .grad in place
        leaf._grad = g._snapshot() if create_graph else Tensor(Storage(g._storage.data), g._type)
    elif create_graph:
        leaf._grad = add(leaf._grad, g)
    else:
        with no_grad():
            leaf._grad._storage.data = add(leaf._grad, g)._storage.data
            leaf._grad._storage.version += 1


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         allow_unused=False, materialize_grads=False):
    """Gradients of ``outputs`` with respect to ``inputs``, returned instead of accumulated."""
    single = isinstance(inputs, Tensor)
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    inputs = [inputs] if single else list(inputs)
    gouts = grad_outputs if isinstance(grad_outputs, (list, tuple)) else [grad_outputs] * len(
        outputs)
    for i, x in enumerate(inputs):
        if not x.requires_grad:
            raise user_error(GcompError, f"input {i} of autograd.grad does not require grad")
    if isinstance(Mode.stack[-1], TraceInterpreter):
        from .tracing import traced_grad_request

        return tuple(traced_grad_request(Mode.stack[-1], outputs, gouts, inputs, create_graph))
    for i, t in enumerate(outputs):
        _check_differentiable(t, i)
    with no_grad():
        seeds: dict = {}
        for t, g in zip(outputs, gouts):
            seed = _seed_for(t, g)
            key = t._edge()
            seeds[key] = seed if key not in seeds else seeds[key] + seed
    targets = [x._edge() for x in inputs]
    free = not (create_graph if retain_graph is None else retain_graph)
    with _GradMode(bool(create_graph)):
        result = core_ag.backprop(seeds, targets, hooks=_hooks(), free=free)
    out = []
    for i, (x, k) in enumerate(zip(inputs, targets)):
        g = result.get(k)
        if g is None:
            if not (allow_unused or materialize_grads):
                raise user_error(GcompError, f"one of the differentiated tensors (input {i}) "
                                 "appears to not have been used in the graph; pass "
                                 "allow_unused=True if this is the desired behavior")
            if materialize_grads:
                from .creation import zeros_like

                g = zeros_like(x)
        elif not create_graph:
            g = g.detach()
        out.append(g)
    return tuple(out)


class FunctionCtx:
    def __init__(self):
        self._saved = ()
        self.needs_input_grad = ()
        self.materialize_grads = True

    def save_for_backward(self, *tensors):
        self._saved = tuple(tensors)

    @property
    def saved_tensors(self):
        if self._saved is None:  # freed by a backward without retain_graph
            raise user_error(GcompError, dispatch.FREED_MESSAGE)
        return self._saved

    def _free(self):
        """Note [Freeing the graph] in core/autograd.py."""
        self._saved = None

    def mark_non_differentiable(self, *tensors):
        self._non_diff = tensors

    def set_materialize_grads(self, value: bool):
        self.materialize_grads = value


class Function:
    """torch.autograd.Function: subclass with static forward(ctx, ...) and backward(ctx, ...)."""

    @classmethod
    def apply(cls, *args):
        ctx = FunctionCtx()
        tensor_args = [a for a in args if isinstance(a, Tensor)]
        ctx.needs_input_grad = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        needs = Mode.grad_enabled and any(t.requires_grad for t in tensor_args)
        if needs and isinstance(Mode.stack[-1], TraceInterpreter):
            return _traced_function(cls, ctx, args)
        with no_grad():
            out = cls.forward(ctx, *args)
        if not needs:
            return out
        outs = out if isinstance(out, tuple) else (out,)
        positions = [i for i, a in enumerate(args) if isinstance(a, Tensor)]

        def vjp(cts, inputs, outputs):
            from .creation import zeros_like

            cts = [c if c is not None else zeros_like(o) for c, o in zip(cts, outputs)]
            grads = cls.backward(ctx, *cts)
            grads = grads if isinstance(grads, tuple) else (grads,)
            if len(grads) != len(args):
                raise GcompError(f"{cls.__name__}.backward returned {len(grads)} gradients, "
                                 f"forward took {len(args)} arguments")
            res = []
            for i, t in zip(positions, inputs):
                g = grads[i]
                if isinstance(g, Tensor) and t.dtype.is_floating_point:
                    if g.shape != t.shape:
                        raise user_error(GcompError, f"{cls.__name__}.backward returned an "
                                         f"invalid gradient for argument {i}: got "
                                         f"{list(g.shape)}, expected shape {list(t.shape)}")
                    if g.dtype != t.dtype:  # as torch's engine: the input's dtype (autocast)
                        g = g.to(t.dtype)
                res.append(g)
            return res

        node = core_ag.TapeNode(f"{cls.__name__}", {}, [t._snapshot() for t in tensor_args], None,
                                [t._edge() for t in tensor_args], None, custom=vjp,
                                release=ctx._free)
        node.output_keys = [(node, i) for i in range(len(outs))]
        for i, o in enumerate(outs):
            if isinstance(o, Tensor) and o.dtype.is_floating_point:
                o.requires_grad, o._grad_fn, o._out_index = True, node, i
        node.outputs = [o._snapshot() for o in outs]
        return out

    @staticmethod
    def forward(ctx, *args):
        raise NotImplementedError

    @staticmethod
    def backward(ctx, *grads):
        raise NotImplementedError


def _traced_function(cls, ctx, args):
    """``cls.apply(*args)`` inside gcomp.compile: one ``custom_vjp`` node whose backward region
    runs ``cls.backward`` on what a second trace of the forward saved (Note [Custom VJPs] in
    autodiff/control.py)."""
    from ..ir.graph import Value
    from .control import _close, _flatten, _reorder, _trace_region, _unflatten

    name = cls.__name__
    positions = [i for i, a in enumerate(args) if isinstance(a, Tensor)]
    tensors = [args[i] for i in positions]

    def call_forward(c, ts):
        full = list(args)
        for i, t in zip(positions, ts):
            full[i] = t
        with no_grad():
            return cls.forward(c, *full)

    spec = []

    def forward(*ts):
        out = call_forward(ctx, ts)
        leaves, s = _flatten(out, f"what {name}.forward returns")
        spec.append(s)
        return leaves

    tracer, arg_values, outs = _trace_region("forward", forward, tensors,
                                             [f"arg{i}" for i in positions], f"{name}.forward")
    fwd = _close(tracer, outs)

    def backward(*ins):
        ts, cts = ins[:len(tensors)], ins[len(tensors):]
        c = FunctionCtx()
        c.needs_input_grad = ctx.needs_input_grad
        call_forward(c, ts)  # what backward reads, recomputed from the operands
        grads = cls.backward(c, *cts)
        grads = grads if isinstance(grads, tuple) else (grads,)
        if len(grads) != len(args):
            raise user_error(GcompError, f"{name}.backward returned {len(grads)} gradients, "
                             f"forward took {len(args)} arguments")
        res = []
        for k, (i, t) in enumerate(zip(positions, ts)):
            g = grads[i]
            if g is None or not t.dtype.is_floating_point:
                continue  # no gradient, as torch gives none
            if not isinstance(g, Tensor) or g.shape != t.shape:
                got = list(g.shape) if isinstance(g, Tensor) else type(g).__name__
                raise user_error(GcompError, f"{name}.backward returned an invalid gradient for "
                                 f"argument {i}: got {got}, expected shape {list(t.shape)}")
            if g.dtype != t.dtype:
                g = g.to(t.dtype)
            wrt.append(k)
            res.append(g)
        return res

    wrt: list[int] = []
    templates = [Tensor(Storage(None), t._type) for t in tensors + outs]
    btracer, b_values, grads = _trace_region("backward", backward, templates,
                                             ["arg"] * len(tensors) + ["ct"] * len(outs),
                                             f"{name}.backward")
    bwd = _close(btracer, grads)
    # both regions take the arguments, then every tensor either read from outside (as cond)
    outer: list[Tensor] = []
    keys: dict = {}
    for tr in (tracer, btracer):
        for key, t in zip(tr.lifted, tr.outer):
            if key not in keys:
                keys[key] = len(outer)
                outer.append(t)

    def lifted(tr):
        extra = [None] * len(outer)
        for key, v in tr.lifted.items():
            extra[keys[key]] = v
        return [v if v is not None else Value(t._type, name=f"unused_{k}")
                for k, (v, t) in enumerate(zip(extra, outer))]

    _reorder(fwd, arg_values + lifted(tracer))
    nt = len(tensors)
    _reorder(bwd, b_values[:nt] + lifted(btracer) + b_values[nt:])
    # the operands backward gives no gradient for take none: they enter without autograd history
    operands = [t if k in wrt else t._alias_nograd() for k, t in enumerate(tensors + outer)]
    results = bind_many("custom_vjp", *operands, regions=(fwd, bwd), wrt=tuple(wrt))
    return _unflatten(spec[0], list(results))


def grad_of(fn, argnums=0, has_aux=False):
    """jax.grad-style functional gradient: gcomp.grad(f)(x) is df/dx at x (f returns a scalar).

    Works eagerly and inside gcomp.compile, and nests for higher derivatives."""
    return _value_and_grad(fn, argnums, has_aux, return_value=False)


def value_and_grad(fn, argnums=0, has_aux=False):
    return _value_and_grad(fn, argnums, has_aux, return_value=True)


def _value_and_grad(fn, argnums, has_aux, return_value):
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        args = list(args)
        outer_grad = Mode.grad_enabled
        own = set()  # leaves made here: results depending only on them are plain values
        with enable_grad():
            for i in nums:
                a = args[i]
                if not isinstance(a, Tensor):
                    raise user_error(GcompError, f"gcomp.grad: argument {i} must be a Tensor")
                if not a.requires_grad:
                    args[i] = a.detach().requires_grad_()
                    own.add(id(args[i]))
            out = fn(*args, **kwargs)
            value, aux = (out[0], out[1]) if has_aux else (out, None)
            if not isinstance(value, Tensor) or value.numel() != 1:
                raise user_error(GcompError, "gcomp.grad: the function must return a scalar "
                                 "tensor (use has_aux=True to return (scalar, aux))")
            grads = grad(value, [args[i] for i in nums], create_graph=True, allow_unused=True,
                         materialize_grads=True)

        def result(t):  # keep a graph only for an enclosing differentiation (nested grads)
            keep = outer_grad and t.requires_grad and _reaches_leaf_outside(t, own)
            return t if keep else t.detach()

        grads, value = tuple(result(t) for t in grads), result(value)
        g = grads[0] if isinstance(argnums, int) else grads
        if return_value:
            return ((value, aux), g) if has_aux else (value, g)
        return (g, aux) if has_aux else g

    return wrapper


def _reaches_leaf_outside(t: Tensor, own: set) -> bool:
    """Whether ``t``'s tape reaches a leaf other than those in ``own`` (ids)."""
    stack, seen = [t._edge()], set()
    while stack:
        key = stack.pop()
        if key is None:
            continue
        if not isinstance(key, tuple):
            if id(key) not in own:
                return True
            continue
        if id(key[0]) not in seen:
            seen.add(id(key[0]))
            stack.extend(key[0].input_keys)
    return False


class detect_anomaly:  # noqa: N801 - torch's name
    """torch.autograd.detect_anomaly: while on, each eager op records the user's line that ran
    it, and backward raises at the first VJP that gives a NaN gradient, naming the op and that
    line. A context manager (``check_nan=False`` only records lines); slows eager autograd."""

    def __init__(self, check_nan: bool = True):
        self.check_nan = check_nan
        self.prev = []

    def __enter__(self):
        self.prev.append(core_ag.ANOMALY[0])
        core_ag.ANOMALY[0] = bool(self.check_nan)
        return self

    def __exit__(self, *exc):
        core_ag.ANOMALY[0] = self.prev.pop()
        return False


class set_detect_anomaly(detect_anomaly):  # noqa: N801 - torch's name
    """torch.autograd.set_detect_anomaly(mode): turns anomaly mode on or off now, or for a
    ``with`` block."""

    def __init__(self, mode: bool, check_nan: bool = True):
        super().__init__(check_nan)
        self.prev.append(core_ag.ANOMALY[0])
        core_ag.ANOMALY[0] = bool(mode) and bool(check_nan)

    def __enter__(self):
        return self


def is_anomaly_enabled() -> bool:
    return core_ag.ANOMALY[0]


class _VariableMeta(type):
    def __instancecheck__(cls, obj):
        return isinstance(obj, Tensor)


class Variable(metaclass=_VariableMeta):
    """torch.autograd.Variable, deprecated in torch: ``Variable(t, requires_grad=...)`` is a new
    leaf sharing t's data (requires_grad as asked), and every tensor is a Variable."""

    def __new__(cls, data, requires_grad: bool = False, volatile: bool = False):
        if not isinstance(data, Tensor):
            raise user_error(GcompError, f"Variable data has to be a tensor, but got "
                             f"{type(data).__name__}")
        out = data.detach()
        return out.requires_grad_() if requires_grad else out
