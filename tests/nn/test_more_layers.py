"""Distances, resampling, padding, pixel shuffle, shrinkage, embedding bags, instance and
local response norm, adaptive max pooling, fold/unfold, margin losses and random activations
against torch: values and gradients in float64 eagerly, modules' reprs and state_dicts, and
several ops inside one gcomp.compile each."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from nn_parity import close, ints, npy, randn, uniform

import gcomp
import gcomp.nn.functional as GF

F64 = (1e-10, 1e-12)


def _pm1(*shape):
    return C(np.where(np.random.default_rng(1).random(shape) < 0.5, -1.0, 1.0))


class C:
    """An input that gets no gradient (a target)."""

    def __init__(self, a):
        self.a = np.asarray(a)


X4 = randn(2, 3, 5, 4)
IMG = randn(2, 8, 4, 6)

# name: (function name, arrays, kwargs); float arrays get gradients.
FUNCTIONAL = {
    "normalize": ("normalize", [randn(3, 4)], {}),
    "normalize_p1_dim0": ("normalize", [randn(3, 4)], dict(p=1, dim=0)),
    "cosine_similarity": ("cosine_similarity", [randn(3, 5), randn(3, 5)], {}),
    "cosine_similarity_bcast": ("cosine_similarity", [randn(2, 4, 3), randn(4, 3)],
                                dict(dim=-1)),
    "pairwise_distance": ("pairwise_distance", [randn(4, 5), randn(4, 5)], {}),
    "pairwise_distance_p1_keep": ("pairwise_distance", [randn(4, 5), randn(5)],
                                  dict(p=1.0, keepdim=True)),
    "nearest_scale2": ("interpolate", [X4], dict(scale_factor=2)),
    "nearest_size": ("interpolate", [X4], dict(size=(7, 3))),
    "nearest_scale_odd": ("interpolate", [X4], dict(scale_factor=1.7)),
    "nearest_exact": ("interpolate", [X4], dict(size=(8, 9), mode="nearest-exact")),
    "nearest_1d": ("interpolate", [randn(2, 3, 5)], dict(scale_factor=2.5)),
    "nearest_3d": ("interpolate", [randn(1, 2, 3, 2, 4)], dict(size=(4, 3, 5))),
    "linear": ("interpolate", [randn(2, 3, 5)], dict(size=8, mode="linear")),
    "linear_ac": ("interpolate", [randn(2, 3, 5)],
                  dict(size=8, mode="linear", align_corners=True)),
    "bilinear": ("interpolate", [X4], dict(scale_factor=1.5, mode="bilinear")),
    "bilinear_down": ("interpolate", [X4], dict(size=(3, 3), mode="bilinear")),
    "bilinear_ac": ("interpolate", [X4], dict(size=(7, 6), mode="bilinear",
                                              align_corners=True)),
    "bilinear_recompute": ("interpolate", [X4], dict(scale_factor=1.3, mode="bilinear",
                                                     recompute_scale_factor=True)),
    "bicubic": ("interpolate", [X4], dict(size=(9, 7), mode="bicubic")),
    "bicubic_ac": ("interpolate", [X4], dict(scale_factor=2, mode="bicubic",
                                             align_corners=True)),
    "trilinear": ("interpolate", [randn(1, 2, 3, 2, 4)], dict(scale_factor=2,
                                                             mode="trilinear")),
    "area": ("interpolate", [X4], dict(size=(2, 3), mode="area")),
    "pixel_shuffle": ("pixel_shuffle", [IMG], dict(upscale_factor=2)),
    "pixel_unshuffle": ("pixel_unshuffle", [IMG], dict(downscale_factor=2)),
    "softshrink": ("softshrink", [randn(4, 5)], dict(lambd=0.3)),
    "hardshrink": ("hardshrink", [randn(4, 5)], {}),
    "instance_norm": ("instance_norm", [randn(2, 3, 5)], {}),
    "instance_norm_affine": ("instance_norm", [randn(2, 3, 4, 3), None, None, randn(3),
                                               randn(3)], {}),
    "local_response_norm": ("local_response_norm", [randn(2, 5, 3, 2)], dict(size=3)),
    "local_response_norm_3d": ("local_response_norm", [randn(2, 6, 4)],
                               dict(size=4, alpha=0.1, beta=0.5, k=2.0)),
    "adaptive_max_pool1d": ("adaptive_max_pool1d", [randn(2, 3, 7)], dict(output_size=3)),
    "adaptive_max_pool2d": ("adaptive_max_pool2d", [randn(2, 3, 7, 5)],
                            dict(output_size=(3, 2))),
    "adaptive_max_pool2d_none": ("adaptive_max_pool2d", [randn(3, 6, 5)],
                                 dict(output_size=(4, None))),
    "unfold": ("unfold", [randn(2, 3, 5, 6)], dict(kernel_size=(2, 3))),
    "unfold_args": ("unfold", [randn(2, 2, 6, 5)], dict(kernel_size=2, dilation=(1, 2),
                                                        padding=1, stride=(2, 1))),
    "fold": ("fold", [randn(2, 12, 12)], dict(output_size=(4, 5), kernel_size=2)),
    "fold_args": ("fold", [randn(2, 8, 20)], dict(output_size=(6, 5), kernel_size=2,
                                                 dilation=(1, 2), padding=1, stride=(2, 1))),
    "margin_ranking": ("margin_ranking_loss", [randn(6), randn(6), _pm1(6)], dict(margin=0.2)),
    "triplet": ("triplet_margin_loss", [randn(4, 5), randn(4, 5), randn(4, 5)], {}),
    "triplet_swap": ("triplet_margin_loss", [randn(4, 5), randn(4, 5), randn(4, 5)],
                     dict(swap=True, p=1.0, margin=0.5, reduction="none")),
    "hinge_embedding": ("hinge_embedding_loss", [randn(3, 4), _pm1(3, 4)], dict(margin=0.5)),
    "soft_margin": ("soft_margin_loss", [randn(3, 4), _pm1(3, 4)], dict(reduction="sum")),
    "multilabel_soft_margin": ("multilabel_soft_margin_loss", [randn(3, 4),
                                                               C((_pm1(3, 4).a > 0) * 1.0)], {}),
    "multilabel_soft_margin_w": ("multilabel_soft_margin_loss",
                                 [randn(3, 4), C(uniform(3, 4)), C(uniform(4))],
                                 dict(reduction="none")),
    "multilabel_margin": ("multilabel_margin_loss",
                          [randn(3, 4), np.array([[3, 0, -1, 1], [0, 1, 2, 3], [1, -1, 0, 0]])],
                          {}),
    "multi_margin": ("multi_margin_loss", [randn(5, 4), ints(5, high=4)], {}),
    "multi_margin_p2_w": ("multi_margin_loss", [randn(5, 4), ints(5, high=4)],
                          dict(p=2, margin=0.7, weight=C(uniform(4)), reduction="sum")),
    "poisson_nll": ("poisson_nll_loss", [randn(3, 4), C(uniform(3, 4, high=3.0))], {}),
    "poisson_nll_full": ("poisson_nll_loss", [uniform(3, 4, low=0.1), C(uniform(3, 4, high=4.0))],
                         dict(log_input=False, full=True, reduction="none")),
    "gaussian_nll": ("gaussian_nll_loss", [randn(3, 4), randn(3, 4), uniform(3, 4, low=0.1)],
                     {}),
    "gaussian_nll_var_bcast": ("gaussian_nll_loss", [randn(3, 4), randn(3, 4),
                                                     uniform(3, low=0.1)],
                               dict(full=True, reduction="sum")),
    "cosine_embedding": ("cosine_embedding_loss", [randn(4, 5), randn(4, 5), _pm1(4)],
                         dict(margin=0.1)),
    "rrelu_eval": ("rrelu", [randn(3, 4)], {}),
    "lp_pool2d": ("lp_pool2d", [uniform(2, 3, 5, 4, low=0.1)], dict(norm_type=2, kernel_size=2)),
    "lp_pool1d": ("lp_pool1d", [uniform(2, 3, 7, low=0.1)], dict(norm_type=3, kernel_size=3,
                                                                 stride=2, ceil_mode=True)),
    "channel_shuffle": ("channel_shuffle", [IMG], dict(groups=4)),
    "adaptive_max_pool3d": ("adaptive_max_pool3d", [randn(1, 2, 5, 3, 4)],
                            dict(output_size=(2, 3, 3))),
    "triplet_with_distance": ("triplet_margin_with_distance_loss",
                              [randn(4, 5), randn(4, 5), randn(4, 5)], dict(swap=True)),
    "affine_grid": ("affine_grid", [randn(2, 2, 3)], dict(size=(2, 3, 3, 6),
                                                          align_corners=False)),
    "affine_grid_3d_ac": ("affine_grid", [randn(1, 3, 4)], dict(size=(1, 1, 2, 3, 4),
                                                                align_corners=True)),
    "grid_sample": ("grid_sample", [X4, uniform(2, 3, 4, 2, low=-1.2, high=1.2)],
                    dict(align_corners=False)),
    "grid_sample_border_ac": ("grid_sample", [X4, uniform(2, 3, 4, 2, low=-1.2, high=1.2)],
                              dict(padding_mode="border", align_corners=True)),
    "grid_sample_nearest": ("grid_sample", [X4, C(uniform(2, 3, 4, 2, low=-1.2, high=1.2))],
                            dict(mode="nearest", align_corners=False)),
    "embedding_bag_2d_mean": ("embedding_bag", [ints(3, 4, high=6), randn(6, 3)], {}),
    "embedding_bag_2d_max_pad": ("embedding_bag", [np.array([[1, 2, 1], [0, 0, 3]]),
                                                   randn(6, 3)],
                                 dict(mode="max", padding_idx=0)),
    "embedding_bag_offsets_sum": ("embedding_bag", [ints(7, high=6), randn(6, 3),
                                                    np.array([0, 2, 2, 5])],
                                  dict(mode="sum", per_sample_weights=C(uniform(7)))),
    "embedding_bag_offsets_mean_pad": ("embedding_bag", [np.array([1, 0, 2, 0, 0, 4, 5]),
                                                         randn(6, 3), np.array([0, 3, 4, 7])],
                                       dict(padding_idx=0, include_last_offset=True)),
    "embedding_bag_offsets_max": ("embedding_bag", [ints(7, high=6), randn(6, 3),
                                                    np.array([0, 1, 1, 4])], dict(mode="max")),
}


def _case_inputs(case, lib):
    """(positional inputs, keyword inputs, indices of the inputs that get gradients)."""
    name, arrays, kwargs = FUNCTIONAL[case]
    ins, diff = [], []
    for a in arrays:
        if a is None:
            ins.append(None)
            continue
        rg = not isinstance(a, C) and np.asarray(a).dtype.kind == "f"
        a = a.a if isinstance(a, C) else np.asarray(a)
        if rg:
            diff.append(len(ins))
        ins.append(lib.tensor(a.astype(np.float64) if a.dtype.kind == "f" else a,
                              requires_grad=rg))
    kw = {k: lib.tensor(v.a.astype(np.float64)) if isinstance(v, C) else v
          for k, v in kwargs.items()}
    return ins, kw, diff


def _torch_reference(case):
    """torch's output and gradients of sum(output * cotangent), and the cotangent."""
    name = FUNCTIONAL[case][0]
    ins, kw, diff = _case_inputs(case, torch)
    out = getattr(TF, name)(*ins, **kw)
    cot = np.random.default_rng(2).standard_normal(tuple(out.shape))
    grads = torch.autograd.grad((out * torch.tensor(cot)).sum(), [ins[i] for i in diff])
    return out, grads, cot


