"""gcomp.nn: PyTorch's model library, written in gcomp ops (no jax), so layers run eagerly,
trace into the IR and differentiate without layer-specific gradient code."""

from .modules.module import Module  # noqa: F401
from .parameter import Buffer, Parameter  # noqa: F401
