"""A small Transformer encoder classifier on the 8x8 digits: the 8 rows of an image are 8
tokens of 8 pixels.

Each row is embedded by a Linear to d_model, a learned positional embedding (an nn.Parameter,
one vector per row position) is added, and an nn.TransformerEncoder of two
nn.TransformerEncoderLayer (batch_first) mixes the tokens; their mean goes through a Linear to
10 logits. Trains eagerly with AdamW; prints the loss per epoch and the test accuracy (about
96%).

    python examples/transformer_classifier.py
"""

from __future__ import annotations

import gcomp as torch  # PyTorch's names: torch.nn, torch.optim, torch.utils.data, ...
from gcomp import nn
from gcomp.data.datasets import Digits
from gcomp.utils.data import DataLoader


class TransformerClassifier(nn.Module):
    def __init__(self, d_model: int = 32, nhead: int = 4, num_layers: int = 2,
                 dim_feedforward: int = 64, dropout: float = 0.1, num_tokens: int = 8):
        super().__init__()
        self.embed = nn.Linear(8, d_model)
        self.pos_embedding = nn.Parameter(torch.zeros(1, num_tokens, d_model))
        nn.init.normal_(self.pos_embedding, std=0.02)
        layer = nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward=dim_feedforward,
                                           dropout=dropout, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers)
        self.fc = nn.Linear(d_model, 10)

    def forward(self, images):
        tokens = images.squeeze(1)  # [N, 1, 8, 8] -> [N, 8 tokens (rows), 8 pixels]
        x = self.embed(tokens) + self.pos_embedding  # [N, 8, d_model]
        x = self.encoder(x)
        return self.fc(x.mean(dim=1))


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
    """Fraction of correctly classified samples (eval mode: no dropout)."""
    model.eval()
    correct, count = 0, 0
    with torch.no_grad():
        for images, labels in loader:
            correct += (model(images).argmax(dim=1) == labels).sum().item()
            count += len(labels)
    return correct / count


def main(epochs: int = 10, batch_size: int = 64, lr: float = 3e-3, d_model: int = 32,
         seed: int = 0, verbose: bool = True) -> float:
    """Train for ``epochs`` and return the test accuracy."""
    torch.manual_seed(seed)
    # drop_last and one test batch keep the batch shapes few: gcomp compiles each op once per
    # input shape on first use, so a ragged last batch would cost one more compile of each.
    train_set, test_set = Digits(train=True), Digits(train=False)
    train_loader = DataLoader(train_set, batch_size=batch_size, shuffle=True, drop_last=True,
                              generator=torch.Generator().manual_seed(seed))
    test_loader = DataLoader(test_set, batch_size=len(test_set))
    model = TransformerClassifier(d_model)
    loss_fn = nn.CrossEntropyLoss()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
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
