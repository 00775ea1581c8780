"""Convolution and pooling layers against torch: forward, input and parameter gradients eagerly,
the forward inside gcomp.compile (for a subset: compiling is the slow part), state_dict keys,
shapes and dtypes, repr, initialization and errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from nn_parity import check_module, close, npy, randn

import gcomp
import gcomp.nn.functional as GF


def _make(cls, *args, **kwargs):
    return lambda lib: getattr(lib.nn, cls)(*args, **kwargs)


# name: (make, input shape, compiled). Cases share input shapes where they can: each new shape
# or attribute set costs an XLA compile of every op involved.
CONV = {
    "conv1d_stride_dilation_groups": (
        _make("Conv1d", 4, 6, 3, stride=2, padding=1, dilation=2, groups=2, bias=False),
        (2, 4, 9), True),
    "conv1d_same_unbatched": (_make("Conv1d", 4, 3, 4, padding="same", dilation=2), (4, 9),
                              False),
    "conv2d": (_make("Conv2d", 4, 3, 3, padding=1), (2, 4, 7, 6), True),
    "conv2d_stride_dilation_groups": (
        _make("Conv2d", 4, 6, (3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2),
        (2, 4, 7, 6), True),
    "conv2d_same_even_kernel_reflect": (
        _make("Conv2d", 4, 3, (4, 3), padding="same", padding_mode="reflect"), (2, 4, 7, 6),
        False),
    "conv2d_replicate_no_bias": (
        _make("Conv2d", 4, 3, 3, padding=(1, 2), padding_mode="replicate", bias=False),
        (2, 4, 7, 6), False),
    "conv2d_circular_unbatched": (
        _make("Conv2d", 4, 3, 3, stride=2, padding=2, padding_mode="circular"), (4, 7, 6),
        False),
    "conv_transpose2d": (
        _make("ConvTranspose2d", 4, 3, 3, stride=2, padding=1, output_padding=1),
        (2, 4, 7, 6), True),
    "conv_transpose2d_groups_dilation_no_bias": (
        _make("ConvTranspose2d", 4, 6, (3, 2), stride=(2, 3), padding=(3, 1), groups=2,
              dilation=(2, 1), output_padding=(0, 2), bias=False), (2, 4, 7, 6), False),
    "conv_transpose1d_unbatched": (_make("ConvTranspose1d", 4, 3, 3, stride=2), (4, 9), False),
}


@pytest.mark.parametrize("name", list(CONV))
def test_conv_layers(name):
    make, shape, compiled = CONV[name]
    check_module(make, [randn(*shape)], compiled=compiled)


POOL = {
    "maxpool2d": (_make("MaxPool2d", 2), (2, 3, 8, 7), True),
    "maxpool2d_pad_ceil": (_make("MaxPool2d", 3, stride=2, padding=1, ceil_mode=True),
                           (2, 3, 8, 7), True),
    "maxpool2d_dilated_rect_ceil": (
        _make("MaxPool2d", (2, 3), stride=(2, 1), padding=1, dilation=2, ceil_mode=True),
        (2, 3, 8, 7), False),
    "maxpool1d_pad_ceil_unbatched": (
        _make("MaxPool1d", 3, stride=2, padding=1, ceil_mode=True), (3, 10), False),
    "avgpool2d_tiles_floor": (_make("AvgPool2d", 2), (2, 3, 8, 7), True),
    "avgpool2d_pad": (_make("AvgPool2d", 3, stride=2, padding=1), (2, 3, 8, 7), False),
    "avgpool2d_pad_ceil_exclude": (
        _make("AvgPool2d", (3, 2), stride=2, padding=1, ceil_mode=True,
              count_include_pad=False), (2, 3, 8, 7), True),
    "avgpool2d_pad_ceil_include": (
        _make("AvgPool2d", 3, stride=2, padding=1, ceil_mode=True), (2, 3, 8, 7), False),
    "avgpool2d_divisor_unbatched": (
        _make("AvgPool2d", 3, stride=2, padding=1, divisor_override=5), (3, 8, 7), False),
    "avgpool1d": (_make("AvgPool1d", 3, stride=2, padding=1, count_include_pad=False),
                  (2, 3, 10), False),
    "adaptive_global": (_make("AdaptiveAvgPool2d", 1), (2, 3, 8, 7), True),
    "adaptive_divisible": (_make("AdaptiveAvgPool2d", (4, None)), (2, 3, 8, 7), False),
    "adaptive_general": (_make("AdaptiveAvgPool2d", (3, 5)), (2, 3, 8, 7), True),
    "adaptive1d_unbatched": (_make("AdaptiveAvgPool1d", 4), (3, 10), False),
}


@pytest.mark.parametrize("name", list(POOL))
def test_pool_layers(name):
    make, shape, compiled = POOL[name]
    check_module(make, [randn(*shape)], compiled=compiled)


@pytest.mark.parametrize("cls,kwargs,shape", [
    ("MaxPool2d", dict(kernel_size=3, stride=2, padding=1), (2, 3, 8, 7)),
    ("MaxPool2d", dict(kernel_size=2), (3, 8, 7)),
    ("MaxPool1d", dict(kernel_size=3, stride=2, padding=1, dilation=2), (2, 3, 10)),
])
def test_max_pool_return_indices_and_ties(cls, kwargs, shape):
    """Indices as torch's (flat over the spatial dims); windows of equal values (a ReLU's
    zeros) give their gradient to the first maximum, as torch does."""
    x = np.maximum(randn(*shape), 0).astype(np.float32)
    tm = getattr(torch.nn, cls)(return_indices=True, **kwargs)
    gm = getattr(gcomp.nn, cls)(return_indices=True, **kwargs)
    tx, gx = torch.tensor(x, requires_grad=True), gcomp.tensor(x, requires_grad=True)
    (t_out, t_idx), (g_out, g_idx) = tm(tx), gm(gx)
    close(g_out, t_out)
    assert g_idx.dtype == gcomp.int64
    np.testing.assert_array_equal(npy(g_idx), t_idx.numpy())
    cot = randn(*t_out.shape)
    (t_out * torch.tensor(cot)).sum().backward()
    (g_out * gcomp.tensor(cot)).sum().backward()
    close(gx.grad, tx.grad)
    # Without indices (reduce_window and its select_and_scatter_add gradient): the same.
    gx2 = gcomp.tensor(x, requires_grad=True)
    out2 = getattr(gcomp.nn, cls)(**kwargs)(gx2)
    (out2 * gcomp.tensor(cot)).sum().backward()
    close(gx2.grad, tx.grad)
    if len(shape) == 4 and "padding" in kwargs:
        c_out, c_idx = gcomp.compile(lambda a: gm(a))(gcomp.tensor(x))
        close(c_out, t_out)
        np.testing.assert_array_equal(npy(c_idx), t_idx.numpy())


@pytest.mark.parametrize("kwargs", [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1)])
def test_max_pool_gradient_with_nan(kwargs):
    """A NaN is its window's maximum and takes its gradient, as in torch, in the tiled (2x2/2)
    lowering and in XLA's select-and-scatter alike; the other windows are unaffected."""
    x = randn(2, 3, 6, 6)
    x[0, 0, 0, 1] = x[1, 2, 3, 3] = x[1, 1, 4, 4] = np.nan
    x[1, 1, 4, 5] = np.nan  # two NaNs in a window: the first takes it
    tx, gx = torch.tensor(x, requires_grad=True), gcomp.tensor(x, requires_grad=True)
    t_out, g_out = F_max_pool(torch, tx, kwargs), F_max_pool(gcomp, gx, kwargs)
    cot = randn(*t_out.shape) + 2.0
    (t_out * torch.tensor(cot)).sum().backward()
    (g_out * gcomp.tensor(cot)).sum().backward()
    np.testing.assert_array_equal(np.isnan(npy(g_out)), np.isnan(t_out.detach().numpy()))
    close(gx.grad, tx.grad)


