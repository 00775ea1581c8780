"""Whole training steps under gcomp.compile: one executable that leaves the model, its buffers,
the optimizer and the random generator exactly as the eager step would (issue 4).

The reference is the eager gcomp step, itself checked against torch in tests/nn and tests/optim;
here every model of the examples is trained 20 steps eagerly and 20 steps compiled from the same
seed, with dropout on, and everything the step touches is compared.
"""

from __future__ import annotations

import gc
import logging

import jax
import numpy as np
import pytest

import gcomp
from gcomp import nn


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(12, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 3))

    def forward(self, x):
        return self.net(x)


class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1, bias=False)  # a bias before BatchNorm has no
        # gradient but rounding noise, which Adam would scale up to full steps
        self.bn = nn.BatchNorm2d(4)
        self.drop = nn.Dropout(0.25)
        self.fc = nn.Linear(4 * 4 * 4, 3)

    def forward(self, x):
        x = nn.functional.max_pool2d(self.bn(self.conv(x)).relu(), 2)
        return self.fc(self.drop(x.flatten(1)))


class LSTM(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(6, 8, num_layers=2, batch_first=True, dropout=0.1)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.head(out[:, -1])


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        # bias=False: an attention key bias has an exactly zero gradient (softmax ignores a
        # constant added to a row of scores), so adaptive optimizers turn its rounding noise
        # into full-size steps that differ in every correct implementation
        layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.1,
                                           batch_first=True, bias=False)
        self.enc = nn.TransformerEncoder(layer, 2)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        return self.head(self.enc(x).mean(1))


MODELS = {
    "mlp": (MLP, (8, 12)),
    "cnn": (CNN, (8, 1, 8, 8)),
    "lstm": (LSTM, (8, 5, 6)),
    "transformer": (Encoder, (8, 4, 8)),
}
OPTIMIZERS = {
    "sgd": lambda p: gcomp.optim.SGD(p, lr=0.05, momentum=0.9),
    "adam": lambda p: gcomp.optim.Adam(p, lr=1e-2),
    "adamw": lambda p: gcomp.optim.AdamW(p, lr=1e-2, weight_decay=0.1),
    # RMSprop's first updates are about 10 lr sign(g) (its average starts at zero), so a larger lr
    # makes the run chaotic: float rounding of near-zero gradients flips whole steps
    "rmsprop": lambda p: gcomp.optim.RMSprop(p, lr=1e-3, momentum=0.5),
}


def _data(shape, steps, seed=0):
    """``steps`` batches of this shape, the same whatever ran before (a test's data must not
    depend on test order)."""
    rng = np.random.default_rng(seed)
    xs = [gcomp.tensor(rng.standard_normal(shape).astype(np.float32)) for _ in range(steps)]
    ys = [gcomp.tensor(rng.integers(0, 3, shape[0])) for _ in range(steps)]
    return xs, ys


def _setup(model_name, opt_name, seed=0):
    cls, _ = MODELS[model_name]
    gcomp.manual_seed(seed)
    model = cls()
    opt = OPTIMIZERS[opt_name](model.parameters())
    crit = nn.CrossEntropyLoss()

    def step(x, y):
        opt.zero_grad()
        loss = crit(model(x), y)
        loss.backward()
        opt.step()
        return loss

    return model, opt, step


def _snapshot(model, opt):
    """Everything a step may change, as float64 numpy arrays keyed by name."""
    out = {f"model.{k}": np.asarray(v, dtype=np.float64) for k, v in model.state_dict().items()}
    for k, p in model.named_parameters():
        if p.grad is not None:
            out[f"grad.{k}"] = np.asarray(p.grad, dtype=np.float64)
    names = [k for k, _ in model.named_parameters()]  # the optimizer's parameter order
    for i, st in opt.state_dict()["state"].items():
        for k, v in st.items():
            out[f"opt.{names[i]}.{k}"] = np.asarray(v, dtype=np.float64)
    out["rng"] = np.asarray(gcomp.default_generator.get_state(), dtype=np.float64)
    return out


