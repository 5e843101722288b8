"""Whether a fixed-step solve resolves its own solution: a step-halving estimate of every step's local error.

A fixed-step route returns finite numbers even where the grid cannot follow the solution: dz/dt = z² from
z(0) = 1 has a pole at t = 1, and rk4 with 100 steps on [0, 1] returns z(1) ≈ 820 (the exact solution has no
value there).  Every forward grid step is therefore taken again from its own start node z_n (time t_n, step
h_n) once with h_n and twice with h_n/2; with p the scheme's order,

    e_n = ‖y(h_n) - y(h_n/2, h_n/2)‖∞ · 2^p / (2^p - 1)

estimates the local error of the step actually taken (Richardson), and r_n = e_n / s_n compares it with the
step's own scale s_n = max(‖z_n‖∞, ‖z_{n+1}‖∞) (the states only; one vectorised CasADi evaluation).

* ``stats["step_halving_error"]`` = max_n r_n, always;
* r_n > :data:`UNRESOLVED_WARN`: the result carries a warning (``stats["warning"]``) naming the time: the grid
  does not resolve the solution there and the values are not accurate (explicit Euler approaching the pole
  above lags so far behind that its growth rate rises only 1.24x per step: flagged, not refused);
* such a step where the state grows along an expanding mode (h·max Re λ(∂f/∂z) >= :data:`EXPANDING` at z_n)
  whose rate runs away (at least :data:`RUNAWAY` times larger at the step's end):
  :class:`~symode.errors.IntegrationError`: the solution blows up faster than the grid follows (a finite-time
  singularity) -- no number is returned, as the oracle and CVODES return none.

Measured on the built-in models (rk4, 100 steps): max r_n from 5e-15 (mlp) to 5e-7 (spiral); euler, 100 steps:
up to 5e-3; rk4, 10 steps: up to 1.4e-2 (spiral).  The pole above: 0.94 at t = 0.99 (rk4, any step count).
"""
from __future__ import annotations

import casadi
import numpy as np

from symode.casadi.solvers import step_function
from symode.errors import IntegrationError

from .capture import _captured_output
from .plan import _BUILD_LOCK, _Plan

#: A step whose estimated local error exceeds this fraction of the state's size is not resolved: warning.
UNRESOLVED_WARN = 1e-2
#: An unresolved step is refused (see the module docstring) where the fastest mode of ∂f/∂z expands by at least e^EXPANDING over the step (h·Re λ >= 0.5), not a stiff
#: decaying transient that an implicit scheme steps over (Re λ < 0, an equally large estimate: flagged only) ...
EXPANDING = 0.5
#: ... and that growth rate runs away: at least RUNAWAY times larger at the step's end (a blow-up: z' = z² has
#: Re λ = 2z).  Fast exponential growth (z' = 50 z, constant λ) outgrowing the grid is flagged, not refused.
RUNAWAY = 2.0


def _halving_map(plan: _Plan, m: int) -> casadi.Function:
    """(Y, T, H, P) -> (full steps, two half steps) for m start nodes at once, built once per plan and m."""
    key = ("halving", m)
    with _BUILD_LOCK:
        if key not in plan.jmaps:
            g = plan.graphs
            name = g.name(f"{plan.route.function_code}hv{plan.steps}")
            fstep = step_function(g.faug, plan.tableau, g.naug, g.np, name=name + "_s")
            y, t, h, p = (casadi.MX.sym("y", g.naug), casadi.MX.sym("t"), casadi.MX.sym("h"),
                          casadi.MX.sym("p", g.np))
            half = fstep(fstep(y, t, h / 2, p), t + h / 2, h / 2, p)
            fn = casadi.Function(name, [y, t, h, p], [fstep(y, t, h, p), half])
            plan.jmaps[key] = fn.map(m)
        return plan.jmaps[key]


def _expansion(g, z, t, theta) -> float:
    """The largest real part of the eigenvalues of ∂f/∂z at (z, t): the local growth rate of the fastest mode."""
    J = np.array(g.jac(z, t, np.asarray(theta, dtype=float)), dtype=float).reshape(g.nz, g.nz)
    if not np.all(np.isfinite(J)):
        return float("inf")
    return float(np.max(np.linalg.eigvals(J).real))


def resolution_stats(plan: _Plan, where: str, out: dict, theta) -> dict:
    """The check of the module docstring on an evaluated plan ``out``; ``where`` names route and model."""
    Z, T = out["Z"], out["T"].ravel()
    g = plan.graphs
    m = T.size - 1
    if m < 1:
        return {}
    P = np.repeat(np.asarray(theta, dtype=float).reshape(g.np, 1), m, axis=1)
    try:
        if plan.tableau.implicit:  # a Newton failure prints the failing inputs: keep them off the terminal
            with _captured_output():
                full, half = _halving_map(plan, m)(Z[:, :m], T[:m], np.diff(T), P)
        else:
            full, half = _halving_map(plan, m)(Z[:, :m], T[:m], np.diff(T), P)
    except RuntimeError:  # an implicit half step that does not converge: no estimate (the solve itself did)
        return {}
    p = plan.tableau.order
    z = np.abs(Z[:g.nz, :])
    err = np.abs(np.array(full) - np.array(half))[:g.nz].max(axis=0) * 2 ** p / (2 ** p - 1)
    start, end = z[:, :m].max(axis=0), z[:, 1:].max(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(err > 0, err / np.maximum(start, end), 0.0)
    r = np.where(np.isfinite(r), r, np.inf)
    stats: dict = {"step_halving_error": float(r.max())}
    for n in np.nonzero((r > UNRESOLVED_WARN) & (end > start))[0]:
        h = T[n + 1] - T[n]
        rate, rate_after = _expansion(g, Z[:g.nz, n], T[n], theta), _expansion(g, Z[:g.nz, n + 1], T[n + 1], theta)
        if h * rate >= EXPANDING and rate_after >= RUNAWAY * rate:
            raise IntegrationError(
                f"{where}: the step size does not resolve the solution near t = {T[n]:.6g}: a step-halving "
                f"estimate puts the error of the step from t = {T[n]:.6g} to {T[n + 1]:.6g} at {r[n]:.2g} times "
                f"the state's size while the state grows from {start[n]:.4g} to {end[n]:.4g} and its growth rate "
                f"(the largest Re λ of ∂f/∂z) from {rate:.4g} to {rate_after:.4g}: the solution blows up faster than "
                f"the grid follows (a finite-time singularity at or near there, or a grid far too coarse for a "
                f"steep but finite solution): --method cvodes or oracle tells which; use many more steps, or "
                f"shorten [t0, t1]", time=float(T[n]))
    warn = np.nonzero(r > UNRESOLVED_WARN)[0]
    if warn.size:
        n = int(np.argmax(r))
        stats["warning"] = (f"the grid does not resolve the solution near t = {T[n]:.6g}: a step-halving estimate "
                            f"puts that step's error at {r[n]:.2g} of the state's size (more than "
                            f"{UNRESOLVED_WARN:g}), so the values are not accurate (near a blow-up the grid may not "
                            f"even show it): use more steps or --method cvodes")
    return stats
