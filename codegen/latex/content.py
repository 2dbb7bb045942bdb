"""What the templates place: rows of displayed equations, results (blocks), and escaped text.

A ``Block`` is one result of a derivation: the document shows it in its
section and the snippet ``docs/derivations/<name>/<key>.tex`` holds it alone.
Everything in a block is already LaTeX; the templates do no computing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass
class Row:
    """One line of a display: ``left & right``, numbered when it has a label.

    ``aside`` is a second column beside the equation (the shapes of a rule's
    factors); a display with any aside is set as ``alignat`` with two columns.
    ``glue`` keeps the row on the page of the row before it, as a row with an
    empty ``left`` (a continuation) always is.
    """

    left: str
    right: str
    label: str | None = None
    aside: str = ""
    glue: bool = False


@dataclass
class Block:
    """One result: displays (each one ``align``), optional notes, and data for its template macro."""

    key: str
    title: str
    displays: list[list[Row]]
    intro: str = ""
    notes: list[str] = field(default_factory=list)
    kind: str = "equations"
    data: dict = field(default_factory=dict)


_TEXT_REPLACEMENTS = {
    "\\": r"\textbackslash{}",
    "{": r"\{",
    "}": r"\}",
    "_": r"\_",
    "^": r"\^{}",
    "%": r"\%",
    "&": r"\&",
    "#": r"\#",
    "$": r"\$",
    "~": r"\~{}",
    "⊙": r"$\odot$",
    "·": r"$\cdot$",
    "<": "$<$",
    ">": "$>$",
}


def text_escape(value: str) -> str:
    """Plain text (proof statements, methods, names) made safe for LaTeX text mode.

    Every character that means something to TeX is replaced by its printed
    form, and anything outside ASCII that has no replacement becomes ``?``, so
    no input can reach TeX as a command.
    """
    out = "".join(_TEXT_REPLACEMENTS.get(ch, ch) for ch in value)
    return out.encode("ascii", "replace").decode("ascii")


def prose_escape(text: str) -> str:
    """Prose with ``$...$`` formulas: the prose made safe for text mode, the formulas kept as they are
    (the spec reader admits only formulas of letters, operators and a list of harmless commands)."""
    pieces = text.split("$")
    return "".join(text_escape(p) if i % 2 == 0 else f"${p}$" for i, p in enumerate(pieces))


def wrap_prose(text: str, width: int = 115) -> list[str]:
    """Lines of at most ``width`` characters, broken at spaces outside formulas (a formula stays on one
    line, as the Markdown reading needs)."""
    words, current, in_math = [], "", False
    for ch in text:
        if ch == "$":
            in_math = not in_math
        if ch == " " and not in_math:
            words.append(current)
            current = ""
        else:
            current += ch
    words.append(current)
    lines: list[str] = []
    for word in filter(None, words):
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines


def about_paragraphs(text: str) -> list[str]:
    """A spec's ``[about]`` text as LaTeX paragraphs; one that opens with ``**Heading.**`` is headed so."""
    paragraphs = []
    for paragraph in re.split(r"\n\s*\n", text.strip()):
        flat = " ".join(paragraph.split())
        head = re.match(r"\*\*(.+?)\*\*\s*", flat)
        heading = [rf"\paragraph{{{prose_escape(head.group(1))}}}"] if head else []
        body = prose_escape(flat[head.end() :] if head else flat)
        paragraphs.append("\n".join(heading + wrap_prose(body)))
    return [p for p in paragraphs if p]
