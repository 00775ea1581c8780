"""``gcomp.save`` and ``gcomp.load_state``: state dicts in a .npz file, without pickle.

The file is a numpy .npz archive: one array per tensor (``a0``, ``a1``, ...) and, under
``__structure__``, a JSON description of the nested dicts, lists, tuples, numbers, strings and
None around them (dict keys may be strings or ints, as in an optimizer's state_dict). Saving
writes a temporary file in the target's directory, fsyncs it and renames it over the target, so
a crash mid-write leaves the old file intact. Loading never unpickles
(``np.load(allow_pickle=False)``) and reports a damaged file as a GcompError.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import zipfile
import zlib

import numpy as np

from .frontend.tensor import Tensor
from .ir.errors import GcompError
from .ir.types import bfloat16, dtype_from_name

__all__ = ["save", "load_state"]

_STRUCTURE = "__structure__"
_FORMAT = "gcomp.state/1"


def _encode(obj, arrays: list, where: str):
    if isinstance(obj, Tensor):
        t = obj.detach()
        arr = np.asarray(t)
        if t.dtype == bfloat16:  # npz cannot describe bfloat16 without pickle: keep the bits
            arr = arr.view(np.uint16)
        arrays.append(np.require(arr, requirements="C"))
        return {"tensor": len(arrays) - 1, "dtype": t.dtype.name,
                "requires_grad": bool(obj.requires_grad)}
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind in "OSUV":
            raise GcompError(f"gcomp.save: {where} is a numpy array of dtype {obj.dtype}, which "
                             "cannot be saved without pickle")
        arrays.append(np.require(obj, requirements="C"))
        return {"ndarray": len(arrays) - 1}
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else {"float": repr(obj)}
    if isinstance(obj, np.generic):
        return _encode(obj.item(), arrays, where)
    if isinstance(obj, dict):
        items = []
        for k, v in obj.items():
            if not isinstance(k, (str, int)) or isinstance(k, bool):
                raise GcompError(f"gcomp.save: {where} has a key of type {type(k).__name__}; "
                                 "keys must be strings or ints")
            items.append([k, _encode(v, arrays, f"{where}[{k!r}]")])
        return {"dict": items}
    if isinstance(obj, (list, tuple)):
        kind = "tuple" if isinstance(obj, tuple) else "list"
        return {kind: [_encode(v, arrays, f"{where}[{i}]") for i, v in enumerate(obj)]}
    raise GcompError(f"gcomp.save: {where} is a {type(obj).__name__}; a state dict holds "
                     "tensors, numpy arrays, numbers, strings, None, and dicts/lists/tuples of "
                     "them")


def save(obj, f) -> None:
    """Save ``obj`` to ``f`` (a path, written atomically: the old file stays intact if writing
    fails; or a binary file object). A state dict (nested dicts/lists/tuples of tensors, arrays,
    numbers, strings) is written without pickle; anything else (a whole module, as
    ``torch.save(model, path)``) is pickled, and loading it needs ``weights_only=False``."""
    arrays: list = []
    try:
        value = _encode(obj, arrays, "the object")
    except GcompError:
        if _is_state_like(obj):
            raise  # a dict or list with a bad entry: say which
        return save_pickled(obj, f)
    structure = {"format": _FORMAT, "value": value}
    payload = {f"a{i}": a for i, a in enumerate(arrays)}
    payload[_STRUCTURE] = np.frombuffer(json.dumps(structure).encode(), dtype=np.uint8)
    _write(payload, f)


def _is_state_like(obj) -> bool:
    return isinstance(obj, (dict, list, tuple))


def _write(payload: dict, f) -> None:
    if hasattr(f, "write"):
        np.savez(f, **payload)
        return
    path = os.fspath(f)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.",
                               suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            np.savez(out, **payload)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename itself durable
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def _decode(obj, arrays, path):
    from .frontend.creation import tensor

    if not isinstance(obj, dict):
        if isinstance(obj, list):
            raise GcompError(f"gcomp.load_state: {path} is not a gcomp state file (bad "
                             "structure)")
        return obj
    if "tensor" in obj:
        arr = arrays(obj["tensor"])
        dtype = dtype_from_name(obj["dtype"])
        if dtype == bfloat16:
            import ml_dtypes

            arr = arr.view(ml_dtypes.bfloat16)
        return tensor(arr, dtype=dtype, requires_grad=obj.get("requires_grad", False))
    if "ndarray" in obj:
        return tensor(arrays(obj["ndarray"]))
    if "float" in obj:
        return float(obj["float"])
    if "dict" in obj:
        return {k: _decode(v, arrays, path) for k, v in obj["dict"]}
    if "tuple" in obj:
        return tuple(_decode(v, arrays, path) for v in obj["tuple"])
    if "list" in obj:
        return [_decode(v, arrays, path) for v in obj["list"]]
    raise GcompError(f"gcomp.load_state: {path} is not a gcomp state file (unknown entry "
                     f"{sorted(obj)})")


def load_state(path):
    """Load what ``gcomp.save`` wrote, with gcomp tensors in place of tensors and arrays
    (``path``: a path or a binary file object)."""
    source = path
    if hasattr(path, "read"):
        path = getattr(path, "name", "the file")
    else:
        path = source = os.fspath(path)
        if not os.path.exists(path):
            raise GcompError(f"gcomp.load_state: no such file: {path}")
    try:
        with np.load(source, allow_pickle=False) as npz:
            if _STRUCTURE not in npz.files:
                raise GcompError(f"gcomp.load_state: {path} is an .npz file but not one written "
                                 "by gcomp.save (no structure entry)")
            structure = json.loads(npz[_STRUCTURE].tobytes().decode())
            fmt = structure.get("format") if isinstance(structure, dict) else None
            if fmt != _FORMAT:
                raise GcompError(f"gcomp.load_state: {path} has an unknown format {fmt!r} "
                                 f"(expected {_FORMAT!r})")

            def arrays(i):
                name = f"a{int(i)}"
                if name not in npz.files:
                    raise GcompError(f"gcomp.load_state: {path} is missing array {name}")
                return npz[name]

            return _decode(structure["value"], arrays, path)
    except GcompError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError, TypeError,
            UnicodeDecodeError, zlib.error) as e:
        raise GcompError(f"gcomp.load_state: {path} is truncated or corrupt "
                         f"({type(e).__name__}: {e})") from None


# -- PyTorch's own files ----------------------------------------------------------------------
# Note [Reading torch.save files]
# ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
# torch.save (since 1.6) writes a zip: ``<root>/data.pkl`` pickles the object with each tensor
# storage replaced by a persistent id ``("storage", torch.FloatStorage, key, location, numel)``
# whose bytes are ``<root>/data/<key>``; tensors are rebuilt by ``torch._utils._rebuild_tensor_v2
# (storage, offset, size, stride, requires_grad, hooks)``. gcomp reads these files without torch
# with an unpickler that knows only those names, OrderedDict and plain builtins (what a
# state_dict, an optimizer's state_dict or a checkpoint dict holds), like torch.load's
# weights_only mode: nothing else in the file is ever constructed, so loading is safe. Storages
# shared between tensors (tied weights, views) become separate copies.

_TORCH_STORAGES = {"FloatStorage": "float32", "DoubleStorage": "float64",
                   "HalfStorage": "float16", "BFloat16Storage": "bfloat16",
                   "LongStorage": "int64", "IntStorage": "int32", "ShortStorage": "int16",
                   "CharStorage": "int8", "ByteStorage": "uint8", "BoolStorage": "bool"}
_SAFE_BUILTINS = {"set", "frozenset", "slice", "complex", "bytearray", "range", "tuple", "list",
                  "dict", "int", "float", "bool", "str", "bytes"}


class _TorchStorageType:
    def __init__(self, name):
        self.dtype = dtype_from_name(_TORCH_STORAGES[name])


def _np_dtype(dtype):
    from .lowering import to_jax_dtype

    return np.dtype(to_jax_dtype(dtype))


def _torch_member(names, root: str, what: str) -> str:
    return next(n for n in names if n == f"{root}{what}")


def _is_torch_zip(names) -> str | None:
    """The archive root of a torch.save zip ('archive/'), or None."""
    for n in names:
        if n.endswith("data.pkl") and n.count("/") == 1:
            return n[: -len("data.pkl")]
    return None


def _load_torch(f, root: str, path: str, map_location=None):
    import collections
    import io
    import pickle

    from .frontend.creation import tensor
    from .nn.parameter import Parameter

    with zipfile.ZipFile(f) as z:
        names = z.namelist()
        order = z.read(f"{root}byteorder").decode() if f"{root}byteorder" in names else "little"
        storages: dict = {}

        def rebuild(storage, offset, size, stride, requires_grad=False, hooks=None, meta=None):
            dtype, arr = storage
            n = int(np.prod(size)) if len(size) else 1
            if n == 0:
                out = np.zeros(tuple(size), _np_dtype(dtype))
            else:
                span = offset + sum((s - 1) * st for s, st in zip(size, stride)) + 1
                if span > arr.size:
                    raise GcompError(f"gcomp.load: {path} is corrupt (a tensor reaches past its "
                                     "storage)")
                out = np.lib.stride_tricks.as_strided(
                    arr[offset:], shape=tuple(size),
                    strides=tuple(st * arr.itemsize for st in stride)).copy()
            t = tensor(out, dtype=dtype)
            if map_location is not None:
                t = t.to(map_location)
            if requires_grad:
                t.requires_grad_(True)
            return t

        def parameter(data, requires_grad=True, hooks=None, state=None):
            return Parameter(data, requires_grad)

        class Unpickler(pickle.Unpickler):
            def find_class(self, module, name):
                if module == "torch._utils" and name == "_rebuild_tensor_v2":
                    return rebuild
                if module == "torch._utils" and name in ("_rebuild_parameter",
                                                         "_rebuild_parameter_with_state"):
                    return parameter
                if module == "torch" and name in _TORCH_STORAGES:
                    return _TorchStorageType(name)
                if module == "torch" and name == "Size":
                    return tuple
                if module == "collections" and name == "OrderedDict":
                    return collections.OrderedDict
                if module == "builtins" and name in _SAFE_BUILTINS:
                    import builtins

                    return getattr(builtins, name)
                raise GcompError(
                    f"gcomp.load: {path} holds a pickled {module}.{name}, which gcomp does not "
                    "construct (it reads tensors, state dicts and checkpoint dicts of them, as "
                    "torch.load(weights_only=True) does); in PyTorch, save model.state_dict() "
                    "instead of the model and load it with load_state_dict")

            def persistent_load(self, pid):
                if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
                    raise GcompError(f"gcomp.load: {path} has an unknown record {pid!r:.80}")
                _, stype, key, _location, _numel = pid
                if key not in storages:
                    member = f"{root}data/{key}"
                    if member not in names:
                        raise GcompError(f"gcomp.load: {path} is missing storage {member}")
                    dt = _np_dtype(stype.dtype).newbyteorder("<" if order == "little" else ">")
                    arr = np.frombuffer(z.read(member), dtype=dt)
                    storages[key] = (stype.dtype, arr.astype(arr.dtype.newbyteorder("=")))
                return storages[key]

        data = z.read(f"{root}data.pkl")
        try:
            return Unpickler(io.BytesIO(data)).load()
        except GcompError:
            raise
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError) as e:
            raise GcompError(f"gcomp.load: {path} is truncated or corrupt "
                             f"({type(e).__name__}: {e})") from None


# -- objects that are not state: pickled ------------------------------------------------------
_PICKLE = "__pickle__"
_PICKLE_FORMAT = "gcomp.pickle/1"


def save_pickled(obj, f) -> None:
    """``gcomp.save`` of an object that is not a state dict (a whole module, as
    ``torch.save(model, path)``): pickled, in the same .npz container; loading it needs
    ``weights_only=False``, as in torch, because unpickling runs code from the file."""
    import io
    import pickle

    buf = io.BytesIO()
    try:
        pickle.dump(obj, buf, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError) as e:
        raise GcompError(f"gcomp.save: the object cannot be pickled ({e}); save its "
                         "state_dict() instead") from None
    payload = {_PICKLE: np.frombuffer(buf.getvalue(), dtype=np.uint8),
               _STRUCTURE: np.frombuffer(json.dumps({"format": _PICKLE_FORMAT}).encode(),
                                         dtype=np.uint8)}
    _write(payload, f)


def load_any(f, map_location=None, weights_only=None, path: str = "the file"):
    """What ``gcomp.save`` or ``torch.save`` wrote (see gcomp.load)."""
    import pickle

    with zipfile.ZipFile(f) as z:
        names = z.namelist()
    if hasattr(f, "seek"):
        f.seek(0)
    root = _is_torch_zip(names)
    if root is not None:
        out = _load_torch(f, root, path, map_location)
        return out
    if f"{_PICKLE}.npy" in names:
        if weights_only is not False:
            raise GcompError(f"gcomp.load: {path} holds a pickled object (gcomp.save of "
                             "something that is not a state dict, such as a whole module); "
                             "unpickling runs code from the file, so pass weights_only=False if "
                             "you trust its source, or save and load a state_dict()")
        with np.load(f, allow_pickle=False) as npz:
            return pickle.loads(npz[_PICKLE].tobytes())
    out = load_state(f)
    return _move(out, map_location) if map_location is not None else out


def _move(obj, device):
    if isinstance(obj, Tensor):
        return obj.to(device)
    if isinstance(obj, dict):
        return type(obj)((k, _move(v, device)) for k, v in obj.items()) \
            if type(obj) is not dict else {k: _move(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_move(v, device) for v in obj)
    return obj


def map_location_device(map_location):
    """The device a ``map_location`` names: a device or its name, a {saved: target} dict
    with one target, or None."""
    from .frontend.device import device as Device

    if map_location is None:
        return None
    if isinstance(map_location, (str, Device)):
        return Device(map_location) if isinstance(map_location, str) else map_location
    if isinstance(map_location, dict):
        targets = {str(v) for v in map_location.values()}
        if len(targets) == 1:
            return Device(targets.pop())
    raise GcompError(f"gcomp.load: map_location={map_location!r} is not supported; use a device "
                     "('cpu', 'cuda:0'), or move the loaded tensors with .to(device)")
