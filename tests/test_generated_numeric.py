"""The generated NumPy modules against an independent loop reference, finite differences and PyTorch."""

import importlib
import tomllib
import types
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as tf

from gradproof.codegen.numpy import emitter as numpy_emitter
from gradproof.derive import prover
from gradproof.derive.network import build
from gradproof.derive.spec import builtin_names, parse
from tests import reference_numeric as ref

NETWORKS = builtin_names()
SPECS = Path(__file__).resolve().parent.parent / "derive" / "networks"
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
EPS = 1e-3


def spec_data(name: str) -> dict:
    """A built-in network's spec, else an example's (``examples/``), else a test network's
    (``tests/wrong_rules.py``): the mutation check reuses ``sample`` for all three."""
    for path in (SPECS / f"{name}.toml", EXAMPLES / f"{name}.toml"):
        if path.exists():
            return tomllib.loads(path.read_text())
    from tests.wrong_rules import TEST_SPECS

    return tomllib.loads(TEST_SPECS[name])


def generated(name: str):
    return importlib.import_module(f"gradproof.generated.{name}")


def sample(name: str, seed: int = 0, batch: int = 3):
    """Parameters, inputs and targets away from kinks: |ReLU input| > EPS, positive window maxima EPS
    apart (a window tied at 0 after a ReLU gets gradient 0 whichever entry it routes to)."""
    spec = spec_data(name)
    rng = np.random.default_rng(seed)
    params, out_shape = ref.init(spec["layers"], spec["input"], rng)
    for _ in range(100):
        X = rng.normal(size=(batch, *spec["input"]))
        traces = ref.first_layer_outputs(spec, params, X)
        if all(_away_from_kinks(trace) for trace in traces):
            break
    else:  # pragma: no cover - the sampler would need a different seed
        raise AssertionError("no sample away from kinks")
    if spec["loss"] == "bce":
        Y = rng.integers(0, 2, size=(batch, *out_shape)).astype(float)
    elif spec["loss"] == "cross_entropy":
        Y = np.eye(out_shape[0])[rng.integers(0, out_shape[0], size=batch)]
    else:
        Y = rng.uniform(0, 1, size=(batch, *out_shape))
    return spec, params, X, Y


