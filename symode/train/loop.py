"""The training loop and its result (``symode train --json`` prints :meth:`TrainResult.to_dict`).

``iterations`` = K optimiser steps: the objective is evaluated at θ_0, ..., θ_K (K + 1 evaluations), so the
history holds K + 1 parameter vectors, losses and gradient norms; entry k is the state *before* step k + 1 and
entry K the final one.

JSON object (a public contract; keys in this order, schema ``symode/schemas/train.schema.json``)::

    {"model": "linear-fit", "method": "discrete", "options": {"scheme": "rk4", "steps": 100},
     "optimizer": "gd", "lr": 0.5, "iterations": 200, "seed": 0,
     "params": ["a", "b"],
     "theta": [[0.0, 0.0], ...],          # K + 1 rows, one value per parameter
     "loss": [...], "grad_norm": [...],   # K + 1 values each (grad_norm: Euclidean norm of dL/dθ)
     "final": {"a": ..., "b": ...},       # θ_K by name
     "targets": "generated from ...",     # where the observations came from (absent for the model's own loss)
     "truth": {"a": ..., "b": ...},       # the generating parameters, when known
     "compiled": true}                    # the gradient came from the compiled one-sweep C (absent for linreg)

Numbers are JSON numbers (float64, round-trip ``repr``).
"""
from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from ..errors import IntegrationError
from .optim import Optimizer

__all__ = ["TrainResult", "TrainingDiverged", "run"]


class TrainingDiverged(IntegrationError):
    """Training stopped at iteration ``iteration`` because the solve or the loss failed there; ``result`` holds
    the history up to the last good iterate."""

    def __init__(self, message: str, iteration: int, result: "TrainResult", time=None):
        super().__init__(message, time=time)
        self.iteration, self.result = iteration, result


@dataclass
class TrainResult:
    """One training run's history (module docstring)."""

    model: str
    method: str
    options: dict
    optimizer: str
    lr: float
    params: list
    theta: np.ndarray       # (K + 1) × nθ
    loss: np.ndarray        # K + 1
    grad_norm: np.ndarray   # K + 1
    seed: int | None = None
    targets: str | None = None
    truth: dict | None = None
    seconds: float = 0.0
    #: True when the gradient came from the compiled one-sweep C (the default discrete route), False from the
    #: in-memory graph or another route's own computation, None where it does not apply (linreg)
    compiled: bool | None = None
    extra: dict = field(default_factory=dict)

    @property
    def iterations(self) -> int:
        return len(self.loss) - 1

    @property
    def final(self) -> dict:
        return dict(zip(self.params, (float(v) for v in self.theta[-1])))

    def to_dict(self) -> dict:
        d = {"model": self.model, "method": self.method, "options": dict(self.options),
             "optimizer": self.optimizer, "lr": self.lr, "iterations": self.iterations, "seed": self.seed,
             "params": list(self.params), "theta": [[float(v) for v in row] for row in self.theta],
             "loss": [float(v) for v in self.loss], "grad_norm": [float(v) for v in self.grad_norm],
             "final": self.final}
        if self.targets is not None:
            d["targets"] = self.targets
        if self.truth is not None:
            d["truth"] = {k: float(v) for k, v in self.truth.items()}
        if self.compiled is not None:
            d["compiled"] = self.compiled
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    def to_table(self) -> str:
        """A short text summary: the run, the loss from start to end, and the final parameters."""
        w = max(len(p) for p in self.params) + 2 if self.params else 2
        opts = [f"{k} {v}" for k, v in self.options.items()] + (["compiled C"] if self.compiled else [])
        lines = [f"model      {self.model}", f"route      {self.method}" + (f" ({', '.join(opts)})" if opts else ""),
                 f"optimizer  {self.optimizer}, learning rate {self.lr:g}, {self.iterations} iterations"
                 + (f", seed {self.seed}" if self.seed is not None else "")]
        if self.targets:
            lines.append(f"targets    {self.targets}")
        fall = self.loss[0] / self.loss[-1] if self.loss[-1] > 0 else math.inf
        lines += [f"loss       {self.loss[0]:.6g} -> {self.loss[-1]:.6g} (fell {fall:.3g}x)",
                  f"|dL/dθ|    {self.grad_norm[0]:.3g} -> {self.grad_norm[-1]:.3g}", ""]
        head = f"{'parameter'.ljust(w)}{'start':>14}{'final':>14}"
        if self.truth:
            head += f"{'truth':>14}{'|final-truth|':>16}"
        lines.append(head)
        for j, p in enumerate(self.params):
            row = f"{p.ljust(w)}{self.theta[0, j]:>14.6g}{self.theta[-1, j]:>14.6g}"
            if self.truth and p in self.truth:
                t = float(self.truth[p])
                row += f"{t:>14.6g}{abs(self.theta[-1, j] - t):>16.3g}"
            lines.append(row)
        return "\n".join(lines) + "\n"


