"""Bad specs: one clear message naming file, layer and field; exit 2; nothing written."""

import textwrap

import pytest

from codegen.cli import main

GOOD = """\
name = "net"
input = [1, 6, 6]
loss = "bce"
[[layers]]
type = "conv2d"
filters = 1
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
"""

CASES = {
    "malformed_toml": (GOOD.replace('loss = "bce"', 'loss = "bce'), ["malformed TOML"]),
    "unknown_layer": (
        GOOD.replace('type = "relu"', 'type = "tanh"'),
        ["layers[1].type", "unknown layer type 'tanh'"],
    ),
    "unknown_field": (
        GOOD.replace("kernel = 3", "kernel = 3\nstride = 2"),
        ["layers[0].stride", "unknown field"],
    ),
    "unknown_top_level": ("optimizer = 1\n" + GOOD, ["optimizer", "unknown field"]),
    "missing_kernel": (GOOD.replace("kernel = 3\n", ""), ["layers[0].kernel", "missing required field"]),
    "missing_loss": (GOOD.replace('loss = "bce"\n', ""), ["loss", "missing required field"]),
    "string_size": (GOOD.replace("kernel = 3", 'kernel = "3"'), ["layers[0].kernel", "positive integer"]),
    "negative_size": (GOOD.replace("units = 1", "units = -4"), ["layers[4].units", "between 1 and"]),
    "float_size": (GOOD.replace("size = 2", "size = 2.0"), ["layers[2].size", "positive integer"]),
    "bool_size": (GOOD.replace("filters = 1", "filters = true"), ["layers[0].filters", "positive integer"]),
    "kernel_too_large": (
        GOOD.replace("kernel = 3", "kernel = 7"),
        ["layers[0].kernel", "larger than the 6x6 input"],
    ),
    "pooling_does_not_divide": (GOOD.replace("size = 2", "size = 3"), ["layers[2].size", "does not divide"]),
    "dense_before_flatten": (
        GOOD.replace('type = "flatten"\n', 'type = "relu"\n'),
        ["layers[4].type", "flatten"],
    ),
    "bce_without_sigmoid": (GOOD.replace('[[layers]]\ntype = "sigmoid"\n', ""), ["loss", "sigmoid"]),
    "bad_loss": (GOOD.replace('loss = "bce"', 'loss = "hinge"'), ["loss", "one of bce, mse"]),
    "bad_reduction": (GOOD + 'reduction = "max"\n', ["reduction"]),
    "name_not_identifier": (GOOD.replace('name = "net"', 'name = "x\\nimport os"'), ["name", "identifier"]),
    "notation_injection": (GOOD + '[notation]\nW1 = "\\\\input{/etc/passwd}"\n', ["notation.W1"]),
    "notation_unknown_tensor": (GOOD + '[notation]\nQ9 = "q"\n', ["notation.Q9", "unknown tensor"]),
    "too_large": (
        GOOD.replace("[1, 6, 6]", "[3, 400, 400]").replace("filters = 1", "filters = 64"),
        ["input", "too large for element-wise proof", "multiply-adds"],
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("command", ["prove", "build"])
def test_bad_spec_exits_two_names_the_field_and_writes_nothing(case, command, tmp_path, capsys):
    text, expected = CASES[case]
    spec = tmp_path / "spec.toml"
    spec.write_text(text)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    args = [command, str(spec)] + (["--out", str(out_dir)] if command == "build" else [])
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err  # one clear line
    assert str(spec) in err
    for part in expected:
        assert part in err
    assert list(out_dir.iterdir()) == []


def test_the_good_spec_is_accepted(tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_text(textwrap.dedent(GOOD))
    assert main(["prove", str(spec), "--json"]) == 0


def test_missing_file_exits_two(tmp_path, capsys):
    assert main(["prove", str(tmp_path / "nope.toml")]) == 2
    assert "nope.toml" in capsys.readouterr().err
