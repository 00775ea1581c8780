"""Weight reparametrizations (torch.nn.utils.parametrize, parametrizations, and the legacy
weight_norm / spectral_norm) against torch, from the same initial weights: forward outputs,
gradients with respect to the originals, state_dict keys and values, loading torch's state_dict,
removal, spectral_norm's power iteration in train and eval mode, caching; a compiled training
step against the eager one; the errors."""

import copy
import pickle
import warnings

import numpy as np
import pytest
import torch
import torch.nn.utils.parametrizations as TPZ
import torch.nn.utils.parametrize as TP

import gcomp
import gcomp.nn as nn
import gcomp.nn.utils as U
import gcomp.nn.utils.parametrizations as PZ
import gcomp.nn.utils.parametrize as P

pytestmark = pytest.mark.filterwarnings("ignore:`torch.nn.utils.weight_norm` is deprecated")


def close(g, t, tol=1e-5):
    np.testing.assert_allclose(np.asarray(g.detach()), t.detach().numpy(), rtol=tol, atol=tol)


def gclose(a, b, tol=1e-5):
    np.testing.assert_allclose(np.asarray(a.detach()), np.asarray(b.detach()), rtol=tol, atol=tol)


def g_(t):
    return gcomp.tensor(t.detach().numpy())


def same_state(gm, tm, tol=1e-6):
    gs, ts = gm.state_dict(), tm.state_dict()
    assert list(gs) == list(ts)
    for k in ts:
        close(gs[k], ts[k], tol)


def linear_pair(cls=("Linear", 3, 4), **kw):
    """A torch module and the gcomp module of the same class holding its weights."""
    name, *args = cls
    tm = getattr(torch.nn, name)(*args, **kw)
    gm = getattr(nn, name)(*args, **kw)
    gm.load_state_dict(tm.state_dict())
    return gm, tm


X = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
X_CONV = np.random.default_rng(1).standard_normal((1, 2, 5)).astype(np.float32)
MODULES = {"linear": (("Linear", 3, 4), X), "conv1d": (("Conv1d", 2, 3, 2), X_CONV),
           "convT1d": (("ConvTranspose1d", 2, 3, 2), X_CONV)}


def forward_backward(gm, tm, x):
    yt = tm(torch.tensor(x))
    yg = gm(gcomp.tensor(x))
    close(yg, yt)
    (yt * yt).sum().backward()
    (yg * yg).sum().backward()


def same_grads(gm, tm, tol=1e-5):
    gp, tp = dict(gm.named_parameters()), dict(tm.named_parameters())
    assert list(gp) == list(tp)
    for k, p in tp.items():
        close(gp[k].grad, p.grad, tol)


# -- parametrizations.weight_norm --------------------------------------------------------------

@pytest.mark.parametrize("module,dim", [("linear", 0), ("linear", 1), ("linear", None),
                                        ("conv1d", 0), ("conv1d", -2)])
def test_weight_norm_matches_torch(module, dim):
    spec, x = MODULES[module]
    gm, tm = linear_pair(spec)
    TPZ.weight_norm(tm, dim=dim)
    PZ.weight_norm(gm, dim=dim)
    assert type(gm).__name__ == type(tm).__name__ == f"Parametrized{spec[0]}"
    assert P.is_parametrized(gm) and P.is_parametrized(gm, "weight")
    assert not P.is_parametrized(gm, "bias")
    assert P.type_before_parametrizations(gm) is getattr(nn, spec[0])
    same_state(gm, tm)  # bias, parametrizations.weight.original0 (g), original1 (v)
    close(gm.weight, tm.weight)
    forward_backward(gm, tm, x)
    same_grads(gm, tm)
    assert repr(gm) == repr(tm)


