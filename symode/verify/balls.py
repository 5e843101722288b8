"""Rigorous evaluation of a claim's SymPy expressions at an exact point, in ball arithmetic (python-flint).

A *ball* (``flint.acb``) is a midpoint and a radius that provably contains the true value: every operation
rounds outward, so a computed ``R - S`` whose ball excludes 0 proves ``R != S`` at that point, however small
the difference (``exp(-100) = 0`` is decided, not "equal within 1e-30").  Precision only shrinks the radii.

:func:`evaluate` walks the SymPy tree (no code generation, no ``lambdify``): numbers and the point's exact
rationals become balls, and each node maps to one ball operation with SymPy's principal-branch meaning
(``log`` and fractional powers of negative numbers are complex).  It also returns the *scale of the terms*:
the largest magnitude of the summands whose sum *is* the value (see :meth:`_Evaluator.scale_of`): the
top-level terms, the terms of a ``Sum`` and the integrand's terms times the length of an integral -- never a
summand inside a factor, the argument of a function, a denominator or a power, whose cancellation is not a
rounding of the value (``cos(10**118*(atan(P) + atan(1/P) - 2*atan(1)))`` is ``cos(0) = 1``, not a ball of
width 2 "agreeing with -1 relative to 1e118").
Agreement of two sides is judged relative to it, never against an absolute floor.

Definite integrals are computed by ``acb.integral`` (rigorous Gauss-Legendre with error bounds, bisecting
adaptively).  Its integrand reports non-analytic points (the kinks of ``abs``, ``sign``, ``Heaviside``,
``Max``/``Min``, ``Piecewise`` switches, branch cuts of ``sqrt``/``log``), so the interval is split at
every kink, wherever it is (the zeros of ``sin(s)`` as well as of ``s - 1/3``), and SymPy's antiderivatives
are never trusted here.  Nodes without a numeric meaning here (abstract functions, unevaluated derivatives)
raise :class:`Unevaluable`.
"""
from __future__ import annotations

import sympy
from flint import acb, arb, ctx, fmpq, fmpz

from .quadrature import integrate

__all__ = ["Unevaluable", "evaluate", "to_ball", "working_precision"]


class Unevaluable(ValueError):
    """The expression has a node without a numeric value here (an abstract function ``f(z)``, ...)."""


class working_precision:
    """Context manager: flint's working precision in bits (restored on exit)."""

    def __init__(self, bits: int):
        self.bits = bits

    def __enter__(self):
        self.saved = ctx.prec
        ctx.prec = self.bits
        return self

    def __exit__(self, *exc):
        ctx.prec = self.saved
        return False


def to_ball(value) -> acb:
    """An exact SymPy Rational/Integer (or int) as a ball (exact when it fits the precision); a ball as it is."""
    if isinstance(value, acb):
        return value
    value = sympy.Rational(value)
    return acb(arb(fmpq(fmpz(int(value.p)), fmpz(int(value.q)))))


def _real(z: acb) -> bool:
    return z.imag.is_zero()


def _sign(z: acb) -> int | None:
    """+1 or -1 by the sign of a real ball, None when it contains 0 or is not real."""
    if not z.imag.is_zero() or z.real.contains(0) or not z.real.is_finite():
        return None
    return 1 if z.real > 0 else -1


def _extreme(zs, direction: int) -> int | None:
    """Index of the largest (direction 1) or smallest (-1) of real balls, None when not decided."""
    for i, zi in enumerate(zs):
        if all(j == i or _sign((zi - zj) * direction) == 1 for j, zj in enumerate(zs)):
            return i
    return None


def _magnitude(z) -> arb:
    """An upper bound of |z| as an exact arb, 0 for a missing or non-finite ball."""
    if z is None or not (z.real.is_finite() and z.imag.is_finite()):
        return arb(0)
    return arb(abs(z).upper())


def _is_nonfinite(z: acb) -> bool:
    return not (z.real.is_finite() and z.imag.is_finite())


_NAN = acb(arb.nan())

