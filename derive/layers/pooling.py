"""Pooling: maxpool2d (a selection, with its window lemma and its tie convention) and avgpool2d (linear).

Both use windows of ``size`` x ``size`` with stride ``size`` and PyTorch's floor mode: when the
size does not divide the input, the last rows and columns that no window covers are left out of
the output (``Crop`` before the pool) and get a gradient of 0 (``Pad`` around the rule).
"""

# ruff: noqa: E501 - the LaTeX words keep the line breaks of the documents they print

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import sympy as sp

from gradproof.derive.layers.base import (
    LINEAR,
    SELECTION,
    AllSizes,
    Context,
    Declaration,
    Field,
    LayerError,
    LayerType,
    Obligation,
    Options,
    Shape,
    Use,
    size,
)
from gradproof.derive.operations import AvgPool, Crop, Pad, SpreadAvg
from gradproof.derive.records import ProofRecord, concrete, timed
from gradproof.derive.statement import gradient_name, tensor_label
from gradproof.derive.symbolic import SymbolicReading, window_lemma_holds
from gradproof.derive.texpr import BATCH, Expr, MaxPool, RouteMax, Tensor


def prove_window_lemma(size: int) -> ProofRecord:
    k = size * size
    record = ProofRecord(
        "lemma",
        f"window max derivative ({size}x{size})",
        f"d max(t_1..t_{k})/dt_i = prod_j H(t_i - t_j) where no two t tie",
        k * 2 ** (k - 1),
        "exact evaluation on every ordering pattern",
        key="window-max",
        window=size,
    )
    return timed(record, lambda: (window_lemma_holds(size), None))


def typeset_window_lemma(record: ProofRecord, doc) -> tuple[str, str]:
    side = record.window
    k = side * side
    maximum = rf"\partial \max(t_{{0}}, \dots, t_{{{k - 1}}})/\partial t_{{i}}"
    lemma = doc.math(maximum + r" = \prod_{j \ne i} H(t_{i} - t_{j})")
    what = (
        rf"Derivative of the maximum of a ${side} \times {side}$ window: {lemma} wherever no two of the "
        r"$t_{j}$ are equal, $H$ being the unit step."
    )
    how = (
        r"exact evaluation. Both sides depend only on which of the other entries exceed $t_{i}$, and "
        rf"each of the $2^{{{k - 1}}}$ such patterns is evaluated for each of the ${k}$ choices of $i$."
    )
    return what, how


