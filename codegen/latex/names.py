"""The LaTeX name of every tensor: canonical names (``X``, ``Z1``, ``dW1``) to math mode.

A spec's ``[notation]`` table renames tensors (``W1 = "f"``); this module is
the only place that turns a canonical name into LaTeX, so a renaming reaches
every equation, table and figure. Notation values were validated by
``derive.spec``, but they are checked again here, at the LaTeX boundary: only
letters, digits, ``_`` and braces may reach the output, so no spec can inject a
LaTeX command.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from gradproof.derive.network import LOSS_NAME

# What may reach LaTeX from a spec: a short letter stem with an optional simple subscript.
SAFE_NOTATION = re.compile(r"([A-Za-z]{1,3})(?:_\{?([A-Za-z0-9]{1,4})\}?)?")
# The letter of the sample index (``\sum_{b}``, ``Y^{(b)}``), in order of preference: the first one that
# no notation symbol uses, so that a bias called ``b`` is never summed over ``b``.
SAMPLE_INDEX = ("b", "s", "r")
# Canonical names from derive.network: a stem, a layer number, an optional de-duplication suffix.
CANONICAL = re.compile(r"([A-Za-z]+?)(\d*)(?:_(\d+))?")


class NotationError(ValueError):
    """A notation value that is not a plain symbol (it could carry LaTeX commands)."""


def _symbol(stem: str, subscript: str) -> str:
    """``W`` and ``1`` -> ``W_{1}``; a stem of several letters is set upright as one word."""
    base = stem if len(stem) == 1 else rf"\mathit{{{stem}}}"
    return f"{base}_{{{subscript}}}" if subscript else base


def notation_symbol(value: str) -> str:
    """A validated notation value as LaTeX, e.g. ``W_h`` -> ``W_{h}``; raise ``NotationError``."""
    match = SAFE_NOTATION.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise NotationError(f"notation {value!r} is not a letter or short word with a plain subscript")
    stem, subscript = match.group(1), match.group(2) or ""
    return _symbol(stem, subscript)


def default_symbol(name: str) -> str:
    """``Z1`` -> ``Z_{1}``, ``Z1_2`` -> ``Z_{1,2}``, ``F`` -> ``F``."""
    match = CANONICAL.fullmatch(name)
    if match is None:  # pragma: no cover - derive.network only makes matching names
        raise NotationError(f"unexpected tensor name {name!r}")
    stem, number, duplicate = match.groups()
    subscript = ",".join(part for part in (number, duplicate) if part)
    return _symbol(stem, subscript)


def is_gradient(name: str) -> bool:
    return name.startswith("d") and len(name) > 1 and name[1].isupper()


class Names:
    """LaTeX names for one network, with its notation applied."""

    def __init__(self, notation: Mapping[str, str]):
        self._symbols = {key: notation_symbol(value) for key, value in sorted(notation.items())}

    @property
    def sample(self) -> str:
        """The index of a sample in a batch: ``b``, or another letter when the notation uses ``b``."""
        stems = {value.split("_", 1)[0] for value in self._symbols.values()}
        return next((letter for letter in SAMPLE_INDEX if letter not in stems), SAMPLE_INDEX[-1])

    def symbol(self, name: str) -> str:
        """The LaTeX symbol of a forward tensor, an input or a parameter."""
        return self._symbols.get(name) or default_symbol(name)

    @property
    def loss(self) -> str:
        return self.symbol(LOSS_NAME)

    def tensor(self, name: str) -> str:
        """Display form: gradients as ``\\frac{\\partial L}{\\partial Z_{1}}``."""
        if is_gradient(name):
            return rf"\frac{{\partial {self.loss}}}{{\partial {self.symbol(name[1:])}}}"
        return self.symbol(name)

    def inline(self, name: str) -> str:
        """Text-style form: gradients as ``\\partial L/\\partial Z_{1}``."""
        if is_gradient(name):
            return rf"\partial {self.loss}/\partial {self.symbol(name[1:])}"
        return self.symbol(name)

    def entry(self, name: str, index: tuple[int | str, ...]) -> str:
        """One entry: ``X_{2,3}``, ``(W_{1})_{0,1}``, ``\\delta^{Z_{1}}_{0,1}`` for a gradient."""
        subscript = ",".join(str(i) for i in index)
        if is_gradient(name):
            head = rf"\delta^{{{self.symbol(name[1:])}}}"
            return f"{head}_{{{subscript}}}" if subscript else head
        symbol = self.symbol(name)
        if not subscript:
            return symbol
        if "_" in symbol:
            return f"({symbol})_{{{subscript}}}"
        return f"{symbol}_{{{subscript}}}"

    def error(self, name: str) -> str:
        """The error of a pre-activation, ``E_{o}`` for ``Z_{o}``: the source's ``Eo``.

        When a tensor of the network is itself called ``E`` (a loss named ``E``, as
        in the sigmoid CNN's source), errors are written ``\\delta_{o}`` instead.
        """
        symbol = self.symbol(name)
        subscript = symbol.split("_", 1)[1] if "_" in symbol else f"{{{symbol}}}"
        return f"{self.error_stem}_{subscript}"

    @property
    def error_stem(self) -> str:
        taken = {value.split("_", 1)[0] for value in self._symbols.values()}
        return r"\delta" if "E" in taken else "E"
