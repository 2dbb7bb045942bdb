"""The theorems for all sizes say no: every wrong rule of the catalogue is refuted with a counterexample.

For each mutant of tests/wrong_rules.py the changed step's rules (and forward map) are proven for
all sizes; a mutant marked ``parametric`` must be ``refuted``, with a counterexample whose values
this test re-evaluates with the concrete entry-wise reading (``derive.symbolic``), which shares
nothing with the index form. A mistake made only on a kink or a tie must leave the theorems
proven (they are stated on the region) and is the convention obligations' to catch.
"""

from __future__ import annotations

import dataclasses

import pytest
import sympy as sp

from gradproof.derive import texpr as tx
from gradproof.derive.parametric import catalogue
from gradproof.derive.parametric.instances import statements_for
from gradproof.derive.parametric.theorem import NOT_PROVEN, PROVEN, REFUTED, prove
from tests.wrong_rules import CATALOGUE, installed, network_named


def _changed_steps(mutant):
    """The mutated network and its changed steps, each with the targets whose rule it keeps."""
    original = network_named(mutant.network)
    mutated = mutant.network_under_test()
    return mutated, [
        (
            s,
            {
                t
                for t, r in s.rules.items()
                if s.forward == o.forward and s.rule is o.rule and o.rules[t] == r
            },
        )
        for s, o in zip(mutated.steps, original.steps, strict=True)
        if s.rules != o.rules or s.forward != o.forward or s.rule is not o.rule
    ]


@pytest.mark.parametrize("mutant", CATALOGUE, ids=lambda m: m.name)
def test_wrong_rule_is_refuted_for_all_sizes(mutant, monkeypatch):
    with installed(monkeypatch):
        network, steps = _changed_steps(mutant)
        assert steps, mutant.name
        verdicts = []
        for step, kept in steps:
            _, statements = statements_for(network, step)
            for (target, _), statement in zip(step.rules.items(), statements, strict=True):
                verdict = prove(statement)
                if target in kept:  # a rule the mutant leaves alone stays proven at the network's options
                    assert verdict.status == PROVEN, (statement.name, verdict.reason)
                else:
                    verdicts.append((statement, verdict))
    statuses = {v.status for _, v in verdicts}
    if not mutant.parametric:
        assert statuses == {PROVEN}, [(s.name, v.reason) for s, v in verdicts]
        return
    refuted = [(s, v) for s, v in verdicts if v.status == REFUTED]
    assert refuted, [(s.name, v.status, v.reason) for s, v in verdicts]
    for _, verdict in refuted:
        example = verdict.counterexample
        assert example["sizes"] and (example.get("entry") or example.get("reason"))
        if example.get("entry"):
            assert sp.sympify(example["derivative"]) != sp.sympify(example["rule"])


def test_equivalent_relu_mask_read_from_the_output_is_proven():
    """dZ1 = dA1 * [A1 > 0] with A1 = relu(Z1): another rule, the same derivative (issue 15)."""
    network = network_named("small_cnn")
    step = next(s for s in network.steps if s.rule.name == "relu")
    other = dataclasses.replace(
        step, rules={step.input.name: tx.Product(step.upstream, tx.StepMask(step.output))}
    )
    network = dataclasses.replace(network, steps=tuple(other if s is step else s for s in network.steps))
    (statement,) = statements_for(network, other)[1]
    statement = dataclasses.replace(
        statement,
        definitions={**statement.definitions, "A1": tx.Relu(tx.Tensor("Z1", ()))},
        shapes={**statement.shapes, "A1": statement.shapes["Z1"]},
    )
    assert prove(statement).status == PROVEN


def test_what_the_method_cannot_decide_is_not_proven_not_refuted():
    """The max-pool rule at an unsplit index k needs 2 o = k - 1 solved: not proven, no counterexample."""
    (statement,) = catalogue.theorem_for("maxpool2d", {"size": 2}, "mean").statements
    verdict = prove(dataclasses.replace(statement, window=0))
    assert verdict.status == NOT_PROVEN and verdict.counterexample is None
    assert "no unit coefficient" in verdict.reason


STRIDED_TWICE = """
name = "strided_twice"
input = [1, 9, 9]
loss = "bce"
layers = [
    { type = "conv2d", filters = 2, kernel = 3, stride = 2 },
    { type = "conv2d", filters = 2, kernel = 3, stride = 2 },
    { type = "flatten" },
    { type = "dense", units = 1 },
    { type = "sigmoid" },
]
"""


def test_a_theorem_with_a_size_put_in_covers_only_the_layers_of_that_size():
    """A strided theorem is stated with the layer's input side put in (9, then 4 here): two strided
    layers of one type share no theorem, so neither is claimed at a side it was not proven for."""
    from gradproof.derive.network import build
    from gradproof.derive.parametric.network_proofs import parametric_records
    from gradproof.derive.spec import parse

    records, of_rule = parametric_records(build(parse(STRIDED_TWICE)))
    weight_theorems = [
        r for r in records if r.tensor == "conv2d/strided" and r.name.startswith("conv2d: dL/dW")
    ]
    assert [r.instances for r in weight_theorems] == [[("Z1", "W1")], [("Z2", "W2")]]
    assert all(r.holds for r in records) and of_rule[("Z1", "W1")] is not of_rule[("Z2", "W2")]
