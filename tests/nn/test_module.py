"""Module behaviour against torch on the same nested model: state_dict names and shapes,
load_state_dict errors, iteration orders, modes, zero_grad, apply, dtype conversion, reprs,
container editing, and gradient clipping utilities."""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np
import pytest
import torch
from nn_parity import close, load_from_torch, npy, randn

import gcomp
import gcomp.nn as gnn


def build(lib):
    """One model written against the PyTorch API, nesting every container."""
    nn = lib.nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(
                nn.Linear(4, 8), nn.ReLU(),
                nn.Sequential(OrderedDict(fc=nn.Linear(8, 8), act=nn.Tanh(), drop=nn.Dropout(0.1))))
            self.heads = nn.ModuleList([nn.Linear(8, 3), nn.Linear(8, 3, bias=False)])
            self.extra = nn.ModuleDict({"emb": nn.Embedding(5, 8, padding_idx=0),
                                        "out": nn.Bilinear(8, 8, 3)})
            self.loss = nn.CrossEntropyLoss(weight=lib.ones(3))
            self.shared = self.heads[0]  # a module registered twice: counted once

        def forward(self, x, idx):
            h = self.features(x) + self.extra["emb"](idx)
            out = self.heads[0](h) + self.heads[1](h) + self.extra["out"](h, h)
            return out

    return Net()


def _pair():
    torch.manual_seed(0)
    tm, gm = build(torch), build(gcomp)
    load_from_torch(gm, tm)
    return tm, gm


def _shapes(sd):
    return [(k, tuple(v.shape)) for k, v in sd.items()]


def test_state_dict_names_and_shapes_match_torch():
    tm, gm = _pair()
    assert _shapes(gm.state_dict()) == _shapes(tm.state_dict())
    for k, v in gm.state_dict().items():
        close(v, tm.state_dict()[k])


def test_iteration_orders_match_torch():
    tm, gm = _pair()

    def names(it):
        return [(n, type(m).__name__) for n, m in it]

    assert names(gm.named_modules()) == names(tm.named_modules())
    assert names(gm.named_children()) == names(tm.named_children())
    assert [n for n, _ in gm.named_parameters()] == [n for n, _ in tm.named_parameters()]
    assert [n for n, _ in gm.named_buffers()] == [n for n, _ in tm.named_buffers()]
    assert len(list(gm.parameters())) == len(list(tm.parameters()))
    assert [n for n, _ in gm.features.named_parameters(prefix="f")] == \
        [n for n, _ in tm.features.named_parameters(prefix="f")]


def test_forward_and_backward_of_nested_model_match_torch():
    tm, gm = _pair()
    tm.eval()
    gm.eval()  # dropout off: the masks come from different generators
    x, idx = randn(2, 4), np.array([0, 3])
    t_out, g_out = tm(torch.tensor(x), torch.tensor(idx)), gm(gcomp.tensor(x), gcomp.tensor(idx))
    close(g_out, t_out)
    t_out.sum().backward()
    g_out.sum().backward()
    t_params = dict(tm.named_parameters())
    for name, p in gm.named_parameters():
        close(p.grad, t_params[name].grad, (1e-4, 1e-5))


def _snapshot(m):
    return {k: npy(v).copy() for k, v in m.state_dict().items()}


@pytest.mark.parametrize("edit,key", [
    ("missing", "heads.1.weight"), ("unexpected", "heads.2.weight"),
    ("shape", "features.2.fc.bias")])
def test_load_state_dict_errors_name_the_key_and_change_nothing(edit, key):
    tm, gm = _pair()
    sd = {k: v.detach().numpy() + 1.0 for k, v in tm.state_dict().items()}
    if edit == "missing":
        del sd[key]
    elif edit == "unexpected":
        sd[key] = np.zeros((3, 8), np.float32)
    else:
        sd[key] = np.zeros(7, np.float32)
    before = _snapshot(gm)
    with pytest.raises(gcomp.GcompError, match=key.replace(".", r"\.")):
        gm.load_state_dict(sd)
    with pytest.raises(RuntimeError, match=key.replace(".", r"\.")):
        tm.load_state_dict({k: torch.tensor(v) for k, v in sd.items()})
    after = _snapshot(gm)
    assert before.keys() == after.keys()
    for k in before:
        np.testing.assert_array_equal(after[k], before[k])


