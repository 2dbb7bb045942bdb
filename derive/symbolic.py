"""The symbolic reading: every expression becomes an array of SymPy entries.

Arrays are NumPy arrays of dtype ``object`` holding SymPy expressions, so that
reshape and transpose keep NumPy's row-major meaning exactly. The batch axis
``N`` takes the concrete size the prover asks for.

Two primitives are SymPy functions of our own, so that SymPy does not merge
them into one flat ``Max`` (``Max(Max(0, a), Max(0, b))`` would become
``Max(0, a, b)``): ``relu`` and ``window_max``. Their derivatives are *SymPy's*
derivatives of ``Max``, taken on fresh symbols; the only rewriting is the
region lemma for ``window_max`` (below), which the prover checks exactly.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Mapping

import numpy as np
import sympy as sp

from gradproof.derive import texpr as tx


@functools.cache
def _max_derivative(n_args: int, index: int) -> tuple[tuple[sp.Symbol, ...], sp.Expr]:
    """SymPy's own derivative of ``Max(t_0, ..., t_{n-1})`` with respect to ``t_index``."""
    ts = sp.symbols(f"t0:{n_args}", real=True)
    return ts, sp.Max(*ts).diff(ts[index])


@functools.cache
def _relu_derivative() -> tuple[sp.Symbol, sp.Expr]:
    """SymPy's own derivative of ``Max(0, t)``, its ``Heaviside`` written as ``step``."""
    t = sp.Symbol("t", real=True)
    return t, as_step(sp.Max(0, t).diff(t))


@functools.cache
def _window_derivative(n_args: int, index: int) -> tuple[tuple[sp.Symbol, ...], sp.Expr]:
    """SymPy's derivative of ``Max``, split by the region lemma, in ``step`` form."""
    ts, derivative = _max_derivative(n_args, index)
    return ts, as_step(split_max_heaviside(derivative))


class step(sp.Function):  # noqa: N801 - SymPy function classes are lower case
    """The Heaviside step ``H(u)`` with its value at 0 as second argument, kept unevaluated.

    SymPy's ``Heaviside`` asks the assumption system about its argument every
    time one is built, which dominates the cost of differentiating a network
    (its arguments are long sums). ``step`` evaluates only at numbers, with the
    same values as ``Heaviside(u, at_zero)``.
    """

    nargs = 2

    @classmethod
    def eval(cls, u, at_zero):
        if u.is_Number:
            return sp.Integer(1) if u > 0 else sp.Integer(0) if u < 0 else at_zero
        if isinstance(u, relu) and at_zero == 0:
            # H(relu(z), 0) = H(z, 0): both are 1 where z > 0 and 0 where z <= 0 (relu(z) = 0 there).
            # So the ReLU mask read from the output, [A > 0], is the mask read from the input.
            return cls(u.args[0], at_zero)
        return None


def instantiate(template: sp.Expr, values: Mapping[sp.Symbol, sp.Expr]) -> sp.Expr:
    """``template`` with its symbols replaced by ``values``, sums and products left as they are.

    ``xreplace`` would rebuild ``t0 - t1`` as a canonical sum, ordering two
    long arguments by comparing them deep down; the prover's normal form does
    not need that order, so the template's own structure is kept.
    """
    if template in values:
        return values[template]
    if not template.args:
        return template
    args = [instantiate(a, values) for a in template.args]
    if template.is_Add or template.is_Mul:
        return template.func(*args, evaluate=False)
    return template.func(*args)


def as_step(expr: sp.Expr) -> sp.Expr:
    """``expr`` with every ``Heaviside(u, h)`` written as ``step(u, h)`` (same function)."""
    return expr.replace(lambda n: isinstance(n, sp.Heaviside), lambda n: step(*n.args))


class relu(sp.Function):  # noqa: N801 - SymPy function classes are lower case
    """``max(0, z)``, kept unevaluated; its derivative is SymPy's ``d Max(0, t)/dt``."""

    nargs = 1

    @classmethod
    def eval(cls, z):
        if z.is_Number:
            return sp.Max(0, z)
        return None

    def fdiff(self, argindex=1):
        t, derivative = _relu_derivative()
        return instantiate(derivative, {t: self.args[0]})


