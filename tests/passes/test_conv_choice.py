"""The convolution lowering choice: the im2col and kn2row lowerings against lax and torch, the
conv_choice pass, its options, and compiled CNN gradients with each algorithm (Note [Choosing a
convolution algorithm] in gcomp/passes/conv_choice.py, Note [im2col lowering] in
gcomp/lowering/conv.py)."""

from __future__ import annotations

import functools

import jax
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from jax import lax

import gcomp
from gcomp.ir import GcompError, interpret, parse
from gcomp.lowering import rule_for
from gcomp.lowering.conv import im2col_enumerates_taps
from gcomp.passes import run_passes

conv_rule = rule_for("convolution")


def _random_case(rng):
    """A random valid convolution: 1 to 3 spatial dims, strides, paddings (negative too),
    dilations, feature groups or batch groups."""
    nsp = int(rng.integers(1, 4))
    groups = int(rng.choice([1, 1, 2, 3]))
    batch_groups = 1 if groups > 1 else int(rng.choice([1, 1, 2]))
    n = batch_groups * int(rng.integers(1, 3))
    i = int(rng.integers(1, 3))
    o = groups * batch_groups * int(rng.integers(1, 3))
    attrs = {
        "stride": tuple(int(v) for v in rng.integers(1, 3, nsp)),
        "padding": tuple((int(a), int(b)) for a, b in rng.integers(-1, 3, (nsp, 2))),
        "lhs_dilation": tuple(int(v) for v in rng.integers(1, 3, nsp)),
        "rhs_dilation": tuple(int(v) for v in rng.integers(1, 3, nsp)),
        "groups": groups, "batch_groups": batch_groups}
    x = rng.standard_normal((n, i * groups, *rng.integers(3, 8, nsp)))
    w = rng.standard_normal((o, i, *rng.integers(1, 4, nsp)))
    return x, w, attrs


def _lax(x, w, stride, padding, lhs_dilation, rhs_dilation, groups, batch_groups):
    sp = "DHW"[-(x.ndim - 2):]
    return np.asarray(jax.jit(lambda a, b: lax.conv_general_dilated(
        a, b, stride, padding, lhs_dilation, rhs_dilation, (f"NC{sp}", f"OI{sp}", f"NC{sp}"),
        feature_group_count=groups, batch_group_count=batch_groups,
        precision=lax.Precision.HIGHEST))(x, w))


@pytest.mark.parametrize("algorithm", ["im2col", "kn2row"])
@pytest.mark.parametrize("seed", range(2))
def test_lowerings_equal_lax_on_random_convolutions(seed, algorithm):
    rng = np.random.default_rng(seed)
    checked = 0
    while checked < 8:
        x, w, attrs = _random_case(rng)
        try:
            want = _lax(x, w, **attrs)
        except (TypeError, ValueError):  # a padding that leaves no output
            continue
        if 0 in want.shape:
            continue
        got = jax.jit(functools.partial(conv_rule, **attrs, algorithm=algorithm))(x, w)
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-12, atol=1e-12)
        checked += 1


@pytest.mark.parametrize("enumerate_taps", [True, False])
def test_both_ways_of_slicing(enumerate_taps):
    """Kernel taps (a small kernel) and output positions (the weight gradient's shape)."""
    rng = np.random.default_rng(1)
    if enumerate_taps:
        x, w = rng.standard_normal((2, 3, 9, 8)), rng.standard_normal((4, 3, 2, 3))
    else:
        x, w = rng.standard_normal((3, 4, 9, 8)), rng.standard_normal((2, 4, 7, 7))
    attrs = dict(stride=(1, 1), padding=((0, 0), (0, 0)), lhs_dilation=(1, 1),
                 rhs_dilation=(1, 1), groups=1, batch_groups=1)
    want = _lax(x, w, **attrs)
    assert im2col_enumerates_taps(w.shape[2:], want.shape[2:]) == enumerate_taps
    np.testing.assert_allclose(np.asarray(conv_rule(x, w, **attrs, algorithm="im2col")), want,
                               rtol=1e-12, atol=1e-12)


TORCH_CASES = [
    # (dims, x shape, w shape, stride, padding, dilation, groups)
    (2, (2, 3, 11, 9), (4, 3, 3, 3), 1, 0, 1, 1),
    (2, (2, 4, 12, 12), (6, 2, 3, 3), 2, 1, 1, 2),
    (2, (1, 2, 10, 10), (3, 2, 3, 2), (2, 1), (2, 1), 2, 1),
    (2, (2, 6, 8, 8), (6, 1, 3, 3), 1, 1, 1, 6),
    (1, (3, 2, 17), (5, 2, 4), 3, 2, 1, 1),
    (1, (2, 4, 20), (4, 2, 3), 1, 0, 3, 2),
]


