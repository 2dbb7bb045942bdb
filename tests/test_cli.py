"""The command line: table, JSON, the list of networks, exit codes."""

import json

from gradproof.codegen.cli import main


def test_prove_default_prints_table_and_exits_zero(capsys):
    assert main(["prove"]) == 0
    out = capsys.readouterr().out
    assert "gradproof: small_cnn" in out
    assert "23 obligations: 23 proven, 0 failed" in out
    for m in range(3):
        for n in range(3):
            assert f"dL/dW1[0,0,{m},{n}]  proven" in out


def test_prove_json_is_machine_readable(capsys):
    assert main(["prove", "small_cnn", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["network"] == "small_cnn" and report["holds"] is True
    levels = {r["level"] for r in report["records"]}
    assert levels == {"identity", "lemma", "convention", "local", "end-to-end", "count", "batch"}
    assert all(r["holds"] and r["seconds"] >= 0 for r in report["records"])


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
