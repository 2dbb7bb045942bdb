"""dense: a matrix product with a bias per unit (a bilinear layer)."""

# ruff: noqa: E501 - the LaTeX words keep the line breaks of the documents they print

from __future__ import annotations

from math import prod

import numpy as np

from gradproof.derive.layers.base import (
    BILINEAR,
    AllSizes,
    Context,
    Declaration,
    Field,
    LayerType,
    Options,
    Parameter,
    Shape,
    size,
    with_bias,
)
from gradproof.derive.texpr import BATCH, MatMul, SumAxes, Tensor, Transpose


class Dense(LayerType):
    name = "dense"
    kind = BILINEAR
    summary = "matrix product plus a bias per unit"
    fields = (Field("units", "number of output units"), Field("bias", "", default=True))
    stem = "Z"
    input_rank = "vector"
    width_field = "units"
    display = "Dense layer"
    output_meaning = "pre-activation: matrix product"
    prose = {
        "weight": r"""\paragraph{Dense layer, weights.} The weight $\VAR{names.entry(t, ('k', 'u'))}$ enters the output only through
\[ \VAR{names.entry(block.data.output, (names.sample, 'u'))} = \sum_{k} \VAR{names.entry(block.data.input, (names.sample, 'k'))}\, \VAR{names.entry(t, ('k', 'u'))}\BLOCK{if block.data.bias_name} + \VAR{names.entry(block.data.bias_name, ('u',))}\BLOCK{endif}, \]
once in every sample $\VAR{names.sample}$, with slope $\VAR{names.entry(block.data.input, (names.sample, 'k'))}$. Each sample therefore
contributes its input $k$ times the error of unit $u$, and summing these over the samples is a matrix product in which
the sample axis is the one contracted. That is why the layer's input appears transposed.
""",
        "bias": r"""\paragraph{Dense layer, bias.} The bias of unit $u$ is added to that unit in every sample with slope $1$, so its
gradient is the error of unit $u$ summed over the samples.
""",
        "input": r"""\paragraph{Dense layer, input.} The input $\VAR{names.entry(block.data.input, (names.sample, 'k'))}$ reaches every unit $u$
through the weight $\VAR{names.entry(block.data.weight, ('k', 'u'))}$. The gradient passed down is the error times the
weights, transposed so that the units are the contracted axis; it is what the layer below receives.
""",
    }

    shape_words = r"""A dense layer of $U$ units on $I$ inputs has $I \cdot U$ weights and $U$ biases."""

    def latex_description(self, options: Options) -> str:
        return f"Dense, {options['units']} units" + ("" if options["bias"] else ", no bias")

    def output_shape(self, shape: Shape, options: Options) -> Shape:
        return (options["units"],)

    def work(self, before: Shape, after: Shape, options: Options) -> int:
        return prod(after) * before[0]

    def chain_paths(self, paths: np.ndarray, before: Shape, options: Options) -> tuple[np.ndarray, int]:
        # W[i, j] and B[j] reach L through Z[j]; F[i] through every Z[j]
        return np.full(before, sum(paths), dtype=object), max(paths)

    def parameters(self, before: Shape, after: Shape, options: Options) -> tuple[Parameter, ...]:
        weight = Parameter("weight", "W", (before[0], after[0]), "weights (inputs, units)", before[0])
        if not options["bias"]:
            return (weight,)
        return weight, Parameter("bias", "B", (after[0],), "bias, one per unit", None)

    def declare(self, ctx: Context) -> Declaration:
        x, w, g = ctx.input, ctx.params["weight"], ctx.upstream
        return with_bias(
            MatMul(x, w),
            {
                w.name: MatMul(Transpose(x), g),  # dW = input^T . error
                x.name: MatMul(g, Transpose(w)),  # dX = error . W^T
            },
            ctx.params.get("bias"),
            SumAxes(g, (0,)),  # dB = error summed over the batch
        )

    def all_sizes(self, options: Options) -> tuple[AllSizes, ...]:
        d, u = size("D"), size("U")
        x, w, b = Tensor("X", (BATCH, d)), Tensor("W1", (d, u)), Tensor("B1", (u,))
        z, g = Tensor("Z1", (BATCH, u)), Tensor("dZ1", (BATCH, u))
        declaration = self.declare(Context(x, z, g, {"weight": w, "bias": b}, {"bias": True}))
        roles = {"input": x.name, "output": z.name, "upstream": g.name, "weight": w.name, "bias": b.name}
        return (AllSizes("dense", declaration, (x, w, b, z, g), roles, g.name),)

    def latex_operation(self, options: Options, short: bool = False) -> str:
        return r"\text{dense}"
