"""Bad specs: one clear message naming file, layer and field; exit 2; nothing written."""

import textwrap
import time

import pytest

from gradproof.codegen import cli
from gradproof.codegen.cli import main
from gradproof.derive import prover
from gradproof.derive import spec as specs

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
        GOOD.replace('type = "relu"', 'type = "gelu"'),
        ["layers[1].type", "unknown layer type 'gelu'"],
    ),
    "unknown_field": (
        GOOD.replace("kernel = 3", "kernel = 3\ndilation = 2"),
        ["layers[0].dilation", "unknown field"],
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
    "dense_before_flatten": (
        GOOD.replace('type = "flatten"\n', 'type = "relu"\n'),
        ["layers[4].type", "flatten"],
    ),
    "bce_without_sigmoid": (GOOD.replace('[[layers]]\ntype = "sigmoid"\n', ""), ["loss", "sigmoid"]),
    "bad_loss": (GOOD.replace('loss = "bce"', 'loss = "hinge"'), ["loss", "one of bce, mse"]),
    "bad_reduction": ('reduction = "max"\n' + GOOD, [": reduction: must be one of mean, sum"]),
    "name_not_identifier": (GOOD.replace('name = "net"', 'name = "x\\nimport os"'), ["name", "identifier"]),
    "notation_injection": (GOOD + '[notation]\nW1 = "\\\\input{/etc/passwd}"\n', ["notation.W1"]),
    "notation_unknown_tensor": (GOOD + '[notation]\nQ9 = "q"\n', ["notation.Q9", "unknown tensor"]),
    "too_large": (
        GOOD.replace("[1, 6, 6]", "[3, 200, 200]").replace("filters = 1", "filters = 64"),
        ["input", "too large for element-wise proof", "multiply-adds", "smaller network"],
    ),
    # the largest sizes a spec may give: only arithmetic may look at them
    "too_large_at_the_limits": (
        GOOD.replace("[1, 6, 6]", "[10000, 10000, 10000]").replace("filters = 1", "filters = 10000"),
        ["input", "too large for element-wise proof", "input entries", "smaller network"],
    ),
    # a pooling layer reads far more entries than it writes: the input is counted
    "too_large_pooled_away": (
        GOOD.replace("[1, 6, 6]", "[1, 6000, 6000]")
        .replace('type = "conv2d"\nfilters = 1\nkernel = 3', 'type = "maxpool2d"\nsize = 6000')
        .replace('[[layers]]\ntype = "maxpool2d"\nsize = 2\n', ""),
        ["input", "36,000,000 input entries", "smaller network"],
    ),
    "too_deep": (
        GOOD.replace('[[layers]]\ntype = "relu"\n', '[[layers]]\ntype = "relu"\n' * 70),
        ["layers", "too deep for element-wise proof", "75 layers", "smaller network"],
    ),
    "too_many_chain_products": (
        'name = "deep"\ninput = [8]\nloss = "mse"\n'
        + '[[layers]]\ntype = "dense"\nunits = 8\n[[layers]]\ntype = "sigmoid"\n' * 6,
        ["layers[0].units", "chain-rule products", "sigmoid", "smaller network"],
    ),
    "zero_size": (GOOD.replace("[1, 6, 6]", "[1, 0, 6]"), ["input", "between 1 and"]),
    "input_not_three_dimensional": (
        GOOD.replace("[1, 6, 6]", "[6, 6]"),
        ["input", "[channels, height, width]"],
    ),
    "negative_batch": ("batch = -3\n" + GOOD, ["batch", "between 1 and"]),
    "bias_not_boolean": (
        GOOD.replace("units = 1", "units = 1\nbias = 1"),
        ["layers[4].bias", "true or false"],
    ),
    "layer_without_type": (GOOD.replace('type = "relu"\n', ""), ["layers[1].type", "missing required field"]),
    "layers_not_tables": (GOOD.split("[[layers]]")[0] + "layers = [1, 2]\n", ["layers", "array of tables"]),
    "duplicate_key": (GOOD.replace("kernel = 3", "kernel = 3\nkernel = 2"), ["malformed TOML"]),
    "ends_in_an_image": (
        GOOD.replace('[[layers]]\ntype = "flatten"\n[[layers]]\ntype = "dense"\nunits = 1\n', ""),
        ["layers[3].type", "must end in a vector"],
    ),
    "bce_with_a_hidden_sigmoid_only": (
        GOOD.replace('type = "relu"', 'type = "sigmoid"').removesuffix('"sigmoid"\n') + '"relu"\n',
        ["loss", "sigmoid output"],
    ),
    "name_python_keyword": (GOOD.replace('name = "net"', 'name = "class"'), ["name", "Python keyword"]),
    "name_closing_the_docstring": (
        GOOD.replace('name = "net"', 'name = "x\\"\\"\\"; import os; \\"\\"\\""'),
        ["name", "identifier"],
    ),
    "name_path": (GOOD.replace('name = "net"', 'name = "../../etc/net"'), ["name", "identifier"]),
    "notation_not_a_string": (GOOD + "[notation]\nW1 = 3\n", ["notation.W1", "must be a string"]),
    "notation_unbalanced_brace": (GOOD + '[notation]\nW1 = "W_{h"\n', ["notation.W1", "expected '}'"]),
    "notation_same_symbol_twice": (
        GOOD + '[notation]\nW1 = "f"\nW2 = "f"\n',
        ["notation.W2", "W2 and W1 as the same symbol"],
    ),
    "notation_takes_another_tensors_symbol": (
        GOOD + '[notation]\nA1 = "Z_{1}"\n',
        ["notation.A1", "A1 and Z1 as the same symbol"],
    ),
    # the clashes with the document's own symbols, compared by parsed structure
    "notation_is_the_batch_size": (GOOD + '[notation]\nA2 = "N"\n', ["notation.A2", "$N$ is the batch size"]),
    "notation_is_an_index": (GOOD + '[notation]\nA2 = "i"\n', ["notation.A2", "$i$ is an index"]),
    "notation_is_another_index": (GOOD + '[notation]\nP1 = "{j}"\n', ["notation.P1", "$j$ is an index"]),
    "notation_is_the_sigmoid": (GOOD + '[notation]\nZ2 = "\\\\sigma"\n', ["notation.Z2", "the sigmoid"]),
    "notation_is_an_operator": (GOOD + '[notation]\nF = "corr"\n', ["notation.F", "an operator name"]),
    "notation_same_tree_other_spelling": (
        GOOD + '[notation]\nA1 = "\\\\hat{y}_1"\nA2 = "\\\\hat y_{1}"\n',
        ["notation.A2", "A2 and A1 as the same symbol"],
    ),
    "notation_unknown_command": (GOOD + '[notation]\nA2 = "\\\\frac{1}{2}"\n', ["notation.A2", "\\frac"]),
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


TOO_LARGE = [case for case in CASES if case.startswith(("too_large", "too_deep", "too_many"))]


@pytest.mark.parametrize("case", TOO_LARGE)
def test_a_network_too_large_to_prove_is_refused_at_once(case, tmp_path, capsys):
    """Refused by arithmetic on the sizes, before any tensor is built: no hang, no memory."""
    spec = tmp_path / "spec.toml"
    spec.write_text(CASES[case][0])
    start = time.perf_counter()
    assert main(["prove", str(spec)]) == 2
    assert time.perf_counter() - start < 1.0
    assert "limit" in capsys.readouterr().err


def test_the_largest_shipped_network_is_within_the_limits():
    for name in specs.builtin_names():
        spec = specs.load(name)
        if spec.proof == "reduced":  # proven by its miniature (derive/miniature.py), not entry by entry
            continue
        assert specs.forward_terms(spec) <= specs.MAX_TERMS
        assert specs.chain_products(spec)[0] <= specs.MAX_CHAIN
        assert len(spec.layers) <= specs.MAX_LAYERS


@pytest.mark.parametrize("error", [RecursionError, MemoryError])
def test_a_proof_that_exhausts_recursion_or_memory_fails_cleanly(error, monkeypatch, capsys):
    def exhausted(*args, **kwargs):
        raise error

    monkeypatch.setattr(prover, "prove", exhausted)
    assert cli.main(["prove", "mlp"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "too large to prove entry by entry" in err


def test_a_spec_that_is_not_utf8_exits_two(tmp_path, capsys):
    spec = tmp_path / "spec.toml"
    spec.write_bytes(GOOD.encode() + b"# \xff\xfe\n")
    assert main(["prove", str(spec)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(spec) in err and "cannot read" in err
