"""Eager autograd against torch (CPU) as the reference: .grad, backward, autograd.grad,
higher derivatives, grad modes, autograd.Function, gcomp.grad, in-place ops and snapshots."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import gcomp

RNG = np.random.default_rng(0)


def arr(*shape, dtype=np.float32):
    return RNG.standard_normal(shape).astype(dtype)


def pair(a, requires_grad=True):
    """The same leaf in gcomp and torch."""
    return (gcomp.tensor(a, requires_grad=requires_grad),
            torch.tensor(a, requires_grad=requires_grad))


def close(g, t, rtol=1e-5, atol=1e-5):
    """gcomp tensor ``g`` equals torch tensor ``t``."""
    assert g is not None and t is not None, (g, t)
    gn = np.asarray(g.detach())
    tn = t.detach().numpy()
    assert gn.shape == tn.shape, (gn.shape, tn.shape)
    np.testing.assert_allclose(gn, tn, rtol=rtol, atol=atol)


# ---------------------------------------------------------------------------------------------
# requires_grad and leaves

def test_requires_grad_flags():
    a = arr(3)
    x = gcomp.tensor(a)
    assert not x.requires_grad and x.is_leaf and x.grad is None
    assert x.requires_grad_() is x
    assert x.requires_grad and x.is_leaf
    y = x * 2
    assert y.requires_grad and not y.is_leaf and y.grad_fn is not None
    z = gcomp.tensor(a) * 2
    assert not z.requires_grad and z.grad_fn is None
    x.requires_grad_(False)
    assert not (x * 2).requires_grad


def test_requires_grad_on_integer_tensor_is_an_error():
    with pytest.raises(gcomp.GcompError, match="floating point"):
        gcomp.tensor([1, 2, 3]).requires_grad_()


def test_requires_grad_false_on_non_leaf_is_an_error():
    x = gcomp.tensor(arr(3), requires_grad=True)
    with pytest.raises(gcomp.GcompError, match="leaf"):
        (x * 2).requires_grad_(False)


def test_grad_accumulates_over_two_backward_calls():
    x, xt = pair(arr(4))
    for _ in range(2):
        (x.sin() * x).sum().backward()
        (xt.sin() * xt).sum().backward()
        close(x.grad, xt.grad)
    g = x.grad
    (x ** 2).sum().backward()
    (xt ** 2).sum().backward()
    assert x.grad is g  # accumulated in place, like torch
    close(x.grad, xt.grad)


def test_grads_of_two_leaves_do_not_alias():
    # add's VJP hands the same cotangent to both operands; each .grad must be its own tensor
    x, xt = pair(arr(3))
    w, wt = pair(arr(3))
    (x + w).sum().backward()
    (xt + wt).sum().backward()
    (x * 3).sum().backward()
    (xt * 3).sum().backward()
    close(x.grad, xt.grad)
    close(w.grad, wt.grad)


def test_grad_of_leaf_does_not_alias_the_gradient_argument():
    x, xt = pair(arr(3))
    v = arr(3)
    seed = gcomp.tensor(v)
    x.backward(gradient=seed)
    xt.backward(gradient=torch.tensor(v))
    (x * x).sum().backward()
    (xt * xt).sum().backward()
    close(x.grad, xt.grad)
    np.testing.assert_array_equal(np.asarray(seed), v)


def test_grad_none_and_zero_reset():
    x, xt = pair(arr(3))
    (x * 3).sum().backward()
    x.grad = None
    (x * x).sum().backward()
    (xt * xt).sum().backward()
    close(x.grad, xt.grad)
    x.grad.zero_()
    xt.grad.zero_()
    (x.exp()).sum().backward()
    (xt.exp()).sum().backward()
    close(x.grad, xt.grad)


# ---------------------------------------------------------------------------------------------
# backward(gradient=...), errors, retain_graph

def test_backward_with_gradient_for_non_scalar_output():
    x, xt = pair(arr(2, 3))
    v = arr(2, 3)
    (x.tanh() * x).backward(gradient=gcomp.tensor(v))
    (xt.tanh() * xt).backward(gradient=torch.tensor(v))
    close(x.grad, xt.grad)


def test_backward_on_non_scalar_without_gradient_is_an_error():
    x = gcomp.tensor(arr(3), requires_grad=True)
    with pytest.raises(gcomp.GcompError, match="scalar"):
        (x * 2).backward()
    assert x.grad is None


def test_backward_with_gradient_of_wrong_shape_is_an_error():
    x = gcomp.tensor(arr(3), requires_grad=True)
    with pytest.raises(gcomp.GcompError, match="shape"):
        (x * 2).backward(gradient=gcomp.ones(4))


def test_backward_on_tensor_without_grad_is_an_error():
    x = gcomp.tensor(arr(3))
    with pytest.raises(gcomp.GcompError, match="does not require grad") as info:
        (x * 2).sum().backward()
    assert "test_autograd.py" in str(info.value)


def test_autograd_grad_of_output_without_grad_is_an_error():
    x = gcomp.tensor(arr(3), requires_grad=True)
    with pytest.raises(gcomp.GcompError):
        gcomp.autograd.grad(gcomp.tensor(arr(3)).sum(), x)


def test_retain_graph_allows_a_second_backward():
    x, xt = pair(arr(5))
    y = (x.exp() * x.cos()).sum()
    yt = (xt.exp() * xt.cos()).sum()
    y.backward(retain_graph=True)
    yt.backward(retain_graph=True)
    y.backward()
    yt.backward()
    close(x.grad, xt.grad)


# Note [Freeing the graph]: what a second backward without retain_graph does, against torch.
# gcomp keeps constants made from Python numbers, so x * 2 and x / 2 may be walked again
# where torch refuses (the one documented difference: more permissive, never wrong).
SECOND_BACKWARD = {
    "x + 1": (lambda m, x: (x + 1).sum(), None),
    "sum": (lambda m, x: x.sum(), None),
    "mean": (lambda m, x: x.mean(), None),
    "reshape": (lambda m, x: x.reshape(3, 2).sum(), None),
    "x * x": (lambda m, x: (x * x).sum(), None),
    "exp": (lambda m, x: x.exp().sum(), None),
    "relu": (lambda m, x: m.relu(x).sum(), None),
    "matmul": (lambda m, x: (x.reshape(2, 3) @ x.reshape(3, 2)).sum(), None),
    "x * 2": (lambda m, x: (x * 2).sum(), "ok"),
    "x / 2": (lambda m, x: (x / 2).sum(), "ok"),
}


@pytest.mark.parametrize("name", list(SECOND_BACKWARD))
def test_second_backward_without_retain_graph_as_torch(name):
    f, ours = SECOND_BACKWARD[name]
    x, xt = pair(arr(6))
    outcome = {}
    for m, t in ((torch, xt), (gcomp, x)):
        y = f(m, t)
        y.backward()
        try:
            y.backward()
            outcome[m] = "ok"
        except RuntimeError as e:  # GcompError is a RuntimeError, as torch's error is
            assert "backward through the graph a second time" in str(e)
            outcome[m] = "error"
    assert outcome[gcomp] == (ours or outcome[torch])
    if outcome[gcomp] == outcome[torch] == "ok":
        close(x.grad, xt.grad)  # accumulated twice


def test_second_backward_error_names_the_line_and_leaves_grads_intact():
    x = gcomp.tensor(arr(4), requires_grad=True)
    y = (x.exp() * x).sum()
    y.backward()
    first = x.grad.numpy().copy()
    with pytest.raises(gcomp.GcompError, match="retain_graph=True") as info:
        y.backward()
    assert "test_autograd.py" in str(info.value)
    np.testing.assert_array_equal(x.grad.numpy(), first)
    with pytest.raises(gcomp.GcompError, match="second time"):
        gcomp.autograd.grad(y, x)


def test_backward_frees_saved_activations():
    """Without retain_graph the tape drops what it saved as soon as backward is done, even while
    the loss is alive (torch's memory behaviour); with it, they stay."""
    import gc
    import weakref

    x = gcomp.tensor(arr(100), requires_grad=True)
    for retain in (False, True):
        h = x.exp()
        ref = weakref.ref(h._storage.data)
        loss = (h * h).sum()
        del h
        loss.backward(retain_graph=retain)
        gc.collect()
        assert (ref() is not None) == retain
        del loss


def test_autograd_grad_frees_unless_retained_and_create_graph_retains():
    x, xt = pair(arr(5))
    y = (x.sin() * x).sum()
    (g,) = gcomp.autograd.grad(y, x, retain_graph=True)
    (g2,) = gcomp.autograd.grad(y, x)
    close(g, g2)
    with pytest.raises(gcomp.GcompError, match="second time"):
        gcomp.autograd.grad(y, x)
    # create_graph keeps the graph (retain_graph defaults to it): grad of grad, then backward
    z = (x.sin() * x).sum()
    (gz,) = gcomp.autograd.grad(z, x, create_graph=True)
    gz.sum().backward()
    zt = (xt.sin() * xt).sum()
    (gzt,) = torch.autograd.grad(zt, xt, create_graph=True)
    gzt.sum().backward()
    close(x.grad, xt.grad)


def test_second_backward_through_function_and_compiled_module():
    class Square(gcomp.autograd.Function):
        @staticmethod
        def forward(ctx, a):
            ctx.save_for_backward(a)
            return a * a

        @staticmethod
        def backward(ctx, g):
            (a,) = ctx.saved_tensors
            return 2 * a * g

    a = arr(3)
    x = gcomp.tensor(a, requires_grad=True)
    y = Square.apply(x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 4 * a, rtol=1e-6)
    with pytest.raises(gcomp.GcompError, match="second time"):
        y.backward()
    lin = gcomp.nn.Linear(3, 2)
    cm = gcomp.compile(lin)
    loss = cm(x).pow(2).sum()
    loss.backward()
    with pytest.raises(gcomp.GcompError, match="second time"):
        loss.backward()


def test_backward_through_shared_subexpression():
    x, xt = pair(arr(3, 4))
    w, wt = pair(arr(4, 2))

    def f(m, x, w):
        h = (x @ w)
        return (h * h + m.sigmoid(h)).mean() + (x.sum(1) ** 2).sum()

    f(gcomp, x, w).backward()
    f(torch, xt, wt).backward()
    close(x.grad, xt.grad)
    close(w.grad, wt.grad)


def test_retain_grad_on_non_leaf():
    x, xt = pair(arr(3))
    outs = []
    for t in (x, xt):
        h = t.sin() * 3
        h.retain_grad()
        u = h * h  # not retained: stays without .grad
        for _ in range(2):  # accumulates like a leaf's .grad
            (u * t).sum().backward(retain_graph=True)
        outs.append((h, u))
    (h, u), (ht, ut) = outs
    close(h.grad, ht.grad)
    close(x.grad, xt.grad)
    assert u.grad is None
    with pytest.raises(gcomp.GcompError, match="requires_grad"):
        gcomp.tensor(arr(3)).retain_grad()


def test_backward_inputs_restricts_accumulation():
    x, xt = pair(arr(3))
    w, wt = pair(arr(3))
    (x * w).sum().backward(inputs=[w])
    (xt * wt).sum().backward(inputs=[wt])
    assert x.grad is None and xt.grad is None
    close(w.grad, wt.grad)


# ---------------------------------------------------------------------------------------------
# Higher derivatives

def test_second_derivative_with_create_graph():
    x, xt = pair(arr(6).astype(np.float64))
    (g,) = gcomp.autograd.grad((x ** 3 * x.sin()).sum(), x, create_graph=True)
    (gt,) = torch.autograd.grad((xt ** 3 * xt.sin()).sum(), xt, create_graph=True)
    assert g.requires_grad
    close(g, gt)
    (g2,) = gcomp.autograd.grad(g.sum(), x)
    (g2t,) = torch.autograd.grad(gt.sum(), xt)
    close(g2, g2t, rtol=1e-10, atol=1e-10)
    # the analytic second derivative of x^3 sin x
    a = np.asarray(x.detach())
    expected = 6 * a * np.sin(a) + 6 * a ** 2 * np.cos(a) - a ** 3 * np.sin(a)
    np.testing.assert_allclose(np.asarray(g2), expected, rtol=1e-10)


@pytest.mark.filterwarnings("ignore:Using backward\\(\\) with create_graph=True")
def test_backward_create_graph_then_backward_of_grad():
    x, xt = pair(arr(4))
    (x ** 3 * x.sin()).sum().backward(create_graph=True)
    (xt ** 3 * xt.sin()).sum().backward(create_graph=True)
    close(x.grad, xt.grad)
    assert x.grad.requires_grad
    gx = x.grad
    x.grad = None
    xt_g = xt.grad
    xt.grad = None
    gx.sum().backward()
    xt_g.sum().backward()
    close(x.grad, xt.grad, rtol=1e-4, atol=1e-4)


def test_hessian_vector_product():
    x, xt = pair(arr(5).astype(np.float64))
    a = arr(5, 5).astype(np.float64)
    v = arr(5).astype(np.float64)

    def f(m, x, a):
        return (x @ a @ x) * 0.5 + (x.tanh() ** 2).sum()

    (g,) = gcomp.autograd.grad(f(gcomp, x, gcomp.tensor(a)), x, create_graph=True)
    (hv,) = gcomp.autograd.grad(g, x, grad_outputs=gcomp.tensor(v))
    (gt,) = torch.autograd.grad(f(torch, xt, torch.tensor(a)), xt, create_graph=True)
    (hvt,) = torch.autograd.grad(gt, xt, grad_outputs=torch.tensor(v))
    close(hv, hvt, rtol=1e-10, atol=1e-10)


def test_third_derivative():
    x, xt = pair(arr(3).astype(np.float64))
    g = x.exp() * x.cos()
    gt = xt.exp() * xt.cos()
    for _ in range(3):
        (g,) = gcomp.autograd.grad(g.sum(), x, create_graph=True)
        (gt,) = torch.autograd.grad(gt.sum(), xt, create_graph=True)
        close(g, gt, rtol=1e-10, atol=1e-10)


# ---------------------------------------------------------------------------------------------
# detach, .data, grad modes

def test_detach_stops_gradient_and_shares_storage():
    x, xt = pair(arr(3))
    d = x.detach()
    assert not d.requires_grad and d.is_leaf
    ((x * d).sum()).backward()
    ((xt * xt.detach()).sum()).backward()
    close(x.grad, xt.grad)
    with gcomp.no_grad():
        d.add_(1.0)  # shares storage with x, like torch
    np.testing.assert_allclose(np.asarray(x.detach()), xt.detach().numpy() + 1.0, rtol=1e-6)


def test_data_shares_storage_without_history():
    x = gcomp.tensor(arr(3), requires_grad=True)
    before = np.asarray(x.detach()).copy()
    d = x.data
    assert not d.requires_grad
    d.mul_(2.0)
    np.testing.assert_allclose(np.asarray(x.detach()), before * 2)
    assert x.requires_grad and x.is_leaf
    x.data = gcomp.zeros(3)
    np.testing.assert_array_equal(np.asarray(x.detach()), np.zeros(3, np.float32))
    assert x.requires_grad and x.is_leaf


def test_data_assignment_of_another_dtype_and_shape_as_torch():
    """``p.data = p.data.double()`` (and a new shape) rebinds the tensor, as torch does: it keeps
    its autograd identity and its gradients come in the new dtype; an earlier ``.data`` alias
    keeps the old data."""
    outs, w0, x0 = {}, arr(2, 3), arr(4, 3).astype(np.float64)
    for T in (torch, gcomp):
        lin = T.nn.Linear(3, 2)
        with T.no_grad():
            lin.weight.copy_(T.tensor(w0))
            lin.bias.fill_(0.5)
        old = lin.weight.data
        lin.weight.data = lin.weight.data.double()
        lin.bias.data = lin.bias.data.double()
        lin(T.tensor(x0)).square().sum().backward()
        w = T.tensor(w0[0])
        w.requires_grad_()
        w.data = T.zeros(5, dtype=T.float64)
        outs[T] = (lin.weight.dtype, lin.weight.is_leaf, lin.weight.grad.dtype,
                   np.asarray(lin.weight.grad), old.dtype, tuple(w.shape), w.dtype, w.is_leaf)
    t, g = outs[torch], outs[gcomp]
    assert [str(v).split(".")[-1] for v in g[:3]] == [str(v).split(".")[-1] for v in t[:3]]
    np.testing.assert_allclose(g[3], t[3], rtol=1e-12)
    assert str(g[4]).endswith("float32") and g[5:7] == (t[5], gcomp.float64) and g[7]


def test_data_assignment_of_another_type_inside_compile_is_an_error():
    p = gcomp.zeros(3)

    def f(x):
        p.data = x.double()
        return x

    with pytest.raises(gcomp.GcompError, match="test_autograd.py.*another shape or dtype"):
        gcomp.compile(f)(gcomp.ones(3))
    assert p.dtype == gcomp.float32 and p.shape == (3,)
    with pytest.raises(gcomp.GcompError, match="must be a tensor"):
        p.data = [1.0, 2.0, 3.0]


def test_no_grad_context_manager():
    x = gcomp.tensor(arr(3), requires_grad=True)
    with gcomp.no_grad():
        assert not gcomp.is_grad_enabled()
        y = x * 2
        with gcomp.enable_grad():
            assert gcomp.is_grad_enabled()
            z = x * 2
        assert not gcomp.is_grad_enabled()
    assert gcomp.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None
    assert z.requires_grad


def test_grad_mode_decorators():
    x = gcomp.tensor(arr(3), requires_grad=True)

    @gcomp.no_grad()
    def f(t):
        return t * 2

    @gcomp.no_grad
    def f2(t):
        return t * 2

    @gcomp.enable_grad()
    def g(t):
        return t * 2

    assert f.__name__ == "f"
    assert not f(x).requires_grad and not f2(x).requires_grad
    with gcomp.no_grad():
        assert g(x).requires_grad
        assert not gcomp.is_grad_enabled()
    assert gcomp.is_grad_enabled()


def test_grad_mode_restored_after_exception():
    with pytest.raises(ValueError):
        with gcomp.no_grad():
            raise ValueError
    assert gcomp.is_grad_enabled()

    @gcomp.no_grad()
    def bad():
        raise ValueError

    with pytest.raises(ValueError):
        bad()
    assert gcomp.is_grad_enabled()


def test_set_grad_enabled_as_function_and_context_manager():
    x = gcomp.tensor(arr(3), requires_grad=True)
    try:
        gcomp.set_grad_enabled(False)
        assert not gcomp.is_grad_enabled()
        assert not (x * 2).requires_grad
    finally:
        gcomp.set_grad_enabled(True)
    assert gcomp.is_grad_enabled()
    for mode in (False, True):
        with gcomp.set_grad_enabled(mode):
            assert gcomp.is_grad_enabled() is mode
            assert (x * 2).requires_grad is mode
        assert gcomp.is_grad_enabled()
    with gcomp.no_grad():
        with gcomp.set_grad_enabled(True):
            assert (x * 2).requires_grad
        assert not gcomp.is_grad_enabled()
    assert gcomp.autograd.set_grad_enabled is gcomp.set_grad_enabled
    assert gcomp.autograd.no_grad is gcomp.no_grad


# ---------------------------------------------------------------------------------------------
# autograd.grad

def test_autograd_grad_single_input_does_not_touch_dot_grad():
    x, xt = pair(arr(4))
    (g,) = gcomp.autograd.grad((x.exp() * x).sum(), x)
    (gt,) = torch.autograd.grad((xt.exp() * xt).sum(), xt)
    close(g, gt)
    assert x.grad is None and not g.requires_grad


def test_autograd_grad_multiple_inputs_and_outputs():
    x, xt = pair(arr(3, 4))
    w, wt = pair(arr(4))

    def f(x, w):
        h = x * w
        return h.sum(), (h.sin()).mean()

    gs = gcomp.autograd.grad(list(f(x, w)), [x, w])
    gts = torch.autograd.grad(list(f(xt, wt)), [xt, wt])
    assert len(gs) == 2
    for g, gt in zip(gs, gts, strict=True):
        close(g, gt)


def test_autograd_grad_with_respect_to_non_leaf():
    x, xt = pair(arr(3))
    h, ht = x.sin(), xt.sin()
    y, yt = (h * h * x).sum(), (ht * ht * xt).sum()
    gh, gx = gcomp.autograd.grad(y, [h, x])
    ght, gxt = torch.autograd.grad(yt, [ht, xt])
    close(gh, ght)
    close(gx, gxt)


def test_autograd_grad_allow_unused():
    x, xt = pair(arr(3))
    u, ut = pair(arr(3))
    with pytest.raises(gcomp.GcompError, match="allow_unused"):
        gcomp.autograd.grad((x * 2).sum(), [x, u])
    gx, gu = gcomp.autograd.grad((x * 2).sum(), [x, u], allow_unused=True)
    gxt, gut = torch.autograd.grad((xt * 2).sum(), [xt, ut], allow_unused=True)
    close(gx, gxt)
    assert gu is None and gut is None
    gx, gu = gcomp.autograd.grad((x * 2).sum(), [x, u], allow_unused=True,
                                 materialize_grads=True)
    gxt, gut = torch.autograd.grad((xt * 2).sum(), [xt, ut], allow_unused=True,
                                   materialize_grads=True)
    close(gu, gut)


def test_autograd_grad_outputs():
    x, xt = pair(arr(2, 3))
    v1, v2 = arr(2, 3), arr(3)
    outs = [x.exp(), (x * x).sum(0)]
    outst = [xt.exp(), (xt * xt).sum(0)]
    (g,) = gcomp.autograd.grad(outs, x, grad_outputs=[gcomp.tensor(v1), gcomp.tensor(v2)])
    (gt,) = torch.autograd.grad(outst, xt, grad_outputs=[torch.tensor(v1), torch.tensor(v2)])
    close(g, gt)


def test_autograd_grad_input_without_requires_grad_is_an_error():
    x = gcomp.tensor(arr(3), requires_grad=True)
    c = gcomp.tensor(arr(3))
    with pytest.raises(gcomp.GcompError):
        gcomp.autograd.grad((x * c).sum(), c)


def test_autograd_backward_function():
    x, xt = pair(arr(3))
    gcomp.autograd.backward([(x * x).sum(), x.sin().sum()])
    torch.autograd.backward([(xt * xt).sum(), xt.sin().sum()])
    close(x.grad, xt.grad)


# ---------------------------------------------------------------------------------------------
# autograd.Function

class GExp(gcomp.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        y = x.exp()
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, gy):
        (y,) = ctx.saved_tensors
        return gy * y


class TExp(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        y = x.exp()
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, gy):
        (y,) = ctx.saved_tensors
        return gy * y


def _clamp_ste(base):
    class ClampSTE(base.autograd.Function):
        """Clamp forward, straight-through (identity) backward, with a non-tensor argument."""

        @staticmethod
        def forward(ctx, x, lo, hi):
            ctx.save_for_backward(x)
            return x.clamp(lo, hi)

        @staticmethod
        def backward(ctx, gy):
            (x,) = ctx.saved_tensors
            return gy * (x * 0 + 1), None, None

    return ClampSTE


GClampSTE, TClampSTE = _clamp_ste(gcomp), _clamp_ste(torch)


def test_custom_function_exp():
    x, xt = pair(arr(4))
    y = GExp.apply(x)
    yt = TExp.apply(xt)
    close(y, yt)
    assert y.requires_grad and not y.is_leaf
    (y * x).sum().backward()
    (yt * xt).sum().backward()
    close(x.grad, xt.grad)


def test_custom_function_second_use_and_composition():
    x, xt = pair(arr(4))
    y = GExp.apply(GExp.apply(x.sin()) * 0.5)
    yt = TExp.apply(TExp.apply(xt.sin()) * 0.5)
    y.sum().backward()
    yt.sum().backward()
    close(x.grad, xt.grad)


def test_custom_function_straight_through_clamp():
    a = arr(8) * 2
    x, xt = pair(a)
    y = GClampSTE.apply(x, -0.5, 0.5)
    yt = TClampSTE.apply(xt, -0.5, 0.5)
    close(y, yt)
    (y * y).sum().backward()
    (yt * yt).sum().backward()
    close(x.grad, xt.grad)
    # straight through: the gradient passes where clamp's own gradient is zero
    assert np.any(np.abs(a) > 0.5)
    np.testing.assert_allclose(np.asarray(x.grad), 2 * np.clip(a, -0.5, 0.5), rtol=1e-6)


def test_custom_function_without_grad_returns_plain_result():
    x = gcomp.tensor(arr(3))
    y = GExp.apply(x)
    assert not y.requires_grad
    np.testing.assert_allclose(np.asarray(y), np.exp(np.asarray(x)), rtol=1e-6)


def test_custom_function_wrong_number_of_grads_is_an_error():
    class Bad(gcomp.autograd.Function):
        @staticmethod
        def forward(ctx, x, k):
            return x * k

        @staticmethod
        def backward(ctx, gy):
            return gy  # forward took two arguments

    x = gcomp.tensor(arr(3), requires_grad=True)
    with pytest.raises(gcomp.GcompError, match="gradients"):
        Bad.apply(x, 2.0).sum().backward()


# -- autograd.Function inside gcomp.compile: one custom_vjp node (Note [Custom VJPs]) ----------
def _legendre(base):
    class LegendrePolynomial3(base.autograd.Function):
        """The PyTorch tutorial's custom Function: P3(x) = (5x^3 - 3x) / 2."""

        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return 0.5 * (5 * x ** 3 - 3 * x)

        @staticmethod
        def backward(ctx, grad_output):
            (x,) = ctx.saved_tensors
            return grad_output * 1.5 * (5 * x ** 2 - 1)

    return LegendrePolynomial3


def _scaled_pair(base):
    class ScaledPair(base.autograd.Function):
        """Two outputs, a non-tensor argument, an integer tensor argument, a tensor kept as a
        ctx attribute, a parameter read from outside in backward, and a None gradient."""

        @staticmethod
        def forward(ctx, x, k, idx, y):
            ctx.k, ctx.y = k, y
            return x * k + y, (x * y).sum(1)

        @staticmethod
        def backward(ctx, g1, g2):
            return g1 * ctx.k + g2[:, None] * ctx.y, None, None, None

    return ScaledPair


def test_tutorial_function_trains_compiled_as_eager_and_torch():
    """The tutorial's polynomial fit: a, b, c, d through P3, SGD, several steps compiled."""
    rng = np.random.default_rng(0)
    xs = np.linspace(-np.pi, np.pi, 200)
    ys = np.sin(xs)
    init = rng.standard_normal(4) * 0.1

    def run(T, compile_):
        P3 = _legendre(T).apply
        a, b, c, d = (T.tensor(v, dtype=T.float64, requires_grad=True) for v in init)
        x, y = T.tensor(xs), T.tensor(ys)

        def step():
            loss = (a + b * P3(c + d * x) - y).pow(2).sum()
            loss.backward()
            with T.no_grad():
                for p in (a, b, c, d):
                    p -= 5e-6 * p.grad
                    p.grad = None
            return loss

        fn = gcomp.compile(step) if compile_ else step
        losses = [float(fn().detach()) for _ in range(5)]
        return losses, [float(p.detach()) for p in (a, b, c, d)], fn

    want = run(torch, False)
    for compile_ in (False, True):
        losses, params, fn = run(gcomp, compile_)
        np.testing.assert_allclose(losses, want[0], rtol=1e-10)
        np.testing.assert_allclose(params, want[1], rtol=1e-10)
    traced = fn.stages()[0].graph
    assert "custom_vjp(" in traced and "backward(" in traced
    assert "custom_vjp(" not in fn.ir()  # inlined once autodiff used its backward
    assert fn.cache_info().misses == 1


def test_compiled_function_recomputation_of_saved_tensors_merges_with_the_forward():
    """GExp saves its output: the backward region recomputes exp(x) from x, and after autodiff
    and cse the step computes exp once."""
    w = gcomp.tensor(arr(4), requires_grad=True)

    def step(x):
        w.grad = None
        GExp.apply(w * x).sum().backward()
        return w.grad

    x = arr(4)
    c = gcomp.compile(step)
    want = np.exp(w.detach().numpy() * x) * x
    np.testing.assert_allclose(c(gcomp.tensor(x)).numpy(), want, rtol=1e-5)
    assert c.ir(gcomp.tensor(x)).count(" = exp(") == 1  # at any depth (fusion regions)
    assert gcomp.compile(step, passes="none").ir(gcomp.tensor(x)).count(" = exp(") == 2


def test_compiled_function_with_two_outputs_attributes_and_captures_matches_torch():
    x0, y0, w0 = arr(3, 4), arr(3, 4), arr(4)
    idx0 = np.array([2, 0, 1])
    grads = {}
    for T in (torch, gcomp):
        f = _scaled_pair(T).apply
        w = T.tensor(w0, requires_grad=True)
        x, y = T.tensor(x0, requires_grad=True), T.tensor(y0, requires_grad=True)

        def fn(idx, f=f, x=x, y=y, w=w):
            a, s = f(x * w, 3.0, idx, y)
            (a.square().sum() + (s * s).sum()).backward()
            return a.detach()

        out = (gcomp.compile(fn) if T is gcomp else fn)(T.tensor(idx0))
        grads[T] = [np.asarray(out.numpy())] + [
            None if t.grad is None else t.grad.numpy() for t in (x, y, w)]
    t, g = grads[torch], grads[gcomp]
    assert t[2] is None and g[2] is None  # y's gradient was None in backward: torch gives none
    for a, b in zip(g[:2] + g[3:], t[:2] + t[3:]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_compiled_function_graph_runs_in_the_interpreter_and_parses_back():
    from gcomp.ir import interpret, parse

    P3 = _legendre(gcomp).apply
    w = gcomp.tensor(arr(5), requires_grad=True)

    def fn(x):
        w.grad = None
        P3(w * x).sum().backward()
        return w.grad

    x = arr(5)
    c = gcomp.compile(fn, passes="none")
    text = c.stages(gcomp.tensor(x))[0].graph  # the traced graph, with the grad request
    g = parse(text)
    assert str(g) == text and g.op_counts()["custom_vjp"] == 1
    want = 1.5 * (5 * (w.detach().numpy() * x) ** 2 - 1) * x
    np.testing.assert_allclose(c(gcomp.tensor(x)).numpy(), want, rtol=1e-5)
    ir = c.ir(gcomp.tensor(x))
    np.testing.assert_allclose(interpret(parse(ir), x, w.detach().numpy())[0], want, rtol=1e-5)


def test_compiled_function_bad_gradient_names_the_line():
    class WrongShape(gcomp.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g.sum()

    w = gcomp.tensor(arr(3), requires_grad=True)

    def fn(x):
        WrongShape.apply(w * x).sum().backward()
        return x

    with pytest.raises(gcomp.GcompError, match=r"test_autograd.py:\d+.*invalid gradient for "
                                               r"argument 0: got \[\], expected shape \[3\]"):
        gcomp.compile(fn)(gcomp.ones(3))
    assert w.grad is None


# ---------------------------------------------------------------------------------------------
# gcomp.grad (jax-style)

def _f(m, x):
    return (x ** 3 * m.sin(x)).sum() + (x.exp() * x).mean()


def test_functional_grad():
    a = arr(5).astype(np.float64)
    g = gcomp.grad(lambda x: _f(gcomp, x))(gcomp.tensor(a))
    xt = torch.tensor(a, requires_grad=True)
    (gt,) = torch.autograd.grad(_f(torch, xt), xt)
    close(g, gt, rtol=1e-10, atol=1e-10)


def test_functional_grad_nested_equals_torch_double_backward():
    a = arr(5).astype(np.float64)
    dfdx = gcomp.grad(lambda x: _f(gcomp, x))
    d2 = gcomp.grad(lambda x: dfdx(x).sum())(gcomp.tensor(a))
    xt = torch.tensor(a, requires_grad=True)
    (gt,) = torch.autograd.grad(_f(torch, xt), xt, create_graph=True)
    (g2t,) = torch.autograd.grad(gt.sum(), xt)
    close(d2, g2t, rtol=1e-10, atol=1e-10)


def test_functional_grad_of_scalar_nested_twice():
    # d/dx d/dx (x^3 sin x) at a scalar point
    a = 0.7
    f = lambda x: x ** 3 * gcomp.sin(x)
    d2 = gcomp.grad(gcomp.grad(f))(gcomp.tensor(a, dtype=gcomp.float64))
    expected = 6 * a * np.sin(a) + 6 * a ** 2 * np.cos(a) - a ** 3 * np.sin(a)
    np.testing.assert_allclose(float(d2), expected, rtol=1e-10)


def test_functional_grad_argnums_has_aux_and_value_and_grad():
    a, b = arr(3).astype(np.float64), arr(3).astype(np.float64)

    def f(m, x, w):
        return (x * w).sin().sum(), x * 2

    (gx, gw), aux = gcomp.grad(lambda x, w: f(gcomp, x, w), argnums=(0, 1), has_aux=True)(
        gcomp.tensor(a), gcomp.tensor(b))
    xt, wt = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    gxt, gwt = torch.autograd.grad(f(torch, xt, wt)[0], [xt, wt])
    close(gx, gxt)
    close(gw, gwt)
    np.testing.assert_allclose(np.asarray(aux.detach()), a * 2)
    value, gw2 = gcomp.value_and_grad(lambda x, w: f(gcomp, x, w)[0], argnums=1)(
        gcomp.tensor(a), gcomp.tensor(b))
    close(value, f(torch, xt, wt)[0])
    close(gw2, gwt)


def test_functional_grad_of_non_scalar_is_an_error():
    with pytest.raises(gcomp.GcompError, match="scalar"):
        gcomp.grad(lambda x: x * 2)(gcomp.tensor(arr(3)))


def test_functional_grad_leaves_argument_untouched():
    x = gcomp.tensor(arr(3))
    gcomp.grad(lambda t: (t * t).sum())(x)
    assert not x.requires_grad and x.grad is None


def test_functional_grad_of_plain_tensor_is_a_plain_tensor():
    # like torch.func.grad: no graph hangs off the result unless something outside needs it
    a = arr(3)
    x = gcomp.tensor(a)
    value, g = gcomp.value_and_grad(lambda t: (t * t).sum())(x)
    assert not g.requires_grad and not value.requires_grad
    np.testing.assert_allclose(g.numpy(), 2 * a, rtol=1e-6)
    with gcomp.no_grad():
        assert not gcomp.grad(lambda t: (t * t).sum())(gcomp.tensor(a, requires_grad=True)) \
            .requires_grad


def test_functional_grad_connects_to_outer_autograd():
    # the result stays differentiable with respect to tensors outside (torch.func composes so)
    x, xt = pair(arr(3).astype(np.float64))
    w, wt = pair(arr(3).astype(np.float64))
    g = gcomp.grad(lambda t: (t.sin() * w).sum())(x)
    assert g.requires_grad
    (g * g).sum().backward()
    (gt,) = torch.autograd.grad((xt.sin() * wt).sum(), xt, create_graph=True)
    (gt * gt).sum().backward()
    close(x.grad, xt.grad)
    close(w.grad, wt.grad)


# ---------------------------------------------------------------------------------------------
# In-place ops and snapshots

def test_inplace_on_non_leaf_inside_differentiated_computation():
    x, xt = pair(arr(4))
    w, wt = pair(arr(4))

    def f(x, w):
        h = x * w
        h.add_(x.sin())
        h.mul_(w)
        h.sub_(x * x)
        return (h * x).sum()

    f(x, w).backward()
    f(xt, wt).backward()
    close(x.grad, xt.grad, rtol=1e-4)
    close(w.grad, wt.grad, rtol=1e-4)


def test_inplace_indexed_assignment_on_non_leaf():
    x, xt = pair(arr(5))

    def f(x):
        h = x * 2
        h[1:3] = x[1:3] ** 2
        return (h * h).sum()

    f(x).backward()
    f(xt).backward()
    close(x.grad, xt.grad)


def test_inplace_through_views_of_non_leaf():
    x, xt = pair(arr(4))

    def f(x, clone):
        h = x * 2
        first = h[0].clone() if clone else h[0]  # gcomp saves a snapshot: no clone needed
        h[1:3].mul_(first)
        h.view(2, 2).add_(x.reshape(2, 2).sin())
        return (h * h).sum()

    f(x, clone=False).backward()
    f(xt, clone=True).backward()  # torch would refuse the saved view modified in place
    close(x.grad, xt.grad, rtol=1e-5)


def test_inplace_on_leaf_requiring_grad_is_an_error():
    x = gcomp.tensor(arr(3), requires_grad=True)
    with pytest.raises(gcomp.GcompError, match="leaf"):
        x.add_(1.0)


def test_inplace_update_after_use_keeps_saved_values():
    # torch raises here ("modified by an inplace operation"); gcomp keeps snapshots and
    # differentiates the graph as built: y = sin(x) * x, then x itself is updated.
    a = arr(4).astype(np.float64)
    x = gcomp.tensor(a, requires_grad=True)
    h = x * 1.0
    y = (h.sin() * h).sum()
    with gcomp.no_grad():
        x.mul_(10.0)
    h.add_(100.0)  # non-leaf updated after it was saved for sin and mul
    y.backward()
    expected = np.cos(a) * a + np.sin(a)  # d/da sum(sin(a) * a) at the original a
    np.testing.assert_allclose(np.asarray(x.grad), expected, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(x.detach()), a * 10)


def test_non_leaf_updated_in_place_after_being_saved():
    # y saved h for its product; h then changes. Reference: the same math without mutation.
    x, xt = pair(arr(4).astype(np.float64))
    h = x * 2
    y = h * h
    h.add_(1.0)
    (y + h * x).sum().backward()
    ht = xt * 2
    ((ht * ht) + (ht + 1.0) * xt).sum().backward()
    close(x.grad, xt.grad, rtol=1e-12, atol=1e-12)


def test_leaf_updated_under_no_grad_between_forward_and_backward():
    a = arr(3).astype(np.float64)
    x = gcomp.tensor(a, requires_grad=True)
    y = (x ** 3).sum()
    with gcomp.no_grad():
        x.sub_(1.0)
    y.backward()
    np.testing.assert_allclose(np.asarray(x.grad), 3 * a ** 2, rtol=1e-12)
