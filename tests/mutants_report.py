"""Mutate the generated modules, print who caught what: ``python -m tests.mutants_report [-v] [NETWORK]``.

One row per network and operator: mutants tried, caught, equivalent, survived.
Then the checks that caught them, every equivalent mutant with the reason the
probes found, and every survivor. Exit status 0 only when no mutant survived
(every mutant that changes behaviour is caught).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter

from tests import generated_mutants as gm


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.mutants_report", description=__doc__.split(":")[0])
    parser.add_argument("networks", nargs="*", default=list(gm.NETWORKS), help="generated modules to mutate")
    parser.add_argument("-v", "--verbose", action="store_true", help="print the verdict of every mutant")
    args = parser.parse_args(argv)

    verdicts, seconds = [], {}
    for name in args.networks:
        start = time.perf_counter()
        verdicts += gm.run(name)
        seconds[name] = time.perf_counter() - start

    print(f"{'network':12} {'operator':20} {'tried':>6} {'caught':>7} {'equiv.':>7} {'survived':>9}")
    totals: Counter = Counter()
    for name in args.networks:
        mine = [v for v in verdicts if v.mutant.network == name]
        operators = sorted({v.mutant.operator for v in mine}, key=list(gm.OPERATORS).index)
        for operator in operators:
            counts = Counter(v.outcome for v in mine if v.mutant.operator == operator)
            print(
                f"{name:12} {operator:20} {sum(counts.values()):6d} {counts['caught']:7d} "
                f"{counts['equivalent']:7d} {counts['survived']:9d}"
            )
        counts = Counter(v.outcome for v in mine)
        totals += counts
        print(
            f"{name:12} {'all':20} {len(mine):6d} {counts['caught']:7d} {counts['equivalent']:7d} "
            f"{counts['survived']:9d}   ({seconds[name]:.1f} s)"
        )
    print()

    caught = [v for v in verdicts if v.outcome == "caught"]
    first = Counter(v.detail.split(":", 1)[0] for v in caught)
    print("caught first by: " + ", ".join(f"{check} {n}" for check, n in first.most_common()))
    added = [v for v in caught if v.detail.split(":", 1)[0] not in gm.AS_IN_NUMERIC_TESTS]
    generalised = [
        v
        for v in caught
        if v.detail.split(":", 1)[0] in ("kinks and ties", "large logits") and v.mutant.network != "small_cnn"
    ]
    print(
        f"caught only by checks added to those of test_generated_numeric.py: {len(added)}; "
        f"by its small_cnn-only kink, tie and logit tests run on another network: {len(generalised)}"
    )

    for outcome in ("equivalent", "survived"):
        chosen = [v for v in verdicts if v.outcome == outcome]
        if chosen:
            print(f"\n{outcome} ({len(chosen)}):")
            for v in chosen:
                print(f"  {v.mutant.describe()}\n      {v.detail}")
    if args.verbose:
        print("\nevery verdict:")
        for v in verdicts:
            print(f"  {v.outcome:10} {v.mutant.describe()}\n      {v.detail}")

    tried, behaviour = len(verdicts), totals["caught"] + totals["survived"]
    rate = 100 * totals["caught"] / behaviour if behaviour else 0.0
    print(
        f"\n{tried} mutants tried: {totals['caught']} caught, {totals['equivalent']} equivalent, "
        f"{totals['survived']} survived; kill rate {rate:.1f} % of the {behaviour} that change behaviour"
    )
    return 0 if not totals["survived"] else 1


if __name__ == "__main__":
    sys.exit(main())
