"""conv2d: cross-correlation with a bias per filter (a bilinear layer): stride, zero padding, kh x kw kernels.

``kernel`` is one side or ``[kh, kw]``; ``stride`` (default 1) moves the window; ``padding`` (one
side or ``[ph, pw]``, default 0) adds zeros around the input first. A stride that does not divide
follows PyTorch's floor mode: rows and columns no window reaches get a gradient of 0. With
stride 1 and no padding the rules are the valid correlation's; padding makes the input rule a
crop of the full convolution, and a stride > 1 makes it a transposed convolution.
"""

# ruff: noqa: E501 - the LaTeX words keep the line breaks of the documents they print

from __future__ import annotations

from math import prod

import numpy as np
import sympy as sp

from gradproof.derive.layers.base import (
    BILINEAR,
    AllSizes,
    Context,
    Declaration,
    Field,
    LayerError,
    LayerType,
    Options,
    Parameter,
    Shape,
    positive_int_problem,
    size,
    with_bias,
)
from gradproof.derive.operations import Crop, Pad, StridedCorrelate, StridedWeightGrad, TransposedConvolve
from gradproof.derive.texpr import BATCH, Correlate, Expr, FullConvolve, SumAxes, Tensor


def _pair(raw, name: str, meaning: str, default: int | None, smallest: int) -> tuple[int, int]:
    """One int for both sides or ``[rows, columns]``, each at least ``smallest``."""
    value = raw.get(name, default)
    if value is None:
        raise LayerError(f"missing required field ({meaning})", name)
    values = value if isinstance(value, list) else [value]
    if isinstance(value, list) and len(value) != 2:
        raise LayerError(f"must be one integer or [rows, columns], got {value!r}", name)
    for v in values:
        if smallest == 0 and v == 0 and not isinstance(v, bool):
            continue
        problem = positive_int_problem(v)
        if problem:
            zero = " or 0" if smallest == 0 else ""
            raise LayerError(problem.replace("a positive integer", f"a positive integer{zero}"), name)
    return (values[0], values[-1])


def geometry(options: Options) -> tuple[tuple[int, int], int, tuple[int, int]]:
    """(kh, kw), stride, (ph, pw) of a conv2d layer's options."""
    kernel, padding = options["kernel"], options["padding"]
    as_pair = lambda v: tuple(v) if isinstance(v, tuple) else (v, v)  # noqa: E731
    return as_pair(kernel), options["stride"], as_pair(padding)


