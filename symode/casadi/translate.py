"""SymPy -> CasADi translation through one explicit table.

:func:`to_casadi` walks SymPy expression trees and rebuilds them from CasADi operations.  Every SymPy head
that may be translated is listed in :data:`OPERATIONS`; any other head raises
:class:`~symode.errors.TranslationError` naming it, so an expression is either translated operation by
operation or refused -- never approximated silently.

Numbers
-------
Exact numbers become the nearest double (:func:`nearest_double`): an ``Integer`` or ``Rational`` p/q is
rounded once, correctly (``float(Fraction(p, q))``), and ``pi``/``E``/``Float`` likewise.  All float64
routes therefore compute with the nearest double to each constant; the high-precision oracle uses the exact
value, and the difference (at most half an ulp per constant) is part of the float64 error budget.  Inside a
product a rational coefficient p/q is applied as ``(p * rest) / q`` so that ``x/10`` is one correctly
rounded division rather than ``x * 0.1`` (two roundings).

Powers (measured against mpmath at 40 digits, 3000 points in ±[0.1, 3], CasADi 3.8.2 / glibc):

========================  =====================================  ==================
exponent                  CasADi operation                       max error (ulps)
========================  =====================================  ==================
2                         ``sq(x)`` = x*x                        0.50
-1                        ``1/x``                                0.50
1/2                       ``sqrt(x)``                            0.50 (IEEE)
other integers n          ``pow(x, n)`` (libm)                   0.50 (n = 3..16, -2..-7)
                          (CasADi's own SX expansion by repeated
                          squaring: 1.3 for n=3, 2.6 for n=5,
                          10 for n=16 -- hence not used)
other rationals p/q       ``pow(x, nearest_double(p/q))``        pow + |ln x| * 2^-54
symbolic exponent         ``pow(x, y)``                          libm pow
========================  =====================================  ==================

SX simplifies ``pow(x, n)`` with an integer-valued constant n into repeated squaring as the node is
built; :func:`_pow_node` switches CasADi's global "simplification on the fly" off for that one node
construction (restored in ``finally``), which keeps the libm ``pow``.  Like all CasADi graph construction
this is not thread-safe.

Domains follow libm: ``log`` of a negative number, ``sqrt`` of a negative number or ``x**(1/3)`` at
negative x give NaN (SymPy would give a complex value); callers check finiteness of every result.
"""
from __future__ import annotations

import contextlib
from fractions import Fraction
from typing import Callable, Mapping, Sequence

import casadi
import sympy

from symode.casadi.doubles import nearest_double
from symode.errors import TranslationError
from symode.expr import Unsupported, by_head, register_backend

__all__ = ["OPERATIONS", "to_casadi", "nearest_double"]

# -----------------------------------------------------------------------------------------------
# builders


@contextlib.contextmanager
def _no_simplification():
    """Switch CasADi's SX simplification on the fly off for the duration (restored in ``finally``)."""
    previous = casadi.GlobalOptions.getSimplificationOnTheFly()
    casadi.GlobalOptions.setSimplificationOnTheFly(False)
    try:
        yield
    finally:
        casadi.GlobalOptions.setSimplificationOnTheFly(previous)


def _pow_node(base, exponent: float):
    """``pow(base, exponent)`` as a libm pow node (see the module docstring for why)."""
    with _no_simplification():
        return casadi.power(base, exponent)


def _integer_power(base, n: int):
    if n == 0:
        return None  # handled by the caller (needs the CasADi kind for the constant 1)
    if n == 1:
        return base
    if n == 2:
        return base ** 2  # CasADi makes this sq(x) = x*x: one correctly rounded multiplication
    if n == -1:
        return 1.0 / base  # one correctly rounded division
    return _pow_node(base, float(n))


class _Plan:
    """What a node needs translated first (``children``) and how to combine them (``build``)."""

    __slots__ = ("children", "build")

    def __init__(self, children: Sequence[sympy.Basic], build: Callable[[list], object]):
        self.children = tuple(children)
        self.build = build


def _fold(op, values):
    result = values[0]
    for v in values[1:]:
        result = op(result, v)
    return result


def _plan_add(expr, ctx):
    return _Plan(expr.args, lambda a: _fold(lambda x, y: x + y, a))


