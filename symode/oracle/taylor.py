"""Taylor-series integration of SymPy ODE systems at arbitrary precision (the oracle's integrator).

The system is ``dy/dt = f(y, t, p)`` with ``y`` the states, ``t`` the time symbol and ``p`` parameters whose
numeric values are given at integration time.  :class:`TaylorSystem` compiles ``f`` once (after
``sympy.cse``) into a *tape*: a flat list of elementary operations on numbered nodes.  :func:`integrate`
then advances the solution with Taylor's method:

* Taylor coefficients.  Writing every node as a series ``v(t + tau) = sum_k v[k] tau**k``, the states obey
  ``y[k+1] = f[k] / (k+1)``; each operation has a recurrence giving its coefficient ``k`` from the
  coefficients ``0..k`` of its inputs and ``0..k-1`` of itself (Griewank & Walther, *Evaluating
  Derivatives*, 2nd ed., ch. 13; Jorba & Zou, *Experimental Math.* 14 (2005) 99-117).  Examples, with
  ``ja[j] = j*a[j]``::

      c = a*b        c[k] = sum_{j=0..k} a[j] b[k-j]
      c = a/b        c[k] = (a[k] - sum_{j=1..k} b[j] c[k-j]) / b[0]
      c = exp(a)     c[k] = (1/k) sum_{j=1..k} ja[j] c[k-j]
      c = log(a)     c[k] = (a[k] - (1/k) sum_{j=1..k-1} j c[j] a[k-j]) / a[0]
      c = a**alpha   c[k] = (1/(k a[0])) sum_{j=1..k} ((alpha+1) j - k) a[j] c[k-j]
      s, c = sin a, cos a     s[k] = (1/k) sum ja[j] c[k-j],  c[k] = -(1/k) sum ja[j] s[k-j]
      t = tanh(a), u = 1 - t**2:   t[k] = (1/k) sum ja[j] u[k-j]
      c = atan(a), w = 1 + a**2:   c[k] = (k a[k] - sum_{j=1..k-1} w[j] (k-j) c[k-j]) / (k w[0])

* Order and step (Jorba & Zou's rule, as heyoka uses it).  With tolerance ``eps = 10**-(digits+5)`` the
  order is ``K = ceil(-ln(eps)/2 + 1)`` and the step is
  ``h = rho / e**2 * exp(-0.7/(K-1))`` with ``rho = min_j (s / ||y[j]||_inf)**(1/j)`` over the last two
  orders ``j = K-1, K`` and ``s = max(1, ||y(t)||_inf)``: the truncation error of a step is then about
  ``eps * s`` (absolute for states below 1, relative above).  The step is shortened to land exactly on
  every output time and on every zero crossing of the argument ``a`` of an ``Abs``, ``sign`` or
  ``Heaviside`` (``Max``/``Min`` are built from ``Abs``): within a step ``a`` keeps one side ``s`` of 0, so
  ``|a|`` is the series ``s * a`` and ``sign(a)``, ``Heaviside(a)`` are the constants ``s`` and
  ``(s + 1)/2``.  Each crossing (found by sampling the argument's polynomial at 4 points of the step,
  then bisection) ends a step, and the next step takes the side it moves into.  An argument exactly 0
  at a step start takes the side its first nonzero Taylor coefficient points to (the step is recomputed
  when a sign/Heaviside value depended on it); one that stays 0 keeps SymPy's values ``sign(0) = 0``,
  ``Heaviside(0, H0) = H0``.  When the right-hand side pushes the argument back to 0 from both sides (a
  sliding mode of a discontinuous right-hand side) the integration stops with an error.

* Arithmetic.  Numbers are ``gmpy2.mpfr`` at ``digits + 10`` decimal digits (measured 4-9x faster than
  ``mpmath.mpf`` for the convolutions that dominate; see :data:`BACKEND`).  Without gmpy2 the same code
  runs on ``mpmath.mpf``.  Every constant of the right-hand side is converted from its exact SymPy value
  (a ``Rational`` ``p/q`` is rounded once, at working precision), never through a binary double; a
  ``sympy.Float`` is taken as the exact binary number it holds.

Time runs in either direction: output times before ``t0`` are reached with negative steps.

Failures raise :class:`~symode.errors.IntegrationError` with ``time`` set: leaving the domain of an
operation at a step start ("log(z): log of a negative value (-1) at t = ...": log/sqrt/real power of a
non-positive number, division by zero, asin/atanh/acosh outside their real domain), non-finite values,
the step size collapsing (finite-time blow-up or a singularity of the right-hand side: steps shrink
geometrically towards it; a step below ``MIN_STEP_FRACTION`` of the interval is a collapse), a sliding
mode on a sign/Heaviside discontinuity, or the ``max_steps`` budget running out.  A collapse names its
cause: an operation whose argument is approaching the boundary of its domain ("log(z): its argument
approaches 0 near t = 1.0 (the solution leaves the domain of log)"; sqrt and non-integer real powers,
whose derivatives are unbounded there; asin/acos/atanh/acosh; a denominator, "division by zero"), the
restricted-domain functions named before divisions; else "finite-time blow-up".
Operations outside the table raise :class:`~symode.errors.DerivationError` when the system is compiled.

Known limit: the step rule trusts the last two Taylor coefficients; a solution whose coefficients of
orders ``K-1`` and ``K`` vanish at a step start while higher ones do not (e.g. ``dz/dt = t**60`` started at
``t = 0``) is stepped too far.  Neural-ODE right-hand sides do not have this structure.
"""
from __future__ import annotations

