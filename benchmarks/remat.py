"""Rematerialization: XLA's peak temporary memory and the step time, with and without it.

    python benchmarks/remat.py [--only deep_mlp,transformer] [--steps 5] [--repeat 5]
                               [--budget BYTES] [--quick] [--json out.json]

Two parts, from the same weights and batch:

- compiled training steps (``gcomp.compile`` of ``zero_grad; loss.backward(); opt.step()``): the
  default pipeline against the same pipeline with ``remat`` before ``fusion`` (and with
  ``--budget``, a third variant with ``remat_budget``). For each: ``temp_size_in_bytes`` of XLA's
  memory analysis of the executable the runtime runs (parameters donated, as they are), the
  reduction, the median ms/step (timed in turns) and the ratio. Workloads: ``deep_mlp``, 16
  Linear(512, 512) + GELU layers on a 256-row batch with MSE and SGD, and ``transformer`` of
  workloads.py. GELU because its VJP reads its *input* while the next layer's weight gradient
  reads its *output*: both would be kept for the backward; with remat only the input is, and
  the output is recomputed. (Tanh's VJP reads its output only, so there would be nothing to
  gain; ReLU's reads a mask as large as either.)
- compiled modules called with inputs that require grad (forward and backward executables):
  the bytes of residuals the forward returns for the backward with the minimum-cut partition
  against the previous rule (every forward value the backward reads, except cheap chains of
  reshapes, broadcasts and casts from graph inputs), reimplemented here as the reference.
  These use the default pipeline without ``fusion``: the runtime builds the joint graph from
  the forward after every pass, and fusion's regions are opaque to the cut. With ``--budget``,
  also the residual bytes under that ``remat_budget``.

Issue 5's target: remat cuts peak temporary memory by at least 30% on the deep MLP at no more
than 15% step-time cost.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import jax
import numpy as np
from workloads import WORKLOADS, cores, gcomp_sync, load_note, measure, versions

import gcomp
from gcomp.passes import DEFAULT_PIPELINE

DEFAULT = ["deep_mlp", "transformer"]
LAYERS, WIDTH, BATCH = 16, 512, 256


def with_remat(pipeline) -> list[str]:
    names = [p for p in pipeline if p != "remat"]
    at = names.index("fusion") if "fusion" in names else len(names)
    return names[:at] + ["remat"] + names[at:]


def deep_mlp(T, layers: int = LAYERS, width: int = WIDTH):
    mods = []
    for _ in range(layers):
        mods += [T.nn.Linear(width, width), T.nn.GELU()]
    return T.nn.Sequential(*mods)


def build(name: str, layers: int):
    """(model, criterion, optimizer, x, y) in gcomp, the same every call."""
    if name == "deep_mlp":
        gcomp.manual_seed(0)
        model = deep_mlp(gcomp, layers)
        rng = np.random.default_rng(0)
        x = rng.standard_normal((BATCH, WIDTH)).astype(np.float32)
        y = rng.standard_normal((BATCH, WIDTH)).astype(np.float32)
        return (model, gcomp.nn.MSELoss(), gcomp.optim.SGD(model.parameters(), lr=1e-3),
                gcomp.tensor(x), gcomp.tensor(y))
    w = WORKLOADS[name]
    model, crit, opt = w.build(gcomp, w.reference_state())
    x, y = w.data()
    return model, crit, opt, gcomp.tensor(x), gcomp.tensor(y)


def step_variant(name: str, layers: int, passes, options=None):
    model, crit, opt, x, y = build(name, layers)
    params = list(model.parameters())

    def step(x, y):
        opt.zero_grad()
        loss = crit(model(x), y)
        loss.backward()
        opt.step()
        return loss

    compiled = gcomp.compile(step, passes=passes, options=options, name=f"{name}_step")
    t0 = time.perf_counter()
    loss = compiled(x, y)
    gcomp_sync(loss, *params)
    compile_s = time.perf_counter() - t0
    entry = compiled._entry((x, y), {})
    arrays = [x._storage.data, y._storage.data] + [st.data for st in entry.state_storages]
    memory = entry.run.lower(*arrays).compile().memory_analysis()
    return {"step": (lambda: compiled(x, y)), "sync": (lambda loss: gcomp_sync(loss, *params)),
            "temp": memory.temp_size_in_bytes, "compile_s": compile_s,
            "nodes": len(entry.graph.nodes), "first_loss": float(loss.item())}


def step_rows(name: str, args) -> list[dict]:
    print(f"measuring the {name} step ...", file=sys.stderr, flush=True)
    variants = {"default": (list(DEFAULT_PIPELINE), None),
                "remat": (with_remat(DEFAULT_PIPELINE), None)}
    if args.budget is not None:
        variants[f"remat {args.budget} B"] = (with_remat(DEFAULT_PIPELINE),
                                              {"remat_budget": args.budget})
    built = {k: step_variant(name, args.layers, p, o) for k, (p, o) in variants.items()}
    times = measure({k: (b["step"], b["sync"]) for k, b in built.items()}, args.steps,
                    args.repeat, warmup=1)
    base = built["default"]
    rows = []
    for k, b in built.items():
        ms = times[k].get("median")
        rows.append({"workload": name, "variant": k, "nodes": b["nodes"], "temp": b["temp"],
                     "reduction": 1 - b["temp"] / base["temp"] if base["temp"] else 0.0,
                     "ms": ms, "ratio": ms / times["default"]["median"] if ms else None,
                     "compile_s": b["compile_s"], "first_loss": b["first_loss"],
                     "error": times[k].get("error")})
    return rows


# -- the tape split: residual bytes, min cut against the previous rule --------------------------

_OLD_RECOMPUTE = frozenset({"full", "constant", "iota", "broadcast", "reshape", "transpose",
                            "cast", "slice", "squeeze", "expand_dims", "neg", "stop_gradient",
                            "concatenate"})


def old_residual_bytes(joint, n_outputs, cotangents) -> int:
    """What the partition saved before the minimum cut: every forward value the backward reads,
    except chains of cheap ops from graph inputs."""
    tainted = set(cotangents)
    backward, forward = [], []
    for n in joint.nodes:
        if any(v in tainted for v in n.inputs):
            tainted.update(n.outputs)
            backward.append(n)
        else:
            forward.append(n)
    inputs = {v for v in joint.inputs if v not in tainted}
    needed = {v for n in backward for v in n.inputs if v not in tainted}
    needed |= {v for v in joint.outputs[n_outputs:] if v not in tainted}
    cheap = set(inputs)
    for n in forward:
        if n.op in _OLD_RECOMPUTE and all(v in cheap for v in n.inputs):
            cheap.update(n.outputs)
    return sum(v.type.nbytes for v in needed if v not in cheap)


def split_row(name: str, args, budget: int | None = None) -> dict:
    print(f"measuring the {name} forward/backward split ...", file=sys.stderr, flush=True)
    from gcomp.passes import partition as partition_module

    model, crit, _, x, y = build(name, args.layers)
    seen = {"old": 0, "new": 0}  # summed over every split the call makes (one per executable)
    original = partition_module.partition

    limit = budget  # given to the partition itself: the option would add remat to the joint

    def spy(joint, n_outputs, cotangents, budget=None):
        seen["old"] += old_residual_bytes(joint, n_outputs, cotangents)
        part = original(joint, n_outputs, cotangents, budget if limit is None else limit)
        seen["new"] += sum(v.type.nbytes for v in part.forward.outputs[n_outputs:])
        return part

    partition_module.partition = spy
    try:
        passes = [p for p in DEFAULT_PIPELINE if p != "fusion"]
        compiled = gcomp.compile(model, passes=passes)
        loss = crit(compiled(x), y)
        loss.backward()
    finally:
        partition_module.partition = original
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None for g in grads)
    label = name if budget is None else f"{name}, budget {budget} B"
    return {"workload": label, "old": seen["old"], "new": seen["new"],
            "reduction": 1 - seen["new"] / seen["old"] if seen["old"] else 0.0}


def mib(b) -> str:
    return f"{b / 2**20:.2f}"


def print_tables(steps: list[dict], splits: list[dict]) -> None:
    head = ["workload", "variant", "nodes", "temp MiB", "reduction", "ms/step", "ratio"]
    lines = [head]
    for r in steps:
        if r["error"]:
            lines.append([r["workload"], r["variant"], "-", "-", "-", r["error"][:40], "-"])
            continue
        lines.append([r["workload"], r["variant"], str(r["nodes"]), mib(r["temp"]),
                      f"{100 * r['reduction']:.0f}%", f"{r['ms']:.1f}", f"{r['ratio']:.3f}"])
    _table(lines)
    print()
    lines = [["compiled module", "old residual MiB", "min-cut residual MiB", "reduction"]]
    for r in splits:
        lines.append([r["workload"], mib(r["old"]), mib(r["new"]),
                      f"{100 * r['reduction']:.0f}%"])
    _table(lines)


def _table(lines) -> None:
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    for k, line in enumerate(lines):
        print("  ".join(c.rjust(wd) if i else c.ljust(wd)
                        for i, (c, wd) in enumerate(zip(line, widths))))
        if k == 0:
            print("  ".join("-" * wd for wd in widths))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", help=f"workloads (default {','.join(DEFAULT)})")
    ap.add_argument("--steps", type=int, default=5, help="steps per timing round")
    ap.add_argument("--repeat", type=int, default=5, help="timing rounds")
    ap.add_argument("--layers", type=int, default=LAYERS, help="layers of the deep MLP")
    ap.add_argument("--budget", type=int, help="also time remat with this remat_budget (bytes)")
    ap.add_argument("--quick", action="store_true", help="4 layers, 2 steps, 3 rounds")
    ap.add_argument("--json", help="also write the rows here")
    args = ap.parse_args(argv)
    if args.quick:
        args.layers, args.steps, args.repeat = 4, 2, 3
    names = DEFAULT if not args.only else [n.strip() for n in args.only.split(",")]
    unknown = [n for n in names if n != "deep_mlp" and n not in WORKLOADS]
    if unknown:
        raise SystemExit(f"unknown workload(s) {unknown}; choose from deep_mlp, "
                         f"{', '.join(WORKLOADS)}")
    jax.config.update("jax_enable_compilation_cache", False)
    steps = [r for n in names for r in step_rows(n, args)]
    splits = [split_row(n, args) for n in names]
    if args.budget is not None:
        splits += [split_row(n, args, args.budget) for n in names]
    print(f"# remat: {', '.join(with_remat(DEFAULT_PIPELINE))} against "
          f"{', '.join(DEFAULT_PIPELINE)}; deep_mlp {args.layers}x Linear({WIDTH}) + GELU, "
          f"batch {BATCH}; {versions()}; {load_note(cores())}")
    print_tables(steps, splits)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"steps": steps, "splits": splits}, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
