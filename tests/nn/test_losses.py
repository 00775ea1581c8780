"""Every loss module against torch, for every reduction and the weight / ignore_index /
label_smoothing / pos_weight / probability-target variants: values and gradients eagerly, and
the value inside gcomp.compile (where class-index targets take the traced path)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from nn_parity import check_module, close, ints, npy, randn, uniform

import gcomp
import gcomp.nn.functional as GF

N, C = 6, 5
LOGITS = randn(N, C, scale=2.0)
TARGET = np.array([0, 4, 1, 1, 3, 2])
TARGET_IGNORED = np.array([0, -100, 1, 2, 3, -100])
TARGET_IGNORE_2 = np.array([2, 4, 1, 2, 3, 0])
PROBS = np.exp(randn(N, C)) / np.exp(randn(N, C)).sum(1, keepdims=True)
PROBS = (PROBS / PROBS.sum(1, keepdims=True)).astype(np.float32)
WEIGHT = uniform(C, low=0.5, high=2.0)
LOGITS_4D = randn(2, C, 3, 2)
TARGET_4D = ints(2, 3, 2, high=C)
TARGET_4D[0, 1, 1] = -100
X = randn(4, 5)
Y = randn(4, 5)
P_IN = uniform(4, 5, low=0.05, high=0.95)
P_TGT = uniform(4, 5)
BIN = (uniform(4, 5) > 0.5).astype(np.float32)
LOGP = np.log(PROBS)
Q = np.log(np.roll(PROBS, 1, axis=1))


def _w(lib):
    return lib.tensor(WEIGHT)


# name -> (make(lib, reduction), arrays); reductions are applied by the test
LOSSES = {
    "mse": (lambda lib, r: lib.nn.MSELoss(reduction=r), [X, Y]),
    "l1": (lambda lib, r: lib.nn.L1Loss(reduction=r), [X, Y]),
    "smooth_l1": (lambda lib, r: lib.nn.SmoothL1Loss(reduction=r), [X, Y]),
    "smooth_l1_beta": (lambda lib, r: lib.nn.SmoothL1Loss(reduction=r, beta=0.5), [X, Y]),
    "smooth_l1_beta0": (lambda lib, r: lib.nn.SmoothL1Loss(reduction=r, beta=0.0), [X, Y]),
    "huber": (lambda lib, r: lib.nn.HuberLoss(reduction=r), [X, Y]),
    "huber_delta": (lambda lib, r: lib.nn.HuberLoss(reduction=r, delta=0.7), [X, Y]),
    "ce": (lambda lib, r: lib.nn.CrossEntropyLoss(reduction=r), [LOGITS, TARGET]),
    "ce_weight": (lambda lib, r: lib.nn.CrossEntropyLoss(_w(lib), reduction=r),
                  [LOGITS, TARGET]),
    "ce_ignore_default": (lambda lib, r: lib.nn.CrossEntropyLoss(reduction=r),
                          [LOGITS, TARGET_IGNORED]),
    "ce_ignore_index": (lambda lib, r: lib.nn.CrossEntropyLoss(reduction=r, ignore_index=2),
                        [LOGITS, TARGET_IGNORE_2]),
    "ce_smoothing": (lambda lib, r: lib.nn.CrossEntropyLoss(reduction=r, label_smoothing=0.1),
                     [LOGITS, TARGET]),
    "ce_weight_smoothing_ignore": (
        lambda lib, r: lib.nn.CrossEntropyLoss(_w(lib), reduction=r, ignore_index=2,
                                               label_smoothing=0.2), [LOGITS, TARGET_IGNORE_2]),
    "ce_4d": (lambda lib, r: lib.nn.CrossEntropyLoss(reduction=r), [LOGITS_4D, TARGET_4D]),
    "ce_4d_weight_smoothing": (
        lambda lib, r: lib.nn.CrossEntropyLoss(_w(lib), reduction=r, label_smoothing=0.3),
        [LOGITS_4D, TARGET_4D]),
    "ce_unbatched": (lambda lib, r: lib.nn.CrossEntropyLoss(reduction=r),
                     [LOGITS[0], np.array(3)]),
    "ce_probs": (lambda lib, r: lib.nn.CrossEntropyLoss(reduction=r), [LOGITS, PROBS]),
    "ce_probs_weight_smoothing": (
        lambda lib, r: lib.nn.CrossEntropyLoss(_w(lib), reduction=r, label_smoothing=0.15),
        [LOGITS, PROBS]),
    "nll": (lambda lib, r: lib.nn.NLLLoss(reduction=r), [LOGP, TARGET]),
    "nll_weight_ignore": (lambda lib, r: lib.nn.NLLLoss(_w(lib), reduction=r, ignore_index=2),
                          [LOGP, TARGET_IGNORE_2]),
    "nll_4d": (lambda lib, r: lib.nn.NLLLoss(reduction=r), [LOGITS_4D, TARGET_4D]),
    "bce": (lambda lib, r: lib.nn.BCELoss(reduction=r), [P_IN, P_TGT]),
    "bce_weight": (lambda lib, r: lib.nn.BCELoss(lib.tensor(WEIGHT), reduction=r),
                   [P_IN, BIN]),
    "bce_logits": (lambda lib, r: lib.nn.BCEWithLogitsLoss(reduction=r), [X * 3, P_TGT]),
    "bce_logits_weight": (lambda lib, r: lib.nn.BCEWithLogitsLoss(_w(lib), reduction=r),
                          [X * 3, BIN]),
    "bce_logits_pos_weight": (
        lambda lib, r: lib.nn.BCEWithLogitsLoss(reduction=r, pos_weight=_w(lib)), [X * 3, P_TGT]),
    "bce_logits_both": (
        lambda lib, r: lib.nn.BCEWithLogitsLoss(lib.tensor(WEIGHT[::-1].copy()), reduction=r,
                                                pos_weight=_w(lib)), [X * 3, BIN]),
    "kl_div": (lambda lib, r: lib.nn.KLDivLoss(reduction=r), [LOGP, PROBS]),
    "kl_div_log_target": (lambda lib, r: lib.nn.KLDivLoss(reduction=r, log_target=True),
                          [LOGP, Q]),
}

CASES = [(name, r) for name in LOSSES for r in ("none", "sum", "mean")]
CASES += [("kl_div", "batchmean"), ("kl_div_log_target", "batchmean")]


@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides")
@pytest.mark.parametrize("name,reduction", CASES)
def test_loss_matches_torch(name, reduction):
    make, arrays = LOSSES[name]
    # compile the class-index losses in every reduction (their targets take a traced path),
    # the others once
    compiled = reduction == "mean" or name.startswith(("ce", "nll"))
    check_module(lambda lib: make(lib, reduction), arrays, compiled=compiled)


@pytest.mark.parametrize("fn", ["mse_loss", "l1_loss", "huber_loss"])
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_elementwise_losses_with_weight(fn, reduction):
    w = uniform(4, 5, low=0.1, high=2.0)
    tx, gx = torch.tensor(X, requires_grad=True), gcomp.tensor(X, requires_grad=True)
    want = getattr(torch.nn.functional, fn)(tx, torch.tensor(Y), reduction=reduction,
                                            weight=torch.tensor(w))
    got = getattr(GF, fn)(gx, gcomp.tensor(Y), reduction=reduction, weight=gcomp.tensor(w))
    close(got, want)
    want.sum().backward()
    got.sum().backward()
    close(gx.grad, tx.grad)


def test_ce_all_targets_ignored_gives_nan_like_torch():
    t = np.full(N, -100)
    got = GF.cross_entropy(gcomp.tensor(LOGITS), gcomp.tensor(t))
    want = torch.nn.functional.cross_entropy(torch.tensor(LOGITS), torch.tensor(t))
    assert np.isnan(npy(got)) and np.isnan(want.item())


def test_ce_target_out_of_range_raises():
    with pytest.raises(IndexError, match="Target 5 is out of bounds"):
        GF.cross_entropy(gcomp.tensor(LOGITS), gcomp.tensor([0, 1, 5, 0, 0, 0]))
    with pytest.raises(gcomp.GcompError, match="batch_size"):
        GF.cross_entropy(gcomp.tensor(LOGITS), gcomp.tensor([0, 1]))


def test_bce_saturated_inputs_clamp_like_torch_with_finite_gradients():
    p = np.array([0.0, 1.0, 0.5, 1.0, 0.0], np.float32)
    t = np.array([1.0, 0.0, 1.0, 1.0, 0.0], np.float32)
    gx = gcomp.tensor(p, requires_grad=True)
    got = GF.binary_cross_entropy(gx, gcomp.tensor(t), reduction="none")
    want = torch.nn.functional.binary_cross_entropy(torch.tensor(p), torch.tensor(t),
                                                    reduction="none")
    close(got, want)
    got.sum().backward()
    assert np.isfinite(npy(gx.grad)).all()


def test_bce_with_logits_is_stable_for_large_logits():
    x = np.array([-200.0, -30.0, 0.0, 30.0, 200.0], np.float32)
    t = np.array([1.0, 0.0, 0.5, 1.0, 0.0], np.float32)
    gx, tx = gcomp.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    got = GF.binary_cross_entropy_with_logits(gx, gcomp.tensor(t), reduction="none")
    want = torch.nn.functional.binary_cross_entropy_with_logits(tx, torch.tensor(t),
                                                                reduction="none")
    close(got, want)
    got.sum().backward()
    want.sum().backward()
    close(gx.grad, tx.grad)


def test_invalid_reduction_raises_value_error():
    with pytest.raises(ValueError, match="not a valid value for reduction"):
        GF.mse_loss(gcomp.tensor(X), gcomp.tensor(Y), reduction="avg")


@pytest.mark.filterwarnings("ignore:size_average and reduce args")
def test_legacy_size_average_and_reduce():
    for size_average, reduce, want in [(False, None, "sum"), (None, False, "none"),
                                       (True, True, "mean")]:
        assert gcomp.nn.MSELoss(size_average, reduce).reduction == want
        assert torch.nn.MSELoss(size_average, reduce).reduction == want


def test_compiled_training_step_with_ignored_targets_matches_eager():
    """The traced class-index path (ignore_index, weights, smoothing) differentiates like the
    eager host path, inside one compiled step."""
    gcomp.manual_seed(0)
    model = gcomp.nn.Sequential(gcomp.nn.Linear(C, 8), gcomp.nn.ReLU(), gcomp.nn.Linear(8, C))
    crit = gcomp.nn.CrossEntropyLoss(gcomp.tensor(WEIGHT), ignore_index=2, label_smoothing=0.1)
    x, t = gcomp.tensor(LOGITS), gcomp.tensor(TARGET_IGNORE_2)

    def step(x, t):
        model.zero_grad()
        loss = crit(model(x), t)
        loss.backward()
        return loss

    eager_loss = npy(step(x, t))
    eager_grads = [npy(p.grad) for p in model.parameters()]
    compiled_loss = npy(gcomp.compile(step)(x, t))
    close(compiled_loss, eager_loss)
    for p, g in zip(model.parameters(), eager_grads, strict=False):
        close(p.grad, g, (1e-5, 1e-6))
