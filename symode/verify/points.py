"""Where a claim is evaluated: sample points of exact rationals, chosen to look where claims fail.

Four kinds, all reproducible from a seeded ``random.Random``:

* *small*: values from 1/2, 2, -1, 3/2, ... (readable counterexamples);
* *random*: half "narrow" (4 decimals in [-3, 3]), half "wide" (|v| log-uniform in [0.1, 1000], random sign);
* *targeted*: near the real zeros of every function argument, denominator and kink argument of the claim
  (``tanh(10000*x)`` is probed at x = ±5e-5 and ±2e-4, ``abs(s - a)`` at a on both sides of its kink),
  offset in units of 1/|du/ds| at the zero, and between neighbouring zeros, so a claim false only in a
  narrow region is seen; zeros of polynomials from their roots, of transcendental arguments from a rigorous
  search in ball arithmetic that also finds zeros an argument only touches and both ends of a narrow band
  (``abs(sin(x) - 0.99999)`` is probed at π/2, inside the band of width 0.009 where it is active); kink
  arguments that contain an integration variable or a summation index are probed where the kink crosses an
  end of the interval or of the sum's range; counts at the integers beside each zero (``abs(N - 12.5)`` at
  N = 12 and 13), up to ``max_target_count``;
* *extreme*: one symbol at a time at ±1e-6 and ±1e6 (identities that hold only in a band of magnitudes), and
  each count at ``count_extremes`` (past the random counts 1 to 12).

Symbols declared positive get positive values; no symbol is sampled at 0 by the random kinds.
"""
from __future__ import annotations

import random
from decimal import Decimal
from fractions import Fraction

import sympy
from flint import acb, arb

