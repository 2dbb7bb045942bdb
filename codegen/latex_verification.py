"""The verification section, generated from the proof records.

Each record becomes one item: its obligation, its statement (typeset from the
rule it proves when the statement names one, else the record's own text,
escaped), its verdict, how many entries were checked (and which, when the
record lists them) and its method. Records are grouped by level, in the
prover's order. Timings are never shown, so the document does not change
from one run to the next; the SymPy version is.
"""

from __future__ import annotations

import re

import sympy as sp

from codegen.latex_content import Block, text_escape
from codegen.latex_entries import shown_index
from codegen.latex_names import Names
from codegen.latex_printer import LatexReading
from derive.network import Network, gradient_name
from derive.prover import ProofRecord
from derive.statement import tensor_label

_ENTRY = re.compile(r"dL/d(\w+)\[([0-9,]+)\]")


class Verification:
    def __init__(self, network: Network, records: list[ProofRecord], names: Names, batch: int | None):
        self.network = network
        self.records = records
        self.names = names
        self.batch = batch
        self.inline = LatexReading(names, batch=batch, brackets="plain", inline=True)

    def _rules(self):
        for step in self.network.steps:
            yield from step.rules.items()

    def rule_statement(self, record: ProofRecord) -> str | None:
        """The rule a local or end-to-end record proves (its step and target), typeset."""
        for step in self.network.steps:
            if step.output.name == record.step_output and record.target in step.rules:
                expr = step.rules[record.target]
                return f"${self.names.inline(gradient_name(record.target))} = {self.inline(expr)}$"
        return None

    def headline(self, record: ProofRecord) -> str:
        """What the record proves: ``conv2d: <rule>``, or its name and its statement as recorded."""
        rule = self.rule_statement(record)
        if rule is not None:
            for target, _ in self._rules():
                plain = tensor_label(gradient_name(target))
                if record.name.endswith(plain):
                    head = record.name[: -len(plain)].strip().rstrip(":").strip()
                    return f"{text_escape(head)}: {rule}" if head else rule
            return rule
        return text_escape(record.name) + r".\quad \texttt{" + text_escape(record.statement) + "}"

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

    def block(self) -> Block:
        groups: list[dict] = []
        for r in self.records:
            if not groups or groups[-1]["level"] != r.level:
                groups.append({"level": r.level, "title": text_escape(r.level), "rows": []})
            groups[-1]["rows"].append(
                {
                    "headline": self.headline(r),
                    "entries": r.entries,
                    "method": text_escape(r.method),
                    "holds": r.holds,
                    "entry_list": [self.entry(e) for e in r.entry_names],
                }
            )
        return Block(
            "verification",
            "Verification",
            [],
            kind="verification",
            data={
                "groups": groups,
                "sympy": text_escape(sp.__version__),
                "total": len(self.records),
                "proven": sum(r.holds for r in self.records),
                "entries": sum(r.entries for r in self.records),
            },
        )
