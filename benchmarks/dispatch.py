"""Per-op eager overhead and per-call compiled overhead, against jax and torch, in one run.

    python benchmarks/dispatch.py [--repeat 7] [--number 2000] [--json out.json]

Prints medians of ``repeat`` timings of ``number`` calls each, in microseconds per call, and the
ratios the project tracks: gcomp eager add / jax eager add (target <= 1.5) and gcomp compiled call
/ jax.jit call of the same function (target <= 1.3). Also ``x * number`` eagerly with the same
Python number every call and with a new one every call (a decaying learning rate): the second
must not compile per value (Note [Scalars in eager code] in gcomp/frontend/ops.py), so the two
should cost about the same.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import timeit

import jax
import jax.numpy as jnp
import numpy as np

import gcomp


def per_call_us(fn, number: int, repeat: int) -> tuple[float, float, float]:
    fn()  # warm up (and compile)
    times = [t / number * 1e6 for t in timeit.repeat(fn, number=number, repeat=repeat)]
    return statistics.median(times), min(times), max(times)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--number", type=int, default=2000)
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args(argv)

    a_np = np.random.default_rng(0).standard_normal((4, 4)).astype(np.float32)
    ga, gb = gcomp.tensor(a_np), gcomp.tensor(a_np)
    ja, jb = jnp.asarray(a_np), jnp.asarray(a_np)
    jit_add = jax.jit(lambda x, y: x + y)

    def f(x, y):
        return x * y + x

    gf = gcomp.compile(f)
    jf = jax.jit(f)
    fresh = (0.1 + i * 1e-6 for i in itertools.count())  # a new number every call
    fresh_t = (0.1 + i * 1e-6 for i in itertools.count())
    rows = {
        "gcomp eager add": lambda: ga + gb,
        "gcomp eager x*0.5": lambda: ga * 0.5,
        "gcomp eager x*new num": lambda: ga * next(fresh),
        "jax eager jnp.add": lambda: jnp.add(ja, jb),
        "jax jitted add": lambda: jit_add(ja, jb),
        "gcomp compiled x*y+x": lambda: gf(ga, gb),
        "jax.jit x*y+x": lambda: jf(ja, jb),
    }
    try:
        import torch

        ta, tb = torch.from_numpy(a_np), torch.from_numpy(a_np.copy())
        rows["torch eager add"] = lambda: ta + tb
        rows["torch eager x*new num"] = lambda: ta * next(fresh_t)
    except ImportError:
        pass
    results = {name: per_call_us(fn, args.number, args.repeat) for name, fn in rows.items()}
    print(f"{'case (4x4 float32)':<24} {'median us':>10} {'min':>8} {'max':>8}")
    for name, (med, lo, hi) in results.items():
        print(f"{name:<24} {med:>10.2f} {lo:>8.2f} {hi:>8.2f}")
    eager_ratio = results["gcomp eager add"][0] / results["jax eager jnp.add"][0]
    call_ratio = results["gcomp compiled x*y+x"][0] / results["jax.jit x*y+x"][0]
    print()
    print(f"gcomp eager add / jax eager add      = {eager_ratio:.2f}  (target <= 1.5)")
    print(f"gcomp compiled call / jax.jit call   = {call_ratio:.2f}  (target <= 1.3)")
    scalar_ratio = results["gcomp eager x*new num"][0] / results["gcomp eager x*0.5"][0]
    print(f"gcomp x*new number / x*same number   = {scalar_ratio:.2f}  (no compile per value: "
          "about 1)")
    if "torch eager add" in results:
        print(f"gcomp eager add / torch eager add    = "
              f"{results['gcomp eager add'][0] / results['torch eager add'][0]:.2f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"us_per_call": {k: {"median": v[0], "min": v[1], "max": v[2]}
                                       for k, v in results.items()},
                       "eager_add_vs_jax": eager_ratio, "compiled_call_vs_jit": call_ratio,
                       "new_number_vs_same_number": scalar_ratio}, fh,
                      indent=2)


if __name__ == "__main__":
    main()
