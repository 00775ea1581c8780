"""gcomp.scan and gcomp.cond against Python loops and branches in torch (float64): results and
gradients eagerly and inside gcomp.compile, one node per loop whatever its length, captured
parameters, higher derivatives, and the errors of bodies that cannot be traced.

The op table (tests/op_table_rows.py) checks the scan and cond primitives against numpy and
float64 finite differences; these tests check the front end that builds them.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import gcomp

RNG = np.random.default_rng(0)
W = RNG.uniform(-0.6, 0.6, (3, 3))


# -- bodies written once for torch and gcomp -------------------------------------------------
def rnn(w):
    def body(h, x):
        h = (h @ w + x).tanh()
        return h, h * 2.0

    return body


def pytree(w):
    """A dict carry holding a tuple and an int counter, dict xs, tuple ys."""
    def body(c, x):
        a, b = c["ab"]
        a = (a * w[0] + x["u"]).sin()
        b = b + a.sum() * x["v"]
        return {"ab": (a, b), "n": c["n"] + 1}, (a * b.sum(), c["n"])

    return body


def no_xs(w):
    def body(h, x):
        return (h @ w).tanh(), h.sum()

    return body


def nested(w):
    def body(h, x):  # x: (2, 3), scanned again inside
        h, ys = gcomp.scan(rnn(w), h, x) if isinstance(h, gcomp.Tensor) else torch_scan(
            rnn(w), h, x)
        return h, ys.sum(0)

    return body


def grad_inside(w):
    """Each step's y is a gradient taken inside the body."""
    def body(h, x):
        if isinstance(h, gcomp.Tensor):
            g = gcomp.grad(lambda z: (z * w[0]).sin().sum())(h)
        else:
            z = h.detach().requires_grad_() if not h.requires_grad else h
            g = torch.autograd.grad((z * w[0]).sin().sum(), z, create_graph=True)[0]
        return (h + x).tanh(), g

    return body


def torch_scan(fn, init, xs, length=None, reverse=False):
    """jax.lax.scan's semantics as a Python loop over torch tensors (the reference)."""
    n = length if xs is None else len(_leaves(xs)[0])
    carry, ys = init, [None] * n
    for t in (range(n - 1, -1, -1) if reverse else range(n)):
        carry, ys[t] = fn(carry, None if xs is None else _map(lambda a, t=t: a[t], xs))
    if n == 0:  # no step ran: the ys' shapes come from a step on zeros
        y = fn(init, _map(lambda a: a.new_zeros(a.shape[1:]), xs))[1]
        return carry, _map(lambda a: a.new_zeros((0, *a.shape)), y)
    return carry, _map(lambda *ys_t: torch.stack(ys_t), *ys)


def _map(f, *trees):
    t = trees[0]
    if t is None:
        return None
    if isinstance(t, dict):
        return {k: _map(f, *(x[k] for x in trees)) for k in t}
    if isinstance(t, (tuple, list)):
        return type(t)(_map(f, *parts) for parts in zip(*trees, strict=True))
    return f(*trees)


def _leaves(tree):
    out = []
    _map(lambda a: out.append(a), tree)
    return out


def _as(lib, tree, requires_grad=False):
    def conv(a):
        t = (torch.tensor if lib is torch else gcomp.tensor)(a)
        if requires_grad and np.issubdtype(np.asarray(a).dtype, np.floating):
            t.requires_grad_()
        return t

    return _map(conv, tree)


