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

import sympy

from .balls import Unevaluable, evaluate
from .modeldecl import DataLabel
from .tolerances import VERIFY_SETTINGS
from .zeros import _rational, real_roots as _real_roots, stationary_points

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
    if len(crit) > VERIFY_SETTINGS["max_critical"] and unreached is not None:
        # never silently: sixteen harmless arguments in front must not hide the one that matters
        unreached.append(f"{len(crit)} critical arguments, of which the first {VERIFY_SETTINGS['max_critical']} "
                         f"were examined")
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
            for r in _real_roots(us, s, _positive(s, positive)):
                zeros.add(r)
                step = _step(sympy.diff(us, s), s, r)
                out += [{**base, s: r + c * step} for c in offsets]
            # and its extremes: a bump exp(-1e10*(x - 2/7)**2) - 1/100 has no zero, but its peak is a point
            du = sympy.diff(us, s)
            if du.free_symbols:
                out += [{**base, s: r} for r in _real_roots(du, s, _positive(s, positive))]
        ordered = sorted(zeros)
        out += [{**base, s: (p + q) / 2} for p, q in zip(ordered, ordered[1:])]
    out += _stationary(crit, symbols, rng, positive)
    out += _data_points(crit, symbols, rng, positive)
    out += _count_points(crit, symbols, rng, positive, [] if unreached is None else unreached)
    return [p for p in out if all(v > 0 for k, v in p.items() if _positive(k, positive))]


def _stationary(crit, symbols, rng: random.Random, positive: frozenset) -> list:
    """Targeted points at the stationary points of each critical argument in two or more real symbols (the
    others at a random point): where a region in which a kink is active is small in every direction, its
    extremum is inside it (see :func:`symode.verify.zeros.stationary_points`)."""
    out = []
    for u in crit:
        syms = sorted((s for s in u.free_symbols if s in symbols and varied(s)), key=lambda s: s.name)
        if len(syms) < 2:
            continue
        base = random_point(symbols, rng, positive)
        us = u.xreplace({k: v for k, v in base.items() if k not in syms and not isinstance(v, tuple)})
        if us.free_symbols - set(syms):
            continue
        starts = [random_point(syms, rng, positive, narrow=True) for _ in range(VERIFY_SETTINGS["stationary_starts"])]
        for p in stationary_points(us, syms, starts):
            out.append({**base, **p})
            # and beside it: where the stationary point is a pole (1/(x**2 + y**2)), the region is around it
            for s in syms[:2]:
                for d in VERIFY_SETTINGS["stationary_offsets"]:
                    for sign in (1, -1):
                        out.append({**base, **p, s: p[s] + sign * sympy.Rational(d) * max(1, abs(p[s]))})
    return out


def _data_points(crit, symbols, rng: random.Random, positive: frozenset) -> list:
    """Targeted points of indexed data: for a critical argument in the elements of one data sequence (the
    other symbols at a random point), each zero r of it with every element set to the same value (a kink
    ``abs(v[i] - 0.001)`` in a sum is active for every term at once), and for an element with a constant index
    (``v[1]``) that element alone moved there, at the offsets of the other targeted points."""
    out = []
    offsets = [sympy.Rational(o) for o in VERIFY_SETTINGS["root_offsets"]]
    for u in crit:
        for label in sorted({e.base.label for e in u.atoms(sympy.Indexed)}, key=lambda x: x.name):
            if label not in symbols:
                continue
            base = random_point(symbols, rng, positive)
            d = sympy.Dummy("d", real=True)
            elements = {e for e in u.atoms(sympy.Indexed) if e.base.label == label}
            ud = u.xreplace({e: d for e in elements})
            ud = ud.xreplace({k: v for k, v in base.items() if not isinstance(v, tuple)})
            if ud.free_symbols - {d} or ud.atoms(sympy.Indexed):
                continue
            constant = sorted(int(e.indices[0]) for e in elements if len(e.indices) == 1 and e.indices[0].is_Integer)
            out += _element_points(u, label, elements, base)
            zeros = _real_roots(ud, d)
            for r in zeros:
                step = _step(sympy.diff(ud, d), d, r)
                for c in offsets:
                    v = r + c * step
                    out.append({**base, label: (v,) * len(base[label])})
                    for k in constant:
                        if 0 <= k < len(base[label]):
                            out.append({**base, label: base[label][:k] + (v,) + base[label][k + 1:]})
            ordered = sorted(zeros)
            out += [{**base, label: ((p + q) / 2,) * len(base[label])} for p, q in zip(ordered, ordered[1:])]
    return out


def _element_points(u, label, elements, base: dict) -> list:
    """Points with one element of constant index moved to each zero of ``u`` in it, the other elements (and
    symbols) at ``base``: a kink in v[1] - v[2] - 1/7 has no zero with all elements equal."""
    out = []
    seq = base[label]
    fixed = {k: v for k, v in base.items() if not isinstance(v, tuple)}
    for e in elements:
        if len(e.indices) != 1 or not e.indices[0].is_Integer or not 0 <= int(e.indices[0]) < len(seq):
            continue
        d = sympy.Dummy("e", real=True)
        others = {o: seq[int(o.indices[0])] for o in elements
                  if o != e and len(o.indices) == 1 and o.indices[0].is_Integer and 0 <= int(o.indices[0]) < len(seq)}
        ue = u.xreplace(others).xreplace({e: d}).xreplace(fixed)
        if ue.free_symbols - {d} or ue.atoms(sympy.Indexed):
            continue
        k = int(e.indices[0])
        for r in _real_roots(ue, d):
            step = _step(sympy.diff(ue, d), d, r)
            for c in VERIFY_SETTINGS["root_offsets"]:
                out.append({**base, label: seq[:k] + (r + sympy.Rational(c) * step,) + seq[k + 1:]})
    return out


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
            for r in _real_roots(us, s, _positive(s, positive)):
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
