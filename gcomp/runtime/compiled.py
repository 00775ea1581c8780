"""``gcomp.compile``: trace on first call, run passes, jit, cache by signature, write state back.

The cache key is the structure of the arguments with each tensor's shape, dtype and
requires_grad, the values of non-tensor arguments, and the grad mode. A hit also checks guards
on the captured state (its types, and which ``.grad`` objects exist). A miss after the first says,
on the ``gcomp.recompiles`` logger, what changed and from what to what.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time
import warnings
import weakref
from dataclasses import dataclass, field
from pathlib import Path

import jax

from ..core.dispatch import Mode, TraceInterpreter, user_error
from ..core.tensor import Storage
from ..ir import types as T
from ..ir.errors import GcompError
from ..ir.graph import Value
from ..lowering.jit import to_function
from ..passes import run_passes
from ..passes.manager import Stage
from . import check as _check
from . import fastpath as _fastpath
from . import log

_recompiles = log.get("recompiles")
_cache_log = log.get("cache")


def _describe(x):
    from ..frontend.tensor import Tensor

    if isinstance(x, Tensor):
        return ("tensor", x._type, bool(x.requires_grad))
    if isinstance(x, (bool, int, float, str, type(None))):
        return ("const", type(x).__name__, x)
    if isinstance(x, (tuple, list)):
        return (type(x).__name__, tuple(_describe(v) for v in x))
    if isinstance(x, dict):
        return ("dict", tuple((k, _describe(v)) for k, v in x.items()))
    return ("object", type(x).__name__, id(x))


def _pretty(d) -> str:
    if d[0] == "tensor":
        return f"{d[1]}" + (" requiring grad" if d[2] else "")
    if d[0] == "const":
        return repr(d[2])
    if d[0] == "object":
        return f"a {d[1]} object at {hex(d[2])}"
    return str(d)


def _diff(old, new, names) -> str:
    """The first difference between two signatures, in the user's words."""
    if old[-1] != new[-1]:
        was, now = (str(d) if d is not None else "off" for d in (old[-1], new[-1]))
        return f"autocast changed from {was} to {now} (gcomp.autocast)"
    if old[-2] != new[-2]:
        return (f"the default dtype changed from {old[-2]} to {new[-2]} "
                "(gcomp.set_default_dtype)")
    if old[-3] != new[-3]:
        return f"grad mode changed from {old[-3]} to {new[-3]}"
    oa, na = old[0], new[0]
    if len(oa) != len(na):
        return f"number of arguments changed from {len(oa)} to {len(na)}"
    for i, (a, b) in enumerate(zip(oa, na)):
        if a != b:
            nm = names[i] if i < len(names) else f"#{i}"
            return f"argument {i} ({nm}) changed from {_pretty(a)} to {_pretty(b)}"
    return f"keyword arguments changed from {old[1]} to {new[1]}"


@dataclass
class Entry:
    """One executable of a compiled function, for one signature."""

    trace: object
    graph: object  # after the passes
    stages: list
    run: object  # the jitted function of arrays
    arg_leaves: list  # the argument paths of the tensors passed in
    guards: list  # (tensor, expected grad object or None)
    diff_outputs: list = field(default_factory=list)
    backward: object = None  # (jitted backward, residual count, saved input indices)
    compile_ms: float = 0.0
    n_res: int = 0  # residual outputs after the user's outputs (Note [What the forward saves])
    spent: object = None  # the tape node of a step that ran backward inside (see _tape_call)
    wanted: list | None = None  # graph inputs whose gradients the tape node gives
    executables: list = field(default_factory=list)  # (name, graph, jitted) as lowered
    early: object = None  # the graph before the LATE passes
    hot: object = None  # its generated call, False if it has none (Note [The fast path])

    def __post_init__(self):
        self.n_out = len(self.graph.outputs)
        self.out_types = [v.type for v in self.graph.outputs]
        self.state_storages = [st for st, _, _ in self.trace.captured]
        tree = self.trace.out_tree
        self.single_output = tree[1] if _is_marker(tree) else None
        paths = self.trace.arg_paths
        self.plain = all(len(p) == 1 and isinstance(p[0], int) for p in paths) and \
            [p[0] for p in paths] == sorted(p[0] for p in paths)
        self.trivial = (self.single_output == 0 and self.n_out == 1 and not self.trace.writebacks
                        and not self.trace.grads_to_none and not self.diff_outputs
                        and not self.trace.arg_writebacks)

    def guards_hold(self) -> bool:
        for st, t, _ in self.trace.captured:
            if getattr(st.data, "shape", None) != t._type.shape:
                return False
        for t, rg in self.trace.captured_requires_grad:
            if t.requires_grad != rg:
                return False
        for m, training, _, struct in self.trace.modes:
            if m.training != training or m._struct != struct:
                return False
        return all(t._grad is g for t, g in self.guards)

    def failed_guard(self) -> str:
        for st, t, state in self.trace.captured:
            if getattr(st.data, "shape", None) != t._type.shape:
                return f"captured tensor {state} changed shape"
        for t, rg in self.trace.captured_requires_grad:
            if t.requires_grad != rg:
                name = next((s for _, c, s in self.trace.captured if c is t), "a captured tensor")
                return f"requires_grad of {name} changed from {rg} to {t.requires_grad}"
        for m, training, name, struct in self.trace.modes:
            if m.training != training:
                old, new = ("train()", "eval()") if training else ("eval()", "train()")
                return f"module {name} ({type(m).__name__}) switched from {old} to {new}"
            if m._struct != struct:
                return (f"a parameter, buffer or submodule of module {name} "
                        f"({type(m).__name__}) was added, replaced or removed")
        for t, g in self.guards:
            if t._grad is not g:
                was = "None" if g is None else "a tensor"
                now = "None" if t._grad is None else "a tensor" if g is None else "another tensor"
                name = t._name or next((s for _, c, s in self.trace.captured if c is t), None)
                return f"the .grad of {name or 'a captured tensor'} changed from {was} to {now}"
        return "guards failed"


