"""The loop reading of the expression language: each operation as an explicit loop nest over one sample.

The compiled module runs its kernels one sample at a time (``prange`` over blocks of samples), so
this reading prints, for a statement ``target = expr``, the loops that compute one sample's entries
of ``target``: a batched tensor ``T`` of shape ``(N, *s)`` is the sample's array ``T`` of shape
``s``; a parameter is the whole array; a gradient of a parameter (a result without the batch axis
that reads batched operands) is *accumulated* into the block's array, ``+=``, because the batch
sum is the sum of the samples' terms (the batch obligation of every network). Sizes are the
network's, printed as literals, so LLVM sees constant trip counts and unrolls and vectorises the
innermost loops (always over the last, contiguous axis).

Arithmetic keeps the array's precision: the kernels define ``zero``, ``one`` and the batch size
``n`` in the dtype of ``X`` (a bare ``1`` would turn float32 arithmetic into float64). Every entry
is a sum in a fixed order (the order of the index form: ``c, m, n`` for a correlation), and nothing
is reassociated (no fastmath), so results are reproducible bit for bit.

A max-pool whose input a later rule routes can *keep* the entry each window's maximum came from
(``keep``: tensor name -> the name of its array of positions, row-major in the window); the
routing then reads that entry instead of searching again (the rewrite ``routed-entry`` of
``derive.rewrites``), and a weight gradient of a routed gradient reads only the routed entries
(``routed-weight-gradient``).
"""

from __future__ import annotations

from gradproof.derive import operations as ops
from gradproof.derive import texpr as tx

INDENT = "    "
# Kernels over one input channel with at most this many taps (up to 7x7) are unrolled into named
# scalars; larger ones, and convolutions and weight gradients over several channels, loop over their
# taps (a routed weight gradient stays unrolled up to this many taps). Unrolled over several
# channels, lenet5's second convolution cost LLVM about 1.5 s of its cold compile (float32, five
# alternating cold compiles on the shared benchmark machine: 11.5 to 15 s unrolled, 10.8 to 12.4 s
# looped; a first, noisier comparison gave 13.8 against 9.5 s) for a step 2 to 30 % faster (both
# well ahead of the NumPy module).
MAX_UNROLLED_TAPS = 49


def unrolled(channels: int, kh: int, kw: int) -> bool:
    """Whether a kernel's taps are unrolled into named scalars (see MAX_UNROLLED_TAPS)."""
    return channels == 1 and kh * kw <= MAX_UNROLLED_TAPS


# A vector times a matrix of at least this many columns is summed row by row (vectorised over columns).
ROW_COLUMNS = 8


class UnsupportedFormError(ValueError):
    """An expression this reading has no per-sample loop form for (named in the message)."""


def _balanced(text: str) -> bool:
    """No prefix of ``text`` closes more brackets than it opened."""
    depth = 0
    for character in text:
        depth += {"(": 1, ")": -1}.get(character, 0)
        if depth < 0:
            return False
    return depth == 0


def _at(stride: int, index: str, offset: str) -> str:
    """``s * index + offset`` as printed (``index + offset`` for stride 1)."""
    return f"{index} + {offset}" if stride == 1 else f"{stride} * {index} + {offset}"


def indices(rank: int, stem: str = "i") -> list[str]:
    return [f"{stem}{k}" for k in range(rank)]


def nest(bounds: list[tuple[str, int | str]], body: list[str]) -> list[str]:
    """``for v in range(b):`` loops, outermost first, around ``body``."""
    lines: list[str] = []
    for depth, (variable, bound) in enumerate(bounds):
        lines.append(INDENT * depth + f"for {variable} in range({bound}):")
    return lines + [INDENT * len(bounds) + line for line in body]


