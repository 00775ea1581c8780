"""The autodiff and dce passes on hand-written IR: grad requests are expanded into backward code
whose results equal torch's gradients and float64 finite differences."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import gcomp
from gcomp.ir import interpret, parse, verify
from gcomp.passes import run_passes

RNG = np.random.default_rng(3)


def expand(text: str):
    g = parse(text)
    verify(g)
    out = run_passes(g, ["autodiff", "dce"])
    verify(out)
    assert all(n.op != "grad" for n in out.nodes), str(out)
    assert str(parse(str(out))) == str(out)
    return out


def run(graph, *arrays):
    return [np.asarray(a) for a in interpret(graph, *arrays)]


def fd_grad(f, x, eps=1e-6):
    """Central differences of the scalar function f at x (float64)."""
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        d = np.zeros_like(x)
        d[i] = eps
        g[i] = (f(x + d) - f(x - d)) / (2 * eps)
    return g


def torch_grads(fn, *arrays):
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    out = fn(*ts)
    return [g.detach().numpy() for g in torch.autograd.grad(out, ts)]


# ---------------------------------------------------------------------------------------------

SIN_TIMES_X = """
graph @f(%x: f64[3]) {
  %0: f64[3] = sin(%x)
  %1: f64[3] = mul(%0, %x)
  %2: f64[] = reduce_sum(%1) {axes=[0]}
  %3: f64[] = full() {shape=[], value=1.0, dtype=f64}
  %4: f64[3] = grad(%2, %3, %x)
  return %2, %4
}
"""


def test_grad_node_expands_to_correct_gradient():
    g = expand(SIN_TIMES_X)
    x = RNG.standard_normal(3)
    value, dx = run(g, x)
    np.testing.assert_allclose(value, np.sum(np.sin(x) * x), rtol=1e-12)
    np.testing.assert_allclose(dx, np.cos(x) * x + np.sin(x), rtol=1e-12)
    np.testing.assert_allclose(dx, fd_grad(lambda v: np.sum(np.sin(v) * v), x), rtol=1e-7)


def test_seed_scales_the_gradient():
    text = """
graph @f(%x: f64[2,3], %s: f64[2,3]) {
  %0: f64[2,3] = exp(%x)
  %1: f64[2,3] = tanh(%0)
  %2: f64[2,3] = grad(%1, %s, %x)
  return %2
}
"""
    g = expand(text)
    x, s = RNG.standard_normal((2, 3)), RNG.standard_normal((2, 3))
    (dx,) = run(g, x, s)
    (ref,) = torch_grads(lambda t: (torch.tanh(torch.exp(t)) * torch.tensor(s)).sum(), x)
    # where tanh saturates, 1 - tanh(y)**2 cancels: an element of 1e-5 keeps only about 1e-10 of
    # relative precision in either library (the data depend on test order), so also an atol
    np.testing.assert_allclose(dx, ref, rtol=1e-12, atol=1e-12 * np.abs(ref).max())


def test_grad_with_several_outputs_and_inputs():
    text = """
graph @f(%x: f64[4,3], %w: f64[3,2], %b: f64[2]) {
  %0: f64[4,2] = dot_general(%x, %w) {contract=[[1, 0]]}
  %1: f64[1,2] = reshape(%b) {shape=[1, 2]}
  %2: f64[4,2] = broadcast(%1) {shape=[4, 2], dims=[0, 1]}
  %3: f64[4,2] = add(%0, %2)
  %4: f64[4,2] = logistic(%3)
  %5: f64[] = reduce_sum(%4) {axes=[0, 1]}
  %6: f64[4,2] = mul(%3, %3)
  %7: f64[2] = reduce_max(%6) {axes=[0]}
  %8: f64[] = full() {shape=[], value=1.0, dtype=f64}
  %9: f64[2] = full() {shape=[2], value=0.5, dtype=f64}
  %10: f64[4,3], %11: f64[3,2], %12: f64[2] = grad(%5, %7, %8, %9, %x, %w, %b) {outputs=2}
  return %10, %11, %12
}
"""
    g = expand(text)
    x, w, b = RNG.standard_normal((4, 3)), RNG.standard_normal((3, 2)), RNG.standard_normal(2)

    def ref(x, w, b):
        z = x @ w + b
        return torch.sigmoid(z).sum() + 0.5 * (z * z).amax(0).sum()

    got = run(g, x, w, b)
    for a, r in zip(got, torch_grads(ref, x, w, b), strict=True):
        np.testing.assert_allclose(a, r, rtol=1e-12, atol=1e-12)


def test_nested_grad_is_the_second_derivative():
    text = """
