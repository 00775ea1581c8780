"""torch.amp: autocast (Note [Autocast] in gcomp/frontend/autocast.py) and GradScaler."""

from ..frontend.autocast import autocast, custom_bwd, custom_fwd, is_autocast_available
from .grad_scaler import GradScaler

__all__ = ["GradScaler", "autocast", "custom_bwd", "custom_fwd", "is_autocast_available"]
