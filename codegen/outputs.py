"""Everything a network's build produces, rendered in memory: relative path -> text."""

from __future__ import annotations

from gradproof.derive.network import Network
from gradproof.derive.prover import ProofRecord


def render_all(network: Network, records: list[ProofRecord]) -> dict[str, str]:
    """The generated NumPy module and the LaTeX derivation (document and snippets)."""
    from gradproof.codegen.latex import emitter as latex_emitter
    from gradproof.codegen.numpy import emitter as numpy_emitter

    outputs: dict[str, str] = {}
    outputs.update(numpy_emitter.render(network, records))
    outputs.update(latex_emitter.render(network, records))
    return outputs