from .balls import Unevaluable, evaluate, to_ball
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
    """One symbol at a time at ±1e-6 and ±1e6 (positive symbols: +), the others at a random narrow point;
    each count at ``count_extremes`` (past the random counts)."""
    out = []
    for s in symbols:
        if s.is_integer and not isinstance(s, DataLabel):
            for n in VERIFY_SETTINGS["count_extremes"]:
                base = random_point(symbols, rng, positive)
                base[s] = sympy.Integer(n)
                out.append(_with_data(base, rng))
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
    Piecewise conditions).  An argument that contains an integration variable or a summation index is
    replaced by its values at the interval's ends or the sum's limits (where a moving kink enters or leaves
    the interval, or the range of the sum: |i - 15.5| in a sum to N changes branch inside it once N > 15)."""
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
        if isinstance(e, (sympy.Integral, sympy.Sum)):
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


def kink_arguments(expr) -> list:
    """The expressions whose sign selects a branch of ``expr``: arguments of abs, sign and Heaviside,
    differences of Max/Min arguments, Piecewise conditions (lhs - rhs), each once, in tree order."""
    out = []
    for e in sympy.preorder_traversal(sympy.sympify(expr)):
        if isinstance(e, (sympy.Abs, sympy.sign, sympy.Heaviside)):
            out.append(e.args[0])
        elif isinstance(e, (sympy.Max, sympy.Min)):
            out += [u - w for i, u in enumerate(e.args) for w in e.args[i + 1:]]
        elif isinstance(e, sympy.Piecewise):
            out += [rel.lhs - rel.rhs for _, cond in e.args
                    for rel in cond.atoms(sympy.core.relational.Relational)]
    return list(dict.fromkeys(u for u in out if not u.is_number))


def _bounds_of(bound, expr) -> list:
    return [i.limits[0] for i in expr.atoms(sympy.Integral, sympy.Sum)
            if len(i.limits[0]) == 3 and i.limits[0][0] in bound]


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
    """Real zeros of the univariate ``u(s)`` (other symbols already substituted), nearest the origin first:
    of the numerator's polynomial when ``u`` is rational in ``s`` (degree at most 12), else those that a
    rigorous search over [-1e4, 1e4] finds (:func:`_search`), zeros that ``u`` only touches included."""
    try:
        num = sympy.numer(sympy.together(u))
        if num.is_polynomial(s):
            poly = sympy.Poly(num, s)
            if 0 < poly.degree() <= 12:
                out = []
                for r in poly.nroots(n=30, maxsteps=100):
                    if r.is_real:
                        out.append(sympy.Rational(str(sympy.Float(r, 25))))
                return sorted(out, key=abs)
            if poly.degree() <= 0:
                return []
    except (sympy.PolynomialError, sympy.polys.polyerrors.NoConvergence, ValueError, TypeError, ZeroDivisionError):
        return []
    decades = [sympy.Rational(0)] + [sympy.Rational(10) ** k for k in range(-12, 5)]
    segments = list(zip(decades, decades[1:]))
    return _search(u, s, segments + [(-b, -a) for a, b in segments])


def _ball_of(u, s, a, b, bits: int = 96):
    """The ball of ``u`` over [a, b] (exact rationals): its real part, None where that is not finite or the
    value may be non-real, and False where ``u`` is provably non-real over all of [a, b] (no zero there)."""
    mid, rad = (a + b) / 2, (b - a) / 2
    try:
        ball = to_ball(mid)
        if rad:
            ball = acb(ball.real + arb(0, to_ball(rad).real.upper()))
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
    out, last = [], None
    for r in sorted(search.found):
        if last is None or r - last > max(1, abs(r)) * sympy.Rational(1, 10 ** 9):
            out.append(sympy.Rational(str(sympy.Float(r, 25))))
        last = r
    return sorted(out, key=abs)


class _Search:
    """One interval step of :func:`_search`: ``split(a, b)`` records the zeros it settles in ``found`` and
    returns the halves still to search (none when the interval is settled)."""

    def __init__(self, u, du, s, budget: int):
        self.u, self.du, self.s, self.budget, self.found = u, du, s, budget, []
        self.ddu = None

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
        """The zero of ``e`` in [a, b] (sign ``sa`` at a, the other sign at b), to 1e-20 of max(1, |a|):
        Newton steps while they stay inside the bracket and at least halve the step before, bisection
        otherwise (quadratic near a simple zero, never worse than bisection)."""
        de = self.derivative(e)
        goal = max(1, abs(a)) * sympy.Rational(1, 10 ** 20)
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


def targeted_points(exprs, symbols, rng: random.Random, positive: frozenset, unreached: list | None = None) -> list:
    """Points near the real zeros of the claim's critical arguments (see the module docstring): for each
    symbol, one random base point for the others; every zero of every critical argument in that symbol, with
    offsets in units of 1/|du/ds| there, and the midpoints between neighbouring zeros (a claim false only
    between two close kinks, |x - 0.001| + |x + 0.001| = 2|x|, is seen at x = 0).  ``unreached`` receives a
    line for each zero of a critical argument in a count beyond ``max_target_count`` (not checked there)."""
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
    out += _count_points(crit, symbols, rng, positive, [] if unreached is None else unreached)
    return [p for p in out if all(v > 0 for k, v in p.items() if _positive(k, positive))]


def _count_points(crit, symbols, rng: random.Random, positive: frozenset, unreached: list) -> list:
    """Targeted points of the integer symbols (counts): the integers on both sides of each real zero of a
    critical argument in the count, up to ``max_target_count`` (a claim with |N - 12.5| is false only from
    N = 13 on, past the random counts 1 to ``max_count``), indexed data lengthened to match."""
    out = []
    cap = VERIFY_SETTINGS["max_target_count"]
    for s in symbols:
        if not s.is_integer or isinstance(s, DataLabel):
            continue
        base = random_point(symbols, rng, positive)
        lo = 1 if _positive(s, positive) else -cap
        values = set()
        for u in crit:
            if s not in u.free_symbols:
                continue
            us = u.xreplace({k: v for k, v in base.items() if k != s and not isinstance(v, tuple)})
            if us.free_symbols - {s}:
                continue
            for r in _real_roots(us, s)[: VERIFY_SETTINGS["max_roots"]]:
                f = sympy.floor(r)
                values |= {v for v in (f - 1, f, f + 1, f + 2) if lo <= v <= cap}
                if f + 1 > cap and (r > 0 or lo < 0):
                    unreached.append(f"{u} = 0 at {s} = {sympy.Float(r, 6)}, beyond the counts checked (up to {cap})")
        out += [_with_data({**base, s: sympy.Integer(v)}, rng) for v in sorted(values)]
    return out


def count_sweep(difference, symbols, rng: random.Random, positive: frozenset, unreached: list):
    """Points with each count at 1, 2, ..., d + 1 in turn, d the degree of ``difference`` as a polynomial in
    it: a nonzero polynomial of degree d has at most d zeros, so one of these shows a difference that
    vanishes at every sampled count (the product (N - 1)...(N - 25)(N - 100) is 0 at the random counts and at
    the extreme ones).  Past ``count_sweep`` counts, ``unreached`` gets a line instead."""
    for s in symbols:
        if not s.is_integer or isinstance(s, DataLabel):
            continue
        try:
            d = sympy.Poly(difference, s).degree()
        except (sympy.PolynomialError, sympy.polys.polyerrors.GeneratorsNeeded):
            continue
        if not (isinstance(d, int) and d > 0):
            continue                # no count in it, or 0: nothing to sweep
        if d + 1 > VERIFY_SETTINGS["count_sweep"]:
            unreached.append(f"LHS - RHS is a polynomial of degree {d} in {s}, checked only up to "
                             f"{s} = {VERIFY_SETTINGS['count_sweep']}")
        for n in range(1, min(d + 1, VERIFY_SETTINGS["count_sweep"]) + 1):
            point = random_point(symbols, rng, positive)
            point[s] = sympy.Integer(n)
            yield _with_data(point, rng)


def _with_data(point: dict, rng: random.Random) -> dict:
    """``point`` with each data sequence long enough for its largest count n: at least 2n + 2 values (so
    x[i + 1] and x[2*i] have values in a sum to n), the added ones drawn like the others."""
    n = max((int(v) for v in point.values() if not isinstance(v, tuple) and v.is_Integer), default=0)
    out = dict(point)
    for s, v in point.items():
        if isinstance(v, tuple) and len(v) < 2 * n + 2:
            e = sympy.Dummy(real=True)
            out[s] = v + tuple(random_point([e], rng, frozenset())[e] for _ in range(2 * n + 2 - len(v)))
    return out


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
