"""One theorem per rule of the rule table, stated for symbolic sizes.

Each type states its own theorem (``all_sizes`` of its entry in ``derive/layers/``: its
declaration over tensors with symbolic shapes, and its hypotheses); this module turns that into
statements and proves every rule it returns. A layer of a network is covered by its theorem at the
network's sizes (``instances``): the sizes its options fix (stride, padding, a floor-mode
remainder) are put in first, the others are read off the concrete shapes and must satisfy the
hypotheses.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import sympy as sp

from gradproof.derive import layers
from gradproof.derive import texpr as tx
from gradproof.derive.layers.base import AllSizes, LayerType, LossType, size
from gradproof.derive.parametric.theorem import NOT_PROVEN, PROVEN, REFUTED, Statement, Verdict, prove

N = size("N")  # the batch: a theorem's tensors name it tx.BATCH, as a network's do


class NoTheorem(KeyError):  # noqa: N818 - a fact about a layer type, reported, not an error
    """A layer or loss type the catalogue has no theorem for (say, one declared in a test)."""


@dataclass
class Theorem:
    """A layer's rules for all sizes: one statement per rule (and per case, e.g. tensor rank)."""

    layer: str
    key: str  # e.g. "conv2d", "conv2d/strided", "maxpool2d/2", "bce/mean"
    statements: list[Statement]
    roles: dict[str, str] = field(default_factory=dict)  # role (input, weight, ...) -> tensor name
    verdicts: list[Verdict] = field(default_factory=list)
    seconds: float = 0.0
    fix: object = None  # (options, per-sample input shape) -> {size: value} for a network's step

    def prove(self) -> Theorem:
        start = time.perf_counter()
        self.verdicts = [prove(s) for s in self.statements]
        self.seconds = time.perf_counter() - start
        return self

    @property
    def status(self) -> str:
        statuses = {v.status for v in self.verdicts}
        return REFUTED if REFUTED in statuses else NOT_PROVEN if NOT_PROVEN in statuses else PROVEN

    def fixed(self, options, shape) -> dict[sp.Symbol, int]:
        return dict(self.fix(options, shape)) if self.fix is not None else {}


def _dims(dims) -> tuple[sp.Expr, ...]:
    return tuple(N if d == tx.BATCH else sp.sympify(d) for d in dims)


def statements(layer: str, case: AllSizes) -> list[Statement]:
    """The statements of one case of a type's theorem: one per rule of its declaration."""
    shapes = {t.name: _dims(t.dims) for t in case.tensors}
    symbols = {s for shape in shapes.values() for d in shape for s in d.free_symbols}
    symbols |= {s for e in case.conditions for s in sp.sympify(e).free_symbols}
    symbols |= {s for e in case.derived.values() for s in e.free_symbols} | set(case.derived)
    symbols |= set(case.at_least_zero)
    return [
        Statement(
            name=f"{layer}: dL/d{target}",
            target=target,
            forward=case.declaration.forward,
            rule=rule,
            upstream=case.upstream,
            shapes=shapes,
            sizes=tuple(sorted(symbols, key=str)),
            batch=N,
            size_conditions=tuple(sp.sympify(e) for e in case.conditions),
            region=case.region,
            definitions=dict(case.definitions),
            window=case.window,
            at_least_zero=tuple(case.at_least_zero),
            row_sums=tuple(case.row_sums),
            derived=dict(case.derived),
        )
        for target, rule in case.declaration.rules.items()
    ]


def theorem_of(entry: LayerType | LossType, options: dict, reduction: str) -> Theorem:
    """The theorem a type states for its family of ``options`` (a loss: for ``reduction``)."""
    cases = entry.all_sizes(reduction) if isinstance(entry, LossType) else entry.all_sizes(options)
    if not cases:
        raise NoTheorem(f"no theorem for all sizes of {entry.name!r}")
    out = [s for case in cases for s in statements(entry.name, case)]
    first = cases[0]
    return Theorem(entry.name, first.key, out, dict(first.roles), fix=first.fix)


def every_theorem(windows=(2,), reductions=("mean", "sum")) -> list[Theorem]:
    """The theorems of every rule of the table (pooling per window size, losses per reduction)."""
    out = []
    for entry in layers.LAYERS.values():
        for options in entry.theorem_cases(tuple(windows)):
            out.append(theorem_of(entry, options, "mean"))
    for entry in layers.LOSSES.values():
        out += [theorem_of(entry, {}, reduction) for reduction in reductions]
    return out


def theorem_for(type_name: str, options: dict, reduction: str) -> Theorem:
    """The theorem of a layer or loss type with the options that change its statement."""
    entry = layers.LAYERS.get(type_name) or layers.LOSSES.get(type_name)
    if entry is None:
        raise NoTheorem(f"no theorem for all sizes of {type_name!r}")
    return theorem_of(entry, options, reduction)
