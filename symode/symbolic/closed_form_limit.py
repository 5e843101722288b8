"""Closed forms at removable singularities: the value as a limit, with a measured error bound.

A closed form found for generic parameter values can be undefined at particular ones although the quantity it
stands for is perfectly regular there.  ``dz/dt = a z + b`` has ``z = e^{aτ} Z0 + (b/a)(e^{aτ} - 1)``, which is
0/0 at ``a = 0`` (where ``z = Z0 + b τ``); a critically damped oscillator (``c² = 4k``) divides by
``sqrt(c² - 4k)``.  For a linear constant-coefficient system the solution, and with it the loss and its
gradients, is an entire function of the parameters, the initial state and the interval, so such a singularity
is removable: the value at the point is the limit from any direction.

:func:`limit_values` computes that limit numerically.  Let ``x`` be the parameters and the free initial state
at their nominal values, and ``v`` a direction.  ``g(h) = G(x + h v)`` is analytic in ``h`` near 0, so
Richardson-Neville extrapolation of ``g(h_j)``, ``h_j = h0 / 2^j`` (``j = 0, 1, ...``), to ``h = 0`` converges
like ``h0^J 2^{-J(J-1)/2}`` after ``J`` points.  Each ``g(h_j)`` is evaluated with mpmath at
``2 digits + 60`` digits, so the cancellation near the singularity (a few digits per power of ``1/h``) never
reaches the requested digits.  The limit is taken along three directions (``v``, ``-v`` and another ``w``);
the error bound is measured as 10 x the largest relative difference between the directions and between the
last two extrapolants, rounded up to a power of ten and never below ``10^-(digits-1)`` (the oracle's
convention, relative to ``max(|value|, 1e-8)``).  Directions that disagree by more than ``10^-(digits-2)``
mean the singularity is not removable (or the limit did not converge): :class:`NoClosedFormError`, never a
number.
"""
from __future__ import annotations

import mpmath
import sympy

from ..errors import NoClosedFormError

__all__ = ["limit_values"]

#: Relative values are measured against max(|value|, VALUE_FLOOR), as in the oracle's error bound.
VALUE_FLOOR = mpmath.mpf("1e-8")
_H0 = mpmath.mpf(2) ** -8  # first step along a direction (relative to max(1, |x_i|))
_MIN_POINTS, _MAX_POINTS = 6, 120


def _directions(n: int) -> list[list[sympy.Rational]]:
    v = [sympy.Rational(1, i + 2) for i in range(n)]
    w = [sympy.Rational((-1) ** i, i + 3) for i in range(n)]
    return [v, [-c for c in v], w]


def _real(value, digits: int, what: str):
    if isinstance(value, mpmath.mpc):
        if abs(value.imag) > abs(value.real) * mpmath.mpf(10) ** (-(digits + 5)) + mpmath.mpf(10) ** (-(digits + 10)):
            raise NoClosedFormError(f"the closed form's {what} is complex near these parameter values ({value}); "
                                    "use --method oracle")
        return value.real
    return mpmath.mpf(value)


def _extrapolate(g, digits: int) -> tuple:
    """Neville extrapolation of g(h_j) to h = 0: (value, |last two extrapolants' difference|)."""
    hs, table = [], []
    tol = mpmath.mpf(10) ** (-(digits + 8))
    best, change = None, mpmath.inf
    for j in range(_MAX_POINTS):
        h = _H0 / 2 ** j
        row = [g(h)]
        for k in range(1, j + 1):  # Neville: T[j][k] from T[j][k-1] and T[j-1][k-1]
            ratio = hs[j - k] / h
            row.append(row[k - 1] + (row[k - 1] - table[j - 1][k - 1]) / (ratio - 1))
        hs.append(h)
        table.append(row)
        if j:
            change = abs(row[-1] - table[j - 1][-1])
        best = row[-1]
        if j + 1 >= _MIN_POINTS and change <= tol * max(abs(best), VALUE_FLOOR):
            break
    return best, change


def limit_values(exprs: dict, variables: list, nominal: dict, fixed: dict, digits: int) -> tuple[dict, str]:
    """Limits of ``exprs`` (name -> SymPy expression or None) as ``variables`` approach ``nominal``.

    ``fixed`` holds the values of the other symbols (exact).  Returns ``({name: mpf or None}, error_bound)``
    with ``error_bound`` a string ``"1e-N"``; raises :class:`NoClosedFormError` when the directions disagree.
    """
    dps = 2 * digits + 60
    names = [k for k, e in exprs.items() if e is not None]
    symbols = list(variables) + list(fixed)
    with mpmath.workdps(dps):
        funcs = {k: sympy.lambdify(symbols, exprs[k], modules="mpmath") for k in names}
        x0 = [mpmath.mpf(sympy.Rational(nominal[s]).p) / sympy.Rational(nominal[s]).q for s in variables]
        rest = [mpmath.mpf(sympy.Rational(v).p) / sympy.Rational(v).q for v in fixed.values()]
        scale = [max(mpmath.mpf(1), abs(x)) for x in x0]
        results: dict = {k: [] for k in names}
        for direction in _directions(len(variables)):
            d = [mpmath.mpf(c.p) / c.q * s for c, s in zip(direction, scale)]
            for k in names:
                def g(h, f=funcs[k]):
                    return _real(f(*[x + h * di for x, di in zip(x0, d)], *rest), digits, k)
                results[k].append(_extrapolate(g, digits))
        worst = mpmath.mpf(0)
        values = {}
        for k in names:
            first = results[k][0][0]
            ref = max(abs(first), VALUE_FLOOR)
            for value, change in results[k]:
                worst = max(worst, abs(value - first) / ref, change / ref)
            values[k] = first
    if worst > mpmath.mpf(10) ** (-(digits - 2)):
        raise NoClosedFormError(
            f"the closed form is singular at these parameter values and its limit there does not settle "
            f"(directions differ by {mpmath.nstr(worst, 3)} relative): the singularity is not removable, or "
            "not to the requested digits; use --method oracle")
    exponent = digits - 1
    while exponent > 0 and 10 * worst > mpmath.mpf(10) ** (-exponent):
        exponent -= 1
    out = {k: (values[k] if k in values else None) for k in exprs}
    return out, f"1e-{exponent}"
