"""Operations of the vocabulary of real CNNs, each carrying every reading beside its definition.

Average pooling and its spreading rule, zero padding and its crop, softmax with its
vector-Jacobian product, the softmax cross-entropy, and strided correlation with its weight
gradient and its transpose (the input gradient of a strided convolution). As ``texpr``'s
docstring allows, each class carries its readings (``read_symbolic``, ``read_text``,
``read_numpy``, ``read_latex``) and its ``latex_definition``, as JAX keeps everything about a
primitive beside it; ``tests/test_vocabulary.py`` checks every reading of every one of them
against the symbolic reading, and against loops written independently.

Pooling and strided correlation follow PyTorch's floor mode: rows and columns that no window
covers get no output and a gradient of 0. Layers build that from these operations (``Crop``
before the pool, ``Pad`` around its rule), so every operation here sees dividing shapes or says
so in its shape rule.
"""

# ruff: noqa: E501 - LaTeX definitions and helper docstrings keep their lines whole

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import sympy as sp

from gradproof.derive import texpr as tx
from gradproof.derive.symbolic import sum_of
from gradproof.derive.texpr import ATOM, BATCH, MULTIPLICATIVE, POSTFIX, Expr, Printing, ShapeError

Pads = tuple[tuple[int, int], tuple[int, int]]  # ((top, bottom), (left, right))


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ShapeError(message)


def _concrete(shape: tx.Shape, batch: int) -> tuple[int, ...]:
    return tuple(batch if d == BATCH else d for d in shape)


def _elementwise(fn, values: np.ndarray) -> np.ndarray:
    out = np.empty(values.shape, dtype=object)
    for index in np.ndindex(values.shape):
        out[index] = fn(values[index])
    return out


def _spatial(name: str, a: Expr) -> tx.Shape:
    shape = a.shape
    _require(len(shape) == 4 and shape[0] == BATCH, f"{name}: needs (N, C, H, W), got {shape}")
    return shape


# ------------------------------------------------------------ padding, crop


@dataclass(frozen=True)
class Pad(Expr):
    """Zeros around the spatial axes: ``pads = ((top, bottom), (left, right))``."""

    printing: ClassVar[Printing] = Printing(ATOM)

    a: Expr
    pads: Pads

    @property
    def shape(self) -> tx.Shape:
        n, c, h, w = _spatial("pad", self.a)
        (t, b), (left, r) = self.pads
        return (n, c, h + t + b, w + left + r)

    def read_symbolic(self, reading) -> np.ndarray:
        values = reading(self.a)
        (t, b), (left, r) = self.pads
        out = np.full(_concrete(self.shape, reading.batch), sp.Integer(0), dtype=object)
        out[:, :, t : t + values.shape[2], left : left + values.shape[3]] = values
        return out

    def read_text(self, reading) -> str:
        return f"pad({reading(self.a)}, {_pads_text(self.pads)})"

    def read_numpy(self, reading) -> str:
        (t, b), (left, r) = self.pads
        return f"np.pad({reading.number(self.a)}, ((0, 0), (0, 0), ({t}, {b}), ({left}, {r})))"

    def read_latex(self, reading) -> str:
        return reading.apply(rf"\operatorname{{pad}}_{{{_pads_latex(self.pads)}}}", reading(self.a))

    @staticmethod
    def latex_definition(sample: str) -> tuple[str, str]:
        return (
            r"\operatorname{pad}_{t,b,l,r}(A)",
            r"$A$ with $t$ rows of zeros above, $b$ below, $l$ columns on the left and $r$ on the right",
        )


