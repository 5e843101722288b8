"""Pictures (PNG, matplotlib -- the optional extra ``symode[plot]``): drawing only.

Every function takes the numbers a run produced and returns a ``matplotlib.figure.Figure`` (no pyplot, no global
state: safe in libraries and threads); :func:`render_png` turns a figure into PNG bytes and :func:`write_pngs`
writes several into a directory (drawing, rendering and writing are separate steps).  PNG metadata carries no
date, so the same data give the same bytes.

- :func:`loss_figure` -- training loss per iteration, one line per route (log scale);
- :func:`trajectory_figure` -- fitted vs true trajectories, with the observations;
- :func:`adjoint_figure` -- λ(t) over [t0, t1] with its jumps at the observation times;
- :func:`deviation_figure` -- how far two routes' parameter trajectories are apart vs the allowance;
- :func:`convergence_figure` -- error vs step size per route on log-log axes, with the scheme's order drawn;
- :func:`tolerance_figure` -- error vs requested tolerance (for audits of other libraries).
"""
from __future__ import annotations

import io
import os
import secrets
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from .errors import SymodeError

__all__ = ["PlotError", "available", "loss_figure", "trajectory_figure", "adjoint_figure", "deviation_figure",
           "convergence_figure", "tolerance_figure", "render_png", "write_pngs", "INSTALL_HINT"]

INSTALL_HINT = "pip install 'symode[plot]' (matplotlib)"


class PlotError(SymodeError):
    """A picture cannot be drawn (matplotlib missing, no data) or written."""


