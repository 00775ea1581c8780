"""torch.nn.utils.rnn: variable-length sequences as one padded batch (`pad_sequence`) or as a
`PackedSequence`, the layout nn.RNN, nn.LSTM and nn.GRU take to run every sequence over its own
length only.

A PackedSequence's ``data`` is torch's: time-major, step t holding ``batch_sizes[t]`` rows, one
for each sequence still running at t, with the sequences sorted by decreasing length
(``sorted_indices`` says from which batch positions, ``unsorted_indices`` how to get back). The
layout is computed on the host from the lengths, so packing and padding are each one gather of
``data`` (plus one reordering gather when the batch was sorted), which differentiate as scatters.
"""

from __future__ import annotations

import weakref
from collections import namedtuple

import numpy as np

import gcomp
from gcomp import GcompError, Tensor
from gcomp.core.dispatch import user_error

from ..functional._common import NNValueError, tracing

__all__ = ["PackedSequence", "invert_permutation", "pack_padded_sequence", "pad_packed_sequence",
           "pad_sequence", "unpad_sequence", "pack_sequence", "unpack_sequence"]


# Note [Packed sequences while tracing]
# The packed layout decides shapes (how many rows each step of a PackedSequence holds), and shapes
# are fixed when gcomp.compile traces, so the layout must be known in Python then. The lengths
# given to pack_padded_sequence (a list, or a tensor read eagerly) are. The index tensors this
# file makes (batch_sizes, sorted_indices, unsorted_indices) are graph constants inside a trace,
# whose values cannot be read back, so their host values are remembered in _HOST, keyed by the
# tensor object: a PackedSequence packed in the same trace, or rebuilt from its fields
# (``PackedSequence(f(p.data), p.batch_sizes, p.sorted_indices, p.unsorted_indices)``), keeps
# them. A PackedSequence given to a compiled function as an argument has traced batch_sizes whose
# values the trace must not bake in (a compiled function is specialized to shapes, not values):
# that is an error saying to pack inside the compiled function.
_HOST: dict[int, tuple[weakref.ref, np.ndarray]] = {}


def _remember(t: Tensor, values: np.ndarray) -> Tensor:
    key = id(t)
    _HOST[key] = (weakref.ref(t, lambda _, key=key: _HOST.pop(key, None)), values)
    return t


def _index_tensor(values: np.ndarray) -> Tensor:
    """An int64 tensor of host values that stay readable while tracing."""
    values = np.ascontiguousarray(values, dtype=np.int64)
    return _remember(gcomp.tensor(values), values)


def host_values(t: Tensor | None):
    """The values of an index tensor as a numpy array: remembered (Note [Packed sequences while
    tracing]) or read eagerly; None inside a trace when they are unknown."""
    if t is None:
        return None
    entry = _HOST.get(id(t))
    if entry is not None and entry[0]() is t:
        return entry[1]
    if tracing() or t.is_traced:
        return None
    return np.asarray(t).astype(np.int64)


def _unknown_while_tracing(what: str) -> GcompError:
    return user_error(GcompError, f"{what} is not known while gcomp.compile traces, and the packed "
                      "layout decides the shapes of the compiled program. Call "
                      "pack_padded_sequence or pack_sequence inside the compiled function with "
                      "lengths as a Python list (lengths.tolist() outside it), or keep the "
                      "packing, the RNN and the padding outside the compiled function.")


def batch_sizes_of(sequence: PackedSequence) -> np.ndarray:
    """A PackedSequence's batch_sizes on the host, checked against its data."""
    sizes = host_values(sequence.batch_sizes)
    if sizes is None:
        raise _unknown_while_tracing("The PackedSequence's batch_sizes")
    if sizes.ndim != 1 or not sizes.size or sizes[-1] <= 0 or (np.diff(sizes) > 0).any():
        raise user_error(GcompError, "batch_sizes must be a non-empty 1-D tensor of positive, "
                         f"non-increasing sizes, got {sizes.tolist()}")
    if sequence.data.ndim == 0 or sequence.data.shape[0] != int(sizes.sum()):
        raise user_error(GcompError, f"the PackedSequence's data has {sequence.data.shape[:1]} "
                         f"rows but its batch_sizes add up to {int(sizes.sum())}")
    return sizes


