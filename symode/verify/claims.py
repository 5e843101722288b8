"""Checking one claim: is ``reference == stated`` for all (generic) values of the symbols?

Procedure (for a claim whose two sides are SymPy expressions R (reference) and S (stated)):

0. Integrals ``∫_lo^hi g ds`` are replaced, for screening and proof, by SymPy's generic antiderivatives
   (``doit(conds="none")``: special parameter values where the antiderivative changes form, such as a = 0 in
   ∫ e^{a s} ds, are not separate cases -- the same generic-point meaning the numeric checks have).
1. Numeric screening: both sides at ``TOLERANCES["screen_points"]`` random exact-rational points,
   evaluated at ``digits`` significant digits.  A point where they differ by more than ``false_rtol``
   (relative) -- confirmed by evaluating the integrals themselves by mpmath quadrature -- makes the claim FALSE.
2. Symbolic proof: SymPy tries to reduce R - S to 0 (``expand``, ``cancel``, ``simplify``, then with
   exponentials and logarithms expanded -- without ``force``, which would assume positive symbols), in a
   forked child under a time budget.  Reaching 0 makes the claim TRUE (symbolic); a cancelled form that is a
   nonzero exact number or rational-coefficient polynomial makes it FALSE (exact difference), with a point
   where that polynomial is nonzero.
3. Numeric fallback, when simplification is inconclusive: ``numeric_points`` random points, integrals by
   quadrature (independent of SymPy's integration); agreement at every point to ``equal_rtol`` makes the
   claim "TRUE (numeric, N points)" -- evidence, not proof, and reported as such; a point beyond
   ``false_rtol`` makes it FALSE; anything in between, or too few points in the domain of both sides
   (log/sqrt of negatives, division by zero: such points are skipped and resampled), is UNDECIDED with the
   reason.

A FALSE claim carries a counterexample: a point of exact rationals (small ones such as 1/2, 2, -1 where they
show the difference, else the random point) with both sides' values there, and the corrected right-hand side
(the reference, simplified).  Symbols declared positive (the learning rate, ``positive:``) are sampled > 0;
no symbol is sampled at 0; half of the random points are in [-3, 3], half log-uniform in magnitude up to 1e3.
Integrals at a point are evaluated by quadrature split at the integrand's kinks; a quadrature whose error
estimate is not small makes that point unusable (never a counterexample).  Random points come from a fixed seed, so verdicts are reproducible.
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
    # A quadrature value is used only when mpmath's error estimate is below this, relative to the value (plus
    # equal_atol): 5 digits below equal_rtol, so the integration error cannot decide "equal" or "differ".
    "quad_rtol": sympy.Float("1e-30", 50),
    # Largest |exponent| of a power evaluated with exact rationals at a sample point: 2**(2**16) already
    # has 65536 bits and towers grow without bound; larger powers are evaluated in floats (digits + 10).
    "max_exact_exponent": 1000,
    # Wide samples: |value| log-uniform in [10**-1, 10**3] (half of the random points; the other half are
    # in [-3, 3]), so identities that hold only near the origin (sqrt((x + 5)**2) = x + 5) are caught.
    "wide_log10": (-1.0, 3.0),
    # Budget of one evaluation that is not cheap (huge or symbol-dependent powers), run in a forked child:
    # a legitimate side evaluates in milliseconds; a power tower can abort GMP or run forever.
    "point_seconds": 2.0,
    "point_memory_mb": 1024,
    # Budgeted evaluations allowed to fail within one check before the rest of its points are skipped
    # (bounds a claim's time to a few budgets; the claim is then UNDECIDED with the reason).
    "max_budget_failures": 3,
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
    """One sample point: ``small`` draws from the readable values _SMALL; otherwise each point is, with
    probability 1/2, "narrow" (rationals with 4 decimals in [-3, 3]) or "wide" (|v| log-uniform in
    10**wide_log10, 4 significant digits, random sign).  Positive symbols get positive values; never 0."""
    point = {}
    wide = not small and rng.random() < 0.5
    for s in symbols:
        if wide:
            lo, hi = TOLERANCES["wide_log10"]
            e = rng.uniform(lo, hi)
            k = int(e // 1)
            mant = sympy.Rational(round(10 ** (e - k) * 1000), 1000)      # in [1, 10], 4 significant digits
            v = mant * sympy.Rational(10) ** k
            if not (s in positive or s.is_positive) and rng.random() < 0.5:
                v = -v
        elif small:
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


class _QuadratureFailed(ArithmeticError):
    """mpmath's quadrature did not converge at a point (error estimate too large, or not a finite number)."""


