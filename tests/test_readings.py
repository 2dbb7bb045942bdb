"""One rule, many readings: every operation has a method in every reading, and the readings agree.

The property test builds random nested expression trees over every operation of the language
(``OPERATIONS``) and evaluates each at a random point in three independent ways: the symbolic
reading (exact SymPy entries, the prover's), the NumPy source executed, and the plain-text
statement parsed back into Python. They must agree to rounding. The LaTeX is checked for balanced
braces and brackets. A printer that brackets by looking at printed text, not at the tree, fails
here (``dA1 * 1 - (A1 * A1)`` for ``Product(dA1, OneMinus(Product(A1, A1)))``).
"""

from __future__ import annotations

import functools
import re

import mpmath
import numpy as np
import pytest
import sympy as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.lib.stride_tricks import as_strided

from gradproof.codegen.latex.names import Names
from gradproof.codegen.latex.printer import LatexReading
from gradproof.codegen.numpy.printer import HELPER_ORDER, HELPERS, NumpyReading
from gradproof.derive import texpr as tx
from gradproof.derive.statement import TextReading, text
from gradproof.derive.symbolic import SymbolicReading
from gradproof.derive.texpr import OPERATIONS, Expr

READINGS = [SymbolicReading, TextReading, NumpyReading, LatexReading]
BATCH = 2
mpmath.mp.dps = 40


@pytest.mark.parametrize("reading", READINGS, ids=lambda r: r.__name__)
def test_every_operation_has_a_reading(reading):
    missing = [op.__name__ for op in OPERATIONS if not hasattr(reading, f"read_{op.__name__}")]
    assert missing == []


def test_the_operation_list_is_complete():
    """Every node class defined in the language is listed in OPERATIONS."""
    import gradproof.derive.texpr as texpr

    defined = {
        obj
        for obj in vars(texpr).values()
        if isinstance(obj, type) and issubclass(obj, Expr) and obj is not Expr
    }
    assert defined == set(OPERATIONS)


# ------------------------------------------------------------ random trees

N = tx.BATCH
# The shapes the trees live in, and the leaf tensors of each (names the LaTeX reading knows).
ROWS, SQUARE, VECTOR = (N, 4), (4, 4), (4,)
IMAGE, POOLED, KERNEL, CHANNEL = (N, 1, 2, 2), (N, 1, 1, 1), (1, 1, 2, 2), (1,)
LEAVES = {
    ROWS: ("A", "Z"),
    SQUARE: ("W",),
    VECTOR: ("B",),
    IMAGE: ("X", "P"),
    POOLED: ("G",),
    KERNEL: ("K",),
    CHANNEL: ("C",),
}
TARGET = tx.Tensor("Y", ROWS)
ELEMENTWISE_UNARY = (tx.OneMinus, tx.Relu, tx.StepMask, tx.Sigmoid, tx.Tanh)
ELEMENTWISE_BINARY = (tx.Product, tx.Difference)


def _producers(shape, sub):
    """Strategies for a tree of ``shape`` one level up from sub-trees drawn by ``sub``."""
    options = [st.builds(op, sub(shape)) for op in ELEMENTWISE_UNARY]
    options += [st.builds(op, sub(shape), sub(shape)) for op in ELEMENTWISE_BINARY]
    options.append(st.builds(tx.BatchScale, sub(shape), st.sampled_from(("mean", "sum"))))
    if shape == ROWS:
        options += [
            st.builds(tx.MatMul, sub(ROWS), sub(SQUARE)),
            st.builds(tx.AddBias, sub(ROWS), sub(VECTOR)),
            st.builds(tx.Reshape, sub(IMAGE), st.just(ROWS)),
        ]
    if shape == SQUARE:
        options += [
            st.builds(tx.MatMul, st.builds(tx.Transpose, sub(ROWS)), sub(ROWS)),
            st.builds(tx.Transpose, sub(SQUARE)),
            st.builds(tx.MatMul, sub(SQUARE), sub(SQUARE)),
        ]
    if shape == VECTOR:
        options += [
            st.builds(tx.SumAxes, sub(ROWS), st.just((0,))),
            st.builds(tx.SumAxes, sub(SQUARE), st.sampled_from(((0,), (1,)))),
        ]
    if shape == IMAGE:
        options += [
            st.builds(tx.Reshape, sub(ROWS), st.just(IMAGE)),
            st.builds(tx.FullConvolve, sub(POOLED), sub(KERNEL)),
            st.builds(tx.RouteMax, sub(IMAGE), sub(POOLED), st.just(2)),
            st.builds(tx.AddBias, sub(IMAGE), sub(CHANNEL)),
        ]
    if shape == POOLED:
        options += [
            st.builds(tx.MaxPool, sub(IMAGE), st.just(2)),
            st.builds(tx.Correlate, sub(IMAGE), sub(KERNEL)),
        ]
    if shape == KERNEL:
        options.append(st.builds(tx.Correlate, sub(IMAGE), sub(POOLED)))
    if shape == CHANNEL:
        options.append(st.builds(tx.SumAxes, sub(IMAGE), st.just((0, 2, 3))))
    return options


