"""Deciding ``lhs == rhs`` exactly, fast: a polynomial normal form over the rationals.

After differentiation both sides of an obligation are polynomials in the
network's symbols and in a few kinds of *atoms*: step functions (from ReLU and
max-pooling), sigmoids, ``relu`` and ``window_max`` values, logarithms. The
normal form maps every SymPy expression to a sparse polynomial over Q:

- a symbol is a variable; a symbol listed as ``vanishing`` (the ``eps`` of a
  directional derivative) is 0, so a derivative is read at ``eps = 0``
  without rebuilding it;
- ``+``, ``*`` and integer powers are polynomial arithmetic, coefficients
  exact (``int`` and ``Fraction``), so expanding *is* the normal form;
- every other node is an atom: a variable keyed by its head and by the normal
  forms of its arguments. Two atoms with equal arguments, however differently
  written, are one variable. Step functions are keyed by their argument
  alone, whatever their value at 0: the value at 0 matters only on the kinks,
  which the region of a proof excludes and the convention obligations check
  exactly.

Soundness: the map is a ring homomorphism on the syntax, and it identifies two
atoms only when their arguments are equal polynomials, hence equal values. If
the two sides have the same normal form, they are equal for *every* value of
the atom variables, in particular the true ones. The test can only err towards
"not proven" (an identity that needs a property of an atom), never towards a
false "proven". A negative power becomes an atom of its own (the inverse of
its base); where such inverses keep a difference from vanishing, ``equal``
multiplies the denominators out exactly (``vanishes``).

Speed: SymPy expressions of a network are DAGs with heavy sharing (every entry
of a CNN gradient contains the same ``sigmoid(Z2)``); each distinct node is
converted once, and a monomial is a sorted tuple of variable numbers.
"""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction

import sympy as sp

from gradproof.derive.symbolic import sigmoid, step

Monomial = tuple[int, ...]
Polynomial = dict[Monomial, int | Fraction]

ONE: Monomial = ()


def _times_monomial(p: Polynomial, monomial: Monomial, coefficient) -> Polynomial:
    if not monomial:
        return {m: c * coefficient for m, c in p.items()} if coefficient != 1 else dict(p)
    out = {}
    for m, c in p.items():
        out[tuple(sorted(m + monomial))] = c * coefficient
    return out


def multiply(p: Polynomial, q: Polynomial) -> Polynomial:
    """The product of two polynomials (zero coefficients dropped)."""
    if len(p) < len(q):
        p, q = q, p
    if len(q) == 1:
        ((monomial, coefficient),) = q.items()
        return _times_monomial(p, monomial, coefficient)
    out: Polynomial = {}
    get = out.get
    for m2, c2 in q.items():
        for m1, c1 in p.items():
            m = tuple(sorted(m1 + m2))
            out[m] = get(m, 0) + c1 * c2
    return {m: c for m, c in out.items() if c}


def add_into(total: Polynomial, p: Polynomial, scale=1) -> None:
    """``total += scale * p`` in place (zeros are dropped by ``prune``)."""
    get = total.get
    for m, c in p.items():
        total[m] = get(m, 0) + c * scale


def prune(p: Polynomial) -> Polynomial:
    return {m: c for m, c in p.items() if c}


def children_first(root: sp.Basic, memo: dict, value, opens) -> object:
    """``memo[root] = value(root)``, after ``value`` of every node below it that ``opens`` descends into.

    Each distinct node of the DAG is computed once; iterative, because networks
    nest deeper than Python's recursion allows.
    """
    stack = [(root, False)]
    while stack:
        node, ready = stack.pop()
        if node in memo:
            continue
        if not ready and opens(node):
            stack.append((node, True))
            stack.extend((a, False) for a in node.args if a not in memo)
            continue
        memo[node] = value(node)
    return memo[root]


def _number(value: sp.Number) -> int | Fraction:
    if value.is_Integer:
        return int(value)
    if value.is_Rational:
        return Fraction(int(value.p), int(value.q))
    raise ValueError(f"inexact number {value} in an exact proof")


