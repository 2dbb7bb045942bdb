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
- *count*: the loss depends on exactly the declared trainable parameters;
- *parametric* and their *composition*: every rule for all sizes, and the network's rules as
  those theorems at its sizes, chained (``derive.parametric.network_proofs``). Local and
  end-to-end proofs run where a deterministic cost model puts them within the budget.

Identities hold on the region where no ReLU input is 0 and no pooling window
has tied values; kinks and ties are the convention obligations' job.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import sympy as sp

from gradproof.derive import miniature
from gradproof.derive import texpr as tx
from gradproof.derive.canonical import NormalForm, Polynomial, add_into, equal, prune, vanishes
from gradproof.derive.layers import Use
from gradproof.derive.network import LOSS_NAME, Network, Step, build
from gradproof.derive.parametric.network_proofs import Budget, composition_record, parametric_records
from gradproof.derive.records import REFUTED, ProofRecord, index_label, timed
from gradproof.derive.records import fresh as _fresh
from gradproof.derive.spec import forward_terms
from gradproof.derive.statement import gradient_name, tensor_label, text
from gradproof.derive.symbolic import SymbolicReading, free_symbols, symbol_array
from gradproof.derive.tangent import Tangent

__all__ = ["ProofRecord", "all_hold", "obligation_keys", "prove"]

LOCAL_BATCH = 2
# The keys of the records the prover makes itself; the layer types bring the others (identities,
# lemmas, conventions), which come first in a report (``obligation_keys``).
OWN_KEYS = ("parametric", "theorems-composed", "local", "end-to-end", "count", "batch")
LEVELS = ("identity", "lemma", "convention")
# Largest whole-batch forward graph (multiply-adds) proven end to end at the spec's batch.
END_TO_END_TERMS = 20_000


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
            failing.append(index_label(name, index))
    if not failing:
        return True, None
    more = f" (and {len(failing) - 1} more of {rule.size})" if len(failing) > 1 else ""
    return False, failing[0] + more


def _target(network: Network, batch: int) -> np.ndarray:
    """Fresh target symbols, with the loss's hypothesis made true (rows of a softmax target sum to 1)."""
    return network.steps[-1].rule.constrain_target(_fresh(network.target, batch))


def _producer(network: Network, name: str) -> Step | None:
    return next((s for s in network.steps if s.output.name == name), None)


def _bind_rule_inputs(network: Network, reading: SymbolicReading, expr: tx.Expr) -> None:
    """Evaluate forward values a rule reads but the layer does not bind (``A2`` for BCE)."""
    for tensor in tx.tensors_in(expr):
        if tensor.name not in reading.env:
            step = _producer(network, tensor.name)
            assert step is not None, tensor.name
            reading.env[tensor.name] = reading(step.forward)


# ------------------------------------------ identities, lemmas and conventions


def network_uses(network: Network) -> list[Use]:
    """The identities and lemmas the network's types bring, each once, in report order.

    Identities before lemmas; within a level, in the order the loss and then the layers first
    bring them; uses of one obligation (window lemmas of several sizes) by their arguments.
    """
    loss = network.steps[-1]
    (logit,) = loss.rules
    uses: list[Use] = list(
        loss.rule.lemmas(logit, network.output.name, network.target.name, network.output.shape[1:])
    )
    for step in network.steps[:-1]:
        uses += step.rule.lemmas(step.layer.options)
    unique = list(dict.fromkeys((u.obligation.key, u.args) for u in uses))
    by_key = {u.obligation.key: u.obligation for u in uses}
    first = {key: n for n, (key, _) in reversed(list(enumerate(unique)))}
    unique.sort(key=lambda pair: (LEVELS.index(by_key[pair[0]].level), first[pair[0]], pair[1]))
    return [Use(by_key[key], args) for key, args in unique]


def obligation_keys(network: Network) -> tuple[str, ...]:
    """The ``key`` of each kind of record of ``network``, in report order."""
    conventions = [o.key for s in network.steps[:-1] for o in s.rule.conventions]
    keys = [u.obligation.key for u in network_uses(network)] + conventions + list(OWN_KEYS)
    return tuple(dict.fromkeys(keys))


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
        env[network.target.name] = _target(network, batch)
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
        network.target.name: _target(network, batch),
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
    layer = step.layer.type if step.layer else f"{step.rule.name} loss"
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

        records.append(timed(record, check))
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
        env = {
            loss.input.name: _fresh(loss.input, LOCAL_BATCH),
            network.target.name: _target(network, LOCAL_BATCH),
        }
        whole = SymbolicReading(env, LOCAL_BATCH)(loss.forward).item()
        per_sample = [
            SymbolicReading({name: value[n : n + 1] for name, value in env.items()}, 1)(loss.forward).item()
            for n in range(LOCAL_BATCH)
        ]
        combined = sp.Add(*per_sample) / (LOCAL_BATCH if reduction == "mean" else 1)
        holds = equal(whole, combined)
        return holds, None if holds else f"L is not the {reduction} of per-sample losses"

    return timed(record, check)


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
        names = [index_label(p.name, index) for index in np.ndindex(move.base.shape)]
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

        records.append(timed(record, check))

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

    records.append(timed(count, count_check))
    return records


