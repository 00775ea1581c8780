"""Mixed precision (passes/precision.py, Note [Mixed precision]): matmuls and convolutions read
bf16 or f16 operands and accumulate in float32; everything else stays float32.

References: numpy float64 on the low-precision-rounded inputs (the ``accumulate`` attribute),
torch float64 autograd (the VJPs of such nodes), the graph before the pass run by the reference
interpreter on rounded inputs (the pass), and the float32 training run of the digits MLP (its
test accuracy, within one point).
"""

from __future__ import annotations

import functools
import inspect
import sys
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest
import torch

import gcomp
from gcomp import nn
from gcomp.data.datasets import Digits
from gcomp.ir import interpret, parse, verify
from gcomp.ir.errors import GcompError, IRParseError
from gcomp.lowering.jit import compile_graph
from gcomp.passes import run_passes
from gcomp.passes.manager import check_options, resolve

sys.path.insert(0, str(Path(__file__).parents[2] / "examples"))
from mlp_classifier import make_model  # noqa: E402

RNG = np.random.default_rng(5)
LOW = {"bf16": ml_dtypes.bfloat16, "f16": np.float16}


def rounded(shape, low: str, scale: float = 1.0) -> np.ndarray:
    """Random float32 values that the low dtype holds exactly."""
    x = (RNG.standard_normal(shape) * scale).astype(np.float32)
    return x.astype(LOW[low]).astype(np.float32)


def run(graph, *arrays):
    return [np.asarray(a) for a in interpret(graph, *arrays)]


# -- the accumulate attribute --------------------------------------------------------------------

# lhs shape, rhs shape, contract, batch (the einsum that computes it in numpy)
DOTS = [
    ((4, 256), (256, 3), [[1, 0]], [], "ik,kj->ij"),
    ((2, 5, 64), (2, 64, 6), [[2, 1]], [[0, 0]], "bik,bkj->bij"),
    ((7, 128), (5, 128), [[1, 1]], [], "ik,jk->ij"),
]


@pytest.mark.parametrize("low", ["bf16", "f16"])
@pytest.mark.parametrize("ls,rs,contract,batch,spec", DOTS, ids=[d[-1] for d in DOTS])
def test_dot_general_accumulates_in_float32(low, ls, rs, contract, batch, spec):
    x, w = rounded(ls, low), rounded(rs, low)
    out_shape = np.einsum(spec, x, w).shape
    shape = lambda s: ",".join(map(str, s))  # noqa: E731
    text = (f"graph @f(%x: {low}[{shape(ls)}], %w: {low}[{shape(rs)}]) {{\n"
            f"  %0: f32[{shape(out_shape)}] = dot_general(%x, %w) {{contract={contract}, "
            f"batch={batch}, accumulate=\"f32\"}}\n"
            f"  %1: {low}[{shape(out_shape)}] = dot_general(%x, %w) {{contract={contract}, "
            f"batch={batch}}}\n  return %0, %1\n}}\n")
    g = parse(text)
    verify(g)
    ref = np.einsum(spec, x.astype(np.float64), w.astype(np.float64))
    scale = np.einsum(spec, np.abs(x).astype(np.float64), np.abs(w).astype(np.float64))
    args = (x.astype(LOW[low]), w.astype(LOW[low]))
    for acc, plain in (run(g, *args), [np.asarray(a) for a in compile_graph(g)(*args)]):
        assert acc.dtype == np.float32 and plain.dtype == LOW[low]
        # products of two bf16/f16 numbers are exact in f32: only the f32 sums round
        np.testing.assert_allclose(acc, ref, rtol=0, atol=float(scale.max()) * 2e-6)
        # the plain low-precision dot rounds its result: many times further off
        plain_err = np.abs(plain.astype(np.float64) - ref).max()
        assert plain_err > 20 * np.abs(acc - ref).max()


