"""Back-solve diagnostic for adjoint routes: can the library's solver recover z(t0) by integrating backward?

A continuous adjoint that back-solves z (torchdiffeq's ``odeint_adjoint``, diffrax's ``BacksolveAdjoint``)
integrates z from t1 back to t0 alongside λ.  On a contracting system that backward solve amplifies every error
(by about exp(contraction rate x interval)), and the adjoint then evaluates ∂f/∂z and ∂f/∂θ at a wrong z.
:func:`backsolve_error` measures it with the library's own solver and settings: z(t1) by a forward solve from
z0, then z_back(t0) by a solve from t1 back to t0, and returns |z_back(t0) - z0|_max / (1 + |z0|_max) (the
measure symode's own back-solve route reports), or a string when the library fails (e.g. its step limit).
Observation times do not enter: the adjoint resets z at output times, so this is the worst piece only when
there are none; it is a diagnostic, not a bound.
"""
from __future__ import annotations

__all__ = ["backsolve_error"]

MAX_STEPS = 100_000


def backsolve_error(library: str, model, solver: str, rtol, atol, steps):
    try:
        if library == "torchdiffeq":
            z0, zb = _torchdiffeq(model, solver, rtol, atol, steps)
        else:
            z0, zb = _diffrax(model, solver, rtol, atol, steps)
    except Exception as exc:  # noqa: BLE001 -- a failed back-solve is the finding, reported as text
        first = next((line for line in str(exc).splitlines() if line.strip()), "")
        return f"back-solve failed: {type(exc).__name__}: {first.strip()[:200]}"
    diff = max(abs(a - b) for a, b in zip(z0, zb))
    err = diff / (1 + max(abs(a) for a in z0))
    return err if err == err else "back-solve failed: NaN"


def _torchdiffeq(model, solver, rtol, atol, steps):
    import torch
    import torchdiffeq
    from .problem import loss_plan
    from .torch_export import to_torch
    plan = loss_plan(model)
    fn = to_torch(model)
    kw = {"method": solver}
    if steps is not None:
        kw["options"] = {"step_size": (plan.t1 - plan.t0) / steps}
    else:
        kw.update(rtol=rtol, atol=atol, options={"max_num_steps": MAX_STEPS})
    with torch.no_grad():
        z0 = fn.z0()
        t = torch.tensor([plan.t0, plan.t1], dtype=torch.float64)
        z1 = torchdiffeq.odeint(fn, z0, t, **kw)[-1]
        zb = torchdiffeq.odeint(fn, z1, t.flip(0), **kw)[-1]
    return z0.tolist(), zb.tolist()


def _diffrax(model, solver, rtol, atol, steps):
    import diffrax
    import jax.numpy as jnp
    from .diffrax_adapter import _solver
    from .jax_export import enable_x64, to_jax
    from .problem import loss_plan
    enable_x64()
    plan = loss_plan(model)
    jm = to_jax(model)
    term = diffrax.ODETerm(lambda t, y, p: jm.rhs(t, y, p))
    s = _solver(diffrax, solver)
    z0 = jm.z0(jm.theta)

    def solve(y, ta, tb):
        if steps is not None:
            ctrl, dt0 = diffrax.ConstantStepSize(), (tb - ta) / steps
        else:
            ctrl, dt0 = diffrax.PIDController(rtol=rtol, atol=atol), None
        return diffrax.diffeqsolve(term, s, ta, tb, dt0, y, args=jm.theta, stepsize_controller=ctrl,
                                   max_steps=MAX_STEPS).ys[-1]

    z1 = solve(z0, plan.t0, plan.t1)
    zb = solve(z1, plan.t1, plan.t0)
    return [float(v) for v in z0], [float(v) for v in jnp.asarray(zb)]