def _plan_mul(expr, ctx):
    """Product as (numerator factors) / (denominator factors).

    Factors ``b**(-n)`` with a negative integer exponent go to the denominator as ``b**n``; a rational
    coefficient p/q contributes p to the numerator and q to the denominator.  Folded left in SymPy's
    canonical argument order.
    """
    coeff_num = 1
    coeff_den = 1
    coeff_float = None
    num_nodes: list[sympy.Basic] = []
    den_nodes: list[sympy.Basic] = []
    for arg in expr.args:
        if isinstance(arg, sympy.Rational):
            coeff_num *= int(arg.p)
            coeff_den *= int(arg.q)
        elif isinstance(arg, sympy.Float):
            coeff_float = arg if coeff_float is None else coeff_float * arg
        elif (isinstance(arg, sympy.Pow) and isinstance(arg.exp, sympy.Integer) and arg.exp < 0):
            den_nodes.append(arg.base if arg.exp == -1 else sympy.Pow(arg.base, -arg.exp, evaluate=False))
        else:
            num_nodes.append(arg)
    n_num = len(num_nodes)
    if abs(coeff_num) > 2**53 or coeff_den > 2**53:
        # p or q is not a double: one rounded coefficient beats rounding both
        coeff_float = sympy.Rational(coeff_num, coeff_den) * (1 if coeff_float is None else coeff_float)
        coeff_num, coeff_den = 1, 1

    def build(values):
        nums = list(values[:n_num])
        dens = list(values[n_num:])
        if coeff_float is not None:
            nums.insert(0, ctx.constant(nearest_double(coeff_float)))
        if coeff_num not in (1, -1):
            nums.insert(0, ctx.constant(coeff_num))
        if coeff_den != 1:
            dens.insert(0, ctx.constant(coeff_den))
        result = _fold(lambda x, y: x * y, nums) if nums else ctx.constant(1)
        if coeff_num == -1:
            result = -result
        if dens:
            result = result / _fold(lambda x, y: x * y, dens)
        return result

    return _Plan(num_nodes + den_nodes, build)


def _plan_pow(expr, ctx):
    base, exponent = expr.args
    if isinstance(exponent, sympy.Integer):
        n = int(exponent)
        if n == 0:
            return _Plan((), lambda a: ctx.constant(1))
        return _Plan((base,), lambda a: _integer_power(a[0], n))
    if isinstance(exponent, sympy.Rational):
        if exponent == sympy.Rational(1, 2):
            return _Plan((base,), lambda a: casadi.sqrt(a[0]))
        value = nearest_double(exponent)
        return _Plan((base,), lambda a: _pow_node(a[0], value))
    if isinstance(exponent, sympy.Float):
        value = nearest_double(exponent)
        if value.is_integer() and value != 0 and abs(value) <= 2**31:
            return _Plan((base,), lambda a: _integer_power(a[0], int(value)))
        return _Plan((base,), lambda a: _pow_node(a[0], value))
    if base is sympy.E:  # SymPy normally writes exp(x); kept for unevaluated trees
        return _Plan((exponent,), lambda a: casadi.exp(a[0]))
    return _Plan((base, exponent), lambda a: casadi.power(a[0], a[1]))


def _unary(fn):
    def plan(expr, ctx):
        if len(expr.args) != 1:
            raise TranslationError(f"no CasADi translation for {expr.func.__name__} with "
                                   f"{len(expr.args)} arguments (in {_short(expr)})")
        return _Plan(expr.args, lambda a: fn(a[0]))
    return plan


def _nary(fn):
    return lambda expr, ctx: _Plan(expr.args, lambda a: _fold(fn, a))


def _binary(fn):
    def plan(expr, ctx):
        return _Plan(expr.args, lambda a: fn(a[0], a[1]))
    return plan


def _plan_heaviside(expr, ctx):
    # SymPy: Heaviside(x, H0) is 0 for x < 0, H0 at x = 0, 1 for x > 0 (H0 = 1/2 by default).
    x = expr.args[0]
    h0 = expr.args[1] if len(expr.args) > 1 else sympy.Rational(1, 2)
    if not h0.is_number:
        raise TranslationError(f"no CasADi translation for Heaviside with a symbolic value at 0 "
                               f"(in {_short(expr)})")
    h0_value = nearest_double(h0)

    def build(a):
        v = a[0]
        return casadi.if_else(v > 0, ctx.constant(1), casadi.if_else(v < 0, ctx.constant(0),
                                                                   ctx.constant(h0_value)))
    return _Plan((x,), build)