class LoopReading:
    """Statement -> loop-nest source lines for one sample.

    ``batched``: names of tensors with a batch axis (the sample's slice inside a kernel);
    ``keep``: pooled tensor name -> the array of kept window positions; ``temporaries`` counts
    the arrays allocated for compound operands of operations that read whole arrays.
    """

    name = "loops"

    def __init__(self, keep: dict[str, str] | None = None) -> None:
        self.keep = keep or {}
        self.temporaries = 0

    # -------------------------------------------------------------- statements

    def __call__(self, expr: tx.Expr, out: str) -> list[str]:
        """Lines writing (or, for a parameter's gradient, adding) one sample's ``expr`` into ``out``."""
        method = getattr(self, f"read_{type(expr).__name__}", None)
        if method is None:  # an operation declared elsewhere may carry its own loop reading
            carried = getattr(expr, f"read_{self.name}", None)
            if carried is None:
                raise UnsupportedFormError(f"the loops reading has no read_{type(expr).__name__}")
            return carried(self, out)
        return method(expr, out)

    @staticmethod
    def batched(expr: tx.Expr) -> bool:
        return bool(expr.shape) and expr.shape[0] == tx.BATCH

    @classmethod
    def sample_shape(cls, expr: tx.Expr) -> tuple[int, ...]:
        shape = expr.shape[1:] if cls.batched(expr) else expr.shape
        return tuple(int(d) for d in shape)

    @classmethod
    def accumulates(cls, expr: tx.Expr) -> bool:
        """A result without batch axis that reads batched tensors: a sum over the batch, added to."""
        return not cls.batched(expr) and any(cls.batched(t) for t in tx.tensors_in(expr))

    def _assign(self, expr: tx.Expr) -> str:
        return "+=" if self.accumulates(expr) else "="

    def operand(self, expr: tx.Expr, lines: list[str]) -> str:
        """The name of an array holding ``expr`` for the sample: a tensor's own, else a temporary."""
        if isinstance(expr, tx.Tensor):
            return expr.name
        name = f"t{self.temporaries}"
        self.temporaries += 1
        if isinstance(expr, ops.Crop) and isinstance(expr.a, tx.Tensor):  # a view, no copy
            (top, bottom), (left, right) = expr.pads
            _, h, w = self.sample_shape(expr.a)
            lines.append(f"{name} = {expr.a.name}[:, {top}:{h - bottom}, {left}:{w - right}]")
            return name
        shape = self.sample_shape(expr)
        lines.append(f"{name} = np.empty({shape!r}, X.dtype)")
        lines += self(expr, name)
        return name

    # ------------------------------------------------------------ element-wise

    def scalar(self, expr: tx.Expr, at: list[str], lines: list[str]) -> str:
        """A scalar expression for the entry ``at`` of an element-wise tree (operands loaded first)."""
        s = lambda e: self.scalar(e, at, lines)  # noqa: E731
        if isinstance(expr, tx.Tensor):
            return f"{expr.name}[{', '.join(at)}]"
        if isinstance(expr, tx.Product):
            return f"({s(expr.a)} * {s(expr.b)})"
        if isinstance(expr, tx.Difference):
            return f"({s(expr.a)} - {s(expr.b)})"
        if isinstance(expr, tx.OneMinus):
            return f"(one - {s(expr.a)})"
        if isinstance(expr, tx.BatchScale):
            return f"({s(expr.a)} / n)" if expr.reduction == "mean" else s(expr.a)
        if isinstance(expr, tx.Relu):
            return f"relu({s(expr.a)})"
        if isinstance(expr, tx.StepMask):
            return f"step({s(expr.a)})"
        if isinstance(expr, tx.Sigmoid):
            return f"sigmoid({s(expr.a)})"
        if isinstance(expr, tx.Tanh):
            return f"np.tanh({s(expr.a)})"
        if isinstance(expr, tx.AddBias):
            return f"({s(expr.a)} + {self.operand(expr.bias, lines)}[{at[0]}])"
        name = self.operand(expr, lines)  # not element-wise: computed into an array first
        return f"{name}[{', '.join(at)}]"

    def elementwise(self, expr: tx.Expr, out: str) -> list[str]:
        at = indices(len(self.sample_shape(expr)))
        before: list[str] = []
        value = self.scalar(expr, at, before)
        if value.startswith("(") and value.endswith(")") and _balanced(value[1:-1]):
            value = value[1:-1]  # the formatter's way: no brackets around a whole right-hand side
        target = f"{out}[{', '.join(at)}]" if at else f"{out}[()]"
        body = [f"{target} {self._assign(expr)} {value}"]
        return before + nest(list(zip(at, self.sample_shape(expr), strict=True)), body)

    read_Product = read_Difference = read_OneMinus = read_BatchScale = elementwise  # noqa: N815
    read_Relu = read_StepMask = read_Sigmoid = read_Tanh = elementwise  # noqa: N815

    def read_Tensor(self, e: tx.Tensor, out: str) -> list[str]:
        return self.elementwise(e, out)

    def read_AddBias(self, e: tx.AddBias, out: str) -> list[str]:
        """A correlation or a matrix product plus its bias: the sum starts from the bias."""
        if isinstance(e.a, tx.Correlate) and not e.a.weight_form or isinstance(e.a, ops.StridedCorrelate):
            return self.correlate(e.a, out, start=e.bias)
        if isinstance(e.a, tx.MatMul) and self.batched(e.a.a) and not self.batched(e.a.b):
            return self.vector_matrix(e.a, out, start=e.bias)
        return self.elementwise(e, out)

    # ------------------------------------------------------------ correlation

    def read_Correlate(self, e: tx.Correlate, out: str) -> list[str]:
        if not e.weight_form:
            return self.correlate(e, out, start=None)
        if isinstance(e.kernel, tx.RouteMax) and self._kept(e.kernel) is not None:
            return self.routed_weight_gradient(e, out)
        return self.weight_gradient(e.x, e.kernel, 1, self.sample_shape(e)[2:], out)

    def read_StridedCorrelate(self, e: ops.StridedCorrelate, out: str) -> list[str]:
        return self.correlate(e, out, start=None)

    def read_StridedWeightGrad(self, e: ops.StridedWeightGrad, out: str) -> list[str]:
        return self.weight_gradient(e.x, e.grad, e.stride, e.kernel, out)

    def weight_gradient(
        self, x_expr: tx.Expr, g_expr: tx.Expr, stride: int, kernel: tuple[int, int], out: str
    ) -> list[str]:
        """out[f, c, m, k] += sum over i, j of x[c, s i + m, s j + k] g[f, i, j] (s the stride), each
        sum over the sample's positions in row-major order from 0.

        The taps' sums are independent: for a kernel over one channel, up to MAX_UNROLLED_TAPS of
        them run side by side in named scalars over one pass of the positions (so no sum waits on the
        previous addition of its own), each still adding its terms in (i, j) order; larger kernels
        and kernels over several channels sum one tap at a time.
        """
        lines: list[str] = []
        x, g = self.operand(x_expr, lines), self.operand(g_expr, lines)
        f_, gh, gw = self.sample_shape(g_expr)
        c_ = self.sample_shape(x_expr)[0]
        kh, kw = kernel
        if not unrolled(c_, kh, kw):
            body = [
                "total = zero",
                *nest(
                    [("i", gh), ("j", gw)],
                    [f"total += {x}[c, {_at(stride, 'i', 'm')}, {_at(stride, 'j', 'k')}] * {g}[f, i, j]"],
                ),
                f"{out}[f, c, m, k] += total",
            ]
            return lines + nest([("f", f_), ("c", c_), ("m", kh), ("k", kw)], body)
        taps = [(m, k) for m in range(kh) for k in range(kw)]
        rows = [f"x{m} = {x}[c, {_at(stride, 'i', str(m))}]" for m in range(kh)]
        rows.append(f"gradient = {g}[f, i]")
        adds = [
            "value = gradient[j]",
            *[f"a{m}{k} += x{m}[{_at(stride, 'j', str(k))}] * value" for m, k in taps],
        ]
        body = [f"a{m}{k} = zero" for m, k in taps]
        body += nest([("i", gh)], [*rows, *nest([("j", gw)], adds)])
        body += [f"{out}[f, c, {m}, {k}] += a{m}{k}" for m, k in taps]
        return lines + nest([("f", f_), ("c", c_)], body)

    def correlate(self, e: tx.Correlate | ops.StridedCorrelate, out: str, start: tx.Expr | None) -> list[str]:
        """out[f, i, j] = start[f] + sum over c, m, k of x[c, s i+m, s j+k] w[f, c, m, k], in that order.

        An output row starts from the bias; for a kernel over one channel its taps are unrolled into
        one sum per entry of the row, with the weights and the input rows they read loaded once,
        so the loop over the row is one vectorised sum per entry (s, the stride, is 1 but for a
        strided convolution).
        """
        lines: list[str] = []
        stride = getattr(e, "stride", 1)
        x, w = self.operand(e.x, lines), self.operand(e.kernel, lines)
        f_, oh, ow = self.sample_shape(e)
        _, channels, kh, kw = (int(d) for d in e.kernel.shape)
        first = f"{self.operand(start, lines)}[f]" if start is not None else "zero"
        if not unrolled(channels, kh, kw):
            taps = nest(
                [("c", channels), ("m", kh), ("k", kw)],
                [
                    f"weight = {w}[f, c, m, k]",
                    *nest(
                        [("j", ow)],
                        [f"row[j] += {x}[c, {_at(stride, 'i', 'm')}, {_at(stride, 'j', 'k')}] * weight"],
                    ),
                ],
            )
        else:
            per_channel = [f"x{m} = {x}[c, {_at(stride, 'i', str(m))}]" for m in range(kh)]
            per_channel += [f"w{m}{k} = {w}[f, c, {m}, {k}]" for m in range(kh) for k in range(kw)]
            sums = ["total = row[j]"]
            sums += [
                f"total += x{m}[{_at(stride, 'j', str(k))}] * w{m}{k}" for m in range(kh) for k in range(kw)
            ]
            taps = nest([("c", channels)], [*per_channel, *nest([("j", ow)], [*sums, "row[j] = total"])])
        body = [f"row = {out}[f, i]", *nest([("j", ow)], [f"row[j] = {first}"]), *taps]
        return lines + nest([("f", f_), ("i", oh)], body)

    def routed_weight_gradient(self, e: tx.Correlate, out: str) -> list[str]:
        """dW[f, c, m, k] += sum over windows of x[c, r+m, q+k] h[f, I, J], (r, q) the window's kept entry.

        The gradient of the pooled input is zero except at each window's routed entry, so only
        those terms are summed (rewrite ``routed-weight-gradient``); a window with h = 0 adds
        nothing and is skipped. Each tap has its own scalar accumulator over the windows, added
        to the block's gradient once per sample.
        """
        route: tx.RouteMax = e.kernel
        lines: list[str] = []
        x, h, kept = self.operand(e.x, lines), self.operand(route.grad, lines), self._kept(route)
        f_, c_, kh, kw = self.sample_shape(e)
        _, ph, pw = self.sample_shape(route.grad)
        s = route.size
        where = [
            f"at = {kept}[f, wi, wj]",
            f"r = wi * {s} + at // {s}",
            f"q = wj * {s} + at % {s}",
        ]
        if kh * kw > MAX_UNROLLED_TAPS:
            add = nest(
                [("m", kh)],
                [f"row = {x}[c, r + m]", *nest([("k", kw)], [f"{out}[f, c, m, k] += row[q + k] * g"])],
            )
            window = [f"g = {h}[f, wi, wj]", "if g != zero:", *[INDENT + line for line in where + add]]
            return lines + nest([("f", f_), ("c", c_), ("wi", ph), ("wj", pw)], window)
        taps = [(m, k) for m in range(kh) for k in range(kw)]
        add = [f"x{m} = {x}[c, r + {m}]" for m in range(kh)]
        add += [f"a{m}{k} += x{m}[q + {k}] * g" for m, k in taps]
        window = [f"g = {h}[f, wi, wj]", "if g != zero:", *[INDENT + line for line in where + add]]
        body = [f"a{m}{k} = zero" for m, k in taps]
        body += nest([("wi", ph), ("wj", pw)], window)
        body += [f"{out}[f, c, {m}, {k}] += a{m}{k}" for m, k in taps]
        return lines + nest([("f", f_), ("c", c_)], body)

    def read_FullConvolve(self, e: tx.FullConvolve, out: str) -> list[str]:
        return self.transposed(e.grad, e.kernel, 1, self.sample_shape(e)[1:], ((0, 0), (0, 0)), out)

    def read_TransposedConvolve(self, e: ops.TransposedConvolve, out: str) -> list[str]:
        return self.transposed(e.grad, e.kernel, e.stride, e.size, ((0, 0), (0, 0)), out)

    def transposed(
        self,
        g_expr: tx.Expr,
        kernel: tx.Expr,
        stride: int,
        size: tuple[int, int],
        crop: ops.Pads,
        out: str,
    ) -> list[str]:
        """out[c, s i + m - t, s j + k - l] += g[f, i, j] w[f, c, m, k]: each gradient row, times one tap,
        added onto the output row it reaches (s the stride; t, l the rows and columns cropped off the
        top and left, and what falls outside the output dropped): the full convolution for s = 1
        and no crop, the transposed convolution of a strided one, each summed row by row.

        ``size`` is the (height, width) of the uncropped result; rows and columns no window
        reached (floor mode) stay 0.
        """
        lines: list[str] = []
        g, w = self.operand(g_expr, lines), self.operand(kernel, lines)
        (top, bottom), (left, right) = crop
        c_ = int(kernel.shape[1])
        f_, kh, kw = int(kernel.shape[0]), int(kernel.shape[2]), int(kernel.shape[3])
        _, gh, gw = self.sample_shape(g_expr)
        height, width = size[0] - top - bottom, size[1] - left - right
        lines += nest([("c", c_), ("i", height), ("j", width)], [f"{out}[c, i, j] = zero"])
        row = f"{_at(stride, 'i', 'm')}" + (f" - {top}" if top else "")
        column = f"{_at(stride, 'j', 'k')}" + (f" - {left}" if left else "")
        every_column = left == 0 and stride * (gw - 1) + kw <= width
        if every_column:
            columns: list[tuple[str, int | str]] = [("j", gw)]
        elif stride == 1:
            columns = [("j", f"max(0, {left} - k), min({gw}, {width + left} - k)")]
        else:  # the j with 0 <= s j + k - l < width: ceil((l - k) / s) to below ceil((width + l - k) / s)
            low = f"max(0, ({left + stride - 1} - k) // {stride})"
            high = f"min({gw}, ({width + left + stride - 1} - k) // {stride})"
            columns = [("j", f"{low}, {high}")]
        add = [f"weight = {w}[f, c, m, k]", *nest(columns, [f"target[{column}] += source[j] * weight"])]
        per_row = [f"source = {g}[f, i]", f"target = {out}[c, h]", *nest([("k", kw)], add)]
        every_row = top == 0 and stride * (gh - 1) + kh <= height
        if every_row:
            rows = [f"h = {row}", *per_row]
        else:
            rows = [f"h = {row}", f"if 0 <= h < {height}:", *[INDENT + line for line in per_row]]
        return lines + nest([("c", c_), ("f", f_), ("m", kh), ("i", gh)], rows)

    # ------------------------------------------------------ padding and crop

    def read_Pad(self, e: ops.Pad, out: str) -> list[str]:
        """Zeros, and the operand's entries inside them."""
        lines: list[str] = []
        a = self.operand(e.a, lines)
        (top, _), (left, _) = e.pads
        c_, h, w = self.sample_shape(e)
        _, ah, aw = self.sample_shape(e.a)
        lines += nest([("c", c_), ("i", h), ("j", w)], [f"{out}[c, i, j] = zero"])
        copy = f"{out}[c, i + {top}, j + {left}] = {a}[c, i, j]"
        return lines + nest([("c", c_), ("i", ah), ("j", aw)], [copy])

    def read_Crop(self, e: ops.Crop, out: str) -> list[str]:
        """A transposed convolution computes the kept rows and columns only; anything else is copied."""
        inner = e.a
        if isinstance(inner, tx.FullConvolve):
            size = self.sample_shape(inner)[1:]
            return self.transposed(inner.grad, inner.kernel, 1, size, e.pads, out)
        if isinstance(inner, ops.TransposedConvolve):
            return self.transposed(inner.grad, inner.kernel, inner.stride, inner.size, e.pads, out)
        lines: list[str] = []
        a = self.operand(inner, lines)
        (top, _), (left, _) = e.pads
        c_, h, w = self.sample_shape(e)
        return lines + nest(
            [("c", c_), ("i", h), ("j", w)], [f"{out}[c, i, j] = {a}[c, i + {top}, j + {left}]"]
        )

    # ---------------------------------------------------------- matrix product

    def read_MatMul(self, e: tx.MatMul, out: str) -> list[str]:
        a, b = e.a, e.b
        if self.batched(a) and not self.batched(b):
            return self.vector_matrix(e, out, start=None)
        if isinstance(a, tx.Transpose) and self.batched(a.a) and self.batched(b):
            lines: list[str] = []
            x, g = self.operand(a.a, lines), self.operand(b, lines)
            rows, columns = self.sample_shape(e)
            return lines + nest([("d", rows), ("u", columns)], [f"{out}[d, u] += {x}[d] * {g}[u]"])
        raise UnsupportedFormError(f"matmul of {type(a).__name__} {a.shape} and {type(b).__name__} {b.shape}")

    def vector_matrix(self, e: tx.MatMul, out: str, start: tx.Expr | None) -> list[str]:
        """out[u] = start[u] + sum over d of x[d] w[d, u] (w, or w^T read as transposed), d in order.

        Against a stored (not transposed) matrix of at least ROW_COLUMNS columns the sums run side
        by side, one row of w at a time, so the loop over u reads w contiguously and vectorises;
        each out[u] still adds its terms in the order of d, so the bits are those of one sum at a time.
        """
        lines: list[str] = []
        x = self.operand(e.a, lines)
        transposed = isinstance(e.b, tx.Transpose)
        w = self.operand(e.b.a if transposed else e.b, lines)
        (columns,) = self.sample_shape(e)
        (inner,) = self.sample_shape(e.a)
        first = f"{self.operand(start, lines)}[u]" if start is not None else "zero"
        if not transposed and columns >= ROW_COLUMNS:
            start_row = nest([("u", columns)], [f"{out}[u] = {first}"])
            rows = nest(
                [("d", inner)],
                [f"value = {x}[d]", *nest([("u", columns)], [f"{out}[u] += value * {w}[d, u]"])],
            )
            return lines + start_row + rows
        entry = f"{w}[u, d]" if transposed else f"{w}[d, u]"
        body = [
            "total = " + first,
            *nest([("d", inner)], [f"total += {x}[d] * {entry}"]),
            f"{out}[u] = total",
        ]
        return lines + nest([("u", columns)], body)

    def read_Transpose(self, e: tx.Transpose, out: str) -> list[str]:
        if self.batched(e.a) or self.batched(e):
            raise UnsupportedFormError("a transposed batch outside a matrix product")
        lines: list[str] = []
        a = self.operand(e.a, lines)
        rows, columns = self.sample_shape(e)
        return lines + nest([("i", rows), ("j", columns)], [f"{out}[i, j] = {a}[j, i]"])

    # ------------------------------------------------------ shapes and sums

    def read_Reshape(self, e: tx.Reshape, out: str) -> list[str]:
        """A row-major reshape of the sample: a view, no copy."""
        lines: list[str] = []
        a = self.operand(e.a, lines)
        return [*lines, f"{out} = {a}.reshape({self.sample_shape(e)!r})"]

    def read_SumAxes(self, e: tx.SumAxes, out: str) -> list[str]:
        lines: list[str] = []
        source = e.a
        if isinstance(source, tx.RouteMax) and self._kept(source) is not None:
            source = source.grad  # each window's gradient is routed to one entry (routed-weight-gradient)
        a = self.operand(source, lines)
        rank = len(source.shape)
        kept = [ax for ax in range(rank) if ax not in e.axes]
        variables = {ax: f"i{ax}" for ax in range(rank) if ax != 0 or not self.batched(source)}
        shape = {ax: int(d) for ax, d in enumerate(source.shape) if ax in variables}
        out_index = ", ".join(variables[ax] for ax in kept if ax in variables) or "()"
        in_index = ", ".join(variables[ax] for ax in range(rank) if ax in variables)
        summed = [(variables[ax], shape[ax]) for ax in range(rank) if ax in variables and ax not in kept]
        outer = [(variables[ax], shape[ax]) for ax in kept if ax in variables]
        if self.accumulates(e) or not summed:
            body = nest(summed, [f"{out}[{out_index}] {self._assign(e)} {a}[{in_index}]"])
            return lines + nest(outer, body)
        body = ["total = zero", *nest(summed, [f"total += {a}[{in_index}]"]), f"{out}[{out_index}] = total"]
        return lines + nest(outer, body)

    # --------------------------------------------------------------- pooling

    def _kept(self, e: tx.RouteMax) -> str | None:
        return self.keep.get(e.a.name) if isinstance(e.a, tx.Tensor) else None

    @staticmethod
    def scan(a: str, s: int, keep: bool = True) -> list[str]:
        """``best``, ``at``: a window's maximum and its position, by a row-major scan that moves on
        strictly greater only, so the first maximum is kept (as torch's ``max_pool2d`` and the
        proven routing do; rewrite ``routed-entry``)."""
        lines = [f"best = {a}[c, wi * {s}, wj * {s}]", *(["at = 0"] if keep else [])]
        for p in range(s):
            for q in range(s):
                if p or q:
                    entry = f"{a}[c, wi * {s} + {p}, wj * {s} + {q}]"
                    if keep:
                        lines += [f"if {entry} > best:", f"    best = {entry}", f"    at = {p * s + q}"]
                    else:
                        lines.append(f"best = max(best, {entry})")
        return lines

    def read_MaxPool(self, e: tx.MaxPool, out: str) -> list[str]:
        """Each window's maximum; when the routing is fused, the position it came from is kept too."""
        lines: list[str] = []
        a = self.operand(e.a, lines)
        kept = self.keep.get(e.a.name) if isinstance(e.a, tx.Tensor) else None
        c_, ph, pw = self.sample_shape(e)
        body = [*self.scan(a, e.size, keep=kept is not None), f"{out}[c, wi, wj] = best"]
        if kept is not None:
            body.append(f"{kept}[c, wi, wj] = at")
        return lines + nest([("c", c_), ("wi", ph), ("wj", pw)], body)

    def read_RouteMax(self, e: tx.RouteMax, out: str) -> list[str]:
        """Each window's gradient to its first maximum (kept from the forward pass, or scanned)."""
        lines: list[str] = []
        g = self.operand(e.grad, lines)
        c_, h, w = self.sample_shape(e)
        s = e.size
        lines += nest([("c", c_), ("i", h), ("j", w)], [f"{out}[c, i, j] = zero"])
        kept = self._kept(e)
        find = [f"at = {kept}[c, wi, wj]"] if kept is not None else self.scan(self.operand(e.a, lines), s)
        body = [*find, f"{out}[c, wi * {s} + at // {s}, wj * {s} + at % {s}] = {g}[c, wi, wj]"]
        return lines + nest([("c", c_), ("wi", h // s), ("wj", w // s)], body)

    def read_AvgPool(self, e: ops.AvgPool, out: str) -> list[str]:
        """Each window's entries summed in row-major order, then divided by its size (as NumPy's mean)."""
        lines: list[str] = []
        a = self.operand(e.a, lines)
        c_, ph, pw = self.sample_shape(e)
        s = e.size
        entries = [f"{a}[c, wi * {s} + {p}, wj * {s} + {q}]" for p in range(s) for q in range(s)]
        body = [f"total = {entries[0]}", *[f"total += {entry}" for entry in entries[1:]]]
        body.append(f"{out}[c, wi, wj] = total / area{s * s}")
        return lines + nest([("c", c_), ("wi", ph), ("wj", pw)], body)

    def read_SpreadAvg(self, e: ops.SpreadAvg, out: str) -> list[str]:
        """Each window's gradient divided by its size, written to every entry of the window."""
        lines: list[str] = []
        g = self.operand(e.grad, lines)
        c_, ph, pw = self.sample_shape(e.grad)
        s = e.size
        body = [f"share = {g}[c, wi, wj] / area{s * s}"]
        body += [f"{out}[c, wi * {s} + {p}, wj * {s} + {q}] = share" for p in range(s) for q in range(s)]
        return lines + nest([("c", c_), ("wi", ph), ("wj", pw)], body)

    # ----------------------------------------------------------------- softmax

    def read_Softmax(self, e: ops.Softmax, out: str) -> list[str]:
        """exp(z - max z) of the row, divided by its sum: never overflows (as the NumPy module's softmax)."""
        lines: list[str] = []
        z = self.operand(e.a, lines)
        (k_,) = self.sample_shape(e)
        return lines + [
            f"top = {z}[0]",
            *nest([("k", f"1, {k_}")], [f"top = max(top, {z}[k])"]),
            "total = zero",
            *nest([("k", k_)], [f"{out}[k] = np.exp({z}[k] - top)", f"total += {out}[k]"]),
            *nest([("k", k_)], [f"{out}[k] = {out}[k] / total"]),
        ]

    def read_SoftmaxVJP(self, e: ops.SoftmaxVJP, out: str) -> list[str]:
        """a ⊙ (g - sum_k g_k a_k) of the row."""
        lines: list[str] = []
        a, g = self.operand(e.out, lines), self.operand(e.grad, lines)
        (k_,) = self.sample_shape(e)
        return lines + [
            "inner = zero",
            *nest([("k", k_)], [f"inner += {g}[k] * {a}[k]"]),
            *nest([("k", k_)], [f"{out}[k] = {a}[k] * ({g}[k] - inner)"]),
        ]

    # ----------------------------------------------------------------- losses

    def read_BinaryCrossEntropyWithLogits(self, e: tx.BinaryCrossEntropyWithLogits, out: str) -> list[str]:
        """The sample's summed BCE from the logit, log(1 + e^z) - y z, added to ``out``."""
        lines: list[str] = []
        z, y = self.operand(e.logits, lines), self.operand(e.target, lines)
        at = indices(len(self.sample_shape(e.logits)))
        index = ", ".join(at)
        return lines + nest(
            list(zip(at, self.sample_shape(e.logits), strict=True)),
            [f"{out} += softplus({z}[{index}]) - {y}[{index}] * {z}[{index}]"],
        )

    def read_HalfSquaredError(self, e: tx.HalfSquaredError, out: str) -> list[str]:
        """The sample's 0.5 * sum of squared errors, added to ``out``."""
        lines: list[str] = []
        o, y = self.operand(e.output, lines), self.operand(e.target, lines)
        at = indices(len(self.sample_shape(e.output)))
        index = ", ".join(at)
        return lines + nest(
            list(zip(at, self.sample_shape(e.output), strict=True)),
            [f"error = {o}[{index}] - {y}[{index}]", f"{out} += half * error * error"],
        )

    def read_SoftmaxCrossEntropy(self, e: ops.SoftmaxCrossEntropy, out: str) -> list[str]:
        """The sample's cross-entropy from its logits, logsumexp(z) - y . z (max z out), added to out."""
        lines: list[str] = []
        z, y = self.operand(e.logits, lines), self.operand(e.target, lines)
        (k_,) = self.sample_shape(e.logits)
        return lines + [
            f"top = {z}[0]",
            *nest([("k", f"1, {k_}")], [f"top = max(top, {z}[k])"]),
            "exps = zero",
            "dot = zero",
            *nest([("k", k_)], [f"exps += np.exp({z}[k] - top)", f"dot += {y}[k] * {z}[k]"]),
            f"{out} += top + np.log(exps) - dot",
        ]
