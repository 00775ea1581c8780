"""The fusion pass and kernels(): groups are cycle-free, end at reductions, change no result, and
the optimized HLO's kernels map back to IR nodes and the user's source lines."""

from __future__ import annotations

import networkx as nx
import numpy as np
import torch

import gcomp
from gcomp import ir, nn
from gcomp.ir import Graph, TensorType, float32
from gcomp.passes import run_passes
from gcomp.passes.fusion import REDUCTIONS, clusters, fusible


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(12, 32)
        self.norm = nn.LayerNorm(32)
        self.fc2 = nn.Linear(32, 3)

    def forward(self, x):
        h = self.fc1(x)  # LINE_FC1
        h = gcomp.tanh(h) * 2.0 + h  # LINE_ACT
        return self.fc2(self.norm(h))


def _line(tag: str) -> str:
    for i, text in enumerate(open(__file__).read().splitlines(), 1):
        if text.rstrip().endswith(f"# {tag}"):
            return f"test_fusion.py:{i}"
    raise AssertionError(tag)


def _train(passes, steps=3):
    gcomp.manual_seed(0)
    model = Block()
    opt = gcomp.optim.Adam(model.parameters(), lr=1e-2)
    crit = nn.CrossEntropyLoss()

    @gcomp.compile(passes=passes)
    def step(x, y):
        opt.zero_grad()
        loss = crit(model(x), y)
        loss.backward()
        opt.step()
        return loss

    rng = np.random.default_rng(0)
    x = gcomp.tensor(rng.standard_normal((8, 12)).astype(np.float32))
    y = gcomp.tensor(rng.integers(0, 3, 8))
    losses = [float(step(x, y)) for _ in range(steps)]
    return losses, {k: np.asarray(v) for k, v in model.state_dict().items()}, step, (x, y)


def test_fusion_changes_no_result_of_a_training_step():
    base = [p for p in gcomp.passes.DEFAULT_PIPELINE if p != "fusion"]
    losses, params, step, args = _train(base + ["fusion"])
    want_losses, want_params, _, _ = _train(base)
    assert losses == want_losses  # the same HLO apart from metadata: the same bits
    for k in params:
        np.testing.assert_array_equal(params[k], want_params[k], err_msg=k)
    text = step.ir(*args)
    assert "= fusion(" in text and "    body(" in text
    assert ir.parse(text).contains("fusion")


def test_groups_are_cycle_free_and_end_at_reductions():
    _, _, step, args = _train([p for p in gcomp.passes.DEFAULT_PIPELINE if p != "fusion"], 1)
    g = ir.parse(step.ir(*args))
    groups = clusters(g)
    assert len(groups) >= 5
    member = {n: k for k, grp in enumerate(groups) for n in grp}
    for grp in groups:
        assert all(fusible(n) for n in grp)
        for n in grp:  # nobody in a group reads a reduction of the same group
            assert not any(v.producer in grp and v.producer.op in REDUCTIONS for v in n.inputs)
    # the graph of groups and other nodes is acyclic (networkx builds the quotient independently)
    dag = nx.DiGraph()
    unit = {n: ("g", member[n]) if n in member else ("n", i) for i, n in enumerate(g.nodes)}
    dag.add_nodes_from(set(unit.values()))
    for n in g.nodes:
        for v in n.inputs:
            if v.producer is not None and unit[v.producer] != unit[n]:
                dag.add_edge(unit[v.producer], unit[n])
    assert nx.is_directed_acyclic_graph(dag)
    fused = run_passes(g.copy(), ["fusion"])
    assert len(fused.nodes) < len(g.nodes) // 2


