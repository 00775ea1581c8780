"""Linear regression, y = 3x + 1 + noise, with plain tensors and a hand-written SGD step.

Runs the same step eagerly and compiled (one XLA executable that also updates w and b in place),
prints both loss curves side by side, and the compiled step's IR.

    python examples/linear_regression.py [--steps 50]
"""

from __future__ import annotations

import argparse

import gcomp as torch  # PyTorch's names: this file runs under real torch with `import torch`


def make_data(n: int = 128):
    torch.manual_seed(0)
    x = torch.randn(n, 1)
    y = 3 * x + 1 + 0.1 * torch.randn(n, 1)
    return x, y


def make_params():
    w = torch.zeros(1, 1, requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    return w, b


def sgd_step(w, b, x, y, lr):
    """One step: forward, loss, backward, update, zero the gradients."""
    loss = ((x @ w + b - y) ** 2).mean()
    loss.backward()
    with torch.no_grad():
        w -= lr * w.grad
        b -= lr * b.grad
    w.grad = None
    b.grad = None
    return loss


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--lr", type=float, default=0.1)
    args = ap.parse_args(argv)
    x, y = make_data()

    w_e, b_e = make_params()
    eager = [sgd_step(w_e, b_e, x, y, args.lr).item() for _ in range(args.steps)]

    w_c, b_c = make_params()

    @torch.compile
    def step(x, y):
        return sgd_step(w_c, b_c, x, y, args.lr)

    compiled = [step(x, y).item() for _ in range(args.steps)]

    print(f"{'step':>5} {'eager loss':>12} {'compiled loss':>14}")
    for i in list(range(0, args.steps, max(1, args.steps // 10))) + [args.steps - 1]:
        print(f"{i:>5} {eager[i]:>12.6f} {compiled[i]:>14.6f}")
    print(f"eager:    w = {w_e.item():.4f}, b = {b_e.item():.4f}")
    print(f"compiled: w = {w_c.item():.4f}, b = {b_c.item():.4f}   (true: w = 3, b = 1)")
    worst = max(abs(a - c) for a, c in zip(eager, compiled, strict=True))
    print(f"largest difference between the loss curves: {worst:.2e}")
    print(f"cache: {step.cache_info()}")
    print("\nThe compiled step's IR (after the autodiff and dce passes):\n")
    print(step.ir(x, y))


if __name__ == "__main__":
    main()
