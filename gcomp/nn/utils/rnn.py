"""torch.nn.utils.rnn.pad_sequence: a list of variable-length sequences as one padded batch."""

from __future__ import annotations

import gcomp
from gcomp import GcompError, Tensor
from gcomp.core.dispatch import user_error

__all__ = ["pad_sequence"]


def pad_sequence(sequences, batch_first: bool = False, padding_value: float = 0.0,
                 padding_side: str = "right") -> Tensor:
    """Stack sequences (L_i, *) padded to the longest: (T, B, *), or (B, T, *) if batch_first;
    padding_side 'left' puts the padding before each sequence."""
    if isinstance(sequences, Tensor):
        sequences = list(sequences.unbind(0))
    sequences = list(sequences)
    if padding_side not in ("left", "right"):
        raise user_error(GcompError, f"Expected padding_side to be one of left or right, but got "
                         f"{padding_side}.")
    if not sequences:
        raise user_error(GcompError, "received an empty list of sequences")
    trailing = tuple(sequences[0].shape[1:])
    for s in sequences:
        if s.ndim == 0 or tuple(s.shape[1:]) != trailing:
            raise user_error(GcompError, f"pad_sequence: every sequence must be (L, "
                             f"{', '.join(map(str, trailing)) or '*'}), got {list(s.shape)}")
    longest = max(s.shape[0] for s in sequences)
    rows = []
    for s in sequences:
        extra = longest - s.shape[0]
        pads = [0, 0] * len(trailing) + ([extra, 0] if padding_side == "left" else [0, extra])
        rows.append(gcomp.nn.functional.pad(s, pads, value=padding_value) if extra else s)
    return gcomp.stack(rows, 0 if batch_first else 1)
