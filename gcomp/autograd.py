"""torch.autograd's names: grad, backward, Function, and the grad-mode switches."""

import sys as _sys  # noqa: E402

from . import autograd_functional as functional  # noqa: E402
from .frontend.autograd import (  # noqa: F401
                                Function,
                                FunctionCtx,
                                Variable,
                                backward,
                                detect_anomaly,
                                enable_grad,
                                grad,
                                is_anomaly_enabled,
                                no_grad,
                                set_detect_anomaly,
                                set_grad_enabled,
)

_sys.modules[__name__ + ".functional"] = functional  # from torch.autograd.functional import ...
