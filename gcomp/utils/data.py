"""``gcomp.utils.data``: torch.utils.data's spelling of gcomp.data."""

from gcomp.data import *  # noqa: F401,F403
from gcomp.data import __all__  # noqa: F401
