"""PyTorch's runtime names that tutorials use, against torch: legacy constructors
(``torch.Tensor(2, 3)``, ``torch.LongTensor``, ``t.type()``), ``range`` indices, the
``torch.utils.data`` submodules and WeightedRandomSampler, ``torch.Generator(device=...)``,
``torch.accelerator`` and ``torch.backends`` on a machine without an accelerator, random
sampling (normal, multinomial, randperm, the in-place samplers) by its distribution and eager ==
compiled, the RNG state, ``out=``, and reading files written by ``torch.save``."""

from __future__ import annotations

import importlib
import io

import numpy as np
import pytest
import scipy.stats
import torch

import gcomp

pytestmark = pytest.mark.xdist_group("frontend_torch_compat")


# -- legacy constructors ------------------------------------------------------------------------
UNINITIALIZED = {"sizes", "long_sizes", "size"}  # torch leaves these uninitialized
LEGACY = {
    "sizes": lambda t: t.Tensor(2, 3), "list": lambda t: t.Tensor([1, 2.5]),
    "empty": lambda t: t.Tensor(), "size": lambda t: t.Tensor(t.Size([2, 1])),
    "ndarray": lambda t: t.Tensor(np.arange(3)),
    "long_ndarray": lambda t: t.LongTensor(np.array([1, 2], dtype=np.int32)),
    "long_sizes": lambda t: t.LongTensor(2, 2), "float_list": lambda t: t.FloatTensor([[1, 2]]),
    "double": lambda t: t.DoubleTensor([1.5]), "int": lambda t: t.IntTensor([3]),
    "bool": lambda t: t.BoolTensor([True, False]), "byte": lambda t: t.ByteTensor([1, 255]),
    "half": lambda t: t.HalfTensor([0.5]),
}


@pytest.mark.parametrize("case", sorted(LEGACY))
def test_legacy_constructors_match_torch(case):
    ours, ref = LEGACY[case](gcomp), LEGACY[case](torch)
    assert tuple(ours.shape) == tuple(ref.shape)
    assert ours.dtype.name == str(ref.dtype).removeprefix("torch.")
    assert ours.type() == ref.type()
    if case not in UNINITIALIZED:
        np.testing.assert_array_equal(ours.numpy(), ref.numpy())


def test_legacy_isinstance_type_strings_and_casts():
    x, ref = gcomp.ones(2), torch.ones(2)
    for name in ("FloatTensor", "LongTensor", "DoubleTensor"):
        assert isinstance(x, getattr(gcomp, name)) == isinstance(ref, getattr(torch, name))
    assert isinstance(x, gcomp.Tensor)
    assert x.type("torch.DoubleTensor").type() == ref.type("torch.DoubleTensor").type()
    assert x.type(gcomp.LongTensor).dtype == gcomp.int64
    assert x.type(gcomp.float32) is x
    assert gcomp.LongTensor(gcomp.tensor([1, 2])).dtype == gcomp.int64
    with pytest.raises(gcomp.GcompError, match="test_torch_compat.py.*expected"):
        gcomp.LongTensor(gcomp.ones(2))  # the legacy constructors do not convert
    with pytest.raises(gcomp.GcompError, match="invalid type"):
        x.type("torch.NoSuchTensor")


def test_a_custom_layer_built_from_torch_tensor_trains_like_torch():
    def build(t):
        class MyLinear(t.nn.Module):
            def __init__(self, n_in, n_out):
                super().__init__()
                self.weight = t.nn.Parameter(t.Tensor(n_out, n_in))
                self.bias = t.nn.Parameter(t.Tensor(n_out))

            def forward(self, x):
                return x @ self.weight.t() + self.bias

        return MyLinear(4, 3)

    ours, ref = build(gcomp), build(torch)
    w = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    with torch.no_grad():
        ref.weight.copy_(torch.from_numpy(w)), ref.bias.zero_()
    ours.load_state_dict({k: gcomp.tensor(v.numpy()) for k, v in ref.state_dict().items()})
    x = np.random.default_rng(1).standard_normal((5, 4)).astype(np.float32)
    for m, t in ((ours, gcomp), (ref, torch)):
        opt = t.optim.SGD(m.parameters(), lr=0.1)
        for _ in range(3):
            opt.zero_grad()
            (m(t.tensor(x)) ** 2).mean().backward()
            opt.step()
    np.testing.assert_allclose(ours.weight.detach().numpy(), ref.weight.detach().numpy(),
                               rtol=1e-5, atol=1e-6)


