"""The NumPy reading of the expression language: each operation as vectorised source text.

Arrays are batch-first, ``(N, C, H, W)`` or ``(N, D)``. Operations that take
more than one line print a call to a helper; ``HELPERS`` holds the helper
definitions (part of this reading), and the emitter copies into a generated
module exactly the ones its network uses, in a fixed order.
"""

from __future__ import annotations

from gradproof.derive import texpr as tx


class NumpyReading:
    """Expr -> NumPy source; records which helpers the printed code calls.

    Brackets follow the tree (``texpr.Printing``): a compound operand of a product, a postfix or a
    right-hand side of a difference is bracketed unless it binds at least as tightly as a postfix.
    """

    name = "numpy"

    def __init__(self) -> None:
        self.helpers: set[str] = set()
        self.carried: dict[
            str, str
        ] = {}  # helpers of operations declared outside this reading: name -> source

    def __call__(self, expr: tx.Expr) -> str:
        return tx.reading_method(self, expr)(expr)

    def _operand(self, operand: tx.Expr, parent: tx.Expr, loosest: int = tx.POSTFIX) -> str:
        printed = self.number(operand)
        return f"({printed})" if tx.brackets_needed(operand, parent, loosest) else printed

    def number(self, expr: tx.Expr) -> str:
        """``expr`` where arithmetic other than a product reads it: a step mask as numbers, not booleans.

        ``(Z > 0)`` is a boolean array; a product with it is exact, but NumPy refuses to subtract
        booleans and adds them as a logical or, so elsewhere the mask prints as ``np.heaviside``.
        """
        inner = expr
        while isinstance(inner, tx.BatchScale) and inner.reduction == "sum":  # prints as its operand
            inner = inner.a
        if isinstance(inner, tx.StepMask):
            return f"np.heaviside({self.number(inner.a)}, 0)"
        return self(expr)

    def _call(self, helper: str, *args: str) -> str:
        self.helpers.add(helper)
        return f"{helper}({', '.join(args)})"

    def carried_call(self, helper: str, source: str, *args: str) -> str:
        """A call to a helper that an operation declared elsewhere carries with its own NumPy reading."""
        self.carried[helper] = source
        return self._call(helper, *args)

    def read_Tensor(self, e: tx.Tensor) -> str:
        return e.name

    def read_Correlate(self, e: tx.Correlate) -> str:
        helper = "correlate_weight" if e.weight_form else "correlate"
        self.helpers.update(("im2col", "sample_blocks"))
        return self._call(helper, self.number(e.x), self.number(e.kernel))

    def read_FullConvolve(self, e: tx.FullConvolve) -> str:
        self.helpers.update(("correlate", "im2col", "sample_blocks"))
        return self._call("full_convolve", self.number(e.grad), self.number(e.kernel))

    def read_MatMul(self, e: tx.MatMul) -> str:
        """``a @ b``; an outer product (inner dimension 1) as ``a * b``, the same single product per
        entry without BLAS's call overhead (0.9 ms for dZ2 @ W2.T at batch 256 on the MNIST network)."""
        if e.a.shape[1] == 1:
            return f"{self._operand(e.a, e)} * {self._operand(e.b, e)}"
        return f"{self._operand(e.a, e)} @ {self._operand(e.b, e)}"

    def read_Transpose(self, e: tx.Transpose) -> str:
        return f"{self._operand(e.a, e)}.T"

    def read_Reshape(self, e: tx.Reshape) -> str:
        dims = ", ".join(str(d) for d in e.dims[1:])
        if isinstance(e.a, tx.Tensor):
            return f"{e.a.name}.reshape({e.a.name}.shape[0], {dims})"
        return f"{self._operand(e.a, e)}.reshape(-1, {dims})"

    def read_SumAxes(self, e: tx.SumAxes) -> str:
        axes = e.axes[0] if len(e.axes) == 1 else e.axes
        return f"{self._operand(e.a, e)}.sum(axis={axes})"

    def read_AddBias(self, e: tx.AddBias) -> str:
        rank = len(e.shape)
        index = "" if rank == 2 else "[:, " + ", ".join(["None"] * (rank - 2)) + "]"
        return f"{self._operand(e.a, e, tx.ADDITIVE)} + {self._operand(e.bias, e)}{index}"

    def read_Product(self, e: tx.Product) -> str:
        factors = [self(o) if isinstance(o, tx.StepMask) else self._operand(o, e) for o in (e.a, e.b)]
        if all(isinstance(o, tx.StepMask) for o in (e.a, e.b)):
            factors[0] = self.number(e.a)  # a product of two masks would be a boolean mask
        return " * ".join(factors)

    def read_Difference(self, e: tx.Difference) -> str:
        return f"{self._operand(e.a, e, tx.ADDITIVE)} - {self._operand(e.b, e)}"

    def read_OneMinus(self, e: tx.OneMinus) -> str:
        return f"1 - {self._operand(e.a, e)}"

    def read_BatchScale(self, e: tx.BatchScale) -> str:
        if e.reduction == "mean":
            return f"{self._operand(e.a, e)} / N"
        return self(e.a)

    def read_Relu(self, e: tx.Relu) -> str:
        return f"np.maximum({self.number(e.a)}, 0)"

    def read_StepMask(self, e: tx.StepMask) -> str:
        return f"({self.number(e.a)} > 0)"

    def read_Sigmoid(self, e: tx.Sigmoid) -> str:
        return self._call("sigmoid", self.number(e.a))

    def read_Tanh(self, e: tx.Tanh) -> str:
        return f"np.tanh({self.number(e.a)})"

    def read_MaxPool(self, e: tx.MaxPool) -> str:
        return self._call("maxpool", self.number(e.a), str(e.size))

    def read_RouteMax(self, e: tx.RouteMax) -> str:
        self.helpers.update(("first_max", "sample_blocks"))
        return self._call("route_max", self.number(e.a), self.number(e.grad), str(e.size))

    def _reduced(self, total: str, reduction: str) -> str:
        return f"{total} / N" if reduction == "mean" else total

    def read_BinaryCrossEntropyWithLogits(self, e: tx.BinaryCrossEntropyWithLogits) -> str:
        call = self._call("bce_with_logits", self.number(e.logits), self.number(e.target))
        return self._reduced(call, e.reduction)

    def read_HalfSquaredError(self, e: tx.HalfSquaredError) -> str:
        error = f"{self._operand(e.output, e, tx.ADDITIVE)} - {self._operand(e.target, e)}"
        return self._reduced(f"0.5 * np.sum(({error}) ** 2)", e.reduction)