def test_weight_norm_loads_torch_state_dicts_new_and_legacy():
    gm, tm = linear_pair()
    TPZ.weight_norm(tm)
    PZ.weight_norm(gm)
    with torch.no_grad():
        tm.parametrizations.weight.original0.mul_(2.0)
        tm.bias.add_(1.0)
    assert str(gm.load_state_dict(tm.state_dict())) == "<All keys matched successfully>"
    same_state(gm, tm)
    close(gm.weight, tm.weight)
    # a state_dict of the legacy weight_norm (weight_g, weight_v) loads into the new one, as torch
    legacy = torch.nn.utils.weight_norm(torch.nn.Linear(3, 4))
    assert {"weight_g", "weight_v"} <= set(legacy.state_dict())
    tm.load_state_dict(legacy.state_dict())
    gm.load_state_dict(legacy.state_dict())
    same_state(gm, tm)
    close(gm(g_(torch.tensor(X))), tm(torch.tensor(X)))
    # inside a container: the hook gets the submodule's prefix
    seq_t, seq_g = torch.nn.Sequential(tm), nn.Sequential(gm)
    seq_legacy = torch.nn.Sequential(legacy)
    seq_g.load_state_dict(seq_legacy.state_dict())
    seq_t.load_state_dict(seq_legacy.state_dict())
    same_state(seq_g, seq_t)


# -- parametrizations.spectral_norm ------------------------------------------------------------

@pytest.mark.parametrize("module,n_power_iterations", [("linear", 1), ("linear", 2),
                                                       ("conv1d", 1), ("convT1d", 2)])
def test_spectral_norm_power_iteration_matches_torch(module, n_power_iterations):
    spec, x = MODULES[module]
    gm, tm = linear_pair(spec)
    TPZ.spectral_norm(tm, n_power_iterations=n_power_iterations)
    PZ.spectral_norm(gm, n_power_iterations=n_power_iterations)
    assert list(gm.state_dict()) == list(tm.state_dict())
    assert tuple(gm.parametrizations.weight[0]._u.shape) == \
        tuple(tm.parametrizations.weight[0]._u.shape)
    gm.load_state_dict(tm.state_dict())  # torch's random starting vectors
    same_state(gm, tm)
    tsn, gsn = tm.parametrizations.weight[0], gm.parametrizations.weight[0]
    for _ in range(3):  # each training-mode read advances u and v
        close(gm.weight, tm.weight)
        close(gsn._u, tsn._u)
        close(gsn._v, tsn._v)
    forward_backward(gm, tm, x)
    same_grads(gm, tm)
    same_state(gm, tm)
    u_before = np.asarray(gsn._u).copy()
    tm.eval()
    gm.eval()
    assert not gsn.training
    for _ in range(2):
        close(gm.weight, tm.weight)
    np.testing.assert_array_equal(np.asarray(gsn._u), u_before)  # eval mode: no update
    same_state(gm, tm)


@pytest.mark.parametrize("legacy", [False, True], ids=["parametrizations", "legacy"])
def test_spectral_norm_backward_through_two_forwards(legacy):
    """The GAN pattern D(real) - D(fake): the second forward's in-place update of u and v does
    not change what the first one's gradient uses."""
    gm, tm = linear_pair()
    (torch.nn.utils.spectral_norm if legacy else TPZ.spectral_norm)(tm)
    (U.spectral_norm if legacy else PZ.spectral_norm)(gm)
    gm.load_state_dict(tm.state_dict())
    x2 = X[::-1].copy()
    (tm(torch.tensor(X)).sum() - (tm(torch.tensor(x2)) ** 2).sum()).backward()
    (gm(gcomp.tensor(X)).sum() - (gm(gcomp.tensor(x2)) ** 2).sum()).backward()
    same_grads(gm, tm)
    same_state(gm, tm)


def test_spectral_norm_estimates_the_largest_singular_value():
    """From gcomp's own random start: 15 + 1 power iterations at registration."""
    rng = np.random.default_rng(2)
    q1, _ = np.linalg.qr(rng.standard_normal((4, 4)))
    q2, _ = np.linalg.qr(rng.standard_normal((3, 3)))
    w = (q1[:, :3] * [3.0, 1.0, 0.5]) @ q2.T
    gm = nn.Linear(3, 4)
    with gcomp.no_grad():
        gm.weight.copy_(gcomp.tensor(w.astype(np.float32)))
    PZ.spectral_norm(gm)
    np.testing.assert_allclose(np.asarray(gm.parametrizations.weight.original.detach()) /
                               np.asarray(gm.weight.detach()), 3.0, rtol=1e-4)


