"""fuse_patterns (passes/patterns.py): attention and cross entropy fused, results and gradients
as torch computes them, and the patterns that must stay unfused left alone.

Each case compiles one function with the pass before autodiff (where it belongs, Note [Fused
patterns]) and checks that the fused op is in the final graph (or is not, for the cases that must
not fire), then compares values and gradients against torch on the same float64-cast data.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import gcomp
import gcomp.nn.functional as F
from gcomp import nn
from gcomp.ir import interpret, parse
from gcomp.passes import run_passes

FUSED = ("fuse_patterns", "autodiff", "simplify", "fold", "cse", "dce")
# attention is fused on every backend but the CPU by default (Note [Fused patterns]); these
# tests check the fused op itself, here on the CPU
ON = {"attention": "fused"}
RTOL, ATOL = 2e-5, 2e-5


def _compiled(fn, args, passes=FUSED):
    """Run ``fn`` compiled on gcomp tensors; (numpy results, op counts of the final graph)."""
    c = gcomp.compile(fn, passes=passes, options=ON if passes != "none" else None)
    out = c(*[gcomp.tensor(a) for a in args])
    out = out if isinstance(out, (tuple, list)) else (out,)
    counts = parse(c.stages(*[gcomp.tensor(a) for a in args])[-1].graph).op_counts()
    return [o.detach().numpy() for o in out], counts


def _close(got, want, rtol=RTOL, atol=ATOL):
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)


def _torch(fn, args, wrt):
    ts = [torch.tensor(a, requires_grad=i in wrt) for i, a in enumerate(args)]
    out = fn(*ts)
    grads = torch.autograd.grad(out.sum(), [ts[i] for i in wrt])
    return [out.detach().numpy()] + [g.numpy() for g in grads]


def _with_grads(fn, wrt):
    """fn's result and the gradient of its sum with respect to the arguments ``wrt``."""
    def f(*xs):
        xs = [x.detach().requires_grad_() if i in wrt else x for i, x in enumerate(xs)]
        out = fn(*xs)
        return (out, *gcomp.autograd.grad(out.sum(), [xs[i] for i in wrt]))

    return f


# -- attention ---------------------------------------------------------------------------------
def _hand_div(T, q, k, v, m):
    s = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    return T.softmax(s, -1) @ v


def _hand_masked_fill(T, q, k, v, m):
    s = (q @ k.transpose(-2, -1)) * 0.3
    return T.softmax(s.masked_fill(~m, float("-inf")), -1) @ v


def _hand_where(T, q, k, v, m):
    s = T.matmul(q, k.transpose(-2, -1)) * 0.25
    return T.softmax(T.where(m, s, float("-inf")), dim=-1) @ v


def _sdpa(T, q, k, v, m):
    return T.nn.functional.scaled_dot_product_attention(q, k, v)


def _sdpa_bool_mask(T, q, k, v, m):
    return T.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=m)


def _sdpa_float_mask(T, q, k, v, m):
    bias = T.where(m, 0.5, -1.5)
    return T.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=0.4)


def _sdpa_causal(T, q, k, v, m):
    return T.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)


ATTENTION = [_hand_div, _hand_masked_fill, _hand_where, _sdpa, _sdpa_bool_mask, _sdpa_float_mask,
             _sdpa_causal]


def _attention_data(batch, L=4, S=5, E=8, Ev=8, seed=0):
    rng = np.random.default_rng(seed)
    q, k = rng.standard_normal(batch + (L, E)), rng.standard_normal(batch + (S, E))
    v = rng.standard_normal(batch + (S, Ev))
    m = rng.random((L, S)) < 0.6
    m[:, 0] = True  # every row may attend somewhere
    return [a.astype(np.float32) for a in (q, k, v)] + [m]


