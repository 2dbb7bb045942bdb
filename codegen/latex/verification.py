"""The verification section, typeset from the proof records.

Each record becomes one item: what it proves, its verdict, how many entries
were checked (and which, when the record lists them) and how. All of it is
typeset from the record's structured fields (its key, level, step and target,
batch, tensor, window) and from the network, in the document's notation; the
record's plain-text ``statement`` and ``method``, written for the command line
and JSON, never reach the document. A record this module cannot typeset is an
error, so no ASCII formula can slip into a paper. Records are grouped by
level, in the prover's order. Timings are never shown, so the document does
not change from one run to the next; the SymPy version is.
"""

from __future__ import annotations

import re
from math import prod

import sympy as sp

from gradproof.codegen.latex.content import Block, text_escape
from gradproof.codegen.latex.entries import MAX_ENTRIES_SHOWN, shown_index
from gradproof.codegen.latex.names import Names
from gradproof.codegen.latex.printer import LatexReading
from gradproof.derive import layers as kinds
from gradproof.derive.network import Network, Step, gradient_name
from gradproof.derive.prover import ProofRecord

_ENTRY = re.compile(r"dL/d(\w+)\[([0-9,]+)\]")

LAYER_WORDS = {
    "conv2d": "Convolution",
    "dense": "Dense layer",
    "relu": "ReLU",
    "sigmoid": "Sigmoid",
    "maxpool2d": "Max-pooling",
    "flatten": "Flatten",
}
LOSS_WORDS = {"bce": "Cross-entropy loss", "mse": "Quadratic cost"}
# What the rule kind of a layer (derive.layers) says about its local obligation.
KIND_WORDS = {
    kinds.BILINEAR: "the layer is bilinear",
    kinds.ELEMENTWISE: "the layer acts entry by entry",
    kinds.SELECTION: "the layer is piecewise linear",
    kinds.LINEAR: "the layer is linear",
    kinds.LOSS: "the loss reads the output and the target",
    kinds.FUSED: "the sigmoid and the loss are fused and read the logit",
}


class VerificationError(ValueError):
    """A proof record that the LaTeX side does not know how to typeset."""


def _math(latex: str) -> str:
    """Inline math that TeX keeps on one line (a formula of a statement is not split at its operators)."""
    return f"${{{latex}}}$"


