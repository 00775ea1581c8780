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
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import jax

from ..core.dispatch import Mode, TraceInterpreter, user_error
from ..core.tensor import Storage
from ..ir.errors import GcompError
from ..lowering.jit import to_function
from ..passes import run_passes
from ..passes.manager import Stage
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
        return f"grad mode changed from {old[-1]} to {new[-1]}"
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
    backward: object = None  # built on first use
    compile_ms: float = 0.0

    def guards_hold(self) -> bool:
        for st, t, _ in self.trace.captured:
            if getattr(st.data, "shape", None) != t._type.shape:
                return False
        return all(t._grad is g for t, g in self.guards)

    def failed_guard(self) -> str:
        for st, t, state in self.trace.captured:
            if getattr(st.data, "shape", None) != t._type.shape:
                return f"captured tensor {state} changed shape"
        for t, g in self.guards:
            if t._grad is not g:
                was = "None" if g is None else "a tensor"
                now = "None" if t._grad is None else "another tensor"
                return f"the .grad of {t._name or 'a captured tensor'} changed from {was} to {now}"
        return "guards failed"


class CompiledFunction:
    """A function compiled by gcomp.compile. Call it like the function it wraps."""

    def __init__(self, fn, *, passes="default", name=None, cache_limit=None):
        functools.update_wrapper(self, fn, updated=())
        self.fn = fn
        self.passes = passes
        self.name = name or getattr(fn, "__name__", "fn")
        self.cache_limit = cache_limit or int(os.environ.get("GCOMP_CACHE_LIMIT", 8))
        self._cache: dict = {}
        self._last_key = None
        self._hits = self._misses = 0
        self._warned = False
        self._reasons: list[str] = []
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
                tuple((k, _describe(v)) for k, v in sorted(kwargs.items())), Mode.grad_enabled)

    def __call__(self, *args, **kwargs):
        if isinstance(Mode.stack[-1], TraceInterpreter):
            return self.fn(*args, **kwargs)  # inside another trace: inline
        entry = self._entry(args, kwargs)
        return self._run(entry, args, kwargs)

    def _entry(self, args, kwargs) -> Entry:
        key = self._key(args, kwargs)
        entries = self._cache.get(key, [])
        for entry in entries:
            if entry.guards_hold():
                self._hits += 1
                return entry
        if entries:
            reason = entries[-1].failed_guard()
        elif self._last_key is not None and self._cache:
            prev = min(self._cache, key=lambda k: (k[-1] != key[-1]) + sum(
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
                    stacklevel=3)
        entry = self._build(args, kwargs)
        self._cache.setdefault(key, []).append(entry)
        self._last_key = key
        return entry

    def _size(self) -> int:
        return sum(len(v) for v in self._cache.values())

    def _build(self, args, kwargs) -> Entry:
        from ..frontend.tracing import trace

        t0 = time.perf_counter()
        tr = trace(self.fn, args, kwargs, name=self.name)
        traced_ms = (time.perf_counter() - t0) * 1e3
        stages = [Stage("traced", traced_ms, str(tr.graph), len(tr.graph.nodes))]
        graph = run_passes(tr.graph.copy(), self.passes, stages=stages)
        fn = jax.jit(to_function(graph))
        ms = (time.perf_counter() - t0) * 1e3
        entry = Entry(tr, graph, stages, fn, tr.arg_paths, list(tr.grad_reads), compile_ms=ms)
        _dump(self.name, entry, self._size())
        return entry

    def _run(self, entry: Entry, args, kwargs):
        from ..frontend.tensor import Tensor
        from ..frontend.tracing import rebuild

        arrays = []
        for path in entry.arg_leaves:
            x = _at(args, kwargs, path)
            arrays.append(x._array("a compiled call"))
        state = [st.data for st, _, _ in entry.trace.captured]
        n_out = len(entry.graph.outputs)
        outs = entry.run(*arrays, *state)
        results, updates = outs[:n_out], outs[n_out:]
        for wb, arr in zip(entry.trace.writebacks, updates):
            if wb.storage is not None:
                wb.storage.data = arr
                wb.storage.version += 1
            else:
                t = wb.grad_of
                if t._grad is not None:
                    t._grad._storage.data = arr
                    t._grad._storage.version += 1
                else:
                    t._grad = Tensor(Storage(arr), t._type)
        for t in entry.trace.grads_to_none:
            t._grad = None
        tensors = [Tensor(Storage(r), v.type) for r, v in zip(results, entry.graph.outputs)]
        tree = entry.trace.out_tree
        if isinstance(tree, tuple) and len(tree) == 2 and tree[0] == "T" and isinstance(tree[1], int):
            return tensors[tree[1]]
        return rebuild(tree, lambda p, x: tensors[x[1]] if _is_marker(x) else x) if isinstance(
            tree, (tuple, list, dict)) else tree

    # -- inspection ---------------------------------------------------------------------------
    def ir(self, *args, **kwargs) -> str:
        """The final IR text for these arguments (compiling if needed)."""
        return str(self._entry(args, kwargs).graph)

    def stages(self, *args, **kwargs) -> list[Stage]:
        """Each stage's name, time and graph, from the traced graph to the final one."""
        return list(self._entry(args, kwargs).stages)

    def cache_info(self):
        return CacheInfo(self._hits, self._misses, self._size())

    def cache_clear(self):
        self._cache.clear()
        self._hits = self._misses = 0
        self._last_key = None


@dataclass
class CacheInfo:
    hits: int
    misses: int
    size: int


def _is_marker(x):
    return isinstance(x, tuple) and len(x) == 2 and x[0] == "T" and isinstance(x[1], int)


def _at(args, kwargs, path):
    if path and path[0] == "kw":
        obj, path = kwargs[path[1]], path[2:]
    else:
        obj = args
    for p in path:
        obj = obj[p]
    return obj


def _dump(name: str, entry: Entry, index: int) -> None:
    root = os.environ.get("GCOMP_DUMP_DIR")
    if not root:
        return
    d = Path(root) / f"{name}_{index}"
    d.mkdir(parents=True, exist_ok=True)
    summary = []
    for i, st in enumerate(entry.stages):
        (d / f"{i:02d}_{st.name}.gir").write_text(st.graph)
        summary.append({"stage": st.name, "ms": round(st.ms, 3), "nodes": st.nodes})
    (d / "summary.json").write_text(json.dumps({"function": name, "stages": summary,
                                                "compile_ms": round(entry.compile_ms, 3)},
                                               indent=2))


def compile(fn=None, *, passes="default", name=None, cache_limit=None):  # noqa: A001
    """Compile ``fn`` (also usable as ``@gcomp.compile`` or ``@gcomp.compile(passes=...)``)."""
    if fn is None:
        return lambda f: compile(f, passes=passes, name=name, cache_limit=cache_limit)
    if not callable(fn):
        raise user_error(GcompError, f"gcomp.compile expects a function, got {type(fn).__name__}")
    return CompiledFunction(fn, passes=passes, name=name, cache_limit=cache_limit)
