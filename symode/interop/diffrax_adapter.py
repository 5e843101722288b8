"""diffrax as a gradient route (extra ``symode[jax]``): the same model and loss as the oracle.

Three routes, one per diffrax adjoint, one class each behind the common interface:

* ``diffrax``           ``RecursiveCheckpointAdjoint()`` (diffrax's default: reverse-mode AD through the
  solver's steps with binomial checkpointing -- discretise-then-optimise);
* ``diffrax-direct``    ``DirectAdjoint()`` (reverse-mode AD through the unrolled, bounded while loop);
* ``diffrax-backsolve`` ``BacksolveAdjoint()`` (the continuous adjoint, back-solving z; its solver, step
  controller and dt0 are the forward ones, diffrax's default).

Options: ``scheme`` (``tsit5`` (default), ``dopri5``, ``kvaerno5`` (implicit) adaptive; ``rk4`` -- classic
Runge-Kutta 4, which diffrax does not ship, defined here from its Butcher tableau -- and ``euler``, ``heun``,
``midpoint`` fixed-step), ``rtol``/``atol`` (adaptive, ``PIDController(rtol, atol)``; defaults 1e-7 / 1e-9)
or ``steps`` (fixed-step: ``ConstantStepSize()`` with ``dt0 = (t1 - t0)/steps``).

The computation (conventions of :mod:`symode.interop.problem`): a pure function L(θ, z0, t0, t1) -- the
exported vector field (:func:`symode.interop.jax_export.to_jax`) plus q' = r where there is a running cost,
``diffeqsolve`` from t0 to t1 with ``SaveAt(ts=(τ_1, ..., τ_m[, t1]))``, the loss assembled from the saved
states (an observation exactly at t0 on z0 itself, dL/dt0 then None: undefined) -- differentiated by ``jax.value_and_grad`` in all four arguments at z0 = z0(θ); then
dL/dθ = ∂L/∂θ + (∂z0/∂θ)ᵀ dL/dz0 by ``jax.vjp`` of z0(θ).  Everything in float64 (``jax_enable_x64``).
``max_steps`` is 100000 (diffrax's default 4096 stops tight tolerances).  A library failure becomes an
IntegrationError with diffrax's own reason and the last time the forward solve reached (found by a forward solve
with ``throw=False``).
"""
from __future__ import annotations

import threading

from ..errors import IntegrationError, SpecError
from ..model import Model
from ..result import GradResult
from . import require
from .problem import adapter_result, check_solver_options, loss_plan

__all__ = ["diffrax_gradient", "ADAPTIVE", "FIXED", "ADJOINTS"]

ADAPTIVE = ("tsit5", "dopri5", "kvaerno5")
FIXED = ("rk4", "euler", "heun", "midpoint")
#: route option -> diffrax adjoint class name
ADJOINTS = {"checkpoint": "RecursiveCheckpointAdjoint", "direct": "DirectAdjoint", "backsolve": "BacksolveAdjoint"}
MAX_STEPS = 100_000
_LOCK = threading.Lock()
_JITTED: dict = {}
_MAX_JITTED = 64

_RK4 = None


def _rk4_solver(diffrax):
    """Classic RK4 (c = 0, 1/2, 1/2, 1; b = 1/6, 1/3, 1/3, 1/6) as a diffrax explicit RK solver, no error
    estimate (fixed steps only), cubic Hermite dense output like diffrax's other low-order solvers."""
    global _RK4
    if _RK4 is None:
        import numpy as np
        tab = diffrax.ButcherTableau(
            c=np.array([0.5, 0.5, 1.0]), b_sol=np.array([1 / 6, 1 / 3, 1 / 3, 1 / 6]), b_error=np.zeros(4),
            a_lower=(np.array([0.5]), np.array([0.0, 0.5]), np.array([0.0, 0.0, 1.0])))

        class RK4(diffrax.AbstractERK):
            tableau = tab
            interpolation_cls = diffrax.ThirdOrderHermitePolynomialInterpolation.from_k

            def order(self, terms):
                return 4

        _RK4 = RK4
    return _RK4()


def _solver(diffrax, scheme: str):
    if scheme == "rk4":
        return _rk4_solver(diffrax)
    return {"tsit5": diffrax.Tsit5, "dopri5": diffrax.Dopri5, "kvaerno5": diffrax.Kvaerno5,
            "euler": diffrax.Euler, "heun": diffrax.Heun, "midpoint": diffrax.Midpoint}[scheme]()


