"""Eager composites (runtime.compiled.composite): F.linear and F.cross_entropy run eagerly as one
compiled call forward and one backward; values, gradients and double gradients equal torch's."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import gcomp
import gcomp.nn.functional as F
from gcomp.nn.functional._linear import _linear
from gcomp.nn.functional._loss import _cross_entropy


def _pair(rng, shape, grad=True):
    a = rng.standard_normal(shape)
    return (gcomp.tensor(a, dtype=gcomp.float64, requires_grad=grad),
            torch.tensor(a, dtype=torch.float64, requires_grad=grad))


@pytest.mark.parametrize("kw", [{}, {"weight": True}, {"ignore_index": 1},
                                {"label_smoothing": 0.1}, {"reduction": "sum"},
                                {"reduction": "none"}])
def test_linear_and_cross_entropy_match_torch_with_grads(kw):
    rng = np.random.default_rng(0)
    x, tx = _pair(rng, (6, 5), grad=False)
    w, tw = _pair(rng, (4, 5))
    b, tb = _pair(rng, (4,))
    y = rng.integers(0, 4, 6)
    opts = dict(kw)
    cw = tcw = None
    if opts.pop("weight", False):
        cw, tcw = _pair(rng, (4,), grad=False)
    hits = _linear.compiled.cache_info().hits + _linear.compiled.cache_info().misses
    loss = F.cross_entropy(F.linear(x, w, b), gcomp.tensor(y), weight=cw, **opts)
    tloss = torch.nn.functional.cross_entropy(torch.nn.functional.linear(tx, tw, tb),
                                              torch.tensor(y), weight=tcw, **opts)
    after = _linear.compiled.cache_info()
    assert after.hits + after.misses == hits + 1  # the compiled path ran
    np.testing.assert_allclose(loss.detach().numpy(), tloss.detach().numpy(), rtol=1e-10)
    loss.sum().backward()
    tloss.sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), tw.grad.numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(b.grad.numpy(), tb.grad.numpy(), rtol=1e-9, atol=1e-12)
    assert x.grad is None


def test_double_backward_through_composites_matches_torch():
    """create_graph=True: the composites recompute op by op, so a gradient penalty works."""
    rng = np.random.default_rng(1)
    x, tx = _pair(rng, (5, 3))
    w, tw = _pair(rng, (2, 3))
    y = rng.integers(0, 2, 5)

    def penalty(F_, x_, w_, y_, autograd):
        loss = F_.cross_entropy(F_.linear(x_, w_), y_)
        (gx,) = autograd.grad(loss, [x_], create_graph=True)
        return (gx * gx).sum()

    p = penalty(F, x, w, gcomp.tensor(y), gcomp.autograd)
    tp = penalty(torch.nn.functional, tx, tw, torch.tensor(y), torch.autograd)
    np.testing.assert_allclose(p.detach().numpy(), tp.detach().numpy(), rtol=1e-10)
    p.backward()
    tp.backward()
    np.testing.assert_allclose(w.grad.numpy(), tw.grad.numpy(), rtol=1e-8, atol=1e-12)


def test_eager_checks_still_raise_at_the_users_line():
    logits = gcomp.randn(3, 4)
    with pytest.raises(IndexError, match="Target 7 is out of bounds"):
        F.cross_entropy(logits, gcomp.tensor([0, 7, 1]))
    with pytest.raises(gcomp.GcompError, match="cannot be multiplied"):
        F.linear(gcomp.randn(2, 3), gcomp.randn(4, 5))


def test_composites_are_inlined_when_traced():
    w = gcomp.randn(3, 4, requires_grad=True)
    before = _cross_entropy.compiled.cache_info()

    @gcomp.compile
    def step(x, y):
        loss = F.cross_entropy(F.linear(x, w), y)
        loss.backward()
        return loss

    step(gcomp.randn(5, 4), gcomp.tensor([0, 1, 2, 0, 1]))
    assert _cross_entropy.compiled.cache_info() == before  # traced op by op, not called
    assert "dot_general" in step.ir(gcomp.randn(5, 4), gcomp.tensor([0, 1, 2, 0, 1]))
