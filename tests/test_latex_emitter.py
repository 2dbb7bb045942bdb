"""The LaTeX derivations: they compile, show the proven entries, honour notation, stay deterministic."""

import dataclasses
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import sympy

from gradproof.codegen.latex import emitter as latex_emitter
from gradproof.codegen.latex.layout import break_lines, visible_width
from gradproof.codegen.latex.names import Names, NotationError, notation_symbol
from gradproof.codegen.latex.printer import LatexReading
from gradproof.codegen.latex.verification import VerificationError
from gradproof.derive import prover, texpr
from gradproof.derive.network import build
from gradproof.derive.spec import SpecError, load, parse

ROOT = Path(__file__).resolve().parent.parent
PDFLATEX = shutil.which("pdflatex")
needs_tex = pytest.mark.skipif(PDFLATEX is None, reason="pdflatex is not installed")
SMALL_CNN_TEXT = (ROOT / "derive" / "networks" / "small_cnn.toml").read_text(encoding="utf-8")


def rendered(spec_text: str) -> dict[str, str]:
    network = build(parse(spec_text, source="<test>"))
    return latex_emitter.render(network, prover.prove(network))


@pytest.fixture(scope="module")
def small_cnn_proof():
    network = build(load("small_cnn"))
    return network, prover.prove(network)


@pytest.fixture(scope="module")
def small_cnn(small_cnn_proof) -> dict[str, str]:
    return latex_emitter.render(*small_cnn_proof)


@pytest.fixture(scope="module")
def sigmoid_small_proof():
    """The sigmoid CNN's architecture at a 6x6 input (fast to prove), with the source's batch of 100."""
    text = (ROOT / "derive" / "networks" / "sigmoid_cnn.toml").read_text(encoding="utf-8")
    text = text.replace('name = "sigmoid_cnn"', 'name = "sigmoid_small"').replace("[1, 22, 22]", "[1, 6, 6]")
    network = build(parse(text, source="<test>"))
    return network, prover.prove(network)


@pytest.fixture(scope="module")
def sigmoid_small(sigmoid_small_proof) -> dict[str, str]:
    return latex_emitter.render(*sigmoid_small_proof)


SWITCH = re.compile(r"^(?:\\else)?\\ifdim\\linewidth<\d+em$|^\\else$|^(?:\\fi)+$")


def renderings(snippet: str) -> list[str]:
    """The renderings a snippet carries, narrowest first: one, or one per width of line TeX chooses by."""
    found = [[]]
    for line in snippet.splitlines():
        if line.startswith("%"):
            continue
        if SWITCH.match(line):
            if found[-1]:
                found.append([])
            continue
        found[-1].append(line)
    return ["\n".join(lines) + "\n" for lines in found if lines]


def document(outputs: dict[str, str]) -> str:
    (text,) = [t for p, t in outputs.items() if p.count("/") == 2]
    return text


def compile_tex(folder: Path, name: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PDFLATEX, "-halt-on-error", "-interaction=nonstopmode", f"{name}.tex"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
    )


def write(outputs: dict[str, str], folder: Path) -> None:
    for relative, text in outputs.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


WRAPPER = r"""\documentclass{article}
\usepackage{amsmath}
\usepackage{amssymb}
\usepackage{tikz}
\usetikzlibrary{calc}
\usepackage{tabularx}
\begin{document}
%s
\end{document}
"""


def check_compiles(outputs: dict[str, str], tmp_path: Path) -> None:
    """The document alone, then every snippet \\input into one minimal wrapper."""
    write(outputs, tmp_path)
    folder = tmp_path / "docs" / "derivations"
    doc = next(Path(p).stem for p in outputs if p.count("/") == 2)
    result = compile_tex(folder, doc)
    assert result.returncode == 0, result.stdout[-2000:]
    snippets = sorted(p for p in outputs if p.count("/") == 3)
    assert snippets
    inputs = "\n".join(
        rf"\input{{{Path(p).relative_to('docs/derivations').with_suffix('')}}}" for p in snippets
    )
    (folder / "wrapper.tex").write_text(WRAPPER % inputs, encoding="utf-8")
    result = compile_tex(folder, "wrapper")
    assert result.returncode == 0, result.stdout[-2000:]


def test_every_operation_has_a_latex_reading():
    missing = [op.__name__ for op in texpr.OPERATIONS if not hasattr(LatexReading, f"read_{op.__name__}")]
    assert missing == []


