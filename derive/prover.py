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

from gradproof.derive import layers as kinds
from gradproof.derive import texpr as tx
from gradproof.derive.canonical import NormalForm, Polynomial, add_into, equal, prune, vanishes
from gradproof.derive.network import LOSS_NAME, Network, Step, gradient_name
from gradproof.derive.spec import forward_terms
from gradproof.derive.statement import tensor_label, text
from gradproof.derive.symbolic import (
    SymbolicReading,
    free_symbols,
    sigmoid_formula,
    sigmoid_lemma_holds,
    symbol_array,
    window_lemma_holds,
)
from gradproof.derive.tangent import Tangent

LOCAL_BATCH = 2
# The ``key`` of each kind of record, in report order.
OBLIGATION_KEYS = (
    "sigmoid-bce",
    "bce-logit",
    "sigmoid-derivative",
    "window-max",
    "relu-kink",
    "pooling-ties",
    "local",
    "end-to-end",
    "count",
    "batch",
)
# Largest whole-batch forward graph (multiply-adds) proven end to end at the spec's batch.
END_TO_END_TERMS = 20_000


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
    # The rule a local or end-to-end record proves: the step (named by its output, e.g. "Z1") and
    # the tensor whose gradient the rule gives (e.g. "W1"); empty for other records.
    step_output: str = ""
    target: str = ""
    # Structured facts for readers that typeset a record (the LaTeX emitter) instead of quoting its
    # text: which obligation it is (one of OBLIGATION_KEYS), the batch size it was proven at (0 where
    # no batch is involved), the tensor a convention is checked at (e.g. "Z1") and the side of the
    # pooling window of a window lemma or a tie convention.
    key: str = ""
    batch: int = 0
    tensor: str = ""
    window: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def _timed(record: ProofRecord, check: Callable[[], tuple[bool, str | None]]) -> ProofRecord:
    start = time.perf_counter()
    record.holds, record.failing = check()
    record.seconds = time.perf_counter() - start
    return record


def _index_label(name: str, index: tuple[int, ...]) -> str:
    return f"{tensor_label(gradient_name(name))}[{','.join(map(str, index))}]"


def _concrete(shape: tx.Shape, batch: int) -> tuple[int, ...]:
    return tuple(batch if d == tx.BATCH else d for d in shape)


def _fresh(tensor: tx.Tensor, batch: int) -> np.ndarray:
    return symbol_array(tensor.name, _concrete(tensor.shape, batch))


@dataclass
class Perturbation:
    """``theta + eps c``: a tensor moved along a symbolic direction ``c`` by a scalar ``eps``.

    SymPy's derivative of a scalar ``f(theta + eps c)`` with respect to ``eps``,
    at ``eps = 0``, is ``sum_k c_k df/dtheta_k`` (chain rule): one call to
    ``diff`` yields every partial derivative, as the coefficient of its
    ``c_k``. Each differentiated tensor gets its own ``eps``.
    """

    name: str
    base: np.ndarray
    eps: sp.Symbol
    directions: np.ndarray

    @classmethod
    def of(cls, name: str, base: np.ndarray) -> Perturbation:
        directions = np.empty(base.shape, dtype=object)
        for n, index in enumerate(np.ndindex(base.shape)):
            directions[index] = sp.Dummy(f"c{n}")
        return cls(name, base, sp.Dummy(f"eps_{name}"), directions)

    @property
    def moved(self) -> np.ndarray:
        out = np.empty(self.base.shape, dtype=object)
        for index in np.ndindex(self.base.shape):
            out[index] = self.base[index] + self.eps * self.directions[index]
        return out


def _perturb(env: dict[str, np.ndarray], names: list[str]) -> tuple[dict[str, Perturbation], NormalForm]:
    """Move the named tensors of ``env`` in place; a normal form that reads every ``eps`` as 0."""
    moves = {name: Perturbation.of(name, env[name]) for name in names}
    for name, move in moves.items():
        env[name] = move.moved
    return moves, NormalForm(vanishing=[m.eps for m in moves.values()])


