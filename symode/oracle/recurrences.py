"""Taylor-coefficient recurrences: one small builder per tape operation, in the table :data:`RECURRENCES`.

Writing every node of the tape (:mod:`symode.oracle.tape`) as a series ``v(t + tau) = sum_k v[k] tau**k``,
each operation has a recurrence giving its coefficient ``k`` from the coefficients ``0..k`` of its inputs and
``0..k-1`` of itself (Griewank & Walther, *Evaluating Derivatives*, 2nd ed., ch. 13; Jorba & Zou,
*Experimental Math.* 14 (2005) 99-117).  With ``ja[j] = j*a[j]``::

    c = a*b        c[k] = sum_{j=0..k} a[j] b[k-j]
    c = a/b        c[k] = (a[k] - sum_{j=1..k} b[j] c[k-j]) / b[0]
    c = exp(a)     c[k] = (1/k) sum_{j=1..k} ja[j] c[k-j]
    c = log(a)     c[k] = (a[k] - (1/k) sum_{j=1..k-1} j c[j] a[k-j]) / a[0]
    c = a**alpha   c[k] = (1/(k a[0])) sum_{j=1..k} ((alpha+1) j - k) a[j] c[k-j]
    s, c = sin a, cos a     s[k] = (1/k) sum ja[j] c[k-j],  c[k] = -(1/k) sum ja[j] s[k-j]
    t = tanh(a), u = 1 - t**2:   t[k] = (1/k) sum ja[j] u[k-j]
    c = atan(a), w = 1 + a**2:   c[k] = (k a[k] - sum_{j=1..k-1} w[j] (k-j) c[k-j]) / (k w[0])

A builder ``builder(op, cx) -> (f0, fk)`` returns two closures over the coefficient arrays of the operation's
nodes (``cx.S[node]``): ``f0()`` computes the order-0 values and checks the domain (raising :class:`_Domain`
outside it), ``fk(k)`` computes the coefficients of order ``k >= 1``; ``fk`` is None where they are all zero
(an operation on constants).  The integrator calls every ``f0`` once per step, then ``fk(k)`` for
``k = 1 .. K-1`` in tape order.

Adding an operation (a vector or matrix operation of a neural network included):

1. write its builder, decorated with ``@recurrence("name")``, here or -- for a family of operations, as
   :mod:`symode.oracle.piecewise` does for abs/sign/Heaviside -- in a module of its own that
   :mod:`symode.oracle.taylor` imports (importing it registers the builders).  Its inputs and outputs are any
   number of nodes (``op.ins``, ``op.outs``: ``sincos`` has two outputs); ``op.extra`` carries whatever else
   it needs (shapes, the sign pattern of a ``lin``).  A matrix-vector product ``o = W x`` with W constant
   (parameter nodes) is ``o_i[k] = sum_j W_ij[0] x_j[k]``: one ``f0`` and one ``fk`` looping over the rows,
   reading the ``W_ij[0]`` (constant nodes have only an order-0 coefficient);
2. emit it from the tape (:mod:`symode.oracle.tape`: ``system._emit("name", ins, n_out, extra=...)``), from a
   function's emitter in ``TAYLOR_FUNCTIONS`` or from the tape builder;
3. if it has a restricted domain, raise ``_Domain(op, detail, function)`` in ``f0`` and teach
   :func:`symode.oracle.stepping.diagnose_collapse` to name it when the step size collapses near its boundary;
4. test it against an independent reference (``tests/test_taylor.py::test_every_operation_closed_form``
   checks that every operation appears in its right-hand side).

Everything a builder needs is in the :class:`Coefficients` it gets: the arrays, which nodes are constant, the
number backend and the shared ``j*a[j]`` series.
"""
from __future__ import annotations

from operator import mul
from typing import Callable

import mpmath

from symode.expr import FUNCTIONS

from .arithmetic import to_mpf

__all__ = ["RECURRENCES", "recurrence", "Coefficients", "kernels"]

#: tape operation -> builder ``(op, cx) -> (f0, fk)``.
RECURRENCES: dict[str, Callable] = {}


def recurrence(kind: str):
    """Register the decorated builder as the recurrence of tape operation ``kind``."""
    def register(builder):
        RECURRENCES[kind] = builder
        return builder
    return register


class Coefficients:
    """The working storage of one integration: ``S[n]`` the Taylor coefficients of node ``n``, ``is_const[n]``
    whether it depends only on parameters, ``B`` the number backend (:mod:`symode.oracle.arithmetic`),
    ``scaled`` the shared ``j*a[j]`` series, ``abs_state`` the side-of-0 cells of abs/sign/Heaviside
    arguments (:func:`symode.oracle.piecewise.new_cell`)."""

    def __init__(self, S, is_const, B):
        self.S, self.is_const, self.B = S, is_const, B
        self.scaled: dict = {}
        self.abs_state: dict = {}

    def jser(self, n: int) -> list:
        """The ``j*a[j]`` series of node ``n``, shared by every operation reading ``n``."""
        if n not in self.scaled:
            self.scaled[n] = [0] * len(self.S[n])
        return self.scaled[n]


