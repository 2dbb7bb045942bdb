"""Prove every wrong rule of the catalogue and print who rejected it: ``python -m tests.soundness_report``.

Exit status 0 only when every mutant is rejected (kill rate 100 %) and each
of its predicted obligations failed.
"""

from __future__ import annotations

import sys
import time

from gradproof.derive import prover
from tests.wrong_rules import CATALOGUE, Mutant, failed_obligations, installed


def run(mutant: Mutant) -> tuple[list[str], list[str], float]:
    """(failed obligations, first failing entries, seconds) for one mutant."""
    with installed():
        start = time.perf_counter()
        records = prover.prove(mutant.network_under_test())
        seconds = time.perf_counter() - start
    failing = [r.failing or "?" for r in records if not r.holds]
    return failed_obligations(records), failing, seconds


def main() -> int:
    killed = 0
    print(f"{'mutant':36} {'network':12} {'verdict':9} {'time':>7}  failed obligations (first failing entry)")
    for mutant in CATALOGUE:
        failed, failing, seconds = run(mutant)
        predicted = all(name in failed for name in mutant.must_fail)
        verdict = "rejected" if failed and predicted else "ACCEPTED" if not failed else "MISSED"
        killed += verdict == "rejected"
        shown = "; ".join(f"{f} ({e})" for f, e in zip(failed, failing, strict=True))
        print(f"{mutant.name:36} {mutant.network:12} {verdict:9} {seconds:6.2f}s  {shown}")
    rate = 100 * killed / len(CATALOGUE)
    print(f"{len(CATALOGUE)} wrong rules tried, {killed} rejected as predicted: kill rate {rate:.0f} %")
    return 0 if killed == len(CATALOGUE) else 1


if __name__ == "__main__":
    sys.exit(main())