def padding_positions(sizes: np.ndarray, steps: int) -> np.ndarray:
    """(steps, batch) positions of packed rows in the padded layout, in sorted batch order: the
    row of data holding step t of sorted sequence j, or len(data) where that sequence has ended."""
    running = np.arange(steps)[:, None] < _sorted_lengths(sizes)[None, :]
    positions = np.full(running.shape, int(sizes.sum()), np.int64)
    positions[running] = np.arange(int(sizes.sum()))  # row-major order is the packed order
    return positions


def _sorted_lengths(sizes: np.ndarray) -> np.ndarray:
    """The lengths of the sorted sequences that batch_sizes describes."""
    return (sizes[:, None] > np.arange(sizes[0])[None, :]).sum(0)


class PackedSequence(namedtuple("PackedSequence_", ["data", "batch_sizes", "sorted_indices",
                                                    "unsorted_indices"])):
    """The data and batch_sizes of a packed batch of variable-length sequences
    (torch.nn.utils.rnn.PackedSequence); made by `pack_padded_sequence` or `pack_sequence`.

    ``data`` (sum(lengths), *) holds the sequences time-major: step t has ``batch_sizes[t]``
    rows, one per sequence longer than t, longest first. ``sorted_indices`` (or None when the
    input was already sorted) maps sorted positions to batch positions; ``unsorted_indices`` is
    its inverse, computed from it when not given. ``PackedSequence((data, batch_sizes))`` is also
    accepted, as in torch."""

    __slots__ = ()

    def __new__(cls, data, batch_sizes=None, sorted_indices=None, unsorted_indices=None):
        if batch_sizes is None:
            if not (isinstance(data, (list, tuple)) and len(data) == 2):
                raise user_error(GcompError, "PackedSequence: expected data and batch_sizes, or "
                                 "data as a pair (data, batch_sizes)")
            data, batch_sizes = data
        if unsorted_indices is None:
            unsorted_indices = invert_permutation(sorted_indices)
        return super().__new__(cls, data, batch_sizes, sorted_indices, unsorted_indices)

    def to(self, *args, **kwargs) -> PackedSequence:
        """Convert ``data`` as Tensor.to does (the indices follow its device; batch_sizes stays
        as it is); returns self when ``data`` needs no change."""
        data = self.data.to(*args, **kwargs)
        if data is self.data:
            return self
        sorted_indices, unsorted_indices = (None if t is None else t.to(data.device)
                                            for t in (self.sorted_indices, self.unsorted_indices))
        return type(self)(data, self.batch_sizes, sorted_indices, unsorted_indices)

    def cpu(self) -> PackedSequence:
        return self.to("cpu")

    def cuda(self, device=None) -> PackedSequence:
        return self.to("cuda" if device is None else device)

    def double(self) -> PackedSequence:
        return self.to(dtype=gcomp.float64)

    def float(self) -> PackedSequence:
        return self.to(dtype=gcomp.float32)

    def half(self) -> PackedSequence:
        return self.to(dtype=gcomp.float16)

    def long(self) -> PackedSequence:
        return self.to(dtype=gcomp.int64)

    def int(self) -> PackedSequence:
        return self.to(dtype=gcomp.int32)

    def short(self) -> PackedSequence:
        return self.to(dtype=gcomp.int16)

    def char(self) -> PackedSequence:
        return self.to(dtype=gcomp.int8)

    def byte(self) -> PackedSequence:
        return self.to(dtype=gcomp.uint8)

    @property
    def is_cuda(self) -> bool:
        return self.data.device.type == "cuda"


def invert_permutation(permutation: Tensor | None) -> Tensor | None:
    """The inverse of a 1-D permutation tensor (None for None)."""
    if permutation is None:
        return None
    values = host_values(permutation)
    if values is not None:
        return _index_tensor(np.argsort(values, kind="stable"))
    n = permutation.shape[0]
    return gcomp.zeros_like(permutation).scatter(0, permutation,
                                                 gcomp.arange(n, dtype=permutation.dtype))


def _lengths(lengths, what: str = "pack_padded_sequence") -> np.ndarray:
    """Sequence lengths as a host int64 array, from a list or a tensor read eagerly."""
    if isinstance(lengths, Tensor):
        if tracing() or lengths.is_traced:
            raise user_error(GcompError, f"{what}: lengths given as a tensor are not known while "
                             "gcomp.compile traces, and they decide the packed layout (the shapes "
                             "of the compiled program). Pass lengths as a Python list "
                             "(lengths.tolist() outside the compiled function), or keep the "
                             "packing, the RNN and the padding outside the compiled function.")
        values = np.asarray(lengths.detach())
        if values.ndim != 1:
            raise user_error(GcompError, f"'lengths' argument should be a 1D int64 tensor, but "
                             f"got {values.ndim}D {lengths.dtype} tensor")
        return values.astype(np.int64)
    values = np.asarray(list(lengths))
    if values.ndim != 1 or (values.size and values.dtype.kind not in "iuf"):
        raise user_error(GcompError, f"{what}: lengths must be a list of ints, got {lengths!r}")
    return values.astype(np.int64)


