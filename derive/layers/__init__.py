"""The rule table: every layer type and loss type, each declared once in its own module.

A layer type (``base.LayerType``) carries everything gradproof knows about it: spec fields,
output shape, tensor names, parameters, forward map and backward rules, kind, lemmas and
conventions, and its words for the emitters. The spec reader, the network builder, the prover and
the emitters look a type up here and ask it; none of them names a type. Adding a layer is one
class and one ``register`` call (plus one method per reading for each new operation it uses).
"""

from __future__ import annotations

from gradproof.derive.layers.activations import ReluLayer, SigmoidLayer, TanhLayer
from gradproof.derive.layers.base import (
    BILINEAR,
    ELEMENTWISE,
    FUSED,
    LINEAR,
    LOSS,
    SELECTION,
    Context,
    Declaration,
    Field,
    LayerError,
    LayerType,
    LossContext,
    LossType,
    Obligation,
    Parameter,
    Use,
)
from gradproof.derive.layers.convolution import Conv2d
from gradproof.derive.layers.dense import Dense
from gradproof.derive.layers.flatten import Flatten
from gradproof.derive.layers.losses import SigmoidBCE, SquaredError
from gradproof.derive.layers.pooling import AvgPool2d, MaxPool2d
from gradproof.derive.layers.softmax import CrossEntropy, SoftmaxLayer

LAYERS: dict[str, LayerType] = {}
LOSSES: dict[str, LossType] = {}


def register(entry: LayerType | LossType) -> LayerType | LossType:
    """Add a layer or loss type to the table under its ``name``; a name is taken once."""
    table = LOSSES if isinstance(entry, LossType) else LAYERS
    if entry.name in table:
        raise ValueError(f"{entry.name!r} is already in the rule table")
    table[entry.name] = entry
    return entry


BUILT_IN = (
    Conv2d,
    ReluLayer,
    SigmoidLayer,
    TanhLayer,
    MaxPool2d,
    AvgPool2d,
    Flatten,
    Dense,
    SoftmaxLayer,
    SigmoidBCE,
    SquaredError,
    CrossEntropy,
)
for _entry in BUILT_IN:
    register(_entry())

__all__ = [
    "BILINEAR",
    "ELEMENTWISE",
    "FUSED",
    "LAYERS",
    "LINEAR",
    "LOSS",
    "LOSSES",
    "SELECTION",
    "Context",
    "Declaration",
    "Field",
    "LayerError",
    "LayerType",
    "LossContext",
    "LossType",
    "Obligation",
    "Parameter",
    "Use",
    "register",
]
