"""Speed of the generated NumPy forward+backward against PyTorch CPU autograd, in one process.

A script that prints tables (not a test). Run it from the checkout:

    python benchmarks/bench_generated.py                 # tables, then benchmarks/generated_scaling.png
    python benchmarks/bench_generated.py --threads 1     # BLAS and torch both on one thread
    python benchmarks/bench_generated.py --profile       # where the generated code spends its time

What is timed, per configuration (network, dtype, batch): one call of the generated
``loss_and_grads(params, X, Y)`` (forward, loss and every parameter gradient), against the
same network written with ``torch.nn.functional`` and differentiated by autograd (``from_numpy``
inputs, forward, ``loss.backward()``, gradients back as NumPy views), and against the plain
loop reference of ``tests/reference_numeric.py``. The contenders run interleaved: in each round
each contender makes nine calls back to back, as a training loop would, and the last four are
timed (the first ones bring back the caches, free lists and threads the other contender
displaced; timed right after torch, the generated code runs up to twice as slow). The tables
show medians over the rounds. The loop reference is pure Python, one sample
and one entry at a time, so it is timed only where it finishes in reasonable time: the small
CNN at batches 1 and 64, the MNIST-size network at batch 1, in float64 only (it computes with
Python floats whatever the dtype), three rounds each; elsewhere the table shows "-".

Threads: NumPy's BLAS (OpenBLAS) and torch use the same number of threads. By default the
script leaves OpenBLAS at its own default (one thread per core: two on the benchmark machine)
and sets ``torch.set_num_threads`` to the number OpenBLAS reports; ``--threads N`` sets
``OPENBLAS_NUM_THREADS``/``OMP_NUM_THREADS`` before NumPy is imported and torch to the same N.
The header prints the number the BLAS library itself reports. NumPy's element-wise operations
are single-threaded; the generated ``loss_and_grads`` starts no threads of its own (a batch of at
least 2 * CHUNK samples, 112 for mnist_cnn8, runs in chunks one after another), so its only
parallelism is BLAS's; torch runs its convolutions, pooling and element-wise kernels on all its
threads. Spinning pool threads of one runtime slow whatever runs next: between the contenders'
bursts the script pauses (``--pause``, default 20 ms) so that torch's OpenMP threads and numba's
workers have gone to sleep before the next contender is timed. On a shared machine,
``--threads 1`` gives steadier numbers. ``--busy-core`` is a load test: another process spins on
one core while the tables are timed (compare its ratios with a quiet run's); ``--only NAME``
times one network (repeatable).

Memory: glibc's malloc by default gives the top of the heap back to the kernel whenever a few
megabytes are free, with thresholds that move with the process's history, so a loop that
allocates and frees tens of megabytes per step pays thousands of page faults per step (about
3 us each on the benchmark machine), torch and the generated code alike, by amounts that depend
on what ran before. The script therefore fixes the thresholds with ``mallopt`` (blocks up to
32 MB from the heap, never trimmed): the tables show the steady state of a training loop.
``--default-malloc`` leaves glibc alone; the header says which.

Configurations:
- ``small_cnn`` (built in): 1x6x6 input, one 3x3 filter, ReLU, 2x2 max-pool, dense to 1,
  sigmoid, binary cross-entropy; the committed module ``generated/small_cnn.py``.
- ``mnist_cnn8`` (``benchmarks/specs/mnist_cnn8.toml``): 1x28x28 input, eight 5x5 filters,
  ReLU, 2x2 max-pool, flatten (1152), dense to 1, sigmoid, binary cross-entropy. Its module is
  rendered by the real NumPy emitter (``gradproof.codegen.numpy.emitter.render``) into a temporary
  directory and imported from there. The emitter wants the proof records for its comments;
  proving this network element-wise takes minutes, so the script gives ``derive.prover.prove``
  ``--prove-seconds`` (default 20 s) in a child process and renders with an empty record list
  when it does not finish (the header says which). The records only change the comments of
  the module, never its code.
- ``lenet5`` (built in): 1x32x32 input, two 5x5 convolutions (6 and 16 filters) with tanh and
  2x2 average pooling, dense 400 -> 120 -> 84 -> 10 with tanh, softmax with cross-entropy; the
  committed modules ``generated/lenet5.py`` and ``generated/lenet5_compiled.py`` (not in the plot).
- the scaling plot also renders the MNIST-size architecture at other input sizes (12 to 44
  pixels, same layers), the same way, without proving.

The compiled module (``generated/<name>_compiled.py``, numba kernels of the same proven rules, the
optional extra ``compiled``) is a third contender in the same rounds when numba is installed
(``--no-compiled`` leaves it out): the committed ``small_cnn_compiled`` and, for the MNIST-size
network, the compiled emitter's module rendered into the temporary directory. The header says how
each compiled module runs the benchmarked batches (its blocks of BLOCK samples, and the samples each
thread computes). Its compile time is
reported apart, before the tables: in child processes, the first call of the serial kernel (batch 1)
and of the parallel one (a batch of two blocks or more) with a fresh ``NUMBA_CACHE_DIR`` (cold), then
again in a new process on the same cache (warm, loading from numba's on-disk cache), per dtype. The
tables then show its steady state. ``comp/bound`` is its time over the machine bound, the FLOP count
below divided by the matmul rate (the compiled kernels do less work than that count: the weight
gradient of a pooled convolution reads only the routed entries, a quarter for a 2x2 window).
Between the contenders' bursts of calls the script pauses (``--pause``, default 20 ms). The header
prints the load average of the machine before and after the run: on a shared machine timings taken
at a load above the number of cores are not worth much.

Correctness: before timing, every configuration's gradients are compared with torch's: in
float64 with rtol 1e-10, in float32 with rtol 1e-3 (and the float32 gradients must be
float32). A mismatch stops the script: a timing of wrong code is worth nothing.

FLOPs (written out in ``flops()``): a multiply-add counts 2, any other element-wise operation
(add, compare, max, exp, log) 1. Per sample, for a conv layer with C input channels, F filters
of k x k and an oh x ow output: forward 2*F*oh*ow*C*k^2 + F*oh*ow (bias); weight gradient
2*F*oh*ow*C*k^2; bias gradient F*oh*ow; input gradient 2*F*oh*ow*C*k^2 only when it is needed
(not for the first layer). Dense D -> U: forward 2*D*U + U, weight gradient 2*D*U, bias
gradient U, input gradient 2*D*U when needed. ReLU: 1 per element forward, 1 per element
backward (the mask product). Sigmoid: 3 per element forward, 3 backward when not fused. Tanh: 1
forward, 3 backward. Softmax: 4 per element (max, exp, sum, divide), as many backward when not fused
with the cross-entropy. Average pool s x s: s^2 per output forward (sum, divide), s^2 backward
(the spread). A kh x kw kernel counts kh*kw where k^2 stands. Max-pool s x s: s^2 - 1
comparisons per output forward; the routing is counted as 0 (torch keeps indices; gradproof's
rule recomputes them, which is not useful work).
Loss: 3 per output (BCE from the logit, its gradient) or 3 (half squared error). For ``mnist_cnn8`` this is
about 0.49 MFLOP per sample, 94% of it the two convolutions. GFLOP/s is that count divided by
the median time, and is set against a square float32/float64 matmul (``--matmul-size``,
default 1024) measured in the same run with the same threads: the practical peak of the machine.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MNIST_SPEC = ROOT / "benchmarks" / "specs" / "mnist_cnn8.toml"
PLOT = ROOT / "benchmarks" / "generated_scaling.png"
BATCHES = (1, 64, 256)
DTYPES = ("float32", "float64")
# (network, batch) pairs where the pure-Python loop reference is timed.
REFERENCE_AT = {("small_cnn", 1), ("small_cnn", 64), ("mnist_cnn8", 1)}
REFERENCE_ROUNDS = 3
# Calls per contender per round: WARM_CALLS untimed, then TIMED_CALLS timed (see ``interleaved``).
WARM_CALLS = 5
TIMED_CALLS = 4
TARGET_RATIO = 0.5  # generated time at most half of torch's
TARGET_PEAK_SHARE = 0.25  # at least a quarter of the matmul rate on the 28x28 network
COMPILED_TARGET_RATIO = 0.2  # compiled mnist_cnn8 at most a fifth of torch's time (batches 64, 256)
COMPILED_TARGET_BOUND = 3.0  # and at most three times the machine bound
PAUSE = 0.02  # seconds between the contenders' bursts of calls


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--threads", type=int, default=None, help="BLAS and torch threads (default: OpenBLAS's own default)"
    )
    parser.add_argument("--budget", type=float, default=1.5, help="seconds of timing per configuration")
    parser.add_argument("--rounds", type=int, default=200, help="most rounds per configuration")
    parser.add_argument("--min-rounds", type=int, default=15, help="fewest rounds per configuration")
    parser.add_argument(
        "--prove-seconds", type=float, default=20.0, help="time allowed for proving mnist_cnn8"
    )
    parser.add_argument("--matmul-size", type=int, default=1024)
    parser.add_argument("--plot", type=Path, default=PLOT, help="where to write the scaling plot")
    parser.add_argument("--no-plot", action="store_true")
    parser.add_argument(
        "--profile", action="store_true", help="per-statement profile of mnist_cnn8 (batch: --profile-batch)"
    )
    parser.add_argument("--profile-batch", type=int, default=256, help="the batch --profile times")
    parser.add_argument(
        "--default-malloc", action="store_true", help="leave glibc heap trimming on (page faults every step)"
    )
    parser.add_argument("--no-compiled", action="store_true", help="leave out the compiled (numba) module")
    parser.add_argument("--pause", type=float, default=PAUSE, help="seconds between contenders' bursts")
    parser.add_argument(
        "--busy-core",
        action="store_true",
        help="time while another process keeps one core busy (a load test: compare with a quiet run)",
    )
    parser.add_argument(
        "--only", choices=("small_cnn", "mnist_cnn8", "lenet5"), action="append", help="networks to time"
    )
    return parser.parse_args(argv)


@contextlib.contextmanager
def busy_core(enabled: bool):
    """Another process spinning on one core for as long as the block runs (``--busy-core``)."""
    if not enabled:
        yield
        return
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)  # let it take its core
        yield
    finally:
        spinner.kill()
        spinner.wait()


def set_threads(threads: int) -> None:
    """Fix the BLAS and OpenMP thread counts; only effective before NumPy and torch are imported."""
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = str(threads)


def steady_allocator() -> bool:
    """Keep freed memory in the process (glibc): no page faults in the steady state of a loop.

    By default glibc returns the top of the heap to the kernel whenever more than a few megabytes
    are free, and its thresholds move with the process's history; a loop that allocates and
    frees tens of megabytes per step then pays thousands of page faults per step (about 3 us
    each on this virtual machine), for torch and for the generated code alike, and by amounts
    that depend on what the process did before. ``mallopt`` fixes the thresholds: blocks up to
    32 MB come from the heap and the heap is never trimmed.
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if not name:
        return False
    libc = ctypes.CDLL(name)
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(libc.mallopt(m_mmap_threshold, 32 << 20)) and bool(libc.mallopt(m_trim_threshold, 1 << 30))