def trees(shape, depth: int = 3):
    """Random expression trees of ``shape``, at most ``depth`` operations deep."""
    leaves = st.sampled_from([tx.Tensor(name, shape) for name in LEAVES[shape]])
    if depth == 0:
        return leaves
    deeper = st.one_of(_producers(shape, lambda s: trees(s, depth - 1)))
    return st.one_of(leaves, deeper)


losses = st.one_of(
    st.builds(tx.HalfSquaredError, trees(ROWS, 3), st.just(TARGET), st.sampled_from(("mean", "sum"))),
    st.builds(
        tx.BinaryCrossEntropyWithLogits, trees(ROWS, 3), st.just(TARGET), st.sampled_from(("mean", "sum"))
    ),
)


def _concrete(shape):
    return tuple(BATCH if d == N else d for d in shape)


def _point(seed: int) -> dict[str, np.ndarray]:
    """Exact values (multiples of 1/8, never 0) for every leaf tensor and the target."""
    rng = np.random.default_rng(seed)
    point = {}
    for shape, names in [*LEAVES.items(), (TARGET.shape, ("Y",))]:
        for name in names:
            eighths = rng.integers(1, 17, size=_concrete(shape)) * rng.choice([-1, 1], size=_concrete(shape))
            point[name] = eighths / 8
    return point


def symbolic_value(expr: tx.Expr, point) -> np.ndarray:
    env = {}
    for name, values in point.items():
        exact = np.empty(values.shape, dtype=object)
        for index in np.ndindex(values.shape):
            exact[index] = sp.Rational(int(values[index] * 8), 8)
        env[name] = exact
    entries = SymbolicReading(env, BATCH)(expr)
    return np.vectorize(lambda v: float(_evaluate(v)), otypes=[float])(entries)


def _evaluate(node: sp.Basic) -> mpmath.mpf:
    """An entry of the symbolic reading as a 40-digit number (its own functions included)."""
    args = [_evaluate(a) for a in node.args] if node.args else []
    if node.is_NumberSymbol:
        return mpmath.mpf(str(node.evalf(50)))
    if node.is_Number:
        return mpmath.mpf(node.p) / node.q if node.is_Rational else mpmath.mpf(str(node))
    if node.is_Add:
        return mpmath.fsum(args)
    if node.is_Mul:
        return mpmath.fprod(args)
    if node.is_Pow:
        return args[0] ** args[1]
    name = type(node).__name__
    if name == "exp":
        return mpmath.exp(args[0])
    if name == "log":
        return mpmath.log(args[0])
    if name == "sigmoid":
        return 1 / (1 + mpmath.exp(-args[0]))
    if name == "relu":
        return max(mpmath.mpf(0), args[0])
    if name == "tanh":
        return mpmath.tanh(args[0])
    if name in ("window_max", "Max"):
        return max(args)
    if name == "step":
        return mpmath.mpf(1) if args[0] > 0 else mpmath.mpf(0) if args[0] < 0 else args[1]
    raise AssertionError(f"no numeric meaning for {name}")


def numpy_value(expr: tx.Expr, point) -> np.ndarray:
    reading = NumpyReading()
    source = reading(expr)
    namespace = {"np": np, "as_strided": as_strided, "cache": functools.cache, "N": BATCH}
    for helper in HELPER_ORDER:
        exec(HELPERS[helper], namespace)  # noqa: S102 - the reading's own helper definitions
    namespace.update({name: value.copy() for name, value in point.items()})
    return np.asarray(eval(source, namespace), dtype=float), source  # noqa: S307


