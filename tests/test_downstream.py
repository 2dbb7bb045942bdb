"""gradproof in a user's own repository, under the editable install and under a wheel.

Each test makes a downstream repository in a temporary directory (a git repository with its own
pyproject.toml declaring one spec) and drives the installed ``gradproof`` command in it, as a user
and their CI would: build writes there and nowhere else, check passes clean, fails after a one-byte
tamper and after a stale output is left behind, never checks gradproof's own built-ins, and the
generated module imports from the user's folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from pathlib import Path

import pytest

import gradproof

ROOT = Path(__file__).resolve().parent.parent
SPEC = """\
name = "paper_cnn"
input = [1, 6, 6]
loss = "bce"

[[layers]]
type = "conv2d"
filters = 2
kernel = 3

[[layers]]
type = "relu"

[[layers]]
type = "maxpool2d"
size = 2

[[layers]]
type = "flatten"

[[layers]]
type = "dense"
units = 1

[[layers]]
type = "sigmoid"

[notation]
W1 = "f"
"""
PYPROJECT = """\
[project]
name = "my-paper"
version = "1.0"

[tool.gradproof]
specs = ["specs/paper_cnn.toml"]
"""
BUILTINS = ("small_cnn", "mlp", "sigmoid_cnn")


def _git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "u", "GIT_AUTHOR_EMAIL": "u@example.invalid"}
    env |= {"GIT_COMMITTER_NAME": "u", "GIT_COMMITTER_EMAIL": "u@example.invalid"}
    result = subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True)
    return result.stdout


def make_repository(path: Path) -> Path:
    """A user's repository: pyproject.toml with [tool.gradproof], one spec, nothing built yet."""
    (path / "specs").mkdir(parents=True)
    (path / "specs" / "paper_cnn.toml").write_text(SPEC)
    (path / "pyproject.toml").write_text(PYPROJECT)
    _git(path, "init", "-q")
    _git(path, "add", ".")
    _git(path, "commit", "-q", "-m", "spec")
    return path


