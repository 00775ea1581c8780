"""Convolution lowering choice: XLA's convolution vs im2col, per convolution and per training step.

    python benchmarks/conv.py [--steps 10] [--repeat 7] [--warmup 3] [--quick] [--json out.json]

(a) Per convolution: every convolution of the CNN workload's compiled training step (the two
    forward ones and, after autodiff, the input gradient of the second and the weight gradients
    of both), plus a few other shapes (3x3 with many channels, 1x1, depthwise, strided, 1-d),
    each jitted alone with every ``algorithm`` (xla, im2col, kn2row): the median ms of each, the
    cost model's estimates and its choice (passes/conv_choice.py, Note [Choosing a convolution
    algorithm]); a `!` marks a convolution where the choice is over 10% slower than the fastest.
(c) Max pooling's gradient (select_and_scatter_add): gcomp's lowering (tiled windows as a
    reshape, overlapping ones unrolled by window offset) against XLA's select-and-scatter, on
    the CNN's two poolings and a 3x3/2 one (Note [Max pooling's gradient as a reshape]).
(b) The whole CNN training step (32x3x32x32, Adam): gcomp compiled with the conv_choice pass
    set to each algorithm and to auto, against the hand-written JAX step (jax_steps.py) and torch
    eager at 1 and 2 threads. Target: compiled (auto) faster than torch eager.

Everything is timed in turns (workloads.measure), so load hits all variants alike.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import jax_steps
import numpy as np
import torch
from workloads import WORKLOADS, cores, gcomp_sync, load_note, measure, train_step, versions

import gcomp
from gcomp.ir import parse
from gcomp.ir.ops.conv import ALGORITHMS
from gcomp.lowering import rule_for
from gcomp.lowering import window as W
from gcomp.passes.conv_choice import choose, estimate
from gcomp.passes.manager import DEFAULT_PIPELINE

# (name, x shape, w shape, attrs) beyond the CNN's own convolutions
EXTRA = [
    ("3x3 64->64", (16, 64, 16, 16), (64, 64, 3, 3), {"padding": ((1, 1), (1, 1))}),
    ("1x1 128->128", (16, 128, 8, 8), (128, 128, 1, 1), {}),
    ("3x3 s2 16->32", (32, 16, 32, 32), (32, 16, 3, 3),
     {"stride": (2, 2), "padding": ((1, 1), (1, 1))}),
    ("depthwise 3x3 x32", (16, 32, 16, 16), (32, 1, 3, 3),
     {"padding": ((1, 1), (1, 1)), "groups": 32}),
    ("conv1d k5 16->32", (32, 16, 128), (32, 16, 5), {}),
]


def _attrs(nsp, attrs):
    full = {"stride": (1,) * nsp, "padding": ((0, 0),) * nsp, "lhs_dilation": (1,) * nsp,
            "rhs_dilation": (1,) * nsp, "groups": 1, "batch_groups": 1}
    full.update(attrs)
    return full


def cnn_step(w, state, passes, conv):
    model, crit, opt = w.build(gcomp, state)
    params = list(model.parameters())
    options = {} if conv is None else {"conv": conv}
    compiled = gcomp.compile(lambda x, y: train_step(model, crit, opt, x, y), passes=passes,
                             options=options, name="cnn_step")
    return compiled, params


def step_convolutions(w, state, x, y):
    """(name, node) of each convolution of the CNN's compiled step, after autodiff."""
    compiled, _ = cnn_step(w, state, list(DEFAULT_PIPELINE), None)
    graph = parse(compiled.ir(gcomp.tensor(x), gcomp.tensor(y)))
    return [(f"cnn {n.loc.split()[0] if n.loc else ''} {i}", n)
            for i, n in enumerate(n for n in graph.nodes if n.op == "convolution")]


def time_fn(fn, args, reps, n):
    jax.block_until_ready(fn(*args))
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(n):
            r = fn(*args)
        jax.block_until_ready(r)
        ts.append((time.perf_counter() - t0) / n * 1e3)
    return statistics.median(ts)