def test_convolution_accumulates_in_float32():
    x, w = rounded((2, 3, 9, 9), "bf16"), rounded((4, 3, 3, 3), "bf16")
    g = parse("""graph @f(%x: bf16[2,3,9,9], %w: bf16[4,3,3,3]) {
  %0: f32[2,4,4,5] = convolution(%x, %w) {stride=[2, 2], padding=[[0, 0], [1, 1]], \
lhs_dilation=[1, 1], rhs_dilation=[1, 1], accumulate="f32"}
  return %0
}
""")
    ref = torch.nn.functional.conv2d(torch.tensor(x, dtype=torch.float64),
                                     torch.tensor(w, dtype=torch.float64), stride=2,
                                     padding=(0, 1)).numpy()
    args = (x.astype(ml_dtypes.bfloat16), w.astype(ml_dtypes.bfloat16))
    for (out,) in (run(g, *args), [np.asarray(a) for a in compile_graph(g)(*args)]):
        assert out.dtype == np.float32
        np.testing.assert_allclose(out, ref, rtol=0, atol=np.abs(ref).max() * 2e-6)


@pytest.mark.parametrize("types,acc,why", [
    ("i32[2,2], %w: i32[2,2]", "f32", "cannot accumulate i32"),
    ("f32[2,2], %w: f32[2,2]", "bf16", "cannot accumulate f32 operands in bf16"),
    ("bf16[2,2], %w: bf16[2,2]", "f16", "cannot accumulate bf16 operands in f16"),
    ("bf16[2,2], %w: bf16[2,2]", "i64", "cannot accumulate bf16 operands in i64"),
    ("bf16[2,2], %w: bf16[2,2]", "f33", "unknown dtype 'f33'"),
])
def test_accumulate_must_hold_the_operands(types, acc, why):
    text = (f"graph @f(%x: {types}) {{\n  %0: f32[2,2] = dot_general(%x, %w) "
            f"{{contract=[[1, 0]], accumulate=\"{acc}\"}}\n  return %0\n}}\n")
    with pytest.raises(IRParseError, match=why):
        parse(text)


# -- the VJPs of such nodes ----------------------------------------------------------------------

def _bf16_round(a: np.ndarray) -> np.ndarray:
    return a.astype(ml_dtypes.bfloat16).astype(np.float64)


def _assert_bf16_close(got, ref):
    """``got`` is bf16 and within one bf16 rounding of the float64 ``ref``."""
    assert got.dtype == ml_dtypes.bfloat16
    tol = 2.0 ** -7 * np.abs(ref) + 1e-6 * np.abs(ref).max()
    assert np.all(np.abs(got.astype(np.float64) - ref) <= tol)


def test_dot_general_vjp_with_accumulate():
    g = parse("""graph @f(%x: bf16[3,32], %w: bf16[5,32], %s: f32[3,5]) {
  %0: f32[3,5] = dot_general(%x, %w) {contract=[[1, 1]], accumulate="f32"}
  %1: bf16[3,32], %2: bf16[5,32] = grad(%0, %s, %x, %w)
  return %0, %1, %2
}
""")
    out = run_passes(g, ["autodiff", "dce"])
    verify(out)
    x, w, s = rounded((3, 32), "bf16"), rounded((5, 32), "bf16"), RNG.standard_normal((3, 5))
    _, gx, gw = run(out, x.astype(ml_dtypes.bfloat16), w.astype(ml_dtypes.bfloat16),
                    s.astype(np.float32))
    # torch float64 autograd with the seed rounded to bf16, as the VJP multiplies in bf16
    tx, tw = (torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in (x, w))
    (tx @ tw.T).backward(torch.tensor(_bf16_round(s.astype(np.float32))))
    _assert_bf16_close(gx, tx.grad.numpy())
    _assert_bf16_close(gw, tw.grad.numpy())
    assert sum(n.op == "dot_general" and n.attrs["accumulate"] == "f32" for n in out.nodes) == 3