@needs_tex
def test_small_cnn_document_and_snippets_compile(small_cnn, tmp_path):
    check_compiles(small_cnn, tmp_path)


@needs_tex
def test_each_snippet_compiles_alone(small_cnn, tmp_path):
    write(small_cnn, tmp_path)
    folder = tmp_path / "docs" / "derivations"
    for path in sorted(p for p in small_cnn if p.count("/") == 3):
        stem = Path(path).relative_to("docs/derivations").with_suffix("")
        (folder / "alone.tex").write_text(WRAPPER % rf"\input{{{stem}}}", encoding="utf-8")
        result = compile_tex(folder, "alone")
        assert result.returncode == 0, (path, result.stdout[-1500:])


def test_snippets_are_includable_and_labelled(small_cnn):
    for path, text in small_cnn.items():
        if path.count("/") == 3:
            assert r"\documentclass" not in text and r"\begin{document}" not in text, path
    labels = re.findall(r"\\label\{([^}]*)\}", document(small_cnn))
    assert len(labels) == len(set(labels))
    for key in ("dW1", "dB1", "dW2", "dB2", "dZ2", "dZ1", "dA1", "dP1", "dF", "bce-identity", "chain-rule"):
        assert f"gp:small_cnn:{key}" in labels


def entry_terms(doc: str, m: int, n: int) -> set[str]:
    """The terms printed for the entry (m, n) of dL/dW1."""
    start = doc.index(rf"\frac{{\partial L}}{{\partial (W_{{1}})_{{{m},{n}}}}}")
    ends = (doc.find(r"\frac{\partial L}{\partial (W_{1})_", start + 10), doc.find(r"\end{align", start))
    body = doc[start : min(i for i in ends if i > 0)].split("=", 1)[1]
    body = body.replace(r"\displaybreak[0]", " ").replace(r"\\*", " ").replace(r"\\", " ")
    body = body.replace("&", " ").replace(r"\quad", " ")
    return {t.strip() for t in body.split("+") if t.strip()}


def test_document_shows_each_of_the_nine_entries(small_cnn):
    doc = document(small_cnn)
    for m in range(3):
        for n in range(3):
            # the textbook sum: dL/dW1[m,n] = sum_{i,j} X[i+m, j+n] dL/dZ1[i,j] over the 4x4 output
            expected = {
                rf"X_{{{i + m},{j + n}}}\,\delta^{{Z_{{1}}}}_{{{i},{j}}}" for i in range(4) for j in range(4)
            }
            assert entry_terms(doc, m, n) == expected, (m, n)


def test_document_expands_every_entry_of_z1(small_cnn):
    doc = document(small_cnn)
    for i in range(4):
        for j in range(4):
            assert rf"(Z_{{1}})_{{{i},{j}}} &= X_{{{i},{j}}}\,(W_{{1}})_{{0,0}}" in doc


def test_parameter_count_is_derived(small_cnn):
    doc = document(small_cnn)
    sizes = r"\underbrace{1 \times 1 \times 3 \times 3}_{W_{1}} + \underbrace{1}_{B_{1}} + "
    assert sizes + r"\underbrace{4 \times 1}_{W_{2}}" in doc
    assert "= 9 + 1 + 4 + 1 = 15" in doc


def test_no_sympy_artefacts(small_cnn, sigmoid_small):
    for outputs in (small_cnn, sigmoid_small):
        for path, text in outputs.items():
            for artefact in ("Heaviside", "Max(", "_0_1", "Dummy", "window_max"):
                assert artefact not in text, (path, artefact)


def test_bce_identity_is_printed_step_by_step(small_cnn):
    identity = small_cnn["docs/derivations/small_cnn/loss-gradient.tex"]
    assert r"\frac{A_{2} - Y}{A_{2} \left(1 - A_{2}\right)}" in identity
    # the common denominator and the expanded numerator come before the cancellation
    common = r"\frac{A_{2} \left(1 - Y\right) - Y \left(1 - A_{2}\right)}{A_{2} \left(1 - A_{2}\right)}"
    assert common in identity
    assert r"\frac{A_{2} - A_{2} Y - Y + A_{2} Y}{A_{2} \left(1 - A_{2}\right)}" in identity
    assert r"= A_{2} - Y \label{gp:small_cnn:bce-identity}" in identity


def test_renamed_notation_replaces_the_default_name(tmp_path):
    outputs = rendered(SMALL_CNN_TEXT + '\n[notation]\nW1 = "f"\nZ1 = "Z_c"\n')
    doc = document(outputs)
    assert "f_{0,0}" in doc and r"\partial f}" in doc and "Z_{c}" in doc
    for text in outputs.values():
        assert "W_{1}" not in text and "Z_{1}" not in text


