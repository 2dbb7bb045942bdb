"""The ``gradproof`` command: prove, build, check, networks.

Exit codes: 0 everything holds, 1 a proof failed or outputs drifted (or a
hand-edited file blocks a build, or the outputs cannot be written), 2 bad input
(usage, spec, or a network too large to prove entry by entry).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import tomllib
from pathlib import Path

import sympy
from tqdm import tqdm

from gradproof.derive import prover
from gradproof.derive.network import Network, build
from gradproof.derive.spec import SpecError, builtin_names, load

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
DEFAULT_NETWORK = "small_cnn"


def project_root() -> Path:
    """The checkout gradproof runs from (an editable install), else the working directory."""
    here = Path(__file__).resolve().parent.parent
    return here if (here / "pyproject.toml").is_file() else Path.cwd()


def declared_specs(root: Path) -> list[str]:
    """Built-in networks plus the spec files listed in ``[tool.gradproof] specs``."""
    pyproject = root / "pyproject.toml"
    extra: list[str] = []
    if pyproject.is_file():
        config = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        extra = [str(root / p) for p in config.get("tool", {}).get("gradproof", {}).get("specs", [])]
    return builtin_names() + extra


def _prove(network: Network, quiet: bool) -> tuple[list[prover.ProofRecord], float]:
    """Prove with a progress bar that appears only when proving takes more than a few seconds."""
    total = len(network.steps) + len(network.params)  # prove() reports once per step and per parameter
    start = time.perf_counter()
    with tqdm(
        total=total,
        desc=f"proving {network.spec.name}",
        unit="step",
        delay=3,
        disable=quiet or None,
        leave=False,
        file=sys.stderr,
    ) as bar:
        records = prover.prove(network, progress=lambda: bar.update())
    return records, time.perf_counter() - start


def _format_ms(seconds: float) -> str:
    return f"{seconds * 1000:9.1f} ms" if seconds < 10 else f"{seconds:10.2f} s"


def print_table(network: Network, records: list[prover.ProofRecord], seconds: float, verbose: bool) -> None:
    print(f"gradproof: {network.spec.name} ({network.spec.source}; sympy {sympy.__version__})")
    print(f"  {'verdict':8} {'level':11} {'obligation':46} {'entries':>7} {'time':>12}")
    for r in records:
        verdict = "proven" if r.holds else "FAILED"
        print(f"  {verdict:8} {r.level:11} {r.name:46} {r.entries:7d} {_format_ms(r.seconds):>12}")
        if verbose or not r.holds:
            print(f"{'':22}{r.statement}")
            print(f"{'':22}method: {r.method}")
        if r.failing:
            print(f"{'':22}first failing entry: {r.failing}")
        for entry in r.entry_names:
            print(f"{'':22}{entry}  {'proven' if r.holds else '-'}")
    failed = sum(not r.holds for r in records)
    print(f"{len(records)} obligations: {len(records) - failed} proven, {failed} failed in {seconds:.2f} s")


def _load(reference: str) -> Network:
    return build(load(reference))


def cmd_prove(args) -> int:
    network = _load(args.network)
    records, seconds = _prove(network, quiet=args.json)
    if args.json:
        json.dump(
            {
                "network": network.spec.name,
                "source": network.spec.source,
                "sympy": sympy.__version__,
                "holds": prover.all_hold(records),
                "seconds": seconds,
                "records": [r.as_dict() for r in records],
            },
            sys.stdout,
            indent=2,
        )
        print()
    else:
        print_table(network, records, seconds, args.verbose)
    return EXIT_OK if prover.all_hold(records) else EXIT_FAILED


def cmd_networks(args) -> int:
    for name in builtin_names():
        network = _load(name)
        spec = network.spec
        chain = " -> ".join([network.input.name] + [s.output.name for s in network.steps])
        marker = " (default)" if name == DEFAULT_NETWORK else ""
        print(
            f"{name}{marker}: input {list(spec.input)}, {spec.loss}/{spec.reduction}, "
            f"{network.parameter_count} parameters: {chain}"
        )
    return EXIT_OK


def cmd_build(args) -> int:
    from gradproof.codegen.outputs import render_all
    from gradproof.codegen.writing import HandEditedError, write_all

    network = _load(args.network)
    records, seconds = _prove(network, quiet=False)
    if not prover.all_hold(records):
        print_table(network, records, seconds, verbose=False)
        print("gradproof: not emitting: a proof failed", file=sys.stderr)
        return EXIT_FAILED
    outputs = render_all(network, records)
    root = Path(args.out) if args.out else project_root()
    try:
        changed = write_all(root, outputs, force=args.force)
    except HandEditedError as error:
        print(f"gradproof: {error}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as error:
        print(
            f"gradproof: cannot write the outputs, the previous files are left as they were: {error}",
            file=sys.stderr,
        )
        return EXIT_FAILED
    print(
        f"gradproof: {network.spec.name}: {len(records)} obligations proven in {seconds:.2f} s; "
        f"{len(outputs)} files, {len(changed)} written under {root}"
    )
    return EXIT_OK


def cmd_check(args) -> int:
    from gradproof.codegen.outputs import render_all
    from gradproof.codegen.writing import compare

    root = project_root()
    references = args.networks or declared_specs(root)
    problems = 0
    for reference in references:
        network = _load(reference)
        records, seconds = _prove(network, quiet=False)
        failed = [r for r in records if not r.holds]
        drifts = compare(root, render_all(network, records)) if not failed else []
        for r in failed:
            print(f"{network.spec.name}: FAILED {r.level} {r.name}: {r.failing}")
        for d in drifts:
            print(f"{network.spec.name}: {d.reason}: {d.path.relative_to(root)}")
        status = "ok" if not failed and not drifts else "FAILED"
        print(
            f"{network.spec.name}: {len(records)} obligations, {len(failed)} failed, "
            f"{len(drifts)} files drifted ({seconds:.2f} s) {status}"
        )
        problems += len(failed) + len(drifts)
    if problems:
        print(
            "gradproof check: drift or failed proofs; run `gradproof build NETWORK` after review",
            file=sys.stderr,
        )
    return EXIT_OK if not problems else EXIT_FAILED


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="gradproof", description=__doc__.splitlines()[0])
    commands = top.add_subparsers(dest="command", required=True)
    network_help = f"built-in network name or path to a spec .toml (default {DEFAULT_NETWORK})"

    p = commands.add_parser("prove", help="prove every obligation of a network")
    p.add_argument("network", nargs="?", default=DEFAULT_NETWORK, help=network_help)
    p.add_argument("--json", action="store_true", help="print the proof records as JSON")
    p.add_argument("-v", "--verbose", action="store_true", help="print each statement and method")
    p.set_defaults(run=cmd_prove)

    p = commands.add_parser("build", help="prove, then write the NumPy module and LaTeX derivation")
    p.add_argument("network", nargs="?", default=DEFAULT_NETWORK, help=network_help)
    p.add_argument("--out", help="write under this directory instead of the project root")
    p.add_argument("--force", action="store_true", help="overwrite generated files edited by hand")
    p.set_defaults(run=cmd_build)

    p = commands.add_parser("check", help="re-prove and compare every generated file with the disk")
    p.add_argument("networks", nargs="*", help="networks or specs (default: all declared)")
    p.set_defaults(run=cmd_check)

    p = commands.add_parser("networks", help="list the built-in networks")
    p.set_defaults(run=cmd_networks)
    return top


def main(argv: list[str] | None = None) -> int:
    try:
        args = parser().parse_args(argv)
    except SystemExit as exit_:
        return EXIT_BAD_INPUT if exit_.code else EXIT_OK
    try:
        return args.run(args)
    except SpecError as error:
        print(f"gradproof: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (RecursionError, MemoryError) as error:
        what = "recursion limit" if isinstance(error, RecursionError) else "memory"
        print(
            f"gradproof: error: the element-wise proof ran out of {what}: the network is too large to "
            "prove entry by entry; prove a smaller network of the same architecture",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