@pytest.mark.parametrize("batch", [(2, 3), (2,)], ids=["4d", "3d"])
@pytest.mark.parametrize("fn", ATTENTION, ids=[f.__name__.strip("_") for f in ATTENTION])
def test_attention_fused_matches_torch(fn, batch):
    args = _attention_data(batch)
    got, counts = _compiled(_with_grads(lambda q, k, v, m: fn(gcomp, q, k, v, m), (0, 1, 2)),
                            args)
    assert counts.get("scaled_dot_product_attention") == 1
    want = _torch(lambda q, k, v, m: fn(torch, q.double(), k.double(), v.double(), m), args,
                  (0, 1, 2))
    _close(got, want)


def test_attention_value_size_differs_and_float_mask_gradient():
    """Ev != E takes the lax fallback; a float mask that needs a gradient gets one."""
    q, k, v, m = _attention_data((2,), Ev=3)
    bias = np.where(m, 0.25, -2.0).astype(np.float32)

    def fn(T, q, k, v, b):
        s = T.matmul(q, k.transpose(-2, -1)) * 0.5
        return T.softmax(s + b, -1) @ v

    got, counts = _compiled(_with_grads(lambda *xs: fn(gcomp, *xs), (0, 1, 2, 3)),
                            [q, k, v, bias])
    assert counts.get("scaled_dot_product_attention") == 1
    want = _torch(lambda *xs: fn(torch, *[x.double() for x in xs]), [q, k, v, bias],
                  (0, 1, 2, 3))
    _close(got, want)


def test_fully_masked_rows_are_nan_as_unfused():
    """A row that allows nothing is NaN, as the -inf fill gives (jax's own fill would not)."""
    q, k, v, m = _attention_data((2,))
    m[1] = False
    fn = lambda q, k, v, m: _hand_where(gcomp, q, k, v, m)  # noqa: E731
    got, counts = _compiled(fn, [q, k, v, m])
    assert counts.get("scaled_dot_product_attention") == 1
    want, _ = _compiled(fn, [q, k, v, m], passes="none")
    assert np.isnan(got[0][:, 1]).all() and not np.isnan(np.delete(got[0], 1, 1)).any()
    _close(got, want)


@pytest.mark.parametrize("masks", ["none", "attn_mask", "key_padding"])
def test_multihead_attention_module(masks):
    E, H, L, N = 16, 4, 5, 2
    rng = np.random.default_rng(1)
    x = rng.standard_normal((N, L, E)).astype(np.float32)
    ref = torch.nn.MultiheadAttention(E, H, batch_first=True)
    mha = nn.MultiheadAttention(E, H, batch_first=True)
    mha.load_state_dict({k: gcomp.tensor(v.detach().numpy()) for k, v in
                         ref.state_dict().items()})
    am = np.triu(np.ones((L, L), bool), 1) if masks == "attn_mask" else None
    kpm = np.zeros((N, L), bool) if masks == "key_padding" else None
    if kpm is not None:
        kpm[1, -2:] = True

    def step(x):
        x = x.detach().requires_grad_()
        out, _ = mha(x, x, x, need_weights=False,
                     attn_mask=None if am is None else gcomp.tensor(am),
                     key_padding_mask=None if kpm is None else gcomp.tensor(kpm))
        return (out, *gcomp.autograd.grad((out * out).sum(), [x, mha.in_proj_weight]))

    c = gcomp.compile(step, passes=FUSED, options=ON)
    got = [o.detach().numpy() for o in c(gcomp.tensor(x))]
    assert "scaled_dot_product_attention" in c.ir(gcomp.tensor(x))
    tx = torch.tensor(x, requires_grad=True)
    out, _ = ref(tx, tx, tx, need_weights=False,
                 attn_mask=None if am is None else torch.tensor(am),
                 key_padding_mask=None if kpm is None else torch.tensor(kpm))
    want = [out.detach().numpy()] + [g.numpy() for g in torch.autograd.grad(
        (out * out).sum(), [tx, ref.in_proj_weight])]
    _close(got, want, rtol=1e-4, atol=1e-4)


