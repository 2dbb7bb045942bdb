"""The prover says no: every rule in the catalogue of wrong rules is rejected, by the predicted obligations.

Controls first: the mutation machinery itself (replacing a rule, the
test-only nodes) must not make a correct network fail, or a "rejection" would
prove nothing.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import sympy as sp

from gradproof.codegen import cli
from gradproof.derive import layers, prover
from gradproof.derive import texpr as tx
from gradproof.derive.layers.convolution import Conv2d
from gradproof.derive.parametric.catalogue import NoTheorem
from gradproof.derive.parametric.instances import template
from gradproof.derive.symbolic import relu, step
from tests.wrong_rules import (
    CATALOGUE,
    TEST_SPECS,
    StepAt,
    SwapSpatial,
    Turn180,
    failed_obligations,
    installed,
    network_named,
    plus,
    replace_rule,
)

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture()
def nodes(monkeypatch):
    with installed(monkeypatch):
        yield


@pytest.mark.parametrize("mutant", CATALOGUE, ids=[m.name for m in CATALOGUE])
def test_wrong_rule_is_rejected_by_the_predicted_obligations(mutant, nodes):
    records = prover.prove(mutant.network_under_test())
    failed = failed_obligations(records)
    assert failed, f"{mutant.name} ({mutant.mistake}) was accepted"
    for_all_sizes = [f for f in failed if f.startswith(("parametric ", "composition rules composed"))]
    assert sorted(set(failed) - set(for_all_sizes)) == sorted(mutant.must_fail)
    # A mistake on the region is refuted by its theorem for all sizes, and the composition then fails;
    # one on a kink or a tie is not (tests/test_parametric_catalogue.py checks the verdicts), nor one
    # in a layer type without a theorem for all sizes yet, which its local proof covers.
    refuted_for_all_sizes = mutant.parametric and _has_theorem(mutant)
    expected = ["composition rules composed by the chain rule"] if refuted_for_all_sizes else []
    assert [f for f in for_all_sizes if f.startswith("composition ")] == expected
    assert any(f.startswith("parametric ") for f in for_all_sizes) == refuted_for_all_sizes
    assert all(r.failing for r in records if not r.holds)


def _has_theorem(mutant) -> bool:
    """Whether every step the mutant changes is of a type with a theorem for all sizes."""
    original, mutated = network_named(mutant.network), mutant.network_under_test()
    pairs = zip(mutated.steps, original.steps, strict=True)
    changed = [s for s, o in pairs if (s.rules, s.forward) != (o.rules, o.forward)]
    try:
        for step in changed:
            template(mutated, step)
    except NoTheorem:
        return False
    return True


def test_the_catalogue_covers_the_issue_list():
    mistakes = " ".join(m.mistake for m in CATALOGUE)
    for phrase in ("true convolution", "not turned", "window one row off", "dZ2^T", "W2^T", "batch sum",
                   "sum over positions", "twice", "dense layer's batch sum", "convolution's bias gradient",
                   "ReLU'(0) = 1/2", "ReLU'(0) = 1 ", "every entry",
                   "window (j, i)", "A2 + Y", "(A2 - Y) A2 (1 - A2)", "without its 1/2", "1/N forgotten",
                   "/ N for a batch sum", "A (1 + A)", "upstream gradient dA1 dropped"):  # fmt: skip
        assert phrase in mistakes, phrase
    assert len({m.name for m in CATALOGUE}) == len(CATALOGUE)


@pytest.mark.parametrize("name", ["small_cnn", "mlp", *TEST_SPECS])
def test_the_unmutated_networks_are_accepted(name):
    assert failed_obligations(prover.prove(network_named(name))) == []


def _same_rule_rewritten(network):
    """Correct rules written through the test-only nodes: turning twice, swapping twice, H(0) = 0."""
    network = replace_rule(
        network, "conv2d", "W1", lambda s: tx.Correlate(s.input, Turn180(Turn180(s.upstream)))
    )
    network = replace_rule(
        network, "maxpool2d", "A1", lambda s: tx.RouteMax(s.input, SwapSpatial(SwapSpatial(s.upstream)), 2)
    )
    network = replace_rule(network, "relu", "Z1", lambda s: tx.Product(s.upstream, StepAt(s.input, "0")))
    step_b2 = next(s for s in network.steps if "B2" in s.rules)
    zero = tx.Difference(step_b2.rules["B2"], step_b2.rules["B2"])
    return replace_rule(network, "dense", "B2", lambda s: plus(s.rules["B2"], zero))


def test_control_equivalent_rewrites_through_the_mutation_machinery_are_accepted(nodes):
    records = prover.prove(_same_rule_rewritten(network_named("small_cnn")))
    assert failed_obligations(records) == []


def test_every_rule_in_the_backward_chain_is_checked_end_to_end(nodes):
    """Mutants of rules that backpropagation uses fail an end-to-end obligation too.

    The exceptions are batch-reduction mistakes on networks proven end to end
    on one sample, where a sum and a mean agree; the local proof (batch 2)
    catches those. (The mlp is proven end to end at its batch of 3.)
    """
    batch_only = {"conv_dB_no_batch_sum", "dense_dB_no_batch_sum", "bce_sum_for_mean"}
    off_chain = {
        "conv_dX_kernel_not_turned",
        "relu_half_at_zero",
        "relu_one_at_zero",
        "pool_every_tied_entry",
    }
    for mutant in CATALOGUE:
        has_e2e = any(name.startswith("end-to-end") for name in mutant.must_fail)
        assert has_e2e == (mutant.name not in batch_only | off_chain), mutant.name


def _relu_rule_from_the_output(rule):
    """small_cnn with its ReLU rule ``dZ1 = rule(dA1, A1)``, read from the layer's output A1."""
    return replace_rule(network_named("small_cnn"), "relu", "Z1", lambda s: rule(s.upstream, s.output))