def split_max_heaviside(expr: sp.Expr) -> sp.Expr:
    """Region lemma: ``H(a - Max(s_1..s_k)) = prod_i H(a - s_i)`` when no two values tie.

    Applied to SymPy's derivative of ``Max`` so that every step function has
    a pairwise difference as argument. ``window_lemma_holds`` checks it exactly
    on every strict ordering of a window.
    """

    def rewrite(node):
        if isinstance(node, sp.Heaviside):
            arg = node.args[0]
            maxes = [t for t in sp.Add.make_args(arg) if isinstance(-t, sp.Max)]
            if len(maxes) == 1:
                rest = arg + (-maxes[0])  # arg = rest - Max(...)
                others = (-maxes[0]).args
                return sp.Mul(*[sp.Heaviside(rest - s, *node.args[1:]) for s in others])
        return node

    return expr.replace(lambda n: isinstance(n, sp.Heaviside), rewrite)


class window_max(sp.Function):  # noqa: N801
    """Maximum of one pooling window, kept unevaluated (no flattening into ``Max``)."""

    @classmethod
    def eval(cls, *args):
        if all(a.is_Number for a in args):
            return sp.Max(*args)
        return None

    def fdiff(self, argindex=1):
        ts, derivative = _window_derivative(len(self.args), argindex - 1)
        return instantiate(derivative, dict(zip(ts, self.args, strict=True)))


def window_lemma_holds(size: int) -> bool:
    """Check the region lemma exactly for a ``size*size`` window.

    Both sides depend only on which other entries exceed the chosen one, so
    every such pattern is tried (``2**(k-1)`` per entry, distinct integers).
    """
    k = size * size
    for index in range(k):
        ts, derivative = _max_derivative(k, index)
        lemma = split_max_heaviside(derivative)
        others = [t for t in ts if t is not ts[index]]
        for above in itertools.product((False, True), repeat=k - 1):
            at = {ts[index]: sp.Integer(0)}
            for rank, (t, is_above) in enumerate(zip(others, above, strict=True), start=1):
                at[t] = sp.Integer(rank if is_above else -rank)
            if derivative.xreplace(at) != lemma.xreplace(at):
                return False
    return True


def first_max_indicator(window: list[sp.Expr], position: int) -> sp.Expr:
    """1 where ``window[position]`` is the first maximum in row-major order, else 0.

    Strictly greater than every earlier entry (``H(0) = 0``), at least as large
    as every later one (``H(0) = 1``): exact on ties too.
    """
    me = window[position]
    factors = [step(minus(me, other), 0) for other in window[:position]]
    factors += [step(minus(me, other), 1) for other in window[position + 1 :]]
    return sp.Mul(*factors)


def sigmoid_formula(z: sp.Expr) -> sp.Expr:
    """The logistic function written out: ``1 / (1 + exp(-z))``."""
    return 1 / (1 + sp.exp(-z))


@functools.cache
def _sigmoid_derivative() -> tuple[sp.Symbol, sp.Expr, sp.Expr]:
    """SymPy's own derivative of the formula, and the form ``s (1 - s)`` it is rewritten to."""
    t = sp.Symbol("t", real=True)
    s = sigmoid_formula(t)
    return t, s.diff(t), s * (1 - s)


@functools.cache
def _sigmoid_derivative_template() -> tuple[sp.Symbol, sp.Expr]:
    """The rewritten derivative with ``sigmoid(t)`` in place of the formula (``sigmoid_lemma_holds``)."""
    t, _, rewritten = _sigmoid_derivative()
    return t, rewritten.subs(sigmoid_formula(t), sigmoid(t))


def sigmoid_lemma_holds() -> bool:
    """Exact: ``d/dt 1/(1+exp(-t)) = s (1 - s)`` with ``s = 1/(1+exp(-t))``.

    With ``e = exp(-t) > 0`` both sides are rational functions of ``e``; they
    agree when their difference cancels to zero.
    """
    t, derivative, rewritten = _sigmoid_derivative()
    e = sp.Symbol("e", positive=True)
    difference = (derivative - rewritten).subs(sp.exp(-t), e)
    return sp.cancel(sp.together(difference)) == 0


class sigmoid(sp.Function):  # noqa: N801
    """The logistic function, kept unevaluated so derivatives stay small.

    Its derivative is SymPy's derivative of ``1/(1+exp(-z))`` rewritten as
    ``sigmoid(z) (1 - sigmoid(z))``; ``sigmoid_lemma_holds`` proves the rewrite.
    """

    nargs = 1

    @classmethod
    def eval(cls, z):
        if z.is_Number:
            return sigmoid_formula(z)
        return None

    def fdiff(self, argindex=1):
        t, template = _sigmoid_derivative_template()
        return instantiate(template, {t: self.args[0]})


def free_symbols(expr: sp.Expr) -> set[sp.Symbol]:
    """The symbols ``expr`` depends on, visiting each distinct node of its DAG once.

    ``Basic.free_symbols`` walks the expression as a tree; a network's loss
    shares sub-expressions heavily, so a tree walk revisits them many times.
    """
    found: set[sp.Symbol] = set()
    seen: set[sp.Basic] = set()
    stack = [expr]
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        if node.is_Symbol:
            found.add(node)
        stack.extend(node.args)
    return found


