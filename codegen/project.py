"""The user's project: where ``build`` and ``check`` work and which networks it declares.

The project root is the nearest directory upward from the working directory whose
``pyproject.toml`` has a ``[tool.gradproof]`` table, or the directory given with ``--root``.
Spec paths in that table are relative to the root; outputs (and the manifest beside them) are
written under it, never into the installed gradproof. A spec loaded here carries its path
relative to the root as its source, so what is rendered from it does not depend on where the
command ran.
"""

from __future__ import annotations

import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path

from gradproof.derive.spec import NetworkSpec, SpecError, builtin_names, load, parse

PYPROJECT = "pyproject.toml"
TABLE = "[tool.gradproof]"
# The keys of [tool.gradproof] and what each must be; any other key is an error (a typo must not
# silently leave a spec unchecked).
KEYS = {
    "specs": "a list of spec file paths relative to the project root",
    "builtins": "true or false: whether check also covers gradproof's built-in networks",
}
BUILTIN_SOURCE = "<built-in {}>"


class ProjectError(ValueError):
    """A project that cannot be read: a bad pyproject.toml, root or manifest (bad input, exit 2)."""


@dataclass(frozen=True)
class Project:
    root: Path
    configured: bool  # a [tool.gradproof] table was found
    specs: tuple[str, ...] = ()  # as written, relative to the root
    builtins: bool = False

    def declared(self) -> list[str]:
        """References of every network the project declares: built-in names, then spec paths."""
        return (builtin_names() if self.builtins else []) + [str(self.root / p) for p in self.specs]


def read_toml(path: Path) -> dict:
    """A TOML file as a dict; a UTF-8 byte-order mark is accepted; ``ProjectError`` names the file."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except tomllib.TOMLDecodeError as error:
        raise ProjectError(f"{path}: malformed TOML: {error}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ProjectError(f"{path}: cannot read: {error}") from None


def _table(pyproject: Path) -> dict | None:
    """The ``[tool.gradproof]`` table of a pyproject.toml, or None when it has none."""
    tool = read_toml(pyproject).get("tool", {})
    if not isinstance(tool, dict) or "gradproof" not in tool:
        return None
    table = tool["gradproof"]
    if not isinstance(table, dict):
        raise ProjectError(f"{pyproject}: tool.gradproof: must be a table ({TABLE}), got {table!r}")
    return table


def _configured(root: Path, pyproject: Path, table: dict) -> Project:
    for key in table:
        if key not in KEYS:
            known = ", ".join(KEYS)
            raise ProjectError(f"{pyproject}: {TABLE} {key}: unknown key (known: {known})")
    specs = table.get("specs", [])
    if not isinstance(specs, list) or not all(isinstance(s, str) for s in specs):
        fix = f"; write specs = [{specs!r}]".replace("'", '"') if isinstance(specs, str) else ""
        raise ProjectError(f"{pyproject}: {TABLE} specs: must be {KEYS['specs']}, got {specs!r}{fix}")
    builtins = table.get("builtins", False)
    if not isinstance(builtins, bool):
        raise ProjectError(f"{pyproject}: {TABLE} builtins: must be {KEYS['builtins']}, got {builtins!r}")
    for index, spec in enumerate(specs):
        if not (root / spec).is_file():
            raise ProjectError(f"{pyproject}: {TABLE} specs[{index}]: no such spec file: {root / spec}")
    return Project(root, True, tuple(specs), builtins)


def find(start: Path, root: str | None = None) -> Project:
    """The project ``build`` and ``check`` work in: ``root`` if given, else the nearest one upward."""
    if root is not None:
        path = Path(root)
        if not path.is_dir():
            raise ProjectError(f"--root {root}: not a directory")
        pyproject = path / PYPROJECT
        table = _table(pyproject) if pyproject.is_file() else None
        return Project(path, False) if table is None else _configured(path, pyproject, table)
    start = start.resolve()
    for folder in (start, *start.parents):
        pyproject = folder / PYPROJECT
        if pyproject.is_file():
            table = _table(pyproject)
            if table is not None:
                return _configured(folder, pyproject, table)
    return Project(start, False)


def _is_builtin(reference: str) -> bool:
    return reference in builtin_names() and not reference.endswith(".toml")


def load_spec(project: Project, reference: str) -> NetworkSpec:
    """A built-in network by name or a spec file by path, relative to the working directory first,
    then to the project root. The spec's source is its path relative to the root when it lies there."""
    if _is_builtin(reference):
        return load(reference)
    path = Path(reference)
    if not path.is_file() and not path.is_absolute() and (project.root / path).is_file():
        path = project.root / path
    if not path.is_file():
        known = ", ".join(builtin_names())
        raise SpecError(reference, f"no such spec file or built-in network (built-ins: {known})")
    try:
        source = path.resolve().relative_to(project.root.resolve()).as_posix()
    except ValueError:
        source = str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise SpecError(source, f"cannot read: {error}") from None
    return parse(text, source=source)


def build_command(spec: NetworkSpec) -> str:
    """The command that rebuilds a network's outputs: its name if built in, else its spec's path."""
    if spec.source == BUILTIN_SOURCE.format(spec.name):
        return f"gradproof build {spec.name}"
    return f"gradproof build {shlex.quote(spec.source)}"
