"""A custom activation written as an autograd.Function, as in PyTorch's "Defining new autograd
Functions" tutorial, used in a small model trained on the 8x8 digits.

``Swish`` computes x * sigmoid(x) in ``forward``, saves what ``backward`` needs with
``ctx.save_for_backward`` and returns the gradient by hand in ``backward``:
d/dx x*s(x) = s + x*s*(1 - s) = s * (1 + x * (1 - s)). autograd calls that backward instead of
differentiating the forward. Before training, the hand-written gradient is checked against
central finite differences in float64 (what torch.autograd.gradcheck does). Prints the largest
gradient error, the loss per epoch and the test accuracy (about 97%).

    python examples/custom_function.py
"""

from __future__ import annotations

import gcomp as torch  # PyTorch's names: torch.nn, torch.optim, torch.utils.data, ...
from gcomp import nn
from gcomp.data.datasets import Digits
from gcomp.utils.data import DataLoader


class Swish(torch.autograd.Function):
    """x * sigmoid(x) (nn.SiLU), with a hand-written backward."""

    @staticmethod
    def forward(ctx, x):
        s = torch.sigmoid(x)
        ctx.save_for_backward(x, s)
        return x * s

    @staticmethod
    def backward(ctx, grad_output):
        x, s = ctx.saved_tensors
        return grad_output * s * (1 + x * (1 - s))


class SwishModule(nn.Module):
    """The Function as a layer: modules call ``Function.apply``, never forward directly."""

    def forward(self, x):
        return Swish.apply(x)


def gradient_error(n: int = 64, eps: float = 1e-6, seed: int = 0) -> float:
    """Largest difference between Swish's backward and central finite differences, in float64
    at ``n`` random points (the check torch.autograd.gradcheck makes for an elementwise op)."""
    gen = torch.Generator().manual_seed(seed)
    x = (4 * torch.randn(n, generator=gen, dtype=torch.float64)).requires_grad_()
    Swish.apply(x).sum().backward()
    with torch.no_grad():
        numeric = (Swish.apply(x + eps) - Swish.apply(x - eps)) / (2 * eps)
    return (x.grad - numeric).abs().max().item()


def make_model(hidden: int = 128) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(64, hidden), SwishModule(),
                         nn.Linear(hidden, hidden), SwishModule(), nn.Linear(hidden, 10))


def train_epoch(model, loader, loss_fn, optimizer) -> float:
    model.train()
    total, count = 0.0, 0
    for images, labels in loader:
        loss = loss_fn(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item() * len(labels)
        count += len(labels)
    return total / count


def evaluate(model, loader) -> float:
    """Fraction of correctly classified samples."""
    model.eval()
    correct, count = 0, 0
    with torch.no_grad():
        for images, labels in loader:
            correct += (model(images).argmax(dim=1) == labels).sum().item()
            count += len(labels)
    return correct / count


def main(epochs: int = 20, batch_size: int = 32, lr: float = 0.05, hidden: int = 128,
         seed: int = 0, verbose: bool = True) -> float:
    """Check Swish's gradient, train for ``epochs`` and return the test accuracy."""
    error = gradient_error()
    if verbose:
        print(f"Swish backward vs float64 finite differences: largest error {error:.1e}")
    if error > 1e-6:
        raise AssertionError(f"Swish.backward disagrees with finite differences by {error}")
    torch.manual_seed(seed)
    # drop_last and one test batch keep the batch shapes few: gcomp compiles each op once per
    # input shape on first use, so a ragged last batch would cost one more compile of each.
    train_set, test_set = Digits(train=True), Digits(train=False)
    train_loader = DataLoader(train_set, batch_size=batch_size, shuffle=True, drop_last=True,
                              generator=torch.Generator().manual_seed(seed))
    test_loader = DataLoader(test_set, batch_size=len(test_set))
    model = make_model(hidden)
    loss_fn = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    for epoch in range(epochs):
        loss = train_epoch(model, train_loader, loss_fn, optimizer)
        if verbose and (epoch % 5 == 4 or epoch == epochs - 1):
            print(f"epoch {epoch + 1:3d}  train loss {loss:.4f}")
    accuracy = evaluate(model, test_loader)
    if verbose:
        print(f"test accuracy: {accuracy:.2%}")
    return accuracy


if __name__ == "__main__":
    main()
