"""Expressions printed in the document's own syntax (so a corrected right-hand side can be pasted back).

The grammar of a claim (``symode.expr`` plus ``integral(g, s, lo, hi)``) has numbers, declared names,
``+ - * / **`` and the functions sin cos tan exp log sqrt tanh sinh cosh atan asinh abs.  SymPy forms
outside it are rewritten where an equivalent form exists for generic values (``sign(x)`` as ``x/abs(x)``,
``Max(a, b)`` as ``(a + b + abs(a - b))/2``, ``Heaviside(x)`` as ``(1 + x/abs(x))/2``, ``E`` as
``exp(1)``); anything else (``Piecewise``, ``pi``, special functions, floats) raises :class:`Unprintable`
and the caller falls back to a form that is printable.
"""
from __future__ import annotations

import sympy
from sympy.core.function import AppliedUndef
from sympy.printing.str import StrPrinter

from .lossmodel import AFTER

__all__ = ["Unprintable", "document_syntax"]

_ALLOWED = {"sin", "cos", "tan", "exp", "log", "tanh", "sinh", "cosh", "atan", "asinh"}


class Unprintable(ValueError):
    """The expression has a node the document grammar cannot state."""


class _DocPrinter(StrPrinter):
    def _print_Function(self, e):
        name = type(e).__name__
        if isinstance(e, AppliedUndef):
            # a solution value x(T) / lambda_x(T, after) of the model, or an abstract function f(a, b)
            args = ", ".join(self._print(a) for a in e.args)
            return f"{name[:-len(AFTER)]}({args}, after)" if name.endswith(AFTER) else f"{name}({args})"
        if name not in _ALLOWED or len(e.args) != 1:
            raise Unprintable(f"{name} is not in the document grammar")
        return f"{name}({self._print(e.args[0])})"

    def _print_Sum(self, e):
        if len(e.limits) != 1:
            raise Unprintable("only sums over one index")
        var, lo, hi = e.limits[0]
        return f"sum({self._print(e.function)}, {self._print(var)}, {self._print(lo)}, {self._print(hi)})"

    def _print_Indexed(self, e):
        if len(e.indices) != 1:
            raise Unprintable("only data with one index")
        return f"{self._print(e.base.label)}[{self._print(e.indices[0])}]"

    def _print_Abs(self, e):
        return f"abs({self._print(e.args[0])})"

    def _print_Exp1(self, e):
        return "exp(1)"

    def _print_Integral(self, e):
        if len(e.limits) != 1 or len(e.limits[0]) != 3:
            raise Unprintable("only definite integrals over one variable")
        var, lo, hi = e.limits[0]
        return f"integral({self._print(e.function)}, {self._print(var)}, {self._print(lo)}, {self._print(hi)})"

    def _print_Symbol(self, e):
        if e.name.startswith("_") or "__" in e.name:
            raise Unprintable(f"generated name {e.name}")
        return e.name

    def _print_Dummy(self, e):
        raise Unprintable("a dummy variable")

    def _print_Float(self, e):
        raise Unprintable("a binary float")

    def _print_Rational(self, e):
        return f"{e.p}/{e.q}"

    def _print_Pi(self, e):
        raise Unprintable("pi is not in the document grammar")

    def emptyPrinter(self, e):
        raise Unprintable(f"{type(e).__name__} is not in the document grammar")


def _unsupported(self, e):
    raise Unprintable(f"{type(e).__name__} is not in the document grammar")


for _name in ("Piecewise", "ImaginaryUnit", "Infinity", "NegativeInfinity", "ComplexInfinity", "NaN",
              "Derivative", "Subs", "Relational", "DiracDelta", "Order", "Limit", "Lambda", "Mod",
              "ExprCondPair", "BooleanTrue", "BooleanFalse", "EulerGamma", "Catalan", "GoldenRatio", "Tuple"):
    setattr(_DocPrinter, f"_print_{_name}", _unsupported)


def _pairwise(args, sign):
    out = args[0]
    for a in args[1:]:
        out = (out + a + sign * sympy.Abs(out - a)) / 2
    return out


def _rewritten(expr):
    """``expr`` with sign, Heaviside, Max and Min in terms of abs (equal wherever the argument is nonzero)."""
    expr = expr.replace(sympy.sign, lambda u: u / sympy.Abs(u))
    expr = expr.replace(sympy.Heaviside, lambda u, *h0: (1 + u / sympy.Abs(u)) / 2)
    expr = expr.replace(sympy.Max, lambda *args: _pairwise(args, 1))
    return expr.replace(sympy.Min, lambda *args: _pairwise(args, -1))


def document_syntax(expr) -> str:
    """``expr`` as text of the claim grammar (raises :class:`Unprintable` when that is impossible)."""
    return _DocPrinter({"order": None}).doprint(_rewritten(sympy.sympify(expr)))