def _exact_is_cheap(expr: sympy.Expr, point: dict) -> bool:
    """Whether substituting exact rationals into ``expr`` is known to stay cheap: every power has a numeric
    exponent of magnitude at most ``max_exact_exponent``.  Larger exponents (x**100000000) build integers of
    unbounded size; exponents that depend on the symbols (power towers x**x**x) can do so even in floats,
    where GMP aborts the whole process on overflow -- those are evaluated in a budgeted child instead."""
    cap = TOLERANCES["max_exact_exponent"]
    for node in sympy.preorder_traversal(expr):
        if isinstance(node, sympy.Pow) and not (node.exp.is_Number and abs(node.exp) <= cap):
            return False
    return True


def _value_here(expr: sympy.Expr, point: dict, digits: int):
    """_value's evaluation proper (no budget); raises _QuadratureFailed, ArithmeticError, ..."""
    # subs respects integration variables (bound, not substituted); xreplace is faster where none exist
    v = expr.subs(point) if expr.has(sympy.Integral) else expr.xreplace(point)
    if v.has(sympy.Integral):
        v = _quadrature(v, digits)
    exact = v
    v = v.evalf(digits)
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


def _value_floats(expr: sympy.Expr, point: dict, digits: int):
    """_value_here with the point's values as ``digits`` + 10-digit Floats (runs in a budgeted child)."""
    try:
        return _value_here(expr, {k: sympy.Float(v, digits + 10) for k, v in point.items()}, digits)
    except _QuadratureFailed:
        raise
    except (ZeroDivisionError, ValueError, TypeError, ArithmeticError, MemoryError, RecursionError):
        return None


def _value(expr: sympy.Expr, point: dict, digits: int, notes: list | None = None):
    """(exact-or-Float value, real Float) of ``expr`` at ``point``, or None outside the domain, where a
    quadrature did not converge, or where the evaluation ran past its budget (the reason is appended to
    ``notes``).

    The point's exact rationals are substituted when that is cheap (see _exact_is_cheap).  Otherwise the
    point's Floats are used, in a forked child limited to ``point_seconds``; after ``max_budget_failures``
    such failures within one check (``notes`` counts them) further points are not tried."""
    notes = [] if notes is None else notes
    try:
        expr = sympy.sympify(expr)
        if _exact_is_cheap(expr, point):
            return _value_here(expr, point, digits)
        if sum(n.startswith(_BUDGET_NOTE) for n in notes) >= TOLERANCES["max_budget_failures"]:
            return None
        try:
            return call_with_budget(_value_floats, expr, point, digits, seconds=TOLERANCES["point_seconds"],
                                    memory_mb=TOLERANCES["point_memory_mb"], what="evaluating at a point")
        except BudgetExceeded:
            notes.append(f"{_BUDGET_NOTE} ({TOLERANCES['point_seconds']:g} s, {TOLERANCES['point_memory_mb']} MiB;"
                         f" huge powers)")
            return None
    except _QuadratureFailed as exc:
        notes.append(str(exc))
        return None
    except (ZeroDivisionError, ValueError, TypeError, ArithmeticError, MemoryError, RecursionError):
        return None


_BUDGET_NOTE = "evaluation at a sample point ran past its budget"


_QUAD_VAR = sympy.Symbol("quad_var", real=True)


def _kink_arguments(body: sympy.Expr) -> list:
    """Expressions whose real zeros are kinks or jumps of ``body``: arguments of abs, sign, Heaviside, the
    pairwise differences of Max/Min arguments, and bases of fractional powers (sqrt: the edge of the domain)."""
    out = []
    for node in sympy.preorder_traversal(body):
        if isinstance(node, (sympy.Abs, sympy.sign, sympy.Heaviside)):
            out.append(node.args[0])
        elif isinstance(node, (sympy.Max, sympy.Min)):
            out += [u - w for i, u in enumerate(node.args) for w in node.args[i + 1:]]
        elif isinstance(node, sympy.Pow) and node.exp.is_Rational and not node.exp.is_Integer:
            out.append(node.base)
    return out


def _breakpoints(body: sympy.Expr, lo, hi, dps: int) -> list:
    """Sorted real zeros inside (lo, hi) of the polynomial kink arguments of ``body`` (in the integration
    variable only); non-polynomial arguments are left to the quadrature's error estimate."""
    pts = set()
    a, b = min(lo, hi), max(lo, hi)
    for arg in _kink_arguments(body):
        if _QUAD_VAR not in arg.free_symbols or not arg.is_polynomial(_QUAD_VAR):
            continue
        try:
            poly = sympy.Poly(arg, _QUAD_VAR)
            if poly.degree() > 20:
                continue
            roots = poly.nroots(n=dps) if poly.free_symbols_in_domain == set() else []
        except (sympy.PolynomialError, sympy.polys.polyerrors.NoConvergence, ValueError, TypeError):
            continue
        for r in roots:
            r = complex(r) if not r.is_real else r
            if isinstance(r, complex):
                continue
            r = mpmath.mpf(sympy.Float(r, dps)._mpf_)
            if a < r < b:
                pts.add(r)
    return sorted(pts)