def test_spectral_norm_of_a_vector_matches_torch():
    gm, tm = linear_pair()
    TPZ.spectral_norm(tm, "bias")
    PZ.spectral_norm(gm, "bias")
    same_state(gm, tm)
    close(gm.bias, tm.bias)
    forward_backward(gm, tm, X)
    same_grads(gm, tm)


# -- parametrizations.orthogonal ---------------------------------------------------------------

@pytest.mark.parametrize("shape,orthogonal_map,use_trivialization", [
    ((4, 4), None, True), ((4, 4), "cayley", False), ((4, 3), "cayley", True),
    ((3, 4), None, False)])  # None: matrix_exp when square, else householder
def test_orthogonal_matches_torch(shape, orthogonal_map, use_trivialization):
    gm, tm = linear_pair(("Linear", shape[1], shape[0]))
    kw = {"orthogonal_map": orthogonal_map, "use_trivialization": use_trivialization}
    TPZ.orthogonal(tm, **kw)
    PZ.orthogonal(gm, **kw)
    assert list(gm.state_dict()) == list(tm.state_dict())  # + parametrizations.weight.0.base
    w = np.asarray(gm.weight.detach())
    small = min(shape)
    gram = w.T @ w if shape[0] >= shape[1] else w @ w.T
    np.testing.assert_allclose(gram, np.eye(small), atol=1e-5)
    if shape[0] == shape[1] or not use_trivialization:  # else base is completed at random
        close(gm.weight, tm.weight)
    with torch.no_grad():  # away from the starting point, where every map is the identity
        tm.parametrizations.weight.original.add_(
            torch.tensor(np.random.default_rng(6).standard_normal(shape).astype(np.float32)))
    gm.load_state_dict(tm.state_dict())
    close(gm.weight, tm.weight)
    forward_backward(gm, tm, np.random.default_rng(7).standard_normal((2, shape[1]))
                     .astype(np.float32))
    same_grads(gm, tm)
    # assigning goes through right_inverse (a QR factorization; LAPACK's reflectors for
    # householder without trivialization)
    value = np.linalg.qr(np.random.default_rng(8).standard_normal(shape))[0].astype(np.float32) \
        if shape[0] >= shape[1] else \
        np.linalg.qr(np.random.default_rng(8).standard_normal(shape[::-1]))[0].T.astype(np.float32)
    if orthogonal_map == "cayley" and not use_trivialization:
        with pytest.raises(NotImplementedError):
            tm.weight = torch.tensor(value)
        with pytest.raises(gcomp.GcompError, match="use_trivialization=True"):
            gm.weight = gcomp.tensor(value)
        return
    tm.weight = torch.tensor(value)
    gm.weight = gcomp.tensor(value)
    close(gm.weight, torch.tensor(value))
    if shape[0] == shape[1] or not use_trivialization:
        same_state(gm, tm, 1e-5)


def test_orthogonal_compiled_step_matches_eager():
    """Inside a trace the matrix exponential squares with gcomp.where (its count depends on
    the values); the result matches the eager one, which squares a counted number of times."""
    ge, gc = PZ.orthogonal(nn.Linear(4, 4)), nn.Linear(4, 4)
    PZ.orthogonal(gc)
    gc.load_state_dict(ge.state_dict())
    x = gcomp.tensor(X_CONV.reshape(-1)[:8].reshape(2, 4))

    def step_of(m, opt):
        def step(x):
            opt.zero_grad()
            loss = ((m(x) - 1.0) ** 2).mean()
            loss.backward()
            opt.step()
            return loss
        return step

    e_step = step_of(ge, gcomp.optim.SGD(ge.parameters(), lr=0.2))
    c_step = gcomp.compile(step_of(gc, gcomp.optim.SGD(gc.parameters(), lr=0.2)))
    for _ in range(3):
        gclose(c_step(x), e_step(x))
        same_state(gc, ge, 1e-5)
        gclose(gc.weight, ge.weight)


