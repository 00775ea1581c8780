"""Run a test script in a subprocess with several host CPU devices (jax fixes the device count
when its backend starts, so a multi-device test needs a process of its own)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile


def run_on_host_devices(script: str, n: int = 4, name: str = "devices_script.py"
                        ) -> tuple[dict, str]:
    """Run ``script`` with ``n`` host CPU devices: its JSON line after RESULT, and the path it ran
    from (errors in the script name that file)."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, name)
        with open(path, "w") as f:
            f.write(script)
        env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={n}",
                   JAX_PLATFORMS="cpu")
        proc = subprocess.run([sys.executable, path], capture_output=True, text=True, env=env,
                              timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT"))
    return json.loads(line[len("RESULT"):]), path
