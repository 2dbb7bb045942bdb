"""Everything a network's build produces, rendered in memory: relative path -> text."""

from __future__ import annotations

from gradproof.derive.network import Network
from gradproof.derive.prover import ProofRecord


def render_all(network: Network, records: list[ProofRecord]) -> dict[str, str]:
    """The generated NumPy module, the LaTeX derivation (document and snippets) and its Markdown reading."""
    from gradproof.codegen.latex import emitter as latex_emitter
    from gradproof.codegen.markdown import emitter as markdown_emitter
    from gradproof.codegen.numpy import emitter as numpy_emitter

    outputs: dict[str, str] = {}
    outputs.update(numpy_emitter.render(network, records))
    latex = latex_emitter.render(network, records)
    outputs.update(latex)
    outputs.update(
        markdown_emitter.render(network, records, latex[f"docs/derivations/{network.spec.name}.tex"])
    )
    return outputs
