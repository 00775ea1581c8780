"""PyTorch's view semantics (Note [Views]): updates of a root show through its views, updates of
a view write through to the root, eagerly and inside gcomp.compile; torch is the reference."""

import numpy as np
import pytest
import torch

import gcomp

# Each case is a program over a module `m` (torch or gcomp): it returns the tensors to compare.
CASES = {
    "root update seen by slice view": lambda m: _root_update(m, lambda x: x[0]),
    "root update seen by transpose": lambda m: _root_update(m, lambda x: x.t()),
    "root update seen by reshape": lambda m: _root_update(m, lambda x: x.reshape(12)),
    "root update seen by strided slice": lambda m: _root_update(m, lambda x: x[:, ::2]),
    "root update seen by expand": lambda m: _root_update(m, lambda x: x[:1].expand(4, 3)),
    "view of view": lambda m: _root_update(m, lambda x: x.t()[1:].reshape(-1)),
    "write through slice": lambda m: _view_update(m, lambda x: x[1], lambda v: v.mul_(10)),
    "write through transpose setitem": lambda m: _view_update(
        m, lambda x: x.t(), lambda v: v.__setitem__((0, 1), -1.0)),
    "write through view of view": lambda m: _view_update(
        m, lambda x: x[:, 1:].reshape(-1), lambda v: v.add_(100)),
    "write through narrow": lambda m: _view_update(m, lambda x: x.narrow(1, 1, 2),
                                                   lambda v: v.fill_(7)),
    "write through unsqueeze": lambda m: _view_update(m, lambda x: x.unsqueeze(0),
                                                      lambda v: v.zero_()),
    "detach alias of a view": lambda m: _view_update(m, lambda x: x[0].detach(),
                                                     lambda v: v.add_(1)),
    "split pieces": lambda m: _view_update(m, lambda x: x.split(1, dim=0)[1],
                                           lambda v: v.sub_(5)),
}


def _root_update(m, make_view):
    x = m.arange(12.0).reshape(4, 3)
    v = make_view(x)
    x.mul_(2)
    return [x, v, v + 1]


def _view_update(m, make_view, update):
    x = m.arange(12.0).reshape(4, 3)
    v = make_view(x)
    other = x[2:]
    update(v)
    return [x, v, other]


@pytest.mark.parametrize("name", list(CASES))
def test_views_eager(name):
    want = CASES[name](torch)
    got = CASES[name](gcomp)
    for w, g in zip(want, got):
        np.testing.assert_array_equal(g.detach().numpy(), w.detach().numpy())


@pytest.mark.parametrize("name", list(CASES))
def test_views_compiled(name):
    want = CASES[name](torch)
    fn = gcomp.compile(lambda: CASES[name](gcomp))
    for w, g in zip(want, fn()):
        np.testing.assert_array_equal(g.numpy(), w.detach().numpy())


def test_write_through_view_of_captured_state_is_written_back():
    w = gcomp.zeros(3, 4)
    row = w[1]

    @gcomp.compile
    def step():
        row.add_(1.0)  # a view of captured state: writes through to w
        return w.sum()

    assert step().item() == 4.0
    tw = torch.zeros(3, 4)
    tw[1].add_(1.0)
    np.testing.assert_array_equal(w.numpy(), tw.numpy())
    np.testing.assert_array_equal(row.numpy(), tw[1].numpy())


def test_gradient_through_view_update_matches_torch():
    def run(m):
        w = m.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
        h = (w * 3).reshape(2, 2)
        h[0].mul_(2.0)
        h.t()[1, 0] = 7.0
        (h * h).sum().backward()
        return w.grad

    np.testing.assert_allclose(run(gcomp).numpy(), run(torch).numpy())


def test_expanded_view_is_not_writable():
    v = gcomp.zeros(3).expand(2, 3)
    with pytest.raises(gcomp.GcompError, match="single memory location"):
        v.add_(1)


def test_in_place_on_view_of_leaf_requiring_grad_is_an_error():
    w = gcomp.ones(3, requires_grad=True)
    with pytest.raises(gcomp.GcompError, match="leaf"):
        w[0].add_(1)
    assert w.detach().numpy().tolist() == [1.0, 1.0, 1.0]


def test_data_alias_writes_without_autograd():
    w = gcomp.ones(2, 2, requires_grad=True)
    w.data[0].fill_(5.0)
    w.data.mul_(2.0)
    tw = torch.ones(2, 2, requires_grad=True)
    tw.data[0].fill_(5.0)
    tw.data.mul_(2.0)
    np.testing.assert_array_equal(w.detach().numpy(), tw.detach().numpy())
    assert w.requires_grad and w.grad_fn is None
