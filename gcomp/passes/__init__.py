"""Graph -> Graph passes, registered by name with the pass manager."""

from .manager import DEFAULT_PIPELINE, PASSES, register, resolve, run_passes  # noqa: F401
from . import autodiff, dce  # noqa: E402,F401
