"""Element-wise activations: relu (with its convention at the kink), sigmoid (with its lemma), tanh."""

# ruff: noqa: E501 - the LaTeX words keep the line breaks of the documents they print

from __future__ import annotations

import numpy as np
import sympy as sp

from gradproof.derive.layers.base import (
    ELEMENTWISE,
    AllSizes,
    Context,
    Declaration,
    LayerType,
    Obligation,
    Options,
    Use,
    elementwise_all_sizes,
)
from gradproof.derive.records import ProofRecord, concrete, timed
from gradproof.derive.statement import gradient_name, tensor_label
from gradproof.derive.symbolic import SymbolicReading, sigmoid_lemma_holds
from gradproof.derive.texpr import OneMinus, Product, Relu, Sigmoid, StepMask, Tanh

# ---------------------------------------------------------------------- relu


def prove_relu_kink(network, step) -> ProofRecord:
    """ReLU'(0) = 0: the rule evaluated exactly with its input all 0, then all 1."""
    z = step.input
    record = ProofRecord(
        "convention",
        f"ReLU'(0) = 0 ({z.name})",
        f"{tensor_label(gradient_name(z.name))} = 0 where {z.name} = 0, = upstream where {z.name} = 1",
        2,
        "exact evaluation",
        key="relu-kink",
        tensor=z.name,
    )

    def check():
        shape = concrete(z.shape, 1)
        for value, expected in ((0, 0), (1, 1)):
            env = {
                z.name: np.full(shape, sp.Integer(value), dtype=object),
                step.output.name: np.full(shape, sp.Integer(value), dtype=object),
                step.upstream.name: np.full(shape, sp.Integer(1), dtype=object),
            }
            got = SymbolicReading(env, 1)(step.rules[z.name])
            if any(entry != expected for entry in got.ravel()):
                return False, f"{tensor_label(gradient_name(z.name))} at {z.name} = {value}"
        return True, None

    return timed(record, check)


def typeset_relu_kink(record: ProofRecord, doc) -> tuple[str, str]:
    step = doc.step_checked(record)
    z, upstream = doc.sym(record.tensor), doc.names.inline(step.upstream.name)
    zero = doc.math(f"{doc.grad(record.tensor)} = 0")
    what = (
        rf"$\operatorname{{ReLU}}'(0) = 0$ at ${z}$: the rule gives {zero} where ${z} = 0$, and passes "
        rf"${upstream}$ on where ${z} = 1$."
    )
    how = (
        rf"exact evaluation of the rule with every entry of ${z}$ equal to $0$, then to $1$, and every "
        rf"entry of ${upstream}$ equal to $1$."
    )
    return what, how


RELU_KINK = Obligation("relu-kink", "convention", prove_relu_kink, typeset_relu_kink)


class ReluLayer(LayerType):
    name = "relu"
    kind = ELEMENTWISE
    summary = "max(0, z), derivative 0 at 0"
    conventions = (RELU_KINK,)
    display = "ReLU"
    output_meaning = "activation, ReLU"
    docstring = ("ReLU'(0) = 0;",)
    latex_conventions = (
        r"""\item $\operatorname{ReLU}'(0) = 0$. SymPy's step function has $H(0) = \frac{1}{2}$ by default; the rules use $0$, as
  frameworks do, and a \emph{convention} obligation checks it at
  \BLOCK{for z in inputs}$\VAR{z} = 0$\BLOCK{if not loop.last} and \BLOCK{endif}\BLOCK{endfor}.""",
    )
    region = "where no input of a ReLU is\n$0$"
    prose = {
        "input": r"""\paragraph{ReLU.} $\operatorname{ReLU}'(z)$ is $1$ for $z > 0$ and $0$ for $z < 0$; at $z = 0$ the derivative does not
exist, and we take $0$. Multiplying by it entry by entry masks the gradient: it passes where $\VAR{inp} > 0$ and stops
elsewhere. The mask $\mathbf{1}[\VAR{inp} > 0]$ is the $R'(\VAR{inp})$ of some texts.
""",
    }

    def declare(self, ctx: Context) -> Declaration:
        z, g = ctx.input, ctx.upstream
        return Declaration(Relu(z), {z.name: Product(g, StepMask(z))})

    def all_sizes(self, options: Options) -> tuple[AllSizes, ...]:
        return elementwise_all_sizes(self, "relu", None, "on the region where no entry of Z1 is 0")

    def latex_operation(self, options: Options, short: bool = False) -> str:
        return r"\operatorname{ReLU}"

    def error_note(self, pairs: list[tuple[str, str]]) -> str:
        """LaTeX after "Here" in the error form: what its derivative factor is called, for (input, output) pairs."""
        named = " and ".join(rf"$\mathbf{{1}}[{z} > 0] = \operatorname{{ReLU}}'({z})$" for z, _ in pairs)
        short = " and ".join(f"$R'({z})$" for z, _ in pairs)
        return f"{named}, written\n{short} in some texts."


