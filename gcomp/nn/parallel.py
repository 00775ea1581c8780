"""torch.nn.parallel's DataParallel, for programs that wrap a model in it: gcomp runs a module on
one device at a time here (data parallelism over several is ``gcomp.compile(step,
mesh=gcomp.distributed.Mesh(...))``, docs/devices.md), so DataParallel is the module itself on
one device, with torch's ``.module`` attribute and state_dict keys (``module.0.weight``)."""

from __future__ import annotations

from ..core.dispatch import user_error
from ..ir.errors import GcompError
from .modules.module import Module


class DataParallel(Module):
    def __init__(self, module, device_ids=None, output_device=None, dim=0):
        super().__init__()
        ids = list(device_ids) if device_ids is not None else []
        if len(ids) > 1:
            raise user_error(GcompError, f"DataParallel over devices {ids}: gcomp splits a "
                             "batch over devices with gcomp.compile(step, mesh=gcomp.distributed"
                             ".Mesh(...)) (docs/devices.md); DataParallel runs on one device")
        self.module = module
        self.device_ids = ids
        self.output_device = output_device
        self.dim = dim

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)


__all__ = ["DataParallel"]
