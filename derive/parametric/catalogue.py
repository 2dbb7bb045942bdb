"""One theorem per rule of the rule table, stated for symbolic sizes.

The rules are the rule table's own: each theorem calls the layer's ``declare`` with tensors whose
dimensions are size symbols and proves every rule it returns. A layer of a network is covered by
its theorem at the network's sizes (``instance_sizes``): the sizes are read off the concrete
shapes and must satisfy the hypotheses.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import sympy as sp

from gradproof.derive import layers
from gradproof.derive import texpr as tx
from gradproof.derive.layers import Context, LossContext
from gradproof.derive.parametric.theorem import NOT_PROVEN, PROVEN, REFUTED, Statement, Verdict, prove


def size(name: str) -> sp.Symbol:
    return sp.Symbol(name, integer=True, positive=True)


N, C, F, H, W, KH, KW, D, U = (size(s) for s in ("N", "C", "F", "H", "W", "K_h", "K_w", "D", "U"))


def _t(name: str, *dims) -> tx.Tensor:
    return tx.Tensor(name, tuple(dims))


def _shapes(*tensors: tx.Tensor) -> dict:
    return {t.name: tuple(sp.sympify(d) for d in t.dims) for t in tensors}


def _roles(x: tx.Tensor, out: tx.Tensor, g: tx.Tensor, **params: tx.Tensor) -> dict[str, str]:
    return {"input": x.name, "output": out.name, "upstream": g.name, **{r: t.name for r, t in params.items()}}


def _layer(name: str, x: tx.Tensor, out: tx.Tensor, g: tx.Tensor, params=None, options=None):
    """The rule table's declaration of a layer type, for tensors with symbolic shapes."""
    return layers.LAYERS[name].declare(Context(x, out, g, dict(params or {}), dict(options or {})))


@dataclass
class Theorem:
    """A layer's rules for all sizes: one statement per rule (and per case, e.g. tensor rank)."""

    layer: str
    key: str  # e.g. "conv2d", "maxpool2d/2", "bce/mean"
    statements: list[Statement]
    roles: dict[str, str] = field(default_factory=dict)  # role (input, weight, ...) -> tensor name
    verdicts: list[Verdict] = field(default_factory=list)
    seconds: float = 0.0

    def prove(self) -> Theorem:
        start = time.perf_counter()
        self.verdicts = [prove(s) for s in self.statements]
        self.seconds = time.perf_counter() - start
        return self

    @property
    def status(self) -> str:
        statuses = {v.status for v in self.verdicts}
        return REFUTED if REFUTED in statuses else NOT_PROVEN if NOT_PROVEN in statuses else PROVEN


def _statements(layer: str, declaration: layers.Declaration, upstream: str | None, tensors, **common):
    shapes = _shapes(*tensors)
    sizes = sorted({s for shape in shapes.values() for d in shape for s in d.free_symbols}, key=str)
    return [
        Statement(
            name=f"{layer}: dL/d{target}",
            target=target,
            forward=declaration.forward,
            rule=rule,
            upstream=upstream,
            shapes=shapes,
            sizes=tuple(sizes),
            batch=N,
            **common,
        )
        for target, rule in declaration.rules.items()
    ]


def conv2d_theorem() -> Theorem:
    oh, ow = H - KH + 1, W - KW + 1
    x, w, b = _t("X", N, C, H, W), _t("W1", F, C, KH, KW), _t("B1", F)
    g = _t("dZ1", N, F, oh, ow)
    z = _t("Z1", N, F, oh, ow)
    # The theorem is for the valid, stride-1 correlation; strided and padded convolutions have none yet.
    valid = {"kernel": (KH, KW), "stride": 1, "padding": 0, "bias": True}
    declaration = _layer("conv2d", x, z, g, {"weight": w, "bias": b}, valid)
    statements = _statements("conv2d", declaration, g.name, (x, w, b, g), size_conditions=(H - KH, W - KW))
    return Theorem("conv2d", "conv2d", statements, _roles(x, z, g, weight=w, bias=b))


def dense_theorem() -> Theorem:
    x, w, b, g = _t("X", N, D), _t("W1", D, U), _t("B1", U), _t("dZ1", N, U)
    declaration = _layer("dense", x, _t("Z1", N, U), g, {"weight": w, "bias": b})
    roles = _roles(x, _t("Z1", N, U), g, weight=w, bias=b)
    return Theorem("dense", "dense", _statements("dense", declaration, g.name, (x, w, b, g)), roles)


