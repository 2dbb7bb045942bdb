"""The index-form reading: an entry of an expression as a sum of terms over symbolic ranges.

``IndexReading(shapes, definitions)`` reads expressions of ``derive.texpr`` whose tensors have
*symbolic* shapes (tuples of SymPy size expressions, looked up by name, so a rule built for
concrete sizes reads for all sizes too). ``entry(expr, index)`` gives ``expr[index]`` as a
``TermSum`` for an index of integer expressions; ``shape(expr)`` the symbolic shape. A tensor
named in ``definitions`` reads as its defining expression (``A = sigmoid(Z)``). One
``read_<Operation>`` and one ``shape_<Operation>`` per operation, as in every reading.
"""

from __future__ import annotations

import itertools

import sympy as sp

from gradproof.derive import texpr as tx
from gradproof.derive.parametric import scalars
from gradproof.derive.parametric.conditions import Conditions
from gradproof.derive.parametric.linear import Linear
from gradproof.derive.parametric.terms import (
    Fresh,
    TermSum,
    constant,
    minus,
    plus,
    restricted,
    scaled,
    simple_value,
    summed,
    times,
)

Index = tuple[sp.Expr, ...]
SymbolicShape = tuple[sp.Expr, ...]


class NotReadable(ValueError):  # noqa: N818 - a verdict's reason, not an error
    """An expression the index form cannot state (a floor it cannot resolve, a function of a sum)."""


def divided(e: sp.Expr, size: int) -> tuple[sp.Expr, int]:
    """``(q, r)`` with ``e = size * q + r``, ``0 <= r < size``, ``q`` an integer form; else NotReadable.

    Exact for every integer value of ``e``'s variables: every coefficient is a multiple of
    ``size``, so ``q`` is an integer and the floor of ``e / size`` is ``q``.
    """
    e = sp.sympify(e)
    form = Linear.of(e)
    if any(a % size for _, a in form.coefficients):
        raise NotReadable(f"floor({e} / {size}) is not an integer form")
    r = form.constant % size
    return sp.expand((e - r) / size), r