def available() -> bool:
    """Whether matplotlib can be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _figure(width: float = 7.0, height: float = 4.5, rows: int = 1):
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise PlotError(f"pictures need matplotlib: {INSTALL_HINT}") from None
    fig = Figure(figsize=(width, height * rows), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(rows, 1, i + 1) for i in range(rows)]
    return fig, axes


def _positive(y) -> np.ndarray:
    """|y| for a logarithmic axis; an exact 0 (no error at all, e.g. two routes before their first step) becomes
    NaN, a gap in the line, instead of stretching the axis down to the smallest float."""
    a = np.abs(np.asarray(y, dtype=float))
    return np.where(a > 0, a, np.nan)


def _finish(ax, xlabel: str, ylabel: str, title: str, *, log: bool = False, legend: dict | None = None) -> None:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both" if log else "major", alpha=0.3)
    ax.legend(fontsize="small", **(legend or {}))


def loss_figure(runs: Mapping[str, Sequence[float]], title: str = "training loss"):
    """One line per route: loss against iteration 0..K (one point per evaluated iterate), log scale."""
    if not runs:
        raise PlotError("no training runs to draw")
    fig, (ax,) = _figure()
    for label, loss in runs.items():
        loss = np.asarray(loss, dtype=float)
        ax.semilogy(np.arange(loss.size), _positive(loss), label=label, marker="." if loss.size <= 60 else None)
    _finish(ax, "iteration", "loss", title, log=True)
    return fig


def trajectory_figure(times, fitted, state_names: Sequence[str], *, reference=None, obs_times=None,
                      observations=None, title: str = "fitted vs true trajectories"):
    """One panel per state: ``fitted`` [n × T × nz] (solid), ``reference`` (the truth, dashed) at ``times`` [T],
    and the ``observations`` [n × m × nz] at ``obs_times`` [m] (dots), trajectory k in colour k."""
    fitted = np.asarray(fitted, dtype=float)
    if fitted.ndim == 2:
        fitted = fitted[None]
    n, _, nz = fitted.shape
    fig, axes = _figure(height=2.6, rows=nz)
    colours = [f"C{k % 10}" for k in range(n)]
    for j, ax in enumerate(axes):
        for k in range(n):
            ax.plot(times, fitted[k, :, j], color=colours[k], label="fitted" if k == 0 else None)
            if reference is not None:
                ax.plot(times, np.asarray(reference, dtype=float).reshape(n, -1, nz)[k, :, j], color=colours[k],
                        linestyle="--", label="true" if k == 0 else None)
            if observations is not None:
                ax.plot(obs_times, np.asarray(observations, dtype=float).reshape(n, -1, nz)[k, :, j], "o",
                        color=colours[k], markersize=4, label="observed" if k == 0 else None)
        ax.set_ylabel(state_names[j])
        ax.grid(True, alpha=0.3)
    axes[0].set_title(title + (f" ({n} trajectories)" if n > 1 else ""))
    axes[0].legend(fontsize="small")
    axes[-1].set_xlabel("t")
    return fig


def adjoint_figure(path, title: str = "adjoint λ(t) = ∂L/∂z(t)"):
    """λ_j(t) from an :class:`~symode.train.paths.AdjointPath`, one line per state (at most 10), the jumps at
    observation times marked by dotted vertical lines."""
    lam = np.asarray(path.lam, dtype=float)
    fig, (ax,) = _figure()
    for j in range(min(lam.shape[1], 10)):
        ax.plot(path.times, lam[:, j], label=f"λ[{path.states[j]}]")
    for tau, *_ in path.jumps:
        ax.axvline(tau, color="grey", linestyle=":", linewidth=1)
    _finish(ax, "t", "λ", title + (" (dotted: observation times)" if path.jumps else ""), legend={"ncol": 2})
    return fig


def deviation_figure(series: Mapping[str, tuple], title: str = "parameter trajectories: distance between routes"):
    """For each label, (deviation [K+1], allowance [K+1]): max_j |θ_A,kj - θ_B,kj| and the allowance at that
    component, against the iteration k (log scale); the allowance dashed in the same colour."""
    fig, (ax,) = _figure()
    for i, (label, (dev, allow)) in enumerate(series.items()):
        dev = np.asarray(dev, dtype=float)
        ax.semilogy(np.arange(dev.size), _positive(dev), color=f"C{i}", marker=".", label=label)
        ax.semilogy(np.arange(dev.size), _positive(allow), color=f"C{i}", linestyle="--",
                    label=f"allowance ({label})")
    _finish(ax, "iteration", "max |Δθ|", title, log=True)
    return fig


def convergence_figure(data: Mapping[str, tuple], order: int, title: str = "error vs step size"):
    """For each route, (h [n], relative error [n]) on log-log axes, and the line C·h^order through the middle
    point of the first route (the order the scheme should show)."""
    if not data:
        raise PlotError("no routes to draw")
    fig, (ax,) = _figure()
    for label, (h, err) in data.items():
        ax.loglog(h, _positive(err), marker="o", label=label)
    h0, e0 = (np.asarray(v, dtype=float) for v in next(iter(data.values())))
    mid = len(h0) // 2
    hs = np.array([h0.min(), h0.max()])
    ax.loglog(hs, _positive(e0[mid]) * (hs / h0[mid]) ** order, "k--", linewidth=1, label=f"order {order}")
    _finish(ax, "step size h", "relative error vs the oracle", title, log=True)
    return fig


def tolerance_figure(data: Mapping[str, tuple], title: str = "error vs requested tolerance"):
    """For each configuration, (requested tolerance [n], measured relative error [n]) on log-log axes, with the
    diagonal error = tolerance."""
    if not data:
        raise PlotError("no configurations to draw")
    fig, (ax,) = _figure()
    lo, hi = np.inf, 0.0
    for label, (tol, err) in data.items():
        tol = np.asarray(tol, dtype=float)
        ax.loglog(tol, _positive(err), marker="o", label=label)
        lo, hi = min(lo, tol.min()), max(hi, tol.max())
    ax.loglog([lo, hi], [lo, hi], "k:", linewidth=1, label="error = tolerance")
    _finish(ax, "requested tolerance", "relative error vs the oracle", title, log=True)
    return fig


def render_png(fig) -> bytes:
    """The figure as PNG bytes (no date in the metadata)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def write_pngs(figures: Mapping[str, object], directory) -> list[Path]:
    """Render every figure, then write ``<directory>/<name>.png`` for each (created if missing; each file
    written to a temporary name and renamed, so a reader never sees half a picture).  Returns the paths."""
    rendered = {name: render_png(fig) for name, fig in figures.items()}
    out = Path(directory)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PlotError(f"--plot {directory}: cannot create the directory ({exc.strerror or exc})") from None
    paths = []
    for name, data in rendered.items():
        target = out / f"{name}.png"
        tmp = out / f".{name}.{os.getpid()}.{secrets.token_hex(8)}.tmp"
        try:
            with open(tmp, "xb") as fh:  # a fresh name, created with the user's umask
                fh.write(data)
            os.replace(tmp, target)
        except OSError as exc:
            raise PlotError(f"--plot {directory}: cannot write {target.name} ({exc.strerror or exc})") from None
        paths.append(target)
    return paths
