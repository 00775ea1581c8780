"""Recurrent cells and the time loop behind nn.RNN, nn.LSTM and nn.GRU, in gcomp ops.

`run_layer` runs one layer in one direction: the input projection of the whole sequence is one
matmul before the loop, then the time loop is one ``gcomp.scan`` whose body is the cell, so each
step costs one hidden-to-hidden matmul and a few elementwise ops, and a compiled model holds one
scan node whatever the sequence length (a 512-step LSTM compiles as fast as an 8-step one). The
cells (`rnn_tanh_cell`, `rnn_relu_cell`, `lstm_cell`, `gru_cell`) share one signature,
``cell(x_proj, h, c, weights) -> (h, c)`` (``c`` is None except for the LSTM); `lstm_update` and
`gru_update` are their parts after the matmuls. Eagerly, a layer's direction is one compiled
call and so is its backward (Note [Compiled layers in eager mode]).

torch.nn.functional has no recurrent functions, so this file exports nothing.
"""

from __future__ import annotations

import gcomp
from gcomp.core import prims as P

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


def _layer(mode, reverse, x, h, c, w_ih, w_hh, b_ih, b_hh):
    """One layer in one direction over x (batch, steps, features): the outputs (batch, steps,
    hidden) in time order and the final h and c (None but for the LSTM)."""
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
    if mode == "LSTM":
        def body(state, x_t):
            h, c = cell(x_t, state[0], state[1], weights)
            return (h, c), h

        (h, c), ys = gcomp.scan(body, (h, c), xs, reverse=reverse)
    else:
        def body(h, x_t):
            h = cell(x_t, h, None, weights)[0]
            return h, h

        h, ys = gcomp.scan(body, h, xs, reverse=reverse)
    return P.transpose(ys, perm=(1, 0, 2)), h, c


# Note [Compiled layers in eager mode]
# Run eagerly op by op, one LSTM step is ~16 ops forward and ~40 backward, at ~10 us each; an
# eager scan (one jitted loop) still traces its body on every call. So eagerly each layer's
# direction is one gcomp.compile'd call (projection and scan): one executable forward and, since
# compiled calls join eager autograd, one executable backward, the scan's VJP: a reverse scan
# (Note [Differentiating scan] in autodiff/control.py). Inside an enclosing gcomp.compile trace
# the call inlines, so a compiled model holds the scan itself. (A compiled call gives up double
# backward through the recurrence: create_graph=True through it raises a GcompError.)
_COMPILED: dict = {}


def _compiled(key, fn):
    c = _COMPILED.get(key)
    if c is None:
        c = _COMPILED[key] = gcomp.compile(fn, name=f"rnn_{key}", cache_limit=256)
    return c


def _plain(weights):
    """Parameters through one alias: compiled calls take their fast path for plain Tensors."""
    if tracing():
        return weights
    return tuple(w if w is None or type(w) is gcomp.Tensor else
                 P.reshape(w, shape=w._type.shape) for w in weights)


def _layer_fn(mode, reverse):
    def layer(x, h, c, w_ih, w_hh, b_ih, b_hh):
        return _layer(mode, reverse, x, h, c, w_ih, w_hh, b_ih, b_hh)

    return layer


def run_layer(mode, x, h, c, w_ih, w_hh, b_ih, b_hh, reverse=False):
    """``mode``'s recurrence over x (batch, steps, features) from states h and c (c is None but
    for the LSTM): the outputs (batch, steps, hidden) and the final h and c."""
    if tracing():
        return _layer(mode, reverse, x, h, c, w_ih, w_hh, b_ih, b_hh)
    key = f"{mode}_{'reverse' if reverse else 'forward'}"
    return _compiled(key, _layer_fn(mode, reverse))(x, h, c, *_plain((w_ih, w_hh, b_ih, b_hh)))


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
