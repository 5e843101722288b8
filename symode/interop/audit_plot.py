"""``symode audit --plot FILE``: error against the requested tolerance, one panel per model, one line per
(route, solver) of the adaptive configurations (extra ``symode[plot]``: matplotlib, drawn off-screen).

y is the worst relative error over every quantity the library computed (loss, dL/dθ, dL/dz0, dL/dt0, dL/dt1)
against the oracle; the dashed diagonal is error = requested rtol, the dotted one 1000 x rtol (the "loose"
limit).  Points above the dotted line are FAIL verdicts.  Fixed-step configurations have no requested
tolerance and are not drawn.  The file format follows the extension (.png or .svg).

Three steps, as everywhere in symode: :func:`audit_figure` draws (a ``matplotlib.figure.Figure`` without pyplot:
no global state), :func:`render` produces the bytes (no date in the metadata: the same report gives the same
bytes), :func:`plot_audit` writes them (a temporary file in the target's directory, then a rename: a reader never
sees half a picture).
"""
from __future__ import annotations

import io
import os
import secrets
from pathlib import Path

from ..errors import SpecError
from . import require

__all__ = ["plot_audit", "audit_figure", "render", "series", "check_plot_path", "FORMATS"]

#: extension -> (matplotlib format, metadata that would otherwise carry a date or a version)
FORMATS = {".png": ("png", {"Software": None}), ".svg": ("svg", {"Date": None, "Creator": None})}


def check_plot_path(path) -> str:
    """The format of ``path`` from its extension (SpecError for any other), checked before any work."""
    ext = Path(path).suffix.lower()
    if ext not in FORMATS:
        raise SpecError(f"--plot {path}: give a file name ending in {' or '.join(FORMATS)}")
    require("matplotlib", "plot", "symode audit --plot")
    return FORMATS[ext][0]


def series(model_entry: dict) -> dict:
    """{"route solver": [(requested rtol, worst relative error), ...] sorted by rtol} for one model of a report
    (adaptive configurations that ran; the numbers the figure draws)."""
    out: dict = {}
    for run in model_entry["runs"]:
        if run["rtol"] is None or "error" in run:
            continue
        errs = [q["rel_error"] for q in run["quantities"] if "rel_error" in q]
        if errs:
            out.setdefault(f"{run['route']} {run['solver']}", []).append((run["rtol"], max(errs)))
    return {k: sorted(v) for k, v in sorted(out.items())}


def audit_figure(report):
    """The figure of ``report`` (an :class:`~symode.interop.audit.AuditReport`); SpecError if nothing to draw."""
    require("matplotlib", "plot", "symode audit --plot")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    models = report.models
    cols = min(len(models), 2)
    rows = (len(models) + cols - 1) // cols
    fig = Figure(figsize=(6.5 * cols, 4.5 * rows), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False)
    drawn = False
    for ax, m in zip(axes.flat, models):
        for label, pts in series(m).items():
            ax.loglog([p[0] for p in pts], [max(p[1], 1e-17) for p in pts], marker="o", label=label)
            drawn = True
        xs = sorted({r["rtol"] for r in m["runs"] if r["rtol"] is not None})
        if xs:
            ax.loglog(xs, xs, "k--", linewidth=0.8, label="error = rtol")
            ax.loglog(xs, [1000 * x for x in xs], "k:", linewidth=0.8, label="1000 x rtol")
        ax.set_title(m["model"])
        ax.set_xlabel("requested rtol (atol = rtol)")
        ax.set_ylabel("worst relative error vs oracle")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(models):]:
        ax.axis("off")
    if not drawn:
        raise SpecError("--plot: no adaptive configuration to draw (give an adaptive solver and --rtol values)")
    fig.suptitle(f"symode audit of {report.library}")
    return fig


def render(fig, fmt: str = "png") -> bytes:
    """The figure's bytes in ``fmt`` (png or svg), without a date in the metadata."""
    meta = dict(FORMATS[f".{fmt}"][1])
    buf = io.BytesIO()
    if fmt == "svg":
        import matplotlib
        with matplotlib.rc_context({"svg.hashsalt": "symode"}):  # element ids from a fixed salt, not a random one
            fig.savefig(buf, format=fmt, metadata=meta)
    else:
        fig.savefig(buf, format=fmt, metadata=meta)
    return buf.getvalue()


def plot_audit(report, path) -> str:
    """Draw ``report`` and write it to ``path`` (see the module docstring); returns the path."""
    fmt = check_plot_path(path)
    data = render(audit_figure(report), fmt)
    target = Path(path)
    tmp = target.parent / f".{target.name}.{os.getpid()}.{secrets.token_hex(6)}.tmp"
    try:
        with open(tmp, "xb") as fh:  # a fresh name, created with the user's umask
            fh.write(data)
        os.replace(tmp, target)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise SpecError(f"--plot {path}: cannot write the figure ({exc.strerror or exc})") from None
    return str(path)
