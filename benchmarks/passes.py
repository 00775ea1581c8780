"""What the passes do and what they cost, one run, one table.

    python benchmarks/passes.py [--only mlp,cnn,lstm,transformer] [--sizes 1000,10000]
                                [--steps 10] [--repeat 5] [--no-steps] [--json out.json]

Rows of two kinds:

- the traced training steps of workloads.py (``gcomp.compile(step)``, default pipeline): nodes
  after tracing and autodiff, then how many nodes each pass removes (simplify, fold, cse, dce),
  the nodes left, the passes' total time, XLA's compile time of the final graph, and the median
  step time with the default pipeline against passes="none" (timed in turns);
- (after the table) rematerialization on a deep MLP and the Transformer (benchmarks/remat.py's
  rows: XLA's peak temporary memory and step time with remat against without), and the CNN
  training step with each convolution lowering against torch eager (benchmarks/conv.py's), then
  issue 5's targets, each met or MISSED;
- generated graphs of n elementwise nodes (a mesh: each node reads two of the last eight values,
  with the x*1, double negations, constant subexpressions and duplicates traced code has), where
  the passes' total time is compared with XLA's compile time of the same graph unoptimized
  (issue 5's target: the default pipeline under 10% of XLA's compile time at 10k nodes), and
  the passes' time per n log n across sizes (it must grow no faster than n log n).

XLA compile time is ``jax.jit(...).lower(...).compile()`` of the graph's jax function, with the
persistent cache off, so every number is a real compile.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import jax
import numpy as np
from workloads import WORKLOADS, gcomp_sync, load_note, measure, select, train_step, versions

import gcomp
from gcomp.ir import Graph, TensorType, float32
from gcomp.lowering import to_jax_dtype
from gcomp.lowering.jit import to_function
from gcomp.passes import DEFAULT_PIPELINE, run_passes

REWRITING = [p for p in DEFAULT_PIPELINE if p != "autodiff"]
DEFAULT = ["mlp", "cnn", "lstm", "transformer"]
# Two medians of one executable, timed in turns in one run on this 2-core machine, differ by up to
# about 3%: the MLP step measured 0.54 vs 0.50 ms (default vs none) under load and 0.373 vs 0.370
# ms quiet, although default's program has fewer kernels (28 fusions vs 33, no scatter). A step
# counts as slower beyond that.
NOISE = 0.03


def xla_compile_ms(graph) -> float:
    args = [np.zeros(v.type.shape, to_jax_dtype(v.type.dtype)) for v in graph.inputs]
    t0 = time.perf_counter()
    jax.jit(to_function(graph)).lower(*args).compile()
    return (time.perf_counter() - t0) * 1e3


def _step(w, state, passes):
    model, crit, opt = w.build(gcomp, state)
    params = list(model.parameters())
    x, y = w.data()
    gx, gy = gcomp.tensor(x), gcomp.tensor(y)
    compiled = gcomp.compile(lambda x, y: train_step(model, crit, opt, x, y),
                             name=f"{w.name}_step", passes=passes)
    return compiled, gx, gy, (lambda: compiled(gx, gy)), (lambda loss: gcomp_sync(loss, *params))


def workload_row(w, args) -> dict:
    print(f"measuring {w.name} ...", file=sys.stderr, flush=True)
    state = w.reference_state()
    compiled, gx, gy, step, sync = _step(w, state, "default")
    stages = {s.name: s for s in compiled.stages(gx, gy)}
    row = {"graph": f"{w.name} step", "traced": stages["traced"].nodes,
           "autodiff": stages["autodiff"].nodes}
    row.update(_removed(stages, row["traced"]))
    row["xla_ms"] = xla_compile_ms(gcomp.ir.parse(stages[REWRITING[-1]].graph))
    if args.steps != 0:
        _, _, _, base_step, base_sync = _step(w, state, "none")
        res = measure({"default": (step, sync), "none": (base_step, base_sync)}, args.steps,
                      args.repeat, warmup=2)
        row["step_ms"] = {k: v.get("median") for k, v in res.items()}
        if all("times" in v for v in res.values()):
            # the rounds ran in turns, so load drift hits a round's pair alike: the median of the
            # per-round ratios is steadier than the ratio of the two medians
            pairs = zip(res["default"]["times"], res["none"]["times"])
            row["step_ratio"] = float(np.median([d / n for d, n in pairs]))
    return row


def _removed(stages: dict, traced: int) -> dict:
    """Per rewriting pass, the nodes it removed (or grouped), each against the stage before it
    in pipeline order (the pipeline starts with fuse_patterns, before autodiff); the nodes
    left; the rewriting passes' total time."""
    out, before = {}, traced
    for p in DEFAULT_PIPELINE:
        if p != "autodiff":
            out[p] = before - stages[p].nodes
        before = stages[p].nodes
    out["final"] = before
    out["passes_ms"] = sum(stages[p].ms for p in REWRITING)
    return out


