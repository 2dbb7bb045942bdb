"""The theorems section: each rule of the network stated for all sizes, from its parametric record.

A parametric record (``derive.parametric.network_proofs``) proves one rule of the rule table for
symbolic sizes; its statement here is read off the same ``Statement`` the prover proved
(``statements_for`` of the record's first layer), with the network's own tensor names and notation:
the sizes and their hypotheses, the tensors and their symbolic shapes, the layer's forward map,
the region where the derivative is taken, and the rule. The layers of the network it covers
follow, each with the sizes it is instantiated at (``instance_sizes``, the composition's check).

Sizes are set in sans-serif (``\\mathsf{H}``) so that they cannot be read as a tensor (a width
``W`` beside a weight ``W_1``); the batch keeps the document's letter ``N``. Nothing here depends
on timings, so the section is the same on every run.
"""

from __future__ import annotations

import sympy as sp

from gradproof.codegen.latex.content import Block
from gradproof.codegen.latex.printer import LatexReading
from gradproof.derive import texpr as tx
from gradproof.derive.network import Step, gradient_name
from gradproof.derive.parametric.instances import instance_sizes, statements_for, step_names
from gradproof.derive.parametric.network_proofs import COMPOSITION_KEY, PARAMETRIC_KEY
from gradproof.derive.parametric.theorem import NOT_PROVEN, PROVEN, REFUTED, Statement
from gradproof.derive.records import ProofRecord

VERDICT_WORDS = {PROVEN: "Proven", REFUTED: "Refuted", NOT_PROVEN: "Not proven"}


def size_symbol(symbol: sp.Symbol, batch: sp.Symbol) -> str:
    """A size in LaTeX: ``\\mathsf{K}_{\\mathsf{h}}`` for ``K_h``; the batch is ``N``."""
    if symbol == batch:
        return "N"
    base, _, sub = str(symbol).partition("_")
    return rf"\mathsf{{{base}}}" + (rf"_{{\mathsf{{{sub}}}}}" if sub else "")


def size_latex(expr, batch: sp.Symbol) -> str:
    expr = sp.sympify(expr)
    return sp.latex(expr, symbol_names={s: size_symbol(s, batch) for s in expr.free_symbols})


def inequality(expr, batch: sp.Symbol) -> str:
    """``e >= 0`` as a relation between its positive and negative terms: ``K_h <= H`` for ``H - K_h``."""
    terms = sp.Add.make_args(sp.expand(expr))
    low = sp.Add(*[-t for t in terms if t.could_extract_minus_sign()])
    high = sp.Add(*[t for t in terms if not t.could_extract_minus_sign()])
    if low == 0:
        return rf"{size_latex(high, batch)} \ge 0"
    return rf"{size_latex(low, batch)} \le {size_latex(high, batch)}"


def shape_latex(shape, batch: sp.Symbol) -> str:
    return r" \times ".join(size_latex(d, batch) for d in shape)