def _plan_piecewise(expr, ctx):
    pairs = expr.args
    if pairs[-1].cond is not sympy.true:
        raise TranslationError(f"no CasADi translation for a Piecewise without a final 'otherwise' "
                               f"(True) branch: its value is undefined where no condition holds "
                               f"(in {_short(expr)}); add an otherwise branch")
    children = []
    for pair in pairs[:-1]:
        children.extend((pair.expr, pair.cond))
    children.append(pairs[-1].expr)

    def build(a):
        result = a[-1]
        for k in range(len(pairs) - 2, -1, -1):
            result = casadi.if_else(a[2 * k + 1], a[2 * k], result)
        return result
    return _Plan(children, build)


def _plan_constant(expr, ctx):
    value = nearest_double(expr)
    return _Plan((), lambda a: ctx.constant(value))


def _plan_boolean_constant(expr, ctx):
    value = 1.0 if expr is sympy.true else 0.0
    return _Plan((), lambda a: ctx.constant(value))


def _plan_symbol(expr, ctx):
    if expr not in ctx.mapping:
        known = ", ".join(sorted(str(s) for s in ctx.mapping)) or "none"
        hint = ""
        if any(str(s) == str(expr) for s in ctx.mapping):
            hint = (" (a symbol of the same name but other assumptions is mapped: symode symbols are "
                    "sympy.Symbol(name, real=True))")
        raise TranslationError(f"free symbol '{expr}' has no CasADi counterpart in the mapping{hint} "
                               f"(mapped symbols: {known}); declare it as a state, parameter or time")
    value = ctx.mapping[expr]
    return _Plan((), lambda a: value)


_NOT_IN_GRAMMAR = Unsupported("not in the spec grammar and not produced by its derivatives; only the oracle's "
                              "integrators (Taylor, heyoka) support it")

#: CasADi's implementation of each function of the table (:data:`symode.expr.FUNCTIONS`), by name: the planner
#: of its SymPy head.  sign(0) = 0 in both SymPy and CasADi; Heaviside and Max/Min come from derivatives
#: (d max(x, 0)/dx = Heaviside(x)), sign from d|x|/dx.
CASADI_FUNCTIONS = register_backend("casadi", "primitives", {
    "sin": _unary(casadi.sin),
    "cos": _unary(casadi.cos),
    "tan": _unary(casadi.tan),
    "exp": _unary(casadi.exp),
    "log": _unary(casadi.log),
    "tanh": _unary(casadi.tanh),
    "sinh": _unary(casadi.sinh),
    "cosh": _unary(casadi.cosh),
    "atan": _unary(casadi.atan),
    "asinh": _unary(casadi.asinh),
    "abs": _unary(casadi.fabs),
    "sign": _unary(casadi.sign),
    "Heaviside": _plan_heaviside,
    "Max": _nary(casadi.fmax),
    "Min": _nary(casadi.fmin),
    "pow": _plan_pow,
    "asin": _NOT_IN_GRAMMAR,
    "acos": _NOT_IN_GRAMMAR,
    "atanh": _NOT_IN_GRAMMAR,
    "acosh": _NOT_IN_GRAMMAR,
})

#: The explicit translation table: SymPy head -> planner.  A planner returns the sub-expressions to
#: translate first and the CasADi builder that combines them.  Anything not listed is refused.
OPERATIONS: dict[type, Callable] = {
    # arithmetic
    sympy.Add: _plan_add,
    sympy.Mul: _plan_mul,
    # numbers and constants
    sympy.Integer: _plan_constant,
    sympy.core.numbers.Zero: _plan_constant,
    sympy.core.numbers.One: _plan_constant,
    sympy.core.numbers.NegativeOne: _plan_constant,
    sympy.Rational: _plan_constant,
    sympy.core.numbers.Half: _plan_constant,
    sympy.Float: _plan_constant,
    sympy.core.numbers.Pi: _plan_constant,
    sympy.core.numbers.Exp1: _plan_constant,
    sympy.Symbol: _plan_symbol,
    sympy.Dummy: _plan_symbol,
    # every function of the table (symode.expr.FUNCTIONS) CasADi implements: see CASADI_FUNCTIONS
    **by_head(CASADI_FUNCTIONS),
    # piecewise definitions with real comparisons
    sympy.Piecewise: _plan_piecewise,
    sympy.StrictLessThan: _binary(casadi.lt),
    sympy.LessThan: _binary(casadi.le),
    sympy.StrictGreaterThan: _binary(casadi.gt),
    sympy.GreaterThan: _binary(casadi.ge),
    sympy.Equality: _binary(casadi.eq),
    sympy.Unequality: _binary(casadi.ne),
    sympy.And: _nary(casadi.logic_and),
    sympy.Or: _nary(casadi.logic_or),
    sympy.Not: _unary(casadi.logic_not),
    sympy.logic.boolalg.BooleanTrue: _plan_boolean_constant,
    sympy.logic.boolalg.BooleanFalse: _plan_boolean_constant,
}


