"""Checking one claim: is ``reference == stated`` for all (generic) values of the symbols?

Procedure (for a claim whose two sides are SymPy expressions R (reference) and S (stated)):

0. Integrals ``∫_lo^hi g ds`` are replaced, for screening and proof, by SymPy's generic antiderivatives
   (``doit(conds="none")``: special parameter values where the antiderivative changes form, such as a = 0 in
   ∫ e^{a s} ds, are not separate cases -- the same generic-point meaning the numeric checks have).
1. Numeric screening: both sides at ``TOLERANCES["screen_points"]`` random exact-rational points,
   evaluated at ``digits`` significant digits.  A point where they differ by more than ``false_rtol``
   (relative) -- confirmed by evaluating the integrals themselves by mpmath quadrature -- makes the claim FALSE.
2. Symbolic proof: SymPy tries to reduce R - S to 0 (``expand``, ``cancel``, ``simplify``, then with
   exponentials and logarithms expanded), in a forked child under a time budget.  Reaching 0 makes the claim
   TRUE (symbolic).
3. Numeric fallback, when simplification is inconclusive: ``numeric_points`` random points, integrals by
   quadrature (independent of SymPy's integration); agreement at every point to ``equal_rtol`` makes the
   claim "TRUE (numeric, N points)" -- evidence, not proof, and reported as such; a point beyond
   ``false_rtol`` makes it FALSE; anything in between, or too few points in the domain of both sides
   (log/sqrt of negatives, division by zero: such points are skipped and resampled), is UNDECIDED with the
   reason.

A FALSE claim carries a counterexample: a point of exact rationals (small ones such as 1/2, 2, -1 where they
show the difference, else the random point) with both sides' values there, and the corrected right-hand side
(the reference, simplified).  Symbols declared positive (the learning rate, ``positive:``) are sampled > 0;
no symbol is sampled at 0.  Random points come from a fixed seed, so verdicts are reproducible.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field

import mpmath
import sympy

from ..symbolic.budget import BudgetExceeded, call_with_budget

#: Numeric tolerances and counts, each with its reason.
TOLERANCES: dict = {
    # Significant digits of every evaluation.  SymPy's evalf tracks accuracy adaptively, so values carry
    # about this many correct digits; 40 leaves room for the cancellation inside a side.
    "digits": 40,
    # |R - S| <= equal_rtol * max(|R|, |S|) + equal_atol counts as equal at a point: 15 digits below the
    # working precision, far above evalf's rounding, far below any real discrepancy.
    "equal_rtol": sympy.Float("1e-25", 50),
    # Absolute floor for sides whose exact value is 0 (the relative test is meaningless there); the scale of
    # the document's quantities is O(1).
    "equal_atol": sympy.Float("1e-30", 50),
    # A relative difference above this is a genuine disagreement (FALSE): 28 digits above evalf's rounding.
    # Differences between equal_rtol and false_rtol are neither (UNDECIDED, reported with the difference).
    "false_rtol": sympy.Float("1e-12", 50),
    # Points evaluated before trying the symbolic proof (cheap screening for FALSE claims).
    "screen_points": 4,
    # Points for the numeric fallback ("TRUE (numeric, N points)").
    "numeric_points": 24,
    # Samples tried per wanted point before giving up (points outside the domain are skipped).
    "max_tries_factor": 4,
    # Wall-clock seconds for the symbolic proof of one claim (simplify can run unbounded).
    "simplify_seconds": 20.0,
    # Wall-clock seconds for simplifying a FALSE claim's corrected right-hand side (cosmetic: the
    # unsimplified expression is reported when it runs out).
    "correction_seconds": 5.0,
    # Small-rational points tried for a readable counterexample before the random point is reported.
    "small_point_tries": 40,
}

#: Small values tried first for a readable counterexample.
_SMALL = [sympy.Rational(v) for v in ("1/2", "2", "-1", "3/2", "1/3", "-1/2", "3", "-2", "2/3", "5/2")]


@dataclass
class Verdict:
    """The result of checking one claim."""

    status: str                   # "TRUE", "FALSE", "UNDECIDED"
    method: str                   # "symbolic", "numeric, N points", "counterexample", ...
    detail: str = ""
    point: dict = field(default_factory=dict)       # symbol name -> exact value (FALSE)
    values: tuple = ()            # (reference value, stated value) at the point, as text
    corrected: str = ""           # the corrected right-hand side (FALSE)


def _sample(symbols, rng: random.Random, positive: frozenset, small: bool) -> dict:
    point = {}
    for s in symbols:
        if small:
            v = rng.choice(_SMALL)
            if (s in positive or s.is_positive) and v <= 0:
                v = -v
        else:
            # generic rationals with 4 decimals in [-3, 3] (positive symbols: (0, 3]); never 0
            n = rng.randint(1, 30000)
            if not (s in positive or s.is_positive) and rng.random() < 0.5:
                n = -n
            v = sympy.Rational(n, 10000)
        point[s] = v
    return point


def _value(expr: sympy.Expr, point: dict, digits: int):
    """(exact-or-Float value, real mpmath number) of ``expr`` at ``point``, or None outside the domain."""
    try:
        expr = sympy.sympify(expr)
        # subs respects integration variables (bound, not substituted); xreplace is faster where none exist
        v = expr.subs(point) if expr.has(sympy.Integral) else expr.xreplace(point)
        if v.has(sympy.Integral):
            v = _quadrature(v, digits)
        exact = v
        v = v.evalf(digits)
    except (ZeroDivisionError, ValueError, TypeError, ArithmeticError):
        return None
    if v.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo) or v.free_symbols:
        return None
    re, im = v.as_real_imag()
    try:
        re_f, im_f = sympy.Float(re, digits), sympy.Float(im, digits)
    except (TypeError, ValueError):
        return None
    if abs(im_f) > TOLERANCES["equal_atol"] + TOLERANCES["equal_rtol"] * abs(re_f):
        return None
    if not re_f.is_finite:
        return None
    return (exact if isinstance(exact, sympy.Rational) else re_f), re_f


_QUAD_VAR = sympy.Symbol("quad_var", real=True)


def _quadrature(v: sympy.Expr, digits: int) -> sympy.Expr:
    """``v`` (all symbols substituted) with each innermost definite integral replaced by its mpmath Gauss-
    Legendre/tanh-sinh value at ``digits`` + 10 digits.  The integrand is compiled with ``lambdify`` after its
    one free symbol, the integration variable, is renamed to a fixed internal name (no user text reaches the
    generated code); SymPy's own ``Integral.evalf`` re-evaluates the SymPy tree at every node and is ~100x
    slower."""
    reps = {}
    for integral in v.atoms(sympy.Integral):
        if integral.args[0].has(sympy.Integral) or len(integral.limits) != 1 or len(integral.limits[0]) != 3:
            continue  # nested or indefinite: left to evalf
        var, lo, hi = integral.limits[0]
        body = integral.args[0].xreplace({var: _QUAD_VAR})
        if body.free_symbols - {_QUAD_VAR} or lo.free_symbols or hi.free_symbols:
            continue
        fn = sympy.lambdify((_QUAD_VAR,), body, modules="mpmath")
        with mpmath.workdps(digits + 10):
            value = mpmath.quad(fn, [mpmath.mpf(sympy.Float(lo, digits + 10)._mpf_),
                                     mpmath.mpf(sympy.Float(hi, digits + 10)._mpf_)])
            if not isinstance(value, mpmath.mpf):
                return sympy.nan
            reps[integral] = sympy.Float(value, digits + 10)
    v = v.xreplace(reps)
    return v.evalf(digits) if v.has(sympy.Integral) else v


def _compare(r, s) -> str:
    """'equal', 'differ' or 'close' (between the two tolerances) for two real Floats."""
    diff = abs(r - s)
    scale = max(abs(r), abs(s))
    if diff <= TOLERANCES["equal_rtol"] * scale + TOLERANCES["equal_atol"]:
        return "equal"
    if diff > TOLERANCES["false_rtol"] * scale + TOLERANCES["equal_atol"]:
        return "differ"
    return "close"


def _show(v) -> str:
    if isinstance(v, sympy.Rational):
        return str(v)
    return sympy.Float(v, 20).__str__()


def _prove_zero(diff: sympy.Expr):
    """(True, how) when SymPy reduces ``diff`` to 0; (False, last form) otherwise.  Runs in a child."""
    e = diff
    if e.has(sympy.Integral):
        # generic antiderivatives (conds="none"): special parameter values where an antiderivative changes
        # form (e.g. a = 0 in exp(a*t)) are not separate cases, as at the numeric check's generic points
        e = e.doit(conds="none")
        if e == 0:
            return True, "integrals evaluated"
    steps = (("expand", lambda x: sympy.expand(x)), ("cancel", lambda x: sympy.cancel(sympy.together(x))),
             ("simplify", sympy.simplify), ("expand exp/log", lambda x: sympy.simplify(sympy.expand(
                 sympy.powsimp(sympy.expand_log(sympy.expand(x, power_exp=True), force=True))))))
    last = e
    for name, fn in steps:
        last = fn(e)
        if last == 0:
            return True, name
    return False, str(last)[:300]


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
    """SymPy's generic value of one integral (budgeted), or the integral itself when none is found."""
    try:
        return call_with_budget(lambda e: e.doit(conds="none"), integral,
                                seconds=TOLERANCES["simplify_seconds"], what="evaluating an integral")
    except BudgetExceeded:
        return integral