class Theorems:
    """The ``theorems`` block of a derivation (``codegen.latex.derivation.Derivation``)."""

    def __init__(self, derivation):
        self.derivation = derivation
        self.network = derivation.network
        self.names = derivation.names

    def block(self) -> Block:
        records = [r for r in self.derivation.records if r.key == PARAMETRIC_KEY]
        composed = next((r for r in self.derivation.records if r.key == COMPOSITION_KEY), None)
        return Block(
            "theorems",
            "Theorems for all sizes",
            [],
            kind="theorems",
            data={
                "items": [self.item(n, r) for n, r in enumerate(records, 1)],
                "composed": composed is not None and composed.holds,
                "ragged": self.derivation.layout.breakable_math,
            },
        )

    def step(self, instance: tuple[str, str]) -> Step:
        output, target = instance
        return next(s for s in self.network.steps if s.output.name == output and target in s.rules)

    def statement(self, step: Step, target: str) -> tuple[Statement, dict[str, str]]:
        """The statement the prover proved for ``target`` of ``step``, and the step's tensor names ->
        the statement's."""
        theorem, statements = statements_for(self.network, step)
        return statements[list(step.rules).index(target)], step_names(self.network, step, theorem)

    def math(self, latex: str) -> str:
        """Inline math TeX may break after a relation: a padded input's shape is long even for a page."""
        return f"${latex}$"

    def readings(self, step: Step, statement: Statement, names: dict[str, str]):
        """The display and inline readings of the step's expressions, a reshape's sizes symbolic."""
        symbolic = {
            t.shape: statement.shapes[names[t.name]]
            for t in (step.input, step.output)
            if names.get(t.name) in statement.shapes
        }

        def symbolic_reading(**style) -> LatexReading:
            def atom(expr: tx.Expr) -> str | None:
                shape = symbolic.get(tuple(expr.dims)) if isinstance(expr, tx.Reshape) else None
                if shape is None:
                    return None
                sizes = r"{\times}".join(size_latex(d, statement.batch) for d in shape)
                return reading.apply(rf"\operatorname{{reshape}}_{{{sizes}}}", reading(expr.a))

            reading = LatexReading(self.names, atom=atom, batch=None, **style)  # the batch stays a letter
            return reading

        return symbolic_reading(), symbolic_reading(brackets="plain", inline=True)

    def item(self, number: int, record: ProofRecord) -> dict:
        output, target = record.instances[0]
        step = self.step(record.instances[0])
        statement, names = self.statement(step, target)
        display, inline = self.readings(step, statement, names)
        grad = self.names.inline(gradient_name(target))
        label = self.derivation.label(f"theorem-{output}-{gradient_name(target)}")
        rows = self.derivation.equation_rows(self.derivation.grad(target), display(step.rules[target]), label)
        return {
            "number": number,
            "title": rf"{step.rule.display}: ${grad}$",
            "label": label,
            "ranges": self.ranges(statement),
            "relations": self.relations(statement),
            "fixed": self.fixed(statement),
            "tensors": self.tensors(step, statement, names),
            "forward": self.forward(step, inline),
            "through": "" if step.upstream is None else self.math(self.names.symbol(step.output.name)),
            "region": self.region(step, statement, names),
            "rows": rows,
            "verdict": VERDICT_WORDS[record.verdict],
            "cases": record.entries,
            "instances": [self.instance(self.step(i), i[1], statement) for i in record.instances],
        }

    def ranges(self, statement: Statement) -> list[str]:
        """The sizes and their least values: ``N, C, H \\ge 1``, ``P_h, P_w \\ge 0``."""
        b = statement.batch
        positive = [s for s in statement.sizes if s not in statement.at_least_zero]
        positive.sort(key=lambda s: (s != b, str(s)))
        out = [", ".join(size_symbol(s, b) for s in positive) + r" \ge 1"]
        if statement.at_least_zero:
            out.append(", ".join(size_symbol(s, b) for s in statement.at_least_zero) + r" \ge 0")
        return [self.math(f) for f in out]

    def relations(self, statement: Statement) -> list[str]:
        """The relations that make the shapes agree: ``K_h \\le H``; a side given by a floor."""
        b = statement.batch
        out = [inequality(e, b) for e in statement.size_conditions]
        out += [rf"{size_symbol(s, b)} = {size_latex(e, b)}" for s, e in statement.derived.items()]
        return [self.math(f) for f in out]

    def fixed(self, statement: Statement) -> list[str]:
        """The sizes the layer's options fix (stride, padding, kernel, a pooling's remainder)."""
        b = statement.batch
        return [self.math(rf"{size_symbol(s, b)} = {v}") for s, v in sorted(statement.fixed.items(), key=str)]

    def tensors(self, step: Step, statement: Statement, names: dict[str, str]) -> list[str]:
        """``X \\in R^{N x C x H x W}`` for every tensor the layer reads (not the gradient it is given)."""
        read = [step.input, *step.params]
        if step.upstream is None:
            read = [step.input, self.network.target]
        out = []
        for tensor in read:
            shape = shape_latex(statement.shapes[names[tensor.name]], statement.batch)
            out.append(self.math(rf"{self.names.symbol(tensor.name)} \in \mathbb{{R}}^{{{shape}}}"))
        return out

    def forward(self, step: Step, inline: LatexReading) -> str:
        """The layer's map; for the loss also the prediction its rule reads (``A_2 = sigma(Z_2)``)."""
        if step.upstream is not None:
            return self.math(f"{self.names.symbol(step.output.name)} = {inline(step.forward)}")
        prediction = next(s for s in self.network.steps if s.output.name == self.network.output.name)
        defined = f"{self.names.symbol(prediction.output.name)} = {inline(prediction.forward)}"
        return f"{self.math(defined)} and {self.math(f'{self.names.loss} = {inline(step.forward)}')}"

    def region(self, step: Step, statement: Statement, names: dict[str, str]) -> list[str]:
        """Hypotheses on values: where the derivative exists (a layer type's region), rows summing to 1."""
        out = []
        if getattr(step.rule, "region", ""):
            out.append(step.rule.region.replace("\n", " "))
        ours = {theorem_name: name for name, theorem_name in names.items()}
        for tensor in statement.row_sums:
            out.append(rf"where every row of {self.math(self.names.symbol(ours[tensor]))} sums to $1$")
        return out

    def instance(self, step: Step, target: str, stated: Statement) -> dict:
        """Where the network uses the theorem ``stated``: the layer, and the sizes read off its shapes (those
        ``stated`` fixes already left out)."""
        statement, _ = self.statement(step, target)
        sizes = instance_sizes(self.network, step, statement) or {}
        batch = stated.batch
        shown = [
            rf"{size_symbol(s, batch)} = {v}"
            for s, v in sizes.items()
            if s != batch and stated.fixed.get(s) != v
        ]
        return {
            "output": self.math(self.names.symbol(step.output.name)),
            "loss": step.upstream is None,
            "sizes": [self.math(s) for s in shown],
        }
