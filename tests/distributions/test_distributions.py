"""gcomp.distributions against torch.distributions (CPU, float64) as the reference: densities,
moments, cdfs and entropies on the same parameters; sample shapes, dtypes and statistics;
rsample gradients (torch's with the same noise, and float64 finite differences); KL
divergences; argument validation; and gcomp.compile of a VAE-style and an RL-style step."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.distributions as TD

import gcomp
import gcomp.distributions as GD
import gcomp.nn.functional as GF

LOC = np.array([-1.0, 0.5, 2.0])
SCALE = np.array([0.5, 1.0, 2.5])
X = np.array([[-0.3, 0.7, 1.9], [2.0, -1.5, 0.0]])  # broadcasts with batch (3,)
POSITIVE = np.array([[0.3, 1.7, 0.05], [2.0, 0.6, 4.0]])
UNIT = np.array([[0.3, 0.7, 0.05], [0.9, 0.5, 0.2]])
Q = np.array([0.1, 0.5, 0.9])  # probabilities for icdf
P3 = np.array([0.2, 0.5, 0.9])
BITS = np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
PROBS = np.array([[0.1, 0.2, 0.3, 0.4], [0.25, 0.05, 0.6, 0.1]])
INDICES = np.array([[0, 3], [2, 1], [1, 1]])  # broadcasts with batch (2,)
ONE_HOT = np.eye(4)[INDICES]
A = np.array([[1.0, 0.2, -0.3], [0.5, 1.5, 0.1], [-0.2, 0.4, 0.8]])
COV = A @ A.T + 0.5 * np.eye(3)
TRILS = np.stack([np.linalg.cholesky(COV), np.linalg.cholesky(np.diag([1.0, 2.0, 0.5]) + 0.1)])
MVN_LOC = np.array([[0.5, -1.0, 2.0], [0.0, 0.3, -0.4]])
MVN_X = np.array([[[0.2, 0.1, 1.0], [1.0, 1.0, -1.0]], [[-0.5, 0.0, 0.5], [0.0, 0.0, 0.0]]])

MOMENTS = ["mean", "variance", "stddev", "mode", "entropy"]
# name: (build(D, p) with D a distributions module and p the parameters as its tensors,
#        parameters, the value for log_prob/cdf, what to compare)
CASES = {
    "normal": (lambda D, p: D.Normal(p["loc"], p["scale"]), {"loc": LOC, "scale": SCALE}, X,
               MOMENTS + ["log_prob", "cdf", "icdf"]),
    "uniform": (lambda D, p: D.Uniform(p["low"], p["high"]),
                {"low": np.array([-1.0, 0.0, -3.0]), "high": np.array([2.5, 0.75, 2.0])},
                np.array([[-0.3, 0.7, 1.9], [2.0, 0.1, -2.5]]),
                MOMENTS + ["log_prob", "cdf", "icdf"]),
    "bernoulli_probs": (lambda D, p: D.Bernoulli(probs=p["probs"]), {"probs": P3}, BITS,
                        MOMENTS + ["log_prob"]),
    "bernoulli_logits": (lambda D, p: D.Bernoulli(logits=p["logits"]),
                         {"logits": np.array([-2.0, 0.3, 4.0])}, BITS, MOMENTS + ["log_prob"]),
    "categorical_probs": (lambda D, p: D.Categorical(probs=p["probs"]), {"probs": 3 * PROBS},
                          INDICES, MOMENTS + ["log_prob"]),
    "categorical_logits": (lambda D, p: D.Categorical(logits=p["logits"]),
                           {"logits": np.log(PROBS) + 1.5}, INDICES, MOMENTS + ["log_prob"]),
    "one_hot_categorical": (lambda D, p: D.OneHotCategorical(probs=p["probs"]),
                            {"probs": PROBS}, ONE_HOT, MOMENTS + ["log_prob"]),
    "exponential": (lambda D, p: D.Exponential(p["rate"]), {"rate": np.array([0.5, 1.0, 3.0])},
                    POSITIVE, MOMENTS + ["log_prob", "cdf", "icdf"]),
    "laplace": (lambda D, p: D.Laplace(p["loc"], p["scale"]), {"loc": LOC, "scale": SCALE}, X,
                MOMENTS + ["log_prob", "cdf", "icdf"]),
    "gamma": (lambda D, p: D.Gamma(p["concentration"], p["rate"]),
              {"concentration": np.array([0.5, 1.0, 4.0]), "rate": np.array([1.0, 2.0, 0.5])},
              POSITIVE, MOMENTS + ["log_prob"]),
    "beta": (lambda D, p: D.Beta(p["concentration1"], p["concentration0"]),
             {"concentration1": np.array([0.5, 2.0, 3.0]),
              "concentration0": np.array([0.7, 1.0, 5.0])}, UNIT, MOMENTS + ["log_prob"]),
    "mvn_covariance": (lambda D, p: D.MultivariateNormal(p["loc"], covariance_matrix=p["cov"]),
                       {"loc": MVN_LOC, "cov": COV}, MVN_X,
                       MOMENTS + ["log_prob", "covariance_matrix", "precision_matrix",
                                  "scale_tril"]),
    "mvn_precision": (lambda D, p: D.MultivariateNormal(p["loc"], precision_matrix=p["prec"]),
                      {"loc": MVN_LOC[0], "prec": np.linalg.inv(COV)}, MVN_X,
                      MOMENTS + ["log_prob", "covariance_matrix", "scale_tril"]),
    "mvn_scale_tril": (lambda D, p: D.MultivariateNormal(p["loc"], scale_tril=p["tril"]),
                       {"loc": MVN_LOC[1], "tril": TRILS}, MVN_X,
                       MOMENTS + ["log_prob", "covariance_matrix", "precision_matrix"]),
    "independent": (lambda D, p: D.Independent(D.Normal(p["loc"], p["scale"]), 1),
                    {"loc": MVN_LOC, "scale": np.abs(MVN_LOC) + 0.5}, MVN_X,
                    MOMENTS + ["log_prob"]),
}


def build(T, case, requires_grad=False):
    """The case's distribution in T (torch or gcomp), and its parameters as T's leaves."""
    make, params, _, _ = CASES[case]
    D = TD if T is torch else GD
    p = {k: T.tensor(v, requires_grad=requires_grad) for k, v in params.items()}
    return make(D, p), p


def value_of(T, case):
    v = CASES[case][2]
    return T.tensor(v.astype(np.int64) if case.startswith("categorical") else v)


def close(g, t, rtol=1e-10, atol=1e-12):
    """gcomp tensor ``g`` equals torch tensor ``t`` (shape, and values nan where t's is)."""
    gn, tn = np.asarray(g.detach()), t.detach().numpy()
    assert gn.shape == tn.shape, (gn.shape, tn.shape)
    np.testing.assert_allclose(gn, tn, rtol=rtol, atol=atol)


@pytest.mark.parametrize("case", sorted(CASES))
def test_methods_match_torch(case):
    g, _ = build(gcomp, case)
    t, _ = build(torch, case)
    assert g.batch_shape == tuple(t.batch_shape) and g.event_shape == tuple(t.event_shape)
    for what in CASES[case][3]:
        if what in ("log_prob", "cdf"):
            got, want = getattr(g, what)(value_of(gcomp, case)), getattr(t, what)(
                value_of(torch, case))
        elif what == "icdf":
            got, want = g.icdf(gcomp.tensor(Q)), t.icdf(torch.tensor(Q))
        else:  # a property, or entropy()
            got, want = getattr(g, what), getattr(t, what)
            if what == "entropy":
                got, want = got(), want()
        close(got, want, rtol=1e-9)


@pytest.mark.parametrize("case", sorted(CASES))
def test_sample_shapes_and_dtypes_match_torch(case):
    gcomp.manual_seed(0)
    g, _ = build(gcomp, case)
    t, _ = build(torch, case)
    for shape in [(), (2, 2)]:
        gs, ts = g.sample(shape), t.sample(shape)
        assert gs.shape == tuple(ts.shape) and str(gs.dtype)[6:] == str(ts.dtype)[6:]
        assert not gs.requires_grad
    expanded = g.expand((2, 2) + tuple(g.batch_shape))
    assert expanded.batch_shape == (2, 2) + tuple(g.batch_shape)
    assert expanded.event_shape == g.event_shape and expanded.sample().shape == gs.shape


@pytest.mark.parametrize("case", ["categorical_logits", "mvn_covariance", "independent"])
def test_expanded_log_prob_broadcasts_the_original(case):
    """log_prob of the distribution expanded by a dimension of 2, at a value of shape
    S + 1 + batch + event, is the original's at S + batch + event, repeated."""
    g, _ = build(gcomp, case)
    expanded = g.expand((2,) + tuple(g.batch_shape))
    value = value_of(gcomp, case)
    s = value.ndim - len(g.batch_shape) - len(g.event_shape)
    lp = np.expand_dims(np.asarray(g.log_prob(value)), s)
    want = np.broadcast_to(lp, lp.shape[:s] + (2,) + lp.shape[s + 1:]).copy()
    close(expanded.log_prob(value.unsqueeze(s)), torch.tensor(want))


def test_repr_matches_torch():
    for case in sorted(CASES):
        g, t = build(gcomp, case)[0], build(torch, case)[0]
        if case not in ("one_hot_categorical", "beta"):  # torch prints only their names
            assert repr(g) == repr(t).replace("torch.Size", "gcomp.Size")
    assert repr(GD.Normal(0.0, 1.0)) == repr(TD.Normal(0.0, 1.0)) == "Normal(loc: 0.0, scale: 1.0)"
    assert repr(GD.OneHotCategorical(gcomp.ones(3))) == "OneHotCategorical(probs: gcomp.Size([3]))"
    assert repr(GD.Beta(1.0, 2.0)) == "Beta(concentration1: 1.0, concentration0: 2.0)"


def _features(case, x, dist):
    """Features of the samples ``x`` [n, ...] and their exact means, from torch's moments:
    the samples and their squared deviations (one-hot indicators for categorical cases, all
    products of deviations for a MultivariateNormal)."""
    n = x.shape[0]
    if case.startswith("categorical"):
        k = dist.probs.shape[-1]
        return np.eye(k)[x].reshape(n, -1), dist.probs.numpy().reshape(-1)
    mean, var = dist.mean.numpy(), dist.variance.numpy()
    dev = x - mean
    if case.startswith("mvn"):
        cov = dist.covariance_matrix.numpy()
        prods = dev[..., :, None] * dev[..., None, :]
        return (np.concatenate([x.reshape(n, -1), prods.reshape(n, -1)], 1),
                np.concatenate([np.broadcast_to(mean, x.shape[1:]).reshape(-1),
                                np.broadcast_to(cov, prods.shape[1:]).reshape(-1)]))
    return (np.concatenate([x.reshape(n, -1), (dev ** 2).reshape(n, -1)], 1),
            np.concatenate([np.broadcast_to(mean, x.shape[1:]).reshape(-1),
                            np.broadcast_to(var, x.shape[1:]).reshape(-1)]))


STATISTICS = ["normal", "uniform", "bernoulli_logits", "categorical_probs", "exponential",
              "laplace", "gamma", "beta", "mvn_scale_tril", "independent"]


@pytest.mark.parametrize("case", STATISTICS)
def test_sample_mean_and_variance_within_five_standard_errors(case):
    n = 20000
    gcomp.manual_seed(1234)
    g, _ = build(gcomp, case)
    t, _ = build(torch, case)
    x = np.asarray(g.sample((n,)))
    assert x.shape == (n,) + tuple(t.batch_shape) + tuple(t.event_shape)
    feats, want = _features(case, x, t)
    err = np.abs(feats.mean(0) - want)
    se = feats.std(0) / np.sqrt(n)
    assert np.all(err < 5 * se + 1e-12), (err / se).max()


def test_gamma_sampler_matches_moments_on_both_branches():
    """Below and above concentration 1 (the boosted and the direct Marsaglia-Tsang draw): the
    mean, variance and mean log (whose exact value is digamma(a) - log(rate))."""
    n = 20000
    gcomp.manual_seed(7)
    a = np.array([0.1, 0.7, 9.0])
    x = np.asarray(GD.Gamma(gcomp.tensor(a), 2.0).sample((n,)))  # shapes as the gamma case's
    assert x.dtype == np.float64 and (x > 0).all()
    mean, log_mean = a / 2, torch.digamma(torch.tensor(a)).numpy() - np.log(2.0)
    feats = np.concatenate([x, (x - mean) ** 2, np.log(x)], 1)
    err = np.abs(feats.mean(0) - np.concatenate([mean, a / 4, log_mean]))
    assert np.all(err < 5 * feats.std(0) / np.sqrt(n)), err


def test_sampling_follows_the_global_generator():
    d = GD.Normal(gcomp.zeros(3), gcomp.ones(3))
    gcomp.manual_seed(5)
    a, b = np.asarray(d.sample((2,))), np.asarray(d.rsample())
    gcomp.manual_seed(5)
    np.testing.assert_array_equal(np.asarray(d.sample((2,))), a)
    np.testing.assert_array_equal(np.asarray(d.rsample().detach()), b)
    assert not np.array_equal(np.asarray(d.sample()), b)


def _loss(T, x):
    return (x.pow(3) * T.tensor([1.0, -0.5, 2.0], dtype=x.dtype)).sum()


# rsample's noise recovered from gcomp's sample, to give torch's rsample the same noise
NOISE = {"normal": lambda x, p: (x - p["loc"]) / p["scale"],
         "mvn_scale_tril": lambda x, p: np.linalg.solve(p["tril"], (x - p["loc"])[..., None])[
             ..., 0]}


@pytest.mark.parametrize("case", sorted(NOISE))
def test_rsample_gradients_match_torch_given_the_same_noise(case, monkeypatch):
    gcomp.manual_seed(3)
    g, gp = build(gcomp, case, requires_grad=True)
    x = g.rsample((4,))
    _loss(gcomp, x).backward()
    params = {k: np.asarray(v.detach()) for k, v in gp.items()}
    eps = torch.tensor(NOISE[case](np.asarray(x.detach()), params))
    module = TD.normal if case == "normal" else TD.multivariate_normal
    monkeypatch.setattr(module, "_standard_normal", lambda shape, dtype, device: eps)
    t, tp = build(torch, case, requires_grad=True)
    y = t.rsample((4,))
    _loss(torch, y).backward()
    close(x, y)
    for k in gp:
        close(gp[k].grad, tp[k].grad, rtol=1e-9)


@pytest.mark.parametrize("case", ["normal", "uniform", "exponential", "laplace",
                                  "mvn_covariance", "independent"])
def test_rsample_gradients_match_finite_differences(case):
    """Directional derivatives of loss(rsample) along random directions of all parameters at
    once, against central differences in float64, the noise held fixed by reseeding before
    each draw (a symmetric direction for a covariance matrix)."""
    def f(params):
        gcomp.manual_seed(11)
        p = {k: gcomp.tensor(v) for k, v in params.items()}
        return float(_loss(gcomp, CASES[case][0](GD, p).rsample((4,))))

    _, params, _, _ = CASES[case]
    p = {k: gcomp.tensor(v, requires_grad=True) for k, v in params.items()}
    gcomp.manual_seed(11)
    _loss(gcomp, CASES[case][0](GD, p).rsample((4,))).backward()
    rng = np.random.default_rng(0)
    h = 1e-6
    for _ in range(2):
        direction = {k: rng.standard_normal(v.shape) for k, v in params.items()}
        if "cov" in direction:
            direction["cov"] = direction["cov"] + direction["cov"].T
        fd = (f({k: v + h * direction[k] for k, v in params.items()}) -
              f({k: v - h * direction[k] for k, v in params.items()})) / (2 * h)
        grad = sum(float((np.asarray(p[k].grad) * direction[k]).sum()) for k in params)
        np.testing.assert_allclose(grad, fd, rtol=1e-6)


def test_sample_is_detached_and_rsample_is_not():
    loc = gcomp.tensor(LOC, requires_grad=True)
    d = GD.Normal(loc, gcomp.tensor(SCALE))
    assert not d.sample().requires_grad and d.rsample().requires_grad
    assert GD.Normal.has_rsample and not GD.Categorical.has_rsample


@pytest.mark.parametrize("dist", [GD.Gamma(2.0, 1.0), GD.Beta(2.0, 3.0)])
def test_gamma_and_beta_rsample_raise_and_say_what_to_use(dist):
    with pytest.raises(NotImplementedError, match="Use sample()") as info:
        dist.rsample()
    assert isinstance(info.value, gcomp.GcompError) and not dist.has_rsample
    if isinstance(dist, GD.Gamma):
        with pytest.raises(NotImplementedError, match="incomplete gamma"):
            dist.cdf(gcomp.tensor(1.0))


# (p, q) pairs as build(D, T) -> (p, q)
KL_PAIRS = {
    "normal": lambda D, T: (D.Normal(T.tensor(LOC), T.tensor(SCALE)),
                            D.Normal(T.tensor(X), T.tensor(SCALE[::-1].copy()))),
    "categorical": lambda D, T: (D.Categorical(probs=T.tensor(PROBS)),
                                 D.Categorical(logits=T.tensor(PROBS[::-1].copy()))),
    "one_hot_categorical": lambda D, T: (D.OneHotCategorical(probs=T.tensor(PROBS)),
                                         D.OneHotCategorical(T.tensor(PROBS[::-1].copy()))),
    "bernoulli": lambda D, T: (D.Bernoulli(probs=T.tensor(UNIT)),
                               D.Bernoulli(logits=T.tensor(X))),
    "mvn": lambda D, T: (D.MultivariateNormal(T.tensor(MVN_LOC), covariance_matrix=T.tensor(COV)),
                         D.MultivariateNormal(T.tensor(MVN_LOC[::-1].copy()),
                                              scale_tril=T.tensor(TRILS))),
    "independent": lambda D, T: (D.Independent(D.Normal(T.tensor(X), T.tensor(POSITIVE)), 1),
                                 D.Independent(D.Normal(T.tensor(LOC), T.tensor(SCALE)), 1)),
    "exponential": lambda D, T: (D.Exponential(T.tensor(SCALE)), D.Exponential(T.tensor(P3))),
    "laplace": lambda D, T: (D.Laplace(T.tensor(LOC), T.tensor(SCALE)),
                             D.Laplace(T.tensor(X), T.tensor(P3))),
    "uniform": lambda D, T: (D.Uniform(T.tensor([0.0, 0.0]), T.tensor([1.0, 1.0])),
                             D.Uniform(T.tensor([-1.0, 0.5]), T.tensor([2.0, 3.0]))),
    "gamma": lambda D, T: (D.Gamma(T.tensor(SCALE), T.tensor(P3)),
                           D.Gamma(T.tensor(P3), T.tensor(SCALE))),
    "beta": lambda D, T: (D.Beta(T.tensor(SCALE), T.tensor(P3)),
                          D.Beta(T.tensor(P3), T.tensor(SCALE))),
}


@pytest.mark.parametrize("pair", sorted(KL_PAIRS))
def test_kl_divergence_matches_torch(pair):
    close(GD.kl_divergence(*KL_PAIRS[pair](GD, gcomp)),
          TD.kl_divergence(*KL_PAIRS[pair](TD, torch)), rtol=1e-9)


def test_kl_gradients_match_torch():
    grads = {}
    for T, D in ((gcomp, GD), (torch, TD)):
        loc, scale = T.tensor(LOC, requires_grad=True), T.tensor(SCALE, requires_grad=True)
        logits = T.tensor(np.log(PROBS), requires_grad=True)
        kl = (D.kl_divergence(D.Normal(loc, scale), D.Normal(0.0, 1.0)).sum() +
              D.kl_divergence(D.Categorical(logits=logits), D.Categorical(T.tensor(PROBS[::-1]
                                                                          .copy()))).sum())
        kl.backward()
        grads[T] = (loc.grad, scale.grad, logits.grad)
    for g, t in zip(grads[gcomp], grads[torch]):
        close(g, t, rtol=1e-9)


def test_kl_edge_cases_are_inf_and_zero_as_in_torch():
    """Probabilities of 0 and 1 and disjoint supports (shapes as KL_PAIRS', which compiled the
    ops already)."""
    p = np.array([[0.0, 0.5, 1.0], [0.3, 1.0, 0.0]])
    q = np.array([[0.5, 0.0, 1.0], [1.0, 0.2, 0.0]])
    cp = np.array([[0.0, 0.5, 0.5, 0.0], [0.25, 0.25, 0.25, 0.25]])
    for make in (lambda D, T: (D.Bernoulli(T.tensor(p)), D.Bernoulli(T.tensor(q))),
                 lambda D, T: (D.Categorical(T.tensor(cp)),
                               D.Categorical(T.tensor(cp[::-1].copy()))),
                 lambda D, T: (D.Uniform(T.tensor([0.0, -1.0]), T.tensor([1.0, 0.0])),
                               D.Uniform(T.tensor([0.5, -2.0]), T.tensor([2.0, 1.0])))):
        close(GD.kl_divergence(*make(GD, gcomp)), TD.kl_divergence(*make(TD, torch)))


def test_register_kl_dispatches_to_the_most_specific_pair():
    class MyNormal(GD.Normal):
        pass

    p, q = MyNormal(0.0, 1.0), GD.Normal(1.0, 2.0)
    base = float(GD.kl_divergence(p, q))
    GD.register_kl(MyNormal, GD.Normal)(lambda p, q: gcomp.tensor(-1.0))
    try:
        assert float(GD.kl_divergence(p, q)) == -1.0
        assert float(GD.kl_divergence(q, p)) != -1.0  # (Normal, MyNormal): the Normal pair
    finally:
        del GD.kl._KL_REGISTRY[MyNormal, GD.Normal]
        GD.kl._KL_MEMOIZE.clear()
    assert float(GD.kl_divergence(p, q)) == base
    with pytest.raises(NotImplementedError, match="register_kl") as info:
        GD.kl_divergence(GD.Normal(0.0, 1.0), GD.Laplace(0.0, 1.0))
    assert isinstance(info.value, gcomp.GcompError)


INVALID = {
    "negative scale": lambda: GD.Normal(gcomp.tensor(LOC), -gcomp.tensor(SCALE)),
    "probs above 1": lambda: GD.Bernoulli(probs=gcomp.tensor([0.5, 1.5])),
    "probs and logits": lambda: GD.Bernoulli(probs=0.5, logits=0.0),
    "neither probs nor logits": lambda: GD.Categorical(),
    "negative category probs": lambda: GD.Categorical(probs=gcomp.tensor([0.5, -0.1, 0.6])),
    "scalar category probs": lambda: GD.Categorical(probs=gcomp.tensor(1.0)),
    "low above high": lambda: GD.Uniform(gcomp.tensor([0.0, 2.0]), gcomp.tensor([1.0, 1.0])),
    "zero rate": lambda: GD.Exponential(gcomp.tensor([1.0, 0.0])),
    "negative concentration": lambda: GD.Beta(-1.0, 1.0),
    "covariance not positive definite": lambda: GD.MultivariateNormal(
        gcomp.zeros(2), gcomp.tensor([[1.0, 2.0], [2.0, 1.0]])),
    "scale_tril not lower triangular": lambda: GD.MultivariateNormal(
        gcomp.zeros(2), scale_tril=gcomp.tensor([[1.0, 0.5], [0.0, 1.0]])),
    "two covariances": lambda: GD.MultivariateNormal(gcomp.zeros(2), gcomp.eye(2),
                                                     scale_tril=gcomp.eye(2)),
    "too many reinterpreted dims": lambda: GD.Independent(GD.Normal(gcomp.zeros(2), 1.0), 2),
    "value outside the support": lambda: GD.Bernoulli(gcomp.tensor(P3)).log_prob(
        gcomp.tensor([0.0, 0.5, 1.0])),
    "category out of range": lambda: GD.Categorical(gcomp.tensor(PROBS)).log_prob(
        gcomp.tensor([0, 4])),
    "negative exponential value": lambda: GD.Exponential(1.0).log_prob(gcomp.tensor(-1.0)),
    "value shape": lambda: GD.Normal(gcomp.tensor(LOC), 1.0).log_prob(gcomp.zeros(2)),
    "event shape": lambda: GD.MultivariateNormal(gcomp.zeros(3), gcomp.eye(3)).log_prob(
        gcomp.zeros(2)),
}


@pytest.mark.parametrize("what", sorted(INVALID))
def test_invalid_arguments_raise_a_value_error_naming_the_line(what):
    with pytest.raises(ValueError) as info:
        INVALID[what]()
    assert isinstance(info.value, gcomp.GcompError)
    assert str(info.value).startswith(__file__), str(info.value)


def test_validation_can_be_turned_off():
    d = GD.Normal(gcomp.tensor(LOC), -gcomp.tensor(SCALE), validate_args=False)
    assert np.isnan(np.asarray(d.log_prob(gcomp.tensor(X)))).all()
    close(GD.Bernoulli(gcomp.tensor(P3), validate_args=False).log_prob(gcomp.tensor(0.5)),
          TD.Bernoulli(torch.tensor(P3), validate_args=False).log_prob(torch.tensor(0.5).double()))
    GD.Distribution.set_default_validate_args(False)
    try:
        GD.Exponential(gcomp.tensor([-1.0]))
    finally:
        GD.Distribution.set_default_validate_args(True)
    with pytest.raises(ValueError):
        GD.Exponential(gcomp.tensor([-1.0]))


@pytest.mark.parametrize("case", ["bernoulli_probs", "categorical_logits",
                                  "one_hot_categorical"])
def test_enumerate_support_matches_torch(case):
    g, _ = build(gcomp, case)
    t, _ = build(torch, case)
    for expand in (True, False):
        close(g.enumerate_support(expand), t.enumerate_support(expand))


def _vae_step(T, D, loc, raw_scale):
    """A VAE-style loss: a reparameterized draw, its log density and a KL to the prior."""
    q = D.Independent(D.Normal(loc, GF.softplus(raw_scale) if T is gcomp else
                               torch.nn.functional.softplus(raw_scale)), 1)
    z = q.rsample((4,))
    prior = D.Independent(D.Normal(T.zeros_like(loc), T.ones_like(loc)), 1)
    loss = (z ** 2).sum() - q.log_prob(z).sum() + D.kl_divergence(q, prior).sum()
    loss.backward()
    return loss.detach()


def test_compiled_vae_step_matches_eager_values_gradients_and_draws():
    loc, raw = gcomp.tensor(MVN_LOC, requires_grad=True), gcomp.tensor(X, requires_grad=True)

    def step():
        loc.grad = raw.grad = None
        return _vae_step(gcomp, GD, loc, raw), loc.grad, raw.grad

    compiled = gcomp.compile(step)
    gcomp.manual_seed(21)
    eager = [[np.asarray(v) for v in step()] for _ in range(2)]
    gcomp.manual_seed(21)
    for want in eager:  # the second call draws new noise, as the second eager step did
        for got, w in zip(compiled(), want):
            np.testing.assert_allclose(np.asarray(got), w, rtol=1e-10)


def test_compiled_policy_gradient_step_matches_eager():
    """An RL-style loss: actions sampled from a Categorical policy, -log_prob * advantage."""
    w = gcomp.tensor(A, requires_grad=True)
    obs = gcomp.tensor(MVN_X.reshape(4, 3))
    advantage = gcomp.tensor([1.0, -0.5, 2.0, 0.3])

    def step():
        w.grad = None
        policy = GD.Categorical(logits=obs @ w)
        action = policy.sample()
        loss = -(policy.log_prob(action) * advantage).sum() - 0.01 * policy.entropy().sum()
        loss.backward()
        return action, loss.detach(), w.grad

    gcomp.manual_seed(4)
    want = [np.asarray(v) for v in step()]
    gcomp.manual_seed(4)
    for got, v in zip(gcomp.compile(step)(), want):
        np.testing.assert_allclose(np.asarray(got), v, rtol=1e-10)
