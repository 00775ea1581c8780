"""Whole-model effect of the passes: the compiled training steps of the example models (an MLP,
a CNN, an LSTM and a Transformer encoder, small) give the same losses and parameters with the
default pipeline as with passes="none" (only the autodiff expansion)."""

from __future__ import annotations

import numpy as np
import pytest

import gcomp
from gcomp import nn


class Seq(nn.Module):
    def __init__(self, kind):
        super().__init__()
        self.kind = kind
        if kind == "lstm":
            self.rnn = nn.LSTM(6, 12, batch_first=True)
        else:
            self.enc = nn.TransformerEncoder(
                nn.TransformerEncoderLayer(12, 2, dim_feedforward=24, dropout=0.0,
                                           batch_first=True), num_layers=1)
            self.inp = nn.Linear(6, 12)
        self.head = nn.Linear(12, 3)

    def forward(self, x):
        if self.kind == "lstm":
            out, _ = self.rnn(x)
            return self.head(out[:, -1])
        return self.head(self.enc(self.inp(x)).mean(dim=1))


def _model(kind):
    if kind == "mlp":
        return nn.Sequential(nn.Linear(20, 16), nn.ReLU(), nn.Linear(16, 3)), (8, 20)
    if kind == "cnn":
        return nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(4, 6, 3), nn.ReLU(), nn.Flatten(),
                             nn.Linear(6 * 2 * 2, 3)), (4, 2, 8, 8)
    return Seq(kind), (4, 5, 6)


def _train(kind, passes, steps=3):
    gcomp.manual_seed(0)
    model, shape = _model(kind)
    # Adam only where no gradient is zero in exact arithmetic: it divides rounding noise by its
    # own size (the attention's key bias has a zero gradient, softmax ignores a shift)
    opt = (gcomp.optim.Adam(model.parameters(), lr=1e-2) if kind in ("cnn", "lstm")
           else gcomp.optim.SGD(model.parameters(), lr=0.1, momentum=0.9))
    crit = nn.CrossEntropyLoss()

    @gcomp.compile(passes=passes)
    def step(x, y):
        opt.zero_grad()
        loss = crit(model(x), y)
        loss.backward()
        opt.step()
        return loss

    rng = np.random.default_rng(1)
    x = gcomp.tensor(rng.standard_normal(shape).astype(np.float32))
    y = gcomp.tensor(rng.integers(0, 3, shape[0]))
    losses = [float(step(x, y)) for _ in range(steps)]
    stages = [s.name for s in step.stages(x, y)]
    return losses, {k: np.asarray(v) for k, v in model.state_dict().items()}, stages


@pytest.mark.parametrize("kind", ["mlp", "cnn", "lstm", "transformer"])
def test_default_pipeline_matches_no_passes(kind):
    losses, params, stages = _train(kind, "default")
    base_losses, base_params, base_stages = _train(kind, "none")
    assert stages[1:] == list(gcomp.passes.DEFAULT_PIPELINE) and base_stages == ["traced",
                                                                                 "autodiff"]
    np.testing.assert_allclose(losses, base_losses, rtol=1e-5, atol=1e-6)
    assert losses[-1] < losses[0]
    for k in params:
        np.testing.assert_allclose(params[k], base_params[k], rtol=1e-4, atol=1e-6, err_msg=k)
