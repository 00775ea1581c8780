"""Devices as torch has them: gcomp.device parsing, equality, str and repr against torch.device;
device= on every creation function; tensor.to / cpu / cuda and module.to against torch; errors
when no GPU is present; and, on 4 host CPU devices in one subprocess, tensors on two devices
meeting in an op (eager and compiled), a compiled step on cpu:1, and moves under autograd."""

from __future__ import annotations

import os
import textwrap

import numpy as np
import pytest
import torch
from host_devices import run_on_host_devices

import gcomp
from gcomp import nn

HERE = os.path.abspath(__file__)


# -- gcomp.device against torch.device ----------------------------------------------------------
@pytest.mark.parametrize("spec", ["cpu", "cpu:0", "cpu:3", "cuda", "cuda:0", "cuda:1"])
def test_device_str_repr_like_torch(spec):
    g, t = gcomp.device(spec), torch.device(spec)
    assert (str(g), repr(g), g.type, g.index) == (str(t), repr(t), t.type, t.index)


@pytest.mark.parametrize("args", [("cuda", 1), ("cpu", 0), ("cpu", None)])
def test_device_type_and_index_like_torch(args):
    g, t = gcomp.device(*args), torch.device(*args)
    assert (str(g), repr(g)) == (str(t), repr(t))
    assert gcomp.device(g) == g and str(gcomp.device(g)) == str(t)


@pytest.mark.parametrize("a, b, equal", [
    ("cpu", "cpu", True), ("cuda:1", "cuda:1", True), ("cuda:0", "cuda:1", False),
    ("cpu", "cuda", False), ("cpu:1", "cpu:2", False)])
def test_device_equality_and_hash_like_torch(a, b, equal):
    assert (torch.device(a) == torch.device(b)) is equal
    assert (gcomp.device(a) == gcomp.device(b)) is equal
    if equal:
        assert hash(gcomp.device(a)) == hash(gcomp.device(b))
    assert (gcomp.device(a) == b) is equal  # a string compares as the device it names


def test_device_without_index_is_index_zero():
    # torch has a current device; gcomp has none, so an index-less device is index 0
    assert gcomp.device("cuda") == gcomp.device("cuda:0")
    assert {gcomp.device("cpu"), gcomp.device("cpu:0")} == {gcomp.device("cpu")}


@pytest.mark.parametrize("bad", ["foo", "cuda:x", "cuda:-1", "cuda:"])
def test_bad_device_strings_raise_like_torch(bad):
    with pytest.raises(RuntimeError):
        torch.device(bad)
    with pytest.raises(gcomp.GcompError, match=f"{os.path.basename(HERE)}:"):
        gcomp.device(bad)


def test_device_string_with_index_and_index_argument_raises():
    with pytest.raises(RuntimeError):
        torch.device("cuda:0", 1)
    with pytest.raises(gcomp.GcompError, match="already has an index"):
        gcomp.device("cuda:0", 1)


# -- device= on creation functions --------------------------------------------------------------
CREATION = {
    "tensor": lambda L, d: L.tensor([[1.0, 2.0], [3.0, 4.0]], device=d),
    "as_tensor": lambda L, d: L.as_tensor([1, 2, 3], device=d),
    "zeros": lambda L, d: L.zeros(2, 3, device=d),
    "ones": lambda L, d: L.ones((2, 3), device=d, dtype=L.float64),
    "full": lambda L, d: L.full((2, 2), 7, device=d),
    "empty": lambda L, d: L.empty(2, 3, device=d).zero_(),
    "arange": lambda L, d: L.arange(1, 10, 2, device=d),
    "arange_float": lambda L, d: L.arange(0.5, 3.0, 0.5, device=d),
    "linspace": lambda L, d: L.linspace(-1, 1, 7, device=d),
    "eye": lambda L, d: L.eye(3, 4, device=d),
    "zeros_like": lambda L, d: L.zeros_like(L.ones(2, 2), device=d),
    "ones_like": lambda L, d: L.ones_like(L.ones(2, 2, dtype=L.int64), device=d),
    "full_like": lambda L, d: L.full_like(L.ones(3), 2.5, device=d),
    "empty_like": lambda L, d: L.empty_like(L.ones(3), device=d).zero_(),
    "new_zeros": lambda L, d: L.ones(2).new_zeros(3, device=d),
    "new_ones": lambda L, d: L.ones(2).new_ones((2, 2), device=d),
    "new_full": lambda L, d: L.ones(2).new_full((2,), 4.0, device=d),
    "new_empty": lambda L, d: L.ones(2).new_empty(3, device=d).zero_(),
    "new_tensor": lambda L, d: L.ones(2).new_tensor([5, 6], device=d),
}
RANDOM = {
    "rand": lambda L, d: L.rand(4, 3, device=d),
    "randn": lambda L, d: L.randn(4, 3, device=d),
    "randint": lambda L, d: L.randint(0, 5, (4, 3), device=d),
    "rand_like": lambda L, d: L.rand_like(L.ones(4, 3), device=d),
    "randn_like": lambda L, d: L.randn_like(L.ones(4, 3), device=d),
    "randint_like": lambda L, d: L.randint_like(L.ones(4, 3), 0, 5, device=d),
}


