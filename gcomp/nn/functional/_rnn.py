"""Recurrent cells and the time loop behind nn.RNN, nn.LSTM and nn.GRU, in gcomp ops.

The input projection of a whole sequence is one matmul before the loop (`input_projection`);
each step then costs one hidden-to-hidden matmul and a few elementwise ops. The per-step cells
(`rnn_tanh_cell`, `rnn_relu_cell`, `lstm_cell`, `gru_cell`) share one signature,
``cell(x_proj, h, c, weights) -> (h, c)`` (``c`` is None except for the LSTM), so a compiled
recurrence can reuse them as a loop body; `lstm_update` and `gru_update` are their parts after
the matmuls. Eagerly, each step runs as one compiled call (Note [Compiled steps in eager mode]).

Layout: sequences are kept batch-major and flattened, ``(batch, steps * gates)``, so that the
input projection of step t is one column slice and the outputs of all steps are one concatenate.
torch.nn.functional has no recurrent functions, so this file exports nothing.
"""

from __future__ import annotations

import math

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


def input_projection(x, w_ih, bias):
    """x (batch, steps, features) -> x W_ih^T + bias as (batch, steps * gates), one matmul."""
    b, t, f = x._type.shape
    proj = mm_t(x.reshape(b * t, f), w_ih)
    if bias is not None:
        proj = proj + bias
    return proj.reshape(b, t * w_ih._type.shape[0])


def _split_steps(x_proj, steps):
    """The ``steps`` column blocks of x_proj, sliced out of blocks of about sqrt(steps) steps.

    The gradient of a slice is its cotangent padded to the size of what it was sliced from; so
    slicing each step out of the whole sequence would make the backward pass sum ``steps``
    full-size pads, and two levels sum about 2 * sqrt(steps) (3x faster at 35 steps)."""
    width = x_proj._type.shape[1] // steps
    block = math.isqrt(steps - 1) + 1 if steps > 4 else steps
    out = []
    for start in range(0, steps, block):
        n = min(block, steps - start)
        chunk = x_proj if n == steps else cols(x_proj, start * width, (start + n) * width)
        out += [cols(chunk, t * width, (t + 1) * width) for t in range(n)]
    return out


def _join_steps(*outs):
    return P.concatenate(*outs, axis=1)


def _step(mode):
    """``mode``'s cell with flat tensor arguments (what a compiled call's fast path takes)."""
    cell = CELLS[mode]
    if mode == "LSTM":
        return lambda x_proj, h, c, w_hh: cell(x_proj, h, c, (w_hh,))
    if mode == "GRU":
        return lambda x_proj, h, w_hh, b_hn: cell(x_proj, h, None, (w_hh, b_hn))[0]
    return lambda x_proj, h, w_hh: cell(x_proj, h, None, (w_hh,))[0]


def _step_ahead(mode):
    """One step given ``hw = h W_hh^T``, also returning the next step's ``h' W_hh^T``.

    The same math as the cell, with the hidden matmul moved to the end of the previous step: a
    compiled call's backward recomputes its forward, and a matmul whose result only leaves the
    call is not recomputed (its gradient needs h' and W_hh, not the product)."""
    if mode == "LSTM":
        def step(x_proj, hw, c, w_hh):
            h, c = lstm_update(x_proj + hw, c)
            return h, c, mm_t(h, w_hh)
    elif mode == "GRU":
        def step(x_proj, hw, h, w_hh, b_hn):
            h = gru_update(x_proj, hw, h, b_hn)
            return h, mm_t(h, w_hh)
    else:
        act = "tanh" if mode == "RNN_TANH" else "relu"

        def step(x_proj, hw, w_hh):
            h = getattr(x_proj + hw, act)()
            return h, mm_t(h, w_hh)
    return step


# Note [Compiled steps in eager mode]
# Run eagerly op by op, one LSTM step is ~16 ops forward and ~40 backward, at ~10 us each. Each
# step (and the split of the input projection into steps, and the join of the outputs) is instead
# one gcomp.compile'd call: one executable forward and one backward (compiled calls join eager
# autograd). Inside an enclosing gcomp.compile trace these calls inline, so a compiled model sees
# the plain ops. (A compiled call gives up double backward through the recurrence.)
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


def stepper(mode, weights):
    """One step of ``mode``'s cell as a compiled call: (x_proj, h, c) -> (h, c)."""
    step = _compiled(mode, _step(mode))
    weights = _plain(weights)
    if mode == "LSTM":
        return lambda x_proj, h, c: step(x_proj, h, c, weights[0])
    return lambda x_proj, h, c: (step(x_proj, h, *weights), None)


def run_direction(mode, x_proj, steps, h, c, weights, reverse=False):
    """Run ``mode``'s cell over the ``steps`` steps of ``x_proj`` (batch, steps * gates).

    Returns the outputs (batch, steps * hidden) in time order, and the final h and c."""
    weights = _plain(weights)
    w_hh = weights[0]
    step = _compiled(mode + "_ahead", _step_ahead(mode))
    # Every step after the first gets states that require grad; give the first step such states
    # too (fresh leaves: the caller's states need no gradient), so one executable serves all.
    if gcomp.is_grad_enabled() and not tracing() and (x_proj.requires_grad or any(
            w is not None and w.requires_grad for w in weights)):
        h = h if h.requires_grad else h.detach().requires_grad_()
        c = c if c is None or c.requires_grad else c.detach().requires_grad_()
    xs = _compiled("split", _split_steps)(x_proj, steps) if steps > 1 else [x_proj]
    hw = mm_t(h, w_hh)
    outs = []
    for t in (range(steps - 1, -1, -1) if reverse else range(steps)):
        if mode == "LSTM":
            h, c, hw = step(xs[t], hw, c, w_hh)
        elif mode == "GRU":
            h, hw = step(xs[t], hw, h, w_hh, weights[1])
        else:
            h, hw = step(xs[t], hw, w_hh)
        outs.append(h)
    if reverse:
        outs.reverse()
    out = outs[0] if steps == 1 else _compiled("join", _join_steps)(*outs)
    return out, h, c
