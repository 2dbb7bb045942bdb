"""LeNet-5, the built-in: its architecture, what is proven for which sizes, and its generated module.

The generated module is also checked, like every built-in, against the loop reference, central
finite differences and PyTorch in tests/test_generated_numeric.py (parametrised over the
built-ins). Here: the spec is the classic one, the proof says exactly what was proven at which
sizes, and a wrong rule is still refuted on the miniature.
"""

from __future__ import annotations

import dataclasses
import importlib

import numpy as np
import pytest
import torch
import torch.nn.functional as tf

from gradproof.codegen import cli
from gradproof.derive import miniature, prover
from gradproof.derive import texpr as tx
from gradproof.derive.network import build
from gradproof.derive.spec import load


@pytest.fixture(scope="module")
def lenet():
    network = build(load("lenet5"))
    return network, prover.prove(network)


def test_networks_lists_lenet5(capsys):
    assert cli.main(["networks"]) == 0
    assert "lenet5" in capsys.readouterr().out


def test_the_classic_architecture_and_its_61706_parameters(lenet):
    network, _ = lenet
    shapes = {p.name: p.shape for p in network.params}
    assert shapes == {
        "W1": (6, 1, 5, 5),
        "B1": (6,),
        "W2": (16, 6, 5, 5),
        "B2": (16,),
        "W3": (400, 120),
        "B3": (120,),
        "W4": (120, 84),
        "B4": (84,),
        "W5": (84, 10),
        "B5": (10,),
    }
    assert (
        network.parameter_count
        == 61_706
        == (150 + 6) + (2400 + 16) + (48000 + 120) + (10080 + 84) + (840 + 10)
    )
    outputs = [(s.output.name, s.output.shape[1:]) for s in network.steps[:-1]]
    assert outputs[:6] == [
        ("Z1", (6, 28, 28)),
        ("A1", (6, 28, 28)),
        ("P1", (6, 14, 14)),
        ("Z2", (16, 10, 10)),
        ("A2", (16, 10, 10)),
        ("P2", (16, 5, 5)),
    ]
    assert outputs[6] == ("F", (400,)) and outputs[-1] == ("A5", (10,))


def test_what_is_proven_and_at_which_sizes(lenet):
    network, records = lenet
    assert [r.name for r in records if not r.holds] == []
    small = miniature.miniature(network.spec)
    assert small.input == (1, 16, 16)
    sizes = miniature.describe(small)
    assert sizes == "input 1x16x16; widths 2, 2, 3, 3, 10"
    local = [r for r in records if r.level == "local"]
    assert local and all(r.sizes == sizes and "reduced sizes" in r.statement for r in local)
    # every rule of every layer type, proven on the miniature
    assert {(r.step_output, r.target) for r in local} == {
        (s.output.name, t) for s in network.steps for t in s.rules
    }
    # the miniature is beyond the element-wise limits as a whole, so no end-to-end record claims it
    assert not miniature.fits_end_to_end(small)
    assert not [r for r in records if r.level == "end-to-end"]
    at_full_size = {r.key: r for r in records if not r.sizes}
    assert {
        "shapes",
        "composition",
        "parameter-count",
        "softmax-ce",
        "ce-logsumexp",
    } <= set(at_full_size)
    assert at_full_size["parameter-count"].entries == 61_706
    assert at_full_size["softmax-ce"].window == 10  # the identity for LeNet's ten classes


def test_a_wrong_rule_is_refuted_on_the_miniature(lenet):
    network, _ = lenet
    steps = list(network.steps)
    index = next(i for i, s in enumerate(steps) if s.output.name == "A3")  # tanh after dense 120
    z = steps[index].input
    wrong = tx.Product(steps[index].upstream, tx.OneMinus(steps[index].output))  # tanh' = 1 - A
    steps[index] = dataclasses.replace(steps[index], rules={z.name: wrong})
    wrong_network = dataclasses.replace(network, steps=tuple(steps))
    small = build(miniature.miniature(network.spec))
    small_steps = list(small.steps)
    small_steps[index] = dataclasses.replace(
        small_steps[index],
        rules={z.name: tx.Product(small_steps[index].upstream, tx.OneMinus(small_steps[index].output))},
    )
    records = prover.prove(dataclasses.replace(small, steps=tuple(small_steps)), end_to_end=False)
    refuted = [r for r in records if not r.holds]
    # refuted for all sizes (a theorem of its own, covering that layer only), on the miniature, and
    # so the composition of the network's rules fails
    assert [(r.level, r.name) for r in refuted] == [
        ("parametric", "tanh: dL/dZ1 (all sizes)"),
        ("composition", "rules composed by the chain rule"),
        ("local", "tanh: dL/dZ3"),
    ]
    theorem = refuted[0]
    assert theorem.verdict == "refuted" and theorem.counterexample
    assert theorem.instances == [("A3", "Z3")]
    proven = [r for r in records if r.level == "parametric" and r.name == theorem.name and r.holds]
    assert [i for r in proven for i in r.instances] == [("A1", "Z1"), ("A2", "Z2"), ("A4", "Z4")]
    assert wrong_network.steps[index].rules[z.name] == wrong  # the mutation is the one refuted above


def test_a_shape_error_at_full_size_is_refused(lenet):
    network, _ = lenet
    steps = list(network.steps)
    index = next(i for i, s in enumerate(steps) if s.output.name == "Z3")
    step = steps[index]
    w = next(p for p in step.params if p.name == "W3")
    wrong = tx.MatMul(tx.Transpose(step.upstream), step.input)  # dZ^T F: (120, 400), not (400, 120)
    steps[index] = dataclasses.replace(step, rules={**step.rules, w.name: wrong})
    record = prover._shapes(dataclasses.replace(network, steps=tuple(steps)))
    assert not record.holds and record.failing.startswith("dL/dW3")


def test_the_generated_module_is_lenet5_in_torch():
    """The committed module against LeNet-5 written in torch.nn.functional: loss and every gradient."""
    module = importlib.import_module("gradproof.generated.lenet5")
    rng = np.random.default_rng(1998)
    params = module.init_params(rng)
    params = {k: v + rng.normal(scale=0.05, size=v.shape) for k, v in params.items()}
    X = rng.normal(size=(6, 1, 32, 32))
    labels = rng.integers(0, 10, size=6)
    Y = np.eye(10)[labels]
    loss, grads = module.loss_and_grads(params, X, Y)
    t = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    h = tf.avg_pool2d(torch.tanh(tf.conv2d(torch.tensor(X), t["W1"], t["B1"])), 2)
    h = tf.avg_pool2d(torch.tanh(tf.conv2d(h, t["W2"], t["B2"])), 2).flatten(1)
    h = torch.tanh(torch.tanh(h @ t["W3"] + t["B3"]) @ t["W4"] + t["B4"])
    expected = tf.cross_entropy(h @ t["W5"] + t["B5"], torch.tensor(labels))
    expected.backward()
    assert loss == pytest.approx(expected.item(), rel=1e-12)
    for key, tensor in t.items():
        np.testing.assert_allclose(grads[key], tensor.grad.numpy(), rtol=1e-10, atol=1e-14, err_msg=key)
