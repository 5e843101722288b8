"""The numbers a check meets, converted without loss: to mpmath at the working precision (:func:`to_mpf`) and
to exact SymPy numbers (:func:`exact_number`).  Floats and mpf values enter exactly as binary fractions."""
from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction

import mpmath
import numpy as np
import sympy

from ..errors import SpecError, SymodeError

__all__ = ["ComparisonError", "to_mpf", "exact_number"]


class ComparisonError(SymodeError):
    """A comparison failed (``Comparison.raise_if_failed``) or its inputs cannot be compared at all."""


def to_mpf(v) -> mpmath.mpf:
    """The value as an mpf at the current working precision (exact for floats, ints within precision)."""
    if isinstance(v, mpmath.mpf):
        return +v if v._mpf_[3] > mpmath.mp.prec else v  # unary plus rounds to working precision
    if isinstance(v, (float, np.floating)):
        return mpmath.mpf(float(v))  # exact: float32 and float64 values are binary doubles
    if isinstance(v, (int, np.integer)):
        return mpmath.mpf(int(v))
    if isinstance(v, Fraction):
        return mpmath.mpf(v.numerator) / v.denominator
    if isinstance(v, Decimal):
        if not v.is_finite():
            return mpmath.mpf("nan") if v.is_nan() else mpmath.mpf("inf") * (-1 if v < 0 else 1)
        num, den = v.as_integer_ratio()
        return mpmath.mpf(num) / den
    if isinstance(v, sympy.Float):
        return +mpmath.mpf(v._mpf_)
    if isinstance(v, sympy.Rational):
        return mpmath.mpf(int(v.p)) / int(v.q)
    if isinstance(v, sympy.Basic):
        dps = mpmath.mp.dps + 5
        val = sympy.N(v, dps)
        if not isinstance(val, sympy.Float):
            return mpmath.mpf("nan")
        return +mpmath.mpf(val._mpf_)
    raise ComparisonError(f"cannot convert {v!r} to a number")



def exact_number(v, where: str) -> sympy.Expr:
    """An exact SymPy number for v (floats and mpf enter exactly as binary fractions)."""
    if isinstance(v, (bool, np.bool_)):
        raise SpecError(f"{where}: {v!r} is not a number")
    if isinstance(v, sympy.Basic):
        return v
    if isinstance(v, (int, np.integer)):
        return sympy.Integer(int(v))
    if isinstance(v, Fraction):
        return sympy.Rational(v.numerator, v.denominator)
    if isinstance(v, Decimal):
        return sympy.Rational(*v.as_integer_ratio())
    if isinstance(v, (float, np.floating)):
        f = float(v)
        if not math.isfinite(f):
            raise SpecError(f"{where}: {f} is not finite")
        return sympy.Rational(*f.as_integer_ratio())
    if isinstance(v, mpmath.mpf):
        if not mpmath.isfinite(v):
            raise SpecError(f"{where}: {v} is not finite")
        man, exp = v.man_exp
        return sympy.Integer(int(man)) * sympy.Integer(2) ** int(exp)
    raise SpecError(f"{where}: {type(v).__name__} {v!r} is not a number")
