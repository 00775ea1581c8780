"""Captured state in compiled functions: a training step over global/closure tensors leaves
parameters and gradients exactly as the eager step does; the RNG advances identically."""

from __future__ import annotations

import logging
import re

import numpy as np
import pytest

import gcomp

RNG = np.random.default_rng(2)
LR = 0.1


def npy(t):
    return np.asarray(t.detach())


def make_data(n=16):
    x = RNG.standard_normal((n, 3)).astype(np.float32)
    y = RNG.standard_normal((n, 1)).astype(np.float32)
    return gcomp.tensor(x), gcomp.tensor(y)


def make_params(seed):
    r = np.random.default_rng(seed)
    return (gcomp.tensor(r.standard_normal((3, 1)).astype(np.float32), requires_grad=True),
            gcomp.tensor(r.standard_normal(1).astype(np.float32), requires_grad=True))


def loss_fn(x, y, w, b):
    return (((x @ w + b).tanh() - y) ** 2).mean()


def _zero_none(w, b):
    w.grad = None
    b.grad = None


def _zero_inplace(w, b):
    if w.grad is not None:  # a Python check on .grad (not a tensor value): a guard
        w.grad.zero_()
        b.grad.zero_()


def _no_zero(w, b):
    pass


ZEROING = {"none": _zero_none, "zero_": _zero_inplace, "accumulate": _no_zero}


def make_step(w, b, zero):
    def step(x, y):
        loss = loss_fn(x, y, w, b)
        loss.backward()
        with gcomp.no_grad():
            w.sub_(LR * w.grad)
            b.sub_(LR * b.grad)
        zero(w, b)
        return loss

    return step


def assert_same_state(pe, pc, exact=False):
    check = np.testing.assert_array_equal if exact else (
        lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-6, atol=1e-7))
    for te, tc in zip(pe, pc, strict=True):
        check(npy(tc), npy(te))
        assert (tc.grad is None) == (te.grad is None)
        if te.grad is not None:
            check(npy(tc.grad), npy(te.grad))
        assert tc.requires_grad and tc.is_leaf


@pytest.mark.parametrize("zeroing", list(ZEROING))
def test_training_step_over_closure_tensors_equals_eager(zeroing):
    x, y = make_data()
    we, be = make_params(0)
    wc, bc = make_params(0)
    eager = make_step(we, be, ZEROING[zeroing])
    compiled = gcomp.compile(make_step(wc, bc, ZEROING[zeroing]))
    w_obj = wc
    grad_objs = []
    for _ in range(5):
        le = eager(x, y)
        lc = compiled(x, y)
        np.testing.assert_allclose(npy(lc), npy(le), rtol=1e-6)
        assert_same_state((we, be), (wc, bc))
        grad_objs.append(wc.grad)
    assert wc is w_obj
    if zeroing == "none":
        assert wc.grad is None
    else:
        # the .grad object made by the first call is kept and updated in place, as in torch
        assert all(g is grad_objs[0] for g in grad_objs) and grad_objs[0] is not None
    info = compiled.cache_info()
    # first call: .grad is None; later calls: a tensor. Accumulating/zeroing needs two entries.
    assert info.size == (1 if zeroing == "none" else 2)
    assert info.hits == 5 - info.size


W_G = gcomp.tensor(np.full((3, 1), 0.5, np.float32), requires_grad=True)
B_G = gcomp.tensor(np.zeros(1, np.float32), requires_grad=True)


def global_step(x, y):
    loss = loss_fn(x, y, W_G, B_G)
    loss.backward()
    with gcomp.no_grad():
        W_G.sub_(LR * W_G.grad)
        B_G.sub_(LR * B_G.grad)
    W_G.grad = None
    B_G.grad = None
    return loss


def test_training_step_over_global_tensors_equals_eager():
    x, y = make_data()
    we = gcomp.tensor(npy(W_G).copy(), requires_grad=True)
    be = gcomp.tensor(npy(B_G).copy(), requires_grad=True)
    eager = make_step(we, be, _zero_none)
    compiled = gcomp.compile(global_step)
    for _ in range(5):
        np.testing.assert_allclose(npy(compiled(x, y)), npy(eager(x, y)), rtol=1e-6)
        assert_same_state((we, be), (W_G, B_G))
    text = compiled.ir(x, y)
    assert "W_G" in text and "B_G" in text and "update" in text


