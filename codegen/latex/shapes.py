"""Shapes in a derivation: of tensors, of Jacobians, and of a rule read with its factors as shapes.

The shape reading is the LaTeX reading of the very rule that was proven, with
chosen sub-trees printed as their shapes (the ``atom`` hook of
``LatexReading``). A *factor* is what a reader multiplies: a tensor, a
transposed tensor, or an element-wise expression of tensors such as
``1 - A`` or ``1[Z > 0]``. Level 0 shows every factor as its shape; each
further level evaluates one more layer of operations, down to the shape of
the result, as the source material tracks ``(1x100) * (1x100) * (400x100)``.
"""

from __future__ import annotations

from gradproof.codegen.latex.names import Names
from gradproof.codegen.latex.printer import LatexReading, shape_tex
from gradproof.derive import texpr as tx

TIMES = r"{\times}"


def per_sample(shape: tx.Shape) -> str:
    """A shape without its batch axis, compact for a figure: ``1{\\times}6{\\times}6``; a scalar is ``1``."""
    dims = [str(d) for d in shape if d != tx.BATCH]
    return TIMES.join(dims) if dims else "1"


def jacobian_shape(upper: tx.Shape, lower: tx.Shape) -> str:
    """Per-sample Jacobian shape ``out \\times in`` without axes of length 1: ``4 \\times (2{\\times}2)``."""

    def dims(shape: tx.Shape) -> str:
        kept = [str(d) for d in shape if d != tx.BATCH and d != 1]
        if not kept:
            return "1"
        return kept[0] if len(kept) == 1 else "(" + TIMES.join(kept) + ")"

    return rf"{dims(upper)} \times {dims(lower)}"


def is_factor(expr: tx.Expr) -> bool:
    if isinstance(expr, tx.Tensor):
        return True
    if isinstance(expr, tx.Transpose):
        return isinstance(expr.a, tx.Tensor)
    return expr.printing.factor and all(is_factor(o) for o in expr.operands)


def rank(expr: tx.Expr) -> int:
    """How many layers of operations lie above the factors of ``expr``."""
    if is_factor(expr):
        return 0
    return 1 + max(rank(o) for o in expr.operands)


class ShapeReading:
    """A rule with its factors, then its larger sub-trees, printed as their shapes."""

    def __init__(self, names: Names, batch: int | None):
        self.names = names
        self.batch = batch

    def shape(self, shape: tx.Shape) -> str:
        return shape_tex(shape, self.batch, compact=True)

    def level(self, expr: tx.Expr, depth: int) -> str:
        """``expr`` with every sub-tree of rank at most ``depth`` printed as its shape."""

        def atom(e: tx.Expr) -> str | None:
            return self.shape(e.shape) if rank(e) <= depth else None

        return LatexReading(self.names, atom=atom, batch=self.batch, brackets="nested")(expr)

    def levels(self, expr: tx.Expr) -> list[str]:
        """From every factor as a shape to the shape of the result, one operation layer per level."""
        out: list[str] = []
        for depth in range(rank(expr) + 1):
            line = self.level(expr, depth)
            if not out or out[-1] != line:
                out.append(line)
        return out

    def chain(self, expr: tx.Expr) -> str:
        """The factors' shapes, then the result's.

        For example ``(4{\\times}N) \\cdot (N{\\times}1) \\rightarrow (4{\\times}1)``.
        A rule with nothing to evaluate (a single factor) shows its shape alone.
        """
        levels = self.levels(expr)
        if len(levels) == 1:
            return levels[0]
        return rf"{levels[0]} \rightarrow {levels[-1]}"