class Conv2d(LayerType):
    name = "conv2d"
    kind = BILINEAR
    summary = "valid cross-correlation plus a bias per filter"
    fields = (
        Field("filters", "number of filters"),
        Field("kernel", "kernel side, or [height, width]"),
        Field("stride", "step of the window (default 1)"),
        Field("padding", "zeros around the input, one side or [rows, columns] (default 0)"),
        Field("bias", "", default=True),
    )
    stem = "Z"
    input_rank = "spatial"
    width_field = "filters"
    display = "Convolution"
    output_meaning = "pre-activation: correlation"
    docstring = (
        "conv is cross-correlation: Z[n, f, i, j] = sum_{c,m,k} X[n, c, i+m, j+k] W[f, c, m, k] + B[f];",
    )
    latex_conventions = (
        r"\item \emph{Convolution is cross-correlation}: the kernel is not turned, as in deep-learning frameworks.",
    )
    shape_words = r"""A convolution with $F$ filters of $k_{h} \times k_{w}$ over $C$ input channels has $F \cdot C \cdot k_{h} \cdot k_{w}$
weights and $F$ biases, whatever the size of its input; an input side $n$, zero-padded by $p$ on both ends and read with
stride $s$, gives an output side $\lfloor (n + 2p - k)/s \rfloor + 1$ (for $s = 1$ and $p = 0$, simply $n - k + 1$)."""
    prose = {
        "weight": r"""\BLOCK{set g = block.data.layer}\paragraph{Convolution, filter.} A filter weight multiplies one input entry at every position of the output: the entry
under it when the filter sits at that position\BLOCK{if g.stride > 1}, which moves by $\VAR{g.stride}$ rows or columns from one output position to the
next\BLOCK{endif}. Its gradient gathers those input entries, each weighted by the output gradient at its position: a
\BLOCK{if g.stride > 1}strided \BLOCK{endif}correlation of the layer's \BLOCK{if g.padded}zero-padded \BLOCK{endif}input with the output gradient, which also sums over the
samples. The filter gradient is therefore a correlation, like the forward pass, and no kernel is turned.\BLOCK{if block.data.first} Section~\ref{\VAR{entries_label}} writes out every entry.\BLOCK{endif}
""",
        "bias": r"""\paragraph{Convolution, bias.} The bias of a filter is added at every position of every sample with slope $1$, so its
gradient is the sum of all entries of the output gradient for that filter.
""",
        "input": r"""\BLOCK{set g = block.data.layer}\paragraph{Convolution, input.} An input entry meets every filter weight that slides over it: entry $(h, w)$ of channel $c$
sits under weight $(m, n)$ of filter $f$ when the output position is $(i, j)$ with \BLOCK{if g.stride > 1}$\VAR{g.stride} i + m = h\BLOCK{if g.padded} + \VAR{g.ph}\BLOCK{endif}$ and $\VAR{g.stride} j + n = w\BLOCK{if g.padded} + \VAR{g.pw}\BLOCK{endif}$\BLOCK{else}$i + m = h\BLOCK{if g.padded} + \VAR{g.ph}\BLOCK{endif}$ and $j + n = w\BLOCK{if g.padded} + \VAR{g.pw}\BLOCK{endif}$\BLOCK{endif}. Its gradient sums
the output gradient times the weight over all these meetings,
\BLOCK{if g.stride > 1}
which is a \emph{transposed convolution}: each product of an output-gradient entry $(f, i, j)$ with the weight $(f, c, m, n)$
is added at row $\VAR{g.stride} i + m$ and column $\VAR{g.stride} j + n$, and rows or columns that no window reached get $0$.
\BLOCK{else}
\[ \frac{\partial \VAR{names.loss}}{\partial \VAR{names.entry(block.data.input, (names.sample, 'c', 'h', 'w'))}} = \sum_{f,m,n} G_{\VAR{names.sample},f,h-m\BLOCK{if g.padded}+\VAR{g.ph}\BLOCK{endif},w-n\BLOCK{if g.padded}+\VAR{g.pw}\BLOCK{endif}}\, \VAR{names.entry(block.data.weight, ('f', 'c', 'm', 'n'))}, \]
where $G = \partial \VAR{names.loss}/\partial \VAR{out}$ and entries of $G$ outside its range count as $0$. This is the \emph{full convolution} of
the output gradient with the filter: the correlation of the output gradient, padded with $k - 1$ zeros on every side,
with the filter turned by $180$ degrees. The turn the forward pass does not make appears here.
\BLOCK{endif}
\BLOCK{if g.padded}The padding's zeros are constants, not inputs: the border of \BLOCK{if g.ph == g.pw}width $\VAR{g.ph}$\BLOCK{else}$\VAR{g.ph}$ rows and $\VAR{g.pw}$ columns\BLOCK{endif} is cropped from the
result, and their gradient is dropped.
\BLOCK{endif}
""",
    }

    def latex_description(self, options: Options) -> str:
        (kh, kw), s, (ph, pw) = geometry(options)
        words = [rf"{options['filters']} filters ${kh} \times {kw}$"]
        if s > 1:
            words.append(f"stride {s}")
        if ph or pw:
            words.append(f"zero padding {ph}" if ph == pw else f"zero padding {ph} (rows), {pw} (columns)")
        if not options["bias"]:
            words.append("no bias")
        return "Convolution, " + ", ".join(words)

    def latex_shape_rule(self, before: Shape, after: Shape, options: Options) -> str:
        (kh, kw), s, (ph, pw) = geometry(options)
        sides = []
        for n, k, p, out in ((before[1], kh, ph, after[1]), (before[2], kw, pw, after[2])):
            inner = f"{n}" + (rf" + 2 \cdot {p}" if p else "") + f" - {k}"
            sides.append((rf"\lfloor ({inner})/{s} \rfloor + 1" if s > 1 else f"{inner} + 1") + f" = {out}")
        return sides[0] if sides[0] == sides[1] else r",\ ".join(sides)

    def prose_data(self, before: Shape, after: Shape, options: Options) -> dict:
        (kh, kw), s, (ph, pw) = geometry(options)
        return {"kh": kh, "kw": kw, "stride": s, "ph": ph, "pw": pw, "padded": bool(ph or pw)}

    def options(self, raw) -> dict:
        known = [f.name for f in self.fields]
        for key in raw:
            if key != "type" and key not in known:
                raise LayerError(f"unknown field for {self.name} (known: {', '.join(known)})", key)
        filters = Field("filters", "number of filters").read(raw)
        kernel = _pair(raw, "kernel", "kernel side, or [height, width]", None, 1)
        padding = _pair(raw, "padding", "", 0, 0)
        stride = raw.get("stride", 1)
        problem = positive_int_problem(stride)
        if problem:
            raise LayerError(problem, "stride")
        bias = Field("bias", "", default=True).read(raw)
        square = lambda pair: pair[0] if pair[0] == pair[1] else pair  # noqa: E731 - as the spec wrote it
        return {
            "filters": filters,
            "kernel": square(kernel),
            "stride": stride,
            "padding": square(padding),
            "bias": bias,
        }

    def output_shape(self, shape: Shape, options: Options) -> Shape:
        (kh, kw), s, (ph, pw) = geometry(options)
        h, w = shape[1] + 2 * ph, shape[2] + 2 * pw
        if kh > h or kw > w:
            padded = " padded" if ph or pw else ""
            raise LayerError(f"kernel {kh}x{kw} is larger than the{padded} {h}x{w} input", "kernel")
        if ph >= kh or pw >= kw:
            raise LayerError(f"padding {ph}x{pw} must be smaller than the kernel {kh}x{kw}", "padding")
        return (options["filters"], (h - kh) // s + 1, (w - kw) // s + 1)

    def work(self, before: Shape, after: Shape, options: Options) -> int:
        (kh, kw), _, _ = geometry(options)
        return prod(after) * before[0] * kh * kw

    def chain_paths(self, paths: np.ndarray, before: Shape, options: Options) -> tuple[np.ndarray, int]:
        # W[f, c, m, n] and B[f] reach L through every Z[f, i, j]; X[c, h, w] through the windows over it
        per_filter = max(sum(paths[f].ravel()) for f in range(paths.shape[0]))
        (kh, kw), s, (ph, pw) = geometry(options)
        padded = np.zeros((before[1] + 2 * ph, before[2] + 2 * pw), dtype=object)
        total = paths.sum(axis=0)
        for i, j in np.ndindex(total.shape):
            padded[s * i : s * i + kh, s * j : s * j + kw] += total[i, j]
        through = padded[ph : ph + before[1], pw : pw + before[2]]
        return np.broadcast_to(through, before).copy(), per_filter

    def parameters(self, before: Shape, after: Shape, options: Options) -> tuple[Parameter, ...]:
        (kh, kw), _, _ = geometry(options)
        weight = Parameter(
            "weight",
            "W",
            (after[0], before[0], kh, kw),
            "filters (filters, channels, rows, columns)",
            before[0] * kh * kw,
        )
        if not options["bias"]:
            return (weight,)
        return weight, Parameter("bias", "B", (after[0],), "bias, one per filter", None)

    def declare(self, ctx: Context) -> Declaration:
        x, w, g = ctx.input, ctx.params["weight"], ctx.upstream
        (kh, kw), s, (ph, pw) = geometry(ctx.options)
        pads = ((ph, ph), (pw, pw))
        padded: Expr = Pad(x, pads) if ph or pw else x
        if s == 1:
            forward: Expr = Correlate(padded, w)
            weight_rule: Expr = Correlate(padded, g)  # dW = correlate(X, dZ)
            input_rule: Expr = FullConvolve(g, w)  # dX = full convolution of dZ with W
        else:
            _, _, h, width = padded.shape
            forward = StridedCorrelate(padded, w, s)
            weight_rule = StridedWeightGrad(padded, g, s, (kh, kw))
            input_rule = TransposedConvolve(g, w, s, (h, width))  # floor mode: unreached rows get 0
        if ph or pw:
            input_rule = Crop(
                input_rule, pads
            )  # the padding's zeros are not inputs: their gradient is dropped
        return with_bias(
            forward,
            {w.name: weight_rule, x.name: input_rule},
            ctx.params.get("bias"),
            SumAxes(g, (0, 2, 3)),  # dB = sum of dZ over batch and positions
        )

    def all_sizes(self, options: Options) -> tuple[AllSizes, ...]:
        """Three families, as ``declare`` has three forms: valid (stride 1, no padding), padded
        (stride 1, zero padding P_h, P_w >= 0) and strided (stride s >= 1, padding P_h, P_w >= 0, output
        sides H_o = floor((H + 2 P_h - K_h) / s) + 1 and W_o likewise, stated as inequalities)."""
        _, stride, padding = geometry(options)
        c, f, h, w, kh, kw = (size(n) for n in ("C", "F", "H", "W", "K_h", "K_w"))
        strided, padded = stride != 1, stride != 1 or padding != (0, 0)
        ph, pw = (size("P_h", zero=True), size("P_w", zero=True)) if padded else (0, 0)
        s = size("s") if strided else 1
        zero = (ph, pw) if padded else ()
        if strided:
            oh, ow = size("H_o"), size("W_o")
            derived = {oh: sp.floor((h + 2 * ph - kh) / s) + 1, ow: sp.floor((w + 2 * pw - kw) / s) + 1}
            reach = [(h + 2 * ph - kh, oh), (w + 2 * pw - kw, ow)]  # s (H_o - 1) <= H + 2P - K < s H_o
            conditions = tuple(e for span, o in reach for e in (span - s * (o - 1), s * o - 1 - span))
        else:
            oh, ow, derived = h + 2 * ph - kh + 1, w + 2 * pw - kw + 1, {}
            conditions = (oh - 1, ow - 1)
        x, wt, b = Tensor("X", (BATCH, c, h, w)), Tensor("W1", (f, c, kh, kw)), Tensor("B1", (f,))
        z, g = Tensor("Z1", (BATCH, f, oh, ow)), Tensor("dZ1", (BATCH, f, oh, ow))
        geometry_options = {"kernel": (kh, kw), "stride": s, "padding": (ph, pw), "bias": True}
        declaration = self.declare(Context(x, z, g, {"weight": wt, "bias": b}, geometry_options))
        roles = {"input": x.name, "output": z.name, "upstream": g.name, "weight": wt.name, "bias": b.name}
        key = "conv2d/strided" if strided else "conv2d/padded" if padded else "conv2d"

        def fix(options: Options, shape: Shape) -> dict:
            """A step's rules name its padding; a strided step's also its stride, kernel and input size."""
            (k_h, k_w), step, (p_h, p_w) = geometry(options)
            values = {ph: p_h, pw: p_w} if padded else {}
            if strided:
                values |= {s: step, kh: k_h, kw: k_w, h: shape[1], w: shape[2]}
            return values

        tensors = (x, wt, b, z, g)
        return (
            AllSizes(key, declaration, tensors, roles, g.name, zero, conditions, derived=derived, fix=fix),
        )

    def theorem_cases(self, windows: tuple[int, ...]) -> tuple[Options, ...]:
        return tuple({"kernel": 3, "stride": s, "padding": p} for s, p in ((1, 0), (1, 1), (2, 1)))

    def latex_operation(self, options: Options, short: bool = False) -> str:
        return r"\operatorname{corr}"
