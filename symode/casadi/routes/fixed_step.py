"""The four fixed-step routes (options ``scheme``, ``steps``; one shared mechanism, :func:`fixed_step_gradient`;
the routes themselves are declared in :mod:`symode.casadi.methods`).

All four build one CasADi MX Function of x = (θ, e, t0, t1), z0 = z0(θ) + e evaluated at e = 0, so that
∂/∂θ is the total derivative and ∂/∂e = dL/dz0.  The forward solve is the same for all four: the state
y = (z, q) with q' = r carrying the running cost, the scheme's step (:func:`symode.casadi.solvers.step_function`)
repeated with ``mapaccum`` over the segments t0 -> τ_1 -> ... -> τ_m [-> t1] (observation times τ_i fixed;
t0, t1 symbolic inputs); the ``steps`` steps are shared among segments by
:func:`symode.casadi.solvers.allocate_steps`, uniform within a segment.  The discrete loss is
L_h = ℓ(z_N) + Σ ℓ_i(z(τ_i)) + q_N.

* ``discrete``  (:class:`DiscreteAdjoint`): reverse-mode AD of L_h through the solver graph
  (discretize-then-optimize; ``casadi.jtimes(L, x, 1, True)``).  dL/dt0 and dL/dt1 are derivatives of the
  graph in its t0/t1 inputs: the exact derivatives of L_h, converging to the continuous ones at the
  scheme's order (the grid moves with t0 and t1).
* ``forward``   (:class:`ForwardSensitivity`): forward-mode AD of the same graph with identity seeds
  (``casadi.jtimes(L, x, I, False)``): the same numbers as ``discrete`` up to rounding.
* ``adjoint``   (:class:`BacksolveAdjoint`): the continuous adjoint (derive(model).backward_system) in
  (z, λ, μ) stepped backward from t1 to t0 with the same scheme and grid (step -h), back-solving z
  (Chen et al. 2018 / torchdiffeq): λ(t1) = (∂ℓ/∂z)ᵀ, at each observation time λ += (∂ℓ_i/∂z)ᵀ(z(τ_i)) and,
  as torchdiffeq does, z is reset to the forward solution there.  Then
      dL/dθ = μ(t0) + (∂z0/∂θ)ᵀ λ(t0) + ∂ℓ/∂θ + Σ ∂ℓ_i/∂θ,  dL/dz0 = λ(t0),
      dL/dt0 = -λ(t0)ᵀ f(z0, t0) - r(z0, t0),  dL/dt1 = ∂ℓ/∂z f(z(t1), t1) + r(z(t1), t1).
  On a strongly contracting system, integrating z backward amplifies its errors (docs/design.md); the route
  always compares the back-solved z(t0) with z0 and sets ``stats["warning"]`` when they disagree.
* ``adjoint-stored`` (:class:`StoredAdjoint`): the same adjoint in (λ, μ) only; z(t) at every stage time
  comes from the stored forward trajectory through the quintic Hermite interpolant of each step (z, f and
  z'' = ∂f/∂z f + ∂f/∂t at both ends; :func:`symode.casadi.model_graphs.quintic_hermite`).  Its error is
  O(h⁶) plus the O(h^p) of the stored nodes, so the route keeps the scheme's order p for every built-in
  scheme (p <= 5) -- stage values by cubic Hermite would cap it at 4 (dopri5 has stages at c = 1/5, 3/10,
  4/5, 8/9, so reusing forward stage states is not possible either).

Every result passes the checks of :mod:`.diagnostics` and the step-halving check of :mod:`.resolution` (an
unresolved blow-up is refused, an unresolved grid flagged).  The back-solve route measures its own reconstruction
error: ``stats["backsolve_z0_error"]`` is the relative discrepancy |z_back(t0) - z0| / (1 + |z0|) and
``stats["backsolve_z_error"]`` the largest discrepancy of the back-solved z from the forward solution over every
node of the backward grid, max_t |z_back(t) - z(t)| / (1 + |z(t)|) (the state the adjoint was evaluated on,
against the one it should have been); ``stats["warning"]`` appears when either exceeds
:data:`BACKSOLVE_WARN_RTOL`, and ``symode check`` adds the propagated error to the route's allowance
(:func:`symode.check.tolerances.backsolve_tolerance`).
"""
from __future__ import annotations

import math

import numpy as np

from symode.model import Model
from symode.result import GradResult

from .diagnostics import _check, _evaluate, _where
from .plan import DEFAULT_SCHEME, DEFAULT_STEPS, _Plan, _plan, _x
from .resolution import resolution_stats