def _gcomp_case(case, ins, kw, diff, cot):
    out = getattr(GF, FUNCTIONAL[case][0])(*ins, **kw)
    grads = gcomp.autograd.grad((out * cot).sum(), [ins[i] for i in diff])
    return out, list(grads)


# Eagerly (float64), the cases with the most code of their own: the compiled test below covers
# every case, and test_module_matches_torch runs each family's forward eagerly.
EAGER = ["bicubic", "instance_norm_affine", "adaptive_max_pool2d",
         "fold_args", "multilabel_margin", "embedding_bag_offsets_mean_pad", "grid_sample"]


@pytest.mark.parametrize("case", EAGER)
def test_functional_eager_matches_torch(case):
    t_out, t_grads, cot = _torch_reference(case)
    ins, kw, diff = _case_inputs(case, gcomp)
    g_out, g_grads = _gcomp_case(case, ins, kw, diff, gcomp.tensor(cot))
    close(g_out, t_out, F64, "forward")
    for i, (g, t) in enumerate(zip(g_grads, t_grads, strict=True)):
        close(g, t, F64, f"grad of input {diff[i]}")


GROUPS = 4


@pytest.mark.parametrize("group", range(GROUPS))
def test_functional_compiled_matches_torch(group):
    """A quarter of the FUNCTIONAL cases, values and gradients, inside one gcomp.compile
    (float64): one gradient request for the sum of all their losses."""
    cases = list(FUNCTIONAL)[group::GROUPS]
    refs = {case: _torch_reference(case) for case in cases}
    args = {case: _case_inputs(case, gcomp) for case in cases}
    cots = {case: gcomp.tensor(refs[case][2]) for case in cases}

    def run(ins, cots):
        outs, total, wrt = {}, 0.0, []
        for case in cases:
            out = getattr(GF, FUNCTIONAL[case][0])(*ins[case], **args[case][1])
            outs[case] = out
            total = total + (out * cots[case]).sum()
            wrt += [ins[case][i] for i in args[case][2]]
        return outs, list(gcomp.autograd.grad(total, wrt))

    outs, grads = gcomp.compile(run)({case: args[case][0] for case in cases}, cots)
    grads = iter(grads)
    for case in cases:
        t_out, t_grads, _ = refs[case]
        close(outs[case], t_out, F64, f"{case} forward")
        for i, t in zip(args[case][2], t_grads, strict=True):
            close(next(grads), t, F64, f"{case} grad of input {i}")