class CompiledFunction:
    """A function compiled by gcomp.compile. Call it like the function it wraps."""

    def __init__(self, fn, *, passes="default", options=None, name=None, cache_limit=None,
                 state_names=None, higher_order: str = "error", mesh=None, shardings=None):
        functools.update_wrapper(self, fn, updated=())
        self.fn = fn
        self.mesh = mesh  # Note [Data parallel] in gcomp/distributed.py
        self.shardings = shardings or {}  # normalized by distributed.check_options
        self._state_names = state_names  # () -> {id(tensor or module): name}, else closures
        self.passes = passes
        self.options = dict(options or {})  # pass options (Note [Pass options])
        self._check = _check.enabled()  # GCOMP_CHECK (Note [Repros] in runtime/check.py)
        # a backward under create_graph: "error", or "recompute" the function eagerly
        self.higher_order = higher_order
        self.name = name or getattr(fn, "__name__", "fn")
        self.cache_limit = cache_limit or int(os.environ.get("GCOMP_CACHE_LIMIT", 8))
        self._cache: dict = {}
        self._fast: dict = {}  # a cheaper key for plain tensor/scalar arguments -> entry
        self._last_key = None
        self._hot = None  # the generated call of the last executable (Note [The fast path])
        self._hits = self._misses = 0
        self._warned = False
        self._reasons: list[str] = []
        LIVE.add(self)  # gcomp.compiler.reset() clears every live one
        try:
            import inspect

            self._params = list(inspect.signature(fn).parameters)
        except (TypeError, ValueError):
            self._params = []

    def __get__(self, obj, objtype=None):  # compiled methods
        if obj is None:
            return self
        return functools.partial(self, obj)

    # -- the call -------------------------------------------------------------------------------
    def _key(self, args, kwargs):
        return (tuple(_describe(a) for a in args),
                tuple((k, _describe(v)) for k, v in sorted(kwargs.items())), Mode.grad_enabled,
                T.DEFAULT_FLOAT, Mode.autocast)

    def __call__(self, *args, **kwargs):
        if len(Mode.stack) > 1 and isinstance(Mode.stack[-1], TraceInterpreter):
            return self.fn(*args, **kwargs)  # inside another trace: inline
        if self._check:
            return self._checked_call(args, kwargs)
        try:  # costs nothing unless raised: inputs on different devices (_device_error)
            if not kwargs:
                hot = self._hot  # Note [The fast path] in runtime/fastpath.py
                if hot is not None:
                    out = hot(args)
                    if out is not _fastpath.MISS:
                        return out
                entry = self._fast.get(_fast_key(args))  # plain tensor and scalar arguments
                if entry is not None and entry.plain and entry.guards_hold():
                    out = self._fast_run(entry, args)
                    self._make_hot(entry, args)
                    return out
            entry = self._entry(args, kwargs)
            out = self._run(entry, args, kwargs)
        except ValueError as e:
            err = self._device_error(args, kwargs, e)
            if err is None:
                raise
            raise err from None
        if not kwargs:
            self._make_hot(entry, args)
        return out

    def _device_error(self, args, kwargs, e):
        """jax's refusal of committed inputs on different devices, as a GcompError naming each
        input's device (Note [Devices and committed arrays] in frontend/device.py); else None."""
        from ..distributed import describe_arg
        from ..frontend.device import device_error, is_device_mismatch

        if not is_device_mismatch(e):
            return None
        entry = self._entry(args, kwargs)
        named = [(describe_arg(p, self._params), _at(args, kwargs, p)) for p in entry.arg_leaves]
        named += [(f"state {name}", t) for _, t, name in entry.trace.captured]
        eager = self.higher_order == "recompute"  # a composite run eagerly (F.linear, ...)
        return device_error(self.name.lstrip("_") if eager else f"gcomp.compile({self.name})",
                            named)

    def _make_hot(self, entry, args):
        hot = entry.hot
        if hot is None:
            hot = entry.hot = _fastpath.make(self, entry, args) or False
        self._hot = hot or None

    def _fast_run(self, entry, args):
        """A cache hit on plain tensor and scalar arguments, without the generated call."""
        self._hits += 1
        arrays = [a._storage.data for a in args if type(a) not in _SCALARS]
        if any(type(d) is Value for d in arrays):
            return self._run(entry, args, {})  # raises a clear error
        arrays += [st.data for st in entry.state_storages]
        outs = entry.run.run(arrays)
        if entry.trivial:
            return _Tensor()(Storage(outs[0]), entry.out_types[0])
        return self._finish(entry, args, {}, arrays, outs)

    def _entry(self, args, kwargs) -> Entry:
        fast = None if kwargs else _fast_key(args)
        if fast is not None:
            entry = self._fast.get(fast)
            if entry is not None and entry.guards_hold():
                self._hits += 1
                return entry
        entry = self._slow_entry(args, kwargs)
        if fast is not None:
            self._fast[fast] = entry
        return entry

    def _slow_entry(self, args, kwargs) -> Entry:
        key = self._key(args, kwargs)
        entries = self._cache.get(key, [])
        for entry in entries:
            if entry.guards_hold():
                self._hits += 1
                return entry
        if entries:
            reason = entries[-1].failed_guard()
        elif self._last_key is not None and self._cache:
            prev = min(self._cache, key=lambda k: (k[-2:] != key[-2:]) + sum(
                a != b for a, b in zip(k[0], key[0])))
            reason = _diff(prev, key, self._params)
        else:
            reason = None
        self._misses += 1
        if reason is not None:
            self._reasons.append(reason)
            _recompiles.info("recompiling %s: %s", self.name, reason)
            if self._size() >= self.cache_limit and not self._warned:
                self._warned = True
                warnings.warn(
                    f"gcomp.compile({self.name}) has compiled {self._size() + 1} executables "
                    f"(limit {self.cache_limit}); recent reasons: {'; '.join(self._reasons[-3:])}. "
                    "Pad inputs to a few fixed shapes, or pass changing numbers as tensors.",
                    stacklevel=4)  # the user's call: __call__/ir/stages -> _entry -> here
        entry = self._build(args, kwargs)
        self._cache.setdefault(key, []).append(entry)
        self._last_key = key
        return entry

    def _size(self) -> int:
        return sum(len(v) for v in self._cache.values())

    def _build(self, args, kwargs) -> Entry:
        from ..frontend.tracing import trace

        t0 = time.perf_counter()
        tr = trace(self.fn, args, kwargs, name=self.name, state_names=self._state_names)
        traced_ms = (time.perf_counter() - t0) * 1e3
        stages = [Stage("traced", traced_ms, str(tr.graph), len(tr.graph.nodes))]
        try:
            return self._compile(tr, stages, t0)
        except Exception as e:
            if not self._check:
                raise
            arrays = [_at(args, kwargs, p)._storage.data for p in tr.arg_paths]
            arrays += [st.data for st, _, _ in tr.captured]
            raise _check.failure(self.name, tr.graph, arrays, e) from e

    def _compile(self, tr, stages, t0) -> Entry:
        from ..passes.manager import LATE, Fuel, check_options, resolve
        from .cache import from_env

        from_env()  # GCOMP_CACHE_DIR set since import (Note [Persistent cache] in cache.py)
        options = check_options(self.options)
        names = resolve(self.passes, options)
        fuel = Fuel.from_env()  # one budget for the whole pipeline (Note [Pass fuel])
        early = run_passes(tr.graph.copy(), [n for n in names if n not in LATE], stages=stages,
                           options=options, fuel=fuel, exact=True)
        late = [n for n in names if n in LATE]
        graph = run_passes(early.copy(), late, stages=stages, options=options, fuel=fuel,
                           exact=True) if late else early
        diff = [i for i, rg in enumerate(tr.out_requires_grad) if rg]
        entry = Entry(tr, graph, stages, None, tr.arg_paths, list(tr.grad_reads), diff)
        entry.early = early  # before the passes that make regions: what _split cuts
        donate = _donated(tr)
        if diff and not tr.backward_called and _diff_inputs(entry):
            t1 = time.perf_counter()
            part = _split(entry, self.passes, self.options)
            ms = (time.perf_counter() - t1) * 1e3
            # the backward executable, then the forward one (what runs, so the last stage is ir())
            stages.append(Stage("backward", ms, str(part.backward), len(part.backward.nodes)))
            stages.append(Stage("forward", 0.0, str(part.forward), len(part.forward.nodes)))
            donate = tuple(i for i in donate if i not in part.saved_inputs)
            entry.run = _Executable(to_function(part.forward), donate,
                                    self._placement(part.forward, tr))
            entry.n_res = part.n_residuals
            backward = jax.jit(to_function(part.backward))
            entry.backward = (backward, part.n_residuals, part.saved_inputs)
            entry.executables = [(part.forward.name, part.forward, entry.run.jitted),
                                 (part.backward.name, part.backward, backward)]
        else:
            entry.run = _Executable(to_function(graph), donate, self._placement(graph, tr))
            entry.executables = [(graph.name, graph, entry.run.jitted)]
        entry.compile_ms = (time.perf_counter() - t0) * 1e3
        _dump(self.name, entry, self._size())
        return entry

    def _placement(self, graph, tr):
        """How an executable's inputs and outputs lie on the mesh (None without one)."""
        if self.mesh is None:
            return None
        from ..distributed import placement

        return placement(self.mesh, self.shardings, graph, tr, self._params, self.name)

    def _checked_call(self, args, kwargs):
        """A call under GCOMP_CHECK (Note [Repros] in runtime/check.py)."""
        import numpy as np

        entry = self._entry(args, kwargs)
        arrays = []
        for path in entry.arg_leaves:
            x = _at(args, kwargs, path)
            x._fresh()
            if isinstance(x._storage.data, Value):
                x._array("a compiled call")  # raises the traced-value error
            arrays.append(x._storage.data)
        arrays += [st.data for st in entry.state_storages]
        saved = [np.asarray(a) for a in arrays]
        try:
            outs = entry.run.undonated(*arrays)
        except Exception as e:
            raise _check.failure(self.name, entry.trace.graph, saved, e) from e
        _check.compare(self.name, entry.trace.graph, saved, outs, entry.n_out, entry.n_res,
                       loose=bool(self.options.get("precision")))
        return self._finish(entry, args, kwargs, arrays, outs)

    def _run(self, entry: Entry, args, kwargs):
        arrays = []
        for path in entry.arg_leaves:
            x = _at(args, kwargs, path) if path != (len(arrays),) else args[len(arrays)]
            x._fresh()
            d = x._storage.data
            if isinstance(d, Value):
                x._array("a compiled call")  # raises the traced-value error
            arrays.append(d)
        arrays += [st.data for st in entry.state_storages]
        return self._finish(entry, args, kwargs, arrays, entry.run.run(arrays))

    def _finish(self, entry, args, kwargs, arrays, outs):
        """Write state back and wrap the results."""
        n_out = entry.n_out
        cls = _Tensor()
        for path, i in entry.trace.arg_writebacks:
            target = _at(args, kwargs, path)
            from ..frontend.autograd import no_grad

            with no_grad():  # an eager copy_, so views of the argument write through
                target.copy_(cls(Storage(outs[i]), entry.out_types[i]))
        for wb, arr in zip(entry.trace.writebacks, outs[n_out + entry.n_res:]):
            if wb.storage is not None:
                wb.storage.data = arr
                wb.storage.version += 1
            else:
                t = wb.grad_of
                if t._grad is not None:
                    t._grad._storage.data = arr
                    t._grad._storage.version += 1
                else:
                    t._grad = _Tensor()(Storage(arr), t._type)
        for t in entry.trace.grads_to_none:
            t._grad = None
        tensors = [cls(Storage(r), ty) for r, ty in zip(outs[:n_out], entry.out_types)]
        if entry.diff_outputs and Mode.grad_enabled:
            _tape_call(entry, args, kwargs, arrays, outs[n_out:n_out + entry.n_res], tensors,
                       self.fn if self.higher_order == "recompute" else None)
        tree = entry.trace.out_tree
        if entry.single_output is not None:
            return tensors[entry.single_output]
        return _fill(tree, tensors)

    # -- inspection ---------------------------------------------------------------------------
    def ir(self, *args, **kwargs) -> str:
        """The IR text of the executable that runs for these arguments (compiling if needed):
        the last stage. For a call that joins eager autograd, that is the forward half of its
        partition, whose extra outputs are what it saves for the backward (the stage before)."""
        return self._entry(args, kwargs).stages[-1].graph

    def stages(self, *args, **kwargs) -> list[Stage]:
        """Each stage's name, time and graph, from the traced graph to the final one."""
        return list(self._entry(args, kwargs).stages)

    def lower(self, *args, **kwargs):
        """Trace and run the passes for these arguments (tensors or ``gcomp.Spec``s) without
        running anything: a :class:`gcomp.Lowered` (``.ir``, ``.as_text()``, ``.compile()``;
        Note [Artifacts] in runtime/aot.py)."""
        from .aot import lower

        return lower(self, args, kwargs)

    def kernels(self, *args, **kwargs):
        """The XLA kernels of the executables these arguments run (compiling if needed), each
        with the IR nodes, gcomp fusion groups and source lines it came from (Note [Kernels]
        in runtime/kernels.py): which line of the model a slow kernel belongs to. A compiled
        module called with inputs that need grad has two executables, forward and backward."""
        from .kernels import Kernels, kernels

        out = Kernels()
        for name, graph, jitted in self._entry(args, kwargs).executables:
            out += kernels(_lowered(jitted, graph).compile().as_text(), graph, name)
        return out

    def show(self, *args, **kwargs):
        """Draw the graph that ``ir()`` prints for these arguments with graphviz (Note [Drawing a
        graph] in runtime/show.py): a Drawing, which a notebook shows as SVG, with ``save(path)``
        and ``source`` (the dot text); without graphviz it holds the text and how to install it.
        Another stage: ``gcomp.runtime.show.draw(stage.graph)``."""
        from .show import draw

        return draw(self.ir(*args, **kwargs))

    def cache_info(self):
        return CacheInfo(self._hits, self._misses, self._size())

    def cache_clear(self):
        self._cache.clear()
        self._fast.clear()
        self._hot = None
        self._hits = self._misses = 0
        self._last_key = None


