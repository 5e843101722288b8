"""Where a claim's critical arguments vanish: the zeros of one argument in one symbol, found rigorously.

:func:`real_roots` gives the real zeros of a univariate expression: of a polynomial from its roots, of a
transcendental one from a search in ball arithmetic that excludes intervals where the argument provably has
no zero (so a narrow band, such as the one of width 0.009 where sin(s) > 0.99999, is found, where a grid
steps over it).  :func:`stationary_points` gives the points where a multivariate argument is stationary
(its extrema: a small disc where x**2 + y**2 < 1e-6 is found at its centre).  :mod:`symode.verify.points`
puts sample points there.
"""
from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import mpmath
import sympy
from flint import acb, arb

from .balls import Unevaluable, evaluate, to_ball, working_precision
from .tolerances import VERIFY_SETTINGS

__all__ = ["real_roots", "stationary_points"]


def _rational(x, digits: int = 20) -> sympy.Rational | None:
    """A ball's midpoint as an exact rational with ``digits`` significant digits (None if not finite)."""
    if not x.is_finite():
        return None
    text = x.mid().str(digits, radius=False)
    try:
        f = Fraction(Decimal(text))
    except (ArithmeticError, ValueError):
        return None
    return sympy.Rational(f.numerator, f.denominator)


def real_roots(u, s, positive: bool = False) -> list:
    """Real zeros of the univariate ``u(s)`` (other symbols already substituted), nearest the origin first
    (only positive ones for a ``positive`` symbol): every real root of the numerator's polynomial when ``u`` is
    rational in ``s`` (degree at most ``max_polynomial_degree``: a kink argument with six real roots is
    probed at all six), else
    the ``max_roots`` nearest the origin that a rigorous search over [-1e4, 1e4] finds (:func:`_search`),
    zeros that ``u`` only touches included."""
    try:
        num = sympy.numer(sympy.together(u))
        if num.is_polynomial(s):
            poly = sympy.Poly(num, s)
            if poly.degree() <= 0:
                return []
            if poly.degree() <= VERIFY_SETTINGS["max_polynomial_degree"]:
                # the square-free part: nroots does not converge on a multiple root (x**4)
                poly = sympy.Poly(sympy.sqf_part(poly.as_expr()), s)
                out = []
                for r in poly.nroots(n=30, maxsteps=200):
                    if r.is_real and (r > 0 or not positive):
                        out.append(dyadic(sympy.Rational(str(sympy.Float(r, 30)))))
                return sorted(set(out), key=abs)
    except (sympy.PolynomialError, mpmath.libmp.NoConvergence, ValueError, TypeError, ZeroDivisionError):
        pass                        # the rigorous search below finds them instead
    decades = [sympy.Rational(0)] + [sympy.Rational(10) ** k for k in range(-12, 5)]
    segments = list(zip(decades, decades[1:]))
    found = _search(u, s, segments if positive else segments + [(-b, -a) for a, b in segments])
    return [r for r in found if r > 0 or not positive][: VERIFY_SETTINGS["max_roots"]]


