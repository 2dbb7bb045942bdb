"""A catalogue of plausible wrong backward rules, each a mistake seen in textbooks and posts.

A mutant is a function ``(network, monkeypatch) -> network``: it either swaps
a rule in the rule table for a wrong expression built from the same language,
or changes how one operation is read (to model e.g. "true convolution instead
of correlation"), exactly as a wrong implementation would. The prover must
reject every one.
"""

from __future__ import annotations

import dataclasses

import sympy as sp

from derive import symbolic
from derive import texpr as tx
from derive.network import Network


def replace_rule(network: Network, target: str, make, layer: str | None = None) -> Network:
    """``network`` with the rule for ``target`` replaced by ``make(old_rule, step)``.

    ``layer`` picks the step by layer type ("loss" for the loss step) when
    two steps differentiate the same tensor (the sigmoid and the fused loss).
    """
    steps = []
    for step in network.steps:
        kind = step.layer.type if step.layer else "loss"
        if target in step.rules and (layer is None or layer == kind):
            rules = dict(step.rules)
            rules[target] = make(rules[target], step)
            step = dataclasses.replace(step, rules=rules)
        steps.append(step)
    return dataclasses.replace(network, steps=tuple(steps))


def flipped_kernel_weight_gradient(network, mp):
    """dW = true convolution of X with dZ (gradient kernel turned 180 degrees)."""
    original = symbolic.SymbolicReading.read_Correlate

    def read(self, e):
        if not e.weight_form:
            return original(self, e)
        g = self(e.kernel)
        flipped = g[:, :, ::-1, ::-1]
        return original(_Bound(self, {e.kernel: flipped}), e)

    mp.setattr(symbolic.SymbolicReading, "read_Correlate", read)
    return network


class _Bound:
    """A reading that answers chosen sub-expressions with given arrays."""

    def __init__(self, reading, overrides):
        self.reading, self.overrides = reading, overrides

    def __call__(self, expr):
        return self.overrides[expr] if expr in self.overrides else self.reading(expr)

    def __getattr__(self, name):
        return getattr(self.reading, name)


def unflipped_kernel_input_gradient(network, mp):
    """dX = correlation of the padded dZ with W, forgetting to turn the kernel."""
    original = symbolic.SymbolicReading.read_FullConvolve

    def read(self, e):
        k = self(e.kernel)
        return original(_Bound(self, {e.kernel: k[:, :, ::-1, ::-1]}), e)

    mp.setattr(symbolic.SymbolicReading, "read_FullConvolve", read)
    return network


def off_by_one_window(network, mp):
    """dW[m,n] = sum X[i+m+1, j+n] dZ[i,j] (wrapping at the border)."""
    original = symbolic.SymbolicReading.read_Correlate

    def read(self, e):
        if not e.weight_form:
            return original(self, e)
        x = self(e.x)
        import numpy as np

        return original(_Bound(self, {e.x: np.roll(x, -1, axis=2)}), e)

    mp.setattr(symbolic.SymbolicReading, "read_Correlate", read)
    return network


def transposed_dense_gradient(network, mp):
    """dW = dZ^T F instead of F^T dZ (the shapes agree for a square layer)."""
    return replace_rule(network, "W2", lambda old, step: tx.MatMul(tx.Transpose(old.b), old.a.a))


def missing_bias_batch_sum(network, mp):
    """dB1 summed over positions but taken from the first sample only."""
    return replace_rule(network, "B1", lambda old, step: tx.SumAxes(old.a, (2, 3)))


def doubled_bias_sum(network, mp):
    """dB2 = sum(dZ2) + sum(dZ2)."""
    original = symbolic.SymbolicReading.read_SumAxes

    def read(self, e):
        return 2 * original(self, e)

    mp.setattr(symbolic.SymbolicReading, "read_SumAxes", read)
    return network


def relu_derivative_half_at_zero(network, mp):
    """ReLU'(0) = 1/2, SymPy's default Heaviside(0)."""
    mp.setattr(
        symbolic.SymbolicReading,
        "read_StepMask",
        lambda self, e: symbolic._elementwise(sp.Heaviside, self(e.a)),
    )
    return network


