"""The LaTeX emitter: a derivation document and includable snippets, from the proven rules.

``render(network, records)`` returns ``{relative path: text}``:
``docs/derivations/<name>.tex`` (a standalone article) and one file per result
under ``docs/derivations/<name>/`` that another document can ``\\input``
(it needs ``amsmath`` and ``amssymb``, the figure also ``tikz``, the table in a
column ``tabularx``; labels are ``gp:<name>:<result>``). A snippet carries
each distinct rendering of its result (``codegen.latex.layout.LAYOUTS``: a
column, a narrower text, the page) and TeX picks one by ``\\linewidth``.

The results are computed by ``codegen.latex.derivation`` from the rule table
and the proof records; the templates in ``codegen/templates`` only place them
and explain them. The output is byte-identical on every run: no dates, no
timings, no paths.
"""

from __future__ import annotations

from pathlib import Path

import jinja2

from gradproof.codegen.latex.content import about_paragraphs, prose_escape, text_escape
from gradproof.codegen.latex.derivation import Derivation
from gradproof.codegen.latex.layout import LAYOUTS, PAGE
from gradproof.codegen.writing import with_header
from gradproof.derive.miniature import describe, miniature
from gradproof.derive.network import Network
from gradproof.derive.prover import ProofRecord

TEMPLATES = Path(__file__).parent.parent / "templates"


@jinja2.pass_environment
def _render(env: jinja2.Environment, source: str, context: dict | None = None, **extra) -> str:
    """The ``render`` filter: a layer type's jinja2 words (``derive.layers``) in this environment."""
    return env.from_string(source).render(**(context or {}), **extra)


def environment() -> jinja2.Environment:
    """Jinja2 with LaTeX-safe delimiters: ``\\BLOCK{}``, ``\\VAR{}``, ``\\#{}``, ``%-`` lines."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        block_start_string=r"\BLOCK{",
        block_end_string="}",
        variable_start_string=r"\VAR{",
        variable_end_string="}",
        comment_start_string=r"\#{",
        comment_end_string="}",
        line_statement_prefix="%-",
        line_comment_prefix="%#",
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["render"] = _render
    return env


def _tidy(text: str) -> str:
    """At most one blank line in a row, and one newline at the end."""
    lines: list[str] = []
    for line in text.splitlines():
        line = line.rstrip()
        if line or (lines and lines[-1]):
            lines.append(line)
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines) + "\n"


def _variants(renderings: list[tuple[float | None, str]]) -> list[tuple[float | None, str]]:
    """``(below_em, text)`` narrowest first, a text equal to the next wider one's left out."""
    variants: list[tuple[float | None, str]] = []
    for below_em, text in renderings:
        if variants and variants[-1][1] == text:
            variants[-1] = (below_em, text)
        else:
            variants.append((below_em, text))
    return variants


def about(network: Network) -> dict:
    """The spec's ``[about]`` table as LaTeX: the title, the introduction's paragraphs, the references."""
    spec = network.spec
    return {
        "title": prose_escape(spec.about.title),
        "paragraphs": about_paragraphs(spec.about.text),
        "references": [prose_escape(r) for r in spec.about.references],
    }


def proof_facts(network: Network, records: list[ProofRecord]) -> dict:
    """What the prose says of how the network was proven: at its sizes, or by its miniature."""
    reduced = network.spec.proof == "reduced"
    return {
        "reduced": reduced,
        "miniature": text_escape(describe(miniature(network.spec))) if reduced else "",
        "end_to_end": any(r.key == "end-to-end" for r in records),
    }


def render(network: Network, records: list[ProofRecord]) -> dict[str, str]:
    """The document and one snippet per result, each with the generated-file header."""
    derivations = {layout: Derivation(network, records, layout) for layout in LAYOUTS}
    built = {layout: {b.key: b for b in d.build()} for layout, d in derivations.items()}
    derivation, blocks = derivations[PAGE], list(built[PAGE].values())
    env = environment()
    name = network.spec.name
    context = {
        "name": name,
        "title": text_escape(name),
        "spec": network.spec,
        "names": derivation.names,
        "blocks_by_key": built[PAGE],
        "rule_keys": [b.key for b in blocks if "role" in b.data],
        "first_output": derivation.first_layer.output.name,
        "output_name": network.output.name,
        "definitions": derivation.definitions(),
        "conventions": derivation.conventions(),
        "renamed": [(text_escape(k), derivation.names.symbol(k)) for k in sorted(network.spec.notation)],
        "about": about(network),
        "layer_table": derivation.layer_table(),
        "proof": proof_facts(network, records),
    }
    outputs = {}
    snippet = env.get_template("snippet.tex.j2")
    body = env.from_string("\\BLOCK{import '_blocks.tex.j2' as blocks}\\VAR{blocks.render(block)}")
    for block in blocks:
        path = f"docs/derivations/{name}/{block.key}.tex"
        variants = _variants(
            [(layout.below_em, body.render(block=built[layout][block.key]).strip("\n")) for layout in LAYOUTS]
        )
        outputs[path] = with_header(
            path, name, _tidy(snippet.render(block=block, variants=variants, **context))
        )
    path = f"docs/derivations/{name}.tex"
    outputs[path] = with_header(path, name, _tidy(env.get_template("derivation.tex.j2").render(**context)))
    return outputs
