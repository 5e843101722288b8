"""Switching times: where the solution crosses a kink of the right-hand side or the running cost.

A kink (``abs(u)``, ``Max(a, b)``, ``sign(u)``, ``Heaviside(u)``: :func:`symode.expr.kink_switches`) whose
switch u depends on the state or on t is crossed where u(z(t), t) changes sign.  There f is continuous but its
derivative is not: an adaptive multistep solver that steps across the point loses its error control (CVODES
with Adams at 1e-12 returned dL/db 4e-5 off on dz/dt = a |t - 1| - b z), and a fixed-step scheme its order.

:func:`switching_times` finds the crossings on [t0, t1] at the model's parameter values:

1. one CVODES solve (rtol = atol = 1e-12) sampled at :data:`SAMPLES` + 1 equally spaced times;
2. every switch evaluated at the samples: a sign change between two samples brackets a crossing, a sample
   exactly on the kink is one;
3. each bracket refined by regula falsi (Illinois) on u(z(τ), τ), z(τ) from a CVODES solve started at the
   bracket's left sample, until the bracket is narrower than :data:`TIME_TOL` relative.

A crossing is seen only where the switch changes sign between samples: two crossings closer than the sample
spacing, or a touch without a sign change, are missed (stated, not hidden).  The solver's time-scaled form
(:func:`scaled_dae`: dz/ds = (tb - ta) f(z, ta + s (tb - ta), θ) on s ∈ [0, 1], with ta, tb parameters) lets
one built integrator solve any sub-interval; the CVODES route uses it to stop at the switching times.
"""
from __future__ import annotations

import casadi
import numpy as np
import sympy

from symode.casadi.model_graphs import ModelGraphs, model_graphs
from symode.expr import FUNCTIONS, kink_switches
from symode.lru import LRUCache
from symode.model import Model

from .capture import _captured_output
from .plan import _BUILD_LOCK

__all__ = ["SAMPLES", "TIME_TOL", "Crossing", "state_switches", "scaled_dae", "switching_times"]

#: Samples of the trajectory on which sign changes are looked for.
SAMPLES = 256
#: A crossing time is refined until its bracket is narrower than this, relative to max(1, |t|).
TIME_TOL = 1e-13
_MAX_ITER = 100
_SOLVER = {"abstol": 1e-12, "reltol": 1e-12, "max_num_steps": 100000}
_KINKED = tuple(f.head for f in FUNCTIONS.values() if f.kinks is not None)


class Crossing(tuple):
    """(time, field, node, switch): the solution crosses the kink ``node`` of ``field`` at ``time``."""

    __slots__ = ()

    def __new__(cls, time: float, field: str, node, switch):
        return super().__new__(cls, (time, field, node, switch))

    time = property(lambda self: self[0])
    field = property(lambda self: self[1])
    node = property(lambda self: self[2])
    switch = property(lambda self: self[3])


def state_switches(model: Model) -> list[tuple[str, sympy.Expr, sympy.Expr]]:
    """(field, kink node, switch) for every kink of the rhs and running cost whose switch depends on the state
    or on t (parameter-only kinks are fixed points of θ, see :func:`symode.check.kinks.check_differentiable`)."""
    structure = getattr(model, "structure", None)
    if structure is not None and not structure.has_kinks():  # a smooth network: nothing to expand and search
        return []
    moving = set(model.states) | {model.t}
    fields = [(f"rhs[{i}]", e) for i, e in enumerate(model.rhs)]
    if model.running is not None:
        fields.append(("loss.running", model.running))
    out = []
    for field, expr in fields:
        for node in sorted(sympy.sympify(expr).atoms(*_KINKED), key=sympy.default_sort_key):
            for sw in kink_switches(node) or ():
                if sw.free_symbols & moving:
                    out.append((field, node, sw))
    return out


def scaled_dae(g: ModelGraphs, quad: bool = True) -> dict:
    """The model's ODE on s ∈ [0, 1] for the sub-interval [ta, tb] (parameters (θ, ta, tb)); the running cost
    as a quadrature when ``quad`` and the model has one."""
    z, s, p = casadi.SX.sym("z", g.nz), casadi.SX.sym("s"), casadi.SX.sym("p", g.np)
    ta, tb = casadi.SX.sym("ta"), casadi.SX.sym("tb")
    t = ta + s * (tb - ta)
    dae = {"x": z, "p": casadi.vertcat(p, ta, tb), "t": s, "ode": (tb - ta) * g.f(z, t, p)}
    if quad and g.has_running:
        dae["quad"] = (tb - ta) * g.faug(casadi.vertcat(z, 0), t, p)[g.nz]
    return dae


