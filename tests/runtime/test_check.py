"""GCOMP_CHECK=1: compiled calls are checked against eager execution; a miscompile or a failure
writes a repro (IR text + inputs) that `gcomp run` replays, and leaves state untouched."""

from __future__ import annotations

import numpy as np
import pytest

import gcomp
from gcomp import nn
from gcomp.cli import main
from gcomp.ir import parse
from gcomp.passes.manager import PASSES


@pytest.fixture
def checking(monkeypatch, tmp_path):
    monkeypatch.setenv("GCOMP_CHECK", "1")
    monkeypatch.setenv("GCOMP_REPRO_DIR", str(tmp_path))
    return tmp_path


@pytest.fixture
def bad_pass(monkeypatch):
    """A deliberately wrong pass: every add becomes a sub."""

    def swap(graph):
        for n in graph.nodes:
            if n.op == "add":
                n.op = "sub"
        return graph

    monkeypatch.setitem(PASSES, "miscompile", swap)
    return "miscompile"


def _model_and_step(passes):
    gcomp.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    opt = gcomp.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

    def step(x, y):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    return model, opt, gcomp.compile(step, passes=passes)


def _data():
    rng = np.random.default_rng(0)
    return (gcomp.tensor(rng.standard_normal((6, 4)).astype(np.float32)),
            gcomp.tensor(rng.integers(0, 2, 6)))


def test_a_correct_step_passes_the_check_and_matches_unchecked_runs(checking, monkeypatch):
    model, _, step = _model_and_step("default")
    x, y = _data()
    checked = [float(step(x, y)) for _ in range(3)]
    monkeypatch.delenv("GCOMP_CHECK")
    model2, _, step2 = _model_and_step("default")
    plain = [float(step2(x, y)) for _ in range(3)]
    np.testing.assert_array_equal(checked, plain)
    assert list(checking.iterdir()) == []  # no repro


def test_a_miscompile_is_caught_with_a_replayable_repro(checking, bad_pass, capsys):
    model, opt, step = _model_and_step([bad_pass])
    x, y = _data()
    before = {k: np.asarray(v).copy() for k, v in model.state_dict().items()}
    with pytest.raises(gcomp.GcompError, match="disagrees with eager") as info:
        step(x, y)
    msg = str(info.value)
    gir, npz = checking / "step.gir", checking / "step.inputs.npz"
    assert str(gir) in msg and str(npz) in msg and "gcomp run" in msg and "--fuel" in msg
    for k, v in model.state_dict().items():  # nothing was written back
        np.testing.assert_array_equal(np.asarray(v), before[k], err_msg=k)
    for st in opt.state.values():  # tracing may create the buffers, but never updates them
        assert all(not np.asarray(b).any() for b in st.values())
    # the repro is the traced graph; replayed, it gives the eager step's loss
    assert "= grad(" in gir.read_text()
    parse(gir.read_text())
    out = checking / "out.npz"
    assert main(["run", str(gir), "--inputs", str(npz), "--out", str(out)]) == 0
    capsys.readouterr()
    eager_model, _, _ = _model_and_step("default")
    want = nn.functional.cross_entropy(eager_model(x), y)
    np.testing.assert_allclose(np.load(out)["out0"], want.detach().numpy(), rtol=1e-5)


def test_a_failing_compile_writes_a_repro(checking, monkeypatch):
    from gcomp import lowering

    def broken(*args, **attrs):
        raise RuntimeError("lowering exploded")

    monkeypatch.setitem(lowering.LOWERINGS, "tanh", broken)
    f = gcomp.compile(lambda a: gcomp.tanh(a) * 2)
    with pytest.raises(gcomp.GcompError, match="lowering exploded") as info:
        f(gcomp.ones(3))
    assert str(checking / "<lambda>.gir") in str(info.value) or "repro" in str(info.value)
    girs = list(checking.glob("*.gir"))
    assert len(girs) == 1 and "tanh(" in girs[0].read_text()
    inputs = np.load(next(checking.glob("*.inputs.npz")))
    np.testing.assert_array_equal(list(inputs.values())[0], np.ones(3, np.float32))
