"""The prover says no: every rule in the catalogue of wrong rules is rejected."""

import pytest

from codegen.cli import main
from derive import prover
from derive.network import build
from derive.spec import load
from tests.wrong_rules import CATALOGUE, flipped_kernel_weight_gradient


@pytest.mark.parametrize(("mutant", "network_name"), CATALOGUE, ids=[m.__name__ for m, _ in CATALOGUE])
def test_wrong_rule_is_rejected(mutant, network_name, monkeypatch):
    network = mutant(build(load(network_name)), monkeypatch)
    records = prover.prove(network)
    failed = [r for r in records if not r.holds]
    assert failed, f"{mutant.__name__} was accepted"
    assert all(r.failing for r in failed), [(r.name, r.failing) for r in failed]


def test_the_unmutated_networks_are_accepted():
    for name in sorted({n for _, n in CATALOGUE}):
        assert prover.all_hold(prover.prove(build(load(name))))


def test_cli_exits_one_and_names_the_failing_entry(monkeypatch, capsys):
    flipped_kernel_weight_gradient(None, monkeypatch)
    assert main(["prove", "small_cnn"]) == 1
    out = capsys.readouterr().out
    assert "FAILED   end-to-end  dL/dW1" in out
    assert "first failing entry: dL/dW1[0,0," in out


def test_build_writes_nothing_when_a_proof_fails(monkeypatch, tmp_path, capsys):
    flipped_kernel_weight_gradient(None, monkeypatch)
    assert main(["build", "small_cnn", "--out", str(tmp_path)]) == 1
    assert list(tmp_path.iterdir()) == []
