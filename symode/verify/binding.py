"""Free and bound symbols of a claim: capture-avoiding ``where`` substitution and assumptions that reach only
the free occurrences of a symbol.

``integral(g, s, lo, hi)`` and ``sum(g, i, lo, hi)`` bind their variable: inside them ``s`` and ``i`` are not
the document's symbols of the same name.  Two rules follow.

* Substitution (``where a = e``) never captures: a bound variable that occurs free in some ``e`` is renamed to a
  fresh dummy first, so ``integral(a, s, 0, 1) where a = s`` is ∫_0^1 s' ds' ... with ``a`` replaced by the
  free ``s``: the value ``s``, not 1/2 (:func:`substitute`).
* A declared assumption (``positive:``, ``count:`` positive integers, ``index:`` integers) is a statement about
  the free symbol.  Symbols are parsed without assumptions and get them only after every ``where``
  substitution (:func:`attach`), so SymPy never simplifies with an assumption a substitution breaks
  (``abs(N) = N where N = y - 5``); a bound integration variable keeps none (``integral(abs(T), T, -1, 1)``
  is 1 for a positive ``T`` too), a bound summation index is an integer and nothing more.
"""
from __future__ import annotations

import sympy

_BINDERS = (sympy.Integral, sympy.Sum)
#: SymPy's values for 1/0, log(0), 0*(1/0), ...: a side that contains one of them has no value.
NONFINITE = (sympy.zoo, sympy.nan, sympy.oo, -sympy.oo)


def _rename_bound(expr: sympy.Expr, names: set, fresh) -> sympy.Expr:
    """``expr`` with every integral/sum variable in ``names`` renamed to ``fresh(variable)`` inside its own
    node (inner nodes first; each binder gets its own dummy)."""
    def clashes(node) -> bool:
        return isinstance(node, _BINDERS) and any(lim[0] in names for lim in node.limits)

    def rename(node):
        return node.xreplace({lim[0]: fresh(lim[0], node) for lim in node.limits if lim[0] in names})

    if not any(clashes(n) for n in expr.atoms(*_BINDERS)):
        return expr
    return expr.replace(clashes, rename)


def substitute(expr: sympy.Expr, subs: dict) -> sympy.Expr:
    """Simultaneous substitution ``subs`` (symbol -> value) into ``expr`` without capture: integral and sum
    variables that occur free in a value are renamed to fresh dummies first (SymPy's ``subs`` would put the
    value's symbol under the binder).  A bound variable that is itself a key is not substituted (SymPy's own
    rule for bound variables)."""
    if not subs:
        return expr
    if isinstance(expr, sympy.MatrixBase):
        return expr.applyfunc(lambda e: substitute(e, subs))
    free = set()
    for v in subs.values():
        free |= sympy.sympify(v).free_symbols
    expr = _rename_bound(expr, free, lambda b, node: sympy.Dummy(b.name, **b.assumptions0))
    return expr.subs(subs, simultaneous=True)


def attach(expr: sympy.Expr, twins: dict) -> sympy.Expr:
    """``expr`` with each free occurrence of a key of ``twins`` (an assumption-free symbol) replaced by its
    twin (the same name with the declared assumptions).  Bound occurrences are left alone, except that a
    summation index whose twin is an integer becomes a plain integer symbol (it ranges over integers, but
    not over the twin's other assumptions: a count used as a sum index may be 0 or negative there)."""
    if not twins or not isinstance(expr, sympy.Basic) or not expr.has(*twins):
        return expr
    shield: dict = {}

    def hide(b, node):
        d = sympy.Dummy(b.name)
        integer = isinstance(node, sympy.Sum) and twins[b].is_integer
        shield[d] = sympy.Symbol(b.name, integer=True) if integer else b
        return d

    expr = _rename_bound(expr, set(twins), hide)
    expr = expr.xreplace(twins)
    return expr.xreplace(shield) if shield else expr


def domain_problem(value: sympy.Expr, twin: sympy.Symbol) -> str:
    """Why ``value`` (assumption-free, as a ``where`` gives it) is provably outside the domain ``twin``
    declares, or "" (values of unknown sign or integrality are allowed: the assumption is then simply not
    used)."""
    if not isinstance(value, sympy.Expr):
        return ""
    if twin.is_integer and value.is_integer is False:
        return "this value is not an integer"
    if twin.is_positive and value.is_positive is False:
        return "this value is not positive"
    return ""
