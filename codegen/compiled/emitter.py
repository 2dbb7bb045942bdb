"""Render a network's compiled module (numba kernels) from its proven rules (template network_compiled.py.j2).

Rendering is text only and needs no numba: ``gradproof check`` compares a committed compiled module
without the extra installed. Importing the rendered module needs numba.
"""

from __future__ import annotations

import re
import textwrap
from math import ceil, log2, prod

from gradproof.codegen.compiled.plan import Plan, Statement, plan
from gradproof.codegen.compiled.printer import INDENT, LoopReading
from gradproof.codegen.numpy.emitter import checks_context, conventions, environment
from gradproof.codegen.outputs import compiled_path
from gradproof.codegen.project import build_command
from gradproof.codegen.writing import with_header
from gradproof.derive import texpr as tx
from gradproof.derive.network import Network
from gradproof.derive.prover import ProofRecord

# Multiply-adds per block of samples: a block is computed serially by one thread into its own
# gradient accumulators, and the blocks' sums are added in block order, so a batch gives the same
# bits whatever the number of threads. Batches of fewer than two blocks run the serial kernel.
# The block is the power of two at or above BLOCK_MULTIPLY_ADDS over a sample's, so a batch of a
# power of two samples splits into equal runs of blocks, one per thread (mnist_cnn8: 8 samples, 4 + 4
# blocks for 64, where blocks of 5 samples gave 7 + 6 blocks, 35 against 29 samples).
BLOCK_MULTIPLY_ADDS = 2**20


def _shape_text(shape: tuple) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


CONSTANTS = {"zero": 0, "one": 1, "half": 0.5}


def constants(lines: list[str], always: tuple[str, ...] = (), source: str = "X") -> list[str]:
    """The typed constants (``zero = X.dtype.type(0)``, ...) the code lines use, outside comments."""
    code = "\n".join(line.split("#", 1)[0] for line in lines)
    used = [c for c in CONSTANTS if c in always or re.search(rf"\b{c}\b", code)]
    typed = [f"{INDENT}{c} = {source}.dtype.type({CONSTANTS[c]})" for c in used]
    areas = sorted({int(k) for k in re.findall(r"\barea(\d+)\b", code)})  # a pooling window's size
    return typed + [f"{INDENT}area{k} = {source}.dtype.type({k})" for k in areas]


LINE = 110  # ruff's line length for this repository


def call(head: str, arguments: list[str], indent: int, tail: str = "") -> str:
    """``head(arguments)tail`` at ``indent``, split as the formatter (ruff format) splits it."""
    pad, inner = " " * indent, " " * (indent + 4)
    one = f"{pad}{head}({', '.join(arguments)}){tail}"
    if len(one) <= LINE:
        return one
    packed = inner + ", ".join(arguments)
    if len(packed) <= LINE:
        return f"{pad}{head}(\n{packed}\n{pad}){tail}"
    return f"{pad}{head}(\n" + "".join(f"{inner}{a},\n" for a in arguments) + f"{pad}){tail}"


def tuple_lines(name: str, items: list[str]) -> list[str]:
    """``name = ("a", "b")`` on one line, or one item a line with a trailing comma, as ruff formats it."""
    quoted = [f'"{item}"' for item in items]
    one = f"{name} = ({', '.join(quoted)}{',' if len(quoted) == 1 else ''})"
    return [one] if len(one) <= LINE else [f"{name} = (", *[f"    {q}," for q in quoted], ")"]


def wrapped(text: str, indent: int) -> list[str]:
    """``text`` as comment or docstring lines of at most LINE characters."""
    return textwrap.wrap(text, LINE - indent, break_long_words=False, break_on_hyphens=False) or [""]


def _environment():
    env = environment()
    env.globals["call"] = call
    env.filters["cached"] = lambda name: f'cache["{name}"]'
    env.filters["add_block"] = lambda name: f"{name}[k]"
    env.filters["first_block"] = lambda name: f"{name}[0]"
    env.filters["add_sample"] = lambda name: f"{name}[s]"
    return env


def _body(reading: LoopReading, statement: Statement, depth: int = 1) -> list[str]:
    pad = INDENT * depth
    lines = [f"{pad}# {line}" for note in statement.notes for line in wrapped(note, len(pad) + 2)]
    return lines + [pad + line for line in reading(statement.expr, statement.target)]


def multiply_adds(network: Network) -> int:
    """Multiply-adds of one sample's forward pass and weight gradients (sizes the blocks of samples)."""
    total = 0
    for step in network.steps[:-1]:
        outputs = prod(int(d) for d in step.output.shape[1:])
        if step.params:
            w = step.params[0]
            per_output = prod(int(d) for d in w.shape[1:]) if len(w.shape) == 4 else int(w.shape[0])
            total += 2 * outputs * per_output
        else:
            total += outputs
    return max(total, 1)