def test_load_state_dict_non_strict_reports_like_torch():
    tm, gm = _pair()
    sd = {k: v.detach().numpy() for k, v in tm.state_dict().items()}
    del sd["features.0.bias"]
    sd["bogus.weight"] = np.zeros(2, np.float32)
    got = gm.load_state_dict(sd, strict=False)
    want = tm.load_state_dict({k: torch.tensor(v) for k, v in sd.items()}, strict=False)
    assert list(got.missing_keys) == list(want.missing_keys)
    assert list(got.unexpected_keys) == list(want.unexpected_keys)
    close(gm.features[0].weight, tm.features[0].weight)


def test_train_and_eval_propagate_like_torch():
    tm, gm = _pair()

    def modes(m):
        return [mod.training for mod in m.modules()]

    for fn in (lambda m: m.eval(), lambda m: m.features.train(), lambda m: m.train(False),
               lambda m: m.train()):
        fn(tm)
        fn(gm)
        assert modes(gm) == modes(tm)
    gm.eval()
    x = gcomp.tensor(randn(2, 4))
    np.testing.assert_array_equal(npy(gm.features(x)), npy(gm.features(x)))  # no dropout


@pytest.mark.parametrize("set_to_none", [True, False])
def test_zero_grad(set_to_none):
    _, gm = _pair()
    gm(gcomp.tensor(randn(2, 4)), gcomp.tensor([1, 2])).sum().backward()
    assert all(p.grad is not None for p in gm.parameters())
    gm.zero_grad(set_to_none=set_to_none)
    for p in gm.parameters():
        assert p.grad is None if set_to_none else not npy(p.grad).any()


def test_apply_visits_modules_in_torchs_order():
    tm, gm = _pair()
    seen_t, seen_g = [], []
    tm.apply(lambda m: seen_t.append(type(m).__name__))
    gm.apply(lambda m: seen_g.append(type(m).__name__))
    assert seen_g == seen_t

    def init(m):
        if isinstance(m, gnn.Linear):
            gnn.init.constant_(m.weight, 0.5)

    gm.apply(init)
    assert (npy(gm.heads[1].weight) == 0.5).all() and (npy(gm.features[0].weight) == 0.5).all()


def test_to_float64_converts_parameters_and_buffers_in_place():
    tm, gm = _pair()
    w = gm.features[0].weight
    assert gm.to(gcomp.float64) is gm
    assert gm.features[0].weight is w and w.dtype == gcomp.float64 and w.requires_grad
    assert all(p.dtype == gcomp.float64 for p in gm.parameters())
    assert gm.loss.weight.dtype == gcomp.float64
    tm.double()
    tm.eval()
    gm.eval()
    x, idx = randn(2, 4).astype(np.float64), np.array([0, 3])
    close(gm(gcomp.tensor(x), gcomp.tensor(idx)), tm(torch.tensor(x), torch.tensor(idx)),
          (1e-12, 1e-12))


