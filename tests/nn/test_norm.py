"""BatchNorm, LayerNorm, GroupNorm and RMSNorm against torch: forward, input and parameter
gradients in training and eval modes, running statistics after several training steps (eagerly
and compiled), state_dict keys, shapes and dtypes, repr and errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from nn_parity import check_module, close, npy, randn

import gcomp
import gcomp.nn.functional as GF


def _bn(cls, *args, randomize=True, **kwargs):
    """A batch norm layer; torch's gets random affine parameters and running statistics, which
    check_module then copies into gcomp's."""
    def make(lib):
        m = getattr(lib.nn, cls)(*args, **kwargs)
        if lib is torch and randomize:
            with torch.no_grad():
                for name, t in list(m.named_parameters()) + list(m.named_buffers()):
                    if name == "num_batches_tracked":
                        t.fill_(3)
                    elif name == "running_var":
                        t.uniform_(0.5, 2.0)
                    else:
                        t.uniform_(-1.0, 1.0)
        return m

    return make


def _make(cls, *args, **kwargs):
    return lambda lib: getattr(lib.nn, cls)(*args, **kwargs)


# name: (make, input shape, train, compiled)
NORM = {
    "bn1d_2d_train": (_bn("BatchNorm1d", 4), (6, 4), True, True),
    "bn1d_3d_train_no_affine": (_bn("BatchNorm1d", 4, affine=False), (3, 4, 5), True, False),
    "bn1d_3d_eval": (_bn("BatchNorm1d", 4), (3, 4, 5), False, False),
    "bn1d_momentum_none": (_bn("BatchNorm1d", 4, momentum=None), (6, 4), True, False),
    "bn2d_train": (_bn("BatchNorm2d", 4), (2, 4, 5, 3), True, True),
    "bn2d_eval": (_bn("BatchNorm2d", 4), (2, 4, 5, 3), False, True),
    "bn2d_eval_no_affine": (_bn("BatchNorm2d", 4, affine=False, eps=1e-3), (2, 4, 5, 3), False,
                            False),
    "bn2d_no_running_stats_train": (_bn("BatchNorm2d", 4, track_running_stats=False),
                                    (2, 4, 5, 3), True, False),
    "bn2d_no_running_stats_eval": (_bn("BatchNorm2d", 4, track_running_stats=False),
                                   (2, 4, 5, 3), False, False),
    "layernorm": (_make("LayerNorm", 5), (2, 3, 5), True, True),
    "layernorm_2d_no_bias": (_make("LayerNorm", (3, 5), eps=1e-3, bias=False), (2, 3, 5),
                             True, False),
    "layernorm_no_affine": (_make("LayerNorm", [5], elementwise_affine=False), (2, 3, 5), True,
                            False),
    "groupnorm": (_make("GroupNorm", 2, 4), (2, 4, 5, 3), True, True),
    "groupnorm_one_group_no_affine": (_make("GroupNorm", 1, 4, affine=False), (3, 4, 5), True,
                                      False),
    "groupnorm_per_channel": (_make("GroupNorm", 4, 4, eps=1e-3), (3, 4, 5), True, False),
    "rmsnorm": (_make("RMSNorm", 5), (2, 3, 5), True, False),
    "rmsnorm_2d_eps_no_affine": (_make("RMSNorm", (3, 5), eps=1e-3, elementwise_affine=False),
                                 (2, 3, 5), True, False),
}


def _randomize_affine(tm):
    with torch.no_grad():
        for p in tm.parameters():
            p.uniform_(-1.0, 1.0)


@pytest.mark.parametrize("name", list(NORM))
def test_norm_layers(name):
    make, shape, train, compiled = NORM[name]

    def make_random(lib):  # non-trivial affine parameters for LayerNorm & co. too
        m = make(lib)
        if lib is torch:
            _randomize_affine(m)
        return m

    x = randn(*shape, scale=2.0) + 0.5
    check_module(make_random, [x], train=train, compiled=compiled)


CONFIGS = [
    ("BatchNorm2d", dict(num_features=4), (2, 4, 5, 3)),
    ("BatchNorm1d", dict(num_features=4, momentum=None), (6, 4)),
    ("BatchNorm1d", dict(num_features=4, momentum=0.3, affine=False), (3, 4, 5)),
]


