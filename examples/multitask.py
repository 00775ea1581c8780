"""A two-headed multi-task net on the 8x8 digits: which digit (10 classes) and is it odd.

One shared trunk feeds two heads: 10 logits trained with nn.CrossEntropyLoss and one logit
trained with nn.BCEWithLogitsLoss. The two losses are summed and one backward() fills the
gradients of both heads and of the trunk, which gets the sum of what each head sends back.
The dataset's target_transform returns a dict, which the DataLoader collates field by field.
Prints both test accuracies (about 98% and 99%).

    python examples/multitask.py
"""

from __future__ import annotations

import gcomp as torch  # PyTorch's names: torch.nn, torch.optim, torch.utils.data, ...
from gcomp import nn
from gcomp.data.datasets import Digits
from gcomp.utils.data import DataLoader


def two_targets(label: int) -> dict:
    return {"digit": label, "odd": float(label % 2)}


class TwoHeadedNet(nn.Module):
    def __init__(self, hidden: int = 128):
        super().__init__()
        self.trunk = nn.Sequential(nn.Flatten(), nn.Linear(64, hidden), nn.ReLU(),
                                   nn.Linear(hidden, hidden), nn.ReLU())
        self.digit_head = nn.Linear(hidden, 10)
        self.odd_head = nn.Linear(hidden, 1)

    def forward(self, x):
        features = self.trunk(x)
        return self.digit_head(features), self.odd_head(features).squeeze(1)


def train_epoch(model, loader, digit_loss_fn, odd_loss_fn, optimizer) -> float:
    model.train()
    total, count = 0.0, 0
    for images, targets in loader:
        digit_logits, odd_logit = model(images)
        loss = (digit_loss_fn(digit_logits, targets["digit"])
                + odd_loss_fn(odd_logit, targets["odd"].float()))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item() * len(images)
        count += len(images)
    return total / count


def evaluate(model, loader) -> dict:
    """Test accuracy of each head."""
    model.eval()
    digit_correct, odd_correct, count = 0, 0, 0
    with torch.no_grad():
        for images, targets in loader:
            digit_logits, odd_logit = model(images)
            digit_correct += (digit_logits.argmax(dim=1) == targets["digit"]).sum().item()
            odd_correct += ((odd_logit > 0).float() == targets["odd"].float()).sum().item()
            count += len(images)
    return {"digit": digit_correct / count, "odd": odd_correct / count}


def main(epochs: int = 20, batch_size: int = 32, lr: float = 3e-3, hidden: int = 128,
         seed: int = 0, verbose: bool = True) -> dict:
    """Train for ``epochs`` and return the test accuracy of each head, {"digit": .., "odd": ..}."""
    torch.manual_seed(seed)
    # drop_last and one test batch keep the batch shapes few: gcomp compiles each op once per
    # input shape on first use, so a ragged last batch would cost one more compile of each.
    train_set = Digits(train=True, target_transform=two_targets)
    test_set = Digits(train=False, target_transform=two_targets)
    train_loader = DataLoader(train_set, batch_size=batch_size, shuffle=True, drop_last=True,
                              generator=torch.Generator().manual_seed(seed))
    test_loader = DataLoader(test_set, batch_size=len(test_set))
    model = TwoHeadedNet(hidden)
    digit_loss_fn, odd_loss_fn = nn.CrossEntropyLoss(), nn.BCEWithLogitsLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    for epoch in range(epochs):
        loss = train_epoch(model, train_loader, digit_loss_fn, odd_loss_fn, optimizer)
        if verbose and (epoch % 5 == 4 or epoch == epochs - 1):
            print(f"epoch {epoch + 1:3d}  train loss (sum of both) {loss:.4f}")
    accuracy = evaluate(model, test_loader)
    if verbose:
        print(f"test accuracy: digit {accuracy['digit']:.2%}, odd/even {accuracy['odd']:.2%}")
    return accuracy


if __name__ == "__main__":
    main()
