"""The symbolic side of claim checking: SymPy's attempt to reduce LHS - RHS to 0, in a budgeted child.

Only rewritings valid for every real (and complex) value are used: ``expand``, ``cancel``, ``simplify``,
``expand_log`` without ``force`` (forcing it assumes positive arguments: log(a*b) = log(a) + log(b) is
false for a, b < 0).  Integrals are replaced by SymPy's generic antiderivatives (``doit(conds="none")``),
which are fallible (SymPy's antiderivative of |sin s| is wrong past 2π): the caller confirms every
symbolic result that went through integration or a piecewise construct numerically before reporting it.
"""
from __future__ import annotations

import sympy
from sympy.core.function import AppliedUndef

from ..symbolic.budget import BudgetExceeded, call_with_budget
from .tolerances import VERIFY_SETTINGS

#: Nodes whose symbolic treatment SymPy can get wrong (antiderivatives, branch choices of piecewise
#: functions): a symbolic verdict on a claim containing one is confirmed numerically before it is reported.
FALLIBLE = (sympy.Integral, sympy.Piecewise, sympy.Abs, sympy.sign, sympy.Max, sympy.Min, sympy.Heaviside,
            sympy.DiracDelta)


def _karr_sum(s: sympy.Sum) -> bool:
    """Whether SymPy's value of the sum may follow Karr's convention where the documents' differs: a range with
    hi < lo - 1 is empty (0) for the documents, -Σ_{hi+1}^{lo-1} for SymPy (Σ_{i=3}^{1} 1 = -1); with
    hi >= lo - 1 provable (``sum(g, i, 1, N)`` for a count N) both conventions agree."""
    return any((hi - lo + 1).is_nonnegative is not True for _, lo, hi in s.limits)


def fallible(*exprs) -> bool:
    exprs = [sympy.sympify(e) for e in exprs]
    return any(e.has(*FALLIBLE) or any(_karr_sum(s) for s in e.atoms(sympy.Sum)) for e in exprs)


def _nonzero_number(c: sympy.Expr) -> bool:
    """Whether the number ``c`` is provably nonzero: SymPy's assumptions, or its ball excluding 0 (up to the
    deep precisions: sqrt(1 + exp(-2000)) - 1 = 1.3e-869 shows at 4096 bits)."""
    if c.is_nonzero:
        return True
    from .numeric import nonzero_at
    try:
        return nonzero_at(c, {}, deep=True)
    except (ValueError, ZeroDivisionError, ArithmeticError, TypeError):
        return False


def exact_nonzero(e: sympy.Expr) -> bool:
    """Whether ``e`` (a cancelled difference) is exactly nonzero at generic points: a nonzero number, a
    rational function whose numerator is a nonzero polynomial with exact coefficients, or an expression
    SymPy's assumptions show nonzero for every value of its symbols (``exp(x)/10**30``, ``x**2 + 1``).

    A polynomial whose coefficients are not rationals counts only when SymPy shows one of them nonzero: a
    coefficient ``atan(2) + atan(1/2) - pi/2`` or ``tanh(2) - sinh(2)/cosh(2)`` is not structurally 0 but is 0,
    so ``x*(atan(2) + atan(1/2)) - x*pi/2`` is no exact difference (it is a true claim)."""
    if e == 0 or e.has(sympy.Float, sympy.Integral, sympy.Derivative, sympy.Subs, AppliedUndef, sympy.Sum,
                       sympy.Indexed):
        return False
    if e.is_number:
        return bool(e.is_nonzero)
    poly = _numerator_poly(e)
    if poly is not None and not poly.is_zero and not poly.domain.is_RR and not poly.domain.is_CC:
        if poly.domain.is_ZZ or poly.domain.is_QQ or any(_nonzero_number(c) for c in poly.coeffs()):
            return True
    return bool(e.is_nonzero)


def _numerator_poly(e: sympy.Expr):
    """The numerator of ``e`` as a polynomial in its symbols (coefficients numbers), or None."""
    num = sympy.numer(sympy.together(e))
    syms = sorted(num.free_symbols, key=lambda x: x.name)
    if not (syms and num.is_polynomial(*syms)):
        return None
    try:
        return sympy.Poly(num, *syms)
    except sympy.PolynomialError:
        return None


def unseparated(e: sympy.Expr) -> str | None:
    """A coefficient of the numerator of ``e`` (a polynomial in its symbols) that the numbers cannot show to be
    0 or not: no difference from 0 at the deepest precision, while its terms' magnitudes say a nonzero value
    could hide below it (the rule of claims without symbols, ``constant_guard_bits``): ``sqrt(1 +
    exp(-20000)) - 1`` in ``x*(sqrt(1 + exp(-20000)) - 1)``.  None when there is none."""
    if e.has(sympy.Float, sympy.Integral, sympy.Derivative, sympy.Subs, AppliedUndef, sympy.Sum, sympy.Indexed):
        return None
    poly = _numerator_poly(e)
    if poly is None or poly.domain.is_ZZ or poly.domain.is_QQ or poly.domain.is_RR or poly.domain.is_CC:
        return None
    from .numeric import magnitude_bits, nonzero_at
    deepest = (VERIFY_SETTINGS["precisions"] + VERIFY_SETTINGS["deep_precisions"])[-1]
    for c in poly.coeffs():
        if c.is_zero or c.is_nonzero:
            continue
        m = magnitude_bits(c)
        # None: a term of it is not separated from 0 even at the deepest precision, so its size is unknown
        need = None if m is None else (VERIFY_SETTINGS["constant_guard_bits"]
                                       + VERIFY_SETTINGS["constant_bits_per_magnitude"] * m)
        if (need is None or need > deepest or m > VERIFY_SETTINGS["constant_max_magnitude"]) \
                and not nonzero_at(c, {}, deep=True):
            return str(c)
    return None


