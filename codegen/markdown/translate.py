"""The LaTeX a derivation document is made of, read as Markdown with ``$...$`` and ``$$...$$`` math.

The standalone document (``codegen.latex``) is the one source of the derivation's words; this module
reads the small subset of LaTeX its templates emit and writes the same text as Markdown that KaTeX
and MathJax render: displays become ``$$\\begin{aligned}...\\end{aligned}$$`` (labels and page-break
hints dropped), lists become Markdown lists, ``\\section`` a heading with an anchor that
``Section~\\ref`` links to. The figure and the tables are replaced by Markdown-native forms made from
the same data (a Mermaid diagram; pipe tables, in the order the tables appear). Anything outside the
subset is refused with a ``MarkdownError`` naming it, so a new construct in a template cannot
reach a post as raw LaTeX.
"""

from __future__ import annotations

import re


class MarkdownError(ValueError):
    """A construct of the LaTeX document that the Markdown reading does not know."""


_DISPLAY = re.compile(r"^\\begin\{(align|alignat)(\*?)\}(\{\d+\})?$")
_SECTION = re.compile(r"^\\section\{(.*)\}\\label\{([^}]*)\}$")
_DROPPED_LINES = {
    r"\centering",
    r"\begingroup",
    r"\par\endgroup",
    r"\begingroup\setlength{\emergencystretch}{3em}",
    r"\begingroup\raggedright",
    r"\maketitle",
    r"\setlength{\itemsep}{1pt}",
}
# text-mode commands with one argument: how each reads in Markdown
_WRAPPERS = {"emph": ("*", "*"), "textbf": ("**", "**"), "paragraph": ("**", "**")}
_LITERALS = {
    "textbackslash": "\\",
    "_": "\\_",
    "%": "%",
    "&": "&",
    "#": "\\#",
    "$": "\\$",
    "{": "{",
    "}": "}",
    "^": "^",
    "~": "~",
    "quad": " ",
    "noindent": "",
    "small": "",
    " ": " ",
}


def _slug(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "-", label)


def _group(text: str, start: int) -> tuple[str, int]:
    """The braced group at ``text[start] == '{'`` and the index after it."""
    depth = 0
    for i in range(start, len(text)):
        depth += (text[i] == "{") - (text[i] == "}")
        if depth == 0:
            return text[start + 1 : i], i + 1
    raise MarkdownError(f"unbalanced braces in {text[start:][:60]!r}")


def _math_end(text: str, start: int) -> int:
    """The index of the ``$`` closing the inline formula opened at ``text[start]``."""
    i, depth = start + 1, 0
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        depth += (ch == "{") - (ch == "}")
        if ch == "$" and depth == 0:
            return i
        i += 1
    raise MarkdownError(f"unclosed inline math in {text[start:][:60]!r}")


