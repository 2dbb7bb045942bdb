"""Where a long formula breaks: the widths a derivation is set for, width estimates, line breaking.

A ``Layout`` holds the widths of one rendering. ``PAGE`` is the standalone
document (11pt, 2.2cm margins: about 44 em of text); ``TEXT`` a narrower single
column (a 5.5 in or 6.5 in text at 10-12 pt, about 33-43 em); ``COLUMN`` one
column of a two-column paper (IEEEtran, acmart sigconf, revtex4-2 reprint:
241-252 pt at 9-10 pt, about 25 em). A snippet carries each distinct rendering
and lets TeX choose by ``\\linewidth`` measured in ``em`` of the current font
(``LAYOUTS``, narrowest first, each used below its ``below_em``), so one file
fits the page or the column it is put in.

``break_lines`` cuts a formula before a binary operator (or after a comma) at
the shallowest bracket depth that keeps each line within a width, so that a
line never ends inside ``{...}`` and, where possible, not deep inside nested
brackets. Widths are estimates in units of roughly one italic letter (about
1.5 units per em of line, less the left side and the equation number); the
limits below were calibrated by compiling the documents and the paper classes
and reading their logs for overfull boxes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Layout:
    """The widths one rendering of a derivation is set for, in the units of ``visible_width``."""

    name: str
    below_em: float | None  # used where the line is narrower than this many em (None: any wider line)
    line: float  # the right-hand side of an ``align`` row with a short left side and a number
    rhs: float  # the same for a row whose left side is a fraction such as dL/dW1
    flow: float  # the flow X -> Z1 -> ... in a centred line
    aside: float  # a rule and its shapes side by side, with the equation number (0: never)
    aside_unnumbered: float
    figure_cm: float  # the span of the architecture figure's chain of nodes
    node_spacing_cm: float  # the widest gap between two nodes of the figure
    node_min_cm: float  # the narrowest: a chain that would need less goes on in another row
    narrow_table: bool  # the variables table as a tabularx of the line's width
    breakable_math: bool  # statements in running text may break at their operators


PAGE = Layout(
    "page",
    below_em=None,
    line=64.0,
    rhs=58.0,
    flow=70.0,
    aside=62.0,
    aside_unnumbered=66.0,
    figure_cm=15.6,
    node_spacing_cm=2.4,
    node_min_cm=1.9,
    narrow_table=False,
    breakable_math=False,
)
TEXT = Layout(
    "text",
    below_em=43.0,
    line=44.0,
    rhs=40.0,
    flow=46.0,
    aside=42.0,
    aside_unnumbered=45.0,
    figure_cm=10.0,
    node_spacing_cm=2.2,
    node_min_cm=1.9,
    narrow_table=True,
    breakable_math=True,
)
COLUMN = Layout(
    "column",
    below_em=33.0,
    line=30.0,
    rhs=27.0,
    flow=30.0,
    aside=0.0,
    aside_unnumbered=0.0,
    figure_cm=6.6,
    node_spacing_cm=2.2,
    node_min_cm=2.2,
    narrow_table=True,
    breakable_math=True,
)
LAYOUTS = (COLUMN, TEXT, PAGE)  # narrowest first: a snippet takes the first whose below_em exceeds its line

_COMMAND = re.compile(r"\\([A-Za-z]+|.)")
_ZERO = {
    "left",
    "right",
    "bigl",
    "bigr",
    "Bigl",
    "Bigr",
    "biggl",
    "biggr",
    "!",
    "nonumber",
    "mathit",
    "mathbf",
    "mathrm",
    "textstyle",
    "displaystyle",
    "scriptstyle",
}
_WIDE = {
    "tighttimes": 1.1,
    "cdot": 2.0,
    "odot": 2.4,
    "times": 2.0,
    "quad": 2.5,
    "qquad": 5.0,
    "sum": 2.0,
    "log": 2.4,
}
_SPACES = {",": 0.3, ";": 0.5, ":": 0.4, " ": 0.4}
_TEXT_COMMANDS = {"operatorname", "text", "mathrm"}


def _group(latex: str, start: int) -> tuple[str, int]:
    """The braced group starting at ``latex[start] == '{'``, and the index after it."""
    depth = 0
    for i in range(start, len(latex)):
        depth += (latex[i] == "{") - (latex[i] == "}")
        if depth == 0:
            return latex[start + 1 : i], i + 1
    return latex[start + 1 :], len(latex)


def _argument(latex: str, i: int) -> tuple[str, int]:
    """One argument of a command or script: a braced group, a command, or one character."""
    while i < len(latex) and latex[i] == " ":
        i += 1
    if i >= len(latex):
        return "", i
    if latex[i] == "{":
        return _group(latex, i)
    match = _COMMAND.match(latex, i)
    if match:
        return match.group(0), match.end()
    return latex[i], i + 1


def breakable_math(text: str) -> str:
    """Text whose inline formulas ``${...}$`` (kept on one line) become ``$...$``, which TeX may break
    after a relation or a binary operator: in a column a whole statement rarely fits one line."""
    out, i = [], 0
    while True:
        start = text.find("${", i)
        if start < 0:
            return "".join(out) + text[i:]
        body, end = _group(text, start + 1)
        if text.startswith("$", end):
            out.append(text[i:start] + "$" + body + "$")
            i = end + 1
        else:
            out.append(text[i : start + 2])
            i = start + 2


def visible_width(latex: str) -> float:
    """A rough width of a formula as printed, in units of about one italic letter."""
    latex = latex.replace(r"{\times}", r"\tighttimes ")
    width, i = 0.0, 0
    while i < len(latex):
        ch = latex[i]
        if ch == "\\":
            match = _COMMAND.match(latex, i)
            name = match.group(1)
            i = match.end()
            if name == "frac" or name == "tfrac":
                top, i = _argument(latex, i)
                bottom, i = _argument(latex, i)
                width += (
                    max(visible_width(top), visible_width(bottom)) * (0.7 if name == "tfrac" else 1) + 0.4
                )
            elif name in _TEXT_COMMANDS:
                body, i = _argument(latex, i)
                width += 0.85 * len(body)
            elif name == "underbrace":
                body, i = _argument(latex, i)
                below = ""
                if latex.startswith("_", i):
                    below, i = _argument(latex, i + 1)
                width += max(visible_width(body), 0.7 * visible_width(below))
            elif name in _ZERO:
                continue
            elif name in _SPACES:
                width += _SPACES[name]
            else:
                width += _WIDE.get(name, 1.0)
        elif ch in "_^":
            body, i = _argument(latex, i + 1)
            width += 0.7 * visible_width(body)
        elif ch in "{} ":
            i += 1
        elif ch in "+-=<>":
            width += 2.0
            i += 1
        elif ch in "(),[].":
            width += 0.5
            i += 1
        else:
            width += 1.0
            i += 1
    return width


SEPARATORS = (r" \odot ", r" \cdot ", r",\, ", " + ", " - ", " = ", r" \rightarrow ")
_OPEN = (r"\bigl(", r"\Bigl(", r"\biggl(", "(", "[")
_CLOSE = (r"\bigr)", r"\Bigr)", r"\biggr)", ")", "]")


def _break_points(latex: str) -> list[tuple[int, int]]:
    """``(position, bracket depth)`` of every place a line may end, outside braces and sized brackets."""
    points, braces, brackets, sized, i = [], 0, 0, 0, 0
    while i < len(latex):
        if latex.startswith(r"\left", i):
            sized += 1
            i += 5
            continue
        if latex.startswith(r"\right", i):
            sized -= 1
            i += 6
            continue
        ch = latex[i]
        if ch == "{":
            braces += 1
        elif ch == "}":
            braces -= 1
        elif braces == 0 and sized == 0:
            opened = next((o for o in _OPEN if latex.startswith(o, i)), None)
            closed = next((c for c in _CLOSE if latex.startswith(c, i)), None)
            if opened:
                brackets += 1
                i += len(opened)
                continue
            if closed:
                brackets -= 1
                i += len(closed)
                continue
            for sep in SEPARATORS:
                if latex.startswith(sep, i) and i > 0:
                    cut = i + len(sep) - 1 if sep.startswith(",") else i
                    points.append((cut, brackets))
                    break
        i += 1
    return points


def break_lines(latex: str, limit: float = PAGE.rhs, first_limit: float | None = None) -> list[str]:
    """``latex`` cut into lines of at most ``limit`` units (the first ``first_limit``), shallow cuts first.

    A continuation line starts with the operator it was cut before. When no
    cut keeps a line short enough, the line is cut at the first possible place.
    """
    points = _break_points(latex)
    lines, start = [], 0
    width = first_limit if first_limit is not None else limit
    while visible_width(latex[start:]) > width:
        fitting = [
            (pos, depth) for pos, depth in points if pos > start and visible_width(latex[start:pos]) <= width
        ]
        if not fitting:
            later = [pos for pos, _ in points if pos > start]
            if not later:
                break
            cut = later[0]
        else:
            full = [p for p in fitting if visible_width(latex[start : p[0]]) >= 0.55 * width] or fitting
            shallowest = min(depth for _, depth in full)
            cut = max(pos for pos, depth in full if depth == shallowest)
        lines.append(latex[start:cut].rstrip())
        start = cut
        while latex.startswith(" ", start):
            start += 1
        width = limit
    lines.append(latex[start:])
    return lines


def pack(pieces: list[str], limit: float, joiner: str = " ") -> list[str]:
    """``pieces`` joined by ``joiner``, greedily: a new line where the next would pass ``limit``."""
    lines, current = [], ""
    for piece in pieces:
        if current and visible_width(current + piece) > limit:
            lines.append(current)
            current = ""
        current = f"{current}{joiner}{piece}" if current else piece
    lines.append(current)
    return lines


def _chunks(terms: list[str], size: int) -> list[list[str]]:
    return [terms[i : i + size] for i in range(0, len(terms), size)]


def wrap_terms(terms: list[str], limit: float, joiner: str = " + ", group: int | None = None) -> list[str]:
    """Terms joined by ``joiner``, in as few balanced lines as fit ``limit``; later lines start with it.

    With ``group``, lines hold ``group`` terms each when those lines fit (one
    row of a sliding window per line, say).
    """

    def fits(lines: list[list[str]]) -> bool:
        return all(visible_width(joiner.join(line)) <= limit for line in lines)

    greedy: list[list[str]] = [[]]
    for term in terms:
        if greedy[-1] and visible_width(joiner.join([*greedy[-1], term])) > limit:
            greedy.append([])
        greedy[-1].append(term)
    lines = greedy
    balanced = _chunks(terms, -(-len(terms) // len(greedy)))
    if len(balanced) == len(greedy) and fits(balanced):
        lines = balanced
    if group and fits(_chunks(terms, group)):
        lines = _chunks(terms, group)
    return [
        joiner.join(line) if n == 0 else joiner.strip() + " " + joiner.join(line)
        for n, line in enumerate(lines)
    ]