def _compiled(model: Model, adjoint: str, scheme: str, steps, with_times: bool):
    """The jitted value-and-gradient of L(θ, z0, t0, t1; rtol, atol) for one configuration, built once per
    (model, adjoint, scheme, steps, with_times) and kept (a sweep over tolerances reuses one compilation)."""
    key = (model.fingerprint(), adjoint, scheme, steps, with_times)
    with _LOCK:
        fn = _JITTED.get(key)
    if fn is not None:
        return fn
    from .jax_export import enable_x64, to_jax
    jax = enable_x64()
    diffrax = require("diffrax", "jax", "the diffrax adapter")
    import jax.numpy as jnp
    plan = loss_plan(model)
    jm = to_jax(model)
    nz = plan.nz

    def field(t, y, p):
        if not plan.has_running:
            return jm.rhs(t, y, p)
        z = y[:nz]
        return jnp.concatenate([jm.rhs(t, z, p), jnp.reshape(jm.running(t, z, p), (1,))])

    solver = _solver(diffrax, scheme)
    adj = getattr(diffrax, ADJOINTS[adjoint])()
    interior = jnp.asarray(plan.interior_times, dtype=jnp.float64)

    def loss(p, z0, t0, t1, rtol, atol):
        ts = interior if plan.observation_at_t1 else jnp.concatenate([interior, jnp.reshape(t1, (1,))])
        y0 = jnp.concatenate([z0, jnp.zeros(1)]) if plan.has_running else z0
        if steps is not None:
            controller, dt0 = diffrax.ConstantStepSize(), (t1 - t0) / steps
        else:
            controller, dt0 = diffrax.PIDController(rtol=rtol, atol=atol), None
        sol = diffrax.diffeqsolve(diffrax.ODETerm(field), solver, t0, t1, dt0, y0, args=p,
                                  saveat=diffrax.SaveAt(ts=ts), stepsize_controller=controller, adjoint=adj,
                                  max_steps=MAX_STEPS, throw=False)
        ys = sol.ys
        total = jnp.zeros(())
        k0 = 1 if plan.observation_at_t0 else 0  # an observation at t0 is evaluated on z0 itself
        for i, term in enumerate(jm.observations):
            total = total + term(z0 if i < k0 else ys[i - k0, :nz], p)
        if plan.has_terminal:
            total = total + jm.terminal(ys[-1, :nz], p)
        if plan.has_running:
            total = total + ys[-1, nz]
        return total, sol.result

    # throw=False: a failed solve comes back with its result code (checked by the caller) instead of a runtime
    # error that JAX would also print to stderr
    grad = jax.value_and_grad(loss, argnums=(0, 1, 2, 3) if with_times else (0, 1), has_aux=True)

    def run(p, t0, t1, rtol, atol):
        z0, z0_vjp = jax.vjp(jm.z0, p)
        (value, result), grads = grad(p, z0, t0, t1, rtol, atol)
        (chain,) = z0_vjp(grads[1])
        return value, grads[0] + chain, grads[1], grads[2:], result

    fn = jax.jit(run)
    with _LOCK:
        _JITTED[key] = fn
        while len(_JITTED) > _MAX_JITTED:
            _JITTED.pop(next(iter(_JITTED)))
    return fn


