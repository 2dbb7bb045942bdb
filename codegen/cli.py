"""The gradproof command: prove, build, check, networks.

Exit codes: 0 everything holds; 1 a proof failed, outputs drifted or are stale, or a hand-edited
file blocks a build; 2 bad input (usage, a spec, the project's [tool.gradproof] table, or a
network too large to prove entry by entry); 3 an I/O error (outputs cannot be read or written);
4 a tool a request needs is missing (``build --pdf`` without TeX, ``build --compiled`` without numba).
When the reader of the output goes away (``gradproof check | head -1``) the rest of the output is
dropped quietly and the exit code still tells the outcome.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

import sympy
from tqdm import tqdm

import gradproof
from gradproof.codegen import manifest
from gradproof.codegen.project import Project, ProjectError, build_command, find, load_spec
from gradproof.derive import prover
from gradproof.derive.network import Network, build
from gradproof.derive.parametric.network_proofs import DEFAULT_BUDGET_SECONDS, Budget
from gradproof.derive.spec import SpecError, builtin_names

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_IO, EXIT_TOOL_MISSING = 0, 1, 2, 3, 4
DEFAULT_NETWORK = "small_cnn"


def say(line: str = "") -> None:
    """Print a line of output; once the reader has gone, drop the rest quietly."""
    try:
        print(line)
    except BrokenPipeError:
        _drop_stdout()


def _drop_stdout() -> None:
    """Point stdout at /dev/null, so buffered lines and later output vanish instead of raising."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _prove(
    network: Network, quiet: bool, budget: float | None = None
) -> tuple[list[prover.ProofRecord], float]:
    """Prove with a progress bar that appears only when proving takes more than a few seconds.

    Without a terminal (CI) there is no bar; after the same few seconds each phase of the proof is
    named on stderr instead, so a long proof is never silent. GRADPROOF_PROGRESS_DELAY (seconds, default
    3) sets how long a proof runs before either appears.
    """
    total = len(network.steps) + len(network.params)  # prove() reports once per step and per parameter
    start = time.perf_counter()
    narrate = not quiet and not sys.stderr.isatty()
    delay = float(os.environ.get("GRADPROOF_PROGRESS_DELAY", "3"))

    def phase(text: str) -> None:
        if narrate and time.perf_counter() - start > delay:
            print(f"gradproof: proving {network.spec.name}: {text}", file=sys.stderr, flush=True)

    options = {} if budget is None else {"budget": Budget(budget)}
    with tqdm(
        total=total,
        desc=f"proving {network.spec.name}",
        unit="step",
        delay=delay,
        disable=quiet or None,
        leave=False,
        file=sys.stderr,
    ) as bar:
        records = prover.prove(network, progress=lambda: bar.update(), say=phase, **options)
    return records, time.perf_counter() - start


def _format_ms(seconds: float) -> str:
    return f"{seconds * 1000:9.1f} ms" if seconds < 10 else f"{seconds:10.2f} s"


def print_table(network: Network, records: list[prover.ProofRecord], seconds: float, verbose: bool) -> None:
    say(f"gradproof: {network.spec.name} ({network.spec.source}; sympy {sympy.__version__})")
    say(f"  {'verdict':10} {'level':11} {'obligation':46} {'entries':>7} {'time':>12}")
    for r in records:
        verdict = r.verdict or ("proven" if r.holds else "not proven")
        say(f"  {verdict:10} {r.level:11} {r.name:46} {r.entries:7d} {_format_ms(r.seconds):>12}")
        if verbose or not r.holds:
            say(f"{'':24}{r.statement}")
            for hypothesis in r.hypotheses:
                say(f"{'':24}hypothesis: {hypothesis}")
            say(f"{'':24}method: {r.method}")
        if r.failing:
            what = "counterexample" if r.level == "parametric" and r.counterexample else "first failing entry"
            say(f"{'':24}{what}: {r.failing}")
        if r.reason:
            say(f"{'':24}why: {r.reason}")
        for entry in r.entry_names:
            say(f"{'':24}{entry}  {'proven' if r.holds else '-'}")
    counts = {
        v: sum((r.verdict or "not proven") == v for r in records) for v in ("proven", "refuted", "not proven")
    }
    tally = ", ".join(f"{n} {v}" for v, n in counts.items())
    say(f"{plural(len(records), 'obligation')}: {tally} in {seconds:.2f} s")


