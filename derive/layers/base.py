"""What a layer type (and a loss type) declares: the one entry everything else reads.

A layer type is a class with one instance in the table (``derive.layers``). It declares its spec
fields and their validation, its output shape, its tensor names, its parameters, its forward map
and backward rules (``declare``), its kind, the lemmas and conventions it brings (obligations the
prover runs) and its words for the emitters. The spec reader, the network builder, the prover and
the emitters ask these methods and attributes; none of them names a layer type.

Words for the emitters are plain strings: LaTeX for the documents (``latex_*``, ``prose``),
plain text for the generated module's docstring (``docstring``). Where they depend on the
document's notation they are functions of symbols the emitter passes in, or jinja2 sources the
LaTeX emitter renders with its own delimiters (``\\VAR{...}``) and context (``names``, ``block``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from math import prod
from typing import Any, ClassVar

import numpy as np
import sympy as sp

from gradproof.derive import texpr as tx
from gradproof.derive.records import ProofRecord
from gradproof.derive.texpr import Tensor

BILINEAR = "bilinear"  # affine in the input for fixed parameters and vice versa
ELEMENTWISE = "element-wise"  # out[i] = f(in[i]); one scalar derivative
SELECTION = "piecewise linear"  # routes values; proven where no window ties
LINEAR = "linear"  # a fixed re-indexing
LOSS = "loss"  # scalar cost of the output against the target
FUSED = "fused activation+loss"  # the loss computed from the logit

Shape = tuple[int, ...]
Options = Mapping[str, int | bool]
MAX_FIELD = 10_000


class LayerError(ValueError):
    """A layer a spec describes but its type refuses; the spec reader adds the file and the layer."""

    def __init__(self, message: str, field: str = "type"):
        super().__init__(message)
        self.field = field


def positive_int_problem(value, maximum: int = MAX_FIELD) -> str | None:
    """Why ``value`` is not a positive integer up to ``maximum``, or ``None`` when it is one."""
    if isinstance(value, bool) or not isinstance(value, int):
        return f"must be a positive integer, got {value!r}"
    if not 1 <= value <= maximum:
        return f"must be between 1 and {maximum}, got {value}"
    return None


MISSING = object()


@dataclass(frozen=True)
class Field:
    """A spec field of a layer: a required positive integer, or a boolean with a default."""

    name: str
    meaning: str
    default: bool | None = None

    def read(self, raw: Mapping[str, Any]) -> int | bool:
        value = raw.get(self.name, MISSING if self.default is None else self.default)
        if value is MISSING:
            raise LayerError(f"missing required field ({self.meaning})", self.name)
        if self.default is not None:
            if not isinstance(value, bool):
                raise LayerError(f"must be true or false, got {value!r}", self.name)
            return value
        problem = positive_int_problem(value)
        if problem:
            raise LayerError(problem, self.name)
        return value


@dataclass(frozen=True)
class Parameter:
    """A trainable tensor of a layer: its role in the rules, its name stem, shape and initialisation."""

    role: str  # "weight" or "bias"
    stem: str  # "W" names W1, W2, ...
    shape: Shape
    meaning: str  # for the variables table of a derivation
    fan_in: int | None  # weights uniform in +-1/sqrt(fan_in); None: zeros


@dataclass(frozen=True)
class Declaration:
    """A layer's forward map and its rules: target tensor name -> gradient expression."""

    forward: tx.Expr
    rules: dict[str, tx.Expr]


@dataclass(frozen=True)
class AllSizes:
    """A type's theorem for all sizes as the type states it: its declaration over symbolic sizes.

    ``declaration`` is the type's own ``declare`` called with ``tensors`` whose dimensions are size
    symbols (``size``); ``derive/parametric/catalogue.py`` proves every rule of it. Every size is
    an integer >= 1, except those in ``at_least_zero`` (>= 0: padding, the rows a floor-mode window
    leaves out); ``conditions`` are further hypotheses ``e >= 0``; ``region`` says in words where a
    derivative is taken; ``definitions`` give a forward value by its expression (``A = tanh(Z)``);
    ``row_sums`` name targets each of whose rows sums to 1 (a hypothesis); ``window`` splits the
    target's last two axes by a pooling window; ``derived`` gives the sizes the others determine
    through a floor (a strided output's side), for the reading and the counterexample search.
    ``fix(options, shape)`` gives, for a network's step (its options and per-sample input shape),
    the values of the sizes its rules fix (stride, padding, kernel, a floor-mode remainder).
    """

    key: str  # e.g. "conv2d/strided", "avgpool2d/2"
    declaration: Declaration
    tensors: tuple[Tensor, ...]
    roles: Mapping[str, str]  # role (input, output, upstream, weight, bias, target, ...) -> tensor name
    upstream: str | None = None
    at_least_zero: tuple = ()
    conditions: tuple = ()
    region: str = ""
    definitions: Mapping[str, tx.Expr] = field(default_factory=dict)
    row_sums: tuple[str, ...] = ()
    window: int = 0
    derived: Mapping = field(default_factory=dict)
    fix: Callable[[Options, Shape], dict] | None = None


