"""The LaTeX emitter: a derivation document and includable snippets, from the proven rules.

``render(network, records)`` returns ``{relative path: text}``:
``docs/derivations/<name>.tex`` (a standalone article) and one file per result
under ``docs/derivations/<name>/`` that another document can ``\\input``
(it needs ``amsmath`` and ``amssymb``; labels are ``gp:<name>:<result>``).

Every equation is printed from the rule table (``derive.layers``) through
``codegen.latex_printer``, from SymPy expressions (the symbolic reading of
those rules), or from the proof records; nothing here states a gradient of
its own. Values are computed in Python; the templates only place them. The
output is byte-identical on every run: no dates, no timings, no paths.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from math import prod
from pathlib import Path

import jinja2
import numpy as np
import sympy as sp

from codegen.latex_names import Names
from codegen.latex_printer import DEFINITIONS, LatexReading, batch_size, shape_tex
from codegen.writing import with_header
from derive import canonical
from derive import texpr as tx
from derive.network import Network, Step, gradient_name
from derive.prover import ProofRecord
from derive.statement import tensor_label, text
from derive.symbolic import SymbolicReading, sigmoid

TEMPLATES = Path(__file__).parent / "templates"
TERMS_PER_LINE = 4
MAX_TERMS_SHOWN = 24  # longer sums show their first terms and the last one
MAX_ENTRIES_SHOWN = 16  # larger tensors show their first entries and the last one
PARAMETRISED = ("conv2d", "dense")


# ---------------------------------------------------------------- templates


def tex(expr: sp.Expr, symbol_names: dict | None = None) -> str:
    """The ``|tex`` filter: SymPy's LaTeX printer, with our entry names."""
    return sp.latex(expr, symbol_names=symbol_names or {})


