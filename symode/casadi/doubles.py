"""Exact real numbers -> the nearest double, correctly rounded, refusing values outside float64's range.

Every float64 route (CasADi graphs, generated C, the interop exports) takes its constants from here, so all of
them compute with the same nearest double to each exact constant; the oracle keeps the exact value.
"""
from __future__ import annotations

import math
from fractions import Fraction

import sympy

from symode.errors import TranslationError

__all__ = ["nearest_double"]


def _mpf_to_fraction(mpf_tuple) -> Fraction:
    """Exact value of an mpmath/SymPy binary float tuple (sign, mantissa, exponent, bitcount)."""
    sign, man, exp, _ = mpf_tuple
    if man == 0 and exp != 0:  # mpmath encodes inf/nan with a zero mantissa and a nonzero exponent
        raise TranslationError("no CasADi translation for a non-finite number (inf or nan); "
                               "remove it from the expression")
    value = Fraction(man) * (Fraction(2) ** exp)
    return -value if sign else value


def nearest_double(value) -> float:
    """The double nearest to an exact real number, refusing values outside float64's range.

    A nonzero constant that would round to 0 or overflow to inf is a :class:`TranslationError` naming it:
    ``exp(800)*1e-348`` once became 0 * ... in the float64 routes, silently (the oracle gave 0.58, the routes
    1.0).  See :func:`_nearest_double` for the rounding.
    """
    x = _nearest_double(value)
    if math.isinf(x) or (x == 0.0 and value != 0):
        shown = sympy.N(value, 6) if isinstance(value, sympy.Basic) else f"{float(Fraction(value)):.6g}" \
            if isinstance(value, (int, Fraction)) and abs(Fraction(value)) < 10 ** 300 else value
        raise TranslationError(f"the constant {shown} is outside the float64 range (it would become "
                               f"{x!r} in the compiled routes); rescale the model or combine the constants")
    return x


def _nearest_double(value) -> float:
    """The double nearest to an exact real number (ties to even).

    Accepts int, float, Fraction, and SymPy numbers: Integer, Rational, Float (its exact binary value) and
    real constant expressions such as ``pi``, ``E`` or ``1/4 - sqrt(3)/6``.  Irrational values are evaluated
    with increasing precision until the enclosing interval lies on one side of a rounding boundary, so the
    result is the correctly rounded double, not merely a close one.
    """
    if isinstance(value, bool):
        raise TranslationError("a boolean is not a number; use 0 or 1")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TranslationError(f"no CasADi translation for the non-finite number {value!r}")
        return value
    if isinstance(value, (int, Fraction, sympy.Rational)):  # Integer is a Rational
        # int / Fraction -> float is correctly rounded in CPython (int true division rounds once)
        f = Fraction(value) if not isinstance(value, sympy.Rational) else Fraction(int(value.p), int(value.q))
        try:
            return float(f)
        except OverflowError:
            return math.inf if f > 0 else -math.inf
    if isinstance(value, sympy.Float):
        return float(_mpf_to_fraction(value._mpf_))
    if isinstance(value, sympy.Expr) and value.is_number:
        if value.is_real is False or value.has(sympy.zoo, sympy.oo, -sympy.oo, sympy.nan):
            raise TranslationError(f"no CasADi translation for the non-real or non-finite number {value}")
        for bits in (120, 240, 1000):
            approx = value.evalf(n=int(bits * 0.30103) + 5)
            if not isinstance(approx, sympy.Float):
                raise TranslationError(f"cannot evaluate the number {value} to a real float")
            center = _mpf_to_fraction(approx._mpf_)
            # a generous bound on the evaluation error: 2^-(bits-20) relative
            radius = abs(center) / (Fraction(2) ** (bits - 20))
            try:
                lo, hi = float(center - radius), float(center + radius)
            except OverflowError:
                return math.inf if center > 0 else -math.inf
            if lo == hi:
                return lo
            if radius == 0:
                return float(center)
        raise TranslationError(f"cannot decide the nearest double to {value}: it lies (numerically) on a "
                               "rounding boundary; give the constant as an exact rational")
    raise TranslationError(f"no CasADi translation for the number {value!r} of type {type(value).__name__}")
