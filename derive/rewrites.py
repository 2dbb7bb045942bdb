"""The rewrites the generated code computes layers by, each an identity proven exactly.

The compiled kernels and the NumPy module's pooled convolutions do not print the rules as written:
they apply ReLU after the max-pool, keep each window's maximum from the forward pass and compute
the convolution's weight gradient from the kept entries only (the NumPy module also computes the
correlation one pooling window at a time, at the end of this file). Each of these is an identity
between expressions of the language (or between an expression and the code that runs), proven
here; the emitters fuse only by rewrites whose records hold, and each comment names them.

The identities about one pooling window are decided by *order patterns*. Every side is built from
maxima, ReLU, the step mask ``[t > 0]`` (0 at 0) and the first-maximum indicator, so its value at
``t`` is fixed by how the entries of ``t`` (and 0) are ordered, ties included: a strictly
increasing map that fixes 0 commutes with all of them. Evaluating both sides exactly on one
representative of every weak ordering (541 for a 2x2 window with 0) therefore decides the identity
for all real windows, kinks and ties included. Windows do not overlap, so a window identity holds
for tensors of every size. The weight-gradient identity is a regrouping of a sum: it is proven as
an exact polynomial identity in symbolic inputs and gradients, for every position the routed entry
can take.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import sympy as sp

from gradproof.derive import texpr as tx
from gradproof.derive.canonical import equal
from gradproof.derive.records import ProofRecord, timed
from gradproof.derive.symbolic import SymbolicReading, symbol_array

# Weak orderings of k + 1 items (Fubini numbers): 3 for k = 1, 541 for a 2x2 window, 10^8 for 3x3.
MAX_PATTERNS = 100_000
# The largest weight-gradient identity proven at the network's own sizes (products summed, over
# all routed positions); a larger one is proven at the reduced sizes ``_reduced`` gives.
MAX_REGROUPED_TERMS = 60_000
PROOF_BATCH = 2


def weak_orderings(k: int) -> Iterator[tuple[int, ...]]:
    """Every weak ordering of k items, as ranks 0, 1, ... (equal ranks tie), each exactly once."""
    for ranks in itertools.product(range(k), repeat=k):
        if set(ranks) == set(range(max(ranks) + 1)):
            yield ranks


def fubini(k: int) -> int:
    """The number of weak orderings of k items (1, 1, 3, 13, 75, 541, ...)."""
    total = [1]
    for n in range(1, k + 1):
        total.append(sum(sp.binomial(n, j) * total[n - j] for j in range(1, n + 1)))
    return int(total[k])


def window_patterns(size: int, with_zero: bool) -> Iterator[tuple[int, ...]]:
    """One window filling (row-major) per weak ordering of its entries, and of 0 when asked."""
    k = size * size
    if not with_zero:
        yield from weak_orderings(k)
        return
    for ranks in weak_orderings(k + 1):
        zero = ranks[-1]  # the last item stands for the number 0
        yield tuple(r - zero for r in ranks[:-1])


def _window_tensors(size: int) -> tuple[tx.Tensor, tx.Tensor]:
    return tx.Tensor("Z", (tx.BATCH, 1, size, size)), tx.Tensor("G", (tx.BATCH, 1, 1, 1))


def _reading(values: tuple[int, ...], size: int, upstream: sp.Symbol) -> SymbolicReading:
    window = np.array([sp.Integer(v) for v in values], dtype=object).reshape(1, 1, size, size)
    return SymbolicReading({"Z": window, "G": np.array([[[[upstream]]]], dtype=object)}, 1)


def window_identity(lhs: tx.Expr, rhs: tx.Expr, size: int, with_zero: bool) -> tuple[bool, str | None, int]:
    """Decide ``lhs == rhs`` for one window ``Z`` (and a symbolic upstream ``G``) on every order pattern.

    Returns (holds, the first counterexample, the number of patterns checked).
    """
    g = sp.Symbol("g")
    checked = 0
    for values in window_patterns(size, with_zero):
        reading = _reading(values, size, g)
        left, right = reading(lhs), reading(rhs)
        checked += 1
        if any(sp.expand(a - b) != 0 for a, b in zip(left.ravel(), right.ravel(), strict=True)):
            shown = list(left.ravel()), list(right.ravel())
            return False, f"window Z = {list(values)}, upstream g: {shown[0]} != {shown[1]}", checked
    return True, None, checked


def scan_first_max(values: tuple) -> int:
    """The position the compiled kernel keeps: a row-major scan that moves on strictly greater only."""
    best = 0
    for position in range(1, len(values)):
        if values[position] > values[best]:
            best = position
    return best


def routed_entry_identity(
    size: int, scan: Callable[[tuple], int] = scan_first_max
) -> tuple[bool, str | None, int]:
    """``route_max(Z, G)`` is ``G`` at the scanned position of the window, 0 elsewhere, on every pattern."""
    zt, gt = _window_tensors(size)
    g = sp.Symbol("g")
    checked = 0
    for values in window_patterns(size, with_zero=False):
        routed = _reading(values, size, g)(tx.RouteMax(zt, gt, size)).ravel()
        expected = [g if p == scan(values) else 0 for p in range(size * size)]
        checked += 1
        if any(sp.expand(a - b) != 0 for a, b in zip(routed, expected, strict=True)):
            return False, f"window Z = {list(values)}: route_max {list(routed)}, scan {expected}", checked
    return True, None, checked


@dataclass(frozen=True)
class ConvSizes:
    """The sizes of a convolution whose output is max-pooled: X (N, C, H, W) -> Z (N, F, oh, ow)."""

    channels: int
    filters: int
    kernel: tuple[int, int]
    out: tuple[int, int]
    size: int

    @property
    def terms(self) -> int:
        kh, kw = self.kernel
        return PROOF_BATCH * self.filters * self.channels * kh * kw * self.out[0] * self.out[1]

    def reduced(self) -> ConvSizes:
        """Two filters, two channels, a 2x2 grid of windows: the same identity, fewer entries."""
        return ConvSizes(
            min(self.channels, 2), min(self.filters, 2), self.kernel, (2 * self.size,) * 2, self.size
        )

    def text(self) -> str:
        return (
            f"C={self.channels}, F={self.filters}, kernel {self.kernel[0]}x{self.kernel[1]}, "
            f"pooled input {self.out[0]}x{self.out[1]}, window {self.size}x{self.size}, batch {PROOF_BATCH}"
        )


def routed_weight_gradient_identity(
    sizes: ConvSizes, offset: Callable[[int, int, int, int], tuple[int, int]] | None = None
) -> tuple[bool, str | None, int]:
    """Exact: correlate(X, D) = the sum over windows of X at the routed entry's offset times H, and
    sum(D) = sum(H), where D is H placed at one entry of each window, for every entry it can take.

    ``offset(r, q, m, n)`` is the input position the kernel reads for the routed entry ``(r, q)``
    and the tap ``(m, n)`` (the right one is ``(r + m, q + n)``; a test passes wrong ones).
    Windows have distinct ``H`` symbols, so one routed position shared by all windows at a time
    decides every mixture of positions.
    """
    offset = offset or (lambda r, q, m, n: (r + m, q + n))
    s, (kh, kw), (oh, ow) = sizes.size, sizes.kernel, sizes.out
    n, c, f = PROOF_BATCH, sizes.channels, sizes.filters
    x = symbol_array("X", (n, c, oh + kh - 1, ow + kw - 1))
    h = symbol_array("H", (n, f, oh // s, ow // s))
    xt = tx.Tensor("X", (tx.BATCH, c, oh + kh - 1, ow + kw - 1))
    dt = tx.Tensor("D", (tx.BATCH, f, oh, ow))
    checked = 0
    for p, q in itertools.product(range(s), repeat=2):
        d = np.full((n, f, oh, ow), sp.Integer(0), dtype=object)
        d[:, :, p::s, q::s] = h
        reading = SymbolicReading({"X": x, "D": d}, n)
        dense = reading(tx.Correlate(xt, dt))
        bias = reading(tx.SumAxes(dt, (0, 2, 3)))
        for fi, ci, m, k in np.ndindex(dense.shape):
            routed = sp.Add(
                *[
                    x[(b, ci, *offset(i * s + p, j * s + q, m, k))] * h[b, fi, i, j]
                    for b in range(n)
                    for i in range(oh // s)
                    for j in range(ow // s)
                ]
            )
            checked += 1
            if not equal(dense[fi, ci, m, k], routed):
                return (
                    False,
                    f"dW[{fi},{ci},{m},{k}] with the routed entry at ({p}, {q}) of every window",
                    checked,
                )
        for fi in range(f):
            if not equal(bias[fi], sp.Add(*h[:, fi].ravel())):
                return False, f"dB[{fi}] with the routed entry at ({p}, {q}) of every window", checked
    return True, None, checked


# ------------------------------------------------------------------ the rewrites


def relu_after_pool(size: int) -> tuple[tx.Expr, tx.Expr]:
    zt, _ = _window_tensors(size)
    return tx.MaxPool(tx.Relu(zt), size), tx.Relu(tx.MaxPool(zt, size))


def relu_after_pool_backward(size: int) -> tuple[tx.Expr, tx.Expr]:
    zt, gt = _window_tensors(size)
    lhs = tx.Product(tx.RouteMax(tx.Relu(zt), gt, size), tx.StepMask(zt))
    rhs = tx.RouteMax(zt, tx.Product(gt, tx.StepMask(tx.MaxPool(zt, size))), size)
    return lhs, rhs


def rewrite_note(record: ProofRecord) -> str:
    """How a comment of the generated code names a rewrite and its verdict."""
    return f"[rewrite {record.key}, {'proven' if record.holds else 'NOT PROVEN'}: {record.statement}]"


def _window_record(key: str, name: str, statement: str, size: int, with_zero: bool, check) -> ProofRecord:
    k = size * size + (1 if with_zero else 0)
    patterns = fubini(k)
    record = ProofRecord(
        "rewrite",
        f"{name} ({size}x{size})",
        statement,
        patterns,
        f"exact evaluation on every weak ordering of a window's {size * size} entries"
        + (" and 0" if with_zero else "")
        + " (ties and kinks included); windows are disjoint, so every size",
        key=key,
        window=size,
    )
    if patterns > MAX_PATTERNS:
        record.failing = f"not proven: {patterns} order patterns is more than this method enumerates"
        return record
    return timed(record, lambda: check()[:2])


def prove_relu_after_pool(size: int) -> ProofRecord:
    lhs, rhs = relu_after_pool(size)
    return _window_record(
        "relu-maxpool",
        "ReLU commutes with max-pool",
        "maxpool(relu(Z)) = relu(maxpool(Z))",
        size,
        True,
        lambda: window_identity(lhs, rhs, size, with_zero=True),
    )


def prove_relu_after_pool_backward(size: int) -> ProofRecord:
    lhs, rhs = relu_after_pool_backward(size)
    return _window_record(
        "relu-maxpool-routing",
        "routing through ReLU after the pool",
        "route_max(relu(Z), G) ⊙ [Z > 0] = route_max(Z, G ⊙ [maxpool(Z) > 0])",
        size,
        True,
        lambda: window_identity(lhs, rhs, size, with_zero=True),
    )


def prove_routed_entry(size: int) -> ProofRecord:
    return _window_record(
        "routed-entry",
        "the kept maximum is the routed entry",
        "route_max(Z, G) = G at the window entry a row-major scan keeps (moving on strictly greater "
        "only), 0 at the others",
        size,
        False,
        lambda: routed_entry_identity(size),
    )


def prove_routed_weight_gradient(sizes: ConvSizes) -> ProofRecord:
    proven_at = sizes if sizes.terms <= MAX_REGROUPED_TERMS else sizes.reduced()
    where = "the network's sizes" if proven_at == sizes else "reduced sizes (same window and kernel)"
    kh, kw = sizes.kernel
    record = ProofRecord(
        "rewrite",
        f"weight gradient from routed entries ({sizes.size}x{sizes.size})",
        "correlate(X, D) = sum over windows (I, J) of X[b, c, r + m, q + n] H[b, f, I, J] and "
        "sum(D, axes=(0, 2, 3)) = sum(H, axes=(0, 2, 3)), where D is H at each window's routed "
        f"entry (r, q) and 0 elsewhere: {kh * kw} multiply-adds per window instead of "
        f"{kh * kw * sizes.size**2}",
        proven_at.filters * proven_at.channels * kh * kw * sizes.size**2,
        f"exact polynomial identity in symbolic X and H, for every routed position, at {where}: "
        f"{proven_at.text()}; the identity is entry-wise in (f, c, m, n) and a sum of per-window terms",
        key="routed-weight-gradient",
        window=sizes.size,
    )
    return timed(record, lambda: routed_weight_gradient_identity(proven_at)[:2])


# ------------------------------------------------------------------ the NumPy reading's pooled convolution
#
# The generated NumPy module computes a convolution whose ReLU output is max-pooled one pooling
# window at a time: a row per window holding the input patch all its outputs read, and a 1; one
# matrix product with the kernels of the window's size * size outputs side by side (and the biases)
# gives every output of the window; a tournament keeps each window's first maximum; the weight and
# bias gradients come from one product of the patches with the gradients at the kept entries. The
# helpers that do this are part of that reading (codegen/numpy/printer.py); the identities below
# take them as arguments and evaluate them on symbolic arrays, so that what is proven is the code
# the module runs.


def _symbolic_conv(sizes: ConvSizes):
    (kh, kw), (oh, ow) = sizes.kernel, sizes.out
    n, c, f = PROOF_BATCH, sizes.channels, sizes.filters
    x = symbol_array("X", (n, c, oh + kh - 1, ow + kw - 1))
    w, b = symbol_array("W", (f, c, kh, kw)), symbol_array("B", (f,))
    xt = tx.Tensor("X", (tx.BATCH, *x.shape[1:]))
    wt, bt = tx.Tensor("W", w.shape), tx.Tensor("B", b.shape)
    return x, w, b, xt, wt, bt


def window_correlation_identity(
    sizes: ConvSizes, patches: Callable, correlation: Callable
) -> tuple[bool, str | None, int]:
    """Exact: ``correlation(patches(X), W, B)`` is ``correlate(X, W) + B`` at every entry of every
    window: entry (p, q), filter f, window (I, J, n) = the output of f at (size*I + p, size*J + q)."""
    s, (kh, kw), (oh, ow) = sizes.size, sizes.kernel, sizes.out
    x, w, b, xt, wt, bt = _symbolic_conv(sizes)
    expected = SymbolicReading({"X": x, "W": w, "B": b}, PROOF_BATCH)(tx.AddBias(tx.Correlate(xt, wt), bt))
    computed = np.asarray(correlation(patches(x, kh, kw, s), w, b, s))
    computed = computed.reshape(s, s, sizes.filters, oh // s, ow // s, PROOF_BATCH)
    checked = 0
    for (p, q, f, i, j, n), value in np.ndenumerate(computed):
        checked += 1
        if not equal(sp.sympify(value), expected[n, f, s * i + p, s * j + q]):
            return False, f"sample {n}, window ({i}, {j}), entry ({p}, {q}), filter {f}", checked
    return True, None, checked


def kept_entry_identity(size: int, window_max: Callable) -> tuple[bool, str | None, int]:
    """``window_max`` keeps the window's maximum and the entry ``route_max`` routes to, on every order
    pattern of the window's entries (ties included)."""

    def kept(values: tuple) -> int:
        best, index = window_max(np.array(values, dtype=np.int64).reshape(len(values), 1, 1))
        if int(best.ravel()[0]) != max(values):
            return -1  # not the maximum: no entry of the window matches
        return int(np.asarray(index).ravel()[0])

    return routed_entry_identity(size, kept)