def test_grad_set_before_first_compiled_call_then_accumulated():
    x, y = make_data()
    we, be = make_params(1)
    wc, bc = make_params(1)
    for w, b in ((we, be), (wc, bc)):
        loss_fn(x, y, w, b).backward()  # .grad exists before the compiled step is traced
    eager = make_step(we, be, _no_zero)
    compiled = gcomp.compile(make_step(wc, bc, _no_zero))
    for _ in range(3):
        eager(x, y)
        compiled(x, y)
        assert_same_state((we, be), (wc, bc))
    assert compiled.cache_info().size == 1


def test_grad_reset_to_none_between_calls_recompiles_and_stays_correct(caplog):
    caplog.set_level(logging.INFO, logger="gcomp.recompiles")
    x, y = make_data()
    we, be = make_params(3)
    wc, bc = make_params(3)
    eager = make_step(we, be, _no_zero)
    compiled = gcomp.compile(make_step(wc, bc, _no_zero))
    for i in range(4):
        if i == 2:
            we.grad = be.grad = None
            wc.grad = bc.grad = None
        eager(x, y)
        compiled(x, y)
        assert_same_state((we, be), (wc, bc))
    msgs = [r.getMessage() for r in caplog.records if r.name == "gcomp.recompiles"]
    assert msgs and all(".grad" in m for m in msgs)
    assert re.search(r"the \.grad of [wb] changed from None to a tensor", msgs[0]), msgs


def test_leaf_used_before_and_after_a_no_grad_update_in_one_step():
    # w is still a leaf after the no_grad update: its gradient sums d/dw at both values and
    # never flows through the update itself (eager autograd has no edge there)
    x = gcomp.tensor(RNG.standard_normal(3).astype(np.float32))

    def make(w):
        def step(x):
            l1 = (w * w * x).sum()
            with gcomp.no_grad():
                w.mul_(0.5)
            l2 = (w.sin() * x).sum()
            (l1 + l2).backward()
            return l1 + l2

        return step

    a = RNG.standard_normal(3).astype(np.float32)
    we, wc = (gcomp.tensor(a, requires_grad=True) for _ in range(2))
    le, lc = make(we)(x), gcomp.compile(make(wc))(x)
    np.testing.assert_allclose(npy(lc), npy(le), rtol=1e-6)
    xa = npy(x)
    expected = 2 * a * xa + np.cos(0.5 * a) * xa
    np.testing.assert_allclose(npy(we.grad), expected, rtol=1e-5)
    np.testing.assert_allclose(npy(wc.grad), expected, rtol=1e-5)
    np.testing.assert_allclose(npy(wc), 0.5 * a, rtol=1e-6)


def test_captured_tensor_replaced_by_assignment_outside_is_seen():
    w = gcomp.tensor(np.ones(3, np.float32))
    f = gcomp.compile(lambda x: x * w)
    x = gcomp.tensor(np.arange(3, dtype=np.float32))
    np.testing.assert_array_equal(npy(f(x)), npy(x))
    with gcomp.no_grad():
        w.mul_(4.0)  # the compiled function reads the current value, not a baked constant
    np.testing.assert_array_equal(npy(f(x)), 4 * npy(x))


def test_buffer_updated_in_place_each_call():
    count = gcomp.zeros(())
    total = gcomp.zeros(3)

    @gcomp.compile
    def accumulate(x):
        count.add_(1.0)
        total.add_(x)
        return total / count

    xs = [RNG.standard_normal(3).astype(np.float32) for _ in range(4)]
    for i, a in enumerate(xs, 1):
        mean = accumulate(gcomp.tensor(a))
        np.testing.assert_allclose(npy(mean), np.mean(xs[:i], axis=0), rtol=1e-5)
    assert float(count) == 4.0
    assert accumulate.cache_info().size == 1


# ---------------------------------------------------------------------------------------------
# The RNG

def draw(x):
    return x + gcomp.randn(4) * gcomp.rand(4)


def test_rng_compiled_draws_equal_eager_and_generator_advances_identically():
    x = gcomp.zeros(4)
    gcomp.manual_seed(0)
    eager = [npy(draw(x)) for _ in range(2)]
    eager_next = npy(gcomp.randn(3))
    compiled = gcomp.compile(draw)
    gcomp.manual_seed(0)
    got = [npy(compiled(x)) for _ in range(2)]
    got_next = npy(gcomp.randn(3))
    for e, g in zip(eager, got, strict=True):
        np.testing.assert_array_equal(g, e)
    assert not np.array_equal(got[0], got[1])  # the key advanced between calls
    np.testing.assert_array_equal(got_next, eager_next)  # and after them, as eagerly
    assert compiled.cache_info().size == 1


