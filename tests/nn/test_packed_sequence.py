"""Packed sequences (torch.nn.utils.rnn) against torch: the packed layout (data, batch_sizes,
sorted and unsorted indices), padding back, packing lists, gradients through pack and pad; RNN,
LSTM and GRU on packed input (outputs, final states, input and parameter gradients), eagerly and
inside gcomp.compile; the errors."""

import numpy as np
import pytest
import torch
import torch.nn.utils.rnn as trnn
from hypothesis import given
from hypothesis import strategies as st

import gcomp
import gcomp.nn as nn
import gcomp.nn.utils.rnn as grnn

INPUT, HIDDEN = 3, 4


def close(g, t, tol=1e-5):
    np.testing.assert_allclose(np.asarray(g.detach()), t.detach().numpy(), rtol=tol, atol=tol)


def equal(g, t):
    if t is None:
        assert g is None
        return
    np.testing.assert_array_equal(np.asarray(g.detach()), t.detach().numpy())


def padded(rng, lengths, batch_first, trailing=(INPUT,), dtype=np.float32):
    steps = max(lengths) + 1  # one step of padding past the longest sequence
    shape = (len(lengths), steps) if batch_first else (steps, len(lengths))
    return rng.standard_normal(shape + trailing).astype(dtype)


def same_packing(g, t):
    equal(g.data, t.data)
    assert g.batch_sizes.tolist() == t.batch_sizes.tolist()
    equal(g.sorted_indices, t.sorted_indices)
    equal(g.unsorted_indices, t.unsorted_indices)


# -- the layout ---------------------------------------------------------------------------------

@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("lengths,enforce_sorted", [([4, 4, 2, 1], True), ([2, 5, 1, 3], False),
                                                    ([3, 1, 3, 2, 1], False)])
@pytest.mark.parametrize("trailing", [(INPUT,), (), (2, 3)], ids=["features", "none", "2d"])
def test_pack_pad_round_trip_matches_torch(batch_first, lengths, enforce_sorted, trailing):
    rng = np.random.default_rng(0)
    x = padded(rng, lengths, batch_first, trailing)
    tp = trnn.pack_padded_sequence(torch.tensor(x), lengths, batch_first, enforce_sorted)
    gp = grnn.pack_padded_sequence(gcomp.tensor(x), lengths, batch_first, enforce_sorted)
    assert isinstance(gp, grnn.PackedSequence) and gp._fields == tp._fields
    same_packing(gp, tp)
    # the lengths as a tensor give the same packing
    same_packing(grnn.pack_padded_sequence(gcomp.tensor(x), gcomp.tensor(lengths), batch_first,
                                           enforce_sorted), tp)
    for kw in ({}, {"padding_value": -1.5, "total_length": max(lengths) + 3}):
        t_out, t_len = trnn.pad_packed_sequence(tp, batch_first, **kw)
        g_out, g_len = grnn.pad_packed_sequence(gp, batch_first, **kw)
        equal(g_out, t_out)
        assert g_len.dtype == gcomp.int64 and g_len.tolist() == t_len.tolist() == lengths
    gs, ts = grnn.unpack_sequence(gp), trnn.unpack_sequence(tp)
    assert len(gs) == len(ts)
    for g, t in zip(gs, ts, strict=True):
        equal(g, t)


@given(st.lists(st.integers(1, 6), min_size=1, max_size=16))
def test_unsorted_packing_matches_torch_for_any_lengths(lengths):
    """Ties included: equal lengths keep their batch order, as torch.sort does for up to 16."""
    x = padded(np.random.default_rng(len(lengths)), lengths, True, ())
    same_packing(grnn.pack_padded_sequence(gcomp.tensor(x), lengths, True, False),
                 trnn.pack_padded_sequence(torch.tensor(x), lengths, True, False))


