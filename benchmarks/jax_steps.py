"""The hand-written pure-JAX training steps: they live in the package, gcomp/bench/jax_steps.py."""

from gcomp.bench.jax_steps import *  # noqa: F401, F403
