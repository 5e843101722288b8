"""Forward-mode dual numbers over mpmath: a value and its derivatives in K directions, at mpmath's precision.

A :class:`Dual` carries ``v`` (an ``mpmath.mpf``) and ``d`` (a tuple of K mpf: ∂v/∂x_k).  Arithmetic and the
functions of :data:`FUNCTIONS` apply the chain rule exactly; every operation rounds once at ``mpmath.mp.prec``,
so a computation's derivatives are as accurate as its values.  Used by :mod:`symode.oracle.discrete` to
differentiate a fixed-step scheme in high precision (the exact discrete gradient, not a continuous limit).

Domains: ``log`` of x <= 0, ``sqrt`` and non-integer powers of x < 0 raise :class:`DomainError` (mpmath would
return a complex number); callers name the time.
"""
from __future__ import annotations

import mpmath

__all__ = ["Dual", "DomainError", "FUNCTIONS", "functions_namespace"]


class DomainError(ArithmeticError):
    """A function was evaluated outside its real domain."""


def _lift(x, k: int) -> "Dual":
    return x if isinstance(x, Dual) else Dual(mpmath.mpf(x), None)


class Dual:
    """v + Σ_k d_k ε_k; ``d`` None means a constant (all derivatives 0)."""

    __slots__ = ("v", "d")

    def __init__(self, v, d):
        self.v = v
        self.d = d

    @staticmethod
    def variable(v, k: int, K: int) -> "Dual":
        one, zero = mpmath.mpf(1), mpmath.mpf(0)
        return Dual(mpmath.mpf(v), tuple(one if i == k else zero for i in range(K)))

    # -- arithmetic ------------------------------------------------------------------------------------------
    def _combine(self, other, v, da, db) -> "Dual":
        """Result value v with derivative da·self.d + db·other.d (skipping constant sides)."""
        a, b = self.d, other.d
        if a is None and b is None:
            return Dual(v, None)
        if b is None:
            return Dual(v, tuple(da * x for x in a))
        if a is None:
            return Dual(v, tuple(db * y for y in b))
        return Dual(v, tuple(da * x + db * y for x, y in zip(a, b)))

    def __add__(self, other):
        other = _lift(other, 0)
        a, b = self.d, other.d
        d = a if b is None else b if a is None else tuple(x + y for x, y in zip(a, b))
        return Dual(self.v + other.v, d)

    __radd__ = __add__

    def __neg__(self):
        return Dual(-self.v, None if self.d is None else tuple(-x for x in self.d))

    def __sub__(self, other):
        return self + (-_lift(other, 0))

    def __rsub__(self, other):
        return _lift(other, 0) + (-self)

    def __mul__(self, other):
        other = _lift(other, 0)
        return self._combine(other, self.v * other.v, other.v, self.v)

    __rmul__ = __mul__

    def __truediv__(self, other):
        other = _lift(other, 0)
        if other.v == 0:
            raise DomainError("division by zero")
        q = self.v / other.v
        return self._combine(other, q, 1 / other.v, -q / other.v)

    def __rtruediv__(self, other):
        return _lift(other, 0) / self

    def __pow__(self, e):
        if isinstance(e, Dual):
            if e.d is None:
                return power(self, e.v)
            return exp(e * log(self))
        return power(self, e)

    def __rpow__(self, base):
        return exp(self * log(_lift(base, 0)))

    def __repr__(self):
        return f"Dual({mpmath.nstr(self.v, 8)}, {None if self.d is None else [mpmath.nstr(x, 8) for x in self.d]})"


def _unary(v, dv, x: Dual) -> Dual:
    return Dual(v, None if x.d is None else tuple(dv * e for e in x.d))


