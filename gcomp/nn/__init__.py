"""gcomp.nn: PyTorch's model library, written in gcomp ops (no jax), so layers run eagerly,
trace into the IR and differentiate without layer-specific gradient code.

Each module family lives in gcomp/nn/modules/<family>.py and lists its public names in __all__.
"""

import importlib as _importlib

from . import functional, init, utils  # noqa: F401
from .modules.module import Module  # noqa: F401
from .parameter import Buffer, Parameter  # noqa: F401

for _family in ("container", "linear", "activation", "dropout", "sparse", "flatten", "loss",
                "conv", "pooling", "normalization", "batchnorm", "rnn", "attention",
                "transformer", "padding", "vision", "distance", "instancenorm"):
    try:
        _mod = _importlib.import_module(f".modules.{_family}", __name__)
    except ModuleNotFoundError as _e:  # a family not written yet
        if _e.name != f"{__name__}.modules.{_family}":
            raise
        continue
    for _name in getattr(_mod, "__all__", []):
        globals()[_name] = getattr(_mod, _name)

from . import parallel  # noqa: E402
from .parallel import DataParallel  # noqa: E402, F401