_RANKS = ((N, D), (N, C, H, W))


def relu_theorem() -> Theorem:
    statements = []
    for dims in _RANKS:
        z, g = _t("Z1", *dims), _t("dA1", *dims)
        declaration = _layer("relu", z, _t("A1", *dims), g)
        statements += _statements(
            "relu", declaration, g.name, (z, g), region="on the region where no entry of Z1 is 0"
        )
    return Theorem("relu", "relu", statements, _roles(z, _t("A1"), g))


def sigmoid_theorem() -> Theorem:
    statements = []
    for dims in _RANKS:
        z, g, a = _t("Z1", *dims), _t("dA1", *dims), _t("A1", *dims)
        declaration = _layer("sigmoid", z, a, g)
        statements += _statements(
            "sigmoid", declaration, g.name, (z, g, a), definitions={"A1": tx.Sigmoid(z)}
        )
    return Theorem("sigmoid", "sigmoid", statements, _roles(z, a, g))


def maxpool_theorem(window: int) -> Theorem:
    a = _t("A1", N, C, window * H, window * W)
    p, g = _t("P1", N, C, H, W), _t("dP1", N, C, H, W)
    declaration = _layer("maxpool2d", a, p, g, options={"size": window})
    statements = _statements(
        "maxpool2d",
        declaration,
        g.name,
        (a, p, g),
        region="on the region where no pooling window has two equal entries",
        window=window,
    )
    return Theorem("maxpool2d", f"maxpool2d/{window}", statements, _roles(a, p, g))


def flatten_theorem() -> Theorem:
    p = _t("P1", N, C, H, W)
    flat, g = _t("F", N, C * H * W), _t("dF", N, C * H * W)
    declaration = _layer("flatten", p, flat, g)
    statements = _statements("flatten", declaration, g.name, (p, flat, g))
    return Theorem("flatten", "flatten", statements, _roles(p, flat, g))


def bce_theorem(reduction: str) -> Theorem:
    z, y, a = _t("Z1", N, U), _t("Y", N, U), _t("A1", N, U)
    declaration = layers.LOSSES["bce"].declare(LossContext(z, a, y, reduction))
    statements = _statements("bce", declaration, None, (z, y, a), definitions={"A1": tx.Sigmoid(z)})
    return Theorem("bce", f"bce/{reduction}", statements, {"input": "Z1", "prediction": "A1", "target": "Y"})


def mse_theorem(reduction: str) -> Theorem:
    a, y = _t("A1", N, U), _t("Y", N, U)
    declaration = layers.LOSSES["mse"].declare(LossContext(a, a, y, reduction))
    statements = _statements("mse", declaration, None, (a, y))
    return Theorem("mse", f"mse/{reduction}", statements, {"input": "A1", "prediction": "A1", "target": "Y"})


def every_theorem(windows=(2,), reductions=("mean", "sum")) -> list[Theorem]:
    """The theorems of every rule of the table (max-pool per window size, losses per reduction)."""
    out = [conv2d_theorem(), dense_theorem(), relu_theorem(), sigmoid_theorem()]
    out += [maxpool_theorem(s) for s in windows]
    out.append(flatten_theorem())
    for reduction in reductions:
        out += [bce_theorem(reduction), mse_theorem(reduction)]
    return out


def theorem_for(type_name: str, options: dict, reduction: str) -> Theorem:
    """The theorem of a layer or loss type with the options that change its statement."""
    makers = {
        "conv2d": conv2d_theorem,
        "dense": dense_theorem,
        "relu": relu_theorem,
        "sigmoid": sigmoid_theorem,
        "flatten": flatten_theorem,
    }
    strided = options.get("stride", 1) != 1 or options.get("padding", 0) not in (0, (0, 0))
    if type_name == "conv2d" and strided:
        raise KeyError(f"no theorem for all sizes of a strided or padded {type_name!r}")
    if type_name in makers:
        return makers[type_name]()
    if type_name == "maxpool2d":
        return maxpool_theorem(options["size"])
    if type_name == "bce":
        return bce_theorem(reduction)
    if type_name == "mse":
        return mse_theorem(reduction)
    raise KeyError(f"no theorem for all sizes of {type_name!r}")
