"""Ahead of time: time to first result of the CNN training step in a fresh process, three ways,
and the data-parallel step over 1, 2 and 4 host devices. One run, medians.

    python benchmarks/aot.py [--runs 3] [--no-mesh]

(a) trace + passes + XLA compile + one step (``gcomp.compile(step)(x, y)``), persistent cache
    off; (b) ``gcomp.load(artifact)`` + one step, the artifact saved once beforehand; (c) as (a)
    with ``GCOMP_CACHE_DIR`` holding the step compiled by an earlier process. Each is a new
    Python process; the time is measured inside it from before building the model (imports
    excluded, being the same for all three) to the first loss. Issue 6's target: loading is at
    least 5x faster than compiling from scratch. Then benchmarks/data_parallel.py's rows.
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
    if mode == "load":
        step = gcomp.load(path)
        loss = step(x, y)
    else:
        model, crit, opt = w.build(gcomp, np.load(path))
        step = gcomp.compile(lambda x, y: train_step(model, crit, opt, x, y))
        loss = step(gcomp.tensor(x), gcomp.tensor(y))
        if mode == "save":
            model, crit, opt = w.build(gcomp, np.load(path))
            fresh = gcomp.compile(lambda x, y: train_step(model, crit, opt, x, y))
            fresh.lower(gcomp.tensor(x), gcomp.tensor(y)).compile().save(sys.argv[3])
    value = float(loss.item())
    print(f"{{time.perf_counter() - t0:.6f}} {{value:.7f}}")
""")


def child(script: Path, mode: str, *paths, cache: str | None = None) -> tuple[float, float]:
    env = dict(os.environ)
    env.pop("GCOMP_CACHE_DIR", None)
    if cache:
        env["GCOMP_CACHE_DIR"] = cache
    out = subprocess.run([sys.executable, str(script), mode, *map(str, paths)], env=env,
                         capture_output=True, text=True, check=True).stdout.split()
    return float(out[0]), float(out[1])


def data_parallel_rows() -> list:
    try:
        import data_parallel
    except ImportError:
        return []
    return data_parallel.rows()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-mesh", action="store_true", help="skip the data-parallel rows")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(HERE))
    import numpy as np
    from workloads import WORKLOADS

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        script = tmp / "child.py"
        script.write_text(CHILD.format(here=str(HERE)))
        np.savez(tmp / "state.npz", **WORKLOADS["cnn"].reference_state())
        child(script, "save", tmp / "state.npz", tmp / "cnn.gca")
        cache = str(tmp / "cache")
        child(script, "compile", tmp / "state.npz", cache=cache)  # fills the cache
        res = {"compile": [], "load": [], "cache hit": []}
        losses = {}
        for _ in range(args.runs):
            for name, run in (("compile", lambda: child(script, "compile", tmp / "state.npz")),
                              ("load", lambda: child(script, "load", tmp / "cnn.gca")),
                              ("cache hit", lambda: child(script, "compile", tmp / "state.npz",
                                                          cache=cache))):
                s, loss = run()
                res[name].append(s)
                losses[name] = loss
    med = {k: statistics.median(v) for k, v in res.items()}
    print(f"# time to first result, CNN training step ({WORKLOADS['cnn'].what}), fresh process "
          f"each, median of {args.runs}")
    print(f"{'way':<12} {'s':>8} {'compile/this':>13} {'first loss':>12}")
    for k in res:
        print(f"{k:<12} {med[k]:8.3f} {med['compile'] / med[k]:13.1f} {losses[k]:12.6f}")
    ok = med["compile"] / med["load"] >= 5
    print(f"target: loading an artifact >= 5x faster than compiling: "
          f"{med['compile'] / med['load']:.1f}x: {'met' if ok else 'MISSED'}")
    if not args.no_mesh:
        rows = data_parallel_rows()
        if rows:
            print("\n# data-parallel step over host devices (benchmarks/data_parallel.py)")
            import data_parallel

            print(data_parallel.table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