@pytest.mark.parametrize("name", sorted(CREATION))
@pytest.mark.parametrize("dev", ["cpu", gcomp.device("cpu")])
def test_creation_device_cpu_like_torch(name, dev):
    tdev = torch.device(str(dev))
    ref = CREATION[name](torch, tdev)
    out = CREATION[name](gcomp, dev)
    assert str(out.device) == str(ref.device) == "cpu"
    assert out.device == gcomp.device("cpu") and out.dtype.name == str(ref.dtype).split(".")[-1]
    np.testing.assert_allclose(out.numpy(), ref.numpy(), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", sorted(RANDOM))
def test_random_creation_device_cpu(name):
    ref = RANDOM[name](torch, torch.device("cpu"))
    out = RANDOM[name](gcomp, "cpu")
    assert str(out.device) == str(ref.device) == "cpu"
    assert tuple(out.shape) == tuple(ref.shape) and out.dtype.name == str(ref.dtype).split(".")[-1]


@pytest.mark.parametrize("name", ["zeros", "rand", "tensor", "arange", "eye"])
def test_creation_on_a_missing_device_raises_at_the_call(name):
    f = {**CREATION, **RANDOM}[name]
    with pytest.raises(gcomp.GcompError, match=rf"{os.path.basename(HERE)}:\d+: .*cpu:7 does not"):
        f(gcomp, "cpu:7")


# -- tensor.to, cpu, cuda ------------------------------------------------------------------------
TO = {
    "dtype": lambda L, x: x.to(L.float64),
    "device": lambda L, x: x.to("cpu"),
    "device_obj": lambda L, x: x.to(L.device("cpu")),
    "device_dtype": lambda L, x: x.to("cpu", L.float16),
    "device_kw_dtype_kw": lambda L, x: x.to(device="cpu", dtype=L.int32),
    "other_tensor": lambda L, x: x.to(L.zeros(1, dtype=L.float64)),
    "cpu": lambda L, x: x.cpu(),
    "to_copy": lambda L, x: x.to("cpu", copy=True),
    "positional_copy": lambda L, x: x.to("cpu", L.float32, False, True),
}


@pytest.mark.parametrize("name", sorted(TO))
def test_tensor_to_like_torch(name):
    data = np.array([[1.5, -2.25], [3.0, 0.125]], dtype=np.float32)
    tx, gx = torch.tensor(data), gcomp.tensor(data)
    ref, out = TO[name](torch, tx), TO[name](gcomp, gx)
    assert out.dtype.name == str(ref.dtype).split(".")[-1]
    assert str(out.device) == str(ref.device)
    assert (out is gx) == (ref is tx)  # no copy when nothing changes, as in torch
    np.testing.assert_array_equal(np.asarray(out.numpy(), np.float64),
                                  ref.numpy().astype(np.float64))


def test_to_device_keeps_autograd():
    data = np.array([1.0, -2.0, 3.0], dtype=np.float32)
    tx = torch.tensor(data, requires_grad=True)
    gx = gcomp.tensor(data, requires_grad=True)
    for lib, x in ((torch, tx), (gcomp, gx)):
        (x.to("cpu", lib.float64) * x.to("cpu")).sum().backward()
    np.testing.assert_allclose(gx.grad.numpy(), tx.grad.numpy())


def test_bad_to_argument_raises():
    with pytest.raises(gcomp.GcompError, match="to\\(\\): unexpected argument"):
        gcomp.ones(2).to([1, 2])


def _has_gpu() -> bool:
    import jax

    try:
        return bool(jax.devices("gpu"))
    except RuntimeError:
        return False


def test_cuda_queries_match_jax():
    assert gcomp.cuda.is_available() is _has_gpu()
    assert gcomp.cuda.device_count() == (len(__import__("jax").devices("gpu")) if _has_gpu()
                                         else 0)


@pytest.mark.skipif(_has_gpu(), reason="checks the errors of a machine without a GPU")
@pytest.mark.parametrize("call", [
    lambda: gcomp.ones(2).cuda(), lambda: gcomp.ones(2).to("cuda:0"),
    lambda: gcomp.zeros(2, device="cuda"), lambda: nn.Linear(2, 2).cuda(),
    lambda: gcomp.ones(2).cuda(1)])
def test_cuda_without_gpu_is_a_clear_error(call):
    assert not torch.cuda.is_available() or _has_gpu()
    with pytest.raises(gcomp.GcompError, match=rf"{os.path.basename(HERE)}:\d+: no cuda device "
                       r"is available here \(gcomp.cuda.is_available\(\) is False\); use 'cpu'"):
        call()


# -- module.to -------------------------------------------------------------------------------
def test_module_to_keeps_parameters_and_matches_torch():
    gcomp.manual_seed(0)
    g = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    t = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 2))
    t.load_state_dict({k: torch.tensor(v.detach().numpy()) for k, v in g.state_dict().items()})
    params = list(g.parameters())
    opt = gcomp.optim.SGD(g.parameters(), lr=0.1)
    topt = torch.optim.SGD(t.parameters(), lr=0.1)
    assert g.to("cpu") is g and g.cpu() is g
    g.to("cpu", gcomp.float64)
    t.to("cpu", torch.float64)
    assert all(a is b for a, b in zip(g.parameters(), params))  # the optimizer's objects
    assert {str(p.device) for p in g.parameters()} == {"cpu"}
    assert g[1].num_batches_tracked.dtype == gcomp.int64  # integers keep their dtype
    x = np.random.default_rng(0).standard_normal((5, 3))
    for lib, m, o in ((gcomp, g, opt), (torch, t, topt)):
        o.zero_grad()
        m(lib.tensor(x)).square().mean().backward()
        o.step()
    for (k, a), b in zip(g.state_dict().items(), t.state_dict().values()):  # gcomp's lr is f32
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-7, atol=1e-12, err_msg=k)