SCANS = {  # name: (body maker, init, xs, keyword arguments)
    "rnn": (rnn, RNG.standard_normal((2, 3)), RNG.standard_normal((5, 2, 3)), {}),
    "rnn_reverse": (rnn, RNG.standard_normal((2, 3)), RNG.standard_normal((5, 2, 3)),
                    {"reverse": True}),
    "pytree": (pytree, {"ab": (RNG.standard_normal(3), RNG.standard_normal(())),
                        "n": np.int64(0)},
               {"u": RNG.standard_normal((4, 3)), "v": RNG.standard_normal(4)}, {}),
    "no_xs": (no_xs, RNG.standard_normal((2, 3)), None, {"length": 3}),
    "zero_length": (rnn, RNG.standard_normal((2, 3)), np.zeros((0, 2, 3)), {}),
    "nested": (nested, RNG.standard_normal((2, 3)), RNG.standard_normal((3, 2, 2, 3)), {}),
    "grad_inside": (grad_inside, RNG.standard_normal(3), RNG.standard_normal((4, 3)), {}),
}


def _loss(out, cts, lib):
    total = 0.0
    for o, c in zip(_leaves(out), cts, strict=True):
        if c is not None:
            total = total + (o * (torch.tensor(c) if lib is torch else gcomp.tensor(c))).sum()
    return total


def _reference(name):
    make, init, xs, kw = SCANS[name]
    tw, tinit, txs = torch.tensor(W, requires_grad=True), _as(torch, init, True), _as(torch, xs,
                                                                                     True)
    out = torch_scan(make(tw), tinit, txs, **kw)
    rng = np.random.default_rng(1)
    cts = [rng.standard_normal(tuple(o.shape)) if o.dtype.is_floating_point else None
           for o in _leaves(out)]
    inputs = [tw] + [t for t in _leaves((tinit, txs)) if t.requires_grad]
    grads = torch.autograd.grad(_loss(out, cts, torch), inputs, allow_unused=True)
    return out, cts, [np.zeros(tuple(t.shape)) if g is None else g.numpy()
                      for t, g in zip(inputs, grads, strict=True)]


def _close(got, want):
    got, want = np.asarray(got.detach() if isinstance(got, gcomp.Tensor) else got), \
        np.asarray(want.detach() if isinstance(want, torch.Tensor) else want)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def _check_structure(got, want):
    assert type(got) is type(want) or (want is None and got is None)
    if isinstance(want, dict):
        assert list(got) == list(want)
    if isinstance(want, (dict, tuple, list)):
        for a, b in zip(_leaves(got), _leaves(want), strict=True):
            _close(a, b)


@pytest.mark.parametrize("name", SCANS)
def test_scan_eagerly_matches_a_torch_loop(name):
    make, init, xs, kw = SCANS[name]
    want, cts, want_grads = _reference(name)
    w, ginit, gxs = gcomp.tensor(W, requires_grad=True), _as(gcomp, init, True), _as(gcomp, xs,
                                                                                    True)
    got = gcomp.scan(make(w), ginit, gxs, **kw)
    _check_structure(got, want)
    _loss(got, cts, gcomp).backward()
    leaves = [w] + [t for t in _leaves((ginit, gxs)) if t.requires_grad]
    for t, g in zip(leaves, want_grads, strict=True):
        _close(t.grad if t.grad is not None else np.zeros(tuple(t.shape)), g)


@pytest.mark.parametrize("name", SCANS)
def test_scan_compiled_matches_a_torch_loop(name):
    make, init, xs, kw = SCANS[name]
    want, cts, want_grads = _reference(name)
    w = gcomp.tensor(W, requires_grad=True)
    flat = _leaves((init, xs))
    floats = [i for i, a in enumerate(flat) if np.issubdtype(np.asarray(a).dtype, np.floating)]

    @gcomp.compile
    def fn(*leaves):
        ginit, gxs = _unflatten((init, xs), leaves)
        out = gcomp.scan(make(w), ginit, gxs, **kw)
        grads = gcomp.autograd.grad(_loss(out, cts, gcomp), [w] + [leaves[i] for i in floats],
                                    allow_unused=True, materialize_grads=True)
        return out, grads

    args = [gcomp.tensor(a) for a in flat]
    for i in floats:
        args[i].requires_grad_()
    got, grads = fn(*args)
    _check_structure(got, want)
    for g, want_g in zip(grads, want_grads, strict=True):
        _close(g, want_g)


