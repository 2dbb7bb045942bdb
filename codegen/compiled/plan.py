"""The compiled module's statements: the network's proven rules, fused only by proven rewrites.

``plan(network, records)`` lists the forward statements, the loss and the backward statements as
the rules declare them, then applies each rewrite of ``derive.rewrites`` whose proof record holds:

- a ReLU followed by a max-pool becomes the max-pool followed by the ReLU (``relu-maxpool``),
  and the pool keeps each window's first maximum (``routed-entry``);
- their backward rules become ``dM = dP ⊙ [M > 0]`` and ``dZ = route_max(Z, dM)``
  (``relu-maxpool-routing``), ``dZ`` read from the kept entries;
- the weight and bias gradients of the convolution below read ``dZ`` only at the routed
  entries (``routed-weight-gradient``), so ``dZ`` is never written out.

A rewrite whose record does not hold is not applied: the rules are then printed as declared.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from gradproof.codegen.numpy.emitter import _proof_summary as proof_summary  # the NumPy module's words
from gradproof.derive import operations as ops
from gradproof.derive import rewrites
from gradproof.derive import texpr as tx
from gradproof.derive.network import LOSS_NAME, Network, Step, gradient_name
from gradproof.derive.prover import ProofRecord
from gradproof.derive.rewrites import rewrite_note
from gradproof.derive.statement import text


@dataclass
class Statement:
    """``target = expr`` for one sample; ``notes`` are the comment lines (rules and their proofs)."""

    target: str
    expr: tx.Expr
    notes: list[str] = field(default_factory=list)


@dataclass
class Plan:
    forward: list[Statement]
    loss: Statement
    backward: list[Statement]
    keep: dict[str, str]  # pooled tensor -> array of the kept window positions
    kept_shapes: dict[str, tuple[int, ...]]  # that array's per-sample shape
    rewrites: list[ProofRecord]

    @property
    def forward_names(self) -> list[str]:
        return [s.target for s in self.forward]


def _substitute(expr: tx.Expr, name: str, by: tx.Expr) -> tx.Expr:
    """``expr`` with the tensor ``name`` replaced by ``by``."""
    if isinstance(expr, tx.Tensor):
        return by if expr.name == name else expr
    changes = {
        key: _substitute(value, name, by) for key, value in vars(expr).items() if isinstance(value, tx.Expr)
    }
    return replace(expr, **changes)


def _replace(expr: tx.Expr, old: tx.Expr, new: tx.Expr) -> tx.Expr:
    """``expr`` with every occurrence of the subexpression ``old`` replaced by ``new``."""
    if expr == old:
        return new
    if isinstance(expr, tx.Tensor):
        return expr
    changes = {
        key: _replace(value, old, new) for key, value in vars(expr).items() if isinstance(value, tx.Expr)
    }
    return replace(expr, **changes)


def _subexpressions(expr: tx.Expr):
    yield expr
    for value in vars(expr).values():
        if isinstance(value, tx.Expr):
            yield from _subexpressions(value)


def _reads(expr: tx.Expr, name: str) -> bool:
    return any(t.name == name for t in tx.tensors_in(expr))


def unfused(network: Network, records: list[ProofRecord]) -> Plan:
    """The statements as the rules declare them."""
    steps = network.steps
    forward = [
        Statement(s.output.name, s.forward, [f"{s.output.name} = {text(s.forward)}"]) for s in steps[:-1]
    ]
    loss = Statement(LOSS_NAME, steps[-1].forward, [f"{LOSS_NAME} = {text(steps[-1].forward)}"])
    backward = [
        Statement(
            gradient_name(target),
            expr,
            [f"dL/d{target} = {text(expr)}", f"[proven: {proof_summary(records, step, target)}]"],
        )
        for step, target, expr in network.backward_plan()
    ]
    result = Plan(forward, loss, backward, {}, {}, [])
    _name_padded_inputs(result)
    return result


def _name_padded_inputs(result: Plan) -> None:
    """Each zero-padded tensor ``pad(T)`` the rules read becomes a forward statement ``T_padded``, computed
    once per sample and read by the convolution and its weight gradient alike (a name, not a rewrite)."""
    statements = result.forward + result.backward
    pads = {e for s in statements for e in _subexpressions(s.expr) if isinstance(e, ops.Pad)}
    for pad in sorted((p for p in pads if isinstance(p.a, tx.Tensor)), key=lambda p: p.a.name):
        name = f"{pad.a.name}_padded"
        padded = tx.Tensor(name, pad.shape)
        for s in result.forward + result.backward:
            s.expr = _replace(s.expr, pad, padded)
        at = next((i for i, s in enumerate(result.forward) if _reads(s.expr, name)), len(result.forward))
        result.forward.insert(at, Statement(name, pad, [f"{name} = {text(pad)}"]))


def _conv_sizes(network: Network, z: tx.Tensor, size: int) -> rewrites.ConvSizes | None:
    producer = next((s for s in network.steps if s.output.name == z.name), None)
    if producer is None or producer.layer is None or producer.layer.type != "conv2d":
        return None
    w = producer.params[0]
    kernel = (int(w.shape[2]), int(w.shape[3]))
    return rewrites.ConvSizes(
        int(w.shape[1]), int(w.shape[0]), kernel, (int(z.shape[2]), int(z.shape[3])), size
    )


def plan(network: Network, records: list[ProofRecord]) -> Plan:
    """The statements, with every proven fusion applied."""
    result = unfused(network, records)
    steps = network.steps
    for relu_step, pool_step in zip(steps, steps[1:], strict=False):
        if not (
            relu_step.layer is not None
            and relu_step.layer.type == "relu"
            and pool_step.layer is not None
            and pool_step.layer.type == "maxpool2d"
            and pool_step.forward == tx.MaxPool(relu_step.output, pool_step.layer.options["size"])
        ):  # a pool that crops first (floor mode) is printed as declared
            continue
        _fuse(network, result, relu_step, pool_step)
    return result


def _fuse(network: Network, result: Plan, relu_step: Step, pool_step: Step) -> None:
    z, a, p = relu_step.input, relu_step.output, pool_step.output
    size = pool_step.layer.options["size"]
    proofs = [
        rewrites.prove_relu_after_pool(size),
        rewrites.prove_relu_after_pool_backward(size),
        rewrites.prove_routed_entry(size),
    ]
    conv = _conv_sizes(network, z, size)
    if conv is not None:
        proofs.append(rewrites.prove_routed_weight_gradient(conv))
    result.rewrites += proofs
    if not all(r.holds for r in proofs[:3]):
        return
    others = [s for s in result.forward if s.target not in (a.name, p.name)]
    if any(_reads(s.expr, a.name) for s in others) or _reads(result.loss.expr, a.name):
        return  # the activation is read elsewhere: keep it
    stem = z.name[1:] if z.name.startswith("Z") else z.name
    m = tx.Tensor(f"M{stem}", p.shape)
    kept = f"R{stem}"
    forward_notes = [rewrite_note(r) for r in proofs[:3]]
    fused_forward = [
        Statement(
            m.name, tx.MaxPool(z, size), [f"{m.name} = {text(tx.MaxPool(z, size))}, {kept} = the entry kept"]
        ),
        Statement(
            p.name, tx.Relu(m), [f"{p.name} = {text(tx.Relu(m))} = {text(pool_step.forward)}", *forward_notes]
        ),
    ]
    at = next(i for i, s in enumerate(result.forward) if s.target == a.name)
    result.forward[at : at + 2] = fused_forward
    result.keep[z.name] = kept
    result.kept_shapes[kept] = tuple(int(d) for d in p.shape[1:])

    d_a, d_z, d_m, d_p = (gradient_name(t.name) for t in (a, z, m, p))
    routed = tx.RouteMax(z, tx.Tensor(d_m, m.shape), size)
    backward: list[Statement] = []
    for s in result.backward:
        if s.target == d_a:
            expr = tx.Product(tx.Tensor(d_p, p.shape), tx.StepMask(m))
            computed = f"computed for {d_z} as {d_m} = {text(expr)}, {d_z} = {text(routed)}"
            notes = [*s.notes, computed, rewrite_note(proofs[1])]
            backward.append(Statement(d_m, expr, notes))
        elif s.target == d_z:
            backward.append(Statement(d_z, routed, [*s.notes, rewrite_note(proofs[2])]))
        else:
            backward.append(s)
    consumers = [s for s in backward if _reads(s.expr, d_z)]
    sparse = len(proofs) == 4 and proofs[3].holds and all(_routable(s.expr, d_z) for s in consumers)
    if sparse:
        backward = [s for s in backward if s.target != d_z]
        for s in consumers:
            s.expr = _substitute(s.expr, d_z, routed)
            s.notes += [
                f"computed as {text(s.expr)} from each window's routed entry",
                rewrite_note(proofs[3]),
            ]
    result.backward = backward


def _routable(expr: tx.Expr, name: str) -> bool:
    """A weight gradient ``correlate(X, dZ)`` or a sum of ``dZ`` over its positions."""
    if isinstance(expr, tx.Correlate) and expr.weight_form:
        return isinstance(expr.kernel, tx.Tensor) and expr.kernel.name == name and not _reads(expr.x, name)
    if isinstance(expr, tx.SumAxes):
        return isinstance(expr.a, tx.Tensor) and expr.a.name == name and {2, 3} <= set(expr.axes)
    return False