def kernels(op, cx: Coefficients):
    """(f0, fk) of one tape operation (see the module docstring)."""
    builder = RECURRENCES.get(op.op)
    if builder is None:  # pragma: no cover - the tape emits only registered operations
        raise AssertionError(f"unknown tape op {op.op}")
    return builder(op, cx)


class _Domain(Exception):
    """An operation's argument left its real domain (converted to IntegrationError with the time).

    ``op``: the tape operation; ``detail``: what happened (e.g. "log of a negative value (-1)");
    ``func``: the function whose domain was left, for "the solution left the domain of ``func``".
    """

    def __init__(self, op, detail: str, func: str):
        super().__init__(detail)
        self.op, self.detail, self.func = op, detail, func

    def message(self, system) -> str:
        return f"{system.describe(self.op)}: {self.detail}"


def _sign_word(v) -> str:
    return "zero" if v == 0 else "a negative value"


def fmt(x, n: int = 6) -> str:
    """A working-precision number for messages (``n`` significant digits)."""
    try:
        return mpmath.nstr(to_mpf(x), n) if not isinstance(x, int) else str(x)
    except Exception:  # non-finite values
        return str(x)


#: Added to the message of an integer-valued real power (e.g. z**p with p = 2) of a non-positive base.
_INT_POW_HINT = ("; a power whose exponent is a parameter is evaluated as exp(p log(base)) and needs a positive "
                 "base, write the integer exponent into the expression instead")


