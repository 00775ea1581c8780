"""Recurrent cells and the time loop behind nn.RNN, nn.LSTM and nn.GRU, in gcomp ops.

`run_layers` runs every layer and direction. In each, the input projection of the whole sequence
is one matmul before the loop, then the time loop is one ``gcomp.scan`` whose body is the cell:
each step costs one hidden-to-hidden matmul and a few elementwise ops, and a compiled model holds
one scan node whatever the sequence length (512 steps compile as fast as 8). The
cells (`rnn_tanh_cell`, `rnn_relu_cell`, `lstm_cell`, `gru_cell`) share one signature,
``cell(x_proj, h, c, weights) -> (h, c)`` (``c`` is None except for the LSTM); `lstm_update` and
`gru_update` are their parts after the matmuls. Eagerly, the whole recurrence is one compiled
call and so is its backward (Note [Compiled layers in eager mode]).

torch.nn.functional has no recurrent functions, so this file exports nothing.
"""

from __future__ import annotations

import gcomp
from gcomp.core import prims as P
from gcomp.frontend.autocast import lower_precision_for

from ._common import tracing

__all__: list[str] = []

# Gates per cell: how many hidden-sized blocks the weight matrices stack (PyTorch's order).
GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def mm_t(a, w):
    """a @ w.T for 2-d a and w, as one contraction (no transpose op)."""
    return P.dot_general(a, w, contract=((1, 1),))


def cols(x, start, stop):
    """Columns [start, stop) of a 2-d tensor, as one slice."""
    rows = x._type.shape[0]
    return P.slice(x, start=(0, start), limit=(rows, stop), stride=(1, 1))


def rnn_tanh_cell(x_proj, h, c, weights):
    """h' = tanh(x W_ih^T + b_ih + b_hh + h W_hh^T); ``weights`` is (W_hh,)."""
    return (x_proj + mm_t(h, weights[0])).tanh(), None


def rnn_relu_cell(x_proj, h, c, weights):
    return (x_proj + mm_t(h, weights[0])).relu(), None


def lstm_update(gates, c):
    """The LSTM step after its matmuls: gates (x and h projections summed) in the order
    i, f, g, o -> (h, c)."""
    n = c._type.shape[-1]
    i = cols(gates, 0, n).sigmoid()
    f = cols(gates, n, 2 * n).sigmoid()
    g = cols(gates, 2 * n, 3 * n).tanh()
    o = cols(gates, 3 * n, 4 * n).sigmoid()
    c = f * c + i * g
    return o * c.tanh(), c


def lstm_cell(x_proj, h, c, weights):
    """PyTorch's LSTM step; ``weights`` is (W_hh,)."""
    return lstm_update(x_proj + mm_t(h, weights[0]), c)


def gru_update(x_proj, gh, h, b_hn):
    """The GRU step after its matmuls (gh = h W_hh^T): gates r, z, n with
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn)); b_hn is None without biases."""
    n = h._type.shape[-1]
    rz = (cols(x_proj, 0, 2 * n) + cols(gh, 0, 2 * n)).sigmoid()
    r, z = cols(rz, 0, n), cols(rz, n, 2 * n)
    hn = cols(gh, 2 * n, 3 * n)
    if b_hn is not None:
        hn = hn + b_hn
    new = (cols(x_proj, 2 * n, 3 * n) + r * hn).tanh()
    return new + z * (h - new)


def gru_cell(x_proj, h, c, weights):
    """PyTorch's GRU step. ``x_proj`` already holds b_ih and the r, z parts of b_hh;
    ``weights`` is (W_hh, b_hn)."""
    return gru_update(x_proj, mm_t(h, weights[0]), h, weights[1]), None


CELLS = {"RNN_TANH": rnn_tanh_cell, "RNN_RELU": rnn_relu_cell, "LSTM": lstm_cell,
         "GRU": gru_cell}


def fold_biases(mode, hidden, b_ih, b_hh):
    """The bias added to the input projection, and the extra weights the cell needs.

    Hidden-side biases are plain additions except GRU's b_hn (inside r * (...)), so they are
    added to the input projection once per sequence instead of once per step."""
    if b_ih is None:
        return None, ()
    if mode != "GRU":
        return b_ih + b_hh, ()
    rz = P.slice(b_ih, start=(0,), limit=(2 * hidden,), stride=(1,)) + \
        P.slice(b_hh, start=(0,), limit=(2 * hidden,), stride=(1,))
    b_in = P.slice(b_ih, start=(2 * hidden,), limit=(3 * hidden,), stride=(1,))
    b_hn = P.slice(b_hh, start=(2 * hidden,), limit=(3 * hidden,), stride=(1,))
    return P.concatenate(rz, b_in, axis=0), (b_hn,)


def cell_weights(mode, w_hh, extra):
    if mode == "GRU":
        return (w_hh, extra[0] if extra else None)
    return (w_hh,)


def _layer(mode, reverse, x, h, c, w_ih, w_hh, b_ih, b_hh, running=None):
    """One layer in one direction over x (batch, steps, features): the outputs (batch, steps,
    hidden) in time order and the final h and c (None but for the LSTM). ``running`` (steps,
    batch, 1), for packed input: sequence b's state is held where running[t, b] is False (Note
    [Packed sequences in the recurrence] in nn/modules/rnn.py)."""
    batch, steps, features = x._type.shape
    hidden = w_hh._type.shape[1]
    bias, extra = fold_biases(mode, hidden, b_ih, b_hh)
    weights = cell_weights(mode, w_hh, extra)
    # time-major projection: one matmul over all steps, scanned along its first axis
    seq = P.reshape(P.transpose(x, perm=(1, 0, 2)), shape=(steps * batch, features))
    proj = mm_t(seq, w_ih)
    if bias is not None:
        proj = proj + bias
    xs = P.reshape(proj, shape=(steps, batch, w_ih._type.shape[0]))
    cell = CELLS[mode]
    lstm = mode == "LSTM"

    def body(state, inp):
        x_t, run_t = inp if running is not None else (inp, None)
        new = cell(x_t, state[0], state[1] if lstm else None, weights)
        new = tuple(new) if lstm else (new[0],)
        if run_t is not None:
            new = tuple(gcomp.where(run_t, n, s) for n, s in zip(new, state))
        return new, new[0]

    state, ys = gcomp.scan(body, (h, c) if lstm else (h,), xs if running is None
                           else (xs, running), reverse=reverse)
    return P.transpose(ys, perm=(1, 0, 2)), state[0], (state[1] if lstm else None)