def prove_zero(diff: sympy.Expr):
    """Runs in a child.  (True, how, None) when SymPy reduces ``diff`` to 0; ("nonzero", how, d) when its
    cancelled form d is exactly nonzero (:func:`exact_nonzero`); ("unseparated", how, c) when a coefficient c
    of it may be a nonzero number below every precision (:func:`unseparated`); (False, last form, None)
    otherwise."""
    e = diff
    if e.has(sympy.Integral):
        e = e.doit(conds="none")
        if e == 0:
            return True, "integrals evaluated", None
    steps = (("expand", lambda x: sympy.expand(x)), ("cancel", lambda x: sympy.cancel(sympy.together(x))),
             ("simplify", sympy.simplify), ("expand exp/log", lambda x: sympy.simplify(sympy.expand(
                 sympy.powsimp(sympy.expand_log(sympy.expand(x, power_exp=True)))))))
    last, hidden = e, None
    for name, fn in steps:
        last = fn(e)
        if last == 0:
            return True, name, None
        if name == "cancel" and last.has(sympy.tanh, sympy.sinh, sympy.cosh, sympy.exp):
            # hyperbolic functions in exponential form: tanh(u) - 1 = -2/(exp(2*u) + 1), exactly nonzero even
            # where it is far below any working precision (u = 1000 + x**2); tried before the cancelled form
            # itself, which may be exactly nonzero (x*tanh(1000) - x) and yet not separable by the numbers
            exp_form = sympy.cancel(sympy.together(last.rewrite(sympy.exp)))
            if exp_form == 0:
                return True, "exponential form", None
            if not exp_form.has(sympy.I) and exact_nonzero(exp_form):
                return "nonzero", "exponential form", exp_form
        if name == "cancel" and exact_nonzero(last):
            return "nonzero", name, last
        if name == "cancel":
            hidden = unseparated(last)          # reported only if no later step reaches 0
    if hidden is not None:
        return "unseparated", "cancel", hidden
    return False, str(last)[:300], None


#: Results of budgeted SymPy work, keyed by expression: the same integral or correction recurs across the
#: claims of a document and across variations of one claim; bounded so a long session cannot grow it forever.
_CACHE: dict = {}
_CACHE_MAX = 4096


def _cached(kind: str, expr: sympy.Expr, compute):
    key = (kind, expr)
    if key not in _CACHE:
        if len(_CACHE) >= _CACHE_MAX:
            _CACHE.clear()
        _CACHE[key] = compute(expr)
    return _CACHE[key]


def _antiderivative(integral: sympy.Integral) -> sympy.Expr:
    try:
        return call_with_budget(lambda e: e.doit(conds="none"), integral,
                                seconds=VERIFY_SETTINGS["simplify_seconds"], what="evaluating an integral")
    except BudgetExceeded:
        return integral


def summed(expr: sympy.Expr) -> sympy.Expr:
    """``expr`` with each sum SymPy can do in closed form done (``sum(i, i, 1, N)`` -> N**2/2 + N/2), under the
    proof budget; a sum it cannot do, or that runs out of time, stays.  Fallible: used only to choose where to
    evaluate the claim, never as evidence."""
    def doit(e):
        try:
            return call_with_budget(lambda x: x.doit(), e, seconds=VERIFY_SETTINGS["simplify_seconds"],
                                    what="evaluating a sum")
        except BudgetExceeded:
            return e
    reps = {a: _cached("sum", a, doit) for a in expr.atoms(sympy.Sum)}
    return expr.xreplace(reps) if reps else expr


def integrated(expr: sympy.Expr) -> sympy.Expr:
    """``expr`` with its integrals replaced by SymPy's generic antiderivatives where found (fallible)."""
    if not expr.has(sympy.Integral):
        return expr
    reps = {i: _cached("integral", i, _antiderivative) for i in expr.atoms(sympy.Integral)}
    return expr.xreplace(reps)


def _simplify(expr: sympy.Expr) -> sympy.Expr:
    try:
        return call_with_budget(sympy.simplify, expr, seconds=VERIFY_SETTINGS["correction_seconds"],
                                what="simplifying the correction")
    except BudgetExceeded:
        return expr


def simplified(expr: sympy.Expr) -> sympy.Expr:
    """``simplify(expr)`` within the correction budget; ``expr`` itself when that runs out."""
    return _cached("simplified", expr, _simplify)


def attempt(diff: sympy.Expr):
    """:func:`prove_zero` under the proof budget: (result, how, nonzero form, reason if inconclusive)."""
    try:
        proved, how, nonzero = call_with_budget(prove_zero, diff, seconds=VERIFY_SETTINGS["simplify_seconds"],
                                                what="symbolic check")
        return proved, how, nonzero, "SymPy did not reduce LHS - RHS to 0"
    except BudgetExceeded:
        return False, "", None, f"simplification ran past its {VERIFY_SETTINGS['simplify_seconds']:g} s budget"
