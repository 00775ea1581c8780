"""The optimizers and schedulers added after the first five, against torch.optim (foreach=False):
Adamax, NAdam, RAdam, Adadelta, Rprop, ASGD and Adafactor step by step (float32, and float64 with
an exactly representable lr, where the arithmetic must agree to rounding); state_dicts into torch
and back; one compiled training step that steps all of them, with a new scheduler on each, and
never recompiles; LBFGS (eager) on a logistic problem; the new schedulers' lr sequences and every
scheduler's state_dict round trip; swa_utils (AveragedModel, update_bn, SWALR)."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch
from test_optimizers import INIT, Pair, _step, _to_numpy

import gcomp
import gcomp.optim as goptim
from gcomp.optim import lr_scheduler as gsched
from gcomp.optim import swa_utils as gswa

tsched = torch.optim.lr_scheduler

CASES = [  # (optimizer, options, two param groups?)
    ("Adamax", dict(lr=0.01), True),
    ("Adamax", dict(lr=0.02, betas=(0.3, 0.9), weight_decay=0.1, maximize=True), False),
    ("NAdam", dict(lr=0.01), False),
    ("NAdam", dict(lr=0.01, weight_decay=0.1, momentum_decay=0.01), True),
    ("NAdam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True, maximize=True), False),
    ("RAdam", dict(lr=0.01), False),  # rho_t > 5 from step 6 on: both branches run
    ("RAdam", dict(lr=0.01, weight_decay=0.1, betas=(0.8, 0.9)), True),
    ("RAdam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True, maximize=True), False),
    ("Adadelta", dict(), False),
    ("Adadelta", dict(lr=0.5, rho=0.8, weight_decay=0.1, maximize=True), True),
    ("Rprop", dict(), False),
    ("Rprop", dict(lr=0.05, etas=(0.3, 1.5), step_sizes=(1e-3, 0.1), maximize=True), True),
    ("ASGD", dict(), False),
    ("ASGD", dict(lr=0.05, lambd=1e-2, alpha=0.5, t0=3, weight_decay=0.1), True),
    ("Adafactor", dict(), False),  # the lerp weight step**-0.8 crosses 0.5 at step 3
    ("Adafactor", dict(lr=0.05, weight_decay=0.1, maximize=True, d=1.5, beta2_decay=-0.5,
                       eps=(1e-6, 1e-2)), True),
]


def _ids(cases):
    return [f"{c[0]}-{i}" for i, c in enumerate(cases)]


@pytest.mark.parametrize("name,kw,split", CASES, ids=_ids(CASES))
def test_matches_torch(name, kw, split):
    pair = Pair()
    gopt = getattr(goptim, name)(pair.groups("g", split), **kw)
    topt = getattr(torch.optim, name)(pair.groups("t", split), foreach=False, **kw)
    for step in range(10):
        _step(pair, gopt, topt)
        for k in pair.g:
            np.testing.assert_allclose(pair.g[k].detach().numpy(), pair.t[k].detach().numpy(),
                                       rtol=1e-5, atol=4e-6, err_msg=f"{k} after step {step}")
    assert not gopt.state.get(pair.g["unused"])  # no gradient, no state
    assert gopt._compiled.cache_info().misses == 1  # one program for all 10 steps


EXACT = [CASES[1], ("NAdam", dict(weight_decay=0.1, momentum_decay=0.01), False), CASES[4],
         CASES[7], ("Adafactor", dict(d=1.5, weight_decay=0.1), False)]


@pytest.mark.slow  # test_matches_torch covers every optimizer in float32
@pytest.mark.parametrize("name,kw,split", EXACT, ids=_ids(EXACT))
def test_same_arithmetic_in_float64(name, kw, split, monkeypatch):
    """float64 with lr = 2**-6 (the lr tensor is float32): only rounding differs from torch."""
    import test_optimizers as base
    monkeypatch.setattr(base, "X", base.X.astype(np.float64))
    monkeypatch.setattr(base, "Y", base.Y.astype(np.float64))
    pair = Pair({k: v.astype(np.float64) for k, v in INIT.items()})
    kw = dict(kw, lr=2.0 ** -6)
    gopt = getattr(goptim, name)(pair.groups("g", False), **kw)
    topt = getattr(torch.optim, name)(pair.groups("t", False), foreach=False, **kw)
    for step in range(10):
        _step(pair, gopt, topt)
        for k in pair.g:
            np.testing.assert_allclose(pair.g[k].detach().numpy(), pair.t[k].detach().numpy(),
                                       rtol=1e-12, atol=1e-14, err_msg=f"{k} after step {step}")


def _to_torch(obj):
    if isinstance(obj, gcomp.Tensor):
        return torch.tensor(np.asarray(obj.detach()).copy())
    if isinstance(obj, dict):
        return {k: _to_torch(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_to_torch(v) for v in obj]
    return obj


ROUND_TRIPS = [("Adamax", dict(lr=0.01)), ("NAdam", dict(lr=0.01, weight_decay=0.1)),
               ("RAdam", dict(lr=0.01, decoupled_weight_decay=True, weight_decay=0.1)),
               ("Adadelta", dict(rho=0.8)), ("Rprop", dict(lr=0.05)),
               ("ASGD", dict(lr=0.05, t0=2)), ("Adafactor", dict(lr=0.02))]


@pytest.mark.parametrize("name,kw", ROUND_TRIPS, ids=[n for n, _ in ROUND_TRIPS])
def test_state_dict_into_torch_and_back(name, kw):
    # gcomp -> torch: torch continues from gcomp's weights and state
    pair = Pair()
    gopt = getattr(goptim, name)(list(pair.g.values()), **kw)
    for _ in range(3):
        gopt.zero_grad()
        pair.gloss().backward()
        gopt.step()
    pair.t = {k: torch.tensor(v.detach().numpy(), requires_grad=True) for k, v in pair.g.items()}
    topt = getattr(torch.optim, name)(list(pair.t.values()), foreach=False, **kw)
    sd = gopt.state_dict()
    assert set(sd["param_groups"][0]) == set(topt.state_dict()["param_groups"][0])
    topt.load_state_dict(_to_torch(copy.deepcopy(sd)))
    for step in range(3):
        _step(pair, gopt, topt)
        pair.check(step)
    # torch -> gcomp: a new gcomp optimizer continues from torch's weights and state
    tsd = _to_numpy(topt.state_dict())
    pair.g = {k: gcomp.tensor(v.detach().numpy(), requires_grad=True) for k, v in pair.t.items()}
    gopt = getattr(goptim, name)(list(pair.g.values()), **dict(kw, lr=123.0))
    gopt.load_state_dict(tsd)
    assert {k: set(v) for k, v in gopt.state_dict()["state"].items()} == {
        k: set(v) for k, v in topt.state_dict()["state"].items()}
    for step in range(3):
        _step(pair, gopt, topt)
        pair.check(step)


# -- one compiled training step for every optimizer, a new scheduler on each ---------------------

def _schedulers(m, opts):
    """One scheduler per optimizer; ``m`` is gcomp's or torch's lr_scheduler module."""
    o = opts
    return [
        m.LinearLR(o[0], start_factor=0.25, total_iters=4),
        m.ConstantLR(o[1], factor=0.5, total_iters=3),
        m.MultiplicativeLR(o[2], lr_lambda=lambda e: 0.9),
        m.PolynomialLR(o[3], total_iters=5, power=2.0),
        m.CosineAnnealingWarmRestarts(o[4], T_0=2, T_mult=2, eta_min=0.001),
        m.SequentialLR(o[5], [m.LinearLR(o[5], start_factor=0.5, total_iters=2),
                              m.ExponentialLR(o[5], gamma=0.8)], milestones=[2]),
        m.CyclicLR(o[6], base_lr=0.01, max_lr=0.1, step_size_up=2),  # cycles SGD's momentum
        m.ChainedScheduler([m.StepLR(o[7], step_size=2, gamma=0.5),
                            m.ExponentialLR(o[7], gamma=0.9)]),
        _swalr(m, o[8], swa_lr=0.01, anneal_epochs=3),
    ]


COMPILED = [("Adamax", dict(lr=0.02)), ("NAdam", dict(lr=0.02, weight_decay=0.1)),
            ("RAdam", dict(lr=0.02, betas=(0.9, 0.9))),  # rho_t > 5 from step 3 on
            ("Adadelta", dict(lr=0.5)), ("Rprop", dict(lr=0.02)),
            ("ASGD", dict(lr=0.05, t0=2)), ("SGD", dict(lr=0.05, momentum=0.9)),
            ("Adam", dict(lr=0.02, amsgrad=True, maximize=True)),
            ("Adafactor", dict(lr=0.02, weight_decay=0.1))]


def test_compiled_training_step_matches_eager_without_recompiles():
    rng = np.random.default_rng(1)
    x = gcomp.tensor(rng.standard_normal((6, 3)).astype(np.float32))
    y = gcomp.tensor(rng.standard_normal((6, 2)).astype(np.float32))
    init = [(rng.standard_normal((3, 2)).astype(np.float32) * 0.5,
             rng.standard_normal(2).astype(np.float32) * 0.1) for _ in COMPILED]
    results = []
    for compiled in (False, True):
        params = [(gcomp.tensor(w, requires_grad=True), gcomp.tensor(b, requires_grad=True))
                  for w, b in init]
        for w, b in params:  # gradients exist before the first compiled call
            w.grad, b.grad = gcomp.zeros_like(w), gcomp.zeros_like(b)
        opts = [getattr(goptim, n)([w, b], **kw) for (n, kw), (w, b) in zip(COMPILED, params)]
        scheds = _schedulers(gsched, opts)

        def train_step(x, y, opts=opts, params=params):
            for opt in opts:
                opt.zero_grad(set_to_none=False)
            loss = sum(((gcomp.tanh(x @ w + b) - y) ** 2).mean() for w, b in params)
            loss.backward()
            for opt in opts:
                opt.step()
            return loss

        fn = gcomp.compile(train_step) if compiled else train_step
        losses, lrs = [], []
        for _ in range(5):
            losses.append(fn(x, y).item())
            for s in scheds:
                s.step()
            lrs.append([s.get_last_lr()[0] for s in scheds])
        if compiled:
            assert fn.cache_info().misses == 1, fn._reasons  # lr/momentum changes: no recompile
        else:
            assert all(o._compiled.cache_info().misses == 1 for o in opts)
        results.append((losses, lrs, [(w.detach().numpy(), b.detach().numpy())
                                      for w, b in params]))
    (le, lre, pe), (lc, lrc, pc) = results
    assert lrc == lre and len({tuple(r) for r in lre}) == 5  # the lrs changed every step
    np.testing.assert_allclose(lc, le, rtol=1e-5)
    for (n, _), (we, be), (wc, bc) in zip(COMPILED, pe, pc):
        np.testing.assert_allclose(wc, we, rtol=1e-5, atol=1e-6, err_msg=n)
        np.testing.assert_allclose(bc, be, rtol=1e-5, atol=1e-6, err_msg=n)


# -- LBFGS --------------------------------------------------------------------------------------

RNG = np.random.default_rng(1)
A = RNG.standard_normal((20, 5)).astype(np.float32)
LABELS = (RNG.random(20) > 0.5).astype(np.float32)
W0 = (RNG.standard_normal(5) * 0.1).astype(np.float32)


def _lbfgs(lib, opt_cls, kw, steps, dtype=np.float64):
    w = lib.tensor(W0.astype(dtype), requires_grad=True)
    b = lib.tensor(np.zeros(1, dtype), requires_grad=True)
    x, y = lib.tensor(A.astype(dtype)), lib.tensor(LABELS.astype(dtype))
    opt = opt_cls([w, b], **kw)

    def closure():
        opt.zero_grad()
        z = x @ w + b
        loss = (lib.nn.functional.softplus(z) - y * z).mean() + 0.01 * (w * w).sum()
        loss.backward()
        return loss

    out = []
    for _ in range(steps):
        loss = opt.step(closure)
        out.append((float(loss.detach()), w.detach().numpy().copy(), b.detach().numpy().copy()))
    return out, opt


@pytest.mark.parametrize("kw", [dict(), pytest.param(dict(history_size=3, max_iter=5),
                                                    marks=pytest.mark.slow),
                                dict(line_search_fn="strong_wolfe"),
                                pytest.param(dict(lr=0.5, history_size=2, max_iter=7,
                                                  line_search_fn="strong_wolfe"),
                                             marks=pytest.mark.slow)],
                         ids=["default", "history3", "wolfe", "wolfe-history2"])
def test_lbfgs_matches_torch(kw):
    """float64: every iteration, line-search decision and stopping test as torch's. (In
    float32 the dot products round differently from torch's, which near the optimum can move a
    stopping test by an iteration; the first step is checked in float32 below.)"""
    mine, gopt = _lbfgs(gcomp, goptim.LBFGS, kw, 3)
    theirs, topt = _lbfgs(torch, torch.optim.LBFGS, kw, 3)
    for (gl, gw, gb), (tl, tw, tb) in zip(mine, theirs, strict=True):
        np.testing.assert_allclose(gl, tl, rtol=1e-12)
        np.testing.assert_allclose(gw, tw, rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(gb, tb, rtol=1e-10, atol=1e-14)
    gstate = gopt.state[gopt.param_groups[0]["params"][0]]
    tstate = topt.state[topt.param_groups[0]["params"][0]]
    assert set(gstate) == set(tstate)
    assert gstate["func_evals"] == tstate["func_evals"]
    assert gstate["n_iter"] == tstate["n_iter"]
    assert len(gstate["old_dirs"]) == len(tstate["old_dirs"])
    (gl, gw, _), = _lbfgs(gcomp, goptim.LBFGS, kw, 1, np.float32)[0]
    (tl, tw, _), = _lbfgs(torch, torch.optim.LBFGS, kw, 1, np.float32)[0]
    np.testing.assert_allclose(gw, tw, rtol=1e-4, atol=1e-6)


def test_lbfgs_errors():
    w = gcomp.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(gcomp.GcompError, match="line_search_fn"):
        goptim.LBFGS([w], line_search_fn="armijo")
    with pytest.raises(gcomp.GcompError, match="parameter groups"):
        goptim.LBFGS([{"params": [w]}, {"params": [gcomp.tensor([1.0], requires_grad=True)]}])
    opt = goptim.LBFGS([w])
    with pytest.raises(gcomp.GcompError, match="closure"):
        opt.step()

    @gcomp.compile
    def step():
        def closure():
            opt.zero_grad()
            loss = (w * w).sum()
            loss.backward()
            return loss
        return opt.step(closure)

    with pytest.raises(gcomp.GcompError, match="eagerly"):
        step()
    np.testing.assert_array_equal(w.detach().numpy(), [1.0, 2.0])


# -- schedulers ---------------------------------------------------------------------------------

def _seq(m, opt):
    return m.SequentialLR(opt, [m.LinearLR(opt, start_factor=0.1, total_iters=5),
                                m.ExponentialLR(opt, gamma=0.9), m.StepLR(opt, 3, 0.5)],
                          milestones=[5, 12])


def _chain(m, opt):
    return m.ChainedScheduler([m.ConstantLR(opt, factor=0.5, total_iters=6),
                               m.ExponentialLR(opt, gamma=0.9)])


def _swalr(m, opt, **kw):
    swa = gswa if m is gsched else torch.optim.swa_utils
    return swa.SWALR(opt, **(kw or dict(swa_lr=0.05, anneal_epochs=5)))


def _swalr_linear(m, opt):
    return _swalr(m, opt, swa_lr=0.05, anneal_epochs=3, anneal_strategy="linear")


def _lam(e):
    return 1.0 / (1 + e)


def _mult(e):
    return 0.95


SCHEDULES = [  # (optimizer, options, scheduler or builder, arguments)
    ("SGD", dict(lr=0.1), "LinearLR", dict(start_factor=0.25, total_iters=7)),
    ("SGD", dict(lr=0.1), "LinearLR", dict(start_factor=1.0, end_factor=0.1, total_iters=9)),
    ("SGD", dict(lr=0.1), "ConstantLR", dict(factor=0.5, total_iters=4)),
    ("SGD", dict(lr=0.1), "MultiplicativeLR", dict(lr_lambda=_mult)),
    ("SGD", dict(lr=0.1), "PolynomialLR", dict(total_iters=12, power=2.0)),
    ("SGD", dict(lr=0.1), "CosineAnnealingWarmRestarts", dict(T_0=5, T_mult=2, eta_min=0.001)),
    ("SGD", dict(lr=0.1), "CosineAnnealingWarmRestarts", dict(T_0=4)),
    ("SGD", dict(lr=0.1, momentum=0.9), "CyclicLR",
     dict(base_lr=0.01, max_lr=0.1, step_size_up=4)),
    ("SGD", dict(lr=0.1, momentum=0.9), "CyclicLR",
     dict(base_lr=0.01, max_lr=0.1, step_size_up=3, step_size_down=5, mode="triangular2")),
    ("Adam", dict(lr=0.1), "CyclicLR",
     dict(base_lr=0.01, max_lr=0.1, step_size_up=3, mode="exp_range", gamma=0.9)),
    ("RMSprop", dict(lr=0.1), "CyclicLR",
     dict(base_lr=[0.01], max_lr=0.1, step_size_up=5, cycle_momentum=False)),
    ("SGD", dict(lr=0.1), _seq, None),
    ("SGD", dict(lr=0.1, momentum=0.9), _chain, None),
    ("SGD", dict(lr=0.5), _swalr, None),
    ("SGD", dict(lr=0.5), _swalr_linear, None),
    # the earlier ones: get_last_lr and the state_dict round trip
    ("SGD", dict(lr=0.1), "LambdaLR", dict(lr_lambda=_lam)),
    ("SGD", dict(lr=0.1), "StepLR", dict(step_size=4, gamma=0.5)),
    ("SGD", dict(lr=0.1), "MultiStepLR", dict(milestones=[3, 7, 7, 12], gamma=0.5)),
    ("SGD", dict(lr=0.1), "ExponentialLR", dict(gamma=0.9)),
    ("SGD", dict(lr=0.1), "CosineAnnealingLR", dict(T_max=6, eta_min=0.01)),
    ("SGD", dict(lr=0.1, momentum=0.9), "OneCycleLR", dict(max_lr=0.2, total_steps=40)),
    ("Adam", dict(lr=0.1), "ReduceLROnPlateau", dict(patience=1, factor=0.5, cooldown=1)),
]
PLATEAU = [1.0, 0.9, 0.95, 0.97, 0.8, 0.85, 0.86, 0.87, 0.88, 0.7]


def _make(lib, opt, okw, sched, skw):
    p = lib.zeros(2, requires_grad=True)
    o = getattr(goptim if lib is gcomp else torch.optim, opt)([p], **okw)
    o._opt_called = True  # stepping the optimizer is not what is tested here
    m = gsched if lib is gcomp else tsched
    s = sched(m, o) if callable(sched) else getattr(m, sched)(o, **skw)
    return o, s


def _advance(s, i):
    if isinstance(s, (gsched.ReduceLROnPlateau, tsched.ReduceLROnPlateau)):
        s.step(PLATEAU[i % len(PLATEAU)])
    else:
        s.step()


def _momentum(o):
    g = o.param_groups[0]
    return g["betas"][0] if "betas" in g else g.get("momentum")


@pytest.mark.parametrize("opt,okw,sched,skw", SCHEDULES,
                         ids=[f"{getattr(s, '__name__', s)}-{i}"
                              for i, (_, _, s, _) in enumerate(SCHEDULES)])
def test_scheduler_matches_torch(opt, okw, sched, skw):
    go, gs = _make(gcomp, opt, okw, sched, skw)
    to, ts = _make(torch, opt, okw, sched, skw)
    assert gs.get_last_lr() == ts.get_last_lr()
    for i in range(30):
        if i == 12:  # resume: new optimizers and schedulers loaded from gcomp's state dicts
            osd, ssd = copy.deepcopy(go.state_dict()), copy.deepcopy(gs.state_dict())
            go, gs = _make(gcomp, opt, okw, sched, skw)
            go.load_state_dict(osd)
            gs.load_state_dict(copy.deepcopy(ssd))
            assert gs.get_last_lr() == ts.get_last_lr()
            tosd = to.state_dict()
            to, ts = _make(torch, opt, okw, sched, skw)  # torch continues from gcomp's
            to.load_state_dict(tosd)
            ts.load_state_dict(ssd)
        _advance(gs, i)
        _advance(ts, i)
        assert gs.get_last_lr() == pytest.approx(ts.get_last_lr(), rel=1e-12, abs=1e-15), i
        assert go.param_groups[0]["lr"] == pytest.approx(to.param_groups[0]["lr"], rel=1e-12)
        assert _momentum(go) == pytest.approx(_momentum(to), rel=1e-12)
        assert go.param_groups[0].tensors["lr"].item() == pytest.approx(
            to.param_groups[0]["lr"], rel=1e-6)
    assert gs.state_dict().get("last_epoch") == ts.state_dict().get("last_epoch")


def test_scheduler_errors():
    p = gcomp.zeros(2, requires_grad=True)
    opt = goptim.SGD([p], lr=0.1)
    adam = goptim.Adam([p], lr=0.1)
    cases = [
        (lambda: gsched.ConstantLR(opt, factor=2.0), "between 0 and 1"),
        (lambda: gsched.LinearLR(opt, start_factor=0.0), "greater than 0"),
        (lambda: gsched.MultiplicativeLR(opt, lr_lambda=0.9), "should be a function"),
        (lambda: gsched.CosineAnnealingWarmRestarts(opt, T_0=0), "positive integer T_0"),
        (lambda: gsched.CosineAnnealingWarmRestarts(opt, T_0=2, T_mult=0), "T_mult >= 1"),
        (lambda: gsched.CyclicLR(opt, 0.01, 0.1, mode="sawtooth"), "mode is invalid"),
        (lambda: gsched.CyclicLR(goptim.Adagrad([gcomp.zeros(1, requires_grad=True)]), 0.01,
                                 0.1), "momentum or beta1"),
        (lambda: gsched.SequentialLR(opt, [gsched.StepLR(opt, 2)], milestones=[3]),
         "one more than the number of milestone"),
        (lambda: gsched.SequentialLR(opt, [gsched.StepLR(adam, 2)], milestones=[]),
         "same optimizer"),
        (lambda: gsched.ChainedScheduler([gsched.ReduceLROnPlateau(opt)]),
         "ReduceLROnPlateau"),
        (lambda: gsched.ChainedScheduler([]), "at least one scheduler"),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for make, match in cases:
            with pytest.raises(gcomp.GcompError, match=match):
                make()


def test_optimizer_errors():
    p = [gcomp.zeros(2, requires_grad=True)]
    cases = [
        (lambda: goptim.Adamax(p, lr=-1.0), "Invalid learning rate"),
        (lambda: goptim.Adamax(p, betas=(0.9, 1.0)), "beta parameter at index 1"),
        (lambda: goptim.NAdam(p, momentum_decay=-1.0), "momentum_decay"),
        (lambda: goptim.RAdam(p, eps=-1.0), "epsilon"),
        (lambda: goptim.Adadelta(p, rho=1.5), "rho"),
        (lambda: goptim.Rprop(p, etas=(1.2, 0.5)), "eta values"),
        (lambda: goptim.ASGD(p, weight_decay=-1.0), "weight_decay"),
        (lambda: goptim.NAdam(p, differentiable=True), "differentiable"),
    ]
    for make, match in cases:
        with pytest.raises(gcomp.GcompError, match=match):
            make()
    opt = goptim.NAdam(p)
    bad = {"state": {0: {"step": 1.0, "mu_product": np.ones(2), "exp_avg": np.zeros(2),
                         "exp_avg_sq": np.zeros(2)}},
           "param_groups": [dict(opt.state_dict()["param_groups"][0])]}
    with pytest.raises(gcomp.GcompError, match="mu_product should hold one number"):
        opt.load_state_dict(bad)


# -- swa_utils ----------------------------------------------------------------------------------

def _bn_models():
    gm = gcomp.nn.Sequential(gcomp.nn.Linear(3, 4), gcomp.nn.BatchNorm1d(4),
                             gcomp.nn.Linear(4, 2))
    tm = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4),
                             torch.nn.Linear(4, 2))
    with torch.no_grad():
        for p, q in zip(gm.parameters(), tm.parameters(), strict=True):
            q.copy_(torch.tensor(p.detach().numpy()))
    return gm, tm


@pytest.mark.parametrize("kind", ["swa", "ema", pytest.param("ema_multi", marks=pytest.mark.slow),
                                  pytest.param("swa_multi", marks=pytest.mark.slow), "buffers"])
def test_averaged_model_and_update_bn_match_torch(kind):
    rng = np.random.default_rng(2)
    gm, tm = _bn_models()
    ts = torch.optim.swa_utils
    kw = {"swa": ({}, {}), "buffers": (dict(use_buffers=True), dict(use_buffers=True)),
          "ema": (dict(avg_fn=gswa.get_ema_avg_fn(0.9)), dict(avg_fn=ts.get_ema_avg_fn(0.9))),
          "ema_multi": (dict(multi_avg_fn=gswa.get_ema_multi_avg_fn(0.7)),
                        dict(multi_avg_fn=ts.get_ema_multi_avg_fn(0.7))),
          "swa_multi": (dict(multi_avg_fn=gswa.get_swa_multi_avg_fn()),
                        dict(multi_avg_fn=ts.get_swa_multi_avg_fn()))}[kind]
    ga, ta = gswa.AveragedModel(gm, **kw[0]), ts.AveragedModel(tm, **kw[1])

    def check():
        gsd, tsd = ga.state_dict(), ta.state_dict()
        assert list(gsd) == list(tsd)
        for k in gsd:
            np.testing.assert_allclose(np.asarray(gsd[k].detach()), tsd[k].detach().numpy(),
                                       rtol=1e-6, atol=1e-7, err_msg=k)

    for _ in range(4):
        x = rng.standard_normal((8, 3)).astype(np.float32)
        gm(gcomp.tensor(x))  # train mode: moves the running statistics
        tm(torch.tensor(x))
        with torch.no_grad(), gcomp.no_grad():
            for p, q in zip(gm.parameters(), tm.parameters(), strict=True):
                d = rng.standard_normal(tuple(q.shape)).astype(np.float32) * 0.1
                p.add_(gcomp.tensor(d))
                q.add_(torch.tensor(d))
        ga.update_parameters(gm)
        ta.update_parameters(tm)
        check()
    assert ga.n_averaged.item() == 4 and ga.n_averaged.dtype == gcomp.int64
    batches = [rng.standard_normal((8, 3)).astype(np.float32) for _ in range(3)]
    gswa.update_bn([(gcomp.tensor(b), 0) for b in batches], ga)
    ts.update_bn([(torch.tensor(b), 0) for b in batches], ta)
    check()
    assert ga.module[1].momentum == 0.1 and ga.training


def test_swa_errors():
    m = gcomp.nn.Linear(2, 2)
    f = gswa.get_swa_avg_fn()
    with pytest.raises(gcomp.GcompError, match="Only one of avg_fn and multi_avg_fn"):
        gswa.AveragedModel(m, avg_fn=f, multi_avg_fn=gswa.get_swa_multi_avg_fn())
    with pytest.raises(gcomp.GcompError, match="Invalid decay"):
        gswa.get_ema_avg_fn(1.5)
    opt = goptim.SGD(m.parameters(), lr=0.1)
    with pytest.raises(gcomp.GcompError, match="anneal_strategy"):
        gswa.SWALR(opt, swa_lr=0.01, anneal_strategy="step")
    with pytest.raises(gcomp.GcompError, match="anneal_epochs"):
        gswa.SWALR(opt, swa_lr=0.01, anneal_epochs=-1)


# -- Muon ---------------------------------------------------------------------------------------

def test_muon_newton_schulz_matches_torch_op_by_op():
    from torch.optim._muon import _zeropower_via_newtonschulz as torch_ns

    from gcomp.optim.muon import _zeropower_via_newtonschulz as ns
    rng = np.random.default_rng(3)
    coefficients = (3.4445, -4.7750, 2.0315)
    for shape in [(6, 4), (3, 5)]:
        g = rng.standard_normal(shape).astype(np.float32)
        mine = np.asarray(ns(gcomp.tensor(g), coefficients, 5, 1e-7).to(gcomp.float32))
        theirs = torch_ns(torch.tensor(g), coefficients, 5, 1e-7).float().numpy()
        np.testing.assert_array_equal(mine, theirs)  # eagerly: the same bfloat16 roundings


@pytest.mark.parametrize("kw", [dict(lr=0.02),
                                dict(lr=0.02, nesterov=False, adjust_lr_fn="match_rms_adamw",
                                     weight_decay=0.0, momentum=0.3)], ids=["default", "plain"])
def test_muon_matches_torch_to_bfloat16_rounding(kw):
    rng = np.random.default_rng(4)
    for shape in [(6, 4), (3, 5)]:
        w0 = rng.standard_normal(shape).astype(np.float32)
        gw, tw = gcomp.tensor(w0, requires_grad=True), torch.tensor(w0, requires_grad=True)
        gopt, topt = goptim.Muon([gw], **kw), torch.optim.Muon([tw], **kw)
        for _ in range(5):
            g = rng.standard_normal(shape).astype(np.float32)
            gw.grad, tw.grad = gcomp.tensor(g), torch.tensor(g)
            before = tw.detach().numpy().copy()
            gopt.step()
            topt.step()
            step = np.abs(tw.detach().numpy() - before).max()
            # each step's update is orthogonalized in bfloat16: compare to a tenth of the step
            np.testing.assert_allclose(gw.detach().numpy(), tw.detach().numpy(),
                                       atol=0.1 * step)
        np.testing.assert_allclose(np.asarray(gopt.state[gw]["momentum_buffer"]),
                                   topt.state[tw]["momentum_buffer"].numpy(), rtol=1e-5,
                                   atol=1e-6)
    with pytest.raises(gcomp.GcompError, match="only supports 2D parameters"):
        goptim.Muon([gcomp.zeros(3, requires_grad=True)])
    with pytest.raises(gcomp.GcompError, match="not supported"):
        goptim.Muon([gw], adjust_lr_fn="other")