# -- cross entropy -----------------------------------------------------------------------------
CE_CASES = [
    dict(),
    dict(reduction="sum"),
    dict(reduction="none"),
    dict(weight=True),
    dict(weight=True, ignore_index=2),
    dict(ignore_index=1, reduction="none"),
    dict(label_smoothing=0.1),
    dict(label_smoothing=0.2, weight=True, ignore_index=0),
    dict(label_smoothing=1.0, reduction="sum", weight=True),
    dict(rest=(3,), weight=True, ignore_index=1),
    dict(rest=(2, 3), label_smoothing=0.3, reduction="none"),
    dict(unbatched=True),
    dict(unbatched=True, reduction="none", label_smoothing=0.5),
]


def _ce_data(rest=(), unbatched=False, seed=0):
    rng = np.random.default_rng(seed)
    N, C = 6, 5
    x = (rng.standard_normal((N, C) + rest) * 3).astype(np.float32)
    t = rng.integers(0, C, (N,) + rest)
    t.flat[::3] = 2  # some targets equal every tested ignore_index
    t.flat[1::4] = 0
    t.flat[2::5] = 1
    w = rng.uniform(0.5, 2.0, C).astype(np.float32)
    if unbatched:
        x, t = x[0], t[0]
    return x, t, w


def _torch_ce(x, t, w, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """PyTorch's cross_entropy written out, differentiable in the weight too (torch's own is
    not), checked against F.cross_entropy below."""
    unbatched = x.ndim == 1
    if unbatched:
        x, t = x[None], t[None]
    C = x.shape[1]
    w = torch.ones(C, dtype=x.dtype) if w is None else w
    shape = (1, C) + (1,) * (x.ndim - 2)
    logp = torch.log_softmax(x, 1)
    valid = t != ignore_index
    safe = torch.where(valid, t, 0)
    wt = w[safe] * valid
    picked = -logp.gather(1, safe.unsqueeze(1)).squeeze(1) * wt
    smooth = -(logp * w.reshape(shape)).sum(1) * valid
    loss = (1 - label_smoothing) * picked + label_smoothing / C * smooth
    if reduction == "none":
        return loss[0] if unbatched else loss
    return loss.sum() if reduction == "sum" else loss.sum() / wt.sum()


@pytest.mark.parametrize("case", CE_CASES, ids=lambda c: "-".join(
    f"{k}={v}" for k, v in c.items()) or "default")
def test_cross_entropy_fused_matches_torch(case):
    case = dict(case)
    weighted = case.pop("weight", False)
    x, t, w = _ce_data(case.pop("rest", ()), case.pop("unbatched", False))
    kw = case

    def fn(x, t, w):
        x, w = x.detach().requires_grad_(), w.detach().requires_grad_()
        loss = F.cross_entropy(x, t, weight=w if weighted else None, **kw)
        grads = gcomp.autograd.grad(loss.sum(), [x, w] if weighted else [x])
        return (loss, *grads)

    got, counts = _compiled(fn, [x, t, w])
    assert counts.get("cross_entropy") == 1
    assert counts.get("take", 0) == int(weighted)  # the VJP's weight pick; none of log-probs
    tx, tw = torch.tensor(x, dtype=torch.float64, requires_grad=True), \
        torch.tensor(w, dtype=torch.float64, requires_grad=True)
    tt = torch.tensor(t)
    ref = TF.cross_entropy(tx.detach(), tt, weight=tw.detach() if weighted else None, **kw)
    loss = _torch_ce(tx, tt, tw if weighted else None, **kw)
    np.testing.assert_allclose(loss.detach().numpy(), ref.numpy(), rtol=1e-12)  # the reference
    want = [loss.detach().numpy()] + [g.numpy() for g in torch.autograd.grad(
        loss.sum(), [tx, tw] if weighted else [tx])]
    _close(got, want)


def test_nll_of_log_softmax_and_cross_entropy_loss_module():
    x, t, w = _ce_data()
    crit = nn.CrossEntropyLoss(weight=gcomp.tensor(w), ignore_index=2)
    fns = [lambda x, t: F.nll_loss(F.log_softmax(x, 1), t),
           lambda x, t: F.nll_loss(gcomp.log_softmax(x, 1), t, reduction="sum"),
           lambda x, t: crit(x, t)]
    refs = [TF.nll_loss(TF.log_softmax(torch.tensor(x), 1), torch.tensor(t)),
            TF.nll_loss(TF.log_softmax(torch.tensor(x), 1), torch.tensor(t), reduction="sum"),
            TF.cross_entropy(torch.tensor(x), torch.tensor(t), weight=torch.tensor(w),
                             ignore_index=2)]
    for fn, ref in zip(fns, refs, strict=True):
        got, counts = _compiled(fn, [x, t])
        assert counts.get("cross_entropy") == 1
        _close(got, [ref.numpy()])


# -- what must stay unfused ----------------------------------------------------------------------
def _probs_returned(q, k, v, m):
    p = gcomp.softmax(q @ k.transpose(-2, -1) * 0.3, -1)
    return p @ v, p


def _finite_fill(q, k, v, m):
    s = (q @ k.transpose(-2, -1)) * 0.3
    return gcomp.softmax(s.masked_fill(~m, -1e9), -1) @ v


def _scaled_probs(q, k, v, m):
    return (gcomp.softmax(q @ k.transpose(-2, -1), -1) * 0.5) @ v


def _other_axis(q, k, v, m):
    s = q @ k.transpose(-2, -1)
    return gcomp.softmax(s, -2).transpose(-2, -1) @ q


def _mask_before_scale(q, k, v, m):
    s = (q @ k.transpose(-2, -1) + gcomp.where(m, 0.0, -1.0)) * 0.3
    return gcomp.softmax(s, -1) @ v


def _dropout(q, k, v, m):
    return F.scaled_dot_product_attention(q, k, v, dropout_p=0.5)


UNFUSED = [_probs_returned, _finite_fill, _scaled_probs, _other_axis, _mask_before_scale]


@pytest.mark.parametrize("fn", UNFUSED, ids=[f.__name__.strip("_") for f in UNFUSED])
def test_attention_lookalikes_stay_unfused(fn):
    args = _attention_data((2,))
    args[3][1] = False  # a fully masked row, where a finite fill and -inf differ
    got, counts = _compiled(fn, args)
    assert "scaled_dot_product_attention" not in counts
    want, _ = _compiled(fn, args, passes="none")
    _close(got, want)


def test_dropout_between_softmax_and_v_stays_unfused():
    args = _attention_data((2,))
    _, counts = _compiled(_dropout, args)
    assert "scaled_dot_product_attention" not in counts


def test_log_probs_used_elsewhere_and_probability_targets_stay_unfused():
    x, t, w = _ce_data()

    def two_uses(x, t):
        logp = F.log_softmax(x, 1)
        return F.nll_loss(logp, t), logp

    probs = np.full(x.shape, 0.2, np.float32)
    for fn, args in [(two_uses, [x, t]), (lambda x, p: F.cross_entropy(x, p), [x, probs])]:
        got, counts = _compiled(fn, args)
        assert "cross_entropy" not in counts
        _close(got, _compiled(fn, args, passes="none")[0])


def test_pass_on_the_graph_agrees_with_the_interpreter_and_takes_fuel():
    q, k, v, m = _attention_data((2, 3))
    x, t, w = _ce_data()

    def fn(q, k, v, x, t):
        return _sdpa(gcomp, q, k, v, None).sum() + F.cross_entropy(x, t)

    args = [q, k, v, x, t]
    graph = parse(gcomp.compile(fn, passes="none").ir(*[gcomp.tensor(a) for a in args]))
    want = interpret(graph, *args)
    fused = run_passes(graph.copy(), ["fuse_patterns"], options=ON)
    counts = fused.op_counts()
    assert counts["scaled_dot_product_attention"] == 1 and counts["cross_entropy"] == 1
    assert len(fused.nodes) < len(graph.nodes) // 3
    _close(interpret(fused, *args), want)
    one = run_passes(graph.copy(), ["fuse_patterns"], fuel=1, options=ON).op_counts()
    assert one.get("scaled_dot_product_attention") == 1 and "cross_entropy" not in one
    assert "scaled_dot_product_attention" not in run_passes(graph.copy(), ["fuse_patterns"],
                                                           fuel=0, options=ON).op_counts()


def test_transformer_training_steps_match_unfused():
    """Two SGD steps of a small encoder (MHA, layer norm, cross entropy): the same losses and
    parameters with the fused ops as without the pass. (Not Adam: the key bias's gradient is
    zero up to rounding, softmax being shift-invariant, and Adam's normalization blows that
    rounding up to steps of size lr.)"""
    torch.manual_seed(0)
    ref = torch.nn.TransformerEncoderLayer(16, 2, dim_feedforward=32, dropout=0.0,
                                           batch_first=True)
    state = {k: v.detach().numpy() for k, v in ref.state_dict().items()}
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 5, 16)).astype(np.float32)
    y = rng.integers(0, 16, 3)

    def run(passes):
        layer = nn.TransformerEncoderLayer(16, 2, dim_feedforward=32, dropout=0.0,
                                           batch_first=True)
        layer.load_state_dict({k: gcomp.tensor(v) for k, v in state.items()})
        opt = gcomp.optim.SGD(layer.parameters(), lr=0.1, momentum=0.9)

        def step(x, y):
            opt.zero_grad()
            loss = F.cross_entropy(layer(x).mean(1), y)
            loss.backward()
            opt.step()
            return loss

        c = gcomp.compile(step, passes=passes, options=ON if "fuse_patterns" in passes else None)
        losses = [c(gcomp.tensor(x), gcomp.tensor(y)).item() for _ in range(2)]
        ir = c.ir(gcomp.tensor(x), gcomp.tensor(y))
        return losses, [p.detach().numpy() for p in layer.parameters()], ir

    fused, plain = run(FUSED), run(["autodiff", "simplify", "fold", "cse", "dce"])
    assert "scaled_dot_product_attention" in fused[2] and "cross_entropy(" in fused[2]
    assert "scaled_dot_product_attention" not in plain[2]
    _close(fused[0], plain[0], rtol=1e-5)
    _close(fused[1], plain[1], rtol=1e-4, atol=1e-5)


