"""DataLoader: batches of a dataset, collated into gcomp tensors (torch.utils.data.DataLoader).

Note [Prefetching]
gcomp's interpreter stack is process-wide: while the main thread traces a gcomp.compile'd
function, a gcomp op run by another thread would be recorded into that trace. So the background
thread of ``prefetch=True`` (and of ``num_workers > 0``) reads samples and collates them into
numpy arrays (the default collate's first stage) holding the trace lock (Note [Tracing and
threads] in core/dispatch.py), so a Dataset whose ``__getitem__`` uses gcomp ops (returns
``self.x[i]``) never runs them into a trace; the main thread turns the arrays into tensors (one
``from_numpy`` per field). Datasets that return numpy arrays prefetch best (no lock contention
with the main thread's compiles); a custom ``collate_fn`` runs in the main thread. A
TensorDataset is gathered with one indexing op per tensor in the main thread, which is already
cheap, so it is never prefetched.
"""

from __future__ import annotations

import collections.abc as abc
import itertools
import queue
import threading
import warnings

import numpy as np

import gcomp
from gcomp import GcompError, Tensor

from .dataset import BatchSampler, IterableDataset, RandomSampler, SequentialSampler, TensorDataset

__all__ = ["DataLoader", "default_collate", "default_convert"]


# -- collation --------------------------------------------------------------------------------
class _Stack(list):
    """Tensors to stack in the main thread (Note [Prefetching])."""


class _Keep:
    """A leaf kept as it is (strings)."""

    def __init__(self, value):
        self.value = value


def _is_namedtuple(x) -> bool:
    return isinstance(x, tuple) and hasattr(x, "_fields")


def _collate_arrays(batch):
    """The first stage of default_collate: numbers and numpy arrays are stacked into numpy
    arrays; gcomp tensors are only gathered (no gcomp op runs here)."""
    elem = batch[0]
    if isinstance(elem, Tensor):
        shapes = {tuple(t.shape) for t in batch}
        if len(shapes) > 1:
            raise GcompError(f"default_collate: stack expects each tensor to be equal size, got "
                             f"shapes {sorted(list(s) for s in shapes)}")
        return _Stack(batch)
    if isinstance(elem, (np.ndarray, np.generic)) and not isinstance(elem, (np.str_, np.bytes_)):
        if elem.dtype.kind in "SaUOV":
            raise GcompError(f"default_collate: batch must contain tensors, numpy arrays, "
                             f"numbers, dicts or lists; found numpy dtype {elem.dtype}")
        try:
            return np.stack(batch) if isinstance(elem, np.ndarray) else np.asarray(batch)
        except ValueError as e:
            raise GcompError(f"default_collate: cannot stack numpy arrays: {e}") from None
    if isinstance(elem, bool):
        return np.asarray(batch, dtype=np.bool_)
    if isinstance(elem, int):
        return np.asarray(batch, dtype=np.int64)
    if isinstance(elem, float):
        return np.asarray(batch, dtype=np.float64)
    if isinstance(elem, (str, bytes)):
        return _Keep(list(batch))
    if isinstance(elem, abc.Mapping):
        return {k: _collate_arrays([d[k] for d in batch]) for k in elem}
    if _is_namedtuple(elem):
        return type(elem)(*(_collate_arrays(list(s)) for s in zip(*batch, strict=True)))
    if isinstance(elem, abc.Sequence):
        if any(len(e) != len(elem) for e in batch):
            raise GcompError("default_collate: each element in list of batch should be of "
                             "equal size")
        # tuples give lists too, as in torch
        return [_collate_arrays(list(s)) for s in zip(*batch, strict=True)]
    raise GcompError(f"default_collate: batch must contain tensors, numpy arrays, numbers, "
                     f"dicts or lists; found {type(elem).__name__}")


