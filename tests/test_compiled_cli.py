"""The command line and the optional extra: `build --compiled`, `check` of a compiled module, no numba.

No numba needed: rendering and checking are pure Python; numba is made unimportable where a test
needs its absence.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from gradproof.codegen import cli
from tests.test_drift import copied_root  # noqa: F401 - the fixture

ROOT = Path(__file__).resolve().parent.parent


def test_rendering_and_check_need_no_numba(tmp_path):
    """With numba unimportable: the compiled module renders, `check` passes, `build --compiled` exits 4
    and writes nothing, and importing a compiled module says which extra it needs."""
    script = f"""
import sys
sys.modules["numba"] = None  # import numba now raises ImportError
from gradproof.codegen import cli
assert cli.main(["check", "small_cnn"]) == 0
assert cli.main(["build", "small_cnn", "--compiled", "--out", {str(tmp_path)!r}]) == 4
try:
    import gradproof.generated.small_cnn_compiled
except ImportError as error:
    assert "pip install 'gradproof[compiled]'" in str(error), error
else:
    raise AssertionError("imported without numba")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "needs numba, the optional extra `compiled`" in done.stderr
    assert not any(tmp_path.iterdir())


def test_check_covers_a_committed_compiled_module(copied_root, capsys):  # noqa: F811 - the fixture
    """A compiled module in the project is checked like every output; once deleted and rebuilt
    without --compiled it is no longer asked for; --compiled writes it again."""
    path = copied_root / "generated" / "small_cnn_compiled.py"
    text = path.read_text()
    path.write_text(text.replace("if g != zero:", "if g > zero:"))
    assert cli.main(["check", "small_cnn"]) == 1
    assert "hand-edited: generated/small_cnn_compiled.py" in capsys.readouterr().out
    path.unlink()  # deleted: the manifest still lists it, so check fails until a rebuild
    assert cli.main(["check", "small_cnn"]) == 1
    assert "gradproof-manifest.toml" in capsys.readouterr().out
    assert cli.main(["build", "small_cnn"]) == 0 and not path.exists()
    assert cli.main(["check", "small_cnn"]) == 0
    assert cli.main(["build", "small_cnn", "--compiled"]) == 0
    assert path.read_text() == (ROOT / "generated" / "small_cnn_compiled.py").read_text()


def test_an_operation_without_a_loop_reading_is_refused_by_name(tmp_path, monkeypatch, capsys):
    """`build --compiled` of a network whose rules use an operation the loops reading cannot print
    exits 2 naming the operation, and writes nothing (the NumPy module and the documents neither)."""
    from gradproof.codegen.compiled.printer import LoopReading

    monkeypatch.delattr(LoopReading, "read_Relu")
    assert cli.main(["build", "small_cnn", "--compiled", "--out", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert "small_cnn: --compiled: the loops reading has no read_Relu (nothing written)" in error
    assert not any(tmp_path.iterdir())