def blas_threads() -> int | None:
    """The thread count the loaded OpenBLAS reports (None when it cannot be asked)."""
    import ctypes

    import numpy  # noqa: F401 - loads the BLAS library whose threads we ask for

    with open("/proc/self/maps") as maps:
        paths = {line.split()[-1] for line in maps if "openblas" in line.lower() and "/" in line}
    for path in sorted(paths):
        library = ctypes.CDLL(path)
        for symbol in (
            "scipy_openblas_get_num_threads64_",
            "openblas_get_num_threads64_",
            "openblas_get_num_threads",
        ):
            function = getattr(library, symbol, None)
            if function is not None:
                return int(function())
    return None


# ---------------------------------------------------------------------------- the contenders


def load_module(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def prove_within(spec_path: Path, seconds: float) -> tuple[list, str]:
    """The proof records of a spec if a child process proves it within ``seconds``, else []."""
    from gradproof.derive.prover import ProofRecord

    script = (
        "import json, sys\n"
        "from gradproof.derive import prover\n"
        "from gradproof.derive.network import build\n"
        "from gradproof.derive.spec import load\n"
        "records = prover.prove(build(load(sys.argv[1])))\n"
        "print(json.dumps([r.as_dict() for r in records]))\n"
    )
    start = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, "-c", script, str(spec_path)],
            capture_output=True,
            text=True,
            timeout=seconds,
            cwd=ROOT,
            check=True,
        )
    except subprocess.TimeoutExpired:
        return [], f"not proven within {seconds:.0f} s: rendered with an empty record list"
    except subprocess.CalledProcessError as error:
        reason = (error.stderr.strip().splitlines() or ["failed"])[-1]
        return [], f"prover failed ({reason}): rendered with an empty record list"
    records = [ProofRecord(**r) for r in json.loads(done.stdout)]
    held = sum(r.holds for r in records)
    return records, f"proven in {time.perf_counter() - start:.1f} s ({held}/{len(records)} obligations hold)"


