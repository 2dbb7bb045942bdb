"""The compiled reading of issue 16's vocabulary: average pooling, softmax (with and without the
cross-entropy), zero padding, strided convolutions and their transposed input rule, kh x kw kernels,
floor-mode pooling; LeNet-5 and the digits network.

The same oracles as tests/test_compiled_numeric.py: the loop reference (tests/reference_numeric.py),
central finite differences, torch autograd (float64 to rtol 1e-10, float32 to float32 rounding), a
batch against its blocks added in order, and the NumPy module. Bit for bit where the order of
operations is the same: the padded first convolution (bias, then the taps in c, m, k order) and the
strided one, and the average pool of the same input (its window summed in row-major order, then
divided by its size), against the loop reference. Elsewhere to rounding (rtol 1e-10): BLAS sums in the
NumPy module, pairwise sums in NumPy's mean and softmax. Skipped only without numba.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("numba", reason="the compiled reading needs numba: pip install -e '.[compiled]'")

from gradproof.codegen.compiled import emitter  # noqa: E402
from gradproof.derive import spec as spec_module  # noqa: E402
from gradproof.derive.network import build  # noqa: E402
from tests import reference_numeric as ref  # noqa: E402
from tests import test_compiled_numeric as compiled_numeric  # noqa: E402
from tests import test_generated_numeric as numeric  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
assert_close = compiled_numeric.assert_close

# Stride 2 with padding [1, 0] and a 3x2 kernel (transposed input rule with a crop), then a 2x2 kernel
# (full convolution), a ReLU and a max-pool that does not divide its input (floor mode: no fusion),
# softmax with cross-entropy.
STRIDED = """
name = "strided_cnn"
input = [2, 9, 8]
loss = "cross_entropy"
reduction = "mean"
[[layers]]
type = "conv2d"
filters = 3
kernel = [3, 2]
stride = 2
padding = [1, 0]
[[layers]]
type = "tanh"
[[layers]]
type = "conv2d"
filters = 2
kernel = 2
[[layers]]
type = "relu"
[[layers]]
type = "maxpool2d"
size = 2
[[layers]]
type = "flatten"
[[layers]]
type = "dense"
units = 3
[[layers]]
type = "softmax"
"""

# A padded convolution under the fused ReLU and max-pool (its weight gradient from the routed entries of
# the padded input), a second padded convolution with a 2x3 kernel (cropped full convolution), average
# pooling in floor mode, a summed squared error.
PADDED = """
name = "padded_cnn"
input = [1, 6, 6]
loss = "mse"
reduction = "sum"
[[layers]]
type = "conv2d"
filters = 2
kernel = 3
padding = 1
[[layers]]
type = "relu"
[[layers]]
type = "maxpool2d"
size = 2
[[layers]]
type = "conv2d"
filters = 3
kernel = [2, 3]
padding = 1
[[layers]]
type = "relu"
[[layers]]
type = "avgpool2d"
size = 2
[[layers]]
type = "flatten"
[[layers]]
type = "dense"
units = 2
"""

# Softmax without cross-entropy: its own vector-Jacobian product.
SOFTMAX_MSE = """
name = "softmax_mse"
input = [5]
loss = "mse"
reduction = "mean"
[[layers]]
type = "dense"
units = 4
[[layers]]
type = "tanh"
[[layers]]
type = "dense"
units = 3
[[layers]]
type = "softmax"
"""

RENDERED = {"strided_cnn": STRIDED, "padded_cnn": PADDED, "softmax_mse": SOFTMAX_MSE}
COMMITTED = ["lenet5", "digits_lenet"]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """The test networks' compiled modules, rendered by the real emitter and imported, with their specs."""
    directory = tmp_path_factory.mktemp("compiled_vocabulary")
    modules = {}
    for name, text in RENDERED.items():
        spec = spec_module.parse(text, "<test>")
        ((relative, source),) = emitter.render(build(spec), []).items()
        path = directory / Path(relative).name
        path.write_text(source, encoding="utf-8")
        loader = importlib.util.spec_from_file_location(f"gradproof_test_{name}_compiled", path)
        module = importlib.util.module_from_spec(loader)
        sys.modules[loader.name] = module  # numba's cache finds a module's functions by its name
        loader.loader.exec_module(module)
        modules[name] = (module, tomllib.loads(text), source)
    yield modules
    for name in RENDERED:
        sys.modules.pop(f"gradproof_test_{name}_compiled", None)


SPEC_FILES = {
    "lenet5": ROOT / "derive" / "networks" / "lenet5.toml",
    "digits_lenet": ROOT / "examples" / "digits_lenet.toml",
}


def committed(name: str):
    """A committed compiled module and its spec as written (the dictionary the references read)."""
    module = importlib.import_module(f"gradproof.generated.{name}_compiled")
    return module, tomllib.loads(SPEC_FILES[name].read_text())


def network(name: str, rendered):
    return rendered[name][:2] if name in rendered else committed(name)


