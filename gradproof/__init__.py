"""gradproof: machine-checked backpropagation.

The distribution installs one top-level name, ``gradproof``. In this
repository its parts keep their own folders (``derive/``, ``codegen/``,
``generated/``); ``pyproject.toml`` maps them to ``gradproof.derive``,
``gradproof.codegen`` and ``gradproof.generated``, so a user's own
``generated/`` folder imports as theirs.
"""

from importlib import metadata

try:
    __version__ = metadata.version("gradproof")
except metadata.PackageNotFoundError:  # pragma: no cover - a checkout that was never installed
    __version__ = "0+unknown"


def __getattr__(name: str):
    """``gradproof.derive_network``, imported when first used (it brings in SymPy)."""
    if name == "derive_network":
        from gradproof.api import derive_network

        return derive_network
    raise AttributeError(f"module 'gradproof' has no attribute {name!r}")
