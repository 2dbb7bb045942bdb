"""Mutation check of the generated NumPy modules: every mutant that changes behaviour is caught.

The mutants, the judge (the numeric checks) and the equivalence probes are in
``tests/generated_mutants.py``; ``python -m tests.mutants_report`` prints the
counts. Controls too: the unmutated modules pass every check, the operators
find their targets in code they have never seen, the equivalence check does
not pass off a behaviour change as an equivalent mutant, and a mutant that
crashes or hangs is caught without stopping the run.
"""

import ast
import importlib
import textwrap
from collections import Counter
from functools import cache
from pathlib import Path

import pytest

from tests import generated_mutants as gm

# Fewer mutants than this means the operators stopped finding their targets.
MINIMUM_MUTANTS = {
    "small_cnn": 200,
    "mlp": 60,
    "sigmoid_cnn": 150,
    "sigmoid_cnn3": 150,
    "lenet5": 240,  # forward, loss and backward only (gm.FOCUS)
    "digits_lenet": 290,  # likewise
    "strided": 700,
    "vocab": 500,
    "pooled": 600,
}
# The operators the mutation check is about; each must find targets in the generated modules.
CORE_OPERATORS = (
    "swap axes",
    "drop transpose",
    "swap @ operands",
    "drop term",
    "drop factor",
    "- <-> +",
    "drop division",
    "sum axis",
    "integer off by one",
    "change float",
    "> <-> >=",
    "drop keyword",
    "delete statement",
)


@cache
def verdicts(name: str) -> tuple[gm.Verdict, ...]:
    return tuple(gm.run(name))


@pytest.mark.parametrize("name", gm.NETWORKS)
def test_the_unmutated_modules_pass_every_check(name):
    module = gm.original_module(name)
    if name not in gm.TEST_NETWORKS:  # the committed module is the one compiled from its source
        assert (
            gm.module_source(name)
            == Path(importlib.import_module(f"gradproof.generated.{name}").__file__).read_text()
        )
    for check in gm.CHECKS.values():
        check(module, gm.fixture(name))
    assert gm.first_failure(gm.source_tree(name), f"{name}-control", gm.fixture(name)) is None


@pytest.mark.parametrize("name", gm.NETWORKS)
def test_every_mutant_that_changes_behaviour_is_caught(name):
    results = verdicts(name)
    assert len(results) >= MINIMUM_MUTANTS[name], "the operators found too few targets"
    survivors = [f"{v.mutant.describe()}: {v.detail}" for v in results if v.outcome == "survived"]
    assert not survivors, "mutants no numeric check catches:\n" + "\n".join(survivors)
    assert all(v.detail for v in results if v.outcome == "equivalent")  # each says why
    outcomes = Counter(v.outcome for v in results)
    assert outcomes["caught"] + outcomes["equivalent"] == len(results)


def test_every_core_operator_finds_targets_in_the_generated_modules():
    found = Counter(v.mutant.operator for name in gm.NETWORKS for v in verdicts(name))
    assert not [op for op in CORE_OPERATORS if not found[op]]


def test_the_mutations_named_in_the_issue_are_made_and_caught():
    """The ReLU mask ``>`` -> ``>=``, the batch ``/ N`` dropped, the quadratic cost's 0.5 changed."""
    caught = {
        (v.mutant.network, v.mutant.operator, v.mutant.function)
        for name in gm.NETWORKS
        for v in verdicts(name)
        if v.outcome == "caught"
    }
    assert ("small_cnn", "> <-> >=", "backward") in caught
    assert ("mlp", "> <-> >=", "backward") in caught
    assert ("small_cnn", "drop division", "backward") in caught
    assert ("mlp", "change float", "loss") in caught
    assert ("mlp", "swap @ operands", "backward") in caught
    assert ("small_cnn", "sum axis", "backward") in caught


def _line(network: str, mutant: gm.Mutant) -> str:
    return gm.module_source(network).splitlines()[mutant.line - 1]


# Issue 16's wrong rules as wrong printings of them: (network, operator, which mutants, what it is).
NEW_VOCABULARY_MUTANTS = [
    ("lenet5", "drop factor", lambda m: (m.before, m.after) == ("A4 * A4", "A4"), "tanh' = 1 - A"),
    ("lenet5", "drop division", lambda m: (m.before, m.after) == ("dP2 / 4", "dP2"), "avg-pool without 1/4"),
    ("lenet5", "drop division", lambda m: m.before == "(A5 - Y) / N", "softmax-CE without 1/N"),
    ("vocab", "drop division", lambda m: m.before == "dP1 / 9", "avg-pool 3x3 without 1/9"),
    (
        "strided",
        "integer off by one",
        lambda m: "correlate_strided_weight(" in _line("strided", m) and m.before == "2" and m.after == "1",
        "stride ignored in the weight rule",
    ),
    (
        "strided",
        "slice off by one",
        lambda m: "transposed_convolve(" in _line("strided", m),
        "the padding's crop misplaced in the input rule",
    ),
    (
        "digits_lenet",
        "integer off by one",
        lambda m: m.function == "backward" and "np.pad(" in _line("digits_lenet", m),
        "padding missing or wrong in the weight rule",
    ),
]


