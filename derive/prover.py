"""The prover: every obligation of a network, checked exactly, entry by entry.

Obligations, in the order they are reported:

- *identity*: ``dL/dA * dA/dZ = A - Y`` for sigmoid + BCE, and the logit form
  of the loss that the generated code evaluates;
- *lemma*: SymPy's derivative of a window maximum, rewritten to pairwise step
  functions, checked on every ordering pattern of a window;
- *convention*: ReLU'(0) = 0, and a tied pooling window routes its whole
  gradient to the first maximum in row-major order (evaluated exactly);
- *local*: for each layer and each rule, ``sum_o G[o] d out[o] / d theta[k]``
  (SymPy's derivative, fresh symbols ``G``) equals the rule's entry ``k``,
  at batch size 2, so the batch sums and the mean's ``1/N`` are covered;
- *end-to-end*: SymPy differentiates the whole scalar loss of one sample with
  respect to every parameter entry; each equals the rules composed from the
  loss back;
- *count*: the loss depends on exactly the declared trainable parameters.

Identities hold on the region where no ReLU input is 0 and no pooling window
has tied values; kinks and ties are the convention obligations' job.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field

import numpy as np
import sympy as sp

from derive import canonical
from derive import layers as kinds
from derive import texpr as tx
from derive.network import LOSS_NAME, Network, Step, gradient_name
from derive.statement import tensor_label, text
from derive.symbolic import (
    SymbolicReading,
    sigmoid_formula,
    sigmoid_lemma_holds,
    symbol_array,
    window_lemma_holds,
)

LOCAL_BATCH = 2
END_TO_END_BATCH = 1


@dataclass
class ProofRecord:
    """One obligation and its verdict."""

    level: str
    name: str
    statement: str
    entries: int
    method: str
    seconds: float = 0.0
    holds: bool = False
    failing: str | None = None
    entry_names: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def _timed(record: ProofRecord, check: Callable[[], tuple[bool, str | None]]) -> ProofRecord:
    start = time.perf_counter()
    record.holds, record.failing = check()
    record.seconds = time.perf_counter() - start
    return record


def _index_label(name: str, index: tuple[int, ...]) -> str:
    return f"{tensor_label(gradient_name(name))}[{','.join(map(str, index))}]"


def _directions(theta: np.ndarray) -> np.ndarray:
    """Fresh independent symbols ``c_k``, one per entry of ``theta``."""
    out = np.empty(theta.shape, dtype=object)
    for n, index in enumerate(np.ndindex(theta.shape)):
        out[index] = sp.Dummy(f"c{n}")
    return out


def _compare(
    name: str, derived: sp.Expr, rule: np.ndarray, directions: np.ndarray
) -> tuple[bool, str | None]:
    """Exact: ``derived == sum_k c_k rule[k]`` as a polynomial in the independent ``c_k``.

    ``derived`` is linear in the directions, so the identity holds iff the
    coefficient of every ``c_k`` vanishes, i.e. iff it holds entry by entry;
    one expansion checks all entries. On failure the first entry whose
    coefficient does not vanish is reported.
    """
    expected_shape = directions.shape
    if rule.shape != expected_shape:
        return False, f"{tensor_label(gradient_name(name))}: shape {rule.shape} != {expected_shape}"
    atoms = canonical.Atoms()
    claimed = sp.Add(*[directions[i] * rule[i] for i in np.ndindex(rule.shape)])
    if canonical.equal(derived, claimed, atoms):
        return True, None
    difference = sp.expand(sp.numer(sp.together(sp.expand(atoms.abstract(derived - claimed)))))
    for index in np.ndindex(rule.shape):
        if difference.coeff(directions[index]) != 0:
            return False, _index_label(name, index)
    return False, tensor_label(gradient_name(name))


def _directional_derivative(scalar: sp.Expr, theta: np.ndarray, directions: np.ndarray) -> sp.Expr:
    """SymPy's derivative of ``scalar(theta + eps c)`` with respect to ``eps``, at ``eps = 0``.

    By the chain rule this is ``sum_k c_k d scalar / d theta_k``: one call to
    ``diff`` yields every partial derivative, as the coefficient of its ``c_k``.
    """
    eps = sp.Dummy("eps")
    moved = scalar.xreplace({theta[i]: theta[i] + eps * directions[i] for i in np.ndindex(theta.shape)})
    return moved.diff(eps).xreplace({eps: 0})


def _concrete(shape: tx.Shape, batch: int) -> tuple[int, ...]:
    return tuple(batch if d == tx.BATCH else d for d in shape)


def _fresh(tensor: tx.Tensor, batch: int) -> np.ndarray:
    return symbol_array(tensor.name, _concrete(tensor.shape, batch))


def _producer(network: Network, name: str) -> Step | None:
    return next((s for s in network.steps if s.output.name == name), None)


def _bind_rule_inputs(network: Network, reading: SymbolicReading, expr: tx.Expr) -> None:
    """Evaluate forward values a rule reads but the layer does not bind (``A2`` for BCE)."""
    for tensor in tx.tensors_in(expr):
        if tensor.name not in reading.env:
            step = _producer(network, tensor.name)
            assert step is not None, tensor.name
            reading.env[tensor.name] = reading(step.forward)


# ----------------------------------------------------------------- identities


def _sigmoid_bce_identity() -> ProofRecord:
    record = ProofRecord(
        "identity",
        "dL/dA * dA/dZ = A - Y",
        "for L = -(Y log A + (1 - Y) log(1 - A)), A = sigmoid(Z): dL/dA * dA/dZ = A - Y",
        1,
        "exact simplification (sympy.cancel)",
    )

    def check():
        z = sp.Symbol("Z", real=True)
        y, a = sp.symbols("Y A", real=True)
        loss = -(y * sp.log(a) + (1 - y) * sp.log(1 - a))
        product = loss.diff(a).subs(a, sigmoid_formula(z)) * sigmoid_formula(z).diff(z)
        holds = canonical.equal(product, sigmoid_formula(z) - y)
        return holds, None if holds else "dL/dZ"

    return _timed(record, check)


def _logit_form_identity() -> ProofRecord:
    record = ProofRecord(
        "identity",
        "BCE from the logit",
        "-(Y log sigmoid(Z) + (1 - Y) log(1 - sigmoid(Z))) = log(1 + exp(Z)) - Y Z",
        1,
        "equal derivatives (exact) and equal values at Z = 0",
    )

    def check():
        z, y = sp.symbols("Z Y", real=True)
        textbook = -(y * sp.log(sigmoid_formula(z)) + (1 - y) * sp.log(1 - sigmoid_formula(z)))
        logit_form = sp.log(1 + sp.exp(z)) - y * z
        e = sp.Symbol("e", positive=True)  # e = exp(-Z)
        slope = (textbook.diff(z) - logit_form.diff(z)).subs({sp.exp(-z): e, sp.exp(z): 1 / e})
        same_slope = sp.cancel(sp.together(slope)) == 0
        same_at_zero = sp.simplify(sp.expand_log((textbook - logit_form).subs(z, 0), force=True)) == 0
        return same_slope and same_at_zero, None if same_slope and same_at_zero else "L"

    return _timed(record, check)


# ------------------------------------------------------- lemmas and conventions


def _sigmoid_lemma() -> ProofRecord:
    record = ProofRecord(
        "lemma",
        "sigmoid derivative",
        "d/dt 1/(1 + exp(-t)) = sigmoid(t) (1 - sigmoid(t))",
        1,
        "exact cancellation in e = exp(-t)",
    )
    return _timed(record, lambda: (sigmoid_lemma_holds(), None))


def _window_lemma(size: int) -> ProofRecord:
    k = size * size
    record = ProofRecord(
        "lemma",
        f"window max derivative ({size}x{size})",
        f"d max(t_1..t_{k})/dt_i = prod_j H(t_i - t_j) where no two t tie",
        k * 2 ** (k - 1),
        "exact evaluation on every ordering pattern",
    )
    return _timed(record, lambda: (window_lemma_holds(size), None))


def _relu_kink(network: Network, step: Step) -> ProofRecord:
    z = step.input
    record = ProofRecord(
        "convention",
        f"ReLU'(0) = 0 ({z.name})",
        f"{tensor_label(gradient_name(z.name))} = 0 where {z.name} = 0, = upstream where {z.name} = 1",
        2,
        "exact evaluation",
    )

    def check():
        shape = _concrete(z.shape, 1)
        for value, expected in ((0, 0), (1, 1)):
            env = {
                z.name: np.full(shape, sp.Integer(value), dtype=object),
                step.output.name: np.full(shape, sp.Integer(value), dtype=object),
                step.upstream.name: np.full(shape, sp.Integer(1), dtype=object),
            }
            got = SymbolicReading(env, 1)(step.rules[z.name])
            if any(entry != expected for entry in got.ravel()):
                return False, f"{tensor_label(gradient_name(z.name))} at {z.name} = {value}"
        return True, None

    return _timed(record, check)


def _tie_patterns(k: int) -> Iterator[tuple[int, ...]]:
    """Every window filling with values in {0, 1, 2} that has a tie at its maximum."""
    for code in range(3**k):
        values = tuple((code // 3**i) % 3 for i in range(k))
        if values.count(max(values)) > 1:
            yield values


def _pooling_ties(network: Network, step: Step) -> ProofRecord:
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
    )

    def check():
        shape = _concrete(a.shape, 1)
        out_shape = _concrete(step.output.shape, 1)
        upstream = np.empty(out_shape, dtype=object)
        for n, index in enumerate(np.ndindex(out_shape)):
            upstream[index] = sp.Integer(n + 1)
        for values in patterns:
            window = np.array(values, dtype=object).reshape(size, size)
            a_values = np.tile(window, (shape[0], shape[1], shape[2] // size, shape[3] // size))
            env = {a.name: a_values.astype(object), step.upstream.name: upstream}
            got = SymbolicReading(env, 1)(step.rules[a.name])
            first = values.index(max(values))
            for index in np.ndindex(out_shape):
                b, c, i, j = index
                block = got[b, c, i * size : (i + 1) * size, j * size : (j + 1) * size].ravel()
                expected = [upstream[index] if p == first else 0 for p in range(k)]
                if list(block) != expected:
                    return False, f"{tensor_label(gradient_name(a.name))} for window {values}"
        return True, None

    return _timed(record, check)


# -------------------------------------------------------------- local proofs


def _local_proofs(network: Network, step: Step) -> list[ProofRecord]:
    batch = LOCAL_BATCH
    env: dict[str, np.ndarray] = {step.input.name: _fresh(step.input, batch)}
    for p in step.params:
        env[p.name] = _fresh(p, batch)
    if step.output.name == LOSS_NAME:
        env[network.target.name] = _fresh(network.target, batch)
    reading = SymbolicReading(env, batch)
    out = reading(step.forward)
    env[step.output.name] = out
    if step.upstream is not None:
        g = symbol_array("G", out.shape)
        env[step.upstream.name] = g
        total = sp.Add(*(g * out).ravel())
        contraction = f"sum_o G[o] d{step.output.name}[o]"
    else:
        total = out.item()
        contraction = f"d{LOSS_NAME}"

    records = []
    for target, expr in step.rules.items():
        _bind_rule_inputs(network, reading, expr)
        theta = env[target]
        layer = step.layer.type if step.layer else f"{network.spec.loss} loss"
        record = ProofRecord(
            "local",
            f"{layer}: {tensor_label(gradient_name(target))}",
            f"{tensor_label(gradient_name(target))} = {text(expr)}",
            theta.size,
            f"{step.rule.kind}; {contraction}/d{target}[k], batch {batch}",
        )

        def check(theta=theta, target=target, expr=expr):
            directions = _directions(theta)
            derived = _directional_derivative(total, theta, directions)
            return _compare(target, derived, reading(expr), directions)

        records.append(_timed(record, check))
    return records


# -------------------------------------------------------- end-to-end proofs


def _end_to_end(network: Network, progress) -> list[ProofRecord]:
    batch = END_TO_END_BATCH
    env = {
        network.input.name: _fresh(network.input, batch),
        network.target.name: _fresh(network.target, batch),
    }
    for p in network.params:
        env[p.name] = _fresh(p, batch)
    reading = SymbolicReading(env, batch)
    for step in network.steps:
        env[step.output.name] = reading(step.forward)
    loss = env[LOSS_NAME].item()

    composed: dict[str, tx.Expr] = {}
    for _step, target, expr in network.backward_plan():
        env[gradient_name(target)] = reading(expr)
        composed[target] = expr

    records = []
    free = loss.free_symbols
    for p in network.params:
        theta = env[p.name]
        names = [_index_label(p.name, index) for index in np.ndindex(theta.shape)]
        record = ProofRecord(
            "end-to-end",
            tensor_label(gradient_name(p.name)),
            f"{tensor_label(gradient_name(p.name))} = {text(composed[p.name])}, "
            "every entry against SymPy's derivative of the whole loss",
            theta.size,
            "SymPy's derivative of the whole loss of one sample along a symbolic direction c: "
            "dL(theta + eps c)/deps at 0 = sum_k c_k dL/dtheta_k; every coefficient compared exactly",
            entry_names=names if isinstance(composed[p.name], tx.Correlate) else [],
        )

        def check(theta=theta, name=p.name):
            directions = _directions(theta)
            derived = _directional_derivative(loss, theta, directions)
            progress()
            return _compare(name, derived, env[gradient_name(name)], directions)

        records.append(_timed(record, check))

    declared = network.parameter_count
    count = ProofRecord(
        "count",
        "trainable parameters",
        f"L depends on exactly {declared} trainable parameters "
        f"({' + '.join(str(theta.size) for theta in (env[p.name] for p in network.params))})",
        declared,
        "free symbols of L",
    )

    def count_check():
        params = {s for p in network.params for s in env[p.name].ravel()}
        used = len(params & free)
        return used == declared, None if used == declared else f"L uses {used} of {declared}"

    records.append(_timed(count, count_check))
    return records


# ------------------------------------------------------------------- driver


def prove(network: Network, progress: Callable[[], None] = lambda: None) -> list[ProofRecord]:
    """Every obligation of ``network``, in report order."""
    records: list[ProofRecord] = []
    if network.spec.loss == "bce":
        records += [_sigmoid_bce_identity(), _logit_form_identity()]
    if network.spec.loss == "bce" or any(s.layer and s.layer.type == "sigmoid" for s in network.steps):
        records.append(_sigmoid_lemma())
    pool_sizes = sorted({s.layer.options["size"] for s in network.steps if s.rule.kind == kinds.SELECTION})
    records += [_window_lemma(size) for size in pool_sizes]
    for step in network.steps:
        if step.layer is not None and step.layer.type == "relu":
            records.append(_relu_kink(network, step))
        if step.rule.kind == kinds.SELECTION:
            records.append(_pooling_ties(network, step))
    for step in network.steps:
        records += _local_proofs(network, step)
        progress()
    records += _end_to_end(network, progress)
    return records


def all_hold(records: list[ProofRecord]) -> bool:
    return all(r.holds for r in records)