# ---------------------------------------------------------------------------------------------
# Note [Donation]
# The input buffer of every state tensor that a step updates is donated to XLA, which may then
# write the new value into the same memory: a training step holds one copy of the parameters and
# optimizer state, not two. The runtime then writes the new array into the Storage (the donated
# one is deleted; jax reports it so). All tensors that share the Storage (detach(), views,
# state_dict() entries) see the new value, as in PyTorch. An array that something else also holds
# (the same array passed twice, a tape snapshot saved for a pending backward, a tensor that shares
# the array but not the Storage) must not be donated: such a call runs a second, non-donating
# executable (compiled on first need), so nobody ever reads a deleted buffer.

def _donated(tr) -> tuple[int, ...]:
    """Graph input indices of the state inputs that the step replaces."""
    updated = {id(wb.storage) for wb in tr.writebacks if wb.storage is not None}
    n_args = len(tr.arg_paths)
    return tuple(n_args + j for j, (st, _, _) in enumerate(tr.captured) if id(st) in updated)


class _Executable:
    """The jitted function of an entry, donating the updated state's buffers; with a placement,
    sharded over a mesh (Note [Data parallel] in gcomp/distributed.py)."""

    def __init__(self, fn, donate, placement=None):
        self.fn = fn
        self.donate = donate
        self.placement = placement
        self.jitted = self._jit(donate)
        self._plain = None

    def _jit(self, donate=()):
        if self.placement is not None:
            return self.placement.jit(self.fn, donate)
        return jax.jit(self.fn, donate_argnums=donate) if donate else jax.jit(self.fn)

    def run(self, arrays: list):
        """Run on the list ``arrays``, which the caller builds and holds only there."""
        if self.donate:
            # Donate only buffers that nothing else holds: the Storage, the list and
            # getrefcount's argument are 3 references. One more (a tape snapshot, a tensor from
            # get_state(), the same array passed twice) means someone will read the old value:
            # run the non-donating executable instead. (The count is taken here, on the list,
            # because how many references a call with *args adds depends on CPython's calling
            # convention: a Python __call__ with five or more arguments copies them into a
            # tuple of its own.)
            refcount = sys.getrefcount
            for i in self.donate:
                if refcount(arrays[i]) > 3:
                    if self._plain is None:
                        self._plain = self._jit()
                    return self._plain(*arrays)
        return self.jitted(*arrays)

    def undonated(self, *arrays):
        if self._plain is None:
            self._plain = self._jit()
        return self._plain(*arrays)

    def lower(self, *args):
        return self.jitted.lower(*args)