def environment() -> jinja2.Environment:
    """Jinja2 with LaTeX-safe delimiters: ``\\BLOCK{}``, ``\\VAR{}``, ``\\#{}``, ``%-`` lines."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        block_start_string=r"\BLOCK{",
        block_end_string="}",
        variable_start_string=r"\VAR{",
        variable_end_string="}",
        comment_start_string=r"\#{",
        comment_end_string="}",
        line_statement_prefix="%-",
        line_comment_prefix="%#",
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["tex"] = tex
    return env


# ------------------------------------------------------------------ content


@dataclass
class Row:
    """One line of an ``align`` environment: ``left & right``, numbered when it has a label."""

    left: str
    right: str
    label: str | None = None


@dataclass
class Block:
    """One result: a title, a sentence, displays (each one ``align``), optional notes."""

    key: str
    title: str
    displays: list[list[Row]]
    intro: str = ""
    notes: list[str] = field(default_factory=list)
    kind: str = "equations"
    data: dict = field(default_factory=dict)


def _label(network: Network, key: str) -> str:
    return f"gp:{network.spec.name}:{key}"


def text_escape(value: str) -> str:
    """Plain text (proof statements, methods) made safe for LaTeX text mode."""
    replacements = {
        "\\": r"\textbackslash{}",
        "{": r"\{",
        "}": r"\}",
        "_": r"\_",
        "^": r"\^{}",
        "%": r"\%",
        "&": r"\&",
        "#": r"\#",
        "$": r"\$",
        "~": r"\~{}",
        "⊙": r"$\odot$",
        "·": r"$\cdot$",
        "<": "$<$",
        ">": "$>$",
    }
    out = "".join(replacements.get(ch, ch) for ch in value)
    return out.encode("ascii", "replace").decode("ascii")


class Derivation:
    """Everything a network's document shows, computed once."""

    def __init__(self, network: Network, records: list[ProofRecord]):
        self.network = network
        self.records = records
        self.spec = network.spec
        self.names = Names(self.spec.notation)
        self.batch = batch_size(self.spec.batch)
        self.read = LatexReading(self.names, batch=self.batch)
        self.plan = network.backward_plan()
        self.rule_of = {target: expr for _, target, expr in self.plan}
        self.blocks: list[Block] = []

    # ------------------------------------------------------------ helpers

    def shape(self, shape: tx.Shape) -> str:
        return shape_tex(shape, self.batch)

    def label(self, key: str) -> str:
        return _label(self.network, key)

    def steps(self) -> list[Step]:
        return [s for s in self.network.steps if s.layer is not None]

    @property
    def loss_step(self) -> Step:
        return self.network.steps[-1]

    @property
    def first_layer(self) -> Step:
        return next(s for s in self.steps() if s.layer.type in PARAMETRISED)

    def chain(self) -> list[tx.Tensor]:
        """The forward flow: input, every layer output, the loss."""
        return [self.network.input] + [s.output for s in self.network.steps]

    def operation_name(self, step: Step, short: bool = False) -> str:
        if step.layer is None:
            return {"bce": r"\text{BCE}", "mse": r"\tfrac{1}{2}\lVert\cdot\rVert^2"}[self.spec.loss]
        kind = step.layer.type
        if kind == "maxpool2d" and short:
            return r"\text{pool}"
        if kind == "maxpool2d":
            size = step.layer.options["size"]
            return rf"\text{{max-pool }}{size}\times{size}"
        return {
            "conv2d": r"\operatorname{corr}",
            "dense": r"\text{dense}",
            "relu": r"\text{ReLU}",
            "sigmoid": r"\sigma",
            "flatten": r"\text{flatten}",
        }[kind]

    # ------------------------------------------------------- architecture

    def architecture(self) -> None:
        chain = self.chain()
        flow = [self.names.symbol(chain[0].name)]
        for step, tensor in zip(self.network.steps, chain[1:], strict=True):
            flow.append(rf"\xrightarrow{{{self.operation_name(step)}}} {self.names.symbol(tensor.name)}")
        nodes = []
        spacing = min(2.4, 15.2 / max(1, len(chain) - 1))
        for i, tensor in enumerate(chain):
            params = []
            if i > 0:
                params = [self.names.symbol(p.name) for p in self.network.steps[i - 1].params]
            nodes.append(
                {
                    "id": f"t{i}",
                    "x": f"{i * spacing:.2f}",
                    "name": self.names.symbol(tensor.name),
                    "shape": self.shape(tensor.shape).replace(" ", ""),
                    "op": self.operation_name(self.network.steps[i - 1], short=True) if i else "",
                    "params": ",\\,".join(params),
                }
            )
        # the flow breaks into lines of four arrows so that it fits the page
        lines = [" ".join(flow[i : i + 4]) for i in range(0, len(flow), 4)]
        self.blocks.append(
            Block(
                "architecture", "Architecture", [], kind="architecture", data={"flow": lines, "nodes": nodes}
            )
        )

    # ---------------------------------------------------------- variables

    def meaning(self, step: Step | None, tensor: tx.Tensor) -> str:
        if tensor.name == self.network.input.name:
            return "input"
        if tensor.name == self.network.target.name:
            return "target"
        if step is None or step.layer is None:
            return "loss: " + self.loss_step.rule.summary
        kind = step.layer.type
        if tensor in step.params:
            if tensor.name == step.params[0].name:
                return "filters" if kind == "conv2d" else "weights (inputs by units)"
            return "bias, one per filter" if kind == "conv2d" else "bias, one per unit"
        return {
            "conv2d": "pre-activation: correlation plus bias",
            "dense": "pre-activation: product plus bias",
            "relu": "activation, ReLU",
            "sigmoid": "activation, sigmoid",
            "maxpool2d": "max-pooled activation",
            "flatten": "flattened features",
        }[kind]

    def variables(self) -> None:
        rows = [(self.network.input, None), (self.network.target, None)]
        for step in self.network.steps:
            rows += [(p, step) for p in step.params] + [(step.output, step)]
        table = []
        for tensor, step in rows:
            trainable = step is not None and tensor in step.params
            table.append(
                {
                    "name": self.names.symbol(tensor.name),
                    "meaning": self.meaning(step, tensor),
                    "shape": self.shape(tensor.shape),
                    "trainable": "yes" if trainable else "no",
                }
            )
        sizes = [prod(p.shape) for p in self.network.params]
        count = self.network.parameter_count
        terms = " + ".join(
            f"\\underbrace{{{n}}}_{{{self.names.symbol(p.name)}}}"
            for n, p in zip(sizes, self.network.params, strict=True)
        )
        rows_count = [Row(r"\#\text{parameters}", f"= {terms} = {count}", self.label("parameter-count"))]
        self.blocks.append(
            Block(
                "variables",
                "Variables and dimensions",
                [rows_count],
                kind="variables",
                data={"table": table, "count": count, "batch": str(self.batch) if self.batch else "N"},
            )
        )

    # ------------------------------------------------------------ forward

    def forward(self) -> None:
        rows = [
            Row(
                self.names.symbol(s.output.name),
                "= " + self.read(s.forward),
                self.label(f"forward-{s.output.name}"),
            )
            for s in self.network.steps
        ]
        used = []
        for s in self.network.steps:
            used += [type(node) for node in walk(s.forward)]
        self.blocks.append(Block("forward", "Forward equations", [rows], data={"used": used}))

    def forward_entries(self) -> None:
        step = self.first_layer
        env, symbols = self.entry_symbols([step.input, *step.params])
        values = SymbolicReading(env, 1)(step.forward)
        self.blocks.append(
            self.entries_block(
                f"entries-{step.output.name}", step.output.name, values, symbols, gradient=False
            )
        )

    # ---------------------------------------------------- element entries

    def entry_symbols(self, tensors: list[tx.Tensor]) -> tuple[dict, dict]:
        """Symbols for every entry of ``tensors`` (batch 1), with their LaTeX names and sort keys."""
        env, symbols = {}, {}
        for order, tensor in enumerate(tensors):
            shape = tuple(1 if d == tx.BATCH else d for d in tensor.shape)
            array = np.empty(shape, dtype=object)
            for index in np.ndindex(shape):
                symbol = sp.Symbol(f"{tensor.name}[{','.join(map(str, index))}]", real=True)
                array[index] = symbol
                shown = tuple(i for i, d in zip(index, shape, strict=True) if d > 1)
                symbols[symbol] = (self.names.entry(tensor.name, shown), (order, index))
            env[tensor.name] = array
        return env, symbols

    def entries_block(self, key: str, name: str, values: np.ndarray, symbols: dict, gradient: bool) -> Block:
        rows: list[Row] = []
        indices = list(np.ndindex(values.shape))
        shown_indices = indices
        notes = []
        if len(indices) > MAX_ENTRIES_SHOWN:
            shown_indices = indices[:2] + indices[-1:]
            notes.append(f"{len(indices)} entries; the first two and the last are shown.")
        shape = values.shape
        for index in shown_indices:
            reduced = tuple(i for i, d in zip(index, shape, strict=True) if d > 1)
            entry = self.names.entry(name, reduced)
            left = rf"\frac{{\partial {self.names.loss}}}{{\partial {entry}}}" if gradient else entry
            terms = sum_terms(values[index], symbols)
            if len(terms) > MAX_TERMS_SHOWN:
                note = (
                    f"each entry is a sum of {len(terms)} products; the first three and the last are shown."
                )
                if note not in notes:
                    notes.append(note)
                terms = terms[:3] + [r"\cdots"] + terms[-1:]
            lines = [" + ".join(terms[i : i + TERMS_PER_LINE]) for i in range(0, len(terms), TERMS_PER_LINE)]
            rows.append(Row(left, "= " + lines[0]))
            rows += [Row("", r"\quad + " + line) for line in lines[1:]]
        return Block(key, "", [rows], notes=notes, data={"name": name})

    # -------------------------------------------------------- chain rule

    def chain_rule(self) -> None:
        step = self.first_layer
        weight = step.params[0]
        chain = self.chain()
        stop = chain.index(step.output)
        factors = []
        path = list(reversed(chain[stop:]))
        for upper, lower in zip(path, path[1:], strict=False):
            factors.append((upper, lower))
        factors.append((step.output, weight))
        parts = []
        for upper, lower in factors:
            top, bottom = self.names.symbol(upper.name), self.names.symbol(lower.name)
            fraction = rf"\frac{{\partial {top}}}{{\partial {bottom}}}"
            parts.append(rf"\underbrace{{{fraction}}}_{{{jacobian_shape(upper.shape, lower.shape)}}}")
        left = self.names.tensor(gradient_name(weight.name))
        per_line = 8 if len(parts) <= 8 else 5
        lines = [" ".join(parts[i : i + per_line]) for i in range(0, len(parts), per_line)]
        rows = [Row(left, "= " + lines[0], self.label("chain-rule"))]
        rows += [Row("", r"\quad " + line) for line in lines[1:]]
        # the same chain, multiplied from the loss: each product is one rule, with the shapes of its factors
        on_path = self.path_rules(weight.name)
        vector_rows = []
        for target in on_path:
            reading = LatexReading(self.names, atom=self.underbrace_atom, batch=self.batch, sized=False)
            expr = self.rule_of[target]
            lhs = rf"\underbrace{{{self.names.tensor(gradient_name(target))}}}_{{{self.shape(expr.shape)}}}"
            lines = break_lines(reading(expr))
            vector_rows.append(Row(lhs, "= " + lines[0]))
            vector_rows += [Row("", r"\quad " + line) for line in lines[1:]]
        self.blocks.append(
            Block(
                "chain-rule",
                "The chain rule for the first filter",
                [rows, vector_rows],
                data={"weight": weight.name},
            )
        )

    def underbrace_atom(self, expr: tx.Expr) -> str | None:
        if isinstance(expr, tx.Tensor):
            return rf"\underbrace{{{self.names.tensor(expr.name)}}}_{{{self.shape(expr.shape)}}}"
        if isinstance(expr, tx.Transpose) and isinstance(expr.a, tx.Tensor):
            inner = self.names.tensor(expr.a.name)
            return rf"\underbrace{{{inner}^{{\top}}}}_{{{self.shape(expr.shape)}}}"
        return None

    def path_rules(self, target: str) -> list[str]:
        """The targets of the rules that lead from the loss to ``target``, in backprop order."""
        needed = {target}
        for _, tgt, expr in reversed(self.plan):
            if tgt in needed:
                needed |= {t.name[1:] for t in tx.tensors_in(expr) if t.name.startswith("d")}
        return [tgt for _, tgt, _ in self.plan if tgt in needed]

    # ------------------------------------------------------ loss gradient

    def loss_gradient(self) -> None:
        step = self.loss_step
        ((target, expr),) = step.rules.items()
        names = self.names
        if self.spec.loss == "bce":
            a_name = self.network.output.name
            z, y, a = (sp.Symbol(n, real=True) for n in (target, "Y", a_name))
            per_entry = SymbolicReading(
                {target: np.array([[z]], dtype=object), "Y": np.array([[y]], dtype=object)}, 1
            )(
                tx.BinaryCrossEntropyWithLogits(
                    tx.Tensor(target, (tx.BATCH, 1)), tx.Tensor("Y", (tx.BATCH, 1)), "sum"
                )
            ).item()
            ell = per_entry.subs(sigmoid(z), a)
            d_ell = ell.diff(a)
            combined = (a - y) / (a * (1 - a))
            slope = sigmoid(z).diff(z).subs(sigmoid(z), a)
            product = d_ell * slope
            assert canonical.equal(d_ell, combined) and sp.cancel(product - (a - y)) == 0
            symbol_names = {z: names.symbol(target), y: names.symbol("Y"), a: names.symbol(a_name)}
            ell_tex = r"\ell"
            rows = [
                Row(ell_tex, "= " + tex(ell, symbol_names)),
                Row(
                    rf"\frac{{\partial \ell}}{{\partial {names.symbol(a_name)}}}",
                    "= " + tex(d_ell, symbol_names),
                ),
                Row("", "= " + tex_fraction(a - y, a * (1 - a), symbol_names)),
                Row(
                    rf"\frac{{\partial {names.symbol(a_name)}}}{{\partial {names.symbol(target)}}}",
                    "= " + tex(slope, symbol_names),
                ),
                Row(
                    rf"\frac{{\partial \ell}}{{\partial {names.symbol(a_name)}}}\,"
                    rf"\frac{{\partial {names.symbol(a_name)}}}{{\partial {names.symbol(target)}}}",
                    "= "
                    + tex_fraction(a - y, a * (1 - a), symbol_names)
                    + r"\cdot "
                    + tex(slope, symbol_names)
                    + " = "
                    + tex(sp.cancel(product), symbol_names),
                    self.label("bce-identity"),
                ),
            ]
        else:
            o, y = sp.Symbol(target, real=True), sp.Symbol("Y", real=True)
            per_entry = SymbolicReading(
                {target: np.array([[o]], dtype=object), "Y": np.array([[y]], dtype=object)}, 1
            )(
                tx.HalfSquaredError(tx.Tensor(target, (tx.BATCH, 1)), tx.Tensor("Y", (tx.BATCH, 1)), "sum")
            ).item()
            symbol_names = {o: names.symbol(target), y: names.symbol("Y")}
            rows = [
                Row(r"\ell", "= " + tex(per_entry, symbol_names)),
                Row(
                    rf"\frac{{\partial \ell}}{{\partial {names.symbol(target)}}}",
                    "= " + tex(per_entry.diff(o), symbol_names),
                ),
            ]
        rule_rows = [
            Row(
                names.tensor(gradient_name(target)), "= " + self.read(expr), self.label(gradient_name(target))
            )
        ]
        self.blocks.append(
            Block("loss-gradient", "The loss", [rows, rule_rows], data={"target": target, "per_entry": True})
        )

    # ----------------------------------------------------- layer by layer

    def layer_rules(self) -> None:
        for step, target, expr in self.plan:
            if step is self.loss_step:
                continue
            key = gradient_name(target)
            rows = [Row(self.names.tensor(key), "= " + self.read(expr), self.label(key))]
            shape_rows = self.shape_rows(r"\text{shapes:}", self.shape_levels(expr), first="")
            notes = batch_notes(expr, self.batch)
            self.blocks.append(
                Block(
                    key,
                    "",
                    [rows, shape_rows],
                    notes=notes,
                    data={
                        "layer": step.layer.type,
                        "target": target,
                        "role": role(step, target),
                        "output": step.output.name,
                        "input": step.input.name,
                    },
                )
            )

    def shape_rows(self, left: str, levels: list[str], first: str = "= ") -> list[Row]:
        """One row per level, long levels broken; the first row carries ``left``."""
        rows = []
        for n, level in enumerate(levels):
            lines = break_lines(level)
            rows.append(Row(left if n == 0 else "", (first if n == 0 else "= ") + lines[0]))
            rows += [Row("", r"\quad " + line) for line in lines[1:]]
        return rows

    def shape_levels(self, expr: tx.Expr) -> list[str]:
        """The rule with its sub-trees replaced by their shapes, deepest first, as the source tracks them."""
        levels = []
        for depth in range(height(expr) + 1):

            def atom(e, depth=depth):
                return self.shape(e.shape) if height(e) <= depth else None

            line = LatexReading(self.names, atom=atom, batch=self.batch, sized=False)(expr)
            if not levels or levels[-1] != line:
                levels.append(line)
        return levels

    # ---------------------------------------------------------- error form

    def error_form(self) -> None:
        layers = [s for s in self.steps() if s.layer.type in PARAMETRISED]
        errors = {s.output.name for s in layers}

        def atom(e):
            if isinstance(e, tx.Tensor) and e.name.startswith("d") and e.name[1:] in errors:
                return self.names.error(e.name[1:])
            return None

        reading = LatexReading(self.names, atom=atom, batch=self.batch)
        error_rows, weight_rows = [], []
        for s in reversed(layers):
            z = s.output.name
            composed = self.compose(self.rule_of[z], stop=errors)
            error_rows.append(
                Row(
                    self.names.error(z),
                    rf"= {self.names.tensor(gradient_name(z))} = {reading(composed)}",
                    self.label(f"error-{z}"),
                )
            )
            for p in s.params:
                weight_rows.append(
                    Row(self.names.tensor(gradient_name(p.name)), "= " + reading(self.rule_of[p.name]))
                )
        self.blocks.append(
            Block(
                "error-form",
                "The error form",
                [error_rows, weight_rows],
                data={"errors": [self.names.error(s.output.name) for s in reversed(layers)]},
            )
        )

    def compose(self, expr: tx.Expr, stop: set[str]) -> tx.Expr:
        """Substitute the rule of every gradient ``expr`` reads, down to the loss or a ``stop`` error."""
        if isinstance(expr, tx.Tensor):
            name = expr.name
            if name.startswith("d") and name[1:] in self.rule_of and name[1:] not in stop:
                return self.compose(self.rule_of[name[1:]], stop)
            return expr
        changes = {
            f.name: self.compose(getattr(expr, f.name), stop)
            for f in dataclasses.fields(expr)
            if isinstance(getattr(expr, f.name), tx.Expr)
        }
        return dataclasses.replace(expr, **changes)

    # ------------------------------------------------------ shape tracking

    def shape_tracking(self) -> None:
        displays = []
        for p in self.network.params:
            composed = self.compose(self.rule_of[p.name], stop=set())
            left = self.names.tensor(gradient_name(p.name))
            symbolic = LatexReading(self.names, batch=self.batch, sized=False)(composed)
            rows = self.shape_rows(left, [symbolic, *self.shape_levels(composed)])
            rows[0].label = self.label(f"composed-d{p.name}")
            displays.append(rows)
        self.blocks.append(Block("shape-tracking", "Shape tracking", displays))

    # ---------------------------------------------------- weight entries

    def weight_entries(self) -> None:
        step = self.first_layer
        weight = step.params[0]
        expr = self.rule_of[weight.name]
        gradients = [t for t in tx.tensors_in(expr)]
        env, symbols = self.entry_symbols(gradients)
        values = SymbolicReading(env, 1)(expr)
        block = self.entries_block(f"entries-d{weight.name}", weight.name, values, symbols, gradient=True)
        block.data.update(
            {
                "weight": weight.name,
                "upstream": gradient_name(step.output.name),
                "conv": step.layer.type == "conv2d",
                "dx": step.rules.get(step.input.name),
            }
        )
        rule = Row(self.names.tensor(gradient_name(weight.name)), "= " + self.read(expr))
        block.displays.append([rule])
        if step.input.name in step.rules:
            dx = step.rules[step.input.name]
            block.displays.append(
                [
                    Row(
                        self.names.tensor(gradient_name(step.input.name)),
                        "= " + self.read(dx),
                        self.label(gradient_name(step.input.name)),
                    )
                ]
            )
        self.blocks.append(block)

    # ------------------------------------------------------- conventions

    def definitions(self) -> list[str]:
        used: list[type] = []
        for step in self.network.steps:
            for e in [step.forward, *step.rules.values()]:
                for node in walk(e):
                    if type(node) in DEFINITIONS and type(node) not in used:
                        used.append(type(node))
        return [DEFINITIONS[t] for t in tx.OPERATIONS if t in used]

    def conventions(self) -> dict:
        kinds = {s.layer.type for s in self.steps()}
        return {
            "relu": "relu" in kinds,
            "maxpool": "maxpool2d" in kinds,
            "conv": "conv2d" in kinds,
            "reduction": self.spec.reduction,
            "loss": self.spec.loss,
            "records": [r for r in self.records if r.level == "convention"],
        }

    # ------------------------------------------------------ verification

    def statement(self, record: ProofRecord) -> str:
        for step in self.network.steps:
            for target, expr in step.rules.items():
                key = f"{tensor_label(gradient_name(target))} = {text(expr)}"
                if record.statement == key or record.statement.startswith(key + ","):
                    inline = LatexReading(self.names, batch=self.batch, sized=False, inline=True)
                    return f"${self.names.inline(gradient_name(target))} = {inline(expr)}$"
        return r"\texttt{" + text_escape(record.statement) + "}"

    def obligation(self, record: ProofRecord) -> str:
        label = record.name
        for step in self.network.steps:
            for target in step.rules:
                plain = tensor_label(gradient_name(target))
                if label.endswith(plain):
                    head = label[: -len(plain)]
                    return text_escape(head) + f"${self.names.inline(gradient_name(target))}$"
        return text_escape(label)

    def verification(self) -> None:
        rows = []
        for r in self.records:
            entries = []
            for entry in r.entry_names:
                name, _, index = entry.partition("[")
                tensor = name.removeprefix("dL/d")
                idx = tuple(int(i) for i in index.rstrip("]").split(","))
                shape = next(p.shape for p in self.network.params if p.name == tensor)
                reduced = tuple(i for i, d in zip(idx, shape, strict=True) if d > 1)
                entries.append(rf"\partial {self.names.loss}/\partial {self.names.entry(tensor, reduced)}")
            rows.append(
                {
                    "level": r.level,
                    "name": self.obligation(r),
                    "statement": self.statement(r),
                    "entries": r.entries,
                    "method": text_escape(r.method),
                    "holds": r.holds,
                    "entry_list": entries,
                }
            )
        self.blocks.append(
            Block(
                "verification",
                "Verification",
                [],
                kind="verification",
                data={
                    "rows": rows,
                    "sympy": sp.__version__,
                    "total": len(self.records),
                    "proven": sum(r.holds for r in self.records),
                },
            )
        )

    # --------------------------------------------------------------- all

    def build(self) -> list[Block]:
        self.architecture()
        self.variables()
        self.forward()
        self.forward_entries()
        self.chain_rule()
        self.loss_gradient()
        self.layer_rules()
        self.weight_entries()
        self.error_form()
        self.shape_tracking()
        self.verification()
        return self.blocks