def _assert_close(a: dict, b: dict, rtol=1e-5):
    """Equal to ``rtol`` relative to each array's scale (an element near zero in an array of
    O(1) values is compared at the array's scale, not its own)."""
    assert a.keys() == b.keys()
    for k in a:
        scale = max(float(np.abs(a[k]).max(initial=0.0)), 1e-3)
        tol = rtol * 10 if k.startswith("grad.") else rtol  # the last step's raw gradients
        np.testing.assert_allclose(b[k], a[k], rtol=tol, atol=tol * scale, err_msg=k)


# the transformer (dropout included) runs fast in tests/passes/test_whole_model.py and
# test_patterns.py; its 20-step comparison here is slow-marked
FAST = {("mlp", o) for o in OPTIMIZERS} | {("cnn", "adam"), ("lstm", "sgd")}


@pytest.mark.parametrize("model_name, opt_name", [
    pytest.param(m, o, marks=() if (m, o) in FAST else pytest.mark.slow)
    for m in MODELS for o in OPTIMIZERS])
def test_twenty_compiled_steps_equal_twenty_eager_steps(model_name, opt_name):
    xs, ys = _data(MODELS[model_name][1], 20)
    results = []
    for compiled in (False, True):
        model, opt, step = _setup(model_name, opt_name)
        gcomp.manual_seed(1)  # the dropout draws
        run = gcomp.compile(step) if compiled else step
        losses = [float(run(x, y)) for x, y in zip(xs, ys)]
        results.append((losses, _snapshot(model, opt)))
        if compiled:
            assert run.cache_info().misses == 1
    (eager_losses, eager_state), (comp_losses, comp_state) = results
    np.testing.assert_allclose(comp_losses, eager_losses, rtol=1e-5, atol=1e-6)
    _assert_close(eager_state, comp_state)


def test_one_executable_across_epochs_with_a_step_lr_schedule(caplog):
    model, opt, step = _setup("mlp", "sgd")
    sched = gcomp.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    cstep = gcomp.compile(step)
    xs, ys = _data((8, 12), 10)
    lrs = []
    with caplog.at_level(logging.INFO, logger="gcomp.recompiles"):
        for _epoch in range(2):
            for x, y in zip(xs, ys):
                cstep(x, y)
            sched.step()
            lrs.append(opt.param_groups[0]["lr"])
        opt.param_groups[0]["lr"] = 0.3  # by hand too
        cstep(xs[0], ys[0])
    assert lrs == [0.025, 0.0125]
    info = cstep.cache_info()
    assert (info.misses, info.hits) == (1, 20)
    assert not [r for r in caplog.records if r.name == "gcomp.recompiles"]


def test_schedule_takes_effect_in_the_compiled_step():
    """The learning rate is state, not a constant of the trace: halving it halves the update."""
    w = gcomp.tensor([1.0, 2.0], requires_grad=True)
    opt = gcomp.optim.SGD([w], lr=0.1)

    @gcomp.compile
    def step():
        opt.zero_grad()
        (w * w).sum().backward()
        opt.step()

    step()
    np.testing.assert_allclose(np.asarray(w.detach()), [0.8, 1.6], rtol=1e-6)
    opt.param_groups[0]["lr"] = 0.05
    step()
    np.testing.assert_allclose(np.asarray(w.detach()), [0.8 * 0.9, 1.6 * 0.9], rtol=1e-6)
    assert step.cache_info().misses == 1


def test_donation_deletes_previous_buffers_and_memory_stays_flat():
    model, opt, step = _setup("mlp", "adam")
    cstep = gcomp.compile(step)
    xs, ys = _data((8, 12), 1)
    cstep(xs[0], ys[0])
    weight = model.net[0].weight
    old_param = weight._storage.data
    old_state = opt.state[weight]["exp_avg"]._storage.data
    ids = (id(old_param), id(old_state))
    del old_param, old_state  # holding them would (rightly) stop donation: see Note [Donation]
    import weakref

    refs = [weakref.ref(weight._storage.data),
            weakref.ref(opt.state[weight]["exp_avg"]._storage.data)]
    cstep(xs[0], ys[0])
    for r in refs:
        assert r() is None or r().is_deleted()
    assert ids != (id(weight._storage.data), id(opt.state[weight]["exp_avg"]._storage.data))

    def live():
        gc.collect()
        arrays = jax.live_arrays()
        return len(arrays), sum(a.nbytes for a in arrays)

    for _ in range(5):
        cstep(xs[0], ys[0])
    # every call donated: the non-donating executable (for buffers someone else holds) was
    # never needed; this step passes 20 arrays, more than CPython passes without a new tuple
    (entry,) = cstep._fast.values()
    assert len(entry.run.donate) >= 12 and entry.run._plain is None
    before = live()
    for _ in range(50):
        loss = cstep(xs[0], ys[0])
    del loss
    assert live() == before