def _to_tensors(x):
    """The second stage of default_collate (main thread): numpy arrays become tensors."""
    if isinstance(x, _Stack):
        return gcomp.stack(list(x))
    if isinstance(x, np.ndarray):
        return gcomp.from_numpy(np.require(x, requirements="C"))
    if isinstance(x, _Keep):
        return x.value
    if isinstance(x, dict):
        return {k: _to_tensors(v) for k, v in x.items()}
    if _is_namedtuple(x):
        return type(x)(*(_to_tensors(v) for v in x))
    if isinstance(x, list):
        return [_to_tensors(v) for v in x]
    if isinstance(x, tuple):  # only from default_convert: collate makes lists of tuples
        return tuple(_to_tensors(v) for v in x)
    return x


def default_collate(batch):
    """torch's default_collate: stack tensors and numpy arrays, turn numbers into tensors
    (float64 for floats, int64 for ints), keep strings as lists, and recurse into dicts,
    namedtuples, tuples and lists (a tuple sample gives a list of batched fields)."""
    return _to_tensors(_collate_arrays(list(batch)))


def _convert_arrays(x):
    if isinstance(x, np.ndarray) and x.dtype.kind not in "SaUOV":
        return x
    if isinstance(x, abc.Mapping):
        return {k: _convert_arrays(v) for k, v in x.items()}
    if _is_namedtuple(x):
        return type(x)(*(_convert_arrays(v) for v in x))
    if isinstance(x, list):
        return [_convert_arrays(v) for v in x]
    if isinstance(x, tuple):
        return tuple(_convert_arrays(v) for v in x)
    return _Keep(x)


def default_convert(data):
    """For ``batch_size=None``: numpy arrays become tensors, everything else stays."""
    return _to_tensors(_convert_arrays(data))


# -- the loader -------------------------------------------------------------------------------
class DataLoader:
    """Iterate over a dataset in batches (torch.utils.data.DataLoader, in one process).

    ``generator`` (a gcomp.Generator or an int seed) makes shuffling reproducible: the same seed
    gives the same sequence of epochs, and each epoch has its own order. ``prefetch=True``
    prepares the next batch in a background thread (Note [Prefetching]); ``num_workers > 0``
    is accepted and means prefetch.
    """

    def __init__(self, dataset, batch_size=1, shuffle=None, sampler=None, batch_sampler=None,
                 num_workers=0, collate_fn=None, pin_memory=False, drop_last=False, timeout=0,
                 worker_init_fn=None, multiprocessing_context=None, generator=None, *,
                 prefetch_factor=None, persistent_workers=False, pin_memory_device="",
                 prefetch=False):
        self.dataset = dataset
        self.num_workers = num_workers
        self.generator = generator
        self.drop_last = drop_last
        if num_workers < 0:
            raise GcompError("num_workers option should be non-negative")
        if num_workers > 0 and not prefetch:
            warnings.warn(f"DataLoader(num_workers={num_workers}): gcomp loads data in one "
                          "process; using prefetch=True (the next batch is prepared in a "
                          "background thread) instead", UserWarning, stacklevel=2)
            prefetch = True
        self.prefetch = prefetch
        iterable = isinstance(dataset, IterableDataset)
        self._iterable = iterable
        if iterable:
            if shuffle:
                raise GcompError("DataLoader with IterableDataset: expected unspecified shuffle "
                                 "option, but got shuffle=True; shuffle inside the dataset")
            if sampler is not None or batch_sampler is not None:
                raise GcompError("DataLoader with IterableDataset: expected unspecified "
                                 "sampler/batch_sampler options")
        if sampler is not None and shuffle:
            raise GcompError("sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise GcompError("batch_sampler option is mutually exclusive with batch_size, "
                                 "shuffle, sampler, and drop_last")
            batch_size, drop_last = None, False
        elif batch_size is None and drop_last:
            raise GcompError("batch_size=None option disables auto-batching and is mutually "
                             "exclusive with drop_last")
        if sampler is None and not iterable:
            sampler = (RandomSampler(dataset, generator=generator) if shuffle
                       else SequentialSampler(dataset))
        if batch_size is not None and batch_sampler is None and not iterable:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self._auto_collation = batch_sampler is not None or (iterable and batch_size is not None)
        if collate_fn is None:
            collate_fn = default_collate if self._auto_collation else default_convert
        self.collate_fn = collate_fn

    def __len__(self) -> int:
        if self._iterable:
            n = len(self.dataset)
            if self.batch_size is None:
                return n
            return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
        return len(self.batch_sampler if self.batch_sampler is not None else self.sampler)

    def __iter__(self):
        default = self.collate_fn is default_collate
        if (default and isinstance(self.dataset, TensorDataset)
                and self.batch_sampler is not None):
            return self._tensor_batches(iter(self.batch_sampler))
        split = self.collate_fn in (default_collate, default_convert)
        # stage 1 (no gcomp ops: may run in the background thread), stage 2 in this thread
        first = (_collate_arrays if self.collate_fn is default_collate else _convert_arrays
                 if self.collate_fn is default_convert else None) if split else None
        second = _to_tensors if split else self.collate_fn
        stage1 = (self._samples() if first is None else map(first, self._samples()))
        if self.prefetch:
            return _Prefetcher(stage1, second)
        return map(second, stage1)

    def _samples(self):
        """Lists of samples (one per batch), or single samples without auto-batching. Random
        draws of the sampler happen here, in the calling thread."""
        ds = self.dataset
        if self._iterable:
            it = iter(ds)
            if self.batch_size is None:
                return it
            return _chunks(it, self.batch_size, self.drop_last)
        if self.batch_sampler is not None:
            fetch = getattr(ds, "__getitems__", None)
            batches = iter(self.batch_sampler)
            if fetch is not None:
                return (fetch(b) for b in batches)
            return ([ds[i] for i in b] for b in batches)
        indices = iter(self.sampler)
        return (ds[i] for i in indices)

    def _tensor_batches(self, batches):
        tensors = self.dataset.tensors
        for b in batches:
            idx = gcomp.tensor(b, dtype=gcomp.int64)
            yield [t[idx] for t in tensors]