@pytest.mark.parametrize("enforce_sorted", [True, False])
def test_pack_sequence_unpad_and_pad_sequence_match_torch(enforce_sorted):
    rng = np.random.default_rng(1)
    lengths = [5, 3, 3, 1] if enforce_sorted else [3, 5, 1, 3]
    arrays = [rng.standard_normal((n, 2)).astype(np.float32) for n in lengths]
    tp = trnn.pack_sequence([torch.tensor(a) for a in arrays], enforce_sorted)
    gp = grnn.pack_sequence([gcomp.tensor(a) for a in arrays], enforce_sorted)
    same_packing(gp, tp)
    for g, a in zip(grnn.unpack_sequence(gp), arrays, strict=True):
        np.testing.assert_array_equal(np.asarray(g), a)
    for batch_first in (False, True):
        t_pad = trnn.pad_sequence([torch.tensor(a) for a in arrays], batch_first)
        g_pad = grnn.pad_sequence([gcomp.tensor(a) for a in arrays], batch_first)
        equal(g_pad, t_pad)
        for lengths_as in (list, gcomp.tensor):
            unpadded = grnn.unpad_sequence(g_pad, lengths_as(lengths), batch_first)
            for g, a in zip(unpadded, arrays, strict=True):
                np.testing.assert_array_equal(np.asarray(g), a)


@pytest.mark.parametrize("batch_first", [False, True])
def test_gradients_through_pack_and_pad_match_torch(batch_first):
    rng = np.random.default_rng(2)
    lengths = [2, 4, 1]
    x = padded(rng, lengths, batch_first)
    tx, gx = torch.tensor(x, requires_grad=True), gcomp.tensor(x, requires_grad=True)
    tp = trnn.pack_padded_sequence(tx, lengths, batch_first, enforce_sorted=False)
    gp = grnn.pack_padded_sequence(gx, lengths, batch_first, enforce_sorted=False)
    t_out = trnn.pad_packed_sequence(tp, batch_first, total_length=6)[0]
    g_out = grnn.pad_packed_sequence(gp, batch_first, total_length=6)[0]
    seed = rng.standard_normal(tuple(t_out.shape)).astype(np.float32)
    data_seed = rng.standard_normal(tuple(tp.data.shape)).astype(np.float32)
    ((t_out * torch.tensor(seed)).sum() + (tp.data * torch.tensor(data_seed)).sum()).backward()
    ((g_out * gcomp.tensor(seed)).sum() + (gp.data * gcomp.tensor(data_seed)).sum()).backward()
    equal(gx.grad, tx.grad)


def test_packed_sequence_construction_and_conversion():
    x = np.arange(12, dtype=np.float32).reshape(3, 2, 2)
    gp = grnn.pack_padded_sequence(gcomp.tensor(x), [2, 3], enforce_sorted=False)
    tp = trnn.pack_padded_sequence(torch.tensor(x), [2, 3], enforce_sorted=False)
    data, batch_sizes, sorted_indices, unsorted_indices = gp
    assert gp.data is data and gp.sorted_indices is sorted_indices
    # unsorted_indices are the inverse of sorted_indices, computed when not given
    rebuilt = grnn.PackedSequence(data * 2, batch_sizes, sorted_indices)
    equal(rebuilt.unsorted_indices, tp.unsorted_indices)
    equal(grnn.invert_permutation(gcomp.tensor([2, 0, 3, 1])),
          trnn.invert_permutation(torch.tensor([2, 0, 3, 1])))
    assert grnn.invert_permutation(None) is None
    legacy = grnn.PackedSequence((data, batch_sizes))
    assert legacy.data is data and legacy.sorted_indices is None
    assert gp.to(gcomp.float32) is gp and gp.float() is gp
    for g, t in [(gp.double(), tp.double()), (gp.long(), tp.long()), (gp.to(gcomp.int32),
                                                                      tp.int())]:
        assert str(g.data.dtype).split(".")[1] == str(t.data.dtype).split(".")[1]
        same_packing(g, t)
        assert g.batch_sizes is gp.batch_sizes
    # rebuilt around new data, the layout still pads
    equal(grnn.pad_packed_sequence(rebuilt)[0], trnn.pad_packed_sequence(tp)[0] * 2)


# -- RNN, LSTM and GRU on packed input ---------------------------------------------------------

MODES = {"lstm": ("LSTM", {}), "gru": ("GRU", {}), "rnn_tanh": ("RNN", {}),
         "rnn_relu": ("RNN", {"nonlinearity": "relu"})}
# (mode, num_layers, bidirectional, batch_first, lengths (sorted: enforce_sorted), h_0 given)
RNN_CASES = [
    ("lstm", 1, False, False, [5, 3, 3, 1], False),
    ("lstm", 2, True, True, [2, 5, 1, 4], True),
    ("lstm", 1, True, False, [3, 4, 1], True),
    ("gru", 1, True, True, [4, 4, 2], False),
    ("gru", 2, False, False, [1, 3, 5, 2], True),
    ("rnn_tanh", 2, True, True, [3, 1, 4], True),
    ("rnn_relu", 1, False, False, [4, 2, 1], True),
]