def _finite_at(fn, x) -> bool:
    """Whether the compiled integrand has a finite real value at ``x``."""
    try:
        y = fn(x)
    except (ZeroDivisionError, ValueError, TypeError, ArithmeticError):
        return False
    return isinstance(y, mpmath.mpf) and bool(mpmath.isfinite(y))


def _quadrature(v: sympy.Expr, digits: int) -> sympy.Expr:
    """``v`` (all symbols substituted) with each innermost definite integral replaced by its mpmath
    tanh-sinh value at ``digits`` + 10 digits.  The interval is split at the kinks of the integrand (zeros of
    the arguments of abs/sign/Heaviside/Max/Min and of the bases of fractional powers), where quadrature
    converges slowly; a value whose error estimate exceeds ``quad_rtol`` relative (a divergent or singular
    integral, an unresolved kink) raises _QuadratureFailed instead of being used.  The integrand is compiled
    with ``lambdify`` after its one free symbol, the integration variable, is renamed to a fixed internal
    name (no user text reaches the generated code); SymPy's own ``Integral.evalf`` re-evaluates the SymPy
    tree at every node and is ~100x slower."""
    reps = {}
    for integral in v.atoms(sympy.Integral):
        if integral.args[0].has(sympy.Integral) or len(integral.limits) != 1 or len(integral.limits[0]) != 3:
            continue  # nested or indefinite: left to evalf
        var, lo, hi = integral.limits[0]
        body = integral.args[0].xreplace({var: _QUAD_VAR})
        if body.free_symbols - {_QUAD_VAR} or lo.free_symbols or hi.free_symbols:
            continue
        fn = sympy.lambdify((_QUAD_VAR,), body, modules="mpmath")
        dps = digits + 10
        with mpmath.workdps(dps):
            a = mpmath.mpf(sympy.Float(lo, dps)._mpf_)
            b = mpmath.mpf(sympy.Float(hi, dps)._mpf_)
            inner = _breakpoints(body, a, b, dps)
            nodes = [a] + (inner if a <= b else inner[::-1]) + [b]
            try:
                value, err = mpmath.quad(fn, nodes, error=True)
            except (ZeroDivisionError, ValueError, TypeError, ArithmeticError) as exc:
                raise _QuadratureFailed(f"numerical integration failed ({exc})") from None
            if not isinstance(value, mpmath.mpf) or not mpmath.isfinite(value) or not mpmath.isfinite(err):
                raise _QuadratureFailed("numerical integration did not give a finite real number")
            tol = mpmath.mpf(TOLERANCES["quad_rtol"]._mpf_) * abs(value) + mpmath.mpf(TOLERANCES["equal_atol"]._mpf_)
            if err > tol:
                raise _QuadratureFailed(f"numerical integration did not converge (error estimate "
                                        f"{mpmath.nstr(err, 3)} for the value {mpmath.nstr(value, 10)})")
            if not (_finite_at(fn, a) and _finite_at(fn, b)):
                # unbounded at an endpoint: tanh-sinh never samples the endpoint and its nodes stop at a
                # distance set by the precision, so a divergent integral (s**-3 on [0, 1]) can look converged.
                # A convergent one does not depend on that distance: redo at 20 more digits and compare.
                with mpmath.workdps(dps + 20):
                    value2 = mpmath.quad(fn, nodes)
                if not (isinstance(value2, mpmath.mpf) and abs(value2 - value) <= tol):
                    raise _QuadratureFailed(f"numerical integration did not converge (the integrand is unbounded "
                                            f"at an endpoint and the value depends on the precision: "
                                            f"{mpmath.nstr(value, 10)} vs {mpmath.nstr(value2, 10)})")
            reps[integral] = sympy.Float(value, dps)
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


def _exact_nonzero(e: sympy.Expr) -> bool:
    """Whether ``e`` is a nonzero exact number or a nonzero polynomial in its symbols with rational
    coefficients: then it is nonzero at generic points, exactly (no rounding involved)."""
    if e == 0 or e.has(sympy.Integral, sympy.Float) or e.atoms(sympy.Function):
        return False
    if e.is_Rational:
        return True
    syms = sorted(e.free_symbols, key=lambda x: x.name)
    if not syms or not e.is_polynomial(*syms):
        return False
    try:
        poly = sympy.Poly(e, *syms)
    except sympy.PolynomialError:
        return False
    return poly.domain in (sympy.ZZ, sympy.QQ) and not poly.is_zero


