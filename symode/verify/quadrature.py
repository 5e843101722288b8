"""Definite integrals of claims by rigorous quadrature, split at every kink of the integrand.

``acb.integral`` (python-flint) computes an integral with a proven error bound when the integrand is analytic
on each piece it integrates.  Functions with kinks or jumps (``abs``, ``sign``, ``Heaviside``, ``Max``,
``Min``, ``Piecewise``) are analytic only between their switching points, so :func:`integrate`

1. finds every point of the interval where a switching argument changes sign (``sin(s)`` in ``abs(sin(s))``
   as well as ``s - a``): bisection of the interval with ball evaluation of the argument, which proves a piece
   free of zeros when its ball excludes 0, then refinement of each sign change to the working precision (the
   breakpoint is a tiny ball);
2. on each piece between breakpoints, fixes every switching function to the branch it takes at the piece's
   midpoint (``abs(u)`` becomes ``±u``), which is the integrand there, and analytic;
3. adds the pieces' integrals.

Where the zeros cannot be isolated (a zero of even order that ball arithmetic cannot tell from two close
zeros, more than ``MAX_BREAKS`` of them), the integral is left to ``acb.integral``'s own bisection with the
analytic flag (correct, slower, and reported as not converged when it runs out of work).  An integrand with
``DiracDelta`` is not evaluated (its mass at a point is not a value of the integrand).
"""
from __future__ import annotations

import sympy
from flint import acb, arb, ctx

#: Most breakpoints of one integral (|sin(100 s)| on [0, 10] has 318); beyond it the plain integrator is used.
MAX_BREAKS = 400
#: Bisection depth of the search for sign changes before a piece is examined point by point.
_GRID_DEPTH = 14
#: Work limit of ``acb.integral`` on one analytic piece (a smooth piece needs tens to hundreds).
_EVAL_LIMIT = 4000


class _NoSplit(Exception):
    """The switching points could not be isolated."""


def switching_arguments(body, var) -> list:
    """Expressions in ``var`` whose sign changes switch a branch of ``body``."""
    out = []
    for node in sympy.preorder_traversal(body):
        if isinstance(node, (sympy.Abs, sympy.sign, sympy.Heaviside)):
            out.append(node.args[0])
        elif isinstance(node, (sympy.Max, sympy.Min)):
            out += [u - w for i, u in enumerate(node.args) for w in node.args[i + 1:]]
        elif isinstance(node, sympy.Piecewise):
            for _, cond in node.args:
                out += [r.lhs - r.rhs for r in cond.atoms(sympy.core.relational.Relational)]
    seen, unique = set(), []
    for u in out:
        if var in u.free_symbols and u not in seen:
            seen.add(u)
            unique.append(u)
    return unique


def _sign(z) -> int | None:
    if not (z.real.is_finite() and z.imag.is_finite()) or not z.imag.contains(0) or z.real.contains(0):
        return 0 if z.real.is_zero() else None
    return 1 if z.real > 0 else -1


def _zeros(value_at, lo: arb, hi: arb, out: list, depth: int = 0) -> None:
    """Append to ``out`` a small ball around each sign change of the real function ``value_at`` in [lo, hi]
    (exact endpoints); raise _NoSplit where a zero cannot be isolated."""
    if len(out) > MAX_BREAKS:
        raise _NoSplit
    box = value_at(arb((lo + hi) / 2, (hi - lo) / 2))
    if box.real.is_finite() and box.imag.contains(0) and not box.real.contains(0):
        return
    # a few ulps at the working precision: the breakpoint's ball adds that much times |integrand| to the bound
    width_goal = arb(2) ** (8 - ctx.prec) * max(abs(lo), abs(hi), arb(1))
    if depth < _GRID_DEPTH:
        mid = arb(((lo + hi) / 2).mid())
        _zeros(value_at, lo, mid, out, depth + 1)
        _zeros(value_at, mid, hi, out, depth + 1)
        return
    sl, sh = _sign(value_at(lo)), _sign(value_at(hi))
    if sl is None or sh is None:
        raise _NoSplit
    if sl == 0 or sh == 0:
        out.append(lo if sl == 0 else hi)
        return
    if sl != sh:
        while hi - lo > width_goal:
            mid = arb(((lo + hi) / 2).mid())
            if not lo < mid < hi:
                break                  # no representable point in between
            sm = _sign(value_at(mid))
            if sm is None:
                raise _NoSplit
            if sm == 0:
                out.append(mid)
                return
            lo, hi = (mid, hi) if sm == sl else (lo, mid)
        out.append(arb(((lo + hi) / 2).mid(), (hi - lo) / 2))
        return
    # same sign at both ends but the ball may contain zeros (a double zero, or two close ones)
    if hi - lo <= width_goal or depth > ctx.prec + 40:
        raise _NoSplit
    mid = arb(((lo + hi) / 2).mid())
    _zeros(value_at, lo, mid, out, depth + 1)
    _zeros(value_at, mid, hi, out, depth + 1)


def integrate(make, body, var, a: acb, b: acb) -> acb:
    """∫_a^b body d(var), with ``make(point_overrides, analytic, branches, record)`` building the evaluator
    used for the body (see :class:`symode.verify.balls._Evaluator`)."""

    def plain(t, analytic):
        return make({var: t}, bool(analytic), None, None).ev(body)

    args = switching_arguments(body, var)
    if not args:
        return acb.integral(plain, a, b, eval_limit=_EVAL_LIMIT)
    lo, hi = (a.real, b.real) if a.real < b.real else (b.real, a.real)
    flip = not (a.real < b.real)
    breaks: list = []
    try:
        for u in args:
            def value_at(x, u=u):
                return make({var: acb(x)}, False, None, None).ev(u)
            _zeros(value_at, arb(lo.mid()), arb(hi.mid()), breaks)
    except _NoSplit:
        return acb.integral(plain, a, b, eval_limit=_EVAL_LIMIT * 10)
    breaks.sort(key=lambda x: x.mid())
    nodes = [lo]
    for x in breaks:
        if lo < x < hi:
            if x.overlaps(nodes[-1]):
                nodes[-1] = nodes[-1].union(x)   # the same zero found from two sides, or two close ones
            else:
                nodes.append(x)
    if nodes[-1].overlaps(hi):
        nodes.pop()
    nodes.append(hi)
    total = acb(0)
    for p, q in zip(nodes, nodes[1:]):
        record: dict = {}
        make({var: acb(arb(((p + q) / 2).mid()))}, False, None, record).ev(body)
        if any(v is None for v in record.values()):
            return acb.integral(plain, a, b, eval_limit=_EVAL_LIMIT * 10)

        def piece(t, analytic, record=record):
            return make({var: t}, bool(analytic), record, None).ev(body)

        total += acb.integral(piece, p, q, eval_limit=_EVAL_LIMIT)
    return -total if flip else total