def _module_inputs(arrays, lib, dtype=np.float32):
    out = []
    for a in arrays:
        a = np.asarray(a)
        out.append(lib.tensor(a.astype(dtype) if a.dtype.kind == "f" else a))
    return out


# name: (builder taking the library, input arrays). Compared eagerly: repr, state_dict names,
# forward; the compiled forward is checked for all of them in test_modules_compiled.
MODULES = {
    "zero_pad2d": (lambda lib: lib.nn.ZeroPad2d((1, 0, 2, 1)), [X4]),
    "zero_pad1d": (lambda lib: lib.nn.ZeroPad1d(2), [randn(2, 3)]),
    "constant_pad3d": (lambda lib: lib.nn.ConstantPad3d(1, 2.5), [randn(1, 2, 2, 3)]),
    "constant_pad1d": (lambda lib: lib.nn.ConstantPad1d((2, 1), -1.0), [randn(2, 3)]),
    "reflection_pad1d": (lambda lib: lib.nn.ReflectionPad1d((2, 1)), [randn(2, 3, 4)]),
    "reflection_pad2d": (lambda lib: lib.nn.ReflectionPad2d(2), [X4]),
    "replication_pad1d": (lambda lib: lib.nn.ReplicationPad1d(3), [randn(2, 3, 4)]),
    "replication_pad2d": (lambda lib: lib.nn.ReplicationPad2d((1, 2, 0, 3)), [X4]),
    "circular_pad2d": (lambda lib: lib.nn.CircularPad2d(1), [X4]),
    "pixel_shuffle": (lambda lib: lib.nn.PixelShuffle(2), [IMG]),
    "pixel_unshuffle": (lambda lib: lib.nn.PixelUnshuffle(2), [IMG]),
    "upsample": (lambda lib: lib.nn.Upsample(scale_factor=2), [X4]),
    "upsample_bilinear": (lambda lib: lib.nn.Upsample(size=(10, 8), mode="bilinear"), [X4]),
    "upsampling_nearest2d": (lambda lib: lib.nn.UpsamplingNearest2d(size=(3, 9)), [X4]),
    "upsampling_bilinear2d": (lambda lib: lib.nn.UpsamplingBilinear2d(scale_factor=2), [X4]),
    "softshrink": (lambda lib: lib.nn.Softshrink(0.2), [X4]),
    "hardshrink": (lambda lib: lib.nn.Hardshrink(), [X4]),
    "softmax2d": (lambda lib: lib.nn.Softmax2d(), [X4]),
    "cosine_similarity": (lambda lib: lib.nn.CosineSimilarity(dim=0), [randn(3, 4),
                                                                      randn(3, 4)]),
    "pairwise_distance": (lambda lib: lib.nn.PairwiseDistance(p=3.0, keepdim=True),
                          [randn(3, 4), randn(3, 4)]),
    "instance_norm1d": (lambda lib: lib.nn.InstanceNorm1d(3), [randn(2, 3, 5)]),
    "instance_norm2d_affine": (lambda lib: lib.nn.InstanceNorm2d(3, affine=True), [X4]),
    "instance_norm2d_unbatched": (lambda lib: lib.nn.InstanceNorm2d(3), [randn(3, 4, 4)]),
    "instance_norm3d_stats": (lambda lib: lib.nn.InstanceNorm3d(2, track_running_stats=True),
                              [randn(2, 2, 3, 2, 3)]),
    "local_response_norm": (lambda lib: lib.nn.LocalResponseNorm(2), [X4]),
    "adaptive_max_pool1d": (lambda lib: lib.nn.AdaptiveMaxPool1d(4), [randn(2, 3, 9)]),
    "adaptive_max_pool2d": (lambda lib: lib.nn.AdaptiveMaxPool2d((3, None)), [X4]),
    "fold": (lambda lib: lib.nn.Fold((4, 5), 2), [randn(2, 12, 12)]),
    "unfold": (lambda lib: lib.nn.Unfold(2, padding=1), [X4]),
    "embedding_bag": (lambda lib: lib.nn.EmbeddingBag(6, 3, mode="sum", padding_idx=2),
                      [ints(7, high=6), np.array([0, 3, 3])]),
    "rrelu_eval": (lambda lib: lib.nn.RReLU(0.1, 0.3).eval(), [X4]),
    "alpha_dropout_eval": (lambda lib: lib.nn.AlphaDropout(0.2).eval(), [X4]),
    "feature_alpha_dropout_eval": (lambda lib: lib.nn.FeatureAlphaDropout(0.2).eval(), [X4]),
    "margin_ranking_loss": (lambda lib: lib.nn.MarginRankingLoss(0.1),
                            [randn(5), randn(5), _pm1(5).a]),
    "triplet_margin_loss": (lambda lib: lib.nn.TripletMarginLoss(swap=True),
                            [randn(3, 4), randn(3, 4), randn(3, 4)]),
    "hinge_embedding_loss": (lambda lib: lib.nn.HingeEmbeddingLoss(reduction="sum"),
                             [randn(3, 4), _pm1(3, 4).a]),
    "soft_margin_loss": (lambda lib: lib.nn.SoftMarginLoss(), [randn(3, 4), _pm1(3, 4).a]),
    "multilabel_soft_margin_loss": (lambda lib: lib.nn.MultiLabelSoftMarginLoss(
        weight=lib.tensor([1.0, 2.0, 0.5, 1.0])), [randn(3, 4), (_pm1(3, 4).a > 0) * 1.0]),
    "multilabel_margin_loss": (lambda lib: lib.nn.MultiLabelMarginLoss(reduction="none"),
                               [randn(2, 3), np.array([[2, -1, 0], [0, 1, 2]])]),
    "multi_margin_loss": (lambda lib: lib.nn.MultiMarginLoss(p=2, weight=lib.tensor(
        [1.0, 0.5, 2.0])), [randn(4, 3), ints(4, high=3)]),
    "poisson_nll_loss": (lambda lib: lib.nn.PoissonNLLLoss(full=True),
                         [randn(3, 4), uniform(3, 4, high=4.0)]),
    "gaussian_nll_loss": (lambda lib: lib.nn.GaussianNLLLoss(),
                          [randn(3, 4), randn(3, 4), uniform(3, 1, low=0.1)]),
    "triplet_with_distance_loss": (lambda lib: lib.nn.TripletMarginWithDistanceLoss(
        distance_function=lib.nn.CosineSimilarity(), margin=0.5),
        [randn(3, 4), randn(3, 4), randn(3, 4)]),
    "lp_pool2d": (lambda lib: lib.nn.LPPool2d(1.5, (2, 3), stride=1), [uniform(2, 3, 5, 4)]),
    "channel_shuffle": (lambda lib: lib.nn.ChannelShuffle(2), [IMG]),
    "adaptive_max_pool3d": (lambda lib: lib.nn.AdaptiveMaxPool3d((2, None, 3)),
                            [randn(2, 3, 5, 4, 4)]),
    "cosine_embedding_loss": (lambda lib: lib.nn.CosineEmbeddingLoss(0.2),
                              [randn(3, 4), randn(3, 4), _pm1(3).a]),
}


