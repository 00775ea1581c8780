"""RNN, LSTM, GRU and their cells against torch: outputs, input, state and parameter gradients
eagerly, outputs through gcomp.compile, state_dict names and shapes, initialization."""

import math

import numpy as np
import pytest
import torch

import gcomp
import gcomp.nn as nn

INPUT, HIDDEN, STEPS, BATCH = 5, 6, 3, 2
MODES = [("LSTM", {}), ("GRU", {}), ("RNN", {"nonlinearity": "tanh"}),
         ("RNN", {"nonlinearity": "relu"})]
MODE_IDS = ["lstm", "gru", "rnn_tanh", "rnn_relu"]
# (num_layers, bidirectional, batch_first, initial states given, unbatched input)
CONFIGS = [(1, False, False, False, False), (2, True, True, True, False),
           (2, True, False, True, True)]


def pair(mode, kw, **more):
    """A torch module and a gcomp module holding the same weights."""
    torch.manual_seed(0)
    tm = getattr(torch.nn, mode)(INPUT, HIDDEN, **kw, **more)
    gm = getattr(nn, mode)(INPUT, HIDDEN, **kw, **more)
    gm.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    return tm, gm


def leaf(a):
    return torch.tensor(a, requires_grad=True), gcomp.tensor(a, requires_grad=True)


def close(g, t, tol=2e-5):
    np.testing.assert_allclose(np.asarray(g.detach()), t.detach().numpy(), rtol=tol, atol=tol)


def inputs(rng, num_layers, bidirectional, batch_first, with_state, unbatched, lstm):
    shape = (STEPS, INPUT) if unbatched else \
        ((BATCH, STEPS, INPUT) if batch_first else (STEPS, BATCH, INPUT))
    args = [leaf(rng.standard_normal(shape).astype(np.float32))]
    if with_state:
        sshape = (num_layers * (2 if bidirectional else 1),) + \
            ((HIDDEN,) if unbatched else (BATCH, HIDDEN))
        for _ in range(2 if lstm else 1):
            args.append(leaf(rng.standard_normal(sshape).astype(np.float32)))
    return args


def call(m, x, states, lstm):
    if not states:
        return m(x)
    return m(x, tuple(states) if lstm else states[0])


def flat(out, lstm):
    return [out[0], *out[1]] if lstm else list(out)


def _cases():
    """Every mode with every configuration; the plain RNNs' multi-layer cases are slow-marked
    (LSTM and GRU cover the layering, direction and state handling they share)."""
    out = []
    for cfg in CONFIGS:
        for (mode, kw), mid in zip(MODES, MODE_IDS):
            marks = [pytest.mark.slow] if mode == "RNN" and cfg[0] > 1 else []
            out.append(pytest.param(mode, kw, *cfg, marks=marks,
                                    id=f"{'-'.join(map(str, cfg))}-{mid}"))
    return out


@pytest.mark.parametrize("mode,kw,num_layers,bidirectional,batch_first,with_state,unbatched",
                         _cases())
def test_forward_and_gradients_match_torch(mode, kw, num_layers, bidirectional, batch_first,
                                           with_state, unbatched):
    lstm = mode == "LSTM"
    tm, gm = pair(mode, kw, num_layers=num_layers, bidirectional=bidirectional,
                  batch_first=batch_first)
    rng = np.random.default_rng(1)
    args = inputs(rng, num_layers, bidirectional, batch_first, with_state, unbatched, lstm)
    touts = flat(call(tm, args[0][0], [a[0] for a in args[1:]], lstm), lstm)
    gouts = flat(call(gm, args[0][1], [a[1] for a in args[1:]], lstm), lstm)
    assert [tuple(o.shape) for o in gouts] == [tuple(o.shape) for o in touts]
    for g, t in zip(gouts, touts, strict=True):
        close(g, t)
    seeds = [rng.standard_normal(tuple(t.shape)).astype(np.float32) for t in touts]
    sum((t * torch.tensor(s)).sum() for t, s in zip(touts, seeds, strict=True)).backward()
    sum((g * gcomp.tensor(s)).sum() for g, s in zip(gouts, seeds, strict=True)).backward()
    for t, g in args:
        close(g.grad, t.grad)
    gparams = dict(gm.named_parameters())
    for name, tp in tm.named_parameters():
        close(gparams[name].grad, tp.grad)


@pytest.mark.parametrize("mode,kw,layers,bidirectional", [
    ("LSTM", {}, 2, True), ("GRU", {}, 1, True), ("RNN", {"nonlinearity": "relu"}, 2, False)],
    ids=["lstm", "gru", "rnn_relu"])
