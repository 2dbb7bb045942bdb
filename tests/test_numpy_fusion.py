"""The NumPy module's pooled convolutions: found where they apply, proven, and exact like torch.

A convolution over the input, its ReLU and a 2x2 max-pool are printed one pooling window at a
time (codegen/numpy/fusion.py); the rewrites that allow it are proven on the helpers' own source
(derive/rewrites.py), wrong helpers are refuted (tests/wrong_rules.py, run by
tests/test_compiled_rewrites.py), and a rewrite that does not hold is not applied.
"""

from __future__ import annotations

import dataclasses
import importlib.util

import numpy as np
import pytest
import torch
import torch.nn.functional as tf

from gradproof.codegen.numpy import emitter, fusion
from gradproof.derive import rewrites
from gradproof.derive.network import build
from gradproof.derive.spec import load, parse
from gradproof.generated import small_cnn
from tests.test_generated_numeric import sample, torch_loss

MNIST = """
name = "mnist_cnn8"
input = [1, 28, 28]
loss = "bce"
layers = [{type = "conv2d", filters = 8, kernel = 5}, {type = "relu"}, {type = "maxpool2d", size = 2},
          {type = "flatten"}, {type = "dense", units = 1}, {type = "sigmoid"}]
"""


def _fused_steps(name_or_spec) -> list[str]:
    network = build(load(name_or_spec) if "\n" not in name_or_spec else parse(name_or_spec, "<test>"))
    return [block.conv.output.name for block in fusion.find(network)]


def test_the_pattern_is_found_where_the_rules_allow_it_and_nowhere_else():
    assert _fused_steps("small_cnn") == ["Z1"]
    assert _fused_steps(MNIST) == ["Z1"]
    for name in ("mlp", "sigmoid_cnn", "sigmoid_cnn3", "lenet5"):  # sigmoid, tanh, average pooling
        assert _fused_steps(name) == [], name
    variants = {
        "stride 2": MNIST.replace("kernel = 5}", "kernel = 5, stride = 2}").replace("size = 2}", "size = 2}"),
        "padding 1": MNIST.replace("kernel = 5}", "kernel = 4, padding = 1}"),
        "a pool that crops (floor mode)": MNIST.replace("kernel = 5}", "kernel = 4}"),
        "sigmoid before the pool": MNIST.replace('{type = "relu"}', '{type = "sigmoid"}'),
    }
    for what, spec in variants.items():
        assert _fused_steps(spec) == [], what


def test_a_second_convolution_is_printed_as_declared():
    """Its input gradient reads dZ at every position, so only the first, over the input, is fused."""
    second = '{type = "conv2d", filters = 4, kernel = 3}, {type = "relu"}, {type = "maxpool2d", size = 2}'
    spec = MNIST.replace('{type = "flatten"}', second + ', {type = "flatten"}').replace(
        "input = [1, 28, 28]", 'input = [1, 30, 30]\nproof = "reduced"'
    )
    assert _fused_steps(spec) == ["Z1"]


def test_every_rewrite_of_the_fused_block_is_proven_on_the_module_helpers():
    network = build(parse(MNIST, "<test>"))
    (block,) = fusion.find(network)
    records = fusion.proofs(block)
    assert [r.key for r in records] == [
        "window-correlation",
        "tournament-entry",
        "relu-maxpool",
        "relu-maxpool-routing",
        "window-weight-gradient",
    ]
    assert all(r.holds and r.failing is None and r.level == "rewrite" for r in records)
    correlation, weight = records[0], records[-1]
    assert "reduced sizes" in correlation.method and "F=2" in correlation.method  # 8 filters reduced
    assert "kernel 5x5" in weight.method


def test_the_kept_entry_is_the_first_maximum_on_every_tie():
    """window_max on every weak ordering of a window (75 for 2x2), against a scan written here."""
    window_max = fusion.helper_functions()["window_max"]
    for values in rewrites.window_patterns(2, with_zero=False):
        best, index = window_max(np.array(values, dtype=float).reshape(4, 1, 1))
        first = next(k for k, v in enumerate(values) if v == max(values))
        assert (best.item(), index.item()) == (max(values), first), values


