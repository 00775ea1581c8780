"""The training workloads the benchmarks share, each written once for any PyTorch-like namespace.

A model, its loss and its optimizer are functions of a module namespace ``T`` (``gcomp`` or
``torch``), so ``mlp(gcomp)`` and ``mlp(torch)`` are the same code. Each workload's data is numpy,
made once from a seed; ``build(T, state)`` returns (model, criterion, optimizer) with the model's
weights loaded from one torch ``state_dict`` (through numpy), so every framework starts from the
same weights and sees the same batch.
"""

from __future__ import annotations

import os
import statistics
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

    def reference_state(self, seed: int = 0) -> dict[str, np.ndarray]:
        """The initial weights every framework loads: a torch model's, as numpy arrays."""
        import torch

        torch.manual_seed(seed)
        return {k: v.detach().numpy().copy() for k, v in self.model(torch).state_dict().items()}

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


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


# -- synchronization ---------------------------------------------------------------------------


def gcomp_sync(*tensors) -> None:
    """Wait for gcomp's asynchronous jax work behind these tensors (eager dispatch is async).

    gcomp has no public ``synchronize``; a tensor's jax array is ``t._array(...)``.
    """
    import jax

    jax.block_until_ready([t._array("gcomp_sync") for t in tensors])


# -- timing ------------------------------------------------------------------------------------


def measure(cases: dict, steps: int, repeat: int, warmup: int) -> dict:
    """Median, min and max ms/step of each case, timed in turns so that load hits all alike.

    ``cases`` maps a name to ``(step, sync)``: ``step()`` runs one training step and returns the
    loss, ``sync(loss)`` waits until it and the updated state are computed. Each case first runs
    ``warmup`` steps (the first of which compiles); then each of ``repeat`` rounds times ``steps``
    steps of every case in turn. A case that raises gets ``{"error": message}`` and drops out.
    """
    import time

    out, first = {}, {}
    for name, (step, sync) in cases.items():
        try:
            for i in range(warmup):
                loss = step()
                sync(loss)
                if i == 0:
                    first[name] = float(loss.item())
        except Exception as e:  # noqa: BLE001 - reported in the table
            out[name] = {"error": error_text(e)}
    times = {name: [] for name in cases if name not in out}
    for _ in range(repeat):
        for name in list(times):
            step, sync = cases[name]
            try:
                t0 = time.perf_counter()
                for _ in range(steps):
                    loss = step()
                sync(loss)
                times[name].append((time.perf_counter() - t0) / steps * 1e3)
            except Exception as e:  # noqa: BLE001
                out[name] = {"error": error_text(e)}
                del times[name]
    for name, ts in times.items():
        out[name] = {"median": statistics.median(ts), "min": min(ts), "max": max(ts),
                     "first_loss": first.get(name)}
    return out


def error_text(e: BaseException) -> str:
    return f"{type(e).__name__}: {' '.join(str(e).split()) or '(no message)'}"


def short(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def versions() -> str:
    import jax
    import torch

    import gcomp

    return f"gcomp {gcomp.__version__}, jax {jax.__version__}, torch {torch.__version__}"


def load_note(n_cores: int) -> str:
    """The 1-minute load average, with a warning where other work competes for the cores."""
    load = os.getloadavg()[0]
    note = f"load average {load:.1f} on {n_cores} cores"
    if load > 0.5 * n_cores:
        note += (" (loaded: timings are noisy, and torch with one thread per core can slow down"
                 " many times over; compare --threads 1)")
    return note
