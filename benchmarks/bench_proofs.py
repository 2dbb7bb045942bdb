"""Proof speed: gradproof against the direct SymPy approach, side by side in one process.

    python benchmarks/bench_proofs.py [--repeat N] [--peer-budget SECONDS] [--no-plot]

Prints three tables and writes ``benchmarks/proof_scaling.png``:

1. every built-in network's full obligation set (median of ``--repeat`` runs),
   and ``gradproof prove`` on the default network as a command (start-up
   included), median of five runs;
2. the small-CNN family (one filter, ReLU, 2x2 max-pool, dense, sigmoid, BCE)
   at 6x6, 12x12 and 22x22 with a 3x3 kernel and at MNIST size, 28x28 with
   5x5: the time of every obligation and the total, against two peers that
   prove the end-to-end obligations the direct way, one ``sympy.diff`` of the
   whole loss per parameter entry and ``sympy.expand`` of its difference with
   the composed rule:
   - *SymPy, stock*: the network written with SymPy's own ``Max``, ``exp`` and
     ``log``, as a textbook would. Expansion alone cannot decide the pooling
     and sigmoid identities, so besides being slow it leaves remainders;
   - *SymPy, gradproof's graph*: the same expression graph gradproof proves
     (``relu``, ``window_max`` and ``sigmoid`` kept as functions, every step
     function read with one value at 0), so it decides every entry;
   a peer gets ``--peer-budget`` seconds per size and is not run at larger
   sizes once it has run out;
3. ``gradproof build`` of the 28x28 network with 8 filters of 5x5: proofs and
   emission, into a temporary directory.
"""

from __future__ import annotations

import argparse
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import sympy as sp

from gradproof.codegen.outputs import render_all
from gradproof.codegen.writing import write_all
from gradproof.derive import prover
from gradproof.derive.network import LOSS_NAME, Network, build, gradient_name
from gradproof.derive.spec import builtin_names, load, parse
from gradproof.derive.symbolic import SymbolicReading, step, symbol_array

HERE = Path(__file__).resolve().parent
FAMILY = [(6, 3), (12, 3), (22, 3), (28, 5)]


def family_spec(side: int, kernel: int, filters: int = 1) -> str:
    return f"""
name = "cnn_{side}x{side}_k{kernel}_f{filters}"
input = [1, {side}, {side}]
loss = "bce"
reduction = "mean"
[[layers]]
type = "conv2d"
filters = {filters}
kernel = {kernel}
[[layers]]
type = "relu"
[[layers]]
type = "maxpool2d"
size = 2
[[layers]]
type = "flatten"
[[layers]]
type = "dense"
units = 1
[[layers]]
type = "sigmoid"
"""


def family_network(side: int, kernel: int, filters: int = 1) -> Network:
    return build(parse(family_spec(side, kernel, filters), f"<{side}x{side}, {kernel}x{kernel}>"))


class OutOfBudgetError(Exception):
    pass


def within(seconds: float, work):
    """``work()`` or ``OutOfBudgetError`` after ``seconds`` (SIGALRM interrupts SymPy mid-way)."""

    def expire(*_):
        raise OutOfBudgetError

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return work()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def timed(work) -> tuple[float, object]:
    start = time.perf_counter()
    result = work()
    return time.perf_counter() - start, result


# ------------------------------------------------------------------ peers


def peer_on_our_graph(network: Network) -> tuple[int, int]:
    """``sympy.diff`` of the whole loss per parameter entry, ``sympy.expand`` of the difference.

    Returns (entries decided equal, entries tried).
    """
    concrete = lambda shape: tuple(1 if d == "N" else d for d in shape)  # noqa: E731
    env = {
        network.input.name: symbol_array(network.input.name, concrete(network.input.shape)),
        network.target.name: symbol_array(network.target.name, concrete(network.target.shape)),
    }
    env.update({p.name: symbol_array(p.name, p.shape) for p in network.params})
    reading = SymbolicReading(env, 1)
    for s in network.steps:
        env[s.output.name] = reading(s.forward)
    for _, target, expr in network.backward_plan():
        env[gradient_name(target)] = reading(expr)
    loss = env[LOSS_NAME].item()
    one_convention = lambda e: e.replace(  # noqa: E731
        lambda n: isinstance(n, (step, sp.Heaviside)), lambda n: step(n.args[0], 0)
    )
    decided = tried = 0
    for p in network.params:
        for index in np.ndindex(p.shape):
            derivative = sp.diff(loss, env[p.name][index])
            tried += 1
            decided += sp.expand(one_convention(derivative - env[gradient_name(p.name)][index])) == 0
    return decided, tried


