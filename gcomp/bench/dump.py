"""``gcomp dump``: every stage of a compiled function written to a folder, each file explained.

The files are what ``GCOMP_DUMP_DIR`` writes (``_dump`` in gcomp/runtime/compiled.py): the graph
after each stage, numbered in pipeline order (``.gir``, parsed back by ``gcomp.ir.parse``), each
executable's StableHLO and XLA's optimized HLO, and summary.json. :func:`dump` compiles the
function for its arguments with that variable pointing at a scratch folder (or writes what a
compiled function holds already), and moves the files to ``out`` (by default
./gcomp_dump/NAME).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

STAGES = {
    "traced": "the IR as traced from the Python code, before any pass",
    "fuse_patterns": "after fuse_patterns: attention and cross-entropy patterns as one op each",
    "autodiff": "after autodiff: the grad request expanded into the backward graph",
    "simplify": "after simplify: algebraic identities rewritten",
    "fold": "after fold: constant expressions folded",
    "cse": "after cse: common subexpressions merged",
    "dce": "after dce: dead code removed",
    "precision": "after precision: the mixed-precision casts",
    "remat": "after remat: cheap forward work recomputed next to its backward uses",
    "conv_choice": "after conv_choice: an algorithm chosen for each convolution",
    "fusion": "after fusion: elementwise work grouped into regions (what is lowered)",
    "backward": "the backward half of the forward/backward partition (its own executable)",
    "forward": "the forward half of the partition: its extra outputs are what backward reads",
}
DUMPED = re.compile(r"^\d\d_.*\.(gir|stablehlo\.mlir|optimized_hlo\.txt)$")


@dataclass
class DumpResult:
    folder: Path
    files: list[tuple[str, str]] = field(default_factory=list)  # (file name, what it is)

    def __str__(self) -> str:
        width = max((len(f) for f, _ in self.files), default=0)
        lines = [f"wrote {len(self.files)} files to {self.folder}/"]
        lines += [f"  {f:<{width}}  {what}" for f, what in self.files]
        return "\n".join(lines)


def dump(fn, *args, out=None, name: str | None = None, **kwargs) -> DumpResult:
    """Write every stage's IR, the StableHLO, the optimized HLO and summary.json of ``fn`` for
    these arguments into ``out``. ``fn``: a function or a module (compiled here), a compiled one
    (what it compiled already is written as it is), or a built-in workload's name (its training
    step). Nothing runs: the function is traced and compiled, not called."""
    from ..runtime.compiled import _dump

    compiled, args, kwargs, name = _compiled(fn, args, kwargs, name)
    cf = getattr(compiled, "_compiled", compiled)  # a CompiledModule's CompiledFunction
    folder = Path(out) if out is not None else Path("gcomp_dump") / re.sub(r"[^\w.-]", "_", name)
    with tempfile.TemporaryDirectory(prefix="gcomp_dump_") as tmp:
        old = os.environ.get("GCOMP_DUMP_DIR")
        os.environ["GCOMP_DUMP_DIR"] = tmp
        try:
            entry = cf._entry(args, kwargs)  # compiles (and so dumps) unless compiled already
            if not any(Path(tmp).iterdir()):
                _dump(cf.name, entry, 0)
        finally:
            if old is None:
                del os.environ["GCOMP_DUMP_DIR"]
            else:
                os.environ["GCOMP_DUMP_DIR"] = old
        (written,) = [p for p in Path(tmp).iterdir() if p.is_dir()]
        folder.mkdir(parents=True, exist_ok=True)
        _clear(folder)
        for f in written.iterdir():
            shutil.move(str(f), folder / f.name)
    return DumpResult(folder, describe(folder))


def _compiled(fn, args, kwargs, name):
    """``fn`` as a compiled function, with the arguments it is dumped for."""
    from ..nn.modules.compiled import CompiledModule
    from ..runtime.compiled import CompiledFunction, compile
    from .workloads import WORKLOADS, Workload

    if isinstance(fn, str) and fn in WORKLOADS:
        fn = WORKLOADS[fn]
    if isinstance(fn, Workload):
        import gcomp

        from .runner import gcomp_case

        x, y = fn.data()
        case = gcomp_case(fn, fn.reference_state(0, gcomp), x, y, compiled=True)
        return case.compiled, case.inputs, {}, name or fn.name
    if isinstance(fn, (CompiledFunction, CompiledModule)):
        return fn, args, kwargs, name or getattr(fn, "_compiled", fn).name
    name = name or getattr(fn, "__name__", type(fn).__name__)
    return compile(fn, name=name), args, kwargs, name


def _clear(folder: Path) -> None:
    """Remove an earlier dump's files (and only those) so no stale stage stays behind."""
    for f in folder.iterdir():
        if f.is_file() and (DUMPED.match(f.name) or f.name == "summary.json"):
            f.unlink()


def describe(folder: Path) -> list[tuple[str, str]]:
    """(file, what it is) for each file of the dump in ``folder``, in order."""
    nodes = _nodes(folder / "summary.json")
    return [(f.name, _what(f.name, nodes)) for f in sorted(folder.iterdir())
            if f.is_file() and (DUMPED.match(f.name) or f.name == "summary.json")]


def _nodes(summary: Path) -> dict[int, int]:
    try:
        stages = json.loads(summary.read_text())["stages"]
    except (OSError, ValueError, KeyError):
        return {}
    return {i: s.get("nodes") for i, s in enumerate(stages)}


def _what(filename: str, nodes: dict[int, int]) -> str:
    if filename == "summary.json":
        return "time and node counts per stage, the executables, the compile time"
    index, _, rest = filename.partition("_")
    if rest.endswith(".gir"):
        stage = rest[: -len(".gir")]
        n = nodes.get(int(index)) if index.isdigit() else None
        what = STAGES.get(stage, f"after the {stage} pass")
        return what + (f" ({n} nodes)" if n is not None else "")
    if rest.endswith(".stablehlo.mlir"):
        return f"StableHLO of executable {rest[: -len('.stablehlo.mlir')]}: what JAX gives XLA"
    exe = rest[: -len(".optimized_hlo.txt")]
    return f"XLA's optimized HLO of executable {exe}: after XLA's own fusion, what runs"
