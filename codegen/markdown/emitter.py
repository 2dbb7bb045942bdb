"""The Markdown reading of a derivation: ``docs/derivations/<name>.md``, for a blog or a static site.

The text is the standalone LaTeX document's (``codegen.latex``), read by ``codegen.markdown.translate``:
the same sections, equations and proof records, with ``$...$`` and ``$$...$$`` math that KaTeX and
MathJax render. It opens with YAML front matter (title, description) that Jekyll, Hugo and MkDocs
read, with the generated-file header as its first comment; the architecture is a Mermaid flowchart,
which GitHub and MkDocs draw, and the variables a pipe table.
"""

from __future__ import annotations

import re

from gradproof.codegen.latex.derivation import Derivation
from gradproof.codegen.markdown.translate import Translator, sections_of
from gradproof.codegen.writing import with_header
from gradproof.derive.network import Network
from gradproof.derive.prover import ProofRecord

_GREEK = {
    name: chr(code)
    for name, code in [
        ("alpha", 0x3B1), ("beta", 0x3B2), ("gamma", 0x3B3), ("delta", 0x3B4), ("epsilon", 0x3B5),
        ("zeta", 0x3B6), ("eta", 0x3B7), ("theta", 0x3B8), ("iota", 0x3B9), ("kappa", 0x3BA),
        ("lambda", 0x3BB), ("mu", 0x3BC), ("nu", 0x3BD), ("xi", 0x3BE), ("pi", 0x3C0), ("rho", 0x3C1),
        ("sigma", 0x3C3), ("tau", 0x3C4), ("upsilon", 0x3C5), ("phi", 0x3C6), ("chi", 0x3C7),
        ("psi", 0x3C8), ("omega", 0x3C9), ("Gamma", 0x393), ("Delta", 0x394), ("Theta", 0x398),
        ("Lambda", 0x39B), ("Xi", 0x39E), ("Pi", 0x3A0), ("Sigma", 0x3A3), ("Phi", 0x3A6),
        ("Psi", 0x3A8), ("Omega", 0x3A9),
    ]
}  # fmt: skip
_ACCENTS = {"hat": "\u0302", "tilde": "\u0303", "bar": "\u0304"}


def plain(latex: str) -> str:
    """A symbol, shape or operator name of the figure as plain text (Mermaid labels are not math)."""
    text = latex.replace(r"{\times}", "×").replace(r"\times", "×").replace(r"\;", " ").replace(r"\ ", " ")
    text = re.sub(r"\\tfrac\{(\w+)\}\{(\w+)\}", r"\1/\2", text)
    text = text.replace(r"\lVert\cdot\rVert^{2}", "‖·‖²")
    for name, mark in _ACCENTS.items():
        text = re.sub(rf"\\{name}\{{(\w)\}}", lambda m, mark=mark: m.group(1) + mark, text)
    text = re.sub(r"\\(operatorname|text|mathrm|mathit|mathbf|boldsymbol|mathcal)\{([^{}]*)\}", r"\2", text)
    text = re.sub(r"\\([A-Za-z]+)", lambda m: _GREEK.get(m.group(1), m.group(1)), text)
    text = re.sub(r"[_{}]", "", text)
    return text.replace('"', "'")


def mermaid(nodes: list[dict]) -> str:
    """The network's chain as a Mermaid flowchart: each tensor with its shape, each layer an arrow.

    Top to bottom: a renderer scales a diagram to the page's width, and a left-to-right chain of a
    dozen tensors (LeNet-5 has fifteen) comes out too small to read.
    """
    lines = ["```mermaid", "flowchart TB"]
    for node in nodes:
        lines.append(f'  {node["id"]}["{plain(node["name"])}<br/>{plain(node["shape"])}"]')
    for previous, node in zip(nodes, nodes[1:], strict=False):
        label = " ".join([plain(node["op"])] + [plain(p) for p in node["params"]])
        lines.append(f'  {previous["id"]} -->|"{label}"| {node["id"]}')
    lines.append("```")
    return "\n".join(lines)


def table(rows: list[dict], batch: str) -> str:
    """The variables as a pipe table, math in ``$...$``."""
    shape = "dimensions" + (f" ($N = {batch}$)" if batch != "N" else "")
    lines = [f"| name | meaning | {shape} | trainable |", "| --- | --- | --- | --- |"]
    for row in rows:
        dims = "scalar" if row["shape"] == "scalar" else f"${row['shape']}$"
        lines.append(f"| ${row['name']}$ | {row['meaning']} | {dims} | {row['trainable']} |")
    return "\n".join(lines)


def layer_table(data: dict) -> str:
    """The layer table (shapes and parameters, layer by layer) as a pipe table, math in ``$...$``."""
    math = lambda text: f"${text}$" if text else ""  # noqa: E731
    lines = ["| | layer | output | output side | parameters |", "| --- | --- | --- | --- | --- |"]
    lines.append(f"| ${data['input_name']}$ | input | ${data['input']}$ | | |")
    for row in data["rows"]:
        cells = [math(row["name"]), row["layer"], math(row["shape"]), math(row["rule"]), math(row["count"])]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append(f"| | total | | | ${data['total']}$ |")
    return "\n".join(lines)


def front_matter(title: str) -> str:
    return "\n".join(
        [
            "---",
            f'title: "{title}"',
            'description: "A derivation checked entry by entry by gradproof"',
            "generator: gradproof",
            "math: true",
            "---",
        ]
    )


def render(network: Network, records: list[ProofRecord], latex_document: str) -> dict[str, str]:
    """``docs/derivations/<name>.md`` from the network's LaTeX document (with its generated header)."""
    name = network.spec.name
    derivation = Derivation(network, records)
    derivation.architecture()
    derivation.variables()
    architecture, variables = derivation.blocks[0], derivation.blocks[1]
    body = latex_document.split(r"\maketitle", 1)[1].split(r"\end{document}", 1)[0]
    figure_label = architecture.data["label"]
    translator = Translator(sections_of(body), {figure_label: "1"})
    text = translator.document(
        body,
        mermaid(architecture.data["nodes"]),
        [layer_table(derivation.layer_table()), table(variables.data["table"], variables.data["batch"])],
    )
    about = network.spec.about.title.replace('"', "'")
    heading = about or f"Backpropagation through {name}"
    subtitle = (
        "Backpropagation, derived and checked by gradproof."
        if about
        else ("A derivation checked entry by entry by gradproof.")
    )
    title = f"# {about or f'Backpropagation through `{name}`'}\n\n*{subtitle}*\n"
    path = f"docs/derivations/{name}.md"
    return {path: with_header(path, name, f"{front_matter(heading)}\n\n{title}\n{text}")}
