"""Array expressions (:mod:`symode.arrays.node`) as CasADi MX graphs that keep the matrix structure.

Each declared array becomes a slice of the flat input vector (states of ``z``, parameters of ``p``; a matrix
parameter is ``reshape(p[a:b], cols, rows)ᵀ``, the row-major order of the model's θ), and each operation one
MX operation on whole arrays: ``mtimes`` for A·B, element-wise ``*``/``+`` (a scalar broadcasts), the transpose,
sums, and element-wise functions.  The graph therefore grows with the number of layers, not of weights, and so
does generated C.  Scalar sub-expressions and every element-wise function (its defining SymPy expression, e.g.
sigmoid(x) = 1/(1 + exp(-x)), and its derivative) go through :func:`symode.casadi.translate.to_casadi`, the
same operation table as the scalar form, so the two forms compute the same floating-point operations per element.
"""
from __future__ import annotations

import casadi
import sympy

from symode.arrays import node as N
from symode.casadi.translate import nearest_double, to_casadi

__all__ = ["NodeGraph", "flatten_rowmajor"]

_X = sympy.Dummy("x", real=True)


def flatten_rowmajor(m):
    """An r×c matrix as the column of its elements in row-major order (θ's order)."""
    r, c = m.shape
    return m if c == 1 else casadi.reshape(m.T, r * c, 1)


class NodeGraph:
    """Translates nodes to MX over inputs: ``slots`` maps a group to (base vector, offset) of its elements."""

    def __init__(self, slots: dict):
        self.slots = dict(slots)
        self._memo: dict = {}
        self._groups: dict = {}
        self._element = {}  # element symbol -> MX scalar
        for g, (base, off) in self.slots.items():
            for k, e in enumerate(g.elements):
                self._element[e] = base[off + k]

    def bind(self, symbol, value) -> None:
        """Map a scalar symbol that is not a group element (e.g. t) to an MX scalar."""
        self._element[symbol] = value

    def group(self, g: N.Group):
        out = self._groups.get(g)
        if out is None:
            base, off = self.slots[g]
            r, c = g.shape
            v = base[off:off + r * c]
            out = self._groups[g] = v if c == 1 else casadi.reshape(v, c, r).T
        return out

    def __call__(self, value):
        if not isinstance(value, N.Node):
            return self._scalar(sympy.sympify(value))
        for n in N.walk([value]):
            if n not in self._memo:
                self._memo[n] = self._one(n, [self._memo[a] for a in n.args])
        return self._memo[value]

    def _scalar(self, expr):
        mapping = {s: self._element[s] for s in expr.free_symbols}
        return to_casadi([expr], mapping)[0] if mapping else casadi.MX(nearest_double(expr))

    def _elementwise(self, expr, x):
        """The SymPy expression ``expr`` in the dummy x, applied element-wise to the MX array ``x``."""
        return to_casadi([expr], {_X: x}, elementwise=True)[0]

    def _one(self, n: N.Node, a: list):
        op = n.op
        if op == "leaf":
            return self.group(n.attr)
        if op == "scalar":
            return self._scalar(n.attr)
        if op == "add":
            out = a[0]
            for v in a[1:]:
                out = out + v
            return out
        if op == "mul":
            out = a[0]
            for v in a[1:]:
                out = out * v
            return out
        if op == "power":
            return self._elementwise(_X ** n.attr, a[0])
        if op == "func":
            return self._elementwise(N.FUNCTIONS[n.attr](_X), a[0])
        if op == "dfunc":
            return self._elementwise(N.function_derivative(n.attr, _X), a[0])
        if op == "matmul":
            return casadi.mtimes(a[0], a[1])
        if op == "T":
            return a[0].T
        if op == "sum":
            return casadi.sum1(casadi.sum2(a[0]))
        if op == "index":
            return a[0][n.attr[0], n.attr[1]]
        if op == "stack":
            return casadi.vertcat(*a)
        if op == "broadcast":
            return casadi.repmat(a[0], *n.shape)
        if op == "scatter":
            r, c = n.shape
            i, j = n.attr
            return casadi.MX(casadi.Sparsity.triplet(r, c, [i], [j]), a[0])
        raise ValueError(f"internal: no CasADi translation of the array operation {op!r}")  # pragma: no cover