# -- register_parametrization with user parametrizations ---------------------------------------

def pair(name, *args):
    """The same parametrization class written for torch and for gcomp."""
    return TORCH_PARAMS[name](*args), GCOMP_PARAMS[name](*args)


def _classes(lib, base):
    class Symmetric(base):
        def forward(self, X):
            return X.triu() + X.triu(1).transpose(-1, -2)

    class Scale(base):
        def __init__(self, s):
            super().__init__()
            self.s = s

        def forward(self, X):
            return X * self.s

        def right_inverse(self, Y):
            return Y / self.s

    class SumOfTwo(base):  # right_inverse returns a tuple: original0, original1
        def forward(self, A, B):
            return A + B

        def right_inverse(self, Y):
            return Y * 0.25, Y * 0.75

    class Counting(base):
        calls = 0

        def forward(self, X):
            type(self).calls += 1
            return X * 2.0

    return {c.__name__: c for c in (Symmetric, Scale, SumOfTwo, Counting)}


TORCH_PARAMS = _classes(torch, torch.nn.Module)
GCOMP_PARAMS = _classes(gcomp, nn.Module)


@pytest.mark.parametrize("chain", [["Symmetric"], ["Scale"], ["SumOfTwo"], ["Scale", "Symmetric"],
                                   ["SumOfTwo", "Scale", "Scale"]],
                         ids=lambda c: "+".join(c))
def test_register_parametrization_matches_torch(chain):
    gm, tm = linear_pair(("Linear", 4, 4))
    for i, name in enumerate(chain):
        tp, gp = (pair(name, 2.0 + i) if name == "Scale" else pair(name))
        TP.register_parametrization(tm, "weight", tp)
        P.register_parametrization(gm, "weight", gp)
    assert len(gm.parametrizations.weight) == len(chain)
    same_state(gm, tm)
    close(gm.weight, tm.weight)
    x = np.random.default_rng(3).standard_normal((2, 4)).astype(np.float32)
    forward_backward(gm, tm, x)
    same_grads(gm, tm)
    # assigning the parametrized tensor goes through right_inverse (Symmetric has none)
    value = np.random.default_rng(4).standard_normal((4, 4)).astype(np.float32)
    value = value + value.T
    if "Symmetric" in chain:
        with pytest.raises(gcomp.GcompError, match="right_inverse"):
            gm.weight = gcomp.tensor(value)
        return
    original = getattr(gm.parametrizations.weight, "original", None)
    tm.weight = torch.tensor(value)
    gm.weight = gcomp.tensor(value)
    same_state(gm, tm)
    close(gm.weight, tm.weight)
    if original is not None:  # the same object, so an optimizer made before still holds it
        assert gm.parametrizations.weight.original is original


def test_parametrize_a_buffer_and_two_tensors_of_one_module():
    tm, gm = torch.nn.BatchNorm1d(3), nn.BatchNorm1d(3)
    gm.load_state_dict(tm.state_dict())
    for lib, m in ((TP, tm), (P, gm)):
        sc = (TORCH_PARAMS if lib is TP else GCOMP_PARAMS)["Scale"]
        lib.register_parametrization(m, "running_var", sc(3.0))
        lib.register_parametrization(m, "weight", sc(0.5))
    same_state(gm, tm)
    assert not gm.parametrizations.running_var.original.requires_grad
    close(gm.running_var, tm.running_var)
    P.remove_parametrizations(gm, "weight")
    TP.remove_parametrizations(tm, "weight")
    assert type(gm).__name__ == "ParametrizedBatchNorm1d"  # running_var still parametrized
    P.remove_parametrizations(gm, "running_var", leave_parametrized=False)
    TP.remove_parametrizations(tm, "running_var", leave_parametrized=False)
    assert type(gm) is nn.BatchNorm1d and not hasattr(gm, "parametrizations")
    same_state(gm, tm)


