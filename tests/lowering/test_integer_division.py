"""Integer division by zero and INT_MIN / -1 of constants: XLA's constant folding would run the
machine's division and the process would die of SIGFPE (Note in lowering/elementwise.py). Each
case runs in a subprocess, so a regression fails the test instead of killing the test run, and is
checked against the same ops on arguments (computed by XLA's emitted code, never folded)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np

SCRIPT = textwrap.dedent(r'''
    import json
    import numpy as np
    import gcomp

    out = {}
    for dt in ["int32", "int64", "uint8", "uint32"]:
        info = np.iinfo(dt)
        vals = [0, 1, 7, int(info.max), int(info.min)] + ([-1, -7] if info.min < 0 else [])
        X, Y = (a.ravel() for a in np.meshgrid(np.array(vals, dt), np.array(vals, dt)))
        dtype = getattr(gcomp, dt)

        def ops(a, b):
            return [a // b, a % b, gcomp.div(a, b, rounding_mode="trunc"),
                    gcomp.fmod(a, b)]

        x, y = gcomp.tensor(X, dtype=dtype), gcomp.tensor(Y, dtype=dtype)
        on_args = gcomp.compile(ops, passes="none")(x, y)
        const = gcomp.compile(lambda: ops(gcomp.tensor(X, dtype=dtype),
                                          gcomp.tensor(Y, dtype=dtype)), passes="none")()
        folded = gcomp.compile(lambda: ops(gcomp.tensor(X, dtype=dtype),
                                           gcomp.tensor(Y, dtype=dtype)))()
        eager = ops(x, y)
        out[dt] = [[t.numpy().tolist() for t in r] for r in (on_args, const, folded, eager)]
        out[dt + " grid"] = [X.tolist(), Y.tolist()]
    print("RESULT" + json.dumps(out))
''')


def test_constant_integer_division_by_zero_does_not_crash_and_agrees():
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, f"rc {proc.returncode}: {proc.stderr[-3000:]}"
    out = json.loads(proc.stdout.split("RESULT", 1)[1])
    for dt in ["int32", "int64", "uint8", "uint32"]:
        on_args, const, folded, eager = out[dt]
        assert const == on_args and folded == on_args and eager == on_args, dt
        # where the divisor is not zero and nothing overflows: Python's own integer semantics
        xs, ys = out[dt + " grid"]
        for i, (a, b) in enumerate(zip(xs, ys)):
            if b == 0 or (a == np.iinfo(dt).min and b == -1):
                continue
            trunc = abs(a) // abs(b) * (1 if (a < 0) == (b < 0) else -1)
            assert [r[i] for r in on_args] == [a // b, a % b, trunc, a - b * trunc], (dt, a, b)
