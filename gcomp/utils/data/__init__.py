"""``gcomp.utils.data``: torch.utils.data's spelling of gcomp.data, with its submodules
(``dataset``, ``dataloader``, ``sampler``) so that ``from torch.utils.data.dataset import
random_split`` works too."""

from gcomp.data import *  # noqa: F401,F403
from gcomp.data import __all__  # noqa: F401

from . import dataloader, dataset, sampler  # noqa: F401,E402