class NormalForm:
    """Polynomial normal forms of SymPy expressions, sharing variables and atoms across calls.

    One instance serves both sides of an obligation, so that equal atoms on
    either side become the same variable.
    """

    def __init__(self, vanishing: Iterable[sp.Symbol] = ()) -> None:
        self._vanishing = frozenset(vanishing)
        self._memo: dict[sp.Basic, Polynomial] = {}
        self._frozen: dict[sp.Basic, frozenset] = {}
        self._variable: dict[object, int] = {}
        self.stand_in: list[sp.Expr] = []  # variable number -> an expression it stands for
        self.inverse_of: dict[int, Polynomial] = {}  # variable number -> the base it inverts

    # ---------------------------------------------------------- variables

    def variable(self, key: object, stand_in: sp.Expr) -> int:
        number = self._variable.get(key)
        if number is None:
            number = self._variable[key] = len(self.stand_in)
            self.stand_in.append(stand_in)
        return number

    def symbol_variable(self, symbol: sp.Symbol) -> int:
        return self.variable(symbol, symbol)

    def _key(self, expr: sp.Basic) -> frozenset:
        """The normal form of ``expr`` as a hashable key for the atoms it is an argument of."""
        key = self._frozen.get(expr)
        if key is None:
            key = self._frozen[expr] = frozenset(self(expr).items())
        return key

    def _atom(self, expr: sp.Expr) -> Polynomial:
        if isinstance(expr, (sp.Heaviside, step)):
            key = ("step", self._key(expr.args[0]))
        elif isinstance(expr, sigmoid):
            key = ("sigmoid", self._key(expr.args[0]))
        else:
            key = (type(expr).__name__, tuple(self._key(a) for a in expr.args))
        return {(self.variable(key, sp.Dummy("atom")),): 1}

    def _power(self, expr: sp.Pow) -> Polynomial:
        base, exponent = expr.args
        if exponent.is_Integer and exponent > 0:
            result, factor = {ONE: 1}, self(base)
            for _ in range(int(exponent)):
                result = multiply(result, factor)
            return result
        if exponent.is_Integer:
            number = self.variable(("inverse", self._key(base)), sp.Dummy("inverse"))
            self.inverse_of[number] = self(base)
            return {(number,) * int(-exponent): 1}
        return self._atom(expr)

    # ---------------------------------------------------------- conversion

    def __call__(self, expr: sp.Basic) -> Polynomial:
        """The normal form of ``expr``; every distinct node is converted once."""
        done = self._memo.get(expr)
        if done is not None:
            return done
        return children_first(expr, self._memo, self._convert, lambda n: n.is_Add or n.is_Mul or n.is_Pow)

    def _convert(self, node: sp.Basic) -> Polynomial:
        memo = self._memo
        if node.is_Number:
            value = _number(node)
            return {ONE: value} if value else {}
        if node.is_Symbol:
            if node in self._vanishing:
                return {}
            return {(self.symbol_variable(node),): 1}
        if node.is_Add:
            total: Polynomial = {}
            for a in node.args:
                add_into(total, memo[a])
            return prune(total)
        if node.is_Mul:
            factors = sorted((memo[a] for a in node.args), key=len)
            product: Polynomial = {ONE: 1}
            for f in factors:
                if not f:
                    return {}
                product = multiply(product, f)
            return product
        if node.is_Pow:
            return self._power(node)
        return self._atom(node)

    # ------------------------------------------------------------ readback

    def expression(self, p: Polynomial) -> sp.Expr:
        """A SymPy expression with normal form ``p``: atoms as dummies, inverses as true inverses."""

        def factor(number: int) -> sp.Expr:
            if number in self.inverse_of:
                return 1 / self.expression(self.inverse_of[number])
            return self.stand_in[number]

        terms = []
        for monomial, c in p.items():
            coefficient = sp.Rational(c.numerator, c.denominator) if isinstance(c, Fraction) else c
            terms.append(sp.Mul(coefficient, *[factor(v) for v in monomial]))
        return sp.Add(*terms)


def difference(normal: NormalForm, lhs: sp.Expr, rhs: sp.Expr) -> Polynomial:
    total = dict(normal(lhs))
    add_into(total, normal(rhs), -1)
    return prune(total)


def vanishes(normal: NormalForm, p: Polynomial) -> bool:
    """Is ``p`` zero wherever it is defined? Exact.

    A polynomial with inverse atoms ``v = 1/b`` is zero iff it is zero once
    multiplied by ``b**K`` for the largest power ``K`` of each ``v`` it holds
    (``b`` is nonzero wherever ``1/b`` is defined): each ``v**e`` becomes
    ``b**(K - e)``, which leaves a polynomial without ``v``.
    """
    if not p:
        return True
    inverses = sorted({v for m in p for v in m if v in normal.inverse_of})
    if not inverses:
        return False
    highest = {v: max(m.count(v) for m in p) for v in inverses}
    cleared: Polynomial = {}
    for monomial, c in p.items():
        term = {tuple(v for v in monomial if v not in highest): c}
        for v, k in highest.items():
            for _ in range(k - monomial.count(v)):
                term = multiply(term, normal.inverse_of[v])
        add_into(cleared, term)
    cleared = prune(cleared)
    if not cleared:
        return True
    if any(v in normal.inverse_of for m in cleared for v in m):  # nested inverses: let SymPy decide
        return sp.cancel(sp.together(normal.expression(cleared))) == 0
    return False


def equal(lhs: sp.Expr, rhs: sp.Expr, normal: NormalForm | None = None) -> bool:
    """Exact: do ``lhs`` and ``rhs`` have the same normal form (up to inverse cancellation)?"""
    normal = normal or NormalForm()
    return vanishes(normal, difference(normal, lhs, rhs))
