"""Sums of terms: ``sum_t sum_{bound_t} [conditions_t] coefficient_t``, the index form of an entry.

A term's bound variables range over the integers; their ranges are part of its conditions
(``[0 <= m <= K - 1]``), so a sum is an indicator-weighted sum over all of Z, and the
indicator is our own (``Conditions``), never SymPy's ``Piecewise`` (the ``Sum`` constructor
folds a ``Piecewise`` out of an inner ``Sum`` and leaves its condition naming the inner index
outside its scope). Coefficients are SymPy expressions over ``Indexed`` entries.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field

import sympy as sp

from gradproof.derive.parametric.conditions import Conditions


@dataclass(frozen=True)
class Term:
    bound: tuple[sp.Symbol, ...]
    conditions: Conditions
    coefficient: sp.Expr

    def substituted(self, mapping: dict[sp.Symbol, sp.Expr]) -> Term:
        """Free (or bound, when renaming) symbols replaced; bound symbols in ``mapping`` leave ``bound``."""
        bound = tuple(mapping.get(v, v) for v in self.bound if not _is_eliminated(v, mapping))
        return Term(bound, self.conditions.substituted(mapping), self.coefficient.xreplace(mapping))

    def text(self) -> str:
        head = f"sum_{{{','.join(map(str, self.bound))}}} " if self.bound else ""
        return f"{head}[{self.conditions.text()}] {sp.sstr(self.coefficient)}"


def _is_eliminated(v: sp.Symbol, mapping: dict[sp.Symbol, sp.Expr]) -> bool:
    return v in mapping and not isinstance(mapping[v], sp.Symbol)


TermSum = tuple[Term, ...]


@dataclass
class Fresh:
    """Fresh integer symbols for bound variables, named deterministically (``m1``, ``m2``...)."""

    counter: itertools.count = field(default_factory=lambda: itertools.count(1))

    def __call__(self, stem: str) -> sp.Symbol:
        return sp.Symbol(f"{stem}{next(self.counter)}", integer=True)


def constant(value: sp.Expr) -> TermSum:
    return (Term((), Conditions(), sp.sympify(value)),)


def summed(bound: Iterable[tuple[sp.Symbol, sp.Expr]], body: TermSum) -> TermSum:
    """``sum_{v in [0, size - 1]}`` of ``body``, for each ``(v, size)``."""
    bound = list(bound)
    ranges = Conditions.of([e for v, n in bound for e in (v, n - 1 - v)])
    return tuple(Term((*(v for v, _ in bound), *t.bound), ranges & t.conditions, t.coefficient) for t in body)


def restricted(conditions: Conditions, body: TermSum) -> TermSum:
    return tuple(Term(t.bound, conditions & t.conditions, t.coefficient) for t in body)


def scaled(factor: sp.Expr, body: TermSum) -> TermSum:
    return tuple(Term(t.bound, t.conditions, factor * t.coefficient) for t in body)


def plus(a: TermSum, b: TermSum) -> TermSum:
    return (*a, *b)


def minus(a: TermSum, b: TermSum) -> TermSum:
    return (*a, *scaled(sp.Integer(-1), b))


def times(a: TermSum, b: TermSum, fresh: Fresh) -> TermSum:
    """The product of two sums, distributed; ``b``'s bound variables renamed apart."""
    out = []
    for s in a:
        for t in b:
            clash = set(t.bound) & (set(s.bound) | s.conditions.free_symbols() | s.coefficient.free_symbols)
            if clash:
                t = t.substituted({v: fresh(v.name.rstrip("0123456789")) for v in clash})
            out.append(Term((*s.bound, *t.bound), s.conditions & t.conditions, s.coefficient * t.coefficient))
    return tuple(out)


def simple_value(body: TermSum) -> sp.Expr | None:
    """The value of a sum without bound variables or conditions, else None."""
    if all(not t.bound and not t.conditions.inequalities and not t.conditions.equalities for t in body):
        return sp.Add(*(t.coefficient for t in body))
    return None