def peer_stock(side: int, kernel: int) -> tuple[int, int]:
    """The family written with SymPy's own Max, exp and log; rules with Heaviside; diff and expand."""
    out = side - kernel + 1
    x = np.array(sp.symbols(f"x0:{side * side}")).reshape(side, side)
    w = np.array(sp.symbols(f"w0:{kernel * kernel}")).reshape(kernel, kernel)
    b1, b2, y = sp.symbols("b1 b2 y")
    z1 = np.empty((out, out), dtype=object)
    for i, j in np.ndindex(z1.shape):
        z1[i, j] = sum(x[i + m, j + n] * w[m, n] for m in range(kernel) for n in range(kernel)) + b1
    a1 = np.vectorize(lambda z: sp.Max(0, z), otypes=[object])(z1)
    windows = [
        [(2 * i + p, 2 * j + q) for p in range(2) for q in range(2)]
        for i in range(out // 2)
        for j in range(out // 2)
    ]
    w2 = sp.symbols(f"v0:{len(windows)}")
    z2 = sum(sp.Max(*[a1[c] for c in cells]) * v for cells, v in zip(windows, w2, strict=True)) + b2
    a2 = 1 / (1 + sp.exp(-z2))
    loss = -(y * sp.log(a2) + (1 - y) * sp.log(1 - a2))

    dz2 = a2 - y
    dz1 = np.zeros((out, out), dtype=object)
    for cells, v in zip(windows, w2, strict=True):
        for position, cell in enumerate(cells):
            first = [
                sp.Heaviside(a1[cell] - a1[o], 0 if k < position else 1)
                for k, o in enumerate(cells)
                if k != position
            ]
            dz1[cell] = dz2 * v * sp.Mul(*first) * sp.Heaviside(z1[cell], 0)
    rules = {b2: dz2, b1: sum(dz1.ravel())}
    rules.update({v: dz2 * sp.Max(*[a1[c] for c in cells]) for cells, v in zip(windows, w2, strict=True)})
    for m, n in np.ndindex(w.shape):
        rules[w[m, n]] = sum(x[i + m, j + n] * dz1[i, j] for i in range(out) for j in range(out))
    decided = 0
    for theta, rule in rules.items():
        decided += sp.expand(sp.diff(loss, theta) - rule) == 0
    return decided, len(rules)


# ----------------------------------------------------------------- tables


def median_proof(network: Network, repeat: int) -> tuple[float, list[prover.ProofRecord]]:
    runs = [timed(lambda: prover.prove(network)) for _ in range(repeat)]
    for _, records in runs:
        assert prover.all_hold(records), network.spec.name
    return statistics.median(t for t, _ in runs), runs[-1][1]


def builtins_table(repeat: int) -> None:
    print("1. Built-in networks: the full obligation set (median of", repeat, "runs)\n")
    print(f"   {'network':14} {'obligations':>11} {'entries':>8} {'seconds':>8}")
    for name in builtin_names():
        seconds, records = median_proof(build(load(name)), repeat)
        print(f"   {name:14} {len(records):11d} {sum(r.entries for r in records):8d} {seconds:8.2f}")
    walls = []
    for _ in range(5):
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "gradproof.codegen.cli", "prove"], check=True, capture_output=True
        )
        walls.append(time.perf_counter() - start)
    median = statistics.median(walls)
    print(f"\n   `gradproof prove` (small_cnn) as a command, start-up included: median {median:.2f} s\n")