def test_to_inside_compile_is_the_executables_device():
    def f(x):
        y = x.to(x.device) * 2
        return y.to("cpu", gcomp.float64) + gcomp.ones(3, device=x.device)

    x = gcomp.tensor([1.0, 2.0, 3.0])
    out = gcomp.compile(f)(x)
    np.testing.assert_array_equal(out.numpy(), f(x).numpy())
    assert out.dtype == gcomp.float64 and str(out.device) == "cpu"


# -- 4 host devices (one subprocess) ------------------------------------------------------------
SCRIPT = textwrap.dedent(r'''
    import json, sys
    import numpy as np
    import gcomp
    from gcomp import nn

    out = {}

    def err(key, fn):
        line = sys._getframe(1).f_lineno
        try:
            fn()
            out[key] = None
        except gcomp.GcompError as e:
            out[key] = [str(e), line]

    out["devices"] = [[d.id for d in gcomp.distributed.devices()],
                      [gcomp.device("cpu", i).jax_device().id for i in range(4)]]
    x = gcomp.ones(3, device="cpu:0")
    y = gcomp.arange(3.0, device="cpu:1")
    out["xy"] = [str(x.device), str(y.device), repr(y.device)]
    err("add", lambda: x + y)
    out["uncommitted"] = str((gcomp.ones(3) + y).device)  # made without a device: follows y
    out["like"] = [str(f(y).device) for f in (gcomp.zeros_like, gcomp.rand_like,
                                              lambda t: t.new_zeros(2), lambda t: t * 2)]
    out["made"] = [str(f().device) for f in (
        lambda: gcomp.zeros(2, device="cpu:2"), lambda: gcomp.randn(2, device="cpu:2"),
        lambda: gcomp.tensor([1, 2], device="cpu:2"), lambda: gcomp.eye(2, device="cpu:2"),
        lambda: gcomp.linspace(0, 1, 3, device="cpu:2"),
        lambda: gcomp.randint(0, 3, (2,), device="cpu:2"))]
    err("missing", lambda: gcomp.ones(2, device="cpu:4"))

    # a move is differentiable: the gradient comes back to the source device
    a = gcomp.tensor([1.0, 2.0, 3.0], device="cpu:0", requires_grad=True)
    b = a.to("cpu:3")
    (b * b).sum().backward()
    out["grad"] = [str(b.device), str(a.grad.device), a.grad.tolist()]

    # module.to("cpu:1"): same Parameter objects, forward on cpu:1
    gcomp.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    ref = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    params = list(model.parameters())
    opt = gcomp.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model.to("cpu:1")
    out["same_params"] = all(p is q for p, q in zip(model.parameters(), params))
    out["param_devices"] = sorted({str(p.device) for p in model.parameters()})
    xb = np.random.default_rng(0).standard_normal((6, 4)).astype(np.float32)
    yb = np.random.default_rng(1).integers(0, 2, (6,))
    out["forward"] = str(model(gcomp.tensor(xb, device="cpu:1")).device)
    err("eager_forward", lambda: model(gcomp.tensor(xb, device="cpu:0")))

    def step(x, y):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    cstep = gcomp.compile(step)
    losses = [cstep(gcomp.tensor(xb, device="cpu:1"), gcomp.tensor(yb, device="cpu:1"))
              for _ in range(3)]
    out["step_devices"] = sorted({str(t.device) for t in losses} |
                                 {str(p.device) for p in model.parameters()} |
                                 {str(s["momentum_buffer"].device) for s in opt.state.values()})
    # the same three steps eagerly on the default device
    gcomp.manual_seed(0)
    m2 = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    m2.load_state_dict({k: gcomp.tensor(v) for k, v in ref.items()})
    o2 = gcomp.optim.SGD(m2.parameters(), lr=0.1, momentum=0.9)
    ref_losses = []
    for _ in range(3):
        o2.zero_grad()
        loss = nn.functional.cross_entropy(m2(gcomp.tensor(xb)), gcomp.tensor(yb))
        loss.backward()
        o2.step()
        ref_losses.append(loss.item())
    out["losses"] = [[t.item() for t in losses], ref_losses]
    out["params_diff"] = max(float(np.abs(p.detach().numpy() - q.detach().numpy()).max())
                             for p, q in zip(model.parameters(), m2.parameters()))
    # a compiled call with its input on cpu:0 and its state on cpu:1
    err("compiled", lambda: cstep(gcomp.tensor(xb, device="cpu:0"), gcomp.tensor(yb)))
    out["state_kept"] = max(float(np.abs(p.detach().numpy() - q.detach().numpy()).max())
                            for p, q in zip(model.parameters(), m2.parameters()))
    # an uncommitted batch follows the state to cpu:1
    out["follows"] = str(cstep(gcomp.tensor(xb), gcomp.tensor(yb)).device)
    # a tensor replicated over a mesh moves back to one device
    rep = gcomp.compile(lambda t: t * 2, mesh=gcomp.distributed.Mesh(("data",)))(
        gcomp.ones(8, 2))
    out["mesh"] = [len(rep._storage.data.devices()), str(rep.device),
                   str(rep.to("cpu:2").device), len(rep.to("cpu:2")._storage.data.devices())]
    print("RESULT" + json.dumps(out))
''')