# ----------------------------------------------------------------- helpers


def role(step: Step, target: str) -> str:
    """``weight``, ``bias`` or ``input``: what a rule of ``step`` differentiates."""
    names = [p.name for p in step.params]
    if target in names:
        return "weight" if target == names[0] else "bias"
    return "input"


def walk(expr: tx.Expr):
    yield expr
    for operand in expr.operands:
        yield from walk(operand)


def height(expr: tx.Expr) -> int:
    return 0 if not expr.operands else 1 + max(height(o) for o in expr.operands)


def jacobian_shape(upper: tx.Shape, lower: tx.Shape) -> str:
    """Per-sample Jacobian shape ``(out) \\times (in)``, axes of length 1 left out."""

    def dims(shape):
        kept = [str(d) for d in shape if d != tx.BATCH and d != 1]
        return r"\times ".join(kept) if kept else "1"

    return f"({dims(upper)})\\times({dims(lower)})"


def batch_notes(expr: tx.Expr, batch: int | None) -> list[str]:
    """Where a rule sums over the batch (a contraction of the sample axis)."""
    count = f"$N = {batch}$" if batch else "$N$"
    notes = []
    for node in walk(expr):
        if isinstance(node, tx.MatMul) and node.a.shape[1] == tx.BATCH:
            notes.append(f"The product contracts the sample axis: it sums over the {count} samples.")
        elif isinstance(node, tx.Correlate) and node.weight_form:
            notes.append(f"The correlation contracts the sample axis: it sums over the {count} samples.")
        elif isinstance(node, tx.SumAxes) and 0 in node.axes:
            notes.append(f"The sum includes the sample axis ({count} samples).")
    return list(dict.fromkeys(notes))


