"""gcomp.nn.functional: the functional form of every layer and loss (torch.nn.functional).

Each family lives in its own file; this module re-exports their public names.
"""

from ._activation import *  # noqa: F401,F403
from ._attention import *  # noqa: F401,F403
from ._conv import *  # noqa: F401,F403
from ._distance import *  # noqa: F401,F403
from ._linear import *  # noqa: F401,F403
from ._loss import *  # noqa: F401,F403
from ._loss_margin import *  # noqa: F401,F403
from ._misc import *  # noqa: F401,F403
from ._norm import *  # noqa: F401,F403
from ._pool import *  # noqa: F401,F403
from ._rnn import *  # noqa: F401,F403
from ._vision import *  # noqa: F401,F403