def _buffers_equal(gm, tm):
    t_buf = dict(tm.named_buffers())
    for name, b in gm.named_buffers():
        assert b.dtype.name == str(t_buf[name].dtype).split(".")[-1], name
        close(b, t_buf[name], (1e-5, 1e-6), name)


@pytest.mark.parametrize("cls,kwargs,shape", CONFIGS)
def test_running_statistics(cls, kwargs, shape):
    """Several training-mode forwards update running_mean, running_var (unbiased) and
    num_batches_tracked as torch does; eval mode then normalizes with them."""
    tm, gm = getattr(torch.nn, cls)(**kwargs), getattr(gcomp.nn, cls)(**kwargs)
    for step in range(3):
        x = randn(*shape, scale=1.0 + step) + step
        with torch.no_grad():
            t_out = tm(torch.tensor(x))
        g_out = gm(gcomp.tensor(x))
        close(g_out, t_out)
        _buffers_equal(gm, tm)
    tm.eval()
    gm.eval()
    x = randn(*shape)
    with torch.no_grad():
        close(gm(gcomp.tensor(x)), tm(torch.tensor(x)))
    _buffers_equal(gm, tm)


def test_running_statistics_compiled():
    """A compiled training forward writes the running statistics back into the module's
    buffers; a compiled eval forward reads them."""
    tm, gm = torch.nn.BatchNorm2d(4), gcomp.nn.BatchNorm2d(4)
    train_fwd = gcomp.compile(lambda a: gm(a))
    for step in range(2):
        x = randn(2, 4, 5, 3, scale=1.0 + step) + step
        with torch.no_grad():
            t_out = tm(torch.tensor(x))
        close(train_fwd(gcomp.tensor(x)), t_out)
        _buffers_equal(gm, tm)
    tm.eval()
    gm.eval()
    eval_fwd = gcomp.compile(lambda a: gm(a))
    x = randn(2, 4, 5, 3)
    with torch.no_grad():
        close(eval_fwd(gcomp.tensor(x)), tm(torch.tensor(x)))
    _buffers_equal(gm, tm)


def test_compiled_forward_follows_train_eval_switch():
    gm = gcomp.nn.BatchNorm1d(4)
    fwd = gcomp.compile(lambda a: gm(a))
    x = gcomp.tensor(randn(6, 4) + 3.0)
    fwd(x)
    gm.eval()
    close(fwd(x), gm(x))


def test_cumulative_average_compiled():
    """momentum=None inside gcomp.compile: the factor 1/num_batches_tracked is a traced value."""
    tm = torch.nn.BatchNorm1d(4, momentum=None)
    gm = gcomp.nn.BatchNorm1d(4, momentum=None)
    fwd = gcomp.compile(lambda a: gm(a))
    for step in range(3):
        x = randn(6, 4, scale=1.0 + step) + step
        with torch.no_grad():
            tm(torch.tensor(x))
        fwd(gcomp.tensor(x))
        _buffers_equal(gm, tm)


@pytest.mark.parametrize("make", [
    _make("BatchNorm1d", 4), _make("BatchNorm2d", 4, affine=False),
    _make("BatchNorm2d", 4, track_running_stats=False), _make("BatchNorm3d", 2),
    _make("LayerNorm", (3, 5)), _make("LayerNorm", 5, bias=False),
    _make("LayerNorm", 5, elementwise_affine=False), _make("GroupNorm", 2, 4),
    _make("GroupNorm", 2, 4, affine=False), _make("RMSNorm", 5),
])
def test_state_dict_and_repr(make):
    tm, gm = make(torch), make(gcomp)
    assert repr(gm) == repr(tm)
    t_sd, g_sd = tm.state_dict(), gm.state_dict()
    assert list(g_sd) == list(t_sd)
    for k in t_sd:
        assert tuple(g_sd[k].shape) == tuple(t_sd[k].shape), k
        assert g_sd[k].dtype.name == str(t_sd[k].dtype).split(".")[-1], k
        np.testing.assert_array_equal(npy(g_sd[k]), t_sd[k].numpy(), k)
    assert [n for n, _ in gm.named_parameters()] == [n for n, _ in tm.named_parameters()]
    assert [n for n, _ in gm.named_buffers()] == [n for n, _ in tm.named_buffers()]