def _compare(
    normal: NormalForm, move: Perturbation, derivative: Polynomial, rule: np.ndarray
) -> tuple[bool, str | None]:
    """Exact, entry by entry: the coefficient of each ``c_k`` in SymPy's derivative equals ``rule[k]``.

    The derivative is linear in the directions, so its normal form splits into
    one polynomial per entry; each is compared with the normal form of that
    entry of the rule. A failure names the first failing entry and how many
    entries fail in all.
    """
    name = move.name
    if rule.shape != move.directions.shape:
        return False, f"{tensor_label(gradient_name(name))}: shape {rule.shape} != {move.directions.shape}"
    entry_of = {normal.symbol_variable(move.directions[i]): i for i in np.ndindex(rule.shape)}
    coefficients: dict[tuple[int, ...], Polynomial] = {i: {} for i in np.ndindex(rule.shape)}
    for monomial, value in derivative.items():
        hits = [v for v in monomial if v in entry_of]
        if len(hits) != 1:  # cannot happen for a first derivative; refuse rather than guess
            return False, f"{tensor_label(gradient_name(name))}: derivative not linear in the direction"
        at = monomial.index(hits[0])
        coefficients[entry_of[hits[0]]][monomial[:at] + monomial[at + 1 :]] = value
    failing = []
    for index in np.ndindex(rule.shape):
        remainder = dict(coefficients[index])
        add_into(remainder, normal(rule[index]), -1)
        if not vanishes(normal, prune(remainder)):
            failing.append(_index_label(name, index))
    if not failing:
        return True, None
    more = f" (and {len(failing) - 1} more of {rule.size})" if len(failing) > 1 else ""
    return False, failing[0] + more


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
        key="sigmoid-bce",
    )

    def check():
        z = sp.Symbol("Z", real=True)
        y, a = sp.symbols("Y A", real=True)
        loss = -(y * sp.log(a) + (1 - y) * sp.log(1 - a))
        product = loss.diff(a).subs(a, sigmoid_formula(z)) * sigmoid_formula(z).diff(z)
        e = sp.Symbol("e", positive=True)  # e = exp(-Z): both sides are rational in e
        holds = sp.cancel(sp.together((product - (sigmoid_formula(z) - y)).subs(sp.exp(-z), e))) == 0
        return holds, None if holds else "dL/dZ"

    return _timed(record, check)


def _logit_form_identity() -> ProofRecord:
    record = ProofRecord(
        "identity",
        "BCE from the logit",
        "-(Y log sigmoid(Z) + (1 - Y) log(1 - sigmoid(Z))) = log(1 + exp(Z)) - Y Z",
        1,
        "equal derivatives (exact) and equal values at Z = 0",
        key="bce-logit",
    )

    def check():
        z, y = sp.symbols("Z Y", real=True)
        textbook = -(y * sp.log(sigmoid_formula(z)) + (1 - y) * sp.log(1 - sigmoid_formula(z)))
        logit_form = sp.log(1 + sp.exp(z)) - y * z
        e = sp.Symbol("e", positive=True)  # e = exp(-Z)
        slope = (textbook.diff(z) - logit_form.diff(z)).subs({sp.exp(-z): e, sp.exp(z): 1 / e})
        same_slope = sp.cancel(sp.together(slope)) == 0
        same_at_zero = sp.expand(sp.expand_log((textbook - logit_form).subs(z, 0), force=True)) == 0
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
        key="sigmoid-derivative",
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
        key="window-max",
        window=size,
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
        key="relu-kink",
        tensor=z.name,
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
        key="pooling-ties",
        tensor=a.name,
        window=size,
    )

    def check():
        shape = _concrete(a.shape, 1)
        out_shape = _concrete(step.output.shape, 1)
        upstream = np.empty(out_shape, dtype=object)
        for n, index in enumerate(np.ndindex(out_shape)):
            upstream[index] = sp.Integer(n + 1)
        for values in patterns:
            window = np.array([sp.Integer(v) for v in values], dtype=object).reshape(size, size)
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