def _unflatten(tree, leaves):
    it = iter(leaves)
    return _map(lambda _: next(it), tree)


def _lstm_step(steps):
    gcomp.manual_seed(0)
    m = gcomp.nn.LSTM(3, 4)
    x = gcomp.randn(steps, 2, 3)

    @gcomp.compile
    def step(x):
        loss = m(x)[0].square().mean()
        loss.backward()
        return loss

    return step, x


def test_a_loop_is_one_scan_node_whatever_its_length():
    counts = []
    for steps in (3, 40):
        step, x = _lstm_step(steps)
        stages = {s.name: s.graph for s in step.stages(x)}
        traced, final = gcomp.ir.parse(stages["traced"]), gcomp.ir.parse(stages["dce"])
        assert traced.op_counts()["scan"] == 1
        # the backward is one reverse scan; the forward runs once (merge_scans)
        assert final.op_counts()["scan"] == 2
        assert sum(n.attrs.get("reverse", False) for n in final.nodes if n.op == "scan") == 1
        counts.append((len(traced.nodes), len(final.nodes)))
    assert counts[0] == counts[1]


def test_cond_runs_one_branch_eagerly_and_both_compile_to_one_node():
    ran = []
    w = gcomp.tensor(W, requires_grad=True)
    tw = torch.tensor(W, requires_grad=True)

    def branches(lib, w):
        def yes(x, y):
            ran.append("yes")
            return (x @ w).sin(), y * 2.0

        def no(x, y):
            ran.append("no")
            return x * x + w[0], y.exp()

        return yes, no

    def f(lib, w, x, y):
        yes, no = branches(lib, w)
        pred = x.sum() > 0
        out = gcomp.cond(pred, yes, no, x, y) if lib is gcomp else (yes if pred else no)(x, y)
        return (out[0] * out[0]).sum() + out[1].sum()

    x = np.abs(RNG.standard_normal((2, 3)))  # x.sum() > 0: the first pass takes "yes"
    y = RNG.standard_normal(4)
    compiled = gcomp.compile(lambda x, y: gcomp.autograd.grad(f(gcomp, w, x, y), [w, x, y]))
    for sign in (1.0, -1.0):
        tx, ty = torch.tensor(sign * x, requires_grad=True), torch.tensor(y, requires_grad=True)
        want = torch.autograd.grad(f(torch, tw, tx, ty), [tw, tx, ty])
        ran.clear()
        gx, gy = gcomp.tensor(sign * x, requires_grad=True), gcomp.tensor(y, requires_grad=True)
        eager = gcomp.autograd.grad(f(gcomp, w, gx, gy), [w, gx, gy])
        assert ran == (["yes"] if sign > 0 else ["no"])  # eagerly, like torch.cond
        for a, b, c in zip(eager, compiled(gx, gy), want, strict=True):
            _close(a, c)
            _close(b, c)
    assert compiled.cache_info().misses == 1  # the predicate is data: one executable for both
    assert gcomp.ir.parse(compiled.stages(gx, gy)[0].graph).op_counts()["cond"] == 1


