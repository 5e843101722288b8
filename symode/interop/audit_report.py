"""The audit as Markdown: one table per model (a row per configuration, a column per quantity group), then the
findings in words (faults, fixed-step adjoint mismatches, unstable back-solves, measured t0/t1 conventions).

A cell shows the worst relative error of its group against the oracle, the scaled error (the error in units of
the configuration's promise, see :mod:`symode.interop.audit`) and the verdict, e.g. ``3.1e-07 (x3.1) ok``.
"""
from __future__ import annotations

import math

__all__ = ["markdown", "findings"]

GROUPS = (("loss", "loss"), ("dL/dθ", "grad["), ("dL/dz0", "grad_z0"), ("dL/dt0", "grad_t0"), ("dL/dt1", "grad_t1"))
_RANK = {"ok": 0, "loose": 1, "n/a": 2, "FAIL": 3, "ERROR": 4}


def _setting(run: dict) -> str:
    return f"{run['steps']} steps" if run["steps"] is not None else f"rtol={run['rtol']:g}, atol={run['atol']:g}"


def _cell(rows: list) -> str:
    if not rows:
        return "-"
    worst = max(rows, key=lambda q: (_RANK[q["verdict"]], q.get("scaled_error", 0.0)))
    if worst["verdict"] in ("n/a", "ERROR"):
        return worst["verdict"]
    text = f"{worst['rel_error']:.1e} (x{worst['scaled_error']:.2g}) {worst['verdict']}"
    if "ratio" in worst and worst["verdict"] != "ok":
        text += f", ratio {worst['ratio']:+.3g}"
    if len(rows) > 1:
        text += f" [{worst['quantity']}]"
    return text


def _route_label(report, route: str) -> str:
    from .audit import LIBRARIES
    return f"{route} ({LIBRARIES[report.library].routes[route][0]})"


def markdown(report) -> str:
    lines = [f"# symode audit of {report.library}", "",
             "Versions: " + ", ".join(f"{k} {v}" for k, v in report.versions.items()), "",
             "Each cell: the worst relative error of the group against the oracle, the scaled error (in units of "
             "the requested rtol for adaptive solvers, of the scheme's own truncation error for fixed steps; "
             "relative to the scale of the loss / of the gradient) and the verdict: ok (<= 10), loose (<= 1000), "
             "FAIL, n/a (not computed by the library), ERROR (the configuration failed).", ""]
    for m in report.models:
        lines += [f"## {m['model']} (oracle at {m['oracle_digits']} digits)", "",
                  "| route | solver | setting | " + " | ".join(g for g, _ in GROUPS) +
                  " | discrete gradient | back-solve z(t0) | s |",
                  "|---|---|---|" + "---|" * len(GROUPS) + "---|---|---|"]
        for run in m["runs"]:
            if "error" in run:
                cells = [f"ERROR: {run['error'][:160]}"] + [""] * (len(GROUPS) - 1)
            else:
                cells = [_cell([q for q in run["quantities"] if q["quantity"].startswith(prefix)])
                         for _, prefix in GROUPS]
            disc = "-"
            if "discrete_difference" in run:
                disc = (f"{'matches' if run['matches_discrete'] else 'MISMATCH'} "
                        f"({run['discrete_difference']:.1e})")
            b = run.get("backsolve_z0_error")
            back = "-" if b is None else (b if isinstance(b, str) else
                                          f"{b:.1e}{' UNSTABLE' if run.get('backsolve_unstable') else ''}")
            lines.append(f"| {_route_label(report, run['route'])} | {run['solver']} | {_setting(run)} | "
                         + " | ".join(cells) + f" | {disc} | {back} | {run['seconds']:.2f} |")
        lines.append("")
    lines += ["## Findings", ""] + [f"- {f}" for f in findings(report)] + [""]
    return "\n".join(lines)