#: One-argument functions: SymPy class -> (ball function taking (z, analytic), whether it has branch points
#: on the real line that the integrator must be told about).
_UNARY = {
    sympy.exp: lambda z, an: z.exp(),
    sympy.sin: lambda z, an: z.sin(),
    sympy.cos: lambda z, an: z.cos(),
    sympy.tan: lambda z, an: z.tan(),
    sympy.sinh: lambda z, an: z.sinh(),
    sympy.cosh: lambda z, an: z.cosh(),
    sympy.tanh: lambda z, an: z.tanh(),
    sympy.atan: lambda z, an: z.atan(),
    sympy.asinh: lambda z, an: z.asinh(),
    sympy.log: lambda z, an: z.log(analytic=an),
    sympy.asin: lambda z, an: z.asin(),
    sympy.acos: lambda z, an: z.acos(),
    sympy.atanh: lambda z, an: z.atanh(),
    sympy.acosh: lambda z, an: z.acosh(),
    sympy.erf: lambda z, an: z.erf(),
    sympy.erfc: lambda z, an: z.erfc(),
    sympy.erfi: lambda z, an: z.erfi(),
    sympy.Ei: lambda z, an: z.ei(),
    sympy.Si: lambda z, an: z.si(),
    sympy.Ci: lambda z, an: z.ci(),
    sympy.gamma: lambda z, an: z.gamma(),
    sympy.sec: lambda z, an: z.sec(),
    sympy.csc: lambda z, an: z.csc(),
    sympy.cot: lambda z, an: z.cot(),
    sympy.sech: lambda z, an: z.sech(),
    sympy.csch: lambda z, an: z.csch(),
    sympy.coth: lambda z, an: z.coth(),
}


