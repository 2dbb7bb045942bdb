"""A network's rules as theorems for all sizes, and the sizes at which each theorem applies.

``statements_for(network, step)``: the step's own forward map and rules (as the network holds
them: a test may have replaced one), with its tensors renamed to the theorem's and read with the
theorem's symbolic shapes, once the sizes the step fixes (stride, padding, kernel of a strided
convolution; the remainders of a floor-mode pooling) are put in. ``instance_sizes`` reads the
other sizes off the step's concrete shapes and checks the hypotheses, so that the theorem covers
the step (the composition's shape obligation).
"""

from __future__ import annotations

import dataclasses

import sympy as sp

from gradproof.derive import texpr as tx
from gradproof.derive.network import Network, Step
from gradproof.derive.parametric.catalogue import NoTheorem, Theorem, theorem_of
from gradproof.derive.parametric.reading import IndexReading
from gradproof.derive.parametric.theorem import Statement


def renamed(expr: tx.Expr, names: dict[str, str]) -> tx.Expr:
    """``expr`` with every tensor renamed by ``names`` (operations of any reading, test-only ones too)."""
    if isinstance(expr, tx.Tensor):
        return tx.Tensor(names.get(expr.name, expr.name), expr.dims)
    changes = {
        f.name: renamed(getattr(expr, f.name), names)
        for f in dataclasses.fields(expr)
        if isinstance(getattr(expr, f.name), tx.Expr)
    }
    return dataclasses.replace(expr, **changes) if changes else expr


def template(network: Network, step: Step) -> Theorem:
    """The theorem the step's own type states for the step's options."""
    options = dict(step.layer.options) if step.layer is not None else {}
    return theorem_of(step.rule, options, network.spec.reduction)


def step_names(network: Network, step: Step, theorem: Theorem) -> dict[str, str]:
    """The step's tensor names -> the theorem's, by role."""
    roles = theorem.roles
    names = {step.input.name: roles["input"]}
    if step.upstream is not None:
        names[step.output.name] = roles["output"]
        names[step.upstream.name] = roles["upstream"]
    for tensor, parameter in zip(step.params, step.parameters, strict=True):
        names[tensor.name] = roles[parameter.role]
    if "target" in roles:
        names[network.target.name] = roles["target"]
        names[network.output.name] = roles["prediction"]
    return names


def unreadable(expr: tx.Expr) -> list[str]:
    """The operations in ``expr`` that have no index-form reading (a floor-mode pooling's crop)."""
    out = []
    if not (
        hasattr(IndexReading, f"read_{type(expr).__name__}")
        and hasattr(IndexReading, f"shape_{type(expr).__name__}")
    ):
        out.append(type(expr).__name__)
    for f in dataclasses.fields(expr):
        value = getattr(expr, f.name)
        if isinstance(value, tx.Expr):
            out += [name for name in unreadable(value) if name not in out]
    return out


def statements_for(network: Network, step: Step) -> tuple[Theorem, list[Statement]]:
    theorem = template(network, step)
    missing = unreadable(step.forward) + [n for rule in step.rules.values() for n in unreadable(rule)]
    if missing:
        # Not the catalogue's statement: the layer's own forward map or rule uses an operation (a
        # test's, or a case such as a window that does not divide the input) the theorem does not read.
        raise NoTheorem(
            f"no theorem for all sizes of this {step.rule.name}: {', '.join(sorted(set(missing)))}"
        )
    names = step_names(network, step, theorem)
    rank = len(step.input.shape)
    candidates = [s for s in theorem.statements if len(s.shapes[theorem.roles["input"]]) == rank]
    options = dict(step.layer.options) if step.layer is not None else {}
    fixed = theorem.fixed(options, step.input.shape[1:])
    out = []
    for target, rule in step.rules.items():
        name = names[target]
        try:
            base = next(s for s in candidates if s.target == name).specialised(fixed)
        except ValueError as outside:
            raise NoTheorem(str(outside)) from None
        reshapes = {step.input.shape: base.shapes[theorem.roles["input"]]}
        statement = dataclasses.replace(
            base,
            forward=renamed(step.forward, names),
            rule=renamed(rule, names),
            reshapes=reshapes,
        )
        out.append(_output_defined(statement, step, names))
    return theorem, out


def _output_defined(statement: Statement, step: Step, names: dict[str, str]) -> Statement:
    """A rule that reads the layer's output (``dZ = dA * [A > 0]``) reads it as the forward map."""
    if step.upstream is None:
        return statement
    output = names[step.output.name]
    reads = {t.name for t in tx.tensors_in(statement.rule)}
    if output not in reads or output in statement.definitions:
        return statement
    shape = statement.shapes.get(output) or statement.reading().shape(statement.forward)
    return dataclasses.replace(
        statement,
        definitions={**statement.definitions, output: statement.forward},
        shapes={**statement.shapes, output: shape},
    )


def instance_sizes(network: Network, step: Step, statement: Statement) -> dict[sp.Symbol, int] | None:
    """The sizes at which ``statement`` is the step's rule (those it fixed too), or None when its shapes
    do not match."""
    theorem = template(network, step)
    names = step_names(network, step, theorem)
    concrete = {names[t.name]: t.shape for t in (step.input, *step.params) if t.name in names}
    if step.upstream is not None:
        concrete[names[step.upstream.name]] = step.upstream.shape
    batch = network.spec.batch
    sizes: dict[sp.Symbol, int] = {statement.batch: batch}
    pairs = []
    for name, shape in concrete.items():
        symbolic = statement.shapes[name]
        if len(symbolic) != len(shape):
            return None
        pairs += [
            (sp.sympify(a), batch if b == tx.BATCH else b) for a, b in zip(symbolic, shape, strict=True)
        ]
    for a, b in pairs:
        if a.is_Symbol:
            if sizes.setdefault(a, b) != b:
                return None
    for _ in range(3):  # a dimension like s * H or H - K + 1 gives a size once the others are known
        for a, b in pairs:
            unknown = [s for s in a.free_symbols if s not in sizes]
            if len(unknown) == 1:
                (u,) = unknown
                solutions = [v for v in sp.solve(sp.Eq(a.xreplace(sizes), b), u) if v.is_Integer]
                if len(solutions) == 1:
                    sizes[u] = int(solutions[0])
    if any(s not in sizes for s in statement.sizes):
        return None
    if any(sp.sympify(a).xreplace(sizes) != b for a, b in pairs):
        return None
    if any(f.expr().xreplace(sizes) < 0 for f in statement.hypotheses().inequalities):
        return None
    found = {**statement.fixed, **{s: sizes[s] for s in statement.sizes}}
    return dict(sorted(found.items(), key=lambda item: str(item[0])))
