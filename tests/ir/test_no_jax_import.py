"""The IR layer imports nothing of gcomp outside gcomp.ir, and not jax (DESIGN.md, "Imports").

``gcomp/__init__.py`` is the user-facing package: it imports the front end and the lowering on
purpose (jax's x64 mode must be on before anything runs), so a plain ``import gcomp.ir`` always runs
it first. To measure only the IR's own imports, the subprocess registers an empty ``gcomp`` package
(with the real ``__path__``) before importing ``gcomp.ir``: every import that follows comes from the
IR itself.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import gcomp

SCRIPT = r"""
import sys, types

parent = types.ModuleType("gcomp")
parent.__path__ = [PACKAGE_DIR]
sys.modules["gcomp"] = parent

import gcomp.ir as ir

g = ir.Graph("f")
x = g.add_input(ir.TensorType((3, 4), ir.float32), "x")
w = g.add_input(ir.TensorType((4,), ir.float32), "w", state="w")
n = g.add_node("exp", [x], loc="model.py:1")
r = g.add_node("reduce_sum", [n.outputs[0]], {"axes": [1]})
g.outputs = [n.outputs[0], r.outputs[0]]
g.updates = [("w", w)]
ir.verify(g)
text = str(g)
g2 = ir.verify(ir.parse(text))
assert str(g2) == text, (text, str(g2))
try:
    ir.parse("graph @f(")
except ir.IRParseError as e:
    assert e.line == 1
else:
    raise AssertionError("bad text parsed")

outside = sorted(m for m in sys.modules if m.startswith("gcomp.") and not m.startswith("gcomp.ir"))
jax = sorted(m for m in sys.modules if m == "jax" or m.startswith(("jax.", "jaxlib")))
print("outside:", outside)
print("jax:", jax)
assert not outside, outside
assert not jax, jax
print("OK")
"""


def test_ir_imports_neither_jax_nor_the_rest_of_gcomp():
    package_dir = str(Path(gcomp.__file__).parent)
    script = SCRIPT.replace("PACKAGE_DIR", repr(package_dir))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip().endswith("OK")