def _short(expr, limit: int = 80) -> str:
    text = str(expr)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _Context:
    def __init__(self, mapping, kind):
        self.mapping = mapping
        self.kind = kind
        self._constants: dict[float, object] = {}

    def constant(self, value) -> object:
        value = float(value)
        node = self._constants.get(value)
        if node is None:
            node = self.kind(value)
            self._constants[value] = node
        return node


def _casadi_kind(mapping: Mapping, elementwise: bool = False) -> type:
    kinds = set()
    for symbol, value in mapping.items():
        if isinstance(value, casadi.SX):
            kinds.add(casadi.SX)
        elif isinstance(value, casadi.MX):
            kinds.add(casadi.MX)
        else:
            raise TranslationError(f"the mapping gives symbol '{symbol}' a {type(value).__name__}; "
                                   "map every symbol to a scalar casadi.SX or casadi.MX")
        if value.shape != (1, 1) and not elementwise:
            raise TranslationError(f"the mapping gives symbol '{symbol}' shape {value.shape}; map every "
                                   "symbol to a 1x1 casadi expression (e.g. z[0])")
    if len(kinds) > 1:
        raise TranslationError("the mapping mixes casadi.SX and casadi.MX values; use one kind")
    return kinds.pop() if kinds else casadi.SX


def _plan(node, ctx) -> _Plan:
    planner = OPERATIONS.get(type(node))
    if planner is None:
        # subclasses of table entries (e.g. Integer's singletons, user Symbol subclasses) are accepted only
        # for the number/symbol entries, whose meaning cannot change in a subclass
        if isinstance(node, sympy.Symbol) and not isinstance(node, sympy.Wild):
            planner = _plan_symbol
        elif isinstance(node, sympy.Rational):
            planner = _plan_constant
    if planner is None:
        name = getattr(node, "func", type(node))
        name = getattr(name, "__name__", str(name))
        raise TranslationError(f"no CasADi translation for '{name}' (in {_short(node)}); "
                               "rewrite the expression with supported operations: "
                               + ", ".join(sorted({k.__name__ for k in OPERATIONS})))
    return planner(node, ctx)


def to_casadi(exprs: Sequence[sympy.Expr], mapping: Mapping[sympy.Symbol, object], *,
              elementwise: bool = False) -> list:
    """Translate SymPy expressions into CasADi expressions.

    ``mapping`` sends every free symbol to a 1x1 ``casadi.SX`` or ``casadi.MX`` (one kind for all); the
    results are of that kind (SX when the mapping is empty).  Sub-expressions that are equal in SymPy
    (same structure) are translated once and shared, across all ``exprs``, so a DAG stays a DAG.

    Raises :class:`TranslationError` for an operation outside :data:`OPERATIONS` (naming it) and for a
    free symbol missing from ``mapping`` (naming it).

    ``elementwise=True`` lets the mapping give a symbol a whole vector or matrix: the expression is then applied
    to every element (CasADi's arithmetic and functions act element-wise, constants broadcast); the structured
    paths use it for activation functions (:mod:`symode.casadi.structured`).
    """
    if isinstance(exprs, sympy.Basic):
        raise TranslationError("to_casadi takes a sequence of expressions; wrap a single one as [expr]")
    kind = _casadi_kind(mapping, elementwise)
    ctx = _Context(mapping, kind)
    memo: dict = {}
    plans: dict = {}
    results = []
    for root in exprs:
        if not isinstance(root, sympy.Basic):
            if isinstance(root, (int, float, Fraction)) and not isinstance(root, bool):
                root = sympy.Rational(root) if not isinstance(root, float) else sympy.Float(root)
            else:
                raise TranslationError(f"cannot translate a {type(root).__name__}; give SymPy expressions")
        # iterative post-order walk: deep trees must not hit Python's recursion limit
        stack = [root]
        while stack:
            node = stack[-1]
            if node in memo:
                stack.pop()
                continue
            plan = plans.get(node)
            if plan is None:
                plan = plans[node] = _plan(node, ctx)
            pending = [c for c in plan.children if c not in memo]
            if pending:
                stack.extend(pending)
                continue
            value = plan.build([memo[c] for c in plan.children])
            if not isinstance(value, (casadi.SX, casadi.MX)):
                value = kind(value)
            memo[node] = value
            stack.pop()
        results.append(memo[root])
    return results
