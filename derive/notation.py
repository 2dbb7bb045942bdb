"""Notation symbols: a small, safe subset of LaTeX math, parsed for real.

A ``[notation]`` value such as ``\\hat{y}``, ``\\theta``, ``\\mathbf{W}_{h}`` or
``a^{(2)}`` is read by a recursive-descent parser into a tree of frozen nodes,
and the LaTeX that reaches a document is printed back from that tree, never
copied from the spec: only the commands listed below can come out. Because the
trees compare by structure, a clash between two symbols is decided on what they
are (``\\hat{y}`` is not ``y``; ``W_1`` is ``W_{1}``), not on how they are spelt.

Grammar (whitespace between tokens is ignored)::

    symbol  := primary scripts
    primary := letters | greek | accent arg | font arg | "{" primary scripts "}"
    scripts := ("_" script)? ("^" script)?  (either order, each at most once)
    script  := letter | digit | greek | "{" item+ "}"
    item    := symbol | digits | "," | "(" | ")" | "+" | "-" | "'"
    arg     := letter | greek | "{" symbol "}"

A run of several Latin letters is one word, printed upright-italic as
``\\mathit{word}``; ``\\mathcal`` takes one capital letter.
"""

from __future__ import annotations

from dataclasses import dataclass

GREEK = frozenset(
    "alpha beta gamma delta epsilon varepsilon zeta eta theta vartheta iota kappa lambda mu nu xi pi "
    "varpi rho varrho sigma varsigma tau upsilon phi varphi chi psi omega "
    "Gamma Delta Theta Lambda Xi Pi Sigma Upsilon Phi Psi Omega ell".split()
)  # and \ell, a letter too (the document's own loss of one sample)
ACCENTS = frozenset({"hat", "tilde", "bar"})
FONTS = frozenset({"mathbf", "boldsymbol", "mathcal"})
SCRIPT_MARKS = frozenset(",()+-'")
MAX_LENGTH = 48
MAX_DEPTH = 4
ALLOWED = (
    "Latin and Greek letters (\\alpha ... \\Omega), \\hat, \\tilde, \\bar, \\mathbf, \\boldsymbol, "
    "\\mathcal, and sub- and superscripts of letters, digits and , ( ) + - '"
)


class NotationError(ValueError):
    """A notation value outside the safe subset; ``str()`` says what and where."""


@dataclass(frozen=True)
class Letter:
    """One Latin letter (``y``) or a Greek letter by its command name (``theta``)."""

    name: str

    def latex(self) -> str:
        return f"\\{self.name}" if len(self.name) > 1 else self.name


@dataclass(frozen=True)
class Word:
    """Several Latin letters read as one name, such as ``Wh``."""

    text: str

    def latex(self) -> str:
        return f"\\mathit{{{self.text}}}"


@dataclass(frozen=True)
class Mark:
    """A digit run or a punctuation mark inside a script."""

    text: str

    def latex(self) -> str:
        return self.text


@dataclass(frozen=True)
class Command:
    """An accent or a font applied to a symbol: ``\\hat{y}``, ``\\mathbf{W}``."""

    name: str
    body: Symbol

    def latex(self) -> str:
        body = self.body
        if isinstance(body.base, Word) and not body.scripted:  # \mathbf{Wh}, not \mathbf{\mathit{Wh}}
            return f"\\{self.name}{{{body.base.text}}}"
        return f"\\{self.name}{{{body.latex()}}}"


@dataclass(frozen=True)
class Symbol:
    """A primary with optional sub- and superscript (each a tuple of items)."""

    base: Letter | Word | Command | Symbol
    sub: tuple = ()
    sup: tuple = ()

    def latex(self) -> str:
        text = self.base.latex()
        if isinstance(self.base, Symbol) and (self.base.sub or self.base.sup):
            text = f"{{{text}}}"
        if self.sub:
            text += "_{" + _join(self.sub) + "}"
        if self.sup:
            text += "^{" + _join(self.sup) + "}"
        return text

    @property
    def scripted(self) -> bool:
        return bool(self.sub or self.sup)

    @property
    def head(self) -> Letter | Word | Command | Symbol:
        """The symbol without its scripts (``W`` for ``W_{h}``)."""
        return self.base


