"""The same architecture at reduced sizes: how a network too large for the element-wise proof is proven.

A spec with ``proof = "reduced"`` (LeNet-5: 61,706 parameters, about 400,000 multiply-adds per
sample) is proven in two parts. Its *miniature* keeps every layer, in order, with the same type,
kernel, stride, padding, pooling window, bias flags, loss, reduction and number of classes, and
shrinks the rest: at most 2 input channels and 2 filters, at most 3 units in a hidden dense
layer, and the smallest square input (up to the spec's) on which every layer is valid. The
miniature is proven element by element: identities, lemmas, conventions, every layer's local
rules, the batch reduction, and, when the miniature as a whole is within the element-wise
limits (``spec.check_limits``), end to end; LeNet-5's miniature is not (its four tanh layers
make 11.5 million chain-rule products), so its end-to-end derivative is the composition of the
proven local rules by the chain rule. At the spec's own sizes the prover checks what does not
depend on the sizes being small: every rule's shape against the tensor it differentiates, the
composition of the backward plan (each rule reads only tensors known when it runs, and it reaches every
parameter), and the parameter count. The rules themselves are one declaration per type, the same
at every size, so the miniature's proofs are proofs of the very expressions the code prints,
at other sizes; that is what the records and the documents say, and no more.
"""

from __future__ import annotations

import dataclasses

from gradproof.derive.layers import LAYERS
from gradproof.derive.spec import LayerSpec, NetworkSpec, SpecError, check_limits, layer_shapes

CHANNELS = 2
FILTERS = 2
UNITS = 3
WIDTH_FIELDS = {"conv2d": ("filters", FILTERS), "dense": ("units", UNITS)}


def _narrowed(spec: NetworkSpec) -> tuple[LayerSpec, ...]:
    """The layers with fewer filters and units; the last parametrised layer keeps its width (the classes)."""
    widened = [i for i, layer in enumerate(spec.layers) if layer.type in WIDTH_FIELDS]
    last = widened[-1] if widened else None
    layers = []
    for i, layer in enumerate(spec.layers):
        options = dict(layer.options)
        if layer.type in WIDTH_FIELDS and i != last:
            field, most = WIDTH_FIELDS[layer.type]
            options[field] = min(options[field], most)
        layers.append(dataclasses.replace(layer, options=options))
    return tuple(layers)


def miniature(spec: NetworkSpec) -> NetworkSpec:
    """The smallest square-input version of ``spec`` that every layer accepts (see the module docstring)."""
    layers = _narrowed(spec)
    base = dataclasses.replace(spec, layers=layers, proof="element-wise", name=f"{spec.name}_miniature")
    if len(spec.input) == 1:
        candidates = [(min(spec.input[0], UNITS),)]
    else:
        channels, height, width = spec.input
        candidates = [
            (min(channels, CHANNELS), min(height, side), min(width, side))
            for side in range(1, max(height, width) + 1)
        ]
    for shape in candidates:
        small = dataclasses.replace(base, input=shape)
        try:
            layer_shapes(small)
        except SpecError:
            continue
        return small
    raise SpecError(spec.source, "no reduced input fits every layer", field="input")


def fits_end_to_end(small: NetworkSpec) -> bool:
    """Whether the miniature is within the element-wise prover's limits as a whole (else: layer by layer)."""
    try:
        check_limits(small)
    except SpecError:
        return False
    return True


def describe(small: NetworkSpec) -> str:
    """``X 1x16x16; widths 2, 2, 3, 3, 10``: what the miniature's records were proven at."""
    widths = [
        str(layer.options[WIDTH_FIELDS[layer.type][0]])
        for layer in small.layers
        if layer.type in WIDTH_FIELDS
    ]
    return f"input {'x'.join(map(str, small.input))}; widths {', '.join(widths)}"


def same_architecture(spec: NetworkSpec, small: NetworkSpec) -> bool:
    """Same layer types in the same order, the same options except the widths it narrows."""
    if [layer.type for layer in spec.layers] != [layer.type for layer in small.layers]:
        return False
    for big, little in zip(spec.layers, small.layers, strict=True):
        narrowed = WIDTH_FIELDS.get(big.type, (None, 0))[0]
        if {k: v for k, v in big.options.items() if k != narrowed} != {
            k: v for k, v in little.options.items() if k != narrowed
        }:
            return False
        if LAYERS[big.type] is not LAYERS[little.type]:
            return False
    return (spec.loss, spec.reduction) == (small.loss, small.reduction)