import math
import time as _time
from collections.abc import Callable
from fractions import Fraction
from operator import mul

import mpmath
import sympy

from symode.errors import IntegrationError, SpecError

from .tape import TaylorSystem, _Op

try:  # gmpy2 is optional: mpmath.mpf is the (slower) fallback
    import gmpy2
except ImportError:  # pragma: no cover - exercised only where gmpy2 is absent
    gmpy2 = None

__all__ = ["TaylorSystem", "integrate", "to_mpf", "BACKEND", "GUARD_DIGITS", "TOLERANCE_MARGIN_DIGITS"]

#: Extra decimal digits carried by the arithmetic beyond the requested ``digits`` (round-off of many
#: steps and of the long convolution sums stays far below the requested digits).
GUARD_DIGITS = 10
#: The local truncation tolerance is ``10**-(digits + TOLERANCE_MARGIN_DIGITS)`` so that the sum over
#: hundreds of steps stays below ``10**-digits``.
TOLERANCE_MARGIN_DIGITS = 5
#: A step shorter than this fraction of the integration interval means the solution is singular there.
MIN_STEP_FRACTION = 1e-14
#: Seconds between two ``progress`` calls (at most ~10 calls a second).
PROGRESS_INTERVAL_S = 0.1


# --------------------------------------------------------------------------------------------------
# Number backends
# --------------------------------------------------------------------------------------------------

class _Gmpy2Backend:
    """gmpy2.mpfr arithmetic; precision is set through gmpy2's thread-local context."""

    name = "gmpy2"

    def __init__(self):
        g = gmpy2
        self.fsum = g.fsum
        self.exp, self.log, self.sqrt = g.exp, g.log, g.sqrt
        self.tan, self.tanh = g.tan, g.tanh
        self.atan, self.asinh, self.asin, self.acos = g.atan, g.asinh, g.asin, g.acos
        self.atanh, self.acosh = g.atanh, g.acosh
        self.sincos = g.sin_cos
        self.sinhcosh = g.sinh_cosh
        self.is_finite = g.is_finite
        self.number_type = type(g.mpfr(0))

    def precision(self, bits: int):
        try:  # gmpy2 >= 2.2: a context is itself a context manager
            return gmpy2.context(gmpy2.get_context(), precision=bits)
        except TypeError:  # pragma: no cover - gmpy2 2.1
            return gmpy2.local_context(gmpy2.get_context(), precision=bits)

    def from_fraction(self, p: int, q: int):
        return gmpy2.mpfr(gmpy2.mpq(p, q))  # one correct rounding at the context precision

    def number(self, x):
        return gmpy2.mpfr(x)

    @staticmethod
    def to_mpf(x):
        if not gmpy2.is_finite(x):
            raise IntegrationError(f"non-finite value {x} cannot be converted to mpmath.mpf")
        if x == 0:
            return mpmath.mpf(0)
        man, exp = x.as_mantissa_exp()
        return mpmath.mp.make_mpf(mpmath.libmp.from_man_exp(int(man), int(exp)))  # exact, no rounding


class _MpmathBackend:
    """mpmath.mpf arithmetic; precision is set on the global ``mpmath.mp`` context."""

    name = "mpmath"

    def __init__(self):
        m = mpmath
        self.fsum = m.fsum
        self.exp, self.log, self.sqrt = m.exp, m.log, m.sqrt
        self.tan, self.tanh = m.tan, m.tanh
        self.atan, self.asinh, self.asin, self.acos = m.atan, m.asinh, m.asin, m.acos
        self.atanh, self.acosh = m.atanh, m.acosh
        self.is_finite = m.isfinite
        self.number_type = mpmath.mpf

    @staticmethod
    def sincos(x):
        c, s = mpmath.cos_sin(x)
        return s, c

    @staticmethod
    def sinhcosh(x):
        return mpmath.sinh(x), mpmath.cosh(x)

    def precision(self, bits: int):
        return mpmath.mp.workprec(bits)

    def from_fraction(self, p: int, q: int):
        return mpmath.mp.make_mpf(mpmath.libmp.from_rational(p, q, mpmath.mp.prec, "n"))

    def number(self, x):
        return mpmath.mpf(x)

    def to_mpf(self, x):
        return x


_BACKENDS = {"mpmath": _MpmathBackend}
if gmpy2 is not None:
    _BACKENDS["gmpy2"] = _Gmpy2Backend
#: Name of the default arithmetic: ``"gmpy2"`` where gmpy2 is importable, else ``"mpmath"``.
BACKEND = "gmpy2" if gmpy2 is not None else "mpmath"


def _backend(name: str | None):
    name = name or BACKEND
    if name not in _BACKENDS:
        raise SpecError(f"backend={name!r} is not available; choose one of {sorted(_BACKENDS)}")
    return _BACKENDS[name]()


def to_mpf(x) -> mpmath.mpf:
    """Convert a value returned by :func:`integrate` to ``mpmath.mpf`` exactly (no rounding)."""
    if isinstance(x, mpmath.mpf):
        return x
    if gmpy2 is not None and isinstance(x, type(gmpy2.mpfr(0))):
        return _Gmpy2Backend.to_mpf(x)
    raise SpecError(f"to_mpf expects a value returned by integrate (gmpy2.mpfr or mpmath.mpf), got {type(x).__name__}")


