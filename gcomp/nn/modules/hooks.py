"""Module.register_full_backward_hook and register_full_backward_pre_hook.

As torch does it (torch.utils.hooks.BackwardHook): the tensors a module is called with, and the
ones it returns, each pass through an identity autograd.Function. Backward reaches the outputs'
identity first: it runs the pre-hooks, ``hook(module, grad_output)``, which may return a new
grad_output, and keeps grad_output. It then reaches the inputs' identity, which runs the hooks,
``hook(module, grad_input, grad_output)``, where each may return a new grad_input. When no input
needs a gradient, the hooks run at the outputs with ``grad_input`` all None, as in torch. The
hooks run eagerly; inside gcomp.compile they are refused (the compiled backward is one
executable with no Python in it).
"""

from __future__ import annotations

import warnings

from ...core.dispatch import Mode, TraceInterpreter, user_error
from ...frontend.autograd import Function
from ...frontend.tensor import Tensor
from ...ir.errors import GcompError


def _check(module, what, got, want):
    got = tuple(got) if isinstance(got, (tuple, list)) else (got,)
    if len(got) != len(want):
        raise user_error(GcompError, f"a backward hook of {type(module).__name__} returned "
                         f"{len(got)} {what}, expected {len(want)}")
    for g, w in zip(got, want):
        if g is not None and w is not None and (not isinstance(g, Tensor) or g.shape != w.shape):
            raise user_error(GcompError, f"a backward hook of {type(module).__name__} returned "
                             f"a {what} of the wrong shape: expected {list(w.shape)}")
    return got


def wants_backward_hooks(module) -> bool:
    return bool(module.__dict__.get("_backward_hooks") or
                module.__dict__.get("_backward_pre_hooks"))


def setup_inputs(module, args, state):
    """The call's positional tensors through the input identity (those needing grad)."""
    if isinstance(Mode.stack[-1], TraceInterpreter):
        raise user_error(GcompError, f"a full backward hook of {type(module).__name__} inside "
                         "gcomp.compile is not supported: hooks run eagerly; call the module "
                         "outside the compiled function, or remove the hook")
    positions = [i for i, a in enumerate(args) if isinstance(a, Tensor)]
    state["n_inputs"] = len(positions)
    needing = [i for i in positions if args[i].requires_grad]
    state["inputs_need_grad"] = bool(needing) and Mode.grad_enabled
    if not state["inputs_need_grad"]:
        return args
    hooks = module._backward_hooks

    class BackwardHookFunction(Function):
        @staticmethod
        def forward(ctx, *xs):
            return tuple(x.detach() for x in xs)

        @staticmethod
        def backward(ctx, *grads):
            full = [None] * len(positions)
            for k, i in enumerate(needing):
                full[positions.index(i)] = grads[k]
            grad_input = tuple(full)
            for hook in list(hooks.values()):
                res = hook(module, grad_input, state.get("grad_output"))
                if res is not None:
                    grad_input = _check(module, "grad_input", res, grad_input)
            return tuple(grad_input[positions.index(i)] for i in needing)

    outs = BackwardHookFunction.apply(*[args[i] for i in needing])
    outs = outs if isinstance(outs, tuple) else (outs,)
    args = list(args)
    for i, o in zip(needing, outs):
        args[i] = o
    return tuple(args)


def setup_outputs(module, out, state):
    """The module's returned tensors through the output identity."""
    flat = [out] if isinstance(out, Tensor) else list(out) if isinstance(out, (tuple, list)) \
        else []
    idx = [k for k, t in enumerate(flat) if isinstance(t, Tensor) and t.requires_grad]
    if not idx or not Mode.grad_enabled:
        return out
    hooks, pre = module._backward_hooks, module.__dict__.get("_backward_pre_hooks", {})

    class BackwardHookFunction(Function):
        @staticmethod
        def forward(ctx, *ys):
            return tuple(y.detach() for y in ys)

        @staticmethod
        def backward(ctx, *grads):
            grad_output = tuple(grads)
            for hook in list(pre.values()):
                res = hook(module, grad_output)
                if res is not None:
                    grad_output = _check(module, "grad_output", res, grad_output)
            state["grad_output"] = grad_output
            if not state["inputs_need_grad"]:
                if hooks:
                    warnings.warn("Full backward hook is firing when gradients are computed "
                                  "with respect to module outputs since no inputs require "
                                  "gradients (as in torch)", stacklevel=2)
                none = (None,) * state["n_inputs"]
                for hook in list(hooks.values()):
                    hook(module, none, grad_output)
            return grad_output

    res = BackwardHookFunction.apply(*[flat[k] for k in idx])
    res = res if isinstance(res, tuple) else (res,)
    for k, r in zip(idx, res):
        flat[k] = r
    if isinstance(out, Tensor):
        return flat[0]
    return type(out)(flat) if isinstance(out, tuple) and type(out) is tuple else \
        (type(out)(*flat) if isinstance(out, tuple) else flat)
