"""Condition sets over the integers, and their implication decided by Fourier-Motzkin elimination.

A condition set is a conjunction of linear inequalities ``e >= 0`` and equalities ``e = 0``
over integer variables (indices and sizes). ``infeasible`` is sound: it answers True only when
the system has no integer solution. It eliminates equalities with a unit coefficient by
substitution (exact), then inequalities by Fourier-Motzkin, tightening every derived
inequality to the integers (divide by the gcd of the coefficients and round the constant
down: ``2x >= 1`` becomes ``x >= 1``). Each step keeps every integer solution, so a
contradiction at the end (``0 >= c`` with ``c > 0``) is a proof that there is none. When the
elimination grows past a budget it answers False ("may be feasible"), which can only make a
theorem *not proven*.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from math import gcd

import sympy as sp

from gradproof.derive.parametric.linear import Linear, NotLinear, name

Row = tuple[dict[sp.Expr, int], int]  # sum a_v v + c
BUDGET = 4000  # most rows alive during one elimination


def _normalised(row: Row) -> Row | None:
    """The integer tightening of ``row >= 0``; None for a row that always holds."""
    coefficients, constant = row
    coefficients = {v: a for v, a in coefficients.items() if a}
    if not coefficients:
        return None if constant >= 0 else ({}, -1)
    g = 0
    for a in coefficients.values():
        g = gcd(g, a)
    return {v: a // g for v, a in coefficients.items()}, constant // g


def _row(form: Linear) -> Row:
    return dict(form.coefficients), form.constant


def _negated(row: Row) -> Row:
    """Over the integers, not ``e >= 0`` is ``-e - 1 >= 0``."""
    return {v: -a for v, a in row[0].items()}, -row[1] - 1


def _substitute(row: Row, variable: sp.Expr, by: Row) -> Row:
    """``row`` with ``variable`` replaced by the linear form ``by``."""
    a = row[0].get(variable, 0)
    if not a:
        return row
    out = {v: c for v, c in row[0].items() if v != variable}
    for v, c in by[0].items():
        out[v] = out.get(v, 0) + a * c
    return out, row[1] + a * by[1]


def infeasible(inequalities: Iterable[Row], equalities: Iterable[Row] = ()) -> bool:
    """True only if no integer point satisfies every ``row >= 0`` and every ``row = 0``."""
    rows = list(inequalities)
    pending = list(equalities)
    while pending:
        coefficients, constant = pending.pop()
        coefficients = {v: a for v, a in coefficients.items() if a}
        if not coefficients:
            if constant != 0:
                return True
            continue
        g = 0
        for a in coefficients.values():
            g = gcd(g, a)
        if constant % g:
            return True  # the gcd of the coefficients does not divide the constant
        unit = next((v for v, a in coefficients.items() if abs(a) == 1), None)
        if unit is None:
            rows += [(coefficients, constant), _negated_equality((coefficients, constant))]
            continue
        sign = coefficients[unit]
        by = ({v: -a * sign for v, a in coefficients.items() if v != unit}, -constant * sign)
        rows = [_substitute(r, unit, by) for r in rows]
        pending = [_substitute(r, unit, by) for r in pending]
    return _fourier_motzkin(rows)


def _negated_equality(row: Row) -> Row:
    return {v: -a for v, a in row[0].items()}, -row[1]


def _fourier_motzkin(rows: list[Row]) -> bool:
    live: set[tuple] = set()
    current: list[Row] = []
    for row in rows:
        normal = _normalised(row)
        if normal is None:
            continue
        if not normal[0]:
            return True
        key = (tuple(sorted(normal[0].items(), key=lambda va: name(va[0]))), normal[1])
        if key not in live:
            live.add(key)
            current.append(normal)
    while current:
        variables = {v for coefficients, _ in current for v in coefficients}
        if not variables:
            return False

        variable = min(variables, key=lambda v, rows=current: _cost(rows, v))
        lower = [r for r in current if r[0].get(variable, 0) > 0]
        upper = [r for r in current if r[0].get(variable, 0) < 0]
        rest = [r for r in current if not r[0].get(variable, 0)]
        if len(rest) + len(lower) * len(upper) > BUDGET:
            return False
        seen = {(tuple(sorted(r[0].items(), key=lambda va: name(va[0]))), r[1]) for r in rest}
        current = list(rest)
        for lo in lower:
            a = lo[0][variable]
            for up in upper:
                b = -up[0][variable]
                combined = {}
                for v in set(lo[0]) | set(up[0]):
                    if v != variable:
                        combined[v] = b * lo[0].get(v, 0) + a * up[0].get(v, 0)
                normal = _normalised((combined, b * lo[1] + a * up[1]))
                if normal is None:
                    continue
                if not normal[0]:
                    return True
                key = (tuple(sorted(normal[0].items(), key=lambda va: name(va[0]))), normal[1])
                if key not in seen:
                    seen.add(key)
                    current.append(normal)
    return False


def _cost(rows: list[Row], v: sp.Expr) -> tuple[int, str]:
    """Rows that eliminating ``v`` adds (the pairs of its lower and upper bounds, minus both)."""
    up = sum(1 for c, _ in rows if c.get(v, 0) > 0)
    down = sum(1 for c, _ in rows if c.get(v, 0) < 0)
    return (up * down - up - down, name(v))


@dataclass(frozen=True)
class Conditions:
    """A conjunction: every ``inequalities`` form ``>= 0`` and every ``equalities`` form ``= 0``."""

    inequalities: frozenset[Linear] = frozenset()
    equalities: frozenset[Linear] = frozenset()

    @classmethod
    def of(cls, inequalities: Iterable[sp.Expr] = (), equalities: Iterable[sp.Expr] = ()) -> Conditions:
        return cls(
            frozenset(Linear.of(e) for e in inequalities),
            frozenset(_oriented(Linear.of(e)) for e in equalities),
        ).pruned()

    def pruned(self) -> Conditions:
        """Constant rows that always hold dropped; an unsatisfiable constant row kept as ``-1 >= 0``."""
        ineqs = {f for f in self.inequalities if f.coefficients or f.constant < 0}
        eqs = {f for f in self.equalities if f.coefficients or f.constant != 0}
        if any(not f.coefficients for f in eqs):
            ineqs.add(Linear((), -1))
            eqs = {f for f in eqs if f.coefficients}
        return Conditions(frozenset(ineqs), frozenset(eqs))

    def __and__(self, other: Conditions) -> Conditions:
        return Conditions(self.inequalities | other.inequalities, self.equalities | other.equalities)

    def rows(self) -> tuple[list[Row], list[Row]]:
        return [_row(f) for f in self.inequalities], [_row(f) for f in self.equalities]

    def substituted(self, mapping: dict[sp.Symbol, sp.Expr]) -> Conditions:
        try:
            linear = {v: Linear.of(e) for v, e in mapping.items()}
        except NotLinear:
            linear = None
        if linear is not None:
            ineqs = [f.substituted(linear) for f in self.inequalities]
            eqs = [f.substituted(linear) for f in self.equalities]
            if None not in ineqs and None not in eqs:
                return Conditions(frozenset(ineqs), frozenset(_oriented(f) for f in eqs)).pruned()
        return Conditions.of(
            (f.expr().xreplace(mapping) for f in self.inequalities),
            (f.expr().xreplace(mapping) for f in self.equalities),
        )

    def free_symbols(self) -> set[sp.Symbol]:
        out: set[sp.Symbol] = set()
        for f in (*self.inequalities, *self.equalities):
            out |= f.expr().free_symbols
        return out

    def text(self) -> str:
        parts = [f"{sp.sstr(f.expr())} >= 0" for f in sorted(self.inequalities, key=_key)]
        parts += [f"{sp.sstr(f.expr())} = 0" for f in sorted(self.equalities, key=_key)]
        return ", ".join(parts) or "true"


def _key(form: Linear) -> tuple:
    return form.key


def _oriented(form: Linear) -> Linear:
    """An equality with its first coefficient positive, so that ``e = 0`` and ``-e = 0`` are one row."""
    if form.coefficients and form.coefficients[0][1] < 0:
        return Linear(tuple((v, -a) for v, a in form.coefficients), -form.constant)
    return form


def empty_under(hypotheses: Conditions, conditions: Conditions) -> bool:
    """No integer point satisfies the hypotheses and the conditions (sound, may answer False)."""
    ineqs, eqs = (hypotheses & conditions).rows()
    return infeasible(ineqs, eqs)


def implies(hypotheses: Conditions, premise: Conditions, conclusion: Conditions) -> bool:
    """Under the hypotheses, every integer point of ``premise`` satisfies ``conclusion`` (sound)."""
    ineqs, eqs = (hypotheses & premise).rows()
    for f in conclusion.inequalities:
        if not infeasible([*ineqs, _negated(_row(f))], eqs):
            return False
    for f in conclusion.equalities:
        row = _row(f)
        if not infeasible([*ineqs, _negated(row)], eqs):  # e <= -1
            return False
        if not infeasible([*ineqs, _negated(_negated_equality(row))], eqs):  # e >= 1
            return False
    return True


def equivalent(hypotheses: Conditions, a: Conditions, b: Conditions) -> bool:
    """Under the hypotheses the two condition sets hold at the same integer points (sound)."""
    if a == b:
        return True
    return implies(hypotheses, a, b) and implies(hypotheses, b, a)
