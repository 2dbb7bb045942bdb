"""The LaTeX name of every tensor: canonical names (``X``, ``Z1``, ``dW1``) to math mode.

A spec's ``[notation]`` table renames tensors (``W1 = "\\hat{y}"``); this module is
the only place that turns a canonical name into LaTeX, so a renaming reaches
every equation, table and figure. Notation values are parsed by
``derive.notation`` (here again, at the LaTeX boundary, not trusting the spec
reader) and printed back from their parse tree, so only the commands of its
safe subset can reach the output.
"""

from __future__ import annotations

from collections.abc import Mapping

from gradproof.derive import notation as syntax
from gradproof.derive.network import LOSS_NAME
from gradproof.derive.notation import NotationError, Symbol

__all__ = ["NotationError", "Names", "notation_symbol", "default_symbol"]

# The letter of the sample index (``\sum_{b}``, ``Y^{(b)}``), in order of preference: the first one that
# no notation symbol uses, so that a bias called ``b`` is never summed over ``b`` (``s`` is reserved).
SAMPLE_INDEX = ("b", "s")


def notation_symbol(value: str) -> str:
    """A notation value as LaTeX, printed from its parse (``W_h`` -> ``W_{h}``), or ``NotationError``."""
    return syntax.latex(value)


def default_symbol(name: str) -> str:
    """``Z1`` -> ``Z_{1}``, ``Z1_2`` -> ``Z_{1,2}``, ``F`` -> ``F``."""
    return syntax.canonical(name).latex()


def is_gradient(name: str) -> bool:
    return name.startswith("d") and len(name) > 1 and name[1].isupper()


class Names:
    """LaTeX names for one network, with its notation applied."""

    def __init__(self, notation: Mapping[str, str]):
        self._trees: dict[str, Symbol] = {key: syntax.parse(value) for key, value in sorted(notation.items())}
        self._symbols = {key: tree.latex() for key, tree in self._trees.items()}

    def _uses_letter(self, letter: str) -> bool:
        """Whether a notation symbol is the letter ``letter``, with or without scripts (``b``, ``b_1``)."""
        return any(tree.head == syntax.Letter(letter) for tree in self._trees.values())

    @property
    def sample(self) -> str:
        """The index of a sample in a batch: ``b``, or another letter when the notation uses ``b``."""
        return next((letter for letter in SAMPLE_INDEX if not self._uses_letter(letter)), SAMPLE_INDEX[-1])

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
        if "_" in symbol or "^" in symbol:
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
        return r"\delta" if self._uses_letter("E") else "E"