def render_module(spec_text_or_path: str | Path, records: list, directory: Path):
    """Render a network's module with the real NumPy emitter into ``directory`` and import it."""
    from unittest import mock

    from gradproof.codegen.numpy.emitter import render
    from gradproof.derive import spec as spec_module
    from gradproof.derive.network import build

    # The spec reader refuses networks too large to prove element-wise (MAX_TERMS); rendering
    # does not prove, so the limit is lifted while the spec is read.
    with mock.patch.object(spec_module, "MAX_TERMS", 10**12, create=True):
        if isinstance(spec_text_or_path, Path):
            spec = spec_module.load(str(spec_text_or_path))
        else:
            spec = spec_module.parse(spec_text_or_path, "<benchmark>")
    network = build(spec)
    ((relative, text),) = render(network, records).items()
    path = directory / Path(relative).name
    path.write_text(text, encoding="utf-8")
    return load_module(f"bench_{spec.name}", path), spec


def render_compiled(spec_path: Path, records: list, directory: Path):
    """Render a network's compiled module with the compiled emitter into ``directory`` and import it.

    The module gets a fixed name (numba's on-disk cache finds a module's functions by it)."""
    from unittest import mock

    from gradproof.codegen.compiled.emitter import render
    from gradproof.derive import spec as spec_module
    from gradproof.derive.network import build

    with mock.patch.object(spec_module, "MAX_TERMS", 10**12, create=True):
        spec = spec_module.load(str(spec_path))
    ((relative, text),) = render(build(spec), records).items()
    path = directory / Path(relative).name
    path.write_text(text, encoding="utf-8")
    name = f"gradproof_bench_{spec.name}_compiled"
    return load_module(name, path), path


COMPILE_SCRIPT = """
import importlib, importlib.util, json, sys, time
import numpy as np
name, path, dtype = sys.argv[1:4]
serial, parallel, units = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[7])
input_shape = tuple(int(d) for d in sys.argv[6].split(","))
t0 = time.perf_counter()
if path:
    loader = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(loader)
    sys.modules[name] = module
    loader.loader.exec_module(module)
else:
    module = importlib.import_module(name)
imported = time.perf_counter() - t0
rng = np.random.default_rng(0)
params = module.init_params(rng, np.dtype(dtype).type)
times = {"import": imported}
for label, batch in (("serial", serial), ("parallel", parallel)):
    X = rng.normal(size=(batch, *input_shape)).astype(dtype)
    Y = np.zeros((batch, units), dtype)
    Y[:, 0] = 1  # a one-hot row: a target of every loss
    t0 = time.perf_counter()
    module.loss_and_grads(params, X, Y)
    times[label] = time.perf_counter() - t0
print(json.dumps(times))
"""