def test_parameters_read_in_a_body_become_operands_and_train():
    """A compiled training step whose scan body reads a parameter (as the LSTM's does) gives
    torch's gradients and updates; the parameter is a state input passed to the scan."""
    gcomp.manual_seed(0)
    lin = gcomp.nn.Linear(3, 3)
    tlin = torch.nn.Linear(3, 3)
    tlin.load_state_dict({k: torch.tensor(np.asarray(v)) for k, v in lin.state_dict().items()})
    opt = gcomp.optim.SGD(lin.parameters(), lr=0.1)
    topt = torch.optim.SGD(tlin.parameters(), lr=0.1)
    xs = RNG.standard_normal((6, 2, 3)).astype(np.float32)

    def run(lib, m, x):
        def body(h, x_t):
            h = (m(h) + x_t).tanh()
            return h, h

        h0 = lib.zeros(2, 3)
        return (gcomp.scan(body, h0, x) if lib is gcomp else torch_scan(body, h0, x))[1]

    @gcomp.compile
    def step(x):
        opt.zero_grad()
        loss = run(gcomp, lin, x).square().mean()
        loss.backward()
        opt.step()
        return loss

    for _ in range(3):
        loss = step(gcomp.tensor(xs))
        topt.zero_grad()
        tloss = run(torch, tlin, torch.tensor(xs)).square().mean()
        tloss.backward()
        topt.step()
        np.testing.assert_allclose(loss.item(), tloss.item(), rtol=1e-5)
    for (name, p), tp in zip(lin.named_parameters(), tlin.parameters(), strict=True):
        np.testing.assert_allclose(np.asarray(p.detach()), tp.detach().numpy(), rtol=1e-5,
                                   atol=1e-6, err_msg=name)
    text = step.ir(gcomp.tensor(xs))
    scan_line = next(line for line in text.splitlines() if "= scan(" in line)
    assert "%lin.weight" in scan_line and "%lin.bias" in scan_line


def test_double_backward_through_an_eager_scan():
    def f(lib, w, h, xs):
        carry, _ = gcomp.scan(rnn(w), h, xs) if lib is gcomp else torch_scan(rnn(w), h, xs)
        return carry.sum()

    h, xs = RNG.standard_normal((2, 3)), RNG.standard_normal((4, 2, 3))
    tw = torch.tensor(W, requires_grad=True)
    (tg,) = torch.autograd.grad(f(torch, tw, torch.tensor(h), torch.tensor(xs)), [tw],
                                create_graph=True)
    (want,) = torch.autograd.grad((tg * tg).sum(), [tw])
    w = gcomp.tensor(W, requires_grad=True)
    (g,) = gcomp.autograd.grad(f(gcomp, w, gcomp.tensor(h), gcomp.tensor(xs)), [w],
                               create_graph=True)
    (got,) = gcomp.autograd.grad((g * g).sum(), [w])
    _close(got, want)


H = gcomp.zeros(2, 3)
XS = gcomp.zeros(4, 2, 3)


def _traced(fn):
    return lambda: gcomp.compile(fn)(XS)


ERRORS = [
    ("carry changes type", lambda: gcomp.scan(lambda h, x: (h.double(), x), H, XS),
     "a carry of the same structure and types as init"),
    ("body returns no pair", lambda: gcomp.scan(lambda h, x: h, H, XS), "must return a pair"),
    ("xs lengths disagree", lambda: gcomp.scan(lambda h, x: (h, x[0]), H, (XS, gcomp.zeros(5))),
     r"disagree on the number of steps: \[4, 5\]"),
    ("no xs and no length", lambda: gcomp.scan(lambda h, x: (h, h), H, None), "give xs or length"),
    ("a number in the carry", lambda: gcomp.scan(lambda h, x: (h, x), (H, 1.0), XS),
     "wrap numbers with gcomp.tensor"),
    ("in-place update of an outside tensor", lambda: gcomp.scan(
        lambda h, x: (H.add_(1.0), x), H, XS), "updates a tensor from outside it in place"),
    ("branches differ", _traced(lambda x: gcomp.cond(x.sum() > 0, lambda a: a, lambda a: a[0],
                                                     x)), "both branches must return the same"),
    ("data-dependent if", _traced(lambda x: x if x.sum() > 0 else -x),
     r"gcomp.where\(cond, a, b\).*gcomp.cond\(pred, true_fn, false_fn, \*operands\)"),
]


@pytest.mark.parametrize("call,message", [(c, m) for _, c, m in ERRORS],
                         ids=[n for n, _, _ in ERRORS])
def test_errors_name_the_users_line(call, message):
    with pytest.raises(gcomp.GcompError, match=message) as e:
        call()
    assert str(e.value).startswith(__file__), str(e.value)