# ------------------------------------------------------------------- driver


def prove(
    network: Network,
    progress: Callable[[], None] = lambda: None,
    budget: Budget | None = None,
    say: Callable[[str], None] = lambda text: None,
    end_to_end: bool = True,
) -> list[ProofRecord]:
    """Every obligation of ``network``, in report order.

    The theorems for all sizes always run; an element-wise proof at the network's sizes runs when
    ``budget`` admits its estimated cost (``derive.parametric.network_proofs``), and the
    composition record says which did (``end_to_end=False``: never end to end). A network with
    ``proof = "reduced"`` is proven element-wise on its miniature. ``say`` hears what a long proof
    is doing.
    """
    budget = budget or Budget()
    if network.spec.proof == "reduced":
        return _reduced(network, progress, budget, say, end_to_end)
    theorems, of_rule = _theorems(network, say)
    records = _size_free(network, say) + theorems
    element_wise, local_names, whole, runs = _element_wise(network, progress, budget, say, end_to_end)
    records.append(composition_record(network, of_rule, local_names, whole))
    records += element_wise
    _refuted_by_theorem(records, of_rule)
    return records


def _theorems(network: Network, say: Callable[[str], None]):
    say("theorems for all sizes")
    return parametric_records(network)


def _size_free(network: Network, say: Callable[[str], None]) -> list[ProofRecord]:
    """Identities, lemmas and conventions."""
    say("identities, lemmas and conventions")
    records = [use.obligation.prove(*use.args) for use in network_uses(network)]
    for step in network.steps[:-1]:
        records += [convention.prove(network, step) for convention in step.rule.conventions]
    return records


def _element_wise(network: Network, progress, budget: Budget, say, end_to_end: bool):
    """The local and end-to-end proofs at the network's sizes that fit ``budget``, and what ran."""
    records, local_names = [], []
    for step in network.steps:
        cost = budget.local_cost(step)
        if budget.fits(cost):
            say(f"local proof of {step.output.name} (estimated {budget.estimate(cost)})")
            records += _local_proofs(network, step)
            local_names.append(step.output.name)
        progress()
    whole = budget.end_to_end_cost(network)
    runs = end_to_end and budget.fits(whole)
    estimate = f"estimated {budget.estimate(whole)}, budget {budget.seconds:g} s"
    if runs:
        words = f"proven entry by entry ({estimate})"
    elif end_to_end:
        words = f"not run ({estimate})"
    else:
        words = "not run (beyond the element-wise limits)"
    if runs:
        say(f"end-to-end proof ({estimate})")
        records += _end_to_end(network, progress)
    if len(local_names) == len(network.steps):  # the batch rule extends the local proofs to any N
        records.append(_batch_reduction(network))
    return records, local_names, words, runs


def _refuted_by_theorem(records: list[ProofRecord], of_rule: dict) -> None:
    """A failed entry-wise record whose rule's theorem is refuted is refuted, by its counterexample."""
    for record in records:
        theorem = of_rule.get((record.step_output, record.target))
        if (
            record.level == "local"
            and not record.holds
            and theorem is not None
            and theorem.verdict == REFUTED
        ):
            record.verdict = REFUTED
            record.counterexample = theorem.counterexample
            record.reason = f"its theorem for all sizes is refuted: {theorem.failing}"


def all_hold(records: list[ProofRecord]) -> bool:
    return all(r.holds for r in records)


# ------------------------------------------------ a network proven by its miniature


