"""Ahead of time: ``gcomp.compile(fn).lower(*args)`` -> Lowered -> ``.compile()`` -> Compiled ->
``.save(path)``; ``gcomp.load(path)`` runs the saved program where the model's code is absent.

Note [Artifacts]
~~~~~~~~~~~~~~~~
JAX's AOT API is the model. Lowering traces and runs the passes, and lowers to StableHLO: nothing
runs, and with ``gcomp.Spec`` arguments nothing is allocated either (a Spec becomes a tensor whose
storage holds only jax's ShapeDtypeStruct; tracing replaces it with a graph input before anything
could read it). The executable it makes is the compiled function's own cache entry, so calling
the function afterwards neither retraces nor recompiles, and ``Compiled`` runs that entry through
the same call path (guards, donation, state write-back) after checking the arguments match.

A saved artifact is one zip file:

- ``manifest.json``: the format name and version; the program's name; its inputs (argument names
  or state paths, shapes, dtypes) and where each argument comes from in the call; the structure
  of its outputs; which outputs replace which state (the IR's ``update`` lines) and which are
  copied back into arguments updated in place; the donated inputs; and the target of the
  executable below;
- ``program.bin``: the program serialized by ``jax.export`` (StableHLO with its calling
  convention, portable across jax versions for months; needs the ``flatbuffers`` package);
- ``executable.bin``: XLA's compiled executable of the same program, when the backend can
  serialize one (jax's persistent cache stores the same bytes);
- ``graph.gir``: the gcomp IR text the program was lowered from, for people and ``gcomp opt``;
- ``state.npz``: the state's values when saved (read with ``allow_pickle=False``; bfloat16 is kept
  as its uint16 bits, as gcomp.save does).

Loading checks the format and version and deserializes the program. Compiling it again costs
what XLA cost the first time (most of a compile, for a real model), so when the executable was
made by the same jaxlib for the same platform, device kind and host CPU, it is loaded instead and
the first call runs at once; anything else compiles ``program.bin`` (through the persistent cache
when that is on, Note [Persistent cache] in cache.py). Nothing in the file is unpickled or
evaluated as Python, but both programs are code that runs on this machine, as with jax's own
cache: load artifacts you trust, like binaries.

The loaded callable holds the state in Storage cells, feeds it to the program after the
arguments and, after each call, puts each updated entry's new array into its cell, as the
compiled function writes state back into the model: a saved training step keeps training,
``state_dict()`` tensors share the cells (they see each update, as torch's do), and
``load_state_dict`` resumes from any saved state. Updated state is donated to the program exactly
as in Note [Donation] in compiled.py: an array that something other than its cell holds (a numpy
view taken of it, say) is copied first, so nobody reads a consumed buffer.
"""

from __future__ import annotations

import io
import json
import os
import sys
import zipfile

import jax
import numpy as np

from ..core.dispatch import Mode, user_error
from ..core.tensor import Storage
from ..ir.errors import GcompError
from ..ir.types import DType, TensorType, bfloat16, dtype_from_name, float32
from . import log

FORMAT, VERSION = "gcomp-artifact", 1
_log = log.get("cache")


class Spec:
    """The shape and dtype of an argument, for lowering without allocating it:
    ``gcomp.compile(f).lower(gcomp.Spec((64, 784)), gcomp.Spec((64,), gcomp.int64))``."""

    def __init__(self, shape, dtype: DType = float32, requires_grad: bool = False):
        if not isinstance(dtype, DType):
            raise user_error(GcompError, f"gcomp.Spec: dtype must be a gcomp dtype such as "
                             f"gcomp.float32, got {dtype!r}")
        self.shape = tuple(int(d) for d in shape)
        self.dtype = dtype
        self.requires_grad = bool(requires_grad)

    def __repr__(self):
        return f"Spec({self.shape}, {self.dtype})"

    def _tensor(self):
        """A tensor of this type whose storage holds only jax's abstract description."""
        from ..lowering import to_jax_dtype

        aval = jax.ShapeDtypeStruct(self.shape, to_jax_dtype(self.dtype))
        return Mode.tensor_class(Storage(aval), TensorType(self.shape, self.dtype),
                                 self.requires_grad)


