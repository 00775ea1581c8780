"""Tracing a Python function into a Graph, with state capture.

Note [Functionalization]
While tracing, any concrete tensor the code touches without receiving it as an argument
(parameters, buffers, ``.grad``, optimizer state, the RNG key) is lifted into a graph input named
by its state path. Python objects are never mutated during a trace: the TraceInterpreter keeps an
*overlay* from each captured Storage to its current traced value, and ``.grad`` assignments go to a
grad overlay. An in-place update of a captured tensor moves its overlay entry to the new value.
When tracing ends, every captured tensor whose overlay differs from its input becomes a state
update (a graph output naming the state); the runtime writes the new arrays back into the same
Python objects after the executable has run. So a failed trace or a failed call leaves every
tensor as it was, and a whole training step compiles to one executable.

Gradients inside a trace: ``loss.backward()``, ``gcomp.autograd.grad`` and ``gcomp.grad`` record a
``grad`` node (see ir/ops/control.py). The leaves it differentiates with respect to are found on the
same tape eager autograd uses; the autodiff pass later expands the node with the same reverse walk.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field

from ..core import autograd as core_ag
from ..core.dispatch import TRACE_LOCK, Mode, TraceInterpreter, bind, user_error, user_location
from ..core.tensor import Storage
from ..ir.errors import GcompError
from ..ir.graph import Graph, Value
from .tensor import Tensor


def _is_internal(interp: TraceInterpreter, t: Tensor) -> bool:
    d = t._storage.data
    return isinstance(d, Value) and d in interp.values and t._storage not in interp.overlay


def traced_grad(interp: TraceInterpreter, t: Tensor):
    if _is_internal(interp, t):
        return t._grad
    if t in interp.grad_overlay:
        return interp.grad_overlay[t]
    g = t._grad
    interp.grad_reads.setdefault(t, g)
    if g is not None and g._storage not in interp.overlay:
        base = interp.names.get(t._storage) or t._name or interp.name_of(t) or "tensor"
        interp.names.setdefault(g._storage, f"{base}.grad")
    return g


def set_traced_grad(interp: TraceInterpreter, t: Tensor, value) -> None:
    if _is_internal(interp, t):
        t._grad = value
    else:
        interp.grad_overlay[t] = value


def assign_traced(interp: TraceInterpreter, t: Tensor, new: Tensor) -> None:
    nv = interp.value_of(new)
    if _is_internal(interp, t):
        arg = getattr(interp, "arg_roots", {}).get(t._storage)
        if arg is not None:
            _check_unaliased(interp, *arg)
        t._storage.data = nv
        t._storage.version += 1
        return
    if new.requires_grad and Mode.grad_enabled:
        raise user_error(GcompError, "in-place update of a captured tensor with a value that "
                         "requires grad inside gcomp.compile; do the update under gcomp.no_grad()")
    interp.value_of(t)  # make sure it is captured as state
    interp.overlay[t._storage] = nv
    t._storage.version += 1  # views taken before this update are now stale, as in eager mode


def _root_key(t: Tensor) -> int:
    return id((t._base if t._base is not None else t)._storage)


def _check_unaliased(interp, key: int, name: str) -> None:
    """An argument updated in place must not share memory with another argument or with
    captured state: the trace holds them as separate values, so the update would not be seen
    through the other name, unlike in eager code."""
    others = [n for k, n in interp.arg_roots.values() if k == key and n != name]
    if others:
        raise user_error(GcompError, f"in-place update of argument {name!r}, which shares memory "
                         f"with argument {others[0]!r} (a view of it, or the same tensor), "
                         "inside gcomp.compile; pass tensors that do not alias, or clone() one")
    for _, c, v in interp.captured:
        state = v.state
        if _root_key(c) == key:
            raise user_error(GcompError, f"in-place update of argument {name!r}, which shares "
                             f"memory with {state!r}, read inside gcomp.compile; pass it only as "
                             "an argument or only read it from the module, or clone() it")


def _leaf_values(interp, roots):
    """Leaves (tensors requiring grad) reachable from the roots' tape, with the traced values
    they had where they were used."""
    found: dict = {}
    seen = set()
    stack = [r._grad_fn for r in roots if r._grad_fn is not None]
    for r in roots:
        if r._grad_fn is None and r.requires_grad:
            found.setdefault(r, []).append(interp.value_of(r))
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        for key, snap in zip(node.input_keys, node.inputs):
            if key is None:
                continue
            if isinstance(key, tuple):
                stack.append(key[0])
            else:
                vals = found.setdefault(key, [])
                if snap._storage.data not in vals:
                    vals.append(snap._storage.data)
    return found


def _emit_grad(interp, outputs, seeds, wrt_values):
    from .autograd import no_grad

    graph = interp.graph
    with no_grad():
        ins = [interp.value_of(o) for o in outputs] + [interp.value_of(s) for s in seeds]
        node = graph.add_node("grad", ins + list(wrt_values), {"outputs": len(outputs)},
                              loc=user_location())
    results = []
    for v in node.outputs:
        interp.values.add(v)
        results.append(Tensor(Storage(v), v.type))
    return results


def _seeds(outputs, grads):
    from .autograd import _seed_for, no_grad

    with no_grad():
        return [_seed_for(o, g) for o, g in zip(outputs, grads)]


def traced_backward(interp, tensors, grads, create_graph, inputs):
    from .autograd import _check_differentiable, no_grad
    from .ops import add

    if create_graph:
        raise user_error(GcompError, "backward(create_graph=True) inside gcomp.compile is not "
                         "supported; use gcomp.grad(gcomp.grad(f)) for higher derivatives")
    for i, t in enumerate(tensors):
        _check_differentiable(t, i)
    from .autograd import _HOOKED

    for _, t, _ in interp.captured:  # the autodiff pass does not run Python hooks
        if _HOOKED.get(id(t)) is t and t.__dict__.get("_hook_table"):
            raise user_error(GcompError, f"backward() inside gcomp.compile reaches "
                             f"{t._name or 'a tensor'} with a gradient hook (register_hook), "
                             "which compiled code cannot run; remove the hook, or compile only "
                             "the forward (gcomp.compile(model)) so backward runs eagerly")
    interp.backward_called = True
    leaves = _leaf_values(interp, tensors)
    if inputs is not None:
        inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
        leaves = {x: leaves.get(x, [interp.value_of(x)]) for x in inputs}
    if not leaves:
        return
    for leaf in leaves:
        name = getattr(interp, "argument_leaves", {}).get(id(leaf))
        if name is not None:
            # its .grad would only live in the trace: the caller's tensor would never see it
            raise user_error(GcompError, f"backward() inside gcomp.compile reaches argument "
                             f"{name!r}, a tensor requiring grad, whose .grad cannot be written "
                             "back. Read the parameter from a global, closure or module instead "
                             "(it becomes state), or return gcomp.autograd.grad(loss, [...]).")
    order = [(leaf, v) for leaf, vals in leaves.items() for v in vals]
    results = _emit_grad(interp, tensors, _seeds(tensors, grads), [v for _, v in order])
    total: dict = {}
    with no_grad():
        for (leaf, _), g in zip(order, results):
            total[leaf] = g if leaf not in total else add(total[leaf], g)
        for leaf, g in total.items():
            cur = leaf.grad
            leaf.grad = g if cur is None else add(cur, g)


def traced_grad_request(interp, outputs, gouts, inputs, create_graph):
    for i, t in enumerate(outputs):
        if not t.requires_grad:
            raise user_error(GcompError, f"element {i} of tensors does not require grad and does "
                             "not have a grad_fn")
    results = _emit_grad(interp, outputs, _seeds(outputs, gouts),
                         [interp.value_of(x) for x in inputs])
    if create_graph and Mode.grad_enabled:
        # Tape the request so an enclosing grad finds the leaves behind it; the autodiff pass
        # differentiates the expanded nodes, so this VJP never runs.
        srcs = list(outputs) + list(inputs)

        def never(cts, ins, outs):
            raise GcompError("internal: a traced grad request was differentiated on the tape")

        node = core_ag.TapeNode("grad", {}, [s._snapshot(interp.value_of(s)) for s in srcs],
                                None, [s._edge() for s in srcs], None, custom=never)
        node.output_keys = [(node, i) for i in range(len(results))]
        for i, r in enumerate(results):
            r.requires_grad, r._grad_fn, r._out_index = True, node, i
        node.outputs = [r._snapshot() for r in results]
    return results


# ---------------------------------------------------------------------------------------------
@dataclass
class WriteBack:
    """Where a state update goes after a call: a captured storage or a tensor's ``.grad``."""

    state: str
    storage: Storage | None = None  # write the new array into this cell
    grad_of: Tensor | None = None  # or set this tensor's .grad


