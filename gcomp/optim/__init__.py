"""gcomp.optim: PyTorch's optimizers and learning-rate schedulers, written in gcomp ops.

Each optimizer's ``step()`` is one compiled call (Note [The compiled optimizer step] in
optimizer.py), so it is fast eagerly and traces into a compiled training step unchanged.
"""

from . import lr_scheduler  # noqa: F401
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["Adagrad", "Adam", "AdamW", "Optimizer", "RMSprop", "SGD", "lr_scheduler"]
