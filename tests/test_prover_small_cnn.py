"""The default network's obligations: all proven, and the ones the issue names are there."""

import numpy as np
import pytest

from gradproof.derive import prover
from gradproof.derive.network import build
from gradproof.derive.spec import load
from gradproof.derive.symbolic import symbol_array


@pytest.fixture(scope="module")
def records():
    return prover.prove(build(load("small_cnn")))


def by_name(records, level, name):
    matches = [r for r in records if r.level == level and r.name == name]
    assert len(matches) == 1, [(r.level, r.name) for r in records]
    return matches[0]


def test_every_obligation_holds(records):
    failed = [(r.level, r.name, r.failing) for r in records if not r.holds]
    assert failed == []


@pytest.mark.parametrize(
    ("level", "name", "entries", "statement_part"),
    [
        ("end-to-end", "dL/dW1", 9, "correlate(X, dL/dZ1)"),
        ("end-to-end", "dL/dB1", 1, "sum(dL/dZ1, axes=(0, 2, 3))"),
        ("end-to-end", "dL/dW2", 4, "F^T · dL/dZ2"),
        ("end-to-end", "dL/dB2", 1, "sum(dL/dZ2, axes=(0,))"),
        ("local", "maxpool2d: dL/dA1", 32, "route_max(A1, dL/dP1)"),
        ("local", "relu: dL/dZ1", 32, "dL/dA1 ⊙ [Z1 > 0]"),
        ("local", "flatten: dL/dP1", 8, "reshape(dL/dF"),
        ("local", "bce loss: dL/dZ2", 2, "(A2 - Y) / N"),
        ("identity", "dL/dA2 * dA2/dZ2 = A2 - Y", 1, "A2 - Y"),
        ("count", "trainable parameters", 15, "exactly 15"),
    ],
)
def test_named_obligations(records, level, name, entries, statement_part):
    record = by_name(records, level, name)
    assert record.holds
    assert record.entries == entries
    assert statement_part in record.statement


def test_nine_kernel_entries_are_listed(records):
    record = by_name(records, "end-to-end", "dL/dW1")
    assert record.entry_names == [f"dL/dW1[0,0,{m},{n}]" for m in range(3) for n in range(3)]


def test_local_proofs_cover_a_batch_of_two(records):
    """The batch sums of parameter gradients and the mean's 1/N are in the local proofs."""
    assert all("batch 2" in r.method for r in records if r.level == "local")


def test_composed_rule_is_what_sympy_differentiates():
    """Independent spot check of the end-to-end claim for one entry, without the prover's canonicaliser.

    The difference is evaluated at exact rational points away from kinks (this
    is only a check of the test's premise; the proof itself is symbolic).
    """
    import sympy as sp

    from gradproof.derive.symbolic import SymbolicReading

    network = build(load("small_cnn"))
    env = {"X": symbol_array("X", (1, 1, 6, 6)), "Y": symbol_array("Y", (1, 1))}
    for p in network.params:
        env[p.name] = symbol_array(p.name, p.shape)
    reading = SymbolicReading(env, 1)
    for step in network.steps:
        env[step.output.name] = reading(step.forward)
    for _, target, expr in network.backward_plan():
        env[f"d{target}"] = reading(expr)
    loss = env["L"].item()
    rng = np.random.default_rng(3)
    point = {}
    for name in ("X", "Y", "W1", "B1", "W2", "B2"):
        for s in env[name].ravel():
            point[s] = sp.Rational(int(rng.integers(-40, 40)), 17) if name != "Y" else sp.Integer(1)
    w = env["W1"][0, 0, 1, 2]
    derived = loss.diff(w).subs(point)
    rule = env["dW1"][0, 0, 1, 2].subs(point)
    assert abs(float(derived - rule)) < 1e-12