POOLS = [  # (name, operand shape, window, stride, padding), spatial dims only
    ("cnn pool 1, 2x2/2", (32, 6, 28, 28), (2, 2), (2, 2), (0, 0)),
    ("cnn pool 2, 2x2/2", (32, 16, 10, 10), (2, 2), (2, 2), (0, 0)),
    ("3x3/2 pad 1", (16, 32, 28, 28), (3, 3), (2, 2), (1, 1)),
]


def pool_gradients(reps, n):
    """ms (median) of each select_and_scatter_add lowering, timed in turns."""
    rng = np.random.default_rng(0)
    out = []
    for name, xs, win, st, pad in POOLS:
        window, stride = (1, 1, *win), (1, 1, *st)
        padding = ((0, 0), (0, 0), *((p, p) for p in pad))
        x = jnp.asarray(rng.standard_normal(xs).astype(np.float32))
        y = jax.lax.reduce_window(x, -np.inf, jax.lax.max, window, stride, padding)
        g = jnp.asarray(rng.standard_normal(y.shape).astype(np.float32))
        ours = (functools.partial(W.tiled_select_and_scatter_add, window=window, padding=padding)
                if win == st else
                functools.partial(W.unrolled_select_and_scatter_add, window=window,
                                  stride=stride, padding=padding))
        fns = {"gcomp": jax.jit(ours),
               "xla": jax.jit(functools.partial(W.xla_select_and_scatter_add, window=window,
                                                stride=stride, padding=padding))}
        np.testing.assert_allclose(fns["gcomp"](g, x), fns["xla"](g, x), rtol=1e-6, atol=1e-6)
        ts = {k: [] for k in fns}
        for _ in range(reps):
            for k, fn in fns.items():
                ts[k].append(time_fn(fn, (g, x), 1, n))
        out.append({"name": name, "x": list(xs),
                    "ms": {k: statistics.median(v) for k, v in ts.items()}})
    return out


def per_convolution(rows, reps, n):
    rng = np.random.default_rng(0)
    rule = rule_for("convolution")
    out = []
    for name, xs, ws, attrs, node in rows:
        x = jnp.asarray(rng.standard_normal(xs).astype(np.float32))
        k = jnp.asarray(rng.standard_normal(ws).astype(np.float32))
        ms = {}
        for alg in ALGORITHMS:
            fn = jax.jit(functools.partial(rule, **attrs, algorithm=alg))
            ms[alg] = time_fn(fn, (x, k), reps, n)
        out_shape = jax.eval_shape(functools.partial(rule, **attrs), x, k).shape
        est = estimate(xs, ws, out_shape, attrs["groups"], attrs["batch_groups"])
        model = choose(node, "cpu") if node is not None else min(ALGORITHMS, key=est.get)
        out.append({"name": name, "x": list(xs), "w": list(ws), "ms": ms,
                    "faster": min(ms, key=ms.get), "model": model,
                    "model_ms": {k: v / 1e6 for k, v in est.items()}})
    return out