def F_max_pool(lib, x, kwargs):
    return lib.nn.functional.max_pool2d(x, **kwargs)


@pytest.mark.parametrize("fn,args,kwargs", [
    ("conv2d", [(2, 4, 7, 6), (3, 4, 3, 3), (3,)], dict(padding=1)),
    ("conv2d", [(2, 4, 7, 6), (6, 2, 3, 3)], dict(padding="same", groups=2, dilation=2)),
    ("conv1d", [(2, 4, 9), (3, 4, 2)], dict(padding="valid")),
    ("conv_transpose2d", [(2, 4, 7, 6), (4, 3, 3, 3), (3,)],
     dict(stride=2, padding=1, output_padding=1)),
    ("max_pool2d", [(2, 3, 8, 7)], dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    ("avg_pool2d", [(2, 3, 8, 7)], dict(kernel_size=3, stride=2, padding=1)),
    ("adaptive_avg_pool2d", [(2, 3, 8, 7)], dict(output_size=(3, 5))),
])
def test_functional(fn, args, kwargs):
    arrays = [randn(*s) for s in args]
    t_in = [torch.tensor(a, requires_grad=True) for a in arrays]
    g_in = [gcomp.tensor(a, requires_grad=True) for a in arrays]
    t_out = getattr(torch.nn.functional, fn)(*t_in, **kwargs)
    g_out = getattr(GF, fn)(*g_in, **kwargs)
    close(g_out, t_out)
    cot = randn(*t_out.shape)
    (t_out * torch.tensor(cot)).sum().backward()
    (g_out * gcomp.tensor(cot)).sum().backward()
    for t, g in zip(t_in, g_in, strict=True):
        close(g.grad, t.grad, (1e-4, 1e-5))


def test_conv_transpose_output_size():
    x = randn(2, 4, 7, 6)
    tm, gm = check_module(_make("ConvTranspose2d", 4, 3, 3, stride=2, padding=1), [x],
                          compiled=False)
    for size in ([14, 11], [2, 3, 13, 12]):
        close(gm(gcomp.tensor(x), output_size=size), tm(torch.tensor(x), output_size=size))
    with pytest.raises(gcomp.GcompError, match="output size"):
        gm(gcomp.tensor(x), output_size=[15, 11])


@pytest.mark.parametrize("make", [
    _make("Conv1d", 3, 4, 3), _make("Conv2d", 4, 6, (3, 2), groups=2, bias=False),
    _make("Conv3d", 2, 3, 2), _make("ConvTranspose2d", 4, 6, 3, groups=2),
    _make("ConvTranspose1d", 3, 5, 2, bias=False), _make("Conv2d", 16, 32, 3),
])
def test_conv_state_dict_and_init(make):
    torch.manual_seed(0)
    tm, gm = make(torch), make(gcomp)
    t_sd, g_sd = tm.state_dict(), gm.state_dict()
    assert list(g_sd) == list(t_sd)
    for k in t_sd:
        assert tuple(g_sd[k].shape) == tuple(t_sd[k].shape), k
        assert g_sd[k].dtype.name == str(t_sd[k].dtype).split(".")[-1], k
    # kaiming_uniform_(a=sqrt(5)) and the bias: uniform(+-1/sqrt(fan_in)), fan_in from dim 1.
    fan_in = tm.weight.shape[1] * math.prod(tm.weight.shape[2:])
    bound = 1 / math.sqrt(fan_in)
    for name, p in gm.named_parameters():
        v = npy(p)
        assert np.abs(v).max() <= bound + 1e-7, name
        assert p.requires_grad
        if v.size > 1000:  # U(-b, b): mean 0, std b/sqrt(3), filling the interval
            assert abs(v.mean()) < 0.05 * bound, name
            assert abs(v.std() - bound / math.sqrt(3)) < 0.05 * bound, name
            assert v.max() - v.min() > 1.9 * bound, name


@pytest.mark.parametrize("make", [
    _make("Conv2d", 3, 4, 3), _make("Conv2d", 4, 6, (3, 2), stride=2, padding=(1, 0),
                                    dilation=2, groups=2, bias=False, padding_mode="circular"),
    _make("Conv2d", 3, 4, 3, padding="same"), _make("Conv1d", 3, 4, 3, padding="valid"),
    _make("ConvTranspose2d", 4, 6, 3, stride=2, padding=1, output_padding=1, groups=2),
    _make("MaxPool2d", 3, stride=2, padding=1, ceil_mode=True), _make("MaxPool1d", 2),
    _make("AvgPool2d", 3, stride=2, padding=1), _make("AvgPool1d", 3, stride=2),
    _make("AdaptiveAvgPool2d", (3, None)), _make("AdaptiveAvgPool1d", 4),
])
def test_repr(make):
    assert repr(make(gcomp)) == repr(make(torch))


@pytest.mark.parametrize("build,match", [
    (lambda: gcomp.nn.Conv2d(3, 4, 3, padding="full"), "padding string"),
    (lambda: gcomp.nn.Conv2d(3, 4, 3, stride=2, padding="same"), "strided"),
    (lambda: gcomp.nn.Conv2d(3, 4, 3, groups=2), "in_channels must be divisible"),
    (lambda: gcomp.nn.Conv2d(4, 3, 3, groups=2), "out_channels must be divisible"),
    (lambda: gcomp.nn.Conv2d(3, 4, 3, padding_mode="mirror"), "padding_mode"),
    (lambda: gcomp.nn.ConvTranspose2d(3, 4, 3, padding_mode="reflect"), "zeros"),
    (lambda: gcomp.nn.Conv2d(3, 4, 3)(gcomp.zeros(2, 5, 6, 6)), "channels"),
    (lambda: gcomp.nn.Conv2d(3, 4, 3)(gcomp.zeros(3, 6)), "3D .unbatched. or 4D"),
    (lambda: gcomp.nn.Conv2d(3, 4, 3)(gcomp.zeros(2, 3, 6, 6, dtype=gcomp.float64)),
     "same dtype"),
    (lambda: gcomp.nn.Conv2d(3, 4, 3, padding=3, padding_mode="reflect")(
        gcomp.zeros(1, 3, 3, 3)), "reflect"),
    (lambda: gcomp.nn.ConvTranspose2d(3, 4, 3, stride=2, output_padding=2)(
        gcomp.zeros(1, 3, 4, 4)), "output padding"),
    (lambda: gcomp.nn.MaxPool2d(2, padding=2)(gcomp.zeros(1, 1, 6, 6)), "at most half"),
    (lambda: gcomp.nn.AvgPool2d(3, padding=2)(gcomp.zeros(1, 1, 6, 6)), "at most half"),
    (lambda: gcomp.nn.MaxPool2d(5)(gcomp.zeros(1, 1, 3, 3)), "too small"),
    (lambda: gcomp.nn.MaxPool2d(2)(gcomp.zeros(3, 3)), "3D or 4D"),
    (lambda: gcomp.nn.AvgPool2d(2, divisor_override=0)(gcomp.zeros(1, 1, 4, 4)), "zero"),
])
def test_errors(build, match):
    with pytest.raises(gcomp.GcompError, match=match):
        build()


def test_small_cnn_compiled_training_step():
    """Conv-BN-ReLU-MaxPool-Conv-AdaptiveAvgPool-Linear: one compiled SGD step leaves the
    parameters and buffers where torch's step does."""
    def make(lib):
        nn = lib.nn
        return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                             nn.MaxPool2d(2), nn.Conv2d(4, 6, 3, stride=2),
                             nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 2))

    torch.manual_seed(0)
    tm, gm = make(torch), make(gcomp)
    gm.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    x = randn(4, 3, 10, 10)
    lr = 0.1

    def torch_step(model, inp):
        loss = model(inp).square().mean()
        loss.backward()
        with torch.no_grad():
            for p in model.parameters():
                p -= lr * p.grad
                p.grad = None
        return loss

    @gcomp.compile
    def gcomp_step(inp):
        loss = gm(inp).square().mean()
        loss.backward()
        with gcomp.no_grad():
            for p in gm.parameters():
                p.sub_(p.grad * lr)
                p.grad = None
        return loss

    for _ in range(2):
        t_loss = torch_step(tm, torch.tensor(x))
        g_loss = gcomp_step(gcomp.tensor(x))
        close(g_loss, t_loss, (1e-5, 1e-6))
    t_sd = tm.state_dict()
    for k, v in gm.state_dict().items():
        close(v, t_sd[k], (1e-4, 1e-5), k)