def compile_times(name: str, path: Path | None, module, spec) -> dict:
    """First-call seconds of the serial and the parallel kernel, cold (fresh numba cache) and warm."""
    results = {}
    with tempfile.TemporaryDirectory(prefix="gradproof-numba-cache-") as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        for dtype in DTYPES:
            for state in ("cold", "warm"):
                shape = ",".join(str(d) for d in spec.input)
                units = str(
                    module.PARAM_SHAPES[[k for k in module.PARAM_SHAPES if k.startswith("W")][-1]][-1]
                )
                parallel = str(2 * module.BLOCK)
                arguments = [name, str(path or ""), dtype, "1", parallel, shape, units]
                done = subprocess.run(
                    [sys.executable, "-c", COMPILE_SCRIPT, *arguments],
                    capture_output=True,
                    text=True,
                    cwd=ROOT,
                    env=env,
                    check=True,
                )
                results[(dtype, state)] = json.loads(done.stdout)
    return results


def print_compile_times(name: str, times: dict) -> None:
    for dtype in DTYPES:
        cold, warm = times[(dtype, "cold")], times[(dtype, "warm")]
        print(
            f"  {name:<11} {dtype:<7} cold: serial kernel {cold['serial']:.2f} s "
            f"+ parallel {cold['parallel']:.2f} s "
            f"= {cold['serial'] + cold['parallel']:.2f} s; warm (on-disk cache): "
            f"{warm['serial']:.3f} s + {warm['parallel']:.3f} s (import {warm['import']:.2f} s)"
        )


def block_split(module) -> str:
    """How the compiled module runs each benchmarked batch: its blocks, and in how many threads
    (split as the module's ``_each_block`` splits them: consecutive runs of blocks, one per thread)."""
    import numpy as np

    parts = []
    for batch in BATCHES:
        blocks = module.blocks(batch)
        runs = np.array_split(np.arange(len(blocks)), min(module.THREADS, len(blocks)))
        samples = [sum(blocks[k][1] - blocks[k][0] for k in run) for run in runs]
        split = " + ".join(str(n) for n in samples)
        where = "this thread" if len(blocks) == 1 else f"{len(runs)} threads, {split} samples"
        parts.append(f"batch {batch}: {len(blocks)} block{'s' if len(blocks) > 1 else ''} ({where})")
    return f"BLOCK {module.BLOCK}, THREADS {module.THREADS}; " + "; ".join(parts)


def layer_dicts(spec) -> list[dict]:
    """The spec's layers as the plain dictionaries the loop reference reads."""
    return [{"type": layer.type, **layer.options} for layer in spec.layers]


def torch_step(spec, params: dict, X, Y):
    """Forward, loss and autograd backward of the same network with torch.nn.functional."""
    import torch
    import torch.nn.functional as tf

    tensors = {k: torch.from_numpy(v).requires_grad_() for k, v in params.items()}
    value, logits, k = torch.from_numpy(X), None, 0
    for layer in spec.layers:
        options = layer.options
        if layer.type in ("conv2d", "dense"):
            k += 1
            w, b = tensors[f"W{k}"], tensors.get(f"B{k}")
            if layer.type == "conv2d":
                value = tf.conv2d(value, w, b, stride=options["stride"], padding=options["padding"])
            else:
                value = value @ w + (b if b is not None else 0)
        elif layer.type == "relu":
            value = torch.relu(value)
        elif layer.type == "sigmoid":
            logits, value = value, torch.sigmoid(value)
        elif layer.type == "tanh":
            value = torch.tanh(value)
        elif layer.type == "softmax":
            logits, value = value, torch.softmax(value, dim=1)
        elif layer.type == "maxpool2d":
            value = tf.max_pool2d(value, options["size"])
        elif layer.type == "avgpool2d":
            value = tf.avg_pool2d(value, options["size"])
        elif layer.type == "flatten":
            value = value.flatten(1)
        else:  # timing a different network than the generated one would be a silent lie
            raise ValueError(f"the torch contender has no layer type {layer.type!r}")
    target = torch.from_numpy(Y)
    if spec.loss not in ("bce", "mse", "cross_entropy"):
        raise ValueError(f"the torch contender has no loss {spec.loss!r}")
    if spec.loss == "bce":
        loss = tf.binary_cross_entropy_with_logits(logits, target, reduction="sum")
    elif spec.loss == "cross_entropy":
        loss = tf.cross_entropy(logits, target, reduction="sum")
    else:
        loss = 0.5 * ((value - target) ** 2).sum()
    if spec.reduction == "mean":
        loss = loss / target.shape[0]
    loss.backward()
    return loss.item(), {key: t.grad.numpy() for key, t in tensors.items()}


def reference_step(spec, params: dict, X, Y):
    from tests import reference_numeric

    data = {"layers": layer_dicts(spec), "loss": spec.loss, "reduction": spec.reduction}
    return reference_numeric.loss_and_grads(data, params, X, Y)


