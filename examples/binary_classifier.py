"""A binary classifier with a sigmoid output and nn.BCELoss: is an 8x8 digit 5 or more?

The labels 0-4 become 0.0 and 5-9 become 1.0 (a target_transform on the dataset); the model
ends in nn.Sigmoid so it outputs a probability, and BCELoss compares it with the 0/1 target.
Prints the loss per epoch and the test accuracy (about 96%).

(nn.BCEWithLogitsLoss on the logits is the numerically safer spelling of the same loss; see
examples/multitask.py. This one is the tutorial's Sigmoid + BCELoss.)

    python examples/binary_classifier.py
"""

from __future__ import annotations

import gcomp as torch  # PyTorch's names: torch.nn, torch.optim, torch.utils.data, ...
from gcomp import nn
from gcomp.data.datasets import Digits
from gcomp.utils.data import DataLoader


def is_five_or_more(label: int) -> float:
    return float(label >= 5)


def make_model(hidden: int = 64) -> nn.Module:
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(64, hidden),
        nn.ReLU(),
        nn.Linear(hidden, 1),
        nn.Sigmoid(),  # a probability in (0, 1), what BCELoss expects
    )


def train_epoch(model, loader, loss_fn, optimizer) -> float:
    model.train()
    total, count = 0.0, 0
    for images, targets in loader:
        # floats collate to float64, as in PyTorch; the loss wants the model's float32, [N, 1]
        targets = targets.float().unsqueeze(1)
        loss = loss_fn(model(images), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item() * len(targets)
        count += len(targets)
    return total / count


def evaluate(model, loader) -> float:
    """Fraction of samples on the right side of probability 0.5."""
    model.eval()
    correct, count = 0, 0
    with torch.no_grad():
        for images, targets in loader:
            predicted = (model(images).squeeze(1) > 0.5).float()
            correct += (predicted == targets.float()).sum().item()
            count += len(targets)
    return correct / count


def main(epochs: int = 15, batch_size: int = 32, lr: float = 3e-3, hidden: int = 64,
         seed: int = 0, verbose: bool = True) -> float:
    """Train for ``epochs`` and return the test accuracy."""
    torch.manual_seed(seed)
    # drop_last and one test batch keep the batch shapes few: gcomp compiles each op once per
    # input shape on first use, so a ragged last batch would cost one more compile of each.
    train_set = Digits(train=True, target_transform=is_five_or_more)
    test_set = Digits(train=False, target_transform=is_five_or_more)
    train_loader = DataLoader(train_set, batch_size=batch_size, shuffle=True, drop_last=True,
                              generator=torch.Generator().manual_seed(seed))
    test_loader = DataLoader(test_set, batch_size=len(test_set))
    model = make_model(hidden)
    loss_fn = nn.BCELoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    for epoch in range(epochs):
        loss = train_epoch(model, train_loader, loss_fn, optimizer)
        if verbose and (epoch % 5 == 4 or epoch == epochs - 1):
            print(f"epoch {epoch + 1:3d}  train loss {loss:.4f}")
    accuracy = evaluate(model, test_loader)
    if verbose:
        print(f"test accuracy (digit >= 5): {accuracy:.2%}")
    return accuracy


if __name__ == "__main__":
    main()
