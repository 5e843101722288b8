"""Where a claim is evaluated: sample points of exact rationals, chosen to look where claims fail.

Four kinds, all reproducible from a seeded ``random.Random``:

* *small*: values from 1/2, 2, -1, 3/2, ... (readable counterexamples);
* *random*: half "narrow" (4 decimals in [-3, 3]), half "wide" (|v| log-uniform in [0.1, 1000], random sign);
* *targeted*: near the real zeros of every function argument, denominator and kink argument of the claim
  (``tanh(10000*x)`` is probed at x = ±5e-5 and ±2e-4, ``abs(s - a)`` at a on both sides of its kink),
  offset in units of 1/|du/ds| at the zero, so a claim false only in a narrow region is seen; kink arguments
  that contain an integration variable are probed where the kink crosses an end of the interval;
* *extreme*: one symbol at a time at ±1e-6 and ±1e6 (identities that hold only in a band of magnitudes).

Symbols declared positive get positive values; no symbol is sampled at 0 by the random kinds.
"""
from __future__ import annotations

import random
from decimal import Decimal
from fractions import Fraction

import sympy

from .balls import Unevaluable, evaluate
from .modeldecl import DataLabel
from .tolerances import VERIFY_SETTINGS

#: Small values tried first for a readable counterexample.
SMALL = [sympy.Rational(v) for v in ("1/2", "2", "-1", "3/2", "1/3", "-1/2", "3", "-2", "2/3", "5/2")]


def _positive(s, positive) -> bool:
    return s in positive or bool(s.is_positive)


def varied(s) -> bool:
    """Whether ``s`` is a real symbol that targeted and extreme points vary (not an integer, not data)."""
    return not (s.is_integer or isinstance(s, DataLabel))