def test_convolution_vjp_with_accumulate():
    g = parse("""graph @f(%x: bf16[2,3,7,7], %w: bf16[4,3,3,3], %s: f32[2,4,3,3]) {
  %0: f32[2,4,3,3] = convolution(%x, %w) {stride=[2, 2], padding=[[0, 0], [0, 0]], \
lhs_dilation=[1, 1], rhs_dilation=[1, 1], accumulate="f32"}
  %1: bf16[2,3,7,7], %2: bf16[4,3,3,3] = grad(%0, %s, %x, %w)
  return %1, %2
}
""")
    out = run_passes(g, ["autodiff", "dce"])
    verify(out)
    x, w = rounded((2, 3, 7, 7), "bf16"), rounded((4, 3, 3, 3), "bf16")
    s = RNG.standard_normal((2, 4, 3, 3)).astype(np.float32)
    gx, gw = run(out, x.astype(ml_dtypes.bfloat16), w.astype(ml_dtypes.bfloat16), s)
    tx, tw = (torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in (x, w))
    torch.nn.functional.conv2d(tx, tw, stride=2).backward(torch.tensor(_bf16_round(s)))
    _assert_bf16_close(gx, tx.grad.numpy())
    _assert_bf16_close(gw, tw.grad.numpy())
    convs = [n for n in out.nodes if n.op == "convolution"]
    assert len(convs) == 2 and all(n.attrs["accumulate"] == "f32" for n in convs)


# -- the pass ------------------------------------------------------------------------------------

MLP = """graph @f(%x: f32[6,16], %w1: f32[16,32] state, %w2: f32[32,4] state) {
  %0: f32[6,32] = dot_general(%x, %w1) {contract=[[1, 0]]}
  %1: f32[6,32] = tanh(%0)
  %2: f32[6,4] = dot_general(%1, %w2) {contract=[[1, 0]]}
  %3: f32[6] = reduce_sum(%2) {axes=[1]}
  return %3
}
"""


@pytest.mark.parametrize("low", ["bf16", "f16"])
def test_pass_computes_the_graph_on_rounded_operands(low):
    """After the pass, the graph is the graph before it run on operands rounded to ``low``
    (only the contractions' operands are rounded: the tanh's input and output stay f32)."""
    before = parse(MLP)
    after = run_passes(parse(MLP), ["precision"], options={"precision": low})
    x, w1, w2 = (RNG.standard_normal(s).astype(np.float32) for s in ((6, 16), (16, 32), (32, 4)))
    r = lambda a: a.astype(LOW[low]).astype(np.float32)  # noqa: E731
    (got,) = run(after, x, w1, w2)
    # the same rounding by hand: x and w1 rounded, tanh in f32, its result and w2 rounded
    h = np.tanh(r(x).astype(np.float64) @ r(w1)).astype(np.float32)
    ref = (r(h).astype(np.float64) @ r(w2)).sum(axis=1)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)
    (plain,) = run(before, x, w1, w2)
    assert np.abs(plain - got).max() > 1e-4  # the rounding is real
    casts = [n for n in after.nodes if n.op == "cast"]
    assert {n.attrs["dtype"].short for n in casts} == {low} and len(casts) == 4


def test_fuel_bounds_the_rewrites():
    after = run_passes(parse(MLP), ["precision"], fuel=1)
    verify(after)
    dots = [n for n in after.nodes if n.op == "dot_general"]
    assert [n.attrs["accumulate"] for n in dots] == ["f32", ""]


@pytest.mark.parametrize("value,normal", [
    ("bf16", "bf16"), ("bfloat16", "bf16"), (gcomp.bfloat16, "bf16"), ("BF16", "bf16"),
    ("f16", "f16"), ("float16", "f16"), ("fp16", "f16"), (gcomp.float16, "f16"),
    ("f32", None), ("float32", None), (gcomp.float32, None), (None, None),
])
def test_precision_option_names(value, normal):
    options = check_options({"precision": value})
    assert options["precision"] == normal
    names = resolve("default", options)
    if normal is None:  # float32 throughout: the pass is not in the pipeline
        assert "precision" not in names
    else:  # after cse (the whole step is there, merged), before dce
        assert names.index("cse") < names.index("precision") < names.index("dce")


