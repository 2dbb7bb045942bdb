"""Proof records: one obligation and its verdict, and the helpers every obligation uses to make one.

The prover (``derive.prover``) and the obligations a layer type declares beside its rules
(``derive.layers``) both produce these records; the CLI prints them and the LaTeX emitter
typesets them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np

from gradproof.derive import texpr as tx
from gradproof.derive.statement import gradient_name, tensor_label
from gradproof.derive.symbolic import symbol_array


@dataclass
class ProofRecord:
    """One obligation and its verdict."""

    level: str
    name: str
    statement: str
    entries: int
    method: str
    seconds: float = 0.0
    holds: bool = False
    failing: str | None = None
    entry_names: list[str] = field(default_factory=list)
    # The rule a local or end-to-end record proves: the step (named by its output, e.g. "Z1") and
    # the tensor whose gradient the rule gives (e.g. "W1"); empty for other records.
    step_output: str = ""
    target: str = ""
    # Structured facts for readers that typeset a record (the LaTeX emitter) instead of quoting its
    # text: which obligation it is (``key``), the batch size it was proven at (0 where no batch is
    # involved), the tensor a convention is checked at (e.g. "Z1") and the side of the pooling
    # window of a window lemma or a tie convention.
    key: str = ""
    batch: int = 0
    tensor: str = ""
    window: int = 0
    # Where a record of a network proven by its miniature was proven: "input 1x16x16; widths 2, 2,
    # 3, 3, 10" (``derive.miniature``); empty at the network's own sizes.
    sizes: str = ""
    # The verdict: "proven", "refuted" (a counterexample shows the two sides differ) or "not proven"
    # (the method could not decide); a parametric record also states its hypotheses, and a refuted
    # one its counterexample (sizes, the entry, both values, the values of the entries read).
    verdict: str = ""
    hypotheses: list[str] = field(default_factory=list)
    counterexample: dict | None = None
    reason: str = ""
    # A parametric record: the rules of the network that are this theorem, each as (the output of
    # its step, the tensor it differentiates): ("Z1", "W1"), ("Z3", "W3").
    instances: list[tuple[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def timed(record: ProofRecord, check: Callable[[], tuple[bool, str | None]]) -> ProofRecord:
    """Run ``check`` (verdict, first failing entry) and file its verdict and time in ``record``."""
    start = time.perf_counter()
    record.holds, record.failing = check()
    record.seconds = time.perf_counter() - start
    record.verdict = PROVEN if record.holds else failed_verdict(record.level)
    return record


PROVEN, REFUTED, NOT_PROVEN = "proven", "refuted", "not proven"
# Levels whose check evaluates both sides exactly at concrete values: a failure is a counterexample.
# The entry-wise comparisons (local, end-to-end, batch) test a normal form in independent atoms, which
# can miss an identity between atoms (``[relu(z) > 0] = [z > 0]``): their failure is "not proven".
EVALUATED_LEVELS = ("identity", "lemma", "convention", "count")


def failed_verdict(level: str) -> str:
    return REFUTED if level in EVALUATED_LEVELS else NOT_PROVEN


def index_label(name: str, index: tuple[int, ...]) -> str:
    """``dL/dW1[0,0,1,2]``: an entry of the gradient of ``name``."""
    return f"{tensor_label(gradient_name(name))}[{','.join(map(str, index))}]"


def concrete(shape: tx.Shape, batch: int) -> tuple[int, ...]:
    return tuple(batch if d == tx.BATCH else d for d in shape)


def fresh(tensor: tx.Tensor, batch: int) -> np.ndarray:
    """Fresh symbols shaped like ``tensor`` at ``batch`` samples."""
    return symbol_array(tensor.name, concrete(tensor.shape, batch))
