"""The compiled modules (numba kernels) against the loop reference, finite differences, torch and NumPy.

Skipped, with the reason, only when numba (the optional extra ``compiled``) is not installed; CI
installs it. The MNIST-size network is rendered by the real emitter into a temporary directory
(it is a benchmark spec, too large for the element-wise proof, so it has no committed module).

Where the compiled kernels and another implementation compute an entry in the same order, the
test asks for the same bits: the first convolution against the loop reference (both add the bias,
then the taps in c, m, k order, one IEEE operation at a time), the max-pool, ReLU and routing
against the NumPy module's, and a batch against its blocks added in order. Elsewhere the order
differs (BLAS sums, the reference divides by N last) and results agree to rounding: rtol 1e-10.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import warnings
from pathlib import Path
from unittest import mock

import numpy as np
import pytest

numba = pytest.importorskip("numba", reason="the compiled reading needs numba: pip install -e '.[compiled]'")

from gradproof.codegen.compiled import emitter  # noqa: E402
from gradproof.derive import spec as spec_module  # noqa: E402
from gradproof.derive.network import build  # noqa: E402
from tests import reference_numeric as ref  # noqa: E402
from tests import test_generated_numeric as numeric  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NETWORKS = ["small_cnn", "mlp", "sigmoid_cnn", "sigmoid_cnn3"]
MNIST_SPEC = ROOT / "benchmarks" / "specs" / "mnist_cnn8.toml"


def compiled(name: str):
    return importlib.import_module(f"gradproof.generated.{name}_compiled")


@pytest.fixture(scope="session")
def mnist(tmp_path_factory):
    """The MNIST-size network's compiled module, rendered into a temporary directory, and its spec."""
    with mock.patch.object(spec_module, "MAX_TERMS", 10**12):
        spec = spec_module.load(str(MNIST_SPEC))
    ((relative, text),) = emitter.render(build(spec), []).items()
    path = tmp_path_factory.mktemp("compiled") / Path(relative).name
    path.write_text(text, encoding="utf-8")
    name = "gradproof_test_mnist_cnn8_compiled"
    loader = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(loader)
    sys.modules[name] = module  # numba's cache finds a module's functions by its name
    loader.loader.exec_module(module)
    yield module, numeric_spec(spec)
    del sys.modules[name]


def numeric_spec(spec) -> dict:
    """A parsed spec as the plain dictionary the loop reference and the torch oracle read."""
    layers = [{"type": layer.type, **layer.options} for layer in spec.layers]
    return {"layers": layers, "loss": spec.loss, "reduction": spec.reduction, "input": list(spec.input)}


def mnist_sample(spec: dict, seed: int, batch: int):
    """Parameters and inputs for the MNIST-size network away from kinks and ties: every ReLU input
    at least 1e-9 from 0 and every window with a positive maximum that far from its runner-up (a
    window whose maximum is negative passes no gradient, whatever ties it has). Among 4608 ReLU
    inputs and 1152 windows per sample a wider margin is rare; float64 needs no more."""
    rng = np.random.default_rng(seed)
    params, out_shape = ref.init(spec["layers"], spec["input"], rng)
    for _ in range(50):
        X = rng.normal(size=(batch, *spec["input"]))
        if all(_clear(trace[0][2]) for trace in ref.first_layer_outputs(spec, params, X)):
            break
    else:  # pragma: no cover
        raise AssertionError("no sample away from kinks")
    Y = rng.integers(0, 2, size=(batch, *out_shape)).astype(float)
    return params, X, Y