def _sym_sum(fsum, o, k: int, start: int):
    """sum_{j=start..k-start} o[j] o[k-j] using the symmetry of the terms."""
    h = (k + 1) // 2
    s = 2 * fsum(map(mul, o[start:h], o[k - start:k - h:-1])) if h > start else 0
    if k % 2 == 0 and k // 2 >= start:
        s = s + o[k // 2] * o[k // 2]
    return s


# -- arithmetic ---------------------------------------------------------------------------------------------------
@recurrence("lin")
def _lin(op, cx):
    """The sum of the first ``op.extra`` inputs minus the others; specialised for the common shapes."""
    fsum, S, is_const, ins = cx.B.fsum, cx.S, cx.is_const, op.ins
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


@recurrence("mul")
def _mul(op, cx):
    fsum, S, is_const = cx.B.fsum, cx.S, cx.is_const
    ia, ib = op.ins
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


@recurrence("sq")
def _sq(op, cx):
    fsum, S = cx.B.fsum, cx.S
    a, o = S[op.ins[0]], S[op.outs[0]]

    def f0():
        o[0] = a[0] * a[0]

    def fk(k):
        o[k] = _sym_sum(fsum, a, k, 0)
    return f0, (None if cx.is_const[op.ins[0]] else fk)


@recurrence("div")
def _div(op, cx):
    fsum, S, is_const = cx.B.fsum, cx.S, cx.is_const
    ia, ib = op.ins
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


# -- powers, exp, log ---------------------------------------------------------------------------------------------
@recurrence("sqrt")
def _sqrt(op, cx):
    fsum, S, B = cx.B.fsum, cx.S, cx.B
    ia = op.ins[0]
    a, o = S[ia], S[op.outs[0]]
    const = cx.is_const[ia]
    internal = op.extra is not None and op.extra[0] == "internal"

    def f0():
        if not (a[0] > 0 or (const and a[0] == 0)):
            if internal:  # the sqrt(1 - x**2) or sqrt(x**2 - 1) inside asin/acos/asinh/acosh
                _, name, ix = op.extra
                raise _Domain(op, f"{name} of {fmt(S[ix][0])}, outside its real domain "
                                  f"{FUNCTIONS[name].domain.interval}", name)
            raise _Domain(op, f"sqrt of {_sign_word(a[0])} ({fmt(a[0])})", "sqrt")
        o[0] = B.sqrt(a[0])

    def fk(k):
        o[k] = (a[k] - _sym_sum(fsum, o, k, 1)) / (2 * o[0])
    return f0, (None if const else fk)


@recurrence("pow")
def _pow(op, cx):
    """``a**alpha`` with a constant real exponent ``alpha`` (a node of its own)."""
    fsum, S = cx.B.fsum, cx.S
    ia, ix = op.ins
    a, x, o = S[ia], S[ix], S[op.outs[0]]
    const = cx.is_const[ia]

    def f0():
        alpha = x[0]
        if a[0] > 0:
            o[0] = a[0] ** alpha
        elif const and a[0] == 0 and alpha > 0:
            o[0] = a[0] * 0
        elif const and a[0] < 0 and alpha == int(alpha):
            o[0] = a[0] ** alpha
        else:
            raise _Domain(op, f"real power {fmt(alpha)} of {_sign_word(a[0])} ({fmt(a[0])})"
                              + _INT_POW_HINT * (alpha == int(alpha)), "the real power")
    if const:
        return f0, None
    alpha1 = x[0] + 1
    ja = cx.jser(ia)

    def fk(k):
        ja[k] = k * a[k]
        o[k] = (alpha1 * fsum(map(mul, ja[1:k + 1], o[k - 1::-1]))
                - k * fsum(map(mul, a[1:k + 1], o[k - 1::-1]))) / (k * a[0])
    return f0, fk


@recurrence("exp")
def _exp(op, cx):
    fsum, S, B = cx.B.fsum, cx.S, cx.B
    ia = op.ins[0]
    a, o = S[ia], S[op.outs[0]]

    def f0():
        o[0] = B.exp(a[0])
    if cx.is_const[ia]:
        return f0, None
    ja = cx.jser(ia)

    def fk(k):
        ja[k] = k * a[k]
        o[k] = fsum(map(mul, ja[1:k + 1], o[k - 1::-1])) / k
    return f0, fk


@recurrence("log")
def _log(op, cx):
    fsum, S, B = cx.B.fsum, cx.S, cx.B
    ia = op.ins[0]
    a, o = S[ia], S[op.outs[0]]
    jo = [0] * len(o)

    def f0():
        if not a[0] > 0:
            if op.label == "real power":  # b**x with a varying exponent x is exp(x log b)
                raise _Domain(op, f"real power with a varying exponent of {_sign_word(a[0])} "
                                  f"({fmt(a[0])})", "the real power")
            raise _Domain(op, f"log of {_sign_word(a[0])} ({fmt(a[0])})", "log")
        o[0] = B.log(a[0])
    if cx.is_const[ia]:
        return f0, None

    def fk(k):
        o[k] = (a[k] - fsum(map(mul, jo[1:k], a[k - 1:0:-1])) / k) / a[0]
        jo[k] = k * o[k]
    return f0, fk


# -- trigonometric and hyperbolic functions -----------------------------------------------------------------------
def _sin_cos_pair(op, cx, hyperbolic: bool):
    """(s, c) = (sin a, cos a) or (sinh a, cosh a): s' = a' c, c' = -+ a' s."""
    fsum, S, B = cx.B.fsum, cx.S, cx.B
    ia = op.ins[0]
    a, s, c = S[ia], S[op.outs[0]], S[op.outs[1]]
    pair = B.sinhcosh if hyperbolic else B.sincos

    def f0():
        s[0], c[0] = pair(a[0])
    if cx.is_const[ia]:
        return f0, None
    ja = cx.jser(ia)
    if not hyperbolic:
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


@recurrence("sincos")
def _sincos(op, cx):
    return _sin_cos_pair(op, cx, hyperbolic=False)


@recurrence("sinhcosh")
def _sinhcosh(op, cx):
    return _sin_cos_pair(op, cx, hyperbolic=True)


def _tan_pair(op, cx, hyperbolic: bool):
    """(o, u) = (tan a, 1 + tan**2) or (tanh a, 1 - tanh**2): o' = a' u."""
    fsum, S, B = cx.B.fsum, cx.S, cx.B
    ia = op.ins[0]
    a, o, u = S[ia], S[op.outs[0]], S[op.outs[1]]
    sign = -1 if hyperbolic else 1
    fn = B.tanh if hyperbolic else B.tan

    def f0():
        o[0] = fn(a[0])
        u[0] = 1 + sign * o[0] * o[0]
    if cx.is_const[ia]:
        return f0, None
    ja = cx.jser(ia)

    def fk(k):
        ja[k] = k * a[k]
        o[k] = fsum(map(mul, ja[1:k + 1], u[k - 1::-1])) / k
        u[k] = sign * _sym_sum(fsum, o, k, 0)
    return f0, fk


@recurrence("tan")
def _tan(op, cx):
    return _tan_pair(op, cx, hyperbolic=False)


@recurrence("tanh")
def _tanh(op, cx):
    return _tan_pair(op, cx, hyperbolic=True)


@recurrence("ainv")
def _ainv(op, cx):
    """atan, asinh, asin, acos, atanh, acosh of a: c' = sign * a' / w (w built on the tape, see tape._ainv)."""
    fsum, S = cx.B.fsum, cx.S
    ia, iw = op.ins
    a, w, o = S[ia], S[iw], S[op.outs[0]]
    name, sgn = op.extra
    fn = getattr(cx.B, name)
    jo = [0] * len(o)

    def f0():
        v = a[0]
        if name in ("asin", "acos", "atanh") and not (-1 < v < 1):
            raise _Domain(op, f"{name} of {fmt(v)}, outside (-1, 1)", name)
        if name == "acosh" and not v > 1:
            raise _Domain(op, f"acosh of {fmt(v)}, not > 1", name)
        o[0] = fn(v)
    if cx.is_const[ia]:
        return f0, None

    def fk(k):
        o[k] = (sgn * k * a[k] - fsum(map(mul, w[1:k], jo[k - 1:0:-1]))) / (k * w[0])
        jo[k] = k * o[k]
    return f0, fk