def _load(reference: str, project: Project | None = None) -> Network:
    """A network by name or spec path (relative to the working directory, then to the project root)."""
    return build(load_spec(project or Project(Path.cwd(), False), reference))


def cmd_prove(args) -> int:
    network = _load(args.network)
    records, seconds = _prove(network, quiet=args.json, budget=args.budget)
    if args.json:
        report = {
            "network": network.spec.name,
            "source": network.spec.source,
            "sympy": sympy.__version__,
            "holds": prover.all_hold(records),
            "seconds": seconds,
            "records": [r.as_dict() for r in records],
        }
        say(json.dumps(report, indent=2))
    else:
        print_table(network, records, seconds, args.verbose)
    return EXIT_OK if prover.all_hold(records) else EXIT_FAILED


def cmd_networks(args) -> int:
    for name in builtin_names():
        network = _load(name)
        spec = network.spec
        chain = " -> ".join([network.input.name] + [s.output.name for s in network.steps])
        marker = " (default)" if name == DEFAULT_NETWORK else ""
        say(
            f"{name}{marker}: input {list(spec.input)}, {spec.loss}/{spec.reduction}, "
            f"{network.parameter_count} parameters: {chain}"
        )
    return EXIT_OK


def _networks(project: Project, named: list[str], default: str | None) -> list[Network]:
    """The networks named on the command line, else those the project declares, else ``default``."""
    if named:
        references = named
    elif not project.configured and default is None:
        raise ProjectError(
            f"no pyproject.toml with a [tool.gradproof] table in {project.root} or above: name the "
            'networks to check, or declare your specs there: [tool.gradproof] specs = ["specs/my_net.toml"]'
        )
    elif project.configured:
        references = project.declared()
        if not references:
            raise ProjectError(
                f"{project.root / 'pyproject.toml'}: [tool.gradproof] declares no networks: "
                'list your spec files, e.g. specs = ["specs/my_net.toml"]'
            )
    else:
        references = [default]
    networks = [_load(r, project) for r in references]
    sources: dict[str, str] = {}
    for network in networks:
        spec = network.spec
        if spec.name in sources and sources[spec.name] != spec.source:
            raise ProjectError(
                f"{sources[spec.name]} and {spec.source} both define a network named {spec.name!r} "
                "and would write the same files; rename one (its `name` field)"
            )
        sources[spec.name] = spec.source
    return networks


def _project(args) -> Project:
    return find(Path.cwd(), args.root)


