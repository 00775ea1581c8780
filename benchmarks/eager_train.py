"""Eager training-step time of gcomp against torch eager, same models, weights and batches, one run.

    python benchmarks/eager_train.py [--only mlp,lstm] [--steps 10] [--repeat 5] [--warmup 3]
                                     [--quick] [--json out.json]

A step is ``opt.zero_grad(); loss = crit(model(x), y); loss.backward(); opt.step()``, written
once (workloads.py) and run with ``T = gcomp`` and ``T = torch``. Prints the median ms/step over
``repeat`` rounds of ``steps`` steps (after ``warmup`` steps, the first of which compiles gcomp's
per-op kernels), gcomp and torch timed in turns, and the ratio gcomp / torch with the target of
issue 3 (within 2x of torch on the MLP and the LSTM). gcomp's optimizer ``step()`` is itself one
compiled call (gcomp.optim's design); the rest of the step is eager ops and the eager tape.
"""

from __future__ import annotations

import argparse
import json

import torch
from workloads import cores, gcomp_sync, load_note, measure, select, short, train_step, versions

import gcomp

TARGETS = {"mlp": 2.0, "lstm": 2.0}
DEFAULT = ["mlp", "cnn", "lstm", "transformer"]


def cases_for(w):
    state = w.reference_state()
    x, y = w.data()
    cases = {}

    gm, gc, go = w.build(gcomp, state)
    gx, gy = gcomp.tensor(x), gcomp.tensor(y)
    gparams = list(gm.parameters())
    cases["gcomp"] = (lambda: train_step(gm, gc, go, gx, gy),
                      lambda loss: gcomp_sync(loss, *gparams))

    tm, tc, to = w.build(torch, state)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    cases["torch"] = (lambda: train_step(tm, tc, to, tx, ty), lambda loss: None)  # synchronous
    return cases


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", help=f"comma-separated workloads (default {','.join(DEFAULT)})")
    ap.add_argument("--steps", type=int, default=10, help="steps per timed round")
    ap.add_argument("--repeat", type=int, default=7, help="timed rounds")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    ap.add_argument("--quick", action="store_true", help="--steps 2 --repeat 3 --warmup 2")
    ap.add_argument("--threads", type=int, help="torch.set_num_threads (default: the cores)")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args(argv)
    if args.quick:
        args.steps, args.repeat, args.warmup = 2, 3, 2
    n = cores()
    threads = args.threads or n
    torch.set_num_threads(threads)
    load = load_note(n)

    print(f"eager training step (zero_grad, forward, loss, backward, optimizer step), ms/step: "
          f"median of {args.repeat} rounds of {args.steps} steps after {args.warmup} warm-up "
          f"steps, gcomp and torch in turns")
    print(f"{versions()}; CPU, {n} cores, torch.set_num_threads({threads}); "
          f"{load}; same weights and batch; "
          f"loss0 = first-step losses agree (relative difference)")
    print()
    head = (f"{'workload':<12} {'shape / optimizer':<42} {'gcomp ms':>9} {'torch ms':>9} "
            f"{'gcomp/torch':>11} {'target':>7} {'loss0':>8}")
    print(head)
    print("-" * len(head))
    results = {}
    for w in select(args.only, DEFAULT):
        try:
            r = measure(cases_for(w), args.steps, args.repeat, args.warmup)
        except Exception as e:  # noqa: BLE001 - building the models failed
            from workloads import error_text

            r = {"gcomp": {"error": error_text(e)}, "torch": {"error": error_text(e)}}
        g, t = r["gcomp"], r["torch"]
        target = TARGETS.get(w.name)
        row = {"what": w.what, "gcomp": g, "torch": t, "target": target}
        cells = []
        for res in (g, t):
            cells.append(f"{res['median']:>9.2f}" if "median" in res else f"{'error':>9}")
        if "median" in g and "median" in t:
            row["ratio"] = g["median"] / t["median"]
            ratio = f"{row['ratio']:>11.2f}"
            lg, lt = g["first_loss"], t["first_loss"]
            row["loss0_rel_diff"] = abs(lg - lt) / max(abs(lt), 1e-30)
            loss0 = f"{row['loss0_rel_diff']:>8.0e}"
        else:
            ratio, loss0 = f"{'-':>11}", f"{'-':>8}"
        tgt = f"{f'<= {target:.1f}':>7}" if target else f"{'-':>7}"
        print(f"{w.name:<12} {w.what:<42} {cells[0]} {cells[1]} {ratio} {tgt} {loss0}")
        for who, res in (("gcomp", g), ("torch", t)):
            if "error" in res:
                print(f"{'':<12} {who} error: {short(res['error'], 90)}")
        results[w.name] = row
    if args.json:
        meta = {"versions": versions(), "cores": n, "torch_threads": threads, "load": load,
                "steps": args.steps, "repeat": args.repeat,
                "warmup": args.warmup, "unit": "ms per training step"}
        with open(args.json, "w") as fh:
            json.dump({"meta": meta, "results": results}, fh, indent=2)


if __name__ == "__main__":
    main()
