"""From a spec to a network: named tensors, one step per layer, and the backward plan.

Names follow the source material: input ``X``, target ``Y``; the k-th
parametrised layer has output ``Zk`` and parameters ``Wk``, ``Bk``; an
activation of ``Zk`` is ``Ak``, a pooling ``Pk``, a flatten ``F``, the loss ``L``.
The gradient of a tensor ``T`` is the tensor ``dT`` (``dL/dT``).
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod

from gradproof.derive import layers as rules_table
from gradproof.derive import texpr as tx
from gradproof.derive.spec import LayerSpec, NetworkSpec, layer_shapes
from gradproof.derive.texpr import Tensor

LOSS_NAME = "L"
TARGET_NAME = "Y"
INPUT_NAME = "X"


def gradient_name(name: str) -> str:
    return f"d{name}"


@dataclass(frozen=True)
class Step:
    """One layer (or the loss) with its tensors and its declared rules."""

    layer: LayerSpec | None
    rule: rules_table.LayerRule
    input: Tensor
    output: Tensor
    params: tuple[Tensor, ...]
    forward: tx.Expr
    rules: dict[str, tx.Expr]

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
        rule = rules_table.RULES[layer.type]
        params: tuple[Tensor, ...] = ()
        if layer.type in ("conv2d", "dense"):
            k += 1
            out = batched(fresh(f"Z{k}"), shape)
            channels = current.shape[1]
            if layer.type == "conv2d":
                kernel = layer.options["kernel"]
                w = Tensor(fresh(f"W{k}"), (shape[0], channels, kernel, kernel))
            else:
                w = Tensor(fresh(f"W{k}"), (channels, shape[0]))
            b = Tensor(fresh(f"B{k}"), (shape[0],)) if layer.options["bias"] else None
            params = (w, b) if b is not None else (w,)
            declaration = rule.declare(current, w, b, _grad(out))
        else:
            stem = {"relu": "A", "sigmoid": "A", "maxpool2d": "P", "flatten": "F"}[layer.type]
            out = batched(fresh("F" if stem == "F" else f"{stem}{k}"), shape)
            if layer.type == "sigmoid":
                declaration = rule.declare(current, _grad(out), out)
            elif layer.type == "maxpool2d":
                declaration = rule.declare(current, _grad(out), layer.options["size"])
            else:
                declaration = rule.declare(current, _grad(out))
        steps.append(Step(layer, rule, current, out, params, declaration.forward, declaration.rules))
        current = out

    y = Tensor(TARGET_NAME, current.shape)
    loss_rule = rules_table.RULES[spec.loss]
    if spec.loss == "bce":
        logits = steps[-1].input
        declaration = loss_rule.declare(logits, y, current, spec.reduction)
        loss_input = logits
    else:
        declaration = loss_rule.declare(current, y, spec.reduction)
        loss_input = current
    loss = Tensor(LOSS_NAME, ())
    steps.append(Step(None, loss_rule, loss_input, loss, (), declaration.forward, declaration.rules))
    return Network(spec, x, y, tuple(steps))


def _grad(t: Tensor) -> Tensor:
    return Tensor(gradient_name(t.name), t.shape)