def sample(module, spec, batch: int, dtype, seed: int = 0):
    """Parameters from the module's own ``init_params``, inputs N(0, 1), 0/1 or uniform targets."""
    import numpy as np

    rng = np.random.default_rng(seed)
    params = module.init_params(rng, dtype)
    for name, value in params.items():
        if name.startswith("B"):  # small positive biases: most ReLU units active, as after training
            value[...] = 0.1
    X = rng.normal(size=(batch, *spec.input)).astype(dtype)
    units = module.PARAM_SHAPES[[k for k in module.PARAM_SHAPES if k.startswith("W")][-1]][-1]
    if spec.loss == "bce":
        Y = rng.integers(0, 2, size=(batch, units)).astype(dtype)
    elif spec.loss == "cross_entropy":
        Y = np.eye(units, dtype=dtype)[rng.integers(0, units, size=batch)]
    else:
        Y = rng.uniform(size=(batch, units)).astype(dtype)
    return params, X, Y


def check_against_torch(name: str, module, spec, dtype) -> None:
    """The generated gradients equal torch's (float64: rtol 1e-10) and keep float32 as float32."""
    import numpy as np

    params, X, Y = sample(module, spec, 7, dtype, seed=1)
    loss, grads = module.loss_and_grads(params, X, Y)
    expected_loss, expected = torch_step(spec, params, X, Y)
    rtol, atol = (1e-10, 1e-13) if dtype == np.float64 else (1e-3, 1e-5)
    if not np.isclose(loss, expected_loss, rtol=rtol, atol=atol):
        raise SystemExit(f"{name} {np.dtype(dtype).name}: loss {loss} != torch {expected_loss}")
    for key, value in grads.items():
        if value.dtype != dtype:
            raise SystemExit(f"{name}: d{key} is {value.dtype}, the inputs were {np.dtype(dtype).name}")
        scale = np.abs(expected[key]).max()
        np.testing.assert_allclose(
            value, expected[key], rtol=rtol, atol=atol * max(scale, 1.0), err_msg=f"{name} d{key}"
        )


# ---------------------------------------------------------------------------- timing and FLOPs


def interleaved(
    contenders: dict[str, Callable[[], object]],
    budget: float,
    min_rounds: int,
    max_rounds: int,
    pause: float = PAUSE,
) -> dict[str, list[float]]:
    """Seconds per call of each contender, measured in alternating rounds.

    In each round every contender runs WARM_CALLS + TIMED_CALLS calls back to back, as in a
    training loop, and only the last TIMED_CALLS are timed: the first calls after the other
    contender's are slower while caches, the allocator's free lists and the worker threads come
    back (measured: right after a torch call, successive calls of the generated mnist_cnn8 step
    at batch 64 took 4.1, 2.7, 2.4, 2.3, 2.1, 2.2, 2.1, 2.0 ms, medians of 20). The number of
    rounds fits ``budget`` (within the bounds); the loop reference, if present, runs one timed
    call in each of the first REFERENCE_ROUNDS rounds.
    """
    for run in contenders.values():  # warm-up: lazy imports, allocator, BLAS buffers
        run()
    fast = {k: v for k, v in contenders.items() if k != "reference"}
    start = time.perf_counter()
    for run in fast.values():
        run()
    per_round = (WARM_CALLS + TIMED_CALLS) * (time.perf_counter() - start)
    per_round += pause * len(contenders)
    rounds = max(min_rounds, min(max_rounds, int(budget / max(per_round, 1e-9))))
    times: dict[str, list[float]] = defaultdict(list)
    for i in range(rounds):
        for name, run in contenders.items():
            time.sleep(pause)  # let the machine settle between contenders (and other processes run)
            if name == "reference":
                if i < REFERENCE_ROUNDS:
                    t0 = time.perf_counter()
                    run()
                    times[name].append(time.perf_counter() - t0)
                continue
            for _ in range(WARM_CALLS):
                run()
            for _ in range(TIMED_CALLS):
                t0 = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - t0)
    return times


def flops(spec, batch: int) -> int:
    """FLOPs of one forward+backward of the generated code (the formula in the module docstring)."""
    from gradproof.derive.spec import layer_shapes

    total, shape, first = 0, tuple(spec.input), True
    fused = spec.loss in ("bce", "cross_entropy")
    for index, (layer, out) in enumerate(zip(spec.layers, layer_shapes(spec), strict=True)):
        outputs = 1
        for d in out:
            outputs *= d
        last = index == len(spec.layers) - 1
        if layer.type == "conv2d":
            kernel = layer.options["kernel"]
            kh, kw = kernel if isinstance(kernel, tuple) else (kernel, kernel)
            macs = outputs * shape[0] * kh * kw
            bias = outputs if layer.options["bias"] else 0
            total += 2 * macs + bias + 2 * macs + bias + (0 if first else 2 * macs)
            first = False
        elif layer.type == "dense":
            macs = shape[0] * out[0]
            bias = out[0] if layer.options["bias"] else 0
            total += 2 * macs + bias + 2 * macs + bias + (0 if first else 2 * macs)
            first = False
        elif layer.type == "relu":
            total += 2 * outputs
        elif layer.type == "sigmoid":
            total += 3 * outputs + (0 if last and fused else 3 * outputs)
        elif layer.type == "tanh":
            total += 4 * outputs  # np.tanh; dA (1 - A A)
        elif layer.type == "softmax":
            total += 4 * outputs + (0 if last and fused else 4 * outputs)  # max, exp, sum, divide
        elif layer.type == "maxpool2d":
            total += (layer.options["size"] ** 2 - 1) * outputs
        elif layer.type == "avgpool2d":
            total += layer.options["size"] ** 2 * outputs * 2  # the window's sum and mean; the spread
        elif layer.type != "flatten":
            raise ValueError(f"no FLOP count for layer type {layer.type!r}")
        shape = out
    total += 3 * shape[0]  # the loss and its gradient
    return total * batch


