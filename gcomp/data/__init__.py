"""gcomp.data: datasets and batching with torch.utils.data's names (also reachable as
gcomp.utils.data)."""

from . import datasets  # noqa: F401
from .dataloader import DataLoader, default_collate, default_convert
from .dataset import (
                      BatchSampler,
                      ConcatDataset,
                      Dataset,
                      IterableDataset,
                      RandomSampler,
                      Sampler,
                      SequentialSampler,
                      Subset,
                      SubsetRandomSampler,
                      TensorDataset,
                      WeightedRandomSampler,
                      random_split,
)

__all__ = ["BatchSampler", "ConcatDataset", "DataLoader", "Dataset", "IterableDataset",
           "RandomSampler", "Sampler", "SequentialSampler", "Subset", "SubsetRandomSampler",
           "TensorDataset", "WeightedRandomSampler", "default_collate", "default_convert",
           "random_split", "datasets"]
