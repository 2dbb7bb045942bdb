"""The NumPy reading of the expression language: each operation as vectorised source text.

Arrays are batch-first, ``(N, C, H, W)`` or ``(N, D)``. Operations that take
more than one line print a call to a helper; ``HELPERS`` holds the helper
definitions (part of this reading), and the emitter copies into a generated
module exactly the ones its network uses, in a fixed order.
"""

from __future__ import annotations

from derive import texpr as tx


def _wrap(text: str) -> str:
    """Parenthesise a compound operand so precedence never depends on context."""
    simple = text.replace("_", "").replace(".", "").isalnum() or (text.endswith(")") and text.count("(") == 1)
    return text if simple else f"({text})"


class NumpyReading:
    """Expr -> NumPy source; records which helpers the printed code calls."""

    def __init__(self) -> None:
        self.helpers: set[str] = set()

    def __call__(self, expr: tx.Expr) -> str:
        return getattr(self, f"read_{type(expr).__name__}")(expr)

    def _call(self, helper: str, *args: str) -> str:
        self.helpers.add(helper)
        return f"{helper}({', '.join(args)})"

    def read_Tensor(self, e: tx.Tensor) -> str:
        return e.name

    def read_Correlate(self, e: tx.Correlate) -> str:
        helper = "correlate_weight" if e.weight_form else "correlate"
        return self._call(helper, self(e.x), self(e.kernel))

    def read_FullConvolve(self, e: tx.FullConvolve) -> str:
        self.helpers.add("correlate")
        return self._call("full_convolve", self(e.grad), self(e.kernel))

    def read_MatMul(self, e: tx.MatMul) -> str:
        return f"{_wrap(self(e.a))} @ {_wrap(self(e.b))}"

    def read_Transpose(self, e: tx.Transpose) -> str:
        return f"{_wrap(self(e.a))}.T"

    def read_Reshape(self, e: tx.Reshape) -> str:
        a = _wrap(self(e.a))
        dims = ", ".join(str(d) for d in e.dims[1:])
        return f"{a}.reshape({a}.shape[0], {dims})"

    def read_SumAxes(self, e: tx.SumAxes) -> str:
        axes = e.axes[0] if len(e.axes) == 1 else e.axes
        return f"{_wrap(self(e.a))}.sum(axis={axes})"

    def read_AddBias(self, e: tx.AddBias) -> str:
        rank = len(e.shape)
        index = "" if rank == 2 else "[:, " + ", ".join(["None"] * (rank - 2)) + "]"
        return f"{self(e.a)} + {self(e.bias)}{index}"

    def read_Product(self, e: tx.Product) -> str:
        return f"{_wrap(self(e.a))} * {_wrap(self(e.b))}"

    def read_Difference(self, e: tx.Difference) -> str:
        return f"{self(e.a)} - {_wrap(self(e.b))}"

    def read_OneMinus(self, e: tx.OneMinus) -> str:
        return f"1 - {_wrap(self(e.a))}"

    def read_BatchScale(self, e: tx.BatchScale) -> str:
        inner = self(e.a)
        return f"{_wrap(inner)} / N" if e.reduction == "mean" else inner

    def read_Relu(self, e: tx.Relu) -> str:
        return f"np.maximum({self(e.a)}, 0)"

    def read_StepMask(self, e: tx.StepMask) -> str:
        return f"({self(e.a)} > 0)"

    def read_Sigmoid(self, e: tx.Sigmoid) -> str:
        return self._call("sigmoid", self(e.a))

    def read_MaxPool(self, e: tx.MaxPool) -> str:
        return self._call("maxpool", self(e.a), str(e.size))

    def read_RouteMax(self, e: tx.RouteMax) -> str:
        self.helpers.add("maxpool")
        return self._call("route_max", self(e.a), self(e.grad), str(e.size))

    def _reduced(self, total: str, reduction: str) -> str:
        return f"{total} / N" if reduction == "mean" else total

    def read_BinaryCrossEntropyWithLogits(self, e: tx.BinaryCrossEntropyWithLogits) -> str:
        return self._reduced(self._call("bce_with_logits", self(e.logits), self(e.target)), e.reduction)

    def read_HalfSquaredError(self, e: tx.HalfSquaredError) -> str:
        return self._reduced(f"0.5 * np.sum(({self(e.output)} - {self(e.target)}) ** 2)", e.reduction)


