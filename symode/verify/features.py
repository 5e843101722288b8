"""Critical times of expressions of the time alone: where a narrow feature sits that Taylor steps could pass over.

The oracle's Taylor integrator chooses each step from the coefficients at the step's start
(:mod:`symode.oracle.stepping`); a spike such as ``exp(-1e10*(t - 0.3)**2)`` is ~exp(-4e8) at t = 0 and its
coefficients show nothing, so the step goes over it.  :func:`time_features` lists the places such features can
sit, as pairs ``(c, w)`` (a feature of width about ``w`` at time ``c``) for the integrator's ``critical_times``
(:mod:`symode.oracle.critical`).

For every argument ``u(t)`` of a function, denominator, fractional power or kink (abs, sign, Heaviside,
Max/Min, Piecewise condition) of the expressions -- as :func:`symode.verify.points._critical` lists them --
that depends on the time alone (parameters substituted):

* its real zeros and the zeros of ``u'`` (the extremes of ``u``: a double root such as the one of
  ``-1e10*(t - 0.3)**2``, or a peak that never reaches 0, ``-1e10*(t - 0.3)**2 - 30``).  A polynomial's roots
  come from ``nroots``; any other argument is searched rigorously: an interval of time whose ball of values
  (flint, :func:`symode.verify.balls.evaluate` on an interval ball) excludes 0 holds no zero, the rest is
  halved down to ``resolution`` of the span, and a sign change is then bisected at points.  No zero is missed
  in the searched range; a zero the search cannot separate from others is kept at its interval's midpoint;
* the width ``w`` of each: the largest ``span / 2**k`` over which ``u`` changes by less than 1 on both sides
  (the distance over which the argument changes by O(1)), and no more than the distance to the next critical
  time of any argument (two kinks close together, ``abs(t - 0.3) - abs(t - 0.30001)``, make a window of
  width 1e-5 even though each argument changes slowly).

A feature wider than ``wide_fraction`` of the span needs nothing (the step control's own steps are shorter);
one outside [t0, t1] is kept while it lies within ``reach_widths`` widths of the interval (the tail of a
cliff ``exp((t - c)/w)`` just past the end lies inside).  Polynomial roots are found anywhere; the rigorous
search covers [t0, t1] widened by ``search_margin`` of the span on each side.

Known limit: arguments that depend on the states as well (a spike in ``u(t)`` itself) cannot be located
before the solution is known; they are not listed.
"""
from __future__ import annotations

import mpmath
import sympy
from flint import acb, arb, fmpq, fmpz

from ..lru import LRUCache
from .balls import Unevaluable, evaluate
from .points import _critical

__all__ = ["FEATURE_SETTINGS", "TooManyFeatures", "time_features", "model_features"]

#: Settings of the feature search, each with its reason.
FEATURE_SETTINGS: dict = {
    # A feature wider than this fraction of [t0, t1] needs no critical time: the step control takes steps of
    # order the width anyway once the feature's coefficients are within the tolerance (the brief's rule).
    "wide_fraction": sympy.Rational(1, 8),
    # A feature outside [t0, t1] is kept when it is within this many widths of the interval: a cliff
    # exp((t - c)/w) is exp(-d/w) at distance d, and exp(-128) ~ 1e-56 is below the sweeps' 55 digits.
    "reach_widths": 128,
    # The rigorous search (non-polynomial arguments) covers [t0, t1] widened by this fraction of the span on
    # each side (polynomial roots are found everywhere).
    "search_margin": sympy.Rational(1, 4),
    # Intervals shorter than this fraction of the span are not halved further by the search (2**-40 ~ 1e-12):
    # zeros closer together than that are one critical time.
    "resolution_bits": 40,
    # Intervals the search may examine for one function (u or u') before giving up: ~20 per zero where the
    # function is monotone around it, ~2 per level of resolution where it is not; a transcendental argument
    # with hundreds of zeros in the interval (sin(1e6*t)) is not searched, its integral not trusted.
    "max_boxes": 3000,
    # Most critical times of one set of expressions: each costs ~log2(span/w) extra steps in every sweep.
    "max_features": 64,
    # Largest degree of a polynomial argument whose roots come from nroots (above: the rigorous search).
    "max_degree": 64,
    # Halvings of the span probed for a width (all of them, 2**-64 ~ 5e-20 of the span at the last: far below
    # the integrator's collapse threshold 1e-14, so a feature narrower than that fails loudly there).
    "width_halvings": 64,
    # Ball precision (bits) of the search and the widths: values of u near a zero of a 1e10-scaled
    # argument still have ~20 correct digits.
    "bits": 128,
}