def cmd_build(args) -> int:
    from gradproof.codegen import pdf
    from gradproof.codegen.compiled.printer import UnsupportedFormError
    from gradproof.codegen.outputs import has_compiled, numba_available, render_all
    from gradproof.codegen.writing import HandEditedError, write_all

    if args.pdf:
        try:
            pdf.compiler()  # before any proof, so that nothing is written when TeX is missing
        except pdf.TexMissing as error:
            print(f"gradproof: error: {error}", file=sys.stderr)
            return EXIT_TOOL_MISSING
    if args.compiled and not numba_available():
        print(
            "gradproof: --compiled: the compiled module needs numba, the optional extra `compiled`: "
            "pip install 'gradproof[compiled]' (nothing written)",
            file=sys.stderr,
        )
        return EXIT_TOOL_MISSING
    project = _project(args)
    networks = _networks(project, [args.network] if args.network else [], default=DEFAULT_NETWORK)
    root = Path(args.out) if args.out else project.root
    previous = manifest.read(root)
    outputs: dict[str, str] = {}
    built: dict[str, manifest.Entry] = {}
    summaries = []
    for network in networks:
        records, seconds = _prove(network, quiet=False)
        if not prover.all_hold(records):
            print_table(network, records, seconds, verbose=False)
            print(f"gradproof: not emitting: a proof of {network.spec.name} failed", file=sys.stderr)
            return EXIT_FAILED
        compiled = args.compiled or has_compiled(root, network.spec.name)
        try:
            rendered = render_all(network, records, compiled)
        except UnsupportedFormError as error:
            print(
                f"gradproof: {network.spec.name}: --compiled: {error} (nothing written)",
                file=sys.stderr,
            )
            return EXIT_BAD_INPUT
        outputs.update(rendered)
        built[network.spec.name] = manifest.Entry(network.spec.source, tuple(sorted(rendered)))
        summaries.append((network.spec.name, len(records), seconds, len(rendered)))
    stale = [s.path for s in manifest.stale(root, built, previous, everything=False)]
    outputs[manifest.FILENAME] = manifest.render(manifest.updated(root, previous, built))
    try:
        changed = write_all(root, outputs, force=args.force, remove=tuple(stale))
    except HandEditedError as error:
        print(f"gradproof: {error}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as error:
        message = f"cannot write the outputs, the previous files are left as they were: {error}"
        print(f"gradproof: error: {message}", file=sys.stderr)
        return EXIT_IO
    changed_names = {p.relative_to(root).as_posix() for p in changed}
    for name, count, seconds, files in summaries:
        written = sum(f in changed_names for f in built[name].files)
        say(
            f"gradproof: {name}: {plural(count, 'obligation')} proven in {seconds:.2f} s; "
            f"{plural(files, 'file')}, {written} written under {root}"
        )
    for relative in stale:
        if relative in changed_names:
            say(f"gradproof: removed {relative} (no longer written)")
    if manifest.FILENAME in changed_names:
        say(f"gradproof: wrote {manifest.FILENAME} (commit it with the outputs)")
    for name in built if args.pdf else ():
        document = f"docs/derivations/{name}.tex"
        try:
            target = pdf.compile_pdf(outputs[document], root / document.replace(".tex", ".pdf"))
        except pdf.TexFailed as error:
            print(f"gradproof: error: {error}", file=sys.stderr)
            return EXIT_FAILED
        except OSError as error:
            print(f"gradproof: error: cannot write the PDF: {error}", file=sys.stderr)
            return EXIT_IO
        say(f"gradproof: wrote {target}")
    return EXIT_OK


def cmd_check(args) -> int:
    from gradproof.codegen.outputs import has_compiled, render_all
    from gradproof.codegen.writing import compare

    project = _project(args)
    root = project.root
    networks = _networks(project, args.networks, default=None)
    previous = manifest.read(root)
    built: dict[str, manifest.Entry] = {}
    hints: dict[str, set[str]] = defaultdict(set)  # reason -> build commands (or files)
    problems = 0
    for network in networks:
        name, command = network.spec.name, build_command(network.spec)
        records, seconds = _prove(network, quiet=False)
        failed = [r for r in records if not r.holds]
        compiled = has_compiled(root, name)
        rendered = render_all(network, records, compiled) if not failed else {}
        drifts = compare(root, rendered)
        entry = built[name] = manifest.Entry(network.spec.source, tuple(sorted(rendered)))
        stale = manifest.stale(root, {name: entry}, previous, everything=False) if not failed else []
        for r in failed:
            say(f"{name}: FAILED {r.level} {r.name}: {r.failing}")
            hints["failed"].add(command)
        for d in drifts:
            say(f"{name}: {d.reason}: {d.path.relative_to(root).as_posix()}")
            hints[d.reason].add(command)
        for item in stale:
            say(f"{name}: stale: {item.path} (written by an earlier build, not written now)")
            hints["stale"].add(command)
        status = "ok" if not failed and not drifts and not stale else "FAILED"
        say(
            f"{name}: {plural(len(records), 'obligation')}, {len(failed)} failed, "
            f"{plural(len(drifts), 'file')} drifted, {len(stale)} stale ({seconds:.2f} s) {status}"
        )
        problems += len(failed) + len(drifts) + len(stale)
    if not hints["failed"]:
        if not args.networks:  # the files of networks the project no longer declares
            for item in manifest.stale(root, built, previous, everything=True):
                if item.network not in built:
                    source = f", from {item.spec}," if item.spec else ""
                    say(f"{item.network}: stale: {item.path} ({item.network}{source} is not declared)")
                    hints["undeclared"].add(item.path)
                    problems += 1
        for d in compare(root, {manifest.FILENAME: manifest.render(manifest.updated(root, previous, built))}):
            say(f"manifest: {d.reason}: {manifest.FILENAME}")
            hints["manifest"].add(d.reason)
            problems += 1
    if problems:
        _print_hints(hints, configured=project.configured)
    return EXIT_OK if not problems else EXIT_FAILED


def _print_hints(hints: dict[str, set[str]], configured: bool) -> None:
    def err(line: str) -> None:
        print(f"gradproof check: {line}", file=sys.stderr)

    if hints["failed"]:
        err("a proof failed: the rule or the spec is wrong; nothing was compared")
    regenerate = sorted(hints["differs"] | hints["missing"] | hints["stale"])
    for command in regenerate:
        err(f"regenerate after review: {command}")
    for command in sorted(hints["hand-edited"]):
        err(f"hand-edited files are overwritten only when forced: {command} --force")
    if hints["undeclared"]:
        files = " ".join(sorted(hints["undeclared"]))
        where = "[tool.gradproof] specs in pyproject.toml" if configured else "a [tool.gradproof] table"
        err(f"files of networks not declared in {where}: declare their spec, or delete them: git rm {files}")
    if "hand-edited" in hints["manifest"]:
        err(f"{manifest.FILENAME} was edited by hand: gradproof build --force (rewrites it)")
    elif hints["manifest"] and not regenerate:
        err(f"{manifest.FILENAME} is out of date: gradproof build (rewrites it)")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="gradproof",
        description=__doc__.splitlines()[0],
        epilog="exit codes: 0 ok, 1 failed proof, drift or stale output, 2 bad input, 3 I/O error",
    )
    top.add_argument("--version", action="version", version=f"gradproof {gradproof.__version__}")
    commands = top.add_subparsers(dest="command", required=True)
    network_help = f"built-in network name or path to a spec .toml (default {DEFAULT_NETWORK})"
    root_help = "project root (default: nearest directory upward whose pyproject.toml has [tool.gradproof])"

    p = commands.add_parser("prove", help="prove every obligation of a network")
    p.add_argument("network", nargs="?", default=DEFAULT_NETWORK, help=network_help)
    p.add_argument("--json", action="store_true", help="print the proof records as JSON")
    p.add_argument("-v", "--verbose", action="store_true", help="print each statement and method")
    p.add_argument(
        "--budget",
        type=_seconds,
        default=None,
        metavar="SECONDS",
        help="run an element-wise proof at the network's sizes only when its estimated time is within "
        f"SECONDS (default {DEFAULT_BUDGET_SECONDS:g}); the theorems for all sizes always run",
    )
    p.set_defaults(run=cmd_prove)

    p = commands.add_parser("build", help="prove, then write the NumPy module and LaTeX derivation")
    p.add_argument(
        "network",
        nargs="?",
        help="built-in network name or path to a spec .toml (default: the project's declared networks, "
        f"outside a project {DEFAULT_NETWORK})",
    )
    p.add_argument("--root", help=root_help)
    p.add_argument("--out", help="write under this directory instead of the project root")
    p.add_argument(
        "--pdf", action="store_true", help="also compile each document to PDF (latexmk or pdflatex)"
    )
    p.add_argument("--force", action="store_true", help="overwrite or delete hand-edited generated files")
    p.add_argument(
        "--compiled",
        action="store_true",
        help="also write generated/<name>_compiled.py: numba kernels (needs the extra `compiled`)",
    )
    p.set_defaults(run=cmd_build)

    p = commands.add_parser("check", help="re-prove and compare every generated file with the disk")
    p.add_argument("networks", nargs="*", help="networks or specs (default: those the project declares)")
    p.add_argument("--root", help=root_help)
    p.set_defaults(run=cmd_check)

    p = commands.add_parser("networks", help="list the built-in networks")
    p.set_defaults(run=cmd_networks)
    return top


def _seconds(text: str) -> float:
    """A --budget: a finite number of seconds, 0 or more."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of seconds, 0 or more, got {text!r}")
    return value


def main(argv: list[str] | None = None) -> int:
    try:
        code = _run(argv)
    except BrokenPipeError:  # output written outside say(): --help, --version, a usage message
        _drop_stdout()
        code = EXIT_OK
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _drop_stdout()
    return code


def _run(argv: list[str] | None) -> int:
    try:
        args = parser().parse_args(argv)
    except SystemExit as exit_:
        return EXIT_BAD_INPUT if exit_.code else EXIT_OK
    try:
        return args.run(args)
    except (SpecError, ProjectError) as error:
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
    except BrokenPipeError:
        raise
    except OSError as error:
        print(f"gradproof: error: cannot read or write the outputs: {error}", file=sys.stderr)
        return EXIT_IO


if __name__ == "__main__":
    sys.exit(main())
