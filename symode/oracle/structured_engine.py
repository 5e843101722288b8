"""The oracle on a structured (matrix) model: the adjoint reports, a few directions cross-check it.

For a network with nθ parameters the forward-sensitivity route of the scalar oracle carries nz·nθ unknowns
(8,768 for P3); here (:mod:`symode.oracle.structured_routes`):

* the adjoint route runs at ``digits + ROUTE_GUARD_DIGITS`` and again at ``+ CHECK_EXTRA_DIGITS`` digits; the
  second run's values are the ones reported (every one of them: loss, dL/dθ, dL/dz0, dL/dt0, dL/dt1, z(t1));
* the forward route runs once, at ``digits + ROUTE_GUARD_DIGITS``, in :data:`DIRECTIONS` random directions
  (v_k, w_k) in (θ, z0) and the t0 direction.

Error bound.  With rel(a, b) = |a - b| / max(|a|, |b|, VALUE_FLOOR) as in :mod:`symode.oracle.engine`,

    e_prec  = max over every reported value of rel(adjoint, adjoint at higher precision)
    e_route = max of rel(forward, adjoint) over the loss, z(t1), dL/dt0 and dL/dt1, and over the k directional
              derivatives |D_k - (dL/dθ·v_k + dL/dz0·w_k)| / max(|D_k|, Σ_j |∂L/∂θ_j v_kj| + Σ_i |∂L/∂z0_i w_ki|,
              VALUE_FLOOR) -- relative to the terms of each dot product, never to a cancelled sum

and ``error_bound`` is the power of ten at or above 10·max(e_prec, e_route), at least 10^-(digits-1), as for
scalar models.  What it rests on is stated on the result (``stats["route_check"]``): the gradient components
are compared between the routes only through the random dot products (an error in one component changes every
D_k unless it is orthogonal to all the random directions, which a fixed error is with probability 0), and each
component individually through the two precisions of the adjoint.  Disagreement beyond 10^-(digits-2) raises
IntegrationError, as for scalar models.
"""
from __future__ import annotations

import time as _time

import mpmath

from ..errors import IntegrationError
from ..model import Model
from ..result import GradResult
from .structured_routes import random_directions, structured_adjoint_route, structured_forward_route

__all__ = ["structured_oracle", "DIRECTIONS"]

#: Random directions of the forward route (each one more tangent vector of nz unknowns).
DIRECTIONS = 3


def _routes(model: Model, work_digits: int, progress, e, label: str):
    return structured_adjoint_route(model, work_digits, progress, label, pieces=e.ADJOINT_PIECES,
                                    max_splits=e.MAX_ADJOINT_SPLITS,
                                    z_tol=mpmath.mpf(10) ** -(work_digits - e.ROUTE_GUARD_DIGITS // 2))


def _route_difference(model: Model, fwd: dict, adj: dict, directions, floor) -> tuple:
    """e_route and the name of the worst value (see the module docstring)."""
    pairs = [("loss", fwd["loss"], adj["loss"])]
    pairs += [(f"z1[{i}]", a, b) for i, (a, b) in enumerate(zip(fwd["z1"], adj["z1"]))]
    for key, name in (("grad_t0", "dL/dt0"), ("grad_t1", "dL/dt1")):
        if adj[key] is not None:
            pairs.append((name, fwd[key], adj[key]))
    worst, where = mpmath.mpf(0), ""
    for name, a, b in pairs:
        r = abs(a - b) / max(abs(a), abs(b), floor)
        if r > worst or not where:
            worst, where = r, name
    for k, ((v, w), d) in enumerate(zip(directions, fwd["directional"])):
        terms = [g * x for g, x in zip(adj["grad"], v)] + [g * x for g, x in zip(adj["grad_z0"], w)]
        dot = mpmath.fsum(terms)
        scale = mpmath.fsum(abs(x) for x in terms)
        r = abs(d - dot) / max(abs(d), scale, floor)
        if r > worst:
            worst, where = r, f"dL/dθ·v + dL/dz0·w in random direction {k}"
    return worst, where


def structured_oracle(model: Model, digits: int, progress, started: float) -> GradResult:
    """Loss and gradients of a structured model by the oracle (see the module docstring)."""
    from . import engine as e
    lo = digits + e.ROUTE_GUARD_DIGITS
    hi = lo + e.CHECK_EXTRA_DIGITS
    dirs = random_directions(model, DIRECTIONS)
    with mpmath.workdps(hi + 10):
        adj = _routes(model, lo, progress, e, "adjoint")
        fwd = structured_forward_route(model, lo, progress, dirs, "forward (directions)")
        ref = _routes(model, hi, progress, e, "adjoint (check)")
        names = e._pretty_names(model)
        e_prec, w_prec = e._max_rel(adj, ref, names)
        e_route, w_route = _route_difference(model, fwd, adj, dirs, e.VALUE_FLOOR)
        limit = mpmath.mpf(10) ** -(digits - e.DISAGREE_SLACK_DIGITS)
        if e_route > limit:
            raise IntegrationError(
                f"oracle on model {model.name!r}: the forward (directional) and adjoint routes disagree on "
                f"{w_route} by {mpmath.nstr(e_route, 3)} (relative) at {lo} working digits, more than the {digits} "
                f"digits requested allow; the solution may be too sensitive (chaotic or stiff) for this interval")
        if e_prec > limit:
            raise IntegrationError(
                f"oracle on model {model.name!r}: raising the working precision from {lo} to {hi} digits changed "
                f"{w_prec} by {mpmath.nstr(e_prec, 3)} (relative), more than the {digits} digits requested allow")
        est = max(e_route, e_prec) * e.BOUND_SAFETY
        n = -(digits - 1)
        if est > 0:
            n = max(n, e._power_of_ten_at_least(est))
        check = (f"forward vs adjoint at {lo} digits: loss, z(t1), dL/dt0, dL/dt1 each, and dL/dtheta, dL/dz0 "
                 f"through {DIRECTIONS} random directions (dot products); every value: adjoint at {lo} vs {hi} "
                 f"digits")
        result = GradResult(
            model=model.name, method="oracle", loss=+ref["loss"],
            grad={p: +v for p, v in zip(model.param_names, ref["grad"])},
            grad_z0=[+v for v in ref["grad_z0"]],
            grad_t0=None if ref["grad_t0"] is None else +ref["grad_t0"],
            grad_t1=None if ref["grad_t1"] is None else +ref["grad_t1"],
            digits=digits, error_bound=f"1e{n}", z1=[+v for v in ref["z1"]],
            stats={"working_digits": lo, "check_digits": hi, "route_check": check,
                   "route_difference": mpmath.nstr(e_route, 2) if e_route else "0",
                   "precision_difference": mpmath.nstr(e_prec, 2) if e_prec else "0",
                   "adjoint_splits": adj["splits"] + ref["splits"],
                   "seconds": round(_time.monotonic() - started, 3)})
    return result.check_finite()
