"""gcomp.distributed: Mesh construction and its errors in-process (one device), and, on 4 host
CPU devices in one subprocess, a data-parallel training step against the same step on one
device: losses and parameters over 5 steps, an all-reduce in the optimized HLO, state left on the
mesh, a model-parallel shardings= override on a 2x2 mesh, a compiled module's forward joining
eager autograd, and the errors for a batch the devices do not divide and for bad shardings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap

import jax
import numpy as np
import pytest
from host_devices import run_on_host_devices

import gcomp
from gcomp import nn
from gcomp.distributed import Mesh

HERE = os.path.basename(__file__)


# -- in-process: one device --------------------------------------------------------------------
def test_devices_are_jax_devices():
    assert gcomp.distributed.devices() == jax.devices()
    assert gcomp.distributed.local_devices() == jax.local_devices()
    assert [gcomp.device("cpu", i).jax_device() for i in range(len(jax.devices()))] == \
        jax.devices()
    assert (gcomp.distributed.process_index(), gcomp.distributed.process_count()) == (0, 1)


def test_mesh_defaults_and_repr():
    mesh = Mesh(("data",))
    assert mesh.shape == (len(jax.devices()),) and mesh.axis_names == ("data",)
    assert mesh.jax_mesh.devices.tolist() == jax.devices()
    assert Mesh("data").axis_names == ("data",)
    assert Mesh(("data", "model"), shape=(1, 1), devices=["cpu"]).size == 1
    assert repr(Mesh(("data",), devices=["cpu"])) == "Mesh(data=1; cpu:0)"


@pytest.mark.parametrize("kwargs, message", [
    (dict(axis_names=("data", "model")), r"give shape= for 2 axes"),
    (dict(axis_names=("data", "data"), shape=(1, 1)), r"distinct strings"),
    (dict(axis_names=("data",), shape=(2,)), r"shape \(2,\) needs 2 devices, got 1"),
    (dict(axis_names=("data",), shape=(1, 1)), r"has 2 axes but axis_names"),
    (dict(axis_names=("data",), devices=["cpu", "cpu"]), r"a device appears twice"),
    (dict(axis_names=("data",), devices=["cpu:9"]), r"cpu:9 does not exist"),
    (dict(axis_names=("data",), devices=[3.5]), r"devices must be gcomp devices"),
])
def test_mesh_errors(kwargs, message):
    with pytest.raises(gcomp.GcompError, match=rf"{HERE}:\d+: .*{message}"):
        Mesh(**kwargs)


@pytest.mark.parametrize("kwargs, message", [
    (dict(mesh=Mesh(("data",)), shardings={"x": ("batch",)}),
     r"shardings\['x'\]: unknown mesh axis 'batch'; the mesh's axes are \('data',\)"),
    (dict(mesh=Mesh(("data",)), shardings={"x": ("data", "data")}), r"axis 'data' is used twice"),
    (dict(mesh="cpu"), r"mesh= must be a gcomp.distributed.Mesh"),
    (dict(shardings={"x": ("data",)}), r"shardings= needs a mesh="),
])
def test_compile_checks_shardings_at_its_line(kwargs, message):
    with pytest.raises(gcomp.GcompError, match=rf"{HERE}:\d+: .*{message}"):
        gcomp.compile(lambda x: x * 2, **kwargs)


def test_one_device_mesh_step_matches_plain_step():
    x = np.random.default_rng(0).standard_normal((8, 3)).astype(np.float32)
    f = gcomp.compile(lambda x, w: (x @ w).relu().sum(0), mesh=Mesh(("data",)))
    w = gcomp.ones(3, 2)
    np.testing.assert_allclose(f(gcomp.tensor(x), w).numpy(),
                               np.maximum(x @ np.ones((3, 2)), 0).sum(0), rtol=1e-6)


def test_unknown_state_path_is_an_error_at_the_call():
    lin = nn.Linear(3, 2)
    f = gcomp.compile(lambda x: lin(x).sum(), mesh=Mesh(("data",)),
                      shardings={"lin.wieght": (None, "data")})
    with pytest.raises(gcomp.GcompError, match=rf"{HERE}:\d+: gcomp.compile\(<lambda>\): "
                       r"shardings key 'lin.wieght' matches no argument or state; arguments: x; "
                       r"state: lin.weight, lin.bias"):
        f(gcomp.ones(4, 3))


# -- 4 host devices ----------------------------------------------------------------------------
SCRIPT = textwrap.dedent(r'''
    import json, sys
    import numpy as np
    import gcomp
    from gcomp import nn
    from gcomp.distributed import Mesh

    out = {}
    rng = np.random.default_rng(0)
    X = rng.standard_normal((5, 32, 16)).astype(np.float32)
    Y = rng.integers(0, 4, (5, 32))

    def make(opt_cls, **kw):
        gcomp.manual_seed(0)
        net = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))
        opt = opt_cls(net.parameters(), **kw)

        def step(x, y):
            opt.zero_grad()
            loss = nn.functional.cross_entropy(net(x), y)
            loss.backward()
            opt.step()
            return loss

        return net, opt, step

    def train(step, steps=5):
        return [step(gcomp.tensor(X[i]), gcomp.tensor(Y[i])).item() for i in range(steps)]

    def diff(a, b):
        return max(float(np.abs(p.detach().numpy() - q.detach().numpy()).max())
                   for p, q in zip(a.parameters(), b.parameters()))

    def err(fn):
        line = sys._getframe(1).f_lineno
        try:
            fn()
        except gcomp.GcompError as e:
            return [str(e), line]

    # data parallel, SGD with momentum: 4 devices against 1
    net1, _, s1 = make(gcomp.optim.SGD, lr=0.1, momentum=0.9)
    ref = train(gcomp.compile(s1))
    net4, opt4, s4 = make(gcomp.optim.SGD, lr=0.1, momentum=0.9)
    mesh = Mesh(("data",))
    c4 = gcomp.compile(s4, mesh=mesh)
    out["sgd"] = [ref, train(c4), diff(net1, net4)]
    out["allreduce"] = sorted({k.kind for k in c4.kernels(gcomp.tensor(X[0]), gcomp.tensor(Y[0]))
                               if "all-reduce" in k.kind})
    w = net4[0].weight._storage.data
    buf = opt4.state[net4[0].weight]["momentum_buffer"]._storage.data
    out["state"] = [len(w.devices()), list(w.sharding.spec), len(buf.devices()),
                    c4.cache_info().misses]
    out["batch30"] = err(lambda: c4(gcomp.tensor(X[0][:30]), gcomp.tensor(Y[0][:30])))

    # the batch made global by from_local (one process: its rows are the whole batch)
    from gcomp.distributed import from_local
    netl, _, sl = make(gcomp.optim.SGD, lr=0.1, momentum=0.9)
    cl = gcomp.compile(sl, mesh=mesh)
    xs = [from_local(X[i], mesh) for i in range(5)]
    got = [cl(xs[i], from_local(gcomp.tensor(Y[i]), mesh)).item() for i in range(5)]
    out["from_local"] = [ref, got, diff(net1, netl), list(xs[0].shape),
                         len(xs[0]._storage.data.devices()), cl.cache_info().misses]
    out["from_local_odd"] = err(lambda: from_local(X[0][:30], mesh))

    # Adam over a 2x2 mesh: first layer split by rows, second by columns, over "model"
    neta, _, sa = make(gcomp.optim.Adam, lr=0.01)
    refa = train(gcomp.compile(sa))
    netb, optb, sb = make(gcomp.optim.Adam, lr=0.01)
    netb.to("cpu:0")  # committed elsewhere: the first call moves it onto the mesh
    mesh2 = Mesh(("data", "model"), shape=(2, 2))
    cb = gcomp.compile(sb, mesh=mesh2, shardings={
        "net.0.weight": ("model", None), "net.0.bias": ("model",),
        "opt.state.0.exp_avg*": ("model", None), "net.2.weight": (None, "model")})
    out["adam"] = [refa, train(cb), diff(neta, netb)]
    specs = [netb[0].weight, netb[0].bias, netb[2].weight, netb[2].bias,
             optb.state[netb[0].weight]["exp_avg"]]
    out["specs"] = [list(t._storage.data.sharding.spec) for t in specs]
    out["shard"] = list(netb[0].weight._storage.data.addressable_shards[0].data.shape)
    out["adam_y"] = err(lambda: gcomp.compile(sb, mesh=mesh2, shardings={"y": ("model", None)})(
        gcomp.tensor(X[0]), gcomp.tensor(Y[0])))

    # a compiled module over the mesh: its forward joins eager autograd
    gcomp.manual_seed(1)
    lin = nn.Linear(16, 4)
    x = gcomp.tensor(X[0], requires_grad=True)
    y = gcomp.compile(lin, mesh=mesh)(x)
    (y * y).sum().backward()
    g_compiled = [lin.weight.grad.numpy().copy(), x.grad.numpy().copy()]
    lin.weight.grad = None
    x.grad = None
    (lin(x) ** 2).sum().backward()
    out["module"] = max(float(np.abs(a - b).max())
                        for a, b in zip(g_compiled, [lin.weight.grad.numpy(), x.grad.numpy()]))
    print("RESULT" + json.dumps(out))
''')


def test_data_parallel_on_four_host_devices():
    out, path = run_on_host_devices(SCRIPT, name="distributed_script.py")
    ref, losses, params = out["sgd"]
    np.testing.assert_allclose(losses, ref, rtol=1e-5, atol=1e-6)
    assert params < 1e-5
    assert out["allreduce"] == ["all-reduce"]  # the gradient sum, inserted by XLA's partitioner
    assert out["state"] == [4, [], 4, 1]  # replicated on the mesh, one compile
    ref, got, params, shape, ndev, misses = out["from_local"]
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)
    assert (params < 1e-5, shape, ndev, misses) == (True, [32, 16], 4, 1)
    msg, line = out["from_local_odd"]
    assert msg.startswith(f"{path}:{line}: from_local: a local tensor of shape [30, 16] does not "
                          "fit the sharding ('data',) over Mesh(data=4;")
    msg, line = out["batch30"]
    assert msg.startswith(f"{path}:{line}: gcomp.compile(step): argument 0 (x) has size 30 in "
                          "dimension 0, which does not divide evenly over the 4 devices of mesh "
                          "axis 'data'")
    ref, losses, params = out["adam"]
    np.testing.assert_allclose(losses, ref, rtol=1e-5, atol=1e-6)
    assert params < 1e-5
    assert out["specs"] == [["model", None], ["model"], [None, "model"], [], ["model", None]]
    assert out["shard"] == [16, 16]  # 32 rows over 2 model devices
    msg, line = out["adam_y"]
    assert msg.startswith(f"{path}:{line}: gcomp.compile(step): the sharding ('model', None) of "
                          "argument 1 (y) has 2 entries but the tensor has 1 dimensions [32]")
    assert out["module"] < 1e-4


# -- two processes, two host devices each ------------------------------------------------------
MULTI_PROCESS = textwrap.dedent(r'''
    import json, sys
    import jax

    jax.config.update("jax_cpu_collectives_implementation", "gloo")  # CPU collectives
    jax.distributed.initialize(coordinator_address=sys.argv[2], num_processes=2,
                               process_id=int(sys.argv[1]))
    import numpy as np
    import gcomp
    from gcomp import nn
    from gcomp.distributed import Mesh, from_local

    rng = np.random.default_rng(0)
    X = rng.standard_normal((3, 32, 16)).astype(np.float32)
    Y = rng.integers(0, 4, (3, 32))

    def make():
        gcomp.manual_seed(0)
        net = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))
        opt = gcomp.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)

        def step(x, y):
            opt.zero_grad()
            loss = nn.functional.cross_entropy(net(x), y)
            loss.backward()
            opt.step()
            return loss

        return net, step

    net1, s1 = make()
    c1 = gcomp.compile(s1)  # this process's first device alone
    ref = [c1(gcomp.tensor(X[i]), gcomp.tensor(Y[i])).item() for i in range(3)]
    net4, s4 = make()
    mesh = Mesh(("data",))  # all 4 devices of both processes
    c4 = gcomp.compile(s4, mesh=mesh)
    got = [c4(gcomp.tensor(X[i]), gcomp.tensor(Y[i])).item() for i in range(3)]  # global batch
    net_l, s_l = make()
    c_l = gcomp.compile(s_l, mesh=mesh)
    rows = slice(16 * jax.process_index(), 16 * (jax.process_index() + 1))  # this process's half
    local = [c_l(from_local(X[i][rows], mesh), from_local(Y[i][rows], mesh)).item()
             for i in range(3)]
    diff = max(float(np.abs(p.detach().numpy() - q.detach().numpy()).max())
               for p, q in zip(net1.parameters(), net4.parameters()))
    diff = max(diff, max(float(np.abs(p.detach().numpy() - q.detach().numpy()).max())
                         for p, q in zip(net1.parameters(), net_l.parameters())))
    print("RESULT" + json.dumps({"ref": ref, "got": got, "local": local, "diff": diff,
                                 "mesh": mesh.size,
                                 "devices": len(gcomp.distributed.local_devices())}))
''')


@pytest.mark.slow
def test_data_parallel_over_two_processes():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{s.getsockname()[1]}"
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2",
               JAX_PLATFORMS="cpu")
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "multi_process.py")
        with open(path, "w") as f:
            f.write(MULTI_PROCESS)
        procs = [subprocess.Popen([sys.executable, path, str(i), address], env=env, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for i in range(2)]
        outs = [p.communicate(timeout=300) for p in procs]
    for p, (stdout, stderr) in zip(procs, outs):
        assert p.returncode == 0, stderr[-4000:]
        line = next(x for x in stdout.splitlines() if x.startswith("RESULT"))
        r = json.loads(line[len("RESULT"):])
        assert (r["mesh"], r["devices"]) == (4, 2)
        np.testing.assert_allclose(r["got"], r["ref"], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(r["local"], r["ref"], rtol=1e-5, atol=1e-6)
        assert r["diff"] < 1e-5
