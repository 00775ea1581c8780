"""Recurrent layers: RNN, LSTM, GRU and their single-step cells, with PyTorch's parameter names,
gate order, shapes and initialization. The math lives in gcomp/nn/functional/_rnn.py."""

from __future__ import annotations

import math

import gcomp
from gcomp import GcompError

from ..functional import _rnn as R
from ..parameter import Parameter
from .module import Module

__all__ = ["RNNBase", "RNN", "LSTM", "GRU", "RNNCellBase", "RNNCell", "LSTMCell", "GRUCell"]


def _uniform_parameter(shape, bound, dtype):
    p = Parameter(gcomp.empty(*shape, dtype=dtype or gcomp.float32))
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

    def forward(self, input, hx=None):
        is_lstm = self.mode == "LSTM"
        if input.ndim not in (2, 3):
            raise GcompError(f"{type(self).__name__}: Expected input to be 2D or 3D, got "
                             f"{input.ndim}D instead")
        batched = input.ndim == 3
        if input.shape[-1] != self.input_size:
            raise GcompError(f"input.size(-1) must be equal to input_size. Expected "
                             f"{self.input_size}, got {input.shape[-1]}")
        if not batched:
            x = input.unsqueeze(0)
        else:
            x = input if self.batch_first else input.transpose(0, 1)
        batch, steps = x.shape[0], x.shape[1]
        h0 = c0 = None
        if hx is not None:
            if is_lstm:
                if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                    raise GcompError("LSTM expects hx as a tuple (h_0, c_0)")
                h0, c0 = hx
                self._check_hidden(h0, batch, batched)
                self._check_hidden(c0, batch, batched, "cell")
            else:
                h0 = hx
                self._check_hidden(h0, batch, batched)
            if not batched:
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
        bias, extra = R.fold_biases(mode, self.hidden_size, self.bias_ih, self.bias_hh)
        x_proj = R.mm_t(x, self.weight_ih)
        if bias is not None:
            x_proj = x_proj + bias
        h, c = R.stepper(mode, R.cell_weights(mode, self.weight_hh, extra))(x_proj, h, c)
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