def _away_from_kinks(trace) -> bool:
    previous = None
    for layer, x, _, _ in trace:
        if layer["type"] == "relu" and np.min(np.abs(x)) <= EPS:
            return False
        if layer["type"] == "maxpool2d":
            s = layer["size"]
            c, h, w = x.shape
            windows = x.reshape(c, h // s, s, w // s, s).transpose(0, 1, 3, 2, 4).reshape(-1, s * s)
            top = np.sort(windows, axis=1)[:, -2:]
            close = top[:, 1] - top[:, 0] <= EPS
            if previous == "relu":  # a window tied at 0 after a ReLU: gradient 0 whichever entry it routes to
                close &= top[:, 1] > 0
            if np.any(close):
                return False
        previous = layer["type"]
    return True


@pytest.mark.parametrize("name", NETWORKS)
def test_param_shapes_match_the_reference(name):
    spec, params, _, _ = sample(name)
    assert generated(name).PARAM_SHAPES == {k: v.shape for k, v in params.items()}


@pytest.mark.parametrize("name", NETWORKS)
def test_gradients_equal_the_loop_reference(name):
    spec, params, X, Y = sample(name, batch=2 if name.startswith("sigmoid_cnn") else 4)
    loss, grads = generated(name).loss_and_grads(params, X, Y)
    expected_loss, expected = ref.loss_and_grads(spec, params, X, Y)
    assert loss == pytest.approx(expected_loss, rel=1e-10)
    assert grads.keys() == expected.keys()
    for key in grads:
        np.testing.assert_allclose(grads[key], expected[key], rtol=1e-10, atol=1e-13, err_msg=key)


@pytest.mark.parametrize("name", NETWORKS)
def test_gradients_equal_central_finite_differences(name):
    spec, params, X, Y = sample(name, seed=1)
    module = generated(name)
    _, grads = module.loss_and_grads(params, X, Y)
    rng = np.random.default_rng(7)
    h = 1e-6
    for key, value in params.items():
        indices = list(np.ndindex(value.shape))
        if len(indices) > 12:
            indices = [indices[i] for i in rng.choice(len(indices), size=12, replace=False)]
        for index in indices:
            plus, minus = {k: v.copy() for k, v in params.items()}, {k: v.copy() for k, v in params.items()}
            plus[key][index] += h
            minus[key][index] -= h
            numeric = (module.loss_and_grads(plus, X, Y)[0] - module.loss_and_grads(minus, X, Y)[0]) / (2 * h)
            assert grads[key][index] == pytest.approx(numeric, rel=1e-5, abs=1e-8), (key, index)


def torch_loss(spec: dict, params: dict, X: np.ndarray, Y: np.ndarray):
    """The same network written with torch.nn.functional, differentiated by autograd."""
    tensors = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    value, k = torch.tensor(X), 0
    for layer in spec["layers"]:
        kind = layer["type"]
        if kind in ("conv2d", "dense"):
            k += 1
            w, b = tensors[f"W{k}"], tensors.get(f"B{k}")
            if kind == "conv2d":
                value = tf.conv2d(value, w, b, stride=layer.get("stride", 1), padding=layer.get("padding", 0))
            else:
                value = value @ w + (b if b is not None else 0)
        elif kind == "relu":
            value = torch.relu(value)
        elif kind == "sigmoid":
            logits, value = value, torch.sigmoid(value)
        elif kind == "tanh":
            value = torch.tanh(value)
        elif kind == "softmax":
            logits, value = value, torch.softmax(value, dim=1)
        elif kind == "maxpool2d":
            value = tf.max_pool2d(value, layer["size"])
        elif kind == "avgpool2d":
            value = tf.avg_pool2d(value, layer["size"])
        elif kind == "flatten":
            value = value.flatten(1)
        else:
            raise ValueError(f"the torch reference has no layer type {kind!r}")
    reduction = spec.get("reduction", "mean")
    target = torch.tensor(Y)
    if spec["loss"] not in ("bce", "mse", "cross_entropy"):
        raise ValueError(f"the torch reference has no loss {spec['loss']!r}")
    if spec["loss"] == "cross_entropy":
        loss = tf.cross_entropy(logits, target, reduction=reduction)
    elif spec["loss"] == "bce":
        loss = tf.binary_cross_entropy_with_logits(logits, target, reduction=reduction)
        if reduction == "mean":  # torch averages over every entry; gradproof over the batch
            loss = loss * target.shape[1]
    else:
        loss = 0.5 * ((value - target) ** 2).sum()
        if reduction == "mean":
            loss = loss / target.shape[0]
    loss.backward()
    return loss.item(), {key: t.grad.numpy() for key, t in tensors.items()}


@pytest.mark.parametrize("name", NETWORKS)
def test_gradients_equal_torch_autograd(name):
    """loss_and_grads, and forward, loss and backward called one after the other."""
    spec, params, X, Y = sample(name, seed=2, batch=5)
    module = generated(name)
    loss, grads = module.loss_and_grads(params, X, Y)
    expected_loss, expected = torch_loss(spec, params, X, Y)
    assert loss == pytest.approx(expected_loss, rel=1e-10)
    for key in grads:
        np.testing.assert_allclose(grads[key], expected[key], rtol=1e-10, atol=1e-13, err_msg=key)
    _, cache = module.forward(params, X)
    assert module.loss(cache, Y) == pytest.approx(expected_loss, rel=1e-10)
    grads = module.backward(params, cache, Y)
    for key in expected:
        np.testing.assert_allclose(grads[key], expected[key], rtol=1e-10, atol=1e-13, err_msg=key)


def _printed_helpers(*names: str) -> dict:
    """NumPy helpers as functions, from the source the emitter copies into a module."""
    from numpy.lib.stride_tricks import as_strided

    from gradproof.codegen.numpy.printer import HELPERS

    namespace = {"np": np, "as_strided": as_strided}
    for name in names:
        exec(HELPERS[name], namespace)
    return namespace


def test_tied_pooling_window_routes_to_its_first_maximum_like_torch():
    """The route_max helper (a max-pool that is not fused: a floor-mode pool, a pool after a sigmoid)
    on four-way ties, and small_cnn (fused: tests/test_numpy_fusion.py) on a tied network."""
    route_max = _printed_helpers("sample_blocks", "first_max", "route_max")["route_max"]
    A1 = np.ones((3, 2, 4, 6))
    dP1 = np.arange(1.0, 1.0 + A1.size / 4).reshape(3, 2, 2, 3)
    routed = route_max(A1, dP1, 2)
    expected = np.zeros_like(routed)
    expected[:, :, ::2, ::2] = dP1  # the top-left entry of each window, nothing elsewhere
    np.testing.assert_array_equal(routed, expected)
    a = torch.tensor(A1, requires_grad=True)
    tf.max_pool2d(a, 2).backward(torch.tensor(dP1))
    np.testing.assert_array_equal(routed, a.grad.numpy())
    spec, params, X, Y = sample("small_cnn", seed=3)
    params["W1"][:] = 0.0
    params["B1"][:] = 1.0  # Z1 = 1 everywhere: every pooling window is a four-way tie
    _, grads = generated("small_cnn").loss_and_grads(params, X, Y)
    _, expected_grads = torch_loss(spec, params, X, Y)
    for key in grads:
        np.testing.assert_allclose(grads[key], expected_grads[key], rtol=1e-12, atol=1e-15, err_msg=key)


def test_relu_input_zero_gets_gradient_zero_like_torch():
    spec, params, X, Y = sample("small_cnn", seed=4)
    params["W1"][:] = 0.0
    params["B1"][:] = 0.0  # Z1 == 0 everywhere
    _, grads = generated("small_cnn").loss_and_grads(params, X, Y)
    assert np.all(grads["W1"] == 0) and np.all(grads["B1"] == 0)
    _, expected = torch_loss(spec, params, X, Y)
    assert np.all(expected["W1"] == 0) and np.all(expected["B1"] == 0)


@pytest.mark.parametrize("logit", [1e3, -1e3])
def test_large_logits_are_finite_without_warnings(logit):
    spec, params, X, _ = sample("small_cnn", seed=5)
    params["B2"][:] = logit
    module = generated("small_cnn")
    for target in (0.0, 1.0):
        Y = np.full((X.shape[0], 1), target)
        with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
            warnings.simplefilter("error")
            loss, grads = module.loss_and_grads(params, X, Y)
        assert np.isfinite(loss)
        assert all(np.all(np.isfinite(g)) for g in grads.values())
        expected_loss, _ = torch_loss(spec, params, X, Y)
        assert loss == pytest.approx(expected_loss, rel=1e-12)


@pytest.mark.parametrize("name", NETWORKS)
def test_float32_keeps_its_dtype_and_agrees_with_float64(name):
    spec, params, X, Y = sample(name, seed=6)
    module = generated(name)
    loss64, grads64 = module.loss_and_grads(params, X, Y)
    params32 = {k: v.astype(np.float32) for k, v in params.items()}
    loss32, grads32 = module.loss_and_grads(params32, X.astype(np.float32), Y.astype(np.float32))
    assert loss32 == pytest.approx(loss64, rel=1e-4)
    for key in grads64:
        assert grads32[key].dtype == np.float32, key
        np.testing.assert_allclose(grads32[key], grads64[key], rtol=1e-3, atol=1e-5, err_msg=key)


def test_forward_is_vectorised_over_the_batch():
    """A batch gives the same per-sample outputs as the samples one at a time."""
    _, params, X, _ = sample("small_cnn", seed=8, batch=6)
    module = generated("small_cnn")
    batched, _ = module.forward(params, X)
    single = np.concatenate([module.forward(params, X[i : i + 1])[0] for i in range(len(X))])
    np.testing.assert_allclose(batched, single, rtol=1e-14)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_init_params_has_the_shapes_and_dtype_asked_for(dtype):
    module = generated("small_cnn")
    params = module.init_params(np.random.default_rng(0), dtype)
    assert {k: v.shape for k, v in params.items()} == module.PARAM_SHAPES
    assert all(v.dtype == dtype for v in params.values())
    again = module.init_params(np.random.default_rng(0), dtype)
    assert all(np.array_equal(params[k], again[k]) for k in params)


def chunked_by_hand(module, spec: dict, params: dict, X: np.ndarray, Y: np.ndarray, bounds: list[int]):
    """Loss and gradients as the sum, in chunk order, of each chunk's (the mean divides by the whole N)."""
    whole = (len(X),) if spec.get("reduction", "mean") == "mean" else ()
    total, grads = None, None
    for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
        value, part = module.chunk_loss_and_grads(params, X[start:stop], Y[start:stop], *whole)
        total = value if total is None else total + value
        grads = part if grads is None else {k: grads[k] + part[k] for k in grads}
    return total, grads


# (CHUNK, chunk bounds) for a batch of 11 samples: below 2 * CHUNK left whole, two chunks, and
# three unequal ones (also the mutation check's chunkings).
CHUNKINGS = ((12, [0, 11]), (8, [0, 11]), (5, [0, 5, 11]), (3, [0, 3, 7, 11]))


@pytest.mark.parametrize("name", NETWORKS)
@pytest.mark.parametrize(("chunk", "bounds"), CHUNKINGS)
def test_a_batch_split_into_chunks_equals_torch_and_its_chunks_in_order(name, chunk, bounds, monkeypatch):
    """Batches of 2 * CHUNK samples or more are split into len(X) // CHUNK equal chunks, computed
    one after another; a smaller batch is one chunk.

    CHUNK is made small here so that 11 samples take that path (in use it is thousands of
    numbers per chunk). The result equals torch's, and bit for bit the chunks' results added in
    chunk order, on every call; float32 stays float32.
    """
    spec, params, X, Y = sample(name, seed=12, batch=11)
    module = generated(name)
    monkeypatch.setattr(module, "CHUNK", chunk)
    loss, grads = module.loss_and_grads(params, X, Y)
    expected_loss, expected = torch_loss(spec, params, X, Y)
    assert loss == pytest.approx(expected_loss, rel=1e-10)
    for key in grads:
        np.testing.assert_allclose(grads[key], expected[key], rtol=1e-10, atol=1e-13, err_msg=key)
    for dtype in (np.float64, np.float32):
        typed = {k: v.astype(dtype) for k, v in params.items()}
        X_, Y_ = X.astype(dtype), Y.astype(dtype)
        by_hand = chunked_by_hand(module, spec, typed, X_, Y_, bounds)
        for _ in range(3):
            value, computed = module.loss_and_grads(typed, X_, Y_)
            assert value == by_hand[0]
            for key in computed:
                assert computed[key].dtype == dtype, key
                np.testing.assert_array_equal(computed[key], by_hand[1][key], err_msg=key)


@pytest.mark.parametrize("name", NETWORKS)
def test_a_single_sample_is_one_chunk(name):
    """A batch of one sample is never split: loss_and_grads is that sample's chunk, bit for bit."""
    spec, params, X, Y = sample(name, seed=13, batch=1)
    module = generated(name)
    value, computed = module.loss_and_grads(params, X, Y)
    expected_value, expected = chunked_by_hand(module, spec, params, X, Y, [0, 1])
    assert value == expected_value
    for key in expected:
        np.testing.assert_array_equal(computed[key], expected[key], err_msg=key)


# A layer type no built-in network uses is checked on a module built in the test.
TANH_SPEC = """
name = "tanh_cnn"
input = [1, 5, 5]
loss = "mse"
[[layers]]
type = "conv2d"
filters = 2
kernel = 2
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
[[layers]]
type = "tanh"
"""


def test_a_tanh_network_equals_the_loop_reference_and_torch():
    network = build(parse(TANH_SPEC, source="<tanh_cnn>"))
    records = prover.prove(network)
    assert [r.name for r in records if not r.holds] == []
    module = types.ModuleType("tanh_cnn")
    source = numpy_emitter.render(network, records)["generated/tanh_cnn.py"]
    exec(compile(source, "tanh_cnn.py", "exec"), module.__dict__)  # noqa: S102
    spec = tomllib.loads(TANH_SPEC)
    rng = np.random.default_rng(2)
    params, out_shape = ref.init(spec["layers"], spec["input"], rng)
    X, Y = rng.normal(size=(4, *spec["input"])), rng.uniform(-1, 1, size=(4, *out_shape))
    loss, grads = module.loss_and_grads(params, X, Y)
    for reference in (ref.loss_and_grads, torch_loss):
        expected_loss, expected = reference(spec, params, X, Y)
        assert loss == pytest.approx(expected_loss, rel=1e-10)
        assert grads.keys() == expected.keys()
        for key in grads:
            np.testing.assert_allclose(grads[key], expected[key], rtol=1e-10, atol=1e-13, err_msg=key)