def _concrete(x):
    """``x`` with each Spec, however nested, replaced by its abstract tensor."""
    if isinstance(x, Spec):
        return x._tensor()
    if isinstance(x, tuple) and hasattr(x, "_fields"):
        return type(x)(*[_concrete(v) for v in x])
    if isinstance(x, (tuple, list)):
        return type(x)(_concrete(v) for v in x)
    if isinstance(x, dict):
        return {k: _concrete(v) for k, v in x.items()}
    return x


def lower(compiled, args, kwargs) -> Lowered:
    """``compiled.lower(*args, **kwargs)``: trace and run the passes; nothing runs."""
    args, kwargs = _concrete(tuple(args)), _concrete(dict(kwargs))
    return Lowered(compiled, compiled._entry(args, kwargs), compiled._key(args, kwargs))


class Lowered:
    """A traced, optimized program for one signature: ``.ir`` (gcomp IR text after the passes),
    ``.as_text()`` (StableHLO), ``.compile()``."""

    def __init__(self, fn, entry, key):
        self._fn, self._entry, self._key = fn, entry, key

    def __repr__(self):
        return f"<gcomp.Lowered {self._entry.graph.name}>"

    @property
    def ir(self) -> str:
        return self._entry.stages[-1].graph

    def _lowered(self):
        from .compiled import _lowered

        return [_lowered(jitted, graph) for _, graph, jitted in self._entry.executables]

    def as_text(self) -> str:
        """The StableHLO of each executable (forward, then backward, for a call that joins eager
        autograd)."""
        return "\n".join(low.as_text() for low in self._lowered())

    def compile(self) -> Compiled:
        return Compiled(self._fn, self._entry, self._key,
                        [low.compile() for low in self._lowered()])


class Compiled:
    """A compiled program: call it like the function, with arguments like the ones it was lowered
    for; ``.as_text()`` (optimized HLO), ``.cost_analysis()``, ``.memory_analysis()``,
    ``.save(path)`` (Note [Artifacts])."""

    def __init__(self, fn, entry, key, executables):
        self._fn, self._entry, self._key, self._exes = fn, entry, key, executables

    def __repr__(self):
        return f"<gcomp.Compiled {self._entry.graph.name}>"

    @property
    def ir(self) -> str:
        return self._entry.stages[-1].graph

    def __call__(self, *args, **kwargs):
        from .compiled import _diff

        fn = self._fn
        key = fn._key(args, kwargs)
        if key != self._key:
            raise user_error(GcompError, f"{self._entry.graph.name} was compiled for other "
                             f"arguments: {_diff(self._key, key, fn._params)}; lower it again "
                             "for these (or call the gcomp.compile'd function, which compiles "
                             "as needed)")
        if not self._entry.guards_hold():
            raise user_error(GcompError, f"{self._entry.graph.name} was compiled for other "
                             f"state: {self._entry.failed_guard()}; lower it again")
        return fn._run(self._entry, args, kwargs)

    def state_dict(self) -> dict:
        """The program's state by state path (``0.weight``, ``opt.state.0.exp_avg``): tensors
        sharing the model's and optimizer's, so they show each step; what a loaded program's
        ``load_state_dict`` takes to resume."""
        return {name: t.detach() for _, t, name in self._entry.trace.captured}

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
        """XLA's memory analysis, summed over the executables, in bytes: "argument", "output",
        "temporary", "generated_code" and "alias" (donated inputs reused for outputs)."""
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
        """Write the artifact (Note [Artifacts]): ``gcomp.load(path)`` runs it in any process."""
        _check_saveable(self._fn, self._entry)
        entry = self._entry
        graph = entry.graph
        exported = _export(entry)
        manifest = _manifest(self._fn, entry, self._key)
        files = {"program.bin": bytes(exported.serialize()), "graph.gir": str(graph)}
        native = _executable_bytes(self._exes[0], entry)
        if native is not None:
            files["executable.bin"] = native
            manifest["executable"] = {"file": "executable.bin", "target": _target()}
        n_args = len(entry.arg_leaves)
        state = {v.state: _to_npz(st.data, v.type.dtype) for v, st in
                 zip(graph.inputs[n_args:], entry.state_storages)}
        buf = io.BytesIO()
        np.savez(buf, **state)
        files["state.npz"] = buf.getvalue()
        _write(path, {"manifest.json": json.dumps(manifest, indent=1), **files})


