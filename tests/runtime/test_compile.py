"""gcomp.compile: results against eager (and torch), the cache and its log, stages and IR text,
dumps, gradients inside compiled functions, and errors for traced values used as Python values."""

from __future__ import annotations

import json
import logging
import os
import warnings

import numpy as np
import pytest
import torch

import gcomp
from gcomp.passes import DEFAULT_PIPELINE

RNG = np.random.default_rng(1)
HERE = os.path.basename(__file__)


def arr(*shape, dtype=np.float32):
    return RNG.standard_normal(shape).astype(dtype)


def npy(t):
    return np.asarray(t.detach())


def line_of(marker: str) -> int:
    """The line number of the one line of this file that ends with ``marker``."""
    with open(__file__) as f:
        hits = [i for i, line in enumerate(f, 1) if line.rstrip().endswith(marker)]
    assert len(hits) == 1, (marker, hits)
    return hits[0]


@pytest.fixture
def recompiles(caplog):
    caplog.set_level(logging.INFO, logger="gcomp.recompiles")
    return caplog


def recompile_messages(caplog):
    return [r.getMessage() for r in caplog.records if r.name == "gcomp.recompiles"]


# ---------------------------------------------------------------------------------------------
# compile as function and decorator; results equal eager and torch

def _mlp(m, x, w1, w2):
    h = m.tanh(x @ w1)
    return m.softmax(h @ w2, dim=-1).sum(0) + (h * h).mean()


def _norm(m, x, w1, w2):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    y = (x - mu) / m.sqrt(var + 1e-5)
    return m.relu(y @ w1).max(-1).values if m is torch else m.relu(y @ w1).amax(-1)


def _mixed(m, x, w1, w2):
    z = m.where(x > 0, x.exp(), x.sin() * 0.5)
    return (z @ w1).transpose(0, 1).reshape(-1)[:5] + w1.sum()


