"""A theorem for all sizes, its proof in index form, and its verdict.

``Statement``: for every size satisfying the hypotheses and every entry ``k`` of ``target``,
``d/d target[k] sum_o G[o] forward[o]`` (``d forward / d target[k]`` for a loss) equals
``rule[k]``. The proof: read both sides in index form, differentiate with respect to the
entry and eliminate the deltas (``deltas``); both sides are linear in ``G``, so differentiate
again with respect to ``G[p]`` for an *unrestricted* index ``p`` (a rule that reads ``G`` out of
range then differs); group the terms by equivalent condition sets (``conditions``) and test
every group's coefficient for zero on the region (``scalars``).

Verdicts: ``proven``; ``refuted`` with a counterexample (small concrete sizes, an entry and
exact values at which the derivative and the rule differ, found and checked by evaluating
both sides at those sizes, independently of the symbolic steps); ``not proven`` with the
reason when the method could not decide and no counterexample turned up.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from dataclasses import dataclass, field

import sympy as sp

from gradproof.derive import texpr as tx
from gradproof.derive.parametric.conditions import Conditions, empty_under, equivalent
from gradproof.derive.parametric.deltas import NotEliminated, composed, differentiate
from gradproof.derive.parametric.hypotheses import rows_summed
from gradproof.derive.parametric.linear import NotLinear
from gradproof.derive.parametric.reading import IndexReading, NotReadable, SymbolicShape
from gradproof.derive.parametric.scalars import Undecided, vanishes_on_region
from gradproof.derive.parametric.terms import Term, TermSum

PROVEN, REFUTED, NOT_PROVEN = "proven", "refuted", "not proven"


@dataclass
class Statement:
    name: str  # e.g. "conv2d: dL/dW"
    target: str  # the tensor differentiated
    forward: tx.Expr
    rule: tx.Expr
    upstream: str | None  # the name of G; None for a loss
    shapes: dict[str, SymbolicShape]
    sizes: tuple[sp.Symbol, ...]
    batch: sp.Symbol
    size_conditions: tuple[sp.Expr, ...] = ()  # e >= 0 beyond every size >= 1
    region: str = ""  # the region a derivative is taken on, in words
    definitions: dict[str, tx.Expr] = field(default_factory=dict)
    reshapes: dict[tx.Shape, SymbolicShape] = field(default_factory=dict)
    window: int = 0  # split the target's last two axes by this window (pooling)
    at_least_zero: tuple[sp.Symbol, ...] = ()  # sizes >= 0 rather than >= 1 (padding, remainders)
    row_sums: tuple[str, ...] = ()  # tensors each of whose rows sums to 1 (a hypothesis on values)
    derived: dict[sp.Symbol, sp.Expr] = field(default_factory=dict)  # sizes given by a floor
    fixed: dict[sp.Symbol, int] = field(default_factory=dict)  # sizes ``specialised`` put in

    def hypotheses(self) -> Conditions:
        lowest = [s if s in self.at_least_zero else s - 1 for s in self.sizes]
        return Conditions.of([*lowest, *self.size_conditions])

    def hypotheses_text(self) -> list[str]:
        positive = [s for s in self.sizes if s not in self.at_least_zero]
        words = [f"{', '.join(map(str, positive))} >= 1 (integers)"]
        if self.at_least_zero:
            words.append(f"{', '.join(map(str, self.at_least_zero))} >= 0 (integers)")
        words += [f"{sp.sstr(e)} >= 0" for e in self.size_conditions]
        words += [f"every row of {name} sums to 1" for name in self.row_sums]
        if self.region:
            words.append(self.region)
        return words

    def reading(self) -> IndexReading:
        return IndexReading(self.shapes, self.batch, self.definitions, self.reshapes, self.derived)

    def specialised(self, values: dict[sp.Symbol, int]) -> Statement:
        """The statement with some sizes fixed (a network step's stride, padding, kernel, remainder).

        A fixed value outside the hypotheses is refused (ValueError): the theorem does not cover it.
        """
        if not values:
            return self
        values = {s: sp.Integer(v) for s, v in values.items()}
        for s, e in self.derived.items():  # a size a floor gives is fixed with what it reads
            value = e.xreplace(values)
            if value.is_Number:
                values[s] = value
        hypotheses = self.hypotheses()
        for form in hypotheses.inequalities:
            value = form.expr().xreplace(values)
            if value.is_Number and value < 0:
                raise ValueError(f"{self.name}: {values} violates {sp.sstr(form.expr())} >= 0")
        kept = tuple(s for s in self.sizes if s not in values)
        conditions = [e.xreplace(values) for e in self.size_conditions]
        conditions = tuple(e for e in conditions if not e.is_Number)
        return dataclasses.replace(
            self,
            shapes={
                n: tuple(sp.sympify(d).xreplace(values) for d in shape) for n, shape in self.shapes.items()
            },
            sizes=kept,
            size_conditions=conditions,
            at_least_zero=tuple(s for s in self.at_least_zero if s not in values),
            derived={s: e.xreplace(values) for s, e in self.derived.items() if s not in values},
            fixed={**self.fixed, **{s: int(v) for s, v in values.items()}},
        )


@dataclass
class Verdict:
    status: str
    reason: str = ""
    counterexample: dict | None = None
    seconds: float = 0.0
    cases: int = 0

    @property
    def holds(self) -> bool:
        return self.status == PROVEN


class Differs(Exception):  # noqa: N818 - a verdict's reason, not an error
    """The symbolic comparison found a group whose coefficient is not zero."""


def _target_cases(statement: Statement, shape: SymbolicShape) -> list[tuple[tuple[sp.Expr, ...], Conditions]]:
    """The target entry ``k`` as symbols with its ranges; split by the window for max-pool."""
    ks = tuple(sp.Symbol(f"k{i}", integer=True) for i in range(len(shape)))
    if not statement.window:
        return [(ks, Conditions.of([e for k, n in zip(ks, shape, strict=True) for e in (k, n - 1 - k)]))]
    s = statement.window
    qs = (sp.Symbol("q2", integer=True), sp.Symbol("q3", integer=True))
    cases = []
    for r2, r3 in itertools.product(range(s), repeat=2):
        # every integer k is s q + r for one integer q and one r in [0, s - 1]: the cases cover k
        index = (ks[0], ks[1], s * qs[0] + r2, s * qs[1] + r3)
        ranges = [ks[0], shape[0] - 1 - ks[0], ks[1], shape[1] - 1 - ks[1]]
        ranges += [index[2], shape[2] - 1 - index[2], index[3], shape[3] - 1 - index[3]]
        cases.append((index, Conditions.of(ranges)))
    return cases


def prove(statement: Statement) -> Verdict:
    start = time.perf_counter()
    try:
        verdict = _symbolic(statement)
    except (NotEliminated, NotReadable, NotLinear, Undecided, Differs) as why:
        verdict = Verdict(NOT_PROVEN, str(why))
        found = find_counterexample(statement)
        if found is not None:
            verdict = Verdict(REFUTED, str(why), found)
    verdict.seconds = time.perf_counter() - start
    return verdict


def _symbolic(statement: Statement) -> Verdict:
    reading = statement.reading()
    target_shape = reading.shape(tx.Tensor(statement.target, ()))
    rule_shape = reading.shape(statement.rule)
    if len(rule_shape) != len(target_shape) or any(
        sp.expand(a - b) != 0 for a, b in zip(rule_shape, target_shape, strict=False)
    ):
        raise Differs(f"the rule has shape {rule_shape}, the target {target_shape}")
    if statement.upstream is None:
        lhs = reading.entry(statement.forward, ())
    else:
        lhs = reading.pairing(statement.upstream, statement.forward)
    cases = _target_cases(statement, target_shape)
    rows = {reading.base(n): statement.shapes[n] for n in statement.row_sums}
    for index, ranges in cases:
        left = differentiate(lhs, reading.base(statement.target), index)
        right = reading.entry(statement.rule, index)
        if rows:
            left = rows_summed(left, rows, statement.hypotheses() & ranges)
            right = rows_summed(right, rows, statement.hypotheses() & ranges)
        order = []
        if statement.upstream is not None:
            g_rank = len(reading.shape(tx.Tensor(statement.upstream, ())))
            p = tuple(sp.Symbol(f"p{i}", integer=True) for i in range(g_rank))
            g = reading.base(statement.upstream)
            left, right = differentiate(left, g, p), differentiate(right, g, p)
            order = list(p)
        order += sorted({s for e in index for s in sp.sympify(e).free_symbols}, key=sp.default_sort_key)
        compare(left, right, statement.hypotheses() & ranges, order)
    return Verdict(PROVEN, cases=len(cases))


def canonical(term: Term, order: list[sp.Symbol]) -> Term:
    """``term`` with each equality ``v = e`` on a free variable used to write ``e`` for ``v`` elsewhere.

    ``[v = e] F(v) = [v = e] F(e)``: exact. Variables are solved for in ``order`` (``G``'s index first),
    so two sides that agree are written alike.
    """
    if term.bound:
        raise Undecided(f"a bound index is left after the deltas: {term.text()}")
    solved: list[tuple[sp.Symbol, sp.Expr]] = []
    conditions = term.conditions
    changed = True
    while changed:
        changed = False
        done = {v for v, _ in solved}
        for form in sorted(conditions.equalities, key=lambda f: f.key):
            v = next((v for v in order if v not in done and abs(form.coefficient(v)) == 1), None)
            if v is None:
                continue
            a = form.coefficient(v)
            value = sp.expand(-(form.expr() - a * v) / a)
            others = Conditions(conditions.inequalities, conditions.equalities - {form}).substituted(
                {v: value}
            )
            conditions = Conditions(others.inequalities, others.equalities | {form})
            solved.append((v, value))
            changed = True
            break
    return Term((), conditions, term.coefficient.xreplace(composed(solved)))


def compare(left: TermSum, right: TermSum, hypotheses: Conditions, order: list[sp.Symbol]) -> None:
    """Raise Differs (or Undecided) unless ``left - right`` is 0 under the hypotheses."""
    groups: list[tuple[Conditions, list[sp.Expr]]] = []
    for sign, side in ((1, left), (-1, right)):
        for term in side:
            term = canonical(term, order)
            if empty_under(hypotheses, term.conditions):
                continue
            for conditions, coefficients in groups:
                if equivalent(hypotheses, conditions, term.conditions):
                    coefficients.append(sign * term.coefficient)
                    break
            else:
                groups.append((term.conditions, [sign * term.coefficient]))
    for conditions, coefficients in groups:
        total = sp.Add(*coefficients)
        if not vanishes_on_region(total):
            raise Differs(f"where {conditions.text()}: derivative - rule = {sp.sstr(sp.factor_terms(total))}")


# ------------------------------------------------------------------ counterexamples


def _size_assignments(statement: Statement, limit: int = 12):
    """Small sizes satisfying the hypotheses; a size given by a floor (``derived``) is computed."""
    hyps = statement.hypotheses()
    found = 0
    free = [s for s in statement.sizes if s not in statement.derived]
    lowest = [0 if s in statement.at_least_zero else 1 for s in free]
    for values in _by_sum(lowest, 3):
        mapping = dict(zip(free, values, strict=True))
        for s, e in statement.derived.items():
            mapping[s] = e.xreplace(mapping)
        mapping = {s: mapping[s] for s in statement.sizes}
        if all(f.expr().xreplace(mapping) >= 0 for f in hyps.inequalities):
            yield mapping
            found += 1
            if found >= limit:
                return


def _by_sum(lowest: list[int], most: int):
    """Tuples ``lowest + e`` with ``0 <= e_i <= most``, smallest excess first, then in lexicographic order."""

    def spread(excess: int, n: int):
        if n == 0:
            if excess == 0:
                yield ()
            return
        for first in range(min(excess, most) + 1):
            for rest in spread(excess - first, n - 1):
                yield (first, *rest)

    for excess in range(most * len(lowest) + 1):
        for e in spread(excess, len(lowest)):
            yield tuple(lo + d for lo, d in zip(lowest, e, strict=True))


def _evaluate(body: TermSum, sizes: dict) -> sp.Expr:
    """A term sum at concrete sizes, its bound variables enumerated over their ranges."""
    total = []
    for term in body:
        term = term.substituted(sizes)
        boxes = [range(lo, hi + 1) for lo, hi in (_box(term.conditions, v) for v in term.bound)]
        position = {v: n for n, v in enumerate(term.bound)}
        rows = []
        for f, is_equality in [(f, False) for f in term.conditions.inequalities] + [
            (f, True) for f in term.conditions.equalities
        ]:
            if any(v not in position for v in f.variables):
                raise NotReadable(f"{f.expr()} is not concrete")
            rows.append(([(position[v], a) for v, a in f.coefficients], f.constant, is_equality))
        for point in itertools.product(*boxes):
            if all(
                (value == 0) if is_equality else (value >= 0)
                for coefficients, c, is_equality in rows
                for value in (c + sum(a * point[n] for n, a in coefficients),)
            ):
                total.append(term.coefficient.xreplace(dict(zip(term.bound, point, strict=True))))
    return sp.Add(*total)


def _box(conditions: Conditions, v: sp.Symbol) -> tuple[int, int]:
    lo, hi = None, None
    for f in conditions.inequalities:
        if f.variables == (v,):
            a = f.coefficient(v)
            if a > 0:
                bound = -(f.constant // a)
                lo = bound if lo is None else max(lo, bound)
            else:
                bound = f.constant // (-a)
                hi = bound if hi is None else min(hi, bound)
    if lo is None or hi is None:
        raise NotReadable(f"no range for {v}")
    return lo, hi


def _value(n: int) -> sp.Rational:
    """Distinct, non-zero, irregular rationals: no ReLU input 0, no tied window."""
    primes = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37)
    return sp.Rational((-1) ** n * (n + 2) * primes[n % len(primes)], 7 + 3 * n)


def find_counterexample(statement: Statement, budget: float = 1.0) -> dict | None:
    """Small sizes, an entry and exact values where the derivative and the rule differ, or None."""
    start = time.perf_counter()
    for sizes in _size_assignments(statement):
        if time.perf_counter() - start > budget:
            return None
        try:
            found = _counterexample_at(statement, sizes)
        except (NotReadable, NotLinear, ValueError, TypeError):
            continue
        if found is not None:
            return found
    return None


def _counterexample_at(statement: Statement, sizes: dict) -> dict | None:
    concrete = {n: tuple(int(sp.sympify(d).xreplace(sizes)) for d in s) for n, s in statement.shapes.items()}
    reading = statement.reading()
    if statement.upstream is None:
        scalar = _evaluate(reading.entry(statement.forward, ()), sizes)
    else:
        scalar = _evaluate(reading.pairing(statement.upstream, statement.forward), sizes)
    rule_shape = tuple(int(sp.sympify(d).xreplace(sizes)) for d in reading.shape(statement.rule))
    if rule_shape != concrete[statement.target]:
        return {
            "sizes": _named(sizes),
            "entry": "",
            "reason": f"rule shape {rule_shape}, target {concrete[statement.target]}",
        }
    base = reading.base(statement.target)
    transcendental = (sp.exp, sp.log, sp.tanh)
    for k in itertools.product(*(range(n) for n in concrete[statement.target])):
        derivative = scalar.diff(base[k]) if scalar.has(base[k]) else sp.Integer(0)
        rule = _evaluate(reading.entry(statement.rule, k), sizes)
        atoms = sorted((derivative.atoms(sp.Indexed) | rule.atoms(sp.Indexed)), key=sp.default_sort_key)
        values = {a: _value(n) for n, a in enumerate(atoms)}
        for name in statement.row_sums:  # the hypothesis: each row's last entry is 1 minus the others
            rows, classes = concrete[name]
            y = reading.base(name)
            for b in range(rows):
                others = [values.setdefault(y[b, j], _value(len(values))) for j in range(classes - 1)]
                values[y[b, classes - 1]] = 1 - sp.Add(*others)
        d, r = derivative.xreplace(values), rule.xreplace(values)
        exact = not (d - r).has(*transcendental)
        gap = sp.nsimplify(d - r) if exact else (d - r).evalf(50)
        if gap != 0 and abs(gap) > 1e-30:
            return {
                "sizes": _named(sizes),
                "entry": f"d{statement.target}[{','.join(map(str, k))}]",
                "derivative": sp.sstr(d if exact else d.evalf(20)),
                "rule": sp.sstr(r if exact else r.evalf(20)),
                "values": {sp.sstr(a): sp.sstr(v) for a, v in values.items()},
            }
    return None


def _named(sizes: dict) -> dict[str, int]:
    return {str(s): int(v) for s, v in sizes.items()}


def describe(counterexample: dict) -> str:
    sizes = ", ".join(f"{k}={v}" for k, v in counterexample["sizes"].items())
    if not counterexample.get("entry"):
        return f"at {sizes}: {counterexample['reason']}"
    return (
        f"at {sizes}: {counterexample['entry']} is {counterexample['derivative']} by the derivative, "
        f"{counterexample['rule']} by the rule"
    )
