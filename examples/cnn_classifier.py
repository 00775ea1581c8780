"""The classic small CNN of PyTorch's "Training a classifier" tutorial, on the 8x8 digits.

The network is the tutorial's ``Net`` unchanged: conv 3->6 (5x5), max pool, conv 6->16 (5x5),
max pool, fc 16*5*5 -> 120 -> 84 -> 10. It expects 3x32x32 images (CIFAR-10), so the dataset's
transform makes each 8x8 grey digit one: every pixel becomes a 4x4 block (nearest-neighbour
upsampling, what ``transforms.Resize(32, InterpolationMode.NEAREST)`` gives) and the grey channel
is repeated three times (``transforms.Grayscale(num_output_channels=3)`` read backwards). Doing
it in the transform keeps the model code identical to the tutorial's. Trains eagerly with SGD
with momentum; prints the loss per epoch and the test accuracy (about 97%).

    python examples/cnn_classifier.py
"""

from __future__ import annotations

import numpy as np

import gcomp as torch  # PyTorch's names: torch.nn, torch.optim, torch.utils.data, ...
import gcomp.nn as nn
import gcomp.nn.functional as F
from gcomp.data.datasets import Digits
from gcomp.utils.data import DataLoader


def to_rgb32(image: np.ndarray) -> np.ndarray:
    """[1, 8, 8] grey in [0, 1] -> [3, 32, 32] normalized to [-1, 1], like the tutorial's
    ``Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))``."""
    big = image.repeat(4, axis=1).repeat(4, axis=2)
    return (np.repeat(big, 3, axis=0) - 0.5) / 0.5


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))  # [N, 6, 14, 14]
        x = self.pool(F.relu(self.conv2(x)))  # [N, 16, 5, 5]
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


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


def main(epochs: int = 8, batch_size: int = 32, lr: float = 0.02, seed: int = 0,
         verbose: bool = True) -> float:
    """Train for ``epochs`` and return the test accuracy."""
    torch.manual_seed(seed)
    # drop_last and one test batch keep the batch shapes few: gcomp compiles each op once per
    # input shape on first use, so a ragged last batch would cost one more compile of each.
    train_set = Digits(train=True, transform=to_rgb32)
    test_set = Digits(train=False, transform=to_rgb32)
    train_loader = DataLoader(train_set, batch_size=batch_size, shuffle=True, drop_last=True,
                              generator=torch.Generator().manual_seed(seed))
    test_loader = DataLoader(test_set, batch_size=len(test_set))
    model = Net()
    loss_fn = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    for epoch in range(epochs):
        loss = train_epoch(model, train_loader, loss_fn, optimizer)
        if verbose:
            print(f"epoch {epoch + 1:3d}  train loss {loss:.4f}")
    accuracy = evaluate(model, test_loader)
    if verbose:
        print(f"test accuracy: {accuracy:.2%}")
    return accuracy


if __name__ == "__main__":
    main()