def product(a: sp.Expr, b: sp.Expr) -> sp.Expr:
    """``a * b`` left as written: SymPy's canonical reordering costs more than the whole proof.

    The prover's normal form does not depend on how SymPy orders a product;
    numbers are still multiplied out, so that ``0 * x`` is 0.
    """
    if a.is_Number or b.is_Number:
        return a * b
    return sp.Mul._from_args((a, b))  # SymPy's constructor for final args: no cache, no checks


def minus(a: sp.Expr, b: sp.Expr) -> sp.Expr:
    """``a - b`` left as written (numbers are subtracted, so a step of numbers evaluates)."""
    if a.is_Number and b.is_Number:
        return a - b
    return sp.Add._from_args((a, sp.Mul._from_args((sp.S.NegativeOne, b))))


def sum_of(terms) -> sp.Expr:
    """A flat sum of ``terms`` in the given order (nested sums spliced in, zeros dropped)."""
    flat = []
    for t in terms:
        if t.is_Add:
            flat.extend(t.args)
        elif not (t.is_Number and t == 0):
            flat.append(t)
    if len(flat) < 2:
        return flat[0] if flat else sp.Integer(0)
    return sp.Add._from_args(tuple(flat))


def _elementwise(fn, *arrays: np.ndarray) -> np.ndarray:
    out = np.empty(arrays[0].shape, dtype=object)
    for index in np.ndindex(out.shape):
        out[index] = fn(*(a[index] for a in arrays))
    return out


def _concrete(shape: tx.Shape, batch: int) -> tuple[int, ...]:
    return tuple(batch if d == tx.BATCH else d for d in shape)


def symbol_array(name: str, shape: tuple[int, ...], **assumptions) -> np.ndarray:
    """Fresh symbols ``name[i,j,...]`` (printed ``name_i_j``) filling ``shape``."""
    out = np.empty(shape, dtype=object)
    for index in np.ndindex(shape):
        suffix = "_".join(str(i) for i in index)
        out[index] = sp.Symbol(f"{name}_{suffix}" if suffix else name, **assumptions)
    return out


