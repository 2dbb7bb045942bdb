"""Mutation check of the generated NumPy modules: do the numeric tests catch a wrong printing?

How mutants are made. A generated module (``generated/<name>.py``) is parsed
with ``ast``; every operator below walks the whole tree and proposes a small
change wherever its pattern occurs (a swapped pair of axes in a transpose or
reshape, a dropped term, another axis in a ``sum``, a flipped slice, ``@``
operands swapped, ``>`` for ``>=``, ``-`` for ``+``, a dropped ``/ N``, an
integer one off, ``0.5`` doubled, ...). Nothing is tied to the current text:
the operators find their targets by the shape of the syntax tree, so the
check follows the generated code as it changes. A change that unparses to the
original source is no mutant; two changes that unparse to the same source
count once.

How a mutant is judged. Each mutant is compiled from its tree into a fresh
module and run through ``CHECKS``: the checks of
``tests/test_generated_numeric.py`` (the independent loop reference, PyTorch
autograd, central finite differences, exact ties and kinks, large logits,
float32, batch vectorisation, ``PARAM_SHAPES``, ``init_params``), written here
for any module. A mutant that raises, gives a wrong shape or dtype, a warning
where none is allowed, or wrong numbers is *caught* by the first check that
fails.

Equivalent mutants. A mutant no check catches is compared with the original
module on a wider battery (more batch sizes and seeds, float32, every kink and
tie, large logits, ``init_params`` for several generators). If any output
differs, the mutant *survived*: the numeric tests have a gap. If every output
agrees (to 1e-13 relative; most agree bit for bit), it is *equivalent*, and
probes say why: the innermost expression around the change whose value never
changes (with a hint when the two swapped operands are always equal), else the
enclosing function whose return values never change, else the change was
never executed. ``python -m tests.mutants_report`` prints the counts.
"""

from __future__ import annotations

import ast
import contextlib
import copy
import faulthandler
import math
import os
import pickle
import select
import signal
import threading
import time
import types
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np

from gradproof.derive.spec import builtin_names
from tests import reference_numeric as ref
from tests.test_generated_numeric import CHUNKINGS, chunked_by_hand, sample, torch_loss

ROOT = Path(__file__).resolve().parent.parent
# Every built-in network; the example that trains on the digits (zero padding); and two test networks
# of tests/wrong_rules.py that put into a module what no committed network has: a strided, padded,
# non-square convolution whose input rule is backpropagated, and average pooling in floor mode;
# and a pooled convolution the NumPy module computes one window at a time, channels, filters, rows
# and columns all of different sizes (small_cnn has one of each and is square).
EXAMPLES = ("digits_lenet",)
TEST_NETWORKS = ("strided", "vocab", "pooled")
NETWORKS = (*builtin_names(), *EXAMPLES, *TEST_NETWORKS)
# Networks whose loop reference takes about a second a sample: their fixtures use fewer samples, a
# smaller large batch (still several blocks of samples_blocks' 2**18 numbers), and more time.
LARGE = ("lenet5",)


def seconds_for(name: str) -> float:
    """The time a mutant of ``name`` may run before it counts as caught."""
    return SECONDS_PER_MUTANT * (4 if name in LARGE else 1)


# The functions mutated in the two LeNets: the ones that print their own layers. Their other functions
# (input checks, initialisation, chunks, correlation helpers, softmax) are the same text as in the
# networks above, whose every function is mutated, and judging them again here would double the run.
FOCUS = {name: ("forward", "loss", "backward") for name in ("lenet5", "digits_lenet")}
SECONDS_PER_MUTANT = 20  # a mutant that runs longer counts as caught (a hanging test fails too)

Path_ = tuple[tuple[str, int | None], ...]  # fields from the module root to a node

# ----------------------------------------------------------------- the tree


def node_at(tree: ast.AST, path: Path_) -> ast.AST:
    node = tree
    for name, index in path:
        node = getattr(node, name)
        if index is not None:
            node = node[index]
    return node


def _replace_at(tree: ast.AST, path: Path_, new: ast.AST) -> None:
    parent, (name, index) = node_at(tree, path[:-1]), path[-1]
    if index is None:
        setattr(parent, name, new)
    else:
        getattr(parent, name)[index] = new


@dataclass(frozen=True)
class Place:
    """Where an operator looks: the node, its path, its parent, the enclosing function."""

    node: ast.AST
    path: Path_
    parent: ast.AST | None
    function: str


def _is_docstring(node: ast.AST, parent: ast.AST | None) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
        and isinstance(parent, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        and parent.body
        and parent.body[0] is node
    )


def places(tree: ast.Module) -> Iterator[Place]:
    """Every node below the module, in source order, skipping docstrings."""

    def visit(node: ast.AST, path: Path_, parent: ast.AST | None, function: str) -> Iterator[Place]:
        if _is_docstring(node, parent):
            return
        yield Place(node, path, parent, function)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            function = node.name
        for name, value in ast.iter_fields(node):
            if isinstance(value, list):
                for index, item in enumerate(value):
                    if isinstance(item, ast.AST):
                        yield from visit(item, (*path, (name, index)), node, function)
            elif isinstance(value, ast.AST):
                yield from visit(value, (*path, (name, None)), node, function)

    for index, statement in enumerate(tree.body):
        yield from visit(statement, (("body", index),), tree, "<module>")


# ----------------------------------------------------------------- operators

# An operator maps a place to proposals: (replacement maker, operands). A maker receives a private
# copy of the node at the place and returns its replacement; the operands are the paths of the two
# items a swap exchanges, or of the one operand a drop leaves out (probes look at them), or ().
Maker = Callable[[ast.AST], ast.AST]
Proposal = tuple[Maker, tuple[Path_, ...]]


def _same(a: ast.AST, b: ast.AST) -> bool:
    return ast.dump(a) == ast.dump(b)


def _swapped(items: list, i: int, j: int) -> list:
    items = list(items)
    items[i], items[j] = items[j], items[i]
    return items


def _is_int(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and type(node.value) is int


def _plus(node: ast.expr, delta: int) -> ast.expr:
    """``node + delta``, folded when ``node`` is an integer literal."""
    if _is_int(node):
        return ast.Constant(node.value + delta)
    op = ast.Add() if delta > 0 else ast.Sub()
    return ast.BinOp(node, op, ast.Constant(abs(delta)))


def _method(node: ast.AST, *names: str) -> bool:
    """A call ``x.name(...)`` or ``np.name(...)`` for one of ``names``."""
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in names


AXES_CALLS = ("transpose", "reshape", "swapaxes", "moveaxis")


def swap_axes(p: Place) -> Iterator[Proposal]:
    """Two neighbouring axes or dimensions exchanged: in transpose/reshape arguments, or a tuple argument."""
    node = p.node
    if _method(node, *AXES_CALLS) and len(node.args) >= 2:
        for i in range(len(node.args) - 1):
            if not _same(node.args[i], node.args[i + 1]):

                def make(n, i=i):
                    n.args = _swapped(n.args, i, i + 1)
                    return n

                yield make, ((*p.path, ("args", i)), (*p.path, ("args", i + 1)))
    is_argument = isinstance(p.parent, (ast.Call, ast.keyword))
    if isinstance(node, ast.Tuple) and isinstance(node.ctx, ast.Load) and is_argument:
        for i in range(len(node.elts) - 1):
            if not _same(node.elts[i], node.elts[i + 1]):

                def make(n, i=i):
                    n.elts = _swapped(n.elts, i, i + 1)
                    return n

                yield make, ((*p.path, ("elts", i)), (*p.path, ("elts", i + 1)))


def swap_index(p: Place) -> Iterator[Proposal]:
    """Neighbouring subscript entries exchanged: ``a[:, :, p::s, q::s]`` -> ``a[:, :, q::s, p::s]``."""
    node = p.node
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Tuple):
        elts = node.slice.elts
        for i in range(len(elts) - 1):
            if not _same(elts[i], elts[i + 1]):

                def make(n, i=i):
                    n.slice.elts = _swapped(n.slice.elts, i, i + 1)
                    return n

                yield make, ()


