"""Everything a network's build produces, rendered in memory: relative path -> text."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from gradproof.derive.network import Network
from gradproof.derive.prover import ProofRecord


def compiled_path(name: str) -> str:
    """Where a network's compiled module goes (``gradproof build --compiled``)."""
    return f"generated/{name}_compiled.py"


def has_compiled(root: Path, name: str) -> bool:
    """Whether the project holds a compiled module of the network: then build and check keep it current."""
    return (root / compiled_path(name)).is_file()


def numba_available() -> bool:
    """Whether the optional extra ``compiled`` (numba) is installed; rendering never needs it."""
    return importlib.util.find_spec("numba") is not None


def render_all(network: Network, records: list[ProofRecord], compiled: bool = False) -> dict[str, str]:
    """The generated NumPy module, the LaTeX derivation (document and snippets), its Markdown
    reading, and the compiled module when asked for."""
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
    if compiled:
        from gradproof.codegen.compiled import emitter as compiled_emitter

        outputs.update(compiled_emitter.render(network, records))
    return outputs
