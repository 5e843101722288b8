"""Array expressions evaluated at a point in mpmath (the oracle's loss terms, their gradients, dL/dt0, dL/dt1).

:class:`ArrayEvaluator` computes a node of :mod:`symode.arrays.node` element by element at the current mpmath
precision: arrays are lists of mpf (row-major), matrix products are ``fsum`` over rows, element-wise functions
use their definitions (``symode.arrays.node.FUNCTIONS``, derivatives by SymPy) compiled once to mpmath, and a
scalar SymPy sub-expression is evaluated exactly-then-rounded (values substituted as exact rationals, then
``evalf``), as :class:`symode.oracle.routes.Evaluator` does for the scalar form.
"""
from __future__ import annotations

import mpmath
import sympy

from ..arrays import node as N
from ..errors import IntegrationError

__all__ = ["ArrayEvaluator"]

_X = sympy.Dummy("x", real=True)
_COMPILED: dict = {}


def _elementwise(name: str, derivative: bool):
    """mpmath function of one argument for σ (or σ') -- compiled from our own SymPy definition, which holds no
    user text (only the dummy x)."""
    key = (name, derivative)
    fn = _COMPILED.get(key)
    if fn is None:
        expr = N.function_derivative(name, _X) if derivative else N.FUNCTIONS[name](_X)
        fn = _COMPILED[key] = sympy.lambdify([_X], expr, modules="mpmath")
    return fn


def _exact(v) -> sympy.Expr:
    """The exact value of an mpf (or a SymPy number as it is)."""
    if isinstance(v, sympy.Basic):
        return v
    from .routes import _mpf_to_rational  # (its raw-tuple reading keeps the sign: mpf.man_exp drops it)
    return _mpf_to_rational(v)


class ArrayEvaluator:
    """Nodes at a point: ``groups`` maps a group to its values (row-major), ``scalars`` a symbol to its value
    (mpf or exact SymPy numbers); ``digits`` the working precision of scalar SymPy pieces."""

    def __init__(self, groups: dict, scalars: dict, digits: int):
        self.groups = groups
        self.scalars = dict(scalars)
        self.digits = digits
        for g, vals in groups.items():
            for e, v in zip(g.elements, vals):
                self.scalars.setdefault(e, v)
        self._memo: dict = {}

    def scalar_value(self, expr) -> mpmath.mpf:
        expr = sympy.sympify(expr)
        sub = {s: _exact(self.scalars[s]) for s in expr.free_symbols}
        v = expr.xreplace(sub).evalf(self.digits + 5)
        if not (v.is_real and v.is_finite) or v.free_symbols:
            raise IntegrationError(f"{expr} is not a finite real number at this point ({v})")
        return mpmath.mp.make_mpf(sympy.Float(v, self.digits + 5)._mpf_)

    def __call__(self, value) -> list:
        if not isinstance(value, N.Node):
            return [self.scalar_value(value)]
        for n in N.walk([value]):
            if n not in self._memo:
                self._memo[n] = self._one(n, [self._memo[a] for a in n.args])
        return self._memo[value]

    def _one(self, n: N.Node, a: list) -> list:
        op, (r, c) = n.op, n.shape
        size = r * c
        if op == "leaf":
            return [mpmath.mpf(v) if not isinstance(v, sympy.Basic) else self.scalar_value(v)
                    for v in self.groups[n.attr]]
        if op == "scalar":
            return [self.scalar_value(n.attr)]
        if op in ("add", "mul"):
            parts = [x * size if len(x) == 1 else x for x in a]
            if op == "add":
                return [mpmath.fsum(p[i] for p in parts) for i in range(size)]
            return [mpmath.fprod(p[i] for p in parts) for i in range(size)]
        if op == "power":
            e = sympy.sympify(n.attr)
            ex = int(e) if e.is_Integer else mpmath.mpf(e.p) / e.q
            return [x ** ex for x in a[0]]
        if op in ("func", "dfunc"):
            fn = _elementwise(n.attr, op == "dfunc")
            return [mpmath.mpf(fn(x)) for x in a[0]]
        if op == "matmul":
            (rr, m), (_, cc) = n.args[0].shape, n.args[1].shape
            A, B = a
            return [mpmath.fsum(A[i * m + k] * B[k * cc + j] for k in range(m)) for i in range(rr) for j in range(cc)]
        if op == "T":
            rr, cc = n.args[0].shape
            return [a[0][j * cc + i] for i in range(cc) for j in range(rr)]
        if op == "sum":
            return [mpmath.fsum(a[0])]
        if op == "index":
            return [a[0][n.attr[0] * n.args[0].shape[1] + n.attr[1]]]
        if op == "stack":
            return [x[0] for x in a]
        if op == "broadcast":
            return a[0] * size
        if op == "scatter":
            out = [mpmath.mpf(0)] * size
            out[n.attr[0] * c + n.attr[1]] = a[0][0]
            return out
        raise IntegrationError(f"internal: no evaluation of the array operation {op!r}")  # pragma: no cover
