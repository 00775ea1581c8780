"""Rematerialization (passes/remat.py) and the minimum-cut partition (passes/partition.py).

References: the graph before the pass run by the reference interpreter, the same compiled step
without remat, eager training, and eager autograd for compiled modules. The minimum cut is
checked on small graphs by which values it saves.
"""

from __future__ import annotations

import logging

import jax
import numpy as np
import pytest

import gcomp
from gcomp import nn
from gcomp.ir import GcompError, interpret, parse, verify
from gcomp.lowering import to_jax_dtype
from gcomp.lowering.jit import to_function
from gcomp.passes import run_passes
from gcomp.passes.remat import choose, remat

BASE = ["autodiff", "simplify", "fold", "cse", "dce"]
REMAT = BASE + ["remat"]
RNG = np.random.default_rng(0)


def _inputs(graph, rng=RNG):
    out = []
    for v in graph.inputs:
        dt = to_jax_dtype(v.type.dtype)
        if v.type.dtype.is_floating_point:
            out.append((0.5 * rng.standard_normal(v.type.shape)).astype(dt))
        else:
            out.append(rng.integers(0, 2**31, v.type.shape).astype(dt))
    return out


# -- the pass on whole training steps ------------------------------------------------------------

def _model(kind):
    if kind == "gelu_mlp":
        return nn.Sequential(nn.Linear(6, 16), nn.GELU(), nn.Linear(16, 16), nn.GELU(),
                             nn.Linear(16, 3))
    if kind == "layernorm_silu_dropout":
        return nn.Sequential(nn.Linear(6, 16), nn.LayerNorm(16), nn.SiLU(), nn.Dropout(0.3),
                             nn.Linear(16, 3))
    raise ValueError(kind)


def _train(kind, passes, steps=3, options=None):
    """Losses and final parameters of ``steps`` Adam steps (compiled with ``passes``, or eager
    for None), from the same weights, batches and dropout draws."""
    gcomp.manual_seed(0)
    model = _model(kind)
    opt = gcomp.optim.Adam(model.parameters(), lr=1e-2)
    crit = nn.CrossEntropyLoss()

    def step(x, y):
        opt.zero_grad()
        loss = crit(model(x), y)
        loss.backward()
        opt.step()
        return loss

    run = step if passes is None else gcomp.compile(step, passes=passes, options=options)
    rng = np.random.default_rng(1)
    losses = []
    for _ in range(steps):
        x = gcomp.tensor(rng.standard_normal((8, 6)).astype(np.float32))
        y = gcomp.tensor(rng.integers(0, 3, 8))
        losses.append(float(run(x, y)))
    graph = None if passes is None else run.stages(x, y)[-1].graph
    return losses, {k: np.asarray(v) for k, v in model.state_dict().items()}, graph


@pytest.mark.parametrize("kind", ["gelu_mlp", "layernorm_silu_dropout"])
def test_training_with_remat_equals_without_and_eager(kind):
    losses, params, graph = _train(kind, REMAT)
    base_losses, base_params, _ = _train(kind, BASE)
    eager_losses, eager_params, _ = _train(kind, None)
    assert "optimization_barrier" in graph  # it fired
    np.testing.assert_allclose(losses, base_losses, rtol=1e-6)
    np.testing.assert_allclose(losses, eager_losses, rtol=1e-5)
    for k in params:
        np.testing.assert_allclose(params[k], base_params[k], rtol=1e-6, atol=1e-7, err_msg=k)
        np.testing.assert_allclose(params[k], eager_params[k], rtol=1e-5, atol=1e-6, err_msg=k)


def test_remat_before_fusion_equals_fusion_alone():
    """Where the pass belongs in the pipeline: after dce, before fusion groups its copies."""
    losses, params, graph = _train("gelu_mlp", REMAT + ["fusion"])
    base_losses, base_params, _ = _train("gelu_mlp", BASE + ["fusion"])
    assert "optimization_barrier" in graph and "fusion" in graph
    np.testing.assert_allclose(losses, base_losses, rtol=1e-6)
    for k in params:
        np.testing.assert_allclose(params[k], base_params[k], rtol=1e-6, atol=1e-7, err_msg=k)


def _step_graph(kind="gelu_mlp", passes=BASE):
    gcomp.manual_seed(0)
    model = _model(kind)
    opt = gcomp.optim.SGD(model.parameters(), lr=0.1)

    @gcomp.compile(passes=passes)
    def step(x, y):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    x, y = gcomp.randn(8, 6), gcomp.tensor(np.arange(8) % 3)
    return parse(step.stages(x, y)[-1].graph)


