"""Ahead of time: ``gcomp.compile(fn).lower(*args)`` -> Lowered -> ``.compile()`` -> Compiled ->
``.save(path)``; ``gcomp.load(path)`` runs the saved program where the model's code is absent.

Note [Artifacts]
~~~~~~~~~~~~~~~~
JAX's AOT API is the model: lowering traces and runs the passes (nothing is executed, and with
``gcomp.Spec`` arguments nothing is allocated either), compiling asks XLA for the executable and
its analyses. A saved artifact is one zip file holding

- ``manifest.json``: the format name and version, the gcomp version, the program's name, its
  inputs (argument names or state paths, shapes, dtypes), the structure of its outputs, and which
  outputs replace which state (the ``update`` lines of the IR);
- ``program.bin``: the program serialized by ``jax.export`` (StableHLO with its calling
  convention; this needs the ``flatbuffers`` package);
- ``graph.gir``: the gcomp IR text the program was lowered from, for people and ``gcomp opt``;
- ``state.npz``: the state's values when saved (numpy's format, read with allow_pickle=False).

Loading parses the manifest, checks the format and version, and deserializes the program; nothing
else in the file is executed (no pickle anywhere). The loaded callable holds the state, feeds it
to the program after the arguments, and after each call replaces each updated entry with the
program's output, as the compiled function writes state back into the model: a saved training
step keeps training, and ``load_state_dict`` resumes it from any saved state.
"""

from __future__ import annotations

import io
import json
import zipfile

import jax
import numpy as np

from ..core.dispatch import user_error
from ..core.tensor import Storage
from ..ir.errors import GcompError
from ..ir.types import DType, TensorType, float32

FORMAT, VERSION = "gcomp-artifact", 1


class Spec:
    """The shape and dtype of an argument, for lowering without allocating it:
    ``gcomp.compile(f).lower(gcomp.Spec((64, 784)), gcomp.Spec((64,), gcomp.int64))``."""

    def __init__(self, shape, dtype: DType = float32, requires_grad: bool = False):
        self.shape = tuple(int(d) for d in shape)
        self.dtype = dtype
        self.requires_grad = bool(requires_grad)

    def __repr__(self):
        return f"Spec({self.shape}, {self.dtype})"

    def _tensor(self):
        """A tensor of this type whose storage holds only jax's abstract description."""
        from ..core.dispatch import Mode
        from ..lowering import to_jax_dtype

        aval = jax.ShapeDtypeStruct(self.shape, to_jax_dtype(self.dtype))
        return Mode.tensor_class(Storage(aval), TensorType(self.shape, self.dtype),
                                 self.requires_grad)


def _concrete(args):
    return tuple(a._tensor() if isinstance(a, Spec) else a for a in args)


def lower(compiled, args, kwargs) -> Lowered:
    """``compiled.lower(*args, **kwargs)``: trace and run the passes; nothing runs."""
    return Lowered(compiled, compiled._entry(_concrete(args), kwargs))


class Lowered:
    """A traced, optimized program: its IR (``.ir``), StableHLO (``.as_text()``); ``.compile()``."""

    def __init__(self, fn, entry):
        self._fn, self._entry = fn, entry

    @property
    def ir(self) -> str:
        return self._entry.stages[-1].graph

    def _lowered(self):
        from .compiled import _lowered

        return [(name, _lowered(jitted, graph)) for name, graph, jitted in
                self._entry.executables]

    def as_text(self) -> str:
        return "\n".join(low.as_text() for _, low in self._lowered())

    def compile(self) -> Compiled:
        return Compiled(self._fn, self._entry, [low.compile() for _, low in self._lowered()])


