"""``symode audit torchdiffeq|diffrax``: how right are another library's gradients, and under which settings?

For every model and every configuration (route x solver x requested tolerance or step count) the audit runs the
library through its adapter (:mod:`symode.interop.torchdiffeq_adapter`, :mod:`symode.interop.diffrax_adapter`),
and compares every quantity (loss, each dL/dθ_k, each dL/dz0_j, dL/dt0, dL/dt1) with the oracle.  What it
reports per quantity:

* ``rel``: |c - r| / |r| against the oracle r (30 digits);
* ``scaled``: the error in units of what the configuration promises,
  - adaptive solvers: |c - r| / (rtol · S), rtol the tolerance the user asked the library for and S the
    quantity's scale (|loss| for the loss, the largest |component| of the gradients for every gradient
    component, so that a component that is legitimately ~0 is judged against the terms it came from);
  - fixed steps: |c - r| / (e_h · S), e_h the scheme's own relative truncation error at that step count,
    measured as max_q |d_q - r_q| / S_q with d the exact discrete gradient of the same tableau and steps
    (:mod:`symode.interop.discrete`; torchdiffeq's "rk4" is Kutta's 3/8 rule, diffrax's "rk4" classic RK4);
* ``verdict``: ``ok`` (scaled <= 10: within an order of magnitude of the promise), ``loose`` (<= 1000, the
  global-error factor symode's own solver check allows), ``FAIL`` (beyond: a fault), ``n/a`` (the library does
  not compute the quantity, with its reason), ``ERROR`` (the configuration raised; the message is kept).

Fixed-step configurations are also compared with the exact discrete gradient ``d`` itself (loss, dL/dθ,
dL/dz0): backpropagation through the steps must reproduce it to float64 rounding
(:data:`DISCRETE_MATCH_RTOL`), a continuous adjoint with the same steps does not (the *fixed-step adjoint
mismatch*: that gradient is not the gradient of the loss the library computed).  Adjoint routes get a back-solve
diagnostic: the library's solver runs z forward to t1 and back to t0 with the same settings, and
``backsolve_z0_error`` = |z_back(t0) - z0| / (1 + |z0|); above :data:`BACKSOLVE_UNSTABLE` the back-solve is
reported unstable.  Time gradients are reported with their ratio to the oracle's, so a sign convention that
differs shows as -1 and a missing term as a ratio far from 1.

Work is split into tasks of (model, route, solver), each running its tolerances or step counts in order (a
JAX compilation is reused across tolerances); tasks run on :func:`symode.sweep.run_sweep` (process pool by
default, a Dask cluster with ``scheduler``).  Every task is a pure function of serializable inputs.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

from ..errors import SpecError, SymodeError

__all__ = ["LIBRARIES", "audit", "audit_task", "AuditReport", "VERDICT_OK", "VERDICT_LOOSE",
           "DISCRETE_MATCH_RTOL", "BACKSOLVE_UNSTABLE", "DEFAULT_RTOLS", "DEFAULT_STEPS", "DEFAULT_MODELS"]

#: Verdict thresholds on the scaled error (see the module docstring).
VERDICT_OK = 10.0
VERDICT_LOOSE = 1000.0
#: Backprop through fixed steps vs the exact discrete gradient: float64 rounding of a few hundred steps (the
#: adapters' tests measure <= 1e-14 on the built-in models); relative to the quantity's scale.
DISCRETE_MATCH_RTOL = 1e-10
#: A back-solved z(t0) further from z0 (relative to 1 + |z0|) than this many times the configuration's promise (the
#: requested rtol, or the scheme's truncation error) makes the back-solve "unstable": a forward and a backward
#: solve at that accuracy explain errors up to ~100x the promise; amplification explains the rest.
BACKSOLVE_UNSTABLE = 1000.0
DEFAULT_RTOLS = (1e-4, 1e-6, 1e-8, 1e-10)
DEFAULT_STEPS = (100,)
#: Four built-in models: a terminal loss with dL/dt1 (logistic), z0(θ) + observations + a running cost
#: (seed-encoder), observations only (lotka-volterra), a two-state nonlinear oscillator (vanderpol).
DEFAULT_MODELS = ("logistic", "seed-encoder", "lotka-volterra", "vanderpol")


@dataclass(frozen=True)
class Library:
    name: str
    routes: dict            # route name -> (what it calls, keyword arguments for the adapter, back-solves z?)
    solvers: tuple          # default solvers audited
    fixed: tuple            # solver names that take steps
    tableau: dict           # fixed-step solver -> symode scheme with the same Butcher tableau
    label: str              # what the routes vary: "function" / "adjoint"


LIBRARIES = {
    "torchdiffeq": Library(
        "torchdiffeq",
        {"torchdiffeq": ("odeint", {"adjoint": False}, False),
         "torchdiffeq-adjoint": ("odeint_adjoint", {"adjoint": True}, True)},
        ("dopri5", "rk4"), ("rk4", "euler", "midpoint"), {"rk4": "rk38", "euler": "euler", "midpoint": "midpoint"},
        "function"),
    "diffrax": Library(
        "diffrax",
        {"diffrax": ("RecursiveCheckpointAdjoint", {"adjoint": "checkpoint"}, False),
         "diffrax-direct": ("DirectAdjoint", {"adjoint": "direct"}, False),
         "diffrax-backsolve": ("BacksolveAdjoint", {"adjoint": "backsolve"}, True)},
        ("tsit5", "dopri5", "kvaerno5", "rk4"), ("rk4", "euler", "midpoint"),
        {"rk4": "rk4", "euler": "euler", "midpoint": "midpoint"}, "adjoint"),
}


def backsolves(library: str, route: str) -> bool:
    """Whether ``route`` of ``library`` integrates z backward (a continuous adjoint with back-solved z)."""
    return LIBRARIES[library].routes[route][2]


def _values(result) -> dict:
    """{quantity name: float or None} in GradResult order; None where the route does not compute it."""
    out = {"loss": result.loss}
    out.update({f"grad[{k}]": v for k, v in result.grad.items()})
    out.update({f"grad_z0[{j}]": v for j, v in enumerate(result.grad_z0)})
    out["grad_t0"] = result.grad_t0
    out["grad_t1"] = result.grad_t1
    return {k: (None if v is None else float(v)) for k, v in out.items()}


def audit_task(library: str, spec_text: str, route: str, solver: str, settings: tuple, atol) -> list[dict]:
    """Run one (model, route, solver) at every setting (rtol values for adaptive solvers, step counts for fixed
    ones); pure: serializable in, serializable out (a list of raw runs, judged by :func:`audit`)."""
    from ..spec import load_spec
    model = load_spec(spec_text)
    fixed = solver in LIBRARIES[library].fixed
    runs = []
    for s in settings:
        rtol, steps = (None, s) if fixed else (s, None)
        run = {"route": route, "solver": solver, "rtol": rtol, "atol": (atol or rtol) if rtol else None,
               "steps": steps}
        start = time.perf_counter()
        try:
            kw = dict(LIBRARIES[library].routes[route][1])
            if library == "torchdiffeq":
                from .torchdiffeq_adapter import torchdiffeq_gradient as grad
            else:
                from .diffrax_adapter import diffrax_gradient as grad
            result = grad(model, scheme=solver, steps=steps, rtol=rtol, atol=run["atol"], **kw)
            run["values"] = _values(result)
            run["unavailable"] = result.stats.get("unavailable", {})
            run["config"] = result.stats.get("config", {})
        except SymodeError as exc:
            run["error"] = " ".join(str(exc).split())
        run["seconds"] = round(time.perf_counter() - start, 3)
        if backsolves(library, route):  # an adjoint that back-solves z: the diagnostic
            from .backsolve import backsolve_error
            run["backsolve_z0_error"] = backsolve_error(library, model, solver, rtol, run["atol"], steps)
        runs.append(run)
    return runs


def reference_task(spec_text: str, digits: int, schemes: tuple) -> dict:
    """The oracle's values and, per (symode scheme, steps), the exact discrete gradient's (pure)."""
    from .discrete import discrete_gradient
    from ..oracle.engine import oracle_gradient
    from ..spec import load_spec
    model = load_spec(spec_text)
    out = {"oracle": _values(oracle_gradient(model, digits, quiet=True)), "discrete": {}}
    for scheme, steps in schemes:
        out["discrete"][f"{scheme}:{steps}"] = _values(discrete_gradient(model, scheme, steps, digits))
    return out


def _scale(name: str, ref: dict) -> float:
    if name == "loss":
        return abs(ref["loss"])
    return max((abs(v) for k, v in ref.items() if k != "loss" and v is not None), default=0.0)


def _verdict(scaled: float) -> str:
    if not math.isfinite(scaled):
        return "FAIL"
    return "ok" if scaled <= VERDICT_OK else "loose" if scaled <= VERDICT_LOOSE else "FAIL"


def judge(run: dict, ref: dict, discrete: dict | None) -> dict:
    """Add per-quantity errors and verdicts to one raw run (see the module docstring)."""
    out = dict(run)
    oracle = ref
    rows = []
    promise = run["rtol"]
    if run["steps"] is not None and discrete is not None:
        trunc = max((abs(discrete[k] - oracle[k]) / _scale(k, oracle) for k in oracle
                     if oracle[k] is not None and discrete.get(k) is not None and _scale(k, oracle) > 0), default=0.0)
        promise = max(trunc, 1e-15)
        out["truncation_error"] = trunc
    for name, r in oracle.items():
        if r is None:
            continue  # undefined for the model (dL/dt1 with an observation at t1)
        row = {"quantity": name, "reference": r}
        if "error" in run:
            row.update(value=None, verdict="ERROR")
        elif run["values"].get(name) is None:
            row.update(value=None, verdict="n/a", note=run.get("unavailable", {}).get(name, "not computed"))
        else:
            c = run["values"][name]
            err = abs(c - r)
            scale = _scale(name, oracle)
            scaled = err / (promise * scale) if scale > 0 else (0.0 if err == 0 else math.inf)
            row.update(value=c, abs_error=err, rel_error=err / abs(r) if r != 0 else (0.0 if err == 0 else math.inf),
                       scaled_error=scaled, verdict=_verdict(scaled))
            if name in ("grad_t0", "grad_t1") and r != 0:
                row["ratio"] = c / r
        rows.append(row)
    out["quantities"] = rows
    if run["steps"] is not None and discrete is not None and "error" not in run:
        worst = 0.0
        for name in oracle:
            if name.startswith(("loss", "grad[", "grad_z0")) and run["values"].get(name) is not None:
                scale = _scale(name, oracle)
                worst = max(worst, abs(run["values"][name] - discrete[name]) / scale if scale > 0 else 0.0)
        out["discrete_difference"] = worst
        out["matches_discrete"] = worst <= DISCRETE_MATCH_RTOL
    b = run.get("backsolve_z0_error")
    if b is not None:  # unstable: z comes back far worse than the solver's own accuracy explains
        out["backsolve_unstable"] = not (isinstance(b, float) and b <= BACKSOLVE_UNSTABLE * promise)
    return out


#: Finite differences of the library's own loss (evidence for a FAIL): central differences with steps h and h/2,
#: h = FD_STEP x max(|x|, 1), Richardson-combined; their difference is the estimate's own error.
FD_STEP = 1e-4
#: At most this many FAIL quantities get finite-difference evidence per audit (4 extra solves each).
FD_MAX_CHECKS = 24


def fd_evidence(library: str, model, run: dict, quantity: str) -> dict | None:
    """dL/dx of the library's OWN loss by central finite differences in x = t0, t1 or a parameter (the
    parameter's z0(θ) chain included, as in dL/dθ): tells whether a FAIL is the library's gradient not being
    the derivative of its own loss, or its loss itself being off.  None for dL/dz0 (no free-z0 input)."""
    from .problem import loss_plan
    from ..casadi.translate import nearest_double
    plan = loss_plan(model)
    theta = [nearest_double(v) for v in model.theta]
    if quantity in ("grad_t0", "grad_t1"):
        x0 = plan.t0 if quantity == "grad_t0" else plan.t1
        kw_of = (lambda x: {"t0": x}) if quantity == "grad_t0" else (lambda x: {"t1": x})
    elif quantity.startswith("grad["):
        k = model.param_names.index(quantity[5:-1])
        x0 = theta[k]
        kw_of = lambda x: {"theta": theta[:k] + [x] + theta[k + 1:]}  # noqa: E731
    else:
        return None
    kw = dict(LIBRARIES[library].routes[run["route"]][1], scheme=run["solver"], steps=run["steps"],
              rtol=run["rtol"], atol=run["atol"])
    if library == "torchdiffeq":
        from .torchdiffeq_adapter import torchdiffeq_gradient as grad
    else:
        from .diffrax_adapter import diffrax_gradient as grad

    def loss(x):
        return grad(model, **kw, **kw_of(x)).loss

    h = FD_STEP * max(abs(x0), 1.0)
    try:
        d1 = (loss(x0 + h) - loss(x0 - h)) / (2 * h)
        d2 = (loss(x0 + h / 2) - loss(x0 - h / 2)) / h
    except SymodeError as exc:
        return {"error": " ".join(str(exc).split())[:200]}
    return {"fd": (4 * d2 - d1) / 3, "fd_error_estimate": abs(d2 - d1), "h": h}


@dataclass
class AuditReport:
    """The audit's result: per model, the oracle reference and the judged runs (see :meth:`to_dict`)."""

    library: str
    versions: dict
    models: list  # [{"model", "runs": [...]}]

    @property
    def failed(self) -> bool:
        return any(q["verdict"] in ("FAIL", "ERROR") for m in self.models for r in m["runs"] for q in r["quantities"])

    def to_dict(self) -> dict:
        return {"library": self.library, "versions": self.versions,
                "rules": {"ok": f"scaled error <= {VERDICT_OK:g}", "loose": f"<= {VERDICT_LOOSE:g}",
                          "FAIL": f"> {VERDICT_LOOSE:g}",
                          "scaled error": "adaptive: |c - r| / (rtol * S); fixed steps: |c - r| / (e_h * S); "
                                          "S = |loss| for the loss, max |gradient component| for gradients",
                          "discrete match": f"|c - d| / S <= {DISCRETE_MATCH_RTOL:g} (d: exact discrete gradient)",
                          "backsolve unstable": f"|z_back(t0) - z0| / (1 + |z0|) > {BACKSOLVE_UNSTABLE:g} x the "
                                                f"promise (rtol, or the truncation error)"},
                "models": self.models}

    def to_markdown(self) -> str:
        from .audit_report import markdown
        return markdown(self)