def test_rng_state_get_and_set_around_compiled_call():
    compiled = gcomp.compile(lambda: gcomp.randn(5))
    gcomp.manual_seed(123)
    state = gcomp.default_generator.get_state()
    a = npy(compiled())
    gcomp.default_generator.set_state(state)
    b = npy(compiled())
    gcomp.manual_seed(123)
    c = npy(gcomp.randn(5))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)


def test_manual_seed_inside_compile_is_an_error():
    def f(x):
        gcomp.manual_seed(0)
        return x

    with pytest.raises(gcomp.GcompError, match="manual_seed"):
        gcomp.compile(f)(gcomp.zeros(2))


# ---------------------------------------------------------------------------------------------
# Linear regression: eager and compiled converge along the same curve

def sgd(w, b, x, y, lr):
    loss = ((x @ w + b - y) ** 2).mean()
    loss.backward()
    with gcomp.no_grad():
        w -= lr * w.grad
        b -= lr * b.grad
    w.grad = None
    b.grad = None
    return loss


def test_linear_regression_eager_and_compiled_losses_match():
    gcomp.manual_seed(0)
    x = gcomp.randn(128, 1)
    y = 3 * x + 1 + 0.1 * gcomp.randn(128, 1)
    we, be = gcomp.zeros(1, 1, requires_grad=True), gcomp.zeros(1, requires_grad=True)
    wc, bc = gcomp.zeros(1, 1, requires_grad=True), gcomp.zeros(1, requires_grad=True)
    step = gcomp.compile(lambda x, y: sgd(wc, bc, x, y, 0.1))
    eager, compiled = [], []
    for _ in range(100):
        eager.append(sgd(we, be, x, y, 0.1).item())
        compiled.append(step(x, y).item())
    np.testing.assert_allclose(compiled, eager, rtol=1e-6, atol=1e-6)
    assert eager[-1] < 0.02 < eager[0]
    np.testing.assert_allclose([wc.item(), bc.item()], [3.0, 1.0], atol=0.05)
    np.testing.assert_allclose([wc.item(), bc.item()], [we.item(), be.item()], rtol=1e-5)
    assert step.cache_info().size == 1


# -- Note [Module structure guards] in gcomp/nn/modules/module.py ----------------------------------
def test_replacing_a_submodule_or_parameter_after_compile_recompiles(caplog):
    gcomp.manual_seed(0)
    model = gcomp.nn.Sequential(gcomp.nn.Linear(3, 2), gcomp.nn.Tanh())
    f = gcomp.compile(lambda x: model(x))
    x = gcomp.tensor(np.arange(12, dtype=np.float32).reshape(4, 3))
    f(x)
    with caplog.at_level(logging.INFO, logger="gcomp.recompiles"):
        model[0] = gcomp.nn.Linear(3, 2)
        out = f(x)
    np.testing.assert_allclose(out.detach().numpy(), model(x).detach().numpy(), rtol=1e-6)
    assert "submodule of module model (Sequential) was added, replaced or removed" in caplog.text
    model[0].weight = gcomp.nn.Parameter(gcomp.zeros(2, 3))
    np.testing.assert_allclose(f(x).detach().numpy(), np.tanh(model[0].bias.detach().numpy())
                               * np.ones((4, 1)), rtol=1e-6)
    assert f.cache_info().misses == 3
    for _ in range(3):  # and unchanged modules keep hitting
        f(x)
    assert f.cache_info().misses == 3


def test_assigning_a_buffer_inside_compile_writes_it_back():
    class Counter(gcomp.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("n", gcomp.zeros(()))

        def forward(self, x):
            self.n = self.n + 1
            return x * self.n

    m = Counter()
    buf = m.n
    g = gcomp.compile(m)
    outs = [float(g(gcomp.ones(2))[0]) for _ in range(4)]
    assert outs == [1.0, 2.0, 3.0, 4.0]  # eager would give the same
    assert m.n is buf and float(m.n) == 4.0 and g.cache_info().misses == 1

    class Grow(Counter):
        def forward(self, x):
            self.n = gcomp.zeros(3)
            return x

    with pytest.raises(gcomp.GcompError, match=r"changes the buffer from f32\[\] to f32\[3\]"):
        gcomp.compile(Grow())(gcomp.ones(2))
