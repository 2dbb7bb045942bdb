"""From a spec to a network: named tensors, one step per layer, and the backward plan.

Names follow the source material: input ``X``, target ``Y``; the k-th
parametrised layer has output ``Zk`` and parameters ``Wk``, ``Bk``; an
activation of ``Zk`` is ``Ak``, a pooling ``Pk``, a flatten ``F``, the loss ``L``.
The gradient of a tensor ``T`` is the tensor ``dT`` (``dL/dT``).
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod

from gradproof.derive import texpr as tx
from gradproof.derive.layers import LAYERS, LOSSES, Context, LayerType, LossContext, LossType, Parameter
from gradproof.derive.spec import LayerSpec, NetworkSpec, layer_shapes
from gradproof.derive.statement import gradient_name
from gradproof.derive.texpr import Tensor

LOSS_NAME = "L"
TARGET_NAME = "Y"
INPUT_NAME = "X"


@dataclass(frozen=True)
class Step:
    """One layer (or the loss) with its tensors and its declared rules."""

    layer: LayerSpec | None
    rule: LayerType | LossType  # its entry of the rule table
    input: Tensor
    output: Tensor
    params: tuple[Tensor, ...]
    forward: tx.Expr
    rules: dict[str, tx.Expr]
    parameters: tuple[Parameter, ...] = ()  # the declarations of ``params``, in the same order

    @property
    def upstream(self) -> Tensor | None:
        """The gradient the rules read (``None`` for the loss, whose upstream is 1)."""
        if self.output.name == LOSS_NAME:
            return None
        return Tensor(gradient_name(self.output.name), self.output.shape)


@dataclass(frozen=True)
class Network:
    spec: NetworkSpec
    input: Tensor
    target: Tensor
    steps: tuple[Step, ...]

    @property
    def params(self) -> list[Tensor]:
        return [p for step in self.steps for p in step.params]

    @property
    def parameter_count(self) -> int:
        return sum(prod(p.shape) for p in self.params)

    @property
    def output(self) -> Tensor:
        return self.steps[-2].output

    def tensor_names(self) -> list[str]:
        names = [self.input.name, self.target.name]
        for step in self.steps:
            names += [p.name for p in step.params] + [step.output.name]
        return names

    def backward_plan(self) -> list[tuple[Step, str, tx.Expr]]:
        """The rules in the order backpropagation applies them, from the loss back.

        A rule is used when the gradient it reads is known; the input gradient
        of the first layer (``dX``) is not needed for training and is left out.
        The fused sigmoid+BCE loss hands ``dZ`` straight to the layer below the
        sigmoid, so the sigmoid's own rule is not part of the plan.
        """
        known = {LOSS_NAME}
        plan = []
        for step in reversed(self.steps):
            if step.output.name not in known:
                continue
            for target, expr in step.rules.items():
                if target == self.input.name:
                    continue
                plan.append((step, target, expr))
                known.add(target)
        return plan


def build(spec: NetworkSpec) -> Network:
    """Name every tensor, declare every step's rules, and add the loss step."""
    batched = lambda name, shape: Tensor(name, (tx.BATCH, *shape))  # noqa: E731
    x = batched(INPUT_NAME, spec.input)
    current, k, taken = x, 0, {INPUT_NAME, TARGET_NAME, LOSS_NAME}
    steps: list[Step] = []

    def fresh(stem: str) -> str:
        name, n = stem, 2
        while name in taken:
            name, n = f"{stem}_{n}", n + 1
        taken.add(name)
        return name

    for layer, shape in zip(spec.layers, layer_shapes(spec), strict=True):
        layer_type = LAYERS[layer.type]
        declared = layer_type.parameters(current.shape[1:], shape, layer.options)
        if declared:  # a layer with parameters starts the next numbered layer: Z2, W2, B2
            k += 1
        stem = layer_type.stem
        out = batched(fresh(f"{stem}{k}" if layer_type.numbered else stem), shape)
        params = tuple(Tensor(fresh(f"{p.stem}{k}"), p.shape) for p in declared)
        roles = {p.role: t for p, t in zip(declared, params, strict=True)}
        declaration = layer_type.declare(Context(current, out, _grad(out), roles, layer.options))
        steps.append(
            Step(layer, layer_type, current, out, params, declaration.forward, declaration.rules, declared)
        )
        current = out

    y = Tensor(TARGET_NAME, current.shape)
    loss_type = LOSSES[spec.loss]
    loss_input = steps[-1].input if loss_type.reads_logit_of else current
    declaration = loss_type.declare(LossContext(loss_input, current, y, spec.reduction))
    loss = Tensor(LOSS_NAME, ())
    steps.append(Step(None, loss_type, loss_input, loss, (), declaration.forward, declaration.rules))
    return Network(spec, x, y, tuple(steps))


def _grad(t: Tensor) -> Tensor:
    return Tensor(gradient_name(t.name), t.shape)