def _text_namespace(point) -> dict:
    """Python meanings of the words of the plain-text reading (written here, not imported)."""

    def correlate(x, k):
        if k.shape[0] == x.shape[0] and k.ndim == 4 and x.shape[0] == BATCH and k.shape != KERNEL:
            h, w = x.shape[2] - k.shape[2] + 1, x.shape[3] - k.shape[3] + 1
            out = np.zeros((k.shape[1], x.shape[1], h, w))
            for f, c, m, n in np.ndindex(out.shape):
                out[f, c, m, n] = np.sum(x[:, c, m : m + k.shape[2], n : n + k.shape[3]] * k[:, f])
            return out
        h, w = x.shape[2] - k.shape[2] + 1, x.shape[3] - k.shape[3] + 1
        out = np.zeros((x.shape[0], k.shape[0], h, w))
        for b, f, i, j in np.ndindex(out.shape):
            out[b, f, i, j] = np.sum(x[b, :, i : i + k.shape[2], j : j + k.shape[3]] * k[f])
        return out

    def full_convolve(g, k):
        kh, kw = k.shape[2:]
        out = np.zeros((g.shape[0], k.shape[1], g.shape[2] + kh - 1, g.shape[3] + kw - 1))
        for b, f, i, j in np.ndindex(g.shape):
            out[b, :, i : i + kh, j : j + kw] += g[b, f, i, j] * k[f]
        return out

    def maxpool(size, a):
        n, c, h, w = a.shape
        return a.reshape(n, c, h // size, size, w // size, size).max(axis=(3, 5))

    def route_max(a, g):
        size = a.shape[2] // g.shape[2]
        out = np.zeros(a.shape)
        for b, c, i, j in np.ndindex(g.shape):
            window = a[b, c, i * size : (i + 1) * size, j * size : (j + 1) * size]
            p, q = divmod(int(np.argmax(window)), size)  # argmax: the first maximum, row-major
            out[b, c, i * size + p, j * size + q] = g[b, c, i, j]
        return out

    def reshape(a, dims):
        return a.reshape(a.shape[0], *(int(d) for d in dims.split("x")[1:]))

    def add_bias(a, bias):
        return a + bias.reshape((1, -1) + (1,) * (a.ndim - 2))

    return {
        "correlate": correlate,
        "full_convolve": full_convolve,
        "maxpool": maxpool,
        "route_max": route_max,
        "reshape": reshape,
        "sum": lambda a, axes: a.sum(axis=axes),
        "relu": lambda a: np.maximum(a, 0),
        "sigmoid": lambda a: 1 / (1 + np.exp(-a)),
        "tanh": np.tanh,
        "step": lambda a: (a > 0).astype(float),
        "N": BATCH,
        **{name: value.copy() for name, value in point.items()},
    }


def text_value(expr: tx.Expr, point) -> np.ndarray:
    """The plain-text statement, translated word for word into Python and evaluated."""
    statement = text(expr)
    python = statement.replace("·", "@").replace("⊙", "*").replace("^T", ".T")
    python = python.replace("[", "step(").replace(" > 0]", ")")
    python = re.sub(r"maxpool(\d+)x\d+\(", r"maxpool(\1, ", python)
    python = re.sub(r"\b(N(?:x\d+)+)\b", r'"\1"', python)
    return np.asarray(eval(python, _text_namespace(point)), dtype=float), statement  # noqa: S307


def _balanced(latex: str) -> bool:
    depth = {"{": 0, "[": 0, "(": 0}
    pairs = {"}": "{", "]": "[", ")": "("}
    stripped = latex.replace(r"\{", "").replace(r"\}", "")
    for char in stripped:
        if char in depth:
            depth[char] += 1
        elif char in pairs:
            depth[pairs[char]] -= 1
            if depth[pairs[char]] < 0:
                return False
    lefts, rights = len(re.findall(r"\\left\b", latex)), len(re.findall(r"\\right\b", latex))
    return all(v == 0 for v in depth.values()) and lefts == rights


SETTINGS = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
    report_multiple_bugs=False,
)


@SETTINGS
@given(expr=st.one_of(trees(ROWS), trees(SQUARE), trees(IMAGE), trees(VECTOR)), seed=st.integers(0, 2**16))
def test_numpy_reading_agrees_with_the_symbolic_reading(expr, seed):
    point = _point(seed)
    expected = symbolic_value(expr, point)
    got, source = numpy_value(expr, point)
    assert got.shape == expected.shape, source
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-9, err_msg=f"{expr}\n{source}")


@SETTINGS
@given(expr=st.one_of(trees(ROWS), trees(SQUARE), trees(IMAGE), trees(VECTOR)), seed=st.integers(0, 2**16))
def test_text_reading_agrees_with_the_symbolic_reading(expr, seed):
    point = _point(seed)
    expected = symbolic_value(expr, point)
    got, statement = text_value(expr, point)
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-9, err_msg=f"{expr}\n{statement}")


@SETTINGS
@given(expr=losses, seed=st.integers(0, 2**16))
def test_numpy_loss_agrees_with_the_symbolic_loss(expr, seed):
    point = _point(seed)
    expected = symbolic_value(expr, point)
    got, source = numpy_value(expr, point)
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-9, err_msg=f"{expr}\n{source}")


@settings(max_examples=150, deadline=None, derandomize=True)
@given(expr=st.one_of(trees(ROWS), trees(IMAGE), trees(SQUARE), losses))
def test_latex_reading_is_balanced(expr):
    for brackets in ("nested", "sized", "plain"):
        latex = LatexReading(Names({}), brackets=brackets)(expr)
        assert _balanced(latex), latex


def test_the_counterexample_of_text_based_bracketing():
    """The defect the property test found first: brackets decided by the printed text."""
    a1, da1 = tx.Tensor("A1", ROWS), tx.Tensor("dA1", ROWS)
    expr = tx.Product(da1, tx.OneMinus(tx.Product(a1, a1)))
    assert NumpyReading()(expr) == "dA1 * (1 - (A1 * A1))"
    point = {"A1": np.full(_concrete(ROWS), 0.5), "dA1": np.ones(_concrete(ROWS))}
    got, _ = numpy_value(expr, point)
    assert np.allclose(got, 0.75)


def test_reshape_prints_its_operand_once():
    a, b = tx.Tensor("A", ROWS), tx.Tensor("Z", ROWS)
    source = NumpyReading()(tx.Reshape(tx.Difference(a, b), IMAGE))
    assert source.count("A") == 1, source
