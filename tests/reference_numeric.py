"""An independent numeric reference: forward and backward written plainly, with loops.

It shares no code with ``derive`` or ``codegen``: it reads the layer list of a
spec as plain data and implements each layer from its textbook definition,
one sample and one entry at a time, so that it can catch a wrong rule or a
wrong printing of one.
"""

from __future__ import annotations

import math

import numpy as np


def _sigmoid(v: float) -> float:
    return 1 / (1 + math.exp(-v)) if v >= 0 else math.exp(v) / (1 + math.exp(v))


def init(layers: list[dict], input_shape: list[int], rng) -> tuple[dict, list]:
    """Random parameters named W1, B1, W2, ... in the spec's order, and the per-layer shapes."""
    params, shape, k = {}, list(input_shape), 0
    for layer in layers:
        kind = layer["type"]
        if kind == "conv2d":
            k += 1
            f, (kh, kw), stride, (ph, pw) = layer["filters"], _pair(layer["kernel"]), *_geometry(layer)
            params[f"W{k}"] = rng.normal(size=(f, shape[0], kh, kw)) / math.sqrt(kh * kw)
            if layer.get("bias", True):
                params[f"B{k}"] = rng.normal(size=(f,)) * 0.1
            shape = [f, (shape[1] + 2 * ph - kh) // stride + 1, (shape[2] + 2 * pw - kw) // stride + 1]
        elif kind == "dense":
            k += 1
            params[f"W{k}"] = rng.normal(size=(shape[0], layer["units"])) / math.sqrt(shape[0])
            if layer.get("bias", True):
                params[f"B{k}"] = rng.normal(size=(layer["units"],)) * 0.1
            shape = [layer["units"]]
        elif kind in ("maxpool2d", "avgpool2d"):
            s = layer["size"]
            shape = [shape[0], shape[1] // s, shape[2] // s]
        elif kind == "flatten":
            shape = [int(np.prod(shape))]
        elif kind not in ("relu", "sigmoid", "tanh", "softmax"):
            raise ValueError(f"the loop reference has no layer type {kind!r}")
    return params, shape


def _pair(value) -> tuple[int, int]:
    return (value[0], value[1]) if isinstance(value, list) else (value, value)


def _geometry(layer: dict) -> tuple[int, tuple[int, int]]:
    """Stride and (row, column) zero padding of a conv2d layer (defaults 1 and 0)."""
    return layer.get("stride", 1), _pair(layer.get("padding", 0))


def _padded(value: np.ndarray, ph: int, pw: int) -> np.ndarray:
    c, h, w = value.shape
    out = np.zeros((c, h + 2 * ph, w + 2 * pw))
    for ch in range(c):
        for i in range(h):
            for j in range(w):
                out[ch, i + ph, j + pw] = value[ch, i, j]
    return out


def forward_sample(layers, params, x):
    """Values before and after every layer for one sample: list of (kind, input, output, k)."""
    trace, value, k = [], x, 0
    for layer in layers:
        kind = layer["type"]
        if kind == "conv2d":
            k += 1
            w = params[f"W{k}"]
            f_count, channels, kh, kw = w.shape
            st, (ph, pw) = _geometry(layer)
            xp = _padded(value, ph, pw)
            oh, ow = (xp.shape[1] - kh) // st + 1, (xp.shape[2] - kw) // st + 1
            out = np.zeros((f_count, oh, ow))
            for f in range(f_count):
                for i in range(oh):
                    for j in range(ow):
                        total = params[f"B{k}"][f] if f"B{k}" in params else 0.0
                        for c in range(channels):
                            for m in range(kh):
                                for n in range(kw):
                                    total += xp[c, st * i + m, st * j + n] * w[f, c, m, n]
                        out[f, i, j] = total
        elif kind == "dense":
            k += 1
            w = params[f"W{k}"]
            out = np.zeros(w.shape[1])
            for j in range(w.shape[1]):
                total = params[f"B{k}"][j] if f"B{k}" in params else 0.0
                for i in range(w.shape[0]):
                    total += value[i] * w[i, j]
                out[j] = total
        elif kind == "relu":
            out = np.array([max(0.0, v) for v in value.ravel()]).reshape(value.shape)
        elif kind == "sigmoid":
            out = np.array([_sigmoid(v) for v in value.ravel()]).reshape(value.shape)
        elif kind == "tanh":
            out = np.array([math.tanh(v) for v in value.ravel()]).reshape(value.shape)
        elif kind == "maxpool2d":
            s = layer["size"]
            c_count, h, w_ = value.shape
            out = np.zeros((c_count, h // s, w_ // s))
            for c in range(c_count):
                for i in range(h // s):
                    for j in range(w_ // s):
                        out[c, i, j] = max(value[c, i * s + p, j * s + q] for p in range(s) for q in range(s))
        elif kind == "avgpool2d":
            s = layer["size"]
            c_count, h, w_ = value.shape
            out = np.zeros((c_count, h // s, w_ // s))
            for c in range(c_count):
                for i in range(h // s):
                    for j in range(w_ // s):
                        out[c, i, j] = (
                            sum(value[c, i * s + p, j * s + q] for p in range(s) for q in range(s)) / s**2
                        )
        elif kind == "softmax":
            top = max(value)
            exps = [math.exp(v - top) for v in value]
            out = np.array([e / sum(exps) for e in exps])
        elif kind == "flatten":
            out = np.array([value[idx] for idx in np.ndindex(value.shape)])
        else:
            raise ValueError(kind)
        trace.append((layer, value, out, k))
        value = out
    return trace


def sample_loss_and_output_gradient(loss: str, trace, y):
    """Per-sample loss and its gradient with respect to the last layer's input or output."""
    out = trace[-1][2]
    if loss not in ("bce", "mse", "cross_entropy"):
        raise ValueError(f"the loop reference has no loss {loss!r}")
    if loss == "cross_entropy":  # the textbook -sum_k y_k log a_k and its derivative at the logits
        logits = trace[-1][1]
        top = max(logits)
        log_total = top + math.log(sum(math.exp(z - top) for z in logits))
        value = -sum(yy * (z - log_total) for z, yy in zip(logits, y, strict=True))
        # d/dz_j of -sum_k y_k log a_k = sum_k y_k (a_j - [k == j])
        return value, np.array([o * sum(y) - yy for o, yy in zip(out, y, strict=True)]), True
    if loss == "bce":
        logits = trace[-1][1]
        value = sum(
            -(yy * math.log(_sigmoid(z)) + (1 - yy) * math.log(1 - _sigmoid(z)))
            for z, yy in zip(logits, y, strict=True)
        )
        return value, np.array([_sigmoid(z) - yy for z, yy in zip(logits, y, strict=True)]), True
    value = sum(0.5 * (o - yy) ** 2 for o, yy in zip(out, y, strict=True))
    return value, np.array([o - yy for o, yy in zip(out, y, strict=True)]), False


def backward_sample(trace, params, upstream, skip_last):
    """Gradients of one sample's loss; ``upstream`` is dL/d(output) or, for BCE, dL/d(logit)."""
    grads = {name: np.zeros_like(v) for name, v in params.items()}
    g = upstream
    layers = trace[:-1] if skip_last else trace
    for layer, x, out, k in reversed(layers):
        kind = layer["type"]
        if kind == "relu":
            g = np.array([gg if v > 0 else 0.0 for gg, v in zip(g.ravel(), x.ravel(), strict=True)]).reshape(
                x.shape
            )
        elif kind == "sigmoid":
            g = np.array([gg * o * (1 - o) for gg, o in zip(g.ravel(), out.ravel(), strict=True)]).reshape(
                x.shape
            )
        elif kind == "tanh":
            g = np.array([gg * (1 - o * o) for gg, o in zip(g.ravel(), out.ravel(), strict=True)]).reshape(
                x.shape
            )
        elif kind == "softmax":
            inner = sum(gg * o for gg, o in zip(g, out, strict=True))
            g = np.array([o * (gg - inner) for gg, o in zip(g, out, strict=True)])
        elif kind == "avgpool2d":
            s = layer["size"]
            back = np.zeros_like(x)
            for c in range(out.shape[0]):
                for i in range(out.shape[1]):
                    for j in range(out.shape[2]):
                        for p in range(s):
                            for q in range(s):
                                back[c, i * s + p, j * s + q] += g[c, i, j] / s**2
            g = back
        elif kind == "flatten":
            g = g.reshape(x.shape)
        elif kind == "maxpool2d":
            s = layer["size"]
            back = np.zeros_like(x)
            for c in range(out.shape[0]):
                for i in range(out.shape[1]):
                    for j in range(out.shape[2]):
                        cells = [(i * s + p, j * s + q) for p in range(s) for q in range(s)]
                        values = [x[c, a, b] for a, b in cells]
                        a, b = cells[values.index(max(values))]  # first maximum
                        back[c, a, b] += g[c, i, j]
            g = back
        elif kind == "dense":
            w = params[f"W{k}"]
            for i in range(w.shape[0]):
                for j in range(w.shape[1]):
                    grads[f"W{k}"][i, j] += x[i] * g[j]
            if f"B{k}" in params:
                grads[f"B{k}"] += g
            g = np.array([sum(g[j] * w[i, j] for j in range(w.shape[1])) for i in range(w.shape[0])])
        elif kind == "conv2d":
            w = params[f"W{k}"]
            f_count, channels, kh, kw = w.shape
            st, (ph, pw) = _geometry(layer)
            xp = _padded(x, ph, pw)
            back = np.zeros_like(xp)
            for f in range(f_count):
                for i in range(g.shape[1]):
                    for j in range(g.shape[2]):
                        if f"B{k}" in params:
                            grads[f"B{k}"][f] += g[f, i, j]
                        for c in range(channels):
                            for m in range(kh):
                                for n in range(kw):
                                    grads[f"W{k}"][f, c, m, n] += xp[c, st * i + m, st * j + n] * g[f, i, j]
                                    back[c, st * i + m, st * j + n] += w[f, c, m, n] * g[f, i, j]
            g = back[:, ph : ph + x.shape[1], pw : pw + x.shape[2]]
        else:
            raise ValueError(f"the loop reference has no layer type {kind!r}")
    return grads


def loss_and_grads(spec: dict, params: dict, X: np.ndarray, Y: np.ndarray):
    """Batch loss and gradients, reduced over the batch as the spec says."""
    scale = 1 / X.shape[0] if spec.get("reduction", "mean") == "mean" else 1.0
    total, grads = 0.0, {name: np.zeros_like(v) for name, v in params.items()}
    for x, y in zip(X, Y, strict=True):
        trace = forward_sample(spec["layers"], params, x)
        value, upstream, skip_last = sample_loss_and_output_gradient(spec["loss"], trace, y)
        total += value
        for name, g in backward_sample(trace, params, upstream, skip_last).items():
            grads[name] += g
    return total * scale, {name: g * scale for name, g in grads.items()}


def first_layer_outputs(spec: dict, params: dict, X: np.ndarray) -> list[np.ndarray]:
    """Every layer output of every sample (to keep test inputs away from kinks and ties)."""
    return [forward_sample(spec["layers"], params, x) for x in X]