@pytest.mark.parametrize("leave_parametrized", [True, False])
@pytest.mark.parametrize("which", ["Scale", "SumOfTwo", "weight_norm", "spectral_norm"])
def test_remove_parametrizations_matches_torch(which, leave_parametrized):
    gm, tm = linear_pair()
    if which in ("weight_norm", "spectral_norm"):
        getattr(TPZ, which)(tm)
        getattr(PZ, which)(gm)
        gm.load_state_dict(tm.state_dict())
    else:
        tp, gp = pair(which, 2.0) if which == "Scale" else pair(which)
        TP.register_parametrization(tm, "weight", tp)
        P.register_parametrization(gm, "weight", gp)
    several = which in ("SumOfTwo", "weight_norm")
    original = None if several else gm.parametrizations.weight.original
    if several and not leave_parametrized:
        with pytest.raises(gcomp.GcompError, match="sequence of tensors") as info:
            P.remove_parametrizations(gm, "weight", leave_parametrized)
        assert isinstance(info.value, ValueError)
        return
    TP.remove_parametrizations(tm, "weight", leave_parametrized)
    P.remove_parametrizations(gm, "weight", leave_parametrized)
    assert type(gm) is nn.Linear and not P.is_parametrized(gm)
    assert isinstance(gm.weight, nn.Parameter) and gm.weight.requires_grad
    if original is not None:
        assert gm.weight is original
    same_state(gm, tm)
    forward_backward(gm, tm, X)
    same_grads(gm, tm)


def test_cached_computes_each_parametrized_tensor_once():
    gm, tm = linear_pair()
    tp, gp = pair("Counting")
    TP.register_parametrization(tm, "weight", tp)
    P.register_parametrization(gm, "weight", gp)
    for lib, m, cls in ((TP, tm, TORCH_PARAMS), (P, gm, GCOMP_PARAMS)):
        cls["Counting"].calls = 0
        with lib.cached():
            w1, w2 = m.weight, m.weight
            with lib.cached():
                assert m.weight is w1
        assert w1 is w2 and cls["Counting"].calls == 1
        _ = m.weight
        assert cls["Counting"].calls == 2  # outside: computed on each read

    # inside gcomp.compile, the cache holds the traced value, not one computed eagerly
    def f(x):
        with P.cached():
            return (x @ gm.weight.t()) + (x @ gm.weight.t())

    cf = gcomp.compile(f)
    x = gcomp.tensor(X)
    with P.cached():
        _ = gm.weight  # an eager value in the cache
        gclose(cf(x), f(x))
    gclose(cf(x), 2 * (x @ gm.weight.t()))


def test_transfer_parametrizations_and_params_matches_torch():
    gm, tm = linear_pair()
    tp, gp = pair("Scale", 3.0)
    TP.register_parametrization(tm, "weight", tp)
    P.register_parametrization(gm, "weight", gp)
    t_to, g_to = torch.nn.Linear(3, 4), nn.Linear(3, 4)
    g_to.load_state_dict(t_to.state_dict())
    TP.transfer_parametrizations_and_params(tm, t_to)
    P.transfer_parametrizations_and_params(gm, g_to)
    same_state(g_to, t_to)
    assert g_to.parametrizations.weight.original is gm.parametrizations.weight.original
    close(g_to.weight, t_to.weight)


def test_deepcopy_copies_and_pickling_says_use_state_dict():
    gm, _ = linear_pair()
    PZ.spectral_norm(gm)
    c = copy.deepcopy(gm)
    assert type(c) is type(gm) and list(c.state_dict()) == list(gm.state_dict())
    gclose(c.eval().weight, gm.eval().weight)
    assert c.parametrizations.weight.original is not gm.parametrizations.weight.original
    with pytest.raises(gcomp.GcompError, match="state_dict"):
        pickle.dumps(gm)


# -- the legacy weight_norm and spectral_norm --------------------------------------------------

