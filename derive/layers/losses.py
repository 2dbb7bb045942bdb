"""The losses: half the squared error, and binary cross-entropy fused with the sigmoid before it."""

# ruff: noqa: E501 - the LaTeX words keep the line breaks of the documents they print

from __future__ import annotations

import sympy as sp

from gradproof.derive.layers.activations import SIGMOID_LEMMA
from gradproof.derive.layers.base import (
    FUSED,
    LOSS,
    AllSizes,
    Declaration,
    LossContext,
    LossType,
    Obligation,
    Use,
    size,
)
from gradproof.derive.records import ProofRecord, timed
from gradproof.derive.symbolic import sigmoid_formula
from gradproof.derive.texpr import (
    BATCH,
    BatchScale,
    BinaryCrossEntropyWithLogits,
    Difference,
    HalfSquaredError,
    Sigmoid,
    Tensor,
)


class SquaredError(LossType):
    name = "mse"
    kind = LOSS
    summary = "half the squared error"
    display = "Quadratic cost"
    latex_operation = r"\tfrac{1}{2}\lVert\cdot\rVert^{2}"
    latex_conventions = (
        r"\item The quadratic cost carries its $\frac{1}{2}$, so that its derivative is the plain difference.",
    )
    prose_before = r"""\paragraph{Loss.} Let $\ell$ be the quadratic cost of one output entry of one sample, with its $\frac{1}{2}$. Its
derivative at the output is the prediction error:"""

    def declare(self, ctx: LossContext) -> Declaration:
        out, y = ctx.input, ctx.target
        return Declaration(
            HalfSquaredError(out, y, ctx.reduction),
            {out.name: BatchScale(Difference(out, y), ctx.reduction)},
        )

    def all_sizes(self, reduction: str) -> tuple[AllSizes, ...]:
        a, y = Tensor("A1", (BATCH, size("U"))), Tensor("Y", (BATCH, size("U")))
        declaration = self.declare(LossContext(a, a, y, reduction))
        roles = {"input": a.name, "prediction": a.name, "target": y.name}
        return (AllSizes(f"mse/{reduction}", declaration, (a, y), roles),)

    def docstring_line(self, logits: str) -> str:
        return "the loss is half the squared error, 0.5 * sum((output - Y) ** 2);"


# ------------------------------------------------------------ sigmoid + BCE


def prove_sigmoid_bce(z: str = "Z", a: str = "A", y: str = "Y") -> ProofRecord:
    """The identity in the network's names: logit ``z``, prediction ``a = sigmoid(z)``, target ``y``."""
    record = ProofRecord(
        "identity",
        f"dL/d{a} * d{a}/d{z} = {a} - {y}",
        f"for L = -({y} log {a} + (1 - {y}) log(1 - {a})), {a} = sigmoid({z}): dL/d{a} * d{a}/d{z} = {a} - {y}",
        1,
        "exact simplification (sympy.cancel)",
        key="sigmoid-bce",
    )

    def check():
        logit = sp.Symbol(z, real=True)
        target, prediction = sp.symbols(f"{y} {a}", real=True)
        loss = -(target * sp.log(prediction) + (1 - target) * sp.log(1 - prediction))
        product = loss.diff(prediction).subs(prediction, sigmoid_formula(logit)) * sigmoid_formula(
            logit
        ).diff(logit)
        e = sp.Symbol("e", positive=True)  # e = exp(-Z): both sides are rational in e
        holds = (
            sp.cancel(sp.together((product - (sigmoid_formula(logit) - target)).subs(sp.exp(-logit), e))) == 0
        )
        return holds, None if holds else f"dL/d{z}"

    return timed(record, check)


def typeset_sigmoid_bce(record: ProofRecord, doc) -> tuple[str, str]:
    z, a, y = doc.logit_names()
    loss = rf"$\ell = -\bigl({y} \log {a} + (1 - {y}) \log(1 - {a})\bigr)$"  # long: may break
    output = doc.math(rf"{a} = \sigma({z})")
    product = doc.math(rf"\partial \ell/\partial {a} \cdot \partial {a}/\partial {z} = {a} - {y}")
    what = f"Sigmoid with cross-entropy: for {output} and the loss {loss} of one sample, {product}."
    how = (
        rf"with $e^{{-{z}}}$ written as one positive symbol, SymPy's \texttt{{cancel}} reduces the "
        "difference of the two sides to $0$ exactly."
    )
    return what, how