@pytest.mark.parametrize(
    "network, operator, which, what", NEW_VOCABULARY_MUTANTS, ids=[row[3] for row in NEW_VOCABULARY_MUTANTS]
)
def test_the_wrong_rules_named_in_issue_16_printed_wrong_are_caught(network, operator, which, what):
    """Each wrong rule of the new vocabulary, made as a mutant of the printed code, fails a numeric check."""
    chosen = [
        m for m in gm.mutants(network) if m.operator == operator and m.function == "backward" and which(m)
    ]
    assert chosen, f"no mutant makes {what}"
    for mutant in chosen:
        verdict = gm.judge(mutant, gm.source_tree(network), gm.fixture(network))
        assert verdict.outcome == "caught", (what, verdict)


SNIPPET = """
import numpy as np

def helper(a, g, size, N):
    out = np.zeros(a.shape, dtype=g.dtype)
    for p in range(size):
        if p or size:
            out[:, p::size] = (a[:, p::size] > 0) * g.T.reshape(2, 3)[1:] @ a.transpose(1, 0)
    out -= -np.maximum(a, 0.5) / N
    return out.sum(axis=(0, 1)) + (a == g).sum(axis=0)
"""


def test_operators_find_their_targets_in_code_they_have_not_seen():
    tree = ast.parse(textwrap.dedent(SNIPPET))
    found = Counter(m.operator for m in gm.mutants("snippet", tree))
    assert set(found) == set(gm.OPERATORS), set(gm.OPERATORS) - set(found)


def test_the_equivalence_check_does_not_hide_a_behaviour_change():
    """Judged by a check that cannot see gradients, a wrong gradient survives: it is not 'equivalent'."""
    original = gm.source_tree("mlp")
    wrong = next(
        m for m in gm.mutants("mlp", original) if m.function == "backward" and m.operator == "swap @ operands"
    )
    verdict = gm.judge(wrong, original, gm.fixture("mlp"), checks={"PARAM_SHAPES": gm.check_param_shapes})
    assert verdict.outcome == "survived", verdict


def test_mutants_in_code_that_never_runs_are_equivalent_and_say_so():
    original = gm.source_tree("mlp")
    dead = ast.parse("def never_called(x):\n    return x.sum(axis=0) - 1\n").body[0]
    tree = ast.Module(body=[*original.body, dead], type_ignores=[])
    mine = [m for m in gm.mutants("mlp", tree) if m.function == "never_called"]
    assert len(mine) >= 4
    for m in mine:
        verdict = gm.judge(m, tree, gm.fixture("mlp"))
        assert verdict.outcome == "equivalent" and verdict.detail.startswith("never executed"), verdict


def test_a_crashing_mutant_counts_as_caught_and_the_run_goes_on():
    tree = gm.source_tree("mlp")
    crash = ast.parse("import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n").body
    backward = next(s for s in tree.body if isinstance(s, ast.FunctionDef) and s.name == "backward")
    backward.body[1:1] = crash
    mutant = gm.Mutant("mlp", 0, "crash", "backward", 0, "", "", (), (), ast.fix_missing_locations(tree))
    original = gm.source_tree("mlp")
    after = next(m for m in gm.mutants("mlp", original) if m.operator == "swap @ operands")
    crashed, judged = gm.judge_in_workers([mutant, after], original, gm.fixture("mlp"))
    assert crashed.outcome == "caught" and "SIGSEGV" in crashed.detail
    assert judged.mutant is after and judged.outcome == "caught"  # a new worker took the rest


def test_a_hanging_mutant_counts_as_caught(monkeypatch):
    monkeypatch.setattr(gm, "SECONDS_PER_MUTANT", 0.5)
    tree = gm.source_tree("mlp")
    loop = ast.parse("while True:\n    pass\n").body[0]
    backward = next(s for s in tree.body if isinstance(s, ast.FunctionDef) and s.name == "backward")
    backward.body.insert(1, loop)
    failure = gm.first_failure(ast.fix_missing_locations(tree), "hanging", gm.fixture("mlp"))
    assert failure is not None and isinstance(failure[1], gm.MutantTimeoutError)