def _sort(lengths: np.ndarray, enforce_sorted: bool, steps: int | None = None):
    """Check lengths as torch does; returns the order of the batch by decreasing length (None
    when enforce_sorted) and the sorted lengths. Equal lengths keep their order (torch.sort
    does so too for batches of up to 16)."""
    if lengths.size and lengths.min() <= 0:
        raise user_error(GcompError, "Length of all samples has to be greater than 0, but found "
                         "an element in 'lengths' that is <= 0")
    if steps is not None and lengths.size and lengths.max() > steps:
        raise user_error(GcompError, f"pack_padded_sequence: a length of {int(lengths.max())} "
                         f"is more than the {steps} steps of the padded input")
    if enforce_sorted:
        if (np.diff(lengths) > 0).any():
            raise user_error(GcompError, "`lengths` array must be sorted in decreasing order "
                             "when `enforce_sorted` is True. You can pass `enforce_sorted=False` "
                             "to pack_padded_sequence and/or pack_sequence to sidestep this "
                             "requirement if you do not need ONNX exportability.")
        return None, lengths
    order = np.argsort(-lengths, kind="stable")
    return order, lengths[order]


def _packed(data: Tensor, sorted_lengths: np.ndarray, order) -> PackedSequence:
    """A PackedSequence of ``data`` (its rows already gathered) with the layout of the sorted
    lengths and the order they were sorted in."""
    sizes = (np.arange(sorted_lengths[0])[:, None] < sorted_lengths[None, :]).sum(1)
    if order is None:
        return PackedSequence(data, _index_tensor(sizes))
    return PackedSequence(data, _index_tensor(sizes), _index_tensor(order),
                          _index_tensor(np.argsort(order, kind="stable")))


def _packed_cells(sorted_lengths: np.ndarray, order):
    """Step and batch position (in the caller's order) of every packed row, in packed order."""
    steps, column = np.nonzero(np.arange(sorted_lengths[0])[:, None] < sorted_lengths[None, :])
    return steps, (column if order is None else order[column])


def pack_padded_sequence(input: Tensor, lengths, batch_first: bool = False,
                         enforce_sorted: bool = True) -> PackedSequence:
    """Pack a padded batch (T, B, *), or (B, T, *) if batch_first, of sequences of the given
    lengths; they must be sorted by decreasing length unless enforce_sorted=False. ``lengths``
    is a list of ints or a 1-D integer tensor (a list inside gcomp.compile)."""
    lengths = _lengths(lengths)
    if input.ndim < 2:
        raise user_error(GcompError, f"pack_padded_sequence: expected a padded input of at least "
                         f"2 dimensions, got {list(input.shape)}")
    if input.numel() == 0:
        raise user_error(GcompError, "Cannot pack empty tensors.")
    batch, steps = (input.shape[0], input.shape[1]) if batch_first else \
        (input.shape[1], input.shape[0])
    if lengths.size != batch:
        raise user_error(GcompError, f"Expected `len(lengths)` to be equal to batch_size, but got "
                         f"{lengths.size} (batch_size={batch})")
    order, sorted_lengths = _sort(lengths, enforce_sorted, steps)
    t, b = _packed_cells(sorted_lengths, order)
    rows = b * steps + t if batch_first else t * batch + b
    flat = input.reshape(batch * steps, *input.shape[2:])
    return _packed(flat.index_select(0, _index_tensor(rows)), sorted_lengths, order)


