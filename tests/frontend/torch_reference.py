"""Run one expression on torch (the reference), on gcomp eagerly and inside gcomp.compile.

A case is a function ``fn(lib, *tensors)`` written once against the PyTorch API, where ``lib`` is
``torch`` or ``gcomp``, plus numpy arrays for its tensor arguments. :func:`check` compares

- gcomp's eager result with torch's: values, dtype (by name) and shape;
- the same expression inside ``gcomp.compile`` with the eager result;
- where torch can differentiate it, the gradient of ``sum(out * cotangent)`` with respect to
  every floating-point input: eagerly with ``.backward()``, compiled with
  ``gcomp.autograd.grad`` inside the compiled function, both against torch's.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import gcomp

# Tolerances by dtype name: (rtol, atol). Values: one or two ulps of float32 and an atol for
# sums of a few terms; gradients go through more ops, so they get a little more room.
TOL = {"float16": (2e-3, 1e-3), "bfloat16": (1.6e-2, 1e-2), "float32": (2e-6, 2e-6),
       "float64": (1e-12, 1e-12)}
GRAD_TOL = {"float16": (1e-2, 1e-2), "bfloat16": (3e-2, 3e-2), "float32": (2e-5, 1e-5),
            "float64": (1e-10, 1e-10)}

rng = np.random.default_rng(1234)


def arr(*shape, dtype="float32", low=-2.0, high=2.0, gen=None):
    """Random test data: floats in [low, high), ints in [low, high), bools; shape () is 0-d.

    Module-level tables draw from the shared generator (in import order, the same on every
    xdist worker); code that runs inside a test passes its own ``gen``, so that its data does
    not depend on which tests ran before it.
    """
    gen = gen or rng
    if dtype == "bool":
        return gen.random(shape) < 0.5
    if np.dtype(dtype).kind in "iu":
        return gen.integers(int(low), int(high), size=shape).astype(dtype)
    return np.asarray(gen.uniform(low, high, size=shape)).astype(dtype)


def pos(*shape, dtype="float32"):
    """Random positive floats away from 0 (for log, sqrt, division)."""
    return arr(*shape, dtype=dtype, low=0.5, high=2.0)


def dtype_name(dt) -> str:
    return dt.name if isinstance(dt, gcomp.dtype) else str(dt).split(".")[-1]


def torch_tensor(a, requires_grad=False):
    a = np.asarray(a)
    if a.dtype.name == "bfloat16":  # numpy has no bfloat16 of its own (ml_dtypes' one)
        t = torch.from_numpy(a.astype(np.float32)).bfloat16()
    else:
        t = torch.from_numpy(np.array(a, copy=True))
    return t.requires_grad_() if requires_grad else t


def gcomp_tensor(a, requires_grad=False):
    return gcomp.tensor(np.array(a, copy=True), requires_grad=requires_grad)


def as_numpy(x) -> np.ndarray:
    """A gcomp or torch tensor's values as float64/int64/bool numpy (bfloat16 included)."""
    if isinstance(x, torch.Tensor):
        x = x.detach()
        return (x.double() if x.dtype.is_floating_point else x).numpy()
    x = x.detach()
    return np.asarray(x.double() if x.dtype.is_floating_point else x)


def leaves(out) -> list:
    """The outputs of a case, flattened (tuples, lists and namedtuples such as max's)."""
    if isinstance(out, (tuple, list)) and not isinstance(out, (torch.Size, gcomp.Size)):
        return [y for x in out for y in leaves(x)]
    return [out]


def assert_same(got, want, tol=None, what="result"):
    """``got`` (gcomp) equals ``want`` (torch, or gcomp eager): dtype name, shape and values; or
    equal Python values (sizes, lists, numbers, bools) of the same type."""
    if isinstance(want, (torch.Tensor, gcomp.Tensor)):
        assert isinstance(got, gcomp.Tensor), f"{what}: expected a Tensor, got {got!r}"
        assert dtype_name(got.dtype) == dtype_name(want.dtype), (
            f"{what}: dtype {dtype_name(got.dtype)}, torch gives {dtype_name(want.dtype)}")
        assert tuple(got.shape) == tuple(want.shape), (
            f"{what}: shape {tuple(got.shape)}, torch gives {tuple(want.shape)}")
        g, w = as_numpy(got), as_numpy(want)
        if want.dtype.is_floating_point:
            rtol, atol = tol or TOL[dtype_name(want.dtype)]
            np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, equal_nan=True, err_msg=what)
        else:
            np.testing.assert_array_equal(g, w, err_msg=what)
    elif isinstance(want, torch.Size):
        assert isinstance(got, gcomp.Size) and tuple(got) == tuple(want), f"{what}: {got} vs {want}"
    elif isinstance(want, torch.dtype):
        assert isinstance(got, gcomp.dtype) and dtype_name(got) == dtype_name(want), (
            f"{what}: {got} vs {want}")
    elif isinstance(want, torch.device):
        assert isinstance(got, gcomp.device) and str(got) == str(want), f"{what}: {got} vs {want}"
    elif isinstance(want, np.ndarray):
        assert isinstance(got, np.ndarray), f"{what}: expected a numpy array, got {got!r}"
        assert got.dtype == want.dtype and got.shape == want.shape, (
            f"{what}: {got.dtype}{got.shape} vs {want.dtype}{want.shape}")
        np.testing.assert_allclose(got, want, rtol=1e-6, err_msg=what)
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), f"{what}: {got!r} vs {want!r}"
        for g, w in zip(got, want, strict=True):
            assert_same(g, w, tol, what)
    else:
        assert type(got) is type(want), f"{what}: {type(got).__name__} vs {type(want).__name__}"
        if isinstance(want, float):
            np.testing.assert_allclose(got, want, rtol=1e-6, err_msg=what)
        else:
            assert got == want, f"{what}: {got!r} vs {want!r}"