def size(name: str, zero: bool = False) -> sp.Symbol:
    """A size of a theorem for all sizes: an integer symbol, >= 1 (``zero``: >= 0)."""
    if zero:
        return sp.Symbol(name, integer=True, nonnegative=True)
    return sp.Symbol(name, integer=True, positive=True)


def elementwise_all_sizes(layer: LayerType, key: str, defined, region: str = "") -> tuple[AllSizes, ...]:
    """An element-wise type's theorem: ``Z1 -> A1`` for (N, D) and (N, C, H, W) inputs.

    ``defined(z)`` is the forward value ``A1`` as an expression of ``Z1`` (None: leave it a tensor).
    """
    cases = []
    for dims in ((tx.BATCH, size("D")), (tx.BATCH, size("C"), size("H"), size("W"))):
        z, a, g = Tensor("Z1", dims), Tensor("A1", dims), Tensor("dA1", dims)
        declaration = layer.declare(Context(z, a, g, {}, {}))
        definitions = {a.name: defined(z)} if defined is not None else {}
        roles = {"input": z.name, "output": a.name, "upstream": g.name}
        cases.append(
            AllSizes(key, declaration, (z, a, g), roles, g.name, region=region, definitions=definitions)
        )
    return tuple(cases)


@dataclass(frozen=True)
class Context:
    """What ``declare`` reads: the layer's tensors, its parameters by role, and its spec options."""

    input: Tensor
    output: Tensor
    upstream: Tensor  # the gradient of the output, dL/d(output)
    params: Mapping[str, Tensor]
    options: Options


@dataclass(frozen=True)
class LossContext:
    """What a loss's ``declare`` reads: the tensor it differentiates, the prediction, the target."""

    input: Tensor  # the prediction, or the logit for a fused loss
    prediction: Tensor
    target: Tensor
    reduction: str


@dataclass(frozen=True)
class Obligation:
    """A lemma, identity or convention a layer type brings: how it is proven and how it reads.

    ``prove`` makes the record: for a network-wide obligation (an identity or a lemma) it takes the
    arguments of its ``Use``; for a convention it takes the network and the step it is checked on.
    ``typeset(record, document)`` gives the LaTeX of what the record proves and how; ``document``
    is the LaTeX verification section (``sym``, ``grad``, ``names``, ``step_checked``, ...).
    """

    key: str
    level: str  # identity, lemma or convention
    prove: Callable[..., ProofRecord]
    typeset: Callable[[ProofRecord, Any], tuple[str, str]]


@dataclass(frozen=True)
class Use:
    """A network-wide obligation with its arguments; equal uses are proven once."""

    obligation: Obligation
    args: tuple = ()


class Words:
    """What the emitters say about a layer or loss type (defaults: nothing)."""

    display: ClassVar[str] = ""  # heading of its local proofs: "Convolution"
    docstring: ClassVar[tuple[str, ...]] = ()  # conventions the generated module's docstring states
    latex_conventions: ClassVar[tuple[str, ...]] = ()  # jinja2 sources of \item's of the conventions
    region: ClassVar[str] = ""  # LaTeX: where its identities hold, "where no input of a ReLU is $0$"


