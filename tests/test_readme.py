"""Every python code block in README.md runs (so the README cannot lie)."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_examples():
    assert len(BLOCKS) >= 4


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_block_runs(index):
    namespace: dict = {}
    for block in BLOCKS[:index]:  # later blocks build on earlier ones, as a reader's session does
        exec(compile(block, f"README.md block {BLOCKS.index(block)}", "exec"), namespace)
    exec(compile(BLOCKS[index], f"README.md block {index}", "exec"), namespace)