class SymbolicReading:
    """Evaluate expressions entry by entry, given arrays for the named tensors."""

    name = "symbolic"

    def __init__(self, env: Mapping[str, np.ndarray], batch: int):
        self.env = env
        self.batch = batch
        self._cache: dict[tx.Expr, np.ndarray] = {}

    def __call__(self, expr: tx.Expr) -> np.ndarray:
        if expr not in self._cache:
            value = tx.reading_method(self, expr)(expr)
            expected = _concrete(expr.shape, self.batch)
            assert value.shape == expected, (type(expr).__name__, value.shape, expected)
            self._cache[expr] = value
        return self._cache[expr]

    def read_Tensor(self, e: tx.Tensor) -> np.ndarray:
        return self.env[e.name]

    def read_Correlate(self, e: tx.Correlate) -> np.ndarray:
        x, k = self(e.x), self(e.kernel)
        out = np.empty(_concrete(e.shape, self.batch), dtype=object)
        if e.weight_form:
            _, _, gh, gw = k.shape
            for f, c, m, n in np.ndindex(out.shape):
                out[f, c, m, n] = sum_of(
                    [
                        product(x[b, c, i + m, j + n], k[b, f, i, j])
                        for b in range(x.shape[0])
                        for i in range(gh)
                        for j in range(gw)
                    ]
                )
            return out
        _, channels, kh, kw = k.shape
        for b, f, i, j in np.ndindex(out.shape):
            out[b, f, i, j] = sum_of(
                [
                    product(x[b, c, i + m, j + n], k[f, c, m, n])
                    for c in range(channels)
                    for m in range(kh)
                    for n in range(kw)
                ]
            )
        return out

    def read_FullConvolve(self, e: tx.FullConvolve) -> np.ndarray:
        g, k = self(e.grad), self(e.kernel)
        filters, _, kh, kw = k.shape
        gh, gw = g.shape[2:]
        out = np.empty(_concrete(e.shape, self.batch), dtype=object)
        for b, c, h, w in np.ndindex(out.shape):
            out[b, c, h, w] = sum_of(
                [
                    product(g[b, f, h - m, w - n], k[f, c, m, n])
                    for f in range(filters)
                    for m in range(kh)
                    for n in range(kw)
                    if 0 <= h - m < gh and 0 <= w - n < gw
                ]
            )
        return out

    def read_MatMul(self, e: tx.MatMul) -> np.ndarray:
        a, b = self(e.a), self(e.b)
        out = np.empty((a.shape[0], b.shape[1]), dtype=object)
        for i, j in np.ndindex(out.shape):
            out[i, j] = sum_of([product(a[i, k], b[k, j]) for k in range(a.shape[1])])
        return out

    def read_Transpose(self, e: tx.Transpose) -> np.ndarray:
        return self(e.a).T

    def read_Reshape(self, e: tx.Reshape) -> np.ndarray:
        return self(e.a).reshape(_concrete(e.dims, self.batch))

    def read_SumAxes(self, e: tx.SumAxes) -> np.ndarray:
        a = self(e.a)
        kept = [ax for ax in range(a.ndim) if ax not in e.axes]
        moved = np.moveaxis(a, kept, list(range(len(kept))))
        out = np.empty(moved.shape[: len(kept)], dtype=object)
        for index in np.ndindex(out.shape):
            out[index] = sum_of(moved[index].ravel())
        return out

    def read_AddBias(self, e: tx.AddBias) -> np.ndarray:
        a, bias = self(e.a), self(e.bias)
        out = np.empty(a.shape, dtype=object)
        for index in np.ndindex(a.shape):
            out[index] = sum_of([a[index], bias[index[1]]])
        return out

    def read_Product(self, e: tx.Product) -> np.ndarray:
        return _elementwise(lambda u, v: u * v, self(e.a), self(e.b))

    def read_Difference(self, e: tx.Difference) -> np.ndarray:
        return _elementwise(lambda u, v: u - v, self(e.a), self(e.b))

    def read_OneMinus(self, e: tx.OneMinus) -> np.ndarray:
        return _elementwise(lambda u: 1 - u, self(e.a))

    def read_BatchScale(self, e: tx.BatchScale) -> np.ndarray:
        scale = sp.Rational(1, self.batch) if e.reduction == "mean" else sp.Integer(1)
        return _elementwise(lambda u: scale * u, self(e.a))

    def read_Relu(self, e: tx.Relu) -> np.ndarray:
        return _elementwise(relu, self(e.a))

    def read_StepMask(self, e: tx.StepMask) -> np.ndarray:
        return _elementwise(lambda u: step(u, 0), self(e.a))

    def read_Sigmoid(self, e: tx.Sigmoid) -> np.ndarray:
        return _elementwise(sigmoid, self(e.a))

    def read_Tanh(self, e: tx.Tanh) -> np.ndarray:
        return _elementwise(sp.tanh, self(e.a))  # SymPy's own tanh: its derivative is SymPy's

    @staticmethod
    def _windows(a: np.ndarray, s: int):
        """Yield (output index, [input indices of the window in row-major order])."""
        n, c, h, w = a.shape
        for b, ch, i, j in np.ndindex(n, c, h // s, w // s):
            cells = [(b, ch, i * s + p, j * s + q) for p in range(s) for q in range(s)]
            yield (b, ch, i, j), cells

    def read_MaxPool(self, e: tx.MaxPool) -> np.ndarray:
        a = self(e.a)
        out = np.empty(_concrete(e.shape, self.batch), dtype=object)
        for index, cells in self._windows(a, e.size):
            out[index] = window_max(*[a[cell] for cell in cells])
        return out

    def read_RouteMax(self, e: tx.RouteMax) -> np.ndarray:
        a, g = self(e.a), self(e.grad)
        out = np.empty(a.shape, dtype=object)
        for index, cells in self._windows(a, e.size):
            window = [a[cell] for cell in cells]
            for position, cell in enumerate(cells):
                out[cell] = g[index] * first_max_indicator(window, position)
        return out

    def _reduce(self, per_entry: np.ndarray, reduction: str) -> np.ndarray:
        total = sp.Add(*per_entry.ravel())
        if reduction == "mean":
            total = total / per_entry.shape[0]
        return np.array(total, dtype=object)

    def read_BinaryCrossEntropyWithLogits(self, e: tx.BinaryCrossEntropyWithLogits) -> np.ndarray:
        def bce(z, y):
            a = sigmoid(z)
            return -(y * sp.log(a) + (1 - y) * sp.log(1 - a))

        return self._reduce(_elementwise(bce, self(e.logits), self(e.target)), e.reduction)

    def read_HalfSquaredError(self, e: tx.HalfSquaredError) -> np.ndarray:
        def half_square(o, y):
            return sp.Rational(1, 2) * (o - y) ** 2

        return self._reduce(_elementwise(half_square, self(e.output), self(e.target)), e.reduction)
