"""Theorems for all sizes: the time of each, and of ``gradproof prove`` on the networks of issue 15.

    python benchmarks/bench_parametric.py [--repeat N] [--pause SECONDS]

1. every theorem of the catalogue (max-pool for windows 2 and 3, both reductions of each loss),
   proven ``--repeat`` times in this process: the median per theorem and the slowest statement;
2. ``gradproof prove`` as a command (start-up included) on every built-in network, on
   benchmarks/specs/mnist_cnn8.toml and on the two networks the issue measured
   (benchmarks/specs/digits8_cnn4.toml, two_conv10.toml), one run each with pauses between,
   with the verdict tally the command printed.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from gradproof.derive.parametric import catalogue
from gradproof.derive.spec import builtin_names

ROOT = Path(__file__).resolve().parent.parent
SPECS = [
    "benchmarks/specs/mnist_cnn8.toml",
    "benchmarks/specs/digits8_cnn4.toml",
    "benchmarks/specs/two_conv10.toml",
]


def theorems(repeat: int) -> None:
    print(f"{'theorem':18} {'statements':>10} {'median s':>9} {'slowest statement s':>20}  verdict")
    for make in catalogue.every_theorem(windows=(2, 3)):
        times, slowest, status = [], 0.0, ""
        for _ in range(repeat):
            theorem = type(make)(make.layer, make.key, make.statements, make.roles).prove()
            times.append(theorem.seconds)
            slowest = max(slowest, max(v.seconds for v in theorem.verdicts))
            status = theorem.status
        median = statistics.median(times)
        print(f"{make.key:18} {len(make.statements):10d} {median:9.3f} {slowest:20.3f}  {status}")


def commands(pause: float) -> None:
    print(f"\n{'network':36} {'seconds':>8}  tally")
    for reference in [*builtin_names(), *SPECS]:
        time.sleep(pause)
        start = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-m", "gradproof.codegen.cli", "prove", reference],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        seconds = time.perf_counter() - start
        tally = result.stdout.strip().splitlines()[-1] if result.stdout else result.stderr.strip()[-80:]
        print(f"{reference:36} {seconds:8.1f}  exit {result.returncode}: {tally}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pause", type=float, default=2.0)
    args = parser.parse_args()
    theorems(args.repeat)
    commands(args.pause)


if __name__ == "__main__":
    main()