def _repr_models(lib):
    nn = lib.nn
    return [
        nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Dropout(0.25),
                      nn.Sequential(nn.Flatten(), nn.Unflatten(1, (3, 1))), nn.Softmax(dim=1)),
        nn.ModuleList([nn.Linear(2, 2) for _ in range(3)] + [nn.GELU("tanh"), nn.Tanh(),
                                                             nn.Tanh()]),
        nn.ModuleDict({"a": nn.LeakyReLU(0.2, inplace=True), "b": nn.ELU(), "c": nn.Identity()}),
        nn.Sequential(OrderedDict(emb=nn.Embedding(10, 3, padding_idx=0), act=nn.ReLU(True),
                                  bl=nn.Bilinear(3, 3, 2, bias=False), ht=nn.Hardtanh(),
                                  r6=nn.ReLU6(), sp=nn.Softplus(beta=2.0), ls=nn.LogSoftmax(-1),
                                  pr=nn.PReLU(), th=nn.Threshold(0.1, 2.0), glu=nn.GLU())),
        nn.Sequential(nn.CrossEntropyLoss(label_smoothing=0.1), nn.MSELoss(), nn.BCELoss(),
                      nn.BCEWithLogitsLoss(), nn.NLLLoss(), nn.KLDivLoss(), nn.HuberLoss(),
                      nn.SmoothL1Loss(), nn.L1Loss(), nn.Dropout2d()),
        nn.ModuleList(),
    ]


def test_repr_matches_torch():
    for g, t in zip(_repr_models(gcomp), _repr_models(torch), strict=False):
        assert repr(g) == repr(t)


def _keys_and_types(seq):
    return [(k, type(m).__name__) for k, m in seq._modules.items()]


def test_sequential_editing_matches_torch():
    def run(lib):
        nn = lib.nn
        s = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 4), nn.Tanh())
        out = [len(s), type(s[-1]).__name__, _keys_and_types(s[1:3]), _keys_and_types(s[::2])]
        s.append(nn.Sigmoid())
        s.insert(1, nn.GELU())
        del s[2]
        out.append(_keys_and_types(s))
        popped = s.pop(0)
        s[0] = nn.SiLU()
        s.extend([nn.Identity()])
        out += [type(popped).__name__, _keys_and_types(s), _keys_and_types(s + s),
                len(s * 2), [type(m).__name__ for m in s]]
        named = nn.Sequential(OrderedDict(a=nn.ReLU(), b=nn.Tanh()))
        out += [_keys_and_types(named), _keys_and_types(named[1:])]
        return out

    assert run(gcomp) == run(torch)
    s = gnn.Sequential(gnn.ReLU())
    with pytest.raises(IndexError):
        s[3]


def test_module_list_and_dict_editing_match_torch():
    def run(lib):
        nn = lib.nn
        ml = nn.ModuleList([nn.ReLU(), nn.Tanh()])
        ml.append(nn.GELU())
        ml.extend([nn.SiLU()])
        ml += [nn.Identity()]
        ml.insert(1, nn.Sigmoid())
        del ml[0]
        ml[-1] = nn.ELU()
        out = [len(ml), _keys_and_types(ml), _keys_and_types(ml[1:3]), type(ml.pop(1)).__name__,
               _keys_and_types(ml), _keys_and_types(ml + nn.ModuleList([nn.Tanh()]))]
        md = nn.ModuleDict({"b": nn.ReLU(), "a": nn.Tanh()})
        md["c"] = nn.GELU()
        md.update([("d", nn.SiLU())])
        popped = md.pop("a")
        out += [list(md), list(md.keys()), [type(m).__name__ for m in md.values()],
                "b" in md, "a" in md, type(popped).__name__, len(md)]
        md.clear()
        out.append(len(md))
        return out

    assert run(gcomp) == run(torch)


def test_containers_register_parameters():
    ml = gnn.ModuleList([gnn.Linear(2, 2), gnn.Linear(2, 1)])
    assert [n for n, _ in ml.named_parameters()] == ["0.weight", "0.bias", "1.weight", "1.bias"]
    md = gnn.ModuleDict({"x": gnn.Linear(2, 2)})
    assert [n for n, _ in md.named_parameters()] == ["x.weight", "x.bias"]


