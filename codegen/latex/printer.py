"""The LaTeX reading of the expression language: one ``read_<Op>`` per operation.

It mirrors ``derive.symbolic.SymbolicReading``: the same tree that the prover
checked entry by entry is typeset here, so the documents never carry a
hand-written copy of a gradient formula. ``definitions`` states what each
operator symbol means, for the notation section of a derivation.

An ``atom`` hook lets a caller print chosen sub-trees as something else (a
shape, an error name ``E_o``): that is how the shape tracking and the error
form are printed from the same rules.
"""

from __future__ import annotations

from collections.abc import Callable

from gradproof.codegen.latex.names import Names
from gradproof.derive import texpr as tx

TIMES = r" \times "
TIGHT_TIMES = (
    r"{\times}"  # no space around the sign: (N{\times}1{\times}6{\times}6), for shapes inside formulas
)


def shape_tex(shape: tx.Shape, batch: int | None = None, compact: bool = False) -> str:
    """``(N \\times 1 \\times 6 \\times 6)``; ``batch`` replaces ``N`` when given; ``()`` is a scalar."""
    if not shape:
        return r"(1)"
    dims = [str(batch) if d == tx.BATCH and batch is not None else str(d) for d in shape]
    return "(" + (TIGHT_TIMES if compact else TIMES).join(dims) + ")"


def batch_size(spec_batch: int) -> int | None:
    """The number printed for ``N``: the spec's batch when it names one (> 1), else the letter."""
    return spec_batch if spec_batch > 1 else None


BRACKET_STYLES = ("sized", "nested", "plain")
# "nested" brackets: sized by how many bracket levels they enclose, so that they may be split across lines.
_NESTED_SIZES = ("", r"\bigl", r"\Bigl")
_OPENERS = ("\\left(", "\\bigl(", "\\Bigl(", "\\biggl(", "(")
_CLOSERS = ("\\right)", "\\bigr)", "\\Bigr)", "\\biggr)", ")")
SHORT = 24  # content this short (in letters) with a fraction in it gets sized brackets even when nested


def bracket_depth(latex: str) -> int:
    """How deeply round brackets nest in ``latex``."""
    depth = deepest = i = 0
    while i < len(latex):
        opened = next((o for o in _OPENERS if latex.startswith(o, i)), None)
        closed = None if opened else next((c for c in _CLOSERS if latex.startswith(c, i)), None)
        if opened:
            depth += 1
            deepest = max(deepest, depth)
            i += len(opened)
        elif closed:
            depth -= 1
            i += len(closed)
        else:
            i += 1
    return deepest