def whole_step(w, args):
    state = w.reference_state()
    x, y = w.data()
    gx, gy = gcomp.tensor(x), gcomp.tensor(y)
    cases = {}
    passes = [*DEFAULT_PIPELINE, "conv_choice"]
    for conv in (*ALGORITHMS, "auto"):
        compiled, params = cnn_step(w, state, passes, conv)
        cases[f"gcomp {conv}"] = ((lambda c=compiled: c(gx, gy)),
                                  (lambda loss, p=params: gcomp_sync(loss, *p)))
    cases["jax"] = jax_steps.timed_case(w, state, x, y)[:2]
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    for threads in (1, 2):
        tm, tc, to = w.build(torch, state)

        def torch_step(tm=tm, tc=tc, to=to, threads=threads):
            torch.set_num_threads(threads)
            return train_step(tm, tc, to, tx, ty)

        cases[f"torch {threads} thread{'s' if threads > 1 else ''}"] = (torch_step,
                                                                        lambda loss: None)
    return measure(cases, args.steps, args.repeat, args.warmup)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="few steps and repeats (noisy)")
    ap.add_argument("--json", metavar="PATH")
    args = ap.parse_args(argv)
    if args.quick:
        args.steps, args.repeat, args.warmup = 3, 3, 2
    w = WORKLOADS["cnn"]
    print(f"{versions()}; {load_note(cores())}; backend {jax.default_backend()}")

    state = w.reference_state()
    x, y = w.data()
    rows = []
    for name, node in step_convolutions(w, state, x, y):
        attrs = {k: v for k, v in node.attrs.items() if k not in ("algorithm", "accumulate")}
        rows.append((name, node.inputs[0].type.shape, node.inputs[1].type.shape, attrs, node))
    for name, xs, ws, attrs in EXTRA:
        rows.append((name, xs, ws, _attrs(len(xs) - 2, attrs), None))
    print("measuring each convolution ...", file=sys.stderr, flush=True)
    convs = per_convolution(rows, args.repeat, 2 * args.steps)
    print("\n(a) one convolution, ms (median); the cost model's estimate; its choice")
    print(f"{'convolution':<22} {'x':<18} {'w':<16} "
          + " ".join(f"{a:>7}" for a in ALGORITHMS) + "  | model: "
          + " ".join(f"{a:>7}" for a in ALGORITHMS) + "  choice")
    for r in convs:
        bad = "" if _close(r["ms"], r["model"]) else f"  ! {r['faster']} is faster"
        print(f"{r['name']:<22} {str(tuple(r['x'])):<18} {str(tuple(r['w'])):<16} "
              + " ".join(f"{r['ms'][a]:7.3f}" for a in ALGORITHMS) + "  |        "
              + " ".join(f"{r['model_ms'][a]:7.3f}" for a in ALGORITHMS)
              + f"  {r['model']}{bad}")

    pools = pool_gradients(args.repeat, 2 * args.steps)
    print("\n(c) max pooling's gradient, ms (median, in turns)")
    print(f"{'pooling':<20} {'x':<18} {'gcomp':>7} {'xla':>7}  xla/gcomp")
    for r in pools:
        print(f"{r['name']:<20} {str(tuple(r['x'])):<18} {r['ms']['gcomp']:7.3f} "
              f"{r['ms']['xla']:7.3f}  {r['ms']['xla'] / r['ms']['gcomp']:9.2f}")

    print("measuring the CNN training step ...", file=sys.stderr, flush=True)
    res = whole_step(w, args)
    print(f"\n(b) CNN training step ({w.what}), ms/step")
    med = {k: v.get("median") for k, v in res.items()}
    ref = med.get("torch 1 thread")
    for k, v in res.items():
        if "error" in v:
            print(f"{k:<16} error: {v['error']}")
            continue
        ratio = f"{v['median'] / ref:6.2f}x torch 1 thread" if ref else ""
        print(f"{k:<16} {v['median']:8.2f}  (min {v['min']:.2f}, max {v['max']:.2f})  {ratio}")
    auto, torch_best = med.get("gcomp auto"), min(
        (m for k, m in med.items() if k.startswith("torch") and m), default=None)
    if auto and torch_best:
        verdict = "met" if auto < torch_best else "MISSED"
        print(f"target compiled (auto) < torch eager (best of 1, 2 threads): "
              f"{auto:.2f} vs {torch_best:.2f} ms: {verdict}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"versions": versions(), "load": load_note(cores()), "convolutions": convs,
                       "pool_gradients": pools, "cnn_step_ms": res}, f, indent=2)


def _close(ms: dict, chosen: str) -> bool:
    """The chosen algorithm is within 10% of the fastest: too close to call on a noisy machine."""
    return ms[chosen] <= 1.1 * min(ms.values())


if __name__ == "__main__":
    main()
