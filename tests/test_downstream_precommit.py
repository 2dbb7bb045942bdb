"""The pre-commit hook, run by the real ``pre-commit try-repo`` against this checkout.

pre-commit installs gradproof from the checkout into an environment of its own (``language:
python``), as a downstream repository's hook would, and runs ``gradproof check`` in the
repository: it passes on committed, fresh outputs and fails after a one-byte tamper.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_downstream import ROOT, _editable_gradproof, _git, make_repository, run


def _try_repo(repo: Path, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PRE_COMMIT_HOME": str(home), "PRE_COMMIT_COLOR": "never"}
    env.pop("PYTHONPATH", None)
    command = [sys.executable, "-m", "pre_commit", "try-repo", str(ROOT), "gradproof-check", "--all-files"]
    return subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.skipif(shutil.which("git") is None, reason="pre-commit needs git")
def test_the_hook_passes_on_fresh_outputs_and_fails_after_a_tamper(tmp_path):
    repo = make_repository(tmp_path / "paper")
    assert run(_editable_gradproof(), "build", cwd=repo).returncode == 0
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "outputs")

    clean = _try_repo(repo, tmp_path / "pre-commit-home")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "gradproof check" in clean.stdout and "Passed" in clean.stdout

    module = repo / "generated" / "paper_cnn.py"
    data = module.read_bytes()
    module.write_bytes(data.replace(b"dW1 = ", b"dW1 =  ", 1))
    tampered = _try_repo(repo, tmp_path / "pre-commit-home")
    assert tampered.returncode == 1
    assert "Failed" in tampered.stdout and "hand-edited: generated/paper_cnn.py" in tampered.stdout