class Translator:
    """Reads one document; ``sections`` maps a section label to its number and heading anchor."""

    def __init__(self, sections: dict[str, int], figures: dict[str, str]):
        self.sections = sections
        self.figures = figures  # label -> how the text names that figure

    # ----------------------------------------------------------- text mode

    def text(self, line: str) -> str:
        """One line of running text: inline math kept, text-mode commands read as Markdown."""
        out, i = [], 0
        while i < len(line):
            ch = line[i]
            if ch == "$":
                end = _math_end(line, i)
                out.append(self.inline_math(line[i + 1 : end]))
                i = end + 1
            elif ch == "\\":
                piece, i = self.command(line, i)
                out.append(piece)
            elif ch == "~":
                out.append(" ")
                i += 1
            elif ch in "{}":
                i += 1  # a group in text mode only scopes a font switch such as {\small ...}
            elif ch in "*_`<>|":
                out.append("\\" + ch)  # Markdown would read these
                i += 1
            else:
                out.append(ch)
                i += 1
        return "".join(out)

    def inline_math(self, formula: str) -> str:
        formula = formula.strip()
        if formula.startswith("{") and _group(formula, 0)[1] == len(formula):
            formula = formula[1:-1]  # the braces that keep a formula on one line in TeX
        return f"${formula}$"

    def command(self, line: str, i: int) -> tuple[str, int]:
        match = re.compile(r"\\([A-Za-z]+|.)").match(line, i)
        name, i = match.group(1), match.end()
        if name == "\\":  # a line break in running text
            while i < len(line) and line[i] in " *":
                i += 1
            return "  \n", i
        if name in _LITERALS:
            if name.isalpha() and line.startswith("{}", i):
                i += 2
            return _LITERALS[name], i
        if name in ("texttt", "verb"):
            if name == "verb":
                delimiter = line[i]
                end = line.index(delimiter, i + 1)
                return f"`{line[i + 1 : end]}`", end + 1
            body, i = _group(line, i)
            plain = re.sub(r"\\(.)", r"\1", body.replace(r"\textbackslash{}", "\\"))
            return f"`{plain}`", i
        if name in _WRAPPERS:
            body, i = _group(line, i)
            left, right = _WRAPPERS[name]
            return f"{left}{self.text(body).strip()}{right}", i
        if name == "ref":
            label, i = _group(line, i)
            if label in self.sections:
                return f"[{self.sections[label]}](#{_slug(label)})", i
            if label in self.figures:
                return self.figures[label], i
            raise MarkdownError(f"a reference to {label!r}, which is neither a section nor the figure")
        if name == "label":
            _, i = _group(line, i)
            return "", i
        raise MarkdownError(f"the LaTeX command \\{name} has no Markdown reading (in {line[:80]!r})")

    # ------------------------------------------------------------ displays

    @staticmethod
    def display(environment: str, columns: str, rows: list[str]) -> str:
        """An ``align`` or ``alignat`` environment as one ``$$`` block of ``aligned`` rows."""
        body = []
        for row in rows:
            row = re.sub(r"\\label\{[^}]*\}|\\nonumber|\\displaybreak\[\d\]", "", row)
            row = row.replace(r"\\*", r"\\").rstrip()
            body.append(row.strip())
        inner = "alignedat" if environment == "alignat" else "aligned"
        return f"$$\n\\begin{{{inner}}}{columns}\n" + "\n".join(body) + f"\n\\end{{{inner}}}\n$$"

    # ------------------------------------------------------------ document

    def document(self, body: str, figure: str, tables: list[str]) -> str:
        """The text between ``\\maketitle`` and ``\\end{document}``, as Markdown."""
        lines = body.splitlines()
        out: list[str] = []
        i = 0
        while i < len(lines):
            line = lines[i].strip()
            i += 1
            if not line:
                out.append("")
            elif line in _DROPPED_LINES:
                continue
            elif match := _DISPLAY.match(line):
                rows = []
                while not lines[i].strip().startswith(r"\end{"):
                    rows.append(lines[i])
                    i += 1
                i += 1
                out += ["", self.display(match.group(1), match.group(3) or "", rows), ""]
            elif line.startswith(r"\[") and line.endswith(r"\]"):
                out += ["", f"$$\n{line[2:-2].strip()}\n$$", ""]
            elif match := _SECTION.match(line):
                label = match.group(2)
                number = self.sections[label]
                out += [
                    "",
                    f'<a id="{_slug(label)}"></a>',
                    "",
                    f"## {number}. {self.text(match.group(1))}",
                    "",
                ]
            elif line == r"\begin{center}":
                inner = []
                while lines[i].strip() != r"\end{center}":
                    inner.append(lines[i].strip())
                    i += 1
                i += 1
                out += ["", self.centred(inner, tables), ""]
            elif line.startswith(r"\begin{figure}"):
                caption = []
                while not lines[i].strip().startswith(r"\end{figure}"):
                    text = lines[i].strip()
                    if text.startswith(r"\caption{"):
                        caption.append(text[len(r"\caption{") :])
                        while not caption[-1].endswith("}"):
                            caption.append(lines[i + 1].strip())
                            i += 1
                    i += 1
                i += 1
                words = self.text(" ".join(caption)[:-1])
                out += ["", figure, "", f"*Figure 1. {words.strip()}*", ""]
            elif line == r"\begin{itemize}":
                depth_lines = []
                while lines[i].strip() != r"\end{itemize}":
                    depth_lines.append(lines[i].strip())
                    i += 1
                i += 1
                out += ["", self.items(depth_lines), ""]
            elif line.startswith(r"\begin") or line.startswith(r"\end"):
                raise MarkdownError(f"the environment in {line!r} has no Markdown reading")
            else:
                out.append(self.text(line).lstrip())
        return _tidy("\n".join(out))

    def centred(self, inner: list[str], tables: list[str]) -> str:
        """A centred block: the next of the tables, or the flow of the network as one display."""
        if inner and inner[0].startswith(r"\begin{tabular"):
            if not tables:
                raise MarkdownError("a table the Markdown reading was given no pipe table for")
            return tables.pop(0)
        formulas = []
        for line in inner:
            line = re.sub(r"\s*\\\\\[\d+pt\]$", "", line)
            if not (line.startswith("$") and line.endswith("$")):
                raise MarkdownError(f"a centred line that is not a formula: {line!r}")
            formulas.append(line[1:-1])
        return (
            "$$\n" + r" \\ ".join(formulas) + "\n$$"
            if len(formulas) == 1
            else ("$$\n\\begin{gathered}\n" + " \\\\\n".join(formulas) + "\n\\end{gathered}\n$$")
        )

    def items(self, lines: list[str]) -> str:
        """``\\item`` lines (an item may continue on the lines after it) as a Markdown list."""
        items: list[str] = []
        for line in lines:
            if line in _DROPPED_LINES:
                continue
            if line.startswith(r"\item[]"):
                items.append(line[len(r"\item[]") :].strip())
            elif line.startswith(r"\item"):
                items.append(line[len(r"\item") :].strip())
            elif items:
                items[-1] += "\n" + line
            else:
                raise MarkdownError(f"text before the first item of a list: {line!r}")
        out = []
        for item in items:
            text = "\n".join(self.text(part) for part in item.split("\n"))
            out.append("- " + text.replace("\n", "\n  "))
        return "\n".join(out)


def _tidy(text: str) -> str:
    """At most one blank line in a row, no trailing spaces but a Markdown line break's, one final newline."""
    lines: list[str] = []
    for line in text.splitlines():
        line = line if line.endswith("  ") and line.strip() else line.rstrip()
        if line or (lines and lines[-1]):
            lines.append(line)
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines) + "\n"


def sections_of(body: str) -> dict[str, int]:
    """Each ``\\section``'s label and its number, in document order."""
    return {m.group(2): n for n, m in enumerate(re.finditer(_SECTION.pattern, body, re.MULTILINE), start=1)}
