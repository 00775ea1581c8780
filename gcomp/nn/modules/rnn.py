"""Recurrent layers: RNN, LSTM, GRU and their single-step cells, with PyTorch's parameter names,
gate order, shapes and initialization. The math lives in gcomp/nn/functional/_rnn.py; a
PackedSequence input runs the same cells over its padded batch with a mask (Note [Packed
sequences in the recurrence])."""

from __future__ import annotations

import functools
import math

import numpy as np

import gcomp
from gcomp import GcompError
from gcomp.frontend.autocast import cast_inputs, lower_precision_for

from ..functional import _rnn as R
from ..parameter import Parameter
from ..utils import rnn as rnn_utils
from ..utils.rnn import PackedSequence
from .module import Module

__all__ = ["RNNBase", "RNN", "LSTM", "GRU", "RNNCellBase", "RNNCell", "LSTMCell", "GRUCell"]


def _uniform_parameter(shape, bound, dtype):
    p = Parameter(gcomp.empty(*shape, dtype=dtype or gcomp.get_default_dtype()))
    p.uniform_(-bound, bound)
    return p


class RNNBase(Module):
    """The multi-layer, optionally bidirectional recurrence shared by RNN, LSTM and GRU."""

    def __init__(self, mode, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, proj_size=0, device=None, dtype=None):
        super().__init__()
        if mode not in R.GATES:
            raise GcompError(f"unknown RNN mode {mode!r}")
        if not isinstance(hidden_size, int) or hidden_size <= 0:
            raise GcompError(f"hidden_size must be a positive integer, got {hidden_size!r}")
        if not isinstance(num_layers, int) or num_layers <= 0:
            raise GcompError(f"num_layers must be a positive integer, got {num_layers!r}")
        if isinstance(dropout, bool) or not 0 <= dropout <= 1:
            raise GcompError("dropout should be a number in range [0, 1] representing the "
                             "probability of an element being zeroed")
        if proj_size:
            raise GcompError("LSTM proj_size is not supported by gcomp; use proj_size=0 and a "
                             "Linear layer on the output")
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = 0
        directions = 2 if bidirectional else 1
        gate_size = R.GATES[mode] * hidden_size
        self._flat_weights_names = []
        bound = 1.0 / math.sqrt(hidden_size)
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else hidden_size * directions
            for direction in range(directions):
                suffix = f"_l{layer}" + ("_reverse" if direction == 1 else "")
                shapes = [("weight_ih", (gate_size, layer_input)),
                          ("weight_hh", (gate_size, hidden_size))]
                if bias:
                    shapes += [("bias_ih", (gate_size,)), ("bias_hh", (gate_size,))]
                for name, shape in shapes:
                    setattr(self, name + suffix, _uniform_parameter(shape, bound, dtype))
                    self._flat_weights_names.append(name + suffix)

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            p.uniform_(-bound, bound)

    @property
    def _flat_weights(self):
        return [getattr(self, n) for n in self._flat_weights_names]

    @property
    def all_weights(self):
        per = 4 if self.bias else 2
        w = self._flat_weights
        return [w[i:i + per] for i in range(0, len(w), per)]

    def flatten_parameters(self) -> None:
        pass  # cuDNN's packed weights have no counterpart here

    def _layer_weights(self, layer, direction):
        suffix = f"_l{layer}" + ("_reverse" if direction == 1 else "")
        w_ih, w_hh = getattr(self, "weight_ih" + suffix), getattr(self, "weight_hh" + suffix)
        if not self.bias:
            return w_ih, w_hh, None, None
        return w_ih, w_hh, getattr(self, "bias_ih" + suffix), getattr(self, "bias_hh" + suffix)

    def _check_hidden(self, hx, batch, batched, what="hidden"):
        states = self.num_layers * (2 if self.bidirectional else 1)
        expected = (states, batch, self.hidden_size) if batched else (states, self.hidden_size)
        if tuple(hx.shape) != expected:
            raise GcompError(f"Expected {what} size {expected}, got {list(hx.shape)}")

    def _initial_states(self, hx, batch, batched):
        """(h_0, c_0) from ``hx`` (None: zeros, made by the recurrence), shape-checked."""
        if hx is None:
            return None, None
        if self.mode != "LSTM":
            self._check_hidden(hx, batch, batched)
            return hx, None
        if not isinstance(hx, (tuple, list)) or len(hx) != 2:
            raise GcompError("LSTM expects hx as a tuple (h_0, c_0)")
        h0, c0 = hx
        self._check_hidden(h0, batch, batched)
        self._check_hidden(c0, batch, batched, "cell")
        return h0, c0

    def _check_input(self, input, dims):
        if input.ndim not in dims:
            raise GcompError(f"{type(self).__name__}: Expected input to be "
                             f"{' or '.join(f'{d}D' for d in dims)}, got {input.ndim}D instead")
        if input.shape[-1] != self.input_size:
            raise GcompError(f"input.size(-1) must be equal to input_size. Expected "
                             f"{self.input_size}, got {input.shape[-1]}")

    def forward(self, input, hx=None):
        """``input`` (L, N, H_in), (N, L, H_in) if batch_first, (L, H_in) unbatched, or a
        PackedSequence; returns (output, h_n), or (output, (h_n, c_n)) for the LSTM, with output
        a PackedSequence for packed input."""
        if isinstance(input, PackedSequence):
            return self._forward_packed(input, hx)
        is_lstm = self.mode == "LSTM"
        self._check_input(input, (2, 3))
        batched = input.ndim == 3
        if not batched:
            x = input.unsqueeze(0)
        else:
            x = input if self.batch_first else input.transpose(0, 1)
        batch, steps = x.shape[0], x.shape[1]
        h0, c0 = self._initial_states(hx, batch, batched)
        if not batched and h0 is not None:
            h0 = h0.unsqueeze(1)
            c0 = c0.unsqueeze(1) if c0 is not None else None
        out, h_n, c_n = self._run(x, steps, h0, c0)
        if not batched:
            out = out.squeeze(0)
        elif not self.batch_first:
            out = out.transpose(0, 1)
        h_n = gcomp.stack(h_n, 0)
        if not batched:
            h_n = h_n.squeeze(1)
        if not is_lstm:
            return out, h_n
        c_n = gcomp.stack(c_n, 0)
        if not batched:
            c_n = c_n.squeeze(1)
        return out, (h_n, c_n)

    def _forward_packed(self, input, hx):
        """The recurrence over a PackedSequence, as torch runs it: the batch sorted by length
        (h_0 and c_0 permuted with sorted_indices, h_n and c_n back with unsorted_indices), each
        sequence over its own steps only (Note [Packed sequences in the recurrence])."""
        data, batch_sizes, sorted_indices, unsorted_indices = input
        self._check_input(data, (2,))
        sizes = rnn_utils.batch_sizes_of(input)
        batch, steps, rows = int(sizes[0]), sizes.size, data.shape[0]
        states = [s if s is None or sorted_indices is None else s.index_select(1, sorted_indices)
                  for s in self._initial_states(hx, batch, True)]
        positions = rnn_utils.padding_positions(sizes, steps).reshape(-1)
        running = positions < rows
        directions = 2 if self.bidirectional else 1
        weights = [w for layer in range(self.num_layers) for direction in range(directions)
                   for w in self._layer_weights(layer, direction)]
        dropout = self.dropout if self.training else 0.0
        args = (data, gcomp.tensor(positions), gcomp.tensor(np.flatnonzero(running)),
                gcomp.tensor(running.reshape(steps, batch, 1)), *states)
        if R.tracing():
            out, h_n, c_n = _packed_layers(self.mode, self.num_layers, directions, dropout,
                                           *args, *weights)
        else:
            key = ("PACKED_" + self.mode, self.num_layers, directions, dropout)
            out, h_n, c_n = R._compiled(key, functools.partial(
                _packed_layers, self.mode, self.num_layers, directions, dropout))(
                *args, *R._plain(weights))
        if unsorted_indices is not None:
            h_n = h_n.index_select(1, unsorted_indices)
            c_n = c_n.index_select(1, unsorted_indices) if c_n is not None else None
        output = PackedSequence(out, batch_sizes, sorted_indices, unsorted_indices)
        return output, ((h_n, c_n) if self.mode == "LSTM" else h_n)

    def _run(self, x, steps, h0, c0):
        """All layers over x (batch, steps, features): the output (batch, steps, directions *
        hidden) and the final h and c (None but for the LSTM) of each layer and direction."""
        directions = 2 if self.bidirectional else 1
        weights = [w for layer in range(self.num_layers) for direction in range(directions)
                   for w in self._layer_weights(layer, direction)]
        dropout = self.dropout if self.training else 0.0
        return R.run_layers(self.mode, x, h0, c0, weights, self.num_layers, directions, dropout)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if self.batch_first is not False:
            s += f", batch_first={self.batch_first}"
        if self.dropout != 0:
            s += f", dropout={self.dropout}"
        if self.bidirectional is not False:
            s += f", bidirectional={self.bidirectional}"
        return s


