"""A training problem (what is fitted, to which targets, from where) and the pictures of a finished run.

:func:`make_problem` turns the user's model and the choice of targets into the model that is trained:

* no targets: the model's own loss, as written;
* ``truth``: observations generated from the model at the truth θ* (:func:`~symode.train.data.truth_targets`);
* ``data``: observations read from a CSV/NPZ file (:func:`~symode.train.data.read_targets`).

:func:`figures` draws a run: the loss per route, the fitted trajectories against the true ones (or, for the
model's own loss, the trajectory before and after training) with the observations, and the adjoint λ(t) of
the trained model at the start parameters (the gradient that drove the first step), with its jumps.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from ..errors import SpecError
from ..model import Model
from .data import Targets, fit_model, read_targets, truth_targets
from .loop import TrainResult
from .objective import with_theta

__all__ = ["Problem", "make_problem", "figures"]


@dataclass
class Problem:
    """``model`` is what is trained; ``base`` the user's model; ``targets`` the observations (None: the model's
    own loss); ``truth`` the generating values by name (None where unknown); ``source`` the model whose
    trajectories generated the targets (the base at θ*, or a known ODE)."""

    base: Model
    model: Model
    targets: Targets | None = None
    truth: dict | None = None
    source: Model | None = None

    @property
    def description(self) -> str:
        return self.targets.source if self.targets is not None else "the model's own loss"


def make_problem(model: Model, *, truth: Mapping | None = None, data: str | None = None, times: Sequence | None = None,
                 initial: Sequence | None = None, noise: float = 0.0, seed: int = 0) -> Problem:
    """The training problem for ``model`` (module docstring).  ``truth`` maps names to exact values (an empty
    mapping means the model's nominal values); ``times``/``initial``/``noise`` shape generated targets; ``seed``
    seeds the noise."""
    if truth is not None and data is not None:
        raise SpecError("give either --truth (generated targets) or --data (a file), not both")
    if data is None and truth is None:
        if times is not None or initial is not None or noise:
            raise SpecError("--times, --z0 and --noise describe generated targets: give --truth as well")
        return Problem(model, model)
    if data is not None:
        if times is not None or initial is not None or noise:
            raise SpecError("--times, --z0 and --noise describe generated targets; a --data file brings its own")
        targets = read_targets(data, model)
        return Problem(model, fit_model(model, targets), targets)
    rng = np.random.default_rng(seed)
    targets = truth_targets(model, truth, times, initial=initial, noise=noise, rng=rng)
    source = model.with_values(dict(truth))
    values = {p.name: source.param_values[p] for p in model.params}
    return Problem(model, fit_model(model, targets), targets, {k: float(v) for k, v in values.items()}, source)


def _stacked(path: np.ndarray, n: int, nz: int) -> np.ndarray:
    """[T × n·nz] (the fitting model's stacked state) -> [n × T × nz]."""
    return path.reshape(path.shape[0], n, nz).transpose(1, 0, 2)


def figures(problem: Problem, runs: Mapping[str, TrainResult], *, adjoint: bool = True) -> dict:
    """name -> Figure for a finished training (module docstring); the trajectories and λ(t) come from the first
    run in ``runs``."""
    from .. import plots
    from .paths import adjoint_path, dense_times, state_path
    if not runs:
        raise SpecError("no training runs to draw")
    first = next(iter(runs.values()))
    out = {"loss": plots.loss_figure({label: r.loss for label, r in runs.items()},
                                     title=f"training loss: {problem.model.name}")}
    m, base = problem.model, problem.base
    nz = base.nz
    n = problem.targets.count if problem.targets is not None else 1
    grid = dense_times(m)
    t, fitted = state_path(with_theta(m, first.theta[-1]), grid)
    fitted = _stacked(fitted, n, nz)
    obs_t = obs = None
    if problem.targets is not None:
        obs_t, obs = problem.targets.as_arrays()
    if problem.source is not None:
        ref = np.stack([state_path(problem.source, grid, z0=x)[1] for x in problem.targets.initial])
        label = "fitted vs true trajectories"
    elif problem.targets is None:
        ref = _stacked(state_path(with_theta(m, first.theta[0]), grid)[1], n, nz)
        label = "trajectory after training (solid) and before (dashed)"
    else:
        ref, label = None, "fitted trajectories and the observations"
    out["trajectories"] = plots.trajectory_figure(t, fitted, base.state_names, reference=ref, obs_times=obs_t,
                                                  observations=obs, title=label)
    if adjoint:
        path = adjoint_path(with_theta(m, first.theta[0]))
        out["adjoint"] = plots.adjoint_figure(path, title="adjoint λ(t) at the start parameters")
    return out