# -- the last step of a scan's ys ----------------------------------------------------------------
def _slices_of_ys(graph):
    """How many slices read a scan's outputs, directly or through transposes."""
    def of_scan(v):
        while v.producer is not None and v.producer.op == "transpose":
            v = v.producer.inputs[0]
        return v.producer is not None and v.producer.op == "scan"

    return sum(n.op == "slice" and of_scan(n.inputs[0]) for n in graph.nodes)


@pytest.mark.parametrize("batch_first", [True, False])
def test_lstm_last_output_gradients_match_torch(batch_first):
    """``out[:, -1]`` of an LSTM is its final h: after fuse_patterns the forward scan stacks no
    outputs and the backward scan reads no output cotangents, and gradients are torch's."""
    torch.manual_seed(0)
    ref, head = torch.nn.LSTM(4, 6, batch_first=batch_first), torch.nn.Linear(6, 3)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 5, 4) if batch_first else (5, 2, 4)).astype(np.float32)
    out, _ = ref(torch.tensor(x))
    loss = head(out[:, -1] if batch_first else out[-1]).square().sum()
    loss.backward()
    want = [loss.item()] + [p.grad.numpy() for p in [*ref.parameters(), *head.parameters()]]

    lstm, lin = nn.LSTM(4, 6, batch_first=batch_first), nn.Linear(6, 3)
    lstm.load_state_dict({k: gcomp.tensor(v.detach().numpy()) for k, v in
                          ref.state_dict().items()})
    lin.load_state_dict({k: gcomp.tensor(v.detach().numpy()) for k, v in
                         head.state_dict().items()})
    params = [*lstm.parameters(), *lin.parameters()]

    def step(x):
        for p in params:
            p.grad = None
        out, _ = lstm(x)
        loss = lin(out[:, -1] if batch_first else out[-1]).square().sum()
        loss.backward()
        return loss

    for passes in (FUSED, "none"):
        c = gcomp.compile(step, passes=passes)
        got = [c(gcomp.tensor(x)).item()] + [p.grad.numpy() for p in params]
        _close(got, want, rtol=1e-5, atol=1e-6)
        ir = c.ir(gcomp.tensor(x))
        # the backward scan's y cotangent input (ct_y) is there only without the pass
        assert ("ct_y" in ir) == (passes == "none"), passes
        # the backward loop writes each stack once: the per-step gradient of the gates feeds
        # both dW_hh (contracted after the loop) and the input projection's gradients
        back, = [n for n in parse(ir).nodes if n.op == "scan" and n.attrs.get("reverse")]
        ys = back.regions[0].outputs[back.attrs["num_carry"]:]
        assert len(ys) == len({id(v) for v in ys}) == 1


