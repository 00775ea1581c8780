"""Run one module, written once against the PyTorch API, on torch and on gcomp.

``make(lib)`` builds the module with ``lib`` = ``torch`` or ``gcomp``
(``lib.nn.Linear(4, 3)``). :func:`check_module` builds both,
copies torch's state_dict into gcomp's through numpy, and compares

- the forward outputs,
- the gradients of ``sum(out * cotangent)`` for every floating-point input and every parameter,
- the forward output of the gcomp module called inside ``gcomp.compile`` (against eager gcomp).
"""

from __future__ import annotations

import numpy as np
import torch

import gcomp

rng = np.random.default_rng(0)

TOL = (2e-5, 2e-6)
GRAD_TOL = (1e-4, 1e-5)


def randn(*shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def uniform(*shape, low=0.0, high=1.0):
    return rng.uniform(low, high, size=shape).astype(np.float32)


def ints(*shape, high=5, low=0):
    return rng.integers(low, high, size=shape).astype(np.int64)


def npy(t):
    if isinstance(t, gcomp.Tensor):
        return np.asarray(t.detach())
    return t.detach().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)


def close(got, want, tol=TOL, what=""):
    got, want = npy(got), npy(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    np.testing.assert_allclose(got, want, rtol=tol[0], atol=tol[1], err_msg=what)


def load_from_torch(gm, tm):
    sd = {k: v.detach().numpy() for k, v in tm.state_dict().items()}
    gm.load_state_dict(sd)
    return sd


def _inputs(arrays, requires_grad):
    t_in, g_in = [], []
    for a in arrays:
        a = np.asarray(a)
        rg = requires_grad and a.dtype.kind == "f"
        t_in.append(torch.tensor(a.copy(), requires_grad=rg))
        g_in.append(gcomp.tensor(a.copy(), requires_grad=rg))
    return t_in, g_in


def check_module(make, arrays, *, grad=True, compiled=True, train=True, tol=TOL,
                 grad_tol=GRAD_TOL):
    """Compare a gcomp module with torch's: values, input and parameter gradients, compiled."""
    torch.manual_seed(0)
    tm, gm = make(torch), make(gcomp)
    tm.train(train)
    gm.train(train)
    sd = load_from_torch(gm, tm)
    assert list(gm.state_dict()) == list(sd)
    t_in, g_in = _inputs(arrays, grad)
    t_out, g_out = tm(*t_in), gm(*g_in)
    close(g_out, t_out, tol, "forward")
    if grad:
        cot = randn(*t_out.shape)
        (t_out * torch.tensor(cot)).sum().backward()
        (g_out * gcomp.tensor(cot)).sum().backward()
        for i, (t, g) in enumerate(zip(t_in, g_in, strict=False)):
            if t.requires_grad:
                close(g.grad, t.grad, grad_tol, f"grad of input {i}")
        t_params = dict(tm.named_parameters())
        for name, p in gm.named_parameters():
            tp = t_params[name]
            if tp.grad is None:
                assert p.grad is None or not npy(p.grad).any(), name
            else:
                close(p.grad, tp.grad, grad_tol, f"grad of {name}")
    if compiled:
        fn = gcomp.compile(lambda *xs: gm(*xs))
        c_out = fn(*[g.detach() for g in g_in])
        close(c_out, g_out, tol, "compiled forward")
    return tm, gm
