"""Mixed precision: compiled training steps at float32 against precision="bf16" and "f16", and
against torch-style ``gcomp.autocast("cpu")`` (bfloat16) around the forward and loss, compiled and
eager.

    python benchmarks/precision.py [--only digits,cnn] [--steps 20] [--repeat 5] [--quick]
                                   [--json out.json]

Rows: the digits MLP of examples/mlp_classifier.py (batches of 32 of the real train split,
cycled; SGD with momentum) and the CNN of workloads.py (its fixed batch; Adam). Every precision
starts from the same weights and sees the same batches in the same order, timed in turns
(workloads.measure). Columns: the median ms per step, its ratio to float32, and the loss after
the run's last step (every case runs the same number of steps), which shows that training goes
the same way. On a CPU bf16 and f16 are usually not faster: XLA's CPU backend converts them
to float32 for the multiply, so the casts are extra work; the gain is on accelerators with
low-precision matrix units. The autocast rows run the ops torch's autocast lists in bfloat16 and
their outputs' consumers (ReLU, pooling) too, where precision="bf16" keeps everything but the
products in float32; "autocast eager" is against "f32 eager", the same step without compile.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from workloads import WORKLOADS, cores, gcomp_sync, load_note, measure, train_step, versions

import gcomp

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))

PRECISIONS = [None, "bf16", "f16", "autocast", "f32 eager", "autocast eager"]
ROWS = ["digits", "cnn"]


def digits_case(precision, batch: int = 32):
    from mlp_classifier import make_model

    from gcomp.data.datasets import Digits

    gcomp.manual_seed(0)
    model = make_model(128)
    crit = gcomp.nn.CrossEntropyLoss()
    opt = gcomp.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    train = Digits(train=True)
    n = len(train) // batch
    batches = [(gcomp.from_numpy(train.images[i * batch:(i + 1) * batch]),
                gcomp.from_numpy(train.labels[i * batch:(i + 1) * batch])) for i in range(n)]
    return model, crit, opt, batches


def cnn_case(precision):
    w = WORKLOADS["cnn"]
    model, crit, opt = w.build(gcomp, w.reference_state())
    x, y = w.data()
    return model, crit, opt, [(gcomp.tensor(x), gcomp.tensor(y))]


def autocast_step(model, crit, opt, x, y):
    opt.zero_grad()
    with gcomp.autocast("cpu", dtype=gcomp.bfloat16):
        loss = crit(model(x), y)
    loss.backward()
    opt.step()
    return loss


def case(row: str, precision):
    model, crit, opt, batches = (digits_case if row == "digits" else cnn_case)(precision)
    params = list(model.parameters())
    autocast = precision is not None and precision.startswith("autocast")
    step_fn = autocast_step if autocast else train_step
    if precision is not None and precision.endswith("eager"):
        compiled = lambda x, y: step_fn(model, crit, opt, x, y)  # noqa: E731
    else:
        compiled = gcomp.compile(lambda x, y: step_fn(model, crit, opt, x, y),
                                 name=f"{row}_step", precision=None if autocast else precision)
    state = {"i": 0, "loss": None}

    def step():
        x, y = batches[state["i"] % len(batches)]
        state["i"] += 1
        state["loss"] = compiled(x, y)
        return state["loss"]

    return (step, lambda loss: gcomp_sync(loss, *params)), state


def run_row(row: str, args) -> dict:
    print(f"measuring {row} ...", file=sys.stderr, flush=True)
    cases, states = {}, {}
    for p in PRECISIONS:
        cases[p or "f32"], states[p or "f32"] = case(row, p)
    res = measure(cases, args.steps, args.repeat, warmup=args.warmup)
    out = {}
    for name, r in res.items():
        loss = states[name]["loss"]
        out[name] = dict(r, steps=states[name]["i"],
                         final_loss=float(loss.item()) if loss is not None else None)
    return out


def print_table(results: dict) -> None:
    head = (f"{'workload':<8} {'precision':<14} {'ms/step':>9} {'vs f32':>7} "
            f"{'final loss':>11}")
    print(head)
    print("-" * len(head))
    for row, res in results.items():
        for name, r in res.items():
            base = res.get("f32 eager" if name.endswith("eager") else "f32", {}).get("median")
            if "error" in r:
                print(f"{row:<8} {name:<14} error: {r['error'][:60]}")
                continue
            ratio = f"{r['median'] / base:>6.2f}x" if base else f"{'-':>7}"
            print(f"{row:<8} {name:<14} {r['median']:>9.3f} {ratio} {r['final_loss']:>11.5g}")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", help=f"comma-separated rows (default {','.join(ROWS)})")
    ap.add_argument("--steps", type=int, default=20, help="steps per timed round")
    ap.add_argument("--repeat", type=int, default=5, help="timed rounds (median over them)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps first (one compiles)")
    ap.add_argument("--quick", action="store_true", help="--steps 5 --repeat 3 --warmup 2")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args(argv)
    if args.quick:
        args.steps, args.repeat, args.warmup = 5, 3, 2
    rows = ROWS if not args.only else [r.strip() for r in args.only.split(",") if r.strip()]
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        raise SystemExit(f"unknown row(s) {unknown}; choose from {ROWS}")
    results = {row: run_row(row, args) for row in rows}
    print(f"# {versions()}; {load_note(cores())}")
    print(f"# {args.steps} steps x {args.repeat} rounds after {args.warmup} warmup steps; "
          "median ms per step")
    print_table(results)
    if args.json:
        Path(args.json).write_text(json.dumps({"versions": versions(), "results": results},
                                              indent=2))


if __name__ == "__main__":
    main()