# --------------------------------------------------------------------------------------------------
# Exact input conversion
# --------------------------------------------------------------------------------------------------

def _exact(value, what: str):
    """Return ``value`` as an exact Fraction, or a SymPy number to evaluate at working precision."""
    if isinstance(value, bool):
        raise SpecError(f"{what} must be a number, got the bool {value!r}")
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, Fraction):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise SpecError(f"{what} = {value!r} is not finite; give a finite number")
        return Fraction(value)  # the exact binary value of the double
    if isinstance(value, str):
        try:
            return Fraction(value.strip())  # decimal or p/q text, parsed exactly (no eval)
        except (ValueError, ZeroDivisionError):
            raise SpecError(f"{what} = {value!r} is not a decimal or rational number") from None
    if isinstance(value, mpmath.mpf):
        if not mpmath.isfinite(value):
            raise SpecError(f"{what} = {value} is not finite; give a finite number")
        # _mpf_ = (sign, man, exp, bc); mpf.man_exp drops the sign (mpmath 1.3: mpf(-1.5).man_exp == (3, -1))
        sign, man, exp, _ = value._mpf_
        return (-1 if sign else 1) * Fraction(int(man)) * Fraction(2) ** int(exp)
    if gmpy2 is not None and isinstance(value, (type(gmpy2.mpz(0)), type(gmpy2.mpq(0)))):
        return Fraction(int(value.numerator), int(value.denominator))
    if gmpy2 is not None and isinstance(value, type(gmpy2.mpfr(0))):
        if not gmpy2.is_finite(value):
            raise SpecError(f"{what} = {value} is not finite; give a finite number")
        return Fraction(value.as_integer_ratio()[0], value.as_integer_ratio()[1])
    if isinstance(value, sympy.Basic):
        if isinstance(value, sympy.Rational):
            return Fraction(int(value.p), int(value.q))
        if isinstance(value, sympy.Float):
            if not value.is_finite:
                raise SpecError(f"{what} = {value} is not finite; give a finite number")
            r = sympy.Rational(value)  # the exact binary value the Float holds
            return Fraction(int(r.p), int(r.q))
        if isinstance(value, sympy.Expr) and value.is_number and not value.free_symbols:
            if value.is_extended_real is False or value.has(sympy.zoo, sympy.oo, sympy.nan, -sympy.oo):
                raise SpecError(f"{what} = {value} is not a finite real number")
            return value  # e.g. pi, sqrt(2): evaluated at working precision later
        raise SpecError(f"{what} = {value} is not a number (it has free symbols {sorted(map(str, value.free_symbols))})")
    raise SpecError(f"{what} must be an int, a decimal string, a sympy number or an mpmath.mpf, "
                    f"got {type(value).__name__}")


def _to_working(value, what: str, B, bits: int):
    """Convert an input to the working number type: exactly, then rounded once."""
    ex = _exact(value, what)
    if isinstance(ex, Fraction):
        return B.from_fraction(ex.numerator, ex.denominator)
    # A SymPy constant expression (pi, sqrt(2), ...): evaluate with a margin of digits, then take the
    # exact binary value of that Float.
    f = ex.evalf(n=int(bits * 0.30103) + 10)
    if not isinstance(f, sympy.Float) or not f.is_finite:
        raise SpecError(f"{what} = {value} does not evaluate to a finite real number")
    r = sympy.Rational(f)
    return B.from_fraction(int(r.p), int(r.q))


# --------------------------------------------------------------------------------------------------
# The tape

# --------------------------------------------------------------------------------------------------
# Kernels: one closure for order 0 (value and domain check) and one for order k >= 1 per instruction
# --------------------------------------------------------------------------------------------------

class _Domain(Exception):
    """An operation's argument left its real domain (converted to IntegrationError with the time).

    ``op``: the tape operation; ``detail``: what happened (e.g. "log of a negative value (-1)");
    ``func``: the function whose domain was left, for "the solution left the domain of ``func``".
    """

    def __init__(self, op: _Op, detail: str, func: str):
        super().__init__(detail)
        self.op, self.detail, self.func = op, detail, func

    def message(self, system: "TaylorSystem") -> str:
        return f"{system.describe(self.op)}: {self.detail}"


def _sign_word(v) -> str:
    return "zero" if v == 0 else "a negative value"


def _new_cell(abs_state: dict, ia: int, a) -> dict:
    """The side-of-0 record of a non-constant argument node ``ia`` (shared by its abs/sign/Heaviside ops).

    ``sigma``: the side (-1, 0, +1) for the current step; ``forced``: the side to take at the next step
    start (set on landing on a zero crossing, or by a redo); ``redo``: the order-0 side was undetermined
    (argument exactly 0) and a higher coefficient decided it, so the step's coefficients must be
    recomputed with that side (only sign/Heaviside need this: |x| is 0 on both sides); ``piecewise``: a
    sign/Heaviside op (``op``) reads this cell; ``check``: verify that the argument really moves into the
    forced side (else the solution slides along the discontinuity); ``dir``: the time direction (+1/-1).
    """
    return abs_state.setdefault(ia, {"arg": a, "sigma": 0, "forced": None, "redo": False, "piecewise": False,
                                     "op": None, "check": False, "dir": 1})


