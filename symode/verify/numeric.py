"""Comparing the two sides of a claim at one point, rigorously, relative to the scale of the terms.

:func:`compare_at` evaluates both sides in ball arithmetic (:mod:`symode.verify.balls`) at increasing
precision until the point is decided:

* ``differ``: the ball of LHS - RHS excludes 0, a proof that the sides differ there, however small the
  difference (the claim is FALSE with this point);
* ``agree``: the ball of LHS - RHS contains 0 and its radius is below 10**-agree_digits times the scale of
  the terms (the largest top-level summand of either side, or the sides themselves: see
  :func:`symode.verify.balls.evaluate`), never an absolute floor; below the last precision only when the
  radius is below that fraction of the sides' own magnitude too (agreement resting on cancellation among
  larger terms is confirmed at a higher precision, where a difference tiny only relative to them shows);
* ``undefined``: a side has no finite real value there (division by zero, log of 0, a genuinely complex
  value, an integral that diverges): the point is outside the claim's domain and is skipped;
* ``unresolved``: still neither at the last precision (cancellation beyond it, an integral whose error
  bound does not shrink): never evidence either way.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import sympy
from flint import arb

from .balls import Unevaluable, evaluate
from .tolerances import VERIFY_SETTINGS

__all__ = ["Outcome", "compare_at", "magnitude_bits", "shown_value", "nonzero_at"]


@dataclass
class Outcome:
    status: str                    # "differ", "agree", "undefined", "unresolved"
    point: dict
    values: tuple = ()             # (LHS, RHS) as text, for a report
    bits: int = 0                  # precision that decided it
    note: str = ""


def _finite(z) -> bool:
    return z.real.is_finite() and z.imag.is_finite()


def _exact_cheap(expr, point) -> bool:
    cap = VERIFY_SETTINGS["max_exact_exponent"]
    for node in sympy.preorder_traversal(expr):
        if isinstance(node, sympy.Pow) and not (node.exp.is_Number and abs(node.exp) <= cap):
            return False
        if isinstance(node, (sympy.Integral, sympy.Piecewise, sympy.Sum, sympy.Indexed)):
            return False
    return True


def shown_value(expr, point, ball) -> str:
    """The value of ``expr`` at ``point`` for a report: the exact rational when the expression reduces to
    one cheaply (polynomials, rational functions), else the ball's midpoint to ``shown_digits`` digits."""
    if _exact_cheap(expr, point):
        try:
            v = sympy.sympify(expr).xreplace(point)
            if v.is_Rational:
                return str(v)
        except (ZeroDivisionError, ValueError, TypeError, ArithmeticError):
            pass
    return ball.real.mid().str(VERIFY_SETTINGS["shown_digits"], radius=False)


def _tolerance(scale: arb) -> arb:
    return scale * arb(10) ** (-VERIFY_SETTINGS["agree_digits"])


def _precisions(deep: bool, *exprs) -> tuple:
    """The working precisions to try: ``precisions``, then ``deep_precisions`` when ``deep`` and the
    expressions are cheap to evaluate that far (no integral or sum: quadrature at 16384 bits is not)."""
    out = VERIFY_SETTINGS["precisions"]
    if deep and not any(sympy.sympify(e).has(sympy.Integral, sympy.Sum) for e in exprs):
        out = out + VERIFY_SETTINGS["deep_precisions"]
    return out


def compare_at(reference, stated, point: dict, separate: bool = False, deep: bool = False) -> Outcome:
    """Decide ``reference`` vs ``stated`` at ``point`` (Symbol -> exact Rational); see the module docstring.

    ``separate=True`` does not stop at "agree": it goes on to the last precision trying to show a
    difference (used to confirm an exact nonzero difference that may be below the agreement tolerance, and
    for claims without symbols); "agree" then only says that no difference was visible.  ``deep=True`` adds
    the ``deep_precisions`` (see :func:`_precisions`).  Raises :class:`~symode.verify.balls.Unevaluable` for
    expressions without numeric meaning."""
    nonfinite = 0
    last = None
    precisions = _precisions(deep, reference, stated)
    for bits in precisions:
        notes: list = []
        r, sr = evaluate(reference, point, bits, notes)
        s, ss = evaluate(stated, point, bits, notes)
        if not (_finite(r) and _finite(s)):
            # undefined only when still not finite at the last base precision: a wide ball from cancellation
            # inside an argument (1/(1 + sin(10**130*(...))**2)) is not finite at 128 and 384 bits either
            nonfinite += 1
            if nonfinite >= 2 and bits >= VERIFY_SETTINGS["precisions"][-1]:
                return Outcome("undefined", point, bits=bits,
                               note=notes[0] if notes else "a side has no finite value here")
            continue
        if not (r.imag.contains(0) and s.imag.contains(0)):
            return Outcome("undefined", point, bits=bits, note="a side is not real here")
        tol = _tolerance(max(sr, ss))
        if r.imag.rad() > tol or s.imag.rad() > tol:
            continue                # cannot tell yet whether the values are real
        d = r.real - s.real
        last = (r, s)
        if not d.contains(0):
            o = Outcome("differ", point, (shown_value(reference, point, r), shown_value(stated, point, s)), bits)
            o.note = d.mid().str(6, radius=False)       # LHS - RHS there, for the report
            return o
        if d.rad() <= tol and not separate and bits >= VERIFY_SETTINGS["agree_bits"]:
            if d.rad() > _tolerance(max(abs(r).upper(), abs(s).upper())) and bits < VERIFY_SETTINGS["precisions"][-1]:
                # the agreement rests on cancellation among terms far larger than the sides: a difference
                # that is tiny only relative to them (10**118*(atan(P) + atan(1/P) - 2*atan(1)) = 5) shows at a
                # higher precision, so agreement relative to the terms counts only at the last one
                continue
            if _cancelled_difference_differs(reference, stated, point, bits):
                o = Outcome("differ", point, (shown_value(reference, point, r), shown_value(stated, point, s)),
                            bits)
                o.note = "nonzero once the terms common to both sides cancel"
                return o
            return Outcome("agree", point, bits=bits)
    if separate and last is not None:
        return Outcome("agree", point, bits=bits)
    if last is not None and last[0].real.contains(0) and last[1].real.contains(0):
        # both sides are 0 within their rounding (an integral over [-1, -1] against a product with a factor
        # t1 - t0 = 0): no relative comparison is possible here, and the point is evidence neither way
        return Outcome("undefined", point, bits=precisions[-1], note="both sides are 0 within rounding here")
    return Outcome("unresolved", point, bits=precisions[-1],
                   note=f"the sides could not be told apart or brought into agreement at {precisions[-1]} bits")