@pytest.mark.parametrize("case", list(MODULES))
def test_module_matches_torch(case):
    make, arrays = MODULES[case]
    tm, gm = make(torch), make(gcomp)
    assert repr(gm) == repr(tm)
    sd = {k: v.detach().numpy() for k, v in tm.state_dict().items()}
    assert list(gm.state_dict()) == list(sd)
    gm.load_state_dict(sd)
    t_out = tm(*_module_inputs(arrays, torch))
    g_out = gm(*_module_inputs(arrays, gcomp))
    close(g_out, t_out, what="forward")
    for name, buf in tm.state_dict().items():  # running statistics updated alike
        close(gm.state_dict()[name], buf, what=name)


def test_modules_compiled():
    """Every module of MODULES inside one gcomp.compile, against eager gcomp."""
    mods = {case: make(gcomp) for case, (make, _) in MODULES.items()}
    inputs = {case: _module_inputs(arrays, gcomp) for case, (_, arrays) in MODULES.items()}
    for m in mods.values():  # running stats would move between the eager and compiled calls
        m.eval()
    eager = {case: mods[case](*inputs[case]) for case in MODULES}
    compiled = gcomp.compile(lambda ins: {case: mods[case](*ins[case]) for case in MODULES})
    got = compiled(inputs)
    for case in MODULES:
        close(got[case], eager[case], what=case)


