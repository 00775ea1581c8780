"""torch.autograd's names: grad, backward, Function, and the grad-mode switches."""

from .frontend.autograd import (Function, FunctionCtx, backward, enable_grad, grad, no_grad,  # noqa: F401
                                set_grad_enabled)