@pytest.mark.parametrize("value", [r"\input{/etc/passwd}", "W}\\def", "a b", "W_{1}}", r"x^{\top}", "", "\\"])
def test_notation_injection_is_rejected_at_both_boundaries(value):
    with pytest.raises(NotationError):
        notation_symbol(value)
    with pytest.raises(NotationError):
        Names({"W1": value})
    quoted = value.replace("\\", "\\\\").replace('"', '\\"')
    with pytest.raises(SpecError):
        parse(SMALL_CNN_TEXT + f'\n[notation]\nW1 = "{quoted}"\n', source="<test>")


def test_notation_is_printed_from_its_parse():
    printed = {
        "f": "f",
        "W_h": "W_{h}",
        "Z_{o}": "Z_{o}",
        "Wh": r"\mathit{Wh}",
        "H_1": "H_{1}",
        r"\hat y": r"\hat{y}",
        r"\boldsymbol\theta": r"\boldsymbol{\theta}",
        r"{\tilde{x}}^{(2)}_i": r"\tilde{x}_{i}^{(2)}",
        r"\mathbf{Wh}_{\alpha k}": r"\mathbf{Wh}_{\alpha k}",
        "S_{12345}": "S_{12345}",
    }
    assert {value: notation_symbol(value) for value in printed} == printed