def _check_saveable(fn, entry) -> None:
    if entry.backward is not None:
        raise user_error(GcompError, "this compiled call takes part in eager autograd (two "
                         "executables, forward and backward); save a whole training step "
                         "(backward and optimizer step inside the compiled function), or lower "
                         "it under gcomp.no_grad() for inference")
    if getattr(fn, "mesh", None) is not None:
        raise user_error(GcompError, "saving a program compiled with mesh= is not supported; "
                         "compile the function without mesh= to save it")


def _write(path, files: dict) -> None:
    """The zip file, written beside ``path`` and renamed over it: a failed save leaves the old
    artifact whole."""
    import tempfile

    path = os.fspath(path)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f, zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as z:
            for name, data in files.items():
                z.writestr(name, data)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _export(entry):
    """The portable program, lowered for this platform and, where the graph lowers there too,
    for the others jax supports: an artifact saved on a GPU runs on a CPU."""
    fn, specs = jax.jit(entry.run.fn), _specs(entry.graph)
    here = jax.export.default_export_platform()  # "cuda" or "rocm" where jax says "gpu"
    platforms = tuple(dict.fromkeys([here, "cpu", "cuda", "tpu"]))
    try:
        return jax.export.export(fn, platforms=platforms)(*specs)
    except Exception as e:  # noqa: BLE001 - some op has no rule elsewhere: this platform only
        _log.info("%s: exported for %s only (%s)", entry.graph.name, here, e)
        return jax.export.export(fn)(*specs)


def _specs(graph):
    from ..lowering import to_jax_dtype

    return [jax.ShapeDtypeStruct(v.type.shape, to_jax_dtype(v.type.dtype)) for v in graph.inputs]


def _manifest(fn, entry, key) -> dict:
    from .. import __version__

    graph, tr = entry.graph, entry.trace
    n_args = len(entry.arg_leaves)
    inputs = [{"name": v.state or v.name, "shape": list(v.type.shape), "dtype": v.type.dtype.name}
              for v in graph.inputs]
    return {"format": FORMAT, "version": VERSION, "gcomp": __version__, "jax": jax.__version__,
            "name": graph.name, "inputs": inputs, "n_args": n_args,
            "arg_paths": [list(p) for p in entry.arg_leaves],
            "positional": len(key[0]), "keywords": [k for k, _ in key[1]],
            "constants": _constants(key),
            "n_out": entry.n_out, "out_tree": _encode_tree(tr.out_tree),
            "updates": [name for name, _ in graph.updates],
            "arg_writebacks": [[list(p), i] for p, i in tr.arg_writebacks],
            "donate": list(entry.run.donate), "executable": None}


def _constants(key) -> list:
    """[position or keyword, value] of each plain Python constant argument: baked into the
    program, so a loaded call must pass the same."""
    out = []
    for where, d in list(enumerate(key[0])) + list(key[1]):
        if d[0] == "const":
            out.append([where, d[2]])
    return out


def _to_npz(arr, dtype: DType) -> np.ndarray:
    a = np.asarray(arr)
    return a.view(np.uint16) if dtype == bfloat16 else a


def _executable_bytes(compiled, entry):
    """XLA's executable of the entry, serialized, if it takes and returns exactly the graph's
    inputs and outputs (jit may drop unused inputs: then one that keeps them); else None.

    An executable that JAX read from its persistent cache serializes without its code (the CPU
    client reports "Function ... not found" when the saved copy runs), so with the cache on, the
    executable to save is compiled afresh with the cache off."""
    graph = entry.graph
    n_in, n_out = len(graph.inputs), len(graph.all_outputs)
    if jax.config.jax_enable_compilation_cache and jax.config.jax_compilation_cache_dir:
        from jax.experimental.compilation_cache import compilation_cache

        # JAX decides once whether its cache is on: reset, compile without it, reset again
        compilation_cache.reset_cache()
        jax.config.update("jax_enable_compilation_cache", False)
        try:  # a new function object: nothing of the cached compile is reused in memory either
            compiled = jax.jit(lambda *a: entry.run.fn(*a), donate_argnums=entry.run.donate,
                               keep_unused=True).lower(*_specs(graph)).compile()
        finally:
            jax.config.update("jax_enable_compilation_cache", True)
            compilation_cache.reset_cache()
    for attempt in range(2):
        try:
            xe = compiled.runtime_executable()
            if len(xe.get_parameter_layouts()) == n_in and \
                    len(xe.get_output_layouts()) == n_out:
                return bytes(xe.serialize())
        except Exception as e:  # noqa: BLE001 - no executable: the portable program still works
            _log.info("%s: no XLA executable in the artifact (%s)", graph.name, e)
            return None
        if attempt == 0:
            compiled = jax.jit(entry.run.fn, donate_argnums=entry.run.donate,
                               keep_unused=True).lower(*_specs(graph)).compile()
    return None