def _scan_fn(body, reverse, pick):
    def fn(h, xs):
        _, ys = gcomp.scan(body, h, xs, reverse=reverse)
        return pick(ys)
    return fn


def _carry_out(h, x):
    h = gcomp.tanh(h + x)
    return h, h


def _other_out(h, x):
    h = gcomp.tanh(h + x)
    return h, h * 2.0


def _numpy_scan(body, h, xs, reverse):
    ys = [None] * len(xs)
    for t in (range(len(xs))[::-1] if reverse else range(len(xs))):
        h, ys[t] = body(h, xs[t])
    return np.stack(ys)


@pytest.mark.parametrize("body, reverse, pick, fires", [
    (_carry_out, False, lambda ys: ys[-1], True),
    (_carry_out, False, lambda ys: ys.transpose(0, 1)[:, -1, 1:], True),  # through a transpose
    (_carry_out, True, lambda ys: ys[0], True),  # reverse: index 0 is the last step run
    (_carry_out, True, lambda ys: ys[-1], False),
    (_carry_out, False, lambda ys: ys[-2], False),
    (_carry_out, False, lambda ys: ys[-1:].sum(0) + ys[0], True),  # the stack is read too
    (_other_out, False, lambda ys: ys[-1], False),  # y is not the carry
], ids=["last", "transposed", "reverse_first", "reverse_last", "not_last", "stack_also_read",
        "y_not_carry"])
