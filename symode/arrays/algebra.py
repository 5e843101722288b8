"""The array algebra the expression parser uses where a name is a vector or matrix (see
:func:`symode.expr.parse_expression`'s ``algebra``).

Grammar added to the scalar one (numpy's meanings): ``A @ B`` is the matrix product; ``+ - * / **`` are
element-wise, a scalar combining with any shape; ``f(x)`` applies any allowed function element-wise (and
``relu``); ``sum(x)`` adds all elements; ``transpose(x)`` is xᵀ; ``x[i]`` / ``W[i, j]`` pick one element (integer literals, from 0);
``[a, b, c]`` is a column vector of scalars.
Shapes are checked as the expression is built: a mismatch is a SpecError naming both shapes.
"""
from __future__ import annotations

import sympy

from ..errors import SpecError
from ..expr import LIMITS
from . import node as N


def _out(value):
    """A scalar result goes back to the parser as a SymPy expression (z[0] - 1 stays plain SymPy)."""
    return value.attr if isinstance(value, N.Node) and value.op == "scalar" else value


class ArrayAlgebra:
    """Builds :class:`~symode.arrays.node.Node` values for the parser (scalar results as SymPy)."""

    functions = frozenset({"sum", "relu", "transpose"})

    @staticmethod
    def is_array(value) -> bool:
        return isinstance(value, N.Node)

    def add(self, items):
        return _out(N.add(*items))

    def mul(self, items):
        return _out(N.mul(*items))

    def neg(self, x):
        return _out(N.neg(x))

    def reciprocal(self, x):
        return _out(N.power(x, -1))

    def power(self, x, y):
        if isinstance(y, N.Node):
            raise SpecError("an exponent must be a scalar number, not an array")
        y = sympy.sympify(y)
        if not y.is_number:
            raise SpecError("the exponent of an array power must be a number")
        if abs(y) > LIMITS["max_exponent"]:
            raise SpecError(f"the exponent {y} exceeds the cap |exponent| <= {LIMITS['max_exponent']} "
                            "(LIMITS['max_exponent'])")
        return _out(N.power(x, y))

    def matmul(self, a, b):
        if not (isinstance(a, N.Node) and isinstance(b, N.Node)) or a.is_scalar or b.is_scalar:
            raise SpecError("'@' multiplies a matrix with a matrix or a vector; use '*' for a scalar factor")
        return _out(N.matmul(a, b))

    def index(self, x, indices: tuple):
        if not isinstance(x, N.Node) or x.is_scalar:
            raise SpecError("only a vector or a matrix can be indexed")
        r, c = x.shape
        if len(indices) == 1 and c == 1:
            i, j = indices[0], 0
        elif len(indices) == 2:
            i, j = indices
        else:
            raise SpecError(f"a {r}x{c} array takes {'one index' if c == 1 else 'two indices'}, e.g. "
                            f"{'z[0]' if c == 1 else 'W[0, 1]'}")
        return _out(N.index(x, i, j))

    def stack(self, items):
        if len(items) < 2:
            raise SpecError("a vector literal [a, b, ...] needs at least two elements")
        return _out(N.stack(items))

    def call(self, name: str, x):
        if name == "sum":
            return _out(N.total(x)) if isinstance(x, N.Node) else x
        if name == "transpose":
            return _out(N.transpose(x)) if isinstance(x, N.Node) else x
        return _out(N.func(name, x))