graph @f(%x: f64[5]) {
  %0: f64[5] = mul(%x, %x)
  %1: f64[5] = mul(%0, %x)
  %2: f64[5] = sin(%x)
  %3: f64[5] = mul(%1, %2)
  %4: f64[] = reduce_sum(%3) {axes=[0]}
  %5: f64[] = full() {shape=[], value=1.0, dtype=f64}
  %6: f64[5] = grad(%4, %5, %x)
  %7: f64[] = reduce_sum(%6) {axes=[0]}
  %8: f64[5] = grad(%7, %5, %x)
  return %6, %8
}
"""
    g = expand(text)
    x = RNG.standard_normal(5)
    d1, d2 = run(g, x)
    np.testing.assert_allclose(d1, 3 * x ** 2 * np.sin(x) + x ** 3 * np.cos(x), rtol=1e-12)
    expected = 6 * x * np.sin(x) + 6 * x ** 2 * np.cos(x) - x ** 3 * np.sin(x)
    np.testing.assert_allclose(d2, expected, rtol=1e-10)
    np.testing.assert_allclose(
        d2, fd_grad(lambda v: np.sum(3 * v ** 2 * np.sin(v) + v ** 3 * np.cos(v)), x), rtol=1e-6)


def test_nested_grad_mixed_partials():
    # d/dw of (sum(d/dx f(x, w)) * w-independent seed): a Hessian block through matmul and tanh
    text = """
graph @f(%x: f64[3], %w: f64[3,3], %v: f64[3]) {
  %0: f64[3] = dot_general(%w, %x) {contract=[[1, 0]]}
  %1: f64[3] = tanh(%0)
  %2: f64[] = reduce_sum(%1) {axes=[0]}
  %3: f64[] = full() {shape=[], value=1.0, dtype=f64}
  %4: f64[3] = grad(%2, %3, %x)
  %5: f64[3,3] = grad(%4, %v, %w)
  return %5
}
"""
    g = expand(text)
    x, w, v = RNG.standard_normal(3), RNG.standard_normal((3, 3)), RNG.standard_normal(3)

    def hvp(x, w):
        (gx,) = torch.autograd.grad(torch.tanh(w @ x).sum(), x, create_graph=True)
        return (gx * torch.tensor(v)).sum()

    (got,) = run(g, x, w, v)
    np.testing.assert_allclose(got, torch_grads(hvp, x, w)[1], rtol=1e-10, atol=1e-12)


def test_grad_with_respect_to_an_intermediate_value():
    text = """
graph @f(%x: f64[3]) {
  %0: f64[3] = sin(%x)
  %1: f64[3] = mul(%0, %x)
  %2: f64[3] = exp(%1)
  %3: f64[] = reduce_sum(%2) {axes=[0]}
  %4: f64[] = full() {shape=[], value=1.0, dtype=f64}
  %5: f64[3], %6: f64[3] = grad(%3, %4, %0, %1)
  return %5, %6
}
"""
    g = expand(text)
    x = RNG.standard_normal(3)
    d0, d1 = run(g, x)
    np.testing.assert_allclose(d1, np.exp(np.sin(x) * x), rtol=1e-12)
    np.testing.assert_allclose(d0, np.exp(np.sin(x) * x) * x, rtol=1e-12)


def test_grad_of_unused_and_non_differentiable_paths_is_zero():
    text = """
