"""The CVODES route on a trajectory that crosses kinks: one solve per piece between switching times.

Where the solution crosses a kink of f (:mod:`.switching`), CVODES must not step across it: its error estimate
assumes a smooth f, and with Adams at 1e-12 dL/db came out 4e-5 off on dz/dt = a |t - 1| - b z.  Splitting the
interval at the switching times τ_k (and at the observation times and t1) restarts the solver at every one:

    forward  z_{k+1} = Φ_k(z_k),  Φ_k the solve over [b_k, b_{k+1}]   (time-scaled: :func:`.switching.scaled_dae`)
    backward λ(b_k) = (∂Φ_k/∂z)ᵀ λ(b_{k+1}^-),  μ += (∂Φ_k/∂θ)ᵀ λ(b_{k+1}^-)   (CVODES adjoint per piece)

with λ(t1) = (∂ℓ/∂z)ᵀ and, at an observation time τ_i, λ(τ_i^-) = λ(τ_i^+) + (∂ℓ_i/∂z)ᵀ (the route's jump
convention); the running cost is each piece's quadrature (seed 1).  The boundaries are held fixed in the
derivative: f is continuous across a kink, so a switching time's dependence on θ contributes
(f⁺ - f⁻) dτ/dθ = 0 to the sensitivities, and the result is the total gradient.  Then, as in
:mod:`.cvodes`, dL/dθ = μ + (∂z0/∂θ)ᵀ λ(t0) + ∂ℓ/∂θ + Σ ∂ℓ_i/∂θ, dL/dz0 = λ(t0), dL/dt0 and dL/dt1 from the
derived formulas.
"""
from __future__ import annotations

import casadi
import numpy as np

from symode.casadi.model_graphs import ModelGraphs
from symode.casadi.translate import nearest_double
from symode.errors import IntegrationError
from symode.lru import LRUCache

from .diagnostics import BLOWUP, _first_bad
from .plan import _BUILD_LOCK
from .switching import scaled_dae

_PIECES: "LRUCache[tuple]" = LRUCache(32)


def _integrators(solver, g: ModelGraphs) -> tuple:
    key = (g.fingerprint, solver.abstol, solver.reltol, solver.max_num_steps, solver.multistep)

    def build():
        with _BUILD_LOCK:
            opts = {"abstol": solver.abstol, "reltol": solver.reltol, "max_num_steps": solver.max_num_steps,
                    "quad_err_con": True, "linear_multistep_method": solver.multistep}
            dae = scaled_dae(g)
            fwd = casadi.integrator(g.name("cvpf"), "cvodes", dae, 0.0, [1.0], opts)
            adj = casadi.integrator(g.name("cvpa"), "cvodes", dae, 0.0, [1.0],
                                    dict(opts, nadj=1, interpolation_type="polynomial"))
            return fwd, adj
    return _PIECES.get_or_build(key, build)


def split_gradient(solver, model, g: ModelGraphs, switching: list) -> tuple:
    """(loss, dL/dθ, λ(t0), z(t1), stats) by pieces (module docstring).  ``solver`` is the route's
    :class:`~symode.casadi.routes.cvodes._CvodesSolver` (tolerances, error capture)."""
    fwd, adj = _integrators(solver, g)
    th = np.array(g.theta, dtype=float).ravel()
    obs_at = {nearest_double(end): obs for _, end, obs in g.segments if end is not None and obs is not None}
    bounds = sorted({g.t0, g.t1, *obs_at, *(float(c.time) for c in switching if g.t0 < c.time < g.t1)})
    z0 = np.array(g.z0(g.theta), dtype=float).ravel()
    zs, loss, dtheta, counts = [z0], 0.0, np.zeros(g.np), {"steps": 0, "steps_backward": 0}
    for a, b in zip(bounds, bounds[1:]):
        res, _, st = solver._call(model, fwd, "forward", a, x0=zs[-1], p=np.concatenate([th, [a, b]]))
        z = np.array(res["xf"], dtype=float).ravel()
        if _first_bad(z.reshape(-1, 1)) is not None:
            raise IntegrationError(f"method 'cvodes' on model {model.name!r}: the solution is non-finite or "
                                   f"beyond {BLOWUP:g} at t = {b:.6g}", time=b)
        if g.has_running:
            loss += float(np.array(res["qf"], dtype=float).ravel()[0])
        counts["steps"] += int(st.get("nsteps", 0))
        zs.append(z)
    lam = np.zeros(g.nz)
    for k in range(len(bounds) - 1, 0, -1):  # λ just before bounds[k], then back over the piece ending there
        b = bounds[k]
        terms = ([g.terminal] if k == len(bounds) - 1 else []) + ([g.obs[obs_at[b]]] if b in obs_at else [])
        for term in terms:  # the terminal term at t1; an observation's term (and its λ jump) at its time
            l_i, dz_i, dp_i = term(zs[k], th)
            loss += float(l_i)
            lam = lam + np.array(dz_i, dtype=float).ravel()
            dtheta += np.array(dp_i, dtype=float).ravel()
        kw = {"x0": zs[k - 1], "p": np.concatenate([th, [bounds[k - 1], b]]), "adj_xf": lam}
        if g.has_running:
            kw["adj_qf"] = 1.0
        res, _, st = solver._call(model, adj, "adjoint", b, **kw)
        lam = np.array(res["adj_x0"], dtype=float).ravel()
        dtheta += np.array(res["adj_p"], dtype=float).ravel()[:g.np]
        counts["steps_backward"] += int(st.get("nstepsB", 0))
    if g.obs0 is not None:  # an observation at t0, on z0: its term, and its jump added to λ(t0)
        l_0, dz_0, dp_0 = g.obs[g.obs0](z0, th)
        loss += float(l_0)
        lam = lam + np.array(dz_0, dtype=float).ravel()
        dtheta += np.array(dp_0, dtype=float).ravel()
    stats = {**counts, "switching_times": [float(c.time) for c in switching], "pieces": len(bounds) - 1}
    return loss, dtheta, lam, zs[-1], stats
