"""Linear, activation, flatten, embedding, dropout and container layers against torch: forward,
input and parameter gradients eagerly, and the forward inside gcomp.compile."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch
from nn_parity import check_module, close, ints, npy, randn

import gcomp
import gcomp.nn.functional as GF


def _with_zeros(a):
    a = a.copy()
    a.flat[::7] = 0.0  # kinks: relu & co. must give PyTorch's gradient exactly at 0
    return a


X = _with_zeros(randn(3, 7, scale=3.0))

LAYERS = {
    "linear": (lambda lib: lib.nn.Linear(4, 3), [randn(2, 4)]),
    "linear_3d_no_bias": (lambda lib: lib.nn.Linear(4, 3, bias=False), [randn(2, 5, 4)]),
    "linear_1d_input": (lambda lib: lib.nn.Linear(4, 3), [randn(4)]),
    "bilinear": (lambda lib: lib.nn.Bilinear(3, 4, 2), [randn(5, 3), randn(5, 4)]),
    "bilinear_3d_no_bias": (lambda lib: lib.nn.Bilinear(3, 4, 2, bias=False),
                            [randn(2, 5, 3), randn(2, 5, 4)]),
    "identity": (lambda lib: lib.nn.Identity(54, unused="x"), [randn(2, 3)]),
    "flatten": (lambda lib: lib.nn.Flatten(), [randn(2, 3, 4, 5)]),
    "flatten_1_2": (lambda lib: lib.nn.Flatten(1, 2), [randn(2, 3, 4, 5)]),
    "unflatten": (lambda lib: lib.nn.Unflatten(1, (2, 3)), [randn(4, 6, 2)]),
    "relu": (lambda lib: lib.nn.ReLU(), [X]),
    "relu_inplace": (lambda lib: lib.nn.Sequential(lib.nn.Linear(7, 5), lib.nn.ReLU(True)),
                     [X]),
    "relu6": (lambda lib: lib.nn.ReLU6(), [X]),
    "leaky_relu": (lambda lib: lib.nn.LeakyReLU(0.2), [X]),
    "elu": (lambda lib: lib.nn.ELU(alpha=0.5), [X]),
    "selu": (lambda lib: lib.nn.SELU(), [X]),
    "celu": (lambda lib: lib.nn.CELU(0.7), [X]),
    "gelu": (lambda lib: lib.nn.GELU(), [X]),
    "gelu_tanh": (lambda lib: lib.nn.GELU(approximate="tanh"), [X]),
    "silu": (lambda lib: lib.nn.SiLU(), [X]),
    "mish": (lambda lib: lib.nn.Mish(), [X]),
    "sigmoid": (lambda lib: lib.nn.Sigmoid(), [X]),
    "tanh": (lambda lib: lib.nn.Tanh(), [X]),
    "hardtanh": (lambda lib: lib.nn.Hardtanh(), [X]),
    "hardtanh_range": (lambda lib: lib.nn.Hardtanh(-2.0, 0.5), [X]),
    "hardsigmoid": (lambda lib: lib.nn.Hardsigmoid(), [X]),
    "hardswish": (lambda lib: lib.nn.Hardswish(), [X]),
    "softplus": (lambda lib: lib.nn.Softplus(), [X]),
    "softplus_beta_threshold": (lambda lib: lib.nn.Softplus(beta=2.0, threshold=1.0), [X]),
    "softsign": (lambda lib: lib.nn.Softsign(), [X]),
    "tanhshrink": (lambda lib: lib.nn.Tanhshrink(), [X]),
    "logsigmoid": (lambda lib: lib.nn.LogSigmoid(), [X]),
    "threshold": (lambda lib: lib.nn.Threshold(0.1, 20.0), [X]),
    "softmax_1": (lambda lib: lib.nn.Softmax(dim=1), [X]),
    "softmax_0_3d": (lambda lib: lib.nn.Softmax(dim=0), [randn(3, 4, 2)]),
    "softmin": (lambda lib: lib.nn.Softmin(dim=-1), [X]),
    "log_softmax": (lambda lib: lib.nn.LogSoftmax(dim=-1), [X]),
    "log_softmax_4d": (lambda lib: lib.nn.LogSoftmax(dim=1), [randn(2, 3, 4, 2, scale=5.0)]),
    "glu": (lambda lib: lib.nn.GLU(), [randn(3, 8)]),
    "prelu": (lambda lib: lib.nn.PReLU(), [X]),
    "prelu_channels": (lambda lib: lib.nn.PReLU(num_parameters=7, init=0.1),
                       [randn(3, 7, 2)]),
    "embedding": (lambda lib: lib.nn.Embedding(10, 3), [ints(2, 4, high=10)]),
    "embedding_padding": (lambda lib: lib.nn.Embedding(10, 3, padding_idx=2),
                          [np.array([[2, 1, 2], [0, 9, 2]])]),
    "embedding_padding_negative": (lambda lib: lib.nn.Embedding(6, 2, padding_idx=-1),
                                   [np.array([5, 1, 5, 0])]),
    "sequential": (lambda lib: lib.nn.Sequential(lib.nn.Linear(7, 5), lib.nn.Tanh(),
                                                 lib.nn.Linear(5, 2)), [X]),
    "sequential_ordered_dict": (lambda lib: lib.nn.Sequential(OrderedDict(
        fc=lib.nn.Linear(7, 4), act=lib.nn.GELU(), out=lib.nn.Linear(4, 2))), [X]),
    "sequential_nested": (lambda lib: lib.nn.Sequential(
        lib.nn.Sequential(lib.nn.Linear(7, 4), lib.nn.ReLU()), lib.nn.Flatten(0),
        lib.nn.Dropout(0.5)), [X]),
    "dropout_eval": (lambda lib: lib.nn.Dropout(0.3), [X]),
}


@pytest.mark.parametrize("name", list(LAYERS))
def test_layer_matches_torch(name):
    make, arrays = LAYERS[name]
    train = name != "dropout_eval" and name != "sequential_nested"
    check_module(make, arrays, train=train)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_activation_gradients_stay_finite_for_large_inputs(approximate):
    """Discarded branches (exp of a large input) must not send nan into the gradient."""
    x = gcomp.tensor(np.array([-200.0, -90.0, 0.0, 90.0, 200.0], np.float32), requires_grad=True)
    fns = [lambda v: GF.elu(v), lambda v: GF.selu(v), lambda v: GF.celu(v, 0.5),
           lambda v: GF.softplus(v), lambda v: GF.softplus(v, 3.0, 5.0), GF.logsigmoid, GF.mish,
           lambda v: GF.gelu(v, approximate=approximate)]
    for fn in fns:
        x.grad = None
        fn(x).sum().backward()
        assert np.isfinite(npy(x.grad)).all(), fn
    tx = torch.tensor(npy(x), requires_grad=True)
    torch.nn.functional.softplus(tx).sum().backward()
    x.grad = None
    GF.softplus(x).sum().backward()
    close(x.grad, tx.grad)


def test_inplace_activation_writes_into_its_input():
    for fn, tfn in [(GF.relu, torch.relu), (GF.leaky_relu, torch.nn.functional.leaky_relu),
                    (GF.hardtanh, torch.nn.functional.hardtanh)]:
        y = gcomp.tensor(X.copy()) * 1.0
        out = fn(y, inplace=True)
        assert out is y
        close(y, tfn(torch.tensor(X)))


def test_linear_errors_name_the_shapes():
    lin = gcomp.nn.Linear(4, 3)
    with pytest.raises(gcomp.GcompError, match=r"2x5 and 4x3"):
        lin(gcomp.zeros(2, 5))
    with pytest.raises(gcomp.GcompError, match="dtype"):
        lin(gcomp.zeros(2, 4, dtype=gcomp.float64))


def test_softmax_without_dim_warns_and_picks_torchs_dim():
    x = randn(2, 3, 4)
    with pytest.warns(UserWarning, match="Implicit dimension"):
        got = GF.softmax(gcomp.tensor(x))
    with pytest.warns(UserWarning):
        want = torch.nn.functional.softmax(torch.tensor(x))
    close(got, want)


# -- embedding ---------------------------------------------------------------------------------
def test_embedding_padding_row_gets_no_gradient_and_from_pretrained():
    w = randn(6, 3)
    emb = gcomp.nn.Embedding.from_pretrained(gcomp.tensor(w), freeze=False, padding_idx=1)
    temb = torch.nn.Embedding.from_pretrained(torch.tensor(w), freeze=False, padding_idx=1)
    idx = np.array([[1, 2, 1], [5, 1, 0]])
    out, tout = emb(gcomp.tensor(idx)), temb(torch.tensor(idx))
    close(out, tout)  # from_pretrained keeps the padding row's values
    out.sum().backward()
    tout.sum().backward()
    close(emb.weight.grad, temb.weight.grad)
    assert not npy(emb.weight.grad)[1].any()
    frozen = gcomp.nn.Embedding.from_pretrained(gcomp.tensor(w))
    assert not frozen.weight.requires_grad
    assert repr(frozen) == repr(torch.nn.Embedding.from_pretrained(torch.tensor(w)))


def test_embedding_max_norm_renormalizes_looked_up_rows():
    w = randn(5, 3, scale=3.0)
    g = gcomp.nn.Embedding.from_pretrained(gcomp.tensor(w), max_norm=1.5)
    t = torch.nn.Embedding.from_pretrained(torch.tensor(w), max_norm=1.5)
    idx = np.array([0, 2, 2])
    close(g(gcomp.tensor(idx)), t(torch.tensor(idx)), (1e-5, 1e-6))
    close(g.weight, t.weight, (1e-5, 1e-6))


def test_embedding_index_out_of_range_raises():
    emb = gcomp.nn.Embedding(4, 2)
    with pytest.raises(IndexError, match="out of range"):
        emb(gcomp.tensor([1, 4]))


def test_embedding_padding_traced_gradient():
    """Inside gcomp.compile the padding mask is computed with ops; gradients agree with eager."""
    emb = gcomp.nn.Embedding(6, 2, padding_idx=0)
    idx = gcomp.tensor([[0, 3], [3, 0]])

    @gcomp.compile
    def grad_step(i):
        emb.weight.grad = None
        emb(i).pow(3).sum().backward()
        return emb.weight.grad

    g = grad_step(idx)
    emb.weight.grad = None
    emb(idx).pow(3).sum().backward()
    close(g, emb.weight.grad)
    assert not npy(g)[0].any()


# -- functional misc ---------------------------------------------------------------------------
PADS = [("constant", (1, 2), None), ("constant", (1, 0, 2, 1), 0.5), ("constant", (-1, 1), None),
        ("reflect", (2, 1), None), ("reflect", (1, 2, 2, 0), None), ("replicate", (3, 1), None),
        ("replicate", (1, 1, 2, 2), None), ("circular", (2, 1), None),
        ("circular", (1, 2, 1, 1), None)]


@pytest.mark.parametrize("mode,pad,value", PADS)
def test_pad_matches_torch(mode, pad, value):
    x = randn(2, 3, 5) if len(pad) == 2 else randn(2, 3, 4, 5)
    kw = {} if value is None else {"value": value}
    tx, gx = torch.tensor(x, requires_grad=True), gcomp.tensor(x, requires_grad=True)
    t_out = torch.nn.functional.pad(tx, pad, mode=mode, **kw)
    g_out = GF.pad(gx, pad, mode=mode, **kw)
    close(g_out, t_out)
    cot = randn(*t_out.shape)
    (t_out * torch.tensor(cot)).sum().backward()
    (g_out * gcomp.tensor(cot)).sum().backward()
    close(gx.grad, tx.grad)


@pytest.mark.parametrize("num_classes", [-1, 6])
def test_one_hot_matches_torch(num_classes):
    idx = ints(2, 3, high=5)
    got = GF.one_hot(gcomp.tensor(idx), num_classes)
    want = torch.nn.functional.one_hot(torch.tensor(idx), num_classes)
    assert got.dtype == gcomp.int64
    np.testing.assert_array_equal(npy(got), want.numpy())
    with pytest.raises(gcomp.GcompError, match="smaller than num_classes"):
        GF.one_hot(gcomp.tensor([0, 7]), 6)


# -- dropout -----------------------------------------------------------------------------------
@pytest.mark.parametrize("p", [0.2, 0.5])
def test_dropout_statistics_and_gradient(p):
    x = gcomp.ones(200, 500, requires_grad=True)
    out = gcomp.nn.Dropout(p)(x)
    o = npy(out)
    kept = o != 0
    n = o.size
    assert abs((1 - kept.mean()) - p) < 5 * np.sqrt(p * (1 - p) / n)
    np.testing.assert_allclose(o[kept], 1.0 / (1.0 - p), rtol=1e-6)
    out.sum().backward()
    np.testing.assert_array_equal(npy(x.grad), o)


def test_dropout_eval_and_p0_return_the_input_and_p1_zeros():
    x = gcomp.tensor(X)
    d = gcomp.nn.Dropout(0.4).eval()
    assert d(x) is x
    assert GF.dropout(x, 0.0) is x
    assert not npy(GF.dropout(x, 1.0)).any()
    with pytest.raises(ValueError):
        gcomp.nn.Dropout(1.5)


def test_dropout_compiled_draws_the_same_numbers_as_eager():
    x = gcomp.tensor(randn(4, 50))
    drop = gcomp.nn.Dropout(0.5)
    f = gcomp.compile(lambda v: drop(v))
    gcomp.manual_seed(3)
    eager = [npy(drop(x)) for _ in range(2)]
    gcomp.manual_seed(3)
    compiled = [npy(f(x)) for _ in range(2)]
    np.testing.assert_array_equal(compiled[0], eager[0])
    np.testing.assert_array_equal(compiled[1], eager[1])
    assert (eager[0] != eager[1]).any()


@pytest.mark.parametrize("cls,shape", [("Dropout1d", (4, 6, 5)), ("Dropout2d", (4, 6, 3, 3)),
                                       ("Dropout3d", (2, 6, 2, 2, 2))])
def test_channel_dropout_zeroes_whole_channels(cls, shape):
    out = npy(getattr(gcomp.nn, cls)(0.5)(gcomp.ones(*shape)))
    per_channel = out.reshape(shape[0], shape[1], -1)
    assert (per_channel == per_channel[..., :1]).all()
    assert set(np.unique(per_channel)) <= {0.0, 2.0}
