"""A layer type declared entirely in this file, registered, and taken through the whole pipeline.

``softplus`` (``log(1 + e^z)``, derivative ``sigmoid(z)``) needs one new operation of the
expression language, ``Softplus``, which carries its own readings (symbolic, text, NumPy, LaTeX),
and one new lemma, its derivative, which the prover checks exactly. Nothing outside this file
knows about either: the spec reader, the network builder, the prover and both emitters find them
through the rule table. The generated module is checked against PyTorch's softplus, which shares
no code with gradproof.
"""

from __future__ import annotations

import dataclasses
import functools
import types
from typing import ClassVar

import numpy as np
import pytest
import sympy as sp
import torch
import torch.nn.functional as tf

from gradproof.codegen import cli
from gradproof.codegen.outputs import render_all
from gradproof.derive import layers, prover
from gradproof.derive import texpr as tx
from gradproof.derive.layers import ELEMENTWISE, Declaration, LayerType, Obligation, Use
from gradproof.derive.network import build
from gradproof.derive.records import ProofRecord, timed
from gradproof.derive.spec import SpecError, parse
from gradproof.derive.symbolic import instantiate, sigmoid, sigmoid_formula
from tests.test_latex_emitter import check_compiles, needs_tex

# ------------------------------------------------- the new operation and its readings


class softplus(sp.Function):  # noqa: N801 - SymPy function classes are lower case
    """``log(1 + e^z)`` kept unevaluated; its derivative is SymPy's, rewritten by the lemma below."""

    nargs = 1

    @classmethod
    def eval(cls, z):
        if z.is_Number:
            return sp.log(1 + sp.exp(z))
        return None

    def fdiff(self, argindex=1):
        t, _, rewritten = _derivative()
        return instantiate(rewritten, {t: self.args[0]})


@functools.cache
def _derivative() -> tuple[sp.Symbol, sp.Expr, sp.Expr]:
    """SymPy's derivative of ``log(1 + e^t)``, and the ``sigmoid(t)`` it is rewritten to."""
    t = sp.Symbol("t", real=True)
    return t, sp.log(1 + sp.exp(t)).diff(t), sigmoid(t)


@dataclasses.dataclass(frozen=True)
class Softplus(tx.Expr):
    """Element-wise ``log(1 + exp(a))``."""

    printing: ClassVar[tx.Printing] = tx.Printing(tx.ATOM, elementwise=True, factor=True)

    a: tx.Expr

    @property
    def shape(self) -> tx.Shape:
        return self.a.shape

    def read_symbolic(self, reading) -> np.ndarray:
        values = reading(self.a)
        out = np.empty(values.shape, dtype=object)
        for index in np.ndindex(values.shape):
            out[index] = softplus(values[index])
        return out

    def read_text(self, reading) -> str:
        return f"softplus({reading(self.a)})"

    def read_numpy(self, reading) -> str:
        return f"np.logaddexp(0, {reading.number(self.a)})"  # never overflows

    def read_latex(self, reading) -> str:
        return reading.apply(r"\operatorname{softplus}", reading(self.a))

    @staticmethod
    def latex_definition(sample: str) -> tuple[str, str]:
        return r"\operatorname{softplus}(z) = \log(1 + e^{z})", "element-wise"


# ------------------------------------------------------------- its lemma


def prove_softplus_lemma() -> ProofRecord:
    record = ProofRecord(
        "lemma",
        "softplus derivative",
        "d/dt log(1 + exp(t)) = sigmoid(t)",
        1,
        "exact cancellation in e = exp(-t)",
        key="softplus-derivative",
    )

    def check():
        t, derivative, _ = _derivative()
        e = sp.Symbol("e", positive=True)
        difference = (derivative - sigmoid_formula(t)).subs(sp.exp(t), 1 / e).subs(sp.exp(-t), e)
        holds = sp.cancel(sp.together(difference)) == 0
        return holds, None if holds else "d softplus/dt"

    return timed(record, check)


def typeset_softplus_lemma(record: ProofRecord, doc) -> tuple[str, str]:
    lemma = doc.math(r"\mathrm{d}\log(1 + e^{t})/\mathrm{d}t = \sigma(t)")
    return (
        f"Softplus derivative: {lemma}.",
        r"exact cancellation, with $e^{-t}$ written as one positive symbol.",
    )


SOFTPLUS_LEMMA = Obligation("softplus-derivative", "lemma", prove_softplus_lemma, typeset_softplus_lemma)


