"""The NumPy module's pooled convolutions: a convolution, its ReLU and a max-pool, one window at a time.

Printed as declared, a convolution over the input followed by a ReLU and a max-pool makes five
passes over tensors the size of its output, and its weight gradient multiplies every output
position, though a max-pool routes each window's gradient to one entry. ``find`` spots that
pattern in a network (by the rules' expressions, not by layer names); ``fuse`` proves the rewrites
that compute it one pooling window at a time (``derive.rewrites``: the window correlation, the
tournament's kept entry, ReLU after the pool and its routing, the weight and bias gradients from
the kept entries), evaluating the module's own helpers on symbolic arrays, and returns the lines
the emitter prints instead of the declared ones. A rewrite whose record does not hold is not
applied: the rules are then printed as declared.
"""

from __future__ import annotations

import functools
import textwrap
from dataclasses import dataclass

import numpy as np

from gradproof.codegen.numpy.printer import HELPERS, WINDOW_HELPERS
from gradproof.derive import rewrites
from gradproof.derive import texpr as tx
from gradproof.derive.network import Network, Step, gradient_name
from gradproof.derive.records import ProofRecord
from gradproof.derive.statement import text

NOTE_WIDTH = 100


@dataclass(frozen=True)
class PooledConv:
    """conv -> ReLU -> max-pool over the network's input, with the four backward rules it replaces."""

    conv: Step
    relu: Step
    pool: Step
    size: int

    @property
    def kernel(self) -> tuple[int, int]:
        return int(self.conv.params[0].shape[2]), int(self.conv.params[0].shape[3])

    @property
    def sizes(self) -> rewrites.ConvSizes:
        w, z = self.conv.params[0], self.conv.output
        return rewrites.ConvSizes(
            int(w.shape[1]), int(w.shape[0]), self.kernel, (int(z.shape[2]), int(z.shape[3])), self.size
        )

    @property
    def replaced(self) -> tuple[str, ...]:
        """The gradients of the backward plan that the fused lines compute."""
        return tuple(gradient_name(n) for n in (self.relu.output.name, self.conv.output.name, *self.params))

    @property
    def params(self) -> tuple[str, str]:
        w, b = self.conv.params
        return w.name, b.name


def find(network: Network) -> list[PooledConv]:
    """Every conv -> ReLU -> max-pool of ``network`` the window-at-a-time printing computes exactly."""
    found = []
    steps = network.steps
    plan = {gradient_name(target): expr for _, target, expr in network.backward_plan()}
    for conv, relu, pool in zip(steps, steps[1:], steps[2:], strict=False):
        if len(conv.params) != 2 or conv.input != network.input:
            continue
        (w, b), x, z, a = conv.params, conv.input, conv.output, relu.output
        if not isinstance(pool.forward, tx.MaxPool):
            continue
        size = pool.forward.size
        dz, da, dp = (tx.Tensor(gradient_name(t.name), t.shape) for t in (z, a, pool.output))
        declared = (
            conv.forward == tx.AddBias(tx.Correlate(x, w), b)
            and relu.forward == tx.Relu(z)
            and pool.forward == tx.MaxPool(a, size)  # not cropped first (floor mode)
            and z.shape[2] % size == 0
            and z.shape[3] % size == 0
            and plan.get(da.name) == tx.RouteMax(a, dp, size)
            and plan.get(dz.name) == tx.Product(da, tx.StepMask(z))
            and plan.get(gradient_name(w.name)) == tx.Correlate(x, dz)
            and plan.get(gradient_name(b.name)) == tx.SumAxes(dz, (0, 2, 3))
        )
        replaced = (da.name, dz.name, gradient_name(w.name), gradient_name(b.name))
        others = [e for name, e in plan.items() if name not in replaced]
        others += [s.forward for s in steps if s not in (relu, pool)]
        private = not any(
            t.name in (z.name, a.name, da.name, dz.name) for e in others for t in tx.tensors_in(e)
        )
        if declared and private and gradient_name(x.name) not in plan:
            found.append(PooledConv(conv, relu, pool, size))
    return found


@functools.cache
def helper_functions() -> dict:
    """The module's window helpers as functions, from the very source text the module prints."""
    namespace = {"np": np, "cache": functools.cache}
    for name in WINDOW_HELPERS:
        exec(HELPERS[name], namespace)
    return namespace


