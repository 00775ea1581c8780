"""A data-parallel training step over 1, 2 and 4 host devices, with the same global batch.

    python benchmarks/data_parallel.py [--only mlp,cnn] [--devices 1,2,4] [--quick] [--json out]

Each device count runs in its own process (XLA_FLAGS=--xla_force_host_platform_device_count=N
must be set before jax starts): the workload's step is compiled with
``gcomp.compile(step, mesh=Mesh(("data",)))`` over N devices (the batch split, parameters and
optimizer state replicated, the gradient all-reduced by XLA), and, in the 1-device process, also
without a mesh. It prints median ms/step and the speed-up against the 1-device mesh step.

Host devices are threads of one process sharing the same cores (2 on the development machine),
so this measures what partitioning costs (the all-reduce, per-device launch, smaller kernels),
not a speed-up: on real accelerators each device has its own compute.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from workloads import WORKLOADS, cores, gcomp_sync, load_note, measure, train_step, versions  # noqa: E402

NOTE = ("host devices share the same {cores} cores: this measures partitioning overhead, not a "
        "speed-up")


def _worker(n_devices: int, names: list[str], steps: int, repeat: int, warmup: int) -> dict:
    """In a process with ``n_devices`` host devices: time each workload's step over the mesh."""
    import gcomp
    from gcomp.distributed import Mesh

    if len(gcomp.distributed.devices()) != n_devices:
        raise SystemExit(f"expected {n_devices} devices, jax has {gcomp.distributed.devices()}")
    mesh = Mesh(("data",))
    results = {}
    for name in names:
        w = WORKLOADS[name]
        state = w.reference_state()
        x_np, y_np = w.data()
        cases, compiled = {}, {}
        variants = [("mesh", mesh)] + ([("no mesh", None)] if n_devices == 1 else [])
        for label, m in variants:
            model, crit, opt = w.build(gcomp, state)
            step = gcomp.compile(lambda x, y, model=model, crit=crit, opt=opt:
                                 train_step(model, crit, opt, x, y), mesh=m, name="step")
            x, y = gcomp.tensor(x_np), gcomp.tensor(y_np)
            compiled[label] = (step, x, y)
            cases[label] = (lambda step=step, x=x, y=y: step(x, y),
                            lambda loss, model=model: gcomp_sync(loss, *model.parameters()))
        timed = measure(cases, steps, repeat, warmup)
        for label, (step, x, y) in compiled.items():
            kinds = [k.kind for k in step.kernels(x, y)]
            timed[label]["all_reduces"] = kinds.count("all-reduce")
        results[name] = timed
    return results


def _run_worker(n: int, names: list[str], steps: int, repeat: int, warmup: int) -> dict:
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={n}",
               JAX_PLATFORMS="cpu")
    cmd = [sys.executable, __file__, "--worker", str(n), "--only", ",".join(names),
           "--steps", str(steps), "--repeat", str(repeat), "--warmup", str(warmup)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        return {name: {"mesh": {"error": proc.stderr.strip().splitlines()[-1:]}} for name in names}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def rows(only: str | None = None, devices=(1, 2, 4), steps: int = 50, repeat: int = 7,
         warmup: int = 3) -> list[dict]:
    """The table's rows: one per workload, device count and variant, with median/min/max ms per
    step, the speed-up against the 1-device mesh step, the first loss and the all-reduce count
    in the optimized HLO. One subprocess per device count."""
    names = [n.strip() for n in (only or "mlp,cnn").split(",") if n.strip()]
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        raise SystemExit(f"unknown workload(s) {unknown}; choose from {list(WORKLOADS)}")
    per_n = {n: _run_worker(n, names, steps, repeat, warmup) for n in devices}
    out = []
    for name in names:
        base = per_n.get(1, {}).get(name, {}).get("mesh", {}).get("median")
        for n in devices:
            for label, r in per_n[n][name].items():
                med = r.get("median")
                out.append({
                    "workload": name, "what": WORKLOADS[name].what, "devices": n,
                    "variant": label, "median_ms": med, "min_ms": r.get("min"),
                    "max_ms": r.get("max"), "first_loss": r.get("first_loss"),
                    "all_reduces": r.get("all_reduces"), "error": r.get("error"),
                    "speedup": base / med if base and med else None})
    return out


def table(rs: list[dict]) -> str:
    head = (f"{'workload':<10} {'devices':>7} {'variant':<8} {'median ms':>10} {'min':>8} "
            f"{'max':>8} {'vs 1 dev':>9} {'all-reduces':>11} {'loss0':>9}")
    lines = [head, "-" * len(head)]
    for r in rs:
        if r["error"]:
            lines.append(f"{r['workload']:<10} {r['devices']:>7} {r['variant']:<8} "
                         f"error: {r['error']}")
            continue
        sp = f"{r['speedup']:.2f}x" if r["speedup"] else "-"
        lines.append(f"{r['workload']:<10} {r['devices']:>7} {r['variant']:<8} "
                     f"{r['median_ms']:>10.3f} {r['min_ms']:>8.3f} {r['max_ms']:>8.3f} {sp:>9} "
                     f"{r['all_reduces']:>11} {r['first_loss']:>9.5f}")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", help="workloads, comma-separated (default mlp,cnn)")
    ap.add_argument("--devices", default="1,2,4")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="10 steps x 3 rounds")
    ap.add_argument("--json", help="write the rows here")
    ap.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.quick:
        args.steps, args.repeat = 10, 3
    if args.worker:
        res = _worker(args.worker, args.only.split(","), args.steps, args.repeat, args.warmup)
        print(json.dumps(res))
        return
    rs = rows(args.only, tuple(int(d) for d in args.devices.split(",")), args.steps,
              args.repeat, args.warmup)
    n = cores()
    print(f"Data-parallel training step, same global batch; {versions()}; {load_note(n)}")
    for name in dict.fromkeys(r["workload"] for r in rs):
        print(f"  {name}: {WORKLOADS[name].what}")
    print(table(rs))
    print(f"note: {NOTE.format(cores=n)}; 'vs 1 dev' is the 1-device mesh step's time over this "
          "row's (above 1 = faster); loss0 is the first step's loss (the same for every row)")
    if args.json:
        Path(args.json).write_text(json.dumps(rs, indent=2))


if __name__ == "__main__":
    main()