class LayerType(Words):
    """Base of every layer type; a subclass declares one type of ``[[layers]]`` table."""

    name: ClassVar[str]
    kind: ClassVar[str]
    summary: ClassVar[str]
    fields: ClassVar[tuple[Field, ...]] = ()
    stem: ClassVar[str] = "A"  # output name: stem + number of the layer (Z1, A1, P1)
    numbered: ClassVar[bool] = True  # False: the stem alone (F)
    # The input it needs: "spatial" ([channels, height, width]), "vector", or None for either.
    input_rank: ClassVar[str | None] = None
    at_most: ClassVar[int | None] = None  # how many such layers a network may have
    width_field: ClassVar[str | None] = None  # the field to shrink when the chain rule grows too large
    conventions: ClassVar[tuple[Obligation, ...]] = ()  # proven on each step of the type
    # LaTeX words
    output_meaning: ClassVar[str] = ""  # variables table: "activation, ReLU"
    prose: ClassVar[Mapping[str, str]] = {}  # role ("weight", "bias", "input") -> jinja2 LaTeX source

    # ------------------------------------------------------------------ spec

    def options(self, raw: Mapping[str, Any]) -> dict[str, int | bool]:
        """The layer's options, validated; unknown fields are refused."""
        known = [f.name for f in self.fields]
        for key in raw:
            if key != "type" and key not in known:
                listed = ", ".join(known) or "none"
                raise LayerError(f"unknown field for {self.name} (known: {listed})", key)
        return {f.name: f.read(raw) for f in self.fields}

    def check_input(self, shape: Shape) -> None:
        if self.input_rank == "spatial" and len(shape) != 3:
            raise LayerError(f"{self.name} needs a [channels, height, width] input, got {list(shape)}")
        if self.input_rank == "vector" and len(shape) != 1:
            raise LayerError(
                f"{self.name} needs a vector input, got {list(shape)}: add a flatten layer first"
            )

    def output_shape(self, shape: Shape, options: Options) -> Shape:
        """Per-sample output shape for a per-sample input ``shape`` (checked by ``check_input``)."""
        return shape

    def work(self, before: Shape, after: Shape, options: Options) -> int:
        """Multiply-adds of one sample's forward map: the size of its element-wise expressions."""
        return prod(after)

    def chain_paths(self, paths: np.ndarray, before: Shape, options: Options) -> tuple[np.ndarray, int]:
        """Chain-rule paths to ``L`` from each input entry, given those from each output entry.

        Also the largest count of paths from one of the layer's parameter entries (0 without
        parameters): the size of the largest end-to-end derivative it adds (``spec.chain_products``).
        """
        return paths, 0

    # --------------------------------------------------------------- network

    def parameters(self, before: Shape, after: Shape, options: Options) -> tuple[Parameter, ...]:
        """Its trainable tensors, per-sample ``before`` and ``after`` shapes given."""
        return ()

    def declare(self, ctx: Context) -> Declaration:  # pragma: no cover - every type overrides
        raise NotImplementedError

    def lemmas(self, options: Options) -> tuple[Use, ...]:
        """Network-wide obligations its rules rely on (each proven once per network)."""
        return ()

    def all_sizes(self, options: Options) -> tuple[AllSizes, ...]:
        """Its theorem for all sizes for the family of ``options``, one case per input rank (none: ())."""
        return ()

    def theorem_cases(self, windows: tuple[int, ...]) -> tuple[Options, ...]:
        """Options of one layer of each of its theorem families (``windows``: pooling sizes)."""
        return ({},)

    # ------------------------------------------------------------ LaTeX words

    def latex_operation(self, options: Options, short: bool = False) -> str:
        """Its operator over an arrow of the architecture (``short``: under a node of the figure)."""
        raise NotImplementedError  # pragma: no cover - every type overrides

    # The layer table of a document: what a layer of the type is, how its output shape follows from
    # its input's, and (once per type) the general rule for its shape and its parameters.
    shape_words: ClassVar[str] = ""  # LaTeX sentence, e.g. how a dense layer's parameters are counted

    def latex_description(self, options: Options) -> str:
        """LaTeX text for the layer table: the layer and its options ("Dense, 120 units")."""
        return self.display + (", entry by entry" if self.kind == ELEMENTWISE else "")

    def latex_shape_rule(self, before: Shape, after: Shape, options: Options) -> str:
        """LaTeX math for the layer table: how ``after`` follows from ``before`` ("" : the shape is kept)."""
        return ""

    def prose_data(self, before: Shape, after: Shape, options: Options) -> dict:
        """What its ``prose`` sources read as ``block.data.layer``: by default, its options."""
        return dict(options)

    def error_note(self, pairs: list[tuple[str, str]]) -> str | None:
        """LaTeX naming its derivative factor in the error form, for (input, output) symbols; or None."""
        return None

    def latex_convention_data(self, inputs: list[str]) -> dict:
        """Context for its conventions' sources: the symbols of the inputs of its layers."""
        return {"inputs": inputs}


class LossType(Words):
    """Base of every loss type: the scalar at the end of the network."""

    name: ClassVar[str]
    kind: ClassVar[str]
    summary: ClassVar[str]
    # What its targets are, for the generated module's checks: "real" (any values), "binary" (in [0,
    # 1]) or "classes" (rows that sum to 1; class indices accepted and converted).
    targets: ClassVar[str] = "real"
    # The layer type whose *input* (the logit) a fused loss differentiates; None: the output itself.
    reads_logit_of: ClassVar[str | None] = None
    latex_operation: ClassVar[str] = ""
    # Jinja2 LaTeX sources around the display of dL/d(prediction): the loss's derivative paragraph.
    prose_before: ClassVar[str] = ""
    prose_after: ClassVar[str] = ""

    def declare(self, ctx: LossContext) -> Declaration:  # pragma: no cover - every type overrides
        raise NotImplementedError

    def lemmas(self, logit: str, prediction: str, target: str, output: Shape = ()) -> tuple[Use, ...]:
        """Network-wide obligations of the loss, stated in the network's names of its tensors.

        ``output`` is the per-sample shape of the network's output (the classes of a softmax).
        """
        return ()

    def all_sizes(self, reduction: str) -> tuple[AllSizes, ...]:
        """Its theorem for all sizes with this batch reduction (none: ())."""
        return ()

    def constrain_target(self, target: np.ndarray) -> np.ndarray:
        """The target entries the proofs read, with the loss's hypothesis made true (default: none)."""
        return target

    def docstring_line(self, logits: str) -> str:
        return ""


def with_bias(
    linear: tx.Expr, rules: dict[str, tx.Expr], b: Tensor | None, bias_rule: tx.Expr
) -> Declaration:
    """Add the optional bias term and its rule to a linear map's declaration."""
    if b is None:
        return Declaration(linear, rules)
    (weight, weight_rule), *rest = rules.items()  # keep the order dW, dB, dX
    return Declaration(tx.AddBias(linear, b), {weight: weight_rule, b.name: bias_rule, **dict(rest)})
