"""conv2d: valid cross-correlation with a bias per filter (a bilinear layer)."""

# ruff: noqa: E501 - the LaTeX words keep the line breaks of the documents they print

from __future__ import annotations

from math import prod

import numpy as np

from gradproof.derive.layers.base import (
    BILINEAR,
    Context,
    Declaration,
    Field,
    LayerError,
    LayerType,
    Options,
    Parameter,
    Shape,
    with_bias,
)
from gradproof.derive.texpr import Correlate, FullConvolve, SumAxes


class Conv2d(LayerType):
    name = "conv2d"
    kind = BILINEAR
    summary = "valid cross-correlation plus a bias per filter"
    fields = (
        Field("filters", "number of filters"),
        Field("kernel", "kernel height and width"),
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
    prose = {
        "weight": r"""\paragraph{Convolution, filter.} A filter weight multiplies one input entry at every position of the output: the entry
under it when the filter sits at that position. Its gradient gathers those input entries, each weighted by the output
gradient at its position: a correlation of the layer's input with the output gradient, which also sums over the
samples. Section~\ref{\VAR{entries_label}} writes out every entry.
""",
        "bias": r"""\paragraph{Convolution, bias.} The bias of a filter is added at every position of every sample with slope $1$, so its
gradient is the sum of all entries of the output gradient for that filter.
""",
        "input": r"""\paragraph{Convolution, input.} An input entry meets every filter weight that slides over it, so its gradient is a full
convolution of the output gradient with the filter (Section~\ref{\VAR{entries_label}}).
""",
    }

    def output_shape(self, shape: Shape, options: Options) -> Shape:
        k = options["kernel"]
        if k > shape[1] or k > shape[2]:
            raise LayerError(f"kernel {k} is larger than the {shape[1]}x{shape[2]} input", "kernel")
        return (options["filters"], shape[1] - k + 1, shape[2] - k + 1)

    def work(self, before: Shape, after: Shape, options: Options) -> int:
        return prod(after) * before[0] * options["kernel"] ** 2

    def chain_paths(self, paths: np.ndarray, before: Shape, options: Options) -> tuple[np.ndarray, int]:
        # W[f, c, m, n] and B[f] reach L through every Z[f, i, j]
        per_filter = max(sum(paths[f].ravel()) for f in range(paths.shape[0]))
        k = options["kernel"]
        padded = np.zeros((paths.shape[0], before[1] + k - 1, before[2] + k - 1), dtype=object)
        padded[:, k - 1 : k - 1 + paths.shape[1], k - 1 : k - 1 + paths.shape[2]] = paths
        through = sum(padded[:, m : m + before[1], n : n + before[2]] for m in range(k) for n in range(k))
        return np.broadcast_to(through.sum(axis=0), before).copy(), per_filter

    def parameters(self, before: Shape, after: Shape, options: Options) -> tuple[Parameter, ...]:
        k = options["kernel"]
        weight = Parameter(
            "weight",
            "W",
            (after[0], before[0], k, k),
            "filters (filters, channels, rows, columns)",
            before[0] * k * k,
        )
        if not options["bias"]:
            return (weight,)
        return weight, Parameter("bias", "B", (after[0],), "bias, one per filter", None)

    def declare(self, ctx: Context) -> Declaration:
        x, w, g = ctx.input, ctx.params["weight"], ctx.upstream
        return with_bias(
            Correlate(x, w),
            {
                w.name: Correlate(x, g),  # dW = correlate(X, dZ)
                x.name: FullConvolve(g, w),  # dX = full convolution of dZ with W
            },
            ctx.params.get("bias"),
            SumAxes(g, (0, 2, 3)),  # dB = sum of dZ over batch and positions
        )

    def latex_operation(self, options: Options, short: bool = False) -> str:
        return r"\operatorname{corr}"