def matmul_rate(dtype, size: int, repeats: int = 9) -> float:
    """GFLOP/s of a square matmul: the practical peak of this machine, this dtype and these threads."""
    import numpy as np

    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size)).astype(dtype)
    b = rng.standard_normal((size, size)).astype(dtype)
    a @ b
    seconds = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        seconds.append(time.perf_counter() - t0)
    return 2 * size**3 / sorted(seconds)[len(seconds) // 2] / 1e9


def median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


# ---------------------------------------------------------------------------- the tables


def run_tables(args, modules: dict) -> list[dict]:
    import numpy as np

    rows = []
    for dtype_name in DTYPES:
        dtype = np.dtype(dtype_name).type
        peak = matmul_rate(dtype, args.matmul_size)
        for name, (module, spec, compiled) in modules.items():
            check_against_torch(name, module, spec, dtype)
            if compiled is not None:
                check_against_torch(f"{name} compiled", compiled, spec, dtype)
            for batch in BATCHES:
                params, X, Y = sample(module, spec, batch, dtype)
                contenders = {
                    "generated": lambda m=module, p=params, x=X, y=Y: m.loss_and_grads(p, x, y),
                    "torch": lambda s=spec, p=params, x=X, y=Y: torch_step(s, p, x, y),
                }
                if compiled is not None:
                    contenders["compiled"] = lambda m=compiled, p=params, x=X, y=Y: m.loss_and_grads(p, x, y)
                if (name, batch) in REFERENCE_AT and dtype == np.float64:
                    contenders["reference"] = lambda s=spec, p=params, x=X, y=Y: reference_step(s, p, x, y)
                times = interleaved(contenders, args.budget, args.min_rounds, args.rounds, args.pause)
                work = flops(spec, batch)
                generated, torch_time = median(times["generated"]), median(times["torch"])
                fastest = median(times["compiled"]) if "compiled" in times else None
                rows.append(
                    {
                        "network": name,
                        "dtype": dtype_name,
                        "batch": batch,
                        "generated": generated,
                        "compiled": fastest,
                        "torch": torch_time,
                        "reference": median(times["reference"]) if "reference" in times else None,
                        "rounds": len(times["generated"]),
                        "gflops": work / generated / 1e9,
                        "compiled_gflops": work / fastest / 1e9 if fastest else None,
                        "torch_gflops": work / torch_time / 1e9,
                        "peak": peak,
                        "bound": work / (peak * 1e9),
                        "flops": work,
                    }
                )
                print(format_row(rows[-1]), flush=True)
    return rows


HEADER = (
    f"{'network':<11} {'dtype':<7} {'batch':>5} {'NumPy':>10} {'compiled':>10} {'torch':>10} {'np/torch':>8} "
    f"{'comp/torch':>10} {'comp/np':>7} {'loop ref':>10} {'MFLOP':>7} {'np GF/s':>7} {'comp GF/s':>9} "
    f"{'torch GF/s':>10} {'matmul GF/s':>11} {'comp/bound':>10} {'rounds':>6}"
)


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e3:.3f} ms"


def _ratio(a: float | None, b: float, width: int) -> str:
    return f"{'-':>{width}}" if a is None else f"{a / b:>{width}.2f}"


def format_row(r: dict) -> str:
    compiled = r["compiled"]
    return (
        f"{r['network']:<11} {r['dtype']:<7} {r['batch']:>5} {_ms(r['generated']):>10} {_ms(compiled):>10} "
        f"{_ms(r['torch']):>10} {r['generated'] / r['torch']:>8.2f} {_ratio(compiled, r['torch'], 10)} "
        f"{_ratio(compiled, r['generated'], 7)} {_ms(r['reference']):>10} {r['flops'] / 1e6:>7.2f} "
        f"{r['gflops']:>7.2f} {r['compiled_gflops'] or 0:>9.2f} {r['torch_gflops']:>10.2f} "
        f"{r['peak']:>11.1f} "
        f"{_ratio(compiled, r['bound'], 10)} {r['rounds']:>6}"
    )


