"""gradproof for notebooks and scripts: one call proves a network and hands back its readings.

    >>> import gradproof
    >>> d = gradproof.derive_network("small_cnn")      # a built-in name, a spec path or a NetworkSpec
    >>> d.prove()                                       # the proof records, a table in Jupyter
    >>> d.latex()["docs/derivations/small_cnn/dW1.tex"] # the LaTeX document and its snippets
    >>> d.markdown()                                    # the Markdown post, KaTeX math
    >>> d.numpy_source()                                # the generated NumPy module

In Jupyter the object shows itself as its Markdown derivation (``_repr_markdown_``), its rules as
LaTeX (``_repr_latex_``) and its proof table as HTML (``_repr_html_`` of ``prove()``). Nothing is
written to disk; ``gradproof build`` does that. A bad name or spec raises ``SpecError``, naming
the field; a rule that does not hold makes ``prove()`` say so, and the readings refuse to exist.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from gradproof.derive import prover
from gradproof.derive.network import Network, build
from gradproof.derive.prover import ProofRecord
from gradproof.derive.spec import NetworkSpec, load


class ProofFailed(RuntimeError):  # noqa: N818 - named for what happened
    """A derivation was asked of a network whose rules are not all proven."""


@dataclass(frozen=True)
class Proof:
    """The proof records of one network, shown as a table."""

    network: str
    records: tuple[ProofRecord, ...]

    @property
    def holds(self) -> bool:
        return prover.all_hold(list(self.records))

    def __iter__(self):
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)

    def __repr__(self) -> str:
        proven = sum(r.holds for r in self.records)
        return f"<Proof of {self.network}: {proven} of {len(self.records)} obligations proven>"

    def _repr_html_(self) -> str:
        rows = "".join(
            "<tr>"
            f"<td>{'proven' if r.holds else '<b>FAILED</b>'}</td><td>{html.escape(r.level)}</td>"
            f"<td>{html.escape(r.name)}</td><td style='text-align:right'>{r.entries}</td>"
            f"<td><code>{html.escape(r.statement)}</code></td>"
            "</tr>"
            for r in self.records
        )
        head = "<tr><th>verdict</th><th>level</th><th>obligation</th><th>entries</th><th>statement</th></tr>"
        caption = html.escape(repr(self)[1:-1])
        return f"<table><caption>{caption}</caption>{head}{rows}</table>"


class NetworkDerivation:
    """A network, its proof and its readings, each computed once when first asked for."""

    def __init__(self, network: Network):
        self.network = network
        self.name = network.spec.name

    def __repr__(self) -> str:
        return f"<NetworkDerivation of {self.name}: {self.network.parameter_count} parameters>"

    @cached_property
    def proof(self) -> Proof:
        return Proof(self.name, tuple(prover.prove(self.network)))

    def prove(self) -> Proof:
        """Every obligation of the network, proven (or refuted) exactly."""
        return self.proof

    def _proven(self) -> list[ProofRecord]:
        if not self.proof.holds:
            failed = ", ".join(r.name for r in self.proof if not r.holds)
            raise ProofFailed(f"{self.name}: not every rule is proven ({failed}); nothing is emitted")
        return list(self.proof.records)

    @cached_property
    def _latex(self) -> dict[str, str]:
        from gradproof.codegen.latex import emitter

        return emitter.render(self.network, self._proven())

    def latex(self) -> dict[str, str]:
        """The LaTeX document and its snippets: relative path -> text, as ``gradproof build`` writes them."""
        return dict(self._latex)

    def latex_document(self) -> str:
        return self._latex[f"docs/derivations/{self.name}.tex"]

    @cached_property
    def _markdown(self) -> str:
        from gradproof.codegen.markdown import emitter

        (text,) = emitter.render(self.network, self._proven(), self.latex_document()).values()
        return text

    def markdown(self) -> str:
        """The Markdown derivation (front matter, KaTeX math, a Mermaid diagram)."""
        return self._markdown

    @cached_property
    def _numpy(self) -> str:
        from gradproof.codegen.numpy import emitter

        (text,) = emitter.render(self.network, self._proven()).values()
        return text

    def numpy_source(self) -> str:
        """The generated NumPy module's source."""
        return self._numpy

    def _repr_markdown_(self) -> str:
        # Jupyter shows Markdown without its front matter (the YAML would print as text)
        text = self.markdown()
        return text.split("\n---\n", 1)[1] if text.startswith("---\n") else text

    def _repr_latex_(self) -> str:
        """The proven rules as one display, for front ends that typeset LaTeX (MathJax)."""
        from gradproof.codegen.latex.derivation import Derivation

        derivation = Derivation(self.network, self._proven())
        rows = [
            rf"{derivation.grad(target)} &= {derivation.read(expr)}" for _, target, expr in derivation.plan
        ]
        return "$$\\begin{aligned}" + r" \\ ".join(rows) + "\\end{aligned}$$"


def derive_network(spec: str | Path | NetworkSpec) -> NetworkDerivation:
    """The derivation of a built-in network (``"small_cnn"``), a spec file, or a parsed ``NetworkSpec``."""
    parsed = spec if isinstance(spec, NetworkSpec) else load(str(spec))
    return NetworkDerivation(build(parsed))
