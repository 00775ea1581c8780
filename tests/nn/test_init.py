"""nn.init against PyTorch's formulas: bounds exactly, mean and std within a few standard errors
on ~10^5 samples; exact fills; orthogonality; default initializations of the layers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from nn_parity import npy

import gcomp
import gcomp.nn as gnn

tinit = torch.nn.init
SHAPE_2D = (300, 400)
SHAPE_4D = (64, 32, 3, 3)


def _fans(shape):
    return tinit._calculate_fan_in_and_fan_out(torch.empty(shape))


def _uniform_bound_xavier(shape, gain=1.0):
    fan_in, fan_out = _fans(shape)
    return gain * math.sqrt(6.0 / (fan_in + fan_out))


def _kaiming_std(shape, a, mode, nonlinearity):
    fan_in, fan_out = _fans(shape)
    return tinit.calculate_gain(nonlinearity, a) / math.sqrt(fan_in if mode == "fan_in" else
                                                             fan_out)


# name -> (apply(init, tensor), expected distribution: ("uniform", lo, hi) or ("normal", mean,
# std) or ("trunc", mean, std, a, b)), computed from torch's formulas
def _cases():
    cases = {}
    for shape in (SHAPE_2D, SHAPE_4D):
        tag = f"{len(shape)}d"
        cases[f"uniform_{tag}"] = (lambda i, t: i.uniform_(t, -0.3, 0.7), ("uniform", -0.3, 0.7))
        cases[f"normal_{tag}"] = (lambda i, t: i.normal_(t, 0.5, 2.0), ("normal", 0.5, 2.0))
        b = _uniform_bound_xavier(shape, 1.5)
        cases[f"xavier_uniform_{tag}"] = (lambda i, t: i.xavier_uniform_(t, gain=1.5),
                                          ("uniform", -b, b))
        cases[f"xavier_normal_{tag}"] = (lambda i, t: i.xavier_normal_(t, gain=1.5),
                                         ("normal", 0.0, b / math.sqrt(3.0)))
        for a, mode, nl in [(0, "fan_in", "relu"), (math.sqrt(5), "fan_in", "leaky_relu"),
                            (0.2, "fan_out", "leaky_relu"), (0, "fan_out", "tanh")]:
            std = _kaiming_std(shape, a, mode, nl)
            key = f"{tag}_{mode}_{nl}_{a:.2f}"
            cases[f"kaiming_uniform_{key}"] = (
                lambda i, t, a=a, mode=mode, nl=nl: i.kaiming_uniform_(t, a, mode, nl),
                ("uniform", -std * math.sqrt(3), std * math.sqrt(3)))
            cases[f"kaiming_normal_{key}"] = (
                lambda i, t, a=a, mode=mode, nl=nl: i.kaiming_normal_(t, a, mode, nl),
                ("normal", 0.0, std))
    cases["trunc_normal"] = (lambda i, t: i.trunc_normal_(t, 0.2, 1.0, -1.0, 1.5),
                             ("trunc", 0.2, 1.0, -1.0, 1.5))
    return {k: v + ((SHAPE_2D if "2d" in k or k == "trunc_normal" else SHAPE_4D),)
            for k, v in cases.items()}


CASES = _cases()


def _truncnorm_moments(mean, std, a, b):
    alpha, beta = (a - mean) / std, (b - mean) / std
    pdf = lambda x: math.exp(-x * x / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    cdf = lambda x: 0.5 * (1 + math.erf(x / math.sqrt(2)))  # noqa: E731
    z = cdf(beta) - cdf(alpha)
    m = mean + std * (pdf(alpha) - pdf(beta)) / z
    var = std**2 * (1 + (alpha * pdf(alpha) - beta * pdf(beta)) / z
                    - ((pdf(alpha) - pdf(beta)) / z) ** 2)
    return m, math.sqrt(var)


@pytest.mark.parametrize("name", list(CASES))
def test_init_distribution(name):
    apply, dist, shape = CASES[name]
    t = gcomp.empty(*shape)
    assert apply(gnn.init, t) is t
    v32 = npy(t).ravel()
    v = v32.astype(np.float64)
    n = v.size
    kind = dist[0]
    if kind == "uniform":
        lo, hi = dist[1], dist[2]
        # bounds exactly, up to rounding the bound to float32 (rounding is monotone)
        assert v32.min() >= np.float32(lo) and v32.max() <= np.float32(hi)
        width = hi - lo
        assert v.min() < lo + 0.01 * width and v.max() > hi - 0.01 * width
        mean, std = (lo + hi) / 2, width / math.sqrt(12)
    elif kind == "normal":
        mean, std = dist[1], dist[2]
    else:
        _, m0, s0, a, b = dist
        assert v32.min() >= np.float32(a) and v32.max() <= np.float32(b)
        mean, std = _truncnorm_moments(m0, s0, a, b)
    assert abs(v.mean() - mean) < 5 * std / math.sqrt(n)
    assert abs(v.std() / std - 1) < 0.02


def test_init_leaves_parameters_leaf_and_requiring_grad():
    p = gnn.Parameter(gcomp.empty(30, 20))
    gnn.init.kaiming_uniform_(p)
    gnn.init.zeros_(p)
    assert p.requires_grad and p.grad_fn is None
    assert not npy(p).any()


@pytest.mark.parametrize("shape", [(3,), (4, 5), (6, 3, 2), (8, 4, 3, 5)])
def test_constant_fills_match_torch(shape):
    for fn, args in [("constant_", (0.25,)), ("ones_", ()), ("zeros_", ())]:
        g, t = gcomp.empty(*shape), torch.empty(shape)
        getattr(gnn.init, fn)(g, *args)
        getattr(tinit, fn)(t, *args)
        np.testing.assert_array_equal(npy(g), t.numpy())
    if len(shape) == 2:
        g, t = gnn.init.eye_(gcomp.empty(*shape)), tinit.eye_(torch.empty(shape))
        np.testing.assert_array_equal(npy(g), t.numpy())
    if len(shape) >= 3:
        for groups in (1, 2):
            g = gnn.init.dirac_(gcomp.empty(*shape), groups)
            t = tinit.dirac_(torch.empty(shape), groups)
            np.testing.assert_array_equal(npy(g), t.numpy())


@pytest.mark.parametrize("shape", [(4, 5), (20, 6, 3), (7, 7)])
def test_fans_and_gain_match_torch(shape):
    assert gnn.init._calculate_fan_in_and_fan_out(gcomp.empty(*shape)) == _fans(shape)
    for nl, param in [("linear", None), ("conv2d", None), ("sigmoid", None), ("tanh", None),
                      ("relu", None), ("leaky_relu", None), ("leaky_relu", 0.3), ("selu", None)]:
        assert gnn.init.calculate_gain(nl, param) == pytest.approx(tinit.calculate_gain(nl, param))
    with pytest.raises(ValueError):
        gnn.init.calculate_gain("swish")
    with pytest.raises(ValueError):
        gnn.init._calculate_fan_in_and_fan_out(gcomp.empty(5))


@pytest.mark.parametrize("shape,gain", [((6, 10), 1.0), ((10, 6), 2.0), ((4, 3, 2, 2), 1.0)])
def test_orthogonal(shape, gain):
    t = gnn.init.orthogonal_(gcomp.empty(*shape), gain)
    m = npy(t).reshape(shape[0], -1).astype(np.float64)
    rows, cols = m.shape
    gram = m @ m.T if rows < cols else m.T @ m
    np.testing.assert_allclose(gram, gain**2 * np.eye(min(rows, cols)), atol=1e-5)


LAYER_INITS = {
    # name -> (make(lib), {param: ("uniform", bound) | ("normal", std) | ("const", value)})
    "linear": (lambda lib: lib.nn.Linear(500, 300),
               {"weight": ("uniform", 500**-0.5), "bias": ("uniform", 500**-0.5)}),
    "bilinear": (lambda lib: lib.nn.Bilinear(40, 30, 60),
                 {"weight": ("uniform", 40**-0.5), "bias": ("uniform", 40**-0.5)}),
    "embedding": (lambda lib: lib.nn.Embedding(1000, 100), {"weight": ("normal", 1.0)}),
    "prelu": (lambda lib: lib.nn.PReLU(3, init=0.1), {"weight": ("const", 0.1)}),
}


@pytest.mark.parametrize("name", list(LAYER_INITS))
def test_default_layer_init_matches_torch(name):
    make, expect = LAYER_INITS[name]
    gm, tm = make(gcomp), make(torch)
    t_params = dict(tm.named_parameters())
    assert [(k, tuple(p.shape)) for k, p in gm.named_parameters()] == \
        [(k, tuple(p.shape)) for k, p in t_params.items()]
    for k, p in gm.named_parameters():
        v32 = npy(p).ravel()
        v = v32.astype(np.float64)
        kind, val = expect[k]
        if kind == "const":
            np.testing.assert_allclose(v, val, rtol=1e-6)
            continue
        std = val / math.sqrt(3) if kind == "uniform" else val
        if kind == "uniform":
            assert np.abs(v32).max() <= np.float32(val)
        tol = max(0.02, 5 / math.sqrt(2 * v.size))  # std's standard error is std/sqrt(2n)
        assert abs(v.std() / std - 1) < tol, k
        assert abs(v.std() / t_params[k].detach().double().std().item() - 1) < 2 * tol, k


def test_embedding_padding_row_starts_at_zero():
    e = gnn.Embedding(10, 4, padding_idx=3)
    assert not npy(e.weight)[3].any() and npy(e.weight)[4].any()


def test_manual_seed_makes_init_reproducible():
    gcomp.manual_seed(7)
    a = npy(gnn.Linear(5, 4).weight)
    gcomp.manual_seed(7)
    b = npy(gnn.Linear(5, 4).weight)
    np.testing.assert_array_equal(a, b)