def test_an_unproven_rewrite_leaves_the_rules_as_declared(monkeypatch):
    network = build(load("small_cnn"))
    failing = dataclasses.replace(rewrites.prove_relu_after_pool(2), holds=False, failing="refuted: test")
    monkeypatch.setattr(rewrites, "prove_relu_after_pool", lambda size: failing)
    ((_, text),) = emitter.render(network, []).items()
    assert "relu-maxpool (NOT PROVEN, not applied)" in text
    assert "dA1 = route_max(A1, dP1, 2)" in text and "window_max(" not in text.split("def forward")[1]


def test_the_committed_small_cnn_module_is_fused_and_says_so():
    text = open(small_cnn.__file__).read()
    assert "X_windows = pooled_patches(X, 3, 3, 2)" in text
    assert "# [rewrite window-weight-gradient, proven:" in text
    assert "# [proven: dL/dW1: local 9/9, end-to-end 9/9 entries]" in text
    for key in ("window-correlation", "tournament-entry", "relu-maxpool", "relu-maxpool-routing"):
        assert f"- {key} (proven)" in text


def _mnist_module(tmp_path):
    ((path, source),) = emitter.render(build(parse(MNIST, "<test>")), []).items()
    file = tmp_path / "mnist_cnn8.py"
    file.write_text(source)
    spec = importlib.util.spec_from_file_location("mnist_cnn8_fused", file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _torch_step(params, X, Y):
    """The same network in torch.nn.functional, by autograd (float64)."""
    t = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    z = tf.conv2d(torch.tensor(X), t["W1"], t["B1"])
    p = tf.max_pool2d(torch.relu(z), 2).reshape(len(X), -1)
    loss = tf.binary_cross_entropy_with_logits(p @ t["W2"] + t["B2"], torch.tensor(Y))
    loss.backward()
    return loss.item(), {k: v.grad.numpy() for k, v in t.items()}


def test_the_mnist_size_module_agrees_with_torch_on_ties_kinks_and_random_inputs(tmp_path):
    module = _mnist_module(tmp_path)
    rng = np.random.default_rng(0)
    params = module.init_params(rng)
    X = rng.normal(size=(6, 1, 28, 28))
    Y = rng.integers(0, 2, size=(6, 1)).astype(float)
    X[0, 0, :8, :8] = 0.0  # zero inputs: Z1 = B1 = 0 on a patch, kinks and tied windows
    X[1, 0, ::2] = X[1, 0, 1::2]  # rows repeated: windows tied between rows
    params["B1"][:] = 0.0
    loss, grads = module.loss_and_grads(params, X, Y)
    expected_loss, expected = _torch_step(params, X, Y)
    assert loss == pytest.approx(expected_loss, rel=1e-12)
    for key in expected:
        np.testing.assert_allclose(grads[key], expected[key], rtol=1e-10, atol=1e-13, err_msg=key)


def test_a_four_way_tie_routes_to_the_top_left_entry_like_torch():
    spec, params, X, Y = sample("small_cnn", seed=3)
    params["W1"][:] = 0.0
    params["B1"][:] = 1.0  # Z1 = 1 everywhere: every window a four-way tie
    _, cache = small_cnn.forward(params, X)
    np.testing.assert_array_equal(cache["R1"], 0)
    upstream = np.arange(1.0, 1.0 + cache["M1"].size).reshape(cache["M1"].shape)
    routed = small_cnn.route_to_entries(upstream, cache["R1"], 4)  # (entry, filter, (I, J, sample))
    n = len(X)
    as_image = routed.reshape(2, 2, 1, 2, 2, n).transpose(5, 2, 3, 0, 4, 1).reshape(n, 1, 4, 4)
    A1 = torch.ones((n, 1, 4, 4), dtype=torch.float64, requires_grad=True)
    tf.max_pool2d(A1, 2).backward(torch.tensor(upstream.reshape(1, 2, 2, n).transpose(3, 0, 1, 2).copy()))
    np.testing.assert_array_equal(as_image, A1.grad.numpy())
    _, grads = small_cnn.loss_and_grads(params, X, Y)
    _, expected = torch_loss(spec, params, X, Y)
    for key in grads:
        np.testing.assert_allclose(grads[key], expected[key], rtol=1e-12, atol=1e-15, err_msg=key)