@pytest.mark.parametrize("algorithm", ["xla", "im2col", "kn2row"])
@pytest.mark.parametrize("case", TORCH_CASES, ids=[f"{c[0]}d-{i}" for i, c in
                                                    enumerate(TORCH_CASES)])
def test_compiled_conv_matches_torch_float64(case, algorithm):
    dims, xs, ws, stride, padding, dilation, groups = case
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal(xs), rng.standard_normal(ws)
    tf = F.conv2d if dims == 2 else F.conv1d
    gf = gcomp.nn.functional.conv2d if dims == 2 else gcomp.nn.functional.conv1d
    want = tf(torch.tensor(x), torch.tensor(w), stride=stride, padding=padding,
              dilation=dilation, groups=groups).numpy()
    f = gcomp.compile(lambda a, b: gf(a, b, stride=stride, padding=padding, dilation=dilation,
                                      groups=groups), options={"conv": algorithm})
    a, b = gcomp.tensor(x), gcomp.tensor(w)
    np.testing.assert_allclose(f(a, b).numpy(), want, rtol=1e-10, atol=1e-10)
    text = f.ir(a, b)
    assert (f'algorithm="{algorithm}"' in text) == (algorithm != "xla")


class SmallCNN(gcomp.nn.Module):
    def __init__(self):
        super().__init__()
        nn = gcomp.nn
        self.c1 = nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.c2 = nn.Conv2d(4, 6, 3, groups=2)
        self.fc = nn.Linear(6 * 3 * 3, 5)

    def forward(self, x):
        x = gcomp.relu(self.c1(x))
        x = gcomp.relu(self.c2(x))
        return self.fc(x.reshape(x.shape[0], -1))


def _grads(model, x, y):
    for p in model.parameters():
        p.grad = None
    loss = gcomp.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    return [loss] + [p.grad for p in model.parameters()]


@pytest.mark.parametrize("algorithm", ["xla", "im2col", "kn2row", "auto"])
def test_compiled_cnn_gradients_equal_eager(algorithm):
    gcomp.manual_seed(0)
    model = SmallCNN()
    rng = np.random.default_rng(3)
    x = gcomp.tensor(rng.standard_normal((4, 3, 9, 9)).astype(np.float32))
    y = gcomp.tensor(rng.integers(0, 5, 4))
    eager = [t.detach().numpy() for t in _grads(model, x, y)]
    step = gcomp.compile(lambda x, y: _grads(model, x, y), options={"conv": algorithm})
    compiled = [t.detach().numpy() for t in step(x, y)]
    for a, b in zip(compiled, eager, strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)
    text = step.ir(x, y)
    n_conv = text.count("= convolution(")
    assert n_conv == 5  # two forward, one input gradient (c1's input needs none), two weight
    if algorithm in ("im2col", "kn2row"):
        assert text.count(f'algorithm="{algorithm}"') == n_conv


def _graph(conv_line: str, inputs: str) -> str:
    return f"graph @f({inputs}) {{\n  {conv_line}\n  return %0\n}}\n"


FIRST_LAYER = _graph("%0: f32[32,6,28,28] = convolution(%x, %w) {stride=[1, 1], "
                     "padding=[[0, 0], [0, 0]], lhs_dilation=[1, 1], rhs_dilation=[1, 1]}",
                     "%x: f32[32,3,32,32], %w: f32[6,3,5,5]")


def _choice(text: str, **options) -> str:
    g = run_passes(parse(text), ["conv_choice"], options=options)
    (node,) = [n for n in g.nodes if n.op == "convolution"]
    return node.attrs["algorithm"]


def test_auto_on_cpu_picks_im2col_for_a_three_channel_first_layer():
    assert _choice(FIRST_LAYER) == "im2col"
    assert _choice(FIRST_LAYER, conv_backend="cpu") == "im2col"


def test_auto_on_cpu_picks_kn2row_for_the_input_gradient_of_a_narrow_layer():
    """The CNN's second layer (6 -> 16 channels, 5x5): its input gradient is a convolution of the
    16-channel cotangent, padded by 4, down to 6 channels."""
    text = _graph("%0: f32[32,6,14,14] = convolution(%g, %w) {stride=[1, 1], padding=[[4, 4], "
                  "[4, 4]], lhs_dilation=[1, 1], rhs_dilation=[1, 1]}",
                  "%g: f32[32,16,10,10], %w: f32[6,16,5,5]")
    assert _choice(text) == "kn2row"


