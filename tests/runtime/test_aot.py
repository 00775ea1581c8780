"""Ahead of time (Note [Artifacts] in gcomp/runtime/aot.py): lower from specs or tensors,
compile, analyses, save, load in a fresh process without the model's code, resume training;
artifact errors; the persistent compilation cache across processes."""

import json
import os
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest

import gcomp
from gcomp import nn


def _mlp(seed=0):
    gcomp.manual_seed(seed)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))


def _inference():
    model = _mlp().eval()

    def infer(x):
        with gcomp.no_grad():
            return {"logits": model(x), "mean": model(x).mean()}

    return model, gcomp.compile(infer)


def _training(seed=0):
    model = _mlp(seed)
    opt = gcomp.optim.Adam(model.parameters(), lr=1e-2)

    def step(x, y):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    return model, opt, gcomp.compile(step)


def _batches(n=5):
    rng = np.random.default_rng(0)
    return [(rng.standard_normal((4, 8)).astype(np.float32), rng.integers(0, 3, 4))
            for _ in range(n)]


def test_lower_from_specs_and_tensors_ir_hlo_and_analyses():
    model, infer = _inference()
    low = infer.lower(gcomp.Spec((4, 8)))
    g = gcomp.ir.parse(low.ir)
    assert [v.state for v in g.inputs[1:]] == ["model.0.weight", "model.0.bias",
                                               "model.2.weight", "model.2.bias"]
    assert "stablehlo" in low.as_text() and "func.func" in low.as_text()
    assert infer.lower(gcomp.randn(4, 8)).ir == low.ir  # the same executable from a tensor
    comp = low.compile()
    assert "ENTRY" in comp.as_text()
    flops = comp.cost_analysis()["flops"]
    matmuls = 2 * 4 * 8 * 16 + 2 * 4 * 16 * 3
    assert matmuls <= flops <= 3 * matmuls
    mem = comp.memory_analysis()
    sizes = 4 * 8 * 4 + sum(p.numel() * 4 for p in model.parameters())
    assert mem["argument"] == sizes and mem["output"] >= 4 * 3 * 4
    x = gcomp.randn(4, 8)
    out = comp(x)
    np.testing.assert_allclose(out["logits"].numpy(), model(x).detach().numpy(), rtol=1e-6)
    assert infer.cache_info().misses == 1  # lowering, compiling and calling: one trace
    with pytest.raises(gcomp.GcompError, match=r"compiled for other arguments: argument 0 \(x\) "
                       r"changed from f32\[4,8\] to f32\[5,8\]"):
        comp(gcomp.randn(5, 8))


def test_lowering_from_specs_allocates_nothing():
    # 64 GiB of float32: allocating it would fail here, so lowering and compiling must not
    f = gcomp.compile(lambda x, y: (x * 2).sum() + y.sum())
    big = (1 << 17, 1 << 17)
    comp = f.lower(gcomp.Spec(big), gcomp.Spec((3,), gcomp.int64)).compile()
    assert comp.memory_analysis()["argument"] == 4 * (1 << 34) + 8 * 3
    assert comp.cost_analysis()["bytes accessed"] >= 4 * (1 << 34)


def test_a_call_inside_eager_autograd_lowers_but_says_how_to_save(tmp_path):
    model = gcomp.compile(_mlp())
    low = model.lower(gcomp.Spec((4, 8)))  # parameters require grad: forward and backward
    assert low.as_text().count("func.func public @main") == 2
    with pytest.raises(gcomp.GcompError, match="save a whole training step.*no_grad"):
        low.compile().save(tmp_path / "m.gca")
    with gcomp.no_grad():
        model.lower(gcomp.Spec((4, 8))).compile().save(tmp_path / "m.gca")
    x = gcomp.randn(4, 8)
    with gcomp.no_grad():
        want = model(x).numpy()
    np.testing.assert_allclose(gcomp.load(tmp_path / "m.gca")(x).numpy(), want, rtol=1e-6)


