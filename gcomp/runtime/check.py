"""GCOMP_CHECK=1: every compiled call is checked against the reference interpreter, and a failure
leaves a self-contained repro behind.

Note [Repros]
With ``GCOMP_CHECK=1`` a compiled function runs each call without donating buffers, then runs
its *traced* graph (before the optimization passes; the autodiff expansion only) with the
reference interpreter (gcomp.ir.interpret: the lowering rules op by op, as eager mode runs
them) on copies of the same inputs, and compares every result and state update. When they
disagree, or when compiling or running raises, it writes

    <dir>/<name>.gir          the traced graph, in the IR text format
    <dir>/<name>.inputs.npz   one array per graph input, named as the text names them

and raises a GcompError naming them, with the commands that replay it: ``gcomp run`` to run the
repro, ``gcomp opt --passes ... --fuel N`` to bisect the passes (Note [Pass fuel]). <dir> is
GCOMP_REPRO_DIR, else GCOMP_DUMP_DIR, else a new temporary directory. The results of a failed
check are not written back: parameters and optimizer state stay as they were before the call.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from ..ir.errors import GcompError


def enabled() -> bool:
    return os.environ.get("GCOMP_CHECK", "").strip() not in ("", "0")


def _dir(name: str) -> Path:
    root = os.environ.get("GCOMP_REPRO_DIR") or os.environ.get("GCOMP_DUMP_DIR")
    if root:
        d = Path(root)
        d.mkdir(parents=True, exist_ok=True)
        return d
    return Path(tempfile.mkdtemp(prefix=f"gcomp_repro_{name}_"))


def write_repro(name: str, graph, arrays) -> tuple[Path, Path]:
    """The graph's text and its inputs, keyed by the names ``gcomp run`` reads them by."""
    from ..ir import parse

    d = _dir(name)
    text = str(graph)
    gir = d / f"{name}.gir"
    gir.write_text(text)
    names = [v.state or v.name for v in parse(text).inputs]
    npz = d / f"{name}.inputs.npz"
    np.savez(npz, **{n: np.asarray(a) for n, a in zip(names, arrays, strict=True)})
    return gir, npz


def _replay(gir: Path, npz: Path) -> str:
    return (f"replay it with `gcomp run {gir} --inputs {npz}`, and find the rewrite that breaks "
            f"it with `gcomp opt {gir} --passes default --fuel N`")


def failure(name: str, graph, arrays, error: BaseException) -> GcompError:
    gir, npz = write_repro(name, graph, arrays)
    return GcompError(f"compiling or running {name} failed ({type(error).__name__}: {error}); "
                      f"GCOMP_CHECK wrote a repro: {gir} and {npz}; {_replay(gir, npz)}")


def compare(name: str, graph, arrays, got, n_out: int, n_res: int, loose: bool) -> None:
    """Raise (after writing a repro) when ``got`` (the executable's results: outputs, residuals,
    updates) disagrees with the reference interpreter on the traced ``graph``."""
    from ..ir import interpret
    from ..passes import run_passes

    ref_graph = run_passes(graph.copy(), "none")
    want = interpret(ref_graph, *arrays)
    got = list(got[:n_out]) + list(got[n_out + n_res:])
    labels = [f"output {i}" for i in range(n_out)] + [f"the update of {s}"
                                                       for s, _ in ref_graph.updates]
    for label, a, b in zip(labels, got, want, strict=True):
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape or a.dtype != b.dtype:
            problem = f"{label} is {a.dtype}{list(a.shape)}, eager gives {b.dtype}{list(b.shape)}"
        elif a.dtype.kind in "fc" or a.dtype.name == "bfloat16":
            a64, b64 = a.astype(np.float64), b.astype(np.float64)
            small = loose or a.itemsize <= 2
            rtol, atol = (5e-2, 5e-2) if small else (1e-3, 1e-4)
            if np.allclose(a64, b64, rtol=rtol, atol=atol, equal_nan=True):
                continue
            err = np.nanmax(np.abs(a64 - b64)) if a64.size else 0.0
            problem = f"{label} differs from eager by up to {err:.3g} (rtol {rtol}, atol {atol})"
        elif np.array_equal(a, b):
            continue
        else:
            problem = f"{label} differs from eager in {int((a != b).sum())} elements"
        gir, npz = write_repro(name, graph, arrays)
        raise GcompError(f"GCOMP_CHECK: compiled {name} disagrees with eager execution: {problem}; "
                         f"repro: {gir} and {npz}; {_replay(gir, npz)}")