@dataclass(frozen=True)
class Crop(Expr):
    """The spatial axes without ``pads = ((top, bottom), (left, right))`` rows and columns: Pad's adjoint."""

    printing: ClassVar[Printing] = Printing(POSTFIX)

    a: Expr
    pads: Pads

    @property
    def shape(self) -> tx.Shape:
        n, c, h, w = _spatial("crop", self.a)
        (t, b), (left, r) = self.pads
        _require(h > t + b and w > left + r, f"crop: {self.pads} of {self.a.shape}")
        return (n, c, h - t - b, w - left - r)

    def read_symbolic(self, reading) -> np.ndarray:
        values = reading(self.a)
        (t, b), (left, r) = self.pads
        _, _, h, w = values.shape
        return values[:, :, t : h - b, left : w - r]

    def read_text(self, reading) -> str:
        return f"crop({reading(self.a)}, {_pads_text(self.pads)})"

    def read_numpy(self, reading) -> str:
        (t, b), (left, r) = self.pads
        _, _, h, w = self.a.shape
        return f"{reading._operand(self.a, self)}[:, :, {t}:{h - b}, {left}:{w - r}]"

    def read_latex(self, reading) -> str:
        return reading.apply(rf"\operatorname{{crop}}_{{{_pads_latex(self.pads)}}}", reading(self.a))

    @staticmethod
    def latex_definition(sample: str) -> tuple[str, str]:
        return (
            r"\operatorname{crop}_{t,b,l,r}(G)",
            r"$G$ without its first $t$ and last $b$ rows and its first $l$ and last $r$ columns "
            r"(the adjoint of $\operatorname{pad}$)",
        )


def _pads_text(pads: Pads) -> str:
    (t, b), (left, r) = pads
    return f"{t},{b},{left},{r}"


def _pads_latex(pads: Pads) -> str:
    return _pads_text(pads).replace(",", r",\,")


# --------------------------------------------------------------- average pool


