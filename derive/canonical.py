"""Deciding ``lhs == rhs`` exactly, fast: abstract the non-polynomial atoms, then expand.

After differentiation the two sides of an obligation are polynomials in the
network's symbols and in a few kinds of atoms: step functions ``H(u)``
(from ReLU and max-pooling) and sigmoids (``1/(1+exp(-z))`` and ``exp(-z)``).
Each atom is replaced by a fresh symbol keyed by its argument, identically on
both sides, and the difference is expanded. If that polynomial is zero the
identity holds for *every* value of the atoms, so in particular for the true
ones: the test is sound. (It can only err towards "not proven".)

Two rewrites make it complete for our rules:
- ``sigmoid(z)`` (the unevaluated function of ``derive.symbolic``) becomes a
  symbol ``s``; where the formula ``1/(1+exp(-z))`` is written out,
  ``exp(-z) = (1 - s)/s`` and ``1 + exp(-z) = 1/s`` turn it into the same ``s``;
- ``H(u, c) -> step(u)`` whatever ``c`` is: the value at 0 matters only on
  the kinks, which the region of the proof excludes and the convention
  obligations check exactly.
"""

from __future__ import annotations

import sympy as sp

from derive.symbolic import sigmoid


def _find(expr: sp.Expr, kind: type) -> set[sp.Expr]:
    """Sub-expressions of type ``kind``, visiting each distinct node once.

    ``Basic.atoms`` walks the expression as a tree; ours are DAGs with heavy
    sharing (every entry of a CNN gradient contains ``sigmoid(Z2)``), so a
    tree walk revisits the same sub-expression millions of times.
    """
    found: set[sp.Expr] = set()
    seen: set[sp.Expr] = set()
    stack = [expr]
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        if isinstance(node, kind):
            found.add(node)
        stack.extend(node.args)
    return found


class Atoms:
    """Fresh symbols for sigmoid and step atoms, shared by both sides of a proof."""

    def __init__(self) -> None:
        self._sigmoid: dict[sp.Expr, sp.Symbol] = {}
        self._step: dict[sp.Expr, sp.Symbol] = {}

    def _sigmoid_of(self, z: sp.Expr) -> sp.Symbol:
        if z not in self._sigmoid:
            self._sigmoid[z] = sp.Dummy(f"s{len(self._sigmoid)}")
        return self._sigmoid[z]

    def _step_of(self, u: sp.Expr) -> sp.Symbol:
        if u not in self._step:
            self._step[u] = sp.Dummy(f"h{len(self._step)}")
        return self._step[u]

    def abstract(self, expr: sp.Expr) -> sp.Expr:
        """The expression with every sigmoid and step atom replaced by its symbol."""
        sigmoids = _find(expr, sigmoid)
        if sigmoids:
            expr = expr.xreplace({f: self._sigmoid_of(f.args[0]) for f in sigmoids})
        exps = _find(expr, sp.exp)
        if exps:
            mapping = {}
            for e in exps:
                z = -e.args[0]
                s = self._sigmoid_of(z)
                mapping[e] = (1 - s) / s
                mapping[1 + e] = 1 / s
            expr = expr.xreplace(mapping)
        steps = _find(expr, sp.Heaviside)
        if steps:
            expr = expr.xreplace({h: self._step_of(h.args[0]) for h in steps})
        return expr


def is_zero(expr: sp.Expr, atoms: Atoms | None = None) -> bool:
    """Exact: is ``expr`` identically zero once its atoms are abstracted?"""
    atoms = atoms or Atoms()
    abstracted = atoms.abstract(expr)
    expanded = sp.expand(abstracted)
    if expanded == 0:
        return True
    # Rational remainders (a sigmoid derivative divided by itself, say) need one cancel.
    return sp.cancel(sp.together(expanded)) == 0


def equal(lhs: sp.Expr, rhs: sp.Expr, atoms: Atoms | None = None) -> bool:
    return is_zero(lhs - rhs, atoms)
