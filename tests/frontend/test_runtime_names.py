"""torch's process-wide names and debugging aids, against torch 2.13: set_default_dtype (and
the compiled guard on it), autograd.detect_anomaly, grad_fn.name()/next_functions,
autograd.Variable, thread counts and matmul precision, torch.testing.assert_close/make_tensor,
and Module full backward hooks."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

import gcomp


def _dtypes(lib):
    lin = lib.nn.Linear(2, 2)
    made = [lib.tensor([1.5]), lib.zeros(2), lib.randn(2), lib.arange(0, 1, 0.5), lin.weight,
            lib.tensor([1]) * 1.5, lib.tensor(2.0), lib.full((1,), 1.0), lib.ones(1) + 1]
    return [str(t.dtype).split(".")[-1] for t in made] + [str(lib.get_default_dtype())[-7:]]


@pytest.fixture
def restore_default_dtype():
    yield
    gcomp.set_default_dtype(gcomp.float32)
    torch.set_default_dtype(torch.float32)


@pytest.mark.parametrize("name", ["float64", "float32"])
def test_set_default_dtype_as_torch(name, restore_default_dtype):
    torch.set_default_dtype(getattr(torch, name))
    gcomp.set_default_dtype(getattr(gcomp, name))
    assert _dtypes(gcomp) == _dtypes(torch)


def test_default_dtype_is_a_guard_of_compiled_functions(restore_default_dtype, caplog):
    f = gcomp.compile(lambda x: x * 1.5 + gcomp.ones(2))
    x = gcomp.tensor([1, 2])
    assert f(x).dtype == gcomp.float32
    with caplog.at_level(logging.INFO, logger="gcomp.recompiles"):
        gcomp.set_default_dtype(gcomp.float64)
        out = f(x)
    assert out.dtype == gcomp.float64
    np.testing.assert_allclose(out.numpy(), [2.5, 4.0])
    assert any("default dtype changed from gcomp.float32 to gcomp.float64" in r.getMessage()
               for r in caplog.records)
    gcomp.set_default_dtype(gcomp.float32)
    assert f(x).dtype == gcomp.float32
    assert f.cache_info().misses == 2  # the float32 executable is reused


def test_set_default_dtype_refuses_integers():
    with pytest.raises(gcomp.GcompError, match="floating-point") as info:
        gcomp.set_default_dtype(gcomp.int64)
    assert "test_runtime_names.py" in str(info.value)
    assert gcomp.get_default_dtype() == gcomp.float32


def test_detect_anomaly_names_the_op_and_its_line():
    for lib in (torch, gcomp):
        x = lib.tensor([0.0, 1.0], requires_grad=True)
        with lib.autograd.detect_anomaly():
            y = lib.sqrt(x)  # the NaN: d sqrt(0) = inf, times 0
            with pytest.raises(RuntimeError, match="returned nan values in its 0th output") \
                    as info:
                (y * 0).sum().backward()
        if lib is gcomp:
            assert "SqrtBackward" in str(info.value)
            assert "test_runtime_names.py" in str(info.value)
    # off (the default) and without NaN: no error, the same gradients as torch
    for check in (False, True):
        xs = [lib.tensor([0.5, 1.0], requires_grad=True) for lib in (torch, gcomp)]
        for lib, x in zip((torch, gcomp), xs):
            with lib.autograd.set_detect_anomaly(check):
                lib.sqrt(x).sum().backward()
        np.testing.assert_allclose(xs[1].grad.numpy(), xs[0].grad.numpy(), rtol=1e-6)
    assert not gcomp.autograd.is_anomaly_enabled()


def test_grad_fn_name_and_next_functions():
    w, tw = gcomp.randn(3, requires_grad=True), torch.randn(3, requires_grad=True)
    c, tc = gcomp.ones(3), torch.ones(3)
    loss, tloss = ((w * w) * c).sum(), ((tw * tw) * tc).sum()
    assert loss.grad_fn.name() == "ReduceSumBackward"
    g, t = loss.grad_fn, tloss.grad_fn
    assert len(g.next_functions) == len(t.next_functions) == 1
    (mul, _), = g.next_functions
    assert mul.name() == "MulBackward"
    # (w * w) needs grad, c does not: torch gives (MulBackward0, 0) and (None, 0)
    assert [n is None for n, _ in mul.next_functions] == \
        [n is None for n, _ in t.next_functions[0][0].next_functions]
    (inner, _), _ = mul.next_functions
    leaves = [n for n, _ in inner.next_functions]
    assert [n.name() for n in leaves] == ["torch::autograd::AccumulateGrad"] * 2
    assert all(n.variable is w for n in leaves)
    assert w.grad_fn is None


def test_variable_is_a_leaf_sharing_the_data():
    for lib in (torch, gcomp):
        t = lib.ones(2)
        v = lib.autograd.Variable(t, requires_grad=True)
        assert v is not t and v.requires_grad and not t.requires_grad and v.is_leaf
        with lib.no_grad():
            t.add_(1)
        np.testing.assert_array_equal(v.detach().numpy(), [2.0, 2.0])
        assert isinstance(lib.zeros(1), lib.autograd.Variable)
        assert not isinstance(np.zeros(1), lib.autograd.Variable)


def test_threads_and_matmul_precision():
    n = gcomp.get_num_threads()
    assert n >= 1 and gcomp.get_num_interop_threads() == n
    gcomp.set_num_threads(n)  # its own size: nothing to say
    with pytest.raises(gcomp.GcompError):
        gcomp.set_num_threads(0)
    assert gcomp.get_float32_matmul_precision() == torch.get_float32_matmul_precision()
    try:
        gcomp.set_float32_matmul_precision("high")
        assert gcomp.get_float32_matmul_precision() == "high"
        a = np.random.default_rng(0).standard_normal((8, 8)).astype(np.float32)
        np.testing.assert_allclose((gcomp.tensor(a) @ gcomp.tensor(a)).numpy(), a @ a,
                                   rtol=1e-5, atol=1e-5)  # still full float32 on CPU
        with pytest.raises(gcomp.GcompError, match="highest"):
            gcomp.set_float32_matmul_precision("low")
    finally:
        gcomp.set_float32_matmul_precision("highest")


ASSERT_CLOSE = [
    ([1.0, 2.0], [1.0, 2.0 + 1e-6], {}),
    ([1.0, 2.0], [1.0, 2.1], {}),
    ([1.0, 2.0], [1.0, 2.1], {"rtol": 0.1, "atol": 0.0}),
    ([1, 2], [1, 3], {}),
    ([float("nan")], [float("nan")], {}),
    ([float("nan")], [float("nan")], {"equal_nan": True}),
    ([float("inf"), 1.0], [float("inf"), 1.0], {}),
    ([[1.0, 2.0, 3.0]], [[1.0, 2.0]], {}),
]


@pytest.mark.parametrize("a,e,kw", ASSERT_CLOSE)
def test_assert_close_as_torch(a, e, kw):
    outcome = {}
    for lib in (torch, gcomp):
        try:
            lib.testing.assert_close(lib.tensor(a), lib.tensor(e), **kw)
            outcome[lib] = None
        except AssertionError as err:
            outcome[lib] = str(err).replace("torch.", "gcomp.").splitlines()[0]
    assert outcome[gcomp] == outcome[torch]


def test_assert_close_dtypes_containers_and_messages():
    with pytest.raises(AssertionError, match="'dtype' do not match"):
        gcomp.testing.assert_close(gcomp.ones(2), gcomp.ones(2, dtype=gcomp.float64))
    gcomp.testing.assert_close(gcomp.ones(2), gcomp.ones(2, dtype=gcomp.float64),
                               check_dtype=False)
    with pytest.raises(AssertionError, match=r"Greatest absolute difference: 0.5 at index \(1,\)"):
        gcomp.testing.assert_close(gcomp.tensor([1.0, 2.0]), gcomp.tensor([1.0, 2.5]))
    gcomp.testing.assert_close({"a": [gcomp.ones(2), 3]}, {"a": [gcomp.ones(2), 3]})
    with pytest.raises(AssertionError, match=r"item \['a'\]\[0\]"):
        gcomp.testing.assert_close({"a": [gcomp.ones(2)]}, {"a": [gcomp.zeros(2)]})
    with pytest.raises(ValueError, match="rtol"):
        gcomp.testing.assert_close(gcomp.ones(1), gcomp.ones(1), atol=1.0)
    t = gcomp.testing.make_tensor(2, 3, dtype=gcomp.float32, low=-1, high=1)
    assert t.shape == (2, 3) and t.dtype == gcomp.float32
    assert float(t.abs().max()) <= 1


def _hooked_run(lib):
    lib.manual_seed(0)
    m = lib.nn.Sequential(lib.nn.Linear(3, 4), lib.nn.ReLU(), lib.nn.Linear(4, 2))
    w = np.arange(12, dtype=np.float32).reshape(4, 3) / 10 - 0.5
    with lib.no_grad():
        m[0].weight.copy_(lib.tensor(w))
        m[0].bias.zero_()
        m[2].weight.fill_(0.3)
        m[2].bias.zero_()
    log = []

    def hook(mod, gi, go):
        log.append(("hook", type(mod).__name__, [None if g is None else g.detach().numpy()
                                                 for g in gi], [g.detach().numpy() for g in go]))
        return tuple(None if g is None else g * 2 for g in gi)

    def pre(mod, go):
        log.append(("pre", type(mod).__name__, [g.detach().numpy() for g in go]))

    m[2].register_full_backward_hook(hook)
    handle = m[0].register_full_backward_hook(hook)
    m[2].register_full_backward_pre_hook(pre)
    with pytest.warns(UserWarning, match="no inputs require"):
        m(lib.tensor([[1.0, -2.0, 0.5]])).sum().backward()  # m[0]'s input needs no grad
    x = lib.tensor([[1.0, -2.0, 0.5]], requires_grad=True)
    m(x).sum().backward()
    handle.remove()
    m(x).sum().backward()  # m[0]'s hook is gone: x.grad accumulates the undoubled gradient
    return log, m[0].weight.grad.numpy(), x.grad.detach().numpy()


def test_full_backward_hooks_as_torch():
    (glog, gw, gx), (tlog, tw, tx) = _hooked_run(gcomp), _hooked_run(torch)
    assert [e[:2] for e in glog] == [e[:2] for e in tlog]
    for ge, te in zip(glog, tlog):
        for gs, ts in zip(ge[2:], te[2:]):
            for g, t in zip(gs, ts):
                assert (g is None) == (t is None)
                if g is not None:
                    np.testing.assert_allclose(g, t, rtol=1e-6)
    np.testing.assert_allclose(gw, tw, rtol=1e-6)
    np.testing.assert_allclose(gx, tx, rtol=1e-6)


def test_full_backward_hook_inside_compile_is_refused():
    lin = gcomp.nn.Linear(2, 2)
    lin.register_full_backward_hook(lambda m, gi, go: None)
    f = gcomp.compile(lambda x: lin(x).sum())
    with pytest.raises(gcomp.GcompError, match="backward hook") as info:
        f(gcomp.ones(1, 2, requires_grad=True))
    assert "test_runtime_names.py" in str(info.value)
