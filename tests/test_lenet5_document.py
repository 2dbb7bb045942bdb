"""LeNet-5's document reads like a textbook chapter, and says no more than was proven.

The committed LaTeX and Markdown (docs/derivations/lenet5.*) are checked for what a reader of a
chapter on LeNet-5 expects: an introduction that names the paper and says how this network differs
from it, the shapes and the 61,706 parameters derived layer by layer (the counts below are worked
out by hand from the architecture, not read from gradproof), the backward rules of the new layer
types in words, and a verification that says the entry-by-entry proofs ran on a miniature. The
``[about]`` table a spec may carry is validated like every other field.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gradproof.derive.spec import SpecError, parse

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "derivations"


@pytest.fixture(scope="module")
def tex() -> str:
    return (DOCS / "lenet5.tex").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def markdown() -> str:
    return (DOCS / "lenet5.md").read_text(encoding="utf-8")


def flat(text: str) -> str:
    return " ".join(text.split())


def test_the_title_and_the_introduction_name_lenet5_and_its_paper(tex, markdown):
    assert r"\title{LeNet-5" in tex
    assert r"\section{Introduction}" in tex and "## 1. Introduction" in markdown
    words = flat(tex)
    assert "LeCun, Bottou, Bengio and Haffner" in words
    assert "Proceedings of the IEEE 86(11):2278-2324, 1998" in words
    assert r"\section{References}" in tex


def test_the_differences_from_the_1998_network_are_stated(tex):
    words = flat(tex)
    section = words[words.index("How this network differs from the original") :]
    for fact in (
        "scaled tanh",
        r"$1.7159 \tanh(2a/3)$",
        "1,516 trainable parameters",
        "trainable",
        "radial basis",
    ):
        assert fact in section, fact
    assert "60,000 trainable parameters" in section and "61,706" in section


# Worked out by hand: F C kh kw + F for a convolution, I U + U for a dense layer.
PER_LAYER = {
    "Z_{1}": ("6 \\times 28 \\times 28", "32 - 5 + 1 = 28", "6 \\cdot 1 \\cdot 5 \\cdot 5 + 6 = 156"),
    "P_{1}": ("6 \\times 14 \\times 14", "28/2 = 14", ""),
    "Z_{2}": ("16 \\times 10 \\times 10", "14 - 5 + 1 = 10", "16 \\cdot 6 \\cdot 5 \\cdot 5 + 16 = 2{,}416"),
    "P_{2}": ("16 \\times 5 \\times 5", "10/2 = 5", ""),
    "F": ("400", "16 \\cdot 5 \\cdot 5 = 400", ""),
    "Z_{3}": ("120", "", "400 \\cdot 120 + 120 = 48{,}120"),
    "Z_{4}": ("84", "", "120 \\cdot 84 + 84 = 10{,}164"),
    "Z_{5}": ("10", "", "84 \\cdot 10 + 10 = 850"),
}


def test_the_layer_table_derives_every_shape_and_the_61706_parameters(tex, markdown):
    table = tex[tex.index(r"\paragraph{Shapes and parameters, layer by layer.}") :]
    table = table[: table.index(r"\end{tabularx}")]
    rows = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.rstrip("\\ ").split("&")]
        if len(cells) == 5 and cells[0].startswith("$"):
            rows[cells[0].strip("$")] = tuple(c.strip("$") for c in cells[2:])
    for name, expected in PER_LAYER.items():
        assert rows[name] == expected, name
    assert "& total & & & $61{,}706$" in table
    assert 156 + 2416 + 48120 + 10164 + 850 == 61706
    assert "| $Z_{2}$ | Convolution, 16 filters $5 \\times 5$ | $16 \\times 10 \\times 10$ |" in markdown


def test_the_backward_rules_of_the_new_layers_are_explained(tex):
    words = flat(tex)
    assert r"1 - \tanh^{2}(z)" in words and "a saturated unit passes almost no gradient on" in words
    assert "with slope $1/4$" in words and "divided by $4$" in words  # average pooling, 2x2
    assert "the prediction error" in words and r"\frac{1}{N} (A_{5} - Y)" in words  # fused softmax-CE
    assert "a correlation, like the forward pass, and no kernel is turned" in words  # conv filter
    assert (
        "This is the \\emph{full convolution} of the output gradient with the filter" in words
    )  # conv input


def test_the_document_says_the_entry_by_entry_proofs_ran_on_the_miniature(tex):
    words = flat(tex)
    assert "ran on the \\emph{miniature} (input 1x16x16; widths 2, 2, 3, 3, 10)" in words
    assert "At these sizes the entries are printed from the rule, not proven one by one" in words
    assert "for the sizes of this network" not in words
    # the claims of a network proven end to end at its own sizes are not made here
    assert "checked every one of them against the derivative of the whole loss" not in words
    small = flat((DOCS / "small_cnn.tex").read_text(encoding="utf-8"))
    assert "checked every one of them against the derivative of the whole loss" in small
    assert "for the sizes of this network" in small


def test_every_document_gets_the_layer_table_and_no_introduction_without_about():
    for name in ("small_cnn", "mlp", "digits_lenet"):
        text = (DOCS / f"{name}.tex").read_text(encoding="utf-8")
        assert r"\paragraph{Shapes and parameters, layer by layer.}" in text, name
        assert r"\section{Introduction}" not in text, name


SPEC = """
name = "tiny"
input = [2]
loss = "mse"
[[layers]]
type = "dense"
units = 1
"""


@pytest.mark.parametrize(
    "about, field, words",
    [
        ("about = 3", "about", "must be a table"),
        ("[about]\ntitle = 3", "about.title", "must be a string"),
        ('[about]\nsummary = "x"', "about.summary", "unknown field"),
        ('[about]\nreferences = "x"', "about.references", "must be a list of strings"),
        ('[about]\ntext = "a $x"', "about.text", "unclosed"),
        ("[about]\ntext = '''$\\input{/etc/passwd}$'''", "about.text", "\\input"),
        ("[about]\ntext = '''$\\write18{ls}$'''", "about.text", "\\write"),
        ('[about]\ntext = "$x # y$"', "about.text", "a character outside"),
    ],
)
def test_a_bad_about_table_is_refused_naming_its_field(about, field, words):
    text = (
        SPEC.replace('loss = "mse"\n', f'loss = "mse"\n{about}\n')
        if about.startswith("about")
        else (SPEC + "\n" + about + "\n")
    )
    with pytest.raises(SpecError) as error:
        parse(text, source="tiny.toml")
    assert error.value.field == field and words in str(error.value), str(error.value)


def test_an_about_table_with_safe_math_is_read():
    spec = parse(SPEC + "\n[about]\ntitle = \"Tiny\"\ntext = '''One unit: $z = w x + b$.'''\n", source="t")
    assert spec.about.title == "Tiny" and re.search(r"\$z = w x \+ b\$", spec.about.text)
