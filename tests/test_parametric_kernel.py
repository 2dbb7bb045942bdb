"""The parametric kernel's steps against brute-force enumeration on small sizes.

Each step of ``derive.parametric`` claims an identity over the integers; here every claim is
checked by enumerating the integers it quantifies over (a box large enough to hold every
solution), with code that shares nothing with the step but SymPy's arithmetic.
"""

from __future__ import annotations

import dataclasses
import itertools
import random

import numpy as np
import pytest
import sympy as sp

from gradproof.derive import texpr as tx
from gradproof.derive.parametric import catalogue, scalars
from gradproof.derive.parametric.conditions import Conditions, equivalent, implies, infeasible
from gradproof.derive.parametric.deltas import NotEliminated, differentiate, eliminate
from gradproof.derive.parametric.hypotheses import rows_summed
from gradproof.derive.parametric.reading import IndexReading, divided
from gradproof.derive.parametric.scalars import vanishes_on_region
from gradproof.derive.parametric.terms import Term, constant, summed
from gradproof.derive.parametric.theorem import NOT_PROVEN, PROVEN, REFUTED, _evaluate, prove
from gradproof.derive.spec import builtin_names
from gradproof.derive.symbolic import SymbolicReading, symbol_array
from tests.wrong_rules import network_named

x, y, z = sp.symbols("x y z", integer=True)
BOX = range(-6, 7)


def _value(form, point: dict) -> int:
    return form.constant + sum(a * point[v] for v, a in form.coefficients)


def _holds(conditions: Conditions, point: dict) -> bool:
    """Every row at an integer point, evaluated in Python integers (variables must be symbols)."""
    return all(_value(f, point) >= 0 for f in conditions.inequalities) and all(
        _value(f, point) == 0 for f in conditions.equalities
    )


def _random_system(rng: random.Random, variables, rows: int) -> Conditions:
    inequalities = []
    for _ in range(rows):
        form = sum(rng.randint(-3, 3) * v for v in variables) + rng.randint(-5, 5)
        inequalities.append(form)
    box = [e for v in variables for e in (v + 4, 4 - v)]  # every solution lies in [-4, 4]^n
    return Conditions.of(inequalities + box)


# ------------------------------------------------------------- Fourier-Motzkin


def test_infeasible_is_sound_and_decides_these_systems():
    """Never "infeasible" for a system with an integer point; and it finds most empty ones."""
    rng = random.Random(0)
    decided_empty = empty = 0
    for _ in range(300):
        system = _random_system(rng, (x, y, z), rng.randint(2, 6))
        has_point = any(
            _holds(system, {x: a, y: b, z: c}) for a, b, c in itertools.product(range(-4, 5), repeat=3)
        )
        says_empty = infeasible(*system.rows())
        assert not (says_empty and has_point)
        empty += not has_point
        decided_empty += says_empty
    assert empty > 30 and decided_empty >= 0.9 * empty, (decided_empty, empty)


def test_integer_tightening_sees_what_the_rationals_miss():
    # 1 <= 2x <= 1 has the rational solution 1/2 and no integer one.
    assert infeasible(*Conditions.of([2 * x - 1, 1 - 2 * x]).rows())
    # 2x = 2y + 1: no integer solution (gcd 2 does not divide 1).
    assert infeasible(*Conditions.of(equalities=[2 * x - 2 * y - 1]).rows())
    assert not infeasible(*Conditions.of([2 * x - 2, 2 - 2 * x]).rows())


