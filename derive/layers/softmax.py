"""softmax over K classes, and cross-entropy fused with it: computed from the logits, dL/dZ = (A - Y)/N.

The big brother of sigmoid + binary cross-entropy. The loss reads the logit ``Z`` of the softmax
layer; its rule is the prediction error ``A - Y`` (over ``N`` for a batch mean), which holds
because every target row sums to 1: the *hypothesis* of the identity. The prover makes it true
of every target it reads, by writing the last class of each row as ``1 - sum`` of the others, so
the local and end-to-end proofs of the rule are proven under exactly that hypothesis; the
generated module refuses a target row that does not sum to 1.
"""

# ruff: noqa: E501 - the LaTeX words keep the line breaks of the documents they print

from __future__ import annotations

import numpy as np
import sympy as sp

from gradproof.derive.layers.base import (
    FUSED,
    AllSizes,
    Context,
    Declaration,
    LayerType,
    LossContext,
    LossType,
    Obligation,
    Options,
    Use,
    size,
)
from gradproof.derive.operations import Softmax, SoftmaxCrossEntropy, SoftmaxVJP
from gradproof.derive.records import ProofRecord, timed
from gradproof.derive.texpr import BATCH, BatchScale, Difference, Tensor

ROW_WISE = "row-wise"  # out[b, k] depends on the row in[b, :]


def rows_sum_to_one(target: np.ndarray) -> np.ndarray:
    """``target`` (batch, K) of symbols with its last column replaced by 1 minus the others: the hypothesis."""
    out = target.copy()
    for b in range(out.shape[0]):
        out[b, -1] = 1 - sp.Add(*out[b, :-1])
    return out


def _classes(k: int):
    z = sp.symbols(f"z0:{k}", real=True)
    y = list(sp.symbols(f"y0:{k}", real=True))
    y[-1] = 1 - sp.Add(*y[:-1])  # the hypothesis sum_k y_k = 1
    e = sp.symbols(f"e0:{k}", positive=True)  # e_k = exp(z_k)
    return z, y, e


def prove_softmax_ce(k: int) -> ProofRecord:
    record = ProofRecord(
        "identity",
        "dL/dA * dA/dZ = A - Y (softmax)",
        f"for L = -sum_k Y_k log A_k, A = softmax(Z) over {k} classes and sum_k Y_k = 1: "
        "dL/dZ_j = A_j - Y_j for every j",
        k,
        "SymPy's derivative, exact cancellation (sympy.cancel) with e_k = exp(Z_k) positive symbols",
        key="softmax-ce",
        window=k,
    )

    def check():
        z, y, e = _classes(k)
        total = sp.Add(*[sp.exp(v) for v in z])
        loss = -sp.Add(*[y[i] * sp.log(sp.exp(z[i]) / total) for i in range(k)])
        to_e = {sp.exp(z[i]): e[i] for i in range(k)}
        for j in range(k):
            difference = (loss.diff(z[j]) - (sp.exp(z[j]) / total - y[j])).subs(to_e)
            if sp.cancel(sp.together(difference)) != 0:
                return False, f"dL/dZ[{j}]"
        return True, None

    return timed(record, check)


def typeset_softmax_ce(record: ProofRecord, doc) -> tuple[str, str]:
    z, a, y = doc.logit_names()
    loss = rf"$\ell = -\sum_{{k}} {{{y}}}_{{k}} \log {{{a}}}_{{k}}$"
    output = doc.math(rf"{a} = \operatorname{{softmax}}({z})")
    hypothesis = doc.math(rf"\sum_{{k}} {{{y}}}_{{k}} = 1")
    product = doc.math(rf"\partial \ell/\partial {{{z}}}_{{j}} = {{{a}}}_{{j}} - {{{y}}}_{{j}}")
    what = (
        f"Softmax with cross-entropy over ${record.window}$ classes: for {output}, the loss {loss} of one "
        f"sample and a target with {hypothesis}, {product} for every class $j$."
    )
    how = (
        rf"with the last target entry written as $1$ minus the others and each $e^{{{{{z}}}_{{k}}}}$ as one "
        r"positive symbol, SymPy's \texttt{cancel} reduces the difference of the two sides to $0$ exactly."
    )
    return what, how


