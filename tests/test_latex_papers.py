"""Every snippet of small_cnn \\input into real papers: zero overfull boxes, every label defined once.

The two-column classes of the issue (IEEEtran conference, acmart sigconf, revtex4-2 reprint, from
Debian's texlive-publishers) and single-column articles at the widths papers and preprints use. Each
paper is compiled twice with pdflatex and its log read: an overfull box, an undefined reference or a
multiply defined label fails the test. A control paper shows the log reader finds an overfull box.
"""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from gradproof.codegen.latex import emitter as latex_emitter
from gradproof.derive import prover
from gradproof.derive.network import build
from gradproof.derive.spec import load

PDFLATEX = shutil.which("pdflatex")
KPSEWHICH = shutil.which("kpsewhich")


def installed(cls: str) -> bool:
    if PDFLATEX is None or KPSEWHICH is None:
        return False
    found = subprocess.run([KPSEWHICH, f"{cls}.cls"], capture_output=True, text=True)
    return bool(found.stdout.strip())


ACM_TOPMATTER = (
    r"\settopmatter{printacmref=false}\setcopyright{none}"
    r"\renewcommand\footnotetextcopyrightpermission[1]{}"
)
# class, preamble, front matter before \maketitle. acmart's default last-page balancing (the balance
# package) reports an overfull \vbox "while \output is active" even for a paper of plain text, so the
# acmart paper turns it off: the check is about the snippets, and the control paper below proves the
# class itself then reports none.
PAPERS = {
    "ieeetran": ("IEEEtran", r"\documentclass[conference]{IEEEtran}", ""),
    "acmart": ("acmart", r"\documentclass[sigconf,balance=false]{acmart}" + ACM_TOPMATTER, "abstract"),
    "revtex": ("revtex4-2", r"\documentclass[reprint]{revtex4-2}", "abstract"),
    "article-5.5in-10pt": (
        "article",
        r"\documentclass[10pt]{article}\usepackage[textwidth=5.5in]{geometry}",
        "",
    ),
    "article-6.5in-12pt": ("article", r"\documentclass[12pt]{article}\usepackage[margin=1in]{geometry}", ""),
    "article-17cm-11pt": ("article", r"\documentclass[11pt]{article}\usepackage[margin=2.2cm]{geometry}", ""),
}

PAPER = r"""%(documentclass)s
\usepackage{amsmath}
\usepackage{amssymb}
\usepackage{tikz}
\usetikzlibrary{calc}
\usepackage{tabularx}
\begin{document}
\title{Backpropagation, proven}
\author{A. Author}
%(abstract)s
\maketitle
\section{Introduction}
We derive the gradients of a small network.
%(body)s
\section{References}
%(references)s
\end{document}
"""


@pytest.fixture(scope="module")
def snippets(tmp_path_factory) -> Path:
    """small_cnn's snippets, rendered from a fresh proof and written to a folder."""
    network = build(load("small_cnn"))
    outputs = latex_emitter.render(network, prover.prove(network))
    folder = tmp_path_factory.mktemp("snippets")
    for relative, text in outputs.items():
        if relative.count("/") == 3:
            path = folder / Path(relative).relative_to("docs/derivations")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    return folder