graph @f(%x: f64[4], %u: f64[4]) {
  %0: f64[4] = floor(%x)
  %1: f64[4] = mul(%0, %x)
  %2: f64[] = reduce_sum(%1) {axes=[0]}
  %3: f64[] = full() {shape=[], value=1.0, dtype=f64}
  %4: f64[4], %5: f64[4] = grad(%2, %3, %x, %u)
  return %4, %5
}
"""
    g = expand(text)
    x = RNG.standard_normal(4) * 3
    dx, du = run(g, x, RNG.standard_normal(4))
    np.testing.assert_array_equal(du, np.zeros(4))
    np.testing.assert_allclose(dx, torch_grads(lambda t: (torch.floor(t) * t).sum(), x)[0])


def test_stop_gradient_blocks():
    text = """
graph @f(%x: f64[3]) {
  %0: f64[3] = stop_gradient(%x)
  %1: f64[3] = mul(%0, %x)
  %2: f64[] = reduce_sum(%1) {axes=[0]}
  %3: f64[] = full() {shape=[], value=1.0, dtype=f64}
  %4: f64[3] = grad(%2, %3, %x)
  return %4
}
"""
    x = RNG.standard_normal(3)
    (dx,) = run(expand(text), x)
    np.testing.assert_allclose(dx, x, rtol=1e-12)


def test_grad_of_state_input_as_update():
    # what a compiled training step looks like: the gradient of a state feeds its update
    text = """
graph @step(%x: f32[4], %w: f32[4] state) {
  %0: f32[4] = mul(%x, %w)
  %1: f32[4] = sin(%0)
  %2: f32[] = reduce_sum(%1) {axes=[0]}
  %3: f32[] = full() {shape=[], value=1.0, dtype=f32}
  %4: f32[4] = grad(%2, %3, %w)
  %5: f32[4] = full() {shape=[4], value=0.1, dtype=f32}
  %6: f32[4] = mul(%5, %4)
  %7: f32[4] = sub(%w, %6)
  return %2
  update %w <- %7
}
"""
    g = expand(text)
    assert [s for s, _ in g.updates] == ["w"]
    x, w = RNG.standard_normal(4).astype(np.float32), RNG.standard_normal(4).astype(np.float32)
    loss, new_w = run(g, x, w)
    (dw,) = torch_grads(lambda t: torch.sin(torch.tensor(x) * t).sum(), w)
    np.testing.assert_allclose(new_w, w - 0.1 * dw, rtol=1e-6)
    np.testing.assert_allclose(loss, np.sin(x * w).sum(), rtol=1e-6)


def test_expanded_nodes_keep_source_locations():
    text = """
graph @f(%x: f64[3]) {
  %0: f64[3] = tanh(%x)                          # model.py:3
  %1: f64[] = reduce_sum(%0) {axes=[0]}          # model.py:4
  %2: f64[] = full() {shape=[], value=1.0, dtype=f64}  # train.py:9
  %3: f64[3] = grad(%1, %2, %x)                   # train.py:9
  return %3
}
"""
    g = run_passes(parse(text), ["autodiff"])
    locs = {n.loc for n in g.nodes}
    assert "model.py:3" in locs and "model.py:4" in locs
    assert all(loc is not None for loc in locs)


def test_pass_output_compiles_and_matches_interpreter():
    g = expand(SIN_TIMES_X)
    x = RNG.standard_normal(3)
    compiled = gcomp.ir.compile(g)
    for a, b in zip(compiled(x), run(g, x), strict=True):
        np.testing.assert_allclose(np.asarray(a), b, rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# dce

def test_dce_removes_dead_nodes_and_keeps_state_updates():
    text = """
graph @f(%x: f32[3], %s: f32[3] state, %t: f32[3] state) {
  %0: f32[3] = exp(%x)
  %1: f32[3] = cos(%x)
  %2: f32[3] = add(%s, %1)
  %3: f32[3] = mul(%0, %0)
  %4: f32[3] = neg(%3)
  %5: f32[3] = tanh(%t)
  return %0
  update %s <- %2
}
"""
    g = parse(text)
    out = run_passes(g, ["dce"])
    verify(out)
    assert [n.op for n in out.nodes] == ["exp", "cos", "add"]
    assert [s for s, _ in out.updates] == ["s"]
    x, s, t = (RNG.standard_normal(3).astype(np.float32) for _ in range(3))
    r0, r1 = run(out, x, s, t)
    np.testing.assert_allclose(r0, np.exp(x), rtol=1e-6)
    np.testing.assert_allclose(r1, s + np.cos(x), rtol=1e-6)
    assert len(out.inputs) == 3  # inputs are the signature: never removed


def test_dce_removes_forward_nodes_only_used_by_expanded_backward():
    text = """
