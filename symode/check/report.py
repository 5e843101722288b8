"""``symode check``: every gradient route of a model against the oracle, with stated tolerances.

Verdicts per route:
- PASS: every component within the allowed error;
- FAIL: some component outside it (the worst is named) -- the route is wrong or unstable here;
- COARSE: within its own discretisation error estimate, but that estimate is larger than ``max_rtol``
  relative, so agreement proves little: rerun with more steps;
- a route whose own error estimate exceeds ``NOT_CONVERGING_RTOL`` relative is a FAIL ("cannot be checked":
  not converging, or far too coarse).

Which routes: every registered route (:mod:`symode.registry`) that is not itself a reference (exact, high
precision) and can run here; a route whose requirements are not installed is listed as not run.  Allowed
errors (from :mod:`symode.check.tolerances`, printed in the report) follow from each route's declared accuracy
(:func:`route_tolerance`):
- fixed-step routes: Richardson estimate of the route's own discretisation error from ``steps`` and
  ``2*steps`` (an estimate per component, times a safety factor); a back-solve adjoint (its result carries
  ``stats["backsolve_z_error"]``) adds the error propagated from its measured state reconstruction error
  (:func:`symode.check.tolerances.backsolve_tolerance`);
- a route that declares ``agrees_with`` another (forward sensitivity with the discrete adjoint): float64
  reordering only (same arithmetic);
- adaptive routes (CVODES): their local tolerances times the global-error factor, plus their measured
  difference from a rerun at 100x tighter tolerances (the factor is typical, not a bound).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from ..casadi.schemes import get_scheme
from ..errors import SymodeError
from ..methods import compute
from ..model import Model
from ..registry import Route, checkable_routes, get_route
from .compare import Comparison, compare
from .tolerances import (COMPARISON_TOLERANCES, SOLVER_REFINEMENT, Tolerance, backsolve_tolerance,
                         fixed_step_tolerance, solver_tolerance)

#: The route every other is checked against.
REFERENCE = "oracle"
#: Largest relative discretisation error estimate for which an agreement is still called PASS.
DEFAULT_MAX_RTOL = 1e-6
#: A route whose own error estimate exceeds this (relative) is reported as FAIL: it is not converging.
NOT_CONVERGING_RTOL = 1e-2


@dataclass
class RouteCheck:
    method: str
    verdict: str
    detail: str
    tolerance: str = ""
    comparison: Comparison | None = None
    warning: str = ""
    tolerance_short: str = ""


@dataclass
class CheckReport:
    model: str
    reference: str
    rows: list = field(default_factory=list)
    #: routes not run because something they need is not installed: (name, what is missing)
    not_run: list = field(default_factory=list)
    #: routes run only when named in --methods (Route.default_check False): their names
    not_by_default: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.verdict != "FAIL" for r in self.rows)

    def to_markdown(self) -> str:
        out = [f"# symode check: `{self.model}`", "", f"Reference: {self.reference}", "",
               "| route | verdict | worst component | allowed error |", "|---|---|---|---|"]
        for r in self.rows:
            out.append(f"| {r.method} | **{r.verdict}** | {r.detail} | {r.tolerance_short} |")
        reasons = [f"- {r.method}: {r.tolerance}" for r in self.rows if r.tolerance]
        if reasons:
            out += ["", "Tolerances:", *reasons]
        warnings = [f"- {r.method}: {r.warning}" for r in self.rows if r.warning]
        if warnings:
            out += ["", "Warnings:", *warnings]
        if self.not_run:
            out += ["", "Not run (not installed here):", *[f"- {n}: {why}" for n, why in self.not_run]]
        if self.not_by_default:
            out += ["", f"Not run by default (adapters to other libraries; name them in --methods, or see `symode "
                        f"audit`): {', '.join(self.not_by_default)}"]
        fails = [r for r in self.rows if r.verdict == "FAIL" and r.comparison is not None]
        for r in fails:
            out += ["", f"## {r.method}", "", r.comparison.to_markdown()]
        return "\n".join(out) + "\n"


def _short(tol: Tolerance) -> str:
    return f"{tol.purpose}: rtol {tol.rtol:.1g}, atol {tol.atol_max():.2g}"


def _relative_allowance(tol: Tolerance, reference) -> float:
    """Largest allowed error relative to the reference's magnitude (for the COARSE verdict)."""
    import math
    mags = [abs(float(v)) for v in reference.values()]
    scale = max(mags + [1e-300])
    atol = tol.atol_max() if hasattr(tol, "atol_max") else float(tol.atol)
    return max(tol.rtol, atol / scale) if math.isfinite(atol) else math.inf


def default_routes() -> tuple[list[str], list[tuple[str, str]]]:
    """(names ``symode check`` runs by default, [(name, what is missing)] for those that cannot run here).
    Routes with ``default_check = False`` are in neither list (``symode check`` runs them when named)."""
    run, skipped = [], []
    for r in checkable_routes():
        if not r.default_check:
            continue
        missing = r.missing()
        if missing:
            skipped.append((r.name, "; ".join(missing)))
        else:
            run.append(r.name)
    return run, skipped


def _as_float(v) -> float:
    """A measured error statistic as a float: non-finite values are stored as their repr ('nan', 'inf'); NaN
    counts as unbounded (inf)."""
    import math
    f = float(v)
    return math.inf if math.isnan(f) else f