@dataclass
class Trace:
    graph: Graph
    arg_paths: list  # the argument leaves that are graph inputs, in order
    out_tree: object  # the output structure with ("T", i) for each tensor output
    captured: list  # (storage, tensor, state name) for each state input, in input order
    writebacks: list = field(default_factory=list)  # one per graph update, in order
    grads_to_none: list = field(default_factory=list)  # tensors whose .grad becomes None
    grad_reads: list = field(default_factory=list)  # (tensor, its .grad when traced): guards
    out_requires_grad: list = field(default_factory=list)  # per graph output
    arg_requires_grad: list = field(default_factory=list)  # per argument input
    modes: list = field(default_factory=list)  # (module, .training when traced, name): guards
    arg_writebacks: list = field(default_factory=list)  # (argument path, graph output index)
    backward_called: bool = False  # the function ran backward(): its outputs' graph is spent
    captured_requires_grad: list = field(default_factory=list)  # (tensor, flag): guards


def flatten(obj, path=()):
    """Leaves of nested tuples/lists/dicts, each with its path."""
    if isinstance(obj, (tuple, list)):
        for i, x in enumerate(obj):
            yield from flatten(x, path + (i,))
    elif isinstance(obj, dict):
        for k in obj:
            yield from flatten(obj[k], path + (k,))
    else:
        yield path, obj


