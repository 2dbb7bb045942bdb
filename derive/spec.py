"""Network specs: TOML in, a validated ``NetworkSpec`` out, or one ``SpecError``.

A spec error names the file, the layer index and the field, so a user can
find the mistake without reading a traceback. Validation is complete before
anything is built, so a bad spec never gets as far as writing a file.
"""

from __future__ import annotations

import keyword
import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from math import prod
from pathlib import Path

import numpy as np

from gradproof.derive import notation

IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,31}")
LOSSES = ("bce", "mse")
REDUCTIONS = ("mean", "sum")
LAYER_FIELDS: dict[str, dict[str, str]] = {
    "conv2d": {"filters": "number of filters", "kernel": "kernel height and width"},
    "relu": {},
    "sigmoid": {},
    "maxpool2d": {"size": "window height, width and stride"},
    "flatten": {},
    "dense": {"units": "number of output units"},
}
# Optional layer fields and their defaults (booleans).
OPTIONAL_FIELDS: dict[str, dict[str, bool]] = {
    "conv2d": {"bias": True},
    "dense": {"bias": True},
}
TOP_LEVEL = {"name", "input", "loss", "reduction", "layers", "notation", "batch"}
# What the element-wise prover can finish, measured on two cores (SymPy 1.14, the DAG prover).
# Breadth: multiply-adds per sample; 28x28 with 8 filters of 5x5 (122k) proves in 45 s and
# 0.7 GB, with 16 filters (247k) in 96 s and 1.3 GB: time and memory grow about linearly, and
# the limit keeps every accepted spec within about two minutes. Depth: chain-rule products in
# the largest end-to-end derivative (the paths from a parameter entry to L, a sigmoid on the
# way counting twice); 4,096 prove in 11 s, 10,000 in 53 s and 1.5 GB, 32,768 run out of 3 GB,
# 16 sigmoid layers in a row (65,536) take 40 s and 1.2 GB, 32 of them more than 8 GB.
# Layers: 400 layers exceed Python's recursion limit.
MAX_TERMS = 250_000
MAX_CHAIN = 10_000
MAX_LAYERS = 64
SUGGESTION = "prove a smaller network of the same architecture: the rules do not depend on the size"


class SpecError(ValueError):
    """A spec that cannot describe a network; ``str()`` is the message for the user."""

    def __init__(self, source: str, message: str, layer: int | None = None, field: str | None = None):
        self.source, self.layer, self.field, self.reason = source, layer, field, message
        where = []
        if layer is not None:
            where.append(f"layers[{layer}]")
        if field is not None:
            where.append(field)
        location = ".".join(where)
        super().__init__(f"{source}: {location + ': ' if location else ''}{message}")


@dataclass(frozen=True)
class LayerSpec:
    type: str
    index: int
    options: dict[str, int | bool] = field(default_factory=dict)


@dataclass(frozen=True)
class NetworkSpec:
    name: str
    input: tuple[int, ...]
    loss: str
    reduction: str
    layers: tuple[LayerSpec, ...]
    notation: dict[str, str]
    batch: int
    source: str
    text: str = field(repr=False, compare=False, default="")