def _chunks(it, n, drop_last):
    while True:
        chunk = list(itertools.islice(it, n))
        if not chunk or (drop_last and len(chunk) < n):
            return
        yield chunk


class _Prefetcher:
    """Runs ``stage1`` one item ahead in a daemon thread; ``stage2`` in the consumer's."""

    _DONE = object()

    def __init__(self, stage1, stage2, depth: int = 2):
        self.stage2 = stage2
        self.queue: queue.Queue = queue.Queue(maxsize=depth)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(stage1,), daemon=True,
                                       name="gcomp-prefetch")
        self.thread.start()

    def _run(self, stage1):
        from ..core.dispatch import TRACE_LOCK

        it = iter(stage1)
        try:
            while True:
                with TRACE_LOCK:  # the dataset's own gcomp ops stay out of any trace
                    item = next(it, self._DONE)
                if item is self._DONE:
                    break
                if not self._put(("item", item)):
                    return
            self._put(("done", None))
        except BaseException as e:  # noqa: BLE001 - re-raised in the consumer's thread
            self._put(("error", e))

    def _put(self, msg) -> bool:
        while not self.stop.is_set():
            try:
                self.queue.put(msg, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self):
        return self

    def __next__(self):
        if self.stop.is_set():
            raise StopIteration
        from ..core.dispatch import Mode

        if len(Mode.stack) > 1:  # the fetching thread waits for this trace: it would never end
            raise GcompError("a prefetching DataLoader (prefetch=True or num_workers > 0) is "
                             "iterated inside gcomp.compile; iterate it outside the compiled "
                             "function and pass each batch in")
        kind, value = self.queue.get()
        if kind == "done":
            self.close()
            raise StopIteration
        if kind == "error":
            self.close()
            raise value
        return self.stage2(value)

    def close(self):
        self.stop.set()

    def __del__(self):
        self.stop.set()