class Compiled:
    """A compiled program: call it like the function; ``.as_text()`` (optimized HLO),
    ``.cost_analysis()``, ``.memory_analysis()``, ``.save(path)``."""

    def __init__(self, fn, entry, executables):
        self._fn, self._entry, self._exes = fn, entry, executables

    def __call__(self, *args, **kwargs):
        return self._fn(*args, **kwargs)  # the same cache entry: no retrace, no recompile

    def as_text(self) -> str:
        return "\n".join(e.as_text() for e in self._exes)

    def cost_analysis(self) -> dict:
        """XLA's estimate, summed over the executables: "flops", "bytes accessed", ..."""
        out: dict = {}
        for e in self._exes:
            ca = e.cost_analysis()
            for part in ca if isinstance(ca, list) else [ca]:
                for k, v in (part or {}).items():
                    out[k] = out.get(k, 0.0) + float(v)
        return out

    def memory_analysis(self) -> dict:
        """XLA's memory analysis, summed over the executables, in bytes."""
        keys = {"argument": "argument_size_in_bytes", "output": "output_size_in_bytes",
                "temporary": "temp_size_in_bytes", "generated_code": "generated_code_size_in_bytes",
                "alias": "alias_size_in_bytes"}
        out = dict.fromkeys(keys, 0)
        for e in self._exes:
            m = e.memory_analysis()
            for k, attr in keys.items():
                out[k] += int(getattr(m, attr, 0) or 0)
        return out

    def save(self, path) -> None:
        entry = self._entry
        if entry.backward is not None:
            raise user_error(GcompError, "this compiled call takes part in eager autograd (two "
                             "executables, forward and backward); save a whole training step "
                             "(backward and optimizer step inside), or call under no_grad for "
                             "inference")
        from .. import __version__
        from ..lowering import to_jax_dtype

        graph = entry.graph
        specs = [jax.ShapeDtypeStruct(v.type.shape, to_jax_dtype(v.type.dtype))
                 for v in graph.inputs]
        exported = jax.export.export(jax.jit(entry.run.fn))(*specs)
        n_args = len(entry.arg_leaves)
        inputs = [{"name": v.state or v.name, "state": i >= n_args, "shape": list(v.type.shape),
                   "dtype": v.type.dtype.name} for i, v in enumerate(graph.inputs)]
        state = {inputs[n_args + j]["name"]: np.asarray(st.data)
                 for j, st in enumerate(entry.state_storages)}
        manifest = {"format": FORMAT, "version": VERSION, "gcomp": __version__,
                    "name": graph.name, "inputs": inputs, "n_args": n_args,
                    "n_out": entry.n_out, "out_tree": _encode_tree(entry.trace.out_tree),
                    "updates": [name for name, _ in graph.updates]}
        buf = io.BytesIO()
        np.savez(buf, **state)
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("manifest.json", json.dumps(manifest, indent=1))
            z.writestr("program.bin", bytes(exported.serialize()))
            z.writestr("graph.gir", str(graph))
            z.writestr("state.npz", buf.getvalue())


def _encode_tree(tree):
    if isinstance(tree, tuple) and len(tree) == 2 and tree[0] == "T" and isinstance(tree[1], int):
        return {"T": tree[1]}
    if isinstance(tree, (tuple, list)):
        return {type(tree).__name__ if type(tree) in (tuple, list) else "tuple":
                [_encode_tree(x) for x in tree]}
    if isinstance(tree, dict):
        return {"dict": [[k, _encode_tree(v)] for k, v in tree.items()]}
    return {"value": tree}


def _decode_tree(tree, tensors):
    (kind, body), = tree.items()
    if kind == "T":
        return tensors[body]
    if kind == "tuple":
        return tuple(_decode_tree(x, tensors) for x in body)
    if kind == "list":
        return [_decode_tree(x, tensors) for x in body]
    if kind == "dict":
        return {k: _decode_tree(v, tensors) for k, v in body}
    return body


def is_artifact(path) -> bool:
    try:
        with zipfile.ZipFile(path) as z:
            return "manifest.json" in z.namelist() and "program.bin" in z.namelist()
    except (OSError, zipfile.BadZipFile):
        return False