def _moves_into(cell, K: int) -> bool:
    """Whether the argument leaves 0 into the side ``cell["sigma"]``: its first nonzero coefficient of
    order 1 <= k < K decides, with tau**k of the sign ``dir**k`` (backward steps have tau < 0)."""
    a, d = cell["arg"], cell["dir"]
    for k in range(1, K):  # an intermediate node's coefficient K is not computed (only the states' is)
        if a[k] != 0:
            return ((a[k] > 0) - (a[k] < 0)) * (d if k % 2 else 1) == cell["sigma"]
    return False


def _sym_sum(fsum, o, k: int, start: int):
    """sum_{j=start..k-start} o[j] o[k-j] using the symmetry of the terms."""
    h = (k + 1) // 2
    s = 2 * fsum(map(mul, o[start:h], o[k - start:k - h:-1])) if h > start else 0
    if k % 2 == 0 and k // 2 >= start:
        s = s + o[k // 2] * o[k // 2]
    return s


def _kernels(op: _Op, S, is_const, B, scaled, abs_state):
    """Return (f0, fk) for one instruction; fk is None when coefficients k >= 1 are all zero."""
    fsum = B.fsum
    kind = op.op
    ins = op.ins
    label = op.label

    def jser(n):  # shared j*a[j] series of node n
        if n not in scaled:
            scaled[n] = [0] * len(S[n])
        return scaled[n]

    if kind == "lin":
        npos = op.extra
        o = S[op.outs[0]]
        P = [S[i] for i in ins[:npos]]
        N = [S[i] for i in ins[npos:]]

        def f0():
            o[0] = fsum([p[0] for p in P]) - fsum([n[0] for n in N])
        Pv = [S[i] for i in ins[:npos] if not is_const[i]]
        Nv = [S[i] for i in ins[npos:] if not is_const[i]]
        if not Pv and not Nv:
            return f0, None
        if len(Pv) == 2 and not Nv:
            a, b = Pv

            def fk(k):
                o[k] = a[k] + b[k]
        elif len(Pv) == 1 and len(Nv) == 1:
            a, b = Pv[0], Nv[0]

            def fk(k):
                o[k] = a[k] - b[k]
        elif len(Pv) == 1 and not Nv:
            a = Pv[0]

            def fk(k):
                o[k] = a[k]
        elif not Pv and len(Nv) == 1:
            b = Nv[0]

            def fk(k):
                o[k] = -b[k]
        else:
            def fk(k):
                o[k] = fsum([p[k] for p in Pv]) - fsum([n[k] for n in Nv])
        return f0, fk

    if kind == "mul":
        ia, ib = ins
        a, b, o = S[ia], S[ib], S[op.outs[0]]

        def f0():
            o[0] = a[0] * b[0]
        if is_const[ia] and is_const[ib]:
            return f0, None
        if is_const[ia] or is_const[ib]:
            c, v = (a[0], b) if is_const[ia] else (b[0], a)

            def fk(k):
                o[k] = c * v[k]
        else:
            def fk(k):
                o[k] = fsum(map(mul, a[:k + 1], b[k::-1]))
        return f0, fk

    if kind == "sq":
        a, o = S[ins[0]], S[op.outs[0]]

        def f0():
            o[0] = a[0] * a[0]

        def fk(k):
            o[k] = _sym_sum(fsum, a, k, 0)
        return f0, (None if is_const[ins[0]] else fk)

    if kind == "div":
        ia, ib = ins
        a, b, o = S[ia], S[ib], S[op.outs[0]]

        def f0():
            if b[0] == 0:
                raise _Domain(op, "division by zero (the denominator is 0)", "division")
            o[0] = a[0] / b[0]
        if is_const[ib]:
            if is_const[ia]:
                return f0, None
            c = 1 / b[0] if b[0] != 0 else None

            def fk(k):
                o[k] = a[k] * c
        elif is_const[ia]:
            def fk(k):
                o[k] = -fsum(map(mul, b[1:k + 1], o[k - 1::-1])) / b[0]
        else:
            def fk(k):
                o[k] = (a[k] - fsum(map(mul, b[1:k + 1], o[k - 1::-1]))) / b[0]
        return f0, fk

    if kind == "sqrt":
        ia = ins[0]
        a, o = S[ia], S[op.outs[0]]
        const = is_const[ia]
        internal = op.extra is not None and op.extra[0] == "internal"

        def f0():
            if not (a[0] > 0 or (const and a[0] == 0)):
                if internal:  # the sqrt(1 - x**2) or sqrt(x**2 - 1) inside asin/acos/asinh/acosh
                    _, name, ix = op.extra
                    raise _Domain(op, f"{name} of {_fmt(S[ix][0])}, outside its real domain "
                                      f"{_AINV_DOMAIN.get(name, '')}", name)
                raise _Domain(op, f"sqrt of {_sign_word(a[0])} ({_fmt(a[0])})", "sqrt")
            o[0] = B.sqrt(a[0])

        def fk(k):
            o[k] = (a[k] - _sym_sum(fsum, o, k, 1)) / (2 * o[0])
        return f0, (None if const else fk)

    if kind == "pow":
        ia, ix = ins
        a, x, o = S[ia], S[ix], S[op.outs[0]]
        const = is_const[ia]

        def f0():
            alpha = x[0]
            if a[0] > 0:
                o[0] = a[0] ** alpha
            elif const and a[0] == 0 and alpha > 0:
                o[0] = a[0] * 0
            elif const and a[0] < 0 and alpha == int(alpha):
                o[0] = a[0] ** alpha
            else:
                raise _Domain(op, f"real power {_fmt(alpha)} of {_sign_word(a[0])} ({_fmt(a[0])})"
                                  + _INT_POW_HINT * (alpha == int(alpha)), "the real power")
        if const:
            return f0, None
        alpha1 = x[0] + 1
        ja = jser(ia)

        def fk(k):
            ja[k] = k * a[k]
            o[k] = (alpha1 * fsum(map(mul, ja[1:k + 1], o[k - 1::-1]))
                    - k * fsum(map(mul, a[1:k + 1], o[k - 1::-1]))) / (k * a[0])
        return f0, fk

    if kind == "exp":
        ia = ins[0]
        a, o = S[ia], S[op.outs[0]]

        def f0():
            o[0] = B.exp(a[0])
        if is_const[ia]:
            return f0, None
        ja = jser(ia)

        def fk(k):
            ja[k] = k * a[k]
            o[k] = fsum(map(mul, ja[1:k + 1], o[k - 1::-1])) / k
        return f0, fk

    if kind == "log":
        ia = ins[0]
        a, o = S[ia], S[op.outs[0]]
        jo = [0] * len(o)

        def f0():
            if not a[0] > 0:
                if label == "real power":  # b**x with a varying exponent x is exp(x log b)
                    raise _Domain(op, f"real power with a varying exponent of {_sign_word(a[0])} "
                                      f"({_fmt(a[0])})", "the real power")
                raise _Domain(op, f"log of {_sign_word(a[0])} ({_fmt(a[0])})", "log")
            o[0] = B.log(a[0])
        if is_const[ia]:
            return f0, None

        def fk(k):
            o[k] = (a[k] - fsum(map(mul, jo[1:k], a[k - 1:0:-1])) / k) / a[0]
            jo[k] = k * o[k]
        return f0, fk

    if kind in ("sincos", "sinhcosh"):
        ia = ins[0]
        a, s, c = S[ia], S[op.outs[0]], S[op.outs[1]]
        pair = B.sincos if kind == "sincos" else B.sinhcosh

        def f0():
            s[0], c[0] = pair(a[0])
        if is_const[ia]:
            return f0, None
        ja = jser(ia)
        if kind == "sincos":
            def fk(k):
                ja[k] = k * a[k]
                jr = ja[1:k + 1]
                s[k] = fsum(map(mul, jr, c[k - 1::-1])) / k
                c[k] = -fsum(map(mul, jr, s[k - 1::-1])) / k
        else:
            def fk(k):
                ja[k] = k * a[k]
                jr = ja[1:k + 1]
                s[k] = fsum(map(mul, jr, c[k - 1::-1])) / k
                c[k] = fsum(map(mul, jr, s[k - 1::-1])) / k
        return f0, fk

    if kind in ("tan", "tanh"):
        ia = ins[0]
        a, o, u = S[ia], S[op.outs[0]], S[op.outs[1]]
        sign = 1 if kind == "tan" else -1
        fn = B.tan if kind == "tan" else B.tanh

        def f0():
            o[0] = fn(a[0])
            u[0] = 1 + sign * o[0] * o[0]
        if is_const[ia]:
            return f0, None
        ja = jser(ia)

        def fk(k):
            ja[k] = k * a[k]
            o[k] = fsum(map(mul, ja[1:k + 1], u[k - 1::-1])) / k
            u[k] = sign * _sym_sum(fsum, o, k, 0)
        return f0, fk

    if kind == "ainv":
        ia, iw = ins
        a, w, o = S[ia], S[iw], S[op.outs[0]]
        name, sgn = op.extra
        fn = getattr(B, name)
        jo = [0] * len(o)

        def f0():
            v = a[0]
            if name in ("asin", "acos", "atanh") and not (-1 < v < 1):
                raise _Domain(op, f"{name} of {_fmt(v)}, outside (-1, 1)", name)
            if name == "acosh" and not v > 1:
                raise _Domain(op, f"acosh of {_fmt(v)}, not > 1", name)
            o[0] = fn(v)
        if is_const[ia]:
            return f0, None

        def fk(k):
            o[k] = (sgn * k * a[k] - fsum(map(mul, w[1:k], jo[k - 1:0:-1]))) / (k * w[0])
            jo[k] = k * o[k]
        return f0, fk

    if kind == "side":  # emitted before every abs/sign/Heaviside of a non-constant argument
        ia = ins[0]
        a = S[ia]
        cell = _new_cell(abs_state, ia, a)

        def f0():
            if cell["forced"] is not None:  # landed on a zero crossing (or a redo): take the side we go to
                cell["sigma"] = cell["forced"]  # (integrate clears "forced" once the step's coefficients are done)
            else:
                cell["sigma"] = (a[0] > 0) - (a[0] < 0)

        def fk(k):
            if cell["sigma"] == 0 and a[k] != 0:  # a[0] == 0: the first nonzero coefficient decides the side
                # a(tau) ~ a[k] tau**k, and tau runs in the time direction (negative backward)
                cell["sigma"] = ((a[k] > 0) - (a[k] < 0)) * (cell["dir"] if k % 2 else 1)
                cell["redo"] = cell["piecewise"]
        return f0, fk

    if kind == "abs":  # |a| = sigma * a within a step (the step ends on every zero crossing of a)
        ia = ins[0]
        a, o = S[ia], S[op.outs[0]]
        if is_const[ia]:
            def f0():
                o[0] = abs(a[0])
            return f0, None
        cell = _new_cell(abs_state, ia, a)

        def f0():
            o[0] = abs(a[0])

        def fk(k):
            o[k] = cell["sigma"] * a[k]
        return f0, fk

    if kind == "step":  # sign(a), Heaviside(a, H0): constant within a step; values for a < 0, a = 0, a > 0
        ia = ins[0]
        a, o = S[ia], S[op.outs[0]]
        vals = {s: (B.from_fraction(v.numerator, v.denominator) if isinstance(v, Fraction) else B.number(v))
                for s, v in zip((-1, 0, 1), op.extra)}
        if is_const[ia]:
            def f0():
                o[0] = vals[(a[0] > 0) - (a[0] < 0)]
            return f0, None
        cell = _new_cell(abs_state, ia, a)
        cell["piecewise"], cell["op"] = True, op

        def f0():
            o[0] = vals[cell["sigma"]]
        return f0, None  # o[k] = 0 for k >= 1 (the tape's coefficients start at 0 and stay there)

    raise AssertionError(f"unknown tape op {kind}")  # pragma: no cover - the compiler emits only the above


#: The real domains of the inverse functions, for messages.
_AINV_DOMAIN = {"asin": "[-1, 1]", "acos": "[-1, 1]", "atanh": "(-1, 1)", "acosh": "[1, oo)"}
#: Added to the message of an integer-valued real power (e.g. z**p with p = 2) of a non-positive base.
_INT_POW_HINT = ("; a power whose exponent is a parameter is evaluated as exp(p log(base)) and needs a positive "
                 "base, write the integer exponent into the expression instead")


def _fmt(x, n: int = 6) -> str:
    try:
        return mpmath.nstr(to_mpf(x), n) if not isinstance(x, int) else str(x)
    except Exception:  # non-finite values
        return str(x)


def _diagnose(system: TaylorSystem, S, yv, t) -> str:
    """Name the likely cause of a step-size collapse at ``t``.

    A domain boundary being approached: the argument of log/sqrt/a real power, a denominator, or the
    argument of asin/acos/atanh/acosh within 1e-6 of the point where the operation stops being defined (or
    differentiable).  Operations with a restricted domain are named before divisions (the derivative of
    log(z) divides by z: the cause is log).  Otherwise: finite-time blow-up or another singularity.
    """
    near_t = _fmt(t, 12)
    found = []  # (rank, distance, message)
    for op in system.main_ops:
        kind = op.op
        if kind in ("log", "sqrt", "pow"):
            if kind == "sqrt" and op.extra is not None:  # the sqrt inside asin & co: reported by "ainv"
                continue
            node = op.ins[0]
            if kind == "log" and op.label != "real power":
                what, why = "argument", "the solution leaves the domain of log"
            elif kind == "sqrt":
                what, why = "argument", ("sqrt's derivative is unbounded there and sqrt is undefined below 0: "
                                         "the solution leaves the domain of sqrt")
            elif kind == "log":
                what, why = "base", "the solution leaves the domain of the real power with a varying exponent"
            else:
                alpha = S[op.ins[1]][0]
                what = "base"
                why = (f"the solution leaves the domain of the real power with the non-integer exponent "
                       f"{_fmt(alpha)}" if alpha != int(alpha) else
                       f"the real power with the parameter exponent {_fmt(alpha)} needs a positive base")
            rank, v, target = 0, S[node][0], "0"
        elif kind == "div":
            node = op.ins[1]
            rank, v, target, what, why = 1, S[node][0], "0", "denominator", "division by zero"
        elif kind == "ainv" and op.extra[0] in _AINV_DOMAIN:
            node = op.ins[0]
            name = op.extra[0]
            v = S[op.ins[1]][0]  # w = 1 - x**2, sqrt(1 - x**2) or sqrt(x**2 - 1): 0 at the domain boundary
            target = "1" if name == "acosh" or S[node][0] > 0 else "-1"
            rank, what, why = 0, "argument", f"the solution leaves the domain of {name}, {_AINV_DOMAIN[name]}"
        else:
            continue
        if system._is_const[node] or not abs(v) < 1e-6:
            continue
        found.append((rank, abs(v), f"{system.describe(op)}: its {what} approaches {target} near t = {near_t} "
                                    f"({why})"))
    if found:
        found.sort(key=lambda c: (c[0], c[1]))
        msg = found[0][2]
        others = list(dict.fromkeys(c[2].split(": its ")[0] for c in found[1:]))
        others = [o for o in others if o != msg.split(": its ")[0]][:2]
        if others:
            msg += f"; also at their singular point there: {', '.join(others)}"
        return msg
    big = max(range(system.n_states), key=lambda i: abs(yv[i]))
    return (f"the solution is singular near t = {near_t}: finite-time blow-up or a singularity of the right-hand "
            f"side; largest state {system.states[big]} = {_fmt(yv[big])}")


def _horner(c, tau):
    r = c[-1]
    for j in range(len(c) - 2, -1, -1):
        r = r * tau + c[j]
    return r


# --------------------------------------------------------------------------------------------------
# The integrator
# --------------------------------------------------------------------------------------------------

def integrate(system: TaylorSystem, y0, t0, t_out, params=(), digits: int = 30, *,
              progress: Callable[[float], None] | None = None, max_steps: int = 100_000,
              stats: dict | None = None, backend: str | None = None) -> list[list]:
    """Integrate ``system`` from ``(t0, y0)`` and return the states at each time of ``t_out``.

    ``y0``, ``t0``, ``t_out`` and ``params`` may be ints, ``Fraction``s, decimal strings, SymPy numbers
    (``Rational`` exactly; ``Float`` as the exact binary number it holds; ``pi``, ``sqrt(2)``... evaluated at
    working precision) or ``mpmath.mpf``; they are converted exactly and rounded once.  ``t_out`` must be
    ordered in the direction of integration, all on one side of ``t0`` (times equal to ``t0`` allowed):
    ascending for ``t_out >= t0``, descending for ``t_out <= t0`` (backward integration, negative steps).

    ``digits``: decimal digits wanted.  The arithmetic carries ``digits + GUARD_DIGITS`` digits and each
    step's truncation error is kept near ``10**-(digits + TOLERANCE_MARGIN_DIGITS) * max(1, ||y||_inf)``,
    so the results are good to about ``digits`` digits relative to ``max(1, ||y||_inf)``.

    Returns ``result[i][j]`` = state ``j`` at ``t_out[i]`` in the working number type (``gmpy2.mpfr``, or
    ``mpmath.mpf`` with ``backend="mpmath"``); :func:`to_mpf` converts exactly.  ``progress(fraction)``
    is called at most ~10 times a second (and once with 1.0 at the end).  ``max_steps`` bounds the number
    of steps (IntegrationError when used up).  ``stats``, if a dict, receives ``steps``, ``order``,
    ``precision_bits``, ``tolerance``, ``truncation_error_estimate`` (sum over steps of the estimated
    local truncation error, relative to ``max(1, ||y||)``), ``abs_crossings`` and ``backend``.
    """
    if not isinstance(system, TaylorSystem):
        raise SpecError(f"system must be a TaylorSystem, got {type(system).__name__}")
    if isinstance(digits, bool) or not isinstance(digits, int) or digits < 1:
        raise SpecError(f"digits = {digits!r} must be a positive integer")
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
        raise SpecError(f"max_steps = {max_steps!r} must be a positive integer")
    y0 = list(y0)
    params = list(params)
    t_out = list(t_out)
    if len(y0) != system.n_states:
        raise SpecError(f"y0 has {len(y0)} values for {system.n_states} states")
    if len(params) != len(system.params):
        raise SpecError(f"params has {len(params)} values for {len(system.params)} parameters "
                        f"({', '.join(map(str, system.params))})")
    B = _backend(backend)
    bits = math.ceil((digits + GUARD_DIGITS) * math.log2(10)) + 8
    eps_digits = digits + TOLERANCE_MARGIN_DIGITS
    K = math.ceil(eps_digits * math.log(10) / 2 + 1)

    with B.precision(bits):
        yv = [_to_working(v, f"y0[{i}]", B, bits) for i, v in enumerate(y0)]
        t = _to_working(t0, "t0", B, bits)
        pv = [_to_working(v, f"params[{i}] ({system.params[i]})", B, bits) for i, v in enumerate(params)]
        targets = [_to_working(v, f"t_out[{i}]", B, bits) for i, v in enumerate(t_out)]
        if not targets:
            return []
        direction = 1 if targets[-1] >= t else -1
        prev = t
        for i, tt in enumerate(targets):
            if (tt - prev) * direction < 0:
                raise SpecError(f"t_out[{i}] = {t_out[i]} is out of order: t_out must run away from t0 = {t0} "
                                f"monotonically (ascending forward, descending backward)")
            prev = tt
        span = abs(targets[-1] - t)
        t_start = t

        zero = B.from_fraction(0, 1)
        one = B.from_fraction(1, 1)
        S = [[zero] * (K + 1) for _ in range(system.n_nodes)]
        for i, p in enumerate(pv):
            S[system.n_states + 1 + i][0] = p
        for node, value in system._literals:
            S[node][0] = _to_working(value, f"the constant {value}", B, bits)
        S[system.t_node][1] = one
        scaled: dict = {}
        abs_state: dict = {}
        try:
            for op in system.const_ops:
                _kernels(op, S, system._is_const, B, scaled, abs_state)[0]()
        except _Domain as exc:
            raise IntegrationError(f"{exc.message(system)} in a constant part of the right-hand side (it depends "
                                   f"only on parameters); check the parameter values", time=float(t)) from None
        for n, c in enumerate(system._is_const):
            if c and not B.is_finite(S[n][0]):
                raise IntegrationError(f"a constant part of the right-hand side is not finite ({S[n][0]}); "
                                       f"check the parameter values", time=float(t))
        f0s, fks = [], []
        for op in system.main_ops:
            f0, fk = _kernels(op, S, system._is_const, B, scaled, abs_state)
            f0s.append(f0)
            if fk is not None:
                fks.append(fk)
        X = [S[i] for i in range(system.n_states)]
        R = [S[n] for n in system.rhs_nodes]
        XR = list(zip(X, R))
        T = S[system.t_node]
        inv = [one / (k + 1) for k in range(K + 1)]
        safety = B.exp(B.from_fraction(-2, 1) - B.from_fraction(7, 10 * (K - 1)))
        inv_km1 = one / (K - 1)
        inv_k = one / K
        abs_cells = list(abs_state.values())
        for c in abs_cells:
            c["dir"] = direction

        results = []
        ti = 0
        steps = 0
        crossings = 0
        err_est = zero
        last_report = _time.monotonic()
        min_step = span * B.from_fraction(1, 1) * B.number(MIN_STEP_FRACTION)
        while ti < len(targets) and targets[ti] == t:
            results.append(list(yv))
            ti += 1
        while ti < len(targets):
            if steps >= max_steps:
                raise IntegrationError(f"max_steps = {max_steps} steps used up at t = {_fmt(t, 17)} before reaching "
                                       f"t = {_fmt(targets[-1])}; raise max_steps or shorten the interval",
                                       time=float(t))
            # ---- Taylor coefficients of the states at t ----
            for _pass in range(len(abs_cells) + 1):
                for x, v in zip(X, yv):
                    x[0] = v
                T[0] = t
                try:
                    for f in f0s:
                        f()
                except _Domain as exc:
                    raise IntegrationError(f"{exc.message(system)} at t = {_fmt(t, 17)}: the solution left the "
                                           f"domain of {exc.func}", time=float(t)) from None
                for x, r in XR:
                    x[1] = r[0]
                for k in range(1, K):
                    for f in fks:
                        f(k)
                    ik = inv[k]
                    for x, r in XR:
                        x[k + 1] = r[k] * ik
                # A sign/Heaviside argument exactly 0 at t whose side was decided by a higher coefficient:
                # its order-0 value (sign(0) = 0) is wrong for the open step; redo the step with that side.
                redo = [c for c in abs_cells if c["redo"]]
                if not redo:
                    break
                for c in redo:
                    c["forced"], c["redo"], c["check"] = c["sigma"], False, True
            for c in abs_cells:
                c["forced"] = None
                if c["check"]:
                    c["check"] = False
                    if not _moves_into(c, K):
                        name = c["op"].label
                        raise IntegrationError(
                            f"{system.describe(c['op'])}: at t = {_fmt(t, 17)} the argument of {name} is 0 and the "
                            f"right-hand side pushes it back towards 0 from both sides (a sliding mode along the "
                            f"discontinuity of {name}, where {name} has no single value); the Taylor integrator "
                            f"cannot continue. Stop the integration before this time or change the model",
                            time=float(t))

            # ---- step size (Jorba & Zou) ----
            scale = max(one, max(abs(v) for v in yv))
            n1 = max(abs(x[K - 1]) for x in X)
            n2 = max(abs(x[K]) for x in X)
            rho = None
            if n1 > 0:
                rho = (scale / n1) ** inv_km1
            if n2 > 0:
                r2 = (scale / n2) ** inv_k
                rho = r2 if rho is None or r2 < rho else rho
            remaining = targets[ti] - t
            if rho is None:
                h, landing = remaining, True
            else:
                h = rho * safety * direction
                landing = abs(h) >= abs(remaining)
                if landing:
                    h = remaining
            if not B.is_finite(h):
                raise IntegrationError(f"the step size is not finite at t = {_fmt(t)} (non-finite Taylor "
                                       f"coefficients): the solution is singular there", time=float(t))
            if not landing and abs(h) < min_step:
                raise IntegrationError(
                    f"{_diagnose(system, S, yv, t)}; the step size collapsed to {_fmt(h)} at t = {_fmt(t, 17)}. "
                    f"Stop the integration before this time or change the model or its initial values",
                    time=float(t))

            # ---- land on the first zero crossing of an abs/sign/Heaviside argument within the step ----
            cross = None
            for cell in abs_cells:
                sg = cell["sigma"]
                if sg == 0:
                    continue
                a = cell["arg"]
                lo = zero
                for i in range(1, 5):
                    tau = h * i / 4
                    if _horner(a, tau) * sg < 0:
                        hi = tau
                        for _ in range(bits + 4):
                            mid = (lo + hi) / 2
                            if _horner(a, mid) * sg < 0:
                                hi = mid
                            else:
                                lo = mid
                        if cross is None or abs(hi) < abs(cross[0]):
                            cross = (hi, cell, -sg)
                        break
                    lo = tau
            if cross is not None:
                h, landing = cross[0], False
                # Another argument crossing at the same point (e.g. z and 2*z) is not forced: if round-off
                # puts it on its old side at the next step start, that step finds its crossing at once and
                # ends after a round-off-sized step.
                cross[1]["forced"] = cross[2]
                cross[1]["check"] = cross[1]["piecewise"]  # a discontinuous rhs may not let it cross
                crossings += 1

            # ---- advance ----
            hp = [one]
            for _ in range(K):
                hp.append(hp[-1] * h)
            yv = [B.fsum(map(mul, x, hp)) for x in X]
            e1 = n1 * abs(hp[K - 1]) if n1 > 0 else zero
            e2 = n2 * abs(hp[K]) if n2 > 0 else zero
            err_est = err_est + max(e1, e2) / scale
            t = targets[ti] if landing else t + h
            steps += 1
            for i, v in enumerate(yv):
                if not B.is_finite(v):
                    raise IntegrationError(f"state {system.states[i]} became non-finite ({v}) at t = {_fmt(t)}",
                                           time=float(t))
            while ti < len(targets) and targets[ti] == t:
                results.append(list(yv))
                ti += 1
            if progress is not None:
                now = _time.monotonic()
                if now - last_report >= PROGRESS_INTERVAL_S:
                    last_report = now
                    progress(float(abs(t - t_start) / span) if span > 0 else 1.0)
        if progress is not None:
            progress(1.0)
        if stats is not None:
            stats.update(steps=steps, order=K, precision_bits=bits, tolerance=f"1e-{eps_digits}",
                         truncation_error_estimate=float(err_est), abs_crossings=crossings, backend=B.name)
        return results