# Note [Packed sequences in the recurrence]
# A PackedSequence runs as its padded batch, sorted by decreasing length, time-major, with a mask
# running[t, b] = t < length[b]: at a step where a sequence has ended (or, going in reverse, not
# yet begun) its state is held, h_t = where(running, cell(x_t, h), h). So the forward direction
# ends at each sequence's own last step and the reverse direction starts there from h_0, as
# torch's packed kernels do, and the outputs of the running steps are gathered back into the
# packed layout (the held ones are never read, so no gradient flows into the padding). Packing
# and padding are one gather each with indices made on the host from batch_sizes; eagerly the
# whole recurrence is one compiled call, as for padded input (Note [Compiled layers in eager
# mode] in nn/functional/_rnn.py), whose cache key is the shapes, so equal shapes with other
# lengths reuse it.
@lower_precision_for(R.AUTOCAST_LOW)
def _packed_layers(mode, layers, directions, dropout, data, positions, packed_rows, running, h0,
                   c0, *weights):
    """Every layer and direction over packed ``data`` (rows, features): ``positions`` (steps *
    batch) picks each padded cell's row of data (``rows`` for padding), ``packed_rows`` the padded
    cells that are packed rows, ``running`` (steps, batch, 1) marks them. h0 and c0 are (layers
    * directions, batch, hidden), zeros when None; ``weights`` as for R.run_layers. Returns the
    packed output (rows, directions * hidden) and the stacked final h and c (c None but for the
    LSTM)."""
    steps, batch = running.shape[:2]
    features = data.shape[1]
    padding = gcomp.zeros(1, features, dtype=data.dtype)
    x = gcomp.cat([data, padding]).index_select(0, positions).reshape(steps, batch, features)
    x, hs, cs = R._layers(mode, layers, directions, dropout, x.transpose(0, 1), h0, c0, *weights,
                          running=running)
    out = x.transpose(0, 1).reshape(steps * batch, x.shape[2]).index_select(0, packed_rows)
    return out, gcomp.stack(hs), (gcomp.stack(cs) if mode == "LSTM" else None)