@pytest.mark.parametrize("module", ["linear", "conv1d"])
@pytest.mark.parametrize("dim", [0, None])
def test_legacy_weight_norm_matches_torch(module, dim):
    spec, x = MODULES[module]
    gm, tm = linear_pair(spec)
    torch.nn.utils.weight_norm(tm, dim=dim)
    with pytest.warns(FutureWarning, match="deprecated"):
        U.weight_norm(gm, dim=dim)
    assert type(gm) is getattr(nn, spec[0])
    same_state(gm, tm)  # bias, weight_g, weight_v
    close(gm.weight, tm.weight)
    forward_backward(gm, tm, x)
    same_grads(gm, tm)
    close(gm.weight, tm.weight)  # recomputed by the pre-hook
    torch.nn.utils.remove_weight_norm(tm)
    U.remove_weight_norm(gm)
    assert isinstance(gm.weight, nn.Parameter)
    same_state(gm, tm)


@pytest.mark.parametrize("module", ["linear", "conv1d", "convT1d"])
def test_legacy_spectral_norm_matches_torch(module):
    spec, x = MODULES[module]
    gm, tm = linear_pair(spec)
    torch.nn.utils.spectral_norm(tm)
    U.spectral_norm(gm)
    assert list(gm.state_dict()) == list(tm.state_dict())  # bias, weight_orig, weight_u, _v
    gm.load_state_dict(tm.state_dict())
    for _ in range(3):  # each training-mode forward advances u and v
        forward_backward(gm, tm, x)
        close(gm.weight, tm.weight)
        same_state(gm, tm)
    same_grads(gm, tm)
    u_before = np.asarray(gm.weight_u).copy()
    tm.eval()
    gm.eval()
    forward_backward(gm, tm, x)
    np.testing.assert_array_equal(np.asarray(gm.weight_u), u_before)
    torch.nn.utils.remove_spectral_norm(tm)
    U.remove_spectral_norm(gm)
    assert isinstance(gm.weight, nn.Parameter)
    same_state(gm, tm)


# -- a compiled training step ------------------------------------------------------------------

def _model(lib, legacy):
    ut = lib.nn.utils
    wn = ut.weight_norm if legacy else ut.parametrizations.weight_norm
    sn = ut.spectral_norm if legacy else ut.parametrizations.spectral_norm
    return lib.nn.Sequential(wn(lib.nn.Linear(3, 4)), lib.nn.Tanh(), sn(lib.nn.Linear(4, 2)))


@pytest.mark.parametrize("legacy", [False, True], ids=["parametrizations", "legacy"])
def test_compiled_training_step_matches_eager_and_torch(legacy):
    tm = _model(torch, legacy)
    ge, gc = _model(gcomp, legacy), _model(gcomp, legacy)
    ge.load_state_dict(tm.state_dict())
    gc.load_state_dict(tm.state_dict())
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((5, 3)).astype(np.float32), rng.standard_normal((5, 2))
    y = y.astype(np.float32)

    def step_of(m, opt):
        def step(x, y):
            opt.zero_grad()
            loss = ((m(x) - y) ** 2).mean()
            loss.backward()
            opt.step()
            return loss
        return step

    t_step = step_of(tm, torch.optim.SGD(tm.parameters(), lr=0.5))
    e_step = step_of(ge, gcomp.optim.SGD(ge.parameters(), lr=0.5))
    c_step = gcomp.compile(step_of(gc, gcomp.optim.SGD(gc.parameters(), lr=0.5)))
    u = (lambda m: m[2].weight_u) if legacy else (lambda m: m[2].parametrizations.weight[0]._u)
    u0 = np.asarray(u(gc)).copy()
    for _ in range(3):
        lt = t_step(torch.tensor(x), torch.tensor(y))
        le = e_step(gcomp.tensor(x), gcomp.tensor(y))
        lc = c_step(gcomp.tensor(x), gcomp.tensor(y))
        close(le, lt, 1e-5)
        np.testing.assert_allclose(float(lc), float(le), rtol=1e-5, atol=1e-5)
        same_state(gc, ge, 1e-5)  # parameters and the power iteration's vectors
        same_state(ge, tm, 1e-5)
    assert not np.allclose(np.asarray(u(gc)), u0)  # the vectors were written back


# -- errors ------------------------------------------------------------------------------------

class NotAModule:
    def __call__(self, x):
        return x


