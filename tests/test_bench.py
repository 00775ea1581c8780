"""gcomp.benchmark, `gcomp bench` and `gcomp dump` (in process, through gcomp.cli.main), the
built-in workloads, and the `make run` demo.

Timings are never asserted; what is checked is what the numbers are made of: rows, rounds,
ratios of medians, first losses against numpy, XLA's byte counts against the arrays passed in,
and dumped IR that parses back to the node counts the summary gives."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

import gcomp
from gcomp.bench import measure
from gcomp.bench.workloads import WORKLOADS
from gcomp.cli import main

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--repeat", "2", "--steps", "2", "--warmup", "1"]


def numpy_mlp_loss(state, x, y) -> float:
    """The MLP's cross-entropy at these weights: the independent reference of its first loss."""
    h = np.maximum(x @ state["0.weight"].T + state["0.bias"], 0)
    z = (h @ state["2.weight"].T + state["2.bias"]).astype(np.float64)
    logp = z - z.max(1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(1, keepdims=True))
    return float(-logp[np.arange(len(y)), y].mean())


def run_cli(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_bench_mlp_json_table_and_plot(tmp_path, capsys):
    path = tmp_path / "out.json"
    argv = ["bench", "mlp", "--repeat", "3", "--steps", "2", "--json", str(path)]
    has_plot = importlib.util.find_spec("matplotlib") is not None
    if has_plot:
        argv += ["--plot", str(tmp_path / "out.png")]
    rc, out, err = run_cli(capsys, *argv)
    assert rc == 0, err
    doc = json.loads(path.read_text())
    assert set(doc) == {"versions", "machine", "settings", "targets"}
    assert doc["versions"]["gcomp"] == gcomp.__version__ and doc["machine"]["cores"] >= 1
    assert doc["settings"] == {"steps": 2, "repeat": 3, "warmup": 3, "budget": 10.0,
                               "compare": []}
    (target,) = doc["targets"]
    assert target["name"] == "mlp"
    rows = {r["name"]: r for r in target["rows"]}
    assert list(rows) == ["eager", "compiled"]
    for r in rows.values():
        assert r["error"] is None and r["rounds"] == 3 and r["steps"] == 2
        assert r["min_ms"] <= r["median_ms"] <= r["max_ms"]
        assert r["interval_ms"][0] <= r["median_ms"] <= r["interval_ms"][1]
        assert r["compile_s"] == pytest.approx(max(0.0, (r["first_ms"] - r["median_ms"]) / 1e3))
        assert r["rss_mb"] >= 0
    e, c = rows["eager"], rows["compiled"]
    assert target["ratios"]["compiled/eager"] == pytest.approx(c["median_ms"] / e["median_ms"])
    assert c["vs_eager"] == pytest.approx(c["median_ms"] / e["median_ms"]) and e["vs_eager"] == 1
    # both variants start from gcomp's init (seed 0) on the workload's batch
    w = WORKLOADS["mlp"]
    ref = numpy_mlp_loss(w.reference_state(0, gcomp), *w.data(0))
    assert e["first_value"] == pytest.approx(ref, rel=1e-5)
    assert c["first_value"] == pytest.approx(ref, rel=1e-5)
    # XLA's memory analysis: the step reads x, y, the weights and their momentum buffers
    params = sum(a.nbytes for a in w.reference_state(0, gcomp).values())
    xla = c["xla"]
    assert len(xla["executables"]) == 1 and xla["cache_size"] == 1 and e["xla"] is None
    assert xla["argument_bytes"] >= w.data(0)[0].nbytes + 2 * params
    assert xla["output_bytes"] >= 2 * params and xla["temp_bytes"] >= 0
    lines = out.splitlines()
    assert any(ln.startswith("mlp ") and " eager " in ln for ln in lines)
    assert any(" compiled " in ln and f"{c['median_ms']:.3f}" in ln for ln in lines)
    if has_plot:
        assert (tmp_path / "out.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_plot_without_matplotlib_is_one_line(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError
    rc, out, err = run_cli(capsys, "bench", "linreg", "--plot", "x.png")
    assert rc != 0 and out == ""
    assert err.count("\n") == 1 and "matplotlib" in err and "pip install" in err


SCRIPT = '''
import numpy as np
import gcomp

def example_inputs(batch=4):
    return (gcomp.tensor(np.arange(batch * 3, dtype=np.float32).reshape(batch, 3)),)

def squares(x):
    return (x * x).sum()

def constant():
    return gcomp.ones(5).sum() * 2

def boom(x):
    return x.sum() / 0 if x is None else 1 / 0

if __name__ == "__main__":
    raise SystemExit("run as a script: gcomp bench must import it instead")
'''


def test_bench_user_script(tmp_path, capsys, monkeypatch):
    (tmp_path / "my_model.py").write_text(SCRIPT)
    monkeypatch.chdir(tmp_path)
    rc, out, err = run_cli(capsys, "bench", "my_model.py:squares", "--batch", "6", *FAST,
                           "--json", "s.json")
    assert rc == 0, err
    (target,) = json.loads(Path("s.json").read_text())["targets"]
    x = np.arange(18, dtype=np.float64).reshape(6, 3)
    assert target["name"] == "my_model:squares"
    for r in target["rows"]:
        assert r["first_value"] == pytest.approx((x * x).sum()) and r["rounds"] == 2
    rc, out, err = run_cli(capsys, "bench", "my_model.py:constant", *FAST, "--json", "c.json")
    assert rc == 0, err
    rows = json.loads(Path("c.json").read_text())["targets"][0]["rows"]
    assert [r["first_value"] for r in rows] == [10.0, 10.0]


@pytest.mark.parametrize("spec, needles", [
    ("missing.py:f", ["no such file: missing.py"]),
    ("bad.py:sqares", ["no function 'sqares'", "example_inputs", "squares", "boom"]),
    ("bad.py:boom", ["bad.py:15", "ZeroDivisionError", "division by zero"]),
    ("bad.py:1x", ["bad target", "FILE.py:FUNCTION"]),
    ("mlpp", ["not a built-in workload", "mlp", "FILE.py:FUNCTION"]),
    ("bad.py", ["name the function", "squares"]),
])
def test_bench_bad_targets_are_one_line(tmp_path, capsys, monkeypatch, spec, needles):
    (tmp_path / "bad.py").write_text(SCRIPT)
    monkeypatch.chdir(tmp_path)
    rc, out, err = run_cli(capsys, "bench", spec, "--repeat", "1", "--steps", "1")
    assert rc != 0
    assert err.count("\n") == 1 and err.startswith("gcomp bench: "), err
    for n in needles:
        assert n in err, (n, err)


def test_bench_compare_jax_and_torch_eager(tmp_path, capsys):
    path = tmp_path / "j.json"
    rc, out, err = run_cli(capsys, "bench", "mlp", "--compare", "jax", "--compare", "torch-eager",
                           *FAST, "--json", str(path))
    assert rc == 0, err
    rows = {r["name"]: r for r in json.loads(path.read_text())["targets"][0]["rows"]}
    assert list(rows) == ["eager", "compiled", "jax", "torch"]
    w = WORKLOADS["mlp"]
    ref = numpy_mlp_loss(w.reference_state(0, gcomp), *w.data(0))
    for name in ("jax", "torch"):  # the same weights and batch as gcomp's rows
        assert rows[name]["error"] is None and rows[name]["median_ms"] > 0
        assert rows[name]["first_value"] == pytest.approx(ref, rel=1e-5)
    assert rows["jax"]["xla"]["argument_bytes"] > 0 and rows["torch"]["xla"] is None
    assert any(ln.split()[:1] == ["jax"] for ln in out.splitlines())


@pytest.mark.slow
def test_bench_compare_torch_compile(tmp_path, capsys):
    path = tmp_path / "t.json"
    rc, out, err = run_cli(capsys, "bench", "linreg", "--compare", "torch", *FAST,
                           "--json", str(path))
    assert rc == 0, err
    rows = {r["name"]: r for r in json.loads(path.read_text())["targets"][0]["rows"]}
    assert list(rows) == ["eager", "compiled", "torch", "torch.compile"]
    assert rows["torch.compile"]["error"] is None
    assert rows["torch.compile"]["first_value"] == pytest.approx(rows["eager"]["first_value"],
                                                                 rel=1e-5)


def test_benchmark_api_and_torch_missing(monkeypatch):
    a = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)
    x = gcomp.tensor(a)

    def f(x):
        return (x @ x.T).relu().sum()

    res = gcomp.benchmark(f, x, repeat=3, steps=2, warmup=1,
                          compare=[("numpy", lambda: np.maximum(a @ a.T, 0).sum())])
    assert [r.name for r in res.rows] == ["eager", "compiled", "numpy"]
    ref = float(np.maximum(a.astype(np.float64) @ a.T, 0).sum())
    for r in res.rows:
        assert r.rounds == 3 and r.median_ms > 0 and r.first_value == pytest.approx(ref, 1e-6)
    assert res.ratios["compiled/eager"] == pytest.approx(res.median("compiled")
                                                         / res.median("eager"))
    assert res["compiled"].xla["cache_size"] == 1 and "compiled" in str(res)
    with pytest.raises(gcomp.GcompError, match="test_bench.py.*built-in workload"):
        gcomp.benchmark(f, x, compare=["torch"])
    with pytest.raises(gcomp.GcompError, match="warmup must be at least 1"):
        gcomp.benchmark(f, x, warmup=0)
    monkeypatch.setitem(sys.modules, "torch", None)  # as if torch were not installed
    res = gcomp.benchmark("linreg", compare="torch-eager", repeat=1, steps=1, warmup=1)
    assert "torch is not installed" in res["torch"].error and res["torch"].median_ms is None
    assert res["compiled"].median_ms > 0


def test_benchmark_syncs_on_written_back_state():
    """The compiled variant waits for the state it writes back: the arrays it blocks on are the
    parameters' current ones, after the steps the benchmark ran."""
    from gcomp.bench.runner import function_cases, state_arrays

    model = gcomp.nn.Linear(3, 2)
    opt = gcomp.optim.SGD(model.parameters(), lr=0.1)
    x = gcomp.ones(4, 3)

    def step(x):
        opt.zero_grad()
        loss = model(x).sum()
        loss.backward()
        opt.step()
        return loss

    eager, compiled = function_cases(step, (x,), {}, "step", None)
    compiled.sync(compiled.step())
    arrays = {id(a) for a in state_arrays(compiled.compiled)}
    for p in model.parameters():
        assert id(p._storage.data) in arrays
    before = model.weight.detach().numpy().copy()
    eager.sync(eager.step())  # the eager step updates the same parameters
    np.testing.assert_allclose(model.weight.detach().numpy(), before - 0.1 * 4, rtol=1e-6)


def test_median_interval_covers_the_true_median():
    rng = np.random.default_rng(0)
    for n in (10, 30):
        hits = 0
        for _ in range(1000):
            lo, hi = measure.median_interval(rng.standard_normal(n))
            hits += lo <= 0.0 <= hi
        assert 0.93 <= hits / 1000 <= 0.995, (n, hits)


def test_adaptive_rounds_stop_by_budget_or_stability():
    cases = {"a": (lambda: 1, lambda r: None), "b": (lambda: 2, lambda r: None)}
    out = measure.run_in_turns(cases, steps=1, budget=0.0)  # spent at once: the minimum 3
    assert [len(t.times) for t in out.values()] == [3, 3]
    out = measure.run_in_turns(cases, steps=1, budget=1e9, tol=float("inf"))  # stable at once
    assert [len(t.times) for t in out.values()] == [measure.MIN_ROUNDS] * 2
    out = measure.run_in_turns({"x": (lambda: 1 / 0, lambda r: None)}, steps=1, repeat=2)
    assert out["x"].error.endswith("ZeroDivisionError: division by zero") and not out["x"].times


def test_dump_mlp_files_parse_back(tmp_path, capsys):
    out_dir = tmp_path / "d"
    out_dir.mkdir()
    (out_dir / "99_stale.gir").write_text("left by an earlier dump")
    (out_dir / "notes.txt").write_text("the user's own file")
    rc, out, err = run_cli(capsys, "dump", "mlp", "--out", str(out_dir))
    assert rc == 0, err
    summary = json.loads((out_dir / "summary.json").read_text())
    girs = sorted(out_dir.glob("*.gir"))
    assert [p.name for p in girs] == [f"{i:02d}_{s['stage']}.gir"
                                      for i, s in enumerate(summary["stages"])]
    assert summary["stages"][0]["stage"] == "traced" and len(girs) >= 5
    for p, stage in zip(girs, summary["stages"]):
        g = gcomp.ir.parse(p.read_text())
        assert len(g.nodes) == stage["nodes"] and str(g) == p.read_text()
    k = len(girs)
    assert summary["executables"] == [f"{k:02d}_mlp_step.stablehlo.mlir",
                                      f"{k + 1:02d}_mlp_step.optimized_hlo.txt"]
    assert "stablehlo." in (out_dir / summary["executables"][0]).read_text()
    assert "HloModule" in (out_dir / summary["executables"][1]).read_text()
    assert not (out_dir / "99_stale.gir").exists() and (out_dir / "notes.txt").exists()
    listed = [ln.split()[0] for ln in out.splitlines()[1:]]
    assert listed == sorted(p.name for p in out_dir.iterdir() if p.name != "notes.txt")
    assert str(out_dir) in out.splitlines()[0]


def test_dump_user_script_and_failure(tmp_path, capsys, monkeypatch):
    (tmp_path / "m.py").write_text(SCRIPT)
    monkeypatch.chdir(tmp_path)
    rc, out, err = run_cli(capsys, "dump", "m.py:squares", "--batch", "2")
    assert rc == 0, err
    folder = tmp_path / "gcomp_dump" / "squares"
    traced = gcomp.ir.parse((folder / "00_traced.gir").read_text())
    assert [str(v.type) for v in traced.inputs] == ["f32[2,3]"]
    rc, out, err = run_cli(capsys, "dump", "m.py:boom")
    assert rc != 0 and err.count("\n") == 1 and "ZeroDivisionError" in err and "m.py:15" in err


def test_demo_runs(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("gcomp_demo", ROOT / "examples" / "demo.py")
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    res = demo.main(epochs=1, dump_dir=str(tmp_path / "dump"), budget=0.2, batches=8)
    out = capsys.readouterr().out
    e, c = res["eager"], res["compiled"]
    assert c["first_loss"] == pytest.approx(e["first_loss"], rel=1e-5)  # the same first step
    assert abs(c["accuracy"] - e["accuracy"]) <= 0.03  # 8 steps: drift stays small
    assert np.log(10) * 0.9 < e["first_loss"] < np.log(10) * 1.1  # untrained: ~uniform over 10
    assert [r.name for r in res["benchmark"].rows] == ["eager", "compiled"]
    assert (tmp_path / "dump" / "00_traced.gir").exists()
    assert "test accuracy" in out and "compiled" in out and str(tmp_path / "dump") in out


def test_scripts_workloads_are_the_package_ones():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import jax_steps
        import workloads
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    import gcomp.bench.jax_steps as pkg_jax

    assert workloads.WORKLOADS is WORKLOADS and jax_steps.make_step is pkg_jax.make_step
    assert workloads.measure is measure.measure
    w = WORKLOADS["cnn"].with_batch(4)
    assert w.data()[0].shape == (4, 3, 32, 32) and WORKLOADS["cnn"].x_shape[0] == 32
