"""Training on real data: the example's steps with the generated module equal the same steps in PyTorch.

From the same initial weights and the same minibatches of scikit-learn's digits, SGD with momentum
driven by the generated module's gradients and torch.optim.SGD driven by PyTorch's autograd of
the same network (written independently in torch.nn.functional) give the same losses and the same
parameters to 1e-10 in float64, step for step.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as tf

pytest.importorskip("sklearn", reason="the examples extra (scikit-learn) is not installed")

ROOT = Path(__file__).resolve().parent.parent


def _example():
    spec = importlib.util.spec_from_file_location("train_digits", ROOT / "examples" / "train_digits.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _torch_loss(t: dict, X: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    h = tf.avg_pool2d(torch.tanh(tf.conv2d(X, t["W1"], t["B1"], padding=1)), 2)
    h = tf.avg_pool2d(torch.tanh(tf.conv2d(h, t["W2"], t["B2"], padding=1)), 2).flatten(1)
    h = torch.tanh(h @ t["W3"] + t["B3"])
    return tf.cross_entropy(h @ t["W4"] + t["B4"], labels)


def test_training_steps_agree_with_torch():
    example = _example()
    sys.path.insert(0, str(ROOT))
    from generated import digits_lenet

    (X, labels), _ = example.digits()
    X, labels = X[:320], labels[:320]
    params = digits_lenet.init_params(np.random.default_rng(0))
    t = {k: torch.tensor(v.copy(), requires_grad=True) for k, v in params.items()}
    optimiser = torch.optim.SGD(list(t.values()), lr=0.1, momentum=0.9)

    ours, theirs = [], []
    velocity: dict = {}
    rng = np.random.default_rng(1)
    for _ in range(2):  # two epochs of 10 minibatches
        for index in example.batches(len(X), 32, rng):
            loss, grads = digits_lenet.loss_and_grads(params, X[index], labels[index])
            example.sgd_momentum(params, grads, velocity, 0.1, 0.9)
            ours.append(loss)
            optimiser.zero_grad()
            value = _torch_loss(t, torch.tensor(X[index]), torch.tensor(labels[index]))
            value.backward()
            optimiser.step()
            theirs.append(value.item())
    np.testing.assert_allclose(ours, theirs, rtol=1e-10)
    assert ours[-1] < ours[0]  # it learns
    for name, value in params.items():
        np.testing.assert_allclose(value, t[name].detach().numpy(), rtol=1e-10, atol=1e-12, err_msg=name)


def test_the_generated_module_checks_its_inputs():
    sys.path.insert(0, str(ROOT))
    from generated import digits_lenet

    params = digits_lenet.init_params(np.random.default_rng(0))
    X = np.zeros((4, 1, 8, 8))
    with pytest.raises(
        ValueError, match=r"^Y: expected shape \(4, 10\) or class indices \(N,\), got \(4, 3\)$"
    ):
        digits_lenet.loss_and_grads(params, X, np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"^X: the batch is empty"):
        digits_lenet.loss_and_grads(params, X[:0], np.zeros(0, dtype=int))
    with pytest.raises(ValueError, match=r"^Y: class index 10 is out of range 0\.\.9$"):
        digits_lenet.loss_and_grads(params, X, np.array([0, 1, 10, 2]))
    with pytest.raises(ValueError, match=r"^X: dtype float32 differs from the parameters' float64"):
        digits_lenet.loss_and_grads(params, X.astype(np.float32), np.array([0, 1, 2, 3]))
    with pytest.raises(ValueError, match=r"^X: expected shape \(N, 1, 8, 8\), got \(4, 8, 8\)$"):
        digits_lenet.forward(params, X[:, 0])
    with pytest.raises(ValueError, match=r"^Y: row 0 sums to 0\.0, not 1"):
        digits_lenet.loss_and_grads(params, X, np.zeros((4, 10)))
    indices = np.array([3, 1, 4, 1])
    by_index = digits_lenet.loss_and_grads(params, X, indices)
    one_hot = digits_lenet.loss_and_grads(params, X, np.eye(10)[indices])
    assert by_index[0] == one_hot[0]
    assert all(np.array_equal(by_index[1][k], one_hot[1][k]) for k in one_hot[1])