def test_remat_preserves_what_the_graph_computes():
    """The graph after the pass against the graph before, by the reference interpreter and by
    XLA (bits equal where XLA fuses the copies like the originals; float tolerance otherwise)."""
    g = _step_graph()
    out = run_passes(g.copy(), ["remat"])
    verify(out)
    assert str(parse(str(out))) == str(out)
    args = _inputs(g)
    for run in (interpret, lambda graph, *a: jax.jit(to_function(graph))(*a)):
        for a, b in zip(run(g, *args), run(out, *args)):
            np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-6, atol=1e-7)


def test_recomputed_nodes_stand_next_to_their_backward_uses():
    g = run_passes(_step_graph(), ["remat"])
    ops = [n.op for n in g.nodes]
    seed = ops.index("grad_seed")
    # the forward's GELUs are computed once each before the seed; their copies after it, each
    # behind a barrier whose last operand is a backward value
    assert ops[:seed].count("erf") == 2
    assert ops[seed:].count("erf") >= 2
    backward = {v for n in g.nodes[seed:] for v in n.outputs}
    for n in g.nodes[seed:]:
        if n.op == "optimization_barrier":
            assert n.inputs[-1] in backward
    # no backward node reads a forward erf or the forward GELU output any more
    forward_erf = {n.outputs[0] for n in g.nodes[:seed] if n.op == "erf"}
    assert not any(v in forward_erf for n in g.nodes[seed:] for v in n.inputs)


def test_deterministic():
    g = _step_graph("layernorm_silu_dropout")
    assert str(run_passes(g.copy(), ["remat"])) == str(run_passes(g.copy(), ["remat"]))


def test_no_backward_no_change():
    gcomp.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.GELU())  # updates its stats

    @gcomp.compile(passes=BASE)
    def f(x):
        return model(x)

    g = parse(f.stages(gcomp.randn(4, 6))[-1].graph)
    assert g.updates  # a graph with state updates, but no backward
    assert str(run_passes(g.copy(), ["remat"])) == str(g)


def test_random_draws_are_never_recomputed():
    g = _step_graph("layernorm_silu_dropout")
    out = run_passes(g.copy(), ["remat"])
    assert out.op_counts()["random_bits"] == g.op_counts()["random_bits"] == 1
    assert out.op_counts().get("optimization_barrier", 0) > 0


def test_a_graph_with_grad_requests_is_left_alone():
    text = """graph @f(%x: f32[3]) {
  %0: f32[3] = exp(%x)
  %1: f32[] = reduce_sum(%0) {axes=[0]}
  %2: f32[] = full() {shape=[], value=1.0, dtype=f32}
  %3: f32[3] = grad(%1, %2, %x)
  return %3
}
"""
    g = parse(text)
    assert str(remat(g)) == text  # the pass itself: a pipeline would run autodiff first


def test_the_backward_is_found_after_the_seed_is_folded_away():
    """The grad_seed marker survives simplify, fold and cse even when the seed is a constant 1."""
    g = _step_graph(passes=BASE)
    assert g.op_counts()["grad_seed"] == 1
    seed = next(n for n in g.nodes if n.op == "grad_seed")
    assert seed.inputs[0].producer.op == "full"


# -- the minimum cut on small graphs -----------------------------------------------------------

CUT = """graph @f(%x: f32[4,8], %w: f32[8,8], %b: f32[8], %key: u32[2]) {
  %0: f32[4,8] = dot_general(%x, %w) {contract=[[1, 1]]}
  %1: f32[4,8] = broadcast(%b) {shape=[4, 8], dims=[1]}
  %2: f32[4,8] = add(%0, %1)
  %3: f32[4,8] = tanh(%2)
  %4: f32[4,8] = mul(%2, %3)
  %5: f32[4] = reduce_sum(%4) {axes=[1]}
  %6: f32[4,8] = broadcast(%5) {shape=[4, 8], dims=[0]}
  %7: f32[4,8] = exp(%6)
  %8: u32[4,8] = random_bits(%key) {shape=[4, 8]}
  %9: f64[4,8] = cast(%8) {dtype=f64}
  return %7, %9
}
"""


