"""gcomp.utils: torch.utils's names for what gcomp has (``gcomp.utils.data`` is gcomp.data)."""

from . import data  # noqa: F401
