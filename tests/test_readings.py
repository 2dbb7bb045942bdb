"""One rule, three readings: every operation of the language has a method in every reading."""

import pytest

from gradproof.codegen.latex.printer import LatexReading
from gradproof.codegen.numpy.printer import NumpyReading
from gradproof.derive.statement import TextReading
from gradproof.derive.symbolic import SymbolicReading
from gradproof.derive.texpr import OPERATIONS, Expr

READINGS = [SymbolicReading, TextReading, NumpyReading, LatexReading]


@pytest.mark.parametrize("reading", READINGS, ids=lambda r: r.__name__)
def test_every_operation_has_a_reading(reading):
    missing = [op.__name__ for op in OPERATIONS if not hasattr(reading, f"read_{op.__name__}")]
    assert missing == []


def test_the_operation_list_is_complete():
    """Every node class defined in the language is listed in OPERATIONS."""
    import gradproof.derive.texpr as texpr

    defined = {
        obj
        for obj in vars(texpr).values()
        if isinstance(obj, type) and issubclass(obj, Expr) and obj is not Expr
    }
    assert defined == set(OPERATIONS)
