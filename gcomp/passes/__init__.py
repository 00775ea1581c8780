"""Graph -> Graph passes, registered by name with the pass manager."""

from . import autodiff, cse, dce, fold, fusion, simplify  # noqa: E402,F401
from .manager import DEFAULT_PIPELINE, PASSES, register, resolve, run_passes  # noqa: F401