def load(path) -> Loaded:
    """A saved program (Note [Artifacts]), callable like the function it was compiled from."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as e:
        raise user_error(GcompError, f"cannot read {path}: {e.strerror}") from None
    if not data.startswith(b"PK\x03\x04"):
        raise user_error(GcompError, f"{path} is not a gcomp artifact (not a zip file; save "
                         "one with gcomp.compile(fn).lower(...).compile().save(path))")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            manifest = json.loads(z.read("manifest.json"))
            if manifest.get("format") != FORMAT:
                raise user_error(GcompError, f"{path} is a zip file but not a gcomp artifact")
            if manifest.get("version") != VERSION:
                raise user_error(GcompError, f"{path} has artifact format version "
                                 f"{manifest.get('version')!r}; this gcomp reads version "
                                 f"{VERSION}: save it again with this gcomp")
            program = z.read("program.bin")
            ir_text = z.read("graph.gir").decode()
            with np.load(io.BytesIO(z.read("state.npz")), allow_pickle=False) as st:
                state = {k: st[k] for k in st.files}
    except GcompError:
        raise
    except (zipfile.BadZipFile, KeyError, EOFError, ValueError, OSError) as e:
        raise user_error(GcompError, f"{path} is truncated or corrupted ({type(e).__name__}: "
                         f"{e}); save it again") from None
    try:
        exported = jax.export.deserialize(bytearray(program))
    except Exception as e:  # noqa: BLE001 - any failure here is a bad file
        raise user_error(GcompError, f"{path}: its program does not deserialize ({e}); the file "
                         "is corrupted or was written by an incompatible jax") from None
    return Loaded(manifest, exported, ir_text, state, str(path))


class Loaded:
    """A program loaded from an artifact: ``loaded(*args)`` runs it on the held state."""

    def __init__(self, manifest, exported, ir_text, state, path):
        self.manifest, self._exported, self.ir, self.path = manifest, exported, ir_text, path
        self.name = manifest["name"]
        self._inputs = manifest["inputs"]
        self._n_args = manifest["n_args"]
        self._state = {k: jax.numpy.asarray(v) for k, v in state.items()}

    def __repr__(self):
        return f"<gcomp.Loaded {self.name} from {self.path}>"

    def state_dict(self) -> dict:
        from ..frontend.tensor import new_tensor

        return {k: new_tensor(v, TensorType(v.shape, _dtype(v.dtype)))
                for k, v in self._state.items()}

    def load_state_dict(self, state: dict, strict: bool = True) -> None:
        want = {i["name"]: i for i in self._inputs[self._n_args:]}
        new = {}
        for k, v in state.items():
            if k not in self._state:
                if strict:
                    raise user_error(GcompError, f"unexpected state {k!r}; the program's state "
                                     f"is {sorted(self._state)}")
                continue
            arr = np.asarray(v.detach().numpy() if hasattr(v, "detach") else v)
            spec = want.get(k)
            if spec is not None and (list(arr.shape) != spec["shape"]):
                raise user_error(GcompError, f"state {k!r} has shape {list(arr.shape)}; the "
                                 f"program expects {spec['shape']}")
            new[k] = jax.numpy.asarray(arr.astype(self._state[k].dtype))
        missing = sorted(set(want) - set(new))
        if strict and missing:
            raise user_error(GcompError, f"missing state {missing}")
        self._state.update(new)

    def __call__(self, *args):
        if len(args) != self._n_args:
            raise user_error(GcompError, f"{self.name} takes {self._n_args} argument(s), got "
                             f"{len(args)}")
        arrays = []
        for i, (a, spec) in enumerate(zip(args, self._inputs)):
            arr = a._storage.data if hasattr(a, "_storage") else np.asarray(a)
            want_dt = _np_dtype(spec["dtype"])
            if list(arr.shape) != spec["shape"] or np.dtype(arr.dtype) != want_dt:
                raise user_error(GcompError, f"argument {i} ({spec['name']}) of {self.name} is "
                                 f"{np.dtype(arr.dtype).name}{list(arr.shape)}; the saved program "
                                 f"takes {spec['dtype']}{spec['shape']}")
            arrays.append(arr)
        arrays += [self._state[s["name"]] for s in self._inputs[self._n_args:]]
        outs = self._exported.call(*arrays)
        n_out = self.manifest["n_out"]
        for name, arr in zip(self.manifest["updates"], outs[n_out:]):
            self._state[name] = arr
        from ..frontend.tensor import new_tensor

        tensors = [new_tensor(o, TensorType(o.shape, _dtype(o.dtype))) for o in outs[:n_out]]
        return _decode_tree(self.manifest["out_tree"], tensors)


def _np_dtype(name: str):
    from ..ir.types import dtype_from_name
    from ..lowering import to_jax_dtype

    return np.dtype(to_jax_dtype(dtype_from_name(name)))


def _dtype(np_dtype) -> DType:
    from ..lowering import from_jax_dtype

    return from_jax_dtype(np_dtype)


# ---------------------------------------------------------------------------------------------
# The persistent compilation cache

_cache_dir = None
_listening = False


def enable_cache(path) -> None:
    """JAX's persistent compilation cache in ``path`` (GCOMP_CACHE_DIR, gcomp.config.cache_dir):
    a second process compiling an unchanged program reads XLA's executable from disk. The
    ``gcomp.cache`` logger says "persistent cache hit" or "miss" for each compile."""
    global _cache_dir, _listening
    from . import log

    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    jax.config.update("jax_enable_compilation_cache", True)
    _cache_dir = str(path)
    if not _listening:
        _listening = True
        logger = log.get("cache")

        def listen(event, **_):
            if event == "/jax/compilation_cache/cache_hits":
                logger.info("persistent cache hit (%s)", _cache_dir)
            elif event == "/jax/compilation_cache/cache_misses":
                logger.info("persistent cache miss (%s): compiled and stored", _cache_dir)

        jax.monitoring.register_event_listener(listen)


class _Config:
    """``gcomp.config``: ``gcomp.config.cache_dir = "path"`` turns the persistent cache on."""

    @property
    def cache_dir(self):
        return _cache_dir

    @cache_dir.setter
    def cache_dir(self, path):
        enable_cache(path)


config = _Config()
