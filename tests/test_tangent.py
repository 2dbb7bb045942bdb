"""The prover's derivative is SymPy's derivative, and its zero test says no when it should.

``derive.tangent`` differentiates in forward mode over the expression DAG
instead of calling ``sympy.diff`` on the whole loss (which is too slow at
real sizes). These tests pin it to ``sympy.diff``: on every scalar the prover
differentiates for networks small enough for ``sympy.diff`` to finish, the
two derivatives have the same normal form, for every moved tensor.
"""

import numpy as np
import pytest
import sympy as sp

from gradproof.derive import prover
from gradproof.derive.canonical import NormalForm, equal, vanishes
from gradproof.derive.network import build
from gradproof.derive.spec import load, parse
from gradproof.derive.symbolic import relu, sigmoid, window_max
from gradproof.derive.tangent import Tangent

x, y, z, eps = sp.symbols("x y z eps")


def same_derivative(expr: sp.Expr) -> bool:
    normal = NormalForm(vanishing=[eps])
    ours = Tangent(normal, eps)(expr)
    sympys = normal(sp.diff(expr, eps))
    remainder = dict(ours)
    for m, c in sympys.items():
        remainder[m] = remainder.get(m, 0) - c
    return vanishes(normal, {m: c for m, c in remainder.items() if c})


@pytest.mark.parametrize(
    "expr",
    [
        (x + eps) * (y + 2 * eps) * z,
        (x + eps * y) ** 3,
        1 / (x + eps),
        sp.log(sigmoid(x + eps * y)),
        sp.log(1 - sigmoid(x + eps * y)),
        relu(x + eps) * relu(y - eps),
        window_max(relu(x + eps), relu(y), relu(z - eps), relu(x * y + eps)),
        sp.exp(x * (y + eps)),  # a function of SymPy's own
        (x + 2) ** (y + eps),  # a power with a moving exponent: the generic rule
        sp.Rational(1, 2) * (sigmoid(x + eps) - y) ** 2,
    ],
    ids=str,
)
def test_tangent_equals_sympy_diff_on_each_kind_of_node(expr):
    assert same_derivative(expr)


def test_a_wrong_derivative_is_told_apart():
    normal = NormalForm(vanishing=[eps])
    ours = Tangent(normal, eps)(sigmoid(x + eps))  # s (1 - s)
    wrong = normal(sigmoid(x) * (1 + sigmoid(x)))
    remainder = {m: ours.get(m, 0) - wrong.get(m, 0) for m in set(ours) | set(wrong)}
    assert not vanishes(normal, {m: c for m, c in remainder.items() if c})


# --------------------------------------------------------------- normal form


def test_equal_atoms_written_differently_are_one_variable():
    assert equal(sigmoid(x * (y + 1)), sigmoid(x * y + x))
    assert equal(sp.Heaviside(x - y, 0), sp.Heaviside(x - y, 1))  # value at 0: the region excludes it


@pytest.mark.parametrize(
    "lhs, rhs",
    [
        (sigmoid(x), sigmoid(y)),
        (sigmoid(x) * (1 - sigmoid(x)), sigmoid(x) - sigmoid(x) ** 3),
        (1 / sigmoid(x), 1 / (1 - sigmoid(x))),
        (relu(x), x),  # relu is not the identity
        (sp.Heaviside(x), sp.Heaviside(-x)),
        (x * y, y * y),
        (sp.Rational(1, 2) * x, sp.Rational(1, 3) * x),
    ],
    ids=str,
)
def test_different_expressions_are_not_equal(lhs, rhs):
    assert not equal(lhs, rhs)


@pytest.mark.parametrize(
    "lhs, rhs",
    [
        (sigmoid(x) / sigmoid(x) * y, y),
        ((1 - sigmoid(x)) * (y / (1 - sigmoid(x))), y),
        (x / (x * y + 1) + 1 / (x * y + 1), (x + 1) / (x * y + 1)),
    ],
    ids=str,
)
def test_denominators_are_cleared_exactly(lhs, rhs):
    assert equal(lhs, rhs, NormalForm())


def test_inexact_numbers_are_refused():
    with pytest.raises(ValueError, match="inexact"):
        NormalForm()(sp.Float(0.5) * x)


# ------------------------------------------------- cross-check on networks

STACKED = """
name = "stacked"
input = [2, 5, 5]
loss = "bce"
reduction = "mean"
[[layers]]
type = "conv2d"
filters = 2
kernel = 2
[[layers]]
type = "relu"
[[layers]]
type = "conv2d"
filters = 1
kernel = 2
[[layers]]
type = "sigmoid"
[[layers]]
type = "flatten"
[[layers]]
type = "dense"
units = 1
[[layers]]
type = "sigmoid"
"""


def networks():
    yield "small_cnn", build(load("small_cnn"))
    yield "mlp", build(load("mlp"))
    yield "stacked", build(parse(STACKED, "<stacked>"))


def settings():
    for name, network in networks():
        for step in network.steps:
            label = step.layer.type if step.layer else "loss"
            yield f"{name}-local-{label}-{step.output.name}", prover.local_setting(network, step)
        yield f"{name}-end-to-end", prover.end_to_end_setting(network, prover.end_to_end_batch(network))


@pytest.mark.parametrize("setting", [s for _, s in settings()], ids=[n for n, _ in settings()])
def test_the_provers_derivative_is_sympys_diff(setting):
    """For every moved tensor: normal form of ``sympy.diff(scalar, eps)`` == the prover's derivative."""
    for name, move in setting.moves.items():
        ours = setting.derivative(name)
        sympys = setting.normal(sp.diff(setting.scalar, move.eps))
        remainder = dict(ours)
        for m, c in sympys.items():
            remainder[m] = remainder.get(m, 0) - c
        assert vanishes(setting.normal, {m: c for m, c in remainder.items() if c}), name
        assert ours, f"{name}: a derivative that is identically zero proves nothing"


def test_end_to_end_runs_at_the_specs_batch_when_small():
    assert prover.end_to_end_batch(build(load("mlp"))) == 3
    assert prover.end_to_end_batch(build(load("small_cnn"))) == 1
    sigmoid_cnn = build(load("sigmoid_cnn"))
    assert sigmoid_cnn.spec.batch == 100 and prover.end_to_end_batch(sigmoid_cnn) == 1


def test_the_batch_obligation_rejects_a_loss_that_mixes_samples(monkeypatch):
    """A batch loss that is not a sum of per-sample losses (here: the square of the batch sum)."""
    from gradproof.derive import symbolic

    network = build(load("mlp"))

    def mixed(self, e):
        total = sp.Add(*(self(e.output) - self(e.target)).ravel())
        return np.array(sp.Rational(1, 2) * total**2, dtype=object)

    monkeypatch.setattr(symbolic.SymbolicReading, "read_HalfSquaredError", mixed)
    (record,) = [r for r in prover.prove(network) if r.level == "batch"]
    assert not record.holds and "per-sample" in record.failing