def test_rendering_is_deterministic(small_cnn):
    network = build(load("small_cnn"))
    records = prover.prove(network)
    for record in records:  # timings never reach the documents
        record.seconds = 12345.678
    assert latex_emitter.render(network, records) == small_cnn
    code = (
        "import hashlib, json; from gradproof.derive.network import build; "
        "from gradproof.derive.spec import load; from gradproof.derive import prover; "
        "from gradproof.codegen.latex import emitter as latex_emitter; n = build(load('small_cnn')); "
        "out = latex_emitter.render(n, prover.prove(n)); "
        "print(hashlib.sha256(json.dumps(out, sort_keys=True).encode()).hexdigest())"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    other = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    import hashlib
    import json

    assert other.stdout.strip() == hashlib.sha256(json.dumps(small_cnn, sort_keys=True).encode()).hexdigest()


def test_mlp_states_the_error_form():
    outputs = rendered((ROOT / "derive" / "networks" / "mlp.toml").read_text(encoding="utf-8"))
    errors = outputs["docs/derivations/mlp/error-form.tex"]
    # the source calls the cost C (notation L = "C")
    assert r"E_{o} &= \frac{\partial C}{\partial Z_{o}} = (O - Y) \odot \mathbf{1}[Z_{o} > 0]" in errors
    assert (
        r"E_{h} &= \frac{\partial C}{\partial Z_{h}} = (E_{o} \cdot W_{o}^{\top}) \odot \mathbf{1}[Z_{h} > 0]"
        in errors
    )
    assert r"\frac{\partial C}{\partial W_{o}} &= H^{\top} \cdot E_{o}" in errors
    assert r"\frac{\partial C}{\partial W_{h}} &= X^{\top} \cdot E_{h}" in errors
    table = outputs["docs/derivations/mlp/variables.tex"]
    for row in (
        r"$X$ & input & $(3 \times 1)$",
        r"$W_{h}$ & weights (inputs, units) & $(1 \times 2)$",
        r"$O$ & activation, ReLU & $(3 \times 2)$",
    ):
        assert row in table


def test_sigmoid_cnn_tracks_the_shapes_of_the_source(sigmoid_small):
    tracking = sigmoid_small["docs/derivations/sigmoid_small/shape-tracking.tex"]
    # 6x6 input, 3x3 filter: 4x4 = 16 features, batch 100 from the spec; factors first, then one operation
    # at a time
    dw = r"(16{\times}100) \cdot \bigl((100{\times}1) \odot (100{\times}1) \odot (100{\times}1)\bigr)"
    assert dw in tracking
    assert r"\rightarrow (16{\times}100) \cdot (100{\times}1)" in tracking
    assert r"\rightarrow (16{\times}1)" in tracking
    # the reshape of the (100 x 16) product back to the 4x4 maps of the batch, and the filter's shape
    assert r"\operatorname{reshape}_{100{\times}1{\times}4{\times}4}\bigl((100{\times}16)\bigr)" in tracking
    assert r"\rightarrow (1{\times}1{\times}3{\times}3)" in tracking
    # the batch sums are stated
    assert "sums over the $N = 100$ samples" in sigmoid_small["docs/derivations/sigmoid_small/dW2.tex"]
    assert "sums over the $N = 100$ samples" in tracking
    # the source's results, printed from the composed rules, in the source's notation (loss E)
    assert (
        r"\frac{\partial E}{\partial W} &= F^{\top} \cdot \bigl((O - Y) \odot O \odot (1 - O)\bigr)"
        in tracking
    )
    assert r"\bigl((O - Y) \odot O \odot (1 - O)\bigr) \cdot W^{\top}" in tracking
    assert r"\odot H_{1} \odot (1 - H_{1})" in tracking


@needs_tex
def test_other_architectures_compile(sigmoid_small, tmp_path):
    check_compiles(sigmoid_small, tmp_path / "sigmoid")
    outputs = rendered((ROOT / "derive" / "networks" / "mlp.toml").read_text(encoding="utf-8"))
    check_compiles(outputs, tmp_path / "mlp")


def test_chain_rule_shows_every_factor_with_its_shape(small_cnn):
    chain = small_cnn["docs/derivations/small_cnn/chain-rule.tex"]
    # one Jacobian per link from L down to W1, each with its per-sample shape under it
    jacobians = [
        r"1 \times 1",
        r"1 \times 1",
        r"1 \times 4",
        r"4 \times (2{\times}2)",
        r"(2{\times}2) \times (4{\times}4)",
    ]
    jacobians += [r"(4{\times}4) \times (4{\times}4)", r"(4{\times}4) \times (3{\times}3)"]
    position = 0
    for numerator, shape in zip(
        ["L", "A_{2}", "Z_{2}", "F", "P_{1}", "A_{1}", "Z_{1}"], jacobians, strict=True
    ):
        position = chain.index(rf"\frac{{\partial {numerator}}}", position)
        position = chain.index(rf"}}}}_{{{shape}}}", position)
    # multiplied from the left, W2 must enter transposed: (N x 1)(1 x 4) -> (N x 4)
    assert r"\frac{\partial L}{\partial Z_{2}} \cdot W_{2}^{\top}" in chain
    assert r"(N{\times}1) \cdot (1{\times}4) \rightarrow (N{\times}4)" in chain
    corr = r"\operatorname{corr}\bigl((N{\times}1{\times}6{\times}6),\, (N{\times}1{\times}4{\times}4)\bigr)"
    assert corr + r" \rightarrow (1{\times}1{\times}3{\times}3)" in chain


def test_verification_comes_from_the_records(small_cnn, small_cnn_proof):
    _, records = small_cnn_proof
    records = [r for r in records if r.key not in ("parametric", "theorems-composed")]  # the theorems'
    texts = renderings(small_cnn["docs/derivations/small_cnn/verification.tex"])
    assert len(texts) == 2  # for a narrow line and for a page
    for text in texts:
        assert f"{len(records)} of {len(records)} obligations proven" in text
        assert f"with SymPy {sympy.__version__}" in text
        assert text.count(r"\item ") == len(records)
        # the end-to-end proof of dL/dW1 lists the nine entries it checked
        for m in range(3):
            for n in range(3):
                assert rf"$\partial L/\partial (W_{{1}})_{{{m},{n}}}$" in text


def test_a_loss_named_E_leaves_the_errors_to_delta(sigmoid_small_proof):
    network, records = sigmoid_small_proof
    spec = dataclasses.replace(network.spec, notation={**network.spec.notation, "L": "E"})
    outputs = latex_emitter.render(build(spec), records)
    errors = outputs["docs/derivations/sigmoid_small/error-form.tex"]
    assert r"\delta_{2} &= \frac{\partial E}{\partial Z_{2}}" in errors
    assert r"\frac{\partial E}{\partial f} &= \operatorname{corr}(X,\, \delta_{1})" in errors
    assert "E_{" not in errors


def test_long_formulas_break_outside_braces_within_the_width():
    terms = [rf"\frac{{1}}{{N}} (A_{{{i}}} - Y_{{{i}}})" for i in range(12)]
    latex = r"\operatorname{corr}\Bigl(X_{0},\, " + r" \odot ".join(terms) + r"\Bigr)"
    lines = break_lines(latex, 40)
    assert len(lines) > 2
    assert " ".join(lines).replace("  ", " ") == latex
    for line in lines:
        assert line.count("{") == line.count("}")
        assert visible_width(line) <= 40
    assert all(line.startswith(r"\odot") for line in lines[1:])


def test_committed_small_cnn_derivation_is_current(small_cnn):
    for path, text in small_cnn.items():
        assert (ROOT / path).read_text(encoding="utf-8") == text, path


# ------------------------------------------------------ the verification section, typeset

COMMITTED = sorted((ROOT / "docs" / "derivations").rglob("*.tex"))
# ASCII pseudo-math of the records' plain-text statements and methods (for the CLI and JSON), in any
# spelling text_escape could give it: none of it may reach a document.
ASCII_MATH = re.compile(
    r"(?<!\\)\b(sum|prod)\\?_[a-z]"  # sum_o, prod\_j
    r"|\b[A-Z]\w*\[[a-z0-9,]+\]"  # G[o], X[k], W1[0,0,1,2]
    r"|\bd[A-Z]\w*(\[|/d)"  # dZ1[o], dL/dW1
    r"|\bd(theta|eps)\b|\beps c\b|(?<!\\)\btheta\b"  # dL/dtheta_k, dL(theta + eps c)/deps
    r"|\bd/dt\b|(?<!\\)\b(exp|sigmoid)\(|(?<!\\)\bmax\(t|Heaviside|\bMax\("  # not \exp(, \max(t
)


def prose(tex: str) -> str:
    """The text of a LaTeX fragment outside math, \\texttt and comments."""
    tex = "\n".join(line for line in tex.splitlines() if not line.lstrip().startswith("%"))
    tex = re.sub(r"\$[^$]*\$", " ", tex)
    return re.sub(r"\\texttt\{[^}]*\}", " ", tex)


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: str(p.relative_to(ROOT / "docs" / "derivations")))
def test_no_ascii_pseudo_math_in_any_committed_derivation(path):
    text = path.read_text(encoding="utf-8")
    assert not ASCII_MATH.search(text), ASCII_MATH.search(text).group(0)
    assert r".\quad \texttt{" not in text  # the old fallback that quoted a record's statement
    if path.name == "verification.tex":
        for rendering in renderings(text):
            words = prose(rendering)
            # whatever is left outside math mode is prose: no formula characters, no internal tensor names
            for character in "=/^_[]*<>":
                assert character not in words, (character, words[words.index(character) - 40 :][:80])
            found = re.search(r"\b(d?[WBZAP]\d|dL|dX|dF)\b", words)
            assert not found, found


