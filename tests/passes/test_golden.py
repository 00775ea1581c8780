"""Golden tests of the passes, run through the ``gcomp opt`` entry point.

Each ``golden/<pass>/<case>.gir`` is an input graph; ``<case>.expected.gir`` next to it is what
``gcomp opt <case>.gir --passes <pass>`` must print, character for character (see
golden/README.md). ``GCOMP_UPDATE_GOLDEN=1`` rewrites the expected files from the current output;
review the diff before keeping it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gcomp.cli import main
from gcomp.ir import parse, verify

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(p for p in GOLDEN.glob("*/*.gir") if not p.name.endswith(".expected.gir"))
PASSES = ("simplify", "fold", "cse", "dce", "fusion", "fuse_patterns", "remat", "precision",
          "conv_choice")


def _expected(path: Path) -> Path:
    return path.with_name(path.name[: -len(".gir")] + ".expected.gir")


def _opt(capsys, *argv: str) -> str:
    assert main(["opt", *argv]) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("path", CASES, ids=[f"{p.parent.name}/{p.stem}" for p in CASES])
def test_golden(path, capsys):
    text = path.read_text()
    assert str(parse(text)) == text, f"{path} is not in printed form (parse and print it)"
    # fuse_patterns' cases show attention fused, as on an accelerator (Note [Fused patterns])
    extra = ["--option", "attention=fused"] if path.parent.name == "fuse_patterns" else []
    out = _opt(capsys, str(path), "--passes", path.parent.name, *extra)
    expected = _expected(path)
    if os.environ.get("GCOMP_UPDATE_GOLDEN") == "1":
        expected.write_text(out)
    assert out == expected.read_text()
    verify(parse(out))
    assert str(parse(out)) == out


def test_every_pass_has_five_cases():
    for name in PASSES:
        cases = [p for p in CASES if p.parent.name == name]
        assert len(cases) >= 5, f"{name} has {len(cases)} golden cases"
        assert all(_expected(p).exists() for p in cases)
    assert {p.parent.name for p in CASES} <= set(PASSES)


def test_cases_where_the_pass_must_not_fire_print_their_input():
    for name in ("simplify/nan_sensitive_untouched", "dce/nothing_dead",
                 "fuse_patterns/scan_not_the_last_step"):
        path = GOLDEN / f"{name}.gir"
        assert _expected(path).read_text() == path.read_text()


def test_console_entry_point_with_fuel():
    """``python -m gcomp.cli opt --fuel N`` stops after N rewrites and names the last one."""
    path = GOLDEN / "simplify" / "multiply_by_one.gir"
    run = subprocess.run([sys.executable, "-m", "gcomp.cli", "opt", str(path), "--passes",
                          "simplify", "--fuel", "1"], capture_output=True, text=True, check=True)
    assert "fuel 1: 1 rewrite(s) made" in run.stderr
    assert "simplify/identity on mul" in run.stderr  # the last one taken
    assert "next refused: simplify/identity on mul" in run.stderr
    out = parse(run.stdout)
    assert out.op_counts()["mul"] == 2 and out.op_counts()["div"] == 1
