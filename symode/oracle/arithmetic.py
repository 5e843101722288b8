"""The oracle's arithmetic: numbers at a chosen binary precision, and exact conversion of inputs into them.

Numbers are ``gmpy2.mpfr`` (measured 4-9x faster than ``mpmath.mpf`` for the convolutions that dominate the
Taylor recurrences); without gmpy2 the same code runs on ``mpmath.mpf`` (:data:`BACKEND`).  Every input --
an int, ``Fraction``, decimal string, SymPy number or ``mpmath.mpf`` -- is converted exactly and rounded
once at the working precision (:func:`to_working`): a ``Rational`` ``p/q`` never passes through a binary
double, a ``sympy.Float`` is taken as the exact binary number it holds.  :func:`to_mpf` converts a result
back to ``mpmath.mpf`` exactly.
"""
from __future__ import annotations

import math
from fractions import Fraction

import mpmath
import sympy

from symode.errors import IntegrationError, SpecError

try:  # gmpy2 is optional: mpmath.mpf is the (slower) fallback
    import gmpy2
except ImportError:  # pragma: no cover - exercised only where gmpy2 is absent
    gmpy2 = None

__all__ = ["BACKEND", "number_backend", "to_mpf", "to_working"]


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


def number_backend(name: str | None):
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


def to_working(value, what: str, B, bits: int):
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