def test_verification_is_typeset_in_the_notation_of_the_network():
    folder = ROOT / "docs" / "derivations"
    mlp = (folder / "mlp" / "verification.tex").read_text(encoding="utf-8")
    # the source's names W_h, H, O, C in every kind of record: convention, local, end-to-end, count, batch
    assert r"passes $\partial C/\partial H$ on where $Z_{h} = 1$" in mlp
    assert r"\partial \bigl(\sum_{o} G_{o}\, (Z_{h})_{o}\bigr)/\partial (W_{h})_{k}" in mlp
    assert r"\mathrm{d}C(W_{h} + \varepsilon c)/\mathrm{d}\varepsilon" in mlp
    assert "for the loss of a batch of $3$ samples" in mlp  # the end-to-end batch of the record
    assert r"$C$ depends on exactly ${10 = 2 + 2 + 4 + 2}$ trainable parameters" in mlp
    assert r"${C = \ell^{(0)} + \ell^{(1)}}$" in mlp
    for canonical in ("W_{1}", "Z_{1}", "A_{2}", r"\partial L"):
        assert canonical not in mlp, canonical
    sigmoid = (folder / "sigmoid_cnn" / "verification.tex").read_text(encoding="utf-8")
    assert r"${\partial E/\partial f = \operatorname{corr}(X,\, \partial E/\partial Z_{1})}$" in sigmoid
    assert r"\mathrm{d}E(f + \varepsilon c)/\mathrm{d}\varepsilon" in sigmoid
    assert r"\partial \bigl(\sum_{o} G_{o}\, O_{o}\bigr)/\partial (Z_{2})_{k}" in sigmoid
    # the bias is called b, so the sample is s: the batch rule sums over s, never over b
    assert r"${\partial E/\partial b = \sum_{s} \partial E/\partial Z_{2}}$" in sigmoid
    assert r"$\ell^{(s)}$ is the loss of sample $s$ alone" in sigmoid
    # local rules are proven at batch 2, so N stays a letter there even though the spec's batch is 100
    assert r"\operatorname{reshape}_{N{\times}1{\times}20{\times}20}" in sigmoid
    small = (folder / "small_cnn" / "verification.tex").read_text(encoding="utf-8")
    assert r"${\partial \ell/\partial A_{2} \cdot \partial A_{2}/\partial Z_{2} = A_{2} - Y}$" in small
    assert r"\log(1 + e^{Z_{2}}) - Y Z_{2}" in small
    assert r"\prod_{j \ne i} H(t_{i} - t_{j})" in small and "$2^{3}$ such patterns" in small
    assert r"Pooling ties at $A_{1}$: a $2 \times 2$ window" in small
    assert r"${\partial L/\partial (Z_{2})_{k}}$ for every $k$" in small  # the loss step: no G


