"""Generated files stay in step with the proofs: check, hand edits, determinism, lint."""

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gradproof.codegen import cli, manifest
from gradproof.codegen.outputs import render_all
from gradproof.codegen.writing import with_header
from gradproof.derive import prover
from gradproof.derive.network import build
from gradproof.derive.spec import builtin_names, load

ROOT = Path(__file__).resolve().parent.parent
FAST = ["small_cnn", "mlp"]


@pytest.fixture()
def copied_root(tmp_path, monkeypatch):
    """A copy of the committed outputs that ``check`` and ``build`` treat as the project."""
    for folder in ("generated", "docs/derivations", "examples"):  # examples: the specs pyproject declares
        if (ROOT / folder).is_dir():
            shutil.copytree(ROOT / folder, tmp_path / folder)
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copy(ROOT / "gradproof-manifest.toml", tmp_path / "gradproof-manifest.toml")
    monkeypatch.chdir(tmp_path)
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
    edited = path.read_text().replace("* (M1 > 0)", "* (M1 >= 0)")
    assert edited != path.read_text()
    path.write_text(edited)
    assert cli.main(["build", "small_cnn"]) == 1
    assert "edited by hand" in capsys.readouterr().err
    assert path.read_text() == edited
    assert cli.main(["build", "small_cnn", "--force"]) == 0
    assert path.read_text() == (ROOT / "generated" / "small_cnn.py").read_text()


def _generated_file(root, relative, network, body):
    (root / relative).parent.mkdir(parents=True, exist_ok=True)
    (root / relative).write_text(with_header(relative, network, body))


def test_check_reports_a_generated_file_it_would_not_write_now(copied_root, capsys):
    _generated_file(copied_root, "generated/old_net.py", "old_net", "x = 1\n")
    assert cli.main(["check", "mlp"]) == 0  # a subset check leaves other networks' files alone
    capsys.readouterr()
    assert cli.main(["check"]) == 1
    captured = capsys.readouterr()
    assert "old_net: stale: generated/old_net.py (old_net is not declared)" in captured.out
    assert "git rm generated/old_net.py" in captured.err


def test_build_removes_the_files_of_its_network_that_it_no_longer_writes(copied_root, capsys):
    listed = "docs/derivations/mlp/dP1.tex"
    _generated_file(copied_root, listed, "mlp", "% from an older mlp\n")
    _generated_file(copied_root, "generated/mlp_extra.py", "mlp", "y = 2\n")
    entries = manifest.read(copied_root)
    entries["mlp"] = manifest.Entry(entries["mlp"].spec, (*entries["mlp"].files, listed))
    (copied_root / manifest.FILENAME).write_text(manifest.render(entries))
    assert cli.main(["check", "mlp"]) == 1
    out = capsys.readouterr().out
    assert f"mlp: stale: {listed} (written by an earlier build, not written now)" in out
    assert "mlp: stale: generated/mlp_extra.py" in out

    (copied_root / listed).write_text((copied_root / listed).read_text() + "% my note\n")
    assert cli.main(["build", "mlp"]) == 1  # a hand-edited stale file is deleted only with --force
    assert "--force" in capsys.readouterr().err and (copied_root / listed).is_file()
    assert cli.main(["build", "mlp", "--force"]) == 0
    assert not (copied_root / listed).exists() and not (copied_root / "generated" / "mlp_extra.py").exists()
    assert (copied_root / manifest.FILENAME).read_text() == (ROOT / manifest.FILENAME).read_text()
    assert cli.main(["check", "mlp"]) == 0


def test_build_out_writes_a_fresh_tree(tmp_path):
    assert cli.main(["build", "mlp", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "generated" / "mlp.py").read_text() == (ROOT / "generated" / "mlp.py").read_text()


DIGEST = """
import hashlib, sys
from gradproof.codegen.outputs import render_all
from gradproof.codegen.writing import with_header
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


RUFF = [sys.executable, "-m", "ruff"]


def test_generated_code_is_formatted_and_lint_clean(tmp_path):
    files = sorted(str(p) for p in (ROOT / "generated").glob("*.py") if p.name != "__init__.py")
    for config in (["--isolated"], []):  # ruff's defaults, then this repository's selection
        subprocess.run([*RUFF, "check", "--no-cache", *config, *files], check=True, cwd=ROOT)
    # The files carry `# fmt: off`; without it, the code is still as this repository's ruff formats it.
    unguarded = []
    for file in files:
        text = Path(file).read_text()
        assert text.splitlines()[1] == "# fmt: off", file
        unguarded.append(tmp_path / Path(file).name)
        unguarded[-1].write_text(text.replace("# fmt: off\n", "", 1))
    config = ["--config", str(ROOT / "pyproject.toml")]
    subprocess.run([*RUFF, "format", "--check", "--no-cache", *config, *unguarded], check=True)