HELPERS: dict[str, str] = {
    "sigmoid": '''
def sigmoid(z):
    """Logistic function that never overflows: exp is only taken of -|z|."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))
''',
    "correlate": '''
def correlate(x, w):
    """Valid cross-correlation, stride 1: (N, C, H, W) with (F, C, kh, kw) -> (N, F, H-kh+1, W-kw+1).

    out[n, f, i, j] = sum_{c, m, k} x[n, c, i+m, j+k] w[f, c, m, k]: the sliding windows laid out
    as rows (im2col), times the kernels, in one BLAS matrix product.
    """
    n, c, h, w_ = x.shape
    f, _, kh, kw = w.shape
    oh, ow = h - kh + 1, w_ - kw + 1
    windows = sliding_window_view(x, (kh, kw), axis=(2, 3))  # (N, C, oh, ow, kh, kw)
    rows = windows.transpose(0, 2, 3, 1, 4, 5).reshape(n * oh * ow, c * kh * kw)
    return (rows @ w.reshape(f, -1).T).reshape(n, oh, ow, f).transpose(0, 3, 1, 2)
''',
    "correlate_weight": '''
def correlate_weight(x, g):
    """Weight gradient: correlate each input channel with each output gradient, summed over the batch.

    out[f, c, m, k] = sum_{n, i, j} x[n, c, i+m, j+k] g[n, f, i, j] -> (F, C, kh, kw), as one
    BLAS matrix product of the gradients with the input windows.
    """
    n, c, h, w_ = x.shape
    f, gh, gw = g.shape[1:]
    kh, kw = h - gh + 1, w_ - gw + 1
    windows = sliding_window_view(x, (gh, gw), axis=(2, 3))  # (N, C, kh, kw, gh, gw)
    columns = windows.transpose(1, 2, 3, 0, 4, 5).reshape(c * kh * kw, n * gh * gw)
    return (g.transpose(1, 0, 2, 3).reshape(f, -1) @ columns.T).reshape(f, c, kh, kw)
''',
    "full_convolve": '''
def full_convolve(g, w):
    """Input gradient: full convolution of g (N, F, H', W') with w (F, C, kh, kw) -> (N, C, H, W).

    The correlation of g, zero-padded by kh-1 and kw-1, with the kernel turned 180 degrees.
    """
    kh, kw = w.shape[2:]
    padded = np.pad(g, ((0, 0), (0, 0), (kh - 1, kh - 1), (kw - 1, kw - 1)))
    return correlate(padded, w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
''',
    "maxpool": '''
def maxpool(a, size):
    """Maximum of each non-overlapping size x size window (stride = size).

    An element-wise maximum over the size * size strided views, one per window position.
    """
    out = a[:, :, ::size, ::size]
    for p in range(size):
        for q in range(size):
            if p or q:
                out = np.maximum(out, a[:, :, p::size, q::size])
    return out
''',
    "route_max": '''
def route_max(a, g, size):
    """Max-pool routing: each window's gradient goes to its first maximum in row-major order.

    Window positions are visited in row-major order; a position receives the gradient when it
    holds the maximum and no earlier position did, so a tied window routes like torch's max_pool2d.
    """
    pooled = maxpool(a, size)
    routed = np.zeros(a.shape, dtype=g.dtype)
    unrouted = np.ones(pooled.shape, dtype=bool)
    for p in range(size):
        for q in range(size):
            first = unrouted & (a[:, :, p::size, q::size] == pooled)
            routed[:, :, p::size, q::size] = g * first
            unrouted &= ~first
    return routed
''',
    "bce_with_logits": '''
def bce_with_logits(z, y):
    """Summed binary cross-entropy of sigmoid(z) against y, from the logit: log(1 + e^z) - y z.

    Equal to -(y log a + (1 - y) log(1 - a)) with a = sigmoid(z) (a proven identity), but
    never takes log(0) and never overflows.
    """
    return np.sum(np.logaddexp(0, z) - y * z)
''',
}
HELPER_ORDER = [
    "sigmoid",
    "correlate",
    "correlate_weight",
    "full_convolve",
    "maxpool",
    "route_max",
    "bce_with_logits",
]
