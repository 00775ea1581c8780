"""Graph -> Graph passes, registered by name with the pass manager."""

from . import (  # noqa: E402,F401
    autodiff,
    conv_choice,
    cse,
    dce,
    fold,
    fusion,
    patterns,
    precision,
    remat,
    simplify,
)
from .manager import DEFAULT_PIPELINE, PASSES, register, resolve, run_passes  # noqa: F401
