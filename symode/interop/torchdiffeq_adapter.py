"""torchdiffeq as a gradient route (extra ``symode[torch]``): the same model and loss as the oracle.

Two routes, one class each behind the common interface ``gradient(model, **options) -> GradResult``:

* ``torchdiffeq``          ``torchdiffeq.odeint``: backpropagation through the solver's operations;
* ``torchdiffeq-adjoint``  ``torchdiffeq.odeint_adjoint``: the continuous adjoint, back-solving z
  (Chen et al. 2018), adjoint tolerances equal to the forward ones (torchdiffeq's default).

Options: ``scheme`` (torchdiffeq's ``method``: ``dopri5`` (default), ``dopri8``, ``bosh3``, ``fehlberg2``,
``adaptive_heun`` adaptive; ``rk4`` (Kutta's 3/8 rule), ``euler``, ``midpoint``, ``heun2``, ``heun3``,
``explicit_adams`` fixed-step), ``rtol``/``atol`` (adaptive; defaults 1e-7 / 1e-9, torchdiffeq's) or ``steps``
(fixed-step: ``options={"step_size": (t1 - t0)/steps}``, exactly what a user writes).

The computation (the conventions of :mod:`symode.interop.problem`): the exported module
(:func:`symode.interop.torch_export.to_torch`) holds θ; z0 = z0(θ) is detached into a free leaf; t0 and t1 are
float64 leaves; ``t = cat(t0, τ_1..τ_m, t1)``; one ``odeint`` call; L assembled from the outputs;
``torch.autograd.grad`` gives ∂L/∂θ (z0 fixed), dL/dz0, dL/dt0, dL/dt1; then dL/dθ = ∂L/∂θ + (∂z0/∂θ)ᵀ dL/dz0
by a vector-Jacobian product of z0(θ).  Observation times are constants: torchdiffeq never moves them; one
exactly at t0 is evaluated on z0 and dL/dt0 is then None (undefined).  A library failure (step-size underflow, step
limit) becomes an IntegrationError naming the start time of the last step taken (torchdiffeq's ``callback_step``
hooks, forward and adjoint).
With a fixed step size torchdiffeq places grid points at t0 + k·h and interpolates outputs that fall between
them linearly (its ``interp="linear"`` default); choose ``steps`` so that observation times lie on the grid
when a discrete gradient is compared.
"""
from __future__ import annotations

from ..errors import IntegrationError
from ..model import Model
from ..result import GradResult
from . import require
from .problem import adapter_result, check_solver_options, loss_plan

__all__ = ["torchdiffeq_gradient", "ADAPTIVE", "FIXED", "MAX_STEPS"]

ADAPTIVE = ("dopri5", "dopri8", "bosh3", "fehlberg2", "adaptive_heun")
FIXED = ("rk4", "euler", "midpoint", "heun2", "heun3", "explicit_adams")
#: Step cap of the adaptive solvers, forward and adjoint (torchdiffeq's default is 2**31 - 1: an unstable
#: back-solve then runs for hours instead of failing).
MAX_STEPS = 100_000


def _augmented(torch, fn, plan):
    """The vector field torchdiffeq integrates: f, plus q' = r where the model has a running cost.  An
    nn.Module (odeint_adjoint finds θ through it)."""
    if not plan.has_running:
        return fn

    class WithRunningCost(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, t, y):
            z = y[..., : plan.nz]
            return torch.cat([self.inner(t, z), self.inner.running(t, z).reshape(-1)], dim=-1)

    return WithRunningCost(fn)


