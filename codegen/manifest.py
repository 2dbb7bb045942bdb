"""The manifest: which files ``build`` wrote for each network, committed beside them.

``gradproof-manifest.toml`` at the project root lists, per network, its spec and every file
its build wrote (paths relative to the root, sorted). It lets ``check`` report a file gradproof
wrote earlier but would not write now (a layer removed from a spec, a spec no longer declared),
and lets ``build`` remove such files of the network it rebuilds. The text is a pure function of
the entries, so it is byte-identical wherever it is written. Files the manifest no longer lists
are found by their header: a file gradproof generated lies in a folder of the outputs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from gradproof.codegen.project import ProjectError, read_toml
from gradproof.codegen.writing import generated_from, with_header

FILENAME = "gradproof-manifest.toml"
HEADER = (
    "# Written by `gradproof build`: the files it wrote for each network. Commit it with them;\n"
    "# `gradproof check` reports any file listed here that it would no longer write.\n"
)


@dataclass(frozen=True)
class Entry:
    spec: str  # the spec's source: "<built-in NAME>" or its path relative to the project root
    files: tuple[str, ...]


def read(root: Path) -> dict[str, Entry]:
    """The manifest under ``root`` (empty when there is none); ``ProjectError`` if it is malformed."""
    path = root / FILENAME
    if not path.is_file():
        return {}
    data = read_toml(path)
    entries = {}
    for name, table in data.items():
        table = table if isinstance(table, dict) else {}
        spec, files = table.get("spec"), table.get("files")
        listed = isinstance(files, list) and all(isinstance(f, str) for f in files)
        if not isinstance(spec, str) or not listed:
            raise ProjectError(
                f'{path}: [{name}]: must have spec = "..." and files = ["...", ...]; '
                f"delete the file and run `gradproof build` to write it again"
            )
        entries[name] = Entry(spec, tuple(files))
    return entries


def render(entries: dict[str, Entry]) -> str:
    """The manifest's text: networks sorted by name, files sorted, one per line."""
    parts = [HEADER]
    for name in sorted(entries):
        entry = entries[name]
        files = "".join(f"    {json.dumps(f)},\n" for f in sorted(entry.files))
        parts.append(f"\n[{name}]\nspec = {json.dumps(entry.spec)}\nfiles = [\n{files}]\n")
    return with_header(FILENAME, "the networks of this project", "".join(parts))


def updated(root: Path, entries: dict[str, Entry], built: dict[str, Entry]) -> dict[str, Entry]:
    """The entries after a build of ``built``; an entry none of whose files exists any more is dropped."""
    kept = {name: e for name, e in entries.items() if any((root / f).is_file() for f in e.files)}
    return {**kept, **built}


@dataclass(frozen=True)
class Stale:
    network: str
    path: str  # relative to the project root
    spec: str | None  # the network's spec as the manifest records it, when it does


def stale(root: Path, built: dict[str, Entry], previous: dict[str, Entry], everything: bool) -> list[Stale]:
    """Files gradproof wrote earlier that a build of ``built`` would not write now.

    They are the files the manifest lists, and the files in a folder of the outputs whose header says
    gradproof generated them, of a network in ``built`` (or of any network, when ``everything``: the
    build covers all that the project declares).
    """
    expected = {f for entry in built.values() for f in entry.files} | {FILENAME}
    found: dict[str, Stale] = {}
    for name, entry in previous.items():
        if everything or name in built:
            for relative in entry.files:
                if relative not in expected and (root / relative).is_file():
                    found[relative] = Stale(name, relative, entry.spec)
    for folder in sorted({PurePosixPath(f).parent for f in expected}):
        if not (root / folder).is_dir():
            continue
        for path in sorted((root / folder).iterdir()):
            relative = (folder / path.name).as_posix()
            if relative in expected or relative in found or not path.is_file():
                continue
            name = generated_from(path)
            if name is not None and (everything or name in built):
                found[relative] = Stale(name, relative, previous[name].spec if name in previous else None)
    return sorted(found.values(), key=lambda s: s.path)