@dataclass
class CacheInfo:
    hits: int
    misses: int
    size: int


_SCALARS = (int, float, bool, str, type(None))


def _fast_key(args):
    parts = []
    tensor = Mode.tensor_class
    for a in args:
        t = type(a)
        if t is tensor or (t not in _SCALARS and isinstance(a, tensor)):  # Parameters too
            if a._base is not None:
                a._fresh()
            parts.append(a._type)
            parts.append(a.requires_grad)
        elif t in _SCALARS:
            parts.append(t)
            parts.append(a)
        else:
            return None
    parts.append(Mode.grad_enabled)
    parts.append(T.DEFAULT_FLOAT)
    parts.append(Mode.autocast)
    return tuple(parts)


def _Tensor():  # noqa: N802 - the front end's Tensor class, without importing the front end
    return Mode.tensor_class


def _is_marker(x):
    return isinstance(x, tuple) and len(x) == 2 and x[0] == "T" and isinstance(x[1], int)


def _fill(tree, tensors):
    """The output structure with each ("T", i) marker replaced by the i-th result tensor."""
    if _is_marker(tree):
        return tensors[tree[1]]
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):
        return type(tree)(*[_fill(x, tensors) for x in tree])
    if isinstance(tree, (tuple, list)):
        return type(tree)(_fill(x, tensors) for x in tree)
    if isinstance(tree, dict):
        return {k: _fill(v, tensors) for k, v in tree.items()}
    return tree