def generated(n: int, seed: int = 0) -> Graph:
    """n elementwise nodes over f32[64, 64]: a mesh with identities, constants and copies."""
    rng = np.random.default_rng(seed)
    t = TensorType((64, 64), float32)
    g = Graph(f"mesh{n}")
    vals = [g.add_input(t, f"x{i}") for i in range(4)]
    while len(g.nodes) < n:
        a, b = (vals[-1 - int(k)] for k in rng.integers(0, min(8, len(vals)), 2))
        kind = rng.random()
        if kind < 0.05:  # x * 1
            one = g.add_node("full", [], {"shape": t.shape, "value": 1.0, "dtype": float32})
            v = g.add_node("mul", [a, one.outputs[0]]).outputs[0]
        elif kind < 0.10:  # neg(neg(x))
            v = g.add_node("neg", [g.add_node("neg", [a]).outputs[0]]).outputs[0]
        elif kind < 0.15:  # a constant expression scaling a value
            c = g.add_node("full", [], {"shape": (), "value": float(rng.integers(1, 4)),
                                        "dtype": float32}).outputs[0]
            c = g.add_node("broadcast", [g.add_node("neg", [c]).outputs[0]],
                           {"shape": t.shape, "dims": ()}).outputs[0]
            v = g.add_node("mul", [a, c]).outputs[0]
        elif kind < 0.20 and a.producer is not None:  # a copy of an earlier node
            p = a.producer
            v = g.add_node(p.op, p.inputs, p.attrs).outputs[0]
        else:
            op = ["add", "mul", "sub", "maximum", "tanh", "exp", "neg"][int(rng.integers(0, 7))]
            ins = [a, b] if op in ("add", "mul", "sub", "maximum") else [a]
            v = g.add_node(op, ins).outputs[0]
            if op == "exp":  # keep values bounded
                v = g.add_node("tanh", [v]).outputs[0]
        vals.append(v)
    g.outputs = vals[-4:]
    return g


def generated_row(n: int) -> dict:
    print(f"measuring a generated graph of {n} nodes ...", file=sys.stderr, flush=True)
    g = generated(n)
    stages: list = []
    t0 = time.perf_counter()
    run_passes(g.copy(), "default", stages=stages)
    total_ms = (time.perf_counter() - t0) * 1e3
    by = {s.name: s for s in stages}
    row = {"graph": f"generated {n}", "traced": len(g.nodes), "autodiff": by["autodiff"].nodes}
    row.update(_removed(by, row["traced"]))
    row["pipeline_ms"] = total_ms  # with verification after each pass and printing stages
    row["xla_ms"] = xla_compile_ms(g)
    return row


def print_table(rows: list[dict]) -> None:
    head = (["graph", "traced", "autodiff"] + [f"-{p}" for p in REWRITING]
            + ["final", "passes ms", "XLA ms", "passes/XLA", "step ms default/none"])
    lines = [head]
    for r in rows:
        step = r.get("step_ms")
        step_text = (f"{step['default']:.2f} / {step['none']:.2f}"
                     if step and None not in step.values() else "-")
        lines.append([r["graph"], str(r["traced"]), str(r["autodiff"])]
                     + [str(r[p]) for p in REWRITING]
                     + [str(r["final"]), f"{r['passes_ms']:.1f}", f"{r['xla_ms']:.0f}",
                        f"{100 * r['passes_ms'] / r['xla_ms']:.1f}%", step_text])
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    for k, line in enumerate(lines):
        print("  ".join(c.rjust(wd) if i else c.ljust(wd)
                        for i, (c, wd) in enumerate(zip(line, widths))))
        if k == 0:
            print("  ".join("-" * wd for wd in widths))


def print_growth(rows: list[dict]) -> None:
    """The passes' time per n log2 n on the generated graphs, relative to the smallest: a
    column that stays near 1 (or falls) is growth no faster than n log n."""
    if len(rows) < 2:
        return
    per = [(r["traced"], r["passes_ms"] / (r["traced"] * np.log2(r["traced"]))) for r in rows]
    base = per[0][1]
    print(f"\nnodes  passes ms  passes / (n log n), relative to n = {per[0][0]}")
    for (n, v), r in zip(per, rows):
        print(f"{n:>6}  {r['passes_ms']:9.1f}  {v / base:.2f}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", help=f"workloads (default {','.join(DEFAULT)})")
    ap.add_argument("--sizes", default="1000,10000,50000", help="generated graph sizes")
    ap.add_argument("--steps", type=int, default=None,
                    help="steps per timing round (default: about 20 ms of them; 0: skip)")
    ap.add_argument("--repeat", type=int, default=15,
                    help="timed rounds of the step columns (medians of 5 moved by 6%%)")
    ap.add_argument("--no-steps", action="store_true", help="skip the step-time columns")
    ap.add_argument("--no-remat", action="store_true",
                    help="skip the rematerialization section (benchmarks/remat.py)")
    ap.add_argument("--no-conv", action="store_true",
                    help="skip the CNN step against torch eager (benchmarks/conv.py)")
    ap.add_argument("--json", help="also write the rows here")
    args = ap.parse_args(argv)
    if args.no_steps:
        args.steps = 0
    jax.config.update("jax_enable_compilation_cache", False)
    rows = [workload_row(w, args) for w in select(args.only, DEFAULT)]
    rows += [generated_row(int(n)) for n in args.sizes.split(",") if n.strip()]
    print(f"# passes: {', '.join(DEFAULT_PIPELINE)}; {versions()}; {load_note(_cores())}")
    print_table(rows)
    print_growth([r for r in rows if r["graph"].startswith("generated")])
    out = {"passes": rows}
    if not args.no_remat:
        out["remat"] = remat_section(args)
    if not args.no_conv:
        out["cnn_vs_torch"] = conv_section(args)
    print_targets(rows, out)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=2, default=str)
    return 0