@pytest.mark.parametrize("needed, saved, recomputed", [
    # a GELU-like chain: its input is saved, the rest recomputed from it
    (["2", "3", "4"], ["2"], ["tanh", "mul"]),
    # a broadcast of a bias from an input: free, nothing saved
    (["1"], [], ["broadcast"]),
    # a large broadcast of a small reduction: the reduction is saved, not its broadcast
    (["6", "7"], ["5"], ["broadcast", "exp"]),
    # a random draw is never recomputed: saved (smaller than its f64 cast), the cast recomputed
    (["9"], ["8"], ["cast"]),
    # a matmul's result read as such is saved
    (["0"], ["0"], []),
])
def test_min_cut_saves_the_expected_values(needed, saved, recomputed):
    g = parse(CUT)
    vals = {str(i): n.outputs[0] for i, n in enumerate(g.nodes)}
    choice = choose(g.nodes, [vals[k] for k in needed])
    assert choice.saved == [vals[k] for k in saved]
    assert [n.op for n in choice.recompute] == recomputed
    assert choice.saved_bytes == sum(vals[k].type.nbytes for k in saved)


def test_budget_recomputes_expensive_nodes_until_it_fits(caplog):
    g = parse(CUT)
    vals = {str(i): n.outputs[0] for i, n in enumerate(g.nodes)}
    needed = [vals["2"], vals["4"]]
    assert choose(g.nodes, needed).saved == [vals["2"]]
    fits = choose(g.nodes, needed, budget=0)  # the matmul may be recomputed, from inputs
    assert fits.saved == [] and "dot_general" in [n.op for n in fits.recompute]
    with caplog.at_level(logging.INFO, logger="gcomp.passes"):
        drawn = choose(g.nodes, [vals["9"]], budget=0)  # a draw cannot be recomputed
    assert drawn.saved == [vals["8"]]
    assert "over the budget" in caplog.text


def test_budget_option_is_checked():
    with pytest.raises(GcompError, match="remat_budget"):
        gcomp.compile(lambda x: x, options={"remat_budget": -1})
    with pytest.raises(GcompError, match="remat_budget"):
        gcomp.compile(lambda x: x, options={"remat_budget": "1MiB"})


def test_budget_in_a_training_step():
    """A budget of 0 bytes recomputes the matmuls too; results stay the training's."""
    losses, params, graph = _train("gelu_mlp", REMAT, options={"remat_budget": 0})
    base_losses, base_params, base_graph = _train("gelu_mlp", BASE)
    assert parse(graph).op_counts()["dot_general"] > parse(base_graph).op_counts()["dot_general"]
    np.testing.assert_allclose(losses, base_losses, rtol=1e-6)
    for k in params:
        np.testing.assert_allclose(params[k], base_params[k], rtol=1e-6, atol=1e-7, err_msg=k)


# -- the forward/backward partition of compiled modules ------------------------------------------

def _module_grads(kind, compiled, options=None):
    gcomp.manual_seed(0)
    model = _model(kind).eval()  # eval: no dropout draws to match
    run = gcomp.compile(model, passes=BASE, options=options) if compiled else model
    rng = np.random.default_rng(2)
    x = gcomp.tensor(rng.standard_normal((8, 6)).astype(np.float32), requires_grad=True)
    out = run(x)
    (out * out).sum().backward()
    grads = [np.asarray(p.grad) for p in model.parameters()] + [np.asarray(x.grad)]
    return grads, run, x


@pytest.mark.parametrize("kind", ["gelu_mlp", "layernorm_silu_dropout"])
@pytest.mark.parametrize("options", [None, {"remat_budget": 0}])
def test_compiled_module_gradients_equal_eager(kind, options):
    grads, _, _ = _module_grads(kind, True, options)
    eager, _, _ = _module_grads(kind, False)
    for a, b in zip(grads, eager):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def _residuals(run, x):
    stages = {s.name: s.graph for s in run.stages(x)}
    fwd = parse(stages["forward"])
    n_user = len(parse(stages["dce"]).outputs)
    return fwd.outputs[n_user:]


def test_partition_saves_a_gelu_input_not_its_output():
    _, run, x = _module_grads("gelu_mlp", True)
    residuals = _residuals(run, x)
    producers = [v.producer.op for v in residuals]
    # one value per GELU (its input, the layer's pre-activation), nothing else: the GELU output
    # the next layer's weight gradient reads is recomputed in the backward
    assert len(residuals) == 2, producers
    assert all(op in ("add", "dot_general") for op in producers), producers


def test_partition_budget_bounds_the_residual_bytes():
    _, run, x = _module_grads("gelu_mlp", True)
    full = sum(v.type.nbytes for v in _residuals(run, x))
    _, run0, x0 = _module_grads("gelu_mlp", True, {"remat_budget": 0})
    assert full > 0 and sum(v.type.nbytes for v in _residuals(run0, x0)) == 0