@pytest.mark.parametrize("value", ["int8", "fp8", 16, gcomp.float64, "tf32"])
def test_bad_precision_is_an_error_at_the_compile_line(value):
    line = inspect.currentframe().f_lineno + 2
    with pytest.raises(GcompError) as info:
        gcomp.compile(lambda x: x, precision=value)
    message = str(info.value)
    assert f"{__file__}:{line}" in message
    assert "precision" in message and "'bf16'" in message and "'f16'" in message


def test_compiled_function_without_precision_has_no_casts():
    w = gcomp.randn(8, 4)
    f = gcomp.compile(lambda x: (x @ w).sum())
    text = f.ir(gcomp.randn(3, 8))
    assert "bf16" not in text and "accumulate" not in text
    assert "precision" not in [s.name for s in f.stages(gcomp.randn(3, 8))]


# -- training --------------------------------------------------------------------------------


def _digits_step(precision, seed=0, hidden=128):
    gcomp.manual_seed(seed)
    model = make_model(hidden)
    opt = gcomp.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()

    def step(x, y):
        loss = loss_fn(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    return model, opt, gcomp.compile(step, precision=precision)


def _batches(split, batch: int):
    return gcomp.from_numpy(split.images[:batch]), gcomp.from_numpy(split.labels[:batch])


def test_training_step_ir():
    """The dump shows the casts and the accumulate attribute; each weight is cast once though
    the forward and the backward both read it; everything else is f32."""
    model, opt, step = _digits_step("bf16", hidden=16)
    x, y = _batches(Digits(train=True), 8)
    (stage,) = [s for s in step.stages(x, y) if s.name == "precision"]  # later passes fuse
    g = parse(stage.graph)
    dots = [n for n in g.nodes if n.op == "dot_general"]
    assert len(dots) == 3 + 5  # forward, the input gradients of layers 2 and 3, weight gradients
    for n in dots:
        assert n.attrs["accumulate"] == "f32" and n.outputs[0].dtype == gcomp.float32
        assert all(v.dtype == gcomp.bfloat16 for v in n.inputs)
    weights = [v for v in g.inputs if v.state and v.state.endswith(".weight")]
    for w in weights:
        users = [n for n in g.nodes if w in n.inputs and n.op == "cast"]
        assert len(users) == 1, w.state
        n_reads = sum(users[0].outputs[0] in n.inputs for n in dots)
        assert n_reads == (1 if w.state == "model.1.weight" else 2)  # layer 1: no input grad
    low = [n for n in g.nodes if any(o.dtype == gcomp.bfloat16 for o in n.outputs)]
    assert all(n.op == "cast" for n in low)
    assert all(v.dtype == gcomp.float32 for _, v in g.updates)


def test_master_weights_and_optimizer_state_stay_float32():
    model, opt, step = _digits_step("bf16", hidden=16)
    train = Digits(train=True)
    before = {k: v.detach().numpy().copy() for k, v in model.named_parameters()}
    for i in range(3):
        step(gcomp.from_numpy(train.images[8 * i:8 * i + 8]),
             gcomp.from_numpy(train.labels[8 * i:8 * i + 8]))
    for name, p in model.named_parameters():
        assert p.dtype == gcomp.float32 and p.grad.dtype == gcomp.float32, name
        assert not np.array_equal(p.detach().numpy(), before[name]), name  # it trained
    buffers = [s["momentum_buffer"] for s in opt.state.values()]
    assert len(buffers) == 6 and all(b.dtype == gcomp.float32 for b in buffers)


def test_compiled_module_in_eager_autograd():
    """A compiled module's joint graph (forward + backward, partitioned) runs in bf16 too; the
    gradients eager backward gets are float32 and close to the float32 module's."""
    grads = {}
    x = gcomp.from_numpy(Digits(train=True).images[:16])
    for precision in (None, "bf16"):
        gcomp.manual_seed(1)
        model = make_model(32)
        compiled = gcomp.compile(model, precision=precision)
        compiled(x).square().sum().backward()
        grads[precision] = {k: p.grad.numpy() for k, p in model.named_parameters()}
        if precision:
            assert "accumulate=\"f32\"" in compiled.ir(x)
    for k, g32 in grads[None].items():
        g16 = grads["bf16"][k]
        assert g16.dtype == np.float32
        assert not np.array_equal(g16, g32), k
        np.testing.assert_allclose(g16, g32, rtol=0, atol=0.05 * np.abs(g32).max())


def _lstm_step(precision):
    gcomp.manual_seed(0)
    lstm = nn.LSTM(4, 8, batch_first=True)
    opt = gcomp.optim.SGD(lstm.parameters(), lr=0.5)

    def step(x):
        loss = lstm(x)[0].square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    return gcomp.compile(step, precision=precision)


@pytest.mark.slow  # two LSTM compiles (about 10 s); golden/precision/scan_body is the fast check
def test_lstm_scan_body_in_low_precision():
    """The recurrent matmul inside the scan (forward and backward loops) is rewritten too; the
    losses of a few steps follow the float32 run's."""
    x = gcomp.from_numpy(RNG.standard_normal((2, 5, 4)).astype(np.float32))
    losses = {}
    for precision in (None, "bf16"):
        compiled = _lstm_step(precision)
        losses[precision] = [compiled(x).item() for _ in range(3)]
    (stage,) = [s for s in compiled.stages(x) if s.name == "precision"]
    scans = [n for n in parse(stage.graph).nodes if n.op == "scan"]
    assert len(scans) == 2  # the forward loop and the backward one
    for n in scans:
        (body,) = n.regions
        assert [m.attrs["accumulate"] for m in body.nodes if m.op == "dot_general"] == ["f32"]
    np.testing.assert_allclose(losses["bf16"], losses[None], rtol=1e-2)
    assert losses["bf16"] != losses[None]


@functools.cache
def train_digits(precision, seed=0, epochs=20, batch=32):
    """A compiled training step over the digits train split (the example's model, optimizer and
    loss; shuffled batches from ``seed``); returns the test accuracy and the final weights."""
    model, _, step = _digits_step(precision, seed)
    train, test = Digits(train=True), Digits(train=False)
    rng = np.random.default_rng(seed)
    n = len(train) // batch * batch
    for _ in range(epochs):
        for idx in rng.permutation(len(train))[:n].reshape(-1, batch):
            step(gcomp.from_numpy(train.images[idx]), gcomp.from_numpy(train.labels[idx]))
    with gcomp.no_grad():
        pred = model(gcomp.from_numpy(test.images)).argmax(dim=1).numpy()
    return float((pred == test.labels).mean()), model[-1].weight.detach().numpy().copy()


@pytest.mark.parametrize("precision", ["bf16", "f16"])
def test_digits_accuracy_within_one_point_of_float32(precision):
    acc32, w32 = train_digits(None)
    acc, w = train_digits(precision)
    assert acc32 > 0.95  # the example's float32 run (0.972 with seed 0)
    assert abs(acc - acc32) <= 0.01, (acc, acc32)
    assert not np.array_equal(w, w32)  # it did train in another precision


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("precision", ["bf16", "f16"])
def test_digits_accuracy_other_seeds(precision, seed):
    acc32, _ = train_digits(None, seed)
    acc, _ = train_digits(precision, seed)
    assert abs(acc - acc32) <= 0.01, (acc, acc32)
