"""The layer vocabulary of real CNNs: tanh, avgpool2d, floor-mode pooling, softmax cross-entropy.

Each new type is proven (local and end to end, its lemma or identities), its generated module
agrees with PyTorch (which shares no code with gradproof) on the loss and every gradient to
rtol 1e-10 in float64, and each new operation's NumPy reading agrees with its symbolic one.
The wrong rules for these types are in ``tests/wrong_rules.py`` (refuted in test_soundness).
"""

from __future__ import annotations

import types

import numpy as np
import pytest
import sympy as sp
import torch
import torch.nn.functional as tf

from gradproof.codegen.numpy.printer import NumpyReading
from gradproof.codegen.outputs import render_all
from gradproof.derive import operations as ops
from gradproof.derive import prover
from gradproof.derive import texpr as tx
from gradproof.derive.layers.softmax import CrossEntropy
from gradproof.derive.network import build
from gradproof.derive.spec import parse
from gradproof.derive.symbolic import SymbolicReading
from tests.wrong_rules import TEST_SPECS

MAXPOOL_FLOOR = """
name = "maxpool_floor"
input = [2, 6, 6]
loss = "cross_entropy"
batch = 2
[[layers]]
type = "conv2d"
filters = 2
kernel = 2
[[layers]]
type = "relu"
[[layers]]
type = "maxpool2d"
size = 2
[[layers]]
type = "flatten"
[[layers]]
type = "dense"
units = 3
[[layers]]
type = "tanh"
[[layers]]
type = "dense"
units = 4
[[layers]]
type = "softmax"
"""


def _network(text: str):
    return build(parse(text, source="<test>"))


@pytest.fixture(scope="module")
def vocab():
    network = _network(TEST_SPECS["vocab"])
    return network, prover.prove(network)


def _module(network, records) -> types.ModuleType:
    outputs = render_all(network, records)
    path = f"generated/{network.spec.name}.py"
    module = types.ModuleType(network.spec.name)
    exec(compile(outputs[path], path, "exec"), module.__dict__)  # noqa: S102
    return module


def test_the_vocabulary_network_is_proven(vocab):
    network, records = vocab
    assert [(r.level, r.name) for r in records if not r.holds] == []
    keys = {r.key for r in records}
    assert {"softmax-ce", "ce-logsumexp"} <= keys
    local = {(r.step_output, r.target) for r in records if r.level == "local"}
    assert {("A1", "Z1"), ("P1", "A1"), ("A2", "Z2"), ("L", "Z2")} <= local
    identity = next(r for r in records if r.key == "softmax-ce")
    assert identity.window == 3 and "sum_k Y_k = 1" in identity.statement


def test_the_softmax_rule_needs_its_hypothesis(monkeypatch):
    """Without sum_k Y_k = 1 the fused rule A - Y is false, and the prover says so."""
    monkeypatch.setattr(CrossEntropy, "constrain_target", lambda self, target: target)
    network = _network(TEST_SPECS["vocab"])
    records = prover.prove(network)
    failed = {r.name for r in records if not r.holds}
    assert "cross_entropy loss: dL/dZ2" in failed


def _torch_vocab(params, X, Y):
    t = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    a1 = torch.tanh(tf.conv2d(torch.tensor(X), t["W1"], t["B1"]))
    p1 = tf.avg_pool2d(a1, 3)  # floor mode, PyTorch's default
    z2 = p1.flatten(1) @ t["W2"] + t["B2"]
    loss = tf.cross_entropy(z2, torch.tensor(Y), reduction="mean")
    loss.backward()
    return loss.item(), {k: v.grad.numpy() for k, v in t.items()}


def _torch_maxpool_floor(params, X, Y):
    t = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    p1 = tf.max_pool2d(torch.relu(tf.conv2d(torch.tensor(X), t["W1"], t["B1"])), 2)
    a2 = torch.tanh(p1.flatten(1) @ t["W2"] + t["B2"])
    loss = tf.cross_entropy(a2 @ t["W3"] + t["B3"], torch.tensor(Y), reduction="mean")
    loss.backward()
    return loss.item(), {k: v.grad.numpy() for k, v in t.items()}


def _perturbed(module, rng):
    params = module.init_params(rng)
    return {k: v + rng.normal(scale=0.3, size=v.shape) for k, v in params.items()}


def _torch_strided(params, X, Y):
    t = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    a1 = torch.tanh(tf.conv2d(torch.tensor(X), t["W1"], t["B1"]))
    z2 = tf.conv2d(a1, t["W2"], t["B2"], stride=2, padding=1)
    loss = tf.cross_entropy(z2.flatten(1) @ t["W3"] + t["B3"], torch.tensor(Y), reduction="mean")
    loss.backward()
    return loss.item(), {k: v.grad.numpy() for k, v in t.items()}