# -------------------------------------------------------------- settings


@dataclass
class Setting:
    """A scalar to differentiate, the tensors moved along their directions, and its readings.

    ``scalar`` is built from the *moved* tensors; so are the rules read with
    ``reading``. ``normal`` reads every ``eps`` as 0, so both sides are seen at
    the base point, and it is shared so that equal atoms are one variable.
    """

    scalar: sp.Expr
    moves: dict[str, Perturbation]
    normal: NormalForm
    reading: SymbolicReading
    batch: int

    def derivative(self, name: str) -> Polynomial:
        """``sum_k c_k d scalar / d name[k]``, in normal form."""
        return Tangent(self.normal, self.moves[name].eps)(self.scalar)


def local_setting(network: Network, step: Step, batch: int = LOCAL_BATCH) -> Setting:
    """``sum_o G[o] out[o]`` for fresh upstream symbols ``G`` (the loss itself for the loss step)."""
    env: dict[str, np.ndarray] = {step.input.name: _fresh(step.input, batch)}
    for p in step.params:
        env[p.name] = _fresh(p, batch)
    if step.output.name == LOSS_NAME:
        env[network.target.name] = _fresh(network.target, batch)
    moves, normal = _perturb(env, list(step.rules))
    reading = SymbolicReading(env, batch)
    out = reading(step.forward)
    env[step.output.name] = out
    if step.upstream is None:
        scalar = out.item()
    else:
        g = symbol_array("G", out.shape)
        env[step.upstream.name] = g
        scalar = sp.Add(*(g * out).ravel())
    for expr in step.rules.values():
        _bind_rule_inputs(network, reading, expr)
    return Setting(scalar, moves, normal, reading, batch)


def end_to_end_setting(network: Network, batch: int) -> Setting:
    """The whole loss of ``batch`` samples, every parameter moved; the composed rules in ``env``."""
    env = {
        network.input.name: _fresh(network.input, batch),
        network.target.name: _fresh(network.target, batch),
    }
    for p in network.params:
        env[p.name] = _fresh(p, batch)
    moves, normal = _perturb(env, [p.name for p in network.params])
    reading = SymbolicReading(env, batch)
    for step in network.steps:
        env[step.output.name] = reading(step.forward)
    for _step, target, expr in network.backward_plan():
        env[gradient_name(target)] = reading(expr)
    return Setting(env[LOSS_NAME].item(), moves, normal, reading, batch)


def end_to_end_batch(network: Network) -> int:
    """The spec's batch when the whole batch is small enough to prove at once, else one sample."""
    whole = forward_terms(network.spec) * network.spec.batch
    return network.spec.batch if whole <= END_TO_END_TERMS else 1


# -------------------------------------------------------------- local proofs


def _local_proofs(network: Network, step: Step) -> list[ProofRecord]:
    setting = local_setting(network, step)
    contraction = f"d{LOSS_NAME}" if step.upstream is None else f"sum_o G[o] d{step.output.name}[o]"
    layer = step.layer.type if step.layer else f"{network.spec.loss} loss"
    records = []
    for target, expr in step.rules.items():
        record = ProofRecord(
            "local",
            f"{layer}: {tensor_label(gradient_name(target))}",
            f"{tensor_label(gradient_name(target))} = {text(expr)}",
            setting.moves[target].base.size,
            f"{step.rule.kind}; {contraction}/d{target}[k] for fresh G, batch {setting.batch}",
            step_output=step.output.name,
            target=target,
            key="local",
            batch=setting.batch,
        )

        def check(target=target, expr=expr):
            move = setting.moves[target]
            return _compare(setting.normal, move, setting.derivative(target), setting.reading(expr))

        records.append(_timed(record, check))
    return records


# ------------------------------------------------- batch: the per-sample reduction