def rebuild(obj, fn, path=()):
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return type(obj)(*[rebuild(x, fn, path + (i,)) for i, x in enumerate(obj)])
    if isinstance(obj, (tuple, list)):
        return type(obj)(rebuild(x, fn, path + (i,)) for i, x in enumerate(obj))
    if isinstance(obj, dict):
        return {k: rebuild(v, fn, path + (k,)) for k, v in obj.items()}
    return fn(path, obj)


def _closure_names(fn) -> dict[int, str]:
    """Names under which the function sees tensors: its globals and closure variables."""
    names: dict[int, str] = {}
    bound = getattr(fn, "__self__", None)
    target = getattr(fn, "__func__", fn)
    code = getattr(target, "__code__", None)
    if code is None:
        return names
    scopes = []
    if target.__closure__:
        scopes.append(dict(zip(code.co_freevars, (c.cell_contents for c in target.__closure__
                                                   if _cell_ok(c)))))
    scopes.append({k: v for k, v in getattr(target, "__globals__", {}).items()
                   if k in code.co_names})
    if bound is not None:
        scopes.insert(0, {"self": bound})
    for scope in scopes:
        for k, v in scope.items():
            if isinstance(v, Tensor):
                names.setdefault(id(v), k)
                names.setdefault(id(v._storage), k)
            elif hasattr(v, "named_parameters") and hasattr(v, "named_buffers"):  # a Module
                for n, m in v.named_modules():
                    names.setdefault(id(m), f"{k}.{n}" if n else k)
                for n, t in list(v.named_parameters()) + list(v.named_buffers()):
                    names.setdefault(id(t), f"{k}.{n}")
                    names.setdefault(id(t._storage), f"{k}.{n}")
            elif hasattr(v, "state_names"):  # an optimizer or generator naming its own state
                for n, t in v.state_names():
                    names.setdefault(id(t), f"{k}.{n}")
                    names.setdefault(id(t._storage), f"{k}.{n}")
    return names


def _cell_ok(cell):
    try:
        cell.cell_contents
        return True
    except ValueError:
        return False


