"""The results of a derivation, computed once from a network's rules and proof records.

``Derivation(network, records).build()`` returns the blocks the templates
place, in document order: the architecture, the variables, the forward pass,
the chain rule, every backward rule from the loss back, every entry of the
first filter's gradient, the error form, the shape tracking and the
verification. Every equation is the LaTeX reading (``codegen.latex.printer``)
of a declared rule (``derive.layers``) or of a composition of them, the
symbolic reading of one (``codegen.latex.entries``), or a proof record
(``codegen.latex.verification``); nothing here states a gradient of its own.
"""

from __future__ import annotations

import dataclasses
from math import prod

from gradproof.codegen.latex.content import Block, Row
from gradproof.codegen.latex.entries import EntrySymbols, entry_rows, loss_steps
from gradproof.codegen.latex.layout import PAGE, Layout, break_lines, breakable_math, pack, visible_width
from gradproof.codegen.latex.names import Names
from gradproof.codegen.latex.printer import LatexReading, batch_size, definitions, shape_tex
from gradproof.codegen.latex.shapes import ShapeReading, jacobian_shape, per_sample
from gradproof.codegen.latex.theorems import Theorems
from gradproof.codegen.latex.verification import Verification
from gradproof.derive import texpr as tx
from gradproof.derive.network import Network, Step, gradient_name
from gradproof.derive.prover import ProofRecord

JACOBIAN_PHANTOM = r"\vphantom{\frac{\partial x_{1}}{\partial x_{1}}}"  # equal depth under every factor
LEFT_WIDTH = 6.0  # the left side the widths of a layout allow for: a fraction such as dL/dW1
ROW_GAP_CM = 2.6  # between two rows of the architecture figure: parameters, node, shape
SHAPES = r"\text{shapes:}"
TIMES = r" \times "