def _prove_zero(diff: sympy.Expr):
    """Runs in a child.  (True, how, None) when SymPy reduces ``diff`` to 0; ("nonzero", how, d) when its
    cancelled form d is a nonzero exact number or rational-coefficient polynomial (the claim is then false
    exactly); (False, last form, None) otherwise.

    Only transformations valid for all real (and complex) values are used: ``expand_log`` without
    ``force=True`` (forcing it assumes positive arguments, log(a*b) = log(a) + log(b), false for a, b < 0)."""
    e = diff
    if e.has(sympy.Integral):
        # generic antiderivatives (conds="none"): special parameter values where an antiderivative changes
        # form (e.g. a = 0 in exp(a*t)) are not separate cases, as at the numeric check's generic points
        e = e.doit(conds="none")
        if e == 0:
            return True, "integrals evaluated", None
    steps = (("expand", lambda x: sympy.expand(x)), ("cancel", lambda x: sympy.cancel(sympy.together(x))),
             ("simplify", sympy.simplify), ("expand exp/log", lambda x: sympy.simplify(sympy.expand(
                 sympy.powsimp(sympy.expand_log(sympy.expand(x, power_exp=True)))))))
    last = e
    for name, fn in steps:
        last = fn(e)
        if last == 0:
            return True, name, None
        if name == "cancel" and _exact_nonzero(last):
            return "nonzero", name, last
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

    notes: list = []   # quadrature failures (such points are unusable, never counterexamples)

    def differing(exprs, point):
        """(point, reference value, stated value) if the sides clearly differ at point, else None."""
        rv, sv = _value(exprs[0], point, digits, notes), _value(exprs[1], point, digits, notes)
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
            rv, sv = _value(exprs[0], point, digits, notes), _value(exprs[1], point, digits, notes)
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

    def exact_counterexample(poly_diff):
        """(point, reference value, stated value) at a point where the exact difference ``poly_diff`` is
        nonzero (checked exactly) and both sides are defined; small rationals first.  None if none found."""
        n_small = TOLERANCES["small_point_tries"]
        for k in range(n_small + TOLERANCES["numeric_points"] * TOLERANCES["max_tries_factor"]):
            point = _sample(symbols, rng, positive, small=k < n_small)
            if _exact_is_cheap(poly_diff, point):
                if poly_diff.xreplace(point) == 0:
                    continue
            else:
                # a huge power: exact evaluation is refused; a nonzero 50-digit float value (mpmath's exponent
                # range is unbounded, so nothing underflows to 0) shows the polynomial is nonzero there
                try:
                    if poly_diff.xreplace({k: sympy.Float(v, digits + 10) for k, v in point.items()}) == 0:
                        continue
                except (ArithmeticError, ValueError, TypeError, MemoryError):
                    continue
            rv, sv = _value(fast[0], point, digits, notes), _value(fast[1], point, digits, notes)
            if rv is not None and sv is not None:
                return point, rv[0], sv[0]
        return None

    def false(found, search: bool = True) -> Verdict:
        """FALSE with ``found`` (a confirmed differing point), or a readable small-rational point if one is."""
        for _ in range(TOLERANCES["small_point_tries"] if search else 0):
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
        rv, sv = _value(reference, {}, digits, notes), _value(stated, {}, digits, notes)
        if rv is None or sv is None:
            return Verdict("UNDECIDED", "numeric", notes[0] if notes else "a side is not a finite real number")
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
            proved, how, nonzero = call_with_budget(_prove_zero, fast[0] - fast[1],
                                                    seconds=TOLERANCES["simplify_seconds"], what="symbolic check")
            reason = "SymPy did not reduce LHS - RHS to 0"
        except BudgetExceeded:
            proved, how, nonzero = False, "", None
            reason = f"simplification ran past its {TOLERANCES['simplify_seconds']:g} s budget"
        if proved == "nonzero":
            found = exact_counterexample(nonzero)
            if found is not None:
                v = false(found, search=False)
                v.method = "exact difference"
                v.detail = f"LHS - RHS = {str(nonzero)[:300]} exactly (a nonzero polynomial), nonzero at the point"
                return v
        elif proved:
            return Verdict("TRUE", "symbolic", f"SymPy reduced LHS - RHS to 0 ({how})")
    n = TOLERANCES["numeric_points"]
    n_ok, found, n_close = run(n, (reference, stated))
    if found is not None:
        return false(found)
    if n_close:
        return Verdict("UNDECIDED", "numeric", f"{reason}; at {n_close} of {n_ok + n_close} points the sides "
                                               f"agree to 12 but not to 25 digits")
    if n_ok < n:
        why = (f"; {notes[0]}" if notes else "")
        return Verdict("UNDECIDED", "numeric", f"{reason}; only {n_ok} of {n} random points were inside the "
                                               f"domain of both sides (log/sqrt of negatives, division by 0, "
                                               f"non-converging integrals){why}")
    return Verdict("TRUE", f"numeric, {n_ok} points",
                   f"{reason}; the sides agree to 25 digits at {n_ok} random rational points "
                   f"({digits}-digit evaluation): evidence, not proof")
