"""Ahead of time: time to first result of the CNN training step in a fresh process, four ways,
then (if benchmarks/data_parallel.py exists) the data-parallel table. Medians of a few runs.

    python benchmarks/aot.py [--runs 3] [--no-mesh]

(a) compile: trace + passes + XLA compile + one step (``gcomp.compile(step)(x, y)``), with the
    persistent cache off; (b) load: ``gcomp.load(artifact)`` + one step, using the XLA
    executable the artifact carries; (b') load portable: the same with ``use_executable=False``,
    which compiles the artifact's jax.export program (what a machine or jaxlib the executable
    was not made for does); (c) cache hit: as (a), with ``GCOMP_CACHE_DIR`` holding the step
    compiled by an earlier process. Each run is a new Python process; the time is measured in it
    from before building the model (imports excluded: the same for all) to the first loss, which
    is printed too: the four must agree. Issue 6's target: loading is at least 5x faster than
    compiling from scratch.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

HERE = Path(__file__).resolve().parent

CHILD = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {here!r})
    import numpy as np
    import gcomp
    from workloads import WORKLOADS, train_step
    mode, path = sys.argv[1], sys.argv[2]
    w = WORKLOADS["cnn"]
    x, y = w.data()
    t0 = time.perf_counter()
    if mode.startswith("load"):
        step = gcomp.load(path, use_executable=mode == "load")
        loss = step(x, y)
    else:
        model, crit, opt = w.build(gcomp, dict(np.load(path)))
        step = gcomp.compile(lambda x, y: train_step(model, crit, opt, x, y))
        if mode == "save":  # the artifact holds the initial state: its first loss is comparable
            step = step.lower(gcomp.tensor(x), gcomp.tensor(y)).compile()
            step.save(sys.argv[3])
        loss = step(gcomp.tensor(x), gcomp.tensor(y))
    value = float(loss.item())
    print(f"{{time.perf_counter() - t0:.6f}} {{value:.7f}}")
""")

WAYS = {"compile": ("compile", "state", False), "load": ("load", "artifact", False),
        "load portable": ("load-portable", "artifact", False),
        "cache hit": ("compile", "state", True)}


def child(script: Path, mode: str, *paths, cache: str | None = None) -> tuple[float, float]:
    env = {k: v for k, v in os.environ.items() if k != "GCOMP_CACHE_DIR"}
    if cache:
        env["GCOMP_CACHE_DIR"] = cache
    out = subprocess.run([sys.executable, str(script), mode, *map(str, paths)], env=env,
                         capture_output=True, text=True, check=True).stdout.split()
    return float(out[0]), float(out[1])


def data_parallel_rows() -> list:
    """The data-parallel table's rows: another script's (benchmarks/data_parallel.py), if it
    exists, so one command prints both of issue 6's tables."""
    if not (HERE / "data_parallel.py").exists():
        return []
    import data_parallel

    return data_parallel.rows()


def measure(runs: int) -> tuple[dict, dict]:
    """Seconds to first loss per way (one list of ``runs`` each), and each way's first loss."""
    import numpy as np
    from workloads import WORKLOADS

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        script = tmp / "child.py"
        script.write_text(CHILD.format(here=str(HERE)))
        files = {"state": tmp / "state.npz", "artifact": tmp / "cnn.gca"}
        import gcomp

        np.savez(files["state"], **WORKLOADS["cnn"].reference_state(T=gcomp))
        cache = str(tmp / "cache")
        child(script, "save", files["state"], files["artifact"])
        child(script, "compile", files["state"], cache=cache)  # fills the cache
        times: dict = {k: [] for k in WAYS}
        losses: dict = {}
        for _ in range(runs):  # interleaved, so a busy moment costs every way alike
            for name, (mode, file, cached) in WAYS.items():
                s, loss = child(script, mode, files[file], cache=cache if cached else None)
                times[name].append(s)
                losses[name] = loss
    return times, losses


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-mesh", action="store_true", help="skip the data-parallel table")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(HERE))
    from workloads import WORKLOADS, cores, load_note, versions

    times, losses = measure(args.runs)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"Time to first result, CNN training step ({WORKLOADS['cnn'].what}), a fresh process "
          f"per run, median of {args.runs}; {versions()}; {load_note(cores())}")
    head = f"{'way':<14} {'median s':>9} {'min s':>7} {'max s':>7} {'compile/this':>13} " \
           f"{'first loss':>11}"
    print(head)
    print("-" * len(head))
    for k, v in times.items():
        print(f"{k:<14} {med[k]:9.3f} {min(v):7.3f} {max(v):7.3f} "
              f"{med['compile'] / med[k]:12.1f}x {losses[k]:11.6f}")
    ratio = med["compile"] / med["load"]
    print(f"target: loading an artifact >= 5x faster than compiling from scratch: {ratio:.1f}x, "
          f"{'met' if ratio >= 5 else 'NOT met'}")
    if not args.no_mesh:
        rows = data_parallel_rows()
        if rows:
            import data_parallel

            print("\nData-parallel training step (benchmarks/data_parallel.py)")
            print(data_parallel.table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