def _gradient_scale(r) -> float:
    """The largest |component| of a result's gradient (θ, z0, t0, t1; not the loss)."""
    import math
    vals = [*r.grad.values(), *r.grad_z0, *(v for v in (r.grad_t0, r.grad_t1) if v is not None)]
    mags = [abs(float(v)) for v in vals]
    return max(mags, default=0.0) if all(math.isfinite(m) for m in mags) else math.inf


def route_tolerance(route: Route, model: Model, options: dict) -> tuple:
    """(result, Tolerance) of ``route`` on ``model`` with ``options``, by the route's declared accuracy:

    - fixed-step: the route at N and 2N steps, its error estimated per component by Richardson extrapolation
      with the order of the declaration (or of the scheme option); a back-solve adjoint's allowance adds the
      error propagated from its measured reconstruction error (``stats["backsolve_z_error"]``);
    - adaptive: the route at its tolerance options, the global error allowed a stated factor above them plus
      the measured difference from a rerun at tolerances ``SOLVER_REFINEMENT`` times tighter;
    - exact and high precision are references, not checked (SymodeError).
    """
    acc = route.accuracy
    opts = route.resolve_options(options)

    def run(**o):
        return compute(model, route.name, **o)
    if acc.kind == "fixed-step":
        steps = opts[acc.steps_option]
        order = acc.order or get_scheme(opts[acc.scheme_option]).order
        r = run(**options)
        r2 = run(**{**options, acc.steps_option: 2 * steps})
        pair = ((steps, route.comparable(r)), (2 * steps, route.comparable(r2)))
        tol = fixed_step_tolerance(order, steps, float(model.t1 - model.t0), richardson=pair)
        if "backsolve_z_error" in r.stats:  # a back-solve adjoint: plus its measured reconstruction error
            tol = backsolve_tolerance(tol, _as_float(r.stats["backsolve_z_error"]), _gradient_scale(r))
        return r, tol
    if acc.kind == "adaptive":
        r = run(**options)
        rtol, atol = float(opts[acc.rtol_option]), float(opts[acc.atol_option])
        tight = {**options, acc.rtol_option: rtol / SOLVER_REFINEMENT, acc.atol_option: atol / SOLVER_REFINEMENT}
        try:
            r2 = run(**tight)
        except SymodeError as exc:  # the tighter run failed (too much work, below roundoff): the rule alone
            tol = solver_tolerance(rtol, atol)
            return r, replace(tol, reason=tol.reason + f" (the rerun at {SOLVER_REFINEMENT:g}x tighter tolerances "
                              f"failed, so the global error was not measured: {' '.join(str(exc).split())[:200]})")
        return r, solver_tolerance(rtol, atol, refined=(route.comparable(r), route.comparable(r2)))
    raise SymodeError(f"route {route.name!r} ({acc.describe()}) is a reference, not checked against the oracle")


def check_model(model: Model, *, scheme: str = "rk4", steps: int = 100, digits: int = 30,
                methods=None, max_rtol: float = DEFAULT_MAX_RTOL) -> CheckReport:
    """Run ``methods`` (default: every route that can run here, :func:`default_routes`) on ``model`` and
    compare each with the oracle.  ``scheme`` and ``steps`` go to the routes that take them."""
    skipped: list = []
    named_only: list = []
    if methods is None:
        methods, skipped = default_routes()
        named_only = [r.name for r in checkable_routes() if not r.default_check]
    methods = list(methods)
    get_scheme(scheme)  # an unknown scheme is an error before anything runs
    ref = compute(model, REFERENCE, digits=digits)
    report = CheckReport(model.name, f"oracle at {digits} digits, error bound {ref.to_dict()['error_bound']}",
                         not_run=skipped, not_by_default=named_only)
    common = {"scheme": scheme, "steps": steps}
    results, checked = {}, []
    for m in methods:
        try:
            route = get_route(m)
            opts = {k: v for k, v in common.items() if k in route.option_names()}
            r, tol = route_tolerance(route, model, opts)
        except SymodeError as exc:
            report.rows.append(RouteCheck(m, "FAIL", f"error: {' '.join(str(exc).split())}"))
            continue
        results[m] = r
        checked.append(route)
        c = compare(route.comparable(r), route.comparable(ref), tolerance=tol)
        w = c.worst
        detail = c.worst_line() if w is not None else c.summary()
        verdict = "PASS" if c.ok else "FAIL"
        allowance = _relative_allowance(tol, ref)
        if c.ok and allowance > NOT_CONVERGING_RTOL:
            # a route whose own error estimate is of the size of the values is not converging: agreement
            # within such an allowance proves nothing (e.g. a back-solve adjoint on a contracting model)
            verdict = "FAIL"
            detail = (f"cannot be checked: its own error estimate is {allowance:.2g} relative (not converging, or "
                      f"far too coarse: use more steps or a higher-order scheme) ({detail})")
        elif c.ok and allowance > max_rtol:
            verdict = "COARSE"
            detail += f" (allowance above {max_rtol:g} relative: use more steps)"
        report.rows.append(RouteCheck(m, verdict, detail, tol.describe(), c, r.stats.get("warning", ""), _short(tol)))
    for route in checked:  # routes that compute another's numbers in a different order: compared directly
        other = route.agrees_with
        if other in results:
            tol = COMPARISON_TOLERANCES["float64-reordered"]
            c = compare(route.comparable(results[other]), route.comparable(results[route.name]), tolerance=tol)
            report.rows.append(RouteCheck(f"{other} vs {route.name}", "PASS" if c.ok else "FAIL",
                                          c.worst_line() if c.worst is not None else c.summary(), tol.describe(), c,
                                          tolerance_short=_short(tol)))
    return report
