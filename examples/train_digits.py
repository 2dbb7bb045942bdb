"""Train the generated LeNet-style network on scikit-learn's 8x8 digits, offline.

    pip install -e '.[examples]'
    python examples/train_digits.py            # 30 epochs, prints each, writes examples/train_digits.png

The network is examples/digits_lenet.toml (two padded 3x3 convolutions with tanh and 2x2 average
pooling, a hidden dense layer, softmax cross-entropy over the ten digits); its forward and
backward pass are the generated module generated/digits_lenet.py, whose every rule gradproof
proved. Training is minibatch SGD with momentum in the form PyTorch's ``torch.optim.SGD`` uses
(``v = momentum * v + g; theta -= lr * v``), on a fixed held-out split (the last 25 % of a
permutation drawn with seed 0). ``tests/test_train_digits.py`` runs the same steps with PyTorch
from the same initial weights and batches and checks the losses and the parameters agree to
1e-10 in float64.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
PLOT = ROOT / "examples" / "train_digits.png"


def digits(seed: int = 0):
    """The 1797 digits as (N, 1, 8, 8) floats in [0, 1] with their labels, split 75 % / 25 % (fixed)."""
    from sklearn.datasets import load_digits  # the data ships inside scikit-learn: no download

    data = load_digits()
    X = (data.images / 16.0).reshape(-1, 1, 8, 8)
    labels = data.target
    order = np.random.default_rng(seed).permutation(len(X))
    cut = int(0.75 * len(X))
    train, test = order[:cut], order[cut:]
    return (X[train], labels[train]), (X[test], labels[test])


def batches(n: int, size: int, rng) -> list[np.ndarray]:
    """One epoch's minibatches: a permutation of range(n) in slices of ``size``."""
    order = rng.permutation(n)
    return [order[start : start + size] for start in range(0, n, size)]


def sgd_momentum(params: dict, grads: dict, velocity: dict, lr: float, momentum: float) -> None:
    """One step of SGD with momentum, in place: v = momentum v + g, theta -= lr v (torch.optim.SGD's form)."""
    for name, g in grads.items():
        velocity[name] = momentum * velocity[name] + g if name in velocity else g.copy()
        params[name] -= lr * velocity[name]


def accuracy(module, params: dict, X: np.ndarray, labels: np.ndarray) -> float:
    probabilities, _ = module.forward(params, X)
    return float(np.mean(probabilities.argmax(axis=1) == labels))


def train(module, params: dict, train_set, epochs: int, batch: int, lr: float, momentum: float, seed: int,
          test_set=None, report=None) -> list[dict]:  # fmt: skip
    """Minibatch SGD with momentum; the history of each epoch (mean batch loss, accuracies)."""
    X, labels = train_set
    rng = np.random.default_rng(seed)
    velocity: dict = {}
    history = []
    for epoch in range(1, epochs + 1):
        losses = []
        for index in batches(len(X), batch, rng):
            loss, grads = module.loss_and_grads(params, X[index], labels[index])  # class indices, converted
            sgd_momentum(params, grads, velocity, lr, momentum)
            losses.append(loss)
        row = {"epoch": epoch, "loss": float(np.mean(losses)), "train": accuracy(module, params, X, labels)}
        if test_set is not None:
            row["test"] = accuracy(module, params, *test_set)
        history.append(row)
        if report:
            report(row)
    return history


def plot(history: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [row["epoch"] for row in history]
    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4))
    left.plot(epochs, [row["loss"] for row in history], color="tab:blue")
    left.set(xlabel="epoch", ylabel="mean training loss (cross-entropy)", yscale="log")
    right.plot(epochs, [100 * row["train"] for row in history], label="training set")
    right.plot(epochs, [100 * row["test"] for row in history], label="held-out set")
    right.axhline(97, color="grey", linewidth=0.8, linestyle="--")
    right.set(xlabel="epoch", ylabel="accuracy (%)", ylim=(80, 100.5))
    right.legend(loc="lower right")
    figure.suptitle("gradproof's generated digits_lenet on scikit-learn's 8x8 digits (SGD with momentum)")
    figure.tight_layout()
    figure.savefig(path, dpi=120, metadata={"Software": None})  # no version stamp: the file stays stable
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--momentum", type=float, default=0.9)
    parser.add_argument("--plot", type=Path, default=PLOT)
    args = parser.parse_args(argv)

    sys.path.insert(0, str(ROOT))  # the generated module of this repository, as a user's project imports it
    from generated import digits_lenet

    train_set, test_set = digits()
    params = digits_lenet.init_params(np.random.default_rng(0))

    def report(row):
        print(f"epoch {row['epoch']:3d}  loss {row['loss']:.4f}  train {100 * row['train']:5.1f} %  "
              f"held-out {100 * row['test']:5.1f} %", flush=True)  # fmt: skip

    settings = (args.epochs, args.batch, args.lr, args.momentum)
    history = train(digits_lenet, params, train_set, *settings, seed=1, test_set=test_set, report=report)
    plot(history, args.plot)
    final = history[-1]["test"]
    print(f"held-out accuracy {100 * final:.1f} % on {len(test_set[0])} digits; plot: {args.plot}")
    return 0 if final >= 0.97 else 1


if __name__ == "__main__":
    raise SystemExit(main())