class TooManyFeatures(ValueError):
    """An argument has more zeros in the interval than the search is allowed to locate."""


def time_features(exprs, t, t0, t1) -> tuple:
    """The critical times ``((c, w), ...)`` (exact Rationals, ascending) of the expressions ``exprs`` of the
    time symbol ``t`` (every other symbol already substituted) for an integration over [t0, t1] (see the module
    docstring); raises :class:`TooManyFeatures` when an argument has too many zeros to locate."""
    t0, t1 = sympy.Rational(t0), sympy.Rational(t1)
    lo, hi = min(t0, t1), max(t0, t1)
    span = hi - lo
    if span == 0:
        return ()
    args = []
    for e in exprs:
        for u in _critical(sympy.sympify(e)):
            if u.free_symbols == {t} and u not in args:
                args.append(u)
    if not args:
        return ()
    S = FEATURE_SETTINGS
    margin = span * S["search_margin"]
    found = []  # (c, argument, whether c is a located zero rather than a box's midpoint)
    for u in args:
        for f in (u, sympy.diff(u, t)):
            if f.free_symbols != {t}:
                continue
            found += [(c, u, exact) for c, exact in _zeros(f, t, lo - margin, hi + margin, span)]
    found.sort(key=lambda x: x[0])
    merge = span / 2 ** S["resolution_bits"]
    times = []  # [c, arguments, exact]: zeros within the resolution are one time, a located zero preferred
    for c, u, exact in found:
        if times and c - times[-1][0] <= merge:
            times[-1][1].append(u)
            if exact and not times[-1][2]:
                times[-1][0], times[-1][2] = c, True
        else:
            times.append([c, [u], exact])
    if len(times) > 4 * S["max_features"]:  # (before the widths: each costs ~200 evaluations)
        raise TooManyFeatures(f"{len(times)} zeros of arguments in time in [{lo - margin}, {hi + margin}] (more "
                              f"than {4 * S['max_features']} to examine)")
    out = []
    for i, (c, us, _) in enumerate(times):
        w = min(_width(u, t, c, span) for u in us)
        if i > 0:
            w = min(w, c - times[i - 1][0])
        if i + 1 < len(times):
            w = min(w, times[i + 1][0] - c)
        outside = max(lo - c, c - hi, 0)
        if w <= span * S["wide_fraction"] and outside <= S["reach_widths"] * w:
            out.append((c, w))
    if len(out) > S["max_features"]:
        raise TooManyFeatures(f"{len(out)} narrow features in time (more than {S['max_features']}) in "
                              f"[{lo}, {hi}]")
    return tuple(out)


#: critical times of a model's right-hand side and running cost, by model fingerprint (values included)
_MODEL_FEATURES: "LRUCache[tuple]" = LRUCache(32)


def model_features(model) -> tuple:
    """The critical times of a model's explicit-time features (its right-hand side and running cost at its
    parameter values, over [t0, t1]): computed once per model (fingerprint).  The oracle's routes and the
    verifier's sweeps pass them to every Taylor integration of the model; a spike of the forcing
    ``exp(-1e10*(t - 0.3)**2)`` is then resolved, not stepped over.  A matrix-form model (``structure``) is not
    searched: none.  Raises :class:`TooManyFeatures`."""
    if model.structure is not None:  # a matrix-form model: its scalar form would be built for this; not searched
        return ()

    def build():
        pv = model.param_values
        exprs = [sympy.sympify(e).xreplace(pv) for e in model.rhs]
        if model.running is not None:
            exprs.append(sympy.sympify(model.running).xreplace(pv))
        return time_features(exprs, model.t, model.t0.xreplace(pv), model.t1.xreplace(pv))
    return _MODEL_FEATURES.get_or_build(model.fingerprint(), build)


def _zeros(f, t, a, b, span) -> list:
    """Real zeros ``(c, located)`` of ``f(t)``: all of a polynomial's, else those in [a, b] by the rigorous
    search (``located``: bisected to a sign change, not a box's midpoint)."""
    try:
        num = sympy.numer(sympy.together(f))
        if num.is_polynomial(t):
            poly = sympy.Poly(num, t)
            if poly.degree() <= 0:
                return []
            if poly.degree() <= FEATURE_SETTINGS["max_degree"]:
                # the square-free part: nroots does not converge on a multiple root ((t - 0.3)**4)
                poly = sympy.Poly(sympy.sqf_part(poly.as_expr()), t)
                return [(sympy.Rational(str(sympy.Float(r, 30))), True) for r in poly.nroots(n=30, maxsteps=200)
                        if r.is_real]
    except (sympy.PolynomialError, mpmath.libmp.NoConvergence, ValueError, TypeError):
        pass
    return _search(f, t, a, b, span)


