"""Every ```python block of every docs/*.md page runs (so the docs cannot lie).

A page's blocks run in order in one namespace, as a reader's session would, in a temporary
working directory, with os.environ restored afterwards. Each block is compiled with the page as
its file name and its own line numbers, so a traceback points at the line of the .md file, and a
failure names the page and the line where the failing block starts. ```bash and ```text blocks
are not run.
"""

import os
import re
import traceback
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGES = sorted(p.name for p in DOCS.glob("*.md"))
OURS = ["tensors_autograd.md", "nn_optim.md", "compile_ir.md", "passes.md", "benchmarking.md",
        "showing_graphs.md"]


def blocks(text: str) -> list[tuple[int, str]]:
    """(line of the block's first code line, code) for each ```python block."""
    out = []
    for m in re.finditer(r"^```python[ \t]*\n(.*?)^```", text, flags=re.S | re.M):
        out.append((text.count("\n", 0, m.start(1)) + 1, m.group(1)))
    return out


def test_block_extraction():
    text = "intro\n```python\nx = 1\n```\n```bash\nls\n```\n\n```python\ny = 2\nz = 3\n```\n"
    assert blocks(text) == [(3, "x = 1\n"), (10, "y = 2\nz = 3\n")]


def test_pages_have_examples():
    for page in OURS:
        assert page in PAGES, f"docs/{page} is missing"
        assert blocks((DOCS / page).read_text()), f"docs/{page} has no python block"


@pytest.mark.parametrize("page", PAGES)
def test_page_runs(page, tmp_path, monkeypatch):
    path = DOCS / page
    monkeypatch.chdir(tmp_path)
    env = dict(os.environ)
    namespace: dict = {"__name__": f"docs_{path.stem}"}
    try:
        for line, code in blocks(path.read_text()):
            # pad so that line numbers in a traceback are the page's own
            compiled = compile("\n" * (line - 1) + code, str(path), "exec")
            try:
                exec(compiled, namespace)
            except Exception as e:  # noqa: BLE001 - reported with the page and line
                tb = "".join(traceback.format_exception(e)[-6:])
                pytest.fail(f"docs/{page}: the python block at line {line} failed: "
                            f"{type(e).__name__}: {e}\n{tb}", pytrace=False)
    finally:
        os.environ.clear()
        os.environ.update(env)
