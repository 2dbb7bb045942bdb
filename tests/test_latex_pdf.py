"""gradproof build --pdf: the document compiled beside its .tex; without TeX, a clear error, no output."""

import os
import shutil
import subprocess
import sys

import pytest

from gradproof.codegen.cli import EXIT_TOOL_MISSING

needs_tex = pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed")


def gradproof(*args, cwd, env=None):
    return subprocess.run(
        [sys.executable, "-m", "gradproof.codegen.cli", *args],
        cwd=cwd,
        env=env or dict(os.environ),
        capture_output=True,
        text=True,
        timeout=600,
    )


@needs_tex
def test_build_pdf_writes_the_document_as_pdf(tmp_path):
    result = gradproof("build", "mlp", "--out", str(tmp_path), "--pdf", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    pdf = tmp_path / "docs" / "derivations" / "mlp.pdf"
    assert pdf.read_bytes().startswith(b"%PDF-")
    assert f"wrote {pdf}" in result.stdout
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True)
    if info.returncode == 0:
        pages = int(next(line.split()[-1] for line in info.stdout.splitlines() if line.startswith("Pages:")))
        assert pages >= 4
    # nothing of the TeX run is left beside the outputs
    leftovers = [
        p.name for p in (tmp_path / "docs" / "derivations").iterdir() if p.suffix in (".aux", ".log")
    ]
    assert leftovers == []


def test_build_pdf_without_tex_says_so_and_writes_nothing(tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    env = {**os.environ, "PATH": str(empty)}
    result = gradproof("build", "mlp", "--out", str(tmp_path / "out"), "--pdf", cwd=tmp_path, env=env)
    assert result.returncode == EXIT_TOOL_MISSING == 4
    assert "--pdf needs TeX: neither latexmk nor pdflatex is on PATH" in result.stderr
    assert not (tmp_path / "out").exists()
