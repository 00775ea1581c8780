"""An MLP classifier on the 8x8 handwritten digits (scikit-learn's, shipped with gcomp.data).

The PyTorch tutorial's training loop, unchanged but for the import: a DataLoader over the train
split, nn.Sequential of Linear and ReLU, CrossEntropyLoss, SGD with momentum, eager training.
Prints the loss per epoch and the test accuracy (about 97%).

    python examples/mlp_classifier.py
"""

from __future__ import annotations

import gcomp as torch  # PyTorch's names: torch.nn, torch.optim, torch.utils.data, ...
from gcomp import nn
from gcomp.data.datasets import Digits
from gcomp.utils.data import DataLoader


def make_model(hidden: int = 128) -> nn.Module:
    return nn.Sequential(
        nn.Flatten(),  # [N, 1, 8, 8] -> [N, 64]
        nn.Linear(64, hidden),
        nn.ReLU(),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Linear(hidden, 10),
    )


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
    """Train for ``epochs`` and return the test accuracy."""
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
