"""The rewrites the compiled reading fuses by: proven, wrong ones refuted, unproven ones not applied.

No numba needed: the proofs and the rendering are pure Python.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from gradproof.codegen.compiled import plan as compiled_plan
from gradproof.codegen.compiled.emitter import render
from gradproof.codegen.compiled.printer import LoopReading
from gradproof.derive import rewrites
from gradproof.derive.network import build
from gradproof.derive.operations import CARRIED
from gradproof.derive.spec import load
from gradproof.derive.texpr import OPERATIONS
from tests.wrong_rules import WRONG_REWRITES

ROOT = Path(__file__).resolve().parent.parent


def test_the_loop_reading_has_a_method_for_every_operation():
    """The expression language's own operations and those of derive/operations.py (issue 16's vocabulary)."""
    every = [*OPERATIONS, *CARRIED]
    missing = [op.__name__ for op in every if not hasattr(LoopReading, f"read_{op.__name__}")]
    assert missing == [] and len(every) > len(OPERATIONS)


def test_weak_orderings_are_counted_by_the_fubini_numbers():
    """The enumeration the window proofs rest on: every weak ordering once (OEIS A000670)."""
    for k, expected in enumerate([1, 1, 3, 13, 75, 541]):
        patterns = list(rewrites.weak_orderings(k)) if k else [()]
        assert len(patterns) == len(set(patterns)) == expected == rewrites.fubini(k)
    with_zero = list(rewrites.window_patterns(2, with_zero=True))
    assert len(with_zero) == 541 and (0, 0, 0, 0) in with_zero and (-1, 1, 0, 2) in with_zero


@pytest.mark.parametrize(
    "prove",
    [
        rewrites.prove_relu_after_pool,
        rewrites.prove_relu_after_pool_backward,
        rewrites.prove_routed_entry,
    ],
)
def test_window_rewrites_are_proven_for_2x2_windows(prove):
    record = prove(2)
    assert record.holds and record.failing is None and record.level == "rewrite"
    assert record.entries in (75, 541)


def test_window_rewrites_with_too_many_patterns_are_not_proven():
    """A 3x3 window has 10^8 order patterns with 0: the method says 'not proven', it does not guess."""
    record = rewrites.prove_relu_after_pool(3)
    assert not record.holds and record.failing.startswith("not proven")


def test_the_routed_weight_gradient_is_proven_at_the_networks_or_reduced_sizes():
    small = rewrites.prove_routed_weight_gradient(rewrites.ConvSizes(1, 1, (3, 3), (4, 4), 2))
    assert small.holds and "the network's sizes" in small.method
    large = rewrites.prove_routed_weight_gradient(rewrites.ConvSizes(1, 8, (5, 5), (24, 24), 2))
    assert large.holds and "reduced sizes" in large.method and "F=2" in large.method


@pytest.mark.parametrize("wrong", WRONG_REWRITES, ids=[w.name for w in WRONG_REWRITES])
def test_a_wrong_rewrite_is_refuted_with_a_counterexample(wrong):
    holds, counterexample, _ = wrong.check()
    assert not holds, f"{wrong.name} ({wrong.mistake}) was accepted"
    assert counterexample and wrong.expect in counterexample


def test_an_unproven_rewrite_is_not_applied(monkeypatch):
    """If the ReLU/max-pool commutation fails to prove, the rules are printed as declared."""
    network = build(load("small_cnn"))
    fused = compiled_plan.plan(network, [])
    assert "M1" in fused.forward_names and "A1" not in fused.forward_names
    failing = dataclasses.replace(rewrites.prove_relu_after_pool(2), holds=False, failing="refuted: test")
    monkeypatch.setattr(rewrites, "prove_relu_after_pool", lambda size: failing)
    unfused = compiled_plan.plan(network, [])
    assert "A1" in unfused.forward_names and "M1" not in unfused.forward_names
    ((_, text),) = render(network, []).items()
    assert "NOT PROVEN, not applied: refuted: test" in text
    assert "route_max(A1, dL/dP1)" in text and "dA1[" in text


def test_kernel_comments_name_the_rules_and_the_rewrites():
    text = (ROOT / "generated" / "small_cnn_compiled.py").read_text()
    assert "# dL/dW1 = correlate(X, dL/dZ1)" in text
    assert "# [proven: local 9/9, end-to-end 9/9 entries]" in text
    assert "[rewrite routed-weight-gradient, proven:" in text
    assert "[rewrite relu-maxpool, proven: maxpool(relu(Z)) = relu(maxpool(Z))]" in text