def sample(spec: dict, seed: int, batch: int):
    """Parameters and inputs away from kinks and ties, targets of the network's loss."""
    rng = np.random.default_rng(seed)
    params, out_shape = ref.init(spec["layers"], spec["input"], rng)
    for name, value in params.items():
        if name.startswith("B"):
            value[...] = rng.uniform(0.05, 0.2, size=value.shape)  # most ReLU units active
    for _ in range(100):
        X = rng.normal(size=(batch, *spec["input"]))
        if all(away_from_kinks(trace) for trace in ref.first_layer_outputs(spec, params, X)):
            break
    else:  # pragma: no cover
        raise AssertionError("no sample away from kinks")
    if spec["loss"] == "cross_entropy":
        Y = np.eye(out_shape[0])[rng.integers(0, out_shape[0], size=batch)]
    else:
        Y = rng.uniform(size=(batch, *out_shape))
    return params, X, Y


def away_from_kinks(trace, eps: float = 1e-3) -> bool:
    """Every ReLU input at least eps from 0, every pooled window with a positive maximum eps above its
    runner-up (a window of ReLU outputs that are all 0 passes no gradient, whatever its ties); the
    windows cover the input's first rows and columns only, in floor mode."""
    for layer, x, _, _ in trace:
        if layer["type"] == "relu" and np.min(np.abs(x)) <= eps:
            return False
        if layer["type"] == "maxpool2d":
            s = layer["size"]
            c, h, w = x.shape
            covered = x[:, : h // s * s, : w // s * s]
            windows = covered.reshape(c, h // s, s, w // s, s).transpose(0, 1, 3, 2, 4).reshape(-1, s * s)
            top = np.sort(windows, axis=1)[:, -2:]
            live = top[:, 1] > eps
            if np.any(top[live, 1] - top[live, 0] <= eps):
                return False
    return True


ALL = [*RENDERED, *COMMITTED]


def test_the_test_networks_use_the_new_operations(rendered):
    """What the kernels print: the operations these tests are meant to reach."""
    strided, padded, softmax = (rendered[n][2] for n in RENDERED)
    assert "correlate(pad(X, 1,1,0,0), W1, stride=2)" in strided  # strided, padded, 3x2
    assert "crop(transposed_convolve(dL/dZ1" not in strided  # the input's gradient is not needed
    assert "dL/dA1 = full_convolve(dL/dZ2, W2)" in strided
    assert "crop(A2" in strided and "rewrite relu-maxpool" not in strided  # floor mode, no fusion
    assert "rewrite routed-weight-gradient, proven" in padded and "X_padded" in padded
    assert "crop(full_convolve(dL/dZ2, W2), 1,1,1,1)" in padded
    assert "rowsum" in softmax


@pytest.mark.parametrize("name", ALL)
def test_gradients_equal_the_loop_reference(name, rendered):
    module, spec = network(name, rendered)
    params, X, Y = sample(spec, seed=0, batch=2 if name in COMMITTED else 4)
    loss, grads = module.loss_and_grads(params, X, Y)
    expected_loss, expected = ref.loss_and_grads(spec, params, X, Y)
    assert loss == pytest.approx(expected_loss, rel=1e-10)
    assert_close(grads, expected)


@pytest.mark.parametrize("name", ALL)
def test_every_entry_point_equals_torch_in_float64(name, rendered, monkeypatch):
    """loss_and_grads on one block and on blocks in threads; forward, loss and backward one by one."""
    module, spec = network(name, rendered)
    params, X, Y = sample(spec, seed=2, batch=7)
    expected_loss, expected = numeric.torch_loss(spec, params, X, Y)
    for block in (module.BLOCK, 2):
        monkeypatch.setattr(module, "BLOCK", block)
        loss, grads = module.loss_and_grads(params, X, Y)
        assert loss == pytest.approx(expected_loss, rel=1e-10)
        assert_close(grads, expected)
        output, cache = module.forward(params, X)
        assert output.shape[0] == 7
        assert module.loss(cache, Y) == pytest.approx(expected_loss, rel=1e-10)
        assert_close(module.backward(params, cache, Y), expected)


@pytest.mark.parametrize("name", ["strided_cnn", "padded_cnn", "softmax_mse", "digits_lenet"])
def test_gradients_equal_central_finite_differences(name, rendered):
    module, spec = network(name, rendered)
    params, X, Y = sample(spec, seed=1, batch=3)
    _, grads = module.loss_and_grads(params, X, Y)
    rng = np.random.default_rng(7)
    h = 1e-6
    for key, value in params.items():
        indices = list(np.ndindex(value.shape))
        indices = [indices[i] for i in rng.choice(len(indices), size=min(6, len(indices)), replace=False)]
        for index in indices:
            plus, minus = {k: v.copy() for k, v in params.items()}, {k: v.copy() for k, v in params.items()}
            plus[key][index] += h
            minus[key][index] -= h
            rise = module.loss_and_grads(plus, X, Y)[0] - module.loss_and_grads(minus, X, Y)[0]
            assert grads[key][index] == pytest.approx(rise / (2 * h), rel=1e-5, abs=1e-8), (key, index)


@pytest.mark.parametrize("name", ALL)
def test_float32_agrees_with_torch_float32(name, rendered):
    module, spec = network(name, rendered)
    params, X, Y = sample(spec, seed=6, batch=5)
    params32 = {k: v.astype(np.float32) for k, v in params.items()}
    X32, Y32 = X.astype(np.float32), Y.astype(np.float32)
    loss, grads = module.loss_and_grads(params32, X32, Y32)
    expected_loss, expected = numeric.torch_loss(spec, params32, X32, Y32)
    assert loss == pytest.approx(expected_loss, rel=1e-5)
    for key in grads:
        assert grads[key].dtype == np.float32, key
        np.testing.assert_allclose(grads[key], expected[key], rtol=1e-4, atol=1e-6, err_msg=key)
    output, cache = module.forward(params32, X32)
    assert output.dtype == np.float32 and all(v.dtype in (np.float32, np.uint8) for v in cache.values())


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("block", [2, 3])
def test_a_batch_is_its_blocks_added_in_order_for_any_number_of_threads(name, block, rendered, monkeypatch):
    module, spec = network(name, rendered)
    params, X, Y = sample(spec, seed=12, batch=7)
    monkeypatch.setattr(module, "BLOCK", block)
    for dtype in (np.float64, np.float32):
        typed = {k: v.astype(dtype) for k, v in params.items()}
        X_, Y_ = X.astype(dtype), Y.astype(dtype)
        by_hand = compiled_numeric.blocks_by_hand(module, spec, typed, X_, Y_, block)
        for threads in (1, 2, 3):
            monkeypatch.setattr(module, "THREADS", threads)
            value, computed = module.loss_and_grads(typed, X_, Y_)
            assert value == by_hand[0]
            for key in computed:
                np.testing.assert_array_equal(computed[key], by_hand[1][key], err_msg=key)


@pytest.mark.parametrize("name", COMMITTED)
def test_backward_of_chunks_adds_up_to_the_batch(name):
    module, spec = committed(name)
    params, X, Y = sample(spec, seed=9, batch=6)
    _, whole = module.loss_and_grads(params, X, Y)
    shares = []
    for start, stop in ((0, 2), (2, 6)):
        _, cache = module.forward(params, X[start:stop])
        shares.append(module.backward(params, cache, Y[start:stop], batch_size=6))
    assert_close({k: shares[0][k] + shares[1][k] for k in whole}, whole, rtol=1e-12)


@pytest.mark.parametrize("name", COMMITTED)
def test_gradients_equal_the_numpy_module_to_rounding(name):
    module, spec = committed(name)
    params, X, Y = sample(spec, seed=11, batch=6)
    loss, grads = module.loss_and_grads(params, X, Y)
    numpy_loss, numpy_grads = numeric.generated(name).loss_and_grads(params, X, Y)
    assert loss == pytest.approx(numpy_loss, rel=1e-12)
    assert_close(grads, numpy_grads, rtol=1e-10)


@pytest.mark.parametrize("name", ["digits_lenet", "strided_cnn"])
def test_first_convolution_and_average_pool_are_bit_for_bit_the_loop_reference(name, rendered):
    """The padded (and strided) first convolution adds the bias, then the taps in (c, m, k) order, as the
    loop reference does; the average pool of the kernels' own A1 sums its window in row-major order and
    divides by its size, as the reference does."""
    module, spec = network(name, rendered)
    params, X, _ = sample(spec, seed=10, batch=3)
    _, cache = module.forward(params, X)
    expected = np.stack([ref.forward_sample(spec["layers"], params, x)[0][2] for x in X])
    np.testing.assert_array_equal(cache["Z1"], expected)
    if name == "digits_lenet":
        pool = {"type": "avgpool2d", "size": 2}
        pooled = np.stack([ref.forward_sample([pool], params, a)[0][2] for a in cache["A1"]])
        np.testing.assert_array_equal(cache["P1"], pooled)


def test_class_indices_and_bad_targets_are_read_as_the_numpy_module_reads_them():
    """The compiled module shares the NumPy module's checks: class indices become one-hot rows, a row
    that does not sum to 1 and a mixed dtype are refused with the same message."""
    module, spec = committed("digits_lenet")
    numpy_module = numeric.generated("digits_lenet")
    params, X, Y = sample(spec, seed=13, batch=4)
    labels = Y.argmax(axis=1)
    assert module.loss_and_grads(params, X, labels)[0] == module.loss_and_grads(params, X, Y)[0]
    bad = Y.copy()
    bad[2, 0] += 0.5
    for broken, args in (("sums to", (params, X, bad)), ("dtype float32", (params, X.astype(np.float32), Y))):
        with pytest.raises(ValueError, match=broken) as ours:
            module.loss_and_grads(*args)
        with pytest.raises(ValueError) as theirs:
            numpy_module.loss_and_grads(*args)
        assert str(ours.value) == str(theirs.value)
