"""The non-smooth operations of the tape: abs, sign and Heaviside, exact piecewise within a step.

The integrator lands a step on every zero crossing of the argument ``a`` of an ``Abs``, ``sign`` or
``Heaviside`` (``Max``/``Min`` are built from ``Abs``), so within a step ``a`` keeps one side ``s`` of 0:
``|a|`` is the series ``s * a``, ``sign(a)`` and ``Heaviside(a)`` are the constants ``s`` and ``(s + 1)/2``.

* a *side cell* (:func:`new_cell`) per argument node records the side and is shared by every operation
  reading that argument; the ``side`` operation sets it at each step start;
* the recurrences ``side``, ``abs`` and ``step`` (registered in :data:`symode.oracle.recurrences.RECURRENCES`);
* :func:`first_crossing` finds where a step must end (sampling each argument's polynomial at 4 points of the
  step, then bisection), :func:`moves_into` checks that an argument leaving 0 really moves into the side it
  was given (else the right-hand side slides along the discontinuity).
"""
from __future__ import annotations

from fractions import Fraction

from .recurrences import recurrence

__all__ = ["new_cell", "first_crossing", "moves_into"]


def new_cell(abs_state: dict, ia: int, a) -> dict:
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


def _horner(c, tau):
    r = c[-1]
    for j in range(len(c) - 2, -1, -1):
        r = r * tau + c[j]
    return r


def first_crossing(abs_cells, h, zero, bits: int):
    """The first zero crossing within the step ``h`` of an abs/sign/Heaviside argument: (tau, cell, the side it
    moves into), or None.  Each argument's polynomial is sampled at h/4, h/2, 3h/4, h; a sign change is then
    bisected to ``bits`` bits, keeping the end on the far side."""
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
    return cross


def moves_into(cell, K: int) -> bool:
    """Whether the argument leaves 0 into the side ``cell["sigma"]``: its first nonzero coefficient of
    order 1 <= k < K decides, with tau**k of the sign ``dir**k`` (backward steps have tau < 0)."""
    a, d = cell["arg"], cell["dir"]
    for k in range(1, K):  # an intermediate node's coefficient K is not computed (only the states' is)
        if a[k] != 0:
            return ((a[k] > 0) - (a[k] < 0)) * (d if k % 2 else 1) == cell["sigma"]
    return False


# -- abs, sign, Heaviside: exact piecewise within a step ----------------------------------------------------------
@recurrence("side")
def _side(op, cx):
    """Tracks which side of 0 a non-constant argument is on (emitted before its abs/sign/Heaviside ops)."""
    ia = op.ins[0]
    a = cx.S[ia]
    cell = new_cell(cx.abs_state, ia, a)

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


@recurrence("abs")
def _abs(op, cx):
    """|a| = sigma * a within a step (the step ends on every zero crossing of a)."""
    ia = op.ins[0]
    a, o = cx.S[ia], cx.S[op.outs[0]]
    if cx.is_const[ia]:
        def f0():
            o[0] = abs(a[0])
        return f0, None
    cell = new_cell(cx.abs_state, ia, a)

    def f0():
        o[0] = abs(a[0])

    def fk(k):
        o[k] = cell["sigma"] * a[k]
    return f0, fk


@recurrence("step")
def _step(op, cx):
    """sign(a), Heaviside(a, H0): constant within a step; ``op.extra`` = the values for a < 0, a = 0, a > 0."""
    B = cx.B
    ia = op.ins[0]
    a, o = cx.S[ia], cx.S[op.outs[0]]
    vals = {s: (B.from_fraction(v.numerator, v.denominator) if isinstance(v, Fraction) else B.number(v))
            for s, v in zip((-1, 0, 1), op.extra)}
    if cx.is_const[ia]:
        def f0():
            o[0] = vals[(a[0] > 0) - (a[0] < 0)]
        return f0, None
    cell = new_cell(cx.abs_state, ia, a)
    cell["piecewise"], cell["op"] = True, op

    def f0():
        o[0] = vals[cell["sigma"]]
    return f0, None  # o[k] = 0 for k >= 1 (the tape's coefficients start at 0 and stay there)
