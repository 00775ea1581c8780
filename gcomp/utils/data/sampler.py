"""torch.utils.data.sampler's names (defined in gcomp.data.dataset)."""

from gcomp.data.dataset import (  # noqa: F401
                                BatchSampler,
                                RandomSampler,
                                Sampler,
                                SequentialSampler,
                                SubsetRandomSampler,
                                WeightedRandomSampler,
)
