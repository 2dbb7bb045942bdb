"""A network's theorems for all sizes, their composition, and what fits an element-wise proof.

``parametric_records(network)``: one ``parametric`` record per distinct rule of the network (a
rule used by two layers of one type is one theorem), with its statement, hypotheses, verdict
and, for a refuted rule, its counterexample. ``composition_record``: every rule of the network is
its theorem at the network's sizes (the sizes read off the shapes satisfy the hypotheses), each
layer reads the previous layer's output, and backpropagation applies the rules from the loss
back, which is the chain rule; it says which element-wise proofs ran at the network's sizes.

``Budget`` decides, from a deterministic cost model (so that the records, and the documents
typeset from them, do not depend on the machine's load), which element-wise proofs run. Costs are
in *units* of about 0.2 ms on the 2-core benchmark machine (measured on mnist_cnn8 and the small
CNN family): a local proof costs the layer's multiply-adds plus ten units per entry of its input
and output, at batch 2; an end-to-end proof costs the forward pass's multiply-adds, times 2^U for
binary cross-entropy over U output units. The 2^U is the growth measured in issue 15 (0.9, 1.7,
9.2, 70.5 s at 2, 3, 5, 7 units): ``derive.canonical.vanishes`` clears the denominator
``1 - sigmoid(Z_u)`` of every unit's ``d log(1 - A_u)`` at once, multiplying each monomial by
a product of U two-term bases.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from math import prod

from gradproof.derive import texpr as tx
from gradproof.derive.layers import LAYERS
from gradproof.derive.network import Network, Step
from gradproof.derive.parametric.catalogue import NoTheorem
from gradproof.derive.parametric.instances import instance_sizes, statements_for
from gradproof.derive.parametric.theorem import NOT_PROVEN, PROVEN, Verdict, describe, prove
from gradproof.derive.records import ProofRecord
from gradproof.derive.spec import forward_terms
from gradproof.derive.statement import gradient_name, tensor_label, text

PARAMETRIC_KEY, COMPOSITION_KEY = "parametric", "theorems-composed"
UNITS_PER_SECOND = 5_000
DEFAULT_BUDGET_SECONDS = 20.0
LOCAL_BATCH = 2
METHOD = (
    "index form over symbolic ranges: derivative of sum_o G[o] out[o] by an entry, Kronecker deltas "
    "eliminated (unit coefficients only; the gcd rule for zero), coefficients of G[p] for an "
    "unrestricted p compared group by group, condition sets decided equivalent by Fourier-Motzkin "
    "over the integers, each coefficient tested for zero on the region"
)


@dataclass(frozen=True)
class Budget:
    """Which element-wise proofs run: those whose estimated time is within ``seconds``."""

    seconds: float = DEFAULT_BUDGET_SECONDS

    @property
    def units(self) -> float:
        return self.seconds * UNITS_PER_SECOND

    def local_cost(self, step: Step) -> int:
        entries = prod(_concrete(step.input.shape)) + prod(_concrete(step.output.shape))
        work = entries
        if step.layer is not None:
            work = LAYERS[step.layer.type].work(
                step.input.shape[1:], step.output.shape[1:], step.layer.options
            )
        return LOCAL_BATCH * (work + 10 * entries)

    def end_to_end_cost(self, network: Network) -> int:
        units = prod(network.output.shape[1:]) if network.spec.loss == "bce" else 0
        return forward_terms(network.spec) * 2**units

    def fits(self, cost: int) -> bool:
        return cost <= self.units

    def estimate(self, cost: int) -> str:
        return f"{cost / UNITS_PER_SECOND:.1f} s"


def _concrete(shape: tx.Shape) -> tuple[int, ...]:
    return tuple(1 if d == tx.BATCH else d for d in shape)


def _sizes_text(sizes: dict) -> str:
    return ", ".join(f"{s}={v}" for s, v in sizes.items())


def parametric_records(network: Network) -> tuple[list[ProofRecord], dict[tuple[str, str], ProofRecord]]:
    """The theorems of the network's rules, each once, and the record of each (step, target)."""
    records: list[ProofRecord] = []
    seen: dict[tuple, ProofRecord] = {}
    of_rule: dict[tuple[str, str], ProofRecord] = {}
    for step in network.steps:
        try:
            theorem, statements = statements_for(network, step)
        except NoTheorem:
            continue
        for (target, _), statement in zip(step.rules.items(), statements, strict=True):
            # The statement reads its tensors with the theorem's symbolic shapes, so two layers of one
            # type at different sizes state one theorem.
            signature = (theorem.key, statement.target, _unsized(statement.rule), _unsized(statement.forward))
            # The sizes a step fixes (a strided step's input side, a pooling's remainder) are part of what
            # is proven: a theorem with H = 9 put in says nothing of a layer with H = 4.
            signature += (
                len(statement.shapes[statement.target]),
                tuple(sorted(map(str, statement.fixed.items()))),
            )
            if signature not in seen:
                seen[signature] = _record(theorem.key, statement, prove(statement))
                records.append(seen[signature])
            of_rule[(step.output.name, target)] = seen[signature]
            seen[signature].instances.append((step.output.name, target))
    return records, of_rule