def summary(rows: list[dict]) -> None:
    print("\nTargets: NumPy module at most half of torch's time everywhere; at least a quarter of the")
    print("matmul rate on the 28x28 network (mnist_cnn8).")
    worst = max(rows, key=lambda r: r["generated"] / r["torch"])
    missed = [r for r in rows if r["generated"] / r["torch"] > TARGET_RATIO]
    print(
        f"  np/torch: worst {worst['generated'] / worst['torch']:.2f} "
        f"({worst['network']} {worst['dtype']} batch {worst['batch']}); "
        f"{len(rows) - len(missed)}/{len(rows)} configurations at or under {TARGET_RATIO}"
    )
    for r in rows:
        if r["network"] == "mnist_cnn8":
            verdict = "met" if r["gflops"] / r["peak"] >= TARGET_PEAK_SHARE else "missed"
            print(
                f"  mnist_cnn8 {r['dtype']} batch {r['batch']:>3}: {r['gflops']:.1f} GFLOP/s = "
                f"{r['gflops'] / r['peak']:.1%} of matmul ({verdict})"
            )
    compiled = [r for r in rows if r["compiled"] is not None]
    if not compiled:
        return
    print(
        f"Compiled targets: mnist_cnn8 at most {COMPILED_TARGET_RATIO} of torch's time at batches 64 and 256 "
        f"and at most {COMPILED_TARGET_BOUND:.0f}x the machine bound; small_cnn and lenet5 faster than NumPy."
    )
    for r in compiled:
        ratio, bound = r["compiled"] / r["torch"], r["compiled"] / r["bound"]
        if r["network"] == "mnist_cnn8" and r["batch"] in (64, 256):
            verdict = "met" if ratio <= COMPILED_TARGET_RATIO and bound <= COMPILED_TARGET_BOUND else "missed"
            print(
                f"  mnist_cnn8 {r['dtype']} batch {r['batch']:>3}: comp/torch {ratio:.3f}, "
                f"comp/bound {bound:.2f} ({verdict})"
            )
        elif r["network"] in ("small_cnn", "lenet5"):
            verdict = "met" if r["compiled"] < r["generated"] else "missed"
            print(
                f"  {r['network']:<10} {r['dtype']} batch {r['batch']:>3}: "
                f"comp/np {r['compiled'] / r['generated']:.3f} ({verdict})"
            )


# ---------------------------------------------------------------------------- the plot


SCALING_BATCHES = (1, 4, 16, 64, 256, 1024)
SCALING_SIZES = (12, 20, 28, 36, 44)
SCALING_SIZE_BATCH = 64


def mnist_like(size: int) -> str:
    return (
        MNIST_SPEC.read_text()
        .replace("input = [1, 28, 28]", f"input = [1, {size}, {size}]")
        .replace('name = "mnist_cnn8"', f'name = "cnn8_{size}px"')
    )


def scaling(args, modules: dict, directory: Path) -> dict:
    """Median times over batch sizes (both networks) and input sizes (MNIST architecture)."""
    import numpy as np

    curves: dict = {}
    for dtype_name in DTYPES:
        dtype = np.dtype(dtype_name).type
        for name, (module, spec, _compiled) in modules.items():
            for batch in SCALING_BATCHES:
                params, X, Y = sample(module, spec, batch, dtype)
                times = interleaved(
                    {
                        "generated": lambda m=module, p=params, x=X, y=Y: m.loss_and_grads(p, x, y),
                        "torch": lambda s=spec, p=params, x=X, y=Y: torch_step(s, p, x, y),
                    },
                    args.budget / 3,
                    5,
                    args.rounds,
                )
                for who, values in times.items():
                    curves.setdefault(("batch", name, dtype_name, who), []).append((batch, median(values)))
        for size in SCALING_SIZES:
            module, spec = render_module(mnist_like(size), [], directory)
            params, X, Y = sample(module, spec, SCALING_SIZE_BATCH, dtype)
            times = interleaved(
                {
                    "generated": lambda m=module, p=params, x=X, y=Y: m.loss_and_grads(p, x, y),
                    "torch": lambda s=spec, p=params, x=X, y=Y: torch_step(s, p, x, y),
                },
                args.budget / 3,
                5,
                args.rounds,
            )
            for who, values in times.items():
                curves.setdefault(("size", "cnn8", dtype_name, who), []).append((size, median(values)))
        print(f"scaling curves measured ({dtype_name})", flush=True)
    return curves


def plot(curves: dict, path: Path, threads: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6), constrained_layout=True)
    panels = [
        ("batch", "small_cnn", "small CNN (1x6x6, one 3x3 filter)", "batch size"),
        ("batch", "mnist_cnn8", "MNIST-size CNN (1x28x28, eight 5x5 filters)", "batch size"),
        (
            "size",
            "cnn8",
            f"same CNN, input size varied (batch {SCALING_SIZE_BATCH})",
            "input height = width (px)",
        ),
    ]
    colours = {"generated": "tab:blue", "torch": "tab:orange"}
    styles = {"float32": "-", "float64": "--"}
    for ax, (kind, name, title, xlabel) in zip(axes, panels, strict=True):
        for dtype_name in DTYPES:
            for who in ("generated", "torch"):
                points = curves.get((kind, name, dtype_name, who), [])
                if not points:
                    continue
                xs, ys = zip(*points, strict=True)
                label = f"{'gradproof NumPy' if who == 'generated' else 'PyTorch autograd'}, {dtype_name}"
                ax.plot(
                    xs, [y * 1e3 for y in ys], styles[dtype_name], color=colours[who], marker="o", label=label
                )
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("forward + backward, ms (median)")
        ax.set_yscale("log")
        if kind == "batch":
            ax.set_xscale("log", base=2)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(loc="upper left", fontsize=8)
    fig.suptitle(f"Generated NumPy vs PyTorch CPU autograd, {threads} thread(s): lower is faster")
    fig.savefig(path, dpi=110)
    print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


# ---------------------------------------------------------------------------- the profile