def _pooled(name: str, a: Expr, size: int) -> tx.Shape:
    n, c, h, w = _spatial(name, a)
    _require(h % size == 0 and w % size == 0, f"{name}: {a.shape} / {size} (crop first: floor mode)")
    return (n, c, h // size, w // size)


@dataclass(frozen=True)
class AvgPool(Expr):
    """Mean of each non-overlapping ``size`` x ``size`` window (stride = size)."""

    printing: ClassVar[Printing] = Printing(ATOM)

    a: Expr
    size: int

    @property
    def shape(self) -> tx.Shape:
        return _pooled("avgpool", self.a, self.size)

    def read_symbolic(self, reading) -> np.ndarray:
        a, s = reading(self.a), self.size
        out = np.empty(_concrete(self.shape, reading.batch), dtype=object)
        scale = sp.Rational(1, s * s)
        for b, c, i, j in np.ndindex(out.shape):
            window = [a[b, c, i * s + p, j * s + q] for p in range(s) for q in range(s)]
            out[b, c, i, j] = scale * sum_of(window)
        return out

    def read_text(self, reading) -> str:
        return f"avgpool{self.size}x{self.size}({reading(self.a)})"

    def read_numpy(self, reading) -> str:
        _, c, h, w = self.a.shape
        s = self.size
        operand = reading._operand(self.a, self)
        return f"{operand}.reshape(-1, {c}, {h // s}, {s}, {w // s}, {s}).mean(axis=(3, 5))"

    def read_latex(self, reading) -> str:
        return reading.apply(rf"\operatorname{{avgpool}}_{{{self.size}\times {self.size}}}", reading(self.a))

    @staticmethod
    def latex_definition(sample: str) -> tuple[str, str]:
        b, s = sample, "r" if sample == "s" else "s"
        return (
            rf"\operatorname{{avgpool}}_{{{s}\times {s}}}(A)_{{{b},c,i,j}} = "
            rf"\frac{{1}}{{{s}^{{2}}}} \sum_{{0 \le p,q < {s}}} A_{{{b},c,{s}i+p,{s}j+q}}",
            rf"mean of each ${s} \times {s}$ window, stride ${s}$",
        )


@dataclass(frozen=True)
class SpreadAvg(Expr):
    """Average-pool backward: each output gradient spread over its window, divided by ``size^2``."""

    printing: ClassVar[Printing] = Printing(ATOM)

    grad: Expr
    size: int

    @property
    def shape(self) -> tx.Shape:
        n, c, h, w = _spatial("spread_avg", self.grad)
        return (n, c, h * self.size, w * self.size)

    def read_symbolic(self, reading) -> np.ndarray:
        g, s = reading(self.grad), self.size
        out = np.empty(_concrete(self.shape, reading.batch), dtype=object)
        scale = sp.Rational(1, s * s)
        for b, c, h, w in np.ndindex(out.shape):
            out[b, c, h, w] = scale * g[b, c, h // s, w // s]
        return out

    def read_text(self, reading) -> str:
        return f"spread{self.size}x{self.size}({reading(self.grad)}) / {self.size * self.size}"

    def read_numpy(self, reading) -> str:
        s = self.size
        operand = reading._operand(self.grad, self)
        return f"({operand} / {s * s}).repeat({s}, axis=2).repeat({s}, axis=3)"

    def read_latex(self, reading) -> str:
        head = rf"\tfrac{{1}}{{{self.size * self.size}}}\operatorname{{spread}}_{{{self.size}\times {self.size}}}"
        return reading.apply(head, reading(self.grad))

    @staticmethod
    def latex_definition(sample: str) -> tuple[str, str]:
        b, s = sample, "r" if sample == "s" else "s"
        return (
            rf"\operatorname{{spread}}_{{{s}\times {s}}}(G)_{{{b},c,{s}i+p,{s}j+q}} = G_{{{b},c,i,j}}",
            r"each entry copied to every position of its window ($0 \le p, q < " + s + "$)",
        )


# ------------------------------------------------------------------ softmax


def _rows(name: str, a: Expr) -> tx.Shape:
    shape = a.shape
    _require(len(shape) == 2 and shape[0] == BATCH, f"{name}: needs (N, K), got {shape}")
    return shape


def _softmax_row(z: np.ndarray) -> np.ndarray:
    exps = [sp.exp(v) for v in z]
    inverse = sp.Pow(sum_of(exps), -1)
    return np.array([e * inverse for e in exps], dtype=object)


@dataclass(frozen=True)
class Softmax(Expr):
    """Softmax of each row: ``exp(z_k) / sum_j exp(z_j)``."""

    printing: ClassVar[Printing] = Printing(ATOM)

    a: Expr

    @property
    def shape(self) -> tx.Shape:
        return _rows("softmax", self.a)

    def read_symbolic(self, reading) -> np.ndarray:
        z = reading(self.a)
        return np.array([_softmax_row(row) for row in z], dtype=object).reshape(z.shape)

    def read_text(self, reading) -> str:
        return f"softmax({reading(self.a)})"

    def read_numpy(self, reading) -> str:
        return reading.carried_call("softmax", SOFTMAX_HELPER, reading.number(self.a))

    def read_latex(self, reading) -> str:
        return reading.apply(r"\operatorname{softmax}", reading(self.a))

    @staticmethod
    def latex_definition(sample: str) -> tuple[str, str]:
        return (
            r"\operatorname{softmax}(Z)_{" + sample + r",k} = \frac{e^{Z_{" + sample + r",k}}}"
            r"{\sum_{j} e^{Z_{" + sample + r",j}}}",
            "softmax of each sample's row",
        )


@dataclass(frozen=True)
class SoftmaxVJP(Expr):
    """Softmax backward: ``A ⊙ (G - sum_k (G ⊙ A)_k)``, row by row, for ``A = softmax(Z)``."""

    printing: ClassVar[Printing] = Printing(MULTIPLICATIVE)

    out: Expr
    grad: Expr

    @property
    def shape(self) -> tx.Shape:
        _require(_rows("softmax_vjp", self.out) == self.grad.shape, f"softmax_vjp: {self.grad.shape}")
        return self.out.shape

    def read_symbolic(self, reading) -> np.ndarray:
        a, g = reading(self.out), reading(self.grad)
        result = np.empty(a.shape, dtype=object)
        for b in range(a.shape[0]):
            inner = sum_of([g[b, k] * a[b, k] for k in range(a.shape[1])])
            for k in range(a.shape[1]):
                result[b, k] = a[b, k] * (g[b, k] - inner)
        return result

    def read_text(self, reading) -> str:
        a, g = reading(self.out), reading(self.grad)
        return f"{a} ⊙ ({g} - rowsum({g} ⊙ {a}))"

    def read_numpy(self, reading) -> str:
        a, g = reading._operand(self.out, self), reading._operand(self.grad, self)
        return f"{a} * ({g} - ({g} * {a}).sum(axis=1, keepdims=True))"

    def read_latex(self, reading) -> str:
        a, g = reading(self.out), reading(self.grad)
        return rf"{a} \odot \bigl({g} - \operatorname{{rowsum}}({g} \odot {a})\bigr)"

    @staticmethod
    def latex_definition(sample: str) -> tuple[str, str]:
        return (
            r"\operatorname{rowsum}(M)_{" + sample + r",k} = \sum_{j} M_{" + sample + r",j}",
            "the sum of each sample's row, repeated along it",
        )


@dataclass(frozen=True)
class SoftmaxCrossEntropy(Expr):
    """Scalar loss: cross-entropy of ``softmax(logits)`` against ``target`` rows, reduced over the batch.

    The symbolic reading is the textbook ``-sum_k Y_k log softmax(Z)_k`` with the log of the
    softmax written ``Z_k - log sum_j exp(Z_j)``; the NumPy reading is the log-sum-exp form
    ``logsumexp(Z) - sum_k Y_k Z_k``, equal to it when ``sum_k Y_k = 1`` (a proven identity).
    """

    printing: ClassVar[Printing] = Printing(MULTIPLICATIVE)

    logits: Expr
    target: Expr
    reduction: str

    @property
    def shape(self) -> tx.Shape:
        _require(_rows("cross_entropy", self.logits) == self.target.shape, "cross_entropy: shapes")
        return ()

    def read_symbolic(self, reading) -> np.ndarray:
        z, y = reading(self.logits), reading(self.target)
        per_sample = []
        for b in range(z.shape[0]):
            log_total = sp.log(sum_of([sp.exp(v) for v in z[b]]))
            per_sample.append(sp.Add(*[-y[b, k] * (z[b, k] - log_total) for k in range(z.shape[1])]))
        total = sp.Add(*per_sample)
        if self.reduction == "mean":
            total = total / z.shape[0]
        return np.array(total, dtype=object)

    def read_text(self, reading) -> str:
        return f"{self.reduction} CE(softmax({reading(self.logits)}), {reading(self.target)})"

    def read_numpy(self, reading) -> str:
        call = reading.carried_call(
            "softmax_cross_entropy",
            CROSS_ENTROPY_HELPER,
            reading.number(self.logits),
            reading.number(self.target),
        )
        return f"{call} / N" if self.reduction == "mean" else call

    @staticmethod
    def latex_steps(z: str, y: str, a: str, label: str) -> list[tuple[str, str, str | None]]:
        """The per-sample loss differentiated at the logits; the last equality is the identity obligation."""
        return [
            (
                r"\ell",
                rf"= -\sum_{{k}} {{{y}}}_{{k}} \log {{{a}}}_{{k}}, \qquad {{{a}}}_{{k}} = \frac{{e^{{{{{z}}}_{{k}}}}}}{{\sum_{{i}} e^{{{{{z}}}_{{i}}}}}}",
                None,
            ),
            (
                rf"\frac{{\partial \ell}}{{\partial {{{z}}}_{{j}}}}",
                rf"= -\sum_{{k}} {{{y}}}_{{k}} \left(\delta_{{kj}} - {{{a}}}_{{j}}\right) = {{{a}}}_{{j}} \sum_{{k}} {{{y}}}_{{k}} - {{{y}}}_{{j}} = {{{a}}}_{{j}} - {{{y}}}_{{j}}",
                label,
            ),
        ]

    def read_latex(self, reading) -> str:
        y, z = reading._sample(self.target), reading._sample(self.logits)
        over = reading._reduce(self.reduction)
        return rf"-{over} \sum_{{k}} {{{y}}}_{{k}} \log \operatorname{{softmax}}({z})_{{k}}"


SOFTMAX_HELPER = '''
def softmax(z):
    """Softmax of each row, exp taken only of z - max(z) <= 0, so it never overflows."""
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)
'''

CROSS_ENTROPY_HELPER = '''
def softmax_cross_entropy(z, y):
    """Summed cross-entropy of softmax(z) against rows y, from the logits: logsumexp(z) - y . z.

    Equal to -sum_k y_k log softmax(z)_k when every row of y sums to 1 (a proven identity), but
    never takes log(0) and never overflows: the log-sum-exp is shifted by each row's maximum.
    """
    top = z.max(axis=1, keepdims=True)
    logsumexp = top[:, 0] + np.log(np.exp(z - top).sum(axis=1))
    return np.sum(logsumexp - (y * z).sum(axis=1))
'''


# ----------------------------------------------------- strided correlation


def _strided_out(size: int, kernel: int, stride: int) -> int:
    return (size - kernel) // stride + 1


@dataclass(frozen=True)
class StridedCorrelate(Expr):
    """Valid cross-correlation with a stride, floor mode.

    ``x`` (N, C, H, W) with kernel (F, C, kh, kw) gives (N, F, (H-kh)//s+1, (W-kw)//s+1),
    ``out[b,f,i,j] = sum_{c,m,n} x[b,c,s i+m,s j+n] k[f,c,m,n]``.
    """

    printing: ClassVar[Printing] = Printing(ATOM)

    x: Expr
    kernel: Expr
    stride: int

    @property
    def shape(self) -> tx.Shape:
        n, c, h, w = _spatial("strided correlate", self.x)
        ks = self.kernel.shape
        _require(len(ks) == 4 and ks[1] == c and ks[2] <= h and ks[3] <= w, f"strided correlate: {ks}")
        return (n, ks[0], _strided_out(h, ks[2], self.stride), _strided_out(w, ks[3], self.stride))

    def read_symbolic(self, reading) -> np.ndarray:
        x, k, s = reading(self.x), reading(self.kernel), self.stride
        out = np.empty(_concrete(self.shape, reading.batch), dtype=object)
        _, channels, kh, kw = k.shape
        for b, f, i, j in np.ndindex(out.shape):
            out[b, f, i, j] = sum_of(
                [
                    x[b, c, s * i + m, s * j + n] * k[f, c, m, n]
                    for c in range(channels)
                    for m in range(kh)
                    for n in range(kw)
                ]
            )
        return out

    def read_text(self, reading) -> str:
        return f"correlate({reading(self.x)}, {reading(self.kernel)}, stride={self.stride})"

    def read_numpy(self, reading) -> str:
        args = (reading.number(self.x), reading.number(self.kernel), str(self.stride))
        return reading.carried_call("correlate_strided", STRIDED_HELPER, *args)

    def read_latex(self, reading) -> str:
        head = rf"\operatorname{{corr}}_{{{self.stride}}}"
        return reading.apply(head, reading(self.x), reading(self.kernel))

    @staticmethod
    def latex_definition(sample: str) -> tuple[str, str]:
        b = sample
        return (
            rf"\operatorname{{corr}}_{{s}}(X, K)_{{{b},k,i,j}} = \sum_{{c,m,n}} X_{{{b},c,si+m,sj+n}}\, K_{{k,c,m,n}}",
            r"cross-correlation with stride $s$ (floor mode: rows and columns no window reaches are left out)",
        )


@dataclass(frozen=True)
class StridedWeightGrad(Expr):
    """Weight gradient of a strided correlation: (F, C, kh, kw).

    ``out[f,c,m,n] = sum_{b,i,j} x[b,c,s i+m,s j+n] g[b,f,i,j]``.
    """

    printing: ClassVar[Printing] = Printing(ATOM)

    x: Expr
    grad: Expr
    stride: int
    kernel: tuple[int, int]

    @property
    def shape(self) -> tx.Shape:
        n, c, h, w = _spatial("strided weight gradient", self.x)
        gs = self.grad.shape
        kh, kw = self.kernel
        s = self.stride
        _require(len(gs) == 4 and gs[0] == BATCH, f"strided weight gradient: {gs}")
        _require(s * (gs[2] - 1) + kh <= h and s * (gs[3] - 1) + kw <= w, f"strided weight gradient: {gs}")
        return (gs[1], c, kh, kw)

    def read_symbolic(self, reading) -> np.ndarray:
        x, g, s = reading(self.x), reading(self.grad), self.stride
        out = np.empty(self.shape, dtype=object)
        _, _, gh, gw = g.shape
        for f, c, m, n in np.ndindex(out.shape):
            out[f, c, m, n] = sum_of(
                [
                    x[b, c, s * i + m, s * j + n] * g[b, f, i, j]
                    for b in range(x.shape[0])
                    for i in range(gh)
                    for j in range(gw)
                ]
            )
        return out

    def read_text(self, reading) -> str:
        return f"correlate({reading(self.x)}, {reading(self.grad)}, stride={self.stride})"

    def read_numpy(self, reading) -> str:
        kh, kw = self.kernel
        args = (reading.number(self.x), reading.number(self.grad), str(self.stride), str(kh), str(kw))
        return reading.carried_call("correlate_strided_weight", STRIDED_WEIGHT_HELPER, *args)

    def read_latex(self, reading) -> str:
        head = rf"\operatorname{{corr}}_{{{self.stride}}}"
        return reading.apply(head, reading(self.x), reading(self.grad))

    @staticmethod
    def latex_definition(sample: str) -> tuple[str, str]:
        b = sample
        return (
            rf"\operatorname{{corr}}_{{s}}(X, G)_{{k,c,m,n}} = \sum_{{{b},i,j}} X_{{{b},c,si+m,sj+n}}\, G_{{{b},k,i,j}}",
            "with a batched gradient in place of the filters: the filter gradient of a strided correlation",
        )


@dataclass(frozen=True)
class TransposedConvolve(Expr):
    """Input gradient of a strided correlation: the transposed convolution of ``grad`` with ``kernel``.

    ``out[b,c,h,w] = sum_{f,i,j,m,n : s i+m = h, s j+n = w} g[b,f,i,j] k[f,c,m,n]``, shape
    (N, C, height, width); rows and columns no window reached (floor mode) get 0.
    """

    printing: ClassVar[Printing] = Printing(ATOM)

    grad: Expr
    kernel: Expr
    stride: int
    size: tuple[int, int]  # (height, width) of the correlated input

    @property
    def shape(self) -> tx.Shape:
        gs, ks = self.grad.shape, self.kernel.shape
        _require(len(gs) == 4 and len(ks) == 4 and gs[1] == ks[0], f"transposed convolve: {gs}, {ks}")
        h, w = self.size
        _require(_strided_out(h, ks[2], self.stride) == gs[2], f"transposed convolve: {gs} from {h}")
        _require(_strided_out(w, ks[3], self.stride) == gs[3], f"transposed convolve: {gs} from {w}")
        return (BATCH, ks[1], h, w)

    def read_symbolic(self, reading) -> np.ndarray:
        g, k, s = reading(self.grad), reading(self.kernel), self.stride
        filters, _, kh, kw = k.shape
        _, _, gh, gw = g.shape
        out = np.empty(_concrete(self.shape, reading.batch), dtype=object)
        for b, c, h, w in np.ndindex(out.shape):
            out[b, c, h, w] = sum_of(
                [
                    g[b, f, (h - m) // s, (w - n) // s] * k[f, c, m, n]
                    for f in range(filters)
                    for m in range(kh)
                    for n in range(kw)
                    if (h - m) % s == 0
                    and (w - n) % s == 0
                    and 0 <= (h - m) // s < gh
                    and 0 <= (w - n) // s < gw
                ]
            )
        return out

    def read_text(self, reading) -> str:
        return f"transposed_convolve({reading(self.grad)}, {reading(self.kernel)}, stride={self.stride})"

    def read_numpy(self, reading) -> str:
        h, w = self.size
        args = (reading.number(self.grad), reading.number(self.kernel), str(self.stride), str(h), str(w))
        return reading.carried_call("transposed_convolve", TRANSPOSED_HELPER, *args)

    def read_latex(self, reading) -> str:
        head = rf"\operatorname{{conv}}^{{\top}}_{{{self.stride}}}"
        return reading.apply(head, reading(self.grad), reading(self.kernel))

    @staticmethod
    def latex_definition(sample: str) -> tuple[str, str]:
        b = sample
        return (
            rf"\operatorname{{conv}}^{{\top}}_{{s}}(G, K)_{{{b},c,h,w}} = "
            rf"\sum_{{k,i,j,m,n \,:\, si+m=h,\ sj+n=w}} G_{{{b},k,i,j}}\, K_{{k,c,m,n}}",
            "transposed convolution with stride $s$: each output gradient spreads through the filter "
            "back onto the window it was computed from",
        )


STRIDED_HELPER = '''
def correlate_strided(x, w, stride):
    """Valid cross-correlation with a stride, floor mode: (N, C, H, W) with (F, C, kh, kw).

    out[n, f, i, j] = sum_{c, m, k} x[n, c, s i + m, s j + k] w[f, c, m, k], s = stride: the
    kernels times the strided windows of x (a view, copied once into columns).
    """
    n, c, h, w_ = x.shape
    f, _, kh, kw = w.shape
    oh, ow = (h - kh) // stride + 1, (w_ - kw) // stride + 1
    s0, s1, s2, s3 = x.strides
    windows = as_strided(x, (n, c, kh, kw, oh, ow), (s0, s1, s2, s3, s2 * stride, s3 * stride))
    columns = windows.reshape(n, c * kh * kw, oh * ow)
    return (w.reshape(f, -1) @ columns).reshape(n, f, oh, ow)
'''

STRIDED_WEIGHT_HELPER = '''
def correlate_strided_weight(x, g, stride, kh, kw):
    """Filter gradient of a strided correlation: out[f, c, m, k] = sum_{n, i, j} x[n, c, s i + m, s j + k] g[n, f, i, j]."""
    n, c, _, _ = x.shape
    _, f, oh, ow = g.shape
    s0, s1, s2, s3 = x.strides
    windows = as_strided(x, (n, c, kh, kw, oh, ow), (s0, s1, s2, s3, s2 * stride, s3 * stride))
    columns = windows.reshape(n, c * kh * kw, oh * ow)
    return (g.reshape(n, f, oh * ow) @ columns.transpose(0, 2, 1)).sum(axis=0).reshape(f, c, kh, kw)
'''

TRANSPOSED_HELPER = '''
def transposed_convolve(g, w, stride, height, width):
    """Input gradient of a strided correlation: each g[n, f, i, j] w[f, c, m, k] added at (s i + m, s j + k).

    One matrix product per kernel position (m, k), added into the strided rows and columns it
    reaches; rows and columns no window reached (floor mode) stay 0.
    """
    n, f, oh, ow = g.shape
    _, c, kh, kw = w.shape
    out = np.zeros((n, c, height, width), dtype=np.result_type(g, w))
    rows = g.transpose(0, 2, 3, 1)  # (n, oh, ow, f)
    for m in range(kh):
        for k in range(kw):
            spread = (rows @ w[:, :, m, k]).transpose(0, 3, 1, 2)  # (n, c, oh, ow)
            out[:, :, m : m + stride * oh : stride, k : k + stride * ow : stride] += spread
    return out
'''

CARRIED = (
    Pad,
    Crop,
    AvgPool,
    SpreadAvg,
    Softmax,
    SoftmaxVJP,
    SoftmaxCrossEntropy,
    StridedCorrelate,
    StridedWeightGrad,
    TransposedConvolve,
)
