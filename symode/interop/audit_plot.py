"""``symode audit --plot FILE``: error against the requested tolerance, one panel per model, one line per
(route, solver) of the adaptive configurations (extra ``symode[plot]``: matplotlib, drawn off-screen).

y is the worst relative error over every quantity the library computed (loss, dL/dθ, dL/dz0, dL/dt0, dL/dt1)
against the oracle; the dashed diagonal is error = requested rtol, the dotted one 1000 x rtol (the "loose"
limit).  Points above the dotted line are FAIL verdicts.  Fixed-step configurations have no requested
tolerance and are not drawn.  The file format follows the extension (.png, .svg, .pdf).
"""
from __future__ import annotations

import os
import secrets

from ..errors import SpecError
from . import require

__all__ = ["plot_audit"]


def plot_audit(report, path: str) -> str:
    """Draw ``report`` (an :class:`~symode.interop.audit.AuditReport`) to ``path``; returns the path."""
    matplotlib = require("matplotlib", "plot", "symode audit --plot")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    models = report.models
    cols = min(len(models), 2)
    rows = (len(models) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(6.5 * cols, 4.5 * rows), squeeze=False)
    drawn = False
    for ax, m in zip(axes.flat, models):
        series: dict = {}
        for run in m["runs"]:
            if run["rtol"] is None or "error" in run:
                continue
            errs = [q["rel_error"] for q in run["quantities"] if "rel_error" in q]
            if errs:
                series.setdefault(f"{run['route']} {run['solver']}", []).append((run["rtol"], max(errs)))
        for label, pts in sorted(series.items()):
            pts.sort()
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
        plt.close(fig)
        raise SpecError("--plot: no adaptive configuration to draw (give an adaptive solver and --rtol values)")
    fig.suptitle(f"symode audit of {report.library}")
    fig.tight_layout()
    # drawn to a fresh hidden name beside the target (same suffix: it picks the format) and renamed into place,
    # so a reader, or a kill mid-write, never leaves half a picture at ``path``
    target = os.path.abspath(path)
    stem, suffix = os.path.splitext(os.path.basename(target))
    tmp = os.path.join(os.path.dirname(target), f".{stem}.{os.getpid()}.{secrets.token_hex(8)}.tmp{suffix}")
    try:
        fig.savefig(tmp)
        os.replace(tmp, target)
    except (OSError, ValueError) as exc:
        raise SpecError(f"--plot {path}: cannot write the figure ({exc})") from None
    finally:
        plt.close(fig)
        if os.path.lexists(tmp):
            os.unlink(tmp)
    return path