@pytest.mark.parametrize("use_executable", [True, False])
def test_loaded_step_trains_like_the_compiled_one_and_shares_its_state(tmp_path,
                                                                        use_executable):
    ref_model, ref_opt, ref = _training()
    _, _, step = _training()
    data = [(gcomp.tensor(x), gcomp.tensor(y)) for x, y in _batches(3)]
    step.lower(*data[0]).compile().save(tmp_path / "s.gca")
    loaded = gcomp.load(tmp_path / "s.gca", use_executable=use_executable)
    sd = loaded.state_dict()
    w0 = np.array(sd["model.0.weight"].numpy())
    held = sd["model.2.bias"].numpy()  # a numpy view of a state buffer: never donated away
    held_copy = np.array(held)
    for x, y in data:
        np.testing.assert_allclose(loaded(x, y.numpy()).item(), ref(x, y).item(), rtol=1e-6)
    np.testing.assert_array_equal(held, held_copy)
    assert not np.array_equal(sd["model.0.weight"].numpy(), w0)  # the tensors see each update
    np.testing.assert_allclose(sd["model.0.weight"].numpy(), ref_model[0].weight.detach().numpy(),
                               rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(loaded.state_dict()["opt.state.0.exp_avg"].numpy(),
                               ref_opt.state[ref_model[0].weight]["exp_avg"].numpy(),
                               rtol=1e-5, atol=1e-7)


def test_saved_programs_run_in_a_fresh_process_and_training_resumes(tmp_path):
    model, infer = _inference()
    x = np.random.default_rng(1).standard_normal((4, 8)).astype(np.float32)
    infer.lower(gcomp.Spec((4, 8))).compile().save(tmp_path / "infer.gca")
    want = infer(gcomp.tensor(x))

    _, _, step = _training()
    data = _batches()
    comp = step.lower(gcomp.Spec((4, 8)), gcomp.Spec((4,), gcomp.int64)).compile()
    comp.save(tmp_path / "step.gca")  # the step, holding the initial state
    losses = []
    for i, (bx, by) in enumerate(data):
        losses.append(comp(gcomp.tensor(bx), gcomp.tensor(by)).item())
        if i == 1:  # the state after step 2, by state path, which step 3 resumes from
            state = comp.state_dict()
            assert {"model.0.weight", "opt.state.0.exp_avg"} <= set(state)
            gcomp.save(state, tmp_path / "state2.gcs")
    np.savez(tmp_path / "data.npz", x=x, **{f"x{i}": b[0] for i, b in enumerate(data)},
             **{f"y{i}": b[1] for i, b in enumerate(data)})
    script = textwrap.dedent("""
        import sys, numpy as np, gcomp
        assert "test_aot" not in sys.modules
        d = np.load("data.npz")
        infer = gcomp.load("infer.gca")
        out = infer(d["x"])
        step = gcomp.load("step.gca")
        step.load_state_dict(gcomp.load("state2.gcs"))  # what gcomp.save wrote
        losses = [float(step(gcomp.tensor(d[f"x{i}"]), d[f"y{i}"]).item()) for i in (2, 3, 4)]
        np.savez("out.npz", logits=out["logits"].numpy(), mean=out["mean"].numpy(),
                 losses=np.array(losses))
    """)
    (tmp_path / "child.py").write_text(script)
    subprocess.run([sys.executable, "child.py"], cwd=tmp_path, check=True, timeout=120)
    got = np.load(tmp_path / "out.npz")
    np.testing.assert_array_equal(got["logits"], want["logits"].numpy())
    np.testing.assert_array_equal(got["mean"], want["mean"].numpy())
    np.testing.assert_allclose(got["losses"], losses[2:], rtol=1e-6)


def test_artifact_errors_say_what_is_wrong(tmp_path):
    _, infer = _inference()
    path = tmp_path / "a.gca"
    infer.lower(gcomp.Spec((4, 8))).compile().save(path)
    data = path.read_bytes()
    (tmp_path / "cut.gca").write_bytes(data[: len(data) // 2])
    with pytest.raises(gcomp.GcompError, match="truncated or corrupted"):
        gcomp.load(tmp_path / "cut.gca")
    (tmp_path / "noise.gca").write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(gcomp.GcompError, match="not a gcomp artifact"):
        gcomp.load(tmp_path / "noise.gca")
    with zipfile.ZipFile(path) as z:
        parts = {n: z.read(n) for n in z.namelist()}
    manifest = json.loads(parts["manifest.json"])
    manifest["version"] = 99
    parts["manifest.json"] = json.dumps(manifest).encode()
    with zipfile.ZipFile(tmp_path / "v99.gca", "w") as z:
        for n, b in parts.items():
            z.writestr(n, b)
    with pytest.raises(gcomp.GcompError, match="format version 99; this gcomp reads version 1"):
        gcomp.load(tmp_path / "v99.gca")
    loaded = gcomp.load(path)
    with pytest.raises(gcomp.GcompError, match=r"argument 0 \(x\) of infer is float32\[5, 8\]; "
                       r"the saved program takes float32\[4, 8\]"):
        loaded(np.zeros((5, 8), np.float32))
    with pytest.raises(gcomp.GcompError, match=r"argument 0 \(x\) of infer is float64\[4, 8\]"):
        loaded(np.zeros((4, 8)))
    with pytest.raises(gcomp.GcompError,
                       match=r"infer takes 1 positional argument\(s\), as saved; got 0"):
        loaded()


def test_loaded_keywords_constants_in_place_arguments_and_output_trees(tmp_path):
    def make():
        w = gcomp.ones(3)

        def f(x, scale, *, acc):
            acc.add_(x * scale)
            w.mul_(2.0)
            return (x.sum() * scale, {"w": w * 1})

        return f

    x = gcomp.tensor([1.0, 2.0, 3.0])
    eager_acc = gcomp.zeros(3)
    want = make()(x, 2.0, acc=eager_acc)  # the reference: the function run eagerly
    gcomp.compile(make()).lower(gcomp.Spec((3,)), 2.0, acc=gcomp.Spec((3,))).compile().save(
        tmp_path / "f.gca")
    loaded = gcomp.load(tmp_path / "f.gca")
    acc = np.zeros(3, np.float32)
    got = loaded(x.numpy(), 2.0, acc=acc)
    assert isinstance(got, tuple) and set(got[1]) == {"w"}
    np.testing.assert_array_equal(got[0].numpy(), want[0].numpy())
    np.testing.assert_array_equal(got[1]["w"].numpy(), want[1]["w"].numpy())
    np.testing.assert_array_equal(acc, eager_acc.numpy())  # updated in place, as eagerly
    np.testing.assert_array_equal(loaded.state_dict()["w"].numpy(), [2.0, 2.0, 2.0])
    with pytest.raises(gcomp.GcompError, match="argument 1 of f was the constant 2.0 when the "
                       "program was saved, got 3.0"):
        loaded(x, 3.0, acc=acc)
    with pytest.raises(gcomp.GcompError, match=r"keyword argument\(s\) \['acc'\], as saved; "
                       r"got 2 and \[\]"):
        loaded(x, 2.0)
    with pytest.raises(gcomp.GcompError, match=r"missing state \[\], unexpected state \['v'\]"):
        loaded.load_state_dict({"w": np.zeros(3), "v": np.zeros(3)})
    with pytest.raises(gcomp.GcompError, match=r"state 'w' has shape \[2\]; the program's is"):
        loaded.load_state_dict({"w": np.zeros(2)})


def test_an_executable_for_another_target_falls_back_to_the_portable_program(tmp_path, caplog):
    model, infer = _inference()
    infer.lower(gcomp.Spec((4, 8))).compile().save(tmp_path / "a.gca")
    with zipfile.ZipFile(tmp_path / "a.gca") as z:
        parts = {n: z.read(n) for n in z.namelist()}
    manifest = json.loads(parts["manifest.json"])
    assert "executable.bin" in parts and manifest["executable"]["target"]["platform"] == "cpu"
    manifest["executable"]["target"]["jaxlib"] = "0.0.1"
    parts["manifest.json"] = json.dumps(manifest).encode()
    with zipfile.ZipFile(tmp_path / "b.gca", "w") as z:
        for n, b in parts.items():
            z.writestr(n, b)
    x = gcomp.randn(4, 8)
    with caplog.at_level("INFO", logger="gcomp.cache"):
        out = gcomp.load(tmp_path / "b.gca")(x)
    assert "compiling the portable program" in caplog.text
    np.testing.assert_allclose(out["logits"].numpy(), model(x).detach().numpy(), rtol=1e-6)


def test_gcomp_load_still_reads_what_gcomp_save_wrote(tmp_path):
    model = _mlp()
    gcomp.save(model.state_dict(), tmp_path / "sd.pt")
    sd = gcomp.load(tmp_path / "sd.pt")
    np.testing.assert_array_equal(sd["0.weight"].numpy(), model[0].weight.detach().numpy())


def test_persistent_cache_hits_in_a_second_process(tmp_path):
    script = textwrap.dedent("""
        import logging, sys, time, gcomp
        logging.basicConfig(level=logging.INFO)
        logging.getLogger("gcomp.cache").setLevel(logging.INFO)
        if len(sys.argv) > 1:
            (gcomp.ones(3) * 2).sum()  # eager ops compile first (in JAX's own cache dir, if any)
            gcomp.config.cache_dir = sys.argv[1]  # set after import, instead of GCOMP_CACHE_DIR
        f = gcomp.compile(lambda x: (x.sin() * 3 + x.cos()).sum())
        t0 = time.perf_counter()
        f(gcomp.ones(7, 5))
        print("first call s", time.perf_counter() - t0)
    """)
    (tmp_path / "c.py").write_text(script)
    cache, other = str(tmp_path / "cache"), str(tmp_path / "other")
    env = {k: v for k, v in os.environ.items()  # no cache but the one under test
           if k not in ("GCOMP_CACHE_DIR", "JAX_COMPILATION_CACHE_DIR")}
    runs = [subprocess.run([sys.executable, "c.py", *argv], cwd=tmp_path, env=env | extra,
                           capture_output=True, text=True, timeout=120, check=True)
            for argv, extra in [((), {"GCOMP_CACHE_DIR": cache}), ((cache,), {}),
                                # gcomp's directory wins over one JAX was given
                                ((cache,), {"JAX_COMPILATION_CACHE_DIR": other})]]
    assert "persistent cache miss for jit_lambda" in runs[0].stderr
    assert "cache hit" not in runs[0].stderr
    assert "persistent cache hit for jit_lambda" in runs[1].stderr, runs[1].stderr
    assert "cache miss" not in runs[1].stderr
    assert "persistent cache hit for jit_lambda" in runs[2].stderr, runs[2].stderr
    assert "cache miss" not in runs[2].stderr
    print(runs[0].stdout, runs[1].stdout)  # the compile times, for a person reading -s output


def test_an_artifact_saved_from_a_persistent_cache_hit_runs(tmp_path):
    """With GCOMP_CACHE_DIR on, the second save reads the executable from the cache; what it
    writes must still run in a process without the cache (XLA's cached copy has no code)."""
    (tmp_path / "save.py").write_text(textwrap.dedent("""
        import sys, gcomp
        f = gcomp.compile(lambda x: (x * 3 - 1).relu().sum())
        c = f.lower(gcomp.ones(4, 3)).compile()
        c.save(sys.argv[1])
    """))
    (tmp_path / "load.py").write_text(textwrap.dedent("""
        import sys, numpy as np, gcomp
        x = np.arange(12, dtype=np.float32).reshape(4, 3) - 5
        print("RESULT", gcomp.load(sys.argv[1])(gcomp.tensor(x)).item())
    """))
    env = {k: v for k, v in os.environ.items()
           if k not in ("GCOMP_CACHE_DIR", "JAX_COMPILATION_CACHE_DIR")}
    cached = env | {"GCOMP_CACHE_DIR": str(tmp_path / "cache"), "GCOMP_LOG": "cache"}
    saves = [subprocess.run([sys.executable, "save.py", f"a{i}.gcomp"], cwd=tmp_path, env=cached,
                            capture_output=True, text=True, timeout=120, check=True)
             for i in range(2)]
    assert "persistent cache hit" in saves[1].stderr, saves[1].stderr
    x = np.arange(12, dtype=np.float32).reshape(4, 3) - 5
    want = float(np.maximum(x * 3 - 1, 0).sum())
    for i in range(2):
        run = subprocess.run([sys.executable, "load.py", f"a{i}.gcomp"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr[-3000:]
        assert float(run.stdout.split("RESULT")[1]) == want
