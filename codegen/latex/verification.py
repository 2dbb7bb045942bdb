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
from gradproof.derive.prover import ProofRecord, network_uses

_ENTRY = re.compile(r"dL/d(\w+)\[([0-9,]+)\]")

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
        # The theorems for all sizes and their composition are stated by the theorems section; this one
        # verifies the network's own sizes.
        self.records = [r for r in records if r.key not in ("parametric", "theorems-composed")]
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

    def step_checked(self, record: ProofRecord) -> Step:
        """The step a convention record is checked on: it reads the record's tensor and brings its key."""
        for step in self.network.steps[:-1]:
            keys = {c.key for c in step.rule.conventions}
            if step.input.name == record.tensor and record.key in keys:
                return step
        raise VerificationError(f"no layer that brings {record.key!r} reads {record.tensor!r}")

    def math(self, latex: str) -> str:
        return _math(latex)

    def obligations(self) -> dict:
        """The identities, lemmas and conventions the network's types bring, by key."""
        declared = {use.obligation.key: use.obligation for use in network_uses(self.network)}
        for step in self.network.steps[:-1]:
            declared.update({c.key: c for c in step.rule.conventions})
        return declared

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
            "local": self.local,
            "end-to-end": self.end_to_end,
            "count": self.count,
            "batch": self.batch_reduction,
            "miniature": self.miniature,
            "shapes": self.shapes,
            "composition": self.composition,
            "parameter-count": self.parameter_count,
        }
        if record.key in by_key:
            return by_key[record.key](record)
        declared = self.obligations()
        if record.key in declared:
            return declared[record.key].typeset(record, self)
        raise VerificationError(f"cannot typeset the {record.level} record {record.name!r} ({record.key!r})")

    def local(self, record: ProofRecord) -> tuple[str, str]:
        step = self.step(record)
        head = step.rule.display
        theta = self.names.entry(record.target, ("k",))
        if step.upstream is None:
            derivative = rf"\partial {self.names.loss}/\partial {theta}"
        else:
            contraction = rf"\sum_{{o}} G_{{o}}\, {self.names.entry(step.output.name, ('o',))}"
            derivative = rf"\partial \bigl({contraction}\bigr)/\partial {theta}"
        kind = getattr(step.rule, "kind_words", "") or KIND_WORDS[step.rule.kind]  # a type may say it itself
        how = f"{_math(derivative)} for every $k$, at batch size ${record.batch}$; {kind}."
        return f"{head}: {self.rule(record)}", how + self.reduced(record)

    def reduced(self, record: ProofRecord) -> str:
        """`` Proven on the miniature: input 1x16x16; ...``, for a record of a miniature; else nothing."""
        if not record.sizes:
            return ""
        return f" Proven on the miniature: {text_escape(record.sizes)}."

    def miniature(self, record: ProofRecord) -> tuple[str, str]:
        what = (
            "The miniature has the network's architecture: the same layer types in the same order, "
            "with the same kernels, strides, padding, windows, bias flags, loss, reduction and number "
            "of classes; only the input, the filters and the hidden units are smaller "
            f"({text_escape(record.sizes)})."
        )
        how = "comparison of the two specs, layer by layer; every rule is one declaration of its type."
        return what, how

    def shapes(self, record: ProofRecord) -> tuple[str, str]:
        what = (
            "Shapes at the network's own sizes: every forward map has the shape of its output, and "
            "every rule the shape of the tensor it differentiates."
        )
        return what, "the shape rules of the expression language, read on every forward map and rule."

    def composition(self, record: ProofRecord) -> tuple[str, str]:
        loss = self.names.loss
        what = (
            rf"Composition: from $\partial {loss}/\partial {loss} = 1$ back, every rule reads only "
            "forward values, parameters and a gradient already computed, and every trainable parameter "
            "receives one; by the chain rule the composed local rules are the gradient of the loss."
        )
        return what, "a walk of the backward plan in the order the generated code runs it."

    def parameter_count(self, record: ProofRecord) -> tuple[str, str]:
        what = f"Trainable parameters: {_math(self.sizes())}, each the target of exactly one rule."
        return what, "the declared shapes, and the targets of the backward plan."

    def end_to_end(self, record: ProofRecord) -> tuple[str, str]:
        theta = self.sym(record.target)
        moved = rf"\mathrm{{d}}{self.names.loss}({theta} + \varepsilon c)/\mathrm{{d}}\varepsilon"
        how = (
            rf"the coefficient of each $c_{{k}}$ in {_math(moved)} at $\varepsilon = 0$, for the loss of "
            f"{self.samples(record.batch)}."
        )
        return self.rule(record), how + self.reduced(record)

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
