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


def test_saved_programs_run_in_a_fresh_process_and_training_resumes(tmp_path):
    model, infer = _inference()
    x = np.random.default_rng(1).standard_normal((4, 8)).astype(np.float32)
    infer.lower(gcomp.Spec((4, 8))).compile().save(tmp_path / "infer.gca")
    want = infer(gcomp.tensor(x))

    tmodel, _, step = _training()
    data = _batches()
    losses = []
    for i, (bx, by) in enumerate(data):
        if i == 2:  # save the step, and the state it starts step 3 from
            step.lower(gcomp.tensor(bx), gcomp.tensor(by)).compile().save(tmp_path / "step.gca")
            saved = gcomp.load(tmp_path / "step.gca").state_dict()
            assert set(saved) >= {"model.0.weight", "opt.state.0.exp_avg"}
            np.savez(tmp_path / "state2.npz", **{k: v.numpy() for k, v in saved.items()})
        losses.append(step(gcomp.tensor(bx), gcomp.tensor(by)).item())
    np.savez(tmp_path / "data.npz", x=x, **{f"x{i}": b[0] for i, b in enumerate(data)},
             **{f"y{i}": b[1] for i, b in enumerate(data)})
    script = textwrap.dedent("""
        import sys, numpy as np, gcomp
        assert "test_aot" not in sys.modules
        d = np.load("data.npz")
        infer = gcomp.load("infer.gca")
        out = infer(d["x"])
        step = gcomp.load("step.gca")
        st = np.load("state2.npz")
        step.load_state_dict({k: st[k] for k in st.files})
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
    with pytest.raises(gcomp.GcompError, match="takes 1 argument"):
        loaded()


def test_gcomp_load_still_reads_what_gcomp_save_wrote(tmp_path):
    model = _mlp()
    gcomp.save(model.state_dict(), tmp_path / "sd.pt")
    sd = gcomp.load(tmp_path / "sd.pt")
    np.testing.assert_array_equal(sd["0.weight"].numpy(), model[0].weight.detach().numpy())


def test_persistent_cache_hits_in_a_second_process(tmp_path):
    script = textwrap.dedent("""
        import logging, time, gcomp
        logging.basicConfig(level=logging.INFO)
        logging.getLogger("gcomp.cache").setLevel(logging.INFO)
        f = gcomp.compile(lambda x: (x.sin() * 3 + x.cos()).sum())
        t0 = time.perf_counter()
        f(gcomp.ones(7, 5))
        print("first call s", time.perf_counter() - t0)
    """)
    (tmp_path / "c.py").write_text(script)
    env = dict(os.environ, GCOMP_CACHE_DIR=str(tmp_path / "cache"))
    runs = [subprocess.run([sys.executable, "c.py"], cwd=tmp_path, env=env, capture_output=True,
                           text=True, timeout=120, check=True) for _ in range(2)]
    assert "persistent cache miss" in runs[0].stderr and "cache hit" not in runs[0].stderr
    assert "persistent cache hit" in runs[1].stderr