def proofs(block: PooledConv) -> list[ProofRecord]:
    """The rewrites the window-at-a-time printing of ``block`` applies, each proven."""
    h = helper_functions()
    return [
        rewrites.prove_window_correlation(block.sizes, h["pooled_patches"], h["window_correlation"]),
        rewrites.prove_kept_entry(block.size, h["window_max"]),
        rewrites.prove_relu_after_pool(block.size),
        rewrites.prove_relu_after_pool_backward(block.size),
        rewrites.prove_window_weight_gradient(
            block.sizes, h["pooled_patches"], h["route_to_entries"], h["window_weight_gradient"]
        ),
    ]


def note(record: ProofRecord) -> list[str]:
    return textwrap.wrap(rewrites.rewrite_note(record), NOTE_WIDTH)


@dataclass
class Fused:
    """The lines printed for one pooled convolution, and what they replace."""

    block: PooledConv
    records: list[ProofRecord]
    forward: list[dict]
    backward: list[dict]
    reads: list[str]  # the forward's tensors the backward lines read


def fuse(block: PooledConv, proof_summary) -> Fused:
    """The forward and backward lines of ``block``, one window at a time, with the rewrites' notes.

    ``proof_summary(step, target)`` words the proof records of a declared rule.
    """
    records = proofs(block)
    correlation, kept, relu_pool, routing, weight = records
    x, z, a, p = block.conv.input, block.conv.output, block.relu.output, block.pool.output
    w, b = block.params
    s, (kh, kw), filters = block.size, block.kernel, block.sizes.filters
    ph, pw = int(p.shape[2]), int(p.shape[3])
    stem = z.name[1:] if z.name.startswith("Z") else z.name
    patches, outputs, m, r = f"{x.name}_windows", f"{z.name}_windows", f"M{stem}", f"R{stem}"
    declared = [text(e) for e in (block.conv.forward, block.relu.forward, block.pool.forward)]
    forward = [
        {
            "notes": [
                f"{z.name} = {declared[0]}, {a.name} = {declared[1]}, {p.name} = {declared[2]},",
                "computed one pooling window at a time:",
                *note(correlation),
                *note(kept),
                *note(relu_pool),
            ],
            "targets": [patches],
            "code": f"{patches} = pooled_patches({x.name}, {kh}, {kw}, {s})",
            "comment": "the inputs under each window, and a 1",
        },
        {
            "targets": [outputs],
            "code": f"{outputs} = window_correlation({patches}, {w}, {b}, {s})",
            "comment": f"{z.name} at each window's {s * s} entries",
        },
        {
            "targets": [m, r],
            "code": f"{m}, {r} = window_max({outputs})",
            "comment": f"{m} = {text(tx.MaxPool(z, s))}, {r} = the entry kept",
        },
        {
            "targets": [p.name],
            "code": f"{p.name} = np.maximum({m}, 0).reshape({filters}, {ph}, {pw}, -1).transpose(3, 0, 1, 2)",
            "comment": f"{p.name} = relu({m})",
        },
    ]
    dz, da, dp, dm = (gradient_name(t.name) for t in (z, a, p, tx.Tensor(m, p.shape)))
    summary = [
        f"[proven: dL/d{t}: {proof_summary(step, t)}]"
        for step, t in ((block.pool, a.name), (block.relu, z.name), (block.conv, w), (block.conv, b))
    ]
    backward = [
        {
            "notes": [
                f"dL/d{a.name} = route_max({a.name}, dL/d{p.name}), "
                f"dL/d{z.name} = dL/d{a.name} ⊙ [{z.name} > 0]",
                *summary[:2],
                f"computed as dL/d{m} = dL/d{p.name} ⊙ [{m} > 0], "
                f"dL/d{z.name} = route_max({z.name}, dL/d{m}):",
                *note(routing),
            ],
            "code": f"{dm} = {dp}.transpose(1, 2, 3, 0).reshape({m}.shape) * ({m} > 0)",
        },
        {
            "notes": [
                f"dL/d{w} = correlate({x.name}, dL/d{z.name}), dL/d{b} = sum(dL/d{z.name}, axes=(0, 2, 3))",
                *summary[2:],
                f"computed from dL/d{z.name} at each window's kept entry only:",
                *note(weight),
            ],
            "code": f"{dz}_windows = route_to_entries({dm}, {r}, {s * s})",
        },
        {
            "code": (
                f"d{w}, d{b} = window_weight_gradient({patches}, {dz}_windows, "
                f"{tuple(int(d) for d in block.conv.params[0].shape)}, {s})"
            ),
        },
    ]
    return Fused(block, records, forward, backward, [patches, m, r])


def applicable(fused: Fused) -> bool:
    return all(r.holds for r in fused.records)