def test_parameter_list_and_dict_match_torch():
    def run(lib):
        nn = lib.nn
        m = nn.Module()
        m.pl = nn.ParameterList([lib.zeros(2, 3), nn.Parameter(lib.ones(4))])
        m.pl.append(lib.zeros(1))
        m.pd = nn.ParameterDict({"b": lib.zeros(2), "a": lib.ones(3)})
        m.pd["c"] = lib.zeros(5)
        popped = m.pd.pop("b")
        return ([(n, tuple(p.shape)) for n, p in m.named_parameters()],
                [(k, tuple(v.shape)) for k, v in m.state_dict().items()], len(m.pl), len(m.pd),
                list(m.pd), tuple(popped.shape), repr(m.pl).replace("torch.", "gcomp."),
                all(p.requires_grad for p in m.parameters()))

    assert run(gcomp) == run(torch)


# -- nn.utils ----------------------------------------------------------------------------------
def _grad_pair(seed):
    rng = np.random.default_rng(seed)
    shapes = [(4, 3), (3,), (2, 2, 2)]
    grads = [(rng.standard_normal(s) * 3).astype(np.float32) for s in shapes]
    gp = [gnn.Parameter(gcomp.zeros(*s)) for s in shapes]
    tp = [torch.nn.Parameter(torch.zeros(s)) for s in shapes]
    for g, p, q in zip(grads, gp, tp, strict=False):
        p.grad = gcomp.tensor(g)
        q.grad = torch.tensor(g)
    return gp, tp


@pytest.mark.parametrize("max_norm", [0.5, 1000.0])
@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
def test_clip_grad_norm_matches_torch(max_norm, norm_type):
    gp, tp = _grad_pair(1)
    got = gnn.utils.clip_grad_norm_(gp, max_norm, norm_type)
    want = torch.nn.utils.clip_grad_norm_(tp, max_norm, norm_type)
    close(got, want, (1e-5, 1e-6))
    for p, q in zip(gp, tp, strict=False):
        close(p.grad, q.grad, (1e-5, 1e-6))


def test_clip_grad_norm_single_tensor_and_nonfinite_error():
    gp, tp = _grad_pair(2)
    close(gnn.utils.clip_grad_norm_(gp[0], 1.0), torch.nn.utils.clip_grad_norm_(tp[0], 1.0),
          (1e-5, 1e-6))
    gp[1].grad = gcomp.tensor([math.inf, 0.0, 0.0])
    with pytest.raises(gcomp.GcompError, match="non-finite"):
        gnn.utils.clip_grad_norm_(gp, 1.0, error_if_nonfinite=True)


def test_clip_grad_value_and_parameter_vectors_match_torch():
    gp, tp = _grad_pair(3)
    gnn.utils.clip_grad_value_(gp, 0.7)
    torch.nn.utils.clip_grad_value_(tp, 0.7)
    for p, q in zip(gp, tp, strict=False):
        close(p.grad, q.grad)
    vec = randn(4 * 3 + 3 + 8)
    gnn.utils.vector_to_parameters(gcomp.tensor(vec), gp)
    torch.nn.utils.vector_to_parameters(torch.tensor(vec), tp)
    for p, q in zip(gp, tp, strict=False):
        close(p, q)
    close(gnn.utils.parameters_to_vector(gp), torch.nn.utils.parameters_to_vector(tp))


def test_clip_grad_norm_inside_compiled_step_matches_eager():
    gcomp.manual_seed(0)
    lin = gnn.Linear(3, 2)
    x = gcomp.tensor(randn(5, 3, scale=10.0))

    def step(x):
        lin.zero_grad()
        lin(x).pow(2).sum().backward()
        return gnn.utils.clip_grad_norm_(lin.parameters(), 1.0)

    eager_norm = npy(step(x))
    eager = [npy(p.grad) for p in lin.parameters()]
    close(gcomp.compile(step)(x), eager_norm, (1e-5, 1e-6))
    for p, g in zip(lin.parameters(), eager, strict=False):
        close(p.grad, g, (1e-5, 1e-6))