def _random_ops(x):
    return (GF.alpha_dropout(x, 0.3, training=True), GF.rrelu(x, 0.1, 0.4, training=True),
            GF.gumbel_softmax(x, tau=0.5), GF.gumbel_softmax(x, hard=True, dim=0),
            GF.feature_alpha_dropout(x.reshape(20, 10, 50), 0.5, training=True))


def test_random_ops_draw_from_gcomp_generator():
    """alpha_dropout, rrelu and gumbel_softmax: compiled and eager draw the same numbers from
    the same seed, and the draws have the distributions torch's do."""
    x = gcomp.tensor(randn(200, 50))
    gcomp.manual_seed(5)
    eager = [npy(t) for t in _random_ops(x)]
    gcomp.manual_seed(5)
    compiled = [npy(t) for t in gcomp.compile(_random_ops)(x)]
    for got, want in zip(compiled, eager, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    xa = npy(x)
    drop, rr, soft, hard, feat = eager
    # feature alpha dropout: each (batch, channel) is kept (a x + b) or dropped (one value)
    al = 1.7580993408473766
    a5 = 1 / np.sqrt((al**2 * 0.5 + 1) * 0.5)
    x3 = xa.reshape(20, 10, 50)
    kept = np.isclose(feat, a5 * x3 + al * a5 * 0.5, atol=1e-5).all(-1)
    gone = np.isclose(feat, al * a5 * 0.5 - al * a5, atol=1e-5).all(-1)
    assert (kept | gone).all() and kept.any() and gone.any()
    # alpha dropout keeps mean 0 and variance 1 of a standard normal input
    assert abs(drop.mean()) < 0.05 and abs(drop.std() - 1) < 0.05
    a = 1 / np.sqrt((1.7580993408473766**2 * 0.3 + 1) * 0.7)
    dropped = np.isclose(drop, -1.7580993408473766 * a * 0.7, atol=1e-6)
    assert abs(dropped.mean() - 0.3) < 0.03
    np.testing.assert_allclose(drop[~dropped], a * xa[~dropped] + 1.7580993408473766 * a * 0.3,
                               rtol=1e-5, atol=1e-6)
    slope = rr[xa < 0] / xa[xa < 0]
    assert slope.min() >= 0.1 - 1e-6 and slope.max() <= 0.4 + 1e-6 and slope.std() > 0.05
    np.testing.assert_array_equal(rr[xa > 0], xa[xa > 0])
    np.testing.assert_allclose(soft.sum(-1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(hard.sum(0), 1.0)
    assert set(np.unique(hard)) == {0.0, 1.0}
    assert np.isin(hard.argmax(0), [xa[:, j].argmax() for j in range(50)]).mean() > 0.0


def test_gumbel_hard_has_soft_gradient_and_rrelu_grad():
    x = gcomp.tensor(randn(4, 6), requires_grad=True)
    w = gcomp.tensor(randn(4, 6))
    gcomp.manual_seed(1)
    (GF.gumbel_softmax(x, hard=True) * w).sum().backward()
    g_hard = npy(x.grad)
    x.grad = None
    gcomp.manual_seed(1)
    (GF.gumbel_softmax(x) * w).sum().backward()
    close(g_hard, x.grad)
    x.grad = None
    gcomp.manual_seed(2)
    out = GF.rrelu(x, training=True)
    out.sum().backward()
    xa = npy(x)
    np.testing.assert_allclose(npy(x.grad), np.where(xa <= 0, npy(out) / xa, 1.0), rtol=1e-5)


def test_adaptive_max_pool_indices():
    for nsp, arr, size in ((1, randn(2, 3, 7), 3), (2, randn(3, 7, 5), (3, 2)),
                           (3, randn(1, 2, 5, 3, 4), (2, 3, 3))):
        fn = f"adaptive_max_pool{nsp}d"
        tv, ti = getattr(TF, fn)(torch.tensor(arr), size, return_indices=True)
        gv, gi = getattr(GF, fn)(gcomp.tensor(arr), size, return_indices=True)
        close(gv, tv)
        np.testing.assert_array_equal(npy(gi), npy(ti))
        mod = getattr(gcomp.nn, f"AdaptiveMaxPool{nsp}d")(size, return_indices=True)
        np.testing.assert_array_equal(npy(mod(gcomp.tensor(arr))[1]), npy(ti))


def test_instance_norm_running_stats_train_compiled():
    arrays = randn(3, 2, 4, 5)
    tm = torch.nn.InstanceNorm2d(2, affine=True, track_running_stats=True, momentum=0.3)
    gm = gcomp.nn.InstanceNorm2d(2, affine=True, track_running_stats=True, momentum=0.3)
    step = gcomp.compile(lambda v: gm(v))
    for _ in range(2):
        t_out, g_out = tm(torch.tensor(arrays)), step(gcomp.tensor(arrays))
    close(g_out, t_out)
    for name, buf in tm.state_dict().items():
        close(gm.state_dict()[name], buf, what=name)
    gm.eval()
    tm.eval()
    close(gm(gcomp.tensor(arrays)), tm(torch.tensor(arrays)))


@pytest.mark.parametrize("batch_first,side", [(False, "right"), (True, "left")])
def test_pad_sequence(batch_first, side):
    seqs = [randn(3, 2), randn(1, 2), randn(4, 2)]
    want = torch.nn.utils.rnn.pad_sequence([torch.tensor(s) for s in seqs], batch_first,
                                           padding_value=-1.0, padding_side=side)
    got = gcomp.nn.utils.rnn.pad_sequence([gcomp.tensor(s) for s in seqs], batch_first,
                                          padding_value=-1.0, padding_side=side)
    close(got, want)


BAD = [
    (lambda: GF.interpolate(gcomp.ones(1, 2, 3), scale_factor=2, mode="bilinear"),
     "bilinear mode needs 4D"),
    (lambda: GF.interpolate(gcomp.ones(1, 2, 3, 3)), "either size or scale_factor"),
    (lambda: GF.interpolate(gcomp.ones(1, 2, 3, 3), size=4, scale_factor=2),
     "only one of size or scale_factor"),
    (lambda: GF.interpolate(gcomp.ones(1, 2, 3, 3), size=4, align_corners=True),
     "align_corners option"),
    (lambda: GF.pixel_shuffle(gcomp.ones(1, 5, 2, 2), 2), "divisible by the square"),
    (lambda: GF.pixel_unshuffle(gcomp.ones(1, 1, 3, 2), 2), "divisible by downscale_factor"),
    (lambda: GF.softshrink(gcomp.ones(2), -1.0), "lambda must be greater or equal to 0"),
    (lambda: GF.embedding_bag(gcomp.tensor([1, 2]), gcomp.ones(4, 2)), "offsets has to be"),
    (lambda: GF.embedding_bag(gcomp.tensor([1, 2]), gcomp.ones(4, 2), gcomp.tensor([1])),
     "offsets\\[0\\] has to be 0"),
    (lambda: GF.embedding_bag(gcomp.tensor([[1, 2]]), gcomp.ones(4, 2), mode="mean",
                              per_sample_weights=gcomp.ones(1, 2)), "only supported for mode"),
    (lambda: GF.fold(gcomp.ones(1, 8, 5), (4, 4), 2), "sliding blocks"),
    (lambda: GF.unfold(gcomp.ones(2, 2), 2), "Only 3D or 4D"),
    (lambda: GF.gaussian_nll_loss(gcomp.ones(2, 3), gcomp.ones(2, 3), gcomp.ones(2, 2)),
     "var is of incorrect size"),
    (lambda: GF.gaussian_nll_loss(gcomp.ones(2), gcomp.ones(2), -gcomp.ones(2)),
     "var has negative"),
    (lambda: GF.multi_margin_loss(gcomp.ones(2, 3), gcomp.tensor([0, 1]), p=3), "p == 1"),
    (lambda: GF.margin_ranking_loss(gcomp.ones(2), gcomp.ones(2), gcomp.ones(2),
                                    reduction="avg"), "not a valid value for reduction"),
    (lambda: gcomp.nn.Softmax2d()(gcomp.ones(2, 3)), "expected input to be 3D or 4D"),
    (lambda: gcomp.nn.InstanceNorm1d(3, affine=True)(gcomp.ones(2, 4, 5)), "match num_features"),
    (lambda: gcomp.nn.ZeroPad2d((1, 2)), "padding must be"),
    (lambda: GF.local_response_norm(gcomp.ones(2, 3), 2), "3D or higher"),
    (lambda: GF.adaptive_max_pool2d(gcomp.ones(2), 2), "Expected 3D or 4D"),
    (lambda: GF.affine_grid(gcomp.ones(2, 3, 3), (2, 1, 3, 3)), "Nx2x3"),
    (lambda: GF.grid_sample(gcomp.ones(1, 1, 3, 3), gcomp.ones(1, 2, 2, 3)), "expected 4D"),
    (lambda: gcomp.nn.utils.rnn.pad_sequence([gcomp.ones(2, 3), gcomp.ones(2, 2)]),
     "every sequence"),
]


@pytest.mark.parametrize("i", range(len(BAD)))
def test_bad_input_raises_gcomp_error(i):
    fn, match = BAD[i]
    with pytest.raises(gcomp.GcompError, match=match):
        fn()