def profile(module, spec, batch: int = 256, rounds: int = 30) -> None:
    """Median seconds of each statement of ``forward`` and ``backward`` (AST instrumentation)."""
    import numpy as np

    source = Path(module.__file__).read_text()
    tree = ast.parse(source)
    names = {"forward", "backward"}
    namespace = dict(vars(module))
    samples: dict[str, list[float]] = defaultdict(list)
    totals: dict[str, float] = {}
    namespace["_clock"], namespace["_totals"] = time.perf_counter, totals
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name in names:
            body = []
            for statement in node.body:
                if isinstance(statement, ast.Return) or (
                    isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant)
                ):
                    body.append(statement)
                    continue
                label = ast.get_source_segment(source, statement).splitlines()[0]
                body += ast.parse("_t = _clock()").body
                body.append(statement)
                body += ast.parse(f"_totals[{label!r}] = _clock() - _t").body
            node.body = body
            exec(
                compile(ast.fix_missing_locations(ast.Module([node], [])), module.__file__, "exec"), namespace
            )
    for dtype in (np.float32, np.float64):
        params, X, Y = sample(module, spec, batch, dtype)
        for i in range(rounds + 3):
            totals.clear()
            start = time.perf_counter()
            _, cache = namespace["forward"](params, X)
            namespace["backward"](params, cache, Y)
            del cache
            whole = time.perf_counter() - start
            if i >= 3:
                for label, seconds in totals.items():
                    samples[(np.dtype(dtype).name, label)].append(seconds)
                samples[(np.dtype(dtype).name, "(whole forward + backward)")].append(whole)
        print(f"\nprofile: {spec.name}, {np.dtype(dtype).name}, batch {batch}, medians of {rounds} runs")
        rows = [(median(v), label) for (d, label), v in samples.items() if d == np.dtype(dtype).name]
        whole = next(t for t, label in rows if label.startswith("(whole"))
        for seconds, label in sorted(rows, reverse=True):
            if seconds >= 0.002 * whole:
                print(f"  {seconds * 1e3:8.3f} ms {seconds / whole:6.1%}  {label}")


# ---------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        set_threads(args.threads)
    sys.path.insert(0, str(ROOT))  # tests.reference_numeric
    import numpy as np
    import torch

    threads = args.threads or blas_threads() or os.cpu_count()
    torch.set_num_threads(threads)
    steady = not args.default_malloc and steady_allocator()
    from gradproof.derive.spec import load
    from gradproof.generated import lenet5, small_cnn

    with tempfile.TemporaryDirectory(prefix="gradproof-bench-") as temporary:
        directory = Path(temporary)
        if args.profile:
            print("allocator: " + ("steady (mallopt)" if steady else "glibc default"))
            module, spec = render_module(MNIST_SPEC, [], directory)
            profile(module, spec, batch=args.profile_batch)
            return 0
        records, how = prove_within(MNIST_SPEC, args.prove_seconds)
        mnist, mnist_spec = render_module(MNIST_SPEC, records, directory)
        small_spec, lenet5_spec = load("small_cnn"), load("lenet5")
        compiled = {"small_cnn": None, "mnist_cnn8": None, "lenet5": None}
        paths = {"small_cnn": None, "mnist_cnn8": None, "lenet5": None}
        use_compiled = not args.no_compiled and importlib.util.find_spec("numba") is not None
        if use_compiled:
            import numba

            for name in ("small_cnn", "lenet5"):
                compiled[name] = importlib.import_module(f"gradproof.generated.{name}_compiled")
            compiled["mnist_cnn8"], paths["mnist_cnn8"] = render_compiled(MNIST_SPEC, records, directory)
        modules = {
            "small_cnn": (small_cnn, small_spec, compiled["small_cnn"]),
            "mnist_cnn8": (mnist, mnist_spec, compiled["mnist_cnn8"]),
            "lenet5": (lenet5, lenet5_spec, compiled["lenet5"]),
        }
        modules = {name: m for name, m in modules.items() if not args.only or name in args.only}
        print(f"load average (1, 5, 15 min) before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
        print(
            f"numpy {np.__version__}, torch {torch.__version__}; threads: BLAS reports "
            f"{blas_threads()}, torch {torch.get_num_threads()} (--threads {args.threads or 'not given'}); "
            f"cpu count {os.cpu_count()}"
        )
        if use_compiled:
            print(f"numba {numba.__version__}, {numba.get_num_threads()} threads")
        print(f"mnist_cnn8 module: {how}")
        print(
            "allocator: "
            + ("glibc thresholds fixed, heap never trimmed (steady state)" if steady else "glibc default")
        )
        if use_compiled:
            print("\nhow the compiled modules split the batches (blocks of BLOCK samples, threads):")
            for name, (_, _, module) in modules.items():
                print(f"  {name:<11} {block_split(module)}")
            print("\ncompile time of the compiled modules (first calls, child processes):")
            for name, (_, spec, module) in modules.items():
                print_compile_times(name, compile_times(module.__name__, paths[name], module, spec))
        print("\nmedians of interleaved rounds; loop ref timed in float64 only, at small sizes\n")
        if args.busy_core:
            print("load test: another process keeps one core busy while the tables are timed (--busy-core)")
        print(HEADER)
        with busy_core(args.busy_core):
            rows = run_tables(args, modules)
        summary(rows)
        print(f"load average (1, 5, 15 min) after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
        if not args.no_plot and not args.only:
            plotted = {name: modules[name] for name in ("small_cnn", "mnist_cnn8")}
            plot(scaling(args, plotted, directory), args.plot, threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