def test_verification_reads_the_structured_fields_of_the_records(small_cnn_proof):
    network, records = small_cnn_proof
    assert list(dict.fromkeys(r.key for r in records)) == list(prover.obligation_keys(network))
    assert all(prover.ProofRecord(**r.as_dict()) == r for r in records)  # the benchmark's round trip
    changed = [dataclasses.replace(r, batch=3) if r.level == "end-to-end" else r for r in records]
    texts = renderings(latex_emitter.render(network, changed)["docs/derivations/small_cnn/verification.tex"])
    for text in texts:
        assert text.count("for the loss of a batch of $3$ samples") == len(network.params)
        assert "for the loss of one sample" not in text
    unknown = [*records, dataclasses.replace(records[0], level="new", key="new-kind")]
    with pytest.raises(VerificationError):
        latex_emitter.render(network, unknown)


def test_a_bias_called_b_moves_the_sample_index(sigmoid_small):
    for path, text in sigmoid_small.items():
        assert r"\sum_{b" not in text and "^{(b)}" not in text and "_{b," not in text, path
        assert "K_{f," not in text and "_{b,f," not in text, path  # filters are f, their index k
    assert (
        r"\sum_{s} \frac{\partial E}{\partial Z_{2}}"
        in sigmoid_small["docs/derivations/sigmoid_small/dB2.tex"]
    )
    assert "the sample index $s$ first" in document(sigmoid_small)


def test_rules_stay_on_the_page_of_their_shapes_and_the_loss_on_the_page_of_its_derivative(small_cnn):
    trackings = renderings(small_cnn["docs/derivations/small_cnn/shape-tracking.tex"])
    assert len(trackings) == 3  # a column, a narrower text, a page
    for tracking in trackings:
        assert tracking.count(r"\text{shapes:}") == 4
        assert tracking.count("\\\\*\n  \\text{shapes:}") == 4  # no page break between a rule and its shapes
    for loss in renderings(small_cnn["docs/derivations/small_cnn/loss-gradient.tex"]):
        assert re.search(r"\\ell &= [^\n]*\\\\\*\n  \\frac\{\\partial \\ell\}", loss)


@needs_tex
def test_a_papers_own_notation_hat_y_and_theta_compiles(tmp_path):
    notation = '\n[notation]\nA2 = "\\\\hat{y}"\nW1 = "\\\\theta"\nZ1 = "\\\\mathbf{z}^{(1)}"\nY = "y"\n'
    outputs = rendered(SMALL_CNN_TEXT + notation)
    doc = document(outputs)
    assert r"\frac{\partial L}{\partial \theta}" in doc and r"\hat{y} - y" in doc
    assert r"(\mathbf{z}^{(1)})_{0,1}" in doc or r"\delta^{\mathbf{z}^{(1)}}" in doc
    for text in outputs.values():
        assert "A_{2}" not in text and "W_{1}" not in text
    check_compiles(outputs, tmp_path)


@needs_tex
def test_a_tanh_network_typesets_its_own_words_and_compiles(tmp_path):
    from tests.test_generated_numeric import TANH_SPEC

    network = build(parse(TANH_SPEC, source="<tanh_cnn>"))
    outputs = latex_emitter.render(network, prover.prove(network))
    document = outputs["docs/derivations/tanh_cnn.tex"]
    assert r"\xrightarrow{\tanh}" in document and r"\paragraph{Tanh.}" in document
    assert r"Here $1 - A_{2} \odot A_{2} = \tanh'(Z_{2})$ and $1 - A_{1}" in document
    assert r"\tanh(z) = \frac{e^{z} - e^{-z}}{e^{z} + e^{-z}}" in document
    assert "ReLU" not in document and "Sigmoid" not in document
    check_compiles(outputs, tmp_path)
