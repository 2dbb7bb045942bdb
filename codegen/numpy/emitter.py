"""Render a network's generated NumPy module from its proven rules (template network.py.j2)."""

from __future__ import annotations

import textwrap
from math import prod
from pathlib import Path

import jinja2

from gradproof.codegen.numpy import fusion
from gradproof.codegen.numpy.printer import HELPER_ORDER, HELPERS, WINDOW_HELPERS, NumpyReading
from gradproof.codegen.project import build_command
from gradproof.codegen.writing import with_header
from gradproof.derive import texpr as tx
from gradproof.derive.miniature import describe, miniature
from gradproof.derive.network import LOSS_NAME, Network, Step, gradient_name
from gradproof.derive.prover import ProofRecord
from gradproof.derive.statement import text

TEMPLATES = Path(__file__).parent.parent / "templates"
# Numbers of the largest tensor per chunk where loss_and_grads splits a batch (chunks run one after
# another, so that a chunk's intermediates stay in the cache). Measured on the 28x28 CNN, batch 256
# (CHUNK 56: four chunks of 64): float32 5.1-6.1 ms against 7.4 unsplit, float64 10.2-12.3 against
# 11.1-12.4; chunks of 32 were slower (the products' threads have less to share).
CHUNK_NUMBERS = 2**18


def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )


def _proof_summary(records: list[ProofRecord], step: Step, target: str) -> str:
    """'local 9/9, end-to-end 9/9 entries' from the records proving ``step``'s rule for ``target``."""
    parts, miniature = [], False
    for r in records:
        if r.holds and (r.step_output, r.target) == (step.output.name, target):
            parts.append(f"{r.level} {r.entries}/{r.entries}")
            miniature = miniature or bool(r.sizes)
    where = " on the miniature" if miniature else ""
    return f"{', '.join(parts)} entries{where}" if parts else "no proof record given to the emitter"


def _shape_text(shape: tx.Shape) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def conventions(network: Network) -> list[str]:
    """What the module's docstring states: each layer type's conventions once, then the loss's."""
    lines = [line for step in network.steps[:-1] for line in step.rule.docstring]
    loss = network.steps[-1]
    lines = list(dict.fromkeys(lines)) + [loss.rule.docstring_line(loss.input.name)]
    if network.spec.proof == "reduced":
        sizes = describe(miniature(network.spec))
        lines.append(
            f"the rules are proven on the miniature ({sizes}), the same architecture at\n  reduced "
            "sizes; shapes, composition and parameter count at the sizes below;"
        )
    return lines


def checks_context(network: Network) -> dict:
    """What the input checks (template ``_checks.py.j2``, shared with the compiled module) are told."""
    return {
        "input_shape": _shape_text(network.input.shape[1:]),
        "input_shape_text": ", ".join(map(str, network.input.shape[1:])),
        "output_shape": _shape_text(network.target.shape[1:]),
        "output_shape_text": ", ".join(map(str, network.target.shape[1:])),
        "targets": network.steps[-1].rule.targets,
        "classes": network.target.shape[-1],
    }


def _rewrite_line(record: ProofRecord) -> str:
    verdict = "proven" if record.holds else "NOT PROVEN, not applied"
    return "\n".join(
        textwrap.wrap(f"- {record.key} ({verdict}): {record.statement}", 96, subsequent_indent="  ")
    )


def render(network: Network, records: list[ProofRecord]) -> dict[str, str]:
    reading = NumpyReading()
    blocks = [fusion.fuse(b, lambda step, t: _proof_summary(records, step, t)) for b in fusion.find(network)]
    applied = [f for f in blocks if fusion.applicable(f)]
    forward_steps = [s for s in network.steps if s.output.name != LOSS_NAME]
    forward_lines, ordered = [], [network.input.name]
    for s in forward_steps:
        block = next((f for f in applied if s in (f.block.conv, f.block.relu, f.block.pool)), None)
        if block is None:
            code, comment = f"{s.output.name} = {reading(s.forward)}", f"{s.output.name} = {text(s.forward)}"
            forward_lines.append({"notes": [], "code": code, "comment": comment})
            ordered.append(s.output.name)
        elif s == block.block.conv:
            reading.helpers.update(WINDOW_HELPERS)
            forward_lines += [{"notes": [], "comment": "", **line} for line in block.forward]
            ordered += [name for line in block.forward for name in line["targets"]]
    loss_step = network.steps[-1]
    loss_code = reading(loss_step.forward)

    backward_lines, needed = [], []
    for step, target, expr in network.backward_plan():
        block = next((f for f in applied if gradient_name(target) in f.block.replaced), None)
        if block is None:
            backward_lines.append(
                {
                    "notes": [
                        f"dL/d{target} = {text(expr)}",
                        f"[proven: {_proof_summary(records, step, target)}]",
                    ],
                    "code": f"{gradient_name(target)} = {reading(expr)}",
                }
            )
            needed += [t.name for t in tx.tensors_in(expr)]
        elif gradient_name(target) == block.block.replaced[0]:
            backward_lines += [{"notes": [], **line} for line in block.backward]
            needed += block.reads
    param_names = [p.name for p in network.params]

    params = []
    for step in network.steps:
        for p, declared in zip(step.params, step.parameters, strict=True):
            shape, fan_in = _shape_text(p.shape), declared.fan_in
            params.append({"name": p.name, "shape": shape, "is_bias": fan_in is None, "fan_in": fan_in})

    shapes = [
        f"{t.name} {_shape_text(t.shape)}"
        for t in [network.input, *[s.output for s in forward_steps], network.target]
    ]
    tensors = [network.input, *[s.output for s in forward_steps]]
    largest = max(tensors, key=lambda t: prod(t.shape[1:]))
    loss_uses_n = "/ N" in loss_code
    backward_uses_n = any("/ N" in line["code"] for line in backward_lines)
    helpers = [HELPERS[h].strip("\n") for h in HELPER_ORDER if h in reading.helpers]
    helpers += [reading.carried[h].strip("\n") for h in sorted(reading.carried)]
    body = (
        environment()
        .get_template("network.py.j2")
        .render(
            name=network.spec.name,
            input_name=network.input.name,
            **checks_context(network),
            conventions=conventions(network),
            build_command=build_command(network.spec),
            reduction=network.spec.reduction,
            shapes=shapes,
            uses_windows=any("as_strided(" in helper for helper in helpers),
            uses_cache=any("@cache" in helper for helper in helpers),
            rewrites=[_rewrite_line(r) for f in blocks for r in f.records],
            params=params,
            param_names=param_names,
            output=network.output.name,
            forward_lines=forward_lines,
            cached=ordered,
            loss_inputs=[t.name for t in tx.tensors_in(loss_step.forward) if t.name != network.target.name],
            loss_code=loss_code,
            backward_cache=[t for t in ordered if t in needed],
            backward_params=[p for p in param_names if p in needed],
            backward_lines=backward_lines,
            loss_uses_n=loss_uses_n,
            backward_uses_n=backward_uses_n,
            uses_n=loss_uses_n or backward_uses_n,
            largest=largest.name,
            chunk=max(1, CHUNK_NUMBERS // prod(largest.shape[1:])),
            chunk_numbers=f"2**{CHUNK_NUMBERS.bit_length() - 1}",
            helpers=helpers,
        )
    )
    path = f"generated/{network.spec.name}.py"
    return {path: with_header(path, network.spec.name, body)}