def _integrated(expr: sympy.Expr) -> sympy.Expr:
    """``expr`` with its integrals replaced by SymPy's generic antiderivatives where found."""
    if not expr.has(sympy.Integral):
        return expr
    reps = {i: _cached("integral", i, _antiderivative) for i in expr.atoms(sympy.Integral)}
    return expr.xreplace(reps)


def _simplify_text(expr: sympy.Expr) -> str:
    try:
        return call_with_budget(lambda e: str(sympy.simplify(e)), expr,
                                seconds=TOLERANCES["correction_seconds"], what="simplifying the correction")
    except BudgetExceeded:
        return str(expr)


def _simplified(expr: sympy.Expr) -> str:
    """``str(simplify(expr))`` within the correction budget; the unsimplified text when that runs out."""
    return _cached("simplified", expr, _simplify_text)


def check(reference: sympy.Expr, stated: sympy.Expr, positive: frozenset = frozenset(),
          seed: int = 20181, prove: bool = True) -> Verdict:
    """Check ``reference == stated`` identically in their free symbols (see the module docstring).

    ``prove=False`` skips the symbolic proof (the numeric fallback alone decides); ``seed`` fixes the random
    points, so a verdict is reproducible.
    """
    reference, stated = sympy.sympify(reference), sympy.sympify(stated)
    if reference - stated == 0:
        return Verdict("TRUE", "symbolic", "both sides are the same expression")
    symbols = sorted(reference.free_symbols | stated.free_symbols, key=lambda s: s.name)
    rng = random.Random(seed)
    digits = TOLERANCES["digits"]
    # SymPy's antiderivatives where it finds them: for screening, the counterexample search and the proof
    # (quadrature at 40 digits is slow).  A difference found with them is confirmed with the integrals
    # themselves (quadrature) before it is reported; the numeric fallback uses the integrals themselves.
    has_integrals = reference.has(sympy.Integral) or stated.has(sympy.Integral)
    fast = (_integrated(reference), _integrated(stated)) if has_integrals else (reference, stated)

    def differing(exprs, point):
        """(point, reference value, stated value) if the sides clearly differ at point, else None."""
        rv, sv = _value(exprs[0], point, digits), _value(exprs[1], point, digits)
        if rv is not None and sv is not None and _compare(rv[1], sv[1]) == "differ":
            return point, rv[0], sv[0]
        return None

    def confirmed(point):
        """The point's values by the integrals themselves (quadrature), if the sides differ there."""
        return differing((reference, stated), point) if has_integrals else differing(fast, point)

    def run(n_points: int, exprs):
        """Evaluate at up to n_points valid points; returns (n_equal, first differing point or None, n_close)."""
        n_ok = n_close = tries = 0
        while n_ok + n_close < n_points and tries < n_points * TOLERANCES["max_tries_factor"]:
            tries += 1
            point = _sample(symbols, rng, positive, small=False)
            rv, sv = _value(exprs[0], point, digits), _value(exprs[1], point, digits)
            if rv is None or sv is None:
                continue
            c = _compare(rv[1], sv[1])
            if c == "differ":
                return n_ok, (point, rv[0], sv[0]), n_close
            if c == "equal":
                n_ok += 1
            else:
                n_close += 1
        return n_ok, None, n_close

    def false(found) -> Verdict:
        """FALSE with ``found`` (a confirmed differing point), or a readable small-rational point if one is."""
        for _ in range(TOLERANCES["small_point_tries"]):
            small = differing(fast, _sample(symbols, rng, positive, small=True))
            if small is not None:
                small = confirmed(small[0]) if has_integrals else small
                if small is not None:
                    found = small
                break
        point, rv, sv = found
        return Verdict("FALSE", "counterexample", "the two sides differ at the point below",
                       point={s.name: str(v) for s, v in point.items()}, values=(_show(rv), _show(sv)),
                       corrected=_simplified(fast[0]))

    if not symbols:
        # constants: one evaluation decides
        rv, sv = _value(reference, {}, digits), _value(stated, {}, digits)
        if rv is None or sv is None:
            return Verdict("UNDECIDED", "numeric", "a side is not a finite real number")
        c = _compare(rv[1], sv[1])
        if c == "differ":
            return false(({}, rv[0], sv[0]))
        if c == "close":
            return Verdict("UNDECIDED", "numeric", "the constants agree to 12 but not to 25 digits")
        return Verdict("TRUE", "numeric, 1 point", f"the constants agree to {digits} digits")
    _, found, _ = run(TOLERANCES["screen_points"], fast)
    if found is not None:
        found = confirmed(found[0])
        if found is not None:
            return false(found)
    reason = "symbolic proof skipped"
    if prove:
        try:
            proved, how = call_with_budget(_prove_zero, fast[0] - fast[1], seconds=TOLERANCES["simplify_seconds"],
                                           what="symbolic check")
            reason = "SymPy did not reduce LHS - RHS to 0"
        except BudgetExceeded:
            proved, how = False, ""
            reason = f"simplification ran past its {TOLERANCES['simplify_seconds']:g} s budget"
        if proved:
            return Verdict("TRUE", "symbolic", f"SymPy reduced LHS - RHS to 0 ({how})")
    n = TOLERANCES["numeric_points"]
    n_ok, found, n_close = run(n, (reference, stated))
    if found is not None:
        return false(found)
    if n_close:
        return Verdict("UNDECIDED", "numeric", f"{reason}; at {n_close} of {n_ok + n_close} points the sides "
                                               f"agree to 12 but not to 25 digits")
    if n_ok < n:
        return Verdict("UNDECIDED", "numeric", f"{reason}; only {n_ok} of {n} random points were inside the "
                                               f"domain of both sides (log/sqrt of negatives, division by 0)")
    return Verdict("TRUE", f"numeric, {n_ok} points",
                   f"{reason}; the sides agree to 25 digits at {n_ok} random rational points "
                   f"({digits}-digit evaluation): evidence, not proof")
