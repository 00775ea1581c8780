"""Datasets and samplers with torch.utils.data's names: Dataset, IterableDataset, TensorDataset,
Subset, ConcatDataset, random_split, and the samplers a DataLoader draws indices from."""

from __future__ import annotations

import bisect
import itertools
import math

import numpy as np

import gcomp
from gcomp import GcompError, Tensor

__all__ = ["Dataset", "IterableDataset", "TensorDataset", "Subset", "ConcatDataset",
           "random_split", "Sampler", "SequentialSampler", "RandomSampler",
           "SubsetRandomSampler", "BatchSampler"]


class Dataset:
    """A map-style dataset: ``__getitem__(index)`` and ``__len__``."""

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__")

    def __add__(self, other: Dataset) -> ConcatDataset:
        return ConcatDataset([self, other])


class IterableDataset(Dataset):
    """A dataset that is a stream: implement ``__iter__``."""

    def __iter__(self):
        raise NotImplementedError(f"{type(self).__name__} must implement __iter__")

    def __getitem__(self, index):
        raise GcompError(f"{type(self).__name__} is an IterableDataset: iterate over it instead "
                         "of indexing it")


class TensorDataset(Dataset):
    """Samples are ``tuple(t[i] for t in tensors)``; all tensors share the first dimension."""

    def __init__(self, *tensors: Tensor):
        if not tensors:
            raise GcompError("TensorDataset needs at least one tensor")
        n = tensors[0].shape[0] if tensors[0].ndim else None
        if any(t.ndim == 0 or t.shape[0] != n for t in tensors):
            raise GcompError("Size mismatch between tensors: TensorDataset needs tensors with "
                             "the same first dimension, got shapes "
                             f"{[list(t.shape) for t in tensors]}")
        self.tensors = tensors

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __len__(self) -> int:
        return self.tensors[0].shape[0]


class Subset(Dataset):
    """The dataset's samples at ``indices``, in that order."""

    def __init__(self, dataset: Dataset, indices):
        self.dataset = dataset
        self.indices = list(indices)

    def __getitem__(self, idx):
        if isinstance(idx, list):
            return [self.dataset[self.indices[i]] for i in idx]
        return self.dataset[self.indices[idx]]

    def __len__(self) -> int:
        return len(self.indices)


class ConcatDataset(Dataset):
    """Several map-style datasets one after the other."""

    def __init__(self, datasets):
        self.datasets = list(datasets)
        if not self.datasets:
            raise GcompError("ConcatDataset needs at least one dataset")
        for d in self.datasets:
            if isinstance(d, IterableDataset):
                raise GcompError("ConcatDataset does not support IterableDataset")
        self.cumulative_sizes = list(itertools.accumulate(len(d) for d in self.datasets))

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, idx):
        if idx < 0:
            if -idx > len(self):
                raise IndexError("absolute value of index should not exceed dataset length")
            idx = len(self) + idx
        which = bisect.bisect_right(self.cumulative_sizes, idx)
        if which >= len(self.datasets):
            raise IndexError(f"index {idx} is out of range for a dataset of length {len(self)}")
        start = self.cumulative_sizes[which - 1] if which else 0
        return self.datasets[which][idx - start]


# -- randomness -------------------------------------------------------------------------------
def _numpy_rng(generator):
    """A numpy Generator seeded from ``generator``: a gcomp.Generator (one draw from it, so the
    same seed gives the same sequence and later draws differ), an int seed, a numpy Generator,
    or None (gcomp's default generator, as torch uses its global one)."""
    if isinstance(generator, np.random.Generator):
        return generator
    if isinstance(generator, (int, np.integer)) and not isinstance(generator, bool):
        return np.random.default_rng(int(generator))
    if generator is None:
        generator = gcomp.default_generator
    if not isinstance(generator, gcomp.Generator):
        raise GcompError(f"generator must be a gcomp.Generator, an int seed or None, got "
                         f"{type(generator).__name__}")
    hi, lo = gcomp.randint(0, 2 ** 24, (2,), generator=generator).tolist()
    return np.random.default_rng((hi << 24) | lo)


def random_split(dataset: Dataset, lengths, generator=None) -> list[Subset]:
    """Split into non-overlapping random Subsets of the given lengths, or fractions summing to
    1 (floored, the remainder given one by one from the first split, as torch does)."""
    lengths = list(lengths)
    n = len(dataset)
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
        sizes = []
        for i, frac in enumerate(lengths):
            if frac < 0 or frac > 1:
                raise GcompError(f"Fraction at index {i} is not between 0 and 1")
            sizes.append(int(math.floor(n * frac)))
        for i in range(n - sum(sizes)):
            sizes[i % len(sizes)] += 1
        lengths = sizes
    if any(int(x) != x or x < 0 for x in lengths):
        raise GcompError(f"random_split lengths must be non-negative integers or fractions "
                         f"summing to 1, got {lengths}")
    if sum(lengths) != n:
        raise GcompError(f"Sum of input lengths ({sum(lengths)}) does not equal the length of "
                         f"the input dataset ({n})")
    perm = _numpy_rng(generator).permutation(n).tolist()
    out, offset = [], 0
    for length in lengths:
        out.append(Subset(dataset, perm[offset:offset + int(length)]))
        offset += int(length)
    return out