class IndexReading:
    def __init__(
        self,
        shapes: dict[str, SymbolicShape],
        batch: sp.Symbol,
        definitions=None,
        reshapes=None,
        derived=None,
    ):
        """``reshapes`` maps the target dims a rule's reshape names to their symbolic shape;
        ``derived`` names the sizes given by a floor (a strided output's side): size -> expression."""
        self.shapes = shapes
        self.derived: dict[sp.Symbol, sp.Expr] = dict(derived or {})
        self.reshapes: dict[tx.Shape, SymbolicShape] = dict(reshapes or {})
        self.batch = batch
        self.definitions: dict[str, tx.Expr] = dict(definitions or {})
        self.fresh = Fresh()
        self.bases = {name: sp.IndexedBase(name) for name in shapes}

    # ------------------------------------------------------------ dispatch

    def entry(self, expr: tx.Expr, index: Index) -> TermSum:
        return getattr(self, f"read_{type(expr).__name__}")(expr, tuple(index))

    def shape(self, expr: tx.Expr) -> SymbolicShape:
        return getattr(self, f"shape_{type(expr).__name__}")(expr)

    def base(self, name: str) -> sp.IndexedBase:
        return self.bases[name]

    def pairing(self, upstream: str, expr: tx.Expr) -> TermSum:
        """``sum_o upstream[o] * expr[o]`` over the output indices (``expr`` itself for a scalar)."""
        shape = self.shape(expr)
        if not shape:
            return self.entry(expr, ())
        g = self.base(upstream)
        if isinstance(expr, tx.Reshape) and len(self.shape(expr.a)) > len(shape):
            # Flatten: sum over the flat index = sum over the source index (the bijection lemma).
            source = self.shape(expr.a)
            index = tuple(self.fresh("o") for _ in source)
            flat = (index[0], _flat_index(index[1:], source[1:]))
            return summed(
                zip(index, source, strict=True),
                times(constant(g[flat]), self.entry(expr.a, index), self.fresh),
            )
        index = tuple(self.fresh("o") for _ in shape)
        return summed(
            zip(index, shape, strict=True), times(constant(g[index]), self.entry(expr, index), self.fresh)
        )

    def _function(self, fn, body: TermSum) -> TermSum:
        value = simple_value(body)
        if value is None:
            raise NotReadable("an element-wise function of a sum")
        return constant(fn(value))

    # ------------------------------------------------------------ tensors

    def shape_Tensor(self, e: tx.Tensor) -> SymbolicShape:
        return self.shapes[e.name]

    def read_Tensor(self, e: tx.Tensor, index: Index) -> TermSum:
        if e.name in self.definitions:
            return self.entry(self.definitions[e.name], index)
        return constant(self.base(e.name)[index] if index else sp.Symbol(e.name))

    # ------------------------------------------------------------ convolution

    def _weight_form(self, e: tx.Correlate) -> bool:
        """The kernel has a batch axis (a weight gradient), as ``texpr.Correlate`` tells it: by its dims."""
        try:
            return e.kernel.shape[0] == tx.BATCH
        except (tx.ShapeError, ValueError, TypeError, AttributeError):
            return self.shape(e.kernel)[0] == self.batch

    def shape_Correlate(self, e: tx.Correlate) -> SymbolicShape:
        n, c, h, w = self.shape(e.x)
        k0, k1, kh, kw = self.shape(e.kernel)
        if self._weight_form(e):
            return (k1, c, h - kh + 1, w - kw + 1)
        return (n, k0, h - kh + 1, w - kw + 1)

    def read_Correlate(self, e: tx.Correlate, index: Index) -> TermSum:
        _, channels, _, _ = self.shape(e.x)
        _, _, kh, kw = self.shape(e.kernel)
        if self._weight_form(e):
            f, c, m, n = index
            b, i, j = self.fresh("b"), self.fresh("i"), self.fresh("j")
            body = times(
                self.entry(e.x, (b, c, i + m, j + n)), self.entry(e.kernel, (b, f, i, j)), self.fresh
            )
            return summed([(b, self.batch), (i, kh), (j, kw)], body)
        b, f, i, j = index
        c, m, n = self.fresh("c"), self.fresh("m"), self.fresh("n")
        body = times(self.entry(e.x, (b, c, i + m, j + n)), self.entry(e.kernel, (f, c, m, n)), self.fresh)
        return summed([(c, channels), (m, kh), (n, kw)], body)

    def shape_FullConvolve(self, e: tx.FullConvolve) -> SymbolicShape:
        n, _, gh, gw = self.shape(e.grad)
        _, c, kh, kw = self.shape(e.kernel)
        return (n, c, gh + kh - 1, gw + kw - 1)

    def read_FullConvolve(self, e: tx.FullConvolve, index: Index) -> TermSum:
        b, c, h, w = index
        _, _, gh, gw = self.shape(e.grad)
        filters, _, kh, kw = self.shape(e.kernel)
        f, m, n = self.fresh("f"), self.fresh("m"), self.fresh("n")
        inside = Conditions.of([h - m, gh - 1 - (h - m), w - n, gw - 1 - (w - n)])
        body = times(self.entry(e.grad, (b, f, h - m, w - n)), self.entry(e.kernel, (f, c, m, n)), self.fresh)
        return summed([(f, filters), (m, kh), (n, kw)], restricted(inside, body))

    # ------------------------------------------------------------ matrices

    def shape_MatMul(self, e: tx.MatMul) -> SymbolicShape:
        return (self.shape(e.a)[0], self.shape(e.b)[1])

    def read_MatMul(self, e: tx.MatMul, index: Index) -> TermSum:
        i, j = index
        v = self.fresh("v")
        body = times(self.entry(e.a, (i, v)), self.entry(e.b, (v, j)), self.fresh)
        return summed([(v, self.shape(e.a)[1])], body)

    def shape_Transpose(self, e: tx.Transpose) -> SymbolicShape:
        return self.shape(e.a)[::-1]

    def read_Transpose(self, e: tx.Transpose, index: Index) -> TermSum:
        return self.entry(e.a, index[::-1])

    def shape_Reshape(self, e: tx.Reshape) -> SymbolicShape:
        source = self.shape(e.a)
        if len(e.dims) == 2 and len(source) > 2:
            return (source[0], sp.Mul(*source[1:]))
        return (source[0], *self._unflattened(e))

    def _unflattened(self, e: tx.Reshape) -> SymbolicShape:
        """The symbolic target shape of an unflatten (without its batch axis)."""
        if e.dims in self.reshapes:
            return self.reshapes[e.dims][1:]
        if all(isinstance(d, sp.Expr) for d in e.dims[1:]):
            return tuple(e.dims[1:])
        raise NotReadable(f"reshape to {e.dims}: its symbolic shape is not known")

    def read_Reshape(self, e: tx.Reshape, index: Index) -> TermSum:
        source = self.shape(e.a)
        if len(e.dims) > len(source):  # unflatten: entry [b, c, h, w] is source [b, flat(c, h, w)]
            dims = self._unflattened(e)
            return self.entry(e.a, (index[0], _flat_index(index[1:], dims)))
        raise NotReadable("a flattened entry at a general index needs floor and mod")

    def shape_SumAxes(self, e: tx.SumAxes) -> SymbolicShape:
        return tuple(d for i, d in enumerate(self.shape(e.a)) if i not in e.axes)

    def read_SumAxes(self, e: tx.SumAxes, index: Index) -> TermSum:
        shape = self.shape(e.a)
        kept = iter(index)
        full, ranges = [], []
        for axis, size in enumerate(shape):
            if axis in e.axes:
                v = self.fresh("s")
                full.append(v)
                ranges.append((v, size))
            else:
                full.append(next(kept))
        return summed(ranges, self.entry(e.a, tuple(full)))

    def shape_AddBias(self, e: tx.AddBias) -> SymbolicShape:
        return self.shape(e.a)

    def read_AddBias(self, e: tx.AddBias, index: Index) -> TermSum:
        return plus(self.entry(e.a, index), self.entry(e.bias, (index[1],)))

    # ------------------------------------------------------------ element-wise

    def _same(self, e) -> SymbolicShape:
        return self.shape(e.a)

    shape_Product = shape_Difference = shape_OneMinus = shape_BatchScale = _same  # noqa: N815
    shape_Relu = shape_StepMask = shape_Sigmoid = shape_Tanh = shape_Softmax = _same  # noqa: N815

    def read_Product(self, e: tx.Product, index: Index) -> TermSum:
        return times(self.entry(e.a, index), self.entry(e.b, index), self.fresh)

    def read_Difference(self, e: tx.Difference, index: Index) -> TermSum:
        return minus(self.entry(e.a, index), self.entry(e.b, index))

    def read_OneMinus(self, e: tx.OneMinus, index: Index) -> TermSum:
        return minus(constant(1), self.entry(e.a, index))

    def read_BatchScale(self, e: tx.BatchScale, index: Index) -> TermSum:
        body = self.entry(e.a, index)
        return scaled(1 / self.batch, body) if e.reduction == "mean" else body

    def read_Relu(self, e: tx.Relu, index: Index) -> TermSum:
        return self._function(scalars.relu, self.entry(e.a, index))

    def read_StepMask(self, e: tx.StepMask, index: Index) -> TermSum:
        return self._function(scalars.step, self.entry(e.a, index))

    def read_Sigmoid(self, e: tx.Sigmoid, index: Index) -> TermSum:
        return self._function(scalars.sigmoid, self.entry(e.a, index))

    def read_Tanh(self, e: tx.Tanh, index: Index) -> TermSum:
        return self._function(sp.tanh, self.entry(e.a, index))

    # ------------------------------------------------------------ padding, crop

    def shape_Pad(self, e) -> SymbolicShape:
        n, c, h, w = self.shape(e.a)
        (t, b), (left, r) = e.pads
        return (n, c, h + t + b, w + left + r)

    def read_Pad(self, e, index: Index) -> TermSum:
        """``[t <= h < t + H][l <= w < l + W] a[b, c, h - t, w - l]``: zero outside the input."""
        b, c, h, w = index
        _, _, height, width = self.shape(e.a)
        (t, _), (left, _) = e.pads
        inside = Conditions.of([h - t, t + height - 1 - h, w - left, left + width - 1 - w])
        return restricted(inside, self.entry(e.a, (b, c, h - t, w - left)))

    def shape_Crop(self, e) -> SymbolicShape:
        n, c, h, w = self.shape(e.a)
        (t, b), (left, r) = e.pads
        return (n, c, h - t - b, w - left - r)

    def read_Crop(self, e, index: Index) -> TermSum:
        b, c, h, w = index
        (t, _), (left, _) = e.pads
        return self.entry(e.a, (b, c, h + t, w + left))

    # ------------------------------------------------------------ pooling

    def shape_MaxPool(self, e: tx.MaxPool) -> SymbolicShape:
        n, c, h, w = self.shape(e.a)
        return (n, c, sp.expand(h / e.size), sp.expand(w / e.size))

    def _window(self, a: tx.Expr, b, c, i, j, size: int) -> list[sp.Expr]:
        cells = []
        for p, q in itertools.product(range(size), repeat=2):
            value = simple_value(self.entry(a, (b, c, size * i + p, size * j + q)))
            if value is None:
                raise NotReadable("a window maximum of sums")
            cells.append(value)
        return cells

    def read_MaxPool(self, e: tx.MaxPool, index: Index) -> TermSum:
        return constant(scalars.window_max(*self._window(e.a, *index, e.size)))

    def shape_RouteMax(self, e: tx.RouteMax) -> SymbolicShape:
        return self.shape(e.a)

    def read_RouteMax(self, e: tx.RouteMax, index: Index) -> TermSum:
        """On the no-tie region: the window's gradient where this entry is the window's maximum."""
        b, c, h, w = index
        (i, r), (j, s) = divided(h, e.size), divided(w, e.size)
        window = self._window(e.a, b, c, i, j, e.size)
        mask = scalars.is_window_max(tuple(window), r * e.size + s)
        return times(self.entry(e.grad, (b, c, i, j)), constant(mask), self.fresh)

    def shape_AvgPool(self, e) -> SymbolicShape:
        n, c, h, w = self.shape(e.a)
        return (n, c, sp.expand(h / e.size), sp.expand(w / e.size))

    def read_AvgPool(self, e, index: Index) -> TermSum:
        """``(1/s^2) sum_{p, q < s} a[b, c, s i + p, s j + q]``, one term per cell of the window."""
        b, c, i, j = index
        s = e.size
        cells = [
            self.entry(e.a, (b, c, s * i + p, s * j + q)) for p, q in itertools.product(range(s), repeat=2)
        ]
        return scaled(sp.Rational(1, s * s), tuple(t for cell in cells for t in cell))

    def shape_SpreadAvg(self, e) -> SymbolicShape:
        n, c, h, w = self.shape(e.grad)
        return (n, c, e.size * h, e.size * w)

    def read_SpreadAvg(self, e, index: Index) -> TermSum:
        b, c, h, w = index
        (i, _), (j, _) = divided(h, e.size), divided(w, e.size)
        return scaled(sp.Rational(1, e.size * e.size), self.entry(e.grad, (b, c, i, j)))

    # ------------------------------------------------------------ strided convolution

    def _derived(self, size: sp.Expr) -> sp.Expr:
        """A floor-mode output side as the size the statement names for it (or as itself when linear)."""
        for symbol, value in self.derived.items():
            if sp.expand(value - size) == 0:
                return symbol
        try:
            Linear.of(size)
        except ValueError:
            raise NotReadable(f"the output side {size} is not named by the statement") from None
        return size

    def shape_StridedCorrelate(self, e) -> SymbolicShape:
        n, _, h, w = self.shape(e.x)
        f, _, kh, kw = self.shape(e.kernel)
        s = e.stride
        return (n, f, self._derived(sp.floor((h - kh) / s) + 1), self._derived(sp.floor((w - kw) / s) + 1))

    def read_StridedCorrelate(self, e, index: Index) -> TermSum:
        b, f, i, j = index
        _, channels, kh, kw = self.shape(e.kernel)
        c, m, n = self.fresh("c"), self.fresh("m"), self.fresh("n")
        s = e.stride
        body = times(
            self.entry(e.x, (b, c, s * i + m, s * j + n)), self.entry(e.kernel, (f, c, m, n)), self.fresh
        )
        return summed([(c, channels), (m, kh), (n, kw)], body)

    def shape_StridedWeightGrad(self, e) -> SymbolicShape:
        _, c, _, _ = self.shape(e.x)
        _, f, _, _ = self.shape(e.grad)
        return (f, c, *e.kernel)

    def read_StridedWeightGrad(self, e, index: Index) -> TermSum:
        f, c, m, n = index
        _, _, gh, gw = self.shape(e.grad)
        b, i, j = self.fresh("b"), self.fresh("i"), self.fresh("j")
        s = e.stride
        body = times(
            self.entry(e.x, (b, c, s * i + m, s * j + n)), self.entry(e.grad, (b, f, i, j)), self.fresh
        )
        return summed([(b, self.batch), (i, gh), (j, gw)], body)

    def shape_TransposedConvolve(self, e) -> SymbolicShape:
        n, _, _, _ = self.shape(e.grad)
        _, c, _, _ = self.shape(e.kernel)
        return (n, c, *e.size)

    def read_TransposedConvolve(self, e, index: Index) -> TermSum:
        """``sum_{f,i,j} [0 <= h - s i < kh][0 <= w - s j < kw] g[b,f,i,j] k[f,c,h - s i,w - s j]``."""
        b, c, h, w = index
        _, _, gh, gw = self.shape(e.grad)
        filters, _, kh, kw = self.shape(e.kernel)
        f, i, j = self.fresh("f"), self.fresh("i"), self.fresh("j")
        s = e.stride
        m, n = h - s * i, w - s * j
        inside = Conditions.of([m, kh - 1 - m, n, kw - 1 - n])
        body = times(self.entry(e.grad, (b, f, i, j)), self.entry(e.kernel, (f, c, m, n)), self.fresh)
        return summed([(f, filters), (i, gh), (j, gw)], restricted(inside, body))

    # ------------------------------------------------------------ softmax

    def _row_normaliser(self, logits: tx.Expr, b: sp.Expr) -> sp.Expr:
        if not isinstance(logits, tx.Tensor) or logits.name in self.definitions:
            raise NotReadable("a softmax of an expression (the index form reads one of a tensor)")
        return scalars.row_exp_sum(self.base(logits.name), b, self.shape(logits)[1])

    def read_Softmax(self, e, index: Index) -> TermSum:
        """``exp(z[b, k]) / S_b`` with ``S_b = sum_j exp(z[b, j])`` one atom (``scalars.row_exp_sum``)."""
        b, _ = index
        value = simple_value(self.entry(e.a, index))
        if value is None:
            raise NotReadable("a softmax of sums")
        return constant(sp.exp(value) / self._row_normaliser(e.a, b))

    def shape_SoftmaxVJP(self, e) -> SymbolicShape:
        return self.shape(e.out)

    def read_SoftmaxVJP(self, e, index: Index) -> TermSum:
        """``A[b, k] (G[b, k] - sum_j G[b, j] A[b, j])``."""
        b, _ = index
        j = self.fresh("j")
        (_, classes) = self.shape(e.out)
        row = summed([(j, classes)], times(self.entry(e.grad, (b, j)), self.entry(e.out, (b, j)), self.fresh))
        return times(self.entry(e.out, index), minus(self.entry(e.grad, index), row), self.fresh)

    # ------------------------------------------------------------ losses

    def shape_SoftmaxCrossEntropy(self, e) -> SymbolicShape:
        return ()

    def read_SoftmaxCrossEntropy(self, e, index: Index) -> TermSum:
        """``sum_{b, k} -Y[b, k] (Z[b, k] - log S_b)`` (over ``N`` for a mean), as the symbolic reading."""
        shape = self.shape(e.logits)
        b, k = self.fresh("o"), self.fresh("o")
        z, y = simple_value(self.entry(e.logits, (b, k))), simple_value(self.entry(e.target, (b, k)))
        if z is None or y is None:
            raise NotReadable("a loss of sums")
        body = summed(
            zip((b, k), shape, strict=True), constant(-y * (z - sp.log(self._row_normaliser(e.logits, b))))
        )
        return scaled(1 / self.batch, body) if e.reduction == "mean" else body

    def shape_BinaryCrossEntropyWithLogits(self, e) -> SymbolicShape:
        return ()

    def shape_HalfSquaredError(self, e) -> SymbolicShape:
        return ()

    def _reduced(self, per_entry, operands: tuple[tx.Expr, ...], reduction: str) -> TermSum:
        shape = self.shape(operands[0])
        index = tuple(self.fresh("o") for _ in shape)
        values = []
        for operand in operands:
            value = simple_value(self.entry(operand, index))
            if value is None:
                raise NotReadable("a loss of sums")
            values.append(value)
        body = summed(zip(index, shape, strict=True), constant(per_entry(*values)))
        return scaled(1 / self.batch, body) if reduction == "mean" else body

    def read_BinaryCrossEntropyWithLogits(self, e: tx.BinaryCrossEntropyWithLogits, index: Index) -> TermSum:
        def bce(z, y):
            a = scalars.sigmoid(z)
            return -(y * sp.log(a) + (1 - y) * sp.log(1 - a))

        return self._reduced(bce, (e.logits, e.target), e.reduction)

    def read_HalfSquaredError(self, e: tx.HalfSquaredError, index: Index) -> TermSum:
        return self._reduced(lambda o, y: sp.Rational(1, 2) * (o - y) ** 2, (e.output, e.target), e.reduction)


def _flat_index(index: Index, dims: SymbolicShape) -> sp.Expr:
    """Row-major position of ``index`` in ``dims``: ``c H W + h W + w``."""
    flat = sp.Integer(0)
    for i, d in zip(index, dims, strict=True):
        flat = flat * d + i
    return sp.expand(flat)
