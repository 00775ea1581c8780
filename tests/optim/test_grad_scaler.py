"""gcomp.amp.GradScaler against torch.amp.GradScaler (torch 2.13): the scale and the growth
tracker after sequences of finite and inf/NaN steps, skipped steps leaving parameters unchanged,
the gradients unscale_ leaves, state_dict round trips, enabled=False, misuse, and a whole training
step with the scaler inside gcomp.compile."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

import gcomp
from gcomp.amp import GradScaler

pytestmark = pytest.mark.xdist_group("optim_grad_scaler")

RNG = np.random.default_rng(3)
W = RNG.standard_normal((3, 2)).astype(np.float32)
B = RNG.standard_normal(2).astype(np.float32)
X = RNG.standard_normal((4, 3)).astype(np.float32)
INF, NAN = float("inf"), float("nan")


class Pair:
    """One model, optimizer and scaler in torch and in gcomp."""

    def __init__(self, optimizer="SGD", dtype="float32", **scaler):
        self.scaler_args = dict(init_scale=8.0, growth_interval=2) | scaler
        self.sides = {}
        for lib, Scaler in ((torch, torch.amp.GradScaler), (gcomp, GradScaler)):
            dt = getattr(lib, dtype)
            w = lib.tensor(W, dtype=dt, requires_grad=True)
            b = lib.tensor(B, dtype=dt, requires_grad=True)
            kw = {"momentum": 0.9} if optimizer == "SGD" else {}
            opt = getattr(lib.optim, optimizer)([w, b], lr=0.1, **kw)
            self.sides[lib] = (w, b, opt, Scaler("cpu", **self.scaler_args),
                               lib.tensor(X, dtype=dt))

    def loss(self, lib, factor):
        w, b, _, _, x = self.sides[lib]
        return ((x @ w + b) ** 2).sum() * factor

    def backward(self, lib, factor):
        _, _, opt, scaler, _ = self.sides[lib]
        opt.zero_grad()
        scaler.scale(self.loss(lib, factor)).backward()

    def iteration(self, lib, factor):
        _, _, opt, scaler, _ = self.sides[lib]
        self.backward(lib, factor)
        scaler.step(opt)
        scaler.update()

    def params(self, lib):
        w, b = self.sides[lib][:2]
        return [w.detach().numpy().copy(), b.detach().numpy().copy()]

    def assert_same(self):
        ts, gs = self.sides[torch][3], self.sides[gcomp][3]
        assert gs.get_scale() == ts.get_scale()
        assert gs._get_growth_tracker() == ts._get_growth_tracker()
        for g, t in zip(self.params(gcomp), self.params(torch), strict=True):
            np.testing.assert_allclose(g, t, rtol=2e-5, atol=2e-6)


def test_scale_and_parameters_after_finite_and_inf_steps():
    pair = Pair()
    # grows every growth_interval (= 2) good steps, halves at each inf or NaN
    for f in [1.0, 1.0, 1.0, INF, 1.0, 1.0, 1.0, NAN, INF, INF, 1.0]:
        before = pair.params(gcomp)
        for lib in (torch, gcomp):
            pair.iteration(lib, f)
        if f != 1.0:  # a skipped step leaves the parameters exactly as they were
            for a, b in zip(pair.params(gcomp), before, strict=True):
                np.testing.assert_array_equal(a, b)
        pair.assert_same()


def test_growth_and_backoff_factors_round_as_torch():
    """The products are taken in float64 and rounded to float32, as torch's kernel does."""
    pair = Pair(init_scale=1000.0, growth_factor=1.7, backoff_factor=0.9, growth_interval=1)
    for f in [INF, INF, 1.0, INF, 1.0, 1.0]:
        for lib in (torch, gcomp):
            pair.iteration(lib, f)
        pair.assert_same()
    scalers = [pair.sides[lib][3] for lib in (torch, gcomp)]
    for s in scalers:
        s.set_growth_factor(3.0)
        s.set_backoff_factor(0.25)
        s.set_growth_interval(3)
    assert [(s.get_growth_factor(), s.get_backoff_factor(), s.get_growth_interval())
            for s in scalers] == [(3.0, 0.25, 3)] * 2
    for f in [1.0, 1.0, 1.0, INF]:
        for lib in (torch, gcomp):
            pair.iteration(lib, f)
        pair.assert_same()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_unscale_divides_the_gradients_and_finds_infs(dtype):
    pair = Pair(dtype=dtype)
    for f in (1.0, INF):
        grads = {}
        for lib in (torch, gcomp):
            w, b, opt, scaler, _ = pair.sides[lib]
            pair.backward(lib, f)
            scaler.unscale_(opt)
            grads[lib] = [w.grad.numpy().copy(), b.grad.numpy().copy()]
            with pytest.raises(RuntimeError, match="already been called on this optimizer"):
                scaler.unscale_(opt)
        for g, t in zip(grads[gcomp], grads[torch], strict=True):
            assert g.dtype == t.dtype
            np.testing.assert_allclose(g, t, rtol=1e-6, equal_nan=True)
        before = pair.params(gcomp)
        for lib in (torch, gcomp):
            _, _, opt, scaler, _ = pair.sides[lib]
            scaler.step(opt)  # uses the recorded inf check; does not unscale again
            with pytest.raises(RuntimeError, match="unscale_\\(\\) is being called after step"):
                scaler.unscale_(opt)
            scaler.update()
        if f == INF:
            for a, b in zip(pair.params(gcomp), before, strict=True):
                np.testing.assert_array_equal(a, b)
        pair.assert_same()


