"""The flagship demo (``make run``): one training step, eager and compiled, measured and shown.

The CNN of PyTorch's "Training a classifier" tutorial (``cnn`` of gcomp/bench/workloads.py, the
model of examples/cnn_classifier.py) learns the shipped 8x8 digits, each upsampled to 3x32x32:

1. eagerly, for a few epochs, then compiled (``gcomp.compile`` of the whole step: zero_grad,
   forward, loss, backward, SGD step) for the same epochs from the same seed; both print their
   test accuracy, which agree;
2. ``gcomp.benchmark`` times the step both ways and prints its table (the first compiled call
   compiles: the "compile s" column);
3. ``gcomp.bench.dump`` writes that compiled step's IR after every stage, the StableHLO, XLA's
   optimized HLO and summary.json, and the demo says where.

    python examples/demo.py [--epochs 3] [--dump DIR]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

import gcomp
from gcomp.bench import dump
from gcomp.bench.workloads import cnn, train_step
from gcomp.data.datasets import Digits

BATCH = 32


def digits_rgb32(train: bool) -> tuple[np.ndarray, np.ndarray]:
    """The digits split as [N, 3, 32, 32] in [-1, 1] (each pixel a 4x4 block, grey as RGB: the
    transform of examples/cnn_classifier.py, for the whole split at once) and int64 labels."""
    d = Digits(train=train)
    big = d.images.repeat(4, axis=2).repeat(4, axis=3)
    return ((np.repeat(big, 3, axis=1) - 0.5) / 0.5).astype(np.float32), d.labels.astype(np.int64)


def make_step(seed: int):
    """A fresh model from ``seed`` and its training step ``step(x, y) -> loss``."""
    gcomp.manual_seed(seed)
    model = cnn(gcomp)
    crit = gcomp.nn.CrossEntropyLoss()
    opt = gcomp.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)

    def step(x, y):
        return train_step(model, crit, opt, x, y)

    return model, step


def accuracy(model, x: np.ndarray, y: np.ndarray) -> float:
    model.eval()
    with gcomp.no_grad():
        pred = model(gcomp.tensor(x)).argmax(dim=1).numpy()
    model.train()
    return float((pred == y).mean())


def train(compiled: bool, epochs: int, seed: int, data, batches: int | None = None):
    """(test accuracy, first step's loss, last epoch's mean loss, seconds) of training from
    ``seed`` (``batches``: at most this many an epoch)."""
    (x, y), (tx, ty) = data
    model, step = make_step(seed)
    run = gcomp.compile(step) if compiled else step
    order = np.random.default_rng(seed)  # the same batches in the same order for both
    t0 = time.perf_counter()
    first = None
    for _ in range(epochs):
        perm = order.permutation(len(x))
        split = np.split(perm[: len(perm) // BATCH * BATCH], len(perm) // BATCH)
        losses = [run(gcomp.tensor(x[idx]), gcomp.tensor(y[idx])) for idx in split[:batches]]
        first = losses[0].item() if first is None else first
    loss = float(np.mean([v.item() for v in losses]))
    return accuracy(model, tx, ty), first, loss, time.perf_counter() - t0


def main(epochs: int = 3, dump_dir: str | None = None, seed: int = 0, budget: float = 3.0,
         batches: int | None = None) -> dict:
    """Run the demo; returns what it printed, as numbers (the tests read them)."""
    data = digits_rgb32(True), digits_rgb32(False)
    print(f"CNN on the 8x8 digits ({len(data[0][0])} train, {len(data[1][0])} test images at "
          f"3x32x32), SGD with momentum, batch {BATCH}, {epochs} epochs from seed {seed}")
    results = {}
    for mode in ("eager", "compiled"):
        acc, first, loss, secs = train(mode == "compiled", epochs, seed, data, batches)
        results[mode] = {"accuracy": acc, "first_loss": first, "loss": loss}
        print(f"  {mode:<9} test accuracy {acc:.2%}   first loss {first:.6f}   last epoch loss "
              f"{loss:.4f}   {secs:.1f} s")
    print("  (the same first step; float32 rounding makes later steps drift apart a little)")

    print("\ngcomp.benchmark(step, x, y): one training step of a batch, eager vs compiled")
    _, step = make_step(seed)
    compiled = gcomp.compile(step, name="cnn_step")  # its first call in the benchmark compiles
    x, y = (gcomp.tensor(a[:BATCH]) for a in data[0])
    bench = gcomp.benchmark(compiled, x, y, budget=budget)
    print(bench)

    out = Path(dump_dir) if dump_dir else Path(tempfile.gettempdir()) / "gcomp_demo_dump"
    written = dump(compiled, x, y, out=out)
    print(f"\nthe compiled step at every stage (gcomp dump); "
          f"look at {written.folder / '00_traced.gir'} first:")
    print(written)
    return {**results, "benchmark": bench, "dump": written}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--dump", help="the folder for the IR dump (default: a temp folder)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batches", type=int, help="at most this many batches an epoch")
    args = ap.parse_args()
    main(args.epochs, args.dump, args.seed, batches=args.batches)
