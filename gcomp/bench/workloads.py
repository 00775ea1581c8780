"""The built-in workloads (``gcomp bench mlp``), each written once for any PyTorch-like namespace.

A model, its loss and its optimizer are functions of a module namespace ``T`` (``gcomp`` or
``torch``), so ``mlp(gcomp)`` and ``mlp(torch)`` are the same code. Each workload's data is numpy,
made once from a seed; ``build(T, state)`` returns (model, criterion, optimizer) with the model's
weights loaded from one ``state_dict`` of numpy arrays, so every framework starts from the same
weights and sees the same batch. The scripts in ``benchmarks/`` import these through
``benchmarks/workloads.py``; the hand-written JAX steps are in ``jax_steps.py``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# -- models, written once ----------------------------------------------------------------------


def linreg(T):
    return T.nn.Linear(1, 1)


def mlp(T):
    nn = T.nn
    return nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))


def cnn(T):
    """The classic CIFAR-10 net of the PyTorch tutorial."""
    nn = T.nn
    return nn.Sequential(
        nn.Conv2d(3, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))


def lstm(T):
    nn = T.nn

    class LSTMClassifier(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(64, 128, batch_first=True)
            self.head = nn.Linear(128, 10)

        def forward(self, x):
            out, _ = self.lstm(x)
            return self.head(out[:, -1])

    return LSTMClassifier()


def transformer(T):
    nn = T.nn

    class EncoderClassifier(nn.Module):
        def __init__(self):
            super().__init__()
            layer = nn.TransformerEncoderLayer(128, 4, dim_feedforward=256, dropout=0.0,
                                               batch_first=True)
            self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
            self.head = nn.Linear(128, 10)

        def forward(self, x):
            return self.head(self.encoder(x).mean(dim=1))

    return EncoderClassifier()


def train_step(model, crit, opt, x, y):
    """The step every benchmark times, for every framework (and, in gcomp, compiled)."""
    opt.zero_grad()
    loss = crit(model(x), y)
    loss.backward()
    opt.step()
    return loss


# -- workloads ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    name: str
    what: str  # shapes and optimizer, for the table
    model: Callable  # T -> nn.Module
    loss: str  # "mse" or "ce"
    optimizer: str  # "sgd", "sgd_momentum", "adam", "adamw"
    lr: float
    x_shape: tuple
    classes: int  # 0 for regression

    def data(self, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        x = rng.standard_normal(self.x_shape).astype(np.float32)
        if self.classes:
            y = rng.integers(0, self.classes, size=self.x_shape[0]).astype(np.int64)
        else:
            y = (3 * x + 1 + 0.1 * rng.standard_normal(x.shape)).astype(np.float32)
        return x, y

    def criterion(self, T):
        return T.nn.MSELoss() if self.loss == "mse" else T.nn.CrossEntropyLoss()

    def make_optimizer(self, T, params):
        o = T.optim
        if self.optimizer == "sgd":
            return o.SGD(params, lr=self.lr)
        if self.optimizer == "sgd_momentum":
            return o.SGD(params, lr=self.lr, momentum=0.9)
        if self.optimizer == "adam":
            return o.Adam(params, lr=self.lr)
        if self.optimizer == "adamw":
            return o.AdamW(params, lr=self.lr)  # weight_decay 0.01, torch's default
        raise ValueError(self.optimizer)

    def reference_state(self, seed: int = 0, T=None) -> dict[str, np.ndarray]:
        """The initial weights every framework loads, as numpy arrays: a model of namespace
        ``T`` initialized from ``seed`` (torch's by default, what the benchmark scripts compare
        against; ``gcomp bench`` uses gcomp's own, so it does not need torch)."""
        if T is None:
            import torch as T
        T.manual_seed(seed)
        return {k: np.array(v.detach().numpy()) for k, v in self.model(T).state_dict().items()}

    def with_batch(self, batch: int | None) -> Workload:
        """The same workload with ``batch`` samples a step (``gcomp bench mlp --batch 8``)."""
        if batch is None or batch == self.x_shape[0]:
            return self
        return dataclasses.replace(self, x_shape=(batch, *self.x_shape[1:]),
                                   what=f"{self.what} (batch {batch})")

    def build(self, T, state: dict[str, np.ndarray]):
        """(model, criterion, optimizer) in namespace T, with the weights of ``state``."""
        model = self.model(T)
        model.load_state_dict({k: T.tensor(v) for k, v in state.items()})
        model.train()
        return model, self.criterion(T), self.make_optimizer(T, model.parameters())


WORKLOADS = {w.name: w for w in [
    Workload("linreg", "64x1 -> 1, MSE, SGD", linreg, "mse", "sgd", 0.05, (64, 1), 0),
    Workload("mlp", "64x784 -> 128 -> 10, CE, SGD momentum", mlp, "ce", "sgd_momentum", 0.01,
             (64, 784), 10),
    Workload("cnn", "32x3x32x32 conv 6,16 fc 120-84-10, Adam", cnn, "ce", "adam", 1e-3,
             (32, 3, 32, 32), 10),
    Workload("lstm", "32x35x64 LSTM 128 + linear, Adam", lstm, "ce", "adam", 1e-3, (32, 35, 64),
             10),
    Workload("transformer", "16x64x128 2 layers 4 heads ff 256, AdamW", transformer, "ce",
             "adamw", 1e-3, (16, 64, 128), 10),
]}


def select(only: str | None, default: list[str]) -> list[Workload]:
    names = default if not only else [n.strip() for n in only.split(",") if n.strip()]
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        raise SystemExit(f"unknown workload(s) {unknown}; choose from {list(WORKLOADS)}")
    return [WORKLOADS[n] for n in names]
