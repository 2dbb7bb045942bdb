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
from gradproof.derive.layers import LAYERS, LOSSES, LayerError
from gradproof.derive.layers.base import positive_int_problem

IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,31}")
REDUCTIONS = ("mean", "sum")
TOP_LEVEL = {"name", "input", "loss", "reduction", "layers", "notation", "batch", "proof", "about"}
ABOUT_FIELDS = {"title": str, "text": str, "references": list}
# "element-wise": every entry at the spec's sizes; "reduced": the same architecture at reduced sizes,
# element-wise, plus shapes, composition and count at the spec's sizes (``derive.miniature``).
PROOFS = ("element-wise", "reduced")
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
SUGGESTION = (
    "prove a smaller network of the same architecture (the rules do not depend on the size), "
    'or set proof = "reduced"'
)


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
class About:
    """What a network's document says of it beyond its layers: a title, an introduction, references.

    ``text`` is paragraphs separated by blank lines, plain prose with ``$...$`` math; a paragraph
    that opens with ``**Heading.**`` is headed so. The emitters typeset it; nothing else reads it.
    """

    title: str = ""
    text: str = ""
    references: tuple[str, ...] = ()


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
    proof: str = "element-wise"
    about: About = field(default_factory=About)


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
    problem = positive_int_problem(value, maximum)
    if problem:
        raise SpecError(source, problem, layer, name)
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
    loss = _choice(source, data["loss"], "loss", tuple(LOSSES))
    reduction = _choice(source, data.get("reduction", "mean"), "reduction", REDUCTIONS)
    batch = _positive_int(source, data.get("batch", 1), None, "batch", maximum=100_000)
    proof = _choice(source, data.get("proof", "element-wise"), "proof", PROOFS)

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
    about = _about(source, data.get("about", {}))
    spec = NetworkSpec(
        name, input_shape, loss, reduction, layers, dict(notation), batch, source, text, proof, about
    )
    _check_structure(spec)
    _check_notation(spec)
    return spec


# The math an [about] text may hold: letters, digits, operators and these commands, nothing that
# could make TeX read a file or run a program.
ABOUT_MATH = re.compile(r"[A-Za-z0-9 +\-*/=()\[\]^_{},.;:<>|'!]*")
ABOUT_COMMANDS = frozenset(
    "times cdot ldots cdots dots frac tfrac sum prod tanh sigma ell lfloor rfloor approx le ge ne to "
    "mathrm operatorname text odot partial alpha beta gamma delta epsilon eta theta lambda mu pi rho "
    "tau phi psi omega Delta Sigma quad log exp max min".split()
)


def about_math_problem(text: str) -> str | None:
    """Why ``text`` may not be typeset (an unclosed or unsafe ``$...$`` formula), or ``None``."""
    pieces = text.split("$")
    if len(pieces) % 2 == 0:
        return f"has an unclosed $...$ formula: {text[:60]!r}"
    for formula in pieces[1::2]:
        unknown = sorted(set(re.findall(r"\\([A-Za-z]+)", formula)) - ABOUT_COMMANDS)
        if unknown:
            allowed = ", ".join(sorted(ABOUT_COMMANDS))
            return f"the formula ${formula}$ uses \\{unknown[0]}, which is not one of: {allowed}"
        if not ABOUT_MATH.fullmatch(re.sub(r"\\[A-Za-z]+|\\[,;!]", "", formula)):
            return f"the formula ${formula}$ has a character outside letters, digits, operators and brackets"
    return None


def _about(source: str, raw) -> About:
    """The optional ``[about]`` table: ``title`` and ``text`` strings, ``references`` a list of strings."""
    if not isinstance(raw, dict):
        raise SpecError(source, "must be a table (title, text, references)", field="about")
    for key, value in raw.items():
        expected = ABOUT_FIELDS.get(key)
        if expected is None:
            raise SpecError(source, f"unknown field (known: {', '.join(ABOUT_FIELDS)})", field=f"about.{key}")
        if not isinstance(value, expected) or (
            expected is list and not all(isinstance(v, str) for v in value)
        ):
            kind = "a list of strings" if expected is list else "a string"
            raise SpecError(source, f"must be {kind}, got {value!r}", field=f"about.{key}")
        for piece in value if expected is list else [value]:
            problem = about_math_problem(piece)
            if problem:
                raise SpecError(source, problem, field=f"about.{key}")
    return About(raw.get("title", ""), raw.get("text", "").strip(), tuple(raw.get("references", ())))


def _parse_layer(source: str, index: int, raw: dict) -> LayerSpec:
    kind = raw.get("type")
    if kind is None:
        raise SpecError(source, "missing required field", index, "type")
    if kind not in LAYERS:
        raise SpecError(source, f"unknown layer type {kind!r} (known: {', '.join(LAYERS)})", index, "type")
    try:
        options = LAYERS[kind].options(raw)
    except LayerError as error:
        raise SpecError(source, str(error), index, error.field) from None
    return LayerSpec(kind, index, options)


def layer_shapes(spec: NetworkSpec) -> list[tuple[int, ...]]:
    """Per-sample output shape of every layer (validated by ``parse``)."""
    shapes, shape = [], spec.input
    for layer in spec.layers:
        layer_type = LAYERS[layer.type]
        try:
            layer_type.check_input(shape)
            shape = layer_type.output_shape(shape, layer.options)
        except LayerError as error:
            raise SpecError(spec.source, str(error), layer.index, error.field) from None
        shapes.append(shape)
    return shapes


def forward_terms(spec: NetworkSpec) -> int:
    """Multiply-adds of one sample's forward pass: the size of the element-wise expressions."""
    terms, shape = 0, spec.input
    for layer, out in zip(spec.layers, layer_shapes(spec), strict=True):
        terms += LAYERS[layer.type].work(shape, out, layer.options)
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
    needed = LOSSES[spec.loss].reads_logit_of
    if needed is not None and last.type != needed:
        raise SpecError(
            src,
            f"{spec.loss} needs a {needed} output layer (the loss is computed from its logit)",
            field="loss",
        )
    for name, layer_type in LAYERS.items():
        of_type = [layer for layer in spec.layers if layer.type == name]
        if layer_type.at_most is not None and len(of_type) > layer_type.at_most:
            allowed = "only one" if layer_type.at_most == 1 else f"at most {layer_type.at_most}"
            extra = of_type[layer_type.at_most]
            raise SpecError(src, f"{allowed} {name} layer is allowed", extra.index, "type")
    if spec.proof == "element-wise":
        check_limits(spec)


def check_limits(spec: NetworkSpec) -> None:
    """Refuse a network the element-wise prover cannot finish in about two minutes."""
    src = spec.source
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
            LAYERS[layer.type].width_field or "type",
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
        paths, reach = LAYERS[layer.type].chain_paths(paths, before, layer.options)
        if reach > worst:  # only a layer with parameters reports a reach
            worst, where = reach, layer
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
