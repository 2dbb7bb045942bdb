"""Nothing half-written: a failing or interrupted build leaves the previous files and no temporaries."""

import os
import stat
from pathlib import Path

import pytest

from gradproof.codegen import cli, writing
from gradproof.codegen.writing import HandEditedError, hand_edited, with_header, write_all

ROOT = Path(__file__).resolve().parent.parent


def outputs(version: str) -> dict[str, str]:
    """Three generated files (two folders), whose bodies name a version."""
    files = {}
    for relative in ("generated/net.py", "docs/derivations/net.tex", "docs/derivations/net/dW1.tex"):
        files[relative] = with_header(relative, "net", f"body of {relative}, version {version}\n")
    return files


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (temporaries included) and its bytes."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture()
def built(tmp_path) -> Path:
    """A tree holding version 1 of every output except the last, which the next build creates."""
    old = outputs("1")
    del old["generated/net.py"]
    write_all(tmp_path, old)
    return tmp_path


def failing_after(calls: int, error: BaseException):
    """``os.replace`` that works ``calls`` times, then raises ``error`` once."""
    real, count = os.replace, [0]

    def replace(source, target):
        count[0] += 1
        if count[0] == calls + 1:
            raise error
        return real(source, target)

    return replace


@pytest.mark.parametrize("error", [OSError(28, "No space left on device"), KeyboardInterrupt()])
@pytest.mark.parametrize("calls", [0, 1, 2])
def test_a_build_failing_at_any_rename_changes_nothing(built, monkeypatch, calls, error):
    before = snapshot(built)
    monkeypatch.setattr(writing.os, "replace", failing_after(calls, error))
    with pytest.raises(type(error)):
        write_all(built, outputs("2"))
    assert snapshot(built) == before  # the renamed files are back, the new one gone, no temporaries


def test_a_build_failing_while_staging_changes_nothing(built, monkeypatch):
    before = snapshot(built)
    real, count = os.fdopen, [0]

    def fdopen(*args, **kwargs):
        count[0] += 1
        if count[0] == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(writing.os, "fdopen", fdopen)
    with pytest.raises(KeyboardInterrupt):
        write_all(built, outputs("2"))
    assert snapshot(built) == before


def test_a_successful_build_leaves_only_the_outputs(built):
    changed = write_all(built, outputs("2"))
    assert len(changed) == 3
    assert snapshot(built) == {k: v.encode() for k, v in outputs("2").items()}
    assert write_all(built, outputs("2")) == []  # unchanged files are not rewritten


def test_new_files_are_readable_and_replaced_files_keep_their_mode(built):
    tex = built / "docs/derivations/net.tex"
    os.chmod(tex, 0o640)
    mask = os.umask(0o022)
    try:
        write_all(built, outputs("2"))
    finally:
        os.umask(mask)
    assert stat.S_IMODE((built / "generated/net.py").stat().st_mode) == 0o644
    assert stat.S_IMODE(tex.stat().st_mode) == 0o640


def test_a_hand_edit_blocks_the_whole_build_without_force(built):
    edited = built / "docs/derivations/net/dW1.tex"
    edited.write_text(edited.read_text() + "% my note\n")
    before = snapshot(built)
    with pytest.raises(HandEditedError, match="dW1.tex: edited by hand"):
        write_all(built, outputs("2"))
    assert snapshot(built) == before  # not even the other, unedited files
    write_all(built, outputs("2"), force=True)
    assert snapshot(built) == {k: v.encode() for k, v in outputs("2").items()}


def test_a_file_gradproof_did_not_write_counts_as_hand_edited(tmp_path):
    mine = tmp_path / "generated" / "net.py"
    mine.parent.mkdir()
    mine.write_text("print('my own module')\n")
    assert hand_edited(mine.read_text())
    with pytest.raises(HandEditedError):
        write_all(tmp_path, outputs("1"))
    assert mine.read_text() == "print('my own module')\n"


def test_the_cli_reports_a_failed_write_and_keeps_the_previous_build(tmp_path, monkeypatch, capsys):
    assert cli.main(["build", "mlp", "--out", str(tmp_path)]) == 0
    for missing in ("docs/derivations/mlp.tex", "generated/mlp.py"):  # the next build writes these two
        (tmp_path / missing).unlink()
    before = snapshot(tmp_path)
    monkeypatch.setattr(writing.os, "replace", failing_after(1, OSError(13, "Permission denied")))
    capsys.readouterr()
    assert cli.main(["build", "mlp", "--out", str(tmp_path)]) == cli.EXIT_IO == 3
    err = capsys.readouterr().err
    assert "cannot write the outputs" in err and "Permission denied" in err
    assert err.count("\n") == 1
    assert snapshot(tmp_path) == before