def _reduced(network: Network, progress, budget: Budget, say, end_to_end: bool) -> list[ProofRecord]:
    """Theorems for all sizes; the miniature proven element-wise; shapes, composition, count at full size."""
    small_spec = miniature.miniature(network.spec)
    sizes = miniature.describe(small_spec)
    small = build(small_spec)
    whole = end_to_end and miniature.fits_end_to_end(small_spec)
    theorems, of_rule = _theorems(network, say)
    records = _size_free(small, say)
    element_wise, local_names, words, runs = _element_wise(small, progress, budget, say, whole)
    for record in records + element_wise:
        if record.key in ("local", "end-to-end", "count", "batch") or record.level == "convention":
            record.sizes = sizes
            record.statement += f" [proven at reduced sizes: {sizes}]"
    records += theorems
    records.append(composition_record(network, of_rule, local_names, words, reduced=sizes))
    records += element_wise
    _refuted_by_theorem(records, of_rule)
    if runs:
        how = "it is proven end to end"
    elif not whole:
        how = (
            "its end-to-end derivative is beyond the element-wise limits, so its layers are proven "
            "locally and their composition at the network's sizes"
        )
    else:
        how = (
            "its end-to-end proof is beyond the budget, so its layers are proven locally and their "
            "composition at the network's sizes"
        )
    same = ProofRecord(
        "composition",
        "the miniature has the network's architecture",
        f"the network proven at reduced sizes ({sizes}) has the same layer types in the same order, "
        "the same kernels, strides, padding, windows, bias flags, loss, reduction and classes; only "
        "input channels, size, filters and hidden units are smaller, and the rules are declared once "
        "per type; " + how,
        len(network.spec.layers),
        "comparison of the two specs, layer by layer",
        key="miniature",
        sizes=sizes,
    )

    def architecture():
        holds = miniature.same_architecture(network.spec, small_spec)
        return holds, None if holds else "architecture"

    records.append(timed(same, architecture))
    records += [_shapes(network), _composition(network), _parameter_count(network)]
    return records


def _shapes(network: Network) -> ProofRecord:
    steps = network.steps
    rules = sum(len(s.rules) for s in steps)
    record = ProofRecord(
        "shapes",
        "shapes at the network's sizes",
        "every forward map has the shape of its output and every rule the shape of the tensor it "
        "differentiates, at the network's own sizes (the shape rules of the expression language)",
        len(steps) + rules,
        "shape reading of every forward map and rule",
        key="shapes",
    )

    def check():
        for step in steps:
            try:
                if step.forward.shape != step.output.shape:
                    return False, f"{step.output.name}: {step.forward.shape} != {step.output.shape}"
                for target, rule in step.rules.items():
                    expected = _tensor_shape(network, target)
                    if rule.shape != expected:
                        return False, f"{tensor_label(gradient_name(target))}: {rule.shape} != {expected}"
            except tx.ShapeError as error:
                return False, f"{step.output.name}: {error}"
        return True, None

    return timed(record, check)


def _tensor_shape(network: Network, name: str) -> tx.Shape:
    for tensor in [network.input, *network.params, *(s.output for s in network.steps)]:
        if tensor.name == name:
            return tensor.shape
    raise KeyError(name)


def _composition(network: Network) -> ProofRecord:
    plan = network.backward_plan()
    record = ProofRecord(
        "composition",
        "the backward plan composes the proven rules",
        "from dL/dL = 1 back, each rule reads only forward values, parameters and the gradient its "
        "layer's output already has, and the plan gives a rule for every trainable parameter",
        len(plan),
        "walk of the backward plan",
        key="composition",
    )

    def check():
        known = {network.input.name, network.target.name} | {p.name for p in network.params}
        known |= {s.output.name for s in network.steps}
        known.add(gradient_name(LOSS_NAME))
        for step, target, rule in plan:
            if step.upstream is not None and step.upstream.name not in known:
                return False, f"{tensor_label(gradient_name(target))} before {step.upstream.name}"
            for tensor in tx.tensors_in(rule):
                if tensor.name not in known:
                    return False, f"{tensor_label(gradient_name(target))} reads {tensor.name}"
            known.add(gradient_name(target))
        missing = [p.name for p in network.params if gradient_name(p.name) not in known]
        return not missing, f"no rule for {missing[0]}" if missing else None

    return timed(record, check)


def _parameter_count(network: Network) -> ProofRecord:
    sizes = [int(np.prod(p.shape)) for p in network.params]
    declared = network.parameter_count
    record = ProofRecord(
        "count",
        "trainable parameters",
        f"{declared} trainable parameters ({' + '.join(map(str, sizes))}), each the target of one rule",
        declared,
        "the declared shapes, and one rule per parameter tensor in the backward plan",
        key="parameter-count",
    )

    def check():
        targets = [t for _, t, _ in network.backward_plan()]
        ok = sum(sizes) == declared and all(targets.count(p.name) == 1 for p in network.params)
        return ok, None if ok else "parameters"

    return timed(record, check)