def visible_width(latex: str) -> int:
    """A rough count of the characters a formula shows, to decide where to break it."""
    shown = re.sub(r"\\operatorname\{(\w+)\}", r"\1", latex)
    shown = re.sub(r"\\(left|right|quad|,|;|!)", "", shown)
    shown = re.sub(r"_\{[^{}]*\}", "xx", shown)
    shown = re.sub(r"\\[A-Za-z]+", "x", shown)
    return len(re.sub(r"[{}^_ ]", "", shown))


SEPARATORS = (r" \odot ", r" \cdot ", r",\, ")


def break_lines(latex: str, limit: int = 58) -> list[str]:
    """Break a long formula before a binary operator or after a comma outside any braces."""
    pieces, depth, start, i = [], 0, 0, 0
    while i < len(latex):
        ch = latex[i]
        depth += (ch == "{") - (ch == "}")
        if depth == 0:
            for sep in SEPARATORS:
                if latex.startswith(sep, i) and i > start:
                    cut = i + len(sep) if sep.startswith(",") else i
                    pieces.append(latex[start:cut])
                    start = cut
                    break
        i += 1
    pieces.append(latex[start:])
    lines, current = [], ""
    for piece in pieces:
        if current and visible_width(current + piece) > limit:
            lines.append(current)
            current = piece.lstrip()
        else:
            current += piece
    lines.append(current)
    return lines