@pytest.mark.parametrize("fn", [_mlp, _norm, _mixed], ids=lambda f: f.__name__)
def test_compiled_equals_eager_and_torch(fn):
    a, b, c = arr(4, 6), arr(6, 5), arr(5, 3)
    args = [gcomp.tensor(v) for v in (a, b, c)]
    eager = fn(gcomp, *args)
    compiled = gcomp.compile(lambda x, w1, w2: fn(gcomp, x, w1, w2))
    out = compiled(*args)
    out2 = compiled(*args)  # a cache hit runs the same executable
    ref = fn(torch, *[torch.tensor(v) for v in (a, b, c)]).numpy()
    np.testing.assert_allclose(npy(eager), ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(npy(out), npy(eager), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(npy(out2), npy(out))


def test_compile_decorator_forms_and_structured_outputs():
    @gcomp.compile
    def f(x, pair, scale=2.0):
        a, b = pair
        return {"sum": (x * a).sum() * scale, "both": (x + b, x - b)}

    @gcomp.compile(name="g_named")
    def g(x):
        return x.cos()

    x, a, b = (gcomp.tensor(arr(3)) for _ in range(3))
    out = f(x, (a, b), scale=3.0)
    assert set(out) == {"sum", "both"} and isinstance(out["both"], tuple)
    np.testing.assert_allclose(npy(out["sum"]), (npy(x) * npy(a)).sum() * 3.0, rtol=1e-5)
    np.testing.assert_allclose(npy(out["both"][1]), npy(x) - npy(b), rtol=1e-6)
    assert f.__name__ == "f" and isinstance(f, gcomp.CompiledFunction)
    np.testing.assert_allclose(npy(g(x)), np.cos(npy(x)), rtol=1e-6)
    assert g.name == "g_named"


def test_compile_rejects_non_callable():
    with pytest.raises(gcomp.GcompError, match="expects a function"):
        gcomp.compile(3)


def test_compiled_method():
    class Scale:
        def __init__(self, k):
            self.k = k

        @gcomp.compile
        def apply(self, x):
            return x * self.k

    x = gcomp.tensor(arr(3))
    np.testing.assert_allclose(npy(Scale(3.0).apply(x)), npy(x) * 3.0, rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# The cache

def test_cache_hit_on_same_signature(recompiles):
    f = gcomp.compile(lambda x: x * 2 + 1)
    for _ in range(3):
        f(gcomp.tensor(arr(2, 3)))
    info = f.cache_info()
    assert (info.hits, info.misses, info.size) == (2, 1, 1)
    assert recompile_messages(recompiles) == []


@pytest.mark.parametrize("change, expect", [
    (lambda: (gcomp.tensor(arr(2, 4)), True), ["argument 0 (x)", "f32[2,3]", "f32[2,4]"]),
    (lambda: (gcomp.tensor(arr(2, 3), dtype=gcomp.float64), True),
     ["argument 0 (x)", "f32[2,3]", "f64[2,3]"]),
    (lambda: (gcomp.tensor(arr(2, 3), requires_grad=True), True),
     ["argument 0 (x)", "requiring grad"]),
    (lambda: (gcomp.tensor(arr(2, 3)), False), ["grad mode", "True", "False"]),
], ids=["shape", "dtype", "requires_grad", "grad_mode"])
def test_cache_miss_is_logged_with_reason(recompiles, change, expect):
    def fn(x, k):
        return (x * k).sum()

    f = gcomp.compile(fn)
    f(gcomp.tensor(arr(2, 3)), 2.0)
    assert recompile_messages(recompiles) == []
    x, grad_mode = change()
    with gcomp.set_grad_enabled(grad_mode):
        f(x, 2.0)
    info = f.cache_info()
    assert (info.misses, info.size) == (2, 2)
    msgs = recompile_messages(recompiles)
    assert len(msgs) == 1
    for word in expect:
        assert word in msgs[0], (word, msgs[0])
    # both signatures stay cached: going back is a hit, with nothing logged
    f(gcomp.tensor(arr(2, 3)), 2.0)
    assert f.cache_info().hits == 1 and len(recompile_messages(recompiles)) == 1


def test_cache_miss_on_python_constant(recompiles):
    f = gcomp.compile(lambda x, k: x * k)
    x = gcomp.tensor(arr(3))
    np.testing.assert_allclose(npy(f(x, 2.0)), npy(x) * 2, rtol=1e-6)
    np.testing.assert_allclose(npy(f(x, 3.0)), npy(x) * 3, rtol=1e-6)
    (msg,) = recompile_messages(recompiles)
    assert "argument 1 (k)" in msg and "2.0" in msg and "3.0" in msg


def test_cache_limit_warning_names_reasons(recompiles):
    f = gcomp.compile(lambda x: x + 1, cache_limit=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # nothing within the limit
        f(gcomp.tensor(arr(1)))
        f(gcomp.tensor(arr(2)))
    with pytest.warns(UserWarning, match="limit 2") as rec:
        f(gcomp.tensor(arr(3)))  # warn-line
    (w,) = rec.list
    msg = str(w.message)
    assert "f32[2]" in msg and "f32[3]" in msg and "argument 0" in msg
    assert os.path.basename(w.filename) == HERE and w.lineno == line_of("# warn-line")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # warned once
        f(gcomp.tensor(arr(4)))
    assert f.cache_info().size == 4


def test_cache_clear():
    f = gcomp.compile(lambda x: x + 1)
    f(gcomp.tensor(arr(2)))
    f.cache_clear()
    assert f.cache_info().size == 0
    f(gcomp.tensor(arr(2)))
    assert f.cache_info().misses == 1


# ---------------------------------------------------------------------------------------------
# IR text and stages

def test_ir_text_round_trips_and_verifies():
    w = gcomp.tensor(arr(3, 2), requires_grad=True)

    def step(x):
        loss = (x @ w).tanh().sum()
        loss.backward()
        return loss

    f = gcomp.compile(step)
    text = f.ir(gcomp.tensor(arr(4, 3)))
    g = gcomp.ir.parse(text)
    gcomp.ir.verify(g)
    assert str(g) == text
    assert "grad(" not in text and "state" in text
    assert f"{HERE}:" in text  # source locations name this file


def test_stages_name_passes_with_times_and_graphs():
    w = gcomp.tensor(arr(3), requires_grad=True)

    def step(x):
        loss = (x * w).sin().sum()
        loss.backward()
        return loss

    f = gcomp.compile(step)
    stages = f.stages(gcomp.tensor(arr(3)))
    names = [s.name for s in stages]
    assert names[:1 + len(DEFAULT_PIPELINE)] == ["traced", *DEFAULT_PIPELINE]
    for s in stages:
        assert isinstance(s.ms, float) and s.ms >= 0
        assert s.graph.startswith("graph @") and s.nodes == len(gcomp.ir.parse(s.graph).nodes)
        gcomp.ir.verify(gcomp.ir.parse(s.graph))
    by = {s.name: s.graph for s in stages}
    assert "= grad(" in by["traced"]
    assert "= grad(" not in by["autodiff"] and "= grad(" not in by["dce"]
    assert stages[-1].graph == f.ir(gcomp.tensor(arr(3)))
    assert f.cache_info().size == 1


def test_stages_without_backward_have_no_grad_node():
    f = gcomp.compile(lambda x: x.exp().sum())
    stages = f.stages(gcomp.tensor(arr(3)))
    assert all("grad(" not in s.graph for s in stages)


def test_dump_dir_writes_numbered_stages_and_summary(tmp_path, monkeypatch):
    monkeypatch.setenv("GCOMP_DUMP_DIR", str(tmp_path))
    w = gcomp.tensor(arr(3), requires_grad=True)

    def dumped(x):
        loss = (x.sum() * w).sum()
        loss.backward()
        return loss

    f = gcomp.compile(dumped)
    f(gcomp.tensor(arr(3)))
    f(gcomp.tensor(arr(5)))  # a second executable, a second folder
    dirs = sorted(p for p in tmp_path.iterdir() if p.is_dir())
    assert len(dirs) == 2 and all(d.name.startswith("dumped") for d in dirs)
    files = sorted(p.name for p in dirs[0].glob("*.gir"))
    stage_names = ["traced", *DEFAULT_PIPELINE]
    assert files == [f"{i:02d}_{name}.gir" for i, name in enumerate(stage_names)]
    summary = json.loads((dirs[0] / "summary.json").read_text())
    assert [s["stage"] for s in summary["stages"]] == stage_names
    before = None
    for s, name in zip(summary["stages"], files, strict=True):
        text = (dirs[0] / name).read_text()
        assert s["nodes"] == len(gcomp.ir.parse(text).nodes)
        assert s["nodes_before"] == before and s["ms"] >= 0
        before = s["nodes"]
    assert "= grad(" in (dirs[0] / "00_traced.gir").read_text()
    assert "f32[5]" in (dirs[1] / "00_traced.gir").read_text()
    # then the executable's StableHLO and optimized HLO, numbered after the stages
    k = len(stage_names)
    assert summary["executables"] == [f"{k:02d}_dumped.stablehlo.mlir",
                                      f"{k + 1:02d}_dumped.optimized_hlo.txt"]
    stablehlo = (dirs[0] / summary["executables"][0]).read_text()
    hlo = (dirs[0] / summary["executables"][1]).read_text()
    assert "func.func public @main" in stablehlo and "stablehlo." in stablehlo
    assert hlo.startswith("HloModule") and "ENTRY" in hlo
    assert 'op_name="jit(dumped)/n' in hlo  # the IR nodes' named scopes survive optimization


def test_no_dump_without_env(tmp_path, monkeypatch):
    monkeypatch.delenv("GCOMP_DUMP_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    gcomp.compile(lambda x: x + 1)(gcomp.tensor(arr(2)))
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------
# Gradients inside gcomp.compile equal eager

def _loss(x, w, b):
    return ((x @ w + b).tanh() ** 2).mean()


def test_backward_inside_compile_equals_eager():
    a, wa, ba = arr(5, 3), arr(3, 2), arr(2)
    we, be = gcomp.tensor(wa, requires_grad=True), gcomp.tensor(ba, requires_grad=True)
    wc, bc = gcomp.tensor(wa, requires_grad=True), gcomp.tensor(ba, requires_grad=True)
    x = gcomp.tensor(a)
    le = _loss(x, we, be)
    le.backward()

    @gcomp.compile
    def step(x):
        loss = _loss(x, wc, bc)
        loss.backward()
        return loss

    lc = step(x)
    np.testing.assert_allclose(npy(lc), npy(le), rtol=1e-6)
    np.testing.assert_allclose(npy(wc.grad), npy(we.grad), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(npy(bc.grad), npy(be.grad), rtol=1e-5, atol=1e-7)
    wt, bt = torch.tensor(wa, requires_grad=True), torch.tensor(ba, requires_grad=True)
    ((torch.tensor(a) @ wt + bt).tanh() ** 2).mean().backward()
    np.testing.assert_allclose(npy(wc.grad), wt.grad.numpy(), rtol=1e-5, atol=1e-7)


def test_autograd_grad_inside_compile_equals_eager():
    a, wa, ba = arr(5, 3), arr(3, 2), arr(2)

    def grads(x, w, b):
        return gcomp.autograd.grad(_loss(x, w, b), [w, b])

    args = (gcomp.tensor(a), gcomp.tensor(wa, requires_grad=True),
            gcomp.tensor(ba, requires_grad=True))
    eager = grads(*args)
    compiled = gcomp.compile(grads)(*args)
    for e, c in zip(eager, compiled, strict=True):
        np.testing.assert_allclose(npy(c), npy(e), rtol=1e-5, atol=1e-7)
    assert args[1].grad is None


def test_functional_grad_inside_compile_equals_eager():
    a = arr(4).astype(np.float64)
    f = lambda x: (x ** 3 * gcomp.sin(x)).sum()
    d1, d2 = gcomp.grad(f), gcomp.grad(lambda x: gcomp.grad(f)(x).sum())
    x = gcomp.tensor(a)
    for fn in (d1, d2):
        np.testing.assert_allclose(npy(gcomp.compile(fn)(x)), npy(fn(x)), rtol=1e-10)
    xt = torch.tensor(a, requires_grad=True)
    (gt,) = torch.autograd.grad((xt ** 3 * torch.sin(xt)).sum(), xt, create_graph=True)
    (g2t,) = torch.autograd.grad(gt.sum(), xt)
    np.testing.assert_allclose(npy(gcomp.compile(d2)(x)), g2t.numpy(), rtol=1e-10)


def test_backward_reaching_an_argument_is_an_error_not_a_lost_gradient():
    # eagerly backward() fills w.grad; a compiled call could not write it back, so it says so
    def step(x, w):
        loss = (x * w).sum()
        loss.backward()  # arg-backward
        return loss

    w = gcomp.tensor(arr(3), requires_grad=True)
    with pytest.raises(gcomp.GcompError, match="argument 'w'") as info:
        gcomp.compile(step)(gcomp.tensor(arr(3)), w)
    assert f"{HERE}:{line_of('# arg-backward')}" in str(info.value)
    assert w.grad is None
    # restricted to captured tensors with inputs=, it is fine
    v = gcomp.tensor(arr(3), requires_grad=True)

    @gcomp.compile
    def step2(x, w):
        (x * w * v).sum().backward(inputs=[v])
        return v.grad

    x = gcomp.tensor(arr(3))
    np.testing.assert_allclose(npy(step2(x, w)), npy(x) * npy(w), rtol=1e-6)
    np.testing.assert_allclose(npy(v.grad), npy(x) * npy(w), rtol=1e-6)
    assert w.grad is None


def test_compiled_forward_joins_eager_backward():
    a, wa = arr(4, 3), arr(3, 2)
    w = gcomp.tensor(wa, requires_grad=True)
    f = gcomp.compile(lambda x, w: (x @ w).sin())
    f(gcomp.tensor(a), w).sum().backward()
    wt = torch.tensor(wa, requires_grad=True)
    (torch.tensor(a) @ wt).sin().sum().backward()
    np.testing.assert_allclose(npy(w.grad), wt.grad.numpy(), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# Traced values used as Python values

def _uses_if(x):
    if x.sum() > 0:  # traced-if
        return x
    return -x


def _uses_bool(x):
    return x * float(bool((x > 0).all()))  # traced-bool


def _uses_item(x):
    return x * x.sum().item()  # traced-item


def _uses_int(x):
    return x * int(x.sum())  # traced-int


def _uses_numpy(x):
    return gcomp.tensor(x.numpy())  # traced-numpy


@pytest.mark.parametrize("fn, marker", [
    (_uses_if, "# traced-if"), (_uses_bool, "# traced-bool"), (_uses_item, "# traced-item"),
    (_uses_int, "# traced-int"), (_uses_numpy, "# traced-numpy"),
], ids=["if", "bool", "item", "int", "numpy"])
def test_traced_value_used_in_python_names_the_line(fn, marker):
    f = gcomp.compile(fn)
    with pytest.raises(gcomp.GcompError) as info:
        f(gcomp.tensor(arr(3)))
    msg = str(info.value)
    assert f"{HERE}:{line_of(marker)}" in msg, msg
    assert "gcomp.where" in msg
    assert fn(gcomp.tensor(np.ones(3, np.float32))) is not None  # fine eagerly


# ---------------------------------------------------------------------------------------------
# Failed traces leave state alone

def test_failed_trace_leaves_captured_tensors_unchanged():
    w = gcomp.tensor(arr(3), requires_grad=True)
    (w * w).sum().backward()
    w_before, g_before, g_obj = npy(w).copy(), npy(w.grad).copy(), w.grad
    buf = gcomp.tensor(arr(3))
    buf_before = npy(buf).copy()

    def step(x, fail):
        loss = (x * w).sum()
        loss.backward()
        with gcomp.no_grad():
            w.sub_(0.1 * w.grad)
            buf.add_(1.0)
        w.grad = None
        if fail:
            raise ValueError("boom")
        return loss

    f = gcomp.compile(step)
    x = gcomp.tensor(arr(3))
    with pytest.raises(ValueError, match="boom"):
        f(x, True)
    np.testing.assert_array_equal(npy(w), w_before)
    np.testing.assert_array_equal(npy(buf), buf_before)
    assert w.grad is g_obj
    np.testing.assert_array_equal(npy(w.grad), g_before)
    assert w.requires_grad and w.is_leaf
    # the same function without the failure then does the update once, as eager would
    f(x, False)
    np.testing.assert_allclose(npy(w), w_before - 0.1 * (g_before + npy(x)), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(npy(buf), buf_before + 1.0, rtol=1e-6)
    assert w.grad is None


def test_gcomp_error_during_trace_leaves_state_unchanged():
    w = gcomp.tensor(arr(3))
    before = npy(w).copy()

    @gcomp.compile
    def bad(x):
        w.add_(x)
        return gcomp.ones(2) + x  # shape error after the update

    with pytest.raises(gcomp.GcompError):
        bad(gcomp.tensor(arr(3)))
    np.testing.assert_array_equal(npy(w), before)