def _join(items: tuple) -> str:
    out = ""
    for item in items:
        text = item.latex()
        # a letter command followed by a letter would merge into one command name (\theta x)
        if out.endswith(tuple(f"\\{g}" for g in GREEK)) and text[:1].isalpha():
            out += " "
        out += text
    return out


class _Parser:
    def __init__(self, text: str):
        self.text, self.pos = text, 0

    def fail(self, message: str) -> NotationError:
        return NotationError(f"{message} at position {self.pos} of {self.text!r}; allowed: {ALLOWED}")

    def peek(self) -> str:
        self.skip_spaces()
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip_spaces(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] == " ":
            self.pos += 1

    def at_letter(self) -> bool:
        return self.pos < len(self.text) and self.text[self.pos].isascii() and self.text[self.pos].isalpha()

    def expect(self, char: str) -> None:
        if self.peek() != char:
            raise self.fail(f"expected {char!r}")
        self.pos += 1

    def command(self) -> str:
        """The name after a backslash (letters only)."""
        start = self.pos
        self.pos += 1
        while self.at_letter():
            self.pos += 1
        name = self.text[start + 1 : self.pos]
        if not name:
            self.pos = start
            raise self.fail("a backslash must start a command name")
        if name not in GREEK | ACCENTS | FONTS:
            self.pos = start
            raise self.fail(f"command \\{name} is not in the safe subset")
        return name

    def symbol(self, depth: int) -> Symbol:
        if depth > MAX_DEPTH:
            raise self.fail("nested too deeply")
        base = self.primary(depth)
        sub: tuple = ()
        sup: tuple = ()
        while self.peek() in ("_", "^"):
            mark = self.text[self.pos]
            if sub if mark == "_" else sup:
                raise self.fail(f"a second {'subscript' if mark == '_' else 'superscript'}")
            self.pos += 1
            items = self.script(depth)
            if mark == "_":
                sub = items
            else:
                sup = items
        return Symbol(base, sub, sup)

    def primary(self, depth: int):
        char = self.peek()
        if char.isascii() and char.isalpha():
            start = self.pos
            while self.at_letter():
                self.pos += 1
            run = self.text[start : self.pos]
            return Letter(run) if len(run) == 1 else Word(run)
        if char == "\\":
            name = self.command()
            if name in GREEK:
                return Letter(name)
            body = self.argument(depth)
            if name == "mathcal" and not (
                isinstance(body.base, Letter) and body.base.name.isupper() and not body.scripted
            ):
                raise self.fail("\\mathcal takes one capital Latin letter")
            return Command(name, body)
        if char == "{":
            self.pos += 1
            inner = self.symbol(depth + 1)
            self.expect("}")
            return inner if inner.scripted else inner.base  # {y} is y
        raise self.fail("expected a letter, a Greek letter, an accent or a font" if char else "ended early")

    def argument(self, depth: int) -> Symbol:
        """The argument of an accent or font: one letter, a Greek letter, or a braced symbol."""
        char = self.peek()
        if char == "{":
            self.pos += 1
            inner = self.symbol(depth + 1)
            self.expect("}")
            return inner
        if char.isascii() and char.isalpha():
            self.pos += 1
            return Symbol(Letter(char))
        if char == "\\":
            name = self.command()
            if name in GREEK:
                return Symbol(Letter(name))
        raise self.fail("an accent or font needs an argument")

    def script(self, depth: int) -> tuple:
        char = self.peek()
        if char == "{":
            self.pos += 1
            items = []
            while self.peek() not in ("}", ""):
                items.append(self.item(depth + 1))
            self.expect("}")
            if not items:
                raise self.fail("an empty script")
            return tuple(items)
        if char.isascii() and char.isalnum():
            self.pos += 1
            return (Mark(char) if char.isdigit() else Symbol(Letter(char)),)
        if char == "\\":
            name = self.command()
            if name in GREEK:
                return (Symbol(Letter(name)),)
        raise self.fail("a script must be a letter, a digit or a braced group")

    def item(self, depth: int):
        char = self.peek()
        if char.isascii() and char.isdigit():
            start = self.pos
            while self.pos < len(self.text) and self.text[self.pos].isdigit():
                self.pos += 1
            return Mark(self.text[start : self.pos])
        if char in SCRIPT_MARKS:
            self.pos += 1
            return Mark(char)
        return self.symbol(depth)


