"""Hand-written pure-JAX training steps of the built-in workloads (workloads.py): the target for
gcomp's compiled steps.

Each model is a function ``forward(params, x)`` of a dict of arrays named like the torch
``state_dict`` (so it loads the same weights), each optimizer is written out by hand with
torch's update formulas, and ``make_step(workload)`` returns the un-jitted
``step(params, opt_state, x, y) -> (params, opt_state, loss)``; jit it with
``donate_argnums=(0, 1)``. Everything passes float32 explicitly: gcomp turns jax_enable_x64 on.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

F32 = jnp.float32


# -- layers ------------------------------------------------------------------------------------


def linear(p, prefix, x):
    return x @ p[prefix + "weight"].T + p[prefix + "bias"]


def conv2d(p, prefix, x):
    y = lax.conv_general_dilated(x, p[prefix + "weight"], (1, 1), "VALID",
                                 dimension_numbers=("NCHW", "OIHW", "NCHW"))
    return y + p[prefix + "bias"][None, :, None, None]


def max_pool2d(x, k=2):
    return lax.reduce_window(x, np.array(-np.inf, np.float32), lax.max, (1, 1, k, k), (1, 1, k, k),
                             "VALID")


def layer_norm(p, prefix, x, eps=1e-5):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) * lax.rsqrt(var + F32(eps)) * p[prefix + "weight"] + p[prefix + "bias"]


# -- models (the parameter names are torch's) --------------------------------------------------


def linreg(p, x):
    return linear(p, "", x)


def mlp(p, x):
    return linear(p, "2.", jax.nn.relu(linear(p, "0.", x)))


def cnn(p, x):
    x = max_pool2d(jax.nn.relu(conv2d(p, "0.", x)))
    x = max_pool2d(jax.nn.relu(conv2d(p, "3.", x)))
    x = x.reshape(x.shape[0], -1)
    x = jax.nn.relu(linear(p, "7.", x))
    x = jax.nn.relu(linear(p, "9.", x))
    return linear(p, "11.", x)


def lstm(p, x):
    """One-layer LSTM (torch's gate order i, f, g, o) over a batch-first sequence, then a head."""
    w_ih, w_hh = p["lstm.weight_ih_l0"], p["lstm.weight_hh_l0"]
    b = p["lstm.bias_ih_l0"] + p["lstm.bias_hh_l0"]
    xw = jnp.swapaxes(x, 0, 1) @ w_ih.T + b  # [T, B, 4H], the input part of every step at once
    hidden = w_hh.shape[1]
    h0 = jnp.zeros((x.shape[0], hidden), F32)

    def cell(carry, xw_t):
        h, c = carry
        i, f, g, o = jnp.split(xw_t + h @ w_hh.T, 4, axis=-1)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return (h, c), None

    (h, _), _ = lax.scan(cell, (h0, h0), xw)
    return linear(p, "head.", h)


def transformer(p, x, layers=2, heads=4):
    """torch's TransformerEncoderLayer (post-norm, ReLU, no dropout), mean-pool, linear head."""
    bsz, seq, d = x.shape
    dh = d // heads
    for i in range(layers):
        pre = f"encoder.layers.{i}."
        qkv = linear(p, pre + "self_attn.in_proj_", x)
        q, k, v = (t.reshape(bsz, seq, heads, dh).transpose(0, 2, 1, 3)
                   for t in jnp.split(qkv, 3, axis=-1))
        att = jax.nn.softmax((q * F32(dh ** -0.5)) @ jnp.swapaxes(k, -1, -2), axis=-1)
        o = (att @ v).transpose(0, 2, 1, 3).reshape(bsz, seq, d)
        x = layer_norm(p, pre + "norm1.", x + linear(p, pre + "self_attn.out_proj.", o))
        ff = linear(p, pre + "linear2.", jax.nn.relu(linear(p, pre + "linear1.", x)))
        x = layer_norm(p, pre + "norm2.", x + ff)
    return linear(p, "head.", x.mean(1))


FORWARD = {"linreg": linreg, "mlp": mlp, "cnn": cnn, "lstm": lstm, "transformer": transformer}


# -- losses ------------------------------------------------------------------------------------


def mse(pred, y):
    return ((pred - y) ** 2).mean()


def cross_entropy(logits, y):
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.take_along_axis(logp, y[:, None], axis=1).mean()


# -- optimizers (torch's single-tensor formulas) -----------------------------------------------


def init_state(optimizer: str, params):
    zeros = lambda: jax.tree.map(jnp.zeros_like, params)  # noqa: E731
    if optimizer == "sgd":
        return {}
    if optimizer == "sgd_momentum":
        return {"momentum": zeros()}  # torch's first buffer is the gradient: 0.9 * 0 + g
    return {"step": jnp.zeros((), F32), "exp_avg": zeros(), "exp_avg_sq": zeros()}


def update(optimizer: str, lr: float, params, grads, state):
    tm = jax.tree.map
    if optimizer == "sgd":
        return tm(lambda p, g: p - lr * g, params, grads), state
    if optimizer == "sgd_momentum":
        buf = tm(lambda b, g: 0.9 * b + g, state["momentum"], grads)
        return tm(lambda p, b: p - lr * b, params, buf), {"momentum": buf}
    b1, b2, eps = 0.9, 0.999, 1e-8
    if optimizer == "adamw":
        params = tm(lambda p: p * (1 - lr * 0.01), params)
    step = state["step"] + 1
    bc1 = 1 - F32(b1) ** step
    bc2_sqrt = jnp.sqrt(1 - F32(b2) ** step)
    m = tm(lambda m, g: m + (1 - b1) * (g - m), state["exp_avg"], grads)
    v = tm(lambda v, g: b2 * v + (1 - b2) * g * g, state["exp_avg_sq"], grads)
    params = tm(lambda p, m, v: p - (lr / bc1) * m / (jnp.sqrt(v) / bc2_sqrt + eps), params, m, v)
    return params, {"step": step, "exp_avg": m, "exp_avg_sq": v}


# -- the step ----------------------------------------------------------------------------------


def make_step(workload):
    """A fresh ``step(params, opt_state, x, y) -> (params, opt_state, loss)`` (not jitted)."""
    forward = FORWARD[workload.name]
    loss_fn = mse if workload.loss == "mse" else cross_entropy

    def step(params, opt_state, x, y):
        loss, grads = jax.value_and_grad(lambda p: loss_fn(forward(p, x), y))(params)
        params, opt_state = update(workload.optimizer, workload.lr, params, grads, opt_state)
        return params, opt_state, loss

    return step


def make_contract_step(workload):
    """The hand-written step with gcomp's calling contract: ``(params, opt_state, lr, x, y) ->
    (params, opt_state, grads, loss)``: the learning rate is an input (changing it does not
    recompile) and the gradients are outputs (PyTorch's ``.grad`` after ``opt.step()``)."""
    forward = FORWARD[workload.name]
    loss_fn = mse if workload.loss == "mse" else cross_entropy

    def step(params, opt_state, lr, x, y):
        loss, grads = jax.value_and_grad(lambda p: loss_fn(forward(p, x), y))(params)
        params, opt_state = update(workload.optimizer, lr, params, grads, opt_state)
        return params, opt_state, grads, loss

    return step


def timed_case(workload, state: dict[str, np.ndarray], x, y, contract: bool = False):
    """``(step, sync, jitted, held)`` for timing the hand-written step jitted with params and
    optimizer state donated: ``step()`` runs one step on the batch ``(x, y)`` and returns the
    loss, ``sync(loss)`` waits for it and the new state; ``held`` is the live state list.
    ``contract``: the step of ``make_contract_step`` (lr passed in, gradients returned)."""
    jx, jy = jnp.asarray(x), jnp.asarray(y)
    held = list(initial(workload, state))
    if contract:
        jitted = jax.jit(make_contract_step(workload), donate_argnums=(0, 1))
        held.append(None)  # the last gradients
        lr = jnp.asarray(workload.lr, F32)

        def step():
            held[0], held[1], held[2], loss = jitted(held[0], held[1], lr, jx, jy)
            return loss
    else:
        jitted = jax.jit(make_step(workload), donate_argnums=(0, 1))

        def step():
            held[0], held[1], loss = jitted(held[0], held[1], jx, jy)
            return loss

    return step, (lambda loss: jax.block_until_ready((loss, held))), jitted, held


def initial(workload, state: dict[str, np.ndarray]):
    """(params, opt_state) as fresh device arrays (they are donated, so each user needs its own)."""
    params = {k: jnp.array(v) for k, v in state.items()}
    return params, init_state(workload.optimizer, params)
