"""A catalogue of plausible wrong backward rules, each a mistake seen in textbooks and posts.

How a mutant is made: ``Mutant.apply`` takes a built ``Network`` and returns a
copy in which ONE step's rule (or, for the quadratic cost, the loss's forward
map) is replaced, with ``dataclasses.replace`` on the frozen ``Step`` and
``Network``. Nothing in ``derive`` is edited and no other rule changes.

The wrong expressions are built from the expression language of
``derive.texpr``. Where the language has no operation for a mistake, a
test-only node below models it (``Turn180``, ``ShiftRows``, ``SwapSpatial``,
``FirstSample``, ``TopLeft``, ``StepAt``, ``RouteEveryMax``, ``SquaredError``).
Their readings are plain NumPy indexing on the entry arrays, added to
``SymbolicReading`` and ``TextReading`` only while a mutant is proven
(``installed``). Sums the language lacks are written with its difference:
``a + b = a - ((b - b) - b)`` and ``1 = 1 - (a - a)``.

Each mutant names the obligations that must fail (``must_fail``, as
"level name" of the proof records); the prediction is ours, made from the
mistake, not read off the prover's output.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pytest
import sympy as sp

from gradproof.derive import operations as ops
from gradproof.derive import symbolic
from gradproof.derive import texpr as tx
from gradproof.derive.layers.softmax import CrossEntropy
from gradproof.derive.network import Network, Step, build
from gradproof.derive.parametric import terms as pterms
from gradproof.derive.parametric.conditions import Conditions
from gradproof.derive.parametric.reading import IndexReading, divided
from gradproof.derive.spec import load, parse
from gradproof.derive.statement import TextReading

# --------------------------------------------------------- test-only nodes


@dataclass(frozen=True)
class Turn180(tx.Expr):
    """The last two axes reversed: a kernel turned 180 degrees."""

    a: tx.Expr

    @property
    def shape(self) -> tx.Shape:
        return self.a.shape


@dataclass(frozen=True)
class ShiftRows(tx.Expr):
    """``out[..., i, :] = a[..., i + 1, :]``, zero in the last row: a window one row off."""

    a: tx.Expr

    @property
    def shape(self) -> tx.Shape:
        return self.a.shape


@dataclass(frozen=True)
class SwapSpatial(tx.Expr):
    """Height and width exchanged (``[..., i, j] -> [..., j, i]``)."""

    a: tx.Expr

    @property
    def shape(self) -> tx.Shape:
        s = self.a.shape
        return (*s[:-2], s[-1], s[-2])


@dataclass(frozen=True)
class FirstSample(tx.Expr):
    """Only the first sample of a batch, batch axis dropped."""

    a: tx.Expr

    @property
    def shape(self) -> tx.Shape:
        return self.a.shape[1:]


@dataclass(frozen=True)
class TopLeft(tx.Expr):
    """Only position (0, 0) of every (sample, channel) map."""

    a: tx.Expr

    @property
    def shape(self) -> tx.Shape:
        return self.a.shape[:2]


@dataclass(frozen=True)
class StepAt(tx.Expr):
    """Step function with a chosen value at 0 (``"1/2"``: SymPy's ``Heaviside`` default)."""

    a: tx.Expr
    at_zero: str

    @property
    def shape(self) -> tx.Shape:
        return self.a.shape


@dataclass(frozen=True)
class RouteEveryMax(tx.Expr):
    """Pooling routing that gives the whole gradient to every entry equal to the maximum."""

    a: tx.Expr
    grad: tx.Expr
    size: int

    @property
    def shape(self) -> tx.Shape:
        return self.a.shape


@dataclass(frozen=True)
class SquaredError(tx.Expr):
    """Scalar loss ``sum (output - target)^2``: the quadratic cost without its 1/2."""

    output: tx.Expr
    target: tx.Expr
    reduction: str

    @property
    def shape(self) -> tx.Shape:
        return ()


@dataclass(frozen=True)
class SpreadUnscaled(tx.Expr):
    """Each pooled gradient copied over its window, not divided by the window's size."""

    grad: tx.Expr
    size: int

    @property
    def shape(self) -> tx.Shape:
        n, c, h, w = self.grad.shape
        return (n, c, h * self.size, w * self.size)


@dataclass(frozen=True)
class ZeroExtended(tx.Expr):
    """``a`` with zero rows and columns added after it up to ``size`` (height, width)."""

    a: tx.Expr
    size: tuple[int, int]

    @property
    def shape(self) -> tx.Shape:
        return (*self.a.shape[:2], *self.size)


class CrossEntropyAnyTarget(CrossEntropy):
    """Softmax cross-entropy with ``dL/dZ = A - Y`` claimed for any target: no ``sum_k Y_k = 1``."""

    def constrain_target(self, target: np.ndarray) -> np.ndarray:
        return target

    def all_sizes(self, reduction: str):
        return tuple(dataclasses.replace(case, row_sums=()) for case in super().all_sizes(reduction))


def _zero_extended(a: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    out = np.full((*a.shape[:2], *size), sp.Integer(0), dtype=object)
    out[:, :, : a.shape[2], : a.shape[3]] = a
    return out


def _zeros_like_rows(a: np.ndarray) -> np.ndarray:
    out = np.empty(a[..., :1, :].shape, dtype=object)
    out.fill(sp.Integer(0))
    return out


def _route_every_max(reading, e: RouteEveryMax) -> np.ndarray:
    a, g = reading(e.a), reading(e.grad)
    out = np.empty(a.shape, dtype=object)
    for index, cells in reading._windows(a, e.size):
        window = [a[cell] for cell in cells]
        for position, cell in enumerate(cells):
            me = window[position]
            ties = [sp.Heaviside(me - o, 1) for p, o in enumerate(window) if p != position]
            out[cell] = g[index] * sp.Mul(*ties)
    return out


def _squared_error(reading, e: SquaredError) -> np.ndarray:
    per_entry = symbolic._elementwise(lambda o, y: (o - y) ** 2, reading(e.output), reading(e.target))
    return reading._reduce(per_entry, e.reduction)


SYMBOLIC_READINGS: dict[str, Callable] = {
    "read_Turn180": lambda r, e: r(e.a)[..., ::-1, ::-1],
    "read_ShiftRows": lambda r, e: np.concatenate([r(e.a)[..., 1:, :], _zeros_like_rows(r(e.a))], axis=-2),
    "read_SwapSpatial": lambda r, e: np.swapaxes(r(e.a), -1, -2),
    "read_FirstSample": lambda r, e: r(e.a)[0],
    "read_TopLeft": lambda r, e: r(e.a)[:, :, 0, 0],
    "read_StepAt": lambda r, e: symbolic._elementwise(
        lambda u: sp.Heaviside(u, sp.Rational(e.at_zero)), r(e.a)
    ),
    "read_RouteEveryMax": _route_every_max,
    "read_SquaredError": _squared_error,
    "read_SpreadUnscaled": lambda r, e: r(e.grad).repeat(e.size, axis=2).repeat(e.size, axis=3),
    "read_ZeroExtended": lambda r, e: _zero_extended(r(e.a), e.size),
}
TEXT_READINGS: dict[str, Callable] = {
    "read_Turn180": lambda t, e: f"turn180({t(e.a)})",
    "read_ShiftRows": lambda t, e: f"shift_rows({t(e.a)})",
    "read_SwapSpatial": lambda t, e: f"swap_hw({t(e.a)})",
    "read_FirstSample": lambda t, e: f"{t(e.a)}[0]",
    "read_TopLeft": lambda t, e: f"{t(e.a)}[:, :, 0, 0]",
    "read_StepAt": lambda t, e: f"H({t(e.a)}, H(0) = {e.at_zero})",
    "read_RouteEveryMax": lambda t, e: f"route_every_max({t(e.a)}, {t(e.grad)})",
    "read_SquaredError": lambda t, e: f"{e.reduction} ({t(e.output)} - {t(e.target)})^2",
    "read_SpreadUnscaled": lambda t, e: f"spread({t(e.grad)})",
    "read_ZeroExtended": lambda t, e: f"zero_extended({t(e.a)}, {e.size})",
}


# Index-form readings (derive.parametric.reading) of the test-only nodes: shape and entry.
# ``StepAt`` and ``RouteEveryMax`` differ from the true rule only on a kink or a tie, so on the
# region the theorems are stated on they read as the true rule: only the concrete convention
# obligations can see those mistakes.


def _index_shape_same(r, e):
    return r.shape(e.a)


def _index_turn180(r, e, index):
    *head, i, j = index
    *_, h, w = r.shape(e.a)
    return r.entry(e.a, (*head, h - 1 - i, w - 1 - j))


def _index_shift_rows(r, e, index):
    *head, i, j = index
    *_, h, _w = r.shape(e.a)
    return pterms.restricted(Conditions.of([h - 2 - i]), r.entry(e.a, (*head, i + 1, j)))


def _index_squared_error(r, e, index):
    return r._reduced(lambda o, y: (o - y) ** 2, (e.output, e.target), e.reduction)


def _index_spread_unscaled(r, e, index):
    b, c, h, w = index
    (i, _), (j, _) = divided(h, e.size), divided(w, e.size)
    return r.entry(e.grad, (b, c, i, j))


def _index_zero_extended(r, e, index):
    b, c, h, w = index
    _, _, height, width = r.shape(e.a)
    return pterms.restricted(Conditions.of([height - 1 - h, width - 1 - w]), r.entry(e.a, index))


INDEX_READINGS: dict[str, Callable] = {
    "shape_ZeroExtended": lambda r, e: (*r.shape(e.a)[:2], *e.size),
    "read_ZeroExtended": _index_zero_extended,
    "shape_SpreadUnscaled": lambda r, e: (
        *r.shape(e.grad)[:2],
        e.size * r.shape(e.grad)[2],
        e.size * r.shape(e.grad)[3],
    ),
    "read_SpreadUnscaled": _index_spread_unscaled,
    "shape_Turn180": _index_shape_same,
    "read_Turn180": _index_turn180,
    "shape_ShiftRows": _index_shape_same,
    "read_ShiftRows": _index_shift_rows,
    "shape_SwapSpatial": lambda r, e: (*r.shape(e.a)[:-2], r.shape(e.a)[-1], r.shape(e.a)[-2]),
    "read_SwapSpatial": lambda r, e, index: r.entry(e.a, (*index[:-2], index[-1], index[-2])),
    "shape_FirstSample": lambda r, e: r.shape(e.a)[1:],
    "read_FirstSample": lambda r, e, index: r.entry(e.a, (0, *index)),
    "shape_TopLeft": lambda r, e: r.shape(e.a)[:2],
    "read_TopLeft": lambda r, e, index: r.entry(e.a, (*index, 0, 0)),
    "shape_StepAt": _index_shape_same,
    "read_StepAt": lambda r, e, index: r.entry(tx.StepMask(e.a), index),
    "shape_RouteEveryMax": _index_shape_same,
    "read_RouteEveryMax": lambda r, e, index: r.entry(tx.RouteMax(e.a, e.grad, e.size), index),
    "shape_SquaredError": lambda r, e: (),
    "read_SquaredError": _index_squared_error,
}


@contextlib.contextmanager
def installed(monkeypatch: pytest.MonkeyPatch | None = None) -> Iterator[None]:
    """The test-only nodes' readings, present only inside the block."""
    with contextlib.ExitStack() as stack:
        mp = monkeypatch or stack.enter_context(pytest.MonkeyPatch.context())
        for name, method in SYMBOLIC_READINGS.items():
            mp.setattr(symbolic.SymbolicReading, name, method, raising=False)
        for name, method in TEXT_READINGS.items():
            mp.setattr(TextReading, name, method, raising=False)
        for name, method in INDEX_READINGS.items():
            mp.setattr(IndexReading, name, method, raising=False)
        yield


# ------------------------------------------- sums written with the language


def plus(a: tx.Expr, b: tx.Expr) -> tx.Expr:
    """``a + b`` as ``a - ((b - b) - b)``: the language has a difference but no sum."""
    return tx.Difference(a, tx.Difference(tx.Difference(b, b), b))


def one_like(a: tx.Expr) -> tx.Expr:
    """The constant 1 shaped like ``a``, as ``1 - (a - a)``."""
    return tx.OneMinus(tx.Difference(a, a))


# ------------------------------------------------------------- networks

# Small networks that put a rule into the chain where no built-in does cheaply:
# a second convolution (its dX is backpropagated) and sigmoid hidden layers
# under a quadratic cost (the sigmoid rule is not fused into the loss).
TEST_SPECS = {
    "two_conv": """\
name = "two_conv"
input = [1, 5, 5]
loss = "bce"
[[layers]]
type = "conv2d"
filters = 2
kernel = 2
[[layers]]
type = "relu"
[[layers]]
type = "conv2d"
filters = 1
kernel = 2
[[layers]]
type = "flatten"
[[layers]]
type = "dense"
units = 1
[[layers]]
type = "sigmoid"
""",
    # tanh, average pooling in floor mode (3 does not divide 4) and softmax cross-entropy
    "vocab": """\
name = "vocab"
input = [1, 5, 5]
loss = "cross_entropy"
batch = 2
[[layers]]
type = "conv2d"
filters = 2
kernel = 2
[[layers]]
type = "tanh"
[[layers]]
type = "avgpool2d"
size = 3
[[layers]]
type = "flatten"
[[layers]]
type = "dense"
units = 3
[[layers]]
type = "softmax"
""",
    # a pooled convolution over two channels, three filters of 3x4, on a non-square input: what the
    # NumPy module computes one pooling window at a time (codegen/numpy/fusion.py) at sizes where
    # channels, filters, rows and columns all differ
    "pooled": """\
name = "pooled"
input = [2, 6, 9]
loss = "bce"
batch = 2
layers = [
    { type = "conv2d", filters = 3, kernel = [3, 4] }, { type = "relu" }, { type = "maxpool2d", size = 2 },
    { type = "flatten" }, { type = "dense", units = 1 }, { type = "sigmoid" },
]
""",
    # a strided, padded, non-square convolution after a plain one: its input rule is backpropagated
    "strided": """\
name = "strided"
input = [1, 5, 4]
loss = "cross_entropy"
batch = 2
[[layers]]
type = "conv2d"
filters = 1
kernel = 2
[[layers]]
type = "tanh"
[[layers]]
type = "conv2d"
filters = 2
kernel = [3, 2]
stride = 2
padding = 1
[[layers]]
type = "flatten"
[[layers]]
type = "dense"
units = 2
[[layers]]
type = "softmax"
""",
    "sigmoid_mlp": """\
name = "sigmoid_mlp"
input = [2]
loss = "mse"
reduction = "sum"
[[layers]]
type = "dense"
units = 2
[[layers]]
type = "sigmoid"
[[layers]]
type = "dense"
units = 1
[[layers]]
type = "sigmoid"
""",
    "tanh_mlp": """\
name = "tanh_mlp"
input = [2]
loss = "mse"
reduction = "sum"
[[layers]]
type = "dense"
units = 2
[[layers]]
type = "tanh"
[[layers]]
type = "dense"
units = 1
[[layers]]
type = "tanh"
""",
}


def network_named(name: str) -> Network:
    if name in TEST_SPECS:
        return build(parse(TEST_SPECS[name], source=f"<test {name}>"))
    return build(load(name))


# ------------------------------------------------------------- mutation


def _kind(step: Step) -> str:
    return step.layer.type if step.layer else "loss"


def replace_rule(network: Network, layer: str, target: str, make) -> Network:
    """``network`` with the rule of the ``layer`` step for ``target`` replaced by ``make(step)``.

    ``layer`` is the layer type ("loss" for the loss step); it tells apart two
    steps that differentiate the same tensor (a sigmoid and the fused loss).
    """
    hits = [i for i, s in enumerate(network.steps) if _kind(s) == layer and target in s.rules]
    assert len(hits) == 1, (layer, target, hits)
    steps = list(network.steps)
    step = steps[hits[0]]
    steps[hits[0]] = dataclasses.replace(step, rules={**step.rules, target: make(step)})
    return dataclasses.replace(network, steps=tuple(steps))


def replace_loss_forward(network: Network, make) -> Network:
    """``network`` with the loss step's forward map replaced by ``make(step)``."""
    *body, loss = network.steps
    return dataclasses.replace(network, steps=(*body, dataclasses.replace(loss, forward=make(loss))))


def _g(step: Step) -> tx.Tensor:
    return step.upstream


def _param(step: Step, stem: str) -> tx.Tensor:
    return next(p for p in step.params if p.name.startswith(stem))


def _scaled_like(rule: tx.BatchScale, body: tx.Expr) -> tx.BatchScale:
    """``body`` under the batch reduction of a loss rule ``BatchScale(A - Y, reduction)``."""
    return tx.BatchScale(body, rule.reduction)


@dataclass(frozen=True)
class Mutant:
    name: str
    mistake: str  # the textbook or blog mistake, in words
    network: str  # built-in network or a key of TEST_SPECS
    apply: Callable[[Network], Network]
    must_fail: tuple[str, ...]  # "level name" of the proof records that must fail
    # Refuted by the theorems for all sizes as well; False for a mistake made only on a kink or a
    # tie, outside the region those theorems are stated on (the convention obligations see it).
    parametric: bool = True

    def network_under_test(self) -> Network:
        return self.apply(network_named(self.network))


E2E_ALL_SMALL_CNN = ("end-to-end dL/dW1", "end-to-end dL/dB1", "end-to-end dL/dW2", "end-to-end dL/dB2")
E2E_ALL_MLP = E2E_ALL_SMALL_CNN
E2E_CONV_VOCAB = ("end-to-end dL/dW1", "end-to-end dL/dB1")

CATALOGUE: list[Mutant] = [
    Mutant(
        "conv_dW_true_convolution",
        "dW1 = convolve(X, dZ1): true convolution (gradient turned 180 degrees) instead of correlation",
        "small_cnn",
        lambda n: replace_rule(n, "conv2d", "W1", lambda s: tx.Correlate(s.input, Turn180(_g(s)))),
        ("local conv2d: dL/dW1", "end-to-end dL/dW1"),
    ),
    Mutant(
        "conv_dX_kernel_not_turned",
        "dX = correlate(pad(dZ1), W1): the kernel not turned 180 degrees",
        "small_cnn",
        lambda n: replace_rule(n, "conv2d", "X", lambda s: tx.FullConvolve(_g(s), Turn180(_param(s, "W")))),
        ("local conv2d: dL/dX",),
    ),
    Mutant(
        "conv_dX_kernel_not_turned_in_chain",
        "dA1 = correlate(pad(dZ2), W2) for a second convolution: the unturned kernel backpropagated",
        "two_conv",
        lambda n: replace_rule(n, "conv2d", "A1", lambda s: tx.FullConvolve(_g(s), Turn180(_param(s, "W")))),
        ("local conv2d: dL/dA1", "end-to-end dL/dW1", "end-to-end dL/dB1"),
    ),
    Mutant(
        "conv_dW_window_off_by_one",
        "dW1[m,n] = sum X[i+m+1, j+n] dZ1[i,j]: the window one row off",
        "small_cnn",
        lambda n: replace_rule(n, "conv2d", "W1", lambda s: tx.Correlate(ShiftRows(s.input), _g(s))),
        ("local conv2d: dL/dW1", "end-to-end dL/dW1"),
    ),
    Mutant(
        "dense_dW_transposed",
        "dW2 = dZ2^T A1 instead of A1^T dZ2 (the shapes agree for a square layer)",
        "mlp",
        lambda n: replace_rule(n, "dense", "W2", lambda s: tx.MatMul(tx.Transpose(_g(s)), s.input)),
        ("local dense: dL/dW2", "end-to-end dL/dW2"),
    ),
    Mutant(
        "dense_dX_W_not_transposed",
        "dA1 = dZ2 W2 instead of dZ2 W2^T",
        "mlp",
        lambda n: replace_rule(n, "dense", "A1", lambda s: tx.MatMul(_g(s), _param(s, "W"))),
        ("local dense: dL/dA1", "end-to-end dL/dW1", "end-to-end dL/dB1"),
    ),
    Mutant(
        "conv_dB_no_batch_sum",
        "dB1 = sum over positions of the first sample's dZ1: the batch sum forgotten",
        "small_cnn",
        lambda n: replace_rule(n, "conv2d", "B1", lambda s: tx.SumAxes(FirstSample(_g(s)), (1, 2))),
        # one sample end to end cannot see a batch sum; the local proof at batch 2 does
        ("local conv2d: dL/dB1",),
    ),
    Mutant(
        "conv_dB_per_sample",
        "dB1 = dZ1 summed over positions only: a per-sample (N, F) bias gradient",
        "small_cnn",
        lambda n: replace_rule(n, "conv2d", "B1", lambda s: tx.SumAxes(_g(s), (2, 3))),
        ("local conv2d: dL/dB1", "end-to-end dL/dB1"),
    ),
    Mutant(
        "conv_dB_no_spatial_sum",
        "dB1 = dZ1[:, :, 0, 0] summed over the batch: the sum over positions forgotten",
        "small_cnn",
        lambda n: replace_rule(n, "conv2d", "B1", lambda s: tx.SumAxes(TopLeft(_g(s)), (0,))),
        ("local conv2d: dL/dB1", "end-to-end dL/dB1"),
    ),
    Mutant(
        "dense_dB_doubled",
        "dB2 = sum(dZ2) + sum(dZ2): the bias gradient accumulated twice",
        "small_cnn",
        lambda n: replace_rule(n, "dense", "B2", lambda s: plus(s.rules["B2"], s.rules["B2"])),
        ("local dense: dL/dB2", "end-to-end dL/dB2"),
    ),
    Mutant(
        "conv_dB_doubled",
        "dB1 = sum(dZ1) + sum(dZ1): the convolution's bias gradient accumulated twice",
        "small_cnn",
        lambda n: replace_rule(n, "conv2d", "B1", lambda s: plus(s.rules["B1"], s.rules["B1"])),
        ("local conv2d: dL/dB1", "end-to-end dL/dB1"),
    ),
    Mutant(
        "dense_dB_no_batch_sum",
        "dB2 = dZ2 of the first sample: the dense layer's batch sum forgotten",
        "small_cnn",
        lambda n: replace_rule(n, "dense", "B2", lambda s: FirstSample(_g(s))),
        # one sample end to end cannot see a batch sum; the local proof at batch 2 does
        ("local dense: dL/dB2",),
    ),
    Mutant(
        "relu_half_at_zero",
        "ReLU'(0) = 1/2 (SymPy's Heaviside(0) default)",
        "small_cnn",
        lambda n: replace_rule(n, "relu", "Z1", lambda s: tx.Product(_g(s), StepAt(s.input, "1/2"))),
        ("convention ReLU'(0) = 0 (Z1)",),
        parametric=False,
    ),
    Mutant(
        "relu_one_at_zero",
        "ReLU'(0) = 1 (mask z >= 0)",
        "small_cnn",
        lambda n: replace_rule(n, "relu", "Z1", lambda s: tx.Product(_g(s), StepAt(s.input, "1"))),
        ("convention ReLU'(0) = 0 (Z1)",),
        parametric=False,
    ),
    Mutant(
        "pool_every_tied_entry",
        "max-pool gradient to every entry equal to the window maximum",
        "small_cnn",
        lambda n: replace_rule(
            n, "maxpool2d", "A1", lambda s: RouteEveryMax(s.input, _g(s), s.layer.options["size"])
        ),
        ("convention pooling ties go to the first maximum (A1)",),
        parametric=False,
    ),
    Mutant(
        "pool_wrong_window",
        "max-pool gradient of output (i, j) routed inside window (j, i)",
        "small_cnn",
        lambda n: replace_rule(
            n, "maxpool2d", "A1", lambda s: tx.RouteMax(s.input, SwapSpatial(_g(s)), s.layer.options["size"])
        ),
        (
            # a tied window routes to the wrong window too
            "convention pooling ties go to the first maximum (A1)",
            "local maxpool2d: dL/dA1",
            "end-to-end dL/dW1",
            "end-to-end dL/dB1",
        ),
    ),
    Mutant(
        "flatten_column_major",
        "flatten gradient unflattened column-major (dP1 = reshape(dF)^T)",
        "small_cnn",
        lambda n: replace_rule(n, "flatten", "P1", lambda s: SwapSpatial(tx.Reshape(_g(s), s.input.shape))),
        ("local flatten: dL/dP1", "end-to-end dL/dW1", "end-to-end dL/dB1"),
    ),
    Mutant(
        "bce_a2_plus_y",
        "dL/dZ2 = A2 + Y (sign slip)",
        "small_cnn",
        lambda n: replace_rule(
            n, "loss", "Z2", lambda s: _scaled_like(s.rules["Z2"], plus(s.rules["Z2"].a.a, s.rules["Z2"].a.b))
        ),
        ("local bce loss: dL/dZ2", *E2E_ALL_SMALL_CNN),
    ),
    Mutant(
        "bce_with_sigmoid_factor",
        "dL/dZ2 = (A2 - Y) A2 (1 - A2): the quadratic-cost chain applied to BCE",
        "small_cnn",
        lambda n: replace_rule(
            n,
            "loss",
            "Z2",
            lambda s: _scaled_like(
                s.rules["Z2"],
                tx.Product(s.rules["Z2"].a, tx.Product(s.rules["Z2"].a.a, tx.OneMinus(s.rules["Z2"].a.a))),
            ),
        ),
        ("local bce loss: dL/dZ2", *E2E_ALL_SMALL_CNN),
    ),
    Mutant(
        "mse_missing_half",
        "the cost is sum (A2 - Y)^2 without its 1/2 while the rule stays dA2 = A2 - Y",
        "mlp",
        lambda n: replace_loss_forward(n, lambda s: SquaredError(s.input, n.target, s.forward.reduction)),
        ("local mse loss: dL/dA2", *E2E_ALL_MLP),
    ),
    Mutant(
        "bce_sum_for_mean",
        "dL/dZ2 = A2 - Y for a batch mean: the 1/N forgotten",
        "small_cnn",
        lambda n: replace_rule(n, "loss", "Z2", lambda s: tx.BatchScale(s.rules["Z2"].a, "sum")),
        # end to end runs one sample, where mean and sum agree; the local proof runs two
        ("local bce loss: dL/dZ2",),
    ),
    Mutant(
        "mse_mean_for_sum",
        "dL/dA2 = (A2 - Y) / N for a batch sum",
        "mlp",
        lambda n: replace_rule(n, "loss", "A2", lambda s: tx.BatchScale(s.rules["A2"].a, "mean")),
        # the mlp is proven end to end at its batch of 3, where 1/N is not 1
        (
            "local mse loss: dL/dA2",
            "end-to-end dL/dW1",
            "end-to-end dL/dB1",
            "end-to-end dL/dW2",
            "end-to-end dL/dB2",
        ),
    ),
    Mutant(
        "sigmoid_a_times_one_plus_a",
        "sigmoid'(z) = A (1 + A)",
        "sigmoid_mlp",
        lambda n: replace_rule(
            n,
            "sigmoid",
            "Z1",
            lambda s: tx.Product(_g(s), tx.Product(s.output, plus(one_like(s.output), s.output))),
        ),
        ("local sigmoid: dL/dZ1", "end-to-end dL/dW1", "end-to-end dL/dB1"),
    ),
    Mutant(
        "sigmoid_without_upstream",
        "dZ1 = A1 (1 - A1): the upstream gradient dA1 dropped",
        "sigmoid_mlp",
        lambda n: replace_rule(n, "sigmoid", "Z1", lambda s: tx.Product(s.output, tx.OneMinus(s.output))),
        ("local sigmoid: dL/dZ1", "end-to-end dL/dW1", "end-to-end dL/dB1"),
    ),
    Mutant(
        "sigmoid_without_one_minus",
        "dZ2 = dA2 A2: the (1 - A2) factor dropped",
        "sigmoid_mlp",
        lambda n: replace_rule(n, "sigmoid", "Z2", lambda s: tx.Product(_g(s), s.output)),
        ("local sigmoid: dL/dZ2", *E2E_ALL_MLP),
    ),
    Mutant(
        "tanh_without_square",
        "tanh'(z) = 1 - A: the square dropped",
        "tanh_mlp",
        lambda n: replace_rule(n, "tanh", "Z1", lambda s: tx.Product(_g(s), tx.OneMinus(s.output))),
        ("local tanh: dL/dZ1", "end-to-end dL/dW1", "end-to-end dL/dB1"),
    ),
    Mutant(
        "tanh_as_sigmoid",
        "tanh'(z) = A (1 - A): the sigmoid's derivative",
        "tanh_mlp",
        lambda n: replace_rule(
            n, "tanh", "Z2", lambda s: tx.Product(_g(s), tx.Product(s.output, tx.OneMinus(s.output)))
        ),
        ("local tanh: dL/dZ2", *E2E_ALL_MLP),
    ),
]


CATALOGUE += [
    Mutant(
        "avgpool_without_window_size",
        "avg-pool backward copies each gradient over its window without dividing by size^2",
        "vocab",
        lambda n: replace_rule(
            n,
            "avgpool2d",
            "A1",
            lambda s: type(s.rules["A1"])(SpreadUnscaled(_g(s), s.layer.options["size"]), s.rules["A1"].pads),
        ),
        ("local avgpool2d: dL/dA1", *E2E_CONV_VOCAB),
    ),
    Mutant(
        "conv_dW_stride_ignored",
        "dW2 = correlate(pad(A1), dZ2) with stride 1: the stride ignored in the weight rule",
        "strided",
        lambda n: replace_rule(
            n,
            "conv2d",
            "W2",
            lambda s: ops.StridedWeightGrad(s.rules["W2"].x, _g(s), 1, s.rules["W2"].kernel),
        ),
        ("local conv2d: dL/dW2", "end-to-end dL/dW2"),
    ),
    Mutant(
        "conv_dX_padding_mask_missing",
        "dA1 = the top-left of the padded-domain gradient: the padding's rows and columns not masked out",
        "strided",
        lambda n: replace_rule(n, "conv2d", "A1", lambda s: ops.Crop(s.rules["A1"].a, ((0, 2), (0, 2)))),
        ("local conv2d: dL/dA1", "end-to-end dL/dW1", "end-to-end dL/dB1"),
    ),
    Mutant(
        "softmax_ce_without_mean",
        "dL/dZ2 = A2 - Y for a batch mean over K classes: the 1/N forgotten",
        "vocab",
        lambda n: replace_rule(n, "loss", "Z2", lambda s: tx.BatchScale(s.rules["Z2"].a, "sum")),
        # the vocab network is proven end to end at its batch of 2, where 1/N is not 1
        ("local cross_entropy loss: dL/dZ2", *E2E_CONV_VOCAB, "end-to-end dL/dW2", "end-to-end dL/dB2"),
    ),
    Mutant(
        "softmax_ce_plus_y",
        "dL/dZ2 = A2 + Y over K classes (sign slip)",
        "vocab",
        lambda n: replace_rule(
            n, "loss", "Z2", lambda s: _scaled_like(s.rules["Z2"], plus(s.rules["Z2"].a.a, s.rules["Z2"].a.b))
        ),
        ("local cross_entropy loss: dL/dZ2", *E2E_CONV_VOCAB, "end-to-end dL/dW2", "end-to-end dL/dB2"),
    ),
]


def _with_loss_type(network: Network, entry) -> Network:
    """``network`` whose loss step is read through another loss type (its rules unchanged)."""
    *body, loss = network.steps
    return dataclasses.replace(network, steps=(*body, dataclasses.replace(loss, rule=entry)))


def _strided_input_as_full_correlation(step: Step) -> tx.Expr:
    """The stride-1 input rule, full convolution of dZ with W, zero beyond, cropped by the padding."""
    crop = step.rules[step.input.name]
    transposed = crop.a
    return ops.Crop(ZeroExtended(tx.FullConvolve(_g(step), _param(step, "W")), transposed.size), crop.pads)


CATALOGUE += [
    Mutant(
        "conv_dX_strided_as_full_convolution",
        "dA1 = full convolution of dZ2 with W2 for a stride-2 convolution: the stride-1 input rule, "
        "not the transposed convolution",
        "strided",
        lambda n: replace_rule(n, "conv2d", "A1", _strided_input_as_full_correlation),
        ("local conv2d: dL/dA1", "end-to-end dL/dW1", "end-to-end dL/dB1"),
    ),
    Mutant(
        "softmax_ce_any_target",
        "dL/dZ2 = A2 - Y for targets whose rows need not sum to 1 (multi-label or unnormalised soft "
        "targets): the hypothesis sum_k Y_k = 1 not used",
        "vocab",
        lambda n: _with_loss_type(n, CrossEntropyAnyTarget()),
        ("local cross_entropy loss: dL/dZ2", *E2E_CONV_VOCAB, "end-to-end dL/dW2", "end-to-end dL/dB2"),
    ),
]


def failed_obligations(records) -> list[str]:
    return [f"{r.level} {r.name}" for r in records if not r.holds]


# ------------------------------------------- wrong rewrites (the compiled reading's fusions)


@dataclass(frozen=True)
class WrongRewrite:
    """A plausible wrong fusion and the checker of ``derive.rewrites`` that must refute it.

    ``check()`` returns (holds, counterexample, patterns); ``expect`` is a piece of the
    counterexample we predict from the mistake (the window or entry it shows).
    """

    name: str
    mistake: str
    check: Callable[[], tuple[bool, str | None, int]]
    expect: str


def _window(size: int = 2) -> tuple[tx.Tensor, tx.Tensor]:
    return tx.Tensor("Z", (tx.BATCH, 1, size, size)), tx.Tensor("G", (tx.BATCH, 1, 1, 1))


def _wrong_rewrites() -> list[WrongRewrite]:
    from gradproof.derive import rewrites

    z, g = _window()
    routed_by_relu = tx.Product(tx.RouteMax(tx.Relu(z), g, 2), tx.StepMask(z))
    return [
        WrongRewrite(
            "pool_without_relu",
            "maxpool(relu(Z)) = maxpool(Z): the ReLU dropped when it moves after the pool",
            lambda: rewrites.window_identity(tx.MaxPool(tx.Relu(z), 2), tx.MaxPool(z, 2), 2, True),
            "window Z = [-1, -1, -1, -1]",
        ),
        WrongRewrite(
            "routing_without_the_mask",
            "route_max(relu(Z), G) [Z > 0] = route_max(Z, G): the ReLU mask forgotten after the pool",
            lambda: rewrites.window_identity(routed_by_relu, tx.RouteMax(z, g, 2), 2, True),
            "window Z = [0, 0, 0, 0]",
        ),
        WrongRewrite(
            "mask_of_the_pooled_relu",
            "route_max(relu(Z), G) = route_max(Z, G [maxpool(Z) > 0]): the original side's mask forgotten",
            lambda: rewrites.window_identity(
                tx.RouteMax(tx.Relu(z), g, 2),
                tx.RouteMax(z, tx.Product(g, tx.StepMask(tx.MaxPool(z, 2))), 2),
                2,
                True,
            ),
            "window Z = [0, 0, 0, 0]",
        ),
        WrongRewrite(
            "scan_keeps_the_last_maximum",
            "the pool keeps the last maximum (>= in the scan): a tie routes to the wrong entry",
            lambda: rewrites.routed_entry_identity(
                2, scan=lambda v: max(range(len(v)), key=lambda p: (v[p], p))
            ),
            "window Z = [0, 0, 0, 0]",
        ),
        WrongRewrite(
            "routed_taps_transposed",
            "the routed weight gradient reads x[r + k, q + m]: the taps' rows and columns swapped",
            lambda: rewrites.routed_weight_gradient_identity(
                rewrites.ConvSizes(1, 1, (3, 3), (4, 4), 2), offset=lambda r, q, m, k: (r + k, q + m)
            ),
            "dW[0,0,0,1]",
        ),
        WrongRewrite(
            "routed_entry_ignored",
            "the routed weight gradient reads every window at its top-left entry",
            lambda: rewrites.routed_weight_gradient_identity(
                rewrites.ConvSizes(1, 1, (3, 3), (4, 4), 2),
                offset=lambda r, q, m, k: (r - r % 2 + m, q - q % 2 + k),
            ),
            "routed entry at (0, 1)",
        ),
        *_wrong_window_helpers(),
    ]


def window_helpers(changed: str = "", old: str = "", new: str = "") -> dict:
    """The NumPy module's window helpers as functions, from their printed source, ``changed`` edited."""
    import functools

    import numpy as np

    from gradproof.codegen.numpy.printer import HELPERS, WINDOW_HELPERS

    namespace = {"np": np, "cache": functools.cache}
    for name in WINDOW_HELPERS:
        source = HELPERS[name]
        if name == changed:
            assert source.count(old) == 1, (name, old)
            source = source.replace(old, new)
        exec(source, namespace)
    return namespace


def _wrong_window_helpers() -> list[WrongRewrite]:
    """The NumPy module's pooled-convolution helpers, each printed wrong once."""
    from gradproof.derive import rewrites

    sizes = rewrites.ConvSizes(1, 2, (3, 3), (4, 4), 2)

    def correlation(helper, old, new):
        h = window_helpers(helper, old, new)
        return lambda: rewrites.window_correlation_identity(
            sizes, h["pooled_patches"], h["window_correlation"]
        )

    def weight(helper, old, new):
        h = window_helpers(helper, old, new)
        return lambda: rewrites.window_weight_gradient_identity(
            sizes, h["pooled_patches"], h["route_to_entries"], h["window_weight_gradient"]
        )

    def kept(old, new):
        return lambda: rewrites.kept_entry_identity(2, window_helpers("window_max", old, new)["window_max"])

    return [
        WrongRewrite(
            "patches_one_step_apart",
            "pooled_patches: the windows' patches one pixel apart instead of a window apart",
            correlation(
                "patch_index", "(ci * h + size * i + u) * w + size * j + v", "(ci * h + i + u) * w + j + v"
            ),
            "window (0, 1)",
        ),
        WrongRewrite(
            "kernels_not_shifted",
            "window_kernels: every entry of the window given the kernel at (0, 0)",
            correlation(
                "window_kernels", "taps[p, q, :, :, p : p + kh, q : q + kw]", "taps[p, q, :, :, :kh, :kw]"
            ),
            "entry (0, 1)",
        ),
        WrongRewrite(
            "bias_row_missing",
            "window_kernels: the bias's row left at 0",
            correlation(
                "window_kernels",
                "np.broadcast_to(b, (size, size, f))",
                "np.zeros((size, size, f), dtype=w.dtype)",
            ),
            "sample 0, window (0, 0), entry (0, 0), filter 0",
        ),
        WrongRewrite(
            "tournament_keeps_the_later_on_ties",
            "window_max: the later group wins on >= , so a tie keeps the last maximum",
            kept("won = (later > earlier)", "won = (later >= earlier)"),
            "window Z = [0, 0, 0, 0]",
        ),
        WrongRewrite(
            "fold_not_shifted",
            "window_weight_gradient: each entry's weight gradient read at the kernel's corner, not shifted",
            weight(
                "window_weight_gradient",
                "taps[p, q, :, :, p : p + kh, q : q + kw]",
                "taps[p, q, :, :, :kh, :kw]",
            ),
            "kept entry at (0, 1)",
        ),
        WrongRewrite(
            "routed_to_the_first_entry",
            "route_to_entries: every window's gradient sent to its first entry",
            weight("route_to_entries", "kept = index == np.arange(", "kept = 0 * index == np.arange("),
            "kept entry at (0, 1)",
        ),
        WrongRewrite(
            "bias_gradient_of_one_entry",
            "window_weight_gradient: the bias gradient of the first entry only",
            weight("window_weight_gradient", "d[:, -1].reshape(size * size, f).sum(axis=0)", "d[:f, -1]"),
            "dB[0]",
        ),
    ]


WRONG_REWRITES = _wrong_rewrites()