def test_compiled_forward_matches_torch(mode, kw, layers, bidirectional):
    lstm = mode == "LSTM"
    tm, gm = pair(mode, kw, num_layers=layers, bidirectional=bidirectional, batch_first=True)
    rng = np.random.default_rng(2)
    args = inputs(rng, layers, bidirectional, True, True, False, lstm)
    touts = flat(call(tm, args[0][0], [a[0] for a in args[1:]], lstm), lstm)
    fn = gcomp.compile(lambda x, *states: flat(call(gm, x, list(states), lstm), lstm))
    gouts = fn(*[a[1].detach() for a in args])
    for g, t in zip(gouts, touts, strict=True):
        close(g, t)


def test_compiled_training_step_matches_eager_gradients():
    tm, gm = pair("LSTM", {}, num_layers=1)
    x = np.random.default_rng(3).standard_normal((STEPS, BATCH, INPUT)).astype(np.float32)
    tx = torch.tensor(x)
    tm(tx)[0].square().sum().backward()

    @gcomp.compile
    def step(x):
        gm.zero_grad()
        loss = gm(x)[0].square().sum()
        loss.backward()
        return loss

    step(gcomp.tensor(x))
    gparams = dict(gm.named_parameters())
    for name, tp in tm.named_parameters():
        close(gparams[name].grad, tp.grad)


@pytest.mark.parametrize("mode,kw", MODES[:2], ids=MODE_IDS[:2])
def test_compiled_gradients_match_torch_two_layers_bidirectional_batch_first(mode, kw):
    """Inside gcomp.compile the time loops are scans differentiated by reverse scans: outputs,
    final states and the gradients of the input, the initial states and every parameter equal
    torch's."""
    lstm = mode == "LSTM"
    tm, gm = pair(mode, kw, num_layers=2, bidirectional=True, batch_first=True)
    rng = np.random.default_rng(6)
    args = inputs(rng, 2, True, True, True, False, lstm)
    touts = flat(call(tm, args[0][0], [a[0] for a in args[1:]], lstm), lstm)
    seeds = [rng.standard_normal(tuple(t.shape)).astype(np.float32) for t in touts]
    sum((t * torch.tensor(s)).sum() for t, s in zip(touts, seeds, strict=True)).backward()
    names = [n for n, _ in gm.named_parameters()]

    @gcomp.compile
    def grads(x, *states):
        outs = flat(call(gm, x, list(states), lstm), lstm)
        loss = sum((o * gcomp.tensor(s)).sum() for o, s in zip(outs, seeds, strict=True))
        return outs, gcomp.autograd.grad(loss, [x, *states, *gm.parameters()])

    gouts, ggrads = grads(*[a[1] for a in args])
    for g, t in zip(gouts, touts, strict=True):
        close(g, t)
    tparams = dict(tm.named_parameters())
    want = [a[0].grad for a in args] + [tparams[n].grad for n in names]
    for g, t in zip(ggrads, want, strict=True):
        close(g, t, 1e-4)
    assert gcomp.ir.parse(grads.stages(*[a[1] for a in args])[0].graph).op_counts()["scan"] == 4


def _lstm_training_step(steps):
    gcomp.manual_seed(0)
    m = nn.LSTM(INPUT, HIDDEN)
    opt = gcomp.optim.Adam(m.parameters(), lr=1e-3)

    @gcomp.compile
    def step(x):
        opt.zero_grad()
        loss = m(x)[0].square().mean()
        loss.backward()
        opt.step()
        return loss

    return step, gcomp.randn(steps, BATCH, INPUT)


def _first_call_seconds(steps):
    import time

    step, x = _lstm_training_step(steps)
    t0 = time.perf_counter()
    step(x).item()  # trace, passes, XLA compile and one run
    return time.perf_counter() - t0


def test_a_512_step_lstm_compiles_about_as_fast_as_an_8_step_one():
    """One scan node whatever the length: compile time does not grow with the sequence (a ratio
    measured in the test, with a generous bound)."""
    _first_call_seconds(4)  # warm up what every first compile pays once
    short, long = _first_call_seconds(8), _first_call_seconds(512)
    assert long < 3 * short, f"512 steps: {long:.2f} s, 8 steps: {short:.2f} s"