def test_reset_running_stats():
    gm = gcomp.nn.BatchNorm1d(4)
    gm(gcomp.tensor(randn(6, 4)))
    gm.reset_parameters()
    assert int(gm.num_batches_tracked) == 0
    np.testing.assert_array_equal(npy(gm.running_mean), np.zeros(4, np.float32))
    np.testing.assert_array_equal(npy(gm.running_var), np.ones(4, np.float32))


@pytest.mark.parametrize("training,with_stats,affine", [
    (True, True, False), (True, False, True), (False, True, True)])
def test_functional_batch_norm(training, with_stats, affine):
    x = randn(6, 4)
    rm, rv = randn(4), np.abs(randn(4)) + 0.5
    w, b = randn(4), randn(4)
    t_stats = [torch.tensor(rm), torch.tensor(rv)] if with_stats else [None, None]
    g_stats = [gcomp.tensor(rm), gcomp.tensor(rv)] if with_stats else [None, None]
    tx, gx = torch.tensor(x, requires_grad=True), gcomp.tensor(x, requires_grad=True)
    t_out = torch.nn.functional.batch_norm(tx, *t_stats, *([torch.tensor(w), torch.tensor(b)]
                                                           if affine else []),
                                           training=training, momentum=0.2, eps=1e-4)
    g_out = GF.batch_norm(gx, *g_stats, *([gcomp.tensor(w), gcomp.tensor(b)] if affine else []),
                          training=training, momentum=0.2, eps=1e-4)
    close(g_out, t_out)
    t_out.sum().backward()
    g_out.sum().backward()
    close(gx.grad, tx.grad, (1e-4, 1e-5))
    for g, t in zip(g_stats, t_stats, strict=True):
        if t is not None:
            close(g, t)


def test_functional_layer_and_group_norm():
    x = randn(2, 4, 3, 5)
    w, b = randn(3, 5), randn(3, 5)
    close(GF.layer_norm(gcomp.tensor(x), [3, 5], gcomp.tensor(w), gcomp.tensor(b), 1e-3),
          torch.nn.functional.layer_norm(torch.tensor(x), [3, 5], torch.tensor(w),
                                         torch.tensor(b), 1e-3))
    close(GF.group_norm(gcomp.tensor(x), 2), torch.nn.functional.group_norm(torch.tensor(x), 2))
    close(GF.rms_norm(gcomp.tensor(x), [5]), torch.nn.functional.rms_norm(torch.tensor(x), [5]))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_layer_norm(dtype):
    """Half inputs are normalized in float32 and the result rounded once, as torch does."""
    x = randn(3, 8, scale=3.0)
    t_out = torch.nn.functional.layer_norm(torch.tensor(x).to(getattr(torch, dtype)), [8])
    g_out = GF.layer_norm(gcomp.tensor(x).to(getattr(gcomp, dtype)), [8])
    assert g_out.dtype.name == dtype
    close(g_out.float(), t_out.float(), (1e-2, 1e-2))


@pytest.mark.parametrize("build,match", [
    (lambda: gcomp.nn.BatchNorm2d(4)(gcomp.zeros(2, 4, 3)), "expected 4D input"),
    (lambda: gcomp.nn.BatchNorm1d(4)(gcomp.zeros(2, 4, 3, 3)), "expected 2D or 3D input"),
    (lambda: gcomp.nn.BatchNorm1d(4)(gcomp.zeros(1, 4)), "more than 1 value per channel"),
    (lambda: gcomp.nn.BatchNorm1d(4)(gcomp.zeros(3, 5)), "running_mean of size"),
    (lambda: GF.batch_norm(gcomp.zeros(3, 4), None, None), "running_mean and running_var"),
    (lambda: gcomp.nn.LayerNorm(5)(gcomp.zeros(2, 4)), "normalized_shape"),
    (lambda: gcomp.nn.GroupNorm(3, 4), "divisible"),
    (lambda: GF.group_norm(gcomp.zeros(2, 4, 3), 3), "divisible"),
])
def test_errors(build, match):
    with pytest.raises(gcomp.GcompError, match=match):
        build()