def test_held_loss_does_not_keep_old_parameters():
    """A training step's returned loss must not keep the parameters it was computed from."""
    model, opt, step = _setup("mlp", "sgd")
    cstep = gcomp.compile(step)
    xs, ys = _data((8, 12), 2)
    cstep(xs[0], ys[0])
    import weakref

    ref = weakref.ref(model.net[0].weight._storage.data)
    loss = cstep(xs[1], ys[1])
    assert ref() is None or ref().is_deleted()
    with pytest.raises(gcomp.GcompError, match="already backpropagated"):
        loss.backward()


@pytest.mark.parametrize("opt_name", list(OPTIMIZERS))
def test_compiled_module_inside_eager_autograd(opt_name):
    xs, ys = _data((8, 12), 5)
    out = []
    for compiled in (False, True):
        gcomp.manual_seed(0)
        model = MLP()
        opt = OPTIMIZERS[opt_name](model.parameters())
        net = gcomp.compile(model) if compiled else model
        crit = nn.CrossEntropyLoss()
        gcomp.manual_seed(1)
        grads = []
        for x, y in zip(xs, ys):
            opt.zero_grad()
            loss = crit(net(x), y)
            loss.backward()
            grads.append([np.asarray(p.grad) for p in model.parameters()])
            opt.step()
        out.append((grads, _snapshot(model, opt)))
        if compiled:
            assert net.cache_info().misses == 1
            assert list(net.state_dict()) == list(model.state_dict())
            assert net.parameters is not None and net.training
    (g_eager, s_eager), (g_comp, s_comp) = out
    for a, b in zip(g_eager, g_comp):
        for u, v in zip(a, b):
            np.testing.assert_allclose(v, u, rtol=1e-5, atol=1e-6)
    _assert_close(s_eager, s_comp)


def test_a_compiled_submodule_is_a_module_of_its_parent():
    """torch.compile(submodule) inside a model (the torch.compile tutorial): the parent's
    parameters, state_dict, train/eval and apply reach the original, with the keys it would have
    uncompiled, and training through it equals training the uncompiled model."""
    def build(compiled):
        gcomp.manual_seed(0)
        enc, head = nn.Linear(12, 16), nn.Linear(16, 3)
        model = nn.Sequential(gcomp.compile(enc) if compiled else enc, nn.ReLU(), head)
        return model, enc

    xs, ys = _data((8, 12), 3)
    runs = []
    for compiled in (False, True):
        model, enc = build(compiled)
        assert isinstance(model[0], nn.Module)
        names = [n for n, _ in model.named_parameters()]
        assert names == ["0.weight", "0.bias", "2.weight", "2.bias"]
        assert list(model.state_dict()) == names
        model.eval()
        assert not enc.training
        model.train()
        opt = gcomp.optim.SGD(model.parameters(), lr=0.1)
        losses = []
        for x, y in zip(xs, ys):
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        runs.append((losses, enc.weight.detach().numpy()))
    np.testing.assert_allclose(runs[1][0], runs[0][0], rtol=1e-5)
    np.testing.assert_allclose(runs[1][1], runs[0][1], rtol=1e-5, atol=1e-6)
    model, enc = build(True)
    model.apply(lambda m: nn.init.zeros_(m.weight) if isinstance(m, nn.Linear) else None)
    assert float(enc.weight.abs().sum()) == 0.0
    assert [n for n, _ in model.named_modules()] == ["", "0", "1", "2"]


def test_compiled_module_saves_residuals_instead_of_recomputing():
    model = MLP().eval()
    net = gcomp.compile(model)
    x = gcomp.tensor(np.random.default_rng(1).standard_normal((8, 12)).astype(np.float32),
                     requires_grad=True)
    y = net(x)
    y.sum().backward()
    stages = {s.name: s for s in net.stages(x)}
    backward = stages["backward"].graph
    # the backward graph reads saved forward values and recomputes no forward matmul: its four
    # are dh and dW of the second layer, dx and dW of the first
    assert "%saved0" in backward
    assert stages["forward"].graph.count("dot_general") == 2
    assert backward.count("dot_general") == 4
    want = model(x.detach().requires_grad_())
    np.testing.assert_allclose(np.asarray(y.detach()), np.asarray(want.detach()), rtol=1e-6)


