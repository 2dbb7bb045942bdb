"""The notebook API: gradproof.derive_network proves a network and hands back its readings, the same
bytes `gradproof build` commits, and shows itself in Jupyter."""

import dataclasses
import html
from pathlib import Path

import pytest

import gradproof
from gradproof.api import NetworkDerivation, Proof, ProofFailed
from gradproof.derive import prover
from gradproof.derive.spec import SpecError

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def small_cnn() -> NetworkDerivation:
    return gradproof.derive_network("small_cnn")


def test_the_readings_are_the_committed_outputs(small_cnn):
    latex = small_cnn.latex()
    assert len(latex) == 30 and "docs/derivations/small_cnn/definitions.tex" in latex
    assert "docs/derivations/small_cnn/theorems.tex" in latex
    for relative, text in latex.items():
        assert (ROOT / relative).read_text(encoding="utf-8") == text, relative
    assert small_cnn.markdown() == (ROOT / "docs/derivations/small_cnn.md").read_text(encoding="utf-8")
    assert small_cnn.numpy_source() == (ROOT / "generated/small_cnn.py").read_text(encoding="utf-8")


def test_prove_returns_the_records_as_a_table(small_cnn):
    proof = small_cnn.prove()
    assert isinstance(proof, Proof) and proof.holds and proof is small_cnn.prove()  # proven once
    records = prover.prove(small_cnn.network)
    # 23 obligations at its sizes, 11 theorems for all sizes, their composition
    assert [r.name for r in proof] == [r.name for r in records] and len(proof) == 35
    table = proof._repr_html_()
    assert table.count("<tr>") == len(records) + 1 and "FAILED" not in table
    for record in records:
        assert f"<td>{html.escape(record.name)}</td>" in table
    assert repr(proof) == "<Proof of small_cnn: 35 of 35 obligations proven>"


def test_jupyter_shows_the_markdown_without_front_matter_and_the_rules_as_latex(small_cnn):
    shown = small_cnn._repr_markdown_()
    assert not shown.startswith("---") and "title:" not in shown.split("\n## 1.")[0]
    assert "## 1. Architecture" in shown and "```mermaid" in shown
    rules = small_cnn._repr_latex_()
    assert rules.startswith("$$\\begin{aligned}") and rules.endswith("\\end{aligned}$$")
    assert r"\frac{\partial L}{\partial W_{1}} &= \operatorname{corr}" in rules
    assert rules.count("&=") == len(small_cnn.network.backward_plan())


def test_a_spec_file_with_a_papers_notation(tmp_path):
    text = (ROOT / "derive" / "networks" / "small_cnn.toml").read_text(encoding="utf-8")
    spec = tmp_path / "paper.toml"
    spec.write_text(text.replace('name = "small_cnn"', 'name = "paper"') + '\n[notation]\nW1 = "\\\\theta"\n')
    derivation = gradproof.derive_network(spec)
    assert derivation.name == "paper" and derivation.prove().holds
    assert r"\frac{\partial L}{\partial \theta}" in derivation.latex()["docs/derivations/paper/rule-dW1.tex"]
    assert r"\partial \theta" in derivation.markdown()


def test_bad_input_and_failed_proofs_are_refused(small_cnn, monkeypatch):
    with pytest.raises(SpecError, match="no_such_network"):
        gradproof.derive_network("no_such_network")
    real = prover.prove

    def one_refuted(network, **kwargs):
        records = real(network, **kwargs)
        return [dataclasses.replace(records[0], holds=False, failing="X[0] = 1")] + records[1:]

    monkeypatch.setattr(prover, "prove", one_refuted)
    derivation = gradproof.derive_network("small_cnn")
    assert not derivation.prove().holds and "<b>FAILED</b>" in derivation.prove()._repr_html_()
    for reading in (derivation.latex, derivation.markdown, derivation.numpy_source):
        with pytest.raises(ProofFailed, match="not every rule is proven"):
            reading()
