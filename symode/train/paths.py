"""What the pictures show, computed: state trajectories and the adjoint λ(t) of a model on a dense time grid.

Both come from the Taylor-method integrator of the oracle at :data:`PATH_DIGITS` digits (far beyond what a
picture resolves, and independent of the float64 route that trained the model):

* :func:`state_path`: z(t) at ``count`` equally spaced times of [t0, t1] (t0 included);
* :func:`adjoint_path`: λ(t) = ∂L/∂z(t) on the same grid, backward from λ(t1) = (∂ℓ/∂z)ᵀ with the jump
  λ(τ⁻) = λ(τ⁺) + (∂ℓ_i/∂z)ᵀ at each observation time τ (conventions of :mod:`symode.symbolic.derive`):
  the system (z, λ)' = (f, -(∂f/∂z)ᵀλ - (∂r/∂z)ᵀ) is integrated backward over each grid interval with z reset to
  the forward solution at the interval's right end, so that back-solving z never accumulates error.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import sympy

from ..model import Model

__all__ = ["PATH_DIGITS", "PATH_POINTS", "dense_times", "state_path", "AdjointPath", "adjoint_path"]

#: Digits of the integrations behind a picture.
PATH_DIGITS = 16
#: Grid points on [t0, t1] (t0 included).
PATH_POINTS = 101


def dense_times(model: Model, count: int = PATH_POINTS, extra=()) -> list:
    """``count`` equally spaced exact times from t0 to t1, merged with ``extra`` (e.g. observation times)."""
    span = model.t1 - model.t0
    grid = {model.t0 + span * sympy.Rational(k, count - 1) for k in range(count)}
    return sorted(grid | {sympy.Rational(t) if not isinstance(t, sympy.Basic) else t for t in extra})


def state_path(model: Model, times=None, z0=None) -> tuple[np.ndarray, np.ndarray]:
    """(t [T], z [T × nz]) at the model's parameter values, from ``z0`` (default its z0(θ))."""
    from .data import state_at
    times = dense_times(model) if times is None else list(times)
    after = [t for t in times if t > model.t0]
    z = state_at(model, after, z0=z0, digits=PATH_DIGITS) if after else np.zeros((0, model.nz))
    if len(after) < len(times):  # t0 itself is the initial state
        pv = model.param_values
        start = [float(sympy.sympify(e).xreplace(pv)) for e in model.z0] if z0 is None else [float(v) for v in z0]
        z = np.vstack([np.array(start, dtype=float).reshape(1, -1), z])
    return np.array([float(t) for t in times]), z


@dataclass
class AdjointPath:
    """λ on a grid: ``times`` [T] (ascending; an observation time τ appears twice, first with λ(τ⁻) and then with
    λ(τ⁺), so that a line through the points draws the jump), ``lam`` [T × nz], and ``jumps``: (τ, λ(τ⁻), λ(τ⁺))
    per observation time, ascending."""

    times: np.ndarray
    lam: np.ndarray
    states: list
    jumps: list = field(default_factory=list)


def adjoint_path(model: Model, count: int = PATH_POINTS) -> AdjointPath:
    """λ(t) of ``model`` at its parameter values (module docstring)."""
    from ..oracle.taylor import TaylorSystem, integrate
    from ..symbolic.derive import derive
    d = derive(model)
    obs = {o.time: i for i, o in enumerate(model.observations)}
    times = dense_times(model, count, extra=obs)
    _, Z = state_path(model, times)
    system = TaylorSystem([*model.states, *d.lam], [*model.rhs, *d.adjoint_rhs], model.t, params=model.params)
    pv = model.param_values

    def dldz(exprs, z) -> np.ndarray:
        sub = {**pv, **{s: sympy.Rational(float(v)) for s, v in zip(model.states, z)}}
        return np.array([float(sympy.sympify(e).xreplace(sub)) for e in exprs], dtype=float)

    nz = model.nz
    lam = dldz(d.dldz_terminal, Z[-1]) if model.terminal is not None else np.zeros(nz)
    ts, lams, jumps = [], [], []  # built backward, reversed at the end
    for k in range(len(times) - 1, -1, -1):
        t = times[k]
        ts.append(float(t))
        lams.append(lam)
        if t in obs:  # going backward through τ: λ(τ⁻) = λ(τ⁺) + (∂ℓ_i/∂z)ᵀ
            after = lam
            lam = lam + dldz(d.dldz_obs[obs[t]], Z[k])
            ts.append(float(t))
            lams.append(lam)
            jumps.append((float(t), lam, after))
        if k > 0:
            row = integrate(system, [*Z[k], *lam], t, [times[k - 1]], params=model.theta, digits=PATH_DIGITS)[0]
            lam = np.array([float(v) for v in row[nz:]], dtype=float)
    return AdjointPath(np.array(ts[::-1]), np.array(lams[::-1]).reshape(-1, nz), list(model.state_names),
                       jumps[::-1])
