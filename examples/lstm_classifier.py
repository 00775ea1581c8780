"""An LSTM sequence classifier on the 8x8 digits: each image is read top to bottom as a
sequence of 8 rows of 8 pixels, and the last hidden state is classified.

nn.LSTM with batch_first=True takes [batch, 8 steps, 8 features]; ``h_n[-1]``, the top layer's
final hidden state, goes through a Linear to 10 logits. Trains eagerly with Adam and gradient
clipping (nn.utils.clip_grad_norm_, the usual guard for recurrent nets). Prints the loss per
epoch and the test accuracy (about 96%).

    python examples/lstm_classifier.py
"""

from __future__ import annotations

import gcomp as torch  # PyTorch's names: torch.nn, torch.optim, torch.utils.data, ...
from gcomp import nn
from gcomp.data.datasets import Digits
from gcomp.utils.data import DataLoader


class LSTMClassifier(nn.Module):
    def __init__(self, hidden_size: int = 64, num_layers: int = 1):
        super().__init__()
        self.lstm = nn.LSTM(input_size=8, hidden_size=hidden_size, num_layers=num_layers,
                            batch_first=True)
        self.fc = nn.Linear(hidden_size, 10)

    def forward(self, images):
        rows = images.squeeze(1)  # [N, 1, 8, 8] -> [N, 8 rows (time), 8 pixels (features)]
        _, (h_n, _) = self.lstm(rows)  # h_n: [num_layers, N, hidden]
        return self.fc(h_n[-1])


def train_epoch(model, loader, loss_fn, optimizer) -> float:
    model.train()
    total, count = 0.0, 0
    for images, labels in loader:
        loss = loss_fn(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
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


def main(epochs: int = 12, batch_size: int = 32, lr: float = 1e-2, hidden_size: int = 64,
         seed: int = 0, verbose: bool = True) -> float:
    """Train for ``epochs`` and return the test accuracy."""
    torch.manual_seed(seed)
    # drop_last and one test batch keep the batch shapes few: gcomp compiles each op once per
    # input shape on first use, so a ragged last batch would cost one more compile of each.
    train_set, test_set = Digits(train=True), Digits(train=False)
    train_loader = DataLoader(train_set, batch_size=batch_size, shuffle=True, drop_last=True,
                              generator=torch.Generator().manual_seed(seed))
    test_loader = DataLoader(test_set, batch_size=len(test_set))
    model = LSTMClassifier(hidden_size)
    loss_fn = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
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