def test_scan_last_step_rewrite(body, reverse, pick, fires):
    rng = np.random.default_rng(1)
    h, xs = (rng.standard_normal(s).astype(np.float32) for s in ((3, 4), (5, 3, 4)))
    fn = _scan_fn(body, reverse, pick)
    graph = parse(gcomp.compile(fn, passes="none").ir(gcomp.tensor(h), gcomp.tensor(xs)))
    fused = run_passes(graph.copy(), ["fuse_patterns"])
    assert (_slices_of_ys(fused) < _slices_of_ys(graph)) == fires
    np_body = {_carry_out: lambda h, x: (np.tanh(h + x),) * 2,
               _other_out: lambda h, x: (np.tanh(h + x), 2 * np.tanh(h + x))}[body]
    want = pick(torch.tensor(_numpy_scan(np_body, h, xs, reverse))).numpy()
    for g in (graph, fused):
        _close(interpret(g, h, xs), [want], rtol=1e-6, atol=1e-6)
    # gradients through the rewritten graph, compiled, against the unfused one
    grads = [_compiled(_with_grads(fn, (0, 1)), [h, xs], passes=p)[0] for p in (FUSED, "none")]
    _close(*grads, rtol=1e-5, atol=1e-6)
    if fires:  # one unit of fuel each (Note [Pass fuel])
        assert _slices_of_ys(run_passes(graph.copy(), ["fuse_patterns"], fuel=0)) == \
            _slices_of_ys(graph)