def _unsized(expr: tx.Expr) -> str:
    """``expr`` printed with every tensor's concrete dimensions left out."""
    if isinstance(expr, tx.Tensor):
        return expr.name
    parts = [
        _unsized(value) if isinstance(value, tx.Expr) else repr(value)
        for value in (getattr(expr, f.name) for f in dataclasses.fields(expr))
    ]
    return f"{type(expr).__name__}({', '.join(parts)})"


def _record(key: str, statement, verdict: Verdict) -> ProofRecord:
    gradient = tensor_label(gradient_name(statement.target))
    sizes = ", ".join(map(str, statement.sizes))
    record = ProofRecord(
        "parametric",
        f"{statement.name.split(':')[0]}: {gradient} (all sizes)",
        f"{gradient} = {text(statement.rule)} for all {sizes}",
        verdict.cases or 1,
        METHOD,
        seconds=verdict.seconds,
        holds=verdict.holds,
        failing=None
        if verdict.holds
        else (describe(verdict.counterexample) if verdict.counterexample else verdict.reason),
        key=PARAMETRIC_KEY,
        tensor=key,
        window=statement.window,
    )
    record.verdict = verdict.status
    record.hypotheses = statement.hypotheses_text()
    record.counterexample = verdict.counterexample
    if verdict.status != PROVEN and verdict.reason:
        record.reason = verdict.reason
    return record


def composition_record(
    network: Network,
    of_rule: dict[tuple[str, str], ProofRecord],
    local: list[str],
    end_to_end: str,
    reduced: str = "",
) -> ProofRecord:
    """The network's rules are its theorems at its sizes, chained by the chain rule.

    A rule without a theorem for all sizes is covered by its local proof, when that ran (at the
    network's sizes, or at the miniature's: ``reduced`` names them).
    """
    start = time.perf_counter()
    problems, instances = [], []
    where = f"at reduced sizes ({reduced})" if reduced else "at these sizes"
    previous = network.input
    for step in network.steps:
        if step.input.shape != previous.shape and step.upstream is not None:
            problems.append(f"{step.output.name} reads {step.input.name} of shape {step.input.shape}")
        if step.upstream is not None:
            previous = step.output
        try:
            _, statements = statements_for(network, step)
        except NoTheorem:
            for target in step.rules:
                label = tensor_label(gradient_name(target))
                missing = f"{label}: {step.rule.name} has no theorem for all sizes"
                if step.output.name in local:
                    instances.append(f"{missing}, proven {where}")
                else:
                    problems.append(f"{missing} and its local proof did not run")
            continue
        for (target, _), statement in zip(step.rules.items(), statements, strict=True):
            sizes = instance_sizes(network, step, statement)
            if sizes is None:
                problems.append(f"{tensor_label(gradient_name(target))}: no sizes match {statement.name}")
            elif not of_rule[(step.output.name, target)].holds:
                problems.append(f"{tensor_label(gradient_name(target))}: its theorem is not proven")
            else:
                instances.append(f"{tensor_label(gradient_name(target))} at {_sizes_text(sizes)}")
    checked = f"element-wise {where}: local {', '.join(local) or 'none'}; end to end {end_to_end}"
    record = ProofRecord(
        "composition",
        "rules composed by the chain rule",
        "every rule of the network is its theorem for all sizes at the network's sizes ("
        + "; ".join(instances)
        + "), each layer reads the previous layer's output, and backpropagation applies the rules "
        "from the loss back (the chain rule); " + checked,
        len(instances),
        "sizes read off the concrete shapes, hypotheses evaluated; shapes of consecutive layers compared",
        holds=not problems,
        failing="; ".join(problems) or None,
        key=COMPOSITION_KEY,
    )
    record.verdict = PROVEN if not problems else NOT_PROVEN
    record.seconds = time.perf_counter() - start
    return record