def _target() -> dict:
    """What an XLA executable is tied to: jaxlib, the platform, the device and the host CPU."""
    import platform

    import jaxlib

    dev = jax.devices()[0]
    target = {"jaxlib": jaxlib.__version__, "platform": dev.client.platform,
              "platform_version": dev.client.platform_version, "device_kind": dev.device_kind,
              "machine": platform.machine(), "xla_flags": os.environ.get("XLA_FLAGS", "")}
    if dev.client.platform == "cpu":
        target["cpu"] = _cpu_flags()
    return target


def _cpu_flags() -> str:
    """The host CPU's feature flags (XLA:CPU compiles for them), hashed; "" where unknown."""
    import hashlib

    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return hashlib.sha256(line.split(":", 1)[1].strip().encode()).hexdigest()[:16]
    except OSError:
        pass
    return ""


# -- trees -------------------------------------------------------------------------------------

def _encode_tree(tree):
    from .compiled import _is_marker

    if _is_marker(tree):
        return {"T": tree[1]}
    if isinstance(tree, (tuple, list)):
        return {"list" if isinstance(tree, list) else "tuple": [_encode_tree(x) for x in tree]}
    if isinstance(tree, dict):
        return {"dict": [[k, _encode_tree(v)] for k, v in tree.items()]}
    if tree is None or isinstance(tree, (bool, int, float, str)):
        return {"value": tree}
    raise user_error(GcompError, f"the program returns a {type(tree).__name__}, which an "
                     "artifact cannot hold; return tensors, numbers, strings, None, and "
                     "tuples/lists/dicts of them")


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


# -- loading -----------------------------------------------------------------------------------