def findings(report) -> list[str]:
    """The audit's findings in words, derived from the numbers (nothing is asserted that was not measured)."""
    out = []
    missing: dict = {}  # (route, reason) -> [quantities, configurations, models]
    for m in report.models:
        for run in m["runs"]:
            where = f"{m['model']}: {run['route']} {run['solver']} {_setting(run)}"
            if "error" in run:
                out.append(f"{where}: the configuration failed: {run['error'][:200]}")
                continue
            bad = [q for q in run["quantities"] if q["verdict"] == "FAIL"]
            if bad:
                parts = []
                for q in bad:
                    ratio = f", ratio to symode {q['ratio']:+.4g}" if "ratio" in q else ""
                    parts.append(f"{q['quantity']} off by {q['rel_error']:.2g} relative "
                                 f"({q['scaled_error']:.3g}x the promise{ratio})" + _fd_words(q))
                out.append(f"{where}: FAIL " + "; ".join(parts))
            na = [q for q in run["quantities"] if q["verdict"] == "n/a"]
            if na:  # reported once per route and reason, below
                entry = missing.setdefault((run["route"], na[0].get("note", "not computed")), [set(), 0, set()])
                entry[0].update(q["quantity"] for q in na)
                entry[1] += 1
                entry[2].add(m["model"])
            if run.get("matches_discrete") is False:
                from .audit import backsolves
                kind = ("a continuous adjoint with fixed steps is not the gradient of the computed loss"
                        if backsolves(report.library, run["route"]) else
                        "backpropagation should reproduce the discrete gradient: investigate")
                out.append(f"{where}: fixed-step MISMATCH with the exact discrete gradient, "
                           f"{run['discrete_difference']:.2g} relative ({kind})")
            if run.get("backsolve_unstable"):
                out.append(f"{where}: back-solve unstable (z(t0) recovered to {run['backsolve_z0_error']})")
    for (route, note), (qs, count, models) in missing.items():
        out.append(f"{route}: {', '.join(sorted(qs))} not computed in any of its {count} configurations "
                   f"({', '.join(sorted(models))}): {note}")
    out += _time_conventions(report)
    return out or ["no finding: every quantity within 10x of what was asked"]


def _fd_words(q: dict) -> str:
    ev = q.get("fd_evidence")
    if not ev:
        return ""
    if "error" in ev:
        return f" [finite differences of the library's loss failed: {ev['error']}]"
    verdict = ("the library's gradient is not the derivative of its own loss; symode is right"
               if ev["fd_vs_oracle"] < 0.1 * q["rel_error"] else
               "the library's loss itself moves that way: its loss, not only its gradient, is off"
               if ev["fd_vs_library"] < 0.1 * q["rel_error"] else "inconclusive")
    return (f" [central differences of the library's own loss give {ev['fd']:.10g} (±{ev['fd_error_estimate']:.1g}): "
            f"{ev['fd_vs_oracle']:.1g} from the oracle, {ev['fd_vs_library']:.1g} from the library -- {verdict}]")


def _time_conventions(report) -> list[str]:
    """The measured t0/t1 conventions: the ratio library/symode of dL/dt0 and dL/dt1 over configurations whose
    other quantities are ok (a ratio near +1 means the same sign convention as symode's)."""
    out = []
    for q in ("grad_t0", "grad_t1"):
        ratios = [row["ratio"] for m in report.models for run in m["runs"] if "error" not in run
                  for row in run["quantities"] if row["quantity"] == q and "ratio" in row
                  and row["verdict"] in ("ok", "loose")]
        if ratios:
            lo, hi = min(ratios), max(ratios)
            sign = "the same sign convention as symode" if lo > 0 else "sign conventions that differ"
            out.append(f"{'dL/dt0' if q == 'grad_t0' else 'dL/dt1'}: library / symode ratio from {lo:.6g} to "
                       f"{hi:.6g} over {len(ratios)} configurations that pass ({sign}; symode: "
                       + ("dL/dt0 = -λ(t0)ᵀ f(z0, t0) - r(z0, t0))" if q == "grad_t0" else
                          "dL/dt1 = ∂ℓ/∂z f(z(t1), t1) + r(z(t1), t1))"))
    return out


def _finite(x) -> bool:
    return isinstance(x, float) and math.isfinite(x)