# -- indices, data, generators, devices -------------------------------------------------------
def test_range_indices_pick_like_torch_and_differentiate():
    x = np.random.default_rng(2).standard_normal((6, 4))
    target = [3, 0, 1, 1, 2, 0]
    ours = gcomp.tensor(x, requires_grad=True)
    ref = torch.tensor(x, requires_grad=True)
    lo = -ours[range(6), gcomp.tensor(target)].mean()
    lr = -ref[range(6), torch.tensor(target)].mean()
    lo.backward(), lr.backward()
    np.testing.assert_allclose(lo.item(), lr.item())
    np.testing.assert_allclose(ours.grad.numpy(), ref.grad.numpy())
    np.testing.assert_array_equal(ours[range(1, 5, 2)].detach().numpy(), x[1:5:2])


def test_utils_data_submodules_and_generator_device():
    from gcomp.utils.data.dataloader import DataLoader
    from gcomp.utils.data.dataset import TensorDataset, random_split
    from gcomp.utils.data.sampler import SequentialSampler, WeightedRandomSampler

    assert DataLoader is gcomp.data.DataLoader and WeightedRandomSampler
    ds = TensorDataset(gcomp.arange(10))
    a = random_split(ds, [0.7, 0.3], generator=gcomp.Generator(device="cpu").manual_seed(5))
    b = random_split(ds, [0.7, 0.3], generator=gcomp.Generator(5))
    assert a[0].indices == b[0].indices and len(a[1]) == 3
    assert list(SequentialSampler(ds)) == list(range(10))
    g = gcomp.Generator(device="cpu")
    assert g.device == gcomp.device("cpu") and g.initial_seed() == 0
    assert g.manual_seed(7).initial_seed() == 7


def test_weighted_random_sampler_draws_in_proportion():
    from gcomp.utils.data import WeightedRandomSampler

    w = [1.0, 3.0, 0.0, 6.0]
    draws = list(WeightedRandomSampler(w, 5000, generator=0))
    counts = np.bincount(draws, minlength=4)
    assert counts[2] == 0
    p = scipy.stats.chisquare(counts[[0, 1, 3]], 5000 * np.array([0.1, 0.3, 0.6])).pvalue
    assert p > 1e-4, counts
    once = list(WeightedRandomSampler(w, 3, replacement=False, generator=1))
    assert sorted(once) == [0, 1, 3]
    with pytest.raises(gcomp.GcompError, match="without replacement"):
        WeightedRandomSampler(w, 4, replacement=False)
    with pytest.raises(gcomp.GcompError, match="non-negative"):
        WeightedRandomSampler([1.0, -1.0], 2)


def test_accelerator_and_backends_on_a_machine_without_one():
    acc = gcomp.accelerator
    assert acc.is_available() == gcomp.cuda.is_available()
    if not acc.is_available():
        assert acc.current_accelerator() is None and acc.device_count() == 0
        assert acc.memory_allocated() == 0 and acc.memory_stats() == {}
    # the tutorials' device line
    device = acc.current_accelerator().type if acc.is_available() else "cpu"
    assert gcomp.ones(2, device=device).device.type == device
    acc.synchronize(), gcomp.cuda.synchronize(), acc.empty_cache()
    assert acc.current_device_index() == 0
    with pytest.raises(gcomp.GcompError, match="no current-device setting"):
        acc.set_device_index(1)
    gcomp.backends.cudnn.benchmark = True  # accepted, as programs set it
    assert gcomp.backends.cudnn.benchmark is True
    assert gcomp.backends.mps.is_available() is False