def load(path, *, use_executable: bool = True) -> Loaded:
    """A saved program (Note [Artifacts]), callable like the function it was compiled from.
    ``use_executable=False`` compiles the portable program even where the saved XLA executable
    fits this machine."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as e:
        raise user_error(GcompError, f"cannot read {path}: {e.strerror}") from None
    if not data.startswith(b"PK\x03\x04"):
        raise user_error(GcompError, f"{path} is not a gcomp artifact (not a zip file); save "
                         "one with gcomp.compile(fn).lower(...).compile().save(path)")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            names = z.namelist()
            if "manifest.json" not in names:
                raise user_error(GcompError, f"{path} is a zip file but not a gcomp artifact "
                                 "(no manifest.json)")
            manifest = json.loads(z.read("manifest.json"))
            _check_format(manifest, path)
            files = {n: z.read(n) for n in ("program.bin", "graph.gir", "state.npz")}
            exe = manifest.get("executable")
            if use_executable and exe and exe.get("target") == _target():
                files["executable.bin"] = z.read(exe["file"])
            with np.load(io.BytesIO(files["state.npz"]), allow_pickle=False) as st:
                state = {k: st[k] for k in st.files}
    except GcompError:
        raise
    except (zipfile.BadZipFile, KeyError, EOFError, ValueError, OSError, TypeError,
            UnicodeDecodeError) as e:
        raise user_error(GcompError, f"{path} is truncated or corrupted ({type(e).__name__}: "
                         f"{e}); save it again") from None
    try:
        exported = jax.export.deserialize(bytearray(files["program.bin"]))
    except Exception as e:  # noqa: BLE001 - any failure here is a bad file
        raise user_error(GcompError, f"{path}: its program does not deserialize ({e}); the file "
                         "is corrupted or was written by an incompatible jax") from None
    return Loaded(manifest, exported, files, state, str(path))


def _check_format(manifest, path) -> None:
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise user_error(GcompError, f"{path} is a zip file but not a gcomp artifact")
    if manifest.get("version") != VERSION:
        raise user_error(GcompError, f"{path} has artifact format version "
                         f"{manifest.get('version')!r}; this gcomp reads version {VERSION}: "
                         "save it again with this gcomp")


class Loaded:
    """A program loaded from an artifact: ``loaded(*args)`` runs it on the state it holds
    (``state_dict()``, ``load_state_dict()``); ``.ir`` is its gcomp IR (Note [Artifacts])."""

    def __init__(self, manifest, exported, files, state, path):
        self.manifest, self.path = manifest, path
        self.name = manifest["name"]
        self.ir = files["graph.gir"].decode()
        self._inputs = manifest["inputs"]
        self._n_args = manifest["n_args"]
        self._device = jax.devices()[0]
        self._cells = {}  # state name -> Storage, in input order, then state the program makes
        for spec in self._inputs[self._n_args:]:
            if spec["name"] not in state:
                raise user_error(GcompError, f"{path} is corrupted: no saved value for state "
                                 f"{spec['name']!r}")
            arr = state[spec["name"]].view(_np_dtype(spec["dtype"]))
            self._cells[spec["name"]] = Storage(jax.device_put(arr, self._device))
        self._exported = exported
        self._donate = tuple(manifest["donate"])
        self._run = self._native(files.get("executable.bin"))

    def __repr__(self):
        return f"<gcomp.Loaded {self.name} from {self.path}>"

    def _native(self, data):
        """The saved XLA executable as a function of the array list, or None."""
        if data is None:
            _log.info("%s: compiling the portable program of %s", self.name, self.path)
            return None
        try:
            from jax._src.lib import xla_client

            exe = self._device.client.deserialize_executable(
                data, xla_client.DeviceList((self._device,)), None)
        except Exception as e:  # noqa: BLE001 - the portable program is the fallback
            _log.info("%s: the saved executable does not load (%s); compiling the portable "
                      "program", self.name, e)
            return None
        _log.info("%s: using the saved XLA executable of %s", self.name, self.path)

        def run(arrays):
            results = exe.execute_sharded(arrays)
            return [o[0] for o in results.disassemble_into_single_device_arrays()]

        return run

    def _portable(self, arrays):
        from . import cache

        cache.from_env()
        run = jax.jit(self._exported.call, donate_argnums=self._donate, keep_unused=True)
        self._run = lambda arrays: run(*arrays)
        return self._run(arrays)

    # -- state ----------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """name -> tensor, sharing the loaded program's state: each call's updates show."""
        return {k: Mode.tensor_class(st, TensorType(st.data.shape, _dtype(st.data.dtype)))
                for k, st in self._cells.items()}

    def load_state_dict(self, state: dict, strict: bool = True) -> None:
        """Replace the state (for example with a saved ``state_dict()`` to resume training);
        values are cast to the program's dtypes. ``strict``: every state entry must be given,
        and nothing else."""
        want = {s["name"]: s for s in self._inputs[self._n_args:]}
        made = set(self.manifest["updates"]) - set(want)  # state the program creates: .grad
        unexpected = sorted(k for k in state if k not in want and k not in made)
        missing = sorted(set(want) - set(state))
        if strict and (unexpected or missing):
            raise user_error(GcompError, f"load_state_dict of {self.name}: missing state "
                             f"{missing}, unexpected state {unexpected}; the program's state is "
                             f"{list(want)}")
        new = {}
        for k, v in state.items():
            if k not in want and k not in made:
                continue
            arr = np.asarray(v.detach().numpy() if hasattr(v, "detach") else v)
            cur = self._cells[k].data if k in self._cells else None
            if cur is None:  # a .grad not made yet: taken as given
                new[k] = jax.device_put(arr, self._device)
                continue
            if arr.shape != cur.shape:
                raise user_error(GcompError, f"load_state_dict of {self.name}: state {k!r} has "
                                 f"shape {list(arr.shape)}; the program's is {list(cur.shape)}")
            new[k] = jax.device_put(arr.astype(cur.dtype), self._device)
        for k, arr in new.items():  # all checked first: a failed call changes nothing
            cell = self._cells.setdefault(k, Storage(arr))
            cell.data = arr
            cell.version += 1

    # -- the call -------------------------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        arrays = self._arguments(args, kwargs)
        arrays += [self._cells[s["name"]].data for s in self._inputs[self._n_args:]]
        for i in self._donate:  # Note [Donation] in compiled.py: the cell, the list, the count
            if sys.getrefcount(arrays[i]) > 3:
                arrays[i] = arrays[i].copy()
        outs = self._run(arrays) if self._run is not None else self._portable(arrays)
        return self._finish(args, kwargs, outs)

    def _arguments(self, args, kwargs) -> list:
        m = self.manifest
        if len(args) != m["positional"] or sorted(kwargs) != sorted(m["keywords"]):
            want, got = f"{m['positional']} positional argument(s)", f"{len(args)}"
            if m["keywords"] or kwargs:
                want += f" and the keyword argument(s) {sorted(m['keywords'])}"
                got += f" and {sorted(kwargs)}"
            raise user_error(GcompError, f"{self.name} takes {want}, as saved; got {got}")
        for where, value in m["constants"]:
            got = args[where] if isinstance(where, int) else kwargs[where]
            if got != value or type(got) is not type(value):
                raise user_error(GcompError, f"argument {where!r} of {self.name} was the constant "
                                 f"{value!r} when the program was saved, got {got!r}; it is "
                                 "part of the program: save one for this value")
        from .compiled import _at

        arrays = []
        for path, spec in zip(m["arg_paths"], self._inputs):
            try:
                x = _at(args, kwargs, path)
            except (IndexError, KeyError, TypeError):
                raise user_error(GcompError, f"argument {spec['name']} of {self.name} is "
                                 "missing: pass arguments with the structure the program was "
                                 "saved with") from None
            arrays.append(self._array(x, spec))
        return arrays

    def _array(self, x, spec):
        if isinstance(x, Mode.tensor_class):
            x._fresh()
            arr, dtype = x._storage.data, x.dtype
        else:
            arr = x if isinstance(x, jax.Array) else np.asarray(x)
            dtype = _dtype(arr.dtype, spec["name"])
        if list(arr.shape) != spec["shape"] or dtype.name != spec["dtype"]:
            raise user_error(GcompError, f"argument {self._input_index(spec)} ({spec['name']}) of "
                             f"{self.name} is {dtype.name}{list(arr.shape)}; the saved program "
                             f"takes {spec['dtype']}{spec['shape']}")
        if not isinstance(arr, jax.Array) or arr.devices() != {self._device}:
            arr = jax.device_put(arr, self._device)
        return arr

    def _input_index(self, spec) -> int:
        return next(i for i, s in enumerate(self._inputs) if s is spec)

    def _finish(self, args, kwargs, outs):
        from .compiled import _at

        m = self.manifest
        n_out = m["n_out"]
        for name, arr in zip(m["updates"], outs[n_out:]):
            cell = self._cells.get(name)
            if cell is None:  # state the program creates (a first .grad)
                self._cells[name] = Storage(arr)
            else:
                cell.data = arr
                cell.version += 1
        tensors = [Mode.tensor_class(Storage(o), TensorType(o.shape, _dtype(o.dtype)))
                   for o in outs[:n_out]]
        for path, i in m["arg_writebacks"]:  # arguments the program updated in place
            target = _at(args, kwargs, path)
            if isinstance(target, Mode.tensor_class):
                from ..frontend.autograd import no_grad

                with no_grad():
                    target.copy_(tensors[i])
            elif isinstance(target, np.ndarray) and target.flags.writeable:
                np.copyto(target, np.asarray(outs[i]))
        return _decode_tree(m["out_tree"], tensors)


def _np_dtype(name: str):
    from ..lowering import to_jax_dtype

    return np.dtype(to_jax_dtype(dtype_from_name(name)))


def _dtype(np_dtype, name: str | None = None) -> DType:
    from ..lowering import from_jax_dtype

    try:
        return from_jax_dtype(np_dtype)
    except GcompError:
        raise user_error(GcompError, f"argument {name} has dtype {np_dtype}, which gcomp has "
                         "no dtype for; pass a gcomp tensor or a numpy array") from None
