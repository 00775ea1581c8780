"""torch.autocast (Note [Autocast] in gcomp/frontend/autocast.py), against torch 2.13's CPU autocast."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pytest
import torch

import gcomp
import gcomp.nn.functional as GF

TF = torch.nn.functional
RNG = np.random.default_rng(0)


def _arr(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


X, W, B = _arr(4, 8), _arr(6, 8), _arr(6)
T = RNG.integers(0, 6, (4,))
Q = _arr(2, 2, 4, 8)
IMG, KER = _arr(1, 2, 5, 5), _arr(3, 2, 3, 3)


def _cases(m, F):
    """name -> a function of module m (gcomp or torch) and its functional F, run under autocast."""
    t = m.tensor if m is gcomp else torch.tensor
    x, w, b, q = t(X), t(W), t(B), t(Q)
    h = F.linear(x, w, b)
    return {
        "linear": lambda: F.linear(x, w, b),
        "matmul": lambda: x @ w.T,
        "mm": lambda: m.mm(x, w.T),
        "bmm": lambda: m.bmm(q[0], q[0].transpose(1, 2)),
        "einsum": lambda: m.einsum("ij,kj->ik", x, w),
        "addmm": lambda: m.addmm(b, x, w.T),
        "baddbmm": lambda: m.baddbmm(q[0][:, :, :4], q[0], q[0].transpose(1, 2)),
        "mv": lambda: m.mv(w, x[0]),
        "dot": lambda: m.dot(x[0], x[1]),
        "conv2d": lambda: F.conv2d(t(IMG), t(KER)),
        "conv_transpose2d": lambda: F.conv_transpose2d(t(IMG), t(KER).transpose(0, 1)),
        "sdpa": lambda: F.scaled_dot_product_attention(q, q, q),
        "relu_after": lambda: F.relu(h),
        "softmax_after": lambda: F.softmax(h, -1),
        "layer_norm_after": lambda: F.layer_norm(h, (6,)),
        "add_float32": lambda: h + x[:, :6],
        "cat_mixed": lambda: m.cat([h, x[:, :6]]),
        "sum_after": lambda: h.sum(),
        "exp_float32": lambda: x.exp(),
        "cross_entropy": lambda: F.cross_entropy(h, t(T)),
        "mse_loss": lambda: F.mse_loss(h, x[:, :6]),
        "nll_loss": lambda: F.nll_loss(F.log_softmax(h, -1), t(T)),
        "bce_logits": lambda: F.binary_cross_entropy_with_logits(h, x[:, :6].sigmoid()),
        "float64_linear": lambda: F.linear(x.double(), w.double()),
    }


def _modules(m):
    m.manual_seed(0)
    return {"lstm": m.nn.LSTM(8, 5), "gru": m.nn.GRU(8, 5),
            "lstm_cell": m.nn.LSTMCell(8, 5), "rnn_cell": m.nn.RNNCell(8, 5),
            "gru_cell": m.nn.GRUCell(8, 5), "mha": m.nn.MultiheadAttention(8, 2)}


def _module_out(name, mod, m):
    t = m.tensor if m is gcomp else torch.tensor
    x = t(X)
    if name == "mha":
        return mod(x[None], x[None], x[None])[0]
    out = mod(x[None] if name in ("lstm", "gru") else x)
    return out[0] if isinstance(out, tuple) else out


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_op_dtypes_as_torch(dtype):
    g = {}
    with gcomp.autocast("cpu", dtype=getattr(gcomp, dtype)):
        for name, f in _cases(gcomp, GF).items():
            g[name] = str(f().dtype).split(".")[-1]
    t = {}
    with torch.autocast("cpu", dtype=getattr(torch, dtype)):
        for name, f in _cases(torch, TF).items():
            t[name] = str(f().dtype).split(".")[-1]
    assert g == t


def test_recurrent_and_attention_modules_as_torch():
    gm, tm = _modules(gcomp), _modules(torch)
    for name in gm:
        gm[name].load_state_dict({k: gcomp.tensor(v.detach().numpy())
                                  for k, v in tm[name].state_dict().items()})
    with gcomp.autocast("cpu"):
        g = {n: _module_out(n, mod, gcomp) for n, mod in gm.items()}
    with torch.autocast("cpu"):
        t = {n: _module_out(n, mod, torch) for n, mod in tm.items()}
    for n in g:
        assert str(g[n].dtype).split(".")[-1] == str(t[n].dtype).split(".")[-1], n
        np.testing.assert_allclose(g[n].float().detach().numpy(), t[n].float().detach().numpy(),
                                   atol=0.05, rtol=0.05, err_msg=n)


def test_values_and_gradients_as_torch():
    """The forward runs in bfloat16 (the same rounding as torch's); the gradients reach the
    float32 leaves in float32."""
    gx, gw = gcomp.tensor(X, requires_grad=True), gcomp.tensor(W, requires_grad=True)
    tx, tw = torch.tensor(X, requires_grad=True), torch.tensor(W, requires_grad=True)
    with gcomp.autocast("cpu"):
        gy = GF.linear(gx, gw).relu()
        gl = (gy.float() ** 2).mean()
    with torch.autocast("cpu"):
        ty = TF.linear(tx, tw).relu()
        tl = (ty.float() ** 2).mean()
    np.testing.assert_array_equal(gy.float().detach().numpy(), ty.float().detach().numpy())
    gl.backward()
    tl.backward()
    assert gx.grad.dtype == gcomp.float32 and gw.grad.dtype == gcomp.float32
    np.testing.assert_allclose(gw.grad.numpy(), tw.grad.numpy(), rtol=2e-2, atol=1e-3)
    np.testing.assert_allclose(gx.grad.numpy(), tx.grad.numpy(), rtol=2e-2, atol=1e-3)
    # and bfloat16 is really used: the float32 result differs from it
    exact = np.maximum(X @ W.T, 0)
    assert np.abs(gy.float().detach().numpy() - exact).max() > 1e-4


def test_nesting_decorator_and_state_queries():
    assert not gcomp.is_autocast_enabled("cpu") and not gcomp.is_autocast_cpu_enabled()
    assert gcomp.get_autocast_dtype("cpu") == gcomp.bfloat16 == gcomp.get_autocast_cpu_dtype()
    assert gcomp.get_autocast_dtype("cuda") == gcomp.float16 == gcomp.get_autocast_gpu_dtype()
    x, w = gcomp.tensor(X), gcomp.tensor(W)
    with gcomp.autocast("cpu"):
        assert gcomp.is_autocast_enabled("cpu") and not gcomp.is_autocast_enabled()
        with gcomp.autocast("cpu", enabled=False):
            assert GF.linear(x, w).dtype == gcomp.float32
            assert not gcomp.is_autocast_enabled("cpu")
        with gcomp.autocast("cpu", dtype=gcomp.float16):
            assert GF.linear(x, w).dtype == gcomp.float16
        assert GF.linear(x, w).dtype == gcomp.bfloat16
    assert GF.linear(x, w).dtype == gcomp.float32

    @gcomp.autocast("cpu")
    def forward(a, b):
        return a @ b.T

    assert forward(x, w).dtype == gcomp.bfloat16
    assert (x @ w.T).dtype == gcomp.float32
    with pytest.raises(ZeroDivisionError):  # an exception inside restores the state
        with gcomp.autocast("cpu"):
            1 / 0
    assert not gcomp.is_autocast_enabled("cpu")
    gcomp.set_autocast_enabled("cpu", True)
    try:
        assert GF.linear(x, w).dtype == gcomp.bfloat16
    finally:
        gcomp.set_autocast_enabled("cpu", False)
    assert GF.linear(x, w).dtype == gcomp.float32


def test_bad_arguments_say_what_to_do():
    with pytest.raises(gcomp.GcompError, match="device_type.*str") as e:
        gcomp.autocast(gcomp.device("cpu"))
    assert "test_autocast.py" in str(e.value)
    with pytest.raises(gcomp.GcompError, match="unsupported autocast device_type 'cpux'"):
        gcomp.autocast("cpux")
    with pytest.raises(gcomp.GcompError, match="gcomp dtype"):
        gcomp.autocast("cpu", dtype="bfloat16")
    # as torch: an unsupported dtype or a missing device warns and disables
    x, w = gcomp.tensor(X), gcomp.tensor(W)
    with pytest.warns(UserWarning, match="autocast is disabled"):
        ctx = gcomp.autocast("cpu", dtype=gcomp.float64)
    with ctx:
        assert GF.linear(x, w).dtype == gcomp.float32
    if not gcomp.cuda.is_available():
        with pytest.warns(UserWarning, match="no cuda device"):
            ctx = gcomp.autocast("cuda")
        with ctx:
            assert GF.linear(x, w).dtype == gcomp.float32
    with pytest.warns(FutureWarning, match="torch.amp.autocast"):
        ctx = gcomp.cpu.amp.autocast()
    with ctx:
        assert GF.linear(x, w).dtype == gcomp.bfloat16


def test_weight_casts_are_cached_within_a_region():
    w = gcomp.tensor(W, requires_grad=True)
    x = gcomp.tensor(X)
    with gcomp.autocast("cpu"):
        a = GF.linear(x, w)
        b = GF.linear(x, w)
        # one cast node feeds both products (torch's cached_cast)
        assert a.grad_fn.next_functions[0][0] is b.grad_fn.next_functions[0][0]
        with gcomp.no_grad():
            w.mul_(2.0)  # an in-place update makes the cached cast stale
        c = GF.linear(x, w)
        np.testing.assert_allclose(c.float().detach().numpy(), 2 * a.float().detach().numpy(),
                                   rtol=2e-2,
                                   atol=1e-2)
        (a.sum() + c.sum()).float().backward()
    np.testing.assert_allclose(w.grad.numpy(), 2 * np.broadcast_to(X.sum(0), W.shape),
                               rtol=2e-2)
    with gcomp.autocast("cpu", cache_enabled=False):
        a, b = GF.linear(x, w), GF.linear(x, w)
        assert a.grad_fn.next_functions[0][0] is not b.grad_fn.next_functions[0][0]


def test_compiled_function_guards_autocast_and_traces_it(caplog):
    f = gcomp.compile(lambda x, w: GF.linear(x, w).relu())
    x, w = gcomp.tensor(X), gcomp.tensor(W)
    assert f(x, w).dtype == gcomp.float32
    with caplog.at_level(logging.INFO, logger="gcomp.recompiles"):
        with gcomp.autocast("cpu"):
            out = f(x, w)
    assert out.dtype == gcomp.bfloat16
    assert any("autocast changed from off to gcomp.bfloat16" in r.getMessage()
               for r in caplog.records)
    with gcomp.autocast("cpu"):
        np.testing.assert_array_equal(f(x, w).float().numpy(), GF.linear(x, w).relu()
                                      .float().numpy())
    assert f(x, w).dtype == gcomp.float32  # the first executable again
    assert f.cache_info().misses == 2

    def inside(x, w):
        with gcomp.autocast("cpu"):
            y = GF.linear(x, w)
        return y, y.float() + x[:, :6]

    g = gcomp.compile(inside)
    y, z = g(x, w)
    assert y.dtype == gcomp.bfloat16 and z.dtype == gcomp.float32
    ey, ez = inside(x, w)
    np.testing.assert_array_equal(y.float().numpy(), ey.float().numpy())
    # XLA drops the f32 -> bf16 -> f32 round trip of y inside the compiled z (its
    # simplify-fp-conversions pass), so z is closer to float32 than eager's: within bf16's 2 ** -8
    np.testing.assert_allclose(z.numpy(), ez.numpy(), rtol=8e-3, atol=8e-3)
    assert "cast" in g.ir(x, w) and "bf16" in g.ir(x, w)


def _train(m, F, compiled, steps=4):
    torch.manual_seed(0)
    ref = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 6))
    model = m.nn.Sequential(m.nn.Linear(8, 16), m.nn.ReLU(), m.nn.Linear(16, 6))
    if m is gcomp:  # torch's initial weights
        model.load_state_dict({k: gcomp.tensor(v.numpy()) for k, v in ref.state_dict().items()})
    else:
        model = ref
    opt = m.optim.SGD(model.parameters(), lr=0.1)
    t = m.tensor if m is gcomp else torch.tensor
    x, y = t(X), t(T)

    def step(x, y):
        opt.zero_grad()
        with m.autocast("cpu"):
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    if compiled:
        step = gcomp.compile(step)
    return [step(x, y).item() for _ in range(steps)], model


def test_training_step_eager_compiled_and_torch():
    eager, em = _train(gcomp, GF, False)
    comp, cm = _train(gcomp, GF, True)
    ref, tm = _train(torch, TF, False)
    # XLA fuses the compiled step's bfloat16 ops and rounds once per fusion, eager per op: the
    # two differ by much less than bfloat16's resolution (2 ** -8)
    np.testing.assert_allclose(comp, eager, rtol=2e-3)
    np.testing.assert_allclose(eager, ref, rtol=2e-2)
    for p in cm.parameters():
        assert p.dtype == gcomp.float32  # float32 master weights
    np.testing.assert_allclose(em[0].weight.detach().numpy(), cm[0].weight.detach().numpy(),
                               atol=1e-3)


def test_custom_fwd_and_bwd():
    seen = {}

    class Square(gcomp.autograd.Function):
        @staticmethod
        @gcomp.amp.custom_fwd(device_type="cpu", cast_inputs=gcomp.float32)
        def forward(ctx, x):
            seen["fwd"] = (x.dtype, gcomp.is_autocast_enabled("cpu"))
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        @gcomp.amp.custom_bwd(device_type="cpu")
        def backward(ctx, g):
            seen["bwd"] = gcomp.is_autocast_enabled("cpu")
            (x,) = ctx.saved_tensors
            return 2 * x * g

    x = gcomp.tensor(X, requires_grad=True)
    with gcomp.autocast("cpu"):
        h = GF.linear(x, gcomp.tensor(W))  # bfloat16
        y = Square.apply(h)
    assert seen["fwd"] == (gcomp.float32, False) and y.dtype == gcomp.float32
    y.sum().backward()
    assert seen["bwd"] is False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert x.grad.dtype == gcomp.float32
