"""The generated fast path of compiled calls (Note [The fast path] in gcomp/runtime/fastpath.py):
it must do what the general path does, and hand every case it does not cover back to it."""

import numpy as np
import pytest

import gcomp
from gcomp import nn


def _model_and_step(seed=0, dropout=0.0):
    gcomp.manual_seed(seed)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Dropout(dropout), nn.Linear(8, 3))
    opt = gcomp.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

    def step(x, y, scale):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y) * scale
        loss.backward()
        opt.step()
        return loss

    return model, opt, step


def _data(n=5):
    rng = np.random.default_rng(1)
    return [(gcomp.tensor(rng.standard_normal((4, 6)).astype(np.float32)),
             gcomp.tensor(rng.integers(0, 3, 4))) for _ in range(n)]


def test_hot_path_runs_and_matches_eager():
    data = _data()
    m_e, _, step_e = _model_and_step()
    m_c, _, step_c = _model_and_step()
    compiled = gcomp.compile(step_c)
    for x, y in data:
        le = step_e(x, y, 1.0)
        lc = compiled(x, y, 1.0)
        np.testing.assert_allclose(lc.item(), le.item(), rtol=1e-5)
    assert compiled._hot is not None and "def hot(args)" in compiled._hot.source
    info = compiled.cache_info()
    assert (info.misses, info.hits) == (1, len(data) - 1)
    for (n, pe), pc in zip(m_e.named_parameters(), m_c.parameters()):
        np.testing.assert_allclose(pc.detach().numpy(), pe.detach().numpy(), rtol=1e-5, err_msg=n)
        np.testing.assert_allclose(pc.grad.numpy(), pe.grad.numpy(), rtol=1e-5, err_msg=n)
    # the returned loss is marked as already backpropagated, as the general path does
    with pytest.raises(gcomp.GcompError, match="already backpropagated"):
        lc.backward()


def test_guard_failures_fall_back_to_the_general_path():
    (x, y), = _data(1)
    model, _, step = _model_and_step(dropout=0.5)
    compiled = gcomp.compile(step)
    compiled(x, y, 1.0)
    compiled(x, y, 1.0)
    assert compiled.cache_info().misses == 1
    compiled(x, y, 2.0)  # another scalar value: a new executable
    assert compiled.cache_info().misses == 2
    model.eval()  # a module mode guard
    compiled(x, y, 2.0)
    assert compiled.cache_info().misses == 3
    compiled(x[:2], y[:2], 2.0)  # views and a new shape
    assert compiled.cache_info().misses == 4
    with gcomp.no_grad():  # the grad mode is part of the key: traced again, and backward fails
        with pytest.raises(gcomp.GcompError, match="does not require grad"):
            compiled(x, y, 2.0)
    assert compiled.cache_info().misses == 5


def test_hot_path_writes_state_seen_by_aliases():
    """Write-back goes into the Storage, so detach() aliases and state_dict() entries see it."""
    (x, y), = _data(1)
    model, opt, step = _model_and_step()
    compiled = gcomp.compile(step)
    alias = model[0].weight.detach()
    before = alias.numpy().copy()
    for _ in range(3):
        compiled(x, y, 1.0)
    assert compiled._hot is not None
    np.testing.assert_array_equal(alias.numpy(), model[0].weight.detach().numpy())
    assert not np.allclose(alias.numpy(), before)
    buf = opt.state[model[0].weight]["momentum_buffer"]
    assert buf.shape == model[0].weight.shape


def test_grad_set_to_none_and_accumulation_follow_pytorch():
    """Without zero_grad the step accumulates into the existing .grad objects; the fast path
    writes into them rather than replacing them."""
    gcomp.manual_seed(0)
    w = gcomp.randn(3, requires_grad=True)
    x = gcomp.randn(3)

    @gcomp.compile
    def accumulate(x):
        (w * x).sum().backward()

    accumulate(x)
    g = w.grad
    for _ in range(3):
        accumulate(x)
    assert w.grad is g
    np.testing.assert_allclose(w.grad.numpy(), 4 * x.numpy(), rtol=1e-6)
    w.grad = None  # a .grad guard: the next call takes the general path and recompiles
    accumulate(x)
    np.testing.assert_allclose(w.grad.numpy(), x.numpy(), rtol=1e-6)
