"""torch.utils.data.dataset's names (defined in gcomp.data.dataset)."""

from gcomp.data.dataset import (  # noqa: F401
                                ConcatDataset,
                                Dataset,
                                IterableDataset,
                                Subset,
                                TensorDataset,
                                random_split,
)