@functools.lru_cache(maxsize=64)
def _cancelled_difference(reference, stated):
    """LHS - RHS as SymPy cancels it, or None when no term cancelled (built once per claim, not per point)."""
    diff = reference - stated
    if len(sympy.Add.make_args(diff)) >= len(sympy.Add.make_args(reference)) + len(sympy.Add.make_args(stated)):
        return None
    return diff


def _cancelled_difference_differs(reference, stated, point: dict, bits: int) -> bool:
    """Whether LHS - RHS, with the terms common to both sides cancelled by SymPy, is provably nonzero here.

    Evaluated side by side, ``x`` and ``x + exp(-10**6*(sin(x) - 3/10)**2)*x**2`` agree to any precision (the
    second term is ~1e-125000 at x = 1 and is lost in the rounding of the sum), so the claim that they are
    equal looked TRUE at every point.  The difference itself, ``-exp(...)*x**2``, is a nonzero number there:
    a proof that the sides differ, however small.  Only tried when SymPy's own cancellation removed terms (the
    difference has fewer summands than the two sides), so a claim with nothing in common costs nothing more.
    """
    diff = _cancelled_difference(reference, stated)
    if diff is None:
        return False
    try:
        z, _ = evaluate(diff, point, bits)
    except Unevaluable:
        return False
    return _finite(z) and z.imag.contains(0) and not z.real.contains(0)


def magnitude_bits(*exprs) -> int | None:
    """The largest |log2 |v|| over the values v of the subexpressions of ``exprs`` (a constant claim), at the
    first precision: how large or small a term gets (exp(2000) in tanh(1000) = 1: 2885).  Subexpressions
    without a value (an integrand's variable), exactly 0 or not finite are skipped; one whose ball contains 0
    is measured at the deepest precision; None when one has no numeric meaning or is still not separated from
    0 there (its size, and so the precision a TRUE needs, is unknown)."""
    out = 0
    bits = VERIFY_SETTINGS["precisions"][0]
    seen = set()
    for e in exprs:
        root = sympy.sympify(e)       # (the expression itself may be the 0 in question; its terms may not)
        for node in sympy.preorder_traversal(root):
            if node in seen or node.is_Rational or node.is_Symbol:
                continue
            seen.add(node)
            try:
                z, _ = evaluate(node, {}, bits)
            except Unevaluable:
                if node.free_symbols:
                    continue
                return None
            except (ValueError, ZeroDivisionError, ArithmeticError):
                continue
            if node is not root and _finite(z) and z.real.contains(0) and z.imag.contains(0) \
                    and not (z.real.is_zero() and z.imag.is_zero()):
                # a term that cancels below the first precision (1 - cos(1e-299)): its size is what a
                # difference may hide behind; measured at the deepest precision, unknown (None) if still 0
                try:
                    z, _ = evaluate(node, {}, VERIFY_SETTINGS["deep_precisions"][-1])
                except (Unevaluable, ValueError, ZeroDivisionError, ArithmeticError):
                    return None
                if z.real.contains(0) and z.imag.contains(0):
                    return None
            m = abs(z)
            if not (_finite(z) and m > 0):
                continue
            out = max(out, abs(int((m.log() / arb(2).log()).mid().floor().unique_fmpz())))
    return out


def nonzero_at(expr, point: dict, deep: bool = False) -> bool:
    """Whether ``expr`` is provably nonzero (and finite, real) at ``point`` (``deep``: see :func:`_precisions`)."""
    for bits in _precisions(deep, expr):
        try:
            z, _ = evaluate(expr, point, bits)
        except Unevaluable:
            return False
        if not _finite(z):
            return False
        if not z.real.contains(0) and z.imag.contains(0):
            return True
    return False
