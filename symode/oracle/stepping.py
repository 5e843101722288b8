"""Step control of the oracle's Taylor integrator, apart from the tape: order, step size, zero crossings.

* Order and step (Jorba & Zou, *Experimental Math.* 14 (2005) 99-117, the rule heyoka uses).  With tolerance
  ``eps = 10**-(digits + TOLERANCE_MARGIN_DIGITS)`` the order is ``K = ceil(-ln(eps)/2 + 1)`` (:func:`order`)
  and the step is ``h = rho / e**2 * exp(-0.7/(K-1))`` with ``rho = min_j (s / ||y[j]||_inf)**(1/j)`` over the
  last two orders ``j = K-1, K`` and ``s = max(1, ||y(t)||_inf)`` (:meth:`StepControl.step`): the truncation
  error of a step is then about ``eps * s`` (absolute for states below 1, relative above).  The step is
  shortened to land exactly on the next output time.
* Zero crossings: the step also ends on the first zero crossing of the argument of an ``Abs``, ``sign`` or
  ``Heaviside`` (:func:`symode.oracle.piecewise.first_crossing`).
* A collapse (a step below ``MIN_STEP_FRACTION`` of the interval) means a singularity:
  :func:`diagnose_collapse` names the operation whose argument approaches the boundary of its domain, or
  "finite-time blow-up".
"""
from __future__ import annotations

import math

from symode.expr import FUNCTIONS

from .recurrences import fmt

__all__ = ["TOLERANCE_MARGIN_DIGITS", "MIN_STEP_FRACTION", "order", "StepControl", "diagnose_collapse"]

#: The local truncation tolerance is ``10**-(digits + TOLERANCE_MARGIN_DIGITS)`` so that the sum over
#: hundreds of steps stays below ``10**-digits``.
TOLERANCE_MARGIN_DIGITS = 5
#: A step shorter than this fraction of the integration interval means the solution is singular there.
MIN_STEP_FRACTION = 1e-14


def order(digits: int) -> int:
    """The Taylor order K for ``digits`` correct digits: ``ceil(-ln(eps)/2 + 1)``, eps the step tolerance."""
    return math.ceil((digits + TOLERANCE_MARGIN_DIGITS) * math.log(10) / 2 + 1)


class StepControl:
    """Jorba & Zou's step size for order ``K`` in the number backend ``B`` (see the module docstring)."""

    def __init__(self, B, K: int):
        self.K = K
        self.one = one = B.from_fraction(1, 1)
        self.safety = B.exp(B.from_fraction(-2, 1) - B.from_fraction(7, 10 * (K - 1)))
        self.inv_km1 = one / (K - 1)
        self.inv_k = one / K

    def step(self, X, yv, direction: int, remaining):
        """(h, landing, n1, n2, scale): the step from the states' coefficients ``X`` at the values ``yv``,
        shortened to ``remaining`` (the distance to the next output time; ``landing`` when it is);
        ``n1``, ``n2`` are the norms of the coefficients of orders K-1 and K, ``scale`` = max(1, ||y||)."""
        K, one = self.K, self.one
        scale = max(one, max(abs(v) for v in yv))
        n1 = max(abs(x[K - 1]) for x in X)
        n2 = max(abs(x[K]) for x in X)
        rho = None
        if n1 > 0:
            rho = (scale / n1) ** self.inv_km1
        if n2 > 0:
            r2 = (scale / n2) ** self.inv_k
            rho = r2 if rho is None or r2 < rho else rho
        if rho is None:
            return remaining, True, n1, n2, scale
        h = rho * self.safety * direction
        landing = abs(h) >= abs(remaining)
        if landing:
            h = remaining
        return h, landing, n1, n2, scale


def diagnose_collapse(system, S, yv, t) -> str:
    """Name the likely cause of a step-size collapse at ``t``.

    A domain boundary being approached: the argument of log/sqrt/a real power, a denominator, or the
    argument of asin/acos/atanh/acosh within 1e-6 of the point where the operation stops being defined (or
    differentiable).  Operations with a restricted domain are named before divisions (the derivative of
    log(z) divides by z: the cause is log).  Otherwise: finite-time blow-up or another singularity.
    """
    near_t = fmt(t, 12)
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
                       f"{fmt(alpha)}" if alpha != int(alpha) else
                       f"the real power with the parameter exponent {fmt(alpha)} needs a positive base")
            rank, v, target = 0, S[node][0], "0"
        elif kind == "div":
            node = op.ins[1]
            rank, v, target, what, why = 1, S[node][0], "0", "denominator", "division by zero"
        elif kind == "ainv" and FUNCTIONS[op.extra[0]].domain.contains is not None:  # not atan, asinh
            node = op.ins[0]
            name = op.extra[0]
            v = S[op.ins[1]][0]  # w = 1 - x**2, sqrt(1 - x**2) or sqrt(x**2 - 1): 0 at the domain boundary
            target = "1" if name == "acosh" or S[node][0] > 0 else "-1"
            rank, what = 0, "argument"
            why = f"the solution leaves the domain of {name}, {FUNCTIONS[name].domain.interval}"
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
            f"side; largest state {system.states[big]} = {fmt(yv[big])}")
