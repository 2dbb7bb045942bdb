"""Scalar functions of the index form and the exact zero test of a coefficient on the region.

``relu``, ``step`` and ``window_max`` are SymPy functions of our own: SymPy's ``Max`` flattens
``Max(Max(0, a), b)`` and its ``Heaviside(0)`` is 1/2. ``step(u)`` is 1 for ``u > 0`` and 0
otherwise (ReLU'(0) = 0). Their derivatives (``fdiff``) are the ones valid on the *region*
(no ReLU input 0, no tied window), which the theorems state as a hypothesis; the window
maximum's derivative is the lemma proven by ``derive.symbolic.window_lemma_holds``.
"""

from __future__ import annotations

import itertools

import sympy as sp


def _sign(u: sp.Expr) -> int | None:
    """The sign of a number or of a signed symbol (``s`` or ``-s``), else None.

    Only these are asked: asking SymPy's assumption system about a long argument is slow.
    """
    if u.is_Number:
        return 1 if u.is_positive else -1 if u.is_negative else 0
    for candidate, flip in ((u, 1), (-u, -1)):
        if candidate.is_Symbol:
            if candidate.is_positive:
                return flip
            if candidate.is_negative:
                return -flip
    return None


class relu(sp.Function):  # noqa: N801 - SymPy function classes are lower case
    nargs = 1

    @classmethod
    def eval(cls, z):
        sign = _sign(z)
        if sign is None:
            return None
        return z if sign > 0 else sp.Integer(0)

    def fdiff(self, argindex=1):
        return step(self.args[0])


class step(sp.Function):  # noqa: N801
    """``[u > 0]``: 1 where ``u`` is positive, 0 elsewhere (0 at 0)."""

    nargs = 1

    @classmethod
    def eval(cls, u):
        sign = _sign(u)
        if sign is None:
            return None
        return sp.Integer(1) if sign > 0 else sp.Integer(0)

    def fdiff(self, argindex=1):
        return sp.Integer(0)  # on the region, away from u = 0


class window_max(sp.Function):  # noqa: N801
    """The maximum of a pooling window, kept unevaluated (but for numbers: their maximum)."""

    @classmethod
    def eval(cls, *cells):
        if all(c.is_Rational for c in cells):
            return max(cells)
        return None

    def fdiff(self, argindex=1):
        return is_window_max(self.args, argindex - 1)


def is_window_max(window: tuple[sp.Expr, ...], position: int) -> sp.Expr:
    """``prod_{j != position} [t_position > t_j]``: on the no-tie region, the maximum's indicator."""
    me = window[position]
    return sp.Mul(*(step(me - other) for j, other in enumerate(window) if j != position))


class row_exp_sum(sp.Function):  # noqa: N801
    """``S_b = sum_{j < K} exp(z[b, j])``, the softmax's normaliser of row ``b``: args ``(z, b, K)``.

    One atom to the index form, so that a softmax over a symbolic number of classes is a term;
    its derivative by an entry, ``[b = k0][0 <= k1 < K] exp(z[b, k1])``, is taken by
    ``deltas.differentiate``. At a concrete row and ``K`` it is the sum itself.
    """

    nargs = 3

    @classmethod
    def eval(cls, base, row, classes):
        if row.is_Integer and classes.is_Integer:
            return sp.Add(*(sp.exp(base[row, j]) for j in range(int(classes))))
        return None


def sigmoid(z: sp.Expr) -> sp.Expr:
    return 1 / (1 + sp.exp(-z))


class Undecided(Exception):  # noqa: N818 - a verdict's reason, not an error
    """The zero test cannot decide a coefficient."""


def vanishes_on_region(expr: sp.Expr) -> bool:
    """Whether ``expr`` is 0 for every value of its entries on the region (exact; may raise Undecided).

    Entries become real symbols. Every ``step``/``relu`` whose argument is one entry (or its
    negative) is decided by splitting on that entry's sign (never 0 on the region), innermost
    first; an ``exp(-z)`` of an entry becomes a positive symbol ``e``; what is left must cancel to 0
    as a rational function, each ``tanh`` of an entry and each softmax normaliser ``row_exp_sum``
    an independent variable (a relaxation). Each step is an identity on its case or a
    relaxation, so a 0 is a proof.
    """
    if expr == 0 or sp.expand(expr) == 0:
        return True
    entries = sorted(expr.atoms(sp.Indexed), key=sp.default_sort_key)
    reals = {a: sp.Symbol(f"v{n}", real=True) for n, a in enumerate(entries)}
    plain = expr.xreplace(reals)
    kinked = sorted(
        {_lone_symbol(f.args[0]) for f in plain.atoms(relu, step)} - {None}, key=sp.default_sort_key
    )
    if len(kinked) > 6:
        raise Undecided("more than 6 entries under a step")
    for signs in itertools.product((1, -1), repeat=len(kinked)):
        case = {
            v: sign * sp.Symbol(f"{v.name}_abs", positive=True) for v, sign in zip(kinked, signs, strict=True)
        }
        value = _rebuilt(plain.xreplace(case))
        if value.atoms(relu, step):
            raise Undecided(f"a step of an undetermined sign remains: {value}")
        if not _cancels(value):
            return False
    return True


def _lone_symbol(argument: sp.Expr) -> sp.Symbol | None:
    """The symbol ``s`` when ``argument`` is ``s`` or ``-s``."""
    for candidate in (argument, -argument):
        if candidate.is_Symbol:
            return candidate
    return None


def _rebuilt(expr: sp.Expr) -> sp.Expr:
    """Rebuild bottom-up so that ``relu``/``step`` evaluate once their argument's sign is known."""
    if not expr.args:
        return expr
    return expr.func(*(_rebuilt(a) for a in expr.args))


def _cancels(expr: sp.Expr) -> bool:
    exps = sorted(expr.atoms(sp.exp), key=sp.default_sort_key)
    mapping = {}
    for n, e in enumerate(exps):
        argument = e.args[0]
        (symbol,) = argument.free_symbols or {None}
        if symbol is None or sp.expand(argument + symbol) != 0 and sp.expand(argument - symbol) != 0:
            raise Undecided(f"exp of {argument}")
        mapping.setdefault(symbol, sp.Symbol(f"e{n}", positive=True))
    rewritten = expr.xreplace(
        {
            t: sp.Symbol(f"tanh{n}", real=True)
            for n, t in enumerate(sorted(expr.atoms(sp.tanh), key=sp.default_sort_key))
        }
    )  # tanh(v) as a variable of its own: a relaxation, so a 0 is still a proof
    for symbol, e in mapping.items():
        rewritten = rewritten.xreplace({sp.exp(-symbol): e, sp.exp(symbol): 1 / e})
    if rewritten.atoms(sp.exp):
        raise Undecided("exp left after the substitution")
    if rewritten.atoms(sp.log):
        raise Undecided("log left in a coefficient")
    return sp.cancel(sp.together(rewritten)) == 0
