"""``gradproof build --pdf``: each built derivation document compiled to PDF beside it, with latexmk.

The document is compiled in a temporary folder (its snippets need not be on disk there: the
standalone document holds every result itself), so no auxiliary file reaches the project; only
``docs/derivations/<name>.pdf`` is written. latexmk runs pdflatex as often as the references need;
without latexmk, pdflatex runs twice.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path


class TexMissing(RuntimeError):  # noqa: N818 - named for what happened
    """Neither latexmk nor pdflatex is on PATH."""


class TexFailed(RuntimeError):  # noqa: N818 - named for what happened
    """The TeX run failed; the message carries the end of its log."""


def compiler() -> list[list[str]]:
    """The commands that compile ``document.tex`` to ``document.pdf`` here, or ``TexMissing``."""
    latexmk, pdflatex = shutil.which("latexmk"), shutil.which("pdflatex")
    if latexmk and pdflatex:
        return [[latexmk, "-pdf", "-interaction=nonstopmode", "-halt-on-error", "-quiet", "document.tex"]]
    if pdflatex:
        once = [pdflatex, "-interaction=nonstopmode", "-halt-on-error", "document.tex"]
        return [once, once]
    raise TexMissing(
        "--pdf needs TeX: neither latexmk nor pdflatex is on PATH "
        "(Debian: apt-get install latexmk texlive-latex-recommended texlive-latex-extra texlive-pictures)"
    )


def compile_pdf(tex: str, target: Path, timeout: float = 600) -> Path:
    """Compile one document's text to ``target`` (a .pdf path); ``TexFailed`` with the log's end."""
    commands = compiler()
    with tempfile.TemporaryDirectory(prefix="gradproof-pdf-") as folder:
        (Path(folder) / "document.tex").write_text(tex, encoding="utf-8")
        for command in commands:
            result = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=timeout)
            if result.returncode != 0:
                log = Path(folder) / "document.log"
                tail = (
                    log.read_text(encoding="utf-8", errors="replace")[-1500:]
                    if log.is_file()
                    else result.stdout[-1500:]
                )
                raise TexFailed(
                    f"{Path(command[0]).name} failed on {target.with_suffix('.tex').name}:\n{tail}"
                )
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(folder) / "document.pdf", target)
    return target
