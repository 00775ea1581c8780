"""torch.autograd.functional: jacobian, hessian, vjp, jvp, hvp and vhp of a function of tensors,
computed eagerly with gcomp's one backprop (``autograd.grad``): a Jacobian is one reverse pass per
output element, a Hessian the Jacobian of the gradient (double backward), and a JVP the
derivative of a VJP with respect to its cotangent (the double-VJP identity).
"""

from __future__ import annotations

from .core.dispatch import user_error
from .frontend.autograd import enable_grad
from .frontend.autograd import grad as _grad
from .frontend.tensor import Tensor
from .ir.errors import GcompError


def _tuple(x, what):
    single = isinstance(x, Tensor)
    xs = (x,) if single else tuple(x)
    if not all(isinstance(t, Tensor) for t in xs):
        raise user_error(GcompError, f"autograd.functional: {what} must be a tensor or a tuple "
                         "of tensors")
    return single, xs


def _prepare(inputs):
    single, xs = _tuple(inputs, "inputs")
    return single, tuple(x.detach().requires_grad_(True) for x in xs)


def _grads(out, xs, v, create_graph, strict, what):
    gs = _grad(out, xs, grad_outputs=v, create_graph=create_graph, allow_unused=True,
               retain_graph=True)
    res = []
    for i, (g, x) in enumerate(zip(gs, xs)):
        if g is None:
            if strict:
                raise user_error(GcompError, f"autograd.functional.{what}: the output does not "
                                 f"depend on input {i} (strict=True)")
            from .frontend.creation import zeros_like

            g = zeros_like(x)
        res.append(g if create_graph else g.detach())
    return res


def jacobian(func, inputs, create_graph=False, strict=False, vectorize=False,
             strategy="reverse-mode"):
    """d func(inputs) / d inputs: for one input and one output, a tensor of shape
    ``out.shape + in.shape``; tuples of them otherwise, as in torch."""
    if strategy not in ("reverse-mode", "forward-mode"):
        raise user_error(GcompError, f"jacobian: unknown strategy {strategy!r}")
    from .frontend.creation import zeros_like
    from .frontend.shape_ops import stack

    single_in, xs = _prepare(inputs)
    with enable_grad():
        outs = func(*xs)
        single_out, ys = _tuple(outs, "the function's outputs")
        rows = []
        for y in ys:
            per_input = [[] for _ in xs]
            flat = y.reshape(-1)
            for k in range(flat.shape[0]):
                if not flat.requires_grad:
                    gs = [zeros_like(x) for x in xs]
                    if strict:
                        raise user_error(GcompError, "jacobian: an output does not depend on "
                                         "the inputs (strict=True)")
                else:
                    gs = _grads(flat[k], xs, None, create_graph, strict, "jacobian")
                for i, g in enumerate(gs):
                    per_input[i].append(g)
            rows.append(tuple(
                (stack(gs_i) if gs_i else zeros_like(x).reshape(0, *x.shape))
                .reshape(*y.shape, *x.shape) for gs_i, x in zip(per_input, xs)))
    if single_out and single_in:
        return rows[0][0]
    if single_out:
        return rows[0]
    if single_in:
        return tuple(r[0] for r in rows)
    return tuple(rows)


def hessian(func, inputs, create_graph=False, strict=False, vectorize=False,
            outer_jacobian_strategy="reverse-mode"):
    """The Hessian of a function with one scalar output."""
    single_in, xs = _prepare(inputs)

    def gradient(*args):
        with enable_grad():
            out = func(*args)
            if not isinstance(out, Tensor) or out.numel() != 1:
                raise user_error(GcompError, "hessian: the function must return a tensor with "
                                 "a single element")
            gs = _grads(out, args, None, True, strict, "hessian")
        return gs[0] if single_in else tuple(gs)

    return jacobian(gradient, xs[0] if single_in else xs, create_graph=create_graph,
                    strict=strict)


def vjp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), vᵀ · J)."""
    single_in, xs = _prepare(inputs)
    with enable_grad():
        out = func(*xs)
        single_out, ys = _tuple(out, "the function's outputs")
        if v is None:
            if not all(y.numel() == 1 for y in ys):
                raise user_error(GcompError, "vjp: v can be omitted only for a function with a "
                                 "single-element output")
        vs = None if v is None else _tuple(v, "v")[1]
        gs = _grads(list(ys), xs, list(vs) if vs is not None else None, create_graph, strict,
                    "vjp")
    outs = out.detach() if single_out else tuple(y.detach() for y in ys)
    return outs, (gs[0] if single_in else tuple(gs))


def jvp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), J · v), by differentiating a VJP with respect to its cotangent."""
    from .frontend.creation import zeros_like

    single_in, xs = _prepare(inputs)
    vs = _tuple(v, "v")[1] if v is not None else None
    if vs is None and not all(x.numel() == 1 for x in xs):
        raise user_error(GcompError, "jvp: v can be omitted only for single-element inputs")
    with enable_grad():
        out = func(*xs)
        single_out, ys = _tuple(out, "the function's outputs")
        us = tuple(zeros_like(y).requires_grad_(True) for y in ys)
        g = _grads(list(ys), xs, list(us), True, strict, "jvp")  # uᵀJ, linear in u
        vs = vs if vs is not None else tuple(zeros_like(x) + 1 for x in xs)
        total = sum(((gi * vi).sum() for gi, vi in zip(g, vs)), start=us[0].sum() * 0)
        jv = _grads(total, us, None, create_graph, strict, "jvp")
    outs = out.detach() if single_out else tuple(y.detach() for y in ys)
    return outs, (jv[0] if single_out else tuple(jv))


def vhp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), vᵀ · H) of a scalar function."""
    single_in, xs = _prepare(inputs)
    vs = _tuple(v, "v")[1] if v is not None else tuple(x * 0 + 1 for x in xs)
    with enable_grad():
        out = func(*xs)
        if out.numel() != 1:
            raise user_error(GcompError, "vhp: the function must return a single element")
        g = _grads(out, xs, None, True, strict, "vhp")
        total = sum(((gi * vi).sum() for gi, vi in zip(g, vs)), start=out * 0)
        h = _grads(total, xs, None, create_graph, strict, "vhp")
    return out.detach(), (h[0] if single_in else tuple(h))


hvp = vhp  # the Hessian is symmetric: H·v = vᵀ·H for twice-differentiable functions