def _tasks(lib: Library, models, routes, solvers, rtols, steps, atol, digits):
    specs = {}
    from ..spec import dump_spec
    ref_tasks, run_tasks = [], []
    for m in models:
        specs[m.name] = dump_spec(m)
        schemes = tuple((lib.tableau[s], n) for s in solvers if s in lib.fixed for n in steps)
        ref_tasks.append((specs[m.name], digits, schemes))
        for route in routes:
            for solver in solvers:
                settings = tuple(steps) if solver in lib.fixed else tuple(rtols)
                run_tasks.append((lib.name, specs[m.name], route, solver, settings, atol))
    return ref_tasks, run_tasks


def audit(library: str, models, *, routes=None, solvers=None, rtols=DEFAULT_RTOLS, steps=DEFAULT_STEPS, atol=None,
          digits: int = 30, scheduler: str | None = None, workers: int | None = None) -> AuditReport:
    """Audit ``library`` on ``models`` (Model objects); see the module docstring."""
    from ..sweep import run_sweep
    if library not in LIBRARIES:
        raise SpecError(f"unknown library {library!r}; choose one of {', '.join(LIBRARIES)}")
    lib = LIBRARIES[library]
    routes = list(routes or lib.routes)
    solvers = list(solvers or lib.solvers)
    from ..registry import get_route
    for r in routes:
        if r not in lib.routes:
            raise SpecError(f"unknown {library} route {r!r}; choose from {', '.join(lib.routes)}")
        missing = get_route(r).missing()
        if missing:
            from . import MissingExtraError
            raise MissingExtraError(f"symode audit {library} cannot run here: {'; '.join(missing)}")
    from .diffrax_adapter import ADAPTIVE as DX_ADAPTIVE, FIXED as DX_FIXED
    from .torchdiffeq_adapter import ADAPTIVE as TD_ADAPTIVE, FIXED as TD_FIXED
    known = (TD_ADAPTIVE + TD_FIXED) if library == "torchdiffeq" else (DX_ADAPTIVE + DX_FIXED)
    for s in solvers:
        if s not in known:
            raise SpecError(f"unknown {library} solver {s!r}; choose from {', '.join(known)}")
        if s in (TD_FIXED if library == "torchdiffeq" else DX_FIXED) and s not in lib.tableau:
            raise SpecError(f"{library} solver {s!r} has no symode tableau to judge it by; audit one of "
                            f"{', '.join(lib.tableau)}")
    for v in (*rtols, *([] if atol is None else [atol])):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not (math.isfinite(v) and v > 0):
            raise SpecError(f"tolerances must be finite positive numbers, got {v!r}")
    for n in steps:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise SpecError(f"--steps must be positive integers, got {n!r}")
    models = list(models)
    if not models:
        raise SpecError("no models to audit")
    ref_tasks, run_tasks = _tasks(lib, models, routes, solvers, rtols, steps, atol, digits)
    refs = run_sweep(reference_task, ref_tasks, scheduler=scheduler, workers=workers, label="oracle references")
    raw = run_sweep(audit_task, run_tasks, scheduler=scheduler, workers=workers, label=f"audit {library}")
    out = []
    for k, m in enumerate(models):
        runs = []
        for task, task_runs in zip(run_tasks, raw):
            if task[1] != ref_tasks[k][0]:
                continue
            for run in task_runs:
                key = f"{lib.tableau.get(run['solver'])}:{run['steps']}"
                runs.append(judge(run, refs[k]["oracle"], refs[k]["discrete"].get(key)))
        out.append({"model": m.name, "oracle_digits": digits, "reference": refs[k]["oracle"], "runs": runs})
    _add_fd_evidence(library, models, out)
    return AuditReport(library, _versions(library), out)


def _add_fd_evidence(library: str, models, out: list) -> None:
    """Finite-difference evidence for FAIL quantities (in this process; at most FD_MAX_CHECKS of them)."""
    budget = FD_MAX_CHECKS
    for m, entry in zip(models, out):
        for run in entry["runs"]:
            for q in run["quantities"]:
                if q["verdict"] != "FAIL" or budget <= 0:
                    continue
                ev = fd_evidence(library, m, run, q["quantity"])
                if ev is not None:
                    budget -= 1
                    if "fd" in ev:
                        r = q["reference"]
                        ev["fd_vs_oracle"] = abs(ev["fd"] - r) / abs(r) if r else abs(ev["fd"])
                        ev["fd_vs_library"] = abs(ev["fd"] - q["value"]) / abs(q["value"]) if q["value"] else 0.0
                    q["fd_evidence"] = ev


def _versions(library: str) -> dict:
    import importlib.metadata as md
    names = ("torch", "torchdiffeq") if library == "torchdiffeq" else ("jax", "jaxlib", "diffrax", "equinox")
    out = {}
    for n in names:
        try:
            out[n] = md.version(n)
        except md.PackageNotFoundError:
            out[n] = "not installed"
    from .._version import __version__
    out["symode"] = __version__
    return out