_CACHE: "LRUCache[tuple]" = LRUCache(32)


def _solvers(g: ModelGraphs, switches: list) -> tuple:
    def build():
        with _BUILD_LOCK:
            dae = scaled_dae(g, quad=False)
            grid = [k / SAMPLES for k in range(1, SAMPLES + 1)]
            sample = casadi.integrator(g.name("swS"), "cvodes", dae, 0.0, grid, _SOLVER)
            reach = casadi.integrator(g.name("swR"), "cvodes", dae, 0.0, [1.0], _SOLVER)
            z, t, p, *_rest, tr = g._sym
            u = tr([sw for _, _, sw in switches])
            fn = casadi.Function(g.name("sw"), [z, t, p], [u])
            return sample, reach, fn
    return _CACHE.get_or_build(g.fingerprint, build)


def switching_times(model: Model) -> list[Crossing]:
    """Every crossing of a state- or time-dependent kink on (t0, t1), sorted by time (see the module
    docstring).  Raises what CVODES raises if the model cannot be solved (the routes report that themselves)."""
    switches = state_switches(model)
    if not switches:
        return []
    # the switch expressions are scalar (element-wise) and are evaluated through the graph's scalar
    # translation: a structured model's graphs are matrix MX (no element-wise translation), so its kinks are
    # located on its scalar form, the same solution
    g = model_graphs(model.scalar_model())
    sample, reach, fn = _solvers(g, switches)
    th = np.array(g.theta, dtype=float).ravel()
    t0, t1 = g.t0, g.t1
    z0 = np.array(g.z0(g.theta), dtype=float).ravel()
    with _captured_output():
        Z = np.array(sample(x0=z0, p=np.concatenate([th, [t0, t1]]))["xf"], dtype=float).reshape(g.nz, -1)
    Z = np.hstack([z0.reshape(-1, 1), Z])
    T = t0 + (t1 - t0) * np.arange(SAMPLES + 1) / SAMPLES
    U = np.array(fn.map(SAMPLES + 1)(Z, T.reshape(1, -1), np.repeat(th.reshape(-1, 1), SAMPLES + 1, axis=1)),
                 dtype=float).reshape(len(switches), -1)
    out = []
    for j, (field, node, sw) in enumerate(switches):
        for k in np.nonzero(U[j, :-1] * U[j, 1:] < 0)[0]:
            tau = _refine(reach, fn, j, T[k], Z[:, k], T[k + 1], U[j, k], U[j, k + 1], th)
            out.append(Crossing(float(tau), field, node, sw))
        for k in np.nonzero(U[j, 1:-1] == 0)[0] + 1:  # exactly on the kink at a sample (e.g. |t - 1| at t = 1)
            out.append(Crossing(float(T[k]), field, node, sw))
    return sorted(out, key=lambda c: c.time)


def _refine(reach, fn, j, ta, za, tb, ua, ub, th) -> float:
    """Regula falsi (Illinois) for u_j(z(τ), τ) = 0 on [ta, tb], z(τ) solved from (ta, za)."""
    def u_at(tau):
        if tau == ta:
            return ua
        with _captured_output():
            z = np.array(reach(x0=za, p=np.concatenate([th, [ta, tau]]))["xf"], dtype=float).ravel()
        return float(np.array(fn(z, tau, th), dtype=float).ravel()[j])

    lo, hi, flo, fhi, side = ta, tb, ua, ub, 0
    for _ in range(_MAX_ITER):
        if hi - lo <= TIME_TOL * max(1.0, abs(lo)):
            break
        mid = hi - fhi * (hi - lo) / (fhi - flo)
        if not lo < mid < hi:
            mid = 0.5 * (lo + hi)
        fm = u_at(mid)
        if fm == 0:
            return mid
        if (fm < 0) == (flo < 0):
            lo, flo = mid, fm
            if side == -1:
                fhi /= 2
            side = -1
        else:
            hi, fhi = mid, fm
            if side == 1:
                flo /= 2
            side = 1
    return lo - flo * (hi - lo) / (fhi - flo) if fhi != flo else 0.5 * (lo + hi)