class _Evaluator:
    """One evaluation: the point, the analytic flag (inside an integrand) and a memo of shared subtrees."""

    def __init__(self, point: dict, analytic: bool = False, integrand: bool = False, notes: list | None = None,
                 branches: dict | None = None, record: dict | None = None):
        self.point = point            # Symbol -> acb
        # switching nodes (abs, sign, Heaviside, Max/Min, Piecewise) -> the branch to take (on one piece of an
        # integral), and where to record the branches taken (at a piece's midpoint): see quadrature.py
        self.branches = branches
        self.record = record
        self.notes = [] if notes is None else notes   # why a value is not finite (for reports)
        self.analytic = analytic
        # inside an integrand the variable is a complex ball around the real segment: abs, sign, Heaviside,
        # Max/Min and Piecewise are the analytic continuations of their real-line pieces there (never the
        # complex modulus); the probes in _integral check that their arguments are real on the segment
        self.integrand = integrand
        self.complex_kink = False     # a kink argument was non-real at a real point
        self.memo: dict = {}
        self.linear: dict = {}        # Sum/Integral node -> the scale of its terms (see scale_of)
        self.scales: dict = {}        # memo of scale_of

    def scale_of(self, e) -> arb:
        """The scale of the terms of ``e`` (already evaluated): the largest magnitude among the summands whose
        sum is its value -- the terms of a top-level sum, the terms of a ``Sum``, an integrand's terms (at three
        probes) times the integral's length.  Anything else -- a product, a function, a power, abs/Max/Piecewise
        -- contributes its own magnitude only: the summands inside its argument (or factor) are not terms of the
        value, and a cancellation among them is resolved by raising the precision, never absorbed into the
        tolerance (``x*(10**118*atan(P) + 10**118*atan(1/P) - 2*10**118*atan(1) + 1) = 2*x`` differs at 1536
        bits).  An upper bound (the value's own magnitude at least); non-finite magnitudes count as 0 (the
        caller rejects a non-finite value before using the scale)."""
        hit = self.scales.get(e)
        if hit is not None:
            return hit
        out = _magnitude(self.memo.get(e))
        inner = self.linear.get(e, arb(0))
        if e.is_Add:
            for a in e.args:
                m = self.scale_of(a)
                inner = m if m > inner else inner
        out = inner if inner > out else out
        self.scales[e] = out
        return out

    def ev(self, e) -> acb:
        hit = self.memo.get(e)
        if hit is not None:
            return hit
        z = self._ev(e)
        self.memo[e] = z
        return z

    def _ev(self, e) -> acb:
        if e.is_Integer or e.is_Rational:
            return to_ball(e)
        if e.is_Float:
            sign, man, exp, _ = e._mpf_          # the binary value exactly: (-1)**sign * man * 2**exp
            return acb(arb(fmpz(int(man)) * (-1 if sign else 1)) * arb(2) ** int(exp))
        if e.is_Symbol:
            if e in self.point:
                return self.point[e]
            raise Unevaluable(f"no value for {e}")
        if e is sympy.pi:
            return acb(arb.pi())
        if e is sympy.E:
            return acb(arb.const_e())
        if e is sympy.I:
            return acb(0, 1)
        if e.is_Add:
            total = acb(0)
            for a in e.args:
                total += self.ev(a)
            return total
        if e.is_Mul:
            prod = acb(1)
            for a in e.args:
                prod *= self.ev(a)
            return prod
        if e.is_Pow:
            return self._pow(e)
        f = e.func
        if f in _UNARY:
            return _UNARY[f](self.ev(e.args[0]), self.analytic)
        if f in (sympy.Abs, sympy.sign):
            z = self.ev(e.args[0])
            if self.branches is not None and e in self.branches:
                return z * self.branches[e] if f is sympy.Abs else acb(self.branches[e])
            if self.record is not None:
                self.record[e] = _sign(z)
            if f is sympy.Abs:
                return z.real_abs(self.analytic) if self._realish(z) else acb(abs(z))
            return z.real_sgn(self.analytic) if self._realish(z) else z.sgn()
        if f is sympy.Heaviside:
            return self._heaviside(e)
        if f is sympy.DiracDelta:
            z = self.ev(e.args[0])
            if _real(z) and not z.real.contains(0):
                return acb(0)
            return _NAN
        if f in (sympy.Max, sympy.Min):
            zs = [self.ev(a) for a in e.args]
            if self.branches is not None and e in self.branches:
                return zs[self.branches[e]]
            if self.record is not None:
                self.record[e] = _extreme(zs, 1 if f is sympy.Max else -1)
            if not all(self._realish(z) for z in zs):
                return _NAN
            out = zs[0]
            for z in zs[1:]:
                out = out.real_max(z, self.analytic) if f is sympy.Max else out.real_min(z, self.analytic)
            return out
        if f is sympy.Piecewise:
            return self._piecewise(e)
        if isinstance(e, sympy.Integral):
            return self._integral(e)
        if isinstance(e, sympy.Indexed):
            return self._indexed(e)
        if isinstance(e, sympy.Sum):
            return self._sum(e)
        raise Unevaluable(f"{type(e).__name__} has no numeric value here")

    def _integer(self, e) -> int | None:
        z = self.ev(e)
        if not (z.imag.is_zero() and z.real.is_exact()):
            return None
        v = z.real.mid()
        return int(v.unique_fmpz()) if v.is_integer() else None

    def _indexed(self, e) -> acb:
        """Element k of indexed data: the point holds the label's sequence of values (k = 0, 1, ...)."""
        seq = self.point.get(e.base.label)
        if not isinstance(seq, tuple) or len(e.indices) != 1:
            raise Unevaluable(f"no values for the data {e.base.label}")
        k = self._integer(e.indices[0])
        if k is None or not 0 <= k < len(seq):
            return _NAN
        return seq[k]

    def _sum(self, e) -> acb:
        """Σ_{i=lo}^{hi} g with integer limits, the usual convention: the sum over lo <= i <= hi, so a range with
        hi < lo is empty and sums to 0 (not SymPy's Karr convention, -Σ_{hi+1}^{lo-1}: see derivations/README.md)."""
        if len(e.limits) != 1:
            raise Unevaluable("only sums over one index are evaluated")
        var, lo, hi = e.limits[0]
        a, b = self._integer(lo), self._integer(hi)
        if a is None or b is None:
            return _NAN
        if b < a:
            return acb(0)
        if b - a > 10_000:
            raise Unevaluable("a sum of more than 10000 terms")
        total, scale = acb(0), arb(0)
        for k in range(a, b + 1):
            term = _Evaluator({**self.point, var: acb(k)}, self.analytic, self.integrand, self.notes)
            z = term.ev(e.function)
            m = term.scale_of(e.function)
            scale = m if m > scale else scale
            total += z
        self.linear[e] = scale
        return total

    def _realish(self, z: acb) -> bool:
        """Whether ``z`` is the argument of a real-line function: real at a point, or anything inside an
        integrand (continued analytically); a non-real argument at a real point is recorded."""
        if self.integrand or _real(z):
            return True
        self.complex_kink = True
        return False

    def _pow(self, e) -> acb:
        base, ex = e.args
        b = self.ev(base)
        if ex.is_Integer:
            n = int(ex)
            if n < 0 and b.real.contains(0) and b.imag.contains(0):
                return _NAN          # 1/0, or too little precision to tell
            return b ** n
        if ex == sympy.Rational(1, 2):
            return b.real_sqrt(self.analytic) if (self.analytic and _real(b)) else b.sqrt(analytic=self.analytic)
        x = self.ev(ex)
        if b.real.contains(0) and b.imag.contains(0) and not (_real(x) and x.real > 0):
            return _NAN
        return b.pow(x, analytic=self.analytic)

    def _heaviside(self, e) -> acb:
        z = self.ev(e.args[0])
        if self.branches is not None and e in self.branches:
            return acb(1 if self.branches[e] > 0 else 0)
        if self.record is not None:
            self.record[e] = _sign(z) or None
        if not self._realish(z):
            return _NAN
        if z.real.is_zero():
            h0 = e.args[1] if len(e.args) > 1 else sympy.Rational(1, 2)
            return self.ev(h0)
        return z.real_heaviside(self.analytic)

    def _truth(self, cond) -> bool | None:
        """A Piecewise condition at this point: True, False, or None (undecided at this precision)."""
        if cond is sympy.true:
            return True
        if cond is sympy.false:
            return False
        if isinstance(cond, sympy.And):
            vals = [self._truth(c) for c in cond.args]
            return False if False in vals else (None if None in vals else True)
        if isinstance(cond, sympy.Or):
            vals = [self._truth(c) for c in cond.args]
            return True if True in vals else (None if None in vals else False)
        if isinstance(cond, sympy.Not):
            v = self._truth(cond.args[0])
            return None if v is None else not v
        if isinstance(cond, sympy.core.relational.Relational):
            d = self.ev(cond.lhs - cond.rhs)
            if not self._realish(d):
                return None            # a complex value has no order: undefined here
            # inside an integrand the variable is a complex ball around the real segment: each piece is
            # continued analytically where the real part of the switching function has one sign
            r = d.real
            if r.is_zero():
                sign = 0
            elif r > 0:
                sign = 1
            elif r < 0:
                sign = -1
            else:
                return None
            if self.analytic and sign == 0:
                return None            # a ball on the switching point is not analytic
            op = cond.rel_op
            return {"<": sign < 0, "<=": sign <= 0, ">": sign > 0, ">=": sign >= 0, "==": sign == 0,
                    "!=": sign != 0}[op]
        raise Unevaluable(f"condition {cond} has no numeric value here")

    def _piecewise(self, e) -> acb:
        if self.branches is not None and e in self.branches:
            return self.ev(e.args[self.branches[e]][0])
        for k, (expr, cond) in enumerate(e.args):
            t = self._truth(cond)
            if t is None:
                if self.record is not None:
                    self.record[e] = None
                return _NAN
            if t:
                if self.record is not None:
                    self.record[e] = k
                return self.ev(expr)
        return _NAN                    # no branch applies: undefined here

    def _integral(self, e) -> acb:
        if len(e.limits) != 1 or len(e.limits[0]) != 3:
            raise Unevaluable("only definite integrals over one variable are evaluated")
        var, lo, hi = e.limits[0]
        a, b = self.ev(lo), self.ev(hi)
        if not (_real(a) and _real(b)) or _is_nonfinite(a) or _is_nonfinite(b):
            return _NAN
        body = e.function
        outer = dict(self.point)
        if body.has(sympy.DiracDelta):
            self.notes.append("an integral of DiracDelta (a point mass) is not evaluated numerically")
            return _NAN

        def make(overrides, analytic, branches, record):
            # recording happens at a real midpoint; everything else evaluates the integrand on balls around
            # the real segment (see _realish)
            return _Evaluator({**outer, **overrides}, analytic=analytic, integrand=record is None,
                              notes=self.notes, branches=branches, record=record)

        # probes at real points of the segment: the integrand's kink arguments must be real there (else the
        # continuation used on the pieces would not be the integrand), and its summands set the scale
        length = _magnitude(b - a)
        scale = arb(0)
        for frac in (fmpq(1, 4), fmpq(1, 2), fmpq(3, 4)):
            probe = _Evaluator({**outer, var: a + (b - a) * acb(arb(frac))})
            try:
                probe.ev(body)
            except (ValueError, ZeroDivisionError, ArithmeticError) as exc:
                if isinstance(exc, Unevaluable):
                    raise
                continue
            if probe.complex_kink:
                return _NAN
            m = probe.scale_of(body) * length
            scale = m if m > scale else scale
        self.linear[e] = scale
        try:
            value = integrate(make, body, var, a, b)
        except Unevaluable:
            raise
        except (ValueError, ZeroDivisionError, ArithmeticError):
            value = _NAN
        if _is_nonfinite(value):
            self.notes.append("numerical integration did not converge (the integrand is unbounded, not "
                              "integrable or not resolved on the interval)")
        return value


def evaluate(expr: sympy.Expr, point: dict, bits: int, notes: list | None = None) -> tuple[acb, arb]:
    """(value ball, scale of the terms) of ``expr`` at ``point`` (Symbol -> exact Rational), at ``bits``
    bits of working precision.  The value may be a non-finite ball where the expression is undefined
    (division by zero, a switching point) or where the precision does not suffice to tell; raises
    :class:`Unevaluable` for nodes without a numeric value.  Reasons for a non-finite value are appended to
    ``notes``."""
    with working_precision(bits):
        balls = {s: tuple(map(to_ball, v)) if isinstance(v, tuple) else to_ball(v) for s, v in point.items()}
        ev = _Evaluator(balls, notes=notes)
        expr = sympy.sympify(expr)
        value = ev.ev(expr)
        return value, ev.scale_of(expr)