def pair(mode, **kw):
    """A torch module and a gcomp module holding the same weights."""
    name, extra = MODES[mode]
    torch.manual_seed(0)
    tm = getattr(torch.nn, name)(INPUT, HIDDEN, **extra, **kw)
    gm = getattr(nn, name)(INPUT, HIDDEN, **extra, **kw)
    gm.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    return tm, gm


def states(out, lstm):
    """The final states of a module's result, as a list."""
    return list(out[1]) if lstm else [out[1]]


# the fast path keeps one case per cell kind (the 2-layer bidirectional LSTM covers the most);
# the rest run under `make test-all`
_FAST_RNN = {1, 3, 6}


@pytest.mark.parametrize("mode,num_layers,bidirectional,batch_first,lengths,with_state", [
    pytest.param(*c, id="-".join(map(str, c[:4])), marks=() if i in _FAST_RNN else pytest.mark.slow)
    for i, c in enumerate(RNN_CASES)])
def test_rnn_on_packed_input_matches_torch(mode, num_layers, bidirectional, batch_first,
                                           lengths, with_state):
    lstm = mode == "lstm"
    tm, gm = pair(mode, num_layers=num_layers, bidirectional=bidirectional,
                  batch_first=batch_first)
    rng = np.random.default_rng(3)
    enforce_sorted = lengths == sorted(lengths, reverse=True)
    x = padded(rng, lengths, batch_first)
    tx, gx = torch.tensor(x, requires_grad=True), gcomp.tensor(x, requires_grad=True)
    t_args, g_args = [trnn.pack_padded_sequence(tx, lengths, batch_first, enforce_sorted)], \
        [grnn.pack_padded_sequence(gx, lengths, batch_first, enforce_sorted)]
    t_states, g_states = [], []
    if with_state:
        shape = (num_layers * (2 if bidirectional else 1), len(lengths), HIDDEN)
        for _ in range(2 if lstm else 1):
            s = rng.standard_normal(shape).astype(np.float32)
            t_states.append(torch.tensor(s, requires_grad=True))
            g_states.append(gcomp.tensor(s, requires_grad=True))
        t_args.append(tuple(t_states) if lstm else t_states[0])
        g_args.append(tuple(g_states) if lstm else g_states[0])
    t_res, g_res = tm(*t_args), gm(*g_args)
    assert isinstance(g_res[0], grnn.PackedSequence)
    assert g_res[0].batch_sizes.tolist() == t_res[0].batch_sizes.tolist()
    equal(g_res[0].sorted_indices, t_res[0].sorted_indices)
    t_outs = [t_res[0].data, *states(t_res, lstm)]
    g_outs = [g_res[0].data, *states(g_res, lstm)]
    for g, t in zip(g_outs, t_outs, strict=True):
        assert tuple(g.shape) == tuple(t.shape)
        close(g, t)
    close(grnn.pad_packed_sequence(g_res[0], batch_first)[0],
          trnn.pad_packed_sequence(t_res[0], batch_first)[0])
    seeds = [rng.standard_normal(tuple(t.shape)).astype(np.float32) for t in t_outs]
    sum((t * torch.tensor(s)).sum() for t, s in zip(t_outs, seeds, strict=True)).backward()
    sum((g * gcomp.tensor(s)).sum() for g, s in zip(g_outs, seeds, strict=True)).backward()
    for g, t in zip([gx, *g_states], [tx, *t_states], strict=True):
        close(g.grad, t.grad)
    g_params = dict(gm.named_parameters())
    for name, tp in tm.named_parameters():
        close(g_params[name].grad, tp.grad)


def test_gru_on_packed_input_float64():
    tm, gm = pair("gru", num_layers=2, bidirectional=True)
    tm, gm = tm.double(), gm.double()
    lengths = [2, 5, 3]
    x = padded(np.random.default_rng(4), lengths, False, dtype=np.float64)
    tx, gx = torch.tensor(x, requires_grad=True), gcomp.tensor(x, requires_grad=True)
    t_out, t_h = tm(trnn.pack_padded_sequence(tx, lengths, enforce_sorted=False))
    g_out, g_h = gm(grnn.pack_padded_sequence(gx, lengths, enforce_sorted=False))
    assert g_out.data.dtype == gcomp.float64
    close(g_out.data, t_out.data, 1e-12)
    close(g_h, t_h, 1e-12)
    (t_out.data.square().sum() + t_h.sum()).backward()
    (g_out.data.square().sum() + g_h.sum()).backward()
    close(gx.grad, tx.grad, 1e-12)