def _clear(z: np.ndarray, eps: float = 1e-9) -> bool:
    f, h, w = z.shape
    windows = np.sort(z.reshape(f, h // 2, 2, w // 2, 2).transpose(0, 1, 3, 2, 4).reshape(-1, 4), axis=1)
    live = windows[:, -1] > 0
    return np.min(np.abs(z)) > eps and np.all(windows[live, -1] - windows[live, -2] > eps)


def assert_close(grads: dict, expected: dict, rtol: float = 1e-10, atol: float = 1e-13) -> None:
    assert grads.keys() == expected.keys()
    for key in grads:
        np.testing.assert_allclose(grads[key], expected[key], rtol=rtol, atol=atol, err_msg=key)


# ------------------------------------------------------------------ the oracles


@pytest.mark.parametrize("name", NETWORKS)
def test_param_shapes_and_init_params_match_the_numpy_module(name):
    module, numpy_module = compiled(name), numeric.generated(name)
    assert module.PARAM_SHAPES == numpy_module.PARAM_SHAPES
    for dtype in (np.float32, np.float64):
        ours = module.init_params(np.random.default_rng(3), dtype)
        theirs = numpy_module.init_params(np.random.default_rng(3), dtype)
        for key in theirs:
            assert ours[key].dtype == dtype
            np.testing.assert_array_equal(ours[key], theirs[key])


@pytest.mark.parametrize("name", NETWORKS)
def test_gradients_equal_the_loop_reference(name):
    spec, params, X, Y = numeric.sample(name, batch=2 if name.startswith("sigmoid_cnn") else 4)
    loss, grads = compiled(name).loss_and_grads(params, X, Y)
    expected_loss, expected = ref.loss_and_grads(spec, params, X, Y)
    assert loss == pytest.approx(expected_loss, rel=1e-10)
    assert_close(grads, expected)


def test_mnist_gradients_equal_the_loop_reference_and_torch(mnist):
    module, spec = mnist
    params, X, Y = mnist_sample(spec, seed=0, batch=2)
    loss, grads = module.loss_and_grads(params, X, Y)
    expected_loss, expected = ref.loss_and_grads(spec, params, X, Y)
    assert loss == pytest.approx(expected_loss, rel=1e-10)
    assert_close(grads, expected)
    torch_loss, torch_grads = numeric.torch_loss(spec, params, X, Y)
    assert loss == pytest.approx(torch_loss, rel=1e-10)
    assert_close(grads, torch_grads)


@pytest.mark.parametrize("name", ["small_cnn", "mlp", "sigmoid_cnn"])
def test_gradients_equal_central_finite_differences(name):
    spec, params, X, Y = numeric.sample(name, seed=1)
    module = compiled(name)
    _, grads = module.loss_and_grads(params, X, Y)
    rng = np.random.default_rng(7)
    h = 1e-6
    for key, value in params.items():
        indices = list(np.ndindex(value.shape))
        if len(indices) > 8:
            indices = [indices[i] for i in rng.choice(len(indices), size=8, replace=False)]
        for index in indices:
            plus, minus = {k: v.copy() for k, v in params.items()}, {k: v.copy() for k, v in params.items()}
            plus[key][index] += h
            minus[key][index] -= h
            rise = module.loss_and_grads(plus, X, Y)[0] - module.loss_and_grads(minus, X, Y)[0]
            assert grads[key][index] == pytest.approx(rise / (2 * h), rel=1e-5, abs=1e-8), (key, index)


@pytest.mark.parametrize("name", NETWORKS)
def test_every_entry_point_equals_torch_autograd_in_float64(name, monkeypatch):
    """loss_and_grads on the serial and the parallel kernel, and forward, loss, backward one by one."""
    spec, params, X, Y = numeric.sample(name, seed=2, batch=5)
    module = compiled(name)
    expected_loss, expected = numeric.torch_loss(spec, params, X, Y)
    for block in (module.BLOCK, 2):  # one block in this thread, then three blocks in threads
        monkeypatch.setattr(module, "BLOCK", block)
        loss, grads = module.loss_and_grads(params, X, Y)
        assert loss == pytest.approx(expected_loss, rel=1e-10)
        assert_close(grads, expected)
        output, cache = module.forward(params, X)
        assert output.shape[0] == 5
        assert module.loss(cache, Y) == pytest.approx(expected_loss, rel=1e-10)
        assert_close(module.backward(params, cache, Y), expected)


def test_mnist_every_entry_point_equals_torch_in_float64(mnist, monkeypatch):
    module, spec = mnist
    params, X, Y = mnist_sample(spec, seed=2, batch=7)
    expected_loss, expected = numeric.torch_loss(spec, params, X, Y)
    for block in (module.BLOCK, 2):
        monkeypatch.setattr(module, "BLOCK", block)
        loss, grads = module.loss_and_grads(params, X, Y)
        assert loss == pytest.approx(expected_loss, rel=1e-10)
        assert_close(grads, expected)
        _, cache = module.forward(params, X)
        assert module.loss(cache, Y) == pytest.approx(expected_loss, rel=1e-10)
        assert_close(module.backward(params, cache, Y), expected)


# ------------------------------------------------------------ kinks and ties


def integer_valued(name: str, seed: int):
    """Integer inputs and weights: Z1 is computed exactly, with many ties and many zeros."""
    spec, params, X, Y = numeric.sample(name, seed=seed, batch=6)
    rng = np.random.default_rng(seed)
    X = rng.integers(-1, 2, size=X.shape).astype(float)
    params = {k: rng.integers(-1, 2, size=v.shape).astype(float) for k, v in params.items()}
    return spec, params, X, Y


@pytest.mark.parametrize("seed", range(4))
def test_ties_and_kinks_follow_torch_and_the_numpy_module_exactly(seed):
    """Windows with tied maxima and ReLU inputs at 0: the first maximum gets the gradient, ReLU'(0) = 0."""
    spec, params, X, Y = integer_valued("small_cnn", seed)
    module = compiled("small_cnn")
    _, cache = module.forward(params, X)
    windows = cache["Z1"].reshape(-1, 2, 2, 2).transpose(0, 1, 3, 2).reshape(-1, 4)
    assert np.any(np.sort(windows, axis=1)[:, -1] == np.sort(windows, axis=1)[:, -2])  # ties occur
    assert np.any(cache["Z1"] == 0)  # kinks occur
    _, grads = module.loss_and_grads(params, X, Y)
    _, expected = numeric.torch_loss(spec, params, X, Y)
    assert_close(grads, expected, rtol=1e-12, atol=1e-15)
    _, numpy_grads = numeric.generated("small_cnn").loss_and_grads(params, X, Y)
    assert_close(grads, numpy_grads, rtol=1e-12, atol=1e-15)


def test_mnist_ties_and_kinks_follow_torch(mnist):
    module, spec = mnist
    rng = np.random.default_rng(5)
    params, X, Y = mnist_sample(spec, seed=5, batch=3)
    X = rng.integers(-1, 2, size=X.shape).astype(float)
    params = {k: rng.integers(-1, 2, size=v.shape).astype(float) for k, v in params.items()}
    params["W1"][:, :, 1:, :] = 0  # only the first kernel row: many equal window entries
    _, grads = module.loss_and_grads(params, X, Y)
    _, expected = numeric.torch_loss(spec, params, X, Y)
    assert_close(grads, expected, rtol=1e-12, atol=1e-15)


def test_an_all_tied_window_routes_to_its_first_entry():
    spec, params, X, Y = numeric.sample("small_cnn", seed=3)
    params["W1"][:] = 0.0
    params["B1"][:] = 1.0  # Z1 = 1 everywhere: every pooling window is a four-way tie
    module = compiled("small_cnn")
    _, cache = module.forward(params, X)
    np.testing.assert_array_equal(cache["R1"], 0)  # the top-left (first) entry of each window
    _, grads = module.loss_and_grads(params, X, Y)
    _, expected = numeric.torch_loss(spec, params, X, Y)
    assert_close(grads, expected, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("bias", [0.0, -1.0])
def test_relu_inputs_at_or_below_zero_pass_no_gradient_like_torch(bias):
    spec, params, X, Y = numeric.sample("small_cnn", seed=4)
    params["W1"][:] = 0.0
    params["B1"][:] = bias  # Z1 == bias everywhere: each window's maximum is a kink (0) or dead
    _, grads = compiled("small_cnn").loss_and_grads(params, X, Y)
    assert np.all(grads["W1"] == 0) and np.all(grads["B1"] == 0)
    _, expected = numeric.torch_loss(spec, params, X, Y)
    assert np.all(expected["W1"] == 0) and np.all(expected["B1"] == 0)


@pytest.mark.parametrize("logit", [1e3, -1e3])
def test_large_logits_are_finite_without_warnings(logit):
    spec, params, X, _ = numeric.sample("small_cnn", seed=5)
    params["B2"][:] = logit
    module = compiled("small_cnn")
    for target in (0.0, 1.0):
        Y = np.full((X.shape[0], 1), target)
        with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
            warnings.simplefilter("error")
            loss, grads = module.loss_and_grads(params, X, Y)
        assert np.isfinite(loss) and all(np.all(np.isfinite(g)) for g in grads.values())
        expected_loss, _ = numeric.torch_loss(spec, params, X, Y)
        assert loss == pytest.approx(expected_loss, rel=1e-12)


# ------------------------------------------------------------------ float32


@pytest.mark.parametrize("name", NETWORKS)
def test_float32_keeps_its_dtype_and_agrees_with_float64(name):
    spec, params, X, Y = numeric.sample(name, seed=6)
    module = compiled(name)
    loss64, grads64 = module.loss_and_grads(params, X, Y)
    params32 = {k: v.astype(np.float32) for k, v in params.items()}
    loss32, grads32 = module.loss_and_grads(params32, X.astype(np.float32), Y.astype(np.float32))
    assert loss32 == pytest.approx(loss64, rel=1e-4)
    for key in grads64:
        assert grads32[key].dtype == np.float32, key
        np.testing.assert_allclose(grads32[key], grads64[key], rtol=1e-3, atol=1e-5, err_msg=key)
    output, cache = module.forward(params32, X.astype(np.float32))
    assert output.dtype == np.float32 and all(v.dtype in (np.float32, np.uint8) for v in cache.values())


def test_mnist_float32_agrees_with_torch_float32(mnist):
    module, spec = mnist
    params, X, Y = mnist_sample(spec, seed=6, batch=4)
    params32 = {k: v.astype(np.float32) for k, v in params.items()}
    loss, grads = module.loss_and_grads(params32, X.astype(np.float32), Y.astype(np.float32))
    expected_loss, expected = numeric.torch_loss(spec, params32, X.astype(np.float32), Y.astype(np.float32))
    assert loss == pytest.approx(expected_loss, rel=1e-5)
    for key in grads:
        assert grads[key].dtype == np.float32
        np.testing.assert_allclose(grads[key], expected[key], rtol=1e-4, atol=1e-6, err_msg=key)


# --------------------------------------------------------- blocks and threads


def blocks_by_hand(module, spec, params, X, Y, block):
    """Each block's loss and gradients from the block kernel, added in block order: one block below
    two blocks' worth of samples, else blocks of `block` samples."""
    X_, weights, Y_ = module._arrays(params, X, Y)
    n = X_.dtype.type(len(X_))
    starts = range(0, len(X_), block) if len(X_) >= 2 * block else [0]
    stops = [min(len(X_), start + block) for start in starts] if len(starts) > 1 else [len(X_)]
    total, grads = None, None
    for start, stop in zip(starts, stops, strict=True):
        part = np.zeros(module.GRADIENTS, X_.dtype)
        value = X_.dtype.type(module._step_block(X_, Y_, *weights, start, stop, n, part))
        total = value if total is None else total + value
        grads = part if grads is None else grads + part
    return float(total / n if spec.get("reduction", "mean") == "mean" else total), module._split(grads)


@pytest.mark.parametrize("name", NETWORKS)
@pytest.mark.parametrize("block", [2, 3, 11])
def test_a_batch_is_its_blocks_added_in_order_for_any_number_of_threads(name, block, monkeypatch):
    """Bit for bit: loss_and_grads equals its blocks computed one by one and added in order, on every
    call and with one, two or three threads; float32 stays float32."""
    spec, params, X, Y = numeric.sample(name, seed=12, batch=11)
    module = compiled(name)
    monkeypatch.setattr(module, "BLOCK", block)
    for dtype in (np.float64, np.float32):
        typed = {k: v.astype(dtype) for k, v in params.items()}
        X_, Y_ = X.astype(dtype), Y.astype(dtype)
        by_hand = blocks_by_hand(module, spec, typed, X_, Y_, block)
        for threads in (1, 2, 3, 2):
            monkeypatch.setattr(module, "THREADS", threads)
            value, computed = module.loss_and_grads(typed, X_, Y_)
            assert value == by_hand[0]
            for key in computed:
                assert computed[key].dtype == dtype, key
                np.testing.assert_array_equal(computed[key], by_hand[1][key], err_msg=key)
    loss, grads = module.loss_and_grads(params, X, Y)
    expected_loss, expected = numeric.torch_loss(spec, params, X, Y)
    assert loss == pytest.approx(expected_loss, rel=1e-10)
    assert_close(grads, expected)


def test_backward_of_chunks_adds_up_to_the_batch():
    """backward(..., batch_size) of each chunk gives its share: the shares add up to the batch's gradient."""
    _, params, X, Y = numeric.sample("small_cnn", seed=9, batch=10)
    module = compiled("small_cnn")
    _, whole = module.loss_and_grads(params, X, Y)
    shares = []
    for start, stop in ((0, 4), (4, 10)):
        _, cache = module.forward(params, X[start:stop])
        shares.append(module.backward(params, cache, Y[start:stop], batch_size=10))
    assert_close({k: shares[0][k] + shares[1][k] for k in whole}, whole, rtol=1e-12)


# ----------------------------------------------- the NumPy module, bit for bit where it can be


def test_first_convolution_is_bit_for_bit_the_loop_reference():
    """Both add the bias, then the taps in (c, m, k) order, one IEEE operation at a time (no FMA)."""
    spec, params, X, _ = numeric.sample("small_cnn", seed=10, batch=4)
    _, cache = compiled("small_cnn").forward(params, X)
    expected = np.stack([ref.forward_sample(spec["layers"], params, x)[0][2] for x in X])
    np.testing.assert_array_equal(cache["Z1"], expected)


def test_mnist_first_convolution_is_bit_for_bit_the_loop_reference(mnist):
    module, spec = mnist
    params, X, _ = mnist_sample(spec, seed=10, batch=2)
    _, cache = module.forward(params, X)
    expected = np.stack([ref.forward_sample(spec["layers"], params, x)[0][2] for x in X])
    np.testing.assert_array_equal(cache["Z1"], expected)


@pytest.mark.parametrize("seed", range(3))
def test_pooling_relu_and_routing_are_bit_for_bit_the_numpy_modules(seed):
    """Given the same Z1, the fused relu(maxpool(Z1)) is the NumPy reading's maxpool(relu(Z1)) and the
    kept entries route like its route_max, exactly; the NumPy module (which pools one window at a time)
    keeps the same entries (integer inputs, so that ties and zeros occur and every sum is exact)."""
    _, params, X, _ = integer_valued("small_cnn", seed)
    module, numpy_module = compiled("small_cnn"), numeric.generated("small_cnn")
    helpers = numeric._printed_helpers("sample_blocks", "first_max", "route_max", "maxpool")
    _, cache = module.forward(params, X)
    Z1 = cache["Z1"]
    np.testing.assert_array_equal(cache["P1"], helpers["maxpool"](np.maximum(Z1, 0), 2))
    upstream = np.arange(1.0, 1.0 + cache["P1"].size).reshape(cache["P1"].shape)
    routed = np.zeros_like(Z1)
    n, c, i, j = np.indices(cache["R1"].shape)
    routed[n, c, 2 * i + cache["R1"] // 2, 2 * j + cache["R1"] % 2] = upstream * (cache["M1"] > 0)
    expected = helpers["route_max"](np.maximum(Z1, 0), upstream, 2) * (Z1 > 0)
    np.testing.assert_array_equal(routed, expected)
    _, windowed = numpy_module.forward(params, X)
    np.testing.assert_array_equal(windowed["P1"], cache["P1"])
    kept = windowed["R1"].reshape(1, 2, 2, len(X)).transpose(3, 0, 1, 2)  # (filter, (I, J, n)) -> NCHW
    np.testing.assert_array_equal(kept, cache["R1"])


@pytest.mark.parametrize("name", NETWORKS)
def test_gradients_equal_the_numpy_module_to_rounding(name):
    """The sums are in another order than the NumPy module's BLAS products: equal to rounding."""
    _, params, X, Y = numeric.sample(name, seed=11, batch=6)
    loss, grads = compiled(name).loss_and_grads(params, X, Y)
    numpy_loss, numpy_grads = numeric.generated(name).loss_and_grads(params, X, Y)
    assert loss == pytest.approx(numpy_loss, rel=1e-12)
    assert_close(grads, numpy_grads, rtol=1e-10)


TANH_CNN = """
name = "tanh_cnn"
input = [1, 6, 6]
loss = "mse"
reduction = "mean"
[[layers]]
type = "conv2d"
filters = 2
kernel = 3
[[layers]]
type = "tanh"
[[layers]]
type = "maxpool2d"
size = 2
[[layers]]
type = "flatten"
[[layers]]
type = "dense"
units = 2
"""


def test_an_unfused_pool_routes_by_its_own_scan_like_torch(tmp_path):
    """tanh before the pool is no ReLU: nothing is fused, the routing scans the window itself."""
    spec = spec_module.parse(TANH_CNN, "<test>")
    ((relative, text),) = emitter.render(build(spec), []).items()
    assert "rewrite relu-maxpool" not in text and "dA1[" in text
    path = tmp_path / Path(relative).name
    path.write_text(text, encoding="utf-8")
    loader = importlib.util.spec_from_file_location("gradproof_test_tanh_cnn_compiled", path)
    module = importlib.util.module_from_spec(loader)
    sys.modules[loader.name] = module
    try:
        loader.loader.exec_module(module)
        data = numeric_spec(spec)
        rng = np.random.default_rng(14)
        params, _ = ref.init(data["layers"], data["input"], rng)
        X, Y = rng.normal(size=(5, 1, 6, 6)), rng.uniform(size=(5, 2))
        loss, grads = module.loss_and_grads(params, X, Y)
        expected_loss, expected = numeric.torch_loss(data, params, X, Y)
        assert loss == pytest.approx(expected_loss, rel=1e-10)
        assert_close(grads, expected)
    finally:
        del sys.modules[loader.name]
