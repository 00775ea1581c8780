"""torch.testing: ``assert_close`` with torch's default tolerances, and ``make_tensor``."""

from __future__ import annotations

import math

import numpy as np

from ..frontend.tensor import Tensor
from ..ir import types as T

# torch.testing's defaults (rtol, atol) by dtype
_TOLERANCES = {T.float16: (1e-3, 1e-5), T.bfloat16: (1.6e-2, 1e-5), T.float32: (1.3e-6, 1e-5),
               T.float64: (1e-7, 1e-7)}


def _as_array(x):
    if isinstance(x, Tensor):
        return np.asarray(x.detach().float() if x.dtype == T.bfloat16 else x.detach()), x.dtype
    if isinstance(x, bool):
        return np.asarray(x), T.bool_
    if isinstance(x, int):
        return np.asarray(x), T.int64
    if isinstance(x, float):
        return np.asarray(x), T.float64
    return None, None


def assert_close(actual, expected, *, allow_subclasses=True, rtol=None, atol=None,
                 equal_nan=False, check_device=True, check_dtype=True, check_layout=True,
                 check_stride=False, msg=None):
    """Raise AssertionError unless ``actual`` and ``expected`` are close, as
    torch.testing.assert_close: elementwise ``|a - e| <= atol + rtol * |e|`` with tolerances from
    the dtype unless both are given; shapes and (by default) dtypes must match; sequences and
    mappings compare item by item."""
    if (rtol is None) != (atol is None):
        raise ValueError("Both 'rtol' and 'atol' must be either specified or omitted, but got "
                         f"no {'rtol' if rtol is None else 'atol'}.")
    _compare(actual, expected, rtol, atol, equal_nan, check_dtype, msg, path="")


def _compare(actual, expected, rtol, atol, equal_nan, check_dtype, msg, path):
    if isinstance(expected, dict) and isinstance(actual, dict):
        if actual.keys() != expected.keys():
            raise AssertionError(f"The keys of the mappings do not match{_at(path)}: "
                                 f"{sorted(map(str, actual))} != {sorted(map(str, expected))}")
        for k in expected:
            _compare(actual[k], expected[k], rtol, atol, equal_nan, check_dtype, msg,
                     f"{path}[{k!r}]")
        return
    if isinstance(expected, (list, tuple)) and isinstance(actual, (list, tuple)):
        if len(actual) != len(expected):
            raise AssertionError(f"The length of the sequences mismatch{_at(path)}: "
                                 f"{len(actual)} != {len(expected)}")
        for i, (a, e) in enumerate(zip(actual, expected)):
            _compare(a, e, rtol, atol, equal_nan, check_dtype, msg, f"{path}[{i}]")
        return
    a, adt = _as_array(actual)
    e, edt = _as_array(expected)
    if a is None or e is None:
        if actual != expected:
            raise AssertionError(msg or f"{actual!r} != {expected!r}{_at(path)}")
        return
    if isinstance(actual, Tensor) != isinstance(expected, Tensor):
        raise AssertionError(f"Both inputs must be tensors or both numbers{_at(path)}; got "
                             f"{type(actual).__name__} and {type(expected).__name__}")
    if a.shape != e.shape:
        raise AssertionError(msg or f"The values for attribute 'shape' do not match: "
                             f"{_size(a.shape)} != {_size(e.shape)}.{_at(path)}")
    if check_dtype and adt != edt:
        raise AssertionError(msg or f"The values for attribute 'dtype' do not match: "
                             f"{adt} != {edt}.{_at(path)}")
    if rtol is None:
        rtol, atol = max((_TOLERANCES.get(d, (0.0, 0.0)) for d in (adt, edt)),
                         key=lambda t: t[0])
    if e.dtype == np.bool_ or np.issubdtype(e.dtype, np.integer) and \
            np.issubdtype(a.dtype, np.integer):
        bad = a != e
        diff = np.abs(a.astype(np.int64) - e.astype(np.int64))
    else:
        af, ef = a.astype(np.float64), e.astype(np.float64)
        with np.errstate(invalid="ignore"):
            diff = np.abs(af - ef)
            ok = diff <= atol + rtol * np.abs(ef)
            ok |= (af == ef)  # infinities of the same sign
            if equal_nan:
                ok |= np.isnan(af) & np.isnan(ef)
        bad = ~ok
    if not bad.any():
        return
    raise AssertionError(msg or _report(a, e, diff, bad, rtol, atol, path))


def _report(a, e, diff, bad, rtol, atol, path):
    exact = rtol == 0 and atol == 0 or not np.issubdtype(e.dtype, np.floating)
    kind = "Scalars" if a.ndim == 0 else "Tensor-likes"
    lines = [f"{kind} are not {'equal' if exact else 'close'}!", ""]
    allowed = (lambda t: "") if exact else (lambda t: f" (up to {t} allowed)")
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = diff / np.abs(e.astype(np.float64))
    if a.ndim == 0:
        lines.append(f"Expected {_num(e)} but got {_num(a)}.")
        lines.append(f"Absolute difference: {_num(diff)}{allowed(atol)}")
        lines.append(f"Relative difference: {_num(rel)}{allowed(rtol)}")
    else:
        n = int(bad.sum())
        lines.append(f"Mismatched elements: {n} / {bad.size} ({100 * n / bad.size:.1f}%)")
        for what, d, tol in (("absolute", diff, atol), ("relative", rel, rtol)):
            d = np.where(np.isnan(d), np.inf, d)
            k = np.unravel_index(int(np.argmax(np.where(bad, d, -1))), a.shape)
            v = (diff if what == "absolute" else rel)[k]
            lines.append(f"Greatest {what} difference: {_num(v)} at index "
                         f"{tuple(int(i) for i in k)}{allowed(tol)}")
    return "\n".join(lines) + _at(path)


def _num(v) -> str:
    v = np.asarray(v)
    if np.issubdtype(v.dtype, np.integer) or v.dtype == np.bool_:
        return repr(v.item())
    f = float(v)
    return "nan" if math.isnan(f) else repr(f)


def _size(shape) -> str:
    return f"gcomp.Size({list(shape)})"


def _at(path: str) -> str:
    return f"\n\nThe failure occurred for item {path}" if path else ""


def make_tensor(*shape, dtype, device=None, low=None, high=None, requires_grad=False,
                noncontiguous=False, exclude_zero=False):
    """torch.testing.make_tensor: uniform values in [low, high) (defaults -9, 9 for floats and
    signed integers, 0, 10 for unsigned, as torch's), from gcomp's global generator."""
    import gcomp

    if len(shape) == 1 and isinstance(shape[0], (list, tuple)):
        shape = tuple(shape[0])
    if dtype == T.bool_:
        return gcomp.randint(0, 2, shape, device=device).to(T.bool_)
    lo = -9 if low is None else low
    hi = 9 if high is None else high
    if dtype.is_floating_point:
        out = gcomp.rand(shape, dtype=T.float64, device=device) * (hi - lo) + lo
        out = out.to(dtype)
        if exclude_zero:
            out = gcomp.where(out == 0, gcomp.full_like(out, 1e-3), out)
        return out.requires_grad_(requires_grad)
    if dtype == T.uint8:
        lo, hi = (0 if low is None else low), (10 if high is None else high)
    out = gcomp.randint(int(lo), int(hi), shape, device=device).to(dtype)
    if exclude_zero:
        out = gcomp.where(out == 0, gcomp.ones_like(out), out)
    return out