# ------------------------------------------------------------------- sigmoid


def prove_sigmoid_lemma() -> ProofRecord:
    record = ProofRecord(
        "lemma",
        "sigmoid derivative",
        "d/dt 1/(1 + exp(-t)) = sigmoid(t) (1 - sigmoid(t))",
        1,
        "exact cancellation in e = exp(-t)",
        key="sigmoid-derivative",
    )
    return timed(record, lambda: (sigmoid_lemma_holds(), None))


def typeset_sigmoid_lemma(record: ProofRecord, doc) -> tuple[str, str]:
    lemma = r"\mathrm{d}\sigma(t)/\mathrm{d}t = \sigma(t)\,\bigl(1 - \sigma(t)\bigr)"
    what = "Sigmoid derivative: for " + doc.math(r"\sigma(t) = 1/(1 + e^{-t})") + f", {doc.math(lemma)}."
    how = r"exact cancellation, with $e^{-t}$ written as one positive symbol."
    return what, how


SIGMOID_LEMMA = Obligation("sigmoid-derivative", "lemma", prove_sigmoid_lemma, typeset_sigmoid_lemma)


class SigmoidLayer(LayerType):
    name = "sigmoid"
    kind = ELEMENTWISE
    summary = "1 / (1 + exp(-z))"
    display = "Sigmoid"
    output_meaning = "activation, sigmoid"
    prose = {
        "input": r"""\paragraph{Sigmoid.} The derivative of the sigmoid is $\sigma'(z) = \sigma(z)\,(1 - \sigma(z))$ (the sigmoid lemma of
Section~\ref{\VAR{sec}verification-section}), and $\sigma(\VAR{inp}) = \VAR{out}$, so the derivative is written with the layer's output,
which the forward pass has already computed.
""",
    }

    def chain_paths(self, paths, before, options):
        return paths * 2, 0  # its derivative A (1 - A) repeats its input

    def declare(self, ctx: Context) -> Declaration:
        z, g, out = ctx.input, ctx.upstream, ctx.output
        return Declaration(Sigmoid(z), {z.name: Product(g, Product(out, OneMinus(out)))})

    def all_sizes(self, options: Options) -> tuple[AllSizes, ...]:
        return elementwise_all_sizes(self, "sigmoid", Sigmoid)

    def lemmas(self, options: Options) -> tuple[Use, ...]:
        return (Use(SIGMOID_LEMMA),)

    def latex_operation(self, options: Options, short: bool = False) -> str:
        return r"\sigma"

    def error_note(self, pairs: list[tuple[str, str]]) -> str:
        named = " and ".join(rf"${a} \odot (1 - {a}) = \sigma'({z})$" for z, a in pairs)
        return f"{named}, the derivative of the sigmoid written with its output."


# ---------------------------------------------------------------------- tanh


class TanhLayer(LayerType):
    name = "tanh"
    kind = ELEMENTWISE
    summary = "hyperbolic tangent, derivative 1 - tanh(z)^2"
    display = "Tanh"
    output_meaning = "activation, tanh"
    prose = {
        "input": r"""\paragraph{Tanh.} Differentiating $\tanh = \sinh/\cosh$ gives
$\tanh'(z) = (\cosh^{2} z - \sinh^{2} z)/\cosh^{2} z = 1 - \tanh^{2}(z)$, and $\tanh(\VAR{inp}) = \VAR{out}$, so the derivative is
written with the layer's output, which the forward pass has already computed: the rule multiplies the gradient entry by
entry by $1 - \VAR{out} \odot \VAR{out}$. That factor is $1$ where $\VAR{inp} = 0$ and falls towards $0$ as $|\VAR{inp}|$ grows: a saturated
unit passes almost no gradient on.
""",
    }

    def chain_paths(self, paths, before, options):
        return paths * 2, 0  # its derivative 1 - A A repeats its input

    def declare(self, ctx: Context) -> Declaration:
        z, g, out = ctx.input, ctx.upstream, ctx.output
        return Declaration(Tanh(z), {z.name: Product(g, OneMinus(Product(out, out)))})

    def all_sizes(self, options: Options) -> tuple[AllSizes, ...]:
        return elementwise_all_sizes(self, "tanh", Tanh)

    def latex_operation(self, options: Options, short: bool = False) -> str:
        return r"\tanh"

    def error_note(self, pairs: list[tuple[str, str]]) -> str:
        named = " and ".join(rf"$1 - {a} \odot {a} = \tanh'({z})$" for z, a in pairs)
        return f"{named}, the derivative of tanh written with its output."
