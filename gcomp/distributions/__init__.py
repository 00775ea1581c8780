"""gcomp.distributions: torch.distributions' probability distributions, written with gcomp
tensor ops, so they run eagerly, differentiate through gcomp autograd and trace into
gcomp.compile like any other gcomp code.

Samples come from gcomp's global generator (``gcomp.manual_seed`` reproduces them), shaped
``sample_shape + batch_shape + event_shape``. ``rsample`` is differentiable
(reparameterized: ``loc + scale * eps``); ``sample`` is not (drawn under no_grad). Parameters
and values are validated eagerly unless ``validate_args=False`` (Note [Validation] in
distribution.py); a bad one raises DistributionValueError, a GcompError that is a ValueError.
"""

from __future__ import annotations

from . import constraints
from .bernoulli import Bernoulli
from .beta import Beta
from .categorical import Categorical, OneHotCategorical
from .distribution import Distribution
from .exponential import Exponential
from .gamma import Gamma
from .independent import Independent
from .kl import kl_divergence, register_kl
from .laplace import Laplace
from .multivariate_normal import MultivariateNormal
from .normal import Normal
from .uniform import Uniform
from .utils import DistributionNotImplementedError, DistributionValueError

__all__ = ["Bernoulli", "Beta", "Categorical", "Distribution", "DistributionNotImplementedError",
           "DistributionValueError", "Exponential", "Gamma", "Independent", "Laplace",
           "MultivariateNormal", "Normal", "OneHotCategorical", "Uniform", "constraints",
           "kl_divergence", "register_kl"]
