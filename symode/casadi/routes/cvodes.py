"""The ``cvodes`` route (declared in :mod:`symode.casadi.methods`): :func:`cvodes_gradient`.

CVODES (Adams-Moulton with Newton iteration and dense linear algebra by default; abstol = reltol = 1e-12;
the route's options abstol, reltol, max_num_steps, multistep) in process through
``casadi.integrator``, outputs at the observation times and t1, the running cost as a quadrature.  One
forward call gives z(τ_i) and the loss; a second call with ``nadj=1`` and the seeds (∂ℓ_i/∂z)ᵀ (plus
(∂ℓ/∂z)ᵀ at t1, 1 for the quadrature) gives CVODES's adjoint sensitivities λ(t0) = adj_x0 and
μ(t0) = adj_p; the assembly is the formula above.  Solver statistics go to ``stats``; CVODES failure flags
become plain IntegrationError messages, with the solver's C-level output captured (file descriptors 1 and
2 redirected around the call) and quoted in the error rather than printed; a failure at the first
right-hand-side call is placed at the solve's start time (t0 forward, t1 backward), and a non-finite loss or
∂ℓ/∂z at the solution is reported before the adjoint solve.

Why Adams by default (measured, CasADi 3.8.2): at rtol = atol = 1e-12 on the logistic model, BDF's global
error in z(t1) was 7e-11 in 283 steps, Adams' 8e-12 in 86 steps; and on the stiff dz/dt = -1000 (z - cos t)
the BDF *backward* (adjoint) problem stopped with CV_TOO_MUCH_WORK near t1 while Adams (with Newton
iteration, which CasADi uses for both) finished in about 500 forward + 400 backward steps.  ``multistep="bdf"``
(``--multistep bdf``) selects BDF.  The adjoint call interpolates the checkpointed forward solution with CVODES's variable-degree
"polynomial" interpolation: the default cubic Hermite limited the gradients to ~3e-7 relative on the
oscillator (Adams takes long steps); with it every closed-form built-in model agrees to < 1e-9.

The tolerances bound local errors only.  Measured against the oracle at 1e-12: mlp-2-3 (observations at 0.05, ...,
0.95; the forward solve takes ~21 long Adams steps of order up to 12) is off by 1.1e-7 -- more than at 1e-10
(2.6e-9) -- and 2.4e-12 at 1e-13; capping Adams at order 5 fixed it (3.1e-10) but made lotka-volterra worse
(5e-9 -> 4e-8), and cubic Hermite interpolation fixed it but not the oscillator.  No setting is right for every
model, so the route does not pretend: ``symode check`` reruns it at 100x tighter tolerances and allows the
measured difference (:func:`symode.check.tolerances.solver_tolerance`).
"""
from __future__ import annotations

import math

import casadi
import numpy as np

from symode.casadi.model_graphs import ModelGraphs, model_graphs
from symode.casadi.translate import nearest_double
from symode.errors import IntegrationError, SpecError
from symode.lru import LRUCache
from symode.model import Model
from symode.result import GradResult

from .capture import _captured_output
from .diagnostics import BLOWUP, _cvodes_error, _first_bad
from .plan import _BUILD_LOCK, _MAX_PLANS

#: built CVODES integrator pairs (forward, adjoint), keyed by (model fingerprint, tolerances, method)
_CVODES: "LRUCache[tuple]" = LRUCache(_MAX_PLANS, build_lock=_BUILD_LOCK)


#: Stated on every result: the tolerances bound each solve's local error, not the gradient's.  Measured: on
#: mlp-2-3 (10 observation times) the adjoint's interpolation of the long high-order Adams steps leaves the
#: gradient 1.1e-7 (relative) from the oracle at reltol = 1e-12 -- worse than at 1e-10 (2.6e-9).
ACCURACY_NOTE = ("CVODES' tolerances bound each solve's local error, not the gradient's: the adjoint interpolates "
                 "the forward solution, which can leave the gradient far above reltol from the exact value (1e-7 "
                 "relative at reltol 1e-12 measured on mlp-2-3); `symode check` measures this route's error")


def cvodes_gradient(model: Model, abstol: float = 1e-12, reltol: float = 1e-12, max_num_steps: int = 20000,
                    multistep: str = "adams") -> GradResult:
    """Loss and gradients of ``model`` by CVODES with adjoint sensitivities (see the module docstring)."""
    return _CvodesSolver(abstol, reltol, max_num_steps, multistep).gradient(model)