class RNN(RNNBase):
    """Elman RNN with tanh or ReLU nonlinearity (torch.nn.RNN)."""

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True,
                 batch_first=False, dropout=0.0, bidirectional=False, device=None, dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise GcompError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or "
                             "'relu'.")
        self.nonlinearity = nonlinearity
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size,
                         hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         device=device, dtype=dtype)


class LSTM(RNNBase):
    """Long short-term memory, gates i, f, g, o (torch.nn.LSTM); returns (output, (h_n, c_n))."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, proj_size=0, device=None, dtype=None):
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, proj_size, device=device, dtype=dtype)


class GRU(RNNBase):
    """Gated recurrent unit, gates r, z, n (torch.nn.GRU)."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, device=None, dtype=None):
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, device=device, dtype=dtype)


class RNNCellBase(Module):
    """One step of a recurrence: weight_ih, weight_hh, bias_ih, bias_hh as in torch."""

    _mode = "RNN_TANH"

    def __init__(self, input_size, hidden_size, bias=True, num_chunks=1, device=None,
                 dtype=None):
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        bound = 1.0 / math.sqrt(hidden_size)
        gate_size = num_chunks * hidden_size
        self.weight_ih = _uniform_parameter((gate_size, input_size), bound, dtype)
        self.weight_hh = _uniform_parameter((gate_size, hidden_size), bound, dtype)
        if bias:
            self.bias_ih = _uniform_parameter((gate_size,), bound, dtype)
            self.bias_hh = _uniform_parameter((gate_size,), bound, dtype)
        else:
            self.bias_ih = self.bias_hh = None

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            p.uniform_(-bound, bound)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        nonlinearity = getattr(self, "nonlinearity", "tanh")
        if nonlinearity != "tanh":
            s += f", nonlinearity={nonlinearity}"
        return s

    def _step(self, input, hx, cx):
        """Shared forward: 1-d or 2-d input, missing states as zeros; returns (h, c)."""
        name = type(self).__name__
        if input.ndim not in (1, 2):
            raise GcompError(f"{name}: Expected input to be 1D or 2D, got {input.ndim}D instead")
        batched = input.ndim == 2
        x = input if batched else input.unsqueeze(0)
        if x.shape[1] != self.input_size:
            raise GcompError(f"input has inconsistent input_size: got {x.shape[1]} expected "
                             f"{self.input_size}")
        batch = x.shape[0]
        mode = self._mode
        states = [None, None]
        for k, s in enumerate((hx, cx) if mode == "LSTM" else (hx,)):
            if s is None:
                states[k] = gcomp.zeros(batch, self.hidden_size, dtype=x.dtype)
                continue
            if s.ndim != input.ndim:
                raise GcompError(f"{name}: Expected hidden to be {input.ndim}D for "
                                 f"{input.ndim}D input, got {s.ndim}D instead")
            states[k] = s if batched else s.unsqueeze(0)
        h, c = states
        w_ih, w_hh, b_ih, b_hh = self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh
        if mode in R.AUTOCAST_LOW_CELLS:
            x, h, w_ih, w_hh, b_ih, b_hh = cast_inputs(x, h, w_ih, w_hh, b_ih, b_hh)
        bias, extra = R.fold_biases(mode, self.hidden_size, b_ih, b_hh)
        x_proj = R.mm_t(x, w_ih)
        if bias is not None:
            x_proj = x_proj + bias
        h, c = R.stepper(mode, R.cell_weights(mode, w_hh, extra))(x_proj, h, c)
        if not batched:
            h = h.squeeze(0)
            c = c.squeeze(0) if c is not None else None
        return h, c


class RNNCell(RNNCellBase):
    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", device=None,
                 dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise GcompError(f"Unknown nonlinearity: {nonlinearity}")
        super().__init__(input_size, hidden_size, bias, 1, device=device, dtype=dtype)
        self.nonlinearity = nonlinearity
        self._mode = "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"

    def forward(self, input, hx=None):
        return self._step(input, hx, None)[0]


class LSTMCell(RNNCellBase):
    _mode = "LSTM"

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, 4, device=device, dtype=dtype)

    def forward(self, input, hx=None):
        h, c = (None, None) if hx is None else hx
        return self._step(input, h, c)


class GRUCell(RNNCellBase):
    _mode = "GRU"

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, 3, device=device, dtype=dtype)

    def forward(self, input, hx=None):
        return self._step(input, hx, None)[0]
