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


def save(obj, path) -> None:
    """Save a state dict (nested dicts/lists/tuples of tensors, arrays, numbers, strings) to
    ``path`` atomically: the old file stays intact if writing fails."""
    path = os.fspath(path)
    arrays: list = []
    structure = {"format": _FORMAT, "value": _encode(obj, arrays, "the object")}
    payload = {f"a{i}": a for i, a in enumerate(arrays)}
    payload[_STRUCTURE] = np.frombuffer(json.dumps(structure).encode(), dtype=np.uint8)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.",
                               suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **payload)
            f.flush()
            os.fsync(f.fileno())
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
    """Load what ``gcomp.save`` wrote, with gcomp tensors in place of tensors and arrays."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise GcompError(f"gcomp.load_state: no such file: {path}")
    try:
        with np.load(path, allow_pickle=False) as npz:
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