def power(x, e) -> Dual:
    """x**e for a constant exponent e (int, mpf or a constant Dual)."""
    x = _lift(x, 0)
    e = e.v if isinstance(e, Dual) else e
    if isinstance(e, int) or (isinstance(e, mpmath.mpf) and e == int(e)):
        n = int(e)
        if n == 0:
            return Dual(mpmath.mpf(1), None)
        if x.v == 0 and n < 0:
            raise DomainError("0 to a negative power")
        return _unary(x.v ** n, n * x.v ** (n - 1), x)
    if x.v < 0:
        raise DomainError(f"non-integer power of a negative number ({mpmath.nstr(x.v, 6)})")
    if x.v == 0:
        if e > 1:
            return Dual(mpmath.mpf(0), None if x.d is None else tuple(mpmath.mpf(0) for _ in x.d))
        raise DomainError("a power below 1 of 0 (infinite derivative)")
    v = mpmath.power(x.v, e)
    return _unary(v, e * v / x.v, x)


def exp(x):
    x = _lift(x, 0)
    v = mpmath.exp(x.v)
    return _unary(v, v, x)


def log(x):
    x = _lift(x, 0)
    if x.v <= 0:
        raise DomainError(f"log of {mpmath.nstr(x.v, 6)} (not positive)")
    return _unary(mpmath.log(x.v), 1 / x.v, x)


def sqrt(x):
    x = _lift(x, 0)
    if x.v < 0:
        raise DomainError(f"sqrt of {mpmath.nstr(x.v, 6)} (negative)")
    v = mpmath.sqrt(x.v)
    if v == 0:
        if x.d is None:
            return Dual(v, None)
        raise DomainError("sqrt at 0 (infinite derivative)")
    return _unary(v, 1 / (2 * v), x)


def sin(x):
    x = _lift(x, 0)
    return _unary(mpmath.sin(x.v), mpmath.cos(x.v), x)


def cos(x):
    x = _lift(x, 0)
    return _unary(mpmath.cos(x.v), -mpmath.sin(x.v), x)


def tan(x):
    x = _lift(x, 0)
    v = mpmath.tan(x.v)
    return _unary(v, 1 + v * v, x)


def sinh(x):
    x = _lift(x, 0)
    return _unary(mpmath.sinh(x.v), mpmath.cosh(x.v), x)


def cosh(x):
    x = _lift(x, 0)
    return _unary(mpmath.cosh(x.v), mpmath.sinh(x.v), x)


def tanh(x):
    x = _lift(x, 0)
    v = mpmath.tanh(x.v)
    return _unary(v, 1 - v * v, x)


def atan(x):
    x = _lift(x, 0)
    return _unary(mpmath.atan(x.v), 1 / (1 + x.v * x.v), x)


def asinh(x):
    x = _lift(x, 0)
    return _unary(mpmath.asinh(x.v), 1 / mpmath.sqrt(1 + x.v * x.v), x)


def abs_(x):
    x = _lift(x, 0)
    return _unary(abs(x.v), mpmath.sign(x.v), x)  # the derivative 0 at the kink: SymPy's and CasADi's sign(0)


def sign(x):
    x = _lift(x, 0)
    return Dual(mpmath.sign(x.v), None if x.d is None else tuple(mpmath.mpf(0) for _ in x.d))


def maximum(a, b):
    a, b = _lift(a, 0), _lift(b, 0)
    return a if a.v >= b.v else b


def minimum(a, b):
    a, b = _lift(a, 0), _lift(b, 0)
    return a if a.v <= b.v else b


def where(cond, a, b):
    return a if cond else b


#: name -> function, the namespace ``_d`` of the "exact" backend of :mod:`symode.interop.emit`
FUNCTIONS = {"exp": exp, "log": log, "sin": sin, "cos": cos, "tan": tan, "sinh": sinh, "cosh": cosh,
             "tanh": tanh, "atan": atan, "asinh": asinh, "abs": abs_, "sign": sign, "sqrt": sqrt,
             "power": power, "maximum": maximum, "minimum": minimum, "where": where}


class functions_namespace:
    """An object whose attributes are :data:`FUNCTIONS` (what generated code calls as ``_d.sin(...)``)."""

    def __init__(self):
        for k, v in FUNCTIONS.items():
            setattr(self, k, v)


# comparisons for generated `where(x > 0, ...)` (Heaviside): compare the values
Dual.__gt__ = lambda self, o: self.v > _lift(o, 0).v
Dual.__lt__ = lambda self, o: self.v < _lift(o, 0).v
