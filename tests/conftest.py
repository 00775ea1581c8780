"""Shared test set-up. pytest puts this folder on sys.path (rootdir conftest), so tests in
subfolders can import the helpers here: ``from host_devices import run_on_host_devices``.

One JAX persistent compilation cache for the whole run: the two xdist workers and the many
subprocess tests compile many of the same small programs (every eager op is an XLA executable,
about 45 ms to compile on this machine), so they share the compiled executables through a temporary
directory, made by the first process (the xdist controller) and removed when it finishes. It
starts empty, so a run never depends on an earlier one. Set JAX_COMPILATION_CACHE_DIR yourself to
use another directory; tests that check the cache itself (tests/runtime/test_aot.py) run their
subprocesses without it.

Every test starts from the same random state whatever ran before it in its worker (xdist
spreads a file's tests over workers in no fixed order): module-level numpy Generators in the
test's module and in the helper modules here, and the global numpy, torch and gcomp
generators, are reseeded from the test's id before it runs.

Hypothesis runs derandomized: the same examples on every run, so CI passes or fails on the code,
not on the draw (a failing draw also spends up to five minutes shrinking). Explore new examples
with ``GCOMP_HYPOTHESIS=explore pytest tests/passes/test_pass_semantics.py tests/ir`` (a random
seed each run; ``--hypothesis-seed=N`` replays one), as a change to a pass or an op should.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import zlib

_OWNED = None
if "GCOMP_TEST_XLA_CACHE" not in os.environ:  # the first process of the run (jax not imported)
    _OWNED = os.environ["GCOMP_TEST_XLA_CACHE"] = tempfile.mkdtemp(prefix="gcomp-test-xla-cache-")
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.environ["GCOMP_TEST_XLA_CACHE"])
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")


import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

settings.register_profile("ci", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("GCOMP_HYPOTHESIS", "ci"))


def pytest_unconfigure(config):
    if _OWNED is not None and not hasattr(config, "workerinput"):
        shutil.rmtree(_OWNED, ignore_errors=True)


_HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(autouse=True)
def _reseed(request):
    seed = zlib.crc32(request.node.nodeid.encode())
    for mod in list(sys.modules.values()):
        path = getattr(mod, "__file__", None) or ""
        if not path.startswith(_HERE):
            continue
        for value in list(vars(mod).values()):
            if isinstance(value, np.random.Generator):
                value.bit_generator.state = np.random.default_rng(seed).bit_generator.state
    np.random.seed(seed)
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(seed)
    if "gcomp" in sys.modules:
        sys.modules["gcomp"].manual_seed(seed)
