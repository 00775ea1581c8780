"""What pattern fusion (passes/patterns.py) does to the transformer workload, one run, one table.

    python benchmarks/patterns.py [--steps 10] [--repeat 5] [--quick] [--json out.json]

Rows: the compiled training step of workloads.py's transformer (2 encoder layers, AdamW, cross
entropy) and its compiled inference forward (eval mode, no grad), each with the default
pipeline without ``fuse_patterns`` ("default" below) and with it, attention fused
(``options={"attention": "fused"}``; the default, "auto", leaves attention unfused on the CPU,
Note [Fused patterns]) ("fused"). For each:
the final graph's node count and how many fused ops it holds, the median ms per call of both
(timed in turns, workloads.measure) and their ratio, and whether both give the same loss (or
mean logit) to float tolerance. --quick uses a smaller batch and fewer repetitions.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

import numpy as np
from workloads import WORKLOADS, gcomp_sync, load_note, measure, train_step, versions

import gcomp
from gcomp.passes import DEFAULT_PIPELINE

UNFUSED = tuple(p for p in DEFAULT_PIPELINE if p != "fuse_patterns")
ATTENTION = {"attention": "fused"}
FUSED_OPS = ("scaled_dot_product_attention", "cross_entropy")


def _train(w, state, passes, options):
    model, crit, opt = w.build(gcomp, state)
    params = list(model.parameters())
    x, y = w.data()
    gx, gy = gcomp.tensor(x), gcomp.tensor(y)
    c = gcomp.compile(lambda x, y: train_step(model, crit, opt, x, y), passes=passes,
                      options=options)
    return c, (gx, gy), (lambda: c(gx, gy)), (lambda out: gcomp_sync(out, *params))


def _infer(w, state, passes, options):
    model, _, _ = w.build(gcomp, state)
    model.eval()
    gx = gcomp.tensor(w.data()[0])

    def forward(x):  # the mean logit: one scalar, which measure() reads as the "loss"
        with gcomp.no_grad():
            return model(x).mean()

    c = gcomp.compile(forward, passes=passes, options=options)
    return c, (gx,), (lambda: c(gx)), (lambda out: gcomp_sync(out))


def row(kind, make, w, state, args) -> dict:
    print(f"measuring {kind} ...", file=sys.stderr, flush=True)
    cases, info = {}, {}
    for name, passes, options in (("default", UNFUSED, None), ("fused", "default", ATTENTION)):
        c, xs, call, sync = make(w, state, passes, options)
        final = c.stages(*xs)[-1]
        counts = gcomp.ir.parse(final.graph).op_counts()
        info[name] = {"nodes": final.nodes, "fused": sum(counts.get(o, 0) for o in FUSED_OPS),
                      "result": np.asarray(call().detach().numpy())}
        cases[name] = (call, sync)
    res = measure(cases, args.steps, args.repeat, warmup=2)
    same = np.allclose(info["fused"]["result"], info["default"]["result"], rtol=1e-4, atol=1e-5)
    out = {"graph": f"transformer {kind}", "nodes_default": info["default"]["nodes"],
           "nodes_fused": info["fused"]["nodes"], "fused_ops": info["fused"]["fused"],
           "same_result": bool(same)}
    for name in cases:
        out[f"ms_{name}"] = res[name].get("median", res[name].get("error"))
    if all(isinstance(out[f"ms_{n}"], float) for n in cases):
        out["fused_vs_default"] = out["ms_fused"] / out["ms_default"]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="batch 4, 3 steps, 3 rounds")
    ap.add_argument("--json", metavar="PATH")
    args = ap.parse_args(argv)
    w = WORKLOADS["transformer"]
    if args.quick:
        w = dataclasses.replace(w, x_shape=(4,) + w.x_shape[1:])
        args.steps, args.repeat = 3, 3
    state = w.reference_state()
    rows = [row("train step", _train, w, state, args), row("inference", _infer, w, state, args)]
    print(f"# pattern fusion: {w.what}, x {list(w.x_shape)}; {versions()}; "
          f"{load_note(__import__('workloads').cores())}")
    print(f"# medians of {args.repeat} rounds of {args.steps} calls; default = the default "
          "pipeline without fuse_patterns; fused = with it, attention fused")
    head = ("graph", "nodes_default", "nodes_fused", "fused_ops", "ms_default", "ms_fused",
            "fused_vs_default", "same_result")
    print(" | ".join(head))
    for r in rows:
        print(" | ".join(f"{r[h]:.3f}" if isinstance(r.get(h), float) else str(r.get(h))
                         for h in head))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "versions": versions()}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