def _progress_bar(total: int, desc: str, show: bool | None):
    """A tqdm bar on stderr: shown on terminals or with SYMODE_PROGRESS=1, never with SYMODE_QUIET=1 (the
    oracle's progress rules), or as ``show`` says."""
    from ..oracle.engine import _progress_wanted, _quiet_env
    if show is None:
        show = not _quiet_env() and _progress_wanted(None)
    if not show:
        return None
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, file=sys.stderr, unit="it", leave=True, dynamic_ncols=True)


def _norm(g) -> float:
    """The Euclidean norm of ``g``, scaled so that finite components never overflow the sum of squares (inf only
    where the norm itself exceeds the float64 range; NaN for a non-finite component)."""
    g = np.asarray(g, dtype=float)
    if not np.all(np.isfinite(g)):
        return math.nan
    top = float(np.max(np.abs(g))) if g.size else 0.0
    return 0.0 if top == 0 else top * float(np.sqrt(np.sum((g / top) ** 2)))


def run(objective, theta0, optimizer: Optimizer, iterations: int, *, progress: bool | None = None,
        name: str | None = None) -> TrainResult:
    """K = ``iterations`` steps of ``optimizer`` on ``objective`` from ``theta0``.

    ``objective`` is any callable θ -> (L, dL/dθ) with attributes ``name`` (the model), ``method`` (the
    gradient's route) and ``param_names`` (:class:`~symode.train.objective.Objective`, or the linear
    regression's objectives in :mod:`symode.train.regression`)."""
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 0:
        from ..errors import SpecError
        raise SpecError(f"iterations must be a non-negative integer, got {iterations!r}")
    theta = np.array(theta0, dtype=float).reshape(-1)
    n = theta.size
    thetas = np.empty((iterations + 1, n))
    losses = np.empty(iterations + 1)
    norms = np.empty(iterations + 1)
    bar = _progress_bar(iterations, name or objective.name, progress)
    start = time.perf_counter()

    def result(upto: int) -> TrainResult:
        return TrainResult(model=objective.name, method=objective.method,
                           options=dict(getattr(objective, "options", {})), optimizer=optimizer.name,
                           lr=optimizer.lr, params=list(objective.param_names), theta=thetas[:upto],
                           loss=losses[:upto], grad_norm=norms[:upto], seconds=time.perf_counter() - start,
                           compiled=getattr(objective, "compiled", None))
    try:
        for k in range(iterations + 1):
            try:
                L, g = objective(theta)
            except IntegrationError as exc:
                raise TrainingDiverged(f"training stopped at iteration {k} (parameters "
                                       f"{', '.join(f'{p}={v:.6g}' for p, v in zip(objective.param_names, theta))}): "
                                       f"{exc}; lower the learning rate", k, result(k), exc.time) from None
            norm = _norm(g)
            if not (math.isfinite(L) and math.isfinite(norm)):
                raise TrainingDiverged(f"training diverged at iteration {k}: the loss or gradient is not finite; "
                                       f"lower the learning rate", k, result(k))
            thetas[k], losses[k], norms[k] = theta, L, norm
            if k == iterations:
                break
            theta = optimizer.step(theta, g)
            if bar is not None:
                bar.update(1)
                bar.set_postfix_str(f"loss {L:.3e}, |g| {norms[k]:.2e}", refresh=False)
    finally:
        if bar is not None:
            bar.close()
    return result(iterations + 1)