class Derivation:
    """Everything a network's document shows."""

    def __init__(self, network: Network, records: list[ProofRecord], layout: Layout = PAGE):
        self.network = network
        self.layout = layout
        self.records = records
        self.spec = network.spec
        self.names = Names(self.spec.notation)
        self.batch = batch_size(self.spec.batch)
        self.read = LatexReading(self.names, batch=self.batch)
        self.shapes = ShapeReading(self.names, self.batch)
        self.plan = network.backward_plan()
        self.rule_of = {target: expr for _, target, expr in self.plan}
        self.blocks: list[Block] = []

    # ------------------------------------------------------------ helpers

    def shape(self, shape: tx.Shape) -> str:
        return shape_tex(shape, self.batch)

    def label(self, key: str) -> str:
        return f"gp:{self.spec.name}:{key}"

    def layers(self) -> list[Step]:
        return [s for s in self.network.steps if s.layer is not None]

    @property
    def loss_step(self) -> Step:
        return self.network.steps[-1]

    def parametrised(self) -> list[Step]:
        """The layers with parameters: their outputs are the errors of the error form."""
        return [s for s in self.layers() if s.params]

    @property
    def first_layer(self) -> Step:
        return self.parametrised()[0]

    def chain(self) -> list[tx.Tensor]:
        """The forward flow: input, every layer output, the loss."""
        return [self.network.input] + [s.output for s in self.network.steps]

    def grad(self, name: str) -> str:
        return self.names.tensor(gradient_name(name))

    def operation_name(self, step: Step, short: bool = False) -> str:
        if step.layer is None:
            return step.rule.latex_operation
        return step.rule.latex_operation(step.layer.options, short)

    def typeset(self, expr: tx.Expr, atom=None) -> str:
        """The LaTeX reading of ``expr``; ``atom`` prints chosen sub-trees as something else."""
        return LatexReading(self.names, atom=atom, batch=self.batch)(expr)

    def equation_rows(
        self, left: str, latex: str, label: str | None = None, limit: float | None = None
    ) -> list[Row]:
        """``left = latex``, broken into a first row and continuation rows when it does not fit one line.

        A left side wider than a fraction such as dL/dW1 leaves the first row that much less room.
        """
        limit = limit or self.layout.rhs
        first = limit - max(0.0, visible_width(left) - LEFT_WIDTH)
        lines = break_lines(latex, limit, first_limit=first)
        rows = [Row(left, "= " + lines[0], label)]
        rows += [Row("", r"\quad " + line) for line in lines[1:]]
        return rows

    def fits_aside(self, target: str, expr: tx.Expr, numbered: bool = True) -> bool:
        """Whether a rule and its factors' shapes fit side by side on one line."""
        parts = (self.grad(target), self.read(expr), self.shapes.chain(expr))
        limit = self.layout.aside if numbered else self.layout.aside_unnumbered
        return sum(visible_width(p) for p in parts) + 2 <= limit

    def rule_rows(
        self, target: str, expr: tx.Expr, label: str | None = None, aside: bool | None = None
    ) -> list[Row]:
        """A proven rule with its factors replaced by their shapes: beside it when both fit, else below."""
        if aside is None:
            aside = self.fits_aside(target, expr)
        if aside:
            return [Row(self.grad(target), "= " + self.read(expr), label, aside=self.shapes.chain(expr))]
        rows = self.equation_rows(self.grad(target), self.typeset(expr), label)
        return rows + self.shape_rows([self.shapes.chain(expr)])

    def shape_rows(self, levels: list[str]) -> list[Row]:
        """Shape levels, one per row after the first, each step marked by an arrow."""
        rows: list[Row] = []
        for n, level in enumerate(levels):
            lines = break_lines(level, self.layout.rhs)
            head = r"\quad " if n == 0 else r"\quad \rightarrow "
            rows.append(Row(SHAPES if n == 0 else "", head + lines[0], glue=True))
            rows += [Row("", r"\qquad " + line) for line in lines[1:]]
        return rows

    # ------------------------------------------------------- architecture

    def architecture(self) -> None:
        chain = self.chain()
        pieces = [self.names.symbol(chain[0].name)]
        for step, tensor in zip(self.network.steps, chain[1:], strict=True):
            pieces.append(rf"\xrightarrow{{{self.operation_name(step)}}} {self.names.symbol(tensor.name)}")
        flow = pack(pieces, self.layout.flow)
        layout = self.layout
        per_row = min(len(chain), int(layout.figure_cm / layout.node_min_cm + 1e-9) + 1)
        spacing = min(layout.node_spacing_cm, layout.figure_cm / max(1, per_row - 1))
        nodes = []
        for i, tensor in enumerate(chain):
            step = self.network.steps[i - 1] if i else None
            params = [
                rf"{self.names.symbol(p.name)}\;({per_sample(p.shape)})"
                for p in (step.params if step else ())
            ]
            row, place = divmod(i, per_row)
            column = place if row % 2 == 0 else per_row - 1 - place  # the rows snake: a link down, then back
            nodes.append(
                {
                    "id": f"t{i}",
                    "x": f"{column * spacing:.2f}",
                    "y": f"{-row * ROW_GAP_CM:.2f}" if row else "0",
                    "name": self.names.symbol(tensor.name),
                    "shape": per_sample(tensor.shape),
                    "op": self.operation_name(step, short=True) if step else "",
                    "params": params,
                    "down": i > 0 and place == 0,  # reached by a link from the row above
                }
            )
        self.blocks.append(
            Block(
                "architecture",
                "Architecture",
                [],
                kind="architecture",
                data={"flow": flow, "nodes": nodes, "label": self.label("architecture-figure")},
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
        if tensor in step.params:
            return step.parameters[step.params.index(tensor)].meaning
        with_bias = " plus bias" if any(p.role == "bias" for p in step.parameters) else ""
        return step.rule.output_meaning + with_bias

    def variables(self) -> None:
        rows = [(self.network.input, None), (self.network.target, None)]
        for step in self.network.steps:
            rows += [(p, step) for p in step.params] + [(step.output, step)]
        table = []
        for tensor, step in rows:
            table.append(
                {
                    "name": self.names.symbol(tensor.name),
                    "meaning": self.meaning(step, tensor),
                    "shape": self.shape(tensor.shape) if tensor.shape else "scalar",
                    "trainable": "yes" if step is not None and tensor in step.params else "no",
                }
            )
        params = self.network.params
        braces = " + ".join(
            rf"\underbrace{{{TIMES.join(str(d) for d in p.shape)}}}_{{{self.names.symbol(p.name)}}}"
            for p in params
        )
        sizes = " + ".join(str(prod(p.shape)) for p in params)
        count = self.network.parameter_count
        rhs = f"{braces} = {sizes} = {count}" if len(params) > 1 else f"{braces} = {count}"
        rows_count = self.equation_rows(r"\#\text{parameters}", rhs, self.label("parameter-count"))
        self.blocks.append(
            Block(
                "variables",
                "Variables and dimensions",
                [rows_count],
                kind="variables",
                data={
                    "table": table,
                    "count": count,
                    "batch": str(self.batch) if self.batch else "N",
                    "narrow": self.layout.narrow_table,
                },
            )
        )

    # -------------------------------------------------------- layer table

    def layer_table(self) -> dict:
        """Each layer with its output shape for one sample, how that shape follows from its input's, and
        its parameter count; then the total and, once per layer type, the general rule (its words)."""
        rows, words = [], []
        for step in self.layers():
            before, after = unbatched(step.input.shape), unbatched(step.output.shape)
            sizes = [r" \cdot ".join(str(d) for d in p.shape) for p in step.params]
            total = sum(prod(p.shape) for p in step.params)
            count = " + ".join(sizes) + (f" = {thousands(total)}" if sizes != [str(total)] else "")
            rows.append(
                {
                    "name": self.names.symbol(step.output.name),
                    "layer": step.rule.latex_description(step.layer.options),
                    "shape": TIMES.join(str(d) for d in after),
                    "rule": step.rule.latex_shape_rule(before, after, step.layer.options),
                    "count": count if step.params else "",
                }
            )
            if step.rule.shape_words and step.rule.shape_words not in words:
                words.append(step.rule.shape_words)
        return {
            "rows": rows,
            "input": TIMES.join(str(d) for d in self.spec.input),
            "input_name": self.names.symbol(self.network.input.name),
            "total": thousands(self.network.parameter_count),
            "words": words,
        }

    # ------------------------------------------------------------ forward

    def forward(self) -> None:
        rows = [
            row
            for s in self.network.steps
            for row in self.equation_rows(
                self.names.symbol(s.output.name),
                self.typeset(s.forward),
                self.label(f"forward-{s.output.name}"),
                limit=self.layout.line,
            )
        ]
        self.blocks.append(Block("forward", "Forward equations", [rows]))

    def forward_entries(self) -> None:
        step = self.first_layer
        symbols = EntrySymbols(self.names, [step.input, *step.params])
        values = symbols.read(step.forward)
        rows, notes = entry_rows(
            self.names, step.output.name, values, symbols, gradient=False, limit=self.layout.line
        )
        self.blocks.append(
            Block(
                f"entries-{step.output.name}",
                "",
                [rows],
                notes=notes,
                data={"name": step.output.name},
            )
        )

    def delta_index(self) -> str:
        """The indices of an entry of the first layer's output gradient, for one sample: a filter and a
        position, or a unit (the subscript of ``\\delta^{T}``)."""
        step = self.first_layer
        if len(step.upstream.shape) != 4:  # not a layer with spatial outputs
            return "u"
        return "k,i,j" if step.output.shape[1] > 1 else "i,j"

    def definitions_block(self) -> None:
        """The notation and the operators a snippet uses, for a paper that includes snippets alone."""
        index = self.delta_index()
        entry = f"({index})" if "," in index else index
        self.blocks.append(
            Block(
                "definitions",
                "Notation",
                [],
                kind="definitions",
                data={
                    "operators": self.definitions(),
                    "sample": self.names.sample,
                    "batch": str(self.batch) if self.batch else "",
                    "loss": self.names.loss,
                    "delta": rf"\delta^{{T}}_{{{index}}}",
                    "delta_entry": entry,
                    "ragged": self.layout.breakable_math,
                },
            )
        )

    def definitions(self) -> list[tuple[str, str]]:
        """What each operator used by the network means, in the order of the language."""
        used: set[type] = set()
        for step in self.network.steps:
            for e in [step.forward, *step.rules.values()]:
                used |= {type(node) for node in walk(e)}
        meanings = definitions(self.names.sample)
        known = [meanings[t] for t in tx.OPERATIONS if t in used and t in meanings]
        # an operation declared outside the language carries its own definition
        carried = sorted((t for t in used - set(tx.OPERATIONS) if hasattr(t, "latex_definition")), key=str)
        return known + [t.latex_definition(self.names.sample) for t in carried]

    # -------------------------------------------------------- chain rule

    def path_rules(self, target: str) -> list[str]:
        """The targets of the rules that lead from the loss to ``target``, in backprop order."""
        needed = {target}
        for _, tgt, expr in reversed(self.plan):
            if tgt in needed:
                needed |= {t.name[1:] for t in tx.tensors_in(expr) if is_gradient(t)}
        return [tgt for _, tgt, _ in self.plan if tgt in needed]

    def chain_rule(self) -> None:
        step = self.first_layer
        weight = step.params[0]
        chain = self.chain()
        path = list(reversed(chain[chain.index(step.output) :]))
        links = list(zip(path, path[1:], strict=False)) + [(step.output, weight)]
        factors = []
        for upper, lower in links:
            top, bottom = self.names.symbol(upper.name), self.names.symbol(lower.name)
            fraction = rf"\frac{{\partial {top}}}{{\partial {bottom}}}{JACOBIAN_PHANTOM}"
            factors.append(rf"\underbrace{{{fraction}}}_{{{jacobian_shape(upper.shape, lower.shape)}}}")
        lines = pack(factors, self.layout.rhs, joiner=r" \, ")
        jacobians = [Row(self.grad(weight.name), "= " + lines[0], self.label("chain-rule"))]
        jacobians += [Row("", r"\quad " + line) for line in lines[1:]]
        products: list[Row] = []
        transposes: dict[str, tx.Tensor] = {}
        path_targets = self.path_rules(weight.name)
        aside = all(self.fits_aside(t, self.rule_of[t], numbered=False) for t in path_targets)
        for target in path_targets:
            expr = self.rule_of[target]
            products += self.rule_rows(target, expr, aside=aside)
            for node in walk(expr):
                if isinstance(node, tx.Transpose) and isinstance(node.a, tx.Tensor):
                    transposes.setdefault(node.a.name, node.a)
        notes = [
            rf"${self.names.symbol(t.name)}$ is stored as ${self.shape(t.shape)}$ and enters transposed, "
            rf"${self.names.symbol(t.name)}^{{\top}}$ being ${self.shape(t.shape[::-1])}$"
            for t in transposes.values()
        ]
        self.blocks.append(
            Block(
                "chain-rule",
                "The chain rule for the first filter",
                [jacobians, products],
                data={"weight": weight.name, "transposes": notes, "aside": aside},
            )
        )

    # ------------------------------------------------------ loss gradient

    def loss_gradient(self) -> None:
        step = self.loss_step
        ((target, expr),) = step.rules.items()
        output, y = self.network.output.name, self.network.target.name
        steps = loss_steps(self.names, step.forward, target, y, output, self.label("bce-identity"))
        rule = self.equation_rows(self.grad(target), self.typeset(expr), self.label(gradient_name(target)))
        self.blocks.append(Block("loss-gradient", "The loss", [steps, rule], data={"target": target}))

    # ----------------------------------------------------- layer by layer

    def layer_rules(self) -> None:
        for step, target, expr in self.plan:
            if step is self.loss_step:
                continue
            key = gradient_name(target)
            self.blocks.append(
                Block(
                    key,
                    "",
                    [self.rule_rows(target, expr, self.label(key))],
                    notes=batch_notes(expr, self.batch),
                    data={
                        "prose": step.rule.prose.get(role(step, target), ""),
                        "target": target,
                        "role": role(step, target),
                        "output": step.output.name,
                        "input": step.input.name,
                        "bias": len(step.params) > 1,
                        "weight": step.params[0].name if step.params else "",
                        "bias_name": step.params[1].name if len(step.params) > 1 else "",
                        "layer": step.rule.prose_data(
                            unbatched(step.input.shape), unbatched(step.output.shape), step.layer.options
                        ),
                        "first": step is self.first_layer,
                    },
                )
            )

    def bare_rules(self) -> None:
        """Every proven rule alone, without its shapes: ``rule-<key>`` beside the shaped ``<key>``."""
        for _, target, expr in self.plan:
            key = f"rule-{gradient_name(target)}"
            rows = self.equation_rows(self.grad(target), self.typeset(expr), self.label(key))
            self.blocks.append(Block(key, "", [rows], data={"target": target}))

    # ---------------------------------------------------- weight entries

    def weight_entries(self) -> None:
        step = self.first_layer
        weight = step.params[0]
        expr = self.rule_of[weight.name]
        symbols = EntrySymbols(self.names, tx.tensors_in(expr))
        values = symbols.read(expr)
        upstream = step.upstream.shape
        conv = len(upstream) == 4  # a layer with spatial outputs: its weight rule is a correlation
        group = upstream[-1] if conv else None  # one row of the output gradient per line
        rows, notes = entry_rows(
            self.names, weight.name, values, symbols, gradient=True, limit=self.layout.rhs, group=group
        )
        displays = [
            rows,
            [Row(self.grad(weight.name), "= " + self.read(expr), self.label("identity-" + weight.name))],
        ]
        if step.input.name in step.rules:
            key = gradient_name(step.input.name)
            displays.append(
                [
                    Row(
                        self.grad(step.input.name),
                        "= " + self.read(step.rules[step.input.name]),
                        self.label(key),
                    )
                ]
            )
        filters = step.output.shape[1] if conv else 1
        delta_index = self.delta_index()
        self.blocks.append(
            Block(
                f"entries-d{weight.name}",
                "",
                displays,
                notes=notes,
                data={
                    "weight": weight.name,
                    "upstream": gradient_name(step.output.name),
                    "input": step.input.name,
                    "conv": conv,
                    "dx": step.input.name in step.rules,
                    "count": values.size,
                    "filters": filters,
                    "delta_index": delta_index,
                    "delta_entry": f"({delta_index})" if conv else delta_index,
                },
            )
        )

    # ---------------------------------------------------------- error form

    def error_form(self) -> None:
        layers = self.parametrised()
        errors = {s.output.name for s in layers}

        def atom(e: tx.Expr) -> str | None:
            if isinstance(e, tx.Tensor) and is_gradient(e) and e.name[1:] in errors:
                return self.names.error(e.name[1:])
            return None

        rows: list[Row] = []
        for s in reversed(layers):
            z = s.output.name
            composed = self.compose(self.rule_of[z], stop=errors)
            formula = self.typeset(composed, atom)
            rows += self.equation_rows(
                self.names.error(z), f"{self.grad(z)} = {formula}", self.label(f"error-{z}")
            )
        for s in reversed(layers):
            for p in s.params:
                formula = self.typeset(self.rule_of[p.name], atom)
                rows += self.equation_rows(self.grad(p.name), formula, self.label(f"error-d{p.name}"))
        self.blocks.append(
            Block(
                "error-form",
                "The error form",
                [rows],
                data={
                    "errors": [
                        (self.names.error(s.output.name), self.names.symbol(s.output.name))
                        for s in reversed(layers)
                    ],
                    "notes": self.derivative_notes(),
                },
            )
        )

    def derivative_notes(self) -> list[str]:
        """What each activation's derivative factor in the error form is called, one note per layer type."""
        pairs: dict[str, tuple[Step, list[tuple[str, str]]]] = {}
        for s, target, _ in self.plan:
            if s.layer is not None and target == s.input.name and s.rule.error_note([]) is not None:
                symbols = (self.names.symbol(s.input.name), self.names.symbol(s.output.name))
                pairs.setdefault(s.rule.name, (s, []))[1].append(symbols)
        return [s.rule.error_note(found) for s, found in pairs.values()]

    def compose(self, expr: tx.Expr, stop: set[str]) -> tx.Expr:
        """Substitute the rule of every gradient ``expr`` reads, down to the loss or a ``stop`` error."""
        if isinstance(expr, tx.Tensor):
            if is_gradient(expr) and expr.name[1:] in self.rule_of and expr.name[1:] not in stop:
                return self.compose(self.rule_of[expr.name[1:]], stop)
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
            rows = self.equation_rows(
                self.grad(p.name), self.typeset(composed), self.label(f"composed-d{p.name}")
            )
            displays.append(rows + self.shape_rows(self.shapes.levels(composed)))
        columns = []
        for tensor in self.chain() if self.batch else []:
            if len(tensor.shape) == 2 and tensor.shape[0] == tx.BATCH:
                columns.append(
                    (self.names.symbol(tensor.name), self.shape(tensor.shape), self.shape(tensor.shape[::-1]))
                )
        notes = sorted(
            {
                note
                for p in self.network.params
                for note in batch_notes(self.compose(self.rule_of[p.name], set()), self.batch)
            }
        )
        self.blocks.append(
            Block("shape-tracking", "Shape tracking", displays, notes=notes, data={"columns": columns})
        )

    # --------------------------------------------------------- conventions

    def conventions(self) -> dict:
        """The conventions the network's types state, each type once, in the order they first appear.

        ``items``: jinja2 sources of the layers' items with their context; ``loss_items``: the loss's;
        ``regions``: where the identities hold (no ReLU input at 0, no tied window).
        """
        inputs: dict[str, tuple[Step, list[str]]] = {}
        for s in self.layers():
            inputs.setdefault(s.rule.name, (s, []))[1].append(self.names.symbol(s.input.name))
        items, stated = [], set()
        for s, found in inputs.values():
            for source in s.rule.latex_conventions:
                if source not in stated:  # a convention two types share (pooling windows) is stated once
                    stated.add(source)
                    items.append({"source": source, "data": s.rule.latex_convention_data(found)})
        loss = self.loss_step.rule
        return {
            "items": items,
            "loss_items": [{"source": source, "data": {}} for source in loss.latex_conventions],
            "regions": [s.rule.region for s, _ in inputs.values() if s.rule.region],
            "reduction": self.spec.reduction,
            "loss_prose": {"before": loss.prose_before, "after": loss.prose_after},
        }

    # --------------------------------------------------------------- all

    def build(self) -> list[Block]:
        self.architecture()
        self.definitions_block()
        self.variables()
        self.forward()
        self.forward_entries()
        self.chain_rule()
        self.loss_gradient()
        self.layer_rules()
        self.bare_rules()
        self.weight_entries()
        self.error_form()
        self.shape_tracking()
        self.blocks.append(Theorems(self).block())
        verification = Verification(self.network, self.records, self.names).block()
        verification.data["ragged"] = self.layout.breakable_math
        if self.layout.breakable_math:
            for group in verification.data["groups"]:
                for row in group["rows"]:
                    row["headline"], row["method"] = map(breakable_math, (row["headline"], row["method"]))
        self.blocks.append(verification)
        return self.blocks


# ----------------------------------------------------------------- helpers


def thousands(n: int) -> str:
    """``61{,}706``: a count with its thousands grouped, as LaTeX math."""
    return f"{n:,}".replace(",", "{,}")


def unbatched(shape: tx.Shape) -> tuple[int, ...]:
    """A tensor's shape for one sample: without the batch axis."""
    return tuple(d for d in shape if d != tx.BATCH)


def is_gradient(tensor: tx.Tensor) -> bool:
    return tensor.name.startswith("d") and len(tensor.name) > 1 and tensor.name[1].isupper()


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


def batch_notes(expr: tx.Expr, batch: int | None) -> list[str]:
    """Where a rule sums over the batch (a contraction of the sample axis)."""
    count = f"$N = {batch}$" if batch else "$N$"
    notes = []
    for node in walk(expr):
        if isinstance(node, tx.MatMul) and node.a.shape[1] == tx.BATCH:
            notes.append(f"The matrix product contracts the sample axis: it sums over the {count} samples.")
        elif isinstance(node, tx.Correlate) and node.weight_form:
            notes.append(f"The correlation contracts the sample axis: it sums over the {count} samples.")
        elif isinstance(node, tx.SumAxes) and 0 in node.axes:
            notes.append(f"The sum runs over the sample axis too ({count} samples).")
    return list(dict.fromkeys(notes))