def test_implies_and_equivalent_against_enumeration():
    rng = random.Random(1)
    for _ in range(200):
        a = _random_system(rng, (x, y), rng.randint(1, 3))
        b = _random_system(rng, (x, y), rng.randint(1, 3))
        points = [{x: i, y: j} for i, j in itertools.product(BOX, repeat=2)]
        truly = all(_holds(b, p) for p in points if _holds(a, p))
        if implies(Conditions(), a, b):
            assert truly
        if equivalent(Conditions(), a, b):
            assert [_holds(a, p) for p in points] == [_holds(b, p) for p in points]
    # A decided case: under 0 <= x <= n - 1, x <= n is implied, x <= n - 2 is not.
    n = sp.Symbol("n", integer=True)
    hyp = Conditions.of([n - 1])
    assert implies(hyp, Conditions.of([x, n - 1 - x]), Conditions.of([n - x]))
    assert not implies(hyp, Conditions.of([x, n - 1 - x]), Conditions.of([n - 2 - x]))


# ------------------------------------------------------------- delta elimination


def _brute_sum(term: Term, free: dict) -> sp.Expr:
    """The term's value at the free point, its bound variables enumerated over ``BOX``."""
    total = sp.Integer(0)
    for point in itertools.product(BOX, repeat=len(term.bound)):
        at = {**free, **dict(zip(term.bound, point, strict=True))}
        if all(f.expr().xreplace(at) >= 0 for f in term.conditions.inequalities) and all(
            f.expr().xreplace(at) == 0 for f in term.conditions.equalities
        ):
            total += term.coefficient.xreplace(at)
    return total


def test_delta_elimination_against_enumeration():
    """sum_{v in [lo, hi]} F(v) [a v + r = 0] for a = +-1, and the gcd rule, on every free value."""
    f = sp.Function("F")
    v, w, u = sp.symbols("v w u", integer=True)
    rng = random.Random(2)
    for _ in range(60):
        a = rng.choice((1, -1, 2, -2, 3))
        b = rng.choice((0, 1, -1, 2))
        r = rng.randint(-3, 3)
        term = Term(
            (v, w),
            Conditions.of([v + 2, 3 - v, w, 2 - w], equalities=[a * v + b * w + 2 * u + r]),
            f(v, w, u),
        )
        try:
            eliminated = eliminate(term)
        except NotEliminated:
            assert all(abs(c) != 1 for c in (a, b) if c), (a, b)  # refused only without a unit
            continue
        for value in range(-4, 5):
            expected = _brute_sum(term, {u: value})
            got = sp.Integer(0) if eliminated is None else _brute_sum(eliminated[0], {u: value})
            assert sp.expand(got - expected) == 0, (a, b, r, value)


def test_gcd_rule_drops_a_delta_without_integer_solutions():
    i, n = sp.symbols("i n", integer=True)
    # sum_i [0 <= i <= 5] [2 i = 4 n + 1] g(i) = 0: the gcd 2 does not divide 1.
    term = Term((i,), Conditions.of([i, 5 - i], equalities=[2 * i - 4 * n - 1]), sp.Function("g")(i))
    assert eliminate(term) is None


def test_non_unit_delta_is_refused_not_solved_as_a_fraction():
    """SymPy's deltasummation turns sum_i delta(2i, u) g(i) into g(u/2); the kernel refuses."""
    i, u = sp.symbols("i u", integer=True)
    term = Term((i,), Conditions.of([i, 5 - i], equalities=[2 * i - u]), sp.Function("g")(i))
    with pytest.raises(NotEliminated):
        eliminate(term)


def test_floor_of_an_index_is_read_only_when_exact():
    q = sp.Symbol("q", integer=True)
    assert divided(2 * q + 3, 2) == (q + 1, 1)
    with pytest.raises(ValueError):
        divided(q + 1, 2)


def test_differentiate_against_sympy_at_concrete_sizes():
    """d/dX[k] of sum_{i,m} [i + m in range] G[i] X[i + m] W[m] against SymPy's diff of the expansion."""
    g, xb, wb = sp.IndexedBase("G"), sp.IndexedBase("X"), sp.IndexedBase("W")
    i, m, k = sp.symbols("i m k", integer=True)
    n_out, n_k = 3, 2
    body = summed([(i, n_out), (m, n_k)], constant(g[i] * xb[i + m] * wb[m]))
    derivative = differentiate(body, xb, (k,))
    expanded = sum(g[a] * xb[a + b] * wb[b] for a in range(n_out) for b in range(n_k))
    for value in range(n_out + n_k - 1):
        by_kernel = sum(_brute_sum(t, {k: value}) for t in derivative)
        assert sp.expand(by_kernel - expanded.diff(xb[value])) == 0