def parse(text: object) -> Symbol:
    """``text`` as a symbol tree; raise ``NotationError`` naming the problem and its position."""
    if not isinstance(text, str):
        raise NotationError(f"must be a string holding a LaTeX symbol, got {text!r}; allowed: {ALLOWED}")
    if not text.strip():
        raise NotationError(f"must not be empty; allowed: {ALLOWED}")
    if len(text) > MAX_LENGTH:
        raise NotationError(f"longer than {MAX_LENGTH} characters: {text!r}")
    parser = _Parser(text)
    symbol = parser.symbol(0)
    if parser.peek():
        raise parser.fail("one symbol only; unexpected text")
    return symbol


def latex(text: str) -> str:
    """The validated LaTeX of a notation value, printed from its tree."""
    return parse(text).latex()


def canonical(name: str) -> Symbol:
    """The symbol a tensor gets without notation: ``Z1`` is ``Z_{1}``, ``Z1_2`` is ``Z_{1,2}``."""
    stem = name.rstrip("0123456789_")
    rest = name[len(stem) :]
    parts = [p for p in rest.split("_") if p]
    base = Letter(stem) if len(stem) == 1 else Word(stem)
    sub: list = []
    for n, part in enumerate(parts):
        if n:
            sub.append(Mark(","))
        sub.append(Mark(part))
    return Symbol(base, tuple(sub))


# Symbols the document itself uses with a fixed meaning: a tensor may not be called by any of them.
# Letters in the operator definitions (X, K, G, A, B, Z, d) and in the verification prose (theta,
# c, G) are bound placeholders of one formula, like a function's parameter, and are not reserved.
RESERVED: dict[str, str] = {
    "N": "the batch size",
    **{letter: "an index of the derivation" for letter in "ijkmnucopqhwrs"},
    "e": "Euler's number in the sigmoid",
    "R": "the ReLU derivative R'",
    r"\sigma": "the sigmoid",
    r"\delta": "the entries of a gradient",
    r"\ell": "the loss of one sample",
    r"\varepsilon": "the step of the end-to-end proofs",
    **{
        word: "an operator name"
        for word in (
            "corr conv route reshape maxpool ReLU BCE pool dense flatten max log exp full shapes".split()
        )
    },
}
_RESERVED_TREES = {parse(text): (text, meaning) for text, meaning in RESERVED.items()}


def reserved_clash(symbol: Symbol) -> str | None:
    """Why ``symbol`` is one of the document's own symbols, or ``None``."""
    hit = _RESERVED_TREES.get(symbol)
    if hit is None:
        return None
    text, meaning = hit
    return f"${text}$ is {meaning} in the derivation"


def check(notation: dict, tensors: set[str]) -> None:
    """Validate a whole ``[notation]`` table against the network's tensor names.

    Raise ``NotationError`` with ``.field`` set to the key at fault: an unknown
    tensor, a value outside the subset, one of the document's reserved symbols,
    or the symbol of another tensor.
    """
    symbols: dict[str, Symbol] = {}
    for key, value in notation.items():
        if key not in tensors:
            raise _at(key, f"unknown tensor (known: {', '.join(sorted(tensors))})")
        try:
            symbols[key] = parse(value)
        except NotationError as error:
            raise _at(key, str(error)) from None
        clash = reserved_clash(symbols[key])
        if clash:
            raise _at(key, f"{value!r} would clash: {clash}")
    owners: dict[Symbol, str] = {}
    for name in sorted(tensors, key=lambda n: (n not in notation, n)):
        symbol = symbols.get(name) or canonical(name)
        other = owners.setdefault(symbol, name)
        if other != name:
            renamed = name if name in notation else other
            clash = other if renamed == name else name
            raise _at(renamed, f"{notation[renamed]!r} would print {renamed} and {clash} as the same symbol")


def _at(key: str, message: str) -> NotationError:
    error = NotationError(message)
    error.field = f"notation.{key}"
    return error