def torchdiffeq_gradient(model: Model, *, adjoint: bool = False, scheme: str = "dopri5", steps=None,
                         rtol=None, atol=None, theta=None, t0=None, t1=None) -> GradResult:
    """Loss and gradients of ``model`` through torchdiffeq (see the module docstring).  ``theta`` (floats in
    parameter order), ``t0`` and ``t1`` (floats) replace the model's values (the audit's finite differences of
    the library's own loss use them); observation times stay where they are."""
    torch = require("torch", "torch", "the torchdiffeq adapter")
    tde = require("torchdiffeq", "torch", "the torchdiffeq adapter")
    from .torch_export import to_torch
    steps, rtol, atol = check_solver_options("torchdiffeq", scheme, FIXED, ADAPTIVE, steps, rtol, atol)
    plan = loss_plan(model)
    f64 = torch.float64
    fn = to_torch(model, theta)
    func = _augmented(torch, fn, plan)
    last_step: list = [None]  # the start time of the last step taken (forward or adjoint), to name a failure

    def record(t, y, dt):
        last_step[0] = float(t.detach()) if hasattr(t, "detach") else float(t)
    func.callback_step = func.callback_step_adjoint = record
    z0_theta = fn.z0()
    z0 = z0_theta.detach().clone().requires_grad_(True)
    t0 = torch.tensor(plan.t0 if t0 is None else float(t0), dtype=f64, requires_grad=True)
    t1 = torch.tensor(plan.t1 if t1 is None else float(t1), dtype=f64, requires_grad=True)
    parts = [t0.reshape(1), torch.tensor(plan.interior_times, dtype=f64)]
    if not plan.observation_at_t1:
        parts.append(t1.reshape(1))
    ts = torch.cat(parts)
    y0 = torch.cat([z0, torch.zeros(1, dtype=f64)]) if plan.has_running else z0
    kwargs = {"method": scheme}
    if steps is not None:
        kwargs["options"] = {"step_size": (t1.item() - t0.item()) / steps}
    else:  # the adjoint solve inherits these options (torchdiffeq's default adjoint_options = options)
        kwargs.update(rtol=rtol, atol=atol, options={"max_num_steps": MAX_STEPS})
    solve = tde.odeint_adjoint if adjoint else tde.odeint
    what = (f"torchdiffeq {'odeint_adjoint' if adjoint else 'odeint'} ({scheme}, "
            + (f"{steps} steps" if steps is not None else f"rtol={rtol:g}, atol={atol:g}") + f") on {model.name!r}")
    try:
        ys, grads, loss = _run(torch, solve, func, fn, y0, ts, kwargs, plan, z0, t0, t1)
    except (AssertionError, RuntimeError, ValueError, OverflowError) as exc:  # the library's own failures
        near = "" if last_step[0] is None else f" near t = {last_step[0]:.6g}"
        raise IntegrationError(f"{what} failed{near}: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}",
                               time=last_step[0]) from None
    g = grads
    total = g[0]
    if z0_theta.requires_grad and plan.np:
        (chain,) = torch.autograd.grad(z0_theta, fn.theta, g[1], allow_unused=True)
        if chain is not None:
            total = total + chain
    config = {"library": "torchdiffeq", "version": tde.__version__, "torch": torch.__version__,
              "function": "odeint_adjoint" if adjoint else "odeint", "solver": scheme}
    config.update({"steps": steps} if steps is not None else {"rtol": rtol, "atol": atol})
    return adapter_result(model, "torchdiffeq-adjoint" if adjoint else "torchdiffeq", loss.item(),
                          total.tolist(), g[1].tolist(), None if plan.observation_at_t0 else g[2].item(),
                          None if plan.observation_at_t1 else g[3].item(), config)


def _run(torch, solve, func, fn, y0, ts, kwargs, plan, z0, t0, t1):
    """One solve and one backward pass: (solution, [∂L/∂θ, dL/dz0, dL/dt0(, dL/dt1)], L)."""
    f64 = torch.float64
    ys = solve(func, y0, ts, **kwargs)
    nz = plan.nz
    loss = torch.zeros((), dtype=f64)
    k0 = 1 if plan.observation_at_t0 else 0  # an observation at t0 is evaluated on z0 itself
    for i in range(len(plan.observation_times)):
        loss = loss + fn.observation(i, z0 if i < k0 else ys[i - k0 + 1, :nz])
    if plan.has_terminal:
        loss = loss + fn.terminal(ys[-1, :nz])
    if plan.has_running:
        loss = loss + ys[-1, nz]
    wrt = [fn.theta, z0, t0] + ([] if plan.observation_at_t1 else [t1])
    grads = torch.autograd.grad(loss, wrt, allow_unused=True)
    return ys, [torch.zeros_like(x) if v is None else v for x, v in zip(wrt, grads)], loss