def test_four_host_devices():
    out, path = run_on_host_devices(SCRIPT)
    assert out["devices"] == [[0, 1, 2, 3], [0, 1, 2, 3]]
    assert out["xy"] == ["cpu", "cpu:1", "device(type='cpu', index=1)"]
    msg, line = out["add"]
    assert msg.startswith(f"{path}:{line}: add: tensors on different devices")
    assert "input 0 on cpu:0; input 1 on cpu:1" in msg and "Move one with .to(device)" in msg
    assert out["uncommitted"] == "cpu:1"
    assert out["like"] == ["cpu:1"] * 4
    assert out["made"] == ["cpu:2"] * 6
    msg, line = out["missing"]
    assert msg.startswith(f"{path}:{line}: device cpu:4 does not exist: there are 4 cpu")
    assert out["grad"] == ["cpu:3", "cpu", [2.0, 4.0, 6.0]]
    assert out["same_params"] and out["param_devices"] == ["cpu:1"]
    assert out["forward"] == "cpu:1"
    msg, line = out["eager_forward"]  # F.linear runs eagerly as one compiled call
    assert msg.startswith(f"{path}:{line}: linear: tensors on different devices: argument 0 "), msg
    assert "on cpu:0" in msg and "on cpu:1" in msg
    assert out["step_devices"] == ["cpu:1"]
    np.testing.assert_allclose(*out["losses"], rtol=1e-5)
    assert out["params_diff"] < 1e-5
    msg, line = out["compiled"]
    assert msg.startswith(f"{path}:{line}: gcomp.compile(step): tensors on different devices: "
                          "argument 0 (x) on cpu:0; state ")
    assert "0.weight" in msg and "on cpu:1" in msg and ".to(device)" in msg
    assert out["state_kept"] < 1e-5  # the failed call left the state as it was
    assert out["follows"] == "cpu:1"
    assert out["mesh"] == [4, "cpu", "cpu:2", 1]


def test_cuda_module_helpers():
    assert gcomp.cuda.current_device() == 0
    gcomp.cuda.manual_seed(3)
    a = gcomp.rand(4)
    gcomp.manual_seed(3)
    np.testing.assert_array_equal(a.numpy(), gcomp.rand(4).numpy())
    if not _has_gpu():
        with pytest.raises(gcomp.GcompError, match="no cuda device"):
            gcomp.cuda.get_device_name(0)