#: The back-solve route warns when the back-solved z(t0) differs from the stored z0 by more than this,
#: relative to 1 + |z0|.  The discrepancy is forward plus backward truncation error on a benign model (rk4,
#: 100 steps: at most 8e-7 on the built-in models, spiral the largest; 2e-4 for spiral at 25 steps) and
#: amplified error on a contracting one (O(1) and beyond: 4e5 for dz/dt = -50 (z - 1) on [0, 1]).  The
#: measured discrepancy is always reported as ``stats["backsolve_z0_error"]``.
BACKSOLVE_WARN_RTOL = 1e-3


def fixed_step_gradient(route, model: Model, scheme=DEFAULT_SCHEME, steps: int = DEFAULT_STEPS) -> GradResult:
    """The shared mechanism of the fixed-step routes: build (or reuse) the route's plan, evaluate it at the
    model's own point, run the checks of :mod:`.diagnostics`, and add the route's own statistics
    (:meth:`~symode.casadi.methods.FixedStepRoute.result_stats`)."""
    plan = _plan(model, route, scheme, steps)
    g = plan.graphs
    out = _evaluate(plan, model, _x(g))
    _check(plan, model, out, g.theta)
    resolution = resolution_stats(plan, _where(plan, model), out, g.theta)  # refuses an unresolved blow-up
    gv = out["g"].ravel()
    nz, np_ = g.nz, g.np
    stats: dict = {"grid_points": int(out["T"].size)}
    stats.update(plan.route.result_stats(plan, out))
    warnings = [w for w in (stats.pop("warning", None), resolution.pop("warning", None)) if w]
    stats.update(resolution)
    if warnings:
        stats["warning"] = "; ".join(warnings)
    return GradResult(
        model=model.name, method=plan.route.name, loss=float(out["L"].ravel()[0]),
        grad={n: float(v) for n, v in zip(model.param_names, gv[:np_])},
        grad_z0=[float(v) for v in gv[np_:np_ + nz]], grad_t0=None if g.obs0 is not None else float(gv[np_ + nz]),
        grad_t1=None if g.gt1 is None else float(gv[np_ + nz + 1]),
        scheme=plan.tableau.name, steps=plan.steps,
        z1=[float(v) for v in out["Z"][:nz, -1]], stats=stats)


def backsolve_stats(plan: _Plan, out: dict) -> dict:
    """The back-solve route's statistics: the relative discrepancy of the back-solved z from the forward solution
    at t0 (``backsolve_z0_error``) and over the whole backward grid (``backsolve_z_error``), and a warning when
    either exceeds :data:`BACKSOLVE_WARN_RTOL`."""
    g = plan.graphs
    stats: dict = {}
    z0v = np.array(g.z0(g.theta), dtype=float).ravel()
    zb = out["zb0"].ravel()
    rel = float(np.max(np.abs(zb - z0v)) / (1 + np.max(np.abs(z0v))))
    stats["backsolve_z0_error"] = rel if math.isfinite(rel) else repr(rel)
    along = _backsolve_mismatch(out["Z"][:g.nz], out["T"].ravel(), out["B"][:g.nz], out["TB"].ravel())
    stats["backsolve_z_error"] = along if math.isfinite(along) else repr(along)
    worst = max(rel, along) if math.isfinite(rel) and math.isfinite(along) else math.inf
    if not worst <= BACKSOLVE_WARN_RTOL:  # NaN too
        stats["warning"] = (f"the back-solved state differs from the forward solution by {worst:.3g} (relative to "
                            f"1 + |z|): integrating z backward amplified its errors (the forward "
                            f"dynamics contract), so these gradients are unreliable; trust method "
                            f"'adjoint-stored' or 'discrete' instead")
    return stats


def _backsolve_mismatch(Z: np.ndarray, T: np.ndarray, B: np.ndarray, TB: np.ndarray) -> float:
    """max over the backward nodes of |z_back(t) - z(t)| / (1 + |z(t)|) (max norms; at t0 this is
    ``backsolve_z0_error``, so it is never below it): ``B`` (nz x m) at times ``TB`` against
    the forward nodes ``Z`` (nz x N+1) at times ``T`` (increasing; every backward node time is a forward node
    time, built from the same expression, so the nearest forward node is the same node)."""
    if B.size == 0:
        return 0.0
    k = np.clip(np.searchsorted(T, TB), 1, T.size - 1)
    k = np.where(np.abs(T[k - 1] - TB) <= np.abs(T[k] - TB), k - 1, k)
    with np.errstate(invalid="ignore", over="ignore"):
        Zk = Z[:, k]
        return float(np.max(np.max(np.abs(B - Zk), axis=0) / (1 + np.max(np.abs(Zk), axis=0))))
