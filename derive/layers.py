"""The rule table: every layer's forward map and backward rules, declared once.

Each declaration names the layer's *kind*, which decides how the prover
treats it (see ``derive.prover``), gives the forward expression, and gives one
vector-Jacobian product per thing it differentiates: its input and each of its
parameters. ``g`` is the gradient of the layer's output. Everything else in
gradproof (proofs, NumPy code, LaTeX) reads these expressions; nothing writes a
second copy of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gradproof.derive import texpr as tx
from gradproof.derive.texpr import (
    AddBias,
    BatchScale,
    BinaryCrossEntropyWithLogits,
    Correlate,
    Difference,
    FullConvolve,
    HalfSquaredError,
    MatMul,
    MaxPool,
    OneMinus,
    Product,
    Relu,
    Reshape,
    RouteMax,
    Sigmoid,
    StepMask,
    SumAxes,
    Tensor,
    Transpose,
)

BILINEAR = "bilinear"  # affine in the input for fixed parameters and vice versa
ELEMENTWISE = "element-wise"  # out[i] = f(in[i]); one scalar derivative
SELECTION = "piecewise linear"  # routes values; proven where no window ties
LINEAR = "linear"  # a fixed re-indexing
LOSS = "loss"  # scalar cost of the output against the target
FUSED = "fused activation+loss"  # the loss computed from the logit


@dataclass(frozen=True)
class Declaration:
    """A layer's forward map and its rules: target tensor name -> gradient expression."""

    forward: tx.Expr
    rules: dict[str, tx.Expr]


@dataclass(frozen=True)
class LayerRule:
    type: str
    kind: str
    summary: str
    declare: Callable[..., Declaration]


def _with_bias(
    linear: tx.Expr, rules: dict[str, tx.Expr], b: Tensor | None, bias_rule: tx.Expr
) -> Declaration:
    """Add the optional bias term and its rule to a linear map's declaration."""
    if b is None:
        return Declaration(linear, rules)
    (weight, weight_rule), *rest = rules.items()  # keep the order dW, dB, dX
    return Declaration(AddBias(linear, b), {weight: weight_rule, b.name: bias_rule, **dict(rest)})


def conv2d(x: Tensor, w: Tensor, b: Tensor | None, g: Tensor) -> Declaration:
    return _with_bias(
        Correlate(x, w),
        {
            w.name: Correlate(x, g),  # dW = correlate(X, dZ)
            x.name: FullConvolve(g, w),  # dX = full convolution of dZ with W
        },
        b,
        SumAxes(g, (0, 2, 3)),  # dB = sum of dZ over batch and positions
    )


def dense(x: Tensor, w: Tensor, b: Tensor | None, g: Tensor) -> Declaration:
    return _with_bias(
        MatMul(x, w),
        {
            w.name: MatMul(Transpose(x), g),  # dW = input^T . error
            x.name: MatMul(g, Transpose(w)),  # dX = error . W^T
        },
        b,
        SumAxes(g, (0,)),  # dB = error summed over the batch
    )


def relu(z: Tensor, g: Tensor) -> Declaration:
    return Declaration(Relu(z), {z.name: Product(g, StepMask(z))})


def sigmoid(z: Tensor, g: Tensor, out: Tensor) -> Declaration:
    return Declaration(Sigmoid(z), {z.name: Product(g, Product(out, OneMinus(out)))})


def maxpool2d(a: Tensor, g: Tensor, size: int) -> Declaration:
    return Declaration(MaxPool(a, size), {a.name: RouteMax(a, g, size)})


def flatten(a: Tensor, g: Tensor) -> Declaration:
    features = 1
    for d in a.shape[1:]:
        features *= d
    return Declaration(Reshape(a, (tx.BATCH, features)), {a.name: Reshape(g, a.shape)})


def squared_error(out: Tensor, y: Tensor, reduction: str) -> Declaration:
    return Declaration(
        HalfSquaredError(out, y, reduction),
        {out.name: BatchScale(Difference(out, y), reduction)},
    )


def sigmoid_bce(logits: Tensor, y: Tensor, out: Tensor, reduction: str) -> Declaration:
    """BCE of ``sigmoid(Z)`` differentiated at the logit ``Z``: ``dL/dZ = A - Y``."""
    return Declaration(
        BinaryCrossEntropyWithLogits(logits, y, reduction),
        {logits.name: BatchScale(Difference(out, y), reduction)},
    )


RULES: dict[str, LayerRule] = {
    "conv2d": LayerRule("conv2d", BILINEAR, "valid cross-correlation plus a bias per filter", conv2d),
    "dense": LayerRule("dense", BILINEAR, "matrix product plus a bias per unit", dense),
    "relu": LayerRule("relu", ELEMENTWISE, "max(0, z), derivative 0 at 0", relu),
    "sigmoid": LayerRule("sigmoid", ELEMENTWISE, "1 / (1 + exp(-z))", sigmoid),
    "maxpool2d": LayerRule("maxpool2d", SELECTION, "maximum of each window, stride = size", maxpool2d),
    "flatten": LayerRule("flatten", LINEAR, "row-major reshape to a vector", flatten),
    "mse": LayerRule("mse", LOSS, "half the squared error", squared_error),
    "bce": LayerRule("bce", FUSED, "binary cross-entropy of the sigmoid, from the logit", sigmoid_bce),
}