def _tie_patterns(k: int) -> Iterator[tuple[int, ...]]:
    """Every window filling with values in {0, 1, 2} that has a tie at its maximum."""
    for code in range(3**k):
        values = tuple((code // 3**i) % 3 for i in range(k))
        if values.count(max(values)) > 1:
            yield values


def prove_pooling_ties(network, step) -> ProofRecord:
    a, size = step.input, step.layer.options["size"]
    k = size * size
    patterns = list(_tie_patterns(k)) if k <= 9 else []
    record = ProofRecord(
        "convention",
        f"pooling ties go to the first maximum ({a.name})",
        "a window whose maximum is tied routes its whole gradient to the first "
        "maximum in row-major order (as torch max_pool2d)",
        len(patterns),
        "exact evaluation of every tied window over {0, 1, 2}",
        key="pooling-ties",
        tensor=a.name,
        window=size,
    )

    def check():
        shape = concrete(a.shape, 1)
        out_shape = concrete(step.output.shape, 1)
        upstream = np.empty(out_shape, dtype=object)
        for n, index in enumerate(np.ndindex(out_shape)):
            upstream[index] = sp.Integer(n + 1)
        for values in patterns:
            window = np.array([sp.Integer(v) for v in values], dtype=object).reshape(size, size)
            a_values = np.full(shape, sp.Integer(0), dtype=object)  # rows no window covers stay 0
            tiled = np.tile(window, (shape[0], shape[1], shape[2] // size, shape[3] // size))
            a_values[:, :, : tiled.shape[2], : tiled.shape[3]] = tiled
            env = {a.name: a_values, step.upstream.name: upstream}
            got = SymbolicReading(env, 1)(step.rules[a.name])
            first = values.index(max(values))
            for index in np.ndindex(out_shape):
                b, c, i, j = index
                block = got[b, c, i * size : (i + 1) * size, j * size : (j + 1) * size].ravel()
                expected = [upstream[index] if p == first else 0 for p in range(k)]
                if list(block) != expected:
                    return False, f"{tensor_label(gradient_name(a.name))} for window {values}"
        return True, None

    return timed(record, check)


def typeset_pooling_ties(record: ProofRecord, doc) -> tuple[str, str]:
    doc.step_checked(record)
    a, side = doc.sym(record.tensor), record.window
    what = (
        rf"Pooling ties at ${a}$: a ${side} \times {side}$ window of ${a}$ whose maximum is tied "
        r"routes its whole gradient to the first maximum in row-major order, as PyTorch's "
        r"\texttt{max\_pool2d} does."
    )
    how = r"exact evaluation of the rule on every tied window with entries in $\{0, 1, 2\}$."
    return what, how


WINDOW_LEMMA = Obligation("window-max", "lemma", prove_window_lemma, typeset_window_lemma)
POOLING_TIES = Obligation("pooling-ties", "convention", prove_pooling_ties, typeset_pooling_ties)


FLOOR_MODE = r"""\item \emph{Pooling windows} of side $s$ move by $s$; when $s$ does not divide the input, the last rows and columns that
  no window covers are left out and receive a gradient of $0$, as PyTorch's floor mode does."""
POOL_SHAPE_WORDS = r"""A pooling layer has no parameters; windows of side $s$ that move by $s$ divide each side $n$ by $s$,
rounded down: $\lfloor n/s \rfloor$."""


def pooled_rule(before: Shape, after: Shape, size: int) -> str:
    """LaTeX: each pooled side from its input side, ``28/2 = 14`` (floor brackets when it does not divide)."""
    sides = [
        rf"{n}/{size} = {out}" if n % size == 0 else rf"\lfloor {n}/{size} \rfloor = {out}"
        for n, out in ((before[1], after[1]), (before[2], after[2]))
    ]
    return sides[0] if sides[0] == sides[1] else r",\ ".join(sides)


FLOOR_DOCSTRING = (
    "pooling windows of side s move by s; rows and columns no window covers (floor mode) get gradient 0;"
)


class WindowPooling(LayerType):
    """What max- and average pooling share: windows of side ``size`` moving by ``size``, floor mode.

    A subclass declares its forward map and rule for the covered part in ``_declared``.
    """

    fields = (Field("size", "window height, width and stride"),)
    stem = "P"
    input_rank = "spatial"
    shape_words = POOL_SHAPE_WORDS

    def latex_shape_rule(self, before: Shape, after: Shape, options: Options) -> str:
        return pooled_rule(before, after, options["size"])

    def output_shape(self, shape: Shape, options: Options) -> Shape:
        return floor_pooled(shape, options["size"])

    def chain_paths(self, paths, before, options):
        return spread_paths(paths, before, options["size"]), 0

    def declare(self, ctx: Context) -> Declaration:
        return self._declared(
            ctx.input, ctx.upstream, ctx.options["size"], remainders(ctx.input, ctx.options["size"])
        )

    def _declared(self, a: Tensor, g: Tensor, size: int, rest) -> Declaration:
        raise NotImplementedError

    def theorem_cases(self, windows: tuple[int, ...]) -> tuple[Options, ...]:
        return tuple({"size": s} for s in windows)

    def latex_operation(self, options: Options, short: bool = False) -> str:
        if short:
            return r"\text{pool}"
        size = options["size"]
        return rf"\text{{{self.operation_word}}}\ {size}{{\times}}{size}"


class MaxPool2d(WindowPooling):
    name = "maxpool2d"
    kind = SELECTION
    summary = "maximum of each window, stride = size"
    conventions = (POOLING_TIES,)
    display = "Max-pooling"
    operation_word = "max-pool"
    output_meaning = "max-pooled activation"
    docstring = (
        "max-pool sends each window's gradient to its first maximum in row-major order;",
        FLOOR_DOCSTRING,
    )
    latex_conventions = (
        r"""\item \emph{Pooling ties.} A window whose maximum is tied passes its whole gradient to the first maximum in row-major
  order, as PyTorch's \texttt{max\_pool2d} does. SymPy's derivative of $\max$ would give every tied entry
  $\frac{1}{2}$ instead, so a window of four equal values would pass on twice its gradient. Away from ties, the identities are proven for every ordering of a window's values.""",
        FLOOR_MODE,
    )
    region = "where no pooling window\nhas a tied maximum"
    prose = {
        "input": r"""\paragraph{Max-pooling.} It has no parameters. Each pooled value equals one entry of its window, the window's
maximum, so its derivative is $1$ for that entry and $0$ for the others. The gradient of each window is therefore
routed to the position of its maximum, and the other entries of the window receive $0$. A tied maximum sends it to
the first position in row-major order (Section~\ref{\VAR{conventions_label}}).
""",
    }

    def latex_description(self, options: Options) -> str:
        size = options["size"]
        return rf"Max-pooling ${size} \times {size}$"

    def _declared(self, a: Tensor, g: Tensor, size: int, rest) -> Declaration:
        covered, restore = floor_mode(a, size, rest)
        return Declaration(MaxPool(covered, size), {a.name: restore(RouteMax(covered, g, size))})

    def all_sizes(self, options: Options) -> tuple[AllSizes, ...]:
        return pooling_all_sizes(
            self, options["size"], "on the region where no pooling window has two equal entries"
        )

    def lemmas(self, options: Options) -> tuple[Use, ...]:
        return (Use(WINDOW_LEMMA, (options["size"],)),)


# --------------------------------------------------------------- floor mode


def floor_pooled(shape: Shape, size: int) -> Shape:
    """The pooled shape in floor mode; a window larger than the input is refused."""
    if size > shape[1] or size > shape[2]:
        raise LayerError(f"size {size} is larger than the {shape[1]}x{shape[2]} input", "size")
    return (shape[0], shape[1] // size, shape[2] // size)


def remainders(a: Tensor, size: int) -> tuple[int, int]:
    """The rows and columns of ``a`` that no window covers (floor mode)."""
    _, _, h, w = a.shape
    return h % size, w % size


def floor_mode(a: Tensor, size: int, rest: tuple[int, int]):
    """The part of ``a`` the windows cover, and how a gradient of that part becomes one of ``a``."""
    pads = ((0, rest[0]), (0, rest[1]))
    if pads == ((0, 0), (0, 0)):
        return a, lambda rule: rule
    return Crop(a, pads), lambda rule: Pad(rule, pads)


def pooling_all_sizes(layer, window: int, region: str = "") -> tuple[AllSizes, ...]:
    """A pooling type's theorem for one window size ``s``: every input side ``s H + R``, ``0 <= R < s``.

    The remainders ``R_h``, ``R_w`` are the rows and columns floor mode leaves out; a network's step
    fixes them from its input shape.
    """
    c, h, w = size("C"), size("H"), size("W")
    rh, rw = size("R_h", zero=True), size("R_w", zero=True)
    a = Tensor("A1", (BATCH, c, window * h + rh, window * w + rw))
    p, g = Tensor("P1", (BATCH, c, h, w)), Tensor("dP1", (BATCH, c, h, w))
    declaration = layer._declared(a, g, window, (rh, rw))
    roles = {"input": a.name, "output": p.name, "upstream": g.name}
    key = f"{layer.name}/{window}"

    def fix(options: Options, shape: Shape) -> dict:
        return {rh: shape[1] % window, rw: shape[2] % window}

    conditions = (window - 1 - rh, window - 1 - rw)
    return (
        AllSizes(
            key, declaration, (a, p, g), roles, g.name, (rh, rw), conditions, region, window=window, fix=fix
        ),
    )


def spread_paths(paths: np.ndarray, before: Shape, size: int) -> np.ndarray:
    """Chain-rule paths of a pooling input: those of its window's output; 0 where no window reaches."""
    spread = paths.repeat(size, axis=1).repeat(size, axis=2)
    out = np.zeros(before, dtype=object)
    out[:, : spread.shape[1], : spread.shape[2]] = spread
    return out


# ------------------------------------------------------------------ avgpool


class AvgPool2d(WindowPooling):
    name = "avgpool2d"
    kind = LINEAR
    summary = "mean of each window, stride = size"
    display = "Average pooling"
    operation_word = "avg-pool"
    output_meaning = "average-pooled activation"
    docstring = (
        "average pooling divides each window's gradient by size**2 and spreads it over the window;",
        FLOOR_DOCSTRING,
    )
    latex_conventions = (FLOOR_MODE,)
    prose = {
        "input": r"""\BLOCK{set g = block.data.layer}\paragraph{Average pooling.} It has no parameters. Each pooled value is the mean of the $\VAR{g.size * g.size}$ entries of its
$\VAR{g.size} \times \VAR{g.size}$ window, so it depends on each of them with slope $1/\VAR{g.size * g.size}$. The windows do not overlap (they move by
their side, $\VAR{g.size}$), so every entry of $\VAR{inp}$ lies in at most one window and receives one share: the gradient of the
window, copied to each of its entries by $\operatorname{spread}_{\VAR{g.size}\times \VAR{g.size}}$ and divided by $\VAR{g.size * g.size}$. The gradient is spread
evenly: unlike max-pooling, average pooling has no kink and needs no convention for ties.\BLOCK{if g.uncovered} The last rows or
columns of $\VAR{inp}$ that no window covers (floor mode, Section~\ref{\VAR{conventions_label}}) receive $0$.\BLOCK{endif}
""",
    }

    def latex_description(self, options: Options) -> str:
        size = options["size"]
        return rf"Average pooling ${size} \times {size}$"

    def prose_data(self, before: Shape, after: Shape, options: Options) -> dict:
        size = options["size"]
        return {"size": size, "uncovered": bool(before[1] % size or before[2] % size)}

    def _declared(self, a: Tensor, g: Tensor, size: int, rest) -> Declaration:
        covered, restore = floor_mode(a, size, rest)
        rule: Expr = SpreadAvg(g, size)
        return Declaration(AvgPool(covered, size), {a.name: restore(rule)})

    def all_sizes(self, options: Options) -> tuple[AllSizes, ...]:
        return pooling_all_sizes(self, options["size"])