def remat_section(args) -> list[dict]:
    """benchmarks/remat.py's step rows (deep MLP, Transformer): peak temporary memory and step
    time with remat against the default pipeline."""
    import remat

    steps = max(args.steps // 2, 2) if args.steps else None
    ns = argparse.Namespace(steps=steps, repeat=args.repeat, layers=remat.LAYERS, budget=None)
    rows = [r for n in remat.DEFAULT for r in remat.step_rows(n, ns)]
    splits = [remat.split_row(n, ns) for n in remat.DEFAULT]
    print(f"\n# rematerialization (remat before fusion, against the default pipeline); "
          f"deep_mlp {remat.LAYERS}x Linear({remat.WIDTH}) + GELU, batch {remat.BATCH}")
    remat.print_tables(rows, splits)
    return rows + splits


def conv_section(args) -> dict:
    """benchmarks/conv.py's whole CNN step: conv_choice's algorithms against torch eager."""
    import conv

    steps = max(args.steps, 3) if args.steps else None
    ns = argparse.Namespace(steps=steps, repeat=args.repeat, warmup=2)
    res = conv.whole_step(WORKLOADS["cnn"], ns)
    print(f"\n# CNN training step ({WORKLOADS['cnn'].what}), ms/step (median, min-max)")
    for k, v in res.items():
        if "error" in v:
            print(f"{k:<18} error: {v['error']}")
        else:
            print(f"{k:<18} {v['median']:8.2f}  ({v['min']:.2f}-{v['max']:.2f})")
    return res


def print_targets(rows, out) -> None:
    """Issue 5's targets, each met or MISSED, from the numbers above."""
    print("\n# targets")
    for r in rows:
        if r["graph"] == "generated 10000" and r.get("passes_ms") and r.get("xla_ms"):
            share = r["passes_ms"] / r["xla_ms"]
            print(f"passes under 10% of XLA compile at 10k nodes: {100 * share:.1f}%: "
                  f"{'met' if share < 0.10 else 'MISSED'}")
    timed = [r for r in rows if r.get("step_ms") and None not in r["step_ms"].values()]
    # slower: beyond the 3% by which two medians of the same executable differ here
    ratios = {r["graph"]: r.get("step_ratio", r["step_ms"]["default"] / r["step_ms"]["none"])
              for r in timed}
    slower = [g for g, q in ratios.items() if q > 1 + NOISE]
    if timed:
        shown = ", ".join(f"{g.removesuffix(' step')} {q:.2f}" for g, q in ratios.items())
        print(f"no example slower with the default pipeline (default/none, median of the "
              f"per-round ratios: {shown}; > {1 + NOISE:.2f} is slower): "
              + ("met" if not slower else f"MISSED ({', '.join(slower)}; one run)"))
    for r in out.get("remat", []):
        if r["workload"] == "deep_mlp" and r.get("variant") == "remat" and r.get("ratio"):
            ok = r["reduction"] >= 0.30 and r["ratio"] <= 1.15
            print(f"remat on the deep MLP: temp -{100 * r['reduction']:.0f}% at "
                  f"{r['ratio']:.3f}x step time (>= 30% at <= 1.15x): {'met' if ok else 'MISSED'}")
    res = out.get("cnn_vs_torch")
    if res:
        auto = res.get("gcomp auto", {}).get("median")
        best = min((v["median"] for k, v in res.items() if k.startswith("torch")
                    and v.get("median")), default=None)
        if auto and best:
            print(f"compiled CNN step faster than torch eager (best of 1, 2 threads): "
                  f"{auto:.2f} vs {best:.2f} ms: {'met' if auto < best else 'MISSED'}")


def _cores() -> int:
    from workloads import cores

    return cores()


assert set(DEFAULT) <= set(WORKLOADS)

if __name__ == "__main__":
    sys.exit(main())