def compile_paper(
    folder: Path, documentclass: str, body: str, references: str = "", abstract: str = ""
) -> str:
    """Compile twice (so references resolve) and return the log; the compile must succeed."""
    front = r"\begin{abstract}We derive gradients.\end{abstract}" if abstract else ""
    text = PAPER % {"documentclass": documentclass, "abstract": front, "body": body, "references": references}
    (folder / "paper.tex").write_text(text, encoding="utf-8")
    for _ in range(2):
        result = subprocess.run(
            [PDFLATEX, "-halt-on-error", "-interaction=nonstopmode", "paper.tex"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stdout[-3000:]
    return (folder / "paper.log").read_text(encoding="utf-8", errors="replace")


def problems(log: str) -> list[str]:
    """Overfull boxes, undefined references and multiply defined labels reported in a pdflatex log."""
    found = re.findall(r"^Overfull \\[hv]box .*$", log, flags=re.MULTILINE)
    found += re.findall(r"^LaTeX Warning: Reference .* undefined.*$", log, flags=re.MULTILINE)
    found += re.findall(
        r"^LaTeX Warning: There were (?:undefined references|multiply-defined labels).*$", log, re.M
    )
    found += re.findall(r"^LaTeX Warning: Label .* multiply defined.*$", log, flags=re.MULTILINE)
    return found


def labels(folder: Path) -> list[str]:
    """Every label the snippets define (each rendering of a result defines the same labels)."""
    found = set()
    for path in folder.rglob("*.tex"):
        found |= set(re.findall(r"\\label\{([^}]*)\}", path.read_text(encoding="utf-8")))
    return sorted(found)


@pytest.mark.parametrize("paper", list(PAPERS))
def test_every_snippet_fits_the_paper(paper, snippets, tmp_path):
    cls, documentclass, abstract = PAPERS[paper]
    if not installed(cls):
        pytest.skip(f"{cls}.cls is not installed (Debian: texlive-publishers)")
    shutil.copytree(snippets, tmp_path, dirs_exist_ok=True)
    stems = sorted(p.relative_to(tmp_path).with_suffix("").as_posix() for p in tmp_path.rglob("*.tex"))
    assert len(stems) >= 18
    body = "\n".join(
        rf"\section{{Result {n}}}" + "\nThe result, as gradproof printed it.\n" + rf"\input{{{stem}}}"
        for n, stem in enumerate(stems)
    )
    every = labels(tmp_path)
    assert len(every) >= 20
    references = "Results " + ", ".join(rf"\ref{{{label}}}" for label in every) + "."
    log = compile_paper(tmp_path, documentclass, body, references, abstract)
    assert problems(log) == []
    aux = (tmp_path / "paper.aux").read_text(encoding="utf-8", errors="replace")
    for label in every:
        assert aux.count(rf"\newlabel{{{label}}}") == 1, label


@pytest.mark.parametrize("paper", ["ieeetran", "acmart", "revtex"])
def test_the_log_reader_sees_an_overfull_box_and_the_class_alone_has_none(paper, tmp_path):
    cls, documentclass, abstract = PAPERS[paper]
    if not installed(cls):
        pytest.skip(f"{cls}.cls is not installed (Debian: texlive-publishers)")
    text = "\n\n".join(["Plain text of a paper, long enough to fill its columns and pages. " * 12] * 30)
    assert problems(compile_paper(tmp_path, documentclass, text, abstract=abstract)) == []
    wide = r"\[ " + " + ".join(f"x_{{{i}}}" for i in range(40)) + r" \]"
    found = problems(compile_paper(tmp_path, documentclass, wide, abstract=abstract))
    assert len(found) == 1 and found[0].startswith(r"Overfull \hbox")


def test_definitions_define_what_the_snippets_use_alone(snippets):
    definitions = (snippets / "small_cnn" / "definitions.tex").read_text(encoding="utf-8")
    used = "".join(p.read_text(encoding="utf-8") for p in (snippets / "small_cnn").glob("*.tex"))
    # every operator name and notation the other snippets print is defined in the definitions snippet
    for symbol in (
        r"\operatorname{corr}",
        r"\operatorname{route}",
        r"\operatorname{reshape}",
        r"\mathbf{1}[",
    ):
        assert symbol in used and symbol in definitions, symbol
    assert r"\delta^{Z_{1}}" in used and r"$\delta^{T}_{i,j}$ is its entry $(i,j)$" in definitions
    assert r"\operatorname{corr}(X, K)_{b,k,i,j} = \sum_{c,m,n} X_{b,c,i+m,j+n}\, K_{k,c,m,n}" in definitions


def test_each_rule_has_a_snippet_without_shapes(snippets):
    shaped = sorted(p for p in (snippets / "small_cnn").glob("d[A-Z]*.tex"))
    assert [p.stem for p in shaped] == ["dA1", "dB1", "dB2", "dF", "dP1", "dW1", "dW2", "dZ1"]
    for path in shaped:
        bare = (snippets / "small_cnn" / f"rule-{path.stem}.tex").read_text(encoding="utf-8")
        assert "shapes:" not in bare and r"\ifdim" not in bare
        assert bare.count(r"\label{") == 1 and rf"\label{{gp:small_cnn:rule-{path.stem}}}" in bare
        # the same rule as the shaped snippet's first row, which states it on one line
        (rule,) = re.findall(r"^  (\\frac.*?) \\label", bare, flags=re.MULTILINE)
        assert rule in path.read_text(encoding="utf-8"), path.stem
    assert (snippets / "small_cnn" / "rule-dZ2.tex").is_file()  # the loss's rule too
