"""The command line: table, JSON, the list of networks, exit codes."""

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from gradproof.codegen import cli
from gradproof.codegen.cli import main


def test_prove_default_prints_table_and_exits_zero(capsys):
    assert main(["prove"]) == 0
    out = capsys.readouterr().out
    assert "gradproof: small_cnn" in out
    # 23 at the network's sizes, 11 theorems for all sizes (one per distinct rule) and their composition
    assert "35 obligations: 35 proven, 0 refuted, 0 not proven" in out
    assert "proven     parametric  maxpool2d: dL/dA1 (all sizes)" in out
    for m in range(3):
        for n in range(3):
            assert f"dL/dW1[0,0,{m},{n}]  proven" in out


def test_prove_json_is_machine_readable(capsys):
    assert main(["prove", "small_cnn", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["network"] == "small_cnn" and report["holds"] is True
    levels = {r["level"] for r in report["records"]}
    assert levels == {
        "identity",
        "lemma",
        "convention",
        "parametric",
        "composition",
        "local",
        "end-to-end",
        "count",
        "batch",
    }
    assert all(r["holds"] and r["verdict"] == "proven" and r["seconds"] >= 0 for r in report["records"])
    conv = next(r for r in report["records"] if r["name"] == "conv2d: dL/dW1 (all sizes)")
    assert conv["level"] == "parametric" and "H - K_h >= 0" in conv["hypotheses"]
    assert conv["statement"] == "dL/dW1 = correlate(X, dL/dZ1) for all C, F, H, K_h, K_w, N, W"


def test_networks_lists_the_builtins(capsys):
    assert main(["networks"]) == 0
    out = capsys.readouterr().out
    for name in ("small_cnn (default)", "mlp", "sigmoid_cnn"):
        assert name in out
    assert "15 parameters" in out


def test_usage_error_exits_two(capsys):
    assert main(["prove", "--no-such-flag"]) == 2
    assert main([]) == 2


def test_unknown_network_exits_two(capsys):
    assert main(["prove", "no_such_network"]) == 2
    assert "no_such_network" in capsys.readouterr().err


# ------------------------------------------------------------------ manners

ROOT = Path(__file__).resolve().parent.parent
GRADPROOF = [sys.executable, "-m", "gradproof.codegen.cli"]


@pytest.fixture()
def project(tmp_path, monkeypatch):
    """A copy of this repository's outputs, pyproject.toml and manifest, as the working directory."""
    for folder in ("generated", "docs/derivations", "examples"):  # examples: the specs pyproject declares
        shutil.copytree(ROOT / folder, tmp_path / folder)
    for name in ("pyproject.toml", "gradproof-manifest.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_version_is_the_distributions():
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    result = subprocess.run([*GRADPROOF, "--version"], capture_output=True, text=True)
    assert (result.returncode, result.stdout) == (0, f"gradproof {declared}\n")


def test_exit_codes_are_distinct_and_documented():
    codes = (cli.EXIT_OK, cli.EXIT_FAILED, cli.EXIT_BAD_INPUT, cli.EXIT_IO)
    assert codes == (0, 1, 2, 3)
    readme = (ROOT / "README.md").read_text()
    assert "Exit codes: 0 everything holds; 1 a proof failed" in readme and "3 an I/O error" in readme
    help_text = " ".join(cli.parser().format_help().split())
    assert "exit codes: 0 ok, 1 failed proof, drift or stale output, 2 bad input, 3 I/O error" in help_text


def test_an_unwritable_out_is_an_io_error(tmp_path, capsys):
    (tmp_path / "a-file").write_text("")
    assert cli.main(["build", "mlp", "--out", str(tmp_path / "a-file" / "out")]) == 3
    err = capsys.readouterr().err
    assert "cannot write the outputs" in err and "a-file" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_a_spec_and_a_pyproject_with_a_byte_order_mark_are_read(tmp_path, monkeypatch, capsys):
    spec = (ROOT / "derive" / "networks" / "mlp.toml").read_text()
    (tmp_path / "net.toml").write_bytes("\ufeff".encode() + spec.replace('"mlp"', '"bom_net"').encode())
    (tmp_path / "pyproject.toml").write_bytes(b'\xef\xbb\xbf[tool.gradproof]\nspecs = ["net.toml"]\n')
    monkeypatch.chdir(tmp_path)
    assert cli.main(["prove", "net.toml"]) == 0
    assert cli.main(["build"]) == 0
    assert cli.main(["check"]) == 0
    assert "bom_net: 23 obligations, 0 failed, 0 files drifted, 0 stale" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("table", "named"),
    [
        ('specs = "specs/x.toml"', "[tool.gradproof] specs: must be a list of spec file paths"),
        (
            "specs = [1]",
            "[tool.gradproof] specs: must be a list of spec file paths relative to the project root, got [1]",
        ),
        ('builtins = "yes"', "[tool.gradproof] builtins: must be true or false"),
        ('spec = ["x.toml"]', "[tool.gradproof] spec: unknown key (known: specs, builtins)"),
        ('specs = ["missing.toml"]', "[tool.gradproof] specs[0]: no such spec file"),
    ],
)
def test_a_wrong_tool_gradproof_value_is_named(tmp_path, monkeypatch, capsys, table, named):
    (tmp_path / "pyproject.toml").write_text(f"[tool.gradproof]\n{table}\n")
    monkeypatch.chdir(tmp_path)
    for command in (["check"], ["build"]):
        assert cli.main(command) == 2
        err = capsys.readouterr().err
        assert named in err and "pyproject.toml" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pyproject.toml"]


def test_a_string_where_the_table_belongs_is_named(tmp_path, monkeypatch, capsys):
    (tmp_path / "pyproject.toml").write_text('[tool]\ngradproof = "specs/x.toml"\n')
    monkeypatch.chdir(tmp_path)
    assert cli.main(["check"]) == 2
    assert "tool.gradproof: must be a table ([tool.gradproof]), got 'specs/x.toml'" in capsys.readouterr().err


def test_two_specs_of_one_name_are_bad_input(tmp_path, monkeypatch, capsys):
    spec = (ROOT / "derive" / "networks" / "mlp.toml").read_text()
    for name in ("a.toml", "b.toml"):
        (tmp_path / name).write_text(spec)
    (tmp_path / "pyproject.toml").write_text('[tool.gradproof]\nspecs = ["a.toml", "b.toml"]\n')
    monkeypatch.chdir(tmp_path)
    assert cli.main(["build"]) == 2
    assert "a.toml and b.toml both define a network named 'mlp'" in capsys.readouterr().err


def test_hints_are_true_and_counted(project, capsys):
    module = project / "generated" / "mlp.py"
    module.write_text(module.read_text().replace("import numpy as np", "import numpy as np  # mine"))
    assert cli.main(["check", "mlp"]) == 1
    captured = capsys.readouterr()
    assert "mlp: 23 obligations, 0 failed, 1 file drifted, 0 stale" in captured.out
    assert "hand-edited files are overwritten only when forced: gradproof build mlp --force" in captured.err
    (project / "docs" / "derivations" / "mlp.tex").unlink()
    (project / "docs" / "derivations" / "mlp" / "dW1.tex").unlink()
    assert cli.main(["check", "mlp"]) == 1
    captured = capsys.readouterr()
    assert "mlp: 23 obligations, 0 failed, 3 files drifted, 0 stale" in captured.out
    assert "regenerate after review: gradproof build mlp\n" in captured.err
    assert cli.main(["build", "mlp", "--force"]) == 0
    assert cli.main(["check", "mlp"]) == 0


def _closed_early(args, cwd, lines_read):
    """Run the command with a reader that goes away after ``lines_read`` lines (like ``| head -N``)."""
    process = subprocess.Popen(args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    for _ in range(lines_read):
        process.stdout.readline()
    process.stdout.close()
    err = process.stderr.read().decode()
    return process.wait(timeout=300), err


def test_a_closed_pipe_ends_the_output_quietly_and_keeps_the_verdict(project):
    code, err = _closed_early([*GRADPROOF, "networks"], project, lines_read=1)
    assert (code, err) == (0, "")
    code, err = _closed_early([*GRADPROOF, "prove", "mlp", "--json"], project, lines_read=0)
    assert (code, err) == (0, "")
    code, err = _closed_early([*GRADPROOF, "check", "mlp"], project, lines_read=0)
    assert (code, err) == (0, "")
    tex = project / "docs" / "derivations" / "mlp.tex"
    tex.write_text(tex.read_text() + "%")
    code, err = _closed_early([*GRADPROOF, "check", "mlp"], project, lines_read=0)
    assert code == 1 and "Traceback" not in err and "--force" in err


def test_a_large_network_is_proven_by_its_theorems_and_says_so(capsys):
    """digits8_cnn4's end-to-end proof took 666 s entry by entry; its theorems and composition prove it."""
    assert main(["prove", "benchmarks/specs/digits8_cnn4.toml", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    (composition,) = [r for r in report["records"] if r["level"] == "composition"]
    assert composition["verdict"] == "proven"
    assert "end to end not run" in composition["statement"]
    assert not [r for r in report["records"] if r["level"] == "end-to-end"]
    # With a budget large enough, the element-wise end-to-end proof would run: the record says which.
    assert main(["prove", "small_cnn", "--json", "--budget", "0"]) == 0
    report = json.loads(capsys.readouterr().out)
    (composition,) = [r for r in report["records"] if r["level"] == "composition"]
    assert "local none; end to end not run" in composition["statement"]


def test_a_long_proof_says_what_it_does_without_a_terminal():
    """Without a terminal, a proof past the delay names its phases on stderr; a quick one is quiet."""

    def prove(delay: str) -> subprocess.CompletedProcess:
        env = {**os.environ, "GRADPROOF_PROGRESS_DELAY": delay}
        command = [sys.executable, "-m", "gradproof.codegen.cli", "prove", "small_cnn"]
        return subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)

    narrated = prove("0")
    assert narrated.returncode == 0, narrated.stderr
    assert "gradproof: proving small_cnn: end-to-end proof" in narrated.stderr
    quiet = prove("600")
    assert quiet.returncode == 0 and "gradproof: proving" not in quiet.stderr


@pytest.mark.parametrize("budget", ["-1", "nan", "inf", "soon"])
def test_a_bad_budget_is_bad_input_named(budget, capsys):
    assert main(["prove", "mlp", "--budget", budget]) == 2
    captured = capsys.readouterr()
    assert "--budget" in captured.err and repr(budget) in captured.err and captured.out == ""
