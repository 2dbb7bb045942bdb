"""The theorems section and snippet: each rule stated for all sizes, before the network's instance.

The statements are read off the parametric records' ``Statement``s; these tests check what a reader
relies on: one theorem per proven record, in the document before the rules at the network's sizes,
with symbolic sizes (no concrete side in a theorem's rule), its hypotheses, and the layers it covers.
"""

from __future__ import annotations

import re

import pytest
import sympy as sp

from gradproof.codegen.latex import emitter
from gradproof.codegen.latex.theorems import inequality
from gradproof.derive import prover
from gradproof.derive.network import build
from gradproof.derive.spec import load

N = sp.Symbol("N", integer=True)


@pytest.fixture(scope="module", params=["small_cnn", "lenet5"])
def rendered(request):
    network = build(load(request.param))
    records = prover.prove(network)
    return network, records, emitter.render(network, records)


def test_relations_are_written_as_a_reader_writes_them():
    h, k, p = sp.symbols("H K_h P_h", integer=True)
    assert inequality(h - k, N) == r"\mathsf{K}_{\mathsf{h}} \le \mathsf{H}"
    assert (
        inequality(h + 2 * p - k, N) == r"\mathsf{K}_{\mathsf{h}} \le \mathsf{H} + 2 \mathsf{P}_{\mathsf{h}}"
    )
    assert inequality(h - 1, N) == r"1 \le \mathsf{H}"
    assert inequality(h, N) == r"\mathsf{H} \ge 0"


def test_one_theorem_per_parametric_record_before_the_layer_rules(rendered):
    network, records, outputs = rendered
    name = network.spec.name
    theorems = [r for r in records if r.level == "parametric"]
    document = outputs[f"docs/derivations/{name}.tex"]
    headings = re.findall(r"\\paragraph\{Theorem (\d+) \(", document)
    assert headings == [str(n) for n in range(1, len(theorems) + 1)]
    sections = re.findall(r"\\section\{([^}]*)\}", document)
    assert sections.index("Theorems for all sizes") + 1 == sections.index(
        "Layer by layer, from the loss back"
    )
    # every theorem names every layer it covers, and has its own label
    for record in theorems:
        output, target = record.instances[0]
        assert f"\\label{{gp:{name}:theorem-{output}-d{target}}}" in document
    assert document.count("the layer computing") + document.count("the rule of\nthe loss") >= sum(
        len(r.instances) for r in theorems
    )
    # the snippet holds the same statements, for \input in a paper
    snippet = outputs[f"docs/derivations/{name}/theorems.tex"]
    assert snippet.count(r"\paragraph{Theorem ") >= len(theorems)


def test_the_statements_are_for_symbolic_sizes_with_their_hypotheses(rendered):
    network, _, outputs = rendered
    document = outputs[f"docs/derivations/{network.spec.name}.tex"]
    section = document.split(r"\section{Theorems for all sizes}")[1].split(r"\section{")[0]
    # the flatten theorem reshapes to symbolic sizes, not to this network's
    assert r"\operatorname{reshape}_{N{\times}\mathsf{C}{\times}\mathsf{H}{\times}\mathsf{W}}" in section
    assert r"\mathsf{K}_{\mathsf{h}} \le \mathsf{H}" in section  # a valid convolution's kernel fits
    rules = re.findall(r"\\begin\{align\}\n(.*?)\\end\{align\}", section, re.S)
    assert rules and not any(re.search(r"_\{N\{\\times\}\d", rule) for rule in rules)
    if network.spec.name == "small_cnn":
        assert "where no input of a ReLU is $0$" in section  # the region of the ReLU theorem
        assert "where no pooling window has a tied maximum" in section
    else:
        assert "where every row of $Y$ sums to $1$" in section  # softmax-CE's hypothesis on the target
        assert r"$\mathsf{C} = 6$, $\mathsf{F} = 16$, $\mathsf{H} = 14$" in section  # LeNet's second conv
