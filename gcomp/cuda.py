"""torch.cuda's availability queries over jax's GPU devices."""

from .frontend.device import cuda_device_count as device_count  # noqa: F401
from .frontend.device import cuda_is_available as is_available  # noqa: F401