@pytest.fixture(scope="session")
def wheel_gradproof(tmp_path_factory) -> Path:
    """The ``gradproof`` command of a wheel built from this checkout, in a fresh virtual environment.

    The wheel is built once per session; the environment has no pip and sees the test environment's
    dependencies (numpy, sympy, jinja2, tqdm) through a path file, so nothing is downloaded, while
    gradproof itself comes only from the wheel.
    """
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"  # a copy: the build's build/ and *.egg-info stay out of the checkout
    listed = _git(ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0")
    for relative in filter(None, listed):
        if (ROOT / relative).is_file():
            (source / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / relative, source / relative)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", work, source],
        check=True,
        capture_output=True,
    )
    (wheel,) = work.glob("gradproof-*.whl")
    tops = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist()}
    assert tops == {"gradproof", wheel.name.split("-py")[0] + ".dist-info"}, tops
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", "--no-index", wheel],
        check=True,
        capture_output=True,
    )
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    import jinja2
    import numpy
    import sympy
    import tqdm

    folders = sorted({str(Path(m.__file__).parent.parent) for m in (numpy, sympy, jinja2, tqdm)})
    Path(purelib, "test_dependencies.pth").write_text("\n".join(folders) + "\n")
    where = subprocess.run(
        [python, "-c", "import gradproof; print(gradproof.__file__)"],
        cwd=work,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert where.startswith(purelib), where
    return venv / "bin" / "gradproof"


def _editable_gradproof() -> Path:
    if not Path(gradproof.__file__).resolve().is_relative_to(ROOT):
        pytest.skip("gradproof is not installed editable from this checkout")
    return Path(sysconfig.get_path("scripts")) / "gradproof"


@pytest.fixture(params=["editable", "wheel"])
def command(request) -> Path:
    """The installed ``gradproof`` console script of each kind of install."""
    if request.param == "editable":
        return _editable_gradproof()
    return request.getfixturevalue("wheel_gradproof")


def run(command: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHASHSEED")}
    return subprocess.run([command, *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=300)


def _checkout_state() -> list[str]:
    """Git's view of gradproof's checkout, caches left out: tests in other worker processes import
    modules and compile numba kernels into ``__pycache__`` meanwhile (the build itself writes none)."""
    status = _git(ROOT, "status", "--porcelain", "--untracked-files=all", "--ignored")
    return [line for line in status.splitlines() if "__pycache__/" not in line]


def test_build_and_check_work_in_the_users_repository(command, tmp_path):
    repo = make_repository(tmp_path / "paper")
    before = _checkout_state()

    built = run(command, "build", cwd=repo / "specs")
    assert built.returncode == 0, built.stderr
    assert _checkout_state() == before  # nothing written into gradproof's checkout
    module = repo / "generated" / "paper_cnn.py"
    assert module.is_file() and (repo / "docs" / "derivations" / "paper_cnn.tex").is_file()
    assert (repo / "gradproof-manifest.toml").is_file()
    assert "Regenerate with `gradproof build specs/paper_cnn.toml`" in module.read_text()
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "outputs")

    for where in (repo, repo / "specs", repo / "generated"):
        clean = run(command, "check", cwd=where)
        assert clean.returncode == 0, clean.stdout + clean.stderr
        assert "paper_cnn: " in clean.stdout and clean.stdout.rstrip().endswith("ok")
        for name in BUILTINS:
            assert name not in clean.stdout + clean.stderr

    # The docstring's command is true: it rebuilds, from anywhere in the repository.
    again = run(command, "build", "specs/paper_cnn.toml", cwd=repo / "docs")
    assert again.returncode == 0, again.stderr
    assert _git(repo, "status", "--porcelain") == ""


def test_check_fails_after_a_one_byte_tamper(command, tmp_path):
    repo = make_repository(tmp_path / "paper")
    assert run(command, "build", cwd=repo).returncode == 0
    kinds = ("generated/paper_cnn.py", "docs/derivations/paper_cnn/dW1.tex", "gradproof-manifest.toml")
    for relative in kinds:  # a one-byte edit of each kind of output
        path = repo / relative
        original = path.read_bytes()
        at = original.index(b"e", 150)
        path.write_bytes(original[:at] + b"E" + original[at + 1 :])
        tampered = run(command, "check", cwd=repo)
        assert tampered.returncode == 1, (relative, tampered.stdout)
        assert f"hand-edited: {relative}" in tampered.stdout
        assert "--force" in tampered.stderr
        path.write_bytes(original)
    assert run(command, "check", cwd=repo).returncode == 0


def test_check_fails_on_a_stale_output_and_build_removes_it(command, tmp_path):
    repo = make_repository(tmp_path / "paper")
    assert run(command, "build", cwd=repo).returncode == 0
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "outputs")
    pooled = repo / "docs" / "derivations" / "paper_cnn" / "dP1.tex"
    assert pooled.is_file()

    spec = repo / "specs" / "paper_cnn.toml"
    spec.write_text(SPEC.replace('[[layers]]\ntype = "maxpool2d"\nsize = 2\n\n', ""))
    unbuilt = run(command, "check", cwd=repo)
    assert unbuilt.returncode == 1
    assert "paper_cnn: stale: docs/derivations/paper_cnn/dP1.tex" in unbuilt.stdout
    assert "gradproof build specs/paper_cnn.toml" in unbuilt.stderr

    rebuilt = run(command, "build", cwd=repo)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "removed docs/derivations/paper_cnn/dP1.tex" in rebuilt.stdout
    assert not pooled.exists()
    assert run(command, "check", cwd=repo).returncode == 0

    _git(repo, "checkout", "HEAD", "--", "docs/derivations/paper_cnn/dP1.tex")  # left behind, e.g. by a merge
    left = run(command, "check", cwd=repo)
    assert left.returncode == 1
    assert "paper_cnn: stale: docs/derivations/paper_cnn/dP1.tex" in left.stdout
    assert "paper_cnn: 31 obligations, 0 failed, 0 files drifted, 1 stale" in left.stdout  # 11 for all sizes


def test_check_reports_the_outputs_of_a_spec_no_longer_declared(command, tmp_path):
    repo = make_repository(tmp_path / "paper")
    assert run(command, "build", cwd=repo).returncode == 0
    (repo / "specs" / "other.toml").write_text(SPEC.replace("paper_cnn", "other_cnn"))
    (repo / "pyproject.toml").write_text(PYPROJECT.replace('"specs/paper_cnn.toml"', '"specs/other.toml"'))
    assert run(command, "build", cwd=repo).returncode == 0
    result = run(command, "check", cwd=repo)
    assert result.returncode == 1
    why = "(paper_cnn, from specs/paper_cnn.toml, is not declared)"
    assert f"paper_cnn: stale: generated/paper_cnn.py {why}" in result.stdout
    assert "git rm " in result.stderr and "generated/paper_cnn.py" in result.stderr


def test_a_user_spec_may_share_a_builtins_name(command, tmp_path):
    repo = make_repository(tmp_path / "paper")
    (repo / "specs" / "paper_cnn.toml").write_text(SPEC.replace("paper_cnn", "small_cnn"))
    assert run(command, "build", cwd=repo).returncode == 0
    text = (repo / "generated" / "small_cnn.py").read_text()
    assert "Regenerate with `gradproof build specs/paper_cnn.toml`" in text
    assert "(N, 2, 4, 4)" in text  # the user's two filters, not the built-in's one
    assert run(command, "check", cwd=repo).returncode == 0


def test_the_generated_module_imports_from_the_users_repository(command, tmp_path):
    repo = make_repository(tmp_path / "paper")
    assert run(command, "build", cwd=repo).returncode == 0
    python = command.parent / "python"
    script = textwrap.dedent(
        """
        import numpy as np
        from generated import paper_cnn
        rng = np.random.default_rng(0)
        params = paper_cnn.init_params(rng)
        loss, grads = paper_cnn.loss_and_grads(params, rng.normal(size=(3, 1, 6, 6)), np.ones((3, 1)))
        print(paper_cnn.__file__, sorted(grads), grads["W1"].shape)
        """
    )
    result = subprocess.run([python, "-c", script], cwd=repo, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    where, rest = result.stdout.split(" ", 1)
    assert Path(where).resolve() == (repo / "generated" / "paper_cnn.py").resolve()
    assert rest.strip() == "['B1', 'B2', 'W1', 'W2'] (2, 1, 3, 3)"


def test_outside_any_project_check_says_what_to_declare(command, tmp_path):
    bare = tmp_path / "bare"
    bare.mkdir()
    result = run(command, "check", cwd=bare)
    assert result.returncode == 2
    assert "[tool.gradproof]" in result.stderr
    assert not any(bare.iterdir())


def test_editable_install_checks_its_own_builtins_only_in_its_own_repository():
    command = _editable_gradproof()
    result = run(command, "check", "mlp", cwd=ROOT / "docs")
    assert result.returncode == 0, result.stdout + result.stderr
    # 17 at its sizes, 5 theorems for all sizes (its two dense layers state one) and their composition
    assert "mlp: 23 obligations" in result.stdout


HOSTILE_STYLE = """
[tool.ruff]
line-length = 60

[tool.ruff.format]
quote-style = "single"

[tool.black]
line-length = 60
"""


STRICT_LINT = """
[tool.ruff.lint]
select = ["E", "W", "F", "N", "I", "B", "UP"]

[tool.ruff.lint.per-file-ignores]
"generated/*" = ["E501", "N803", "N806"]
"""


def test_the_users_formatters_leave_the_generated_files_unchanged(tmp_path):
    """Real ruff and black, with the defaults and with a project style far from gradproof's own."""
    repo = make_repository(tmp_path / "paper")
    assert run(_editable_gradproof(), "build", cwd=repo).returncode == 0
    files = sorted(str(p.relative_to(repo)) for p in (repo / "generated").glob("*.py"))
    before = {f: (repo / f).read_bytes() for f in files}
    tools = [["ruff", "format", "--no-cache"], ["black", "-q"]]
    for style in ("", HOSTILE_STYLE):
        (repo / "pyproject.toml").write_text(PYPROJECT + style)
        for tool in tools:
            subprocess.run([sys.executable, "-m", *tool, "."], cwd=repo, check=True, capture_output=True)
            assert {f: (repo / f).read_bytes() for f in files} == before, (tool, style)
    lint = [sys.executable, "-m", "ruff", "check", "--no-cache"]
    assert subprocess.run([*lint, "--isolated", *files], cwd=repo, capture_output=True).returncode == 0
    (repo / "pyproject.toml").write_text(PYPROJECT + STRICT_LINT)  # the README's exemptions suffice
    assert subprocess.run([*lint, *files], cwd=repo, capture_output=True).returncode == 0
    (repo / "pyproject.toml").write_text(PYPROJECT + STRICT_LINT.split("[tool.ruff.lint.per")[0])
    assert subprocess.run([*lint, *files], cwd=repo, capture_output=True).returncode == 1
    assert run(_editable_gradproof(), "check", cwd=repo).returncode == 0


def test_the_cli_manners_hold_under_each_install(command, tmp_path):
    repo = make_repository(tmp_path / "paper")
    version = run(command, "--version", cwd=repo)
    assert (version.returncode, version.stdout) == (0, f"gradproof {gradproof.__version__}\n")

    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    process = subprocess.Popen([command, "networks"], cwd=repo, **pipes)
    first = sorted(path.stem for path in (ROOT / "derive" / "networks").glob("*.toml"))[0]
    assert process.stdout.readline().startswith(f"{first}: ".encode())
    process.stdout.close()  # like `gradproof networks | head -1`
    assert (process.wait(timeout=120), process.stderr.read()) == (0, b"")

    spec = repo / "specs" / "paper_cnn.toml"
    spec.write_bytes(b"\xef\xbb\xbf" + spec.read_bytes())  # saved with a byte-order mark
    assert run(command, "build", cwd=repo).returncode == 0

    a_string = PYPROJECT.replace('["specs/paper_cnn.toml"]', '"specs/paper_cnn.toml"')
    (repo / "pyproject.toml").write_text(a_string)
    wrong = run(command, "check", cwd=repo)
    assert wrong.returncode == 2
    assert "specs: must be a list of spec file paths relative to the project root, got" in wrong.stderr
    assert 'write specs = ["specs/paper_cnn.toml"]' in wrong.stderr

    (repo / "pyproject.toml").write_text(PYPROJECT)
    (repo / "blocked").write_text("")
    unwritable = run(command, "build", "--out", str(repo / "blocked" / "out"), cwd=repo)
    assert unwritable.returncode == 3 and "cannot write the outputs" in unwritable.stderr
    assert run(command, "check", cwd=repo).returncode == 0
