"""The tensor-expression language: a handful of operations, each with a shape rule.

A backward rule is an expression tree built from these nodes. The tree itself
knows nothing of SymPy, NumPy or LaTeX: each of those is a *reading* of it
(symbolic ``derive.symbolic``, plain text ``derive.statement``, NumPy
``codegen.numpy.printer``, LaTeX ``codegen.latex.printer``), with one method
per node class. ``OPERATIONS`` lists the classes so that a test can check every
reading covers every operation. An operation declared elsewhere (for a new layer type) carries its
readings itself, as methods ``read_<reading>(reading)`` (``read_symbolic``, ``read_text``,
``read_numpy``, ``read_latex``), as SymPy's printers fall back to an object's own ``_latex``;
``reading_method`` finds either. Each class declares its ``Printing``
properties once; the printers bracket by comparing them.

Shapes are tuples of ints, batch-first: a batched tensor's leading dimension
is ``BATCH`` (the symbol ``N``); parameters carry no batch axis.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod
from typing import ClassVar

BATCH = "N"

Dim = int | str
Shape = tuple[Dim, ...]


class ShapeError(ValueError):
    """Operands whose shapes do not fit the operation."""


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ShapeError(message)


# How tightly an operation's printed form binds, loosest first: ``a - b`` (additive), ``a * b``
# (multiplicative), ``a.T`` / ``a^T`` (postfix), ``f(a)`` or a name (atom). Every printer brackets
# an operand by comparing these, never by looking at the text it printed.
ADDITIVE, MULTIPLICATIVE, POSTFIX, ATOM = range(4)


@dataclass(frozen=True)
class Printing:
    """An operation's printing properties, declared once; the readings derive their choices from them.

    ``elementwise``: the result's entry ``i`` depends on the operands' entries ``i`` alone.
    ``factor``: a reader takes the result as one factor when its operands are factors (``1 - A``,
    ``1[Z > 0]``), as the shape tracking of a derivation does.
    ``associative``: the same operation as an operand needs no brackets (``a * b * c``).
    """

    precedence: int
    elementwise: bool = False
    factor: bool = False
    associative: bool = False


def precedence(expr: Expr) -> int:
    """How tightly ``expr`` binds when printed (a batch sum prints as its operand)."""
    return expr.binding()


def brackets_needed(operand: Expr, parent: Expr, loosest: int = POSTFIX) -> bool:
    """Whether ``operand`` of ``parent`` must be bracketed where nothing looser than ``loosest`` fits."""
    if parent.printing.associative and type(operand) is type(parent):
        return False
    return precedence(operand) < loosest


@dataclass(frozen=True)
class Expr:
    """Base of every node; ``shape`` is computed from the operands."""

    printing: ClassVar[Printing] = Printing(ATOM)

    def binding(self) -> int:
        return self.printing.precedence

    @property
    def operands(self) -> tuple[Expr, ...]:
        return tuple(v for v in vars(self).values() if isinstance(v, Expr))

    @property
    def shape(self) -> Shape:  # pragma: no cover - every subclass overrides
        raise NotImplementedError


@dataclass(frozen=True)
class Tensor(Expr):
    """A named tensor: an input, a parameter, a forward value or a gradient."""

    name: str
    dims: Shape

    @property
    def shape(self) -> Shape:
        return self.dims


@dataclass(frozen=True)
class Correlate(Expr):
    """Valid cross-correlation, stride 1.

    Forward form (kernel without batch axis): ``x`` (N, C, H, W) with kernel
    (F, C, kh, kw) gives (N, F, H-kh+1, W-kw+1),
    ``out[b,f,i,j] = sum_{c,m,n} x[b,c,i+m,j+n] k[f,c,m,n]``.
    Weight-gradient form (kernel with batch axis): ``x`` (N, C, H, W) with a
    gradient (N, F, H', W') gives (F, C, H-H'+1, W-W'+1),
    ``out[f,c,m,n] = sum_{b,i,j} x[b,c,i+m,j+n] g[b,f,i,j]``.
    """

    printing: ClassVar[Printing] = Printing(ATOM)

    x: Expr
    kernel: Expr

    @property
    def weight_form(self) -> bool:
        return self.kernel.shape[0] == BATCH

    @property
    def shape(self) -> Shape:
        xs, ks = self.x.shape, self.kernel.shape
        _require(len(xs) == 4 and xs[0] == BATCH, f"correlate: input shape {xs}")
        _require(len(ks) == 4, f"correlate: kernel shape {ks}")
        if self.weight_form:
            _require(ks[2] <= xs[2] and ks[3] <= xs[3], f"correlate: {xs} with {ks}")
            return (ks[1], xs[1], xs[2] - ks[2] + 1, xs[3] - ks[3] + 1)
        _require(ks[1] == xs[1], f"correlate: channels {xs} vs {ks}")
        _require(ks[2] <= xs[2] and ks[3] <= xs[3], f"correlate: kernel {ks} > input {xs}")
        return (BATCH, ks[0], xs[2] - ks[2] + 1, xs[3] - ks[3] + 1)


@dataclass(frozen=True)
class FullConvolve(Expr):
    """Full convolution of a gradient (N, F, H', W') with a kernel (F, C, kh, kw).

    Gives (N, C, H'+kh-1, W'+kw-1),
    ``out[b,c,h,w] = sum_{f,m,n} g[b,f,h-m,w-n] k[f,c,m,n]`` over valid indices:
    the correlation of the zero-padded gradient with the kernel turned 180 degrees.
    """

    printing: ClassVar[Printing] = Printing(ATOM)

    grad: Expr
    kernel: Expr

    @property
    def shape(self) -> Shape:
        gs, ks = self.grad.shape, self.kernel.shape
        _require(len(gs) == 4 and len(ks) == 4 and gs[1] == ks[0], f"full_convolve: {gs}, {ks}")
        return (BATCH, ks[1], gs[2] + ks[2] - 1, gs[3] + ks[3] - 1)


@dataclass(frozen=True)
class MatMul(Expr):
    """Matrix product of two 2-D operands (the batch axis may be contracted)."""

    printing: ClassVar[Printing] = Printing(MULTIPLICATIVE)

    a: Expr
    b: Expr

    @property
    def shape(self) -> Shape:
        sa, sb = self.a.shape, self.b.shape
        _require(len(sa) == 2 and len(sb) == 2 and sa[1] == sb[0], f"matmul: {sa} @ {sb}")
        return (sa[0], sb[1])


@dataclass(frozen=True)
class Transpose(Expr):
    """Transpose of a 2-D operand."""

    printing: ClassVar[Printing] = Printing(POSTFIX)

    a: Expr

    @property
    def shape(self) -> Shape:
        _require(len(self.a.shape) == 2, f"transpose: {self.a.shape}")
        return self.a.shape[::-1]


@dataclass(frozen=True)
class Reshape(Expr):
    """Row-major reshape that keeps the batch axis (flatten and its inverse)."""

    printing: ClassVar[Printing] = Printing(POSTFIX)

    a: Expr
    dims: Shape

    @property
    def shape(self) -> Shape:
        sa = self.a.shape
        _require(sa[0] == BATCH and self.dims[0] == BATCH, f"reshape: {sa} -> {self.dims}")
        _require(prod(sa[1:]) == prod(self.dims[1:]), f"reshape: {sa} -> {self.dims}")
        return self.dims


@dataclass(frozen=True)
class SumAxes(Expr):
    """Sum over the given axes (the batch axis included when listed)."""

    printing: ClassVar[Printing] = Printing(POSTFIX)

    a: Expr
    axes: tuple[int, ...]

    @property
    def shape(self) -> Shape:
        sa = self.a.shape
        _require(all(0 <= ax < len(sa) for ax in self.axes), f"sum: axes {self.axes} of {sa}")
        return tuple(d for i, d in enumerate(sa) if i not in self.axes)


@dataclass(frozen=True)
class AddBias(Expr):
    """Add a per-channel bias (shape (K,)) along axis 1 of a batched tensor."""

    printing: ClassVar[Printing] = Printing(ADDITIVE)

    a: Expr
    bias: Expr

    @property
    def shape(self) -> Shape:
        sa, sb = self.a.shape, self.bias.shape
        _require(len(sb) == 1 and len(sa) >= 2 and sa[1] == sb[0], f"bias: {sa} + {sb}")
        return sa


def _same_shape(name: str, a: Expr, b: Expr) -> Shape:
    _require(a.shape == b.shape, f"{name}: shapes {a.shape} and {b.shape} differ")
    return a.shape


@dataclass(frozen=True)
class Product(Expr):
    """Element-wise (Hadamard) product of two operands of one shape."""

    printing: ClassVar[Printing] = Printing(MULTIPLICATIVE, elementwise=True, associative=True)

    a: Expr
    b: Expr

    @property
    def shape(self) -> Shape:
        return _same_shape("product", self.a, self.b)


@dataclass(frozen=True)
class Difference(Expr):
    """Element-wise ``a - b``."""

    printing: ClassVar[Printing] = Printing(ADDITIVE, elementwise=True, factor=True)

    a: Expr
    b: Expr

    @property
    def shape(self) -> Shape:
        return _same_shape("difference", self.a, self.b)


@dataclass(frozen=True)
class OneMinus(Expr):
    """Element-wise ``1 - a``."""

    printing: ClassVar[Printing] = Printing(ADDITIVE, elementwise=True, factor=True)

    a: Expr

    @property
    def shape(self) -> Shape:
        return self.a.shape


@dataclass(frozen=True)
class BatchScale(Expr):
    """``a / N`` for a batch mean, ``a`` itself for a batch sum."""

    printing: ClassVar[Printing] = Printing(MULTIPLICATIVE, elementwise=True)

    a: Expr
    reduction: str

    def binding(self) -> int:
        return precedence(self.a) if self.reduction == "sum" else self.printing.precedence

    @property
    def shape(self) -> Shape:
        _require(self.reduction in ("mean", "sum"), f"reduction {self.reduction!r}")
        return self.a.shape


@dataclass(frozen=True)
class Relu(Expr):
    """Element-wise ``max(0, a)``."""

    printing: ClassVar[Printing] = Printing(ATOM, elementwise=True, factor=True)

    a: Expr

    @property
    def shape(self) -> Shape:
        return self.a.shape


@dataclass(frozen=True)
class StepMask(Expr):
    """Element-wise ReLU derivative: 1 where ``a > 0``, else 0 (so 0 at 0)."""

    printing: ClassVar[Printing] = Printing(ATOM, elementwise=True, factor=True)

    a: Expr

    @property
    def shape(self) -> Shape:
        return self.a.shape


@dataclass(frozen=True)
class Sigmoid(Expr):
    """Element-wise logistic function ``1 / (1 + exp(-a))``."""

    printing: ClassVar[Printing] = Printing(ATOM, elementwise=True, factor=True)

    a: Expr

    @property
    def shape(self) -> Shape:
        return self.a.shape


@dataclass(frozen=True)
class Tanh(Expr):
    """Element-wise hyperbolic tangent."""

    printing: ClassVar[Printing] = Printing(ATOM, elementwise=True, factor=True)

    a: Expr

    @property
    def shape(self) -> Shape:
        return self.a.shape


def _pooled_shape(name: str, a: Expr, size: int) -> Shape:
    sa = a.shape
    _require(len(sa) == 4 and sa[2] % size == 0 and sa[3] % size == 0, f"{name}: {sa} / {size}")
    return (sa[0], sa[1], sa[2] // size, sa[3] // size)


@dataclass(frozen=True)
class MaxPool(Expr):
    """Max over non-overlapping ``size`` x ``size`` windows (stride = size)."""

    printing: ClassVar[Printing] = Printing(ATOM)

    a: Expr
    size: int

    @property
    def shape(self) -> Shape:
        return _pooled_shape("maxpool", self.a, self.size)


@dataclass(frozen=True)
class RouteMax(Expr):
    """Max-pool routing: each window's gradient goes to its first maximum.

    ``a`` is the pooled input, ``grad`` the gradient of the pooled output;
    the result has the shape of ``a``. "First" is row-major order inside the
    window, as PyTorch's ``max_pool2d`` does on ties.
    """

    printing: ClassVar[Printing] = Printing(ATOM)

    a: Expr
    grad: Expr
    size: int

    @property
    def shape(self) -> Shape:
        _require(
            _pooled_shape("route_max", self.a, self.size) == self.grad.shape,
            f"route_max: {self.a.shape} pooled by {self.size} vs {self.grad.shape}",
        )
        return self.a.shape


@dataclass(frozen=True)
class BinaryCrossEntropyWithLogits(Expr):
    """Scalar loss: BCE of ``sigmoid(logits)`` against ``target``, reduced over the batch."""

    printing: ClassVar[Printing] = Printing(MULTIPLICATIVE)

    logits: Expr
    target: Expr
    reduction: str

    @property
    def shape(self) -> Shape:
        _same_shape("bce", self.logits, self.target)
        return ()


@dataclass(frozen=True)
class HalfSquaredError(Expr):
    """Scalar loss: ``0.5 * sum (output - target)^2``, reduced over the batch."""

    printing: ClassVar[Printing] = Printing(MULTIPLICATIVE)

    output: Expr
    target: Expr
    reduction: str

    @property
    def shape(self) -> Shape:
        _same_shape("squared error", self.output, self.target)
        return ()


OPERATIONS: tuple[type[Expr], ...] = (
    Tensor,
    Correlate,
    FullConvolve,
    MatMul,
    Transpose,
    Reshape,
    SumAxes,
    AddBias,
    Product,
    Difference,
    OneMinus,
    BatchScale,
    Relu,
    StepMask,
    Sigmoid,
    Tanh,
    MaxPool,
    RouteMax,
    BinaryCrossEntropyWithLogits,
    HalfSquaredError,
)


def reading_method(reading, expr: Expr):
    """``reading``'s method for ``expr``: its own ``read_<Op>``, else the one the operation carries."""
    op = type(expr).__name__
    method = getattr(reading, f"read_{op}", None)
    if method is not None:
        return method
    carried = getattr(expr, f"read_{reading.name}", None)
    if carried is None:
        raise TypeError(f"the {reading.name} reading has no read_{op}, and {op} has no read_{reading.name}")
    return lambda e: carried(reading)


def tensors_in(expr: Expr) -> list[Tensor]:
    """The named tensors an expression reads, in first-use order."""
    seen: dict[str, Tensor] = {}
    stack = [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, Tensor):
            seen.setdefault(node.name, node)
        stack.extend(reversed(node.operands))
    return list(seen.values())