class LatexReading:
    """Typeset an expression; ``atom(expr)`` may return a string to print a sub-tree as is."""

    name = "latex"

    def __init__(
        self,
        names: Names,
        atom: Callable[[tx.Expr], str | None] | None = None,
        batch: int | None = None,
        brackets: str = "nested",
        inline: bool = False,
    ):
        self.names = names
        self.atom = atom or (lambda expr: None)
        self.batch = batch
        if brackets not in BRACKET_STYLES:
            raise ValueError(f"brackets must be one of {BRACKET_STYLES}")
        # sized brackets grow with their content but cannot be split across lines; nested and plain ones can
        self.brackets = brackets
        self.inline = inline

    def __call__(self, expr: tx.Expr) -> str:
        replaced = self.atom(expr)
        if replaced is not None:
            return replaced
        return tx.reading_method(self, expr)(expr)

    def wrap(self, inner: str) -> str:
        """``(inner)`` in this reading's brackets."""
        if self.brackets == "plain":
            return f"({inner})"
        if self.brackets == "sized":
            return rf"\left({inner}\right)"
        if r"\frac" in inner and len(inner) <= 4 * SHORT:
            from gradproof.codegen.latex.layout import visible_width

            if visible_width(inner) <= SHORT and bracket_depth(inner) == 0:
                return rf"\left({inner}\right)"
        size = _NESTED_SIZES[min(bracket_depth(inner), len(_NESTED_SIZES) - 1)]
        if r"\frac" in inner and size in ("", r"\bigl"):
            size = r"\Bigl"
        if not size:
            return f"({inner})"
        return rf"{size}({inner}{size[:-1]}r)"

    def _operand(self, expr: tx.Expr, parent: tx.Expr) -> str:
        """An operand, bracketed when it binds looser than a postfix (``a \\odot b \\odot c`` is flat)."""
        text = self(expr)
        # a batch sum prints as its operand, so its operand decides the brackets
        while self.atom(expr) is None and isinstance(expr, tx.BatchScale) and expr.reduction == "sum":
            expr = expr.a
        if self.atom(expr) is None and parent is not None and tx.brackets_needed(expr, parent):
            return self.wrap(text)
        return text

    def apply(self, head: str, *args: str) -> str:
        """``head(arg, ...)`` with this reading's brackets (a sized bracket hugs the head)."""
        wrapped = self.wrap(r",\, ".join(args))
        return head + (r"\!" if wrapped.startswith(r"\left") else "") + wrapped

    def read_Tensor(self, e: tx.Tensor) -> str:
        return self.names.inline(e.name) if self.inline else self.names.tensor(e.name)

    def read_Correlate(self, e: tx.Correlate) -> str:
        return self.apply(r"\operatorname{corr}", self(e.x), self(e.kernel))

    def read_FullConvolve(self, e: tx.FullConvolve) -> str:
        return self.apply(r"\operatorname{conv}_{\mathrm{full}}", self(e.grad), self(e.kernel))

    def read_MatMul(self, e: tx.MatMul) -> str:
        return rf"{self._operand(e.a, e)} \cdot {self._operand(e.b, e)}"

    def read_Transpose(self, e: tx.Transpose) -> str:
        inner = self(e.a)
        if self.atom(e.a) is None and not isinstance(e.a, tx.Tensor):
            inner = self.wrap(inner)
        elif self.atom(e.a) is None and inner.startswith(r"\frac"):
            inner = self.wrap(inner)
        return rf"{inner}^{{\top}}"

    def read_Reshape(self, e: tx.Reshape) -> str:
        target = TIGHT_TIMES.join(str(self.batch) if d == tx.BATCH and self.batch else str(d) for d in e.dims)
        return self.apply(rf"\operatorname{{reshape}}_{{{target}}}", self(e.a))

    def read_SumAxes(self, e: tx.SumAxes) -> str:
        letters = axis_letters(len(e.a.shape), self.names.sample)
        over = ",".join(letters[ax] for ax in e.axes)
        return rf"\sum_{{{over}}} {self._operand(e.a, e)}"

    def read_AddBias(self, e: tx.AddBias) -> str:
        return f"{self(e.a)} + {self(e.bias)}"

    def read_Product(self, e: tx.Product) -> str:
        return rf"{self._operand(e.a, e)} \odot {self._operand(e.b, e)}"

    def read_Difference(self, e: tx.Difference) -> str:
        right = self(e.b)
        if self.atom(e.b) is None and tx.brackets_needed(e.b, e, tx.MULTIPLICATIVE):
            right = self.wrap(right)
        return f"{self(e.a)} - {right}"

    def read_OneMinus(self, e: tx.OneMinus) -> str:
        return f"1 - {self._operand(e.a, e)}"

    def read_BatchScale(self, e: tx.BatchScale) -> str:
        if e.reduction == "sum":
            return self(e.a)
        return rf"\frac{{1}}{{N}} {self._operand(e.a, e)}"

    def read_Relu(self, e: tx.Relu) -> str:
        return self.apply(r"\operatorname{ReLU}", self(e.a))

    def read_StepMask(self, e: tx.StepMask) -> str:
        return rf"\mathbf{{1}}[{self(e.a)} > 0]"

    def read_Sigmoid(self, e: tx.Sigmoid) -> str:
        return self.apply(r"\sigma", self(e.a))

    def read_Tanh(self, e: tx.Tanh) -> str:
        return self.apply(r"\tanh", self(e.a))

    def read_MaxPool(self, e: tx.MaxPool) -> str:
        return self.apply(rf"\operatorname{{maxpool}}_{{{e.size}\times {e.size}}}", self(e.a))

    def read_RouteMax(self, e: tx.RouteMax) -> str:
        return self.apply(rf"\operatorname{{route}}_{{{e.size}\times {e.size}}}", self(e.a), self(e.grad))

    def _reduce(self, reduction: str) -> str:
        over = rf"\sum_{{{self.names.sample}}}"
        return rf"\frac{{1}}{{N}} {over}" if reduction == "mean" else over

    def _sample(self, e: tx.Expr) -> str:
        """Sample ``b`` of a batched operand of the loss: ``Y^{(b)}``, ``Z_{2}^{(b)}``."""
        if isinstance(e, tx.Tensor) and self.atom(e) is None:
            return f"{self(e)}^{{({self.names.sample})}}"
        return self(e)

    def read_BinaryCrossEntropyWithLogits(self, e: tx.BinaryCrossEntropyWithLogits) -> str:
        y, z = self._sample(e.target), self._sample(e.logits)
        if self.brackets == "sized":
            return (
                rf"-{self._reduce(e.reduction)} \left[{y} \log \sigma({z})"
                rf" + (1 - {y}) \log\left(1 - \sigma({z})\right)\right]"
            )
        # brackets of a fixed size, so that a narrow line may break the sum between its two terms
        return (
            rf"-{self._reduce(e.reduction)} \Bigl[{y} \log \sigma({z})"
            rf" + (1 - {y}) \log\bigl(1 - \sigma({z})\bigr)\Bigr]"
        )

    def read_HalfSquaredError(self, e: tx.HalfSquaredError) -> str:
        norm = rf"\left\lVert {self._sample(e.output)} - {self._sample(e.target)} \right\rVert^{{2}}"
        return rf"{self._reduce(e.reduction)} \frac{{1}}{{2}} {norm}"