def drop_transpose(p: Place) -> Iterator[Proposal]:
    """A transpose left out: ``A.T`` -> ``A``, ``A.transpose(...)`` -> ``A``."""
    node = p.node
    if isinstance(node, ast.Attribute) and node.attr == "T" and isinstance(node.ctx, ast.Load):
        yield (lambda n: n.value), ()
    if _method(node, "transpose") and isinstance(node.func.value, ast.expr):
        if not (isinstance(node.func.value, ast.Name) and node.func.value.id == "np"):
            yield (lambda n: n.func.value), ()


def swap_matmul(p: Place) -> Iterator[Proposal]:
    """The operands of ``@`` exchanged."""
    node = p.node
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.MatMult) and not _same(node.left, node.right):

        def make(n):
            n.left, n.right = n.right, n.left
            return n

        yield make, ((*p.path, ("left", None)), (*p.path, ("right", None)))


def swap_arguments(p: Place) -> Iterator[Proposal]:
    """The first two positional arguments of a call exchanged."""
    node = p.node
    if isinstance(node, ast.Call) and len(node.args) >= 2 and not _same(node.args[0], node.args[1]):
        if _method(node, *AXES_CALLS):
            return  # swap_axes covers these

        def make(n):
            n.args = _swapped(n.args, 0, 1)
            return n

        yield make, ((*p.path, ("args", 0)), (*p.path, ("args", 1)))


def drop_term(p: Place) -> Iterator[Proposal]:
    """One term of a sum or difference left out: ``a + b`` -> ``a`` or ``b``; ``a - b`` -> ``a`` or ``-b``."""
    node = p.node
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
        left, right = (*p.path, ("left", None)), (*p.path, ("right", None))
        yield (lambda n: n.left), (right,)
        if isinstance(node.op, ast.Add):
            yield (lambda n: n.right), (left,)
        else:
            yield (lambda n: ast.UnaryOp(ast.USub(), n.right)), (left,)


def drop_factor(p: Place) -> Iterator[Proposal]:
    """One factor of a product left out."""
    node = p.node
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
        yield (lambda n: n.left), ((*p.path, ("right", None)),)
        yield (lambda n: n.right), ((*p.path, ("left", None)),)


def flip_sign(p: Place) -> Iterator[Proposal]:
    """``-`` for ``+`` and ``+`` for ``-``."""
    node = p.node
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):

        def make(n):
            n.op = ast.Sub() if isinstance(n.op, ast.Add) else ast.Add()
            return n

        yield make, ()


def drop_division(p: Place) -> Iterator[Proposal]:
    """A division left out: ``x / N`` -> ``x``."""
    node = p.node
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Div, ast.FloorDiv)):
        yield (lambda n: n.left), ((*p.path, ("right", None)),)


def _axis_keyword(node: ast.Call) -> int | None:
    for i, keyword in enumerate(node.keywords):
        if keyword.arg == "axis":
            return i
    return None


def sum_axis(p: Place) -> Iterator[Proposal]:
    """Another axis in a reduction: ``.sum(axis=0)`` -> ``axis=1``; ``axis=(0, 2, 3)`` loses one axis."""
    node = p.node
    if not _method(node, "sum", "mean", "max", "min"):
        return
    k = _axis_keyword(node)
    if k is None:
        return
    value = node.keywords[k].value
    if _is_int(value):
        for delta in (1, -1):
            if value.value + delta >= 0:

                def make(n, delta=delta):
                    n.keywords[k].value = ast.Constant(n.keywords[k].value.value + delta)
                    return n

                yield make, ()
    if isinstance(value, ast.Tuple) and len(value.elts) > 1:
        for i in range(len(value.elts)):

            def make(n, i=i):
                n.keywords[k].value.elts.pop(i)
                return n

            yield make, ()


def flip_slice(p: Place) -> Iterator[Proposal]:
    """A slice run backwards: ``a[p::s]`` -> ``a[p::-s]``, ``a[1:]`` -> ``a[1::-1]`` (not a bare ``:``)."""
    node = p.node
    if isinstance(node, ast.Slice) and (node.lower or node.upper or node.step):

        def make(n):
            n.step = ast.UnaryOp(ast.USub(), n.step) if n.step else ast.Constant(-1)
            return n

        yield make, ()


def slice_off_by_one(p: Place) -> Iterator[Proposal]:
    """A slice bound or step one off: ``a[p::s]`` -> ``a[p + 1::s]``, ``a[p::s - 1]``, ..."""
    node = p.node
    if isinstance(node, ast.Slice):
        for part in ("lower", "upper", "step"):
            if getattr(node, part) is not None:
                for delta in (1, -1):

                    def make(n, part=part, delta=delta):
                        setattr(n, part, _plus(getattr(n, part), delta))
                        return n

                    yield make, ()


def integer_off_by_one(p: Place) -> Iterator[Proposal]:
    """An integer literal one off: a window size, a dimension, an axis, a range."""
    if _is_int(p.node):
        yield (lambda n: ast.Constant(n.value + 1)), ()
        yield (lambda n: ast.Constant(n.value - 1)), ()


def change_float(p: Place) -> Iterator[Proposal]:
    """A float literal doubled or halved: ``0.5`` -> ``1.0`` or ``0.25``."""
    node = p.node
    if isinstance(node, ast.Constant) and type(node.value) is float:
        yield (lambda n: ast.Constant(n.value * 2)), ()
        yield (lambda n: ast.Constant(n.value / 2)), ()


BOUNDARY = {ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Lt: ast.LtE, ast.LtE: ast.Lt}
NEGATED = {ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.Is: ast.IsNot, ast.IsNot: ast.Is}


def comparison_boundary(p: Place) -> Iterator[Proposal]:
    """``>`` for ``>=`` and back (the ReLU mask ``Z > 0`` -> ``Z >= 0``), ``<`` for ``<=``."""
    node = p.node
    if isinstance(node, ast.Compare):
        for i, op in enumerate(node.ops):
            if type(op) in BOUNDARY:

                def make(n, i=i):
                    n.ops[i] = BOUNDARY[type(n.ops[i])]()
                    return n

                yield make, ()


def negate_comparison(p: Place) -> Iterator[Proposal]:
    """``==`` for ``!=`` and back."""
    node = p.node
    if isinstance(node, ast.Compare):
        for i, op in enumerate(node.ops):
            if type(op) in NEGATED:

                def make(n, i=i):
                    n.ops[i] = NEGATED[type(n.ops[i])]()
                    return n

                yield make, ()


def drop_unary(p: Place) -> Iterator[Proposal]:
    """A unary minus, ``~`` or ``not`` left out."""
    node = p.node
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.Invert, ast.Not)):
        yield (lambda n: n.operand), ()


def drop_keyword(p: Place) -> Iterator[Proposal]:
    """A keyword argument left out: ``dtype=...``, ``axis=...``."""
    node = p.node
    if isinstance(node, ast.Call):
        for i, keyword in enumerate(node.keywords):
            if keyword.arg is not None:

                def make(n, i=i):
                    n.keywords.pop(i)
                    return n

                yield make, ()