def prove_logsumexp_form(k: int) -> ProofRecord:
    record = ProofRecord(
        "identity",
        "cross-entropy from the logits",
        f"for {k} classes and sum_k Y_k = 1: -sum_k Y_k log softmax(Z)_k = log sum_k exp(Z_k) - sum_k Y_k Z_k, "
        "and log softmax(Z)_k = Z_k - log sum_j exp(Z_j)",
        k,
        "equal derivatives in every Z_j (exact cancellation) and equal values at Z = 0",
        key="ce-logsumexp",
        window=k,
    )

    def check():
        z, y, e = _classes(k)
        total = sp.Add(*[sp.exp(v) for v in z])
        textbook = -sp.Add(*[y[i] * sp.log(sp.exp(z[i]) / total) for i in range(k)])
        prover_form = -sp.Add(*[y[i] * (z[i] - sp.log(total)) for i in range(k)])  # the symbolic reading's
        logsumexp = sp.log(total) - sp.Add(*[y[i] * z[i] for i in range(k)])  # the generated code's
        to_e = {sp.exp(z[i]): e[i] for i in range(k)}
        at_zero = {v: 0 for v in z}
        for left, right, what in ((textbook, prover_form, "log softmax"), (textbook, logsumexp, "L")):
            for j in range(k):
                slope = (left.diff(z[j]) - right.diff(z[j])).subs(to_e)
                if sp.cancel(sp.together(slope)) != 0:
                    return False, f"{what}: d/dZ[{j}]"
            value = sp.expand(sp.expand_log((left - right).subs(at_zero), force=True))
            if value != 0:
                return False, f"{what} at Z = 0"
        return True, None

    return timed(record, check)


def typeset_logsumexp_form(record: ProofRecord, doc) -> tuple[str, str]:
    z, _, y = doc.logit_names()
    textbook = rf"-\sum_{{k}} {{{y}}}_{{k}} \log \operatorname{{softmax}}({z})_{{k}}"
    logit = rf"\log \sum_{{k}} e^{{{{{z}}}_{{k}}}} - \sum_{{k}} {{{y}}}_{{k}} {{{z}}}_{{k}}"
    what = (
        "Cross-entropy from the logits, for "
        + doc.math(rf"\sum_{{k}} {{{y}}}_{{k}} = 1")
        + f": ${textbook} = {logit}$."  # wider than a line at 10 classes: TeX may break it at its "="
    )
    how = (
        rf"the two sides have the same derivative with respect to every ${{{z}}}_{{j}}$ (exact cancellation, "
        rf"with each $e^{{{{{z}}}_{{k}}}}$ written as one positive symbol) and the same value at ${z} = 0$."
    )
    return what, how


SOFTMAX_CE = Obligation("softmax-ce", "identity", prove_softmax_ce, typeset_softmax_ce)
LOGSUMEXP_FORM = Obligation("ce-logsumexp", "identity", prove_logsumexp_form, typeset_logsumexp_form)


class SoftmaxLayer(LayerType):
    name = "softmax"
    kind = ROW_WISE
    summary = "exp(z_k) / sum_j exp(z_j) over each sample's row"
    input_rank = "vector"
    display = "Softmax"
    kind_words = "each output reads the whole row of logits"
    output_meaning = "class probabilities, softmax"
    docstring = ("softmax is computed from z - max(z), so it never overflows;",)
    prose = {
        "input": r"""\paragraph{Softmax.} Each output depends on the whole row of logits: $\partial {\VAR{out}}_{k}/\partial {\VAR{inp}}_{j} = {\VAR{out}}_{k}(\delta_{kj} - {\VAR{out}}_{j})$,
so the gradient is $\VAR{out} \odot (G - \operatorname{rowsum}(G \odot \VAR{out}))$ for the upstream gradient $G$. Under the
cross-entropy loss it is never used: the fused rule hands $\VAR{inp}$ its gradient directly.
""",
    }

    def latex_description(self, options: Options) -> str:
        return "Softmax over each sample's row"

    def chain_paths(self, paths, before, options):
        return np.full(before, sum(paths), dtype=object), 0  # each logit reaches every output of its row

    def declare(self, ctx: Context) -> Declaration:
        z, g, out = ctx.input, ctx.upstream, ctx.output
        return Declaration(Softmax(z), {z.name: SoftmaxVJP(out, g)})

    def all_sizes(self, options: Options) -> tuple[AllSizes, ...]:
        dims = (BATCH, size("K"))
        z, a, g = Tensor("Z1", dims), Tensor("A1", dims), Tensor("dA1", dims)
        declaration = self.declare(Context(z, a, g, {}, {}))
        roles = {"input": z.name, "output": a.name, "upstream": g.name}
        return (AllSizes("softmax", declaration, (z, a, g), roles, g.name, definitions={a.name: Softmax(z)}),)

    def latex_operation(self, options: Options, short: bool = False) -> str:
        return r"\operatorname{softmax}"