@pytest.mark.parametrize("name", ["vocab", "maxpool_floor", "strided"])
def test_the_generated_module_matches_torch(vocab, name):
    if name == "vocab":
        network, records = vocab
        reference, shape, classes = _torch_vocab, (1, 5, 5), 3
    elif name == "strided":
        network = _network(TEST_SPECS["strided"])
        records = prover.prove(network)
        assert all(r.holds for r in records)
        reference, shape, classes = _torch_strided, (1, 5, 4), 2
        assert network.params[2].shape == (2, 1, 3, 2)  # W2: (F, C, kh, kw)
    else:
        network = _network(MAXPOOL_FLOOR)
        records = prover.prove(network)
        assert all(r.holds for r in records)
        reference, shape, classes = _torch_maxpool_floor, (2, 6, 6), 4
    module = _module(network, records)
    rng = np.random.default_rng(16)
    params = _perturbed(module, rng)
    X = rng.normal(size=(9, *shape))
    labels = rng.integers(0, classes, size=9)
    one_hot = np.eye(classes)[labels]
    loss, grads = module.loss_and_grads(params, X, one_hot)
    expected_loss, expected = reference(params, X, one_hot)
    assert loss == pytest.approx(expected_loss, rel=1e-12)
    for key in expected:
        np.testing.assert_allclose(grads[key], expected[key], rtol=1e-10, atol=1e-14, err_msg=key)


# ----------------------------------------------------- each operation's readings


X4 = tx.Tensor("X", (tx.BATCH, 2, 7, 6))
CASES = [
    ops.Pad(X4, ((1, 2), (0, 1))),
    ops.Crop(X4, ((1, 2), (0, 1))),
    ops.AvgPool(ops.Crop(X4, ((0, 1), (0, 0))), 3),
    ops.SpreadAvg(tx.Tensor("G", (tx.BATCH, 2, 2, 3)), 3),
    ops.Softmax(tx.Tensor("Z", (tx.BATCH, 4))),
    ops.StridedCorrelate(X4, tx.Tensor("K", (3, 2, 3, 2)), 2),
    ops.StridedWeightGrad(X4, tx.Tensor("G", (tx.BATCH, 3, 3, 3)), 2, (3, 2)),
    ops.TransposedConvolve(tx.Tensor("G", (tx.BATCH, 3, 3, 3)), tx.Tensor("K", (3, 2, 3, 2)), 2, (7, 6)),
    ops.SoftmaxVJP(ops.Softmax(tx.Tensor("Z", (tx.BATCH, 4))), tx.Tensor("G2", (tx.BATCH, 4))),
    ops.SoftmaxCrossEntropy(tx.Tensor("Z", (tx.BATCH, 4)), tx.Tensor("Y", (tx.BATCH, 4)), "mean"),
]


def test_strided_readings_match_torch():
    """The strided correlation, its weight gradient and its transpose against torch's conv2d autograd."""
    rng = np.random.default_rng(5)
    x, k, g = rng.normal(size=(2, 2, 7, 6)), rng.normal(size=(3, 2, 3, 2)), rng.normal(size=(2, 3, 3, 3))
    namespace = _helpers(ops.StridedCorrelate(X4, tx.Tensor("K", (3, 2, 3, 2)), 2))
    namespace.update(_helpers(ops.StridedWeightGrad(X4, tx.Tensor("G", (tx.BATCH, 3, 3, 3)), 2, (3, 2))))
    namespace.update(
        _helpers(
            ops.TransposedConvolve(
                tx.Tensor("G", (tx.BATCH, 3, 3, 3)), tx.Tensor("K", (3, 2, 3, 2)), 2, (7, 6)
            )
        )
    )
    tx_, tk = torch.tensor(x, requires_grad=True), torch.tensor(k, requires_grad=True)
    out = tf.conv2d(tx_, tk, stride=2)  # 7 rows, kernel 3, stride 2: floor mode leaves row 6 out
    (out * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(namespace["correlate_strided"](x, k, 2), out.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(
        namespace["correlate_strided_weight"](x, g, 2, 3, 2), tk.grad.numpy(), rtol=1e-12
    )
    np.testing.assert_allclose(namespace["transposed_convolve"](g, k, 2, 7, 6), tx_.grad.numpy(), rtol=1e-12)


def _helpers(expr) -> dict:
    from numpy.lib.stride_tricks import as_strided

    reading = NumpyReading()
    reading(expr)
    namespace = {"np": np, "as_strided": as_strided}
    for helper in reading.carried.values():
        exec(helper, namespace)  # noqa: S102
    return namespace


@pytest.mark.parametrize("expr", CASES, ids=lambda e: type(e).__name__)
def test_numpy_reading_agrees_with_the_symbolic_one(expr):
    rng = np.random.default_rng(3)
    batch = 2
    tensors = tx.tensors_in(expr)
    values = {t.name: rng.normal(size=tuple(batch if d == tx.BATCH else d for d in t.shape)) for t in tensors}
    if "Y" in values:  # a target row sums to 1
        values["Y"] = np.abs(values["Y"])
        values["Y"] /= values["Y"].sum(axis=1, keepdims=True)
    exact = {k: np.vectorize(lambda v: sp.Float(v, 30), otypes=[object])(v) for k, v in values.items()}
    symbolic = SymbolicReading(exact, batch)(expr)
    expected = np.array(
        [sp.N(v, 30) for v in np.asarray(symbolic, dtype=object).ravel()], dtype=float
    ).reshape(np.shape(symbolic))
    reading = NumpyReading()
    source = reading(expr)
    namespace = {"np": np, "N": batch, **values}
    from numpy.lib.stride_tricks import as_strided

    namespace["as_strided"] = as_strided
    for helper in reading.carried.values():
        exec(helper, namespace)  # noqa: S102
    got = eval(source, namespace)  # noqa: S307
    np.testing.assert_allclose(np.asarray(got, dtype=float), expected, rtol=1e-12, atol=1e-14)