# -- samplers ---------------------------------------------------------------------------------
class Sampler:
    """Yields dataset indices (or, for a batch sampler, lists of them)."""

    def __init__(self, data_source=None):
        pass

    def __iter__(self):
        raise NotImplementedError


class SequentialSampler(Sampler):
    def __init__(self, data_source):
        self.data_source = data_source

    def __iter__(self):
        return iter(range(len(self.data_source)))

    def __len__(self) -> int:
        return len(self.data_source)


class RandomSampler(Sampler):
    """A random permutation per epoch (or ``num_samples`` draws with replacement). The random
    numbers are drawn when iteration starts, in the caller's thread."""

    def __init__(self, data_source, replacement=False, num_samples=None, generator=None):
        self.data_source = data_source
        self.replacement = replacement
        self._num_samples = num_samples
        self.generator = generator
        if num_samples is not None and (not isinstance(num_samples, int) or num_samples <= 0):
            raise GcompError(f"num_samples should be a positive integer value, but got "
                             f"num_samples={num_samples}")
        # an int seed seeds one numpy generator, so each epoch draws a new permutation
        self._rng = (np.random.default_rng(int(generator))
                     if isinstance(generator, (int, np.integer)) else None)

    @property
    def num_samples(self) -> int:
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self):  # not a generator function: the draw happens now
        rng = self._rng or _numpy_rng(self.generator)
        n = len(self.data_source)
        if self.replacement:
            return iter(rng.integers(0, n, self.num_samples).tolist())
        reps = -(-self.num_samples // n) if n else 0
        if not reps:
            return iter([])
        idx = np.concatenate([rng.permutation(n) for _ in range(reps)])
        return iter(idx[:self.num_samples].tolist())

    def __len__(self) -> int:
        return self.num_samples


class SubsetRandomSampler(Sampler):
    """The given indices, in a random order each epoch."""

    def __init__(self, indices, generator=None):
        self.indices = list(indices)
        self._random = RandomSampler(self.indices, generator=generator)

    def __iter__(self):
        return iter([self.indices[i] for i in self._random])

    def __len__(self) -> int:
        return len(self.indices)


class WeightedRandomSampler(Sampler):
    """``num_samples`` indices drawn with probabilities proportional to ``weights`` (with or
    without replacement), a new draw each epoch: for classes of very different sizes."""

    def __init__(self, weights, num_samples: int, replacement: bool = True, generator=None):
        if not isinstance(num_samples, int) or isinstance(num_samples, bool) or num_samples <= 0:
            raise GcompError(f"num_samples should be a positive integer value, but got "
                             f"num_samples={num_samples}")
        if not isinstance(replacement, bool):
            raise GcompError(f"replacement should be a boolean value, but got "
                             f"replacement={replacement}")
        w = np.asarray(weights.tolist() if hasattr(weights, "tolist") else weights,
                       dtype=np.float64)
        if w.ndim != 1 or (w < 0).any() or not np.isfinite(w).all() or w.sum() <= 0:
            raise GcompError("weights must be a 1-d sequence of non-negative, finite numbers "
                             f"with a positive sum, got shape {list(w.shape)}")
        if not replacement and num_samples > int((w > 0).sum()):
            raise GcompError(f"cannot draw {num_samples} samples without replacement from "
                             f"{int((w > 0).sum())} with non-zero weight")
        self.weights = gcomp.tensor(w)
        self._p = w / w.sum()
        self.num_samples = num_samples
        self.replacement = replacement
        self.generator = generator
        self._rng = (np.random.default_rng(int(generator))
                     if isinstance(generator, (int, np.integer)) else None)

    def __iter__(self):  # the draw happens now
        rng = self._rng or _numpy_rng(self.generator)
        idx = rng.choice(len(self._p), size=self.num_samples, replace=self.replacement,
                         p=self._p)
        return iter(idx.tolist())

    def __len__(self) -> int:
        return self.num_samples


class BatchSampler(Sampler):
    """Groups another sampler's indices into lists of ``batch_size``."""

    def __init__(self, sampler, batch_size: int, drop_last: bool):
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size <= 0:
            raise GcompError(f"batch_size should be a positive integer value, but got "
                             f"batch_size={batch_size}")
        if not isinstance(drop_last, bool):
            raise GcompError(f"drop_last should be a boolean value, but got "
                             f"drop_last={drop_last}")
        self.sampler = sampler
        self.batch_size = batch_size
        self.drop_last = drop_last

    def __iter__(self):  # starts the sampler now (its random draw), then batches lazily
        return self._batches(iter(self.sampler))

    def _batches(self, it):
        while True:
            batch = list(itertools.islice(it, self.batch_size))
            if not batch or (self.drop_last and len(batch) < self.batch_size):
                return
            yield batch

    def __len__(self) -> int:
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
