"""gcomp.optim against torch.optim (foreach=False): the same small model from the same weights,
parameters compared after every step, with and without schedulers; state_dict round trips; the
compiled update (no recompiles when the lr changes; step() inside an outer gcomp.compile)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import gcomp
import gcomp.optim as goptim
from gcomp.optim import lr_scheduler as gsched

RNG = np.random.default_rng(0)
INIT = {
    "w1": (RNG.standard_normal((4, 8)) * 0.5).astype(np.float32),
    "b1": (RNG.standard_normal(8) * 0.1).astype(np.float32),
    "w2": (RNG.standard_normal((8, 3)) * 0.5).astype(np.float32),
    "b2": (RNG.standard_normal(3) * 0.1).astype(np.float32),
    "unused": RNG.standard_normal(5).astype(np.float32),  # never gets a gradient: skipped
}
X = RNG.standard_normal((16, 4)).astype(np.float32)
Y = RNG.standard_normal((16, 3)).astype(np.float32)
RTOL, ATOL = 2e-5, 4e-6  # float32 rounding, fed back through 20 steps


class Pair:
    """The same model in gcomp and in torch."""

    def __init__(self, init=INIT):
        self.g = {k: gcomp.tensor(v, requires_grad=True) for k, v in init.items()}
        self.t = {k: torch.tensor(v, requires_grad=True) for k, v in init.items()}
        self.gx, self.gy = gcomp.tensor(X), gcomp.tensor(Y)
        self.tx, self.ty = torch.tensor(X), torch.tensor(Y)

    def gloss(self):
        p = self.g
        return ((gcomp.tanh(self.gx @ p["w1"] + p["b1"]) @ p["w2"] + p["b2"] - self.gy) ** 2).mean()

    def tloss(self):
        p = self.t
        return ((torch.tanh(self.tx @ p["w1"] + p["b1"]) @ p["w2"] + p["b2"] - self.ty) ** 2).mean()

    def groups(self, which, split):
        p = self.g if which == "g" else self.t
        if not split:
            return list(p.values())
        return [{"params": [p["w1"], p["b1"], p["unused"]]}, {"params": [p["w2"], p["b2"]],
                                                              "lr": 0.003}]

    def check(self, step):
        for k in self.g:
            np.testing.assert_allclose(self.g[k].detach().numpy(), self.t[k].detach().numpy(),
                                       rtol=RTOL, atol=ATOL, err_msg=f"{k} after step {step}")


def _step(pair, gopt, topt):
    gopt.zero_grad()
    gl = pair.gloss()
    gl.backward()
    gopt.step()
    topt.zero_grad()
    tl = pair.tloss()
    tl.backward()
    topt.step()
    return float(gl.item()), float(tl.item())


CASES = [  # (optimizer, options, two param groups?)
    ("SGD", dict(lr=0.1), True),
    ("SGD", dict(lr=0.05, momentum=0.9), False),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.01), True),
    ("SGD", dict(lr=0.01, momentum=0.8, nesterov=True, maximize=True), False),
    ("Adam", dict(lr=0.01), False),
    ("Adam", dict(lr=0.01, amsgrad=True, weight_decay=0.1), True),
    ("Adam", dict(lr=0.02, betas=(0.3, 0.9), maximize=True), False),  # lerp weight >= 0.5
    ("AdamW", dict(lr=0.01), True),
    ("AdamW", dict(lr=0.01, amsgrad=True, weight_decay=0.3, eps=1e-3), False),
    ("RMSprop", dict(lr=0.01), False),
    ("RMSprop", dict(lr=0.01, centered=True), True),
    ("RMSprop", dict(lr=0.005, momentum=0.5, weight_decay=0.01, alpha=0.9), False),
    ("RMSprop", dict(lr=0.005, momentum=0.3, centered=True, maximize=True), True),
    ("Adagrad", dict(lr=0.1), False),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.1, initial_accumulator_value=0.1),
     True),
    ("Adagrad", dict(lr=0.05, maximize=True, eps=1e-6), False),
]


@pytest.mark.parametrize("name,kw,split", CASES,
                         ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(CASES)])
def test_matches_torch(name, kw, split):
    pair = Pair()
    gopt = getattr(goptim, name)(pair.groups("g", split), **kw)
    topt = getattr(torch.optim, name)(pair.groups("t", split), foreach=False, **kw)
    for step in range(20):
        _step(pair, gopt, topt)
        pair.check(step)
    unused = gopt.state.get(pair.g["unused"], {})  # no state, or Adagrad's initial state
    assert not unused or unused["step"].item() == 0
    assert gopt._compiled.cache_info().misses == 1  # one program for all 20 steps


def _to_numpy(obj):
    if isinstance(obj, torch.Tensor):
        return obj.detach().numpy().copy()
    if isinstance(obj, dict):
        return {k: _to_numpy(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_numpy(v) for v in obj)
    return obj


SCHEDULES = [
    ("SGD", dict(lr=0.1, momentum=0.9), "StepLR", dict(step_size=4, gamma=0.5)),
    ("Adam", dict(lr=0.02), "MultiStepLR", dict(milestones=[3, 7, 7, 12], gamma=0.5)),
    ("RMSprop", dict(lr=0.01, momentum=0.2), "ExponentialLR", dict(gamma=0.9)),
    ("Adagrad", dict(lr=0.1), "CosineAnnealingLR", dict(T_max=6, eta_min=0.01)),
    ("AdamW", dict(lr=0.01), "LambdaLR", dict(lr_lambda=lambda e: 1.0 / (1 + e))),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True), "OneCycleLR",
     dict(max_lr=0.2, total_steps=25)),
    ("Adam", dict(lr=0.01), "OneCycleLR",
     dict(max_lr=0.05, total_steps=22, anneal_strategy="linear", three_phase=True)),
    ("RMSprop", dict(lr=0.01, momentum=0.5), "OneCycleLR",
     dict(max_lr=0.01, total_steps=20, pct_start=0.4, cycle_momentum=True)),
    ("SGD", dict(lr=0.1), "ReduceLROnPlateau", dict(patience=1, factor=0.5, cooldown=1)),
    ("Adam", dict(lr=0.01), "ReduceLROnPlateau",
     dict(mode="max", threshold_mode="abs", threshold=0.01, patience=0, min_lr=0.004)),
]


@pytest.mark.parametrize("opt,okw,sched,skw", SCHEDULES,
                         ids=[f"{s}-{o}-{i}" for i, (o, _, s, _) in enumerate(SCHEDULES)])
def test_schedulers_match_torch(opt, okw, sched, skw):
    pair = Pair()
    gopt = getattr(goptim, opt)(pair.groups("g", False), **okw)
    topt = getattr(torch.optim, opt)(pair.groups("t", False), foreach=False, **okw)
    gs = getattr(gsched, sched)(gopt, **skw)
    ts = getattr(torch.optim.lr_scheduler, sched)(topt, **skw)
    plateau = [1.0, 0.9, 0.95, 0.97, 0.8, 0.85, 0.86, 0.87, 0.88, 0.7]
    for step in range(20):
        _step(pair, gopt, topt)
        if sched == "ReduceLROnPlateau":
            metric = plateau[step % len(plateau)]
            gs.step(metric)
            ts.step(metric)
        else:
            gs.step()
            ts.step()
        np.testing.assert_allclose(gs.get_last_lr(), ts.get_last_lr(), rtol=1e-12)
        for gg, tg in zip(gopt.param_groups, topt.param_groups, strict=True):
            for key in ("momentum", "betas"):
                if key in tg:
                    np.testing.assert_allclose(gg[key], tg[key], rtol=1e-12)
            np.testing.assert_allclose(gg.tensors["lr"].item(), tg["lr"], rtol=1e-6)
        pair.check(step)
    # the lr (and momentum/betas) are tensors of the compiled update: never a recompile
    assert gopt._compiled.cache_info().misses == 1
    state = gs.state_dict()
    assert state["last_epoch"] == ts.state_dict()["last_epoch"]


def _run(opt, pair, steps):
    for _ in range(steps):
        opt.zero_grad()
        pair.gloss().backward()
        opt.step()


ROUND_TRIPS = [("SGD", dict(lr=0.05, momentum=0.9, dampening=0.2)),
               ("Adam", dict(lr=0.01, amsgrad=True)), ("AdamW", dict(lr=0.01)),
               ("RMSprop", dict(lr=0.01, centered=True, momentum=0.5)),
               ("Adagrad", dict(lr=0.1, lr_decay=0.01))]


@pytest.mark.parametrize("name,kw", ROUND_TRIPS[:2] + ROUND_TRIPS[3:4],
                         ids=["SGD", "Adam", "RMSprop"])
def test_state_dict_round_trip_through_a_file(name, kw, tmp_path):
    a = Pair()
    opt_a = getattr(goptim, name)(list(a.g.values()), **kw)
    _run(opt_a, a, 4)
    gcomp.save(opt_a.state_dict(), tmp_path / "opt.npz")
    b = Pair({k: v.detach().numpy() for k, v in a.g.items()})
    opt_b = getattr(goptim, name)(list(b.g.values()), **dict(kw, lr=123.0))
    opt_b.load_state_dict(gcomp.load_state(tmp_path / "opt.npz"))
    assert opt_b.param_groups[0]["lr"] == kw["lr"]
    assert opt_b.param_groups[0].tensors["lr"].item() == np.float32(kw["lr"])
    _run(opt_a, a, 4)
    _run(opt_b, b, 4)
    for k in a.g:
        np.testing.assert_array_equal(a.g[k].detach().numpy(), b.g[k].detach().numpy())
    # loading into an optimizer whose state has the same layout writes in place: no recompile
    misses = opt_b._compiled.cache_info().misses
    opt_b.load_state_dict(opt_a.state_dict())
    _run(opt_a, a, 2)
    _run(opt_b, b, 2)
    assert opt_b._compiled.cache_info().misses == misses
    for k in a.g:
        np.testing.assert_array_equal(a.g[k].detach().numpy(), b.g[k].detach().numpy())


@pytest.mark.parametrize("name,kw", ROUND_TRIPS, ids=[n for n, _ in ROUND_TRIPS])
def test_torch_state_dict_loads(name, kw):
    pair = Pair()
    topt = getattr(torch.optim, name)(list(pair.t.values()), foreach=False, **kw)
    for _ in range(5):
        topt.zero_grad()
        pair.tloss().backward()
        topt.step()
    sd = _to_numpy(topt.state_dict())
    for k, v in pair.t.items():  # gcomp continues from torch's weights and state
        pair.g[k] = gcomp.tensor(v.detach().numpy(), requires_grad=True)
    gopt = getattr(goptim, name)(list(pair.g.values()), **kw)
    gopt.load_state_dict(sd)
    mine = gopt.state_dict()
    assert set(mine["param_groups"][0]) == set(topt.state_dict()["param_groups"][0])
    assert {k: set(v) for k, v in mine["state"].items()} == {
        k: set(v) for k, v in topt.state_dict()["state"].items()}
    for step in range(8):
        _step(pair, gopt, topt)
        pair.check(step)


def test_step_inside_compiled_training_step_matches_eager():
    cases = [("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3)),
             ("Adam", dict(lr=0.01, amsgrad=True, weight_decay=0.01))]
    for name, kw in cases:
        results = []
        for compiled in (False, True):
            pair = Pair()
            for p in pair.g.values():  # gradients exist before the first compiled call
                p.grad = gcomp.zeros_like(p)
            opt = getattr(goptim, name)(list(pair.g.values()), **kw)
            sched = gsched.StepLR(opt, step_size=2, gamma=0.7)

            def train_step(x, y, opt=opt, pair=pair):
                opt.zero_grad(set_to_none=False)
                loss = ((gcomp.tanh(x @ pair.g["w1"] + pair.g["b1"]) @ pair.g["w2"]
                         + pair.g["b2"] - y) ** 2).mean()
                loss.backward()
                opt.step()
                return loss

            fn = gcomp.compile(train_step) if compiled else train_step
            losses = []
            for _ in range(6):
                losses.append(fn(pair.gx, pair.gy).item())
                sched.step()
            if compiled:
                assert fn.cache_info().misses == 1, fn._reasons
            results.append((losses, {k: v.detach().numpy() for k, v in pair.g.items()}))
        (le, pe), (lc, pc) = results
        np.testing.assert_allclose(lc, le, rtol=1e-5, err_msg=name)
        for k in pe:
            np.testing.assert_allclose(pc[k], pe[k], rtol=1e-5, atol=1e-6, err_msg=f"{name} {k}")


def test_lr_and_hyperparameter_changes():
    p = gcomp.tensor([1.0, 2.0], requires_grad=True)
    opt = goptim.SGD([p], lr=0.1)
    p.grad = gcomp.tensor([1.0, 1.0])
    opt.step()
    np.testing.assert_allclose(p.detach().numpy(), [0.9, 1.9], rtol=1e-6)
    opt.param_groups[0]["lr"] = 0.5  # a new value of the lr tensor, not a new program
    opt.step()
    np.testing.assert_allclose(p.detach().numpy(), [0.4, 1.4], rtol=1e-6)
    assert opt._compiled.cache_info().misses == 1
    opt.param_groups[0]["weight_decay"] = 1.0  # baked into the program: a new one
    opt.step()
    np.testing.assert_allclose(p.detach().numpy(), [0.4 - 0.5 * 1.4, 1.4 - 0.5 * 2.4],
                               rtol=1e-6)
    assert opt._compiled.cache_info().misses == 2
    names = dict(goptim.Adam([p]).state_names())
    assert list(names) == ["param_groups.0.lr", "param_groups.0.betas.0", "param_groups.0.betas.1"]


def test_state_names_and_zero_grad():
    pair = Pair()
    opt = goptim.Adam(list(pair.g.values()), lr=0.01)
    _run(opt, pair, 1)
    names = [n for n, _ in opt.state_names()]
    assert "state.0.exp_avg" in names and "state.3.exp_avg_sq" in names
    assert "state.4.step" not in names  # the unused parameter has no state
    assert "param_groups.0.lr" in names
    opt.zero_grad(set_to_none=False)
    assert float(pair.g["w1"].grad.abs().sum().item()) == 0.0
    opt.zero_grad()
    assert pair.g["w1"].grad is None


def test_errors():
    p = gcomp.tensor([1.0], requires_grad=True)
    with pytest.raises(gcomp.GcompError, match="empty parameter list"):
        goptim.SGD([], lr=0.1)
    with pytest.raises(gcomp.GcompError, match="more than one parameter group"):
        goptim.SGD([{"params": [p]}, {"params": [p]}], lr=0.1)
    with pytest.raises(gcomp.GcompError, match="Nesterov"):
        goptim.SGD([p], lr=0.1, nesterov=True)
    opt = goptim.Adam([p])
    with pytest.raises(gcomp.GcompError, match="different number of parameter groups"):
        opt.load_state_dict({"state": {}, "param_groups": []})
    bad = {"state": {0: {"step": 1.0, "exp_avg": np.zeros(3), "exp_avg_sq": np.zeros(1)}},
           "param_groups": [dict(opt.state_dict()["param_groups"][0])]}
    with pytest.raises(gcomp.GcompError, match="has shape"):
        opt.load_state_dict(bad)