def _at(args, kwargs, path):
    if path and path[0] == "kw":
        obj, path = kwargs[path[1]], path[2:]
    else:
        obj = args
    for p in path:
        obj = obj[p]
    return obj


def _lowered(jitted, graph):
    """``jitted`` lowered for ``graph``'s input types: nothing is allocated or run."""
    from ..lowering import to_jax_dtype

    return jitted.lower(*[jax.ShapeDtypeStruct(v.type.shape, to_jax_dtype(v.type.dtype))
                          for v in graph.inputs])


def _dump(name: str, entry: Entry, index: int) -> None:
    """GCOMP_DUMP_DIR: each stage's graph, numbered in pipeline order, then each executable's
    StableHLO and optimized HLO, and summary.json (time and node counts per stage)."""
    root = os.environ.get("GCOMP_DUMP_DIR")
    if not root:
        return
    d = Path(root) / f"{name}_{index}"
    d.mkdir(parents=True, exist_ok=True)
    summary = []
    before = None
    for i, st in enumerate(entry.stages):
        (d / f"{i:02d}_{st.name}.gir").write_text(st.graph)
        summary.append({"stage": st.name, "ms": round(st.ms, 3), "nodes_before": before,
                        "nodes": st.nodes})
        before = st.nodes
    files = []
    k = len(entry.stages)
    for exe, graph, jitted in entry.executables:
        lowered = _lowered(jitted, graph)
        for suffix, text in (("stablehlo.mlir", lowered.as_text()),
                             ("optimized_hlo.txt", lowered.compile().as_text())):
            path = d / f"{k:02d}_{exe}.{suffix}"
            path.write_text(text)
            files.append(path.name)
            k += 1
    (d / "summary.json").write_text(json.dumps({"function": name, "stages": summary,
                                                "executables": files,
                                                "compile_ms": round(entry.compile_ms, 3)},
                                               indent=2))


