"""Integer linear forms: ``sum_v a_v v + c`` with integer ``a_v`` and ``c``, read from SymPy.

A *variable* is a SymPy symbol or a product of symbols (``C*H*W`` in a flattened index
is one variable to the linear reasoning: treating a product as a free variable only
relaxes a system, so an infeasibility found that way is an infeasibility of the original).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from fractions import Fraction
from math import gcd

import sympy as sp


@functools.cache
def name(variable: sp.Expr) -> str:
    """The printed name of a variable, cached: it orders rows deterministically, whatever the hash seed."""
    return str(variable)


class NotLinear(ValueError):  # noqa: N818 - a verdict's reason, not an error
    """An index expression that is not an integer linear form (a rational coefficient, a floor)."""


@dataclass(frozen=True)
class Linear:
    """``sum coefficients[v] * v + constant``; ``coefficients`` has no zero values."""

    coefficients: tuple[tuple[sp.Expr, int], ...]
    constant: int

    @classmethod
    def of(cls, expr: sp.Expr) -> Linear:
        parts: dict[sp.Expr, int] = {}
        constant = 0
        for monomial, coefficient in sp.expand(expr).as_coefficients_dict().items():
            if not coefficient.is_Integer:
                raise NotLinear(f"{expr}: coefficient {coefficient} is not an integer")
            if monomial == 1:
                constant += int(coefficient)
                continue
            if not all(
                f.is_Symbol or (f.is_Pow and f.base.is_Symbol and f.exp.is_Integer and f.exp > 0)
                for f in sp.Mul.make_args(monomial)
            ):
                raise NotLinear(f"{expr}: {monomial} is not a product of symbols")
            parts[monomial] = parts.get(monomial, 0) + int(coefficient)
        items = tuple(sorted(((v, a) for v, a in parts.items() if a), key=lambda va: name(va[0])))
        return cls(items, constant)

    @property
    def key(self) -> tuple:
        """A cheap total order (printing SymPy expressions to sort them is slow)."""
        return tuple((name(v), a) for v, a in self.coefficients), self.constant

    def substituted(self, mapping: dict[sp.Symbol, Linear]) -> Linear | None:
        """The form with linear values put in for symbols; None when a symbol sits inside a product."""
        out: dict[sp.Expr, int] = {}
        constant = self.constant
        for v, a in self.coefficients:
            value = mapping.get(v)
            if value is None:
                if not v.is_Symbol and any(s in mapping for s in v.free_symbols):
                    return None
                out[v] = out.get(v, 0) + a
                continue
            constant += a * value.constant
            for w, b in value.coefficients:
                out[w] = out.get(w, 0) + a * b
        items = tuple(sorted(((v, a) for v, a in out.items() if a), key=lambda va: name(va[0])))
        return Linear(items, constant)

    @property
    def variables(self) -> tuple[sp.Expr, ...]:
        return tuple(v for v, _ in self.coefficients)

    def coefficient(self, variable: sp.Expr) -> int:
        return dict(self.coefficients).get(variable, 0)

    def content(self) -> int:
        """The gcd of the variables' coefficients (0 for a constant)."""
        g = 0
        for _, a in self.coefficients:
            g = gcd(g, a)
        return g

    def expr(self) -> sp.Expr:
        return sp.Add(*(a * v for v, a in self.coefficients), sp.Integer(self.constant))


def as_fractions(form: Linear) -> tuple[dict[sp.Expr, Fraction], Fraction]:
    return {v: Fraction(a) for v, a in form.coefficients}, Fraction(form.constant)