def pad_packed_sequence(sequence: PackedSequence, batch_first: bool = False,
                        padding_value: float = 0.0, total_length: int | None = None):
    """The inverse of `pack_padded_sequence`: (padded (T, B, *) or (B, T, *) if batch_first, the
    lengths as an int64 tensor), in the batch order given to the packing. T is the longest length,
    or total_length when given."""
    sizes = batch_sizes_of(sequence)
    steps = sizes.size
    if total_length is not None:
        if total_length < steps:
            raise user_error(NNValueError, "Expected total_length to be at least the length of "
                             f"the longest sequence in input, but got total_length={total_length} "
                             f"and max sequence length being {steps}")
        steps = total_length
    data = sequence.data
    positions = padding_positions(sizes, steps)
    if batch_first:
        positions = positions.T
    pad = gcomp.full((1, *data.shape[1:]), padding_value, dtype=data.dtype)
    padded = gcomp.cat([data, pad]).index_select(0, _index_tensor(positions.reshape(-1)))
    padded = padded.reshape(*positions.shape, *data.shape[1:])
    lengths = gcomp.tensor(_sorted_lengths(sizes))
    if sequence.unsorted_indices is not None:
        padded = padded.index_select(0 if batch_first else 1, sequence.unsorted_indices)
        lengths = lengths.index_select(0, sequence.unsorted_indices)
    return padded, lengths


def pack_sequence(sequences, enforce_sorted: bool = True) -> PackedSequence:
    """Pack a list of sequences (L_i, *), sorted by decreasing length unless
    enforce_sorted=False: pad_sequence then pack_padded_sequence, as one gather."""
    sequences = _checked(sequences, "pack_sequence")
    lengths = np.array([s.shape[0] for s in sequences], np.int64)
    order, sorted_lengths = _sort(lengths, enforce_sorted)
    t, b = _packed_cells(sorted_lengths, order)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    data = gcomp.cat(sequences, 0).index_select(0, _index_tensor(starts[b] + t))
    return _packed(data, sorted_lengths, order)


def unpack_sequence(packed_sequences: PackedSequence) -> list[Tensor]:
    """The list of sequences (L_i, *) a PackedSequence holds, in the order they were packed."""
    sizes = batch_sizes_of(packed_sequences)
    lengths = _sorted_lengths(sizes)
    order = host_values(packed_sequences.sorted_indices)
    if order is None and packed_sequences.sorted_indices is not None:
        raise _unknown_while_tracing("The PackedSequence's sorted_indices")
    positions = padding_positions(sizes, sizes.size)
    out = [None] * sizes[0]
    for j in range(sizes[0]):
        rows = positions[:lengths[j], j]
        out[j if order is None else int(order[j])] = \
            packed_sequences.data.index_select(0, _index_tensor(rows))
    return out


def unpad_sequence(padded_sequences: Tensor, lengths, batch_first: bool = False) -> list[Tensor]:
    """The inverse of `pad_sequence`: sequence b is the first lengths[b] steps of its column.
    Unlike torch, ``padded_sequences`` is not transposed in place."""
    lengths = _lengths(lengths, "unpad_sequence")
    batch_dim = 0 if batch_first else 1
    if lengths.size != padded_sequences.shape[batch_dim]:
        raise user_error(GcompError, f"unpad_sequence: {lengths.size} lengths for a batch of "
                         f"{padded_sequences.shape[batch_dim]} sequences")
    return [padded_sequences.select(batch_dim, b)[:int(n)] for b, n in enumerate(lengths)]


def _checked(sequences, what: str) -> list:
    """The sequences as a list, each (L_i, *) with the same trailing shape."""
    if isinstance(sequences, Tensor):
        sequences = list(sequences.unbind(0))
    sequences = list(sequences)
    if not sequences:
        raise user_error(GcompError, "received an empty list of sequences")
    trailing = tuple(sequences[0].shape[1:])
    for s in sequences:
        if s.ndim == 0 or tuple(s.shape[1:]) != trailing:
            raise user_error(GcompError, f"{what}: every sequence must be (L, "
                             f"{', '.join(map(str, trailing)) or '*'}), got {list(s.shape)}")
    return sequences


def pad_sequence(sequences, batch_first: bool = False, padding_value: float = 0.0,
                 padding_side: str = "right") -> Tensor:
    """Stack sequences (L_i, *) padded to the longest: (T, B, *), or (B, T, *) if batch_first;
    padding_side 'left' puts the padding before each sequence."""
    if padding_side not in ("left", "right"):
        raise user_error(GcompError, f"Expected padding_side to be one of left or right, but got "
                         f"{padding_side}.")
    sequences = _checked(sequences, "pad_sequence")
    trailing = tuple(sequences[0].shape[1:])
    longest = max(s.shape[0] for s in sequences)
    rows = []
    for s in sequences:
        extra = longest - s.shape[0]
        pads = [0, 0] * len(trailing) + ([extra, 0] if padding_side == "left" else [0, extra])
        rows.append(gcomp.nn.functional.pad(s, pads, value=padding_value) if extra else s)
    return gcomp.stack(rows, 0 if batch_first else 1)