HELPERS: dict[str, str] = {
    "sigmoid": '''
def sigmoid(z):
    """Logistic function that never overflows: exp is only taken of -|z|."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1, e) / (1 + e)
''',
    "sample_blocks": '''
def sample_blocks(x):
    """Slices of consecutive samples of x, each about 2**18 numbers of it.

    Helpers that make large temporaries work one block of samples at a time, so that the
    temporaries stay in cache and never add up to a second copy of the batch. Blocks of 2**18
    (the size of loss_and_grads' chunks), not smaller: each NumPy call lets go of the GIL and
    takes it back, and with chunks in parallel threads more, smaller calls cost more than the
    cache saves (measured).
    """
    step = max(1, 262144 // x[0].size)  # 2**18
    return [slice(start, start + step) for start in range(0, len(x), step)]
''',
    "im2col": '''
def im2col(x, oh, ow):
    """The im2col columns of x for an oh x ow correlation output, a block of samples at a time.

    Yields (samples, columns) with columns[s, (c, m, k), (i, j)] = x[samples][s, c, i+m, j+k]:
    one row per kernel entry (c, m, k), holding the input shifted by (m, k).
    """
    _, c, h, w = x.shape
    kh, kw = h - oh + 1, w - ow + 1
    shifted = as_strided(x, x.shape[:2] + (kh, kw, oh, ow), x.strides + x.strides[2:])  # a view
    for samples in sample_blocks(shifted):
        yield samples, shifted[samples].reshape(-1, c * kh * kw, oh * ow)
''',
    "correlate": '''
def correlate(x, w):
    """Valid cross-correlation, stride 1: (N, C, H, W) with (F, C, kh, kw) -> (N, F, H-kh+1, W-kw+1).

    out[n, f, i, j] = sum_{c, m, k} x[n, c, i+m, j+k] w[f, c, m, k]: for each block of samples,
    the kernels times the im2col columns, one BLAS matrix product per sample, written straight
    into the output.
    """
    n, _, h, w_ = x.shape
    f, _, kh, kw = w.shape
    oh, ow = h - kh + 1, w_ - kw + 1
    kernels = w.reshape(f, -1)
    out = np.empty((n, f, oh, ow), dtype=np.result_type(x, w))
    rows = out.reshape(n, f, oh * ow)
    for samples, columns in im2col(x, oh, ow):
        np.matmul(kernels, columns, out=rows[samples])
    return out
''',
    "correlate_weight": '''
def correlate_weight(x, g):
    """Weight gradient: correlate each input channel with each output gradient, summed over the batch.

    out[f, c, m, k] = sum_{n, i, j} x[n, c, i+m, j+k] g[n, f, i, j] -> (F, C, kh, kw): for each
    block of samples, the gradients times the transposed im2col columns, one BLAS matrix product
    per sample, summed.
    """
    _, c, h, w_ = x.shape
    n, f, gh, gw = g.shape
    kh, kw = h - gh + 1, w_ - gw + 1
    grads = g.reshape(n, f, gh * gw)
    out = np.zeros((f, c * kh * kw), dtype=np.result_type(x, g))
    for samples, columns in im2col(x, gh, gw):
        out += (grads[samples] @ columns.transpose(0, 2, 1)).sum(axis=0)
    return out.reshape(f, c, kh, kw)
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

    The element-wise maximum of the size * size strided views, one per position in the window.
    """
    windows = [a[:, :, p::size, q::size] for p in range(size) for q in range(size)]
    out = np.maximum(windows[0], windows[-1])
    for window in windows[1:-1]:
        np.maximum(out, window, out=out)
    return out
''',
    "first_max": '''
def first_max(candidates):
    """Element-wise maximum of equally shaped arrays, and the index (uint8) of the first that holds it.

    A later candidate takes over only where it is strictly greater, so a tie keeps the earlier one.
    """
    best = candidates[0]
    index = np.zeros(best.shape, dtype=np.uint8)
    for k, candidate in enumerate(candidates[1:], 1):
        np.maximum(index, (candidate > best) * np.uint8(k), out=index)
        best = np.maximum(best, candidate)
    return best, index
''',
    "route_max": '''
def route_max(a, g, size):
    """Max-pool routing: each window's gradient goes to its first maximum in row-major order.

    Row-major order decides the row first: along each row of a window, the column of the row's
    first maximum; over the rows' maxima, the row of the window's first maximum (ties keep the
    earlier candidate, so a tied window routes like torch's max_pool2d). The gradient of each
    window goes to that row, then within the row to that column; a block of samples at a time.
    """
    _, c, h, w = a.shape
    routed = np.empty(a.shape, dtype=g.dtype)
    for samples in sample_blocks(a):
        columns = a[samples].reshape(-1, size).T.copy()  # columns[q]: entry q of each window row
        row_max, column = first_max(columns)
        rows = row_max.reshape(-1, c, h // size, size, w // size)  # rows[:, :, :, p]: window row p
        _, row = first_max([rows[:, :, :, p] for p in range(size)])
        row_grads = np.empty(rows.shape, dtype=g.dtype)
        for p in range(size):
            np.multiply(g[samples], row == p, out=row_grads[:, :, :, p])
        entries = routed[samples].reshape(column.size, size)
        for q in range(size):
            np.multiply(row_grads.reshape(column.shape), column == q, out=entries[:, q])
    return routed
''',
    "patch_index": '''
@cache
def patch_index(shape, kh, kw, size):
    """Where pooled_patches reads: index[(c, u, v), (I, J)] is the position of x[c, size*I + u, size*J + v]
    among a sample's entries, u < kh + size - 1 and v < kw + size - 1; the last row points at a 1
    appended to them. One array per input shape, computed once.
    """
    c, h, w = shape
    ph, pw = (h - kh + 1) // size, (w - kw + 1) // size
    ci, u, v, i, j = np.ix_(range(c), range(kh + size - 1), range(kw + size - 1), range(ph), range(pw))
    index = ((ci * h + size * i + u) * w + size * j + v).reshape(-1, ph * pw)
    return np.concatenate([index, np.full((1, ph * pw), c * h * w)])
''',
    "pooled_patches": '''
def pooled_patches(x, kh, kw, size):
    """The input patch under each size x size pooling window of a kh x kw correlation, and a 1.

    patches[(c, u, v), (I, J, n)] = x[n, c, size*I + u, size*J + v] for u < kh + size - 1 and
    v < kw + size - 1 (every input entry that the window's size * size outputs read), and
    patches[-1] = 1 (the bias's row): one column per window, the samples innermost, so that the
    gather copies rows of all the samples at once.
    """
    n = len(x)
    index = patch_index(x.shape[1:], kh, kw, size)
    entries = np.empty((x[0].size + 1, n), dtype=x.dtype)
    entries[:-1] = x.reshape(n, -1).T
    entries[-1] = 1
    return np.take(entries, index, axis=0).reshape(len(index), -1)
''',
    "window_kernels": '''
def window_kernels(w, b, size):
    """The kernels of a pooling window's size * size correlation outputs, one row each, and the biases.

    kernels[(p, q, f), (c, u, v)] = w[f, c, u - p, v - q] where 0 <= u - p < kh and 0 <= v - q < kw,
    else 0, so that row (p, q, f) times a column of pooled_patches is the output of filter f at
    entry (p, q) of that window; the last column, times the patches' 1, adds b[f].
    """
    f, c, kh, kw = w.shape
    taps = np.zeros((size, size, f, c, kh + size - 1, kw + size - 1), dtype=w.dtype)
    for p in range(size):
        for q in range(size):
            taps[p, q, :, :, p : p + kh, q : q + kw] = w
    bias = np.broadcast_to(b, (size, size, f)).reshape(-1, 1)
    return np.concatenate([taps.reshape(size * size * f, -1), bias], axis=1)
''',
    "window_correlation": '''
def window_correlation(patches, w, b, size):
    """The correlation plus bias at every entry of every pooling window, one matrix product.

    out[(p, q), f, (I, J, n)] = output of filter f at (size*I + p, size*J + q) of sample n: the
    window's entries first, so that each entry's outputs are one contiguous block.
    """
    return (window_kernels(w, b, size) @ patches).reshape(size * size, w.shape[0], -1)
''',
    "window_max": '''
def window_max(z):
    """The maximum over axis 0 (a window's entries in row-major order) and the first entry holding it.

    A tournament of strict comparisons: of two neighbouring groups of entries, the later one wins
    only where its maximum is strictly greater, so a tie keeps the earlier entry.
    """
    best, index = z, np.arange(len(z), dtype=np.uint8).reshape(-1, *[1] * (z.ndim - 1))
    while len(best) > 1:
        paired = len(best) // 2 * 2
        earlier, later = best[0:paired:2], best[1:paired:2]
        won = (later > earlier).view(np.uint8)  # 1 where the later group wins
        kept = index[0:paired:2] + won * (index[1:paired:2] - index[0:paired:2])
        maxima = np.maximum(earlier, later)
        if paired < len(best):  # an odd group out waits for the next round
            maxima = np.concatenate([maxima, best[paired:]])
            kept = np.concatenate([kept, np.broadcast_to(index[paired:], (1, *kept.shape[1:]))])
        best, index = maxima, kept
    return best[0], index[0]
''',
    "route_to_entries": '''
def route_to_entries(g, index, entries):
    """Each window's gradient at its kept entry: out[k, f, r] = g[f, r] where index[f, r] == k, else 0."""
    kept = index == np.arange(entries, dtype=index.dtype).reshape(-1, *[1] * index.ndim)
    return g * kept.view(np.uint8)
''',
    "window_weight_gradient": '''
def window_weight_gradient(patches, g, shape, size):
    """The gradients of w and b from g, the gradient of window_correlation's output: one matrix
    product gives that of window_kernels(w, b, size), where each weight and each bias sits in
    size * size places; the gradient of each is the sum over its places."""
    f, c, kh, kw = shape
    d = (patches @ g.reshape(-1, patches.shape[1]).T).T
    taps = d[:, :-1].reshape(size, size, f, c, kh + size - 1, kw + size - 1)
    dw = taps[0, 0, :, :, :kh, :kw].copy()
    for p in range(size):
        for q in range(size):
            if p or q:
                dw += taps[p, q, :, :, p : p + kh, q : q + kw]
    return dw, d[:, -1].reshape(size * size, f).sum(axis=0)
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
# The helpers of a pooled convolution computed one window at a time (codegen/numpy/fusion.py).
WINDOW_HELPERS = (
    "patch_index",
    "pooled_patches",
    "window_kernels",
    "window_correlation",
    "window_max",
    "route_to_entries",
    "window_weight_gradient",
)
HELPER_ORDER = [
    "sigmoid",
    "sample_blocks",
    "im2col",
    "correlate",
    "correlate_weight",
    "full_convolve",
    "maxpool",
    "first_max",
    "route_max",
    *WINDOW_HELPERS,
    "bce_with_logits",
]
