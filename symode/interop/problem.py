"""What every adapter computes, independent of the framework: the solve's output times and the loss assembly.

An adapter runs a library's solver on the exported model (:mod:`symode.interop.emit`) and must compute the SAME
loss as the oracle (:mod:`symode.model`)::

    L = ℓ(z(t1), θ) + Σ_i ℓ_i(z(τ_i), θ) + ∫_{t0}^{t1} r(z, t, θ) dt

* The solve outputs z at ``[t0, τ_1, ..., τ_m]`` plus ``t1`` when the last observation lies before t1
  (:attr:`LossPlan.output_times`); τ_i are fixed absolute times (constants, never differentiated).
* A running cost is integrated by the library's own solver as one extra state q with q' = r, q(t0) = 0, so
  that the library's error control covers it, and L takes q(t1).
* dL/dθ is total (the chain through z0(θ) included), dL/dz0 treats z0 as a free input; adapters compute the
  partial ∂L/∂θ with z0 a free leaf and add (∂z0/∂θ)ᵀ dL/dz0 by the framework's own autodiff.
* dL/dt0 and dL/dt1 are the framework's derivatives in the t0 and t1 inputs; dL/dt1 is not asked for (None)
  where the last observation lies exactly at t1 (symode reports it undefined there).
* An observation exactly at t0 is evaluated on z0 itself (:attr:`LossPlan.observation_at_t0`; the solve's
  outputs are then t0 and the later observation times), and dL/dt0 is not asked for (None): as every symode
  route, the adapters report it undefined (observation times are fixed: the start cannot move past one).

Solver names are the libraries' own (``dopri5``, ``rk4`` for torchdiffeq; ``tsit5``, ``dopri5``, ``kvaerno5``,
``rk4`` for diffrax).  A fixed-step solver needs ``steps`` (step size (t1 - t0)/steps, as a user would pass it)
and refuses ``rtol``/``atol``; an adaptive one needs neither and refuses ``steps``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import SpecError
from ..model import Model
from ..result import GradResult

__all__ = ["LossPlan", "loss_plan", "check_solver_options", "adapter_result", "DEFAULT_RTOL", "DEFAULT_ATOL"]

#: torchdiffeq's defaults (odeint(rtol=1e-7, atol=1e-9)); used for diffrax too, so both adapters default alike.
DEFAULT_RTOL = 1e-7
DEFAULT_ATOL = 1e-9


@dataclass(frozen=True)
class LossPlan:
    """The float64 times and the loss's shape for one model (see the module docstring)."""

    t0: float
    t1: float
    observation_times: tuple
    observation_at_t1: bool
    observation_at_t0: bool
    has_terminal: bool
    has_running: bool
    nz: int
    np: int

    @property
    def interior_times(self) -> tuple:
        """The fixed output times after t0: the observation times but one lying at t0 (t1 is added by the
        caller unless :attr:`observation_at_t1`)."""
        return self.observation_times[1:] if self.observation_at_t0 else self.observation_times

    @property
    def ny(self) -> int:
        """The solved state's size: z plus the running-cost quadrature q where there is one."""
        return self.nz + (1 if self.has_running else 0)


def loss_plan(model: Model) -> LossPlan:
    from ..casadi.translate import nearest_double  # exact numbers -> the nearest double, as every float64 route
    times = tuple(nearest_double(o.time) for o in model.observations)
    return LossPlan(nearest_double(model.t0), nearest_double(model.t1), times,
                    bool(model.observations) and model.observations[-1].time == model.t1,
                    bool(model.observations) and model.observations[0].time == model.t0,
                    model.terminal is not None, model.running is not None, model.nz, model.np)


def check_solver_options(library: str, solver: str, fixed: tuple, adaptive: tuple, steps, rtol, atol):
    """Validate a solver name and its options; returns (steps, rtol, atol) with defaults filled in."""
    if solver in fixed:
        if steps is None:
            raise SpecError(f"{library} solver {solver!r} takes fixed steps: give their number "
                            f"(fixed_steps, --fixed-steps N)")
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise SpecError(f"fixed_steps must be a positive integer, got {steps!r}")
        if rtol is not None or atol is not None:
            raise SpecError(f"{library} solver {solver!r} takes fixed steps; rtol/atol do not apply to it")
        return steps, None, None
    if solver in adaptive:
        if steps is not None:
            raise SpecError(f"{library} solver {solver!r} is adaptive; fixed_steps does not apply (give rtol/atol)")
        out = []
        for name, v, default in (("rtol", rtol, DEFAULT_RTOL), ("atol", atol, DEFAULT_ATOL)):
            v = default if v is None else v
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not (math.isfinite(v) and v > 0):
                raise SpecError(f"{name} must be a finite positive number, got {v!r}")
            out.append(float(v))
        return None, out[0], out[1]
    raise SpecError(f"unknown {library} solver {solver!r}; choose one of {', '.join((*adaptive, *fixed))}")


def adapter_result(model: Model, method: str, loss: float, grad_theta, grad_z0, grad_t0, grad_t1,
                   config: dict) -> GradResult:
    """A :class:`GradResult` of float values (``grad_t1`` None where undefined, ``grad_t0`` None where the
    library cannot compute it -- the caller then fills ``stats["unavailable"]``); ``config`` goes to
    ``stats["config"]`` (library, version, function, solver, tolerances or steps)."""
    grad = {name: float(v) for name, v in zip(model.param_names, grad_theta)}
    result = GradResult(model=model.name, method=method, loss=float(loss), grad=grad,
                        grad_z0=[float(v) for v in grad_z0], grad_t0=None if grad_t0 is None else float(grad_t0),
                        grad_t1=None if grad_t1 is None else float(grad_t1))
    result.stats["config"] = dict(config)
    return result.check_finite()
