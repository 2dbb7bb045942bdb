"""A hypothesis on the values of a tensor, used as an exact rewrite of terms: rows that sum to 1.

``sum_{v in Z} [0 <= v <= K - 1] c Y[e, v] = c`` whenever every row of ``Y`` (an ``(N, K)`` tensor)
sums to 1, ``c`` does not depend on ``v`` and the row ``e`` is one of ``Y``'s rows. The rewrite is
applied only where all of that is checked: ``v`` is bound, the term's conditions on ``v`` are
exactly its full range ``[0, K - 1]``, ``v`` appears in the coefficient only as the column of
one factor ``Y[e, v]``, and the conditions imply ``0 <= e <= N - 1`` under the hypotheses
(``conditions.implies``). Anything else is left as it is, which can only leave a theorem *not
proven*. This is the cross-entropy's ``sum_k Y_k = 1`` (one-hot targets).
"""

from __future__ import annotations

import sympy as sp

from gradproof.derive.parametric.conditions import Conditions, implies
from gradproof.derive.parametric.terms import Term, TermSum


def rows_summed(body: TermSum, rows: dict[sp.IndexedBase, tuple[sp.Expr, sp.Expr]], hypotheses: Conditions):
    """``body`` with every complete row sum of a tensor in ``rows`` (base -> (N, K)) replaced by 1."""
    out = []
    for term in body:
        changed = True
        while changed:
            changed = False
            for v in term.bound:
                rewritten = _summed_out(term, v, rows, hypotheses)
                if rewritten is not None:
                    term, changed = rewritten, True
                    break
        out.append(term)
    return tuple(out)


def _summed_out(term: Term, v: sp.Symbol, rows, hypotheses: Conditions) -> Term | None:
    factors = sp.Mul.make_args(term.coefficient)
    holders = [f for f in factors if v in f.free_symbols]
    if len(holders) != 1 or not isinstance(holders[0], sp.Indexed) or holders[0].base not in rows:
        return None
    entry = holders[0]
    n, k = rows[entry.base]
    if len(entry.indices) != 2 or entry.indices[1] != v or v in entry.indices[0].free_symbols:
        return None
    mine = {f for f in term.conditions.inequalities if v in f.expr().free_symbols}
    if any(v in f.expr().free_symbols for f in term.conditions.equalities):
        return None
    if mine != set(Conditions.of([v, k - 1 - v]).inequalities):
        return None
    rest = Conditions(term.conditions.inequalities - mine, term.conditions.equalities)
    row = entry.indices[0]
    if not implies(hypotheses, rest, Conditions.of([row, n - 1 - row])):
        return None
    coefficient = sp.Mul(*(f for f in factors if f is not entry))
    return Term(tuple(b for b in term.bound if b != v), rest, coefficient)