class _CvodesSolver:
    """CVODES at given tolerances: the integrator pair (built once per model and settings) and the assembly."""

    name = "cvodes"

    def __init__(self, abstol: float = 1e-12, reltol: float = 1e-12, max_num_steps: int = 20000,
                 multistep: str = "adams"):
        for label, v in (("abstol", abstol), ("reltol", reltol)):
            if isinstance(v, bool) or not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise SpecError(f"cvodes: {label} must be a positive finite number, got {v!r}")
        if isinstance(max_num_steps, bool) or not isinstance(max_num_steps, int) or max_num_steps < 1:
            raise SpecError(f"cvodes: max_num_steps must be a positive integer, got {max_num_steps!r}")
        if multistep not in ("adams", "bdf"):
            raise SpecError(f"cvodes: multistep must be 'adams' or 'bdf', got {multistep!r}")
        self.abstol, self.reltol, self.max_num_steps = float(abstol), float(reltol), int(max_num_steps)
        self.multistep = multistep

    def _integrators(self, g: ModelGraphs):
        key = (g.fingerprint, self.abstol, self.reltol, self.max_num_steps, self.multistep)
        return _CVODES.get_or_build(key, lambda: self._build(g))

    def _build(self, g: ModelGraphs):
        """The forward and adjoint CVODES integrators for ``g`` (run under the build lock by the cache)."""
        z = casadi.SX.sym("z", g.nz)
        t = casadi.SX.sym("t")
        p = casadi.SX.sym("p", g.np)
        dae = {"x": z, "p": p, "t": t, "ode": g.f(z, t, p)}
        if g.has_running:
            dae["quad"] = g.faug(casadi.vertcat(z, 0), t, p)[g.nz]
        tout = [nearest_double(end) if end is not None else g.t1 for _, end, _ in g.segments]
        # quad_err_con always on: the adjoint's parameter quadrature (adj_p) is a quadrature even without a
        # running cost, and without error control CasADi 3.8.2's polynomial-interpolation adjoint returned
        # dL/dk = 1.01 instead of 0.352 on dz/dt = k z over [0.5, 1] (tests/test_routes.py regression)
        opts = {"abstol": self.abstol, "reltol": self.reltol, "max_num_steps": self.max_num_steps,
                "quad_err_con": True, "linear_multistep_method": self.multistep}
        fwd = casadi.integrator(g.name("cvf"), "cvodes", dae, g.t0, tout, opts)
        adj = casadi.integrator(g.name("cva"), "cvodes", dae, g.t0, tout,
                                dict(opts, nadj=1, interpolation_type="polynomial"))
        return fwd, adj

    def _call(self, model, fn, stage, t_start, **kw):
        with _captured_output() as box:
            try:
                res = fn(**kw)
                err = None
            except RuntimeError as exc:
                res, err = None, exc
        if err is not None:
            raise _cvodes_error(model, err, box["text"], self.max_num_steps, stage, t_start)
        return res, box["text"], fn.stats()

    def gradient(self, model: Model) -> GradResult:
        g = model_graphs(model)
        crossings = _crossings(model)
        if crossings:  # stop at the switching times: one solve per piece (:mod:`.cvodes_split`)
            from .cvodes_split import split_gradient
            loss, dtheta, lam0, z1, stats = split_gradient(self, model, g, crossings)
        else:
            loss, dtheta, lam0, z1, stats = self._whole(model, g)
        th = g.theta
        z0 = g.z0(th)
        dtheta = dtheta + np.array(g.dz0dp(th), dtype=float).reshape(g.nz, g.np).T @ lam0
        dt0 = None if g.gt0 is None else float(g.gt0(lam0, z0, th))
        dt1 = None if g.gt1 is None else float(g.gt1(z1, th))
        stats.update({"abstol": self.abstol, "reltol": self.reltol, "accuracy": ACCURACY_NOTE})
        result = GradResult(model=model.name, method=self.name, loss=loss,
                            grad={n: float(v) for n, v in zip(model.param_names, dtheta)},
                            grad_z0=[float(v) for v in lam0], grad_t0=dt0, grad_t1=dt1,
                            z1=[float(v) for v in z1], stats=stats)
        for label, v in result.named_values():
            if not math.isfinite(float(v)):
                raise IntegrationError(f"method 'cvodes' on model {model.name!r}: {label} is {v} (non-finite); "
                                       f"the adjoint solve failed", time=None)
        return result

    def _whole(self, model: Model, g: ModelGraphs) -> tuple:
        """(loss, μ(t0) + Σ ∂ℓ/∂θ, λ(t0), z(t1), stats) by one forward and one adjoint call over [t0, t1]."""
        fwd, adj = self._integrators(g)
        th = g.theta
        z0 = g.z0(th)
        res, chat1, st1 = self._call(model, fwd, "forward", g.t0, x0=z0, p=th)
        X = np.array(res["xf"], dtype=float).reshape(g.nz, -1)
        bad = _first_bad(X)
        tout = [nearest_double(end) if end is not None else g.t1 for _, end, _ in g.segments]
        if bad is not None:
            raise IntegrationError(f"method 'cvodes' on model {model.name!r}: the solution is non-finite or "
                                   f"beyond {BLOWUP:g} at the output time t = {tout[bad]:.6g}", time=tout[bad])
        m = len(tout)
        seeds = np.zeros((g.nz, m))
        loss = 0.0
        dtheta = np.zeros(g.np)
        for k, (_, _, obs) in enumerate(g.segments):
            if obs is not None:
                l_i, dz_i, dp_i = g.obs[obs](X[:, k], th)
                loss += float(l_i)
                seeds[:, k] += np.array(dz_i, dtype=float).ravel()
                dtheta += np.array(dp_i, dtype=float).ravel()
        dz_0 = None
        if g.obs0 is not None:  # an observation at t0, evaluated on z0; its jump is added to λ(t0) below
            l_0, dz_0, dp_0 = g.obs[g.obs0](z0, th)
            loss += float(l_0)
            dtheta += np.array(dp_0, dtype=float).ravel()
        z1 = X[:, -1]
        l_T, dz_T, dp_T = g.terminal(z1, th)
        loss += float(l_T)
        seeds[:, -1] += np.array(dz_T, dtype=float).ravel()
        dtheta += np.array(dp_T, dtype=float).ravel()
        kw = {"x0": z0, "p": th, "adj_xf": casadi.DM(seeds)}
        if g.has_running:
            loss += float(np.array(res["qf"], dtype=float).ravel()[-1])
            qs = np.zeros((1, m))
            qs[0, -1] = 1.0
            kw["adj_qf"] = casadi.DM(qs)
        if not (math.isfinite(loss) and np.all(np.isfinite(seeds))):
            cols = np.nonzero(~np.all(np.isfinite(seeds), axis=0))[0]
            kb = int(cols[0]) if cols.size else m - 1
            raise IntegrationError(
                f"method 'cvodes' on model {model.name!r}: the loss or its derivative ∂ℓ/∂z is non-finite at "
                f"t = {tout[kb]:.6g}, where z = {np.array2string(X[:, kb], precision=6)} (e.g. sqrt or log of "
                f"a negative value, or sqrt at 0, in a loss term); check the loss terms", time=tout[kb])
        ares, chat2, st2 = self._call(model, adj, "adjoint", tout[-1], **kw)
        lam0 = np.array(ares["adj_x0"], dtype=float).ravel()
        if dz_0 is not None:
            lam0 = lam0 + np.array(dz_0, dtype=float).ravel()
        dtheta += np.array(ares["adj_p"], dtype=float).ravel()
        stats = {
            "steps": int(st1.get("nsteps", 0)), "steps_backward": int(st2.get("nstepsB", 0)),
            "error_test_failures": int(st1.get("netfails", 0)) + int(st2.get("netfailsB", 0)),
            "convergence_failures": int(st1.get("nncfails", 0)) + int(st2.get("nncfailsB", 0)),
            "rhs_evaluations": int(st1.get("nfevals", 0)) + int(st2.get("nfevalsB", 0)),
        }
        chatter = (chat1 + chat2).strip()
        if chatter:
            stats["solver_messages"] = chatter[-2000:]
        return loss, dtheta, lam0, z1, stats


def _crossings(model: Model) -> list:
    """The kink crossings CVODES must stop at (:func:`.switching.switching_times`); none when the finder's own
    solve fails (the route's solve then reports the failure in its own words)."""
    from .switching import state_switches, switching_times
    if not state_switches(model):
        return []
    try:
        return switching_times(model)
    except (RuntimeError, IntegrationError):
        return []
