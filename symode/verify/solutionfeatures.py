"""Narrow features of an integrand in the solution's values: located along the solution before the sweeps.

:mod:`symode.verify.features` locates the features of arguments of the time alone before anything is solved.
An argument of the states, such as ``-1e10*(u - 0.7)**2`` in ``exp(-1e10*(u - 0.7)**2)*u``, peaks where the
solution passes u = 0.7, which is not known in advance, and the Taylor steps of the sweeps go over it (the
integrand's coefficients at a step's start show ~exp(-1e8)).  Here such an argument ``a(t, z)`` (of the time
and the forward states only) is followed along the solution:

1. one forward solve (``scan_digits`` digits) with output at ``scan_points`` equal steps of [t0, t1];
2. at each, ``a`` and its rate along the flow ``a' = ∂a/∂t + Σ ∂a/∂z_i f_i`` (and ``a''`` the same way);
3. an interval where ``a`` changes sign holds a crossing, one where ``a'`` changes sign an extremum of ``a``
   (the peak of the spike); each is located by Newton's method in time, kept inside its bracket (halving where
   a step leaves it), the states at each trial time from a short solve;
4. its width: ``1/|a'|`` at a crossing (``a`` changes by 1 over it), ``sqrt(2/|a''|)`` at an extremum.

The critical times ``(c, w)`` go to the sweeps (:mod:`symode.oracle.critical`) as those of the time alone do.
A feature between two scan points that leaves no sign change of ``a`` or ``a'`` there (the solution passing
0.7 and back within one scan step) is not seen: the documented limit of this step.
"""
from __future__ import annotations

import mpmath
import sympy

from .balls import Unevaluable, evaluate
from .points import _critical

__all__ = ["SOLUTION_FEATURE_SETTINGS", "solution_features"]

#: Settings of the search along the solution, each with its reason.
SOLUTION_FEATURE_SETTINGS: dict = {
    # Equal steps of the scan: a spike whose peak the solution passes once between two scan points shows as a
    # sign change of a' there; 64 costs one forward solve with 64 landings.
    "scan_points": 64,
    # Digits of the scan and of the refining solves: the location needs ~15 digits, not the sweeps' 55.
    "scan_digits": 20,
    # Newton/halving iterations locating one feature (quadratic near it, halving otherwise).
    "iterations": 60,
    # A feature wider than this fraction of [t0, t1] needs no critical time (as symode.verify.features).
    "wide_fraction": sympy.Rational(1, 8),
    # Most features kept (each costs ~log2(span/w) extra steps in every sweep).
    "max_features": 32,
}