class CrossEntropy(LossType):
    name = "cross_entropy"
    kind = FUSED
    summary = "cross-entropy of the softmax over K classes, from the logits"
    reads_logit_of = "softmax"
    targets = "classes"
    display = "Cross-entropy loss"
    kind_words = "the softmax and the loss are fused and read the logits"
    latex_operation = r"\text{CE}"
    latex_conventions = (
        r"""\item The cross-entropy is computed from the logits by the log-sum-exp, never as the logarithm of a rounded
  probability; targets are one-hot rows (or rows of probabilities) that sum to $1$, the hypothesis of the identity of
  Section~\ref{\VAR{sec}layers-section}.""",
    )
    prose_before = r"""\paragraph{Loss and output.} Let $\ell = -\sum_{k} {\VAR{names.symbol('Y')}}_{k} \log {\VAR{out}}_{k}$ be the cross-entropy of one sample, written with its
prediction $\VAR{out} = \operatorname{softmax}(\VAR{target})$. With $\partial \log {\VAR{out}}_{k}/\partial {\VAR{target}}_{j} = \delta_{kj} - {\VAR{out}}_{j}$ and a target row that sums to $1$:"""
    prose_after = r"""The sum of the target row is $1$, so the derivative at the logits is the prediction error: the \emph{identity} obligation
of Section~\ref{\VAR{sec}verification-section}. The Jacobian of the softmax, a full $K \times K$ matrix for each sample, is never
formed: it cancels against the derivative of the logarithm. For a one-hot target of class $y$, the gradient of the logit of
the true class is ${\VAR{out}}_{y} - 1 < 0$ and that of every other class $k$ is ${\VAR{out}}_{k} > 0$, so a step of gradient descent
raises the true class's logit and lowers the others in proportion to their probabilities; the gradient vanishes only when
the prediction equals the target. The loss is computed from the logits $\VAR{target}$ by the log-sum-exp: its gradient never
divides by a probability, which can round to $0$.
"""

    def declare(self, ctx: LossContext) -> Declaration:
        """Cross-entropy of ``softmax(Z)`` differentiated at the logits ``Z``: ``dL/dZ = A - Y``."""
        logits, y, out = ctx.input, ctx.target, ctx.prediction
        return Declaration(
            SoftmaxCrossEntropy(logits, y, ctx.reduction),
            {logits.name: BatchScale(Difference(out, y), ctx.reduction)},
        )

    def lemmas(
        self, logit: str, prediction: str, target: str, output: tuple[int, ...] = ()
    ) -> tuple[Use, ...]:
        """The identities for the network's number of classes, ``output = (K,)``."""
        return (Use(SOFTMAX_CE, output), Use(LOGSUMEXP_FORM, output))

    def all_sizes(self, reduction: str) -> tuple[AllSizes, ...]:
        """Over K classes, with the hypothesis that every row of the target sums to 1."""
        dims = (BATCH, size("K"))
        z, y, a = Tensor("Z1", dims), Tensor("Y", dims), Tensor("A1", dims)
        declaration = self.declare(LossContext(z, a, y, reduction))
        roles = {"input": z.name, "prediction": a.name, "target": y.name}
        definitions = {a.name: Softmax(z)}
        key = f"cross_entropy/{reduction}"
        return (AllSizes(key, declaration, (z, y, a), roles, definitions=definitions, row_sums=(y.name,)),)

    def constrain_target(self, target: np.ndarray) -> np.ndarray:
        return rows_sum_to_one(target)

    def docstring_line(self, logits: str) -> str:
        return f"the loss is the cross-entropy of softmax({logits}), computed from the logits by the log-sum-exp;"