class Verification:
    def __init__(self, network: Network, records: list[ProofRecord], names: Names):
        self.network = network
        self.records = records
        self.names = names
        # Local rules are proven at batch 2 and extended to any N by the batch obligation: N stays a letter.
        self.inline = LatexReading(names, batch=None, brackets="plain", inline=True)

    # ------------------------------------------------------------ helpers

    def sym(self, name: str) -> str:
        return self.names.symbol(name)

    def grad(self, name: str) -> str:
        """``\\partial L/\\partial W_{1}`` for a tensor name."""
        return self.names.inline(gradient_name(name))

    def step(self, record: ProofRecord) -> Step:
        for step in self.network.steps:
            if step.output.name == record.step_output and record.target in step.rules:
                return step
        raise VerificationError(f"{record.level} record {record.name!r} names no rule of the network")

    def step_reading(self, tensor: str, layer: str) -> Step:
        """The step of type ``layer`` that reads ``tensor`` (the step a convention is checked on)."""
        for step in self.network.steps:
            if step.input.name == tensor and step.layer is not None and step.layer.type == layer:
                return step
        raise VerificationError(f"no {layer} layer reads {tensor!r}")

    def rule(self, record: ProofRecord) -> str:
        """The rule a local or end-to-end record proves, typeset: ``$\\partial L/\\partial W_{1} = ...$``."""
        step = self.step(record)
        return _math(f"{self.grad(record.target)} = {self.inline(step.rules[record.target])}")

    def samples(self, batch: int) -> str:
        return "one sample" if batch == 1 else rf"a batch of ${batch}$ samples"

    def sizes(self) -> str:
        """``15 = 9 + 1 + 4 + 1``: the trainable parameters and the size of each tensor of them."""
        sizes = [prod(p.shape) for p in self.network.params]
        total = str(self.network.parameter_count)
        return total if len(sizes) == 1 else f"{total} = " + " + ".join(map(str, sizes))

    def logit_names(self) -> tuple[str, str, str]:
        """The logit, the prediction and the target of a sigmoid with cross-entropy: ``Z_2, A_2, Y``."""
        loss = self.network.steps[-1]
        ((logit, _),) = loss.rules.items()
        return self.sym(logit), self.sym(self.network.output.name), self.sym(self.network.target.name)

    # ------------------------------------------------------ one per record

    def typeset(self, record: ProofRecord) -> tuple[str, str]:
        """What ``record`` proves and how, both as LaTeX text (math in math mode)."""
        by_key = {
            "sigmoid-bce": self.sigmoid_bce,
            "bce-logit": self.bce_logit,
            "sigmoid-derivative": self.sigmoid_derivative,
            "window-max": self.window_max,
            "relu-kink": self.relu_kink,
            "pooling-ties": self.pooling_ties,
            "local": self.local,
            "end-to-end": self.end_to_end,
            "count": self.count,
            "batch": self.batch_reduction,
        }
        if record.key in by_key:
            return by_key[record.key](record)
        raise VerificationError(f"cannot typeset the {record.level} record {record.name!r} ({record.key!r})")

    def sigmoid_bce(self, record: ProofRecord) -> tuple[str, str]:
        z, a, y = self.logit_names()
        loss = rf"$\ell = -\bigl({y} \log {a} + (1 - {y}) \log(1 - {a})\bigr)$"  # long: may break
        output = _math(rf"{a} = \sigma({z})")
        product = _math(rf"\partial \ell/\partial {a} \cdot \partial {a}/\partial {z} = {a} - {y}")
        what = f"Sigmoid with cross-entropy: for {output} and the loss {loss} of one sample, {product}."
        how = (
            rf"with $e^{{-{z}}}$ written as one positive symbol, SymPy's \texttt{{cancel}} reduces the "
            "difference of the two sides to $0$ exactly."
        )
        return what, how

    def bce_logit(self, record: ProofRecord) -> tuple[str, str]:
        z, _, y = self.logit_names()
        textbook = rf"-\bigl({y} \log \sigma({z}) + (1 - {y}) \log(1 - \sigma({z}))\bigr)"
        logit = rf"\log(1 + e^{{{z}}}) - {y} {z}"
        what = "Cross-entropy from the logit: " + _math(f"{textbook} = {logit}") + "."
        how = (
            rf"the two sides have the same derivative with respect to ${z}$ (exact cancellation, with "
            rf"$e^{{-{z}}}$ written as one positive symbol) and the same value at ${z} = 0$."
        )
        return what, how

    def sigmoid_derivative(self, record: ProofRecord) -> tuple[str, str]:
        lemma = r"\mathrm{d}\sigma(t)/\mathrm{d}t = \sigma(t)\,\bigl(1 - \sigma(t)\bigr)"
        what = "Sigmoid derivative: for " + _math(r"\sigma(t) = 1/(1 + e^{-t})") + f", {_math(lemma)}."
        how = r"exact cancellation, with $e^{-t}$ written as one positive symbol."
        return what, how

    def window_max(self, record: ProofRecord) -> tuple[str, str]:
        side = record.window
        k = side * side
        maximum = rf"\partial \max(t_{{0}}, \dots, t_{{{k - 1}}})/\partial t_{{i}}"
        lemma = _math(maximum + r" = \prod_{j \ne i} H(t_{i} - t_{j})")
        what = (
            rf"Derivative of the maximum of a ${side} \times {side}$ window: {lemma} wherever no two of the "
            r"$t_{j}$ are equal, $H$ being the unit step."
        )
        how = (
            r"exact evaluation. Both sides depend only on which of the other entries exceed $t_{i}$, and "
            rf"each of the $2^{{{k - 1}}}$ such patterns is evaluated for each of the ${k}$ choices of $i$."
        )
        return what, how

    def relu_kink(self, record: ProofRecord) -> tuple[str, str]:
        step = self.step_reading(record.tensor, "relu")
        z, upstream = self.sym(record.tensor), self.names.inline(step.upstream.name)
        zero = _math(f"{self.grad(record.tensor)} = 0")
        what = (
            rf"$\operatorname{{ReLU}}'(0) = 0$ at ${z}$: the rule gives {zero} where ${z} = 0$, and passes "
            rf"${upstream}$ on where ${z} = 1$."
        )
        how = (
            rf"exact evaluation of the rule with every entry of ${z}$ equal to $0$, then to $1$, and every "
            rf"entry of ${upstream}$ equal to $1$."
        )
        return what, how

    def pooling_ties(self, record: ProofRecord) -> tuple[str, str]:
        self.step_reading(record.tensor, "maxpool2d")
        a, side = self.sym(record.tensor), record.window
        what = (
            rf"Pooling ties at ${a}$: a ${side} \times {side}$ window of ${a}$ whose maximum is tied "
            r"routes its whole gradient to the first maximum in row-major order, as PyTorch's "
            r"\texttt{max\_pool2d} does."
        )
        how = r"exact evaluation of the rule on every tied window with entries in $\{0, 1, 2\}$."
        return what, how

    def local(self, record: ProofRecord) -> tuple[str, str]:
        step = self.step(record)
        head = LAYER_WORDS[step.layer.type] if step.layer else LOSS_WORDS[self.network.spec.loss]
        theta = self.names.entry(record.target, ("k",))
        if step.upstream is None:
            derivative = rf"\partial {self.names.loss}/\partial {theta}"
        else:
            contraction = rf"\sum_{{o}} G_{{o}}\, {self.names.entry(step.output.name, ('o',))}"
            derivative = rf"\partial \bigl({contraction}\bigr)/\partial {theta}"
        kind = KIND_WORDS[step.rule.kind]
        how = f"{_math(derivative)} for every $k$, at batch size ${record.batch}$; {kind}."
        return f"{head}: {self.rule(record)}", how

    def end_to_end(self, record: ProofRecord) -> tuple[str, str]:
        theta = self.sym(record.target)
        moved = rf"\mathrm{{d}}{self.names.loss}({theta} + \varepsilon c)/\mathrm{{d}}\varepsilon"
        how = (
            rf"the coefficient of each $c_{{k}}$ in {_math(moved)} at $\varepsilon = 0$, for the loss of "
            f"{self.samples(record.batch)}."
        )
        return self.rule(record), how

    def count(self, record: ProofRecord) -> tuple[str, str]:
        loss = self.names.loss
        count = _math(self.sizes())
        what = f"Trainable parameters: ${loss}$ depends on exactly {count} trainable parameters."
        how = f"the entries of the parameters among the free symbols of ${loss}$."
        return what, how

    def batch_reduction(self, record: ProofRecord) -> tuple[str, str]:
        reduction, n, b, loss = self.network.spec.reduction, record.batch, self.names.sample, self.names.loss
        per_sample = " + ".join(rf"\ell^{{({i})}}" for i in range(n))
        combined = rf"\frac{{1}}{{{n}}}\bigl({per_sample}\bigr)" if reduction == "mean" else per_sample
        sample_loss = rf"\ell^{{({b})}}"
        what = (
            f"Per-sample {reduction} over the batch: at batch size ${n}$, {_math(f'{loss} = {combined}')}, "
            f"where ${sample_loss}$ is the loss of sample ${b}$ alone, and every layer computes sample ${b}$ "
            f"of its output from sample ${b}$ of its input. Hence, for a batch of any size $N$, the gradient "
            f"of ${loss}$ is the {reduction} of the per-sample gradients: the form of every proven rule."
        )
        how = (
            f"the normal form of ${loss}$ at batch size ${n}$ against that of {_math(combined)}; the free "
            "symbols of every layer's output, sample by sample."
        )
        return what, how

    # ---------------------------------------------------------- entries

    def entry(self, name: str) -> str:
        """``dL/dW1[0,0,1,2]`` as ``\\partial L/\\partial (W_1)_{1,2}``; anything else as escaped text."""
        match = _ENTRY.fullmatch(name)
        shapes = {p.name: p.shape for p in self.network.params}
        if match is None or match.group(1) not in shapes:
            return r"\text{" + text_escape(name) + "}"
        tensor, index = match.group(1), tuple(int(i) for i in match.group(2).split(","))
        shape = shapes[tensor]
        if len(index) != len(shape):
            return r"\text{" + text_escape(name) + "}"
        shown = self.names.entry(tensor, shown_index(index, shape, batched=False))
        return rf"\partial {self.names.loss}/\partial {shown}"

    def entry_list(self, names: list[str]) -> list[str]:
        """The entries a record checked, each in math mode; a long list as its first three and its last."""
        shown = [self.entry(e) for e in names]
        if len(shown) > MAX_ENTRIES_SHOWN:
            shown = shown[:3] + [r"\dots"] + shown[-1:]
        return shown

    def block(self) -> Block:
        groups: list[dict] = []
        for r in self.records:
            if not groups or groups[-1]["level"] != r.level:
                groups.append({"level": r.level, "title": text_escape(r.level), "rows": []})
            what, how = self.typeset(r)
            groups[-1]["rows"].append(
                {
                    "headline": what,
                    "entries": r.entries,
                    "method": how,
                    "holds": r.holds,
                    "entry_list": self.entry_list(r.entry_names),
                }
            )
        return Block(
            "verification",
            "Verification",
            [],
            kind="verification",
            data={
                "groups": groups,
                "loss": self.names.loss,
                "reduction": self.network.spec.reduction,
                "sympy": text_escape(sp.__version__),
                "total": len(self.records),
                "proven": sum(r.holds for r in self.records),
                "entries": sum(r.entries for r in self.records),
            },
        )
