"""The derivative of a term sum with respect to one entry, and the elimination of its deltas.

``d X[e] / d X[k]`` is ``prod_i [e_i = k_i]``: a Kronecker delta per axis, kept as an equality
in the term's conditions. A delta that names a bound variable ``v`` with coefficient +1 or -1
is eliminated by our own rule: ``sum_{v in Z} [C(v)] F(v) [a v + r = 0] = [C(-r/a)] F(-r/a)``
for ``a = +-1`` (exact: exactly one integer ``v`` satisfies the delta). A delta whose
coefficients' gcd does not divide its constant has no integer solution, so its term is 0.
Nothing else is eliminated: SymPy's ``deltasummation`` solves ``2 i = u`` as ``i = u / 2``
without asking whether ``u`` is even, which is how a max-pool gradient acquires a ``G[1/2]``.
A delta that needs that is reported (``NotEliminated``) and the theorem is *not proven*.

The partial derivative of a coefficient is taken by the sum, product and chain rules over its
tree, with each function's own ``fdiff`` (SymPy's ``diff`` on fresh symbols for ``exp``, ``log``
and powers): the same rules as ``sympy.diff``, without rebuilding every product it visits. A
softmax normaliser (``scalars.row_exp_sum``, a sum over a row of symbolic length) is one more
variable of the coefficient, and the chain rule through it gives one more term.
"""

from __future__ import annotations

import sympy as sp

from gradproof.derive.parametric import scalars
from gradproof.derive.parametric.conditions import Conditions
from gradproof.derive.parametric.linear import Linear
from gradproof.derive.parametric.terms import Term, TermSum


class NotEliminated(Exception):  # noqa: N818 - a verdict's reason, not an error
    """A delta on a bound variable whose coefficient is not a unit."""


def partial(expr: sp.Expr, entry: sp.Indexed) -> sp.Expr:
    """``d expr / d entry``, every other entry held fixed (entries are independent variables)."""
    if expr == entry:
        return sp.Integer(1)
    if not expr.args or entry not in expr.atoms(sp.Indexed):
        return sp.Integer(0)
    if expr.is_Add:
        return sp.Add(*(partial(a, entry) for a in expr.args))
    if expr.is_Mul:
        factors = expr.args
        out = []
        for n, f in enumerate(factors):
            d = partial(f, entry)
            if d != 0:
                out.append(sp.Mul(*factors[:n], d, *factors[n + 1 :]))
        return sp.Add(*out)
    if isinstance(expr, sp.Indexed):
        return sp.Integer(0)  # another entry (its indices cannot contain an entry)
    if expr.is_Pow and not expr.exp.has(entry):
        return expr.exp * expr.base ** (expr.exp - 1) * partial(expr.base, entry)
    if isinstance(expr, sp.Function) and hasattr(expr, "fdiff") and not isinstance(expr, sp.exp | sp.log):
        out = []
        for n, a in enumerate(expr.args):
            d = partial(a, entry)
            if d != 0:
                out.append(expr.fdiff(n + 1) * d)
        return sp.Add(*out)
    x = sp.Dummy("x")
    return expr.xreplace({entry: x}).diff(x).xreplace({x: entry})


def differentiate(body: TermSum, base: sp.IndexedBase, index: tuple[sp.Expr, ...]) -> TermSum:
    """``d body / d base[index]``, its deltas eliminated where the rule above allows."""
    out: list[Term] = []
    for term in body:
        entries = sorted((a for a in term.coefficient.atoms(sp.Indexed) if a.base == base), key=str)
        for entry in entries:
            if len(entry.indices) != len(index):
                raise ValueError(f"{entry} read with {len(index)} indices")
            deltas = Conditions.of(equalities=[e - k for e, k in zip(entry.indices, index, strict=True)])
            solved = eliminate(Term(term.bound, term.conditions & deltas, sp.Integer(1)))
            if solved is None:
                continue
            remaining, substitutions = solved
            coefficient = partial(term.coefficient, entry).xreplace(composed(substitutions))
            if coefficient != 0:
                out.append(Term(remaining.bound, remaining.conditions, coefficient))
        out += _through_normalisers(term, base, index)
    return tuple(out)


def _through_normalisers(term: Term, base: sp.IndexedBase, index: tuple[sp.Expr, ...]) -> list[Term]:
    """The chain rule through each softmax normaliser ``S_r = sum_{j < K} exp(base[r, j])`` of ``base``.

    ``d S_r / d base[k0, k1] = [r = k0][0 <= k1 <= K - 1] exp(base[r, k1])``: exact, one term.
    """
    out = []
    normalisers = (a for a in term.coefficient.atoms(scalars.row_exp_sum) if a.args[0] == base)
    for normaliser in sorted(normalisers, key=str):
        _, row, classes = normaliser.args
        k0, k1 = index
        inner = Conditions.of([k1, classes - 1 - k1], equalities=[row - k0])
        solved = eliminate(Term(term.bound, term.conditions & inner, sp.Integer(1)))
        if solved is None:
            continue
        remaining, substitutions = solved
        x = sp.Dummy("S")
        outer = term.coefficient.xreplace({normaliser: x}).diff(x).xreplace({x: normaliser})
        coefficient = (outer * sp.exp(base[row, k1])).xreplace(composed(substitutions))
        if coefficient != 0:
            out.append(Term(remaining.bound, remaining.conditions, coefficient))
    return out


def composed(substitutions: list[tuple[sp.Symbol, sp.Expr]]) -> dict[sp.Symbol, sp.Expr]:
    """One simultaneous mapping with the effect of the substitutions applied in order."""
    mapping: dict[sp.Symbol, sp.Expr] = {}
    for v, value in substitutions:
        mapping = {w: e.xreplace({v: value}) for w, e in mapping.items()}
        mapping[v] = value
    return mapping


def eliminate(term: Term) -> tuple[Term, list[tuple[sp.Symbol, sp.Expr]]] | None:
    """``term`` with every delta on a bound variable eliminated, and the substitutions made.

    None when the term is 0 (the gcd rule). The substitutions, applied in order, carry any
    other expression of the summand (its coefficient) along.
    """
    substitutions: list[tuple[sp.Symbol, sp.Expr]] = []
    while True:
        bound = set(term.bound)
        target = None
        for form in sorted(term.conditions.equalities, key=lambda f: f.key):
            g = form.content()
            if g and form.constant % g:
                return None  # the gcd rule: no integer solution
            if not bound & set(form.variables):
                continue
            if g > 1:
                form = Linear(tuple((v, a // g) for v, a in form.coefficients), form.constant // g)
            units = [v for v in term.bound if abs(form.coefficient(v)) == 1]
            if not units:
                raise NotEliminated(
                    f"delta {sp.sstr(form.expr())} = 0 has no unit coefficient on a bound index"
                )
            target = (units[0], form)
            break
        if target is None:
            return Term(
                term.bound, term.conditions, term.coefficient.xreplace(composed(substitutions))
            ), substitutions
        v, form = target
        if any(v in m.free_symbols and m != v for m, _ in form.coefficients):
            raise NotEliminated(f"{v} appears in a product in {form.expr()}")
        a = form.coefficient(v)
        value = sp.expand(-(form.expr() - a * v) / a)  # a = +-1, so the value is an integer form
        substitutions.append((v, value))
        term = Term(
            tuple(b for b in term.bound if b != v),
            term.conditions.substituted({v: value}).pruned(),
            term.coefficient,
        )