def trace(fn, args: tuple, kwargs: dict, name: str | None = None, state_names=None) -> Trace:
    """Run ``fn`` on symbolic versions of its tensor arguments and return the Graph and the
    metadata the runtime needs to call it and write state back."""
    import re

    graph = Graph(re.sub(r"[^A-Za-z0-9_.]", "", name or getattr(fn, "__name__", "")) or "fn")
    find_names = state_names or (lambda: _closure_names(fn))
    names = find_names()

    def name_of(t):
        found = names.get(id(t)) or names.get(id(t._storage))
        if found is None:  # state made during the trace (optimizer state on a first step)
            names.update(find_names())
            found = names.get(id(t)) or names.get(id(t._storage))
        return found

    interp = TraceInterpreter(graph, name_of=name_of)
    interp.argument_leaves = {}  # id of each symbolic argument requiring grad -> its name
    interp.arg_roots = {}  # symbolic argument storage -> (id of the caller's root storage, name)
    try:
        params = list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        params = []
    arg_paths = []
    arg_rg: list[bool] = []
    arg_syms: list = []  # (path, symbolic tensor, its input value)

    def to_symbolic(path, x):
        if not isinstance(x, Tensor):
            return x
        if path and isinstance(path[0], int) and path[0] < len(params):
            base = params[path[0]]
            rest = path[1:]
        else:
            base, rest = (f"arg{path[0]}" if path and isinstance(path[0], int) else "arg"), path[1:]
        nm = "_".join([str(base)] + [str(p) for p in rest]) if rest else str(base)
        v = interp.add_input(x._type, name=nm)
        arg_paths.append(path)
        arg_rg.append(bool(x.requires_grad))
        t = Tensor(Storage(v), x._type, x.requires_grad)
        arg_syms.append((path, t, v))
        interp.arg_roots[t._storage] = (_root_key(x), nm)
        if x.requires_grad:
            interp.argument_leaves[id(t)] = nm
        return t

    sym_args = rebuild(list(args), to_symbolic)
    kw_paths = {}
    sym_kwargs = {}
    for k, v in kwargs.items():
        sym_kwargs[k] = rebuild(v, lambda p, x, k=k: to_symbolic(("kw", k) + p, x)
                                if isinstance(x, Tensor) else x)
        kw_paths[k] = True
    TRACE_LOCK.acquire()  # Note [Tracing and threads] in core/dispatch.py
    Mode.stack.append(interp)
    try:
        out = fn(*sym_args, **sym_kwargs)
        out_values: list[Value] = []

        out_rg: list[bool] = []

        def mark(path, x):
            if isinstance(x, Tensor):
                out_values.append(interp.value_of(x))
                out_rg.append(bool(x.requires_grad and Mode.grad_enabled
                                   and x.dtype.is_floating_point))
                return ("T", len(out_values) - 1)
            return x

        out_tree = rebuild(out, mark) if isinstance(out, (tuple, list, dict)) else mark((), out)
        # Arguments updated in place come back as extra outputs; the runtime copies them into
        # the caller's tensors (Note [Functionalization]).
        arg_writebacks = []
        for path, t, v in arg_syms:
            cur = interp.value_of(t)
            if cur is not v:
                _check_unaliased(interp, *interp.arg_roots[t._storage])
                out_values.append(cur)
                out_rg.append(False)
                arg_writebacks.append((path, len(out_values) - 1))
        graph.outputs = out_values
        result = Trace(graph, arg_paths, out_tree, [], arg_writebacks=arg_writebacks)
        _finish_state(interp, result)
        result.grad_reads = list(interp.grad_reads.items())
        result.out_requires_grad = out_rg
        result.arg_requires_grad = arg_rg
        result.backward_called = getattr(interp, "backward_called", False)
        result.captured_requires_grad = [(t, bool(t.requires_grad)) for _, t, _ in result.captured
                                         if t.dtype.is_floating_point]
        # (module, its .training, its name, its structure count at the end of the trace: a
        # forward that reassigns a buffer has done so by then; Note [Module structure guards])
        result.modes = [(m, tr, names.get(id(m)) or type(m).__name__, getattr(m, "_struct", 0))
                        for m, tr in interp.modes.values()]
    finally:
        Mode.stack.pop()
        TRACE_LOCK.release()
    return result


def _finish_state(interp: TraceInterpreter, result: Trace) -> None:
    graph = interp.graph
    by_storage = {st: (t, v) for st, t, v in interp.captured}
    # gradients first: they may capture more state
    grad_updates = []
    for t, new in interp.grad_overlay.items():
        old = t._grad
        if new is None:
            result.grads_to_none.append(t)  # even if None when traced: it may not be at a call
            continue
        nv = interp.value_of(new)
        if old is not None and old._storage in by_storage and by_storage[old._storage][1] is nv:
            continue  # unchanged
        base = interp.names.get(t._storage) or t._name or interp.name_of(t) or "tensor"
        grad_updates.append((t, nv, f"{base}.grad"))
    result.captured = [(st, t, v.state) for st, t, v in interp.captured]
    updates: dict[str, tuple] = {}  # state -> (value, WriteBack), in capture order
    for st, t, v in interp.captured:
        cur = interp.overlay.get(st, v)
        if cur is not v:
            updates[v.state] = (cur, WriteBack(v.state, storage=st))
    used = {v.state for v in graph.inputs if v.state}
    for t, nv, state in grad_updates:
        old = t._grad
        if old is not None and old._storage in by_storage:
            # the existing .grad object takes the new value (its identity is kept, as in torch)
            state = by_storage[old._storage][1].state
            updates[state] = (nv, WriteBack(state, storage=old._storage))
            continue
        k, base = 1, state
        while state in used or state in updates:
            state, k = f"{base}_{k}", k + 1
        updates[state] = (nv, WriteBack(state, grad_of=t))
    for state, (value, wb) in updates.items():
        graph.updates.append((state, value))
        result.writebacks.append(wb)


_ = bind