@pytest.mark.parametrize("mode", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_state_dict_names_shapes_and_init(mode, bidirectional):
    tm = getattr(torch.nn, mode)(INPUT, HIDDEN, num_layers=2, bidirectional=bidirectional,
                                 bias=True)
    gm = getattr(nn, mode)(INPUT, HIDDEN, num_layers=2, bidirectional=bidirectional)
    tsd, gsd = tm.state_dict(), gm.state_dict()
    assert list(gsd) == list(tsd)
    assert [tuple(v.shape) for v in gsd.values()] == [tuple(v.shape) for v in tsd.values()]
    bound = 1 / math.sqrt(HIDDEN)
    a = np.concatenate([np.asarray(v).ravel() for v in gsd.values()])
    assert a.min() >= -bound and a.max() <= bound and a.std() > bound / 2
    nobias = getattr(nn, mode)(INPUT, HIDDEN, bias=False)
    assert list(nobias.state_dict()) == list(getattr(torch.nn, mode)(INPUT, HIDDEN,
                                                                     bias=False).state_dict())


@pytest.mark.parametrize("mode,kw", MODES[:2], ids=MODE_IDS[:2])
def test_train_mode_with_zero_dropout_and_no_bias(mode, kw):
    tm, gm = pair(mode, kw, num_layers=2, dropout=0.0, bias=False)
    gm.train()
    x = np.random.default_rng(4).standard_normal((STEPS, BATCH, INPUT)).astype(np.float32)
    close(gm(gcomp.tensor(x))[0], tm(torch.tensor(x))[0])


def test_dropout_between_layers_only_in_training():
    gm = nn.GRU(INPUT, HIDDEN, num_layers=2, dropout=0.5)
    x = gcomp.randn(STEPS, BATCH, INPUT)
    a, b = gm(x)[0], gm(x)[0]
    assert not np.allclose(np.asarray(a.detach()), np.asarray(b.detach()))
    gm.eval()
    np.testing.assert_array_equal(np.asarray(gm(x)[0].detach()), np.asarray(gm(x)[0].detach()))


CELLS = [("LSTMCell", {}), ("GRUCell", {}), ("RNNCell", {"nonlinearity": "tanh"}),
         ("RNNCell", {"nonlinearity": "relu"})]


@pytest.mark.parametrize("name,kw", CELLS, ids=["lstm", "gru", "rnn_tanh", "rnn_relu"])
@pytest.mark.parametrize("unbatched,with_state", [(False, False), (False, True), (True, True)])
def test_cells_match_torch(name, kw, unbatched, with_state):
    torch.manual_seed(0)
    tm = getattr(torch.nn, name)(INPUT, HIDDEN, **kw)
    gm = getattr(nn, name)(INPUT, HIDDEN, **kw)
    assert list(gm.state_dict()) == list(tm.state_dict())
    gm.load_state_dict(tm.state_dict())
    lstm = name == "LSTMCell"
    rng = np.random.default_rng(5)
    lead = () if unbatched else (BATCH,)
    x = leaf(rng.standard_normal(lead + (INPUT,)).astype(np.float32))
    states = [leaf(rng.standard_normal(lead + (HIDDEN,)).astype(np.float32))
              for _ in range((2 if lstm else 1) if with_state else 0)]

    def run(m, i):
        hx = None if not states else (tuple(s[i] for s in states) if lstm else states[0][i])
        out = m(x[i], hx)
        return list(out) if lstm else [out]

    touts, gouts = run(tm, 0), run(gm, 1)
    for g, t in zip(gouts, touts, strict=True):
        close(g, t)
    sum((t * (k + 1)).sum() for k, t in enumerate(touts)).backward()
    sum((g * (k + 1)).sum() for k, g in enumerate(gouts)).backward()
    for t, g in [x, *states]:
        close(g.grad, t.grad)
    for (_, tp), gp in zip(tm.named_parameters(), gm.parameters(), strict=True):
        close(gp.grad, tp.grad)


def test_errors():
    with pytest.raises(gcomp.GcompError, match="proj_size"):
        nn.LSTM(INPUT, HIDDEN, proj_size=2)
    m = nn.LSTM(INPUT, HIDDEN)
    with pytest.raises(gcomp.GcompError, match="input_size"):
        m(gcomp.randn(STEPS, BATCH, INPUT + 1))
    with pytest.raises(gcomp.GcompError, match="hidden size"):
        m(gcomp.randn(STEPS, BATCH, INPUT), (gcomp.zeros(2, BATCH, HIDDEN),
                                             gcomp.zeros(1, BATCH, HIDDEN)))
    with pytest.raises(gcomp.GcompError, match="nonlinearity"):
        nn.RNN(INPUT, HIDDEN, nonlinearity="gelu")
