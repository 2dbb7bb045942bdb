"""Entry by entry: tensors read with SymPy and printed as explicit sums of products.

The values come from the symbolic reading of the forward map or of a proven
rule (``derive.symbolic.SymbolicReading``) on one sample, with one symbol per
entry of every tensor it reads; they are printed term by term in a fixed
order, so the output does not depend on SymPy's ordering of a sum. The loss
steps are SymPy's own derivatives of the per-sample loss, each simplification
asserted exactly before it is printed.
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from gradproof.codegen.latex.content import Row
from gradproof.codegen.latex.layout import wrap_terms
from gradproof.codegen.latex.names import Names
from gradproof.derive import canonical
from gradproof.derive import texpr as tx
from gradproof.derive.symbolic import SymbolicReading, sigmoid

MAX_TERMS_SHOWN = 24  # longer sums show their first terms and the last one
MAX_ENTRIES_SHOWN = 16  # larger tensors show their first entries and the last one


def shown_index(index: tuple[int, ...], shape: tuple[int, ...], batched: bool) -> tuple[int, ...]:
    """The index printed for one sample: no batch axis; axes of length 1 left out beyond two axes.

    ``Z1[0,0,i,j]`` prints as ``(Z_1)_{i,j}``, a dense weight keeps both of its
    indices, and a tensor with a single entry prints without any.
    """
    if batched:
        index, shape = index[1:], shape[1:]
    if all(d == 1 for d in shape):
        return ()
    if len(shape) > 2:
        return tuple(i for i, d in zip(index, shape, strict=True) if d > 1)
    return tuple(index)


class EntrySymbols:
    """One real symbol per entry of some tensors (one sample), with its LaTeX name and sort key."""

    def __init__(self, names: Names, tensors: list[tx.Tensor]):
        self.env: dict[str, np.ndarray] = {}
        self.latex: dict[sp.Symbol, str] = {}
        self.order: dict[sp.Symbol, tuple] = {}
        for position, tensor in enumerate(tensors):
            batched = bool(tensor.shape) and tensor.shape[0] == tx.BATCH
            shape = tuple(1 if d == tx.BATCH else d for d in tensor.shape)
            array = np.empty(shape, dtype=object)
            for index in np.ndindex(shape):
                symbol = sp.Symbol(f"{tensor.name}[{','.join(map(str, index))}]", real=True)
                array[index] = symbol
                self.latex[symbol] = names.entry(tensor.name, shown_index(index, shape, batched))
                self.order[symbol] = (position, index)
            self.env[tensor.name] = array

    def read(self, expr: tx.Expr) -> np.ndarray:
        """The symbolic reading of ``expr`` on these symbols, batch of one."""
        return SymbolicReading(dict(self.env), 1)(expr)

    def terms(self, value: sp.Expr) -> list[str]:
        """The terms of a sum of products, each printed factor by factor, in the order of the tensors."""
        unknown = (99, ())
        printed = []
        for term in sp.Add.make_args(value):
            coefficient, factors = term.as_coeff_mul()
            factors = sorted(factors, key=lambda f: self.order.get(f, unknown))
            body = r"\,".join(sp.latex(f, symbol_names=self.latex) for f in factors)
            prefix = "" if coefficient == 1 else sp.latex(coefficient) + r"\,"
            printed.append(([self.order.get(f, unknown) for f in factors], prefix + body))
        printed.sort(key=lambda item: item[0])
        return [text for _, text in printed]


def entry_rows(
    names: Names,
    name: str,
    values: np.ndarray,
    symbols: EntrySymbols,
    gradient: bool,
    limit: float,
    group: int | None = None,
) -> tuple[list[Row], list[str]]:
    """One row per entry of ``values`` (continuation rows for long sums) and notes on what was elided.

    ``group`` terms per line when they fit, e.g. one row of the output gradient per line.
    """
    rows: list[Row] = []
    notes: list[str] = []
    indices = list(np.ndindex(values.shape))
    shown = indices
    if len(indices) > MAX_ENTRIES_SHOWN:
        shown = indices[:2] + indices[-1:]
        notes.append(f"{len(indices)} entries; the first two and the last are shown.")
    batched = not gradient  # a forward value has the sample axis, a parameter gradient has none
    for index in shown:
        entry = names.entry(name, shown_index(index, values.shape, batched))
        left = rf"\frac{{\partial {names.loss}}}{{\partial {entry}}}" if gradient else entry
        terms = symbols.terms(values[index])
        if len(terms) > MAX_TERMS_SHOWN:
            note = f"Each entry is a sum of {len(terms)} products; the first three and the last are shown."
            if note not in notes:
                notes.append(note)
            terms = terms[:3] + [r"\cdots"] + terms[-1:]
        lines = wrap_terms(terms, limit, group=group if len(terms) > 5 else None)
        rows.append(Row(left, "= " + lines[0]))
        rows += [Row("", r"\quad " + line) for line in lines[1:]]
    return rows, notes


def _one_entry(tensor: str, symbol: sp.Symbol) -> dict[str, np.ndarray]:
    return {tensor: np.array([[symbol]], dtype=object)}


def bce_steps(names: Names, logit: str, target: str, output: str, label: str) -> list[Row]:
    """The per-sample cross-entropy, differentiated at the output and simplified one step at a time.

    ``\\ell`` is the symbolic reading of the loss itself (one sample, one
    entry), with ``sigma(Z)`` written as the output ``A``; every printed
    equality is asserted exactly here, and the last is the prover's
    *identity* obligation.
    """
    z, y, a = (sp.Symbol(n, real=True) for n in (logit, target, output))
    single = (tx.BATCH, 1)
    loss = tx.BinaryCrossEntropyWithLogits(tx.Tensor(logit, single), tx.Tensor(target, single), "sum")
    ell = SymbolicReading({**_one_entry(logit, z), **_one_entry(target, y)}, 1)(loss).item()
    ell = ell.subs(sigmoid(z), a)
    slope = sigmoid(z).diff(z).subs(sigmoid(z), a)  # SymPy's derivative of the sigmoid, in terms of A
    d_ell = ell.diff(a)
    common = sp.together(d_ell)
    numerator, denominator = sp.fraction(common)
    spread = sp.Add(
        *[t for part in sp.Add.make_args(numerator) for t in sp.Add.make_args(sp.expand(part))],
        evaluate=False,
    )
    assert sp.cancel(common - d_ell) == 0 and sp.expand(numerator - sp.Add(*spread.args)) == 0
    assert canonical.equal(d_ell, (a - y) / (a * (1 - a))) and sp.cancel(d_ell * slope - (a - y)) == 0
    symbol_names = {z: names.symbol(logit), y: names.symbol(target), a: names.symbol(output)}

    def show(expr: sp.Expr, order: str | None = None) -> str:
        return sp.latex(expr, symbol_names=symbol_names, order=order)

    def fraction(top: sp.Expr, bottom: sp.Expr, order: str | None = None) -> str:
        return rf"\frac{{{show(top, order)}}}{{{show(bottom)}}}"

    a_tex, z_tex = names.symbol(output), names.symbol(logit)
    reduced = fraction(a - y, denominator)
    return [
        Row(r"\ell", "= " + show(ell)),
        Row(rf"\frac{{\partial \ell}}{{\partial {a_tex}}}", "= " + show(d_ell), glue=True),
        Row("", "= " + fraction(numerator, denominator)),
        Row("", "= " + fraction(spread, denominator, order="none")),
        Row("", "= " + reduced),
        Row(rf"\frac{{\partial {a_tex}}}{{\partial {z_tex}}}", "= " + show(slope)),
        Row(
            rf"\frac{{\partial \ell}}{{\partial {a_tex}}}\,\frac{{\partial {a_tex}}}{{\partial {z_tex}}}",
            f"= {reduced} \\cdot {show(slope)} = {show(sp.cancel(d_ell * slope))}",
            label,
        ),
    ]


def loss_steps(names: Names, loss: tx.Expr, logit: str, target: str, output: str, label: str) -> list[Row]:
    """The per-sample loss and its derivative, step by step, by the loss's operation.

    An operation declared outside the language carries its own steps, ``latex_steps(z, y, a,
    label)``: (left, right, label) triples in the document's symbols.
    """
    carried = getattr(loss, "latex_steps", None)
    if carried is not None:
        symbols = (names.symbol(logit), names.symbol(target), names.symbol(output))
        return [Row(left, right, row_label) for left, right, row_label in carried(*symbols, label)]
    if isinstance(loss, tx.BinaryCrossEntropyWithLogits):
        return bce_steps(names, logit, target, output, label)
    if isinstance(loss, tx.HalfSquaredError):
        return squared_error_steps(names, logit, target)
    raise TypeError(f"no step-by-step derivative of the loss {type(loss).__name__}")


def squared_error_steps(names: Names, output: str, target: str) -> list[Row]:
    """The per-sample quadratic cost (with its 1/2) and SymPy's derivative of it at the output."""
    o, y = sp.Symbol(output, real=True), sp.Symbol(target, real=True)
    single = (tx.BATCH, 1)
    loss = tx.HalfSquaredError(tx.Tensor(output, single), tx.Tensor(target, single), "sum")
    ell = SymbolicReading({**_one_entry(output, o), **_one_entry(target, y)}, 1)(loss).item()
    symbol_names = {o: names.symbol(output), y: names.symbol(target)}
    return [
        Row(r"\ell", "= " + sp.latex(ell, symbol_names=symbol_names)),
        Row(
            rf"\frac{{\partial \ell}}{{\partial {names.symbol(output)}}}",
            "= " + sp.latex(ell.diff(o), symbol_names=symbol_names),
            glue=True,
        ),
    ]