# ------------------------------------------------------------ the layer type


class SoftplusLayer(LayerType):
    name = "softplus"
    kind = ELEMENTWISE
    summary = "log(1 + exp(z)), derivative sigmoid(z)"
    display = "Softplus"
    output_meaning = "activation, softplus"
    docstring = ("softplus(z) = log(1 + exp(z)), computed as np.logaddexp(0, z);",)
    prose: ClassVar[dict[str, str]] = {
        "input": r"""\paragraph{Softplus.} Its derivative is the sigmoid,
$\operatorname{softplus}'(z) = \sigma(z)$ (a lemma of Section~\ref{\VAR{sec}verification-section}), so the
gradient is the upstream gradient times $\sigma(\VAR{inp})$.
""",
    }

    def declare(self, ctx) -> Declaration:
        z, g = ctx.input, ctx.upstream
        return Declaration(Softplus(z), {z.name: tx.Product(g, tx.Sigmoid(z))})

    def lemmas(self, options) -> tuple[Use, ...]:
        return (Use(SOFTPLUS_LEMMA),)

    def latex_operation(self, options, short: bool = False) -> str:
        return r"\operatorname{softplus}"

    def error_note(self, pairs) -> str:
        named = " and ".join(rf"$\sigma({z}) = \operatorname{{softplus}}'({z})$" for z, _ in pairs)
        return f"{named}, the derivative of softplus."


SPEC = """
name = "softplus_cnn"
input = [1, 5, 5]
loss = "bce"
batch = 3

[[layers]]
type = "conv2d"
filters = 2
kernel = 2

[[layers]]
type = "softplus"

[[layers]]
type = "flatten"

[[layers]]
type = "dense"
units = 3

[[layers]]
type = "softplus"

[[layers]]
type = "dense"
units = 1

[[layers]]
type = "sigmoid"
"""


@pytest.fixture
def registered():
    layers.register(SoftplusLayer())
    yield
    del layers.LAYERS["softplus"]


@pytest.fixture
def proven(registered):
    network = build(parse(SPEC, source="softplus_cnn.toml"))
    return network, prover.prove(network)


# ------------------------------------------------------------------ tests


def test_the_spec_reader_knows_the_type_only_once_registered(registered):
    del layers.LAYERS["softplus"]
    with pytest.raises(SpecError, match=r"layers\[1\]\.type: unknown layer type 'softplus'"):
        parse(SPEC, source="softplus_cnn.toml")
    layers.register(SoftplusLayer())
    spec = parse(SPEC, source="softplus_cnn.toml")
    assert [layer.type for layer in spec.layers].count("softplus") == 2
    with pytest.raises(SpecError, match=r"layers\[1\]\.units: unknown field for softplus \(known: none\)"):
        parse(SPEC.replace('type = "softplus"\n', 'type = "softplus"\nunits = 2\n', 1), source="s.toml")
    with pytest.raises(ValueError, match="already in the rule table"):
        layers.register(SoftplusLayer())


def test_the_network_names_and_declares_it(registered):
    network = build(parse(SPEC, source="softplus_cnn.toml"))
    steps = {s.output.name: s for s in network.steps}
    assert [s.output.name for s in network.steps] == ["Z1", "A1", "F", "Z2", "A2", "Z3", "A3", "L"]
    assert steps["A1"].forward == Softplus(steps["A1"].input)
    assert network.parameter_count == 2 * 1 * 2 * 2 + 2 + 32 * 3 + 3 + 3 * 1 + 1  # conv, dense, dense


def test_it_is_proven_locally_and_end_to_end(proven):
    network, records = proven
    failed = [(r.level, r.name, r.failing) for r in records if not r.holds]
    assert failed == []
    keys = [r.key for r in records]
    assert keys.count("softplus-derivative") == 1  # two softplus layers, one lemma
    local = {(r.step_output, r.target) for r in records if r.level == "local"}
    assert {("A1", "Z1"), ("A2", "Z2")} <= local
    assert {r.target for r in records if r.level == "end-to-end"} == {p.name for p in network.params}
    assert list(dict.fromkeys(keys)) == list(prover.obligation_keys(network))