def family_table(repeat: int, budget: float) -> list[dict]:
    print("2. The small-CNN family: gradproof's obligations and the direct SymPy peers\n")
    rows: list[dict] = []
    live = {"graph": True, "stock": True}
    for side, kernel in FAMILY:
        network = family_network(side, kernel)
        reps = repeat if side < 20 else 1
        seconds, records = median_proof(network, reps)
        row = {"size": f"{side}x{side}/{kernel}x{kernel}", "side": side, "ours": seconds, "records": records}
        row["ours_e2e"] = sum(r.seconds for r in records if r.level == "end-to-end")
        for peer, work in (
            ("graph", lambda n=network: peer_on_our_graph(n)),
            ("stock", lambda s=side, k=kernel: peer_stock(s, k)),
        ):
            if not live[peer]:
                row[peer] = None
                continue
            try:
                elapsed, (decided, tried) = timed(lambda w=work: within(budget, w))
                row[peer] = (elapsed, decided, tried)
            except OutOfBudgetError:
                row[peer] = ("budget", 0, 0)
                live[peer] = False
        rows.append(row)

    names = [f"{r.level} {r.name}" for r in rows[0]["records"]]
    print(f"   {'obligation (seconds)':50}" + "".join(f"{r['size']:>13}" for r in rows))
    for i, name in enumerate(names):
        print(f"   {name[:50]:50}" + "".join(f"{r['records'][i].seconds:13.3f}" for r in rows))
    print(f"   {'gradproof, all obligations':50}" + "".join(f"{r['ours']:13.2f}" for r in rows))
    print(f"   {'gradproof, end-to-end only':50}" + "".join(f"{r['ours_e2e']:13.2f}" for r in rows))
    for peer, label in (
        ("graph", "peer: SymPy diff+expand, gradproof's graph"),
        ("stock", "peer: SymPy diff+expand, stock Max/exp/log"),
    ):
        cells = []
        for r in rows:
            result = r[peer]
            if result is None:
                cells.append("not run")
            elif result[0] == "budget":
                cells.append(f">{budget:.0f} s")
            else:
                cells.append(f"{result[0]:.2f}")
        print(f"   {label:50}" + "".join(f"{c:>13}" for c in cells))
        verdicts = []
        for r in rows:
            result = r[peer]
            verdicts.append("-" if result is None or result[0] == "budget" else f"{result[1]}/{result[2]} eq")
        print(f"   {'  entries it decided equal':50}" + "".join(f"{v:>13}" for v in verdicts))
    print(
        "\n   ratio peer (gradproof's graph) / gradproof end-to-end: "
        + ", ".join(
            f"{r['size']} {r['graph'][0] / r['ours_e2e']:.0f}x"
            for r in rows
            if r["graph"] and r["graph"][0] != "budget"
        )
    )
    print()
    return rows


def build_table() -> float:
    print("3. gradproof build of the 28x28 network with 8 filters of 5x5 (proofs and emission)\n")
    network = family_network(28, 5, filters=8)
    start = time.perf_counter()
    records = prover.prove(network)
    proved = time.perf_counter() - start
    assert prover.all_hold(records)
    with tempfile.TemporaryDirectory() as out:
        written = write_all(Path(out), render_all(network, records))
    total = time.perf_counter() - start
    print(
        f"   {network.parameter_count} parameters, {len(records)} obligations: proofs {proved:.1f} s, "
        f"proofs and {len(written)} files {total:.1f} s\n"
    )
    return total


def plot(rows: list[dict], budget: float) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sides = [r["side"] for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(sides, [r["ours"] for r in rows], "o-", label="gradproof, all obligations")
    ax.plot(sides, [r["ours_e2e"] for r in rows], "s--", label="gradproof, end-to-end only")
    for peer, label, marker in (
        ("graph", "SymPy diff+expand, gradproof's graph", "^-"),
        ("stock", "SymPy diff+expand, stock functions", "v-"),
    ):
        done = [(r["side"], r[peer][0]) for r in rows if r[peer] and r[peer][0] != "budget"]
        over = [r["side"] for r in rows if r[peer] and r[peer][0] == "budget"]
        if done:
            ax.plot(*zip(*done, strict=True), marker, label=label)
        if over:
            ax.plot(over, [budget] * len(over), marker[0], markerfacecolor="none", color="grey")
    ax.axhline(budget, color="grey", linewidth=0.8, linestyle=":")
    ax.text(sides[0], budget * 1.1, f"peer budget {budget:.0f} s (hollow: ran out)", fontsize=8, color="grey")
    ax.set_yscale("log")
    ax.set_xticks(sides, [r["size"] for r in rows])
    ax.set_xlabel("input side / kernel (one filter)")
    ax.set_ylabel("seconds (log scale)")
    ax.set_title("Exact proof time of the small-CNN family")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = HERE / "proof_scaling.png"
    fig.savefig(path, dpi=110)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (median)")
    parser.add_argument("--peer-budget", type=float, default=120.0, help="seconds a peer gets per size")
    parser.add_argument("--no-plot", action="store_true")
    args = parser.parse_args()
    print(f"gradproof proof benchmark: sympy {sp.__version__}, python {sys.version.split()[0]}\n")
    builtins_table(args.repeat)
    rows = family_table(args.repeat, args.peer_budget)
    build_table()
    if not args.no_plot:
        print(f"wrote {plot(rows, args.peer_budget).relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()