def sum_terms(value: sp.Expr, symbols: dict) -> list[str]:
    """The terms of a sum of products, each printed factor by factor in a fixed order."""
    names = {s: name for s, (name, _) in symbols.items()}
    keys = {s: key for s, (_, key) in symbols.items()}
    printed = []
    for term in sp.Add.make_args(value):
        coefficient, factors = term.as_coeff_mul()
        factors = sorted(factors, key=lambda f: keys.get(f, (99, ())))
        body = r"\,".join(sp.latex(f, symbol_names=names) for f in factors)
        prefix = "" if coefficient == 1 else sp.latex(coefficient) + r"\,"
        key = [keys.get(f, (99, ())) for f in factors]
        printed.append((key, prefix + body))
    printed.sort(key=lambda item: item[0])
    return [p for _, p in printed]


def tex_fraction(numerator: sp.Expr, denominator: sp.Expr, symbol_names: dict) -> str:
    return rf"\frac{{{tex(numerator, symbol_names)}}}{{{tex(denominator, symbol_names)}}}"


# ------------------------------------------------------------------ render


def render(network: Network, records: list[ProofRecord]) -> dict[str, str]:
    """The document and one snippet per result, each with the generated-file header."""
    derivation = Derivation(network, records)
    blocks = derivation.build()
    env = environment()
    name = network.spec.name
    context = {
        "name": name,
        "title": text_escape(name),
        "spec": network.spec,
        "names": derivation.names,
        "blocks_by_key": {b.key: b for b in blocks},
        "rule_keys": [b.key for b in blocks if "role" in b.data],
        "first_output": derivation.first_layer.output.name,
        "definitions": derivation.definitions(),
        "conventions": derivation.conventions(),
    }
    outputs = {}
    snippet = env.get_template("snippet.tex.j2")
    for block in blocks:
        path = f"docs/derivations/{name}/{block.key}.tex"
        outputs[path] = with_header(path, name, snippet.render(block=block, **context))
    path = f"docs/derivations/{name}.tex"
    outputs[path] = with_header(path, name, env.get_template("derivation.tex.j2").render(**context))
    return outputs