def check(fn, *arrays, grad=True, compiled=True, tol=None, grad_tol=None):
    """Compare ``fn(lib, *tensors)`` on gcomp (eager and compiled, values and gradients) with torch.

    ``arrays`` are numpy arrays (each becomes a tensor of the same dtype and shape). Gradients are
    taken with respect to every floating-point argument when ``grad`` is true and torch's result
    is differentiable. The compiled run is one gcomp.compile of a function that returns the
    outputs and the gradients together.
    """
    diff = [grad and np.asarray(a).dtype.kind == "f" for a in arrays]
    t_args = [torch_tensor(a, d) for a, d in zip(arrays, diff, strict=True)]
    want = leaves(fn(torch, *t_args))
    tensor_outs = [i for i, w in enumerate(want) if isinstance(w, torch.Tensor)]

    # the reference gradient of sum(out * cotangent) over the differentiable outputs
    outs = [i for i in tensor_outs if want[i].requires_grad]
    wrt = [k for k, d in enumerate(diff) if d]
    t_grads, cts = None, []
    if outs and wrt:
        gen = np.random.default_rng(0)
        cts = [arr(*want[i].shape, dtype=dtype_name(want[i].dtype), gen=gen) for i in outs]
        try:
            t_grads = torch.autograd.grad(_loss(want, outs, [torch_tensor(c) for c in cts]),
                                          [t_args[k] for k in wrt], allow_unused=True)
        except RuntimeError:  # floor_divide, float ** bool tensor: torch has no gradient
            t_grads = None
        if t_grads is not None and all(g is None or not g.any() for g in t_grads):
            t_grads = None  # floor, round, sign: torch's gradient is zero; gcomp tapes nothing
    if t_grads is not None and grad_tol is None:  # the least precise dtype on the way decides
        involved = [dtype_name(t.dtype) for t in t_args + [want[i] for i in outs]]
        grad_tol = max((GRAD_TOL[n] for n in involved if n in GRAD_TOL), key=lambda t: t[0])
    grad_args = t_grads is not None

    g_args = [gcomp_tensor(a, d and grad_args) for a, d in zip(arrays, diff, strict=True)]
    got = leaves(fn(gcomp, *g_args))
    assert len(got) == len(want), f"{len(got)} outputs, torch gives {len(want)}"
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        assert_same(g, w, tol, f"eager output {i}")
    if grad_args:
        _loss(got, outs, [gcomp_tensor(c) for c in cts]).backward()
        for k, tg in zip(wrt, t_grads, strict=True):
            if tg is None or (g_args[k].grad is None and not tg.any()):
                continue  # an input the result no longer depends on (overwritten by copy_)
            assert_same(g_args[k].grad, tg, grad_tol, f"eager gradient of argument {k}")

    if not compiled or not tensor_outs:
        return

    def compiled_fn(*a):
        xs, ct = a[:len(arrays)], a[len(arrays):]
        out = leaves(fn(gcomp, *xs))
        if not grad_args:
            return tuple(out[i] for i in tensor_outs)
        gs = gcomp.autograd.grad(_loss(out, outs, ct), [xs[k] for k in wrt], allow_unused=True,
                                 materialize_grads=True)
        return tuple(out[i] for i in tensor_outs) + tuple(gs)

    c_args = [gcomp_tensor(a, d and grad_args) for a, d in zip(arrays, diff, strict=True)]
    results = gcomp.compile(compiled_fn)(*c_args, *[gcomp_tensor(c) for c in cts])
    for i, c in zip(tensor_outs, results, strict=False):
        assert_same(c, got[i], tol, f"compiled output {i} vs eager")
    if grad_args:
        for k, cg, tg in zip(wrt, results[len(tensor_outs):], t_grads, strict=True):
            if tg is not None:
                assert_same(cg, tg, grad_tol, f"compiled gradient of argument {k}")


def _loss(out_leaves, outs, cotangents):
    return sum((out_leaves[i] * c).sum() for i, c in zip(outs, cotangents, strict=True))


def torch_raises(fn, *arrays) -> bool:
    try:
        fn(torch, *[torch_tensor(a) for a in arrays])
    except (RuntimeError, TypeError, ValueError, IndexError, NotImplementedError,
            ZeroDivisionError):
        return True
    return False


def check_or_error(fn, *arrays, **kwargs):
    """:func:`check`, or where torch refuses the expression, gcomp refuses it with a GcompError."""
    if torch_raises(fn, *arrays):
        with pytest.raises(gcomp.GcompError):
            fn(gcomp, *[gcomp_tensor(a) for a in arrays])
    else:
        check(fn, *arrays, **kwargs)


def variant_marks(name: str, names) -> list:
    """``[pytest.mark.slow]`` for a table case that is a variant of another (``cumprod_zeros``
    of ``cumprod``): ``make test`` runs each function's base case, ``make test-all`` them all."""
    base = [m for m in names if m != name and name.startswith(m + "_")]
    return [pytest.mark.slow] if base else []