LIVE: weakref.WeakSet = weakref.WeakSet()  # every CompiledFunction (compiler.reset)

# torch.compile's arguments that gcomp takes for compatibility: gcomp always compiles the whole
# function (fullgraph), specialized to its input shapes (dynamic=False), through XLA (which does
# its own autotuning, so every mode compiles the same program)
_MODES = (None, "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
_BACKENDS = (None, "inductor", "gcomp", "xla", "openxla")


def compile(fn=None, *, passes="default", options=None, precision=None, name=None,  # noqa: A001
            cache_limit=None, mesh=None, shardings=None, fullgraph=False, dynamic=None,
            mode=None, backend=None, disable=False):
    """Compile ``fn`` (also usable as ``@gcomp.compile`` or ``@gcomp.compile(passes=...)``).

    torch.compile's ``fullgraph``, ``mode`` and ``backend`` ("inductor" and the like) are
    accepted: gcomp always compiles the whole function through XLA, so each mode gives the same
    program; ``dynamic=True`` is refused (executables are specialized to input shapes, one per
    shape, see cache_limit); ``disable=True`` returns ``fn`` itself, as in torch.

    ``passes``: "default", "none" (only what lowering needs) or a list of pass names.
    ``options``: pass options by name (``gcomp.passes.OPTIONS`` lists them, Note [Pass options]),
    for example ``{"remat_budget": 2**20}``; ``precision="bf16"`` is ``options={"precision":
    "bf16"}``.
    ``mesh``: a ``gcomp.distributed.Mesh``: tensor arguments are split on their first dimension
    over its first axis, state is replicated; ``shardings`` overrides that per argument or state
    path, e.g. ``{"0.weight": (None, "model")}`` (Note [Data parallel] in gcomp/distributed.py).

    A module gives a :class:`CompiledModule`: calling it runs the compiled forward, which takes
    part in eager autograd; everything else (parameters, state_dict, train/eval) is the
    module's own."""
    from ..passes.manager import check_options, resolve

    if mode not in _MODES:
        raise user_error(GcompError, f"gcomp.compile: unknown mode {mode!r}; expected one of "
                         f"{[m for m in _MODES if m]}")
    if backend not in _BACKENDS and not callable(backend):
        raise user_error(GcompError, f"gcomp.compile: backend {backend!r} is not gcomp's; "
                         "gcomp compiles through XLA (leave backend unset)")
    if callable(backend):
        raise user_error(GcompError, "gcomp.compile: a custom backend function is not "
                         "supported; gcomp compiles through XLA")
    if dynamic:
        raise user_error(GcompError, "gcomp.compile(dynamic=True): gcomp specializes each "
                         "executable to its input shapes (a new shape compiles a new one); "
                         "leave dynamic unset, or pad inputs to a few fixed shapes")
    if disable:
        return fn if fn is not None else (lambda f: f)
    options = dict(options or {})
    if precision is not None:
        options["precision"] = precision
    try:  # a typo in a pass name or option is the user's line, now, not at the first call
        resolve(passes, check_options(options))
    except GcompError as e:
        raise user_error(GcompError, str(e)) from None
    kw = dict(passes=passes, options=options, name=name, cache_limit=cache_limit)
    if mesh is not None or shardings:
        from ..distributed import check_options as check_placement

        kw.update(mesh=mesh, shardings=check_placement(mesh, shardings))
    if fn is None:
        return lambda f: compile(f, **kw)
    if not callable(fn):
        raise user_error(GcompError, f"gcomp.compile expects a function, got {type(fn).__name__}")
    if hasattr(fn, "named_parameters") and hasattr(fn, "named_buffers") and hasattr(fn, "forward"):
        from ..nn.modules.compiled import CompiledModule

        return CompiledModule(fn, **kw)
    return CompiledFunction(fn, **kw)


def composite(fn, name: str | None = None):
    """``fn``, a composite of gcomp ops (a loss, a layer's arithmetic), run as one compiled call
    when called eagerly: one XLA executable for the forward and, when something needs its
    gradient, one for the backward (Note [Compiled calls inside eager autograd]), instead of a
    jitted call per op each way. Under a trace it is inlined like any other code. A backward
    with create_graph=True recomputes ``fn`` op by op on the tape, so higher derivatives work.
    Call it with positional arguments only (tensors, numbers, strings, None): the cheap path.
    """
    compiled = CompiledFunction(fn, name=name or fn.__name__, cache_limit=1 << 30,
                                higher_order="recompute")

    @functools.wraps(fn)
    def call(*args):
        if len(Mode.stack) > 1:  # tracing, or another interpreter: the ops themselves
            return fn(*args)
        return compiled(*args)

    call.compiled = compiled
    return call


class CompiledModuleBase:
    """``gcomp.compile(module)``: like torch.compile's OptimizedModule, but every attribute other
    than the call (parameters(), state_dict() with the module's own keys, train()/eval(), to(),
    submodules) is the original module's. State in the IR is named by the module's own paths
    (``0.weight``), so the IR reads like its state_dict.

    The class users get, ``gcomp.CompiledModule``, is this and ``gcomp.nn.Module``
    (gcomp/nn/modules/compiled.py): a compiled module is a Module, so it can be a submodule
    (``self.enc = gcomp.compile(enc)``, an item of ``nn.Sequential``) and its parent's
    parameters(), state_dict() and train() reach the original's, under the submodule's name
    (``enc.weight``: the same keys as without compiling)."""

    def __init__(self, module, **options):
        object.__setattr__(self, "_orig_mod", module)

        def forward(*args, **kwargs):
            return module(*args, **kwargs)

        try:  # name the IR's inputs after the module's forward parameters
            import inspect

            forward.__signature__ = inspect.signature(module.forward)
        except (TypeError, ValueError):
            pass

        name = options.pop("name", None) or type(module).__name__
        object.__setattr__(self, "_compiled", CompiledFunction(
            forward, name=name, state_names=lambda: _module_names(module), **options))

    def __call__(self, *args, **kwargs):
        return self._compiled(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._orig_mod, name)

    def __setattr__(self, name, value):
        setattr(self._orig_mod, name, value)

    def train(self, mode: bool = True):
        self._orig_mod.train(mode)
        return self

    def eval(self):
        return self.train(False)

    def to(self, *args, **kwargs):
        self._orig_mod.to(*args, **kwargs)
        return self

    # inspection and cache control are the compiled function's
    def ir(self, *args, **kwargs):
        return self._compiled.ir(*args, **kwargs)

    def stages(self, *args, **kwargs):
        return self._compiled.stages(*args, **kwargs)

    def lower(self, *args, **kwargs):
        return self._compiled.lower(*args, **kwargs)

    def kernels(self, *args, **kwargs):
        return self._compiled.kernels(*args, **kwargs)

    def show(self, *args, **kwargs):
        return self._compiled.show(*args, **kwargs)

    def cache_info(self):
        return self._compiled.cache_info()

    def cache_clear(self):
        self._compiled.cache_clear()

    def forward(self, *args, **kwargs):
        return self._compiled(*args, **kwargs)

    # the tree is the original's: a parent reaches its modules, not the wrapper
    def named_modules(self, *args, **kwargs):
        return self._orig_mod.named_modules(*args, **kwargs)

    def named_children(self):
        return self._orig_mod.named_children()

    def apply(self, fn):
        self._orig_mod.apply(fn)
        return self

    def __dir__(self):
        return dir(self._orig_mod)

    def __repr__(self):
        return f"CompiledModule({self._orig_mod!r})"


def _module_names(module) -> dict[int, str]:
    names: dict[int, str] = {}
    for n, m in module.named_modules():
        names.setdefault(id(m), n or type(module).__name__)
    for n, t in list(module.named_parameters()) + list(module.named_buffers()):
        names.setdefault(id(t), n)
        names.setdefault(id(t._storage), n)
    return names


# ---------------------------------------------------------------------------------------------
# Note [Compiled calls inside eager autograd]
# When a compiled function is called with inputs (arguments or captured parameters) that require
# grad, and grad mode is on, its outputs that required grad during tracing get one tape node.
# Its VJP runs a second executable: the forward graph with a grad request for those outputs,
# expanded by the autodiff pass, taking the forward call's input arrays and the cotangents. So
# `loss = crit(cmodel(x), y); loss.backward()` gives eager gradients, and an eager optimizer works.
# (The backward recomputes the forward; choosing what to save instead is rematerialization's job.)

def _diff_inputs(entry):
    """(graph input index, tensor getter) for each input whose gradient is wanted."""
    out = []
    n_args = len(entry.arg_leaves)
    for i, rg in enumerate(entry.trace.arg_requires_grad):
        if rg:
            out.append(i)
    for j, (_, t, _) in enumerate(entry.trace.captured):
        if t.requires_grad and t._grad_fn is None and t.dtype.is_floating_point:
            out.append(n_args + j)
    return out


def _split(entry, passes, options):
    """The joint graph of the forward and a grad request for its differentiable outputs,
    expanded and cut in two (Note [What the forward saves for backward] in passes/partition.py)."""
    from ..passes.manager import LATE, check_options, resolve
    from ..passes.partition import partition

    g = entry.early.copy()
    g.name = g.name + "_joint"
    wanted = _diff_inputs(entry)
    outs = [g.outputs[i] for i in entry.diff_outputs]
    wrt = [g.inputs[i] for i in wanted]
    cts = [g.add_input(v.type, name=f"ct{k}") for k, v in enumerate(outs)]
    node = g.add_node("grad", outs + cts + wrt, {"outputs": len(outs)}, loc=None)
    n_outputs = len(g.outputs)
    g.outputs = g.outputs + list(node.outputs)
    options = check_options(options)
    names = resolve(passes, options)
    late = [n for n in names if n in LATE]  # they make regions the partition must not cut
    # the partition's minimum cut chooses what to recompute here, not the remat pass
    g = run_passes(g, [n for n in names if n not in LATE and n != "remat"], options=options,
                   exact=True)
    part = partition(g, n_outputs, cts, options["remat_budget"])
    if late:
        part.forward = run_passes(part.forward, late, options=options, exact=True)
        part.backward = run_passes(part.backward, late, options=options, exact=True)
    part.forward.name = entry.graph.name
    part.backward.name = entry.graph.name + "_backward"
    return part


def _flat_tensors(tree) -> list:
    if isinstance(tree, (tuple, list)):
        return [t for x in tree for t in _flat_tensors(x)]
    if isinstance(tree, dict):
        return [t for x in tree.values() for t in _flat_tensors(x)]
    return [tree] if isinstance(tree, _Tensor()) else []


def _tape_call(entry, args, kwargs, arrays, residuals, tensors, fn=None):
    from ..core import autograd as core_ag

    if entry.wanted is None:
        entry.wanted = _diff_inputs(entry)
    wanted = entry.wanted
    if not wanted:
        return
    n_args = len(entry.arg_leaves)
    if entry.trace.backward_called:
        # A training step: its graph was backpropagated inside the call, so (as in torch) its
        # outputs keep a grad_fn but a second backward is an error. Nothing is saved for it:
        # holding the returned loss must not keep the old parameters alive. The node only
        # raises, so one per executable serves every call.
        node = entry.spent
        if node is None:
            def spent(cts, inputs, outputs, **_):
                raise GcompError(f"backward through the result of {entry.graph.name}, whose "
                                 "graph was already backpropagated inside the compiled call; "
                                 "detach the result, or return the loss without calling "
                                 "backward() inside")

            state = [entry.trace.captured[i - n_args][1] for i in wanted if i >= n_args]
            node = entry.spent = core_ag.TapeNode(
                f"compiled:{entry.graph.name}", {}, [s._snapshot(data=_NO_DATA) for s in state],
                None, [s._edge() for s in state], None, custom=spent)
            node.output_keys = [(node, k) for k in range(len(entry.diff_outputs))]
            node.outputs = [tensors[i]._snapshot(data=_NO_DATA) for i in entry.diff_outputs]
        for k, i in enumerate(entry.diff_outputs):
            t = tensors[i]
            t.requires_grad, t._grad_fn, t._out_index = True, node, k
        return
    srcs = [_at(args, kwargs, entry.arg_leaves[i]) if i < n_args
            else entry.trace.captured[i - n_args][1] for i in wanted]
    recompute = None
    if fn is not None:
        def recompute(cts):
            """create_graph=True: the function again, op by op on the tape, differentiated."""
            from ..frontend.autograd import grad

            outs = _flat_tensors(fn(*args, **kwargs))
            diff = [outs[i] for i in entry.diff_outputs]
            got = grad(diff, srcs, grad_outputs=[c if c is not None else o.new_zeros(o.shape)
                                                 for c, o in zip(cts, diff)],
                       create_graph=True, allow_unused=True)
            return [g if g is not None else s.new_zeros(s.shape) for g, s in zip(got, srcs)]
    run, _, saved_inputs = entry.backward
    saved = [list(residuals) + [arrays[i] for i in saved_inputs]]  # emptied when freed

    def vjp(cts, inputs, outputs, **_):
        if Mode.grad_enabled:
            if recompute is not None:
                return recompute(cts)
            raise GcompError("differentiating the gradient of a compiled function "
                             "(create_graph=True through gcomp.compile) is not supported yet")
        if saved[0] is None:
            from ..core.dispatch import FREED_MESSAGE

            raise GcompError(FREED_MESSAGE)
        ct_arrays = [c._storage.data if c is not None else jax.numpy.zeros(o._type.shape,
                     _np_dtype(o._type.dtype)) for c, o in zip(cts, outputs)]
        grads = run(*saved[0], *ct_arrays)
        cls = _Tensor()
        return [cls(Storage(gr), s._type) for gr, s in zip(grads, inputs)]

    def release():  # Note [Freeing the graph] in core/autograd.py
        saved[0] = None

    node = core_ag.TapeNode(f"compiled:{entry.graph.name}", {}, [s._snapshot() for s in srcs],
                            None, [s._edge() for s in srcs], None, custom=vjp, release=release)
    _attach(node, [tensors[i] for i in entry.diff_outputs])


_NO_DATA = ()  # the snapshot data of a tape node that never runs its VJP


def _attach(node, diff):
    node.output_keys = [(node, k) for k in range(len(diff))]
    for k, t in enumerate(diff):
        t.requires_grad, t._grad_fn, t._out_index = True, node, k
    node.outputs = [t._snapshot() for t in diff]


def _np_dtype(dtype):
    from ..lowering import to_jax_dtype

    return to_jax_dtype(dtype)