def diffrax_gradient(model: Model, *, adjoint: str = "checkpoint", scheme: str = "tsit5", steps=None, rtol=None,
                     atol=None, theta=None, t0=None, t1=None) -> GradResult:
    """Loss and gradients of ``model`` through diffrax with the given adjoint (see the module docstring).

    ``BacksolveAdjoint`` cannot differentiate in t0 or t1 (diffrax raises "Unexpected tangent ...
    filter_custom_vjp"): for it, grad_t0 and grad_t1 are None and ``stats["unavailable"]`` quotes the reason.
    ``theta`` (floats in parameter order), ``t0`` and ``t1`` replace the model's values (for the audit's finite
    differences of the library's own loss; the compiled function is reused).
    """
    from .jax_export import enable_x64, to_jax
    jax = enable_x64()
    diffrax = require("diffrax", "jax", "the diffrax adapter")
    import jax.numpy as jnp
    if adjoint not in ADJOINTS:
        raise SpecError(f"unknown diffrax adjoint {adjoint!r}; choose one of {', '.join(ADJOINTS)}")
    steps, rtol, atol = check_solver_options("diffrax", scheme, FIXED, ADAPTIVE, steps, rtol, atol)
    plan = loss_plan(model)
    with_times = adjoint != "backsolve"
    fn = _compiled(model, adjoint, scheme, steps, with_times)
    theta = to_jax(model).theta if theta is None else jnp.asarray(theta, dtype=jnp.float64)
    what = (f"diffrax {ADJOINTS[adjoint]} ({scheme}, "
            + (f"{steps} steps" if steps is not None else f"rtol={rtol:g}, atol={atol:g}") + f") on {model.name!r}")
    try:
        value, g_p, g_z0, g_times, result = fn(theta, jnp.float64(plan.t0 if t0 is None else t0),
                                               jnp.float64(plan.t1 if t1 is None else t1),
                                               jnp.float64(rtol or 0.0), jnp.float64(atol or 0.0))
    except Exception as exc:  # noqa: BLE001 -- any other failure of the library, in one line
        first = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__).strip()
        raise IntegrationError(f"{what} failed: {type(exc).__name__}: {first[:300]}") from None
    if result != diffrax.RESULTS.successful:
        reason, t = _forward_failure(diffrax, jnp, model, scheme, steps, rtol, atol, theta)
        near = "" if t is None else f" near t = {t:.6g}"
        raise IntegrationError(f"{what} failed{near}: {reason or diffrax.RESULTS[result]}"[:400], time=t)
    config = {"library": "diffrax", "version": diffrax.__version__, "jax": jax.__version__,
              "adjoint": ADJOINTS[adjoint], "solver": scheme}
    config.update({"steps": steps} if steps is not None else {"rtol": rtol, "atol": atol})
    name = "diffrax" if adjoint == "checkpoint" else f"diffrax-{adjoint}"
    g_t0 = float(g_times[0]) if with_times and not plan.observation_at_t0 else None
    g_t1 = float(g_times[1]) if with_times and not plan.observation_at_t1 else None
    result = adapter_result(model, name, float(value), [float(x) for x in g_p], [float(x) for x in g_z0],
                            g_t0, g_t1, config)
    if not with_times:
        undefined = {"grad_t0": plan.observation_at_t0, "grad_t1": plan.observation_at_t1}
        result.stats["unavailable"] = {q: BACKSOLVE_NO_TIMES for q, u in undefined.items() if not u}
    return result


def _forward_failure(diffrax, jnp, model: Model, scheme: str, steps, rtol, atol, theta):
    """(diffrax's reason, the last time it reached) of the forward solve alone, run with ``throw=False`` and
    every step saved: what a failed gradient computation is reported with.  (None, None) if it succeeds."""
    from .jax_export import to_jax
    plan = loss_plan(model)
    jm = to_jax(model)
    ctrl = diffrax.ConstantStepSize() if steps is not None else diffrax.PIDController(rtol=rtol, atol=atol)
    dt0 = (plan.t1 - plan.t0) / steps if steps is not None else None
    try:
        sol = diffrax.diffeqsolve(diffrax.ODETerm(lambda t, y, p: jm.rhs(t, y, p)), _solver(diffrax, scheme),
                                  plan.t0, plan.t1, dt0, jm.z0(theta), args=theta, stepsize_controller=ctrl,
                                  saveat=diffrax.SaveAt(steps=True), throw=False, max_steps=MAX_STEPS)
    except Exception:  # noqa: BLE001 -- the diagnosis itself failed: report the original error
        return None, None
    if sol.result == diffrax.RESULTS.successful:
        return None, None
    ts = jnp.where(jnp.isfinite(sol.ts), sol.ts, -jnp.inf)
    return diffrax.RESULTS[sol.result], float(jnp.max(ts))


#: Why diffrax-backsolve has no time gradients (measured with diffrax 0.7.2: jax.grad in t0 or t1 through
#: diffeqsolve(adjoint=BacksolveAdjoint()) raises RuntimeError "Unexpected tangent. `*args` and `**kwargs` to
#: `filter_custom_vjp` cannot be autodifferentiated.").
BACKSOLVE_NO_TIMES = ("diffrax's BacksolveAdjoint does not differentiate in t0/t1 (jax.grad raises "
                      "'Unexpected tangent ... filter_custom_vjp')")