def _recompile_reason(caplog, fn, first, second):
    with caplog.at_level(logging.INFO, logger="gcomp.recompiles"):
        fn(*first)
        caplog.clear()
        fn(*second)
    return " ".join(r.getMessage() for r in caplog.records if r.name == "gcomp.recompiles")


def test_recompile_reasons_shape_dtype_and_train_eval(caplog):
    model = MLP()
    net = gcomp.compile(model)
    x = gcomp.randn(8, 12)
    assert "from f32[8,12] to f32[4,12]" in _recompile_reason(caplog, net, (x,), (x[:4],))
    f = gcomp.compile(lambda a: a * 2)
    assert "from f32[3] to f64[3]" in _recompile_reason(
        caplog, f, (gcomp.ones(3),), (gcomp.ones(3, dtype=gcomp.float64),))
    with caplog.at_level(logging.INFO, logger="gcomp.recompiles"):
        caplog.clear()
        model.eval()
        net(x)
    assert "switched from train() to eval()" in caplog.text
    with gcomp.no_grad():
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="gcomp.recompiles"):
            net(x)
    assert "grad mode changed" in caplog.text


def test_unsupported_patterns_name_the_line():
    w = gcomp.ones(3)

    def branch(x):
        if x.sum() > 0:  # LINE-IF
            return x
        return -x

    def item(x):
        return x * x.sum().item()  # LINE-ITEM

    def alias(x, y):
        x.add_(1)  # LINE-ALIAS
        return y + w

    import inspect

    src = inspect.getsource(test_unsupported_patterns_name_the_line).splitlines()
    first = test_unsupported_patterns_name_the_line.__code__.co_firstlineno
    line = {s.rsplit("# ", 1)[1]: first + i for i, s in enumerate(src)
            if s.rstrip().endswith(("# LINE-IF", "# LINE-ITEM", "# LINE-ALIAS"))}
    x = gcomp.ones(4)
    cases = [(branch, (x,), "LINE-IF", "gcomp.where"), (item, (x,), "LINE-ITEM", "item()"),
             (alias, (x, x[:2]), "LINE-ALIAS", "shares memory")]
    for fn, args, tag, words in cases:
        with pytest.raises(gcomp.GcompError) as info:
            gcomp.compile(fn)(*args)
        msg = str(info.value)
        assert f"test_train_step.py:{line[tag]}" in msg, msg
        assert words in msg
    assert x.tolist() == [1.0] * 4


def test_a_failing_call_leaves_model_and_optimizer_bit_for_bit_unchanged():
    model, opt, step = _setup("cnn", "adam")
    cstep = gcomp.compile(step)
    xs, ys = _data((8, 1, 8, 8), 1)
    cstep(xs[0], ys[0])
    before = _snapshot(model, opt)
    bad = gcomp.randn(8, 2, 8, 8)  # wrong channel count: the retrace fails in conv
    gcomp.default_generator.set_state(gcomp.tensor(before["rng"].astype(np.uint32)))
    with pytest.raises(gcomp.GcompError):
        cstep(bad, ys[0])
    after = _snapshot(model, opt)
    assert before.keys() == after.keys()
    for k in before:
        np.testing.assert_array_equal(after[k], before[k], err_msg=k)


def test_exception_in_user_code_during_trace_leaves_state_unchanged():
    model, opt, step = _setup("mlp", "sgd")
    calls = []

    def flaky(x, y):
        loss = step(x, y)
        if calls:
            raise RuntimeError("boom")
        return loss

    cflaky = gcomp.compile(flaky)
    xs, ys = _data((8, 12), 1)
    cflaky(xs[0], ys[0])
    calls.append(1)
    before = _snapshot(model, opt)
    with pytest.raises(RuntimeError, match="boom"):
        cflaky(xs[0][:4], ys[0][:4])  # a new shape: retraced, and the trace raises
    after = _snapshot(model, opt)
    for k in before:
        np.testing.assert_array_equal(after[k], before[k], err_msg=k)