def test_a_wrong_softplus_rule_is_refuted(registered):
    network = build(parse(SPEC, source="softplus_cnn.toml"))
    steps = list(network.steps)
    z = steps[1].input
    wrong = tx.Product(steps[1].upstream, tx.OneMinus(tx.Sigmoid(z)))  # sigmoid(-z): a plausible slip
    steps[1] = dataclasses.replace(steps[1], rules={z.name: wrong})
    records = prover.prove(dataclasses.replace(network, steps=tuple(steps)))
    failed = {(r.level, r.name) for r in records if not r.holds}
    assert ("local", "softplus: dL/dZ1") in failed
    assert ("end-to-end", "dL/dW1") in failed


def _module(outputs: dict[str, str]) -> types.ModuleType:
    module = types.ModuleType("softplus_cnn")
    exec(compile(outputs["generated/softplus_cnn.py"], "softplus_cnn.py", "exec"), module.__dict__)  # noqa: S102
    return module


def _torch_loss_and_grads(params: dict, X, Y):
    """The same network in torch.nn.functional, differentiated by autograd."""
    t = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    z1 = tf.conv2d(torch.tensor(X), t["W1"], t["B1"])
    a2 = tf.softplus(tf.softplus(z1).flatten(1) @ t["W2"] + t["B2"])
    z3 = a2 @ t["W3"] + t["B3"]
    loss = tf.binary_cross_entropy_with_logits(z3, torch.tensor(Y), reduction="mean")
    loss.backward()
    return loss.item(), {k: v.grad.numpy() for k, v in t.items()}


def test_the_generated_module_matches_torch(proven):
    network, records = proven
    outputs = render_all(network, records)
    module = _module(outputs)
    source = outputs["generated/softplus_cnn.py"]
    assert "np.logaddexp(0, Z1)" in source and "# dL/dZ1 = dL/dA1 ⊙ sigmoid(Z1)" in source
    assert "- softplus(z) = log(1 + exp(z)), computed as np.logaddexp(0, z);" in source
    assert "ReLU" not in source and "max-pool" not in source
    rng = np.random.default_rng(0)
    params = module.init_params(rng)
    params = {k: v + rng.normal(scale=0.3, size=v.shape) for k, v in params.items()}  # non-zero biases
    X = rng.normal(size=(7, 1, 5, 5)) * 2
    Y = rng.integers(0, 2, size=(7, 1)).astype(float)
    loss, grads = module.loss_and_grads(params, X, Y)
    expected_loss, expected = _torch_loss_and_grads(params, X, Y)
    assert loss == pytest.approx(expected_loss, rel=1e-12)
    assert grads.keys() == expected.keys()
    for name in grads:
        np.testing.assert_allclose(grads[name], expected[name], rtol=1e-10, atol=1e-13, err_msg=name)


def test_the_cli_proves_and_builds_a_spec_file_using_it(registered, tmp_path, capsys):
    spec = tmp_path / "softplus_cnn.toml"
    spec.write_text(SPEC, encoding="utf-8")
    assert cli.main(["prove", str(spec)]) == 0
    assert "softplus derivative" in capsys.readouterr().out
    assert cli.main(["build", str(spec), "--out", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "generated" / "softplus_cnn.py").is_file()


@needs_tex
def test_the_document_typesets_it_and_compiles(proven, tmp_path):
    network, records = proven
    outputs = {p: text for p, text in render_all(network, records).items() if p.endswith(".tex")}
    document = outputs["docs/derivations/softplus_cnn.tex"]
    assert r"\xrightarrow{\operatorname{softplus}}" in document
    assert r"\paragraph{Softplus.}" in document and r"\paragraph{Convolution, filter.}" in document
    assert r"\operatorname{softplus}(z) = \log(1 + e^{z})" in document  # the operator's definition
    assert r"Softplus derivative: ${\mathrm{d}\log(1 + e^{t})/\mathrm{d}t = \sigma(t)}$." in document
    assert "Here $\\sigma(Z_{2}) = \\operatorname{softplus}'(Z_{2})$" in document
    assert "ReLU" not in document and "Pooling ties" not in document
    check_compiles(outputs, tmp_path)


def test_an_operation_without_a_reading_is_refused_by_name():
    @dataclasses.dataclass(frozen=True)
    class Mystery(tx.Expr):
        a: tx.Expr

        @property
        def shape(self) -> tx.Shape:
            return self.a.shape

    from gradproof.derive.statement import text

    with pytest.raises(TypeError, match="the text reading has no read_Mystery, and Mystery has no read_text"):
        text(Mystery(tx.Tensor("Z1", (tx.BATCH, 2))))