def test_fusion_is_differentiable():
    """A fusion node written in the IR differentiates like its body (its VJP is a fusion of the
    body's VJP), checked against float64 central differences."""
    g = Graph("f")
    x = g.add_input(TensorType((3, 4), float32), "x")
    y = g.add_input(TensorType((4,), float32), "y")
    body = Graph("body")
    bx, by = body.add_input(x.type), body.add_input(y.type)
    b = body.add_node("broadcast", [by], {"shape": (3, 4), "dims": (1,)}).outputs[0]
    t = body.add_node("tanh", [body.add_node("mul", [bx, b]).outputs[0]]).outputs[0]
    s = body.add_node("reduce_sum", [t], {"axes": (0, 1)}).outputs[0]
    body.outputs = [s]
    (out,) = g.add_node("fusion", [x, y], {"regions": (body,)}).outputs
    seed = g.add_node("full", [], {"shape": (), "value": 1.0, "dtype": float32}).outputs[0]
    g.outputs = [out] + g.add_node("grad", [out, seed, x, y], {"outputs": 1}).outputs
    expanded = run_passes(g, ["autodiff"])
    assert expanded.contains("fusion") and not expanded.contains("grad")
    rng = np.random.default_rng(1)
    xv, yv = rng.standard_normal((3, 4)), rng.standard_normal(4)
    _, gx, gy = (np.asarray(a, np.float64) for a in
                 ir.interpret(expanded, xv.astype(np.float32), yv.astype(np.float32)))

    def f(xa, ya):
        return np.tanh(xa * ya).sum()

    eps = 1e-6
    for got, arr in ((gx, xv), (gy, yv)):
        fd = np.zeros_like(arr)
        for i in np.ndindex(arr.shape):
            hi, lo = arr.copy(), arr.copy()
            hi[i] += eps
            lo[i] -= eps
            fd[i] = ((f(hi, yv) - f(lo, yv)) if arr is xv else (f(xv, hi) - f(xv, lo))) / (2 * eps)
        np.testing.assert_allclose(got, fd, rtol=1e-4, atol=1e-5)


def test_kernels_name_ir_nodes_fusions_and_source_lines():
    _, _, step, args = _train("default", 1)
    ks = step.kernels(*args)
    assert len(ks) >= 5
    table = str(ks)
    assert table.splitlines()[0].split()[:3] == ["executable", "kernel", "kind"]
    located = [k for k in ks if k.nodes]
    assert located and all(k.sources for k in located)
    act = _line("LINE_ACT")
    # the tanh line's elementwise work runs in kernels that belong to gcomp fusion groups
    act_kernels = [k for k in ks if act in k.sources]
    assert act_kernels and any(k.fusions for k in act_kernels)
    assert any("tanh" in n for k in act_kernels for n in k.nodes)
    # the first Linear's matmul is a kernel of its own, tied to that line
    fc1 = _line("LINE_FC1")
    assert any(fc1 in k.sources and any("dot_general" in n for n in k.nodes) for k in ks)


def test_kernels_of_a_compiled_module_cover_forward_and_backward():
    gcomp.manual_seed(0)
    model = Block()
    cm = gcomp.compile(model)
    x = gcomp.randn(4, 12)
    cm(x).sum().backward()
    ks = cm.kernels(x)
    assert {k.executable for k in ks} == {"Block", "Block_backward"}
    assert any(k.fusions for k in ks if k.executable == "Block_backward")


def test_groups_of_contracted_graphs_never_form_cycles(caplog):
    """Two groups linked through matmuls both ways (a soft-target cross-entropy's backward): the
    check walks the graph with groups contracted, so the topological rebuild never fails (it
    would log a warning and leave the graph unfused)."""
    rng = np.random.default_rng(0)
    x = gcomp.tensor(rng.standard_normal((6, 5)).astype(np.float32), requires_grad=True)
    p = rng.random((6, 5))
    p = gcomp.tensor((p / p.sum(1, keepdims=True)).astype(np.float32))
    crit = nn.CrossEntropyLoss(gcomp.tensor(rng.random(5).astype(np.float32)),
                               reduction="sum", label_smoothing=0.15)
    f = gcomp.compile(lambda a, b: crit(a, b))
    with caplog.at_level("WARNING", logger="gcomp.passes"):
        loss = f(x, p)
        loss.backward()
    assert not [r for r in caplog.records if "cycle" in r.getMessage()]
    want = torch.nn.functional.cross_entropy(
        torch.tensor(np.asarray(x.detach())), torch.tensor(np.asarray(p)),
        weight=torch.tensor(np.asarray(crit.weight)), reduction="sum", label_smoothing=0.15)
    np.testing.assert_allclose(float(loss), float(want), rtol=1e-5)
    assert "= fusion(" in f.stages(x, p)[-2].graph  # the backward executable is fused