def swap_boolean(p: Place) -> Iterator[Proposal]:
    """``and`` for ``or`` and back."""
    if isinstance(p.node, ast.BoolOp):

        def make(n):
            n.op = ast.And() if isinstance(n.op, ast.Or) else ast.Or()
            return n

        yield make, ()


def fix_condition(p: Place) -> Iterator[Proposal]:
    """The condition of an ``if`` replaced by ``True`` or ``False``."""
    if isinstance(p.node, ast.If):
        for value in (True, False):

            def make(n, value=value):
                n.test = ast.Constant(value)
                return n

            yield make, ()


def delete_statement(p: Place) -> Iterator[Proposal]:
    """A statement in a function body deleted (replaced by ``pass``)."""
    statements = (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Expr, ast.For, ast.If)
    if isinstance(p.node, statements) and p.function != "<module>":
        yield (lambda n: ast.Pass()), ()


OPERATORS: dict[str, Callable[[Place], Iterator[Proposal]]] = {
    "swap axes": swap_axes,
    "swap index": swap_index,
    "drop transpose": drop_transpose,
    "swap @ operands": swap_matmul,
    "swap arguments": swap_arguments,
    "drop term": drop_term,
    "drop factor": drop_factor,
    "- <-> +": flip_sign,
    "drop division": drop_division,
    "sum axis": sum_axis,
    "flip slice": flip_slice,
    "slice off by one": slice_off_by_one,
    "integer off by one": integer_off_by_one,
    "change float": change_float,
    "> <-> >=": comparison_boundary,
    "== <-> !=": negate_comparison,
    "drop unary": drop_unary,
    "drop keyword": drop_keyword,
    "and <-> or": swap_boolean,
    "fix condition": fix_condition,
    "delete statement": delete_statement,
}


# ----------------------------------------------------------------- mutants


@dataclass(frozen=True)
class Mutant:
    network: str
    number: int
    operator: str
    function: str
    line: int
    before: str
    after: str
    path: Path_
    operands: tuple[Path_, ...]  # two swapped items, one dropped operand, or none
    tree: ast.Module = field(repr=False, compare=False)

    @property
    def id(self) -> str:
        return f"{self.network}#{self.number}"

    def describe(self) -> str:
        return f"{self.id} [{self.operator}] {self.function}:{self.line}: {self.before}  ->  {self.after}"


def source_tree(name: str) -> ast.Module:
    return ast.parse(module_source(name))


@cache
def module_source(name: str) -> str:
    """The committed module ``generated/<name>.py``, or a test network's module rendered here.

    A test network is rendered without its proof records (their summaries are comments only, and
    its proofs are tests/test_vocabulary.py's job): the mutants are of the printed code.
    """
    path = ROOT / "generated" / f"{name}.py"
    if path.exists():
        return path.read_text(encoding="utf-8")
    from gradproof.codegen.numpy import emitter
    from gradproof.derive.network import build
    from gradproof.derive.spec import parse
    from tests.wrong_rules import TEST_SPECS

    network = build(parse(TEST_SPECS[name], source=f"<test network {name}>"))
    return emitter.render(network, [])[f"generated/{name}.py"]


def original_module(name: str) -> types.ModuleType:
    """The unmutated module ``name``, compiled from its source like every mutant."""
    return load_module(source_tree(name), f"{name}-unmutated")


def _snippet(node: ast.AST) -> str:
    text = "pass" if isinstance(node, ast.Pass) else ast.unparse(node)
    text = " ".join(text.split())
    return text if len(text) <= 90 else text[:87] + "..."


def _copy_along(tree: ast.Module, path: Path_) -> tuple[ast.Module, ast.AST]:
    """A copy of ``tree`` sharing every node off ``path``; the node at ``path`` is a deep copy."""
    root = node = copy.copy(tree)
    for k, (name, index) in enumerate(path):
        child = getattr(node, name)
        last = k == len(path) - 1
        if index is None:
            child = copy.deepcopy(child) if last else copy.copy(child)
            setattr(node, name, child)
        else:
            items = list(child)
            items[index] = copy.deepcopy(items[index]) if last else copy.copy(items[index])
            setattr(node, name, items)
            child = items[index]
        node = child
    return root, node


def mutants(name: str, tree: ast.Module | None = None) -> list[Mutant]:
    """Every distinct mutant the operators find in the generated module ``name`` (or in ``tree``)."""
    tree = tree or source_tree(name)
    seen = {(i, ast.unparse(statement)) for i, statement in enumerate(tree.body)}
    found = []
    for place in list(places(tree)):
        for operator, propose in OPERATORS.items():
            for make, operands in propose(place):
                mutated, target = _copy_along(tree, place.path)
                replacement = make(target)
                _replace_at(mutated, place.path, replacement)
                ast.fix_missing_locations(mutated)
                top = place.path[0][1]  # only this top-level statement changed
                key = (top, ast.unparse(mutated.body[top]))
                if key in seen:
                    continue  # no change, or a change another proposal already made
                seen.add(key)
                found.append(
                    Mutant(
                        name,
                        len(found) + 1,
                        operator,
                        place.function,
                        getattr(place.node, "lineno", 0),
                        _snippet(place.node),
                        _snippet(replacement),
                        place.path,
                        operands,
                        mutated,
                    )
                )
    return found


def load_module(tree: ast.Module, label: str, extra: dict | None = None) -> types.ModuleType:
    """Compile a (mutated) tree into a fresh module object."""
    module = types.ModuleType(f"gradproof_mutant_{label.replace('#', '_')}")
    module.__dict__.update(extra or {})
    exec(compile(tree, f"<{label}>", "exec"), module.__dict__)  # noqa: S102 - the code under test
    return module


# ----------------------------------------------------------------- the judge


@dataclass
class Fixture:
    """Inputs and expected values of one network, computed once (the reference is slow)."""

    name: str
    spec: dict
    reference: tuple  # params, X, Y, loss, grads from the loop reference
    torch: tuple  # params, X, Y, loss, grads from torch autograd
    exact: list  # (label, params, X, Y, loss, grads): kinks and ties, expected from torch
    finite: tuple  # params, X, Y
    low: tuple  # params, X, Y for float32
    batch: tuple  # params, X for batch vectorisation
    param_shapes: dict
    wide: tuple  # params, X, Y, loss, grads: a larger batch against the loop reference
    sweep: list  # (label, params, X, Y, loss, grads): biases shifted, against the loop reference
    logits: list  # (label, params, X, Y, loss from torch): a saturated output
    large: tuple  # params, X, Y: a batch large enough for helpers that work a block at a time
    chunked: tuple  # params, X, Y, loss, grads from torch: a batch loss_and_grads splits (CHUNK made small)
    layer_outputs: list  # the loop reference's output of every layer for the reference sample, stacked


def _layer_params(spec: dict) -> list[tuple[str, str | None]]:
    """(weight, bias or None) of each parametrised layer, in order."""
    result, k = [], 0
    for layer in spec["layers"]:
        if layer["type"] in ("conv2d", "dense"):
            k += 1
            result.append((f"W{k}", f"B{k}" if layer.get("bias", True) else None))
    return result


def exact_cases(name: str) -> list[tuple[str, dict, np.ndarray, np.ndarray]]:
    """Parameters that put a layer's outputs exactly on a kink (all 0) or on a tie (all 1)."""
    spec, params, X, Y = sample(name, seed=3)
    cases = []
    for weight, bias in _layer_params(spec):
        for fill in (0.0, 1.0):
            if fill and bias is None:
                continue
            changed = {k: v.copy() for k, v in params.items()}
            changed[weight][:] = 0.0
            if bias:
                changed[bias][:] = fill
            cases.append((f"{weight} = 0, {bias or 'no bias'} = {fill:g}", changed, X, Y))
    return cases