# Note [Compiled layers in eager mode]
# Run eagerly op by op, one LSTM step is ~16 ops forward and ~40 backward, at ~10 us each; an
# eager gcomp.scan (one jitted loop) still traces its body on every call. So eagerly the whole
# recurrence, every layer and direction with their projections, is one gcomp.compile'd call: one
# executable forward and, since compiled calls join eager autograd, one executable backward
# holding the scans' VJPs, reverse scans (Note [Differentiating scan] in autodiff/control.py).
# One executable per module configuration and shape also keeps XLA compile time down (a while
# loop costs about as much to compile as a whole small graph). Inside an enclosing gcomp.compile
# trace the call inlines, so a compiled model holds the scans themselves. (A compiled call gives
# up double backward through the recurrence: create_graph=True through it raises a GcompError.)
_COMPILED: dict = {}


def _compiled(key, fn):
    c = _COMPILED.get(key)
    if c is None:
        name = "_".join(str(k) for k in key) if isinstance(key, tuple) else key
        c = _COMPILED[key] = gcomp.compile(fn, name=f"rnn_{name}", cache_limit=256)
    return c


def _plain(weights):
    """Parameters through one alias: compiled calls take their fast path for plain Tensors."""
    if tracing():
        return weights
    return tuple(w if w is None or type(w) is gcomp.Tensor else
                 P.reshape(w, shape=w._type.shape) for w in weights)


def _layers(mode, layers, directions, dropout, x, h0, c0, *weights, running=None):
    """Every layer and direction over x (batch, steps, features), from h0 and c0 (layers *
    directions, batch, hidden), zeros when None: the last layer's outputs (batch, steps,
    directions * hidden) and the final h and c of each layer and direction (c: None but for the
    LSTM). ``weights`` holds (w_ih, w_hh, b_ih, b_hh) per layer and direction (biases None
    without them); ``dropout`` applies between layers; ``running`` as for `_layer`."""
    from gcomp.nn import functional as F

    batch = x._type.shape[0]
    hidden = weights[1]._type.shape[1]
    zeros = None
    if h0 is None or (mode == "LSTM" and c0 is None):
        zeros = gcomp.zeros(batch, hidden, dtype=x.dtype)
    hs, cs = [], []
    for layer in range(layers):
        outs = []
        for direction in range(directions):
            k = layer * directions + direction
            h = h0[k] if h0 is not None else zeros
            c = (c0[k] if c0 is not None else zeros) if mode == "LSTM" else None
            out, h, c = _layer(mode, direction == 1, x, h, c, *weights[4 * k:4 * k + 4],
                               running=running)
            outs.append(out)
            hs.append(h)
            cs.append(c)
        x = outs[0] if directions == 1 else gcomp.cat(outs, 2)
        if dropout and layer < layers - 1:
            x = F.dropout(x, dropout, True)
    return x, hs, cs


# torch 2.13's CPU autocast runs the RNN and LSTM layers and RNNCell in low precision, and the GRU
# layers, LSTMCell and GRUCell in float32 (Note [Autocast] in frontend/autocast.py)
AUTOCAST_LOW = frozenset({"RNN_TANH", "RNN_RELU", "LSTM"})
AUTOCAST_LOW_CELLS = frozenset({"RNN_TANH", "RNN_RELU"})


@lower_precision_for(AUTOCAST_LOW)
def run_layers(mode, x, h0, c0, weights, layers, directions, dropout=0.0):
    """The recurrence of nn.RNN, nn.LSTM and nn.GRU (see `_layers`); eagerly one compiled call
    (Note [Compiled layers in eager mode])."""
    if tracing():
        return _layers(mode, layers, directions, dropout, x, h0, c0, *weights)
    key = (mode, layers, directions, dropout)
    fn = _COMPILED.get(key)
    if fn is None:
        def run(x, h0, c0, *weights):
            return _layers(mode, layers, directions, dropout, x, h0, c0, *weights)

        fn = _compiled(key, run)
    return fn(x, h0, c0, *_plain(weights))


def _step(mode):
    """``mode``'s cell with flat tensor arguments (what a compiled call's fast path takes)."""
    cell = CELLS[mode]
    if mode == "LSTM":
        return lambda x_proj, h, c, w_hh: cell(x_proj, h, c, (w_hh,))
    if mode == "GRU":
        return lambda x_proj, h, w_hh, b_hn: cell(x_proj, h, None, (w_hh, b_hn))[0]
    return lambda x_proj, h, w_hh: cell(x_proj, h, None, (w_hh,))[0]


def stepper(mode, weights):
    """One step of ``mode``'s cell as a compiled call: (x_proj, h, c) -> (h, c)."""
    step = _compiled(mode, _step(mode))
    weights = _plain(weights)
    if mode == "LSTM":
        return lambda x_proj, h, c: step(x_proj, h, c, weights[0])
    return lambda x_proj, h, c: (step(x_proj, h, *weights), None)