def window_weight_gradient_identity(
    sizes: ConvSizes, patches: Callable, route: Callable, gradient: Callable
) -> tuple[bool, str | None, int]:
    """Exact: ``gradient(patches(X), route(H, kept))`` is (``correlate(X, D)``, ``sum(D, axes=(0, 2,
    3))``), where D is the window gradient H at each window's kept entry and 0 elsewhere, for every
    entry the kept one can be. Windows have distinct H symbols, so one kept entry shared by all
    windows at a time decides every mixture of them."""
    s, (kh, kw), (oh, ow) = sizes.size, sizes.kernel, sizes.out
    n, f = PROOF_BATCH, sizes.filters
    x, w, _, xt, _, _ = _symbolic_conv(sizes)
    h = symbol_array("H", (n, f, oh // s, ow // s))
    dt = tx.Tensor("D", (tx.BATCH, f, oh, ow))
    rows = patches(x, kh, kw, s)
    checked = 0
    for p, q in itertools.product(range(s), repeat=2):
        d = np.full((n, f, oh, ow), sp.Integer(0), dtype=object)
        d[:, :, p::s, q::s] = h
        reading = SymbolicReading({"X": x, "D": d}, n)
        dense, bias = reading(tx.Correlate(xt, dt)), reading(tx.SumAxes(dt, (0, 2, 3)))
        window_grads = h.transpose(1, 2, 3, 0).reshape(f, -1)  # (f, (I, J, n)), as the module keeps them
        kept = np.full(window_grads.shape, p * s + q, dtype=np.uint8)
        dw, db = gradient(rows, route(window_grads, kept, s * s), w.shape, s)
        for index in np.ndindex(dense.shape):
            checked += 1
            if not equal(sp.sympify(dw[index]), dense[index]):
                return False, f"dW{list(index)} with the kept entry at ({p}, {q}) of every window", checked
        for fi in range(f):
            checked += 1
            if not equal(sp.sympify(db[fi]), bias[fi]):
                return False, f"dB[{fi}] with the kept entry at ({p}, {q}) of every window", checked
    return True, None, checked


def _sized_record(key: str, name: str, statement: str, sizes: ConvSizes, entries, check) -> ProofRecord:
    proven_at = sizes if sizes.terms <= MAX_REGROUPED_TERMS else sizes.reduced()
    where = "the network's sizes" if proven_at == sizes else "reduced sizes (same window and kernel)"
    record = ProofRecord(
        "rewrite",
        f"{name} ({sizes.size}x{sizes.size})",
        statement,
        entries(proven_at),
        f"exact identity in symbolic X, W, B and H, the module's helpers evaluated on them, at {where}: "
        f"{proven_at.text()}; each output is a sum of per-window terms",
        key=key,
        window=sizes.size,
    )
    return timed(record, lambda: check(proven_at)[:2])


def prove_window_correlation(sizes: ConvSizes, patches: Callable, correlation: Callable) -> ProofRecord:
    s, (kh, kw) = sizes.size, sizes.kernel
    return _sized_record(
        "window-correlation",
        "the correlation a pooling window at a time",
        f"correlate(X, W) + B at entry (p, q) of window (I, J) = window_kernels(W, B)[(p, q, f)] · "
        f"pooled_patches(X)[:, (I, J, n)]: W shifted by (p, q) and the bias, times the "
        f"{(kh + s - 1) * (kw + s - 1)} inputs of each channel under the window and a 1",
        sizes,
        lambda at: PROOF_BATCH * at.filters * at.out[0] * at.out[1],
        lambda at: window_correlation_identity(at, patches, correlation),
    )


def prove_kept_entry(size: int, window_max: Callable) -> ProofRecord:
    return _window_record(
        "tournament-entry",
        "the tournament keeps the routed entry",
        "window_max(Z) = (maxpool(Z), the entry route_max(Z, G) routes G to): of two neighbouring "
        "groups of a window's entries, the later wins only when strictly greater",
        size,
        False,
        lambda: kept_entry_identity(size, window_max),
    )


def prove_window_weight_gradient(
    sizes: ConvSizes, patches: Callable, route: Callable, gradient: Callable
) -> ProofRecord:
    return _sized_record(
        "window-weight-gradient",
        "weight and bias gradients a pooling window at a time",
        "(correlate(X, D), sum(D, axes=(0, 2, 3))) = window_weight_gradient(pooled_patches(X), "
        "route_to_entries(H, kept)), where D is H at each window's kept entry and 0 elsewhere: "
        "the gradient of the window kernels, each weight's and bias's copies summed",
        sizes,
        lambda at: at.filters * at.channels * at.kernel[0] * at.kernel[1] * at.size**2 + at.filters,
        lambda at: window_weight_gradient_identity(at, patches, route, gradient),
    )