def dyadic(r, bits: int = 150) -> sympy.Rational:
    """``r`` rounded to a rational with a power-of-two denominator, ``bits`` significant bits: exact in ball
    arithmetic.  A zero such as 1/1000 is not: there |v - 1/1000| is a ball around 0 and both sides of a true
    claim vanish within their radii at every precision (unresolved); 2**-150 away from it they are decided."""
    r = sympy.Rational(r)
    if r == 0 or r.q & (r.q - 1) == 0:
        return r
    shift = bits - int(abs(r)).bit_length() if abs(r) >= 1 else bits + (r.q // abs(r.p)).bit_length()
    return sympy.Rational(round(r * 2 ** shift), 2 ** shift)


def _ball_of(u, s, a, b, bits: int = 96):
    """The ball of ``u`` over [a, b] (exact rationals): its real part, None where that is not finite or the
    value may be non-real, and False where ``u`` is provably non-real over all of [a, b] (no zero there).  At
    a point (a == b) a ball that contains 0 is evaluated again at higher precision (320, then 1024 bits):
    10**40*(sin(x) - 1) + 1 has no sign at 96 bits near pi/2, where its zeros are."""
    z = _ball_once(u, s, a, b, bits)
    if a == b:
        for more in (320, 1024):
            if z is None or z is False or not z.contains(0):
                break
            z = _ball_once(u, s, a, b, more)
    return z


def _ball_once(u, s, a, b, bits: int):
    mid, rad = (a + b) / 2, (b - a) / 2
    try:
        if rad:
            with working_precision(bits):       # the interval's ends at the working precision, not flint's 53
                ball = acb(to_ball(mid).real + arb(0, to_ball(rad).real.upper()))
        else:
            ball = mid                          # exact: evaluate converts it at the working precision
        z, _ = evaluate(u, {s: ball}, bits)
    except (Unevaluable, ValueError, ZeroDivisionError, ArithmeticError, TypeError):
        return None
    if z.imag.is_finite() and not z.imag.contains(0):
        return False
    if not (z.imag.is_zero() and z.real.is_finite()):
        return None
    return z.real


def _sign(u, s, v) -> int:
    z = _ball_of(u, s, v, v)
    if z is None or z is False or z.contains(0):
        return 0
    return 1 if z > 0 else -1


def _search(u, s, segments) -> list:
    """Zeros of ``u(s)`` on the union of ``segments`` [(a, b), ...], nearest the origin first.

    Rigorous exclusion, not sampling: an interval over which the ball of ``u`` excludes 0 (or is provably
    non-real) has no zero; the others are halved, widest first, the segments taking turns (those nearest the
    origin most often) within ``root_search_evaluations`` evaluations, so every segment is searched and none starves the
    rest.  Where ``u`` is monotone (the ball of du/ds excludes 0) an interval holds a zero exactly when the
    signs at its ends differ, found by bisection.  A short interval (1/64 of max(1, |s|)) where du/ds changes
    sign once has its extremum found by bisection: a zero on either side where ``u`` changes sign there, a
    zero ``u`` touches where the extremum is within rounding of 0 (sin(s) - 1 at pi/2).  So the band of width
    0.009 near pi/2 where sin(s) > 0.99999, which a grid misses, is seen: its two ends are zeros, and the
    targeted points probe between them."""
    import heapq
    du = sympy.diff(u, s)
    search = _Search(u, du, s, VERIFY_SETTINGS["root_search_evaluations"])
    # a segment reaching past 10**(k + 1) takes a turn every 2**k rounds: the decades where samples are
    # densest (|s| <= 10) are searched most
    heaps = [(2 ** max(0, len(str(int(max(abs(a), abs(b))))) - 2), [(-(b - a), 0, a, b)])
             for a, b in sorted(segments, key=lambda ab: abs(ab[0] + ab[1]))]
    turn = 0
    while heaps and search.budget > 0:
        turn += 1
        for every, heap in heaps:
            if search.budget <= 0:
                break
            if turn % every:
                continue
            _, _, a, b = heapq.heappop(heap)
            for lo, hi in search.split(a, b):
                heapq.heappush(heap, (-(hi - lo), abs(lo + hi), lo, hi))
        heaps = [(every, h) for every, h in heaps if h]
    # zeros within 1e-9 (relative) of each other are one, a located zero (bisected, an extremum) preferred to
    # the midpoint of a box the search could not split further: the band around an extremum may be narrower
    # than the boxes
    clusters: list = []
    for r, rough in sorted((r, i in search.rough) for i, r in enumerate(search.found)):
        if clusters and r - clusters[-1][-1][0] <= max(1, abs(r)) * sympy.Rational(1, 10 ** 9):
            clusters[-1].append((r, rough))
        else:
            clusters.append([(r, rough)])
    out = []
    for cl in clusters:
        located = [r for r, rough in cl if not rough]
        out.append(dyadic(located[0] if located else cl[len(cl) // 2][0]))
    return sorted(out, key=abs)


class _Search:
    """One interval step of :func:`_search`: ``split(a, b)`` records the zeros it settles in ``found`` and
    returns the halves still to search (none when the interval is settled)."""

    def __init__(self, u, du, s, budget: int):
        self.u, self.du, self.s, self.budget, self.found = u, du, s, budget, []
        self.ddu = None
        self.rough: set = set()       # indices in found of boxes' midpoints (the others are located)

    def ball(self, e, a, b):
        self.budget -= 1
        return _ball_of(e, self.s, a, b)

    def sign(self, e, v) -> int:
        self.budget -= 1
        return _sign(e, self.s, v)

    def split(self, a, b) -> list:
        z = self.ball(self.u, a, b)
        if z is False or (z is not None and not z.contains(0)):
            return []
        short = b - a <= max(1, abs(a)) / 64
        if z is not None:
            slope = self.ball(self.du, a, b)
            if slope is not None and slope is not False and not slope.contains(0):
                sa, sb = self.sign(self.u, a), self.sign(self.u, b)
                if sa and sb and sa != sb:
                    self.found.append(self.bisect(self.u, a, b, sa))
                elif not (sa and sb):
                    self.found.append(a if not sa else b)
                return []
            if short and self.extremum(a, b):
                return []
        if b - a <= max(1, abs(a)) * sympy.Rational(1, 10 ** 15):
            self.found.append((a + b) / 2)
            self.rough.add(len(self.found) - 1)     # a box's midpoint, not a located zero
            return []
        m = (a + b) / 2
        return [(a, m), (m, b)]

    def extremum(self, a, b) -> bool:
        """Settle [a, b] through its one extremum (du/ds changes sign at its ends); False if it cannot."""
        da, db = self.sign(self.du, a), self.sign(self.du, b)
        if not (da and db and da != db):
            return False
        c = self.bisect(self.du, a, b, da)
        sa, sc, sb = self.sign(self.u, a), self.sign(self.u, c), self.sign(self.u, b)
        if not sc:
            self.found.append(c)
            return True
        if not (sa and sb):
            return False
        if sa != sc:
            self.found.append(self.bisect(self.u, a, c, sa))
        if sb != sc:
            self.found.append(self.bisect(self.u, c, b, sc))
        return True

    def bisect(self, e, a, b, sa: int):
        """The zero of ``e`` in [a, b] (sign ``sa`` at a, the other sign at b), to 1e-40 of max(1, |a|) (an
        extremum inside a band 1e-20 wide, abs(10**40*(sin(x) - 1) + 1), must land in it):
        Newton steps while they stay inside the bracket and at least halve the step before, bisection
        otherwise (quadratic near a simple zero, never worse than bisection)."""
        de = self.derivative(e)
        goal = max(1, abs(a)) * sympy.Rational(1, 10 ** 40)
        x, last = (a + b) / 2, b - a
        for _ in range(100):
            z = _ball_of(e, self.s, x, x)
            self.budget -= 1
            if z is None or z is False or z.contains(0):
                return x
            if (z > 0) == (sa > 0):
                a = x
            else:
                b = x
            if b - a <= goal:
                break
            slope = _ball_of(de, self.s, x, x)
            self.budget -= 1
            step = None
            if slope is not None and slope is not False and not slope.contains(0):
                step = _rational(z / slope, 30)
            if step is not None and a < x - step < b and 2 * abs(step) <= last:
                x, last = x - step, abs(step)
                if last <= goal:
                    return x
            else:
                x, last = (a + b) / 2, b - a
        return (a + b) / 2

    def derivative(self, e):
        if e is self.u:
            return self.du
        if self.ddu is None:
            self.ddu = sympy.diff(self.du, self.s)
        return self.ddu


def stationary_points(u, symbols, starts) -> list:
    """Points where ``u`` (an expression in ``symbols``, two or more) is stationary, by Newton's method on its
    gradient from each of ``starts`` (dicts symbol -> value), in float64 from balls evaluated at the iterates;
    each converged point (gradient below 1e-12 relative) once, as exact rationals of 15 digits.  Where an
    argument's extremum lies inside a small region (x**2 + y**2 - 1e-6 < 0 only within 1e-3 of the origin,
    sin(x)*sin(y) > 0.99999 only near (pi/2, pi/2)), no sample lands by chance, but the extremum is in it."""
    import numpy as np
    grad = [sympy.diff(u, s) for s in symbols]
    hess = [[sympy.diff(g, s) for s in symbols] for g in grad]

    def values(exprs, x) -> list | None:
        point = {s: acb(arb(float(v))) for s, v in zip(symbols, x)}
        out = []
        for e in exprs:
            try:
                z, _ = evaluate(e, point, 64)
            except (Unevaluable, ValueError, ZeroDivisionError, ArithmeticError, TypeError):
                return None
            if not (z.real.is_finite() and z.imag.contains(0)):
                return None
            out.append(float(z.real.mid()))
        return out

    found = []
    for start in starts:
        x = np.array([float(start[s]) for s in symbols])
        for _ in range(VERIFY_SETTINGS["stationary_iterations"]):
            g = values(grad, x)
            h = values([e for row in hess for e in row], x)
            if g is None or h is None:
                break
            g, h = np.array(g), np.array(h).reshape(len(symbols), len(symbols))
            try:
                step = np.linalg.lstsq(h, g, rcond=None)[0]
            except np.linalg.LinAlgError:
                break
            x = x - step
            if not np.all(np.isfinite(x)) or np.max(np.abs(x)) > 1e6:
                break
            if np.max(np.abs(step)) <= 1e-14 * max(1.0, float(np.max(np.abs(x)))):
                break
        # the last iterate, converged or not: at a degenerate extremum (x**4 + y**4) Newton only closes in
        # linearly, and a point near the extremum is still where the region is
        if np.all(np.isfinite(x)) and np.max(np.abs(x)) <= 1e6:
            point = {s: sympy.Rational(str(sympy.Float(v, 15))) for s, v in zip(symbols, x)}
            if point not in found:
                found.append(point)
    return found