def relu_derivative_one_at_zero(network, mp):
    """ReLU'(0) = 1."""
    mp.setattr(
        symbolic.SymbolicReading,
        "read_StepMask",
        lambda self, e: symbolic._elementwise(lambda u: sp.Heaviside(u, 1), self(e.a)),
    )
    return network


def pooling_to_every_tied_entry(network, mp):
    """Every entry equal to the window maximum receives the whole gradient."""

    def indicator(window, position):
        me = window[position]
        return sp.Mul(*[sp.Heaviside(me - o, 1) for i, o in enumerate(window) if i != position])

    mp.setattr(symbolic, "first_max_indicator", indicator)
    return network


def pooling_wrong_window(network, mp):
    """The gradient of output (i, j) is routed inside window (j, i)."""
    original = symbolic.SymbolicReading.read_RouteMax

    def read(self, e):
        g = self(e.grad)
        return original(_Bound(self, {e.grad: g.transpose(0, 1, 3, 2)}), e)

    mp.setattr(symbolic.SymbolicReading, "read_RouteMax", read)
    return network


def a2_plus_y(network, mp):
    """dL/dZ2 = A2 + Y."""
    mp.setattr(
        symbolic.SymbolicReading,
        "read_Difference",
        lambda self, e: symbolic._elementwise(lambda u, v: u + v, self(e.a), self(e.b)),
    )
    return network


def bce_with_extra_sigmoid_factor(network, mp):
    """dL/dZ2 = (A2 - Y) A2 (1 - A2): the MSE chain applied to BCE."""

    def make(old, step):
        a2 = old.a.a
        return tx.BatchScale(tx.Product(old.a, tx.Product(a2, tx.OneMinus(a2))), old.reduction)

    return replace_rule(network, network.steps[-1].input.name, make, layer="loss")


def missing_half_in_quadratic_cost(network, mp):
    """The cost is sum (O - Y)^2 without the 1/2, the rule still O - Y."""
    mp.setattr(
        symbolic.SymbolicReading,
        "read_HalfSquaredError",
        lambda self, e: self._reduce(
            symbolic._elementwise(lambda o, y: (o - y) ** 2, self(e.output), self(e.target)), e.reduction
        ),
    )
    return network


def sum_instead_of_mean(network, mp):
    """dL/dZ2 = A2 - Y for a batch mean (the 1/N forgotten)."""
    return replace_rule(
        network, network.steps[-1].input.name, lambda old, step: tx.BatchScale(old.a, "sum"), layer="loss"
    )


def mean_instead_of_sum(network, mp):
    """dL/dA2 = (A2 - Y) / N for a batch sum."""
    return replace_rule(
        network, network.steps[-1].input.name, lambda old, step: tx.BatchScale(old.a, "mean"), layer="loss"
    )


def sigmoid_derivative_without_one_minus(network, mp):
    """dZ = dA * A, dropping the (1 - A) factor."""

    def make(old, step):
        return tx.Product(old.a, old.b.a)

    sigmoid_input = next(s.input.name for s in network.steps if s.layer and s.layer.type == "sigmoid")
    return replace_rule(network, sigmoid_input, make, layer="sigmoid")


# (mutant, network it applies to)
CATALOGUE = [
    (flipped_kernel_weight_gradient, "small_cnn"),
    (unflipped_kernel_input_gradient, "small_cnn"),
    (off_by_one_window, "small_cnn"),
    (transposed_dense_gradient, "mlp"),
    (missing_bias_batch_sum, "small_cnn"),
    (doubled_bias_sum, "small_cnn"),
    (relu_derivative_half_at_zero, "small_cnn"),
    (relu_derivative_one_at_zero, "small_cnn"),
    (pooling_to_every_tied_entry, "small_cnn"),
    (pooling_wrong_window, "small_cnn"),
    (a2_plus_y, "small_cnn"),
    (bce_with_extra_sigmoid_factor, "small_cnn"),
    (missing_half_in_quadratic_cost, "mlp"),
    (sum_instead_of_mean, "small_cnn"),
    (mean_instead_of_sum, "mlp"),
    (sigmoid_derivative_without_one_minus, "small_cnn"),
]