def random_point(symbols, rng: random.Random, positive: frozenset, small: bool = False,
                 narrow: bool = False) -> dict:
    """One sample point (see the module docstring); never 0.  ``narrow``: never a wide point.  Integer
    symbols get integers (counts 1 to ``max_count``), indexed data a sequence of ``sequence_length`` values
    (element k of ``x[k]``), each drawn like a real symbol's."""
    point = {}
    wide = not small and not narrow and rng.random() < 0.5
    for s in symbols:
        if isinstance(s, DataLabel):
            e = sympy.Dummy(real=True)
            point[s] = tuple(random_point([e], rng, frozenset(), small, narrow)[e]
                             for _ in range(VERIFY_SETTINGS["sequence_length"]))
            continue
        if s.is_integer:
            lo = 1 if _positive(s, positive) else -3
            point[s] = sympy.Integer(rng.randint(lo, VERIFY_SETTINGS["max_count"]))
            continue
        if wide:
            lo, hi = VERIFY_SETTINGS["wide_log10"]
            e = rng.uniform(lo, hi)
            k = int(e // 1)
            mant = sympy.Rational(round(10 ** (e - k) * 1000), 1000)      # in [1, 10], 4 significant digits
            v = mant * sympy.Rational(10) ** k
            if not _positive(s, positive) and rng.random() < 0.5:
                v = -v
        elif small:
            v = rng.choice(SMALL)
            if _positive(s, positive) and v <= 0:
                v = -v
        else:
            n = rng.randint(1, 30000)
            if not _positive(s, positive) and rng.random() < 0.5:
                n = -n
            v = sympy.Rational(n, 10000)
        point[s] = v
    return point


def extreme_points(symbols, rng: random.Random, positive: frozenset) -> list:
    """One symbol at a time at ±1e-6 and ±1e6 (positive symbols: +), the others at a random narrow point."""
    out = []
    for s in filter(varied, symbols):
        for mag in VERIFY_SETTINGS["extremes"]:
            for sign in ((1,) if _positive(s, positive) else (1, -1)):
                base = random_point(symbols, rng, positive)
                base[s] = sign * sympy.Rational(mag)
                out.append(base)
    return out


def _critical(expr) -> list:
    """Expressions whose real zeros are where the claim can change behaviour: arguments of functions,
    denominators and bases of fractional powers, kink arguments (abs, sign, Heaviside, Max/Min differences,
    Piecewise conditions).  An argument that contains an integration variable is replaced by its values at
    the interval's ends (where a moving kink enters or leaves the interval)."""
    out = []

    def add(u, bound):
        u = sympy.sympify(u)
        if not u.free_symbols or u.is_number:
            return
        inner = u.free_symbols & bound
        if inner:
            for var, lo, hi in _bounds_of(bound, expr):
                if var in inner:
                    out.append(u.subs(var, lo))
                    out.append(u.subs(var, hi))
            return
        out.append(u)

    def walk(e, bound):
        if isinstance(e, sympy.Integral):
            var = e.limits[0][0]
            for lim in e.limits[0][1:]:
                walk(lim, bound)
            walk(e.function, bound | {var})
            return
        if isinstance(e, sympy.Pow):
            if e.exp.is_negative or (e.exp.is_Rational and not e.exp.is_Integer) or not e.exp.is_number:
                add(e.base, bound)
        elif isinstance(e, (sympy.Max, sympy.Min)):
            for i, u in enumerate(e.args):
                for w in e.args[i + 1:]:
                    add(u - w, bound)
        elif isinstance(e, sympy.Piecewise):
            for _, cond in e.args:
                for rel in cond.atoms(sympy.core.relational.Relational):
                    add(rel.lhs - rel.rhs, bound)
        elif isinstance(e, sympy.Function) and e.args:
            add(e.args[0], bound)
        for a in e.args:
            walk(a, bound)

    walk(sympy.sympify(expr), frozenset())
    seen, unique = set(), []
    for u in out:
        if u not in seen:
            seen.add(u)
            unique.append(u)
    return unique


def _bounds_of(bound, expr) -> list:
    return [i.limits[0] for i in expr.atoms(sympy.Integral) if len(i.limits[0]) == 3 and i.limits[0][0] in bound]


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


def _real_roots(u, s) -> list:
    """Real zeros of the univariate ``u(s)`` (other symbols already substituted): of the numerator's
    polynomial when ``u`` is rational in ``s`` (degree at most 12), else sign changes on a log-spaced grid
    over ±[1e-6, 1e4], refined by bisection."""
    try:
        num = sympy.numer(sympy.together(u))
        if num.is_polynomial(s):
            poly = sympy.Poly(num, s)
            if 0 < poly.degree() <= 12:
                out = []
                for r in poly.nroots(n=30, maxsteps=100):
                    if r.is_real:
                        out.append(sympy.Rational(str(sympy.Float(r, 25))))
                return out
            return []
    except (sympy.PolynomialError, sympy.polys.polyerrors.NoConvergence, ValueError, TypeError, ZeroDivisionError):
        return []
    grid = [sympy.Rational(0)]
    for k in range(-12, 9):
        grid += [sympy.Rational(10) ** k * m / 2 for m in (2, 3, 5, 7, 10, 14)]
    grid = sorted(set(grid + [-g for g in grid]))

    def sign_at(v):
        try:
            z, _ = evaluate(u, {s: v}, 96)
        except (Unevaluable, ValueError, ZeroDivisionError, ArithmeticError):
            return 0
        if not (z.imag.is_zero() and z.real.is_finite()) or z.real.contains(0):
            return 0
        return 1 if z.real > 0 else -1

    signs = [sign_at(v) for v in grid]
    roots = []
    for (a, sa), (b, sb) in zip(zip(grid, signs), zip(grid[1:], signs[1:])):
        if sa and sb and sa != sb:
            for _ in range(60):
                m = (a + b) / 2
                sm = sign_at(m)
                if sm == 0:
                    break
                a, b = (m, b) if sm == sa else (a, m)
            roots.append(sympy.Rational(str(sympy.Float((a + b) / 2, 25))))
        if len(roots) >= VERIFY_SETTINGS["max_roots"]:
            break
    return roots


def targeted_points(exprs, symbols, rng: random.Random, positive: frozenset) -> list:
    """Points near the real zeros of the claim's critical arguments (see the module docstring): for each
    symbol, one random base point for the others; every zero of every critical argument in that symbol, with
    offsets in units of 1/|du/ds| there, and the midpoints between neighbouring zeros (a claim false only
    between two close kinks, |x - 0.001| + |x + 0.001| = 2|x|, is seen at x = 0)."""
    crit = []
    for e in exprs:
        for u in _critical(e):
            if u not in crit:
                crit.append(u)
    crit = crit[: VERIFY_SETTINGS["max_critical"]]
    out = []
    offsets = [sympy.Rational(o) for o in VERIFY_SETTINGS["root_offsets"]]
    for s in filter(varied, symbols):
        base = random_point(symbols, rng, positive)
        zeros = set()
        for u in crit:
            if s not in u.free_symbols:
                continue
            us = u.xreplace({k: v for k, v in base.items() if k != s and varied(k)})
            if us.free_symbols - {s}:
                continue
            for r in _real_roots(us, s)[: VERIFY_SETTINGS["max_roots"]]:
                zeros.add(r)
                step = _step(sympy.diff(us, s), s, r)
                out += [{**base, s: r + c * step} for c in offsets]
        ordered = sorted(zeros)
        out += [{**base, s: (p + q) / 2} for p, q in zip(ordered, ordered[1:])]
    return [p for p in out if all(v > 0 for k, v in p.items() if _positive(k, positive))]


def _step(du, s, r) -> sympy.Rational:
    """1/|du/ds| at the zero r (6 significant digits), or 1e-3*max(1, |r|) where that is not finite."""
    try:
        slope, _ = evaluate(du, {s: r}, 96)
        if slope.real.is_finite() and not slope.real.contains(0):
            step = _rational(1 / abs(slope.real), 6)
            if step:
                return step
    except (Unevaluable, ValueError, ZeroDivisionError, ArithmeticError):
        pass
    return sympy.Rational(1, 1000) * max(1, abs(r))