def _batch_reduction(network: Network) -> ProofRecord:
    """The batch-sum rule: a batch's loss is the mean (sum) of per-sample losses of separate samples."""
    reduction = network.spec.reduction
    record = ProofRecord(
        "batch",
        f"per-sample {reduction} over the batch",
        f"at batch {LOCAL_BATCH}, L is the {reduction} of the per-sample losses and every layer maps "
        f"sample n from sample n alone; so dL/dtheta for a batch of any N is the {reduction} of "
        "per-sample gradients, the form every proven rule has",
        len(network.steps),
        f"exact: L at batch {LOCAL_BATCH} against the {reduction} of single-sample losses (normal form); "
        "free symbols of every layer output per sample",
        key="batch",
        batch=LOCAL_BATCH,
    )

    def check():
        for step in network.steps[:-1]:
            env = {step.input.name: _fresh(step.input, LOCAL_BATCH)}
            env.update({p.name: _fresh(p, LOCAL_BATCH) for p in step.params})
            out = SymbolicReading(env, LOCAL_BATCH)(step.forward)
            inputs = set(env[step.input.name].ravel())
            for n in range(LOCAL_BATCH):
                own = set(env[step.input.name][n].ravel())
                read = set().union(*(free_symbols(v) for v in out[n].ravel())) & inputs
                if not read <= own:
                    return False, f"{step.output.name}[{n}] reads another sample"
        loss = network.steps[-1]
        env = {t.name: _fresh(t, LOCAL_BATCH) for t in (loss.input, network.target)}
        whole = SymbolicReading(env, LOCAL_BATCH)(loss.forward).item()
        per_sample = [
            SymbolicReading({name: value[n : n + 1] for name, value in env.items()}, 1)(loss.forward).item()
            for n in range(LOCAL_BATCH)
        ]
        combined = sp.Add(*per_sample) / (LOCAL_BATCH if reduction == "mean" else 1)
        holds = equal(whole, combined)
        return holds, None if holds else f"L is not the {reduction} of per-sample losses"

    return _timed(record, check)


# -------------------------------------------------------- end-to-end proofs


def _end_to_end(network: Network, progress) -> list[ProofRecord]:
    batch = end_to_end_batch(network)
    setting = end_to_end_setting(network, batch)
    env = setting.reading.env
    samples = f"{batch} samples" if batch > 1 else "one sample"
    records = []
    for p in network.params:
        move = setting.moves[p.name]
        rule = dict((t, e) for _, t, e in network.backward_plan())[p.name]
        names = [_index_label(p.name, index) for index in np.ndindex(move.base.shape)]
        record = ProofRecord(
            "end-to-end",
            tensor_label(gradient_name(p.name)),
            f"{tensor_label(gradient_name(p.name))} = {text(rule)}, "
            "every entry against the derivative of the whole loss",
            move.base.size,
            f"derivative of the whole loss of {samples} along a symbolic direction c: "
            "dL(theta + eps c)/deps at 0 = sum_k c_k dL/dtheta_k (sum and product rules over "
            "the loss's expression graph, SymPy's derivative of each function); every coefficient "
            "compared exactly",
            entry_names=names if isinstance(rule, tx.Correlate) else [],
            step_output=next(s.output.name for s in network.steps if p in s.params),
            target=p.name,
            key="end-to-end",
            batch=batch,
        )

        def check(move=move):
            derivative = setting.derivative(move.name)
            progress()
            return _compare(setting.normal, move, derivative, env[gradient_name(move.name)])

        records.append(_timed(record, check))

    declared = network.parameter_count
    count = ProofRecord(
        "count",
        "trainable parameters",
        f"L depends on exactly {declared} trainable parameters "
        f"({' + '.join(str(setting.moves[p.name].base.size) for p in network.params)})",
        declared,
        "free symbols of L",
        key="count",
        batch=batch,
    )

    def count_check():
        params = {s for move in setting.moves.values() for s in move.base.ravel()}
        used = len(params & free_symbols(setting.scalar))
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
    records.append(_batch_reduction(network))
    return records


def all_hold(records: list[ProofRecord]) -> bool:
    return all(r.holds for r in records)