graph @f(%x: f64[3]) {
  %0: f64[3] = exp(%x)
  %1: f64[] = reduce_sum(%0) {axes=[0]}
  %2: f64[] = full() {shape=[], value=1.0, dtype=f64}
  %3: f64[3] = grad(%1, %2, %x)
  return %3
}
"""
    g = expand(text)
    assert "reduce_sum" not in g.op_counts()
    x = RNG.standard_normal(3)
    np.testing.assert_allclose(run(g, x)[0], np.exp(x), rtol=1e-12)


@pytest.mark.parametrize("op, ref", [("exp", torch.exp), ("log1p", torch.log1p),
                                     ("sqrt", torch.sqrt), ("rsqrt", torch.rsqrt),
                                     ("erf", torch.erf), ("tan", torch.tan),
                                     ("abs", torch.abs), ("expm1", torch.expm1)])
def test_unary_gradients_through_the_pass(op, ref):
    text = f"""
graph @f(%x: f64[6]) {{
  %0: f64[6] = {op}(%x)
  %1: f64[] = reduce_sum(%0) {{axes=[0]}}
  %2: f64[] = full() {{shape=[], value=1.0, dtype=f64}}
  %3: f64[6] = grad(%1, %2, %x)
  return %3
}}
"""
    x = RNG.uniform(0.2, 1.2, 6)
    (dx,) = run(expand(text), x)
    np.testing.assert_allclose(dx, torch_grads(lambda t: ref(t).sum(), x)[0], rtol=1e-10)


# -- control flow: the backward of a scan is a reverse scan, of a cond a cond ----------------------
RNN_GRAD = """
graph @f(%w: f64[3,3], %h0: f64[2,3], %xs: f64[4,2,3], %ct: f64[4,2,3]) {
  %0: f64[2,3], %1: f64[4,2,3] = scan(%w, %h0, %xs) {length=4, num_consts=1, num_carry=1}
    body(%w: f64[3,3], %h: f64[2,3], %x: f64[2,3]) {
      %0: f64[2,3] = dot_general(%h, %w) {contract=[[1, 0]]}
      %1: f64[2,3] = add(%0, %x)
      %2: f64[2,3] = tanh(%1)
      %3: f64[2,3] = sin(%2)
      return %2, %3
    }
  %2: f64[] = reduce_sum(%0) {axes=[0, 1]}
  %3: f64[] = full() {shape=[], value=1.0, dtype=f64}
  %4: f64[3,3], %5: f64[2,3], %6: f64[4,2,3] = grad(%2, %1, %3, %ct, %w, %h0, %xs) {outputs=2}
  return %2, %4, %5, %6
}
"""


def torch_rnn_loss(w, h, xs, ct):
    ys = []
    for t in range(xs.shape[0]):
        h = torch.tanh(h @ w + xs[t])
        ys.append(torch.sin(h))
    return h.sum() + (torch.stack(ys) * ct).sum()


def test_grad_through_a_scan_is_one_reverse_scan():
    g = expand(RNN_GRAD)
    scans = [n for n in g.nodes if n.op == "scan"]
    # the forward scan was merged into the VJP's residual-saving run of it: it runs once
    assert [n.attrs["reverse"] for n in scans] == [False, True]
    w, h0, xs, ct = (RNG.standard_normal(s) for s in ((3, 3), (2, 3), (4, 2, 3), (4, 2, 3)))
    value, *grads = run(g, w * 0.5, h0, xs, ct)
    tct = torch.tensor(ct)
    refs = torch_grads(lambda *a: torch_rnn_loss(*a, tct), w * 0.5, h0, xs)
    for got, want in zip(grads, refs, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-12)

    def loss(h, with_ys=True):
        total = 0.0
        for x, c in zip(xs, ct, strict=True):
            h = np.tanh(h @ (w * 0.5) + x)
            total += np.sum(np.sin(h) * c)
        return h.sum() + (total if with_ys else 0.0)

    np.testing.assert_allclose(value, loss(h0, with_ys=False), rtol=1e-12)
    np.testing.assert_allclose(grads[1], fd_grad(loss, h0), rtol=1e-6, atol=1e-8)


COND_GRAD = """
graph @f(%p: bool[], %x: f64[3], %y: f64[3]) {
  %0: f64[3] = cond(%p, %x, %y)
    then(%a: f64[3], %b: f64[3]) {
      %0: f64[3] = mul(%a, %b)
      %1: f64[3] = exp(%0)
      return %1
    }
    else(%a: f64[3], %b: f64[3]) {
      %0: f64[3] = sin(%a)
      return %0
    }
  %1: f64[] = reduce_sum(%0) {axes=[0]}
  %2: f64[] = full() {shape=[], value=1.0, dtype=f64}
  %3: f64[3], %4: f64[3] = grad(%1, %2, %x, %y)
  return %3, %4
}
"""


@pytest.mark.parametrize("pred", [True, False])
def test_grad_through_a_cond_is_a_cond_of_the_branch_vjps(pred):
    g = expand(COND_GRAD)
    assert g.op_counts().get("cond") == 1  # the forward cond is dead: the VJP recomputes it
    x, y = RNG.standard_normal(3), RNG.standard_normal(3)
    got = run(g, np.bool_(pred), x, y)
    ref = torch_grads(lambda a, b: (torch.exp(a * b) if pred else torch.sin(a) + 0 * b).sum(), x,
                      y)
    for a, r in zip(got, ref, strict=True):
        np.testing.assert_allclose(a, r, rtol=1e-12, atol=1e-14)


def test_a_grad_request_inside_a_region_is_expanded_there():
    text = """
