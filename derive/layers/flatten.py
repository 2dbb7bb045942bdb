"""flatten: a row-major reshape to one vector per sample (a linear layer)."""

# ruff: noqa: E501 - the LaTeX words keep the line breaks of the documents they print

from __future__ import annotations

from math import prod

from gradproof.derive import texpr as tx
from gradproof.derive.layers.base import (
    LINEAR,
    AllSizes,
    Context,
    Declaration,
    LayerType,
    Options,
    Shape,
    size,
)
from gradproof.derive.texpr import Reshape


class Flatten(LayerType):
    name = "flatten"
    kind = LINEAR
    summary = "row-major reshape to a vector"
    stem = "F"
    numbered = False
    input_rank = "spatial"
    at_most = 1  # its output is F, unnumbered
    display = "Flatten"
    output_meaning = "flattened features"
    prose = {
        "input": r"""\paragraph{Flatten.} It has no parameters: it only reads the entries of $\VAR{inp}$ in row-major order into one
vector per sample. The gradient is read back in the same order into the shape of $\VAR{inp}$.
""",
    }

    def latex_description(self, options: Options) -> str:
        return "Flatten, row-major"

    def latex_shape_rule(self, before: Shape, after: Shape, options: Options) -> str:
        return r" \cdot ".join(str(d) for d in before) + f" = {after[0]}"

    def output_shape(self, shape: Shape, options: Options) -> Shape:
        return (prod(shape),)

    def chain_paths(self, paths, before, options):
        return paths.reshape(before), 0

    def declare(self, ctx: Context) -> Declaration:
        a, g = ctx.input, ctx.upstream
        return Declaration(Reshape(a, (tx.BATCH, prod(a.shape[1:]))), {a.name: Reshape(g, a.shape)})

    def all_sizes(self, options: Options) -> tuple[AllSizes, ...]:
        c, h, w = size("C"), size("H"), size("W")
        p = tx.Tensor("P1", (tx.BATCH, c, h, w))
        flat, g = tx.Tensor("F", (tx.BATCH, c * h * w)), tx.Tensor("dF", (tx.BATCH, c * h * w))
        declaration = self.declare(Context(p, flat, g, {}, {}))
        roles = {"input": p.name, "output": flat.name, "upstream": g.name}
        return (AllSizes("flatten", declaration, (p, flat, g), roles, g.name),)

    def latex_operation(self, options: Options, short: bool = False) -> str:
        return r"\text{flatten}"