# -- random sampling --------------------------------------------------------------------------
def _ks(sample, dist) -> float:
    return scipy.stats.kstest(np.asarray(sample, dtype=np.float64).ravel(), dist).pvalue


def test_normal_overloads_shapes_and_distribution():
    gcomp.manual_seed(0)
    z = gcomp.normal(2.0, 3.0, size=(5000,))
    assert z.dtype == gcomp.float32 and _ks(z.numpy(), scipy.stats.norm(2, 3).cdf) > 1e-4
    mean = gcomp.zeros(3, 1, requires_grad=True)
    out = gcomp.normal(mean, gcomp.tensor([1.0, 2.0]))
    assert tuple(out.shape) == (3, 2)
    assert gcomp.normal(gcomp.zeros(4, dtype=gcomp.float64)).dtype == gcomp.float64
    assert tuple(gcomp.normal(1.0, gcomp.ones(5)).shape) == (5,)
    with pytest.raises(gcomp.GcompError, match="needs a size"):
        gcomp.normal(0.0, 1.0)
    with pytest.raises(gcomp.GcompError, match="std >= 0"):
        gcomp.normal(gcomp.zeros(2), gcomp.tensor([1.0, -1.0]))


def test_multinomial_frequencies_and_errors():
    gcomp.manual_seed(1)
    p = np.array([0.1, 0.0, 0.6, 0.3])
    draws = gcomp.multinomial(gcomp.tensor(p), 5000, replacement=True)
    assert draws.dtype == gcomp.int64 and tuple(draws.shape) == (5000,)
    counts = np.bincount(draws.numpy(), minlength=4)
    assert counts[1] == 0
    assert scipy.stats.chisquare(counts[[0, 2, 3]], 5000 * p[[0, 2, 3]]).pvalue > 1e-4
    rows = gcomp.tensor([[1.0, 1.0, 0.0, 2.0], [0.0, 5.0, 5.0, 0.0]])
    once = gcomp.multinomial(rows, 2).numpy()
    assert tuple(once.shape) == (2, 2) and set(once[1]) == {1, 2}
    assert once[0, 0] != once[0, 1] and 2 not in once[0]
    assert tuple(gcomp.tensor([0.2, 0.8]).multinomial(1).shape) == (1,)
    with pytest.raises(gcomp.GcompError, match="without replacement"):
        gcomp.multinomial(gcomp.ones(3), 4)
    with pytest.raises(gcomp.GcompError, match="inf, nan or element < 0"):
        gcomp.multinomial(gcomp.tensor([1.0, -1.0]), 1)


@pytest.mark.parametrize("name, args, dist", [
    ("exponential_", (2.0,), scipy.stats.expon(scale=0.5).cdf),
    ("log_normal_", (0.5, 0.25), scipy.stats.lognorm(0.25, scale=np.exp(0.5)).cdf),
    ("cauchy_", (1.0, 2.0), scipy.stats.cauchy(1.0, 2.0).cdf),
])
def test_in_place_samplers_follow_their_distributions(name, args, dist):
    gcomp.manual_seed(2)
    x = gcomp.empty(5000, dtype=gcomp.float64)
    assert getattr(x, name)(*args) is x
    assert _ks(x.numpy(), dist) > 1e-4


def test_discrete_in_place_samplers():
    gcomp.manual_seed(3)
    g = gcomp.empty(5000).geometric_(0.25).numpy()
    assert g.min() >= 1 and abs(g.mean() - 4.0) < 0.2  # mean 1/p, sd sqrt(1-p)/p = 3.5
    r = gcomp.empty(5000, dtype=gcomp.int64).random_(3, 7).numpy()
    assert set(np.unique(r)) == {3, 4, 5, 6}
    assert set(np.unique(gcomp.zeros(2000).random_(4).numpy())) == {0, 1, 2, 3}
    b = gcomp.empty(5000).bernoulli_(0.3).numpy()
    assert set(np.unique(b)) == {0.0, 1.0} and abs(b.mean() - 0.3) < 0.03
    with pytest.raises(gcomp.GcompError, match="lambda > 0"):
        gcomp.empty(2).exponential_(0.0)
    with pytest.raises(gcomp.GcompError, match="from.*less than.*to"):
        gcomp.empty(2).random_(5, 2)