def axis_letters(rank: int, sample: str = "b") -> list[str]:
    """Index letters of a batch-first tensor's axes: ``sample`` is the sample, ``c`` the channel."""
    return {1: ["k"], 2: [sample, "k"], 3: [sample, "c", "k"], 4: [sample, "c", "i", "j"]}.get(
        rank, [f"a_{{{i}}}" for i in range(rank)]
    )


def definitions(sample: str = "b") -> dict[type[tx.Expr], tuple[str, str]]:
    """What each operator means, for the notation list of a derivation: a formula and the words beside it.

    Indices start at 0; ``sample`` is the index of the sample in the batch (``Names.sample``), ``c`` a
    channel, ``k`` a filter (as in the entries of a filter gradient), ``i, j`` a position.
    """
    b = sample
    s = "r" if sample == "s" else "s"  # the side of a pooling window
    return {
        tx.Correlate: (
            rf"\operatorname{{corr}}(X, K)_{{{b},k,i,j}} = "
            rf"\sum_{{c,m,n}} X_{{{b},c,i+m,j+n}}\, K_{{k,c,m,n}}",
            r"valid cross-correlation of an input $X$ with filters $K$ (stride 1, no padding); "
            r"with a batched gradient $G$ in place of $K$, the sum runs over the samples instead: "
            rf"$\operatorname{{corr}}(X, G)_{{k,c,m,n}} = "
            rf"\sum_{{{b},i,j}} X_{{{b},c,i+m,j+n}}\, G_{{{b},k,i,j}}$",
        ),
        tx.FullConvolve: (
            rf"\operatorname{{conv}}_{{\mathrm{{full}}}}(G, K)_{{{b},c,h,w}} = "
            rf"\sum_{{k,m,n}} G_{{{b},k,h-m,w-n}}\, K_{{k,c,m,n}}",
            r"full convolution; entries of $G$ outside its range count as $0$",
        ),
        tx.MatMul: (r"(A \cdot B)_{i,j} = \sum_{k} A_{i,k} B_{k,j}", "matrix product"),
        tx.Transpose: (r"(A^{\top})_{i,j} = A_{j,i}", "transpose"),
        tx.Reshape: (
            r"\operatorname{reshape}_{d}(A)",
            r"the entries of $A$ read in row-major order and laid out with shape $d$",
        ),
        tx.SumAxes: (
            rf"\textstyle\sum_{{{b},i,j}} A",
            "sum over the axes named below the sign; the other axes stay",
        ),
        tx.Product: (r"(A \odot B)_{i} = A_{i} B_{i}", "element-wise (Hadamard) product of equal shapes"),
        tx.StepMask: (
            r"\mathbf{1}[Z > 0]_{i}",
            r"$1$ where $Z_{i} > 0$, $0$ elsewhere: the derivative of ReLU",
        ),
        tx.Sigmoid: (r"\sigma(z) = \frac{1}{1 + e^{-z}}", "logistic sigmoid, element-wise"),
        tx.Relu: (r"\operatorname{ReLU}(z) = \max(0, z)", "element-wise"),
        tx.Tanh: (r"\tanh(z) = \frac{e^{z} - e^{-z}}{e^{z} + e^{-z}}", "hyperbolic tangent, element-wise"),
        tx.MaxPool: (
            rf"\operatorname{{maxpool}}_{{{s}\times {s}}}(A)_{{{b},c,i,j}} = "
            rf"\max_{{0 \le p,q < {s}}} A_{{{b},c,{s}i+p,{s}j+q}}",
            rf"maximum of each ${s} \times {s}$ window, stride ${s}$",
        ),
        tx.RouteMax: (
            rf"\operatorname{{route}}_{{{s}\times {s}}}(A, G)_{{{b},c,{s}i+p,{s}j+q}} = G_{{{b},c,i,j}}",
            r"if $(p,q)$ is the first maximum of its window of $A$ in row-major order, else $0$: "
            r"each window's gradient goes to the entry that won the pooling",
        ),
    }