BIAS_SHIFTS = (-2.0, -0.5, 0.5, 2.0)
ROUNDING = 1e-6  # inputs this close to a kink or a tie could be decided differently by rounding


def _clear_of_rounding(trace) -> bool:
    """No ReLU input within ROUNDING of 0, no pooling window whose positive maximum is nearly tied.

    Unlike the tests' sampler, windows tied at 0 (after a ReLU) are allowed: both sides route their
    gradient to the first maximum, and the ReLU mask zeroes it there anyway.
    """
    for layer, x, _, _ in trace:
        if layer["type"] == "relu" and np.min(np.abs(x)) <= ROUNDING:
            return False
        if layer["type"] == "maxpool2d":
            size = layer["size"]
            c, h, w = x.shape
            windows = x.reshape(c, h // size, size, w // size, size).transpose(0, 1, 3, 2, 4)
            top = np.sort(windows.reshape(-1, size * size), axis=1)[:, -2:]
            if np.any((top[:, 1] > 0) & (top[:, 1] - top[:, 0] <= ROUNDING)):
                return False
    return True


def _targets(spec: dict, rng, batch: int, out_shape: tuple) -> np.ndarray:
    """Targets the loss accepts: 0/1 labels for BCE, one-hot rows for cross-entropy, else uniform."""
    if spec["loss"] == "bce":
        return rng.integers(0, 2, size=(batch, *out_shape)).astype(float)
    if spec["loss"] == "cross_entropy":
        return np.eye(out_shape[0])[rng.integers(0, out_shape[0], size=batch)]
    return rng.uniform(0, 1, size=(batch, *out_shape))


def draw(name: str, params: dict, seed: int, batch: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs clear of rounding-sensitive kinks and ties, and targets, for ``params``."""
    spec, rng = sample(name)[0], np.random.default_rng(seed)
    _, out_shape = ref.init(spec["layers"], spec["input"], np.random.default_rng(0))
    for _ in range(200):
        X = rng.normal(size=(batch, *spec["input"]))
        if all(_clear_of_rounding(t) for t in ref.first_layer_outputs(spec, params, X)):
            break
    else:  # pragma: no cover - the sampler would need a different seed
        raise AssertionError(f"no {name} sample clear of kinks and ties")
    return X, _targets(spec, rng, batch, out_shape)


LARGE_BATCH = 1024  # generated helpers may work in blocks of about 2**16 numbers
CHUNK = 8


def draw_unchecked(name: str, seed: int, batch: int) -> tuple[np.ndarray, np.ndarray]:
    """Normal inputs and targets, not screened for kinks: for comparing the module with itself."""
    spec, rng = sample(name)[0], np.random.default_rng(seed)
    _, out_shape = ref.init(spec["layers"], spec["input"], np.random.default_rng(0))
    X = rng.normal(size=(batch, *spec["input"]))
    return X, _targets(spec, rng, batch, out_shape)


def bias_sweep(name: str) -> list[tuple[str, dict, np.ndarray, np.ndarray]]:
    """Each bias shifted, inputs redrawn: whole pooling windows below zero, logits on either side of
    0 and of 1 (the samples of the numeric tests need not reach these)."""
    spec, params, _, _ = sample(name, seed=10)
    cases = []
    for _, bias in _layer_params(spec):
        if bias is None:
            continue
        for k, shift in enumerate(BIAS_SHIFTS):
            shifted = _copy(params)
            shifted[bias] += shift
            batch = 1 if name in LARGE else 3
            cases.append((f"{bias} {shift:+g}", shifted, *draw(name, shifted, seed=20 + k, batch=batch)))
    return cases


def _batch_unlike(spec: dict) -> int:
    """A batch size equal to no output dimension, so that a module dividing by ``Y.shape[1]`` where it
    means the batch size ``Y.shape[0]`` is caught (3 samples of 3 classes would hide it)."""
    _, out_shape = ref.init(spec["layers"], spec["input"], np.random.default_rng(0))
    return next(n for n in (3, 5, 7) if n not in out_shape)


def _batch(name: str, usual: int) -> int:
    """Fewer samples for the networks whose loop reference is slow."""
    return 2 if name.startswith("sigmoid_cnn") or name in LARGE else usual


@cache
def fixture(name: str) -> Fixture:
    spec, params, X, Y = sample(name, batch=_batch(name, 4))
    reference = (params, X, Y, *ref.loss_and_grads(spec, params, X, Y))
    _, params_t, X_t, Y_t = sample(name, seed=2, batch=_batch_unlike(spec))
    torch_case = (params_t, X_t, Y_t, *torch_loss(spec, params_t, X_t, Y_t))
    exact = [(label, p, x, y, *torch_loss(spec, p, x, y)) for label, p, x, y in exact_cases(name)]
    _, params_f, X_f, Y_f = sample(name, seed=1)
    _, params_l, X_l, Y_l = sample(name, seed=6)
    _, params_b, X_b, _ = sample(name, seed=8, batch=4)
    params_w = sample(name, seed=9)[1]
    X_w, Y_w = draw(
        name, params_w, seed=9, batch=4 if name.startswith("sigmoid_cnn") or name in LARGE else 16
    )
    wide = (params_w, X_w, Y_w, *ref.loss_and_grads(spec, params_w, X_w, Y_w))
    sweep = [(label, p, x, y, *ref.loss_and_grads(spec, p, x, y)) for label, p, x, y in bias_sweep(name)]
    logits = [(label, p, x, y, torch_loss(spec, p, x, y)[0]) for label, p, x, y in large_logit_cases(name)]
    _, params_g, _, _ = sample(name, seed=14)
    X_g, Y_g = draw_unchecked(name, seed=14, batch=LARGE_BATCH // 4 if name in LARGE else LARGE_BATCH)
    _, params_c, X_c, Y_c = sample(name, seed=12, batch=11)
    chunked = (params_c, X_c, Y_c, *torch_loss(spec, params_c, X_c, Y_c))
    traces = ref.first_layer_outputs(spec, params, X)
    layer_outputs = [np.stack([trace[k][2] for trace in traces]) for k in range(len(spec["layers"]))]
    return Fixture(
        name,
        spec,
        reference,
        torch_case,
        exact,
        (params_f, X_f, Y_f),
        (params_l, X_l, Y_l),
        (params_b, X_b),
        {k: v.shape for k, v in params.items()},
        wide,
        sweep,
        logits,
        (params_g, X_g, Y_g),
        chunked,
        layer_outputs,
    )


def _copy(params: dict) -> dict:
    return {k: v.copy() for k, v in params.items()}


def _assert_grads(grads, expected, rtol, atol, what):
    assert isinstance(grads, dict) and grads.keys() == expected.keys(), (what, "keys")
    for key in expected:
        value = np.asarray(grads[key])
        assert value.shape == expected[key].shape, (what, key, value.shape)
        assert value.dtype == expected[key].dtype, (what, key, value.dtype)
        np.testing.assert_allclose(value, expected[key], rtol=rtol, atol=atol, err_msg=f"{what} {key}")


def check_param_shapes(module, fx: Fixture) -> None:
    assert module.PARAM_SHAPES == fx.param_shapes


def check_loop_reference(module, fx: Fixture) -> None:
    params, X, Y, loss, grads = fx.reference
    value, computed = module.loss_and_grads(_copy(params), X.copy(), Y.copy())
    assert np.isscalar(value) and math.isclose(value, loss, rel_tol=1e-10), (value, loss)
    _assert_grads(computed, grads, 1e-10, 1e-13, "reference")


def check_torch_autograd(module, fx: Fixture) -> None:
    """loss_and_grads, and forward, loss and backward called one after the other, equal torch's."""
    params, X, Y, loss, grads = fx.torch
    value, computed = module.loss_and_grads(_copy(params), X.copy(), Y.copy())
    assert math.isclose(value, loss, rel_tol=1e-10), (value, loss)
    _assert_grads(computed, grads, 1e-10, 1e-13, "torch")
    _, cache = module.forward(_copy(params), X.copy())
    value = module.loss(cache, Y.copy())
    assert math.isclose(value, loss, rel_tol=1e-10), ("loss", value, loss)
    _assert_grads(module.backward(_copy(params), cache, Y.copy()), grads, 1e-10, 1e-13, "torch, backward")


def check_kinks_and_ties(module, fx: Fixture) -> None:
    """ReLU'(0) = 0 and ties to the first maximum, exactly, like torch (a layer zeroed or made constant)."""
    for label, params, X, Y, loss, grads in fx.exact:
        value, computed = module.loss_and_grads(_copy(params), X.copy(), Y.copy())
        assert math.isclose(value, loss, rel_tol=1e-10, abs_tol=1e-15), (label, value, loss)
        _assert_grads(computed, grads, 1e-10, 1e-13, label)


def large_logit_cases(name: str) -> list[tuple[str, dict, np.ndarray, np.ndarray]]:
    """A saturated output. Sigmoid: the last bias at +-1e3, targets all 0 or all 1. Softmax: the
    first logit 2e3 above or below the others (the bias at +-1e3), one-hot targets on the first class
    (a loss near 0 or near 2e3) or on the last."""
    spec, params, X, _ = sample(name, seed=1)
    _, bias = _layer_params(spec)[-1]
    cases = []
    if bias is None:
        return cases
    for logit in (1e3, -1e3):
        changed = _copy(params)
        if spec["loss"] == "cross_entropy":
            changed[bias][:] = -logit
            changed[bias][0] = logit
            classes = len(changed[bias])
            for target in (0, classes - 1):
                Y = np.eye(classes)[np.full(X.shape[0], target)]
                label = f"{bias} = {logit:g} on class 0, {-logit:g} elsewhere, Y = class {target}"
                cases.append((label, changed, X, Y))
        else:
            changed[bias][:] = logit
            for target in (0.0, 1.0):
                Y = np.full((X.shape[0], *changed[bias].shape), target)
                cases.append((f"{bias} = {logit:g}, Y = {target:g}", changed, X, Y))
    if spec["loss"] == "cross_entropy":  # samples whose logits are far apart: each row needs its own max
        weight, _ = _layer_params(spec)[-1]
        changed = _copy(params)
        changed[weight] *= 1e4 / np.abs(changed[weight]).max()
        classes = changed[weight].shape[-1]
        Y = np.eye(classes)[np.arange(X.shape[0]) % classes]
        cases.append(
            (f"{weight} scaled to entries up to 1e4 (logits of each sample far apart)", changed, X, Y)
        )
    return cases


def check_large_logits(module, fx: Fixture) -> None:
    """The last bias at +-1e3: finite, no warning (BCE is taken from the logit), equal to torch."""
    for label, params, X, Y, expected in fx.logits:
        with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
            warnings.simplefilter("error")
            value, grads = module.loss_and_grads(_copy(params), X.copy(), Y.copy())
        assert np.isfinite(value) and all(np.all(np.isfinite(g)) for g in grads.values())
        assert math.isclose(value, expected, rel_tol=1e-12), (label, value, expected)


def check_float32(module, fx: Fixture) -> None:
    params, X, Y = fx.low
    loss64, grads64 = module.loss_and_grads(_copy(params), X.copy(), Y.copy())
    params32 = {k: v.astype(np.float32) for k, v in params.items()}
    loss32, grads32 = module.loss_and_grads(params32, X.astype(np.float32), Y.astype(np.float32))
    assert math.isclose(loss32, loss64, rel_tol=1e-4)
    for key in grads64:
        assert grads32[key].dtype == np.float32, key
        np.testing.assert_allclose(grads32[key], grads64[key], rtol=1e-3, atol=1e-5, err_msg=key)


def check_batch_vectorised(module, fx: Fixture) -> None:
    params, X = fx.batch
    batched, _ = module.forward(_copy(params), X.copy())
    single = np.concatenate([module.forward(_copy(params), X[i : i + 1].copy())[0] for i in range(len(X))])
    assert batched.shape == single.shape
    np.testing.assert_allclose(batched, single, rtol=1e-12)


def check_init_params(module, fx: Fixture) -> None:
    """Shapes and dtype asked for, deterministic for a given generator."""
    for dtype in (np.float32, np.float64):
        params = module.init_params(np.random.default_rng(0), dtype)
        assert {k: v.shape for k, v in params.items()} == fx.param_shapes
        assert all(v.dtype == dtype for v in params.values())
        again = module.init_params(np.random.default_rng(0), dtype)
        assert all(np.array_equal(params[k], again[k]) for k in params)


def check_large_batch(module, fx: Fixture) -> None:
    """A large batch gives what its chunks of a few samples give, combined by the batch reduction."""
    params, X, Y = fx.large
    output, _ = module.forward(_copy(params), X.copy())
    loss, grads = module.loss_and_grads(_copy(params), X.copy(), Y.copy())
    n = len(X)
    mean = fx.spec.get("reduction", "mean") == "mean"
    outputs, total, summed = [], 0.0, {k: np.zeros_like(v) for k, v in params.items()}
    for start in range(0, n, CHUNK):
        part = slice(start, start + CHUNK)
        outputs.append(module.forward(_copy(params), X[part].copy())[0])
        value, chunk_grads = module.loss_and_grads(_copy(params), X[part].copy(), Y[part].copy())
        weight = len(X[part]) / n if mean else 1.0
        total += value * weight
        for key in summed:
            summed[key] += chunk_grads[key] * weight
    single = np.concatenate(outputs)
    assert output.shape == single.shape
    np.testing.assert_allclose(output, single, rtol=1e-12, atol=1e-15)
    assert math.isclose(loss, total, rel_tol=1e-9), (loss, total)
    _assert_grads(grads, summed, 1e-9, 1e-12, "large batch")


@contextlib.contextmanager
def small_chunks(module, chunk: int) -> Iterator[None]:
    """The module's CHUNK set to ``chunk`` (so that a small batch is split into chunks)."""
    saved = module.CHUNK
    module.CHUNK = chunk
    try:
        yield
    finally:
        module.CHUNK = saved


def check_chunks(module, fx: Fixture) -> None:
    """A batch split into chunks computed one after another: torch's values, and bit for bit the
    chunks' results added in chunk order, on every call; float32 stays float32."""
    params, X, Y, loss, grads = fx.chunked
    for chunk, bounds in CHUNKINGS:
        with small_chunks(module, chunk):
            value, computed = module.loss_and_grads(_copy(params), X.copy(), Y.copy())
            assert math.isclose(value, loss, rel_tol=1e-10), (chunk, value, loss)
            _assert_grads(computed, grads, 1e-10, 1e-13, f"chunks of {chunk}")
            for dtype in (np.float64, np.float32):
                typed = {k: v.astype(dtype) for k, v in params.items()}
                X_, Y_ = X.astype(dtype), Y.astype(dtype)
                total, summed = chunked_by_hand(module, fx.spec, _copy(typed), X_.copy(), Y_.copy(), bounds)
                for _ in range(2):
                    value, computed = module.loss_and_grads(_copy(typed), X_.copy(), Y_.copy())
                    assert value == total, (chunk, dtype, value, total)
                    _assert_grads(computed, summed, 0, 0, f"chunks of {chunk}, {dtype.__name__}")
    single = chunked_by_hand(module, fx.spec, _copy(params), X[:1].copy(), Y[:1].copy(), [0, 1])
    value, computed = module.loss_and_grads(_copy(params), X[:1].copy(), Y[:1].copy())
    assert value == single[0], ("one sample", value, single[0])
    _assert_grads(computed, single[1], 0, 0, "one sample")


def check_forward_cache(module, fx: Fixture) -> None:
    """The cache of ``forward`` holds the input, then every layer's output in layer order, each equal
    in shape and value to the loop reference's (a wrong intermediate is wrong for whoever reads it).

    A pooled convolution computed one window at a time (codegen/numpy/fusion.py) caches, in place of
    the convolution's and the ReLU's outputs, the input patches, the convolution's output in the window
    layout, each window's maximum and the entry kept: checked against the reference's convolution
    output, rearranged here, its maxima and its first maxima (np.argmax keeps the first)."""
    params, X = fx.reference[:2]
    _, cache = module.forward(_copy(params), X.copy())
    items = list(cache.items())
    assert items[0][0] == "X", list(cache)
    expected, at = iter(fx.layer_outputs), 1
    for z in expected:
        name, value = items[at]
        if name == "X_windows":  # the patches: read by the two products below, checked through them
            at += 1
            name, value = items[at]
        if not name.endswith("_windows"):
            assert np.shape(value) == z.shape, (name, np.shape(value), z.shape)
            np.testing.assert_allclose(value, z, rtol=1e-10, atol=1e-13, err_msg=name)
            at += 1
            continue
        next(expected)  # the ReLU's output: not computed (the ReLU moves after the pool)
        n, f, h, w = z.shape
        s = int(round(np.sqrt(value.shape[0])))
        windows = z.reshape(n, f, h // s, s, w // s, s).transpose(3, 5, 1, 2, 4, 0).reshape(s * s, f, -1)
        (_, maxima), (_, kept), (_, pooled) = items[at + 1 : at + 4]
        np.testing.assert_allclose(value, windows, rtol=1e-10, atol=1e-13, err_msg=name)
        np.testing.assert_allclose(maxima, windows.max(axis=0), rtol=1e-10, atol=1e-13, err_msg="maxima")
        np.testing.assert_array_equal(kept, windows.argmax(axis=0), err_msg="kept entries")
        assert kept.dtype == np.uint8, kept.dtype  # one byte per window and filter
        np.testing.assert_allclose(pooled, next(expected), rtol=1e-10, atol=1e-13, err_msg="pooled")
        at += 4
    assert at == len(items), list(cache)[at:]


def check_init_values(module, fx: Fixture) -> None:
    """Weights uniform in +-1/sqrt(fan_in), biases zero, as the docstring of ``init_params`` says.

    The values are drawn again here from the same generator, one weight after the other in
    ``PARAM_SHAPES`` order.
    """
    for dtype in (np.float32, np.float64):
        params = module.init_params(np.random.default_rng(0), dtype)
        rng = np.random.default_rng(0)
        for key, shape in fx.param_shapes.items():
            if key.startswith("B"):
                assert np.all(params[key] == 0), key
                continue
            fan_in = math.prod(shape[1:]) if len(shape) == 4 else shape[0]
            expected = (rng.uniform(-1, 1, size=shape) / np.sqrt(fan_in)).astype(dtype)
            np.testing.assert_array_equal(params[key], expected, err_msg=key)


def check_wide_sample(module, fx: Fixture) -> None:
    """A larger batch against the loop reference."""
    params, X, Y, loss, grads = fx.wide
    value, computed = module.loss_and_grads(_copy(params), X.copy(), Y.copy())
    assert math.isclose(value, loss, rel_tol=1e-10), (value, loss)
    _assert_grads(computed, grads, 1e-10, 1e-13, "wide sample")


def check_bias_sweep(module, fx: Fixture) -> None:
    """Every bias shifted down and up, against the loop reference."""
    for label, params, X, Y, loss, grads in fx.sweep:
        value, computed = module.loss_and_grads(_copy(params), X.copy(), Y.copy())
        assert math.isclose(value, loss, rel_tol=1e-10), (label, value, loss)
        _assert_grads(computed, grads, 1e-10, 1e-13, label)


def check_finite_differences(module, fx: Fixture) -> None:
    params, X, Y = fx.finite
    _, grads = module.loss_and_grads(_copy(params), X.copy(), Y.copy())
    rng = np.random.default_rng(7)
    h = 1e-6
    for key, value in params.items():
        indices = list(np.ndindex(value.shape))
        if len(indices) > 6:
            indices = [indices[i] for i in rng.choice(len(indices), size=6, replace=False)]
        for index in indices:
            plus, minus = _copy(params), _copy(params)
            plus[key][index] += h
            minus[key][index] -= h
            numeric = (module.loss_and_grads(plus, X, Y)[0] - module.loss_and_grads(minus, X, Y)[0]) / (2 * h)
            assert math.isclose(grads[key][index], numeric, rel_tol=1e-5, abs_tol=1e-8), (key, index)


CHECKS: dict[str, Callable] = {
    "PARAM_SHAPES": check_param_shapes,
    "loop reference": check_loop_reference,
    "torch autograd": check_torch_autograd,
    "kinks and ties": check_kinks_and_ties,
    "large logits": check_large_logits,
    "float32": check_float32,
    "batch vectorised": check_batch_vectorised,
    "init_params": check_init_params,
    "finite differences": check_finite_differences,
    "chunks": check_chunks,  # as in the numeric tests
    # added by the mutation check: mutants that the checks above let through showed these gaps
    "init values": check_init_values,
    "wide sample": check_wide_sample,
    "bias sweep": check_bias_sweep,
    "large batch": check_large_batch,
    "forward cache": check_forward_cache,  # added with the new vocabulary (a pooled map's axes swapped)
}
# The checks of tests/test_generated_numeric.py, each generalised to every network.
AS_IN_NUMERIC_TESTS = tuple(CHECKS)[:10]


class MutantTimeoutError(Exception):
    """A mutant ran longer than ``SECONDS_PER_MUTANT``."""


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise ``MutantTimeoutError`` after ``seconds`` (main thread only; elsewhere no limit)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def expire(signum, frame):
        raise MutantTimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        yield


def first_failure(tree: ast.Module, label: str, fx: Fixture, checks: dict[str, Callable] = CHECKS):
    """(check name, error) of the first check the module fails, or None when it passes them all."""
    with quiet(), time_limit(seconds_for(fx.name)):
        try:
            module = load_module(tree, label)
        except Exception as error:  # noqa: BLE001 - any failure of the mutant counts
            return "import", error
        for check_name, check in checks.items():
            try:
                check(module, fx)
            except MutantTimeoutError as error:
                return check_name, error
            except Exception as error:  # noqa: BLE001 - any failure of the mutant counts
                return check_name, error
    return None


# ----------------------------------------------------------------- equivalence


def same(a, b, rtol: float = 1e-13) -> bool:
    """Equal type, shape, dtype and values (floats to ``rtol``, NaN equal to NaN)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)):
            return False
        if a.shape != b.shape or a.dtype != b.dtype:
            return False
        if a.dtype.kind in "fc":  # to rounding at the scale of the array (entries that nearly cancel)
            scale = float(np.nanmax(np.abs(a), initial=0.0)) if a.size else 0.0
            return bool(np.allclose(a, b, rtol=rtol, atol=rtol * scale, equal_nan=True))
        return bool(np.array_equal(a, b))
    if type(a) is not type(b):
        return False
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(same(x, y, rtol) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k], rtol) for k in a)
    if isinstance(a, (float, np.floating)):
        return bool(np.isclose(a, b, rtol=rtol, atol=0, equal_nan=True))
    if isinstance(a, BaseException):
        return type(a) is type(b)
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - incomparable values are different
        return False


@cache
def battery(name: str) -> list[tuple[str, Callable]]:
    """Wider than the judge: its inputs and more batch sizes and seeds, float32, kinks, ties, logits."""
    fx = fixture(name)
    cases = [
        ("judge: loop reference", *fx.reference[:3]),
        ("judge: torch", *fx.torch[:3]),
        ("judge: finite differences", *fx.finite),
        ("judge: float32 sample", *fx.low),
        ("judge: wide sample", *fx.wide[:3]),
        (f"judge: large batch of {len(fx.large[1])}", *fx.large),
        *[(f"judge: bias sweep {label}", p, x, y) for label, p, x, y, *_ in fx.sweep],
    ]
    for seed, batch in ((11, 1), (12, 2), (13, 7)):
        _, params, X, Y = sample(fx.name, seed=seed, batch=batch)
        cases.append((f"seed {seed}, batch {batch}", params, X, Y))
        cases.append(
            (
                f"seed {seed}, batch {batch}, float32",
                {k: v.astype(np.float32) for k, v in params.items()},
                X.astype(np.float32),
                Y.astype(np.float32),
            )
        )
    cases += [(label, p, x, y) for label, p, x, y, *_ in fx.exact]
    cases += [(label, p, x, y) for label, p, x, y, _ in fx.logits]

    def api(params, X, Y):
        def run(module):
            output, cache_ = module.forward(_copy(params), X.copy())
            return (
                output,
                cache_,
                module.loss(cache_, Y.copy()),
                module.backward(_copy(params), cache_, Y.copy()),
                module.loss_and_grads(_copy(params), X.copy(), Y.copy()),
            )

        return run

    calls = [("PARAM_SHAPES", lambda m: m.PARAM_SHAPES)]
    for seed in (0, 1):
        for dtype in (np.float32, np.float64):
            calls.append(
                (
                    f"init_params seed {seed} {dtype.__name__}",
                    lambda m, s=seed, d=dtype: m.init_params(np.random.default_rng(s), d),
                )
            )
    calls += [(label, api(p, x, y)) for label, p, x, y in cases]

    def chunked(chunk, params, X, Y):
        def run(module):
            with small_chunks(module, chunk):
                return module.loss_and_grads(_copy(params), X.copy(), Y.copy())

        return run

    for chunk, _ in CHUNKINGS:
        params, X, Y = fx.chunked[:3]
        calls.append((f"chunks of {chunk}", chunked(chunk, params, X, Y)))
        for seed, dtype in ((15, np.float64), (16, np.float32)):
            p = sample(fx.name, seed=seed)[1]
            x, y = draw_unchecked(fx.name, seed=seed, batch=13)
            typed = {k: v.astype(dtype) for k, v in p.items()}
            label = f"chunks of {chunk}, seed {seed}, {dtype.__name__}"
            calls.append((label, chunked(chunk, typed, x.astype(dtype), y.astype(dtype))))
    return calls


def _outcomes(module, calls, network: str = "") -> list:
    results = []
    with quiet(), time_limit(seconds_for(network)):
        for _, call in calls:
            try:
                results.append(call(module))
            except Exception as error:  # noqa: BLE001 - a raising call is an outcome
                results.append(error)
    return results


def _wrappable(node: ast.AST, parent: ast.AST | None) -> bool:
    """An expression that can be wrapped in a call without changing what the code means."""
    if not isinstance(node, ast.expr) or isinstance(node, (ast.Slice, ast.Starred)):
        return False
    if isinstance(getattr(node, "ctx", ast.Load()), (ast.Store, ast.Del)):
        return False
    if isinstance(node, ast.Tuple) and any(isinstance(e, ast.Slice) for e in node.elts):
        return False
    return not isinstance(parent, (ast.FormattedValue, ast.JoinedStr))


class _Probe(ast.NodeTransformer):
    """Wrap chosen nodes (by identity) in ``__probe__(key, node)``."""

    def __init__(self, keys: dict[int, str]):
        self.keys = keys

    def visit(self, node):
        node = self.generic_visit(node)
        key = self.keys.get(id(node))
        if key is None:
            return node
        probe = ast.Name("__probe__", ast.Load())
        return ast.copy_location(ast.Call(probe, [ast.Constant(key), node], []), node)


def _record(log: dict):
    def probe(key, value):
        log.setdefault(key, []).append(_snapshot(value))
        return value

    return probe


def _snapshot(value):
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, dict):
        return {k: _snapshot(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_snapshot(v) for v in value)
    return value


def _instrumented(
    tree: ast.Module, targets: list[tuple[Path_, str]], function: str
) -> tuple[ast.Module, set[str]]:
    """A copy of ``tree`` with probes around the wrappable targets and a recorder on ``function``."""
    tree = copy.deepcopy(tree)
    keys = {}
    for path, key in targets:
        parent = node_at(tree, path[:-1]) if path else None
        node = node_at(tree, path)
        if _wrappable(node, parent):
            keys[id(node)] = key
    tree = _Probe(keys).visit(tree)
    for statement in tree.body:
        if isinstance(statement, ast.FunctionDef) and statement.name == function:
            statement.decorator_list.insert(0, ast.Name("__record_returns__", ast.Load()))
    return ast.fix_missing_locations(tree), set(keys.values())


def _returns(log: dict, name: str):
    def decorate(function):
        def wrapper(*args, **kwargs):
            result = function(*args, **kwargs)
            log.setdefault(f"calls of {name}", []).append(_snapshot(result))
            return result

        return wrapper

    return decorate


def _statement_depth(tree: ast.Module, path: Path_) -> int:
    """Length of the path prefix that ends at the innermost statement containing ``path``."""
    depth = 0
    for k in range(1, len(path) + 1):
        if isinstance(node_at(tree, path[:k]), ast.stmt):
            depth = k
    return depth


def explain(mutant: Mutant, original: ast.Module, calls) -> str:
    """Why an equivalent mutant changes nothing: where its change stops showing, found by probes."""
    depth = _statement_depth(original, mutant.path)
    enclosing = [mutant.path[:k] for k in range(len(mutant.path), depth, -1)]  # innermost first
    targets = [(path, f"e{i}") for i, path in enumerate(enclosing)]
    targets += [(path, f"operand{i}") for i, path in enumerate(mutant.operands)]
    logs, probed = [], set()
    for tree, probe_targets in ((original, targets), (mutant.tree, targets[: len(enclosing)])):
        log: dict = {}
        instrumented, keys = _instrumented(tree, probe_targets, mutant.function)
        probed |= keys
        hooks = {"__probe__": _record(log), "__record_returns__": _returns(log, mutant.function)}
        _outcomes(load_module(instrumented, mutant.id, hooks), calls, mutant.network)
        logs.append(log)
    before, after = logs

    def unchanged(key: str) -> bool:
        a, b = before.get(key, []), after.get(key, [])
        return bool(a) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))

    for i, path in enumerate(enclosing):
        key = f"e{i}"
        if not unchanged(key):
            continue
        count = len(before[key])
        if i > 0:
            around = _snippet(node_at(original, path))
            return f"the change alters an inner value, but `{around}` is the same in all {count} evaluations"
        return (
            f"`{mutant.after}` has the same value as `{mutant.before}` in all {count} evaluations"
            + _operand_hint(mutant, before)
        )
    ancestors = [f"e{i}" for i in range(len(enclosing)) if f"e{i}" in probed]
    if ancestors and not any(before.get(key) for key in ancestors):
        return "never executed: no expression around the change is ever evaluated"
    returns = f"calls of {mutant.function}"
    if mutant.function != "<module>" and not before.get(returns):
        return f"never executed: `{mutant.function}` is never called"
    if unchanged(returns):
        count = len(before[returns])
        return (
            f"the change alters values inside `{mutant.function}`, "
            f"but it returns the same in all {count} calls"
        )
    return "the change alters intermediate values, but every output of the module's functions is the same"


def _operand_hint(mutant: Mutant, before: dict) -> str:
    """What the probes saw of the operands: swapped items always equal, a dropped operand always 0 or 1."""
    seen = [before.get(f"operand{i}", []) for i in range(len(mutant.operands))]
    if len(seen) == 2 and seen[0] and len(seen[0]) == len(seen[1]):
        if all(same(a, b) for a, b in zip(*seen, strict=True)):
            return f"; the swapped items are always equal (e.g. {_short(seen[0][0])})"
        if mutant.operator in ("swap arguments", "swap @ operands"):
            return "; the operation is symmetric in its two operands"
    if len(seen) == 1 and seen[0]:
        for unit in (0, 1):
            if all(np.all(np.asarray(v) == unit) for v in seen[0]):
                return f"; the dropped operand is always {unit}"
    return ""


def _short(value) -> str:
    text = repr(value) if not isinstance(value, np.ndarray) else f"array of shape {value.shape}"
    return text if len(text) <= 40 else text[:37] + "..."


# ----------------------------------------------------------------- verdicts


@dataclass(frozen=True)
class Verdict:
    mutant: Mutant
    outcome: str  # "caught", "equivalent", "survived"
    detail: str  # the check and error that caught it, or the explanation, or the first difference


@cache
def _expected(name: str) -> list:
    """The original module's outcomes on the battery (it is judged against these)."""
    return _outcomes(load_module(source_tree(name), f"{name}-original"), battery(name), name)


def judge(mutant: Mutant, original: ast.Module, fx: Fixture, checks: dict[str, Callable] = CHECKS) -> Verdict:
    failure = first_failure(mutant.tree, mutant.id, fx, checks)
    if failure:
        check_name, error = failure
        message = " ".join(str(error).split())
        message = message if len(message) <= 100 else message[:97] + "..."
        return Verdict(mutant, "caught", f"{check_name}: {type(error).__name__}: {message}")
    calls = battery(mutant.network)
    expected = _expected(mutant.network)
    observed = _outcomes(load_module(mutant.tree, mutant.id), calls, mutant.network)
    for (label, _), a, b in zip(calls, expected, observed, strict=True):
        if not same(a, b):
            return Verdict(mutant, "survived", f"no check fails, but the output differs on: {label}")
    bitwise = all(same(a, b, rtol=0) for a, b in zip(expected, observed, strict=True))
    explanation = explain(mutant, original, calls)
    suffix = "" if bitwise else " (outputs equal to rounding, not bit for bit)"
    return Verdict(mutant, "equivalent", explanation + suffix)


def _send(fd: int, message: tuple) -> None:
    payload = pickle.dumps(message)
    data = len(payload).to_bytes(4, "big") + payload
    while data:
        data = data[os.write(fd, data) :]


def _worker(mutants_: list[Mutant], start: int, original: ast.Module, fx: Fixture, checks, fd: int):
    """In a forked process: judge ``mutants_[start:]`` one after the other, reporting each verdict."""
    faulthandler.disable()  # a crashing mutant is reported by the parent, not by a traceback dump
    try:
        for index in range(start, len(mutants_)):
            _send(fd, ("started", index, ""))
            try:
                verdict = judge(mutants_[index], original, fx, checks)
                _send(fd, (verdict.outcome, index, verdict.detail))
            except BaseException as error:  # noqa: BLE001 - the judge itself failed: the parent raises
                _send(fd, ("error", index, f"the judge failed: {type(error).__name__}: {error}"))
                break
    finally:
        os._exit(0)


def judge_in_workers(
    mutants_: list[Mutant], original: ast.Module, fx: Fixture, checks: dict[str, Callable] = CHECKS
) -> list[Verdict]:
    """``judge`` every mutant in a forked worker process, so that a mutant that crashes the
    interpreter (``as_strided`` reading out of bounds) or hangs cannot stop the run: the worker
    dies or is killed, that mutant counts as caught, and a new worker takes the rest."""
    if not hasattr(os, "fork"):  # pragma: no cover - not POSIX
        return [judge(m, original, fx, checks) for m in mutants_]
    verdicts: dict[int, Verdict] = {}
    start = 0
    while start < len(mutants_):
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read)
            _worker(mutants_, start, original, fx, checks, write)
        os.close(write)
        current, buffer, killed = start, b"", False
        deadline = time.monotonic() + 4 * seconds_for(mutants_[start].network)
        while True:
            ready, _, _ = select.select([read], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                os.kill(pid, signal.SIGKILL)
                killed = True
                break
            chunk = os.read(read, 1 << 16)
            if not chunk:
                break
            buffer += chunk
            while len(buffer) >= 4 and len(buffer) >= 4 + int.from_bytes(buffer[:4], "big"):
                size = int.from_bytes(buffer[:4], "big")
                outcome, index, detail = pickle.loads(buffer[4 : 4 + size])
                buffer = buffer[4 + size :]
                if outcome == "error":
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                    raise RuntimeError(f"{mutants_[index].describe()}: {detail}")
                if outcome == "started":
                    current, deadline = index, time.monotonic() + 4 * seconds_for(mutants_[index].network)
                else:
                    verdicts[index] = Verdict(mutants_[index], outcome, detail)
                    current = index + 1
        os.close(read)
        _, status = os.waitpid(pid, 0)
        if current < len(mutants_) and current not in verdicts:  # the worker died judging this one
            if killed:
                reason = "killed after the time limit"
            elif os.WIFSIGNALED(status):
                reason = f"crashed with {signal.Signals(os.WTERMSIG(status)).name}"
            else:
                reason = f"the process exited with status {os.WEXITSTATUS(status)}"
            verdicts[current] = Verdict(mutants_[current], "caught", f"process: {reason}")
            current += 1
        start = current
    return [verdicts[i] for i in range(len(mutants_))]


def run(name: str, checks: dict[str, Callable] = CHECKS) -> list[Verdict]:
    """Generate and judge every mutant of the generated module ``name``, in worker processes."""
    original = source_tree(name)
    fx = fixture(name)
    battery(name), _expected(name)  # computed once, here, for every worker to inherit
    return judge_in_workers(focused(name, mutants(name, original)), original, fx, checks)


def focused(name: str, found: list[Mutant]) -> list[Mutant]:
    """The mutants of ``name`` that the check judges: all, or those in its ``FOCUS`` functions."""
    return [m for m in found if name not in FOCUS or m.function in FOCUS[name]]