def test_compiled_sampling_draws_what_eager_draws():
    def draw(p, x):
        return (gcomp.multinomial(p, 3, replacement=True), gcomp.normal(x, 1.0),
                gcomp.multinomial(p, 2), x.clone().exponential_())

    p, x = gcomp.tensor([[0.2, 0.5, 0.3]]), gcomp.zeros(4)
    gcomp.manual_seed(4)
    eager = draw(p, x)
    compiled = gcomp.compile(draw)
    gcomp.manual_seed(4)
    again = compiled(p, x)
    for a, b in zip(eager, again):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_randperm_is_a_uniform_permutation_and_compiles():
    gcomp.manual_seed(5)
    perms = [tuple(gcomp.randperm(3).tolist()) for _ in range(600)]
    assert all(sorted(q) == [0, 1, 2] for q in perms)
    counts = np.array([perms.count(q) for q in sorted(set(perms))])
    assert len(counts) == 6 and scipy.stats.chisquare(counts).pvalue > 1e-4
    assert gcomp.randperm(0).tolist() == [] and gcomp.randperm(4, dtype=gcomp.int32).dtype == \
        gcomp.int32
    f = gcomp.compile(lambda x: gcomp.randperm(6) + x)
    gcomp.manual_seed(6)
    eager = gcomp.randperm(6)
    gcomp.manual_seed(6)
    np.testing.assert_array_equal(f(gcomp.zeros(6, dtype=gcomp.int64)).numpy(), eager.numpy())
    with pytest.raises(gcomp.GcompError, match="non-negative int"):
        gcomp.randperm(-1)


def test_rng_state_round_trip():
    gcomp.manual_seed(9)
    assert gcomp.initial_seed() == 9
    state = gcomp.get_rng_state()
    first = gcomp.rand(3).numpy()
    gcomp.set_rng_state(state)
    np.testing.assert_array_equal(gcomp.rand(3).numpy(), first)
    with pytest.raises(gcomp.GcompError, match="what get_state returns"):
        gcomp.set_rng_state(gcomp.zeros(3))


# -- out= -------------------------------------------------------------------------------------
def test_out_writes_like_torch():
    a = np.arange(12.0, dtype=np.float32).reshape(3, 4)
    for t in (gcomp, torch):
        x = t.tensor(a)
        y = t.empty(3, 3)
        assert t.matmul(x, x.T, out=y) is y
        z = t.empty(1)  # resized (torch warns: a non-empty out of another shape)
        with pytest.warns(UserWarning) if t is torch else _nothing():
            t.mul(x, 2, out=z)
        v, i = t.empty(3), t.empty(3, dtype=t.long)
        t.max(x, 1, out=(v, i))
        if t is gcomp:
            ours = (y.numpy(), z.numpy(), v.numpy(), i.numpy())
        else:
            ref = (y.numpy(), z.numpy(), v.numpy(), i.numpy())
    for o, r in zip(ours, ref):
        np.testing.assert_array_equal(o, r)
    with pytest.raises(gcomp.GcompError, match="can't be cast"):
        gcomp.add(gcomp.ones(2), 1.5, out=gcomp.empty(2, dtype=gcomp.int64))
    with pytest.raises(gcomp.GcompError, match="automatic differentiation"):
        gcomp.mul(gcomp.ones(2, requires_grad=True), 2, out=gcomp.empty(2))
    perm = gcomp.empty(4, dtype=gcomp.int64)  # the samplers take out= from the same wrapper
    assert gcomp.randperm(4, out=perm) is perm and sorted(perm.tolist()) == [0, 1, 2, 3]
    with pytest.raises(gcomp.GcompError, match="randperm.*can't be cast"):
        gcomp.randperm(4, out=gcomp.empty(4, dtype=gcomp.bool))


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