def prove_logit_form(z: str = "Z", y: str = "Y") -> ProofRecord:
    """The logit form of BCE in the network's names: logit ``z``, target ``y``."""
    record = ProofRecord(
        "identity",
        "BCE from the logit",
        f"-({y} log sigmoid({z}) + (1 - {y}) log(1 - sigmoid({z}))) = log(1 + exp({z})) - {y} {z}",
        1,
        f"equal derivatives (exact) and equal values at {z} = 0",
        key="bce-logit",
    )

    def check():
        z, y = sp.symbols("Z Y", real=True)
        textbook = -(y * sp.log(sigmoid_formula(z)) + (1 - y) * sp.log(1 - sigmoid_formula(z)))
        logit_form = sp.log(1 + sp.exp(z)) - y * z
        e = sp.Symbol("e", positive=True)  # e = exp(-Z)
        slope = (textbook.diff(z) - logit_form.diff(z)).subs({sp.exp(-z): e, sp.exp(z): 1 / e})
        same_slope = sp.cancel(sp.together(slope)) == 0
        same_at_zero = sp.expand(sp.expand_log((textbook - logit_form).subs(z, 0), force=True)) == 0
        return same_slope and same_at_zero, None if same_slope and same_at_zero else "L"

    return timed(record, check)


def typeset_logit_form(record: ProofRecord, doc) -> tuple[str, str]:
    z, _, y = doc.logit_names()
    textbook = rf"-\bigl({y} \log \sigma({z}) + (1 - {y}) \log(1 - \sigma({z}))\bigr)"
    logit = rf"\log(1 + e^{{{z}}}) - {y} {z}"
    what = "Cross-entropy from the logit: " + doc.math(f"{textbook} = {logit}") + "."
    how = (
        rf"the two sides have the same derivative with respect to ${z}$ (exact cancellation, with "
        rf"$e^{{-{z}}}$ written as one positive symbol) and the same value at ${z} = 0$."
    )
    return what, how


SIGMOID_BCE = Obligation("sigmoid-bce", "identity", prove_sigmoid_bce, typeset_sigmoid_bce)
LOGIT_FORM = Obligation("bce-logit", "identity", prove_logit_form, typeset_logit_form)


class SigmoidBCE(LossType):
    name = "bce"
    kind = FUSED
    summary = "binary cross-entropy of the sigmoid, from the logit"
    reads_logit_of = "sigmoid"
    targets = "binary"
    display = "Cross-entropy loss"
    latex_operation = r"\text{BCE}"
    latex_conventions = (
        r"""\item The cross-entropy is computed from the logit, never as the logarithm of a rounded probability; the identity of
  Section~\ref{\VAR{sec}layers-section} is what makes this exact.""",
    )
    prose_before = r"""\paragraph{Loss and output.} Let $\ell$ be the cross-entropy of one sample, written with its prediction
$\VAR{out} = \sigma(\VAR{target})$. Its derivative at the prediction, brought to a common denominator:"""
    prose_after = r"""The sigmoid's derivative $\VAR{out}\,(1 - \VAR{out})$ (a proven lemma) cancels the denominator, so the product of the
two factors next to the loss is the prediction error: the \emph{identity} obligation of
Section~\ref{\VAR{sec}verification-section}. This is also why the loss is computed from the logit $\VAR{target}$: its
gradient never divides by $\VAR{out}$ or $1 - \VAR{out}$, which can round to $0$.
"""

    def declare(self, ctx: LossContext) -> Declaration:
        """BCE of ``sigmoid(Z)`` differentiated at the logit ``Z``: ``dL/dZ = A - Y``."""
        logits, y, out = ctx.input, ctx.target, ctx.prediction
        return Declaration(
            BinaryCrossEntropyWithLogits(logits, y, ctx.reduction),
            {logits.name: BatchScale(Difference(out, y), ctx.reduction)},
        )

    def lemmas(self, logit: str, prediction: str, target: str, output=()) -> tuple[Use, ...]:
        return (
            Use(SIGMOID_BCE, (logit, prediction, target)),
            Use(LOGIT_FORM, (logit, target)),
            Use(SIGMOID_LEMMA),
        )

    def all_sizes(self, reduction: str) -> tuple[AllSizes, ...]:
        dims = (BATCH, size("U"))
        z, y, a = Tensor("Z1", dims), Tensor("Y", dims), Tensor("A1", dims)
        declaration = self.declare(LossContext(z, a, y, reduction))
        roles = {"input": z.name, "prediction": a.name, "target": y.name}
        return (
            AllSizes(f"bce/{reduction}", declaration, (z, y, a), roles, definitions={a.name: Sigmoid(z)}),
        )

    def docstring_line(self, logits: str) -> str:
        return f"the loss is binary cross-entropy of sigmoid({logits}), computed from the logit {logits};"
