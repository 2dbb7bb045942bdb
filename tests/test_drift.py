"""Generated files stay in step with the proofs: check, hand edits, determinism, lint."""

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gradproof.codegen import cli
from gradproof.codegen.outputs import render_all
from gradproof.derive import prover
from gradproof.derive.network import build
from gradproof.derive.spec import builtin_names, load

ROOT = Path(__file__).resolve().parent.parent
FAST = ["small_cnn", "mlp"]


@pytest.fixture()
def copied_root(tmp_path, monkeypatch):
    """A copy of the committed outputs that ``check`` and ``build`` treat as the project."""
    for folder in ("generated", "docs/derivations"):
        if (ROOT / folder).is_dir():
            shutil.copytree(ROOT / folder, tmp_path / folder)
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    monkeypatch.setattr(cli, "project_root", lambda: tmp_path)
    return tmp_path


def test_check_passes_on_the_committed_tree():
    assert cli.main(["check"]) == 0


def test_check_fails_after_any_byte_changes(copied_root, capsys):
    path = copied_root / "generated" / "small_cnn.py"
    text = path.read_text()
    position = text.index("dW1 = ")
    path.write_text(text[:position] + "dW1 =  " + text[position + len("dW1 = ") :])
    assert cli.main(["check", *FAST]) == 1
    out = capsys.readouterr().out
    assert "hand-edited: generated/small_cnn.py" in out


def test_check_fails_when_a_file_is_missing(copied_root, capsys):
    (copied_root / "generated" / "mlp.py").unlink()
    assert cli.main(["check", "mlp"]) == 1
    assert "missing: generated/mlp.py" in capsys.readouterr().out


def test_build_never_overwrites_a_hand_edit_without_force(copied_root, capsys):
    path = copied_root / "generated" / "small_cnn.py"
    edited = path.read_text().replace("dZ1 = dA1 * (Z1 > 0)", "dZ1 = dA1 * (Z1 >= 0)")
    path.write_text(edited)
    assert cli.main(["build", "small_cnn"]) == 1
    assert "edited by hand" in capsys.readouterr().err
    assert path.read_text() == edited
    assert cli.main(["build", "small_cnn", "--force"]) == 0
    assert path.read_text() == (ROOT / "generated" / "small_cnn.py").read_text()


def test_build_out_writes_a_fresh_tree(tmp_path):
    assert cli.main(["build", "mlp", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "generated" / "mlp.py").read_text() == (ROOT / "generated" / "mlp.py").read_text()


DIGEST = """
import hashlib, sys
from gradproof.codegen.outputs import render_all
from gradproof.derive import prover
from gradproof.derive.network import build
from gradproof.derive.spec import builtin_names, load
network = build(load(sys.argv[1]))
outputs = render_all(network, prover.prove(network))
for path in sorted(outputs):
    print(path, hashlib.sha256(outputs[path].encode()).hexdigest())
"""


@pytest.mark.parametrize("name", FAST)
def test_outputs_are_byte_identical_under_any_hash_seed(name):
    digests = set()
    for seed in ("0", "1", "4242"):
        result = subprocess.run(
            [sys.executable, "-c", DIGEST, name],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed, "PATH": ""},
            cwd=ROOT,
        )
        digests.add(result.stdout)
    assert len(digests) == 1
    network = build(load(name))
    assert len(render_all(network, prover.prove(network))) == len(next(iter(digests)).splitlines())


@pytest.mark.parametrize("name", [n for n in builtin_names() if n not in FAST])
def test_larger_networks_render_the_committed_bytes_under_another_hash_seed(name):
    result = subprocess.run(
        [sys.executable, "-c", DIGEST, name],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "4242", "PATH": ""},
        cwd=ROOT,
    )
    lines = result.stdout.splitlines()
    assert lines
    for line in lines:
        path, digest = line.split()
        assert hashlib.sha256((ROOT / path).read_bytes()).hexdigest() == digest, path


def test_generated_code_is_formatted_and_lint_clean():
    files = sorted(str(p) for p in (ROOT / "generated").glob("*.py"))
    subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", *files], check=True, cwd=ROOT)
    subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--check", "--no-cache", *files], check=True, cwd=ROOT
    )
