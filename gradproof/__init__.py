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
