"""Values at which a model claim is also checked (symode.verify.modelclaims): samples of its value-less symbols,
and the helpers that place points across its kinks and switches."""
from __future__ import annotations

from fractions import Fraction

import mpmath
import sympy

from .balls import Unevaluable, evaluate
from .lossmodel import LossModel
from .tolerances import VERIFY_SETTINGS

__all__ = ["free_samples", "saturated", "short", "sign_at"]


def free_samples(R, S, free, fixed, balls, positive, rng) -> list:
    """More values of a model claim's value-less symbols, as the general check chooses them: random (narrow
    and wide), extreme, and targeted at the zeros of the claim's critical arguments (``abs(c + 1)`` at c = -1
    and beyond), with the model's values at their midpoints for the targeting only."""
    from .points import extreme_points, random_point, targeted_points
    mids = {h: sympy.Rational(mpmath.nstr(v[0], 25, min_fixed=-1, max_fixed=-1)) for h, v in balls.items()}
    pos = frozenset(s for s in free if s in positive)
    exprs = (R.xreplace({**fixed, **mids}), S.xreplace({**fixed, **mids}))
    out = targeted_points(exprs, free, rng, pos) + extreme_points(free, rng, pos)
    out += [random_point(free, rng, pos) for _ in range(VERIFY_SETTINGS["oracle_free_points"])]
    return out



def short(v):
    """``v`` as a short fraction (1/5, not 0.2000...01) where one lies within 1e-6 of it."""
    v = sympy.Rational(v)        # (a Float's exact binary value)
    short = Fraction(int(v.p), int(v.q)).limit_denominator(1000)
    r = sympy.Rational(short.numerator, short.denominator)
    return r if abs(r - v) <= sympy.Rational(1, 10 ** 6) * max(1, abs(v)) else v



def saturated(u, model: LossModel, values: dict) -> bool:
    """Whether the argument ``u`` (of a function in the claim) is beyond ``switch_argument`` in magnitude at the
    document's values: tanh, exp, atan there are on one flat side of a switch (solution values: not known
    here, judged by the caller)."""
    if model.has_quantities(u) or model.solution_values(u) or model.along_integrals(u):
        return True
    if not u.free_symbols or not u.free_symbols <= set(values):
        return False
    try:
        z, _ = evaluate(u, values, VERIFY_SETTINGS["precisions"][0])
    except (Unevaluable, ValueError, ZeroDivisionError, ArithmeticError):
        return False
    return bool(z.real.is_finite() and abs(z.real) > VERIFY_SETTINGS["switch_argument"])



def sign_at(u, values: dict) -> int:
    """The sign of ``u`` at exact ``values`` (0 where it is 0 or not decided)."""
    try:
        z, _ = evaluate(u, values, VERIFY_SETTINGS["precisions"][0])
    except (Unevaluable, ValueError, ZeroDivisionError, ArithmeticError):
        return 0
    if not (z.imag.is_zero() and z.real.is_finite()) or z.real.contains(0):
        return 0
    return 1 if z.real > 0 else -1