graph @f(%xs: f64[4,3], %c: f64[3]) {
  %0: f64[3], %1: f64[4,3] = scan(%c, %xs) {length=4, num_consts=0, num_carry=1}
    body(%c: f64[3], %x: f64[3]) {
      %0: f64[3] = mul(%x, %c)
      %1: f64[3] = sin(%0)
      %2: f64[] = reduce_sum(%1) {axes=[0]}
      %3: f64[] = full() {shape=[], value=1.0, dtype=f64}
      %4: f64[3] = grad(%2, %3, %x)
      %5: f64[3] = add(%c, %4)
      return %5, %4
    }
  return %0, %1
}
"""
    g = expand(text)
    assert not g.contains("grad")
    xs, c = RNG.standard_normal((4, 3)), RNG.standard_normal(3)
    last, ys = run(g, xs, c)
    want = []
    for x in xs:
        want.append(np.cos(x * c) * c)
        c = c + want[-1]
    np.testing.assert_allclose(ys, np.stack(want), rtol=1e-12)
    np.testing.assert_allclose(last, c, rtol=1e-12)


def test_dce_prunes_unused_ys_carries_and_operands_of_a_scan():
    text = """
graph @f(%w: f64[3], %v: f64[3], %h: f64[3], %a: f64[3], %xs: f64[5,3]) {
  %0: f64[3], %1: f64[3], %2: f64[5,3], %3: f64[5,3] = scan(%w, %v, %h, %a, %xs) {length=5,
    num_consts=2, num_carry=2}
    body(%w: f64[3], %u: f64[3], %h: f64[3], %acc: f64[3], %x: f64[3]) {
      %0: f64[3] = mul(%h, %w)
      %1: f64[3] = add(%0, %x)
      %2: f64[3] = add(%acc, %1)
      %3: f64[3] = mul(%u, %x)
      return %1, %2, %1, %3
    }
  return %0, %2
}
"""
    g = parse(text)
    args = [RNG.standard_normal(s) for s in ((3,), (3,), (3,), (3,), (5, 3))]
    want = run(g, *args)
    out = run_passes(g, ["dce"])
    verify(out)
    (scan,) = out.nodes
    # the accumulator's final value is unused and no kept result reads it; %u fed a dead y
    assert scan.attrs["num_carry"] == 1 and scan.attrs["num_consts"] == 1
    assert len(scan.outputs) == 2 and len(scan.regions[0].nodes) == 2
    for a, b in zip(run(out, *args), want, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-14)
    assert str(parse(str(out))) == str(out)