def _error_cases():
    def plain_attribute():
        m = nn.Linear(3, 4)
        m.scale = gcomp.ones(4)  # a plain tensor attribute: not a parameter or buffer
        P.register_parametrization(m, "scale", GCOMP_PARAMS["Symmetric"]())

    def assign_parameter():
        m = P.register_parametrization(nn.Linear(4, 4), "weight", GCOMP_PARAMS["Symmetric"]())
        m.weight = nn.Parameter(gcomp.zeros(4, 4))

    def legacy_twice(fn):
        def case():
            m = fn(nn.Linear(3, 4))
            fn(m)
        return case

    def changes_shape():
        class Flat(nn.Module):
            def forward(self, x):
                return x.reshape(-1)
        P.register_parametrization(nn.Linear(3, 4), "weight", Flat())

    return [
        ("unknown tensor_name", lambda: P.register_parametrization(
            nn.Linear(3, 4), "wieght", GCOMP_PARAMS["Symmetric"]()), r"'wieght'.*one of"),
        ("not a parameter or buffer", plain_attribute, "plain attribute; register it"),
        ("a None parameter", lambda: P.register_parametrization(
            nn.Linear(3, 4, bias=False), "bias", GCOMP_PARAMS["Symmetric"]()), "is None"),
        ("parametrization not a Module", lambda: P.register_parametrization(
            nn.Linear(3, 4), "weight", NotAModule()), "wrap the function in a Module"),
        ("changes the shape", changes_shape, "may not change the shape.*unsafe"),
        ("remove unparametrized", lambda: P.remove_parametrizations(nn.Linear(3, 4), "weight"),
         "does not have a parametrization on weight.*register_parametrization"),
        ("assign a Parameter to a parametrized name", assign_parameter,
         "remove_parametrizations"),
        ("spectral_norm unknown name", lambda: PZ.spectral_norm(nn.Linear(3, 4), "w"),
         "name='weight'"),
        ("spectral_norm bad dim", lambda: PZ.spectral_norm(nn.Linear(3, 4), dim=2),
         "Dimension out of range"),
        ("spectral_norm no iterations", lambda: PZ.spectral_norm(nn.Linear(3, 4),
                                                                 n_power_iterations=0),
         "positive"),
        ("weight_norm bad dim", lambda: PZ.weight_norm(nn.Linear(3, 4), dim=3),
         "Dimension out of range"),
        ("legacy weight_norm twice", legacy_twice(U.weight_norm), "remove_weight_norm"),
        ("legacy spectral_norm twice", legacy_twice(U.spectral_norm), "remove_spectral_norm"),
        ("legacy weight_norm unknown name", lambda: U.weight_norm(nn.Linear(3, 4), "w"),
         "one of"),
        ("legacy spectral_norm unknown name", lambda: U.spectral_norm(nn.Linear(3, 4), "w"),
         "one of"),
        ("orthogonal of a vector", lambda: PZ.orthogonal(nn.Linear(3, 4), "bias"),
         "matrix or batch of matrices"),
        ("orthogonal unknown map", lambda: PZ.orthogonal(nn.Linear(3, 4), orthogonal_map="qr"),
         "has to be one of"),
        ("remove_weight_norm without it", lambda: U.remove_weight_norm(nn.Linear(3, 4)),
         "apply nn.utils.weight_norm"),
        ("remove_spectral_norm without it", lambda: U.remove_spectral_norm(nn.Linear(3, 4)),
         "apply nn.utils.spectral_norm"),
    ]


@pytest.mark.parametrize("case", _error_cases(), ids=lambda c: c[0])
def test_bad_input_raises_gcomp_error(case):
    _, fn, match = case
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        with pytest.raises(gcomp.GcompError, match=match):
            fn()


def test_a_failed_registration_leaves_the_module_as_it_was():
    m = nn.Linear(3, 4)
    w = m.weight

    class Flat(nn.Module):
        def forward(self, x):
            return x.reshape(-1)

    with pytest.raises(gcomp.GcompError):
        P.register_parametrization(m, "weight", Flat())
    assert type(m) is nn.Linear and m.weight is w and list(m.state_dict()) == ["weight", "bias"]