def test_state_dict_round_trip():
    pair = Pair(optimizer="Adam")
    for f in [1.0, INF, 1.0]:
        for lib in (torch, gcomp):
            pair.iteration(lib, f)
    ts, gs = pair.sides[torch][3], pair.sides[gcomp][3]
    state = gs.state_dict()
    assert state == ts.state_dict()
    assert isinstance(state["scale"], float) and isinstance(state["_growth_tracker"], int)
    # into fresh scalers, both ways, before and after their scale exists
    fresh = GradScaler("cpu")
    fresh.load_state_dict(ts.state_dict())
    assert fresh.state_dict() == state
    torch_fresh = torch.amp.GradScaler("cpu")
    torch_fresh.load_state_dict(state)
    assert torch_fresh.state_dict() == state
    gs.load_state_dict(dict(state, scale=2.0 ** 10, _growth_tracker=1))
    ts.load_state_dict(dict(state, scale=2.0 ** 10, _growth_tracker=1))
    for lib in (torch, gcomp):
        pair.iteration(lib, 1.0)
    pair.assert_same()
    copy = pickle.loads(pickle.dumps(gs))
    assert copy.state_dict() == gs.state_dict()
    with pytest.raises(RuntimeError, match="source state dict is empty"):
        gs.load_state_dict({})


def test_disabled_scaler_is_a_pass_through():
    pair = Pair(enabled=False)
    for lib in (torch, gcomp):
        w, b, opt, scaler, _ = pair.sides[lib]
        loss = pair.loss(lib, 1.0)
        assert scaler.scale(loss) is loss
        loss.backward()
        scaler.unscale_(opt)  # no-op: the gradients stay scaled by nothing
        scaler.step(opt)  # a plain optimizer.step()
        scaler.update()
        assert not scaler.is_enabled()
        assert scaler.get_scale() == 1.0
        assert scaler.state_dict() == {}
        scaler.load_state_dict({})
    np.testing.assert_allclose(pair.params(gcomp)[0], pair.params(torch)[0], rtol=1e-6)


def test_scale_of_several_outputs_and_update_to_a_new_scale():
    for lib, Scaler in ((torch, torch.amp.GradScaler), (gcomp, GradScaler)):
        scaler = Scaler("cpu", init_scale=4.0)
        a, b = lib.tensor([1.0, 2.0]), lib.tensor(3.0, dtype=lib.float64)
        out = scaler.scale([a, (b, a)])
        assert isinstance(out, list) and isinstance(out[1], tuple)
        np.testing.assert_array_equal(out[1][1].numpy(), [4.0, 8.0])
        assert out[1][0].dtype == lib.float64 and out[1][0].item() == 12.0
        scaler.update(new_scale=2.0 ** 20)
        assert scaler.get_scale() == 2.0 ** 20
        scaler.update(new_scale=lib.tensor(0.5))
        assert scaler.get_scale() == 0.5


def test_misuse_raises_as_in_torch():
    pair = Pair()
    for lib in (torch, gcomp):
        _, _, opt, _, _ = pair.sides[lib]
        scaler = (torch.amp.GradScaler if lib is torch else GradScaler)("cpu")
        with pytest.raises((AssertionError, gcomp.GcompError), match="_scale is None"):
            scaler.step(opt)
        pair.backward(lib, 1.0)
        scaler = pair.sides[lib][3]
        with pytest.raises(RuntimeError, match="Closure use is not currently supported"):
            scaler.step(opt, closure=lambda: None)
        scaler.step(opt)
        with pytest.raises(RuntimeError, match="step\\(\\) has already been called"):
            scaler.step(opt)
        with pytest.raises((AssertionError, gcomp.GcompError), match="growth factor must be"):
            (torch.amp.GradScaler if lib is torch else GradScaler)("cpu", growth_factor=1.0)


@pytest.mark.parametrize("optimizer", ["SGD", "Adam"])
def test_whole_training_step_compiled(optimizer):
    """scale, backward, step and update in one gcomp.compile: skipped steps are selects
    (Note [GradScaler inside gcomp.compile]), and the scale is written back."""
    pair = Pair(optimizer)
    w, b, opt, scaler, x = pair.sides[gcomp]

    def step(x, factor):
        opt.zero_grad()
        loss = ((x @ w + b) ** 2).sum() * factor
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        return loss

    compiled = gcomp.compile(step)
    for f in [INF, 1.0, 1.0, NAN, 1.0, 1.0]:
        pair.iteration(torch, f)
        compiled(x, gcomp.tensor(f))
        pair.assert_same()
    assert compiled.cache_info().misses == 1
    if optimizer == "Adam":  # skipped steps do not count
        assert opt.state[w]["step"].item() == pair.sides[torch][2].state[pair.sides[torch][0]][
            "step"].item() == 4


def test_compiled_step_refuses_a_split_iteration_and_foreign_optimizers():
    pair = Pair()
    w, b, opt, scaler, x = pair.sides[gcomp]
    pair.backward(gcomp, 1.0)
    scaler.unscale_(opt)
    with pytest.raises(gcomp.GcompError, match="outside it"):
        gcomp.compile(lambda: scaler.step(opt))()

    class Plain:  # an optimizer-like object that is not a gcomp.optim.Optimizer
        param_groups = [{"params": [w, b]}]

        def step(self):
            pass

    scaler = GradScaler("cpu")
    pair.backward(gcomp, 1.0)

    def step(x):
        scaler.scale((x @ w).sum()).backward()
        scaler.step(Plain())

    with pytest.raises(gcomp.GcompError, match="cannot skip the step of a Plain"):
        gcomp.compile(step)(x)