def solution_features(M, exprs, critical=()) -> tuple:
    """Critical times ``((c, w), ...)`` of the arguments of ``exprs`` (bare integrands: the time symbol, the
    states of ``M``, constants substituted) that depend on the states, along the solution of the symode Model
    ``M`` over [t0, t1]; ``critical``: the model's own critical times, for its solves."""
    states = list(M.states)
    args = []
    for e in exprs:
        for u in _critical(sympy.sympify(e)):
            free = u.free_symbols
            if free & set(states) and free <= set(states) | {M.t} and u not in args:
                args.append(u)
    if not args:
        return ()
    S = SOLUTION_FEATURE_SETTINGS
    pv = M.param_values
    f = [sympy.sympify(e).xreplace(pv) for e in M.rhs]
    t0, t1 = sympy.Rational(M.t0), sympy.Rational(M.t1)
    span = t1 - t0
    if span <= 0:
        return ()
    from ..oracle.taylor import TaylorSystem, integrate, to_mpf
    system = TaylorSystem(states, f, M.t, params=M.params)
    theta = M.theta
    y0 = [sympy.sympify(e).xreplace(pv) for e in M.z0]
    digits = S["scan_digits"]

    def solve(ta, ya, tb):
        if tb == ta:
            return list(ya)
        row = integrate(system, ya, ta, [tb], params=theta, digits=digits, critical_times=critical)[0]
        return [_fraction(to_mpf(v)) for v in row]

    grid = [t0 + span * sympy.Rational(j, S["scan_points"]) for j in range(S["scan_points"] + 1)]
    try:
        rows = integrate(system, y0, t0, grid[1:], params=theta, digits=digits, critical_times=critical)
    except (ArithmeticError, ValueError):
        return ()
    ys = [[sympy.Rational(e) for e in y0]] + [[_fraction(to_mpf(v)) for v in row] for row in rows]

    def lie(a):
        return sympy.diff(a, M.t) + sum(sympy.diff(a, z) * fz for z, fz in zip(states, f))

    out = []
    for a in args:
        a1 = lie(a)
        a2 = lie(a1)
        vals = [(_value(a, M.t, states, t, y), _value(a1, M.t, states, t, y)) for t, y in zip(grid, ys)]
        for j in range(len(grid) - 1):
            (u0, d0), (u1, d1) = vals[j], vals[j + 1]
            if None in (u0, d0, u1, d1):
                continue
            if u0 * u1 < 0:
                target, slope = a, a1
            elif d0 * d1 < 0:
                target, slope = a1, a2
            else:
                continue
            c, yc = _locate(target, slope, M.t, states, grid[j], ys[j], grid[j + 1], solve, S["iterations"])
            if c is None:
                continue
            if target is a:
                r = _value(a1, M.t, states, c, yc)
                w = 1 / abs(r) if r else span
            else:
                r = _value(a2, M.t, states, c, yc)
                w = mpmath.sqrt(2 / abs(r)) if r else span
            w = sympy.Rational(mpmath.nstr(min(mpmath.mpf(w), mpmath.mpf(float(span))), 15, min_fixed=-1, max_fixed=-1))
            if w <= span * S["wide_fraction"]:
                out.append((c, w))
    out = sorted(set(out))[: S["max_features"]]
    return tuple(out)


def _value(a, t, states, tv, y) -> mpmath.mpf | None:
    """``a`` at time ``tv`` and states ``y`` (exact rationals) as an mpf, None where it has no finite value."""
    point = {t: sympy.Rational(tv), **{z: sympy.Rational(v) for z, v in zip(states, y)}}     # exact
    try:
        z, _ = evaluate(a, point, 128)
    except (Unevaluable, ValueError, ZeroDivisionError, ArithmeticError):
        return None
    if not (z.real.is_finite() and z.imag.contains(0)):
        return None
    return mpmath.mpf(z.real.mid().str(30, radius=False))


def _locate(g, dg, t, states, ta, ya, tb, solve, iterations):
    """A zero of ``g`` along the solution in [ta, tb] (the signs of g at the ends differ): Newton steps in time
    kept inside the bracket, halving otherwise; returns (c, states at c), or (None, None)."""
    ga = _value(g, t, states, ta, ya)
    if ga is None:
        return None, None
    lo, hi, x, yx = ta, tb, ta, ya
    sign_lo = ga > 0
    for _ in range(iterations):
        gx = _value(g, t, states, x, yx)
        dx = _value(dg, t, states, x, yx)
        if gx is None:
            return None, None
        if gx == 0:
            return x, yx
        if (gx > 0) == sign_lo:
            lo = x
        else:
            hi = x
        step = None
        if dx:
            step = sympy.Rational(mpmath.nstr(gx / dx, 25, min_fixed=-1, max_fixed=-1))
        nxt = x - step if step is not None and lo < x - step < hi else (lo + hi) / 2
        if abs(nxt - x) <= (tb - ta) * sympy.Rational(1, 10 ** 14):
            return nxt, solve(ta, ya, nxt)
        try:
            yx = solve(ta, ya, nxt)
        except (ArithmeticError, ValueError):
            return None, None
        x = nxt
    return x, yx


def _fraction(v) -> sympy.Rational:
    """An mpf state value as the exact rational a solve restarts from (the oracle's rule, values below its
    underflow bound flushed to 0: the tail of a spike, exp(-2e9), would be a fraction of 2.9e9 bits)."""
    from ..oracle.routes import restart_fraction
    f = restart_fraction(v)
    return sympy.Rational(f.numerator, f.denominator)