# ------------------------------------------------------------- the readings at concrete sizes


def _name(entry: sp.Indexed) -> str:
    """The entry-wise reading's symbol name of an entry: ``X[0, 1]`` is ``X_0_1``."""
    return f"{entry.base}_{'_'.join(map(str, entry.indices))}"


def _nodes(expr: tx.Expr):
    """Every node of an expression tree."""
    stack = [expr]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(node.operands)


@pytest.mark.parametrize("network_name", [*builtin_names(), "vocab", "strided"])
def test_index_reading_equals_the_entry_wise_reading(network_name):
    """Every rule and forward map of a network, read in index form at its sizes, equals the entry-wise one.

    The built-ins, and the test networks with tanh, floor-mode average pooling, softmax
    cross-entropy and a strided, padded, non-square convolution (tests/wrong_rules.py).

    Compared at exact rational values of every symbol (the rules with steps, sigmoids and window
    maxima differ in their function classes, not in their values), twice per entry, on about a
    half-dozen entries spread over each rule. An entry only the index side reads gets a value
    of its own, so reading out of range shows.
    """
    network = network_named(network_name)
    # lenet5's entry-wise reading takes a minute at batch 2; its operations' batch axis is checked
    # at batch 2 in the vocab and strided networks
    batch = 1 if network_name == "lenet5" else 2
    unread = sorted(
        {
            type(node).__name__
            for step in network.steps
            for expr in (step.forward, *step.rules.values())
            for node in _nodes(expr)
            if not hasattr(IndexReading, f"read_{type(node).__name__}")
        }
    )
    if unread:
        missing = ", ".join(unread)
        pytest.skip(f"{network_name}: no index reading (no theorem for all sizes yet) for {missing}")
    for step in network.steps:
        tensors = [step.input, *step.params, step.output] + ([step.upstream] if step.upstream else [])
        # a flatten's forward is read through the pairing (the bijection lemma), never entry by entry
        forward = () if isinstance(step.forward, tx.Reshape) else (step.forward,)
        for expr in (*forward, *step.rules.values()):
            env = {}
            for t in [*tensors, *tx.tensors_in(expr)]:
                env.setdefault(t.name, symbol_array(t.name, tuple(batch if d == "N" else d for d in t.shape)))
            entry_wise = SymbolicReading(env, batch)(expr)
            shapes = {name: value.shape for name, value in env.items()}
            reshapes = {step.input.shape: shapes[step.input.name]}
            reading = IndexReading(shapes, sp.Integer(batch), reshapes=reshapes)
            rng = random.Random(3)
            every = list(np.ndindex(entry_wise.shape))
            for index in every[:: max(1, len(every) // 6)]:
                indexed = _evaluate(reading.entry(expr, index), {})
                theirs = entry_wise[index]
                for _ in range(2):
                    names = sorted(theirs.free_symbols, key=str)
                    values = {s: sp.Rational(rng.randint(-99, 99) or 1, rng.randint(1, 13)) for s in names}
                    by_name = {str(s): v for s, v in values.items()}
                    mine = {
                        a: by_name.get(_name(a), sp.Rational(rng.randint(1, 99), 7))
                        for a in indexed.atoms(sp.Indexed)
                    }
                    a, b = indexed.xreplace(mine), theirs.xreplace(values)
                    assert abs(sp.N(a - b, 30)) < 1e-20, (network_name, expr, index)


# ------------------------------------------------------------- theorems


def test_every_theorem_of_the_table_is_proven_for_all_sizes():
    """Speed is benchmarks/bench_parametric.py's job; here only the verdicts."""
    for theorem in catalogue.every_theorem(windows=(2, 3)):
        theorem.prove()
        assert theorem.status == "proven", [
            (s.name, v.reason) for s, v in zip(theorem.statements, theorem.verdicts, strict=True)
        ]


# ------------------------------------------------------------- extensions for issue 16's rules


def test_a_symbolic_stride_is_never_a_unit_coefficient():
    """sum_i [0 <= i <= 5] [s i = u] g(i): the delta stays (not solved as i = u / s), so no proof."""
    i, u = sp.symbols("i u", integer=True)
    s = sp.Symbol("s", integer=True, positive=True)
    term = Term((i,), Conditions.of([i, 5 - i], equalities=[s * i - u]), sp.Function("g")(i))
    eliminated, substitutions = eliminate(term)
    assert substitutions == [] and eliminated.bound == (i,)
    assert Conditions.of(equalities=[s * i - u]).equalities <= eliminated.conditions.equalities


def test_delta_next_to_a_stride_against_enumeration():
    """sum_{i, m} [0 <= i < 3][0 <= m < 2] F(i, m) [s i + m = h]: m eliminated, for every s and h."""
    f = sp.Function("F")
    i, m, h = sp.symbols("i m h", integer=True)
    s = sp.Symbol("s", integer=True, positive=True)
    term = Term((i, m), Conditions.of([i, 2 - i, m, 1 - m], equalities=[s * i + m - h]), f(i, m))
    eliminated, _ = eliminate(term)
    assert eliminated.bound == (i,)
    for stride in (1, 2, 3):
        for value in range(-1, 9):
            point = {s: stride, h: value}
            expected = _brute_sum(term.substituted(point), {})
            assert sp.expand(_brute_sum(eliminated.substituted(point), {}) - expected) == 0


def test_softmax_normaliser_derivative_against_sympy():
    """d/dZ[k0, k1] of sum_{b, k} G[b, k] exp(Z[b, k]) / S_b, S_b = sum_j exp(Z[b, j]), at N = 2, K = 3."""
    g, zb = sp.IndexedBase("G"), sp.IndexedBase("Z")
    b, k = sp.symbols("b k", integer=True)
    k0, k1 = sp.symbols("k0 k1", integer=True)
    n, classes = 2, 3
    normaliser = scalars.row_exp_sum(zb, b, sp.Symbol("K", integer=True, positive=True))
    body = summed([(b, n), (k, classes)], constant(g[b, k] * sp.exp(zb[b, k]) / normaliser))
    derivative = differentiate(body, zb, (k0, k1))
    expanded = sum(
        g[r, c] * sp.exp(zb[r, c]) / sum(sp.exp(zb[r, j]) for j in range(classes))
        for r in range(n)
        for c in range(classes)
    )
    values = {zb[r, c]: sp.Rational(r + 2 * c - 2, 3) for r in range(n) for c in range(classes)}
    values |= {g[r, c]: sp.Rational(5 * r - c + 1, 7) for r in range(n) for c in range(classes)}
    for r, c in itertools.product(range(n), range(classes)):
        at = {k0: r, k1: c, sp.Symbol("K", integer=True, positive=True): classes}
        by_kernel = sum(_brute_sum(t.substituted(at), {}) for t in derivative)
        gap = (by_kernel - expanded.diff(zb[r, c])).xreplace(values)
        assert abs(sp.N(gap, 30)) < 1e-25, (r, c)


def test_rows_summed_against_enumeration():
    """sum_v [0 <= v < K] c Y[e, v] is c where each row of Y sums to 1; nothing else is rewritten."""
    yb = sp.IndexedBase("Y")
    v, e = sp.symbols("v e", integer=True)
    n, k = sp.symbols("n k", integer=True, positive=True)
    c = sp.Symbol("c")
    rows = {yb: (n, k)}
    hyp = Conditions.of([n - 1, k - 1])
    inside = Conditions.of([e, n - 1 - e])
    full = Term((v,), Conditions.of([v, k - 1 - v]) & inside, c * yb[e, v])
    (rewritten,) = rows_summed((full,), rows, hyp)
    assert rewritten.bound == () and rewritten.coefficient == c
    rng = random.Random(4)
    for rows_n, cols in ((1, 1), (2, 3), (3, 2)):
        values = {}
        for r in range(rows_n):
            others = [sp.Rational(rng.randint(-9, 9), rng.randint(1, 5)) for _ in range(cols - 1)]
            values |= {yb[r, j]: x for j, x in enumerate(others)} | {yb[r, cols - 1]: 1 - sum(others)}
        for row in range(rows_n):
            point = {n: rows_n, k: cols, e: row}
            brute = _brute_sum(full.substituted(point), {}).xreplace(values)
            assert brute == _brute_sum(rewritten.substituted(point), {}).xreplace(values)
    partial_range = Term((v,), Conditions.of([v, k - 2 - v]) & inside, c * yb[e, v])
    unknown_row = Term((v,), Conditions.of([v, k - 1 - v]), c * yb[e, v])
    squared = Term((v,), Conditions.of([v, k - 1 - v]) & inside, c * yb[e, v] ** 2)
    for term in (partial_range, unknown_row, squared):
        assert rows_summed((term,), rows, hyp) == (term,)


def test_tanh_is_a_variable_of_the_zero_test():
    t = sp.tanh(sp.IndexedBase("Z")[0, 1])
    g = sp.IndexedBase("G")[0, 1]
    assert vanishes_on_region(g * (1 - t**2) - g * (1 - t * t))
    assert not vanishes_on_region(g * (1 - t**2) - g * (1 - t))


def test_avgpool_at_an_unsplit_index_is_not_proven_not_refuted():
    """Without the window split, spreading reads floor(k / 2): not readable, so not proven."""
    (statement,) = catalogue.theorem_for("avgpool2d", {"size": 2}, "mean").statements
    verdict = prove(dataclasses.replace(statement, window=0))
    assert verdict.status == NOT_PROVEN and verdict.counterexample is None


def test_softmax_cross_entropy_needs_its_hypothesis():
    """Without "every row of Y sums to 1" the rule A - Y is refuted, by a target row that does not."""
    for reduction in ("mean", "sum"):
        (statement,) = catalogue.theorem_for("cross_entropy", {}, reduction).statements
        assert prove(statement).status == PROVEN
        verdict = prove(dataclasses.replace(statement, row_sums=()))
        assert verdict.status == REFUTED
        rows = {}
        for entry, value in verdict.counterexample["values"].items():  # "Y[0, 1]": "3/7"
            if entry.startswith("Y["):
                rows.setdefault(entry[2:].split(",")[0], []).append(sp.Rational(value))
        assert any(sum(row) != 1 for row in rows.values()), verdict.counterexample


def test_the_new_theorems_fix_what_a_network_names():
    """A strided step's rules name its stride, padding, kernel and input size; a pooling step its rests."""
    conv = catalogue.theorem_for("conv2d", {"kernel": (3, 2), "stride": 2, "padding": (1, 1)}, "mean")
    assert conv.key == "conv2d/strided"
    fixed = {
        str(s): v
        for s, v in conv.fixed({"kernel": (3, 2), "stride": 2, "padding": (1, 1)}, (1, 4, 3)).items()
    }
    assert fixed == {"P_h": 1, "P_w": 1, "s": 2, "K_h": 3, "K_w": 2, "H": 4, "W": 3}
    pool = catalogue.theorem_for("avgpool2d", {"size": 3}, "mean")
    assert {str(s): v for s, v in pool.fixed({"size": 3}, (2, 4, 5)).items()} == {"R_h": 1, "R_w": 2}
    (statement,) = pool.statements
    with pytest.raises(ValueError):
        statement.specialised({sp.Symbol("R_h", integer=True, nonnegative=True): 3})  # R_h <= 2