def test_compiled_pack_lstm_pad_matches_eager_and_torch():
    """Inside gcomp.compile the packed LSTM is one scan per layer and direction; outputs, final
    states and the input's gradient equal eager gcomp's and torch's."""
    tm, gm = pair("lstm", num_layers=2, bidirectional=True, batch_first=True)
    lengths = [2, 5, 1, 4]
    x = padded(np.random.default_rng(5), lengths, True)

    def run(x):
        out, (h, c) = gm(grnn.pack_padded_sequence(x, lengths, True, enforce_sorted=False))
        return grnn.pad_packed_sequence(out, batch_first=True)[0], h, c

    @gcomp.compile
    def with_grad(x):
        outs = run(x)
        loss = sum((o * (k + 1)).sum() for k, o in enumerate(outs))
        return outs, gcomp.autograd.grad(loss, [x])[0]

    gx = gcomp.tensor(x, requires_grad=True)
    compiled, compiled_grad = with_grad(gx)
    eager = run(gx)
    for c, e in zip(compiled, eager, strict=True):
        close(c, e, 1e-6)
    tx = torch.tensor(x, requires_grad=True)
    t_out, (t_h, t_c) = tm(trnn.pack_padded_sequence(tx, lengths, True, enforce_sorted=False))
    t_outs = (trnn.pad_packed_sequence(t_out, batch_first=True)[0], t_h, t_c)
    for c, t in zip(compiled, t_outs, strict=True):
        close(c, t)
    sum((o * (k + 1)).sum() for k, o in enumerate(t_outs)).backward()
    close(compiled_grad, tx.grad)
    graph = gcomp.ir.parse(with_grad.stages(gx)[0].graph)
    assert graph.op_counts()["scan"] == 4


# -- errors -------------------------------------------------------------------------------------

def test_errors_name_the_users_line():
    x = gcomp.randn(3, 2, INPUT)
    cases = [
        (lambda: grnn.pack_padded_sequence(x, [2, 3]), "sorted in decreasing order"),
        (lambda: grnn.pack_padded_sequence(x, [3, 0]), "greater than 0"),
        (lambda: grnn.pack_padded_sequence(x, [4, 2]), "more than the 3 steps"),
        (lambda: grnn.pack_padded_sequence(x, [3, 2, 1]), r"equal to batch_size.*batch_size=2"),
        (lambda: grnn.pack_padded_sequence(x, gcomp.tensor([[3, 2]])), "1D"),
        (lambda: grnn.pack_padded_sequence(gcomp.zeros(0, 2, 1), [1, 1]), "empty"),
        (lambda: grnn.pack_sequence([]), "empty list"),
        (lambda: grnn.pack_sequence([gcomp.zeros(2, 3), gcomp.zeros(3, 3)]), "sorted"),
    ]
    for fn, match in cases:
        with pytest.raises(gcomp.GcompError, match=match) as info:
            fn()
        assert __file__ in str(info.value)
    packed = grnn.pack_padded_sequence(x, [3, 2])
    with pytest.raises(ValueError, match="total_length=2"):
        grnn.pad_packed_sequence(packed, total_length=2)
    lstm = nn.LSTM(INPUT, HIDDEN)
    with pytest.raises(gcomp.GcompError, match=r"hidden size \(1, 2, 4\)"):
        lstm(packed, (gcomp.zeros(1, 3, HIDDEN), gcomp.zeros(1, 3, HIDDEN)))
    with pytest.raises(gcomp.GcompError, match="input_size"):
        nn.GRU(INPUT + 1, HIDDEN)(packed)


def test_layout_unknown_while_tracing_is_a_clear_error():
    x = gcomp.randn(3, 2, INPUT)
    lengths = gcomp.tensor([3, 2])
    with pytest.raises(gcomp.GcompError, match="Pass lengths as a Python list"):
        gcomp.compile(lambda x: grnn.pack_padded_sequence(x, lengths).data)(x)
    lstm = nn.LSTM(INPUT, HIDDEN)
    with pytest.raises(gcomp.GcompError, match="batch_sizes is not known while gcomp.compile"):
        gcomp.compile(lambda p: lstm(p)[0].data)(grnn.pack_padded_sequence(x, [3, 2]))
