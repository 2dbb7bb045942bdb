"""The plain-text reading of the expression language, for proof statements and the CLI.

One of the readings of ``derive.texpr`` (beside the symbolic, NumPy and LaTeX ones): a statement
such as ``dL/dW2 = F^T · dL/dZ2`` is a formula a reader can evaluate, and the property test of
``tests/test_readings.py`` does, against the symbolic reading.
"""

from __future__ import annotations

from gradproof.derive import texpr as tx


def gradient_name(name: str) -> str:
    """The name of the gradient of tensor ``name``: ``Z1`` -> ``dZ1`` (``dL/dZ1``)."""
    return f"d{name}"


def tensor_label(name: str) -> str:
    """``dZ1`` reads as ``dL/dZ1``; other names as themselves."""
    if name.startswith("d") and len(name) > 1 and name[1].isupper():
        return f"dL/{name}"
    return name


class TextReading:
    """Expr -> one line of text; brackets follow the tree (``texpr.Printing``).

    A difference and ``1 - a`` print their own brackets, so as operands they bind like atoms.
    """

    SELF_BRACKETED = (tx.Difference, tx.OneMinus)
    name = "text"

    def __call__(self, expr: tx.Expr) -> str:
        return tx.reading_method(self, expr)(expr)

    def _operand(self, operand: tx.Expr, parent: tx.Expr, loosest: int = tx.POSTFIX) -> str:
        printed = self(operand)
        bare = isinstance(operand, self.SELF_BRACKETED) or not tx.brackets_needed(operand, parent, loosest)
        return printed if bare else f"({printed})"

    def read_Tensor(self, e: tx.Tensor) -> str:
        return tensor_label(e.name)

    def read_Correlate(self, e: tx.Correlate) -> str:
        return f"correlate({self(e.x)}, {self(e.kernel)})"

    def read_FullConvolve(self, e: tx.FullConvolve) -> str:
        return f"full_convolve({self(e.grad)}, {self(e.kernel)})"

    def read_MatMul(self, e: tx.MatMul) -> str:
        return f"{self._operand(e.a, e)} · {self._operand(e.b, e)}"

    def read_Transpose(self, e: tx.Transpose) -> str:
        return f"{self._operand(e.a, e)}^T"

    def read_Reshape(self, e: tx.Reshape) -> str:
        return f"reshape({self(e.a)}, {'x'.join(str(d) for d in e.dims)})"

    def read_SumAxes(self, e: tx.SumAxes) -> str:
        return f"sum({self(e.a)}, axes={e.axes})"

    def read_AddBias(self, e: tx.AddBias) -> str:
        return f"{self._operand(e.a, e, tx.ADDITIVE)} + {self._operand(e.bias, e)}"

    def read_Product(self, e: tx.Product) -> str:
        return f"{self._operand(e.a, e)} ⊙ {self._operand(e.b, e)}"

    def read_Difference(self, e: tx.Difference) -> str:
        return f"({self(e.a)} - {self._operand(e.b, e)})"

    def read_OneMinus(self, e: tx.OneMinus) -> str:
        return f"(1 - {self._operand(e.a, e)})"

    def read_BatchScale(self, e: tx.BatchScale) -> str:
        return f"{self._operand(e.a, e)} / N" if e.reduction == "mean" else self(e.a)

    def read_Relu(self, e: tx.Relu) -> str:
        return f"relu({self(e.a)})"

    def read_StepMask(self, e: tx.StepMask) -> str:
        return f"[{self(e.a)} > 0]"

    def read_Sigmoid(self, e: tx.Sigmoid) -> str:
        return f"sigmoid({self(e.a)})"

    def read_Tanh(self, e: tx.Tanh) -> str:
        return f"tanh({self(e.a)})"

    def read_MaxPool(self, e: tx.MaxPool) -> str:
        return f"maxpool{e.size}x{e.size}({self(e.a)})"

    def read_RouteMax(self, e: tx.RouteMax) -> str:
        return f"route_max({self(e.a)}, {self(e.grad)})"

    def read_BinaryCrossEntropyWithLogits(self, e: tx.BinaryCrossEntropyWithLogits) -> str:
        return f"{e.reduction} BCE(sigmoid({self(e.logits)}), {self(e.target)})"

    def read_HalfSquaredError(self, e: tx.HalfSquaredError) -> str:
        return f"{e.reduction} 1/2 ({self(e.output)} - {self(e.target)})^2"


text = TextReading()