def render(network: Network, records: list[ProofRecord]) -> dict[str, str]:
    fused = plan(network, records)
    reading = LoopReading(fused.keep)
    params = [p for p in network.params]
    param_names = [p.name for p in params]
    aliases = {s.target for s in fused.forward + fused.backward if isinstance(s.expr, tx.Reshape)}
    forward_buffers = [
        {"name": s.target, "shape": _shape_text(LoopReading.sample_shape(s.expr)), "dtype": "X.dtype"}
        for s in fused.forward
        if s.target not in aliases
    ]
    forward_buffers += [
        {"name": name, "shape": _shape_text(shape), "dtype": "np.uint8"}
        for name, shape in fused.kept_shapes.items()
    ]
    backward_buffers, accumulators = [], []
    for s in fused.backward:
        if s.target in aliases:
            continue
        shape = _shape_text(LoopReading.sample_shape(s.expr))
        if LoopReading.batched(s.expr):
            backward_buffers.append({"name": s.target, "shape": shape, "dtype": "X.dtype"})
        else:
            block_shape = "(blocks, " + ", ".join(str(d) for d in LoopReading.sample_shape(s.expr)) + ")"
            accumulators.append(
                {"name": s.target, "shape": shape, "param": s.target[1:], "block_shape": block_shape}
            )
    accumulators.sort(key=lambda a: param_names.index(a["param"]))
    offset = 0
    for a in accumulators:
        size = prod(int(d) for d in next(p.shape for p in params if p.name == a["param"]))
        a["start"], a["stop"] = offset, offset + size
        offset += size
    forward_aliases = [s for s in fused.forward if s.target in aliases]
    loss_inputs = [t.name for t in tx.tensors_in(fused.loss.expr) if t.name != network.target.name]

    forward_body = [line for s in fused.forward for line in _body(reading, s)]
    loss_body = _body(reading, _loss_statement(fused))
    backward_body = [line for s in forward_aliases for line in _body(reading, s)]
    backward_body += [line for s in fused.backward for line in _body(reading, s)]

    sample_macs = multiply_adds(network)
    outputs = [network.input, *[s.output for s in network.steps[:-1]]]
    param_rows = []
    for step in network.steps:
        for p, declared in zip(step.params, step.parameters, strict=True):
            shape, fan_in = _shape_text(p.shape), declared.fan_in
            param_rows.append({"name": p.name, "shape": shape, "is_bias": fan_in is None, "fan_in": fan_in})
    shapes = [f"{t.name} {_shape_text(t.shape)}" for t in [*outputs, network.target]]
    block = 2 ** max(0, ceil(log2(BLOCK_MULTIPLY_ADDS / sample_macs)))
    rewrites = []
    for r in fused.rewrites:
        verdict = "proven" if r.holds else f"NOT PROVEN, not applied: {r.failing}"
        rewrites.append(
            {
                "statement": wrapped(f"- {r.key}: {r.statement}", 2),
                "proof": wrapped(f"[{verdict}: {r.method}]", 2),
            }
        )
    body = (
        _environment()
        .get_template("network_compiled.py.j2")
        .render(
            name=network.spec.name,
            **checks_context(network),
            conventions=conventions(network),
            build_command=build_command(network.spec),
            reduction=network.spec.reduction,
            shapes=shapes,
            params=param_rows,
            param_names=param_names,
            output=network.output.name,
            forward_names=[s.target for s in fused.forward],
            cache_lines=wrapped(_cache_sentence(fused), 0),
            cached_lines=tuple_lines("CACHED", [b["name"] for b in forward_buffers]),
            forward_buffers=forward_buffers,
            forward_aliases=[
                {
                    "name": s.target,
                    "source": s.expr.a.name,
                    "features": _shape_text(LoopReading.sample_shape(s.expr)),
                }
                for s in forward_aliases
            ],
            backward_buffers=backward_buffers,
            accumulators=accumulators,
            loss_inputs=loss_inputs,
            forward_body=forward_body,
            forward_constants=constants(forward_body),
            loss_constants=constants(loss_body, always=("zero",), source="Y"),
            backward_constants=constants(backward_body),
            loss_body=loss_body,
            backward_body=backward_body,
            mean=network.spec.reduction == "mean",
            block=block,
            gradients=offset,
            block_multiply_adds="2**20",
            sample_macs=sample_macs,
            rewrites=rewrites,
        )
    )
    path = compiled_path(network.spec.name)
    return {path: with_header(path, network.spec.name, body)}


def _cache_sentence(fused: Plan) -> str:
    kept = f" and the kept window entries {', '.join(fused.kept_shapes)}" if fused.kept_shapes else ""
    names = ", ".join(fused.forward_names)
    return f"`forward`'s cache holds the tensors these kernels compute: {names}{kept}."


def _loss_statement(fused: Plan) -> Statement:
    return Statement(
        "total",
        fused.loss.expr,
        [*fused.loss.notes, "(one sample's term; the batch reduction is applied by the caller)"],
    )