def _ball(a, b) -> acb:
    """The interval [a, b] (exact Rationals) as a ball containing it."""
    lo = arb(fmpq(fmpz(int(a.p)), fmpz(int(a.q))))
    hi = arb(fmpq(fmpz(int(b.p)), fmpz(int(b.q))))
    return acb(lo.union(hi))


def _value(f, t, v):
    """The ball of ``f`` at ``v`` (a Rational or an interval ball), or None where it has no numeric value."""
    try:
        z, _ = evaluate(f, {t: v}, FEATURE_SETTINGS["bits"])
    except (Unevaluable, ValueError, ZeroDivisionError, ArithmeticError):
        return None
    if not (z.real.is_finite() and z.imag.is_finite()):
        return None
    return z


def _sign(f, t, v) -> int:
    z = _value(f, t, v)
    if z is None or not z.imag.is_zero() or z.real.contains(0):
        return 0
    return 1 if z.real > 0 else -1


def _search(f, t, a, b, span) -> list:
    """Zeros of ``f`` in [a, b]: intervals whose value ball excludes 0 are dropped; one over which ``f`` is
    monotone (the ball of f' excludes 0) holds a zero exactly when the signs at its ends differ; the others are
    halved down to the resolution.  A sign change is bisected at points to 2**-100 of the span."""
    S = FEATURE_SETTINGS
    smallest = span / 2 ** S["resolution_bits"]
    df = sympy.diff(f, t)
    boxes, left, out = [(a, b)], S["max_boxes"], []
    while boxes:
        x, y = boxes.pop()
        left -= 1
        if left < 0:
            raise TooManyFeatures(f"the zeros of {f} in [{a}, {b}] are too many to locate")
        box = _ball(x, y)
        z = _value(f, t, box)
        if z is not None and not (z.real.contains(0) and z.imag.contains(0)):
            continue  # no zero in [x, y]
        slope = _value(df, t, box) if z is not None and z.imag.is_zero() else None
        if slope is not None and slope.imag.is_zero() and not slope.real.contains(0):
            sx, sy = _sign(f, t, x), _sign(f, t, y)
            if sx and sy:  # monotone: one zero when the ends differ in sign, none when they agree
                if sx != sy:
                    out.append((x, y))
                    if len(out) > 4 * S["max_features"]:
                        raise TooManyFeatures(f"the zeros of {f} in [{a}, {b}] are too many to locate")
                continue
        if y - x <= smallest:
            out.append((x, y))
            continue
        m = (x + y) / 2
        boxes += [(m, y), (x, m)]
    out.sort()
    merged = []
    for x, y in out:  # neighbouring boxes around one zero become one
        if merged and x <= merged[-1][1]:
            merged[-1] = (merged[-1][0], y)
        else:
            merged.append((x, y))
    zeros = []
    for x, y in merged:
        sx, sy = _sign(f, t, x), _sign(f, t, y)
        located = bool(sx and sy and sx != sy)
        if located:
            while y - x > span / 2 ** 100:
                m = (x + y) / 2
                sm = _sign(f, t, m)
                if sm == 0:
                    break
                x, y = (m, y) if sm == sx else (x, m)
        zeros.append(((x + y) / 2, located))
    return zeros


def _width(u, t, c, span) -> sympy.Rational:
    """Half the smallest ``span / 2**k`` at which ``u`` changes by 1 or more on a side of ``c`` (the largest
    probe below which it changes by less than 1 at every probe: an argument that swings back beyond its first
    swing, where a single probe could see little change, is not taken for wide), ``span`` when it never does;
    a side where ``u`` has no numeric value is left out, a probe with neither side counts as a change."""
    uc = _value(u, t, c)
    delta, failed = span, None
    for _ in range(FEATURE_SETTINGS["width_halvings"]):
        changes = []
        if uc is not None:
            for side in (c - delta, c + delta):
                v = _value(u, t, side)
                if v is not None:
                    changes.append(abs(v - uc))
        if not (changes and all(ch < 1 for ch in changes)):
            failed = delta
        delta = delta / 2
    return span if failed is None else failed / 2