def builtin_names() -> list[str]:
    """Names of the networks shipped as package data, sorted."""
    folder = resources.files("gradproof.derive") / "networks"
    return sorted(p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml"))


def load(reference: str) -> NetworkSpec:
    """Load a built-in network by name, or a spec file by path."""
    if reference in builtin_names():
        resource = resources.files("gradproof.derive") / "networks" / f"{reference}.toml"
        return parse(resource.read_text(encoding="utf-8"), source=f"<built-in {reference}>")
    path = Path(reference)
    if not path.is_file():
        known = ", ".join(builtin_names())
        raise SpecError(reference, f"no such spec file or built-in network (built-ins: {known})")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise SpecError(reference, f"cannot read: {error}") from None
    return parse(text, source=str(path))


def _positive_int(source: str, value, layer: int | None, name: str, maximum: int = 10_000) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(source, f"must be a positive integer, got {value!r}", layer, name)
    if not 1 <= value <= maximum:
        raise SpecError(source, f"must be between 1 and {maximum}, got {value}", layer, name)
    return value


def _choice(source: str, value, name: str, options: tuple[str, ...]) -> str:
    if value not in options:
        raise SpecError(source, f"must be one of {', '.join(options)}; got {value!r}", field=name)
    return value


def parse(text: str, source: str = "<spec>") -> NetworkSpec:
    """Parse and validate a spec; raise ``SpecError`` on the first problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise SpecError(source, f"malformed TOML: {error}") from None
    unknown = sorted(set(data) - TOP_LEVEL)
    if unknown:
        raise SpecError(source, f"unknown field (known: {', '.join(sorted(TOP_LEVEL))})", field=unknown[0])
    for required in ("name", "input", "loss", "layers"):
        if required not in data:
            raise SpecError(source, "missing required field", field=required)

    name = data["name"]
    if not isinstance(name, str) or not IDENTIFIER.fullmatch(name) or keyword.iskeyword(name):
        raise SpecError(
            source,
            f"must be an identifier (letters, digits, _; not a Python keyword), got {name!r}",
            field="name",
        )
    shape = data["input"]
    if not isinstance(shape, list) or len(shape) not in (1, 3):
        raise SpecError(
            source, f"must be [channels, height, width] or [features], got {shape!r}", field="input"
        )
    input_shape = tuple(_positive_int(source, d, None, "input") for d in shape)
    loss = _choice(source, data["loss"], "loss", LOSSES)
    reduction = _choice(source, data.get("reduction", "mean"), "reduction", REDUCTIONS)
    batch = _positive_int(source, data.get("batch", 1), None, "batch", maximum=100_000)

    raw_layers = data["layers"]
    if not isinstance(raw_layers, list) or not raw_layers or not all(isinstance(r, dict) for r in raw_layers):
        raise SpecError(source, "must be a non-empty array of tables ([[layers]])", field="layers")
    if len(raw_layers) > MAX_LAYERS:
        raise SpecError(
            source,
            f"too deep for element-wise proof: {len(raw_layers)} layers (limit {MAX_LAYERS}); {SUGGESTION}",
            field="layers",
        )
    layers = tuple(_parse_layer(source, index, raw) for index, raw in enumerate(raw_layers))

    notation = data.get("notation", {})
    if not isinstance(notation, dict):
        raise SpecError(source, 'must be a table of name = "symbol"', field="notation")
    spec = NetworkSpec(name, input_shape, loss, reduction, layers, dict(notation), batch, source, text)
    _check_structure(spec)
    _check_notation(spec)
    return spec


def _parse_layer(source: str, index: int, raw: dict) -> LayerSpec:
    kind = raw.get("type")
    if kind is None:
        raise SpecError(source, "missing required field", index, "type")
    if kind not in LAYER_FIELDS:
        raise SpecError(
            source, f"unknown layer type {kind!r} (known: {', '.join(LAYER_FIELDS)})", index, "type"
        )
    fields, optional = LAYER_FIELDS[kind], OPTIONAL_FIELDS.get(kind, {})
    for key in raw:
        if key != "type" and key not in fields and key not in optional:
            known = ", ".join([*fields, *optional]) or "none"
            raise SpecError(source, f"unknown field for {kind} (known: {known})", index, key)
    options: dict[str, int | bool] = {}
    for key in fields:
        if key not in raw:
            raise SpecError(source, f"missing required field ({fields[key]})", index, key)
        options[key] = _positive_int(source, raw[key], index, key)
    for key, default in optional.items():
        value = raw.get(key, default)
        if not isinstance(value, bool):
            raise SpecError(source, f"must be true or false, got {value!r}", index, key)
        options[key] = value
    return LayerSpec(kind, index, options)


def layer_shapes(spec: NetworkSpec) -> list[tuple[int, ...]]:
    """Per-sample output shape of every layer (validated by ``parse``)."""
    shapes, shape = [], spec.input
    for layer in spec.layers:
        shape = _next_shape(spec, layer, shape)
        shapes.append(shape)
    return shapes


def _next_shape(spec: NetworkSpec, layer: LayerSpec, shape: tuple[int, ...]) -> tuple[int, ...]:
    src, i, o = spec.source, layer.index, layer.options
    spatial = len(shape) == 3
    if layer.type in ("conv2d", "maxpool2d", "flatten") and not spatial:
        raise SpecError(
            src, f"{layer.type} needs a [channels, height, width] input, got {list(shape)}", i, "type"
        )
    if layer.type == "dense" and spatial:
        raise SpecError(
            src, f"dense needs a vector input, got {list(shape)}: add a flatten layer first", i, "type"
        )
    if layer.type == "conv2d":
        k = o["kernel"]
        if k > shape[1] or k > shape[2]:
            raise SpecError(src, f"kernel {k} is larger than the {shape[1]}x{shape[2]} input", i, "kernel")
        return (o["filters"], shape[1] - k + 1, shape[2] - k + 1)
    if layer.type == "maxpool2d":
        s = o["size"]
        if shape[1] % s or shape[2] % s:
            raise SpecError(src, f"size {s} does not divide the {shape[1]}x{shape[2]} input", i, "size")
        return (shape[0], shape[1] // s, shape[2] // s)
    if layer.type == "flatten":
        return (prod(shape),)
    if layer.type == "dense":
        return (o["units"],)
    return shape


def forward_terms(spec: NetworkSpec) -> int:
    """Multiply-adds of one sample's forward pass: the size of the element-wise expressions."""
    terms, shape = 0, spec.input
    for layer, out in zip(spec.layers, layer_shapes(spec), strict=True):
        if layer.type == "conv2d":
            terms += prod(out) * shape[0] * layer.options["kernel"] ** 2
        elif layer.type == "dense":
            terms += prod(out) * shape[0]
        else:
            terms += prod(out)
        shape = out
    return terms


def _check_structure(spec: NetworkSpec) -> None:
    src = spec.source
    shapes = layer_shapes(spec)
    last = spec.layers[-1]
    if len(shapes[-1]) != 1:
        raise SpecError(
            src,
            f"the network must end in a vector, got {list(shapes[-1])}: add flatten and dense",
            last.index,
            "type",
        )
    if spec.loss == "bce" and last.type != "sigmoid":
        raise SpecError(
            src, "bce needs a sigmoid output layer (the loss is computed from its logit)", field="loss"
        )
    if sum(layer.type == "flatten" for layer in spec.layers) > 1:
        second = [layer for layer in spec.layers if layer.type == "flatten"][1]
        raise SpecError(src, "only one flatten layer is allowed", second.index, "type")
    entries = prod(spec.input)
    if entries > MAX_TERMS:
        raise SpecError(
            src,
            f"too large for element-wise proof: {entries:,} input entries "
            f"(limit {MAX_TERMS:,}); {SUGGESTION}",
            field="input",
        )
    terms = forward_terms(spec)
    if terms > MAX_TERMS:
        raise SpecError(
            src,
            f"too large for element-wise proof: {terms:,} multiply-adds per sample "
            f"(limit {MAX_TERMS:,}); {SUGGESTION}",
            field="input",
        )
    products, layer = chain_products(spec)
    if products > MAX_CHAIN:
        raise SpecError(
            src,
            f"too large for element-wise proof: {products:,} chain-rule products in the derivative of "
            f"its parameters (limit {MAX_CHAIN:,}): use fewer or narrower layers, or fewer sigmoid "
            f"layers; {SUGGESTION}",
            layer.index,
            "units" if layer.type == "dense" else "filters",
        )


def chain_products(spec: NetworkSpec) -> tuple[int, LayerSpec | None]:
    """Products in the chain rule of the largest end-to-end derivative, and the layer it belongs to.

    For one sample, the number of paths from a parameter entry to ``L`` in the element-wise graph,
    a sigmoid on the way counting twice (its derivative ``A (1 - A)`` repeats its input); the
    largest over every parameter entry. Call only on a network within ``MAX_TERMS``.
    """
    shapes = [spec.input, *layer_shapes(spec)]
    paths = np.ones(shapes[-1], dtype=object)  # per entry, paths to L; Python integers never overflow
    worst, where = 0, None
    for layer, before in zip(reversed(spec.layers), reversed(shapes[:-1]), strict=True):
        if layer.type == "sigmoid":
            paths = paths * 2
        elif layer.type == "flatten":
            paths = paths.reshape(before)
        elif layer.type == "maxpool2d":
            size = layer.options["size"]
            paths = paths.repeat(size, axis=1).repeat(size, axis=2)
        elif layer.type == "dense":  # W[i, j] and B[j] reach L through Z[j]; F[i] through every Z[j]
            worst, where = max((worst, where), (max(paths), layer), key=lambda pair: pair[0])
            paths = np.full(before, sum(paths), dtype=object)
        elif layer.type == "conv2d":  # W[f, c, m, n] and B[f] reach L through every Z[f, i, j]
            per_filter = max(sum(paths[f].ravel()) for f in range(paths.shape[0]))
            worst, where = max((worst, where), (per_filter, layer), key=lambda pair: pair[0])
            k = layer.options["kernel"]
            padded = np.zeros((paths.shape[0], before[1] + k - 1, before[2] + k - 1), dtype=object)
            padded[:, k - 1 : k - 1 + paths.shape[1], k - 1 : k - 1 + paths.shape[2]] = paths
            through = sum(padded[:, m : m + before[1], n : n + before[2]] for m in range(k) for n in range(k))
            paths = np.broadcast_to(through.sum(axis=0), before).copy()
    return worst, where


def canonical_names(spec: NetworkSpec) -> set[str]:
    """Every tensor and parameter name the network defines (for notation keys)."""
    from gradproof.derive.network import build  # local: network imports this module

    return set(build(spec).tensor_names())


def _check_notation(spec: NetworkSpec) -> None:
    """Every value a symbol of the safe subset, none a symbol of the document or of another tensor."""
    try:
        notation.check(spec.notation, canonical_names(spec))
    except notation.NotationError as error:
        raise SpecError(spec.source, str(error), field=error.field) from None