@pytest.mark.parametrize("backend", ["gpu", "tpu", "cuda"])
def test_auto_off_cpu_keeps_xla(backend):
    assert _choice(FIRST_LAYER, conv_backend=backend) == "xla"


def test_forced_choices():
    assert _choice(FIRST_LAYER, conv="xla") == "xla"
    assert _choice(FIRST_LAYER, conv="im2col", conv_backend="gpu") == "im2col"
    assert _choice(FIRST_LAYER, conv="kn2row") == "kn2row"
    both = _graph("%0: f32[2,4,4,4] = convolution(%x, %w) {stride=[1, 1], padding=[[0, 0], "
                  "[0, 0]], lhs_dilation=[1, 1], rhs_dilation=[1, 1], groups=2, batch_groups=2}",
                  "%x: f32[4,4,6,6], %w: f32[4,2,3,3]")
    assert _choice(both, conv="im2col") == "xla"  # im2col does not apply: stays XLA's
    assert _choice(both, conv="kn2row") == "xla"


def test_option_adds_the_pass_and_the_interpreter_honours_the_choice():
    """``conv="im2col"`` puts conv_choice into a pipeline without it; the graph it makes
    computes what the graph before it does (reference interpreter)."""
    before = parse(FIRST_LAYER)
    after = run_passes(parse(FIRST_LAYER), ["cse"], options={"conv": "im2col"})
    assert 'algorithm="im2col"' in str(after)
    rng = np.random.default_rng(4)
    args = (rng.standard_normal((32, 3, 32, 32)).astype(np.float32),
            rng.standard_normal((6, 3, 5, 5)).astype(np.float32))
    np.testing.assert_allclose(np.asarray(interpret(after, *args)[0]),
                               np.asarray(interpret(before, *args)[0]), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("options, message", [
    ({"conv": "fast"}, "conv='fast'.*'auto', 'xla', 'im2col', 'kn2row'"),
    ({"conv": 1}, "conv=1"),
    ({"conv_backend": ""}, "conv_backend"),
    ({"conv_backend": 3}, "conv_backend=3"),
])
def test_bad_option_values(options, message):
    with pytest.raises(GcompError, match=message):
        gcomp.compile(lambda x: x, options=options)
    with pytest.raises(GcompError, match=message):
        run_passes(parse(FIRST_LAYER), ["conv_choice"], options=options)


def test_bad_algorithm_attribute_in_ir_text():
    text = FIRST_LAYER.replace("rhs_dilation=[1, 1]}", 'rhs_dilation=[1, 1], algorithm="fft"}')
    with pytest.raises(GcompError, match="algorithm must be one of xla, im2col, kn2row"):
        parse(text)


def test_each_change_takes_fuel():
    text = ("graph @f(%x: f32[32,3,32,32], %w: f32[6,3,5,5]) {\n"
            + "".join(f"  %{i}: f32[32,6,28,28] = convolution(%x, %w) {{stride=[1, 1], "
                      f"padding=[[0, 0], [0, 0]], lhs_dilation=[1, 1], rhs_dilation=[1, 1]}}\n"
                      for i in range(3))
            + "  return %0, %1, %2\n}\n")
    g = run_passes(parse(text), ["conv_choice"], fuel=2)
    assert [n.attrs["algorithm"] for n in g.nodes] == ["im2col", "im2col", "xla"]


@pytest.mark.parametrize("algorithm", ["xla", "im2col", "kn2row"])
def test_low_precision_operands_accumulate_in_float32(algorithm):
    """bf16 operands with ``accumulate="f32"`` (mixed precision): an f32 result equal to the
    float64 convolution of the same bf16 values."""
    import ml_dtypes

    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 3, 9, 9)).astype(ml_dtypes.bfloat16)
    w = rng.standard_normal((5, 3, 3, 3)).astype(ml_dtypes.bfloat16)
    attrs = dict(stride=(1, 1), padding=((1, 1), (1, 1)), lhs_dilation=(1, 1),
                 rhs_dilation=(1, 1), groups=1, batch_groups=1)
    want = _lax(x.astype(np.float64), w.astype(np.float64), **attrs)
    got = np.asarray(conv_rule(x, w, **attrs, accumulate="f32", algorithm=algorithm))
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