def test_the_equivalent_relu_mask_read_from_the_output_is_proven(monkeypatch, capsys):
    """dZ1 = dA1 * [A1 > 0]: another rule with the same derivative (issue 15), proven at every level."""
    network = _relu_rule_from_the_output(lambda g, a: tx.Product(g, tx.StepMask(a)))
    records = prover.prove(network)
    assert {r.verdict for r in records} == {"proven"}
    (theorem,) = [r for r in records if r.level == "parametric" and r.name.startswith("relu")]
    assert theorem.statement.startswith("dL/dZ1 = dL/dA1 ⊙ [A1 > 0] for all ")
    assert [r.name for r in records if r.level in ("local", "end-to-end") and "Z1" in r.name] == [
        "relu: dL/dZ1"
    ]
    monkeypatch.setattr(cli, "_load", lambda reference: network)
    assert cli.main(["prove", "small_cnn", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    (relu,) = [r for r in report["records"] if r["name"] == theorem.name]
    assert relu["level"] == "parametric" and relu["verdict"] == "proven" and relu["holds"] is True


def test_control_a_wrong_rule_read_from_the_output_is_refuted_with_its_counterexample(monkeypatch, capsys):
    """dZ1 = dA1 * A1 reads the output as well; the theorem's counterexample is printed."""
    network = _relu_rule_from_the_output(tx.Product)
    monkeypatch.setattr(cli, "_load", lambda reference: network)
    assert cli.main(["prove", "small_cnn"]) == 1
    out = capsys.readouterr().out
    assert "refuted    parametric  relu: dL/dZ1 (all sizes)" in out
    assert "counterexample: at " in out and "by the derivative" in out
    assert "refuted    local       relu: dL/dZ1" in out
    assert cli.main(["prove", "small_cnn", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    (relu,) = [r for r in report["records"] if r["level"] == "parametric" and r["name"].startswith("relu")]
    assert relu["verdict"] == "refuted" and relu["counterexample"]["sizes"]


def test_the_mask_of_a_relu_output_is_the_mask_of_its_input_exactly_where_h0_is_0():
    """The entry-wise reading's one rewrite, H(relu(z), 0) = H(z, 0), against max(0, c) > 0 by cases."""
    z = sp.Symbol("z", real=True)
    rewritten = step(relu(z), 0)
    assert rewritten == step(z, 0)
    for c in (-3, 0, sp.Rational(1, 2)):
        assert rewritten.subs(z, c) == (1 if max(0, c) > 0 else 0)
    assert step(relu(z), sp.Rational(1, 2)).args[0] == relu(z)  # H(0) = 1/2 differs at z < 0: kept


def _mutated_loader(mutant):
    return lambda reference: mutant.network_under_test()


def test_cli_prove_exits_one_and_names_the_failing_entry(nodes, monkeypatch, capsys):
    mutant = next(m for m in CATALOGUE if m.name == "conv_dW_true_convolution")
    monkeypatch.setattr(cli, "_load", _mutated_loader(mutant))
    assert cli.main(["prove", "small_cnn"]) == 1
    out = capsys.readouterr().out
    assert "not proven end-to-end  dL/dW1" in out  # entry by entry: a normal form that differs
    assert "first failing entry: dL/dW1[0,0,0,0]" in out
    assert "refuted    local       conv2d: dL/dW1" in out  # its theorem has a counterexample
    assert "refuted    parametric  conv2d: dL/dW1 (all sizes)" in out
    assert "counterexample: at " in out and "by the derivative" in out
    assert "dL/dW1 = correlate(X, turn180(dL/dZ1))" in out  # the statement shows the wrong rule


def test_cli_json_reports_the_failing_entries(nodes, monkeypatch, capsys):
    mutant = next(m for m in CATALOGUE if m.name == "relu_half_at_zero")
    monkeypatch.setattr(cli, "_load", _mutated_loader(mutant))
    assert cli.main(["prove", "small_cnn", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["holds"] is False
    failed = [(r["level"], r["name"], r["failing"]) for r in report["records"] if not r["holds"]]
    assert failed == [("convention", "ReLU'(0) = 0 (Z1)", "dL/dZ1 at Z1 = 0")]


# A wrong rule put into the rule table itself, in a fresh interpreter running the real CLI.
WRONG_TABLE = """
import dataclasses, sys
from gradproof.derive import layers, texpr as tx
from tests.wrong_rules import Turn180, installed
from gradproof.codegen.cli import main

class WrongConv2d(type(layers.LAYERS["conv2d"])):
    def declare(self, ctx):
        declaration = super().declare(ctx)
        w = ctx.params["weight"]
        rules = {**declaration.rules, w.name: tx.Correlate(ctx.input, Turn180(ctx.upstream))}
        return dataclasses.replace(declaration, rules=rules)

layers.LAYERS["conv2d"] = WrongConv2d()
with installed():
    sys.exit(main(["prove", "small_cnn"]))
"""


def test_cli_in_a_subprocess_rejects_a_wrong_rule_in_the_table():
    result = subprocess.run(
        [sys.executable, "-c", WRONG_TABLE], capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    assert result.returncode == 1, result.stderr
    assert "first failing entry: dL/dW1[0,0,0,0]" in result.stdout
    assert "refuted    local       conv2d: dL/dW1" in result.stdout
    assert type(layers.LAYERS["conv2d"]) is Conv2d  # this process's table is untouched