# -- torch.save files -------------------------------------------------------------------------
def test_torch_saved_state_dicts_and_checkpoints_load(tmp_path):
    torch.manual_seed(0)
    ref = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.ReLU(),
                              torch.nn.Linear(4, 2))
    opt = torch.optim.Adam(ref.parameters())
    x = torch.randn(8, 3)
    ref(x).sum().backward()
    opt.step()
    torch.save({"epoch": 3, "model": ref.state_dict(), "opt": opt.state_dict(),
                "view": torch.arange(10)[2:8:2], "half": torch.ones(2, dtype=torch.bfloat16)},
               tmp_path / "ckpt.pt")
    ck = gcomp.load(tmp_path / "ckpt.pt", map_location="cpu")
    assert ck["epoch"] == 3 and ck["view"].tolist() == [2, 4, 6]
    assert ck["half"].dtype == gcomp.bfloat16
    ours = gcomp.nn.Sequential(gcomp.nn.Linear(3, 4), gcomp.nn.BatchNorm1d(4), gcomp.nn.ReLU(),
                               gcomp.nn.Linear(4, 2))
    assert repr(ours.load_state_dict(ck["model"])) == repr(ref.load_state_dict(ref.state_dict()))
    gopt = gcomp.optim.Adam(ours.parameters())
    gopt.load_state_dict(ck["opt"])
    ref.eval(), ours.eval()
    np.testing.assert_allclose(ours(gcomp.tensor(x.numpy())).detach().numpy(),
                               ref(x).detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(gopt.state_dict()["state"][0]["exp_avg"].numpy(),
                               opt.state_dict()["state"][0]["exp_avg"].numpy())
    buf = io.BytesIO()
    torch.save(ref.state_dict(), buf)
    buf.seek(0)
    assert set(gcomp.load(buf)) == set(ref.state_dict())


def test_whole_modules_need_weights_only_false_or_a_state_dict(tmp_path):
    torch.save(torch.nn.Linear(2, 2), tmp_path / "torch_module.pt")
    with pytest.raises(gcomp.GcompError, match="torch.nn.modules.linear.Linear"):
        gcomp.load(tmp_path / "torch_module.pt")
    m = gcomp.nn.Linear(2, 2)
    gcomp.save(m, tmp_path / "module.pt")  # torch.save(model, path)
    with pytest.raises(gcomp.GcompError, match="weights_only=False"):
        gcomp.load(tmp_path / "module.pt")
    back = gcomp.load(tmp_path / "module.pt", weights_only=False)
    np.testing.assert_array_equal(back.weight.detach().numpy(), m.weight.detach().numpy())
    buf = io.BytesIO()
    gcomp.save(m.state_dict(), buf)
    buf.seek(0)
    assert set(gcomp.load(buf, weights_only=True)) == {"weight", "bias"}
    with pytest.raises(gcomp.GcompError, match="no such file"):
        gcomp.load(tmp_path / "missing.pt")


# -- eager scalars ------------------------------------------------------------------------------
def test_a_changing_python_number_does_not_compile_every_eager_step():
    """Note [Scalars in eager code]: after a few values of one shape, the value is an argument."""
    from gcomp.core.dispatch import _ATTR_CACHE
    from gcomp.frontend.ops import _BAKED

    def baked():
        return sum(1 for op, attrs in _ATTR_CACHE
                   if op == "full" and dict(attrs).get("shape") in ((7, 3), [7, 3]))

    x = np.random.default_rng(3).standard_normal((7, 3)).astype(np.float32)
    t, ref = gcomp.tensor(x), torch.tensor(x)
    before = baked()
    for i in range(12):
        lr = 0.1 * 0.9 ** i  # a decaying learning rate
        np.testing.assert_array_equal((t * lr).numpy(), (ref * lr).numpy())
        np.testing.assert_array_equal((t - lr).numpy(), (ref - lr).numpy())
    assert baked() - before <= _BAKED
    w = gcomp.ones(7, 3, requires_grad=True)
    (w * (1 / 3.7)).sum().backward()  # through the tape as usual
    np.testing.assert_allclose(w.grad.numpy(), np.full((7, 3), 1 / 3.7, np.float32))


# -- what the tutorial programs hit next -------------------------------------------------------
def test_scatter_of_a_0d_index_and_gcomp_errors_are_runtime_errors():
    for t in (gcomp, torch):  # the Transforms tutorial's one-hot
        one_hot = t.zeros(10).scatter_(0, t.tensor(3), value=1)
        assert one_hot.tolist() == [0.0] * 3 + [1.0] + [0.0] * 6
    with pytest.raises(RuntimeError):  # what torch code catches
        gcomp.ones(2).view(3)
    assert issubclass(gcomp.GcompError, RuntimeError)


@pytest.mark.parametrize("lib", ["gcomp", "torch"])
def test_tensor_hooks_see_and_replace_gradients_like_torch(lib):
    t = gcomp if lib == "gcomp" else torch
    seen = []
    x = t.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * 2
    y.register_hook(lambda g: g * 10)  # a non-leaf's hook replaces its gradient
    y.retain_grad()
    handle = x.register_hook(lambda g: seen.append(g.tolist()))  # a leaf's sees the total
    (y ** 2).sum().backward()
    assert y.retains_grad and not x.retains_grad
    assert y.grad.tolist() == [40.0, 80.0, 120.0]  # retain_grad sees the hooked value
    assert x.grad.tolist() == [80.0, 160.0, 240.0] == seen[0]
    handle.remove()
    x.grad = None
    (x * 3).sum().backward()
    assert len(seen) == 1 and x.grad.tolist() == [3.0, 3.0, 3.0]
    (g,) = t.autograd.grad((x * x).sum(), [x])  # autograd.grad runs hooks too
    x.register_hook(lambda g: g + 1)
    (g2,) = t.autograd.grad((x * x).sum(), [x])
    assert (g2 - g).tolist() == [1.0, 1.0, 1.0]


def test_hook_errors():
    x = gcomp.ones(2, requires_grad=True)
    x.register_hook(lambda g: gcomp.ones(3))
    with pytest.raises(gcomp.GcompError, match="hook returned"):
        (x * 2).sum().backward()
    with pytest.raises(gcomp.GcompError, match="doesn't require"):
        gcomp.ones(2).register_hook(lambda g: g)
    w = gcomp.nn.Parameter(gcomp.ones(2))
    w.register_hook(lambda g: g)

    def step(x):
        (w * x).sum().backward()
        return w.grad

    with pytest.raises(gcomp.GcompError, match="gradient hook"):
        gcomp.compile(step)(gcomp.ones(2))


def test_tensors_print_like_torch():
    cases = [[0.046, 0.001], [1.0, 2.0], [1e5, 1.0], [True, True], [True, False],
             [1.5, float("nan"), float("inf")], [[0.12345, -2.5], [3.25, 4.0]], [1e-5, 1.0],
             3.14159, list(range(5)), np.arange(2000.0, dtype=np.float32) / 7]
    for c in cases:
        a = np.asarray(c)
        a = a.astype(np.float32) if a.dtype == np.float64 else a
        assert repr(gcomp.tensor(a)) == repr(torch.tensor(a)), c
    try:
        for t in (gcomp, torch):
            t.set_printoptions(precision=2)
        assert repr(gcomp.tensor([1.2345])) == repr(torch.tensor([1.2345]))
    finally:
        for t in (gcomp, torch):
            t.set_printoptions(profile="default")


def test_torch_compile_arguments_module_compile_and_reset():
    f = gcomp.compile(lambda a: a * 2, fullgraph=True, mode="max-autotune", backend="inductor")
    assert f(gcomp.ones(2)).tolist() == [2.0, 2.0]
    plain = lambda a: a  # noqa: E731
    assert gcomp.compile(plain, disable=True) is plain
    with pytest.raises(gcomp.GcompError, match="dynamic=True"):
        gcomp.compile(plain, dynamic=True)
    with pytest.raises(gcomp.GcompError, match="unknown mode"):
        gcomp.compile(plain, mode="fast")
    gcomp.manual_seed(0)
    m, ref = gcomp.nn.Linear(3, 2), None
    ref = gcomp.nn.Linear(3, 2)
    ref.load_state_dict(m.state_dict())
    m.compile(mode="reduce-overhead")  # torch's Module.compile: in place
    x = gcomp.randn(4, 3)
    m(x).sum().backward()
    ref(x).sum().backward()
    np.testing.assert_allclose(m.weight.grad.numpy(), ref.weight.grad.numpy(), rtol=1e-6)
    m(x)
    assert m._compiled_call.cache_info().hits == 1
    # torch._dynamo.reset(): every compiled function forgets its code
    importlib.import_module("gcomp._dynamo").reset()
    assert m._compiled_call.cache_info().size == 0 and f.cache_info().size == 0
    assert not gcomp.compiler.is_compiling()
    assert gcomp.compile(lambda a: a + gcomp.compiler.is_compiling())(gcomp.zeros(1)).item() == 1


def test_data_parallel_and_determinism_flags():
    import gcomp.nn.parallel  # noqa: F401  (DCGAN's import)

    inner = gcomp.nn.Linear(2, 2)
    dp = gcomp.nn.DataParallel(inner)
    assert list(dp.state_dict()) == list(torch.nn.DataParallel(torch.nn.Linear(2, 2))
                                         .state_dict())
    x = gcomp.ones(1, 2)
    assert gcomp.equal(dp(x), inner(x)) and dp.module is inner
    with pytest.raises(gcomp.GcompError, match="mesh"):
        gcomp.nn.DataParallel(inner, device_ids=[0, 1])
    try:
        gcomp.use_deterministic_algorithms(True)
        assert gcomp.are_deterministic_algorithms_enabled()
    finally:
        gcomp.use_deterministic_algorithms(False)


def test_autograd_functional_matches_torch():
    from gcomp.autograd.functional import hessian, hvp, jacobian, jvp, vjp

    x, v = np.random.default_rng(8).standard_normal(3), np.array([1.0, -2.0, 0.5])

    def f(a):
        return (a.sin() * a.sum()).exp()

    def g(a):
        return (a ** 3).sum() * a.prod()

    tf = torch.autograd.functional
    gx, tx, gv, tv = gcomp.tensor(x), torch.tensor(x), gcomp.tensor(v), torch.tensor(v)
    pairs = [(jacobian(f, gx), tf.jacobian(f, tx)), (hessian(g, gx), tf.hessian(g, tx)),
             (jvp(f, gx, gv)[1], tf.jvp(f, tx, tv)[1]), (vjp(f, gx, gv)[1], tf.vjp(f, tx, tv)[1]),
             (hvp(g, gx, gv)[1], tf.hvp(g, tx, tv)[1])]
    two = jacobian(lambda a, b: (a * b, a + b), (gx, gv))
    two_t = tf.jacobian(lambda a, b: (a * b, a + b), (tx, tv))
    pairs += [(two[i][j], two_t[i][j]) for i in range(2) for j in range(2)]
    for ours, ref in pairs:
        np.testing.assert_allclose(ours.numpy(), ref.numpy(), rtol=1e-12, atol=1e-12)
    assert tuple(jacobian(lambda a: a.sum(), gx).shape) == (3,)
    with pytest.raises(gcomp.GcompError, match="strict=True"):
        jacobian(lambda a, b: a * 2, (gx, gv), strict=True)
    with pytest.raises(gcomp.GcompError, match="single element"):
        hessian(lambda a: a * 2, gx)
