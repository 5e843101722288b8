"""The training cross-checks (``symode check --train`` and ``tests/test_train_checks.py``).

Each check trains for real and compares with an independent reference:

1. ``linreg``: the seed's linear regression trained with SymPy's update rule and with a complex-step numeric
   gradient (:mod:`symode.train.regression`): the iterates agree to :data:`TRAIN_TOLERANCES` ["linreg-iterates"],
   and both end at the least-squares solution (closed form).
2. ``seed-recovery``: the seed's neural ODE dz/dt = a·z + b on the seed's data set x_k -> z0 = x_k -> z(T) (eleven
   initial states, observed at T, targets from the Taylor oracle at the generating a, b), trained by gradient
   descent from a = b = 0 with the discrete adjoint: a, b recovered to ["seed-recovery"].
3. ``mlp-fit``: a tanh MLP neural ODE (D = 2, H = 4) fitted with Adam to three trajectories of a known ODE (the
   damped oscillator, observed at ten times): the loss falls at least ["mlp-fall"] times.
4. ``route-agreement`` and ``wrong-gradient``: two routes from the same start (by default the discrete adjoint
   and the continuous adjoint on the stored trajectory, which discretise differently) give parameter trajectories
   that agree within their *measured* discretisation error: each route is also run at twice the steps, and the
   Richardson estimate of its trajectory error e_k = |θ_k(N) - θ_k(2N)| h^p / (h^p - (h/2)^p), times
   ["richardson-safety"], is each component's allowance (plus the float64 floor).  Optionally the oracle's
   trajectory (exact gradient descent) is compared with each route at its own allowance.  A route whose
   gradient has one component's sign flipped is then compared with the second route in the same way: it must
   fail, and the first iteration where it leaves the allowance is reported.  An allowance larger than
   ``NOT_CONVERGING_RTOL`` (1e-2) of the parameters' movement during training proves nothing: FAIL ("cannot be
   checked"); above ``DEFAULT_MAX_RTOL`` (1e-6) the agreement is COARSE (symode check's rules).  A route that
   fails to train is a FAIL with its error.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import sympy

from ..check.compare import compare
from ..check.report import DEFAULT_MAX_RTOL, NOT_CONVERGING_RTOL
from ..check.tolerances import COMPARISON_TOLERANCES, Tolerance, fixed_step_tolerance
from ..errors import SymodeError
from ..model import Model
from .data import fit_model, ode_targets, truth_targets
from .loop import TrainResult, run
from .objective import Objective, SignFlipped
from .optim import Adam, GradientDescent
from .problem import Problem

__all__ = ["TRAIN_TOLERANCES", "TrainCheck", "TrainCheckReport", "seed_problem", "mlp_problem", "check_linreg",
           "check_seed_recovery", "check_mlp_fit", "check_route_agreement", "check_figures", "training_checks"]

#: The training cross-checks' tolerance table (module docstring); each entry says why its value.
TRAIN_TOLERANCES: dict[str, Tolerance] = {
    "linreg-iterates": Tolerance(
        1e-12, 1e-12, "linreg-iterates",
        "SymPy's update rule and the complex-step gradient compute the same numbers up to rounding (a few ulps per "
        "step: the complex step forms no differences); gradient descent at a stable learning rate contracts, so "
        "the rounding does not grow over the iterations; 1e-12 (~4500 ulps) is the issue's bound"),
    "linreg-fixed-point": Tolerance(
        1e-12, 1e-12, "linreg-fixed-point",
        "the last iterate against the least-squares solution: gradient descent contracts the error by "
        "rho = 1 - LR * lambda_min(Hessian) = 1 - 0.3 * 2 * mean(x^2) = 0.78 per step on the check's data (x "
        "equally spaced on [-1, 1], mean x = 0), so after 200 steps rho^200 ~ 1e-22 of the start's error is left "
        "and rounding (lstsq's and the iterates') dominates; 1e-12 as for the iterates"),
    "seed-recovery": Tolerance(
        0.0, 1e-6, "seed-recovery",
        "|a - a*|, |b - b*| after gradient descent: optimisation error (contraction factor ~0.85 per step at "
        "the learning rate 1, measured: ~1e-10 left after 150 steps from a = b = 0) plus the route's "
        "discretisation bias (rk4 with 100 steps: the discrete minimiser is ~1e-9 from the exact one); 1e-6 is "
        "the issue's bound"),
    "mlp-fall": Tolerance(
        0.0, 100.0, "mlp-fall",
        "the loss must fall by at least this factor (the issue's bound); measured ~300x after 100 Adam steps"),
    "richardson-safety": Tolerance(
        0.0, 4.0, "richardson-safety",
        "factor on each route's Richardson estimate of its trajectory's discretisation error (N vs 2N steps): "
        "the estimate is asymptotic (the O(h^(p+1)) remainder is not in it); 4 leaves room for a remainder of "
        "the estimate's own size, and is still ~1e3x below the deviation of a sign-flipped gradient"),
}


@dataclass
class TrainCheck:
    """One cross-check: a verdict, what was measured, what was allowed and why; the runs it made."""

    name: str
    verdict: str
    measured: str
    allowed: str
    reason: str
    runs: dict = field(default_factory=dict)   # label -> TrainResult
    detail: str = ""
    #: label -> (deviation [K+1], allowance [K+1]) of a trajectory comparison (route-agreement, wrong-gradient)
    deviations: dict = field(default_factory=dict)
    #: (result, within) in a few words each, for summary tables
    short: tuple = ("", "")
    #: the training problem the check ran (for pictures)
    problem: Problem | None = None
    #: route-agreement with the oracle: each route's trajectory against exact gradient descent, in words
    oracle: str = ""

    @property
    def ok(self) -> bool:
        return self.verdict != "FAIL"  # PASS, or COARSE (agreement within a large allowance: not a failure)


@dataclass
class TrainCheckReport:
    rows: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows)

    def to_markdown(self) -> str:
        out = ["# symode check --train", "", "| check | verdict | measured | allowed |", "|---|---|---|---|"]
        for r in self.rows:
            out.append(f"| {r.name} | **{r.verdict}** | {r.measured} | {r.allowed} |")
        out += ["", "Why these tolerances:"] + [f"- {r.name}: {r.reason}" for r in self.rows]
        details = [r for r in self.rows if r.detail]
        for r in details:
            out += ["", f"## {r.name}", "", r.detail]
        return "\n".join(out) + "\n"


# -- the problems ----------------------------------------------------------------------------------------------

def seed_problem() -> Problem:
    """The seed's neural ODE on its data set: dz/dt = a·z + b (built-in ``linear``, generating a = -0.8,
    b = 0.5), initial states x_k = -1, -0.8, ..., 1, each observed at T = 1.5."""
    from ..library import get_model
    m = get_model("linear")
    xs = [[sympy.Rational(k, 5)] for k in range(-5, 6)]
    targets = truth_targets(m, {}, times=[m.t1], initial=xs)
    truth = {p.name: float(v) for p, v in m.param_values.items()}
    return Problem(m, fit_model(m, targets, name="seed-ode-fit"), targets, truth, m)


def mlp_problem() -> Problem:
    """A tanh MLP neural ODE (``mlp``: a ``[network]`` spec, D = 2, H = 4, its deterministic nominal weights as
    the start; the fitted model keeps the weight matrices) fitted to three trajectories of the damped oscillator
    (built-in ``oscillator``) from (1, 0), (0, 1), (-1, 1/2), observed at t = 0.2, 0.4, ..., 2."""
    from ..library import get_model, mlp_model
    known = get_model("oscillator")
    times = [sympy.Rational(k, 5) for k in range(1, 11)]
    initial = [[1, 0], [0, 1], [-1, sympy.Rational(1, 2)]]
    targets = ode_targets(known, times, initial=initial, what="the damped oscillator x'' + 0.3 x' + 2 x = 0")
    mlp = mlp_model(2, 4)
    return Problem(mlp, fit_model(mlp, targets, name="mlp-fit"), targets, None, known)


def _theta0(model: Model) -> np.ndarray:
    return np.array([float(v) for v in model.theta])


# -- the checks ------------------------------------------------------------------------------------------------

def check_linreg(iterations: int = 200, lr: float = 0.3) -> TrainCheck:
    """Check 1 (module docstring), on 20 points of y = 2x - 1 with N(0, 0.1²) noise (seed 1)."""
    from .regression import DerivedUpdate, NumericGradient, least_squares, regression_data, run_update
    x, y = regression_data(2.0, -1.0, 20, noise=0.1, seed=1)
    sym = run_update(DerivedUpdate(x, y, lr), [0.0, 0.0], iterations)
    num = run(NumericGradient(x, y), [0.0, 0.0], GradientDescent(lr), iterations, progress=False)
    tol = TRAIN_TOLERANCES["linreg-iterates"]
    c = compare(num.theta, sym.theta, tolerance=tol)
    lsq = least_squares(x, y)
    fixed = TRAIN_TOLERANCES["linreg-fixed-point"]
    end = compare(sym.theta[-1], lsq, tolerance=fixed)
    ok = c.ok and end.ok
    return TrainCheck("linreg", "PASS" if ok else "FAIL",
                      f"iterates differ by {float(c.worst.error):.2g} at most; final vs least squares "
                      f"{float(end.worst.error):.2g}",
                      f"{tol.atol:g} + {tol.rtol:g}·|θ|", tol.reason,
                      {"derived update": sym, "numeric gradient": num},
                      "" if ok else c.to_markdown() + "\n" + end.to_markdown(),
                      short=(f"{float(c.worst.error):.2g}", f"{tol.atol:g} + {tol.rtol:g}·|θ|"))


def check_seed_recovery(iterations: int = 150, lr: float = 1.0, steps: int = 100,
                        method: str = "discrete") -> TrainCheck:
    """Check 2 (module docstring)."""
    problem = seed_problem()
    truth = problem.truth
    obj = Objective(problem.model, method, scheme="rk4", steps=steps)
    res = run(obj, [0.0, 0.0], GradientDescent(lr), iterations, progress=False)
    res.truth = truth
    tol = TRAIN_TOLERANCES["seed-recovery"]
    c = compare(res.final, truth, tolerance=tol)
    return TrainCheck("seed-recovery", "PASS" if c.ok else "FAIL",
                      f"a = {res.final['a']:.10f}, b = {res.final['b']:.10f}; worst error {float(c.worst.error):.2g}",
                      f"{tol.atol:g} absolute", tol.reason, {obj.describe(): res}, "" if c.ok else c.to_markdown(),
                      short=(f"error {float(c.worst.error):.2g}", f"{tol.atol:g}"), problem=problem)


def check_mlp_fit(iterations: int = 100, lr: float = 0.03, steps: int = 40) -> TrainCheck:
    """Check 3 (module docstring)."""
    problem = mlp_problem()
    model = problem.model
    obj = Objective(model, "discrete", scheme="rk4", steps=steps)
    res = run(obj, _theta0(model), Adam(lr), iterations, progress=False)
    need = TRAIN_TOLERANCES["mlp-fall"].atol
    fall = res.loss[0] / res.loss[-1] if res.loss[-1] > 0 else float("inf")
    return TrainCheck("mlp-fit", "PASS" if fall >= need else "FAIL",
                      f"loss {res.loss[0]:.3g} -> {res.loss[-1]:.3g} ({fall:.0f}x in {iterations} Adam steps)",
                      f"falls >= {need:g}x", TRAIN_TOLERANCES["mlp-fall"].reason, {obj.describe(): res},
                      short=(f"fell {fall:.0f}x", f">= {need:g}x"), problem=problem)


def _richardson(objective_n, objective_2n, theta0, lr, iterations, order, steps, interval):
    """Trajectories at N and 2N steps, and the per-component allowance safety · e_k (module docstring)."""
    a = run(objective_n, theta0, GradientDescent(lr), iterations, progress=False)
    b = run(objective_2n, theta0, GradientDescent(lr), iterations, progress=False)
    safety = TRAIN_TOLERANCES["richardson-safety"].atol
    tol = fixed_step_tolerance(order, steps, interval, safety, richardson=((steps, a.theta), (2 * steps, b.theta)))
    return a, tol.atol


def _deviation(c) -> tuple[np.ndarray, np.ndarray]:
    """Per iteration k, the component of the trajectory comparison ``c`` nearest to (or furthest past) its
    allowance: (|Δθ|, allowance) there."""
    by_k: dict = {}
    for r in c.rows:
        k = int(r.name.strip("[]").split(",")[0])
        if k not in by_k or r.ratio > by_k[k].ratio:
            by_k[k] = r
    ks = sorted(by_k)
    return (np.array([float(by_k[k].error) for k in ks]), np.array([float(by_k[k].allowed) for k in ks]))


def _divergence(c) -> int | None:
    """The first iteration (row of the trajectory) with a component outside its allowance."""
    bad = [int(r.name.strip("[]").split(",")[0]) for r in c.rows if not r.ok]
    return min(bad) if bad else None


def check_route_agreement(model: Model | None = None, routes=("discrete", "adjoint-stored"), *, steps: int = 50,
                          scheme: str = "rk4", iterations: int = 20, lr: float | None = None, flip: int = 0,
                          oracle: bool = False, theta0=None, wrong=None) -> list[TrainCheck]:
    """Checks 4 (module docstring) on ``model`` (default: the seed problem from a = b = 0, learning rate 1).

    Without ``lr`` the learning rate moves θ by 1% of its scale in the first step:
    lr = 0.01 · max(1, |θ0|) / |∇L(θ0)|.  ``wrong`` turns the first route's objective into the wrong one
    (default: the sign of component ``flip`` flipped, :class:`~symode.train.objective.SignFlipped`)."""
    from ..registry import get_route
    from ..check.convergence import discretisation
    if model is None:
        model = seed_problem().model
        theta0 = [0.0, 0.0] if theta0 is None else theta0
        lr = 1.0 if lr is None else lr
    th0 = _theta0(model) if theta0 is None else np.asarray(theta0, dtype=float)
    interval = float(model.t1 - model.t0)
    objs, orders = {}, {}
    for r in routes:  # each route at N and 2N steps, under the option names its accuracy declares
        (opts, orders[r]), (opts2, _) = (discretisation(get_route(r), scheme, n) for n in (steps, 2 * steps))
        objs[r] = (Objective(model, r, **opts), Objective(model, r, **opts2))
    if lr is None:
        g0 = objs[routes[0]][0](th0)[1]
        norm = float(np.linalg.norm(g0))
        if norm == 0:
            raise SymodeError(f"the gradient of {model.name!r} is zero at the start: nothing to train")
        lr = 0.01 * max(1.0, float(np.linalg.norm(th0))) / norm
    runs, allow = {}, {}
    for r, (on, o2n) in objs.items():
        try:
            runs[r], allow[r] = _richardson(on, o2n, th0, lr, iterations, orders[r], steps, interval)
        except SymodeError as exc:  # an honest route that fails is a failed check, reported like symode check's
            why = " ".join(str(exc).split())
            return [TrainCheck("route-agreement", "FAIL", f"{objs[r][0].describe()} failed: {why}", "-",
                               "a route must train without failing", short=("route failed", "-")),
                    TrainCheck("wrong-gradient", "FAIL", "not run (a route failed)", "-", "-",
                               short=("not run", "-"))]
    floor = COMPARISON_TOLERANCES["float64-floor"].rtol
    A, B = routes
    atol = {k: allow[A][k] + allow[B][k] for k in allow[A]}
    c = compare(runs[A].theta, runs[B].theta, rtol=floor, atol=atol)
    worst = c.worst
    label = {r: objs[r][0].describe() for r in routes}
    measured = (f"worst |Δθ| {float(worst.error):.2g} at {worst.name} vs allowed {float(worst.allowed):.2g} "
                f"(learning rate {lr:g}, {iterations} iterations)")
    reason = (f"allowance per component = {TRAIN_TOLERANCES['richardson-safety'].atol:g} x (Richardson estimate of "
              f"{A}'s trajectory error + {B}'s, each from {steps} and {2 * steps} steps) + {floor:g}·|θ|")
    detail, oracle_ok = "", []
    if oracle:
        ref = run(Objective(model, "oracle", digits=20), th0, GradientDescent(lr), iterations, progress=False)
        runs["oracle"] = ref
        lines = []
        for r in routes:
            co = compare(runs[r].theta, ref.theta, rtol=floor, atol=allow[r])
            lines.append(f"- {label[r]} vs the oracle's trajectory (exact gradient descent): "
                         f"{'PASS' if co.ok else 'FAIL'}, {co.worst_line()}")
            oracle_ok.append(f"{r} {float(co.worst.error):.1g} <= {float(co.worst.allowed):.1g}" if co.ok else
                             f"{r} FAILS")
            if not co.ok:
                c.ok = False
        detail = "\n".join(lines)
    verdict = "PASS" if c.ok else "FAIL"
    # agreement within an allowance of the size of training's own movement proves nothing (symode check's rule
    # for a route whose error estimate is large: COARSE above DEFAULT_MAX_RTOL, FAIL above NOT_CONVERGING_RTOL)
    movement = float(np.max(np.abs(runs[A].theta - runs[A].theta[0])))
    coarse = max(atol.values()) / movement if movement > 0 else float("inf")
    if c.ok and coarse > NOT_CONVERGING_RTOL:
        verdict = "FAIL"
        measured = (f"cannot be checked: the allowance is {coarse:.2g} of the parameters' movement "
                    f"({movement:.2g}); use more steps or a higher-order scheme ({measured})")
    elif c.ok and coarse > DEFAULT_MAX_RTOL:
        verdict = "COARSE"
        measured += f"; allowance {coarse:.2g} of the movement, above {DEFAULT_MAX_RTOL:g}: use more steps"
    agree = TrainCheck("route-agreement", verdict, measured, "per component (measured)",
                       f"{label[A]} vs {label[B]}: " + reason,
                       {label[r]: runs[r] for r in routes} | ({"oracle": runs["oracle"]} if oracle else {}),
                       detail if c.ok else detail + "\n\n" + c.to_markdown(),
                       deviations={f"{A} vs {B}": _deviation(c)},
                       short=(f"|Δθ| {float(worst.error):.2g}", f"{float(worst.allowed):.2g} (measured)"))
    agree.oracle = "; ".join(oracle_ok)
    make_wrong = wrong or (lambda objective: SignFlipped(objective, flip))
    return [agree, _check_wrong([make_wrong(o) for o in objs[A]], runs[B], allow[B], label[B], th0, lr, iterations,
                                orders[A], steps, interval)]


def _check_wrong(objs, ref: TrainResult, ref_allow: dict, ref_label: str, th0, lr, iterations, order, steps,
                 interval) -> TrainCheck:
    """The wrong route (``objs``: its objectives at N and 2N steps) against the reference route's trajectory
    (module docstring, check 4).  A wrong trajectory that blows up before the end is compared up to its last
    good iterate."""
    from .loop import TrainingDiverged
    wrong_n = objs[0]
    stopped = ""
    try:
        wrong, allow_w = _richardson(objs[0], objs[1], th0, lr, iterations, order, steps, interval)
        kmax = iterations + 1
    except TrainingDiverged as exc:
        wrong, kmax = exc.result, exc.iteration
        stopped = f"; its solve failed at iteration {exc.iteration}"
        allow_w = None
    floor = COMPARISON_TOLERANCES["float64-floor"].rtol
    names = [f"[{k},{j}]" for k in range(kmax) for j in range(ref.theta.shape[1])]
    atol = {n: ref_allow[n] + (allow_w[n] if allow_w else 0.0) for n in names}
    cw = compare(wrong.theta[:kmax], ref.theta[:kmax], rtol=floor, atol=atol, names=names)
    k = _divergence(cw)
    detected = not cw.ok or bool(stopped)
    what = wrong_n.describe()
    measured = (f"{what}: leaves the allowance at iteration {k}{stopped}; {cw.worst_line()}" if detected else
                f"{what}: NOT detected; {cw.worst_line()}")
    return TrainCheck("wrong-gradient", "PASS" if detected else "FAIL", measured, "must leave the allowance",
                      f"the same allowance as route-agreement, against {ref_label}", {what: wrong, ref_label: ref},
                      deviations={"sign-flipped vs " + ref_label.split(" ")[0]: _deviation(cw)},
                      short=(f"caught at iteration {k}" if detected else "NOT caught", "leaves the allowance"))


def check_figures(report: TrainCheckReport) -> dict:
    """name -> Figure: each check's loss curves (``<check>-loss``, one line per run) and the trajectory distances
    of route-agreement and wrong-gradient against their allowances (``train-deviation``)."""
    from .. import plots
    figs, dev = {}, {}
    for r in report.rows:
        if r.runs and r.name != "wrong-gradient":
            figs[f"{r.name}-loss"] = plots.loss_figure({k: v.loss for k, v in r.runs.items()},
                                                        title=f"training loss: {r.name}")
        dev.update(r.deviations)
    if dev:
        figs["train-deviation"] = plots.deviation_figure(dev)
    return figs


def training_checks(*, quick: bool = False) -> TrainCheckReport:
    """Every check of the module docstring (``quick``: shorter runs, no MLP fit, no oracle trajectory)."""
    report = TrainCheckReport()
    report.rows.append(check_linreg())
    report.rows.append(check_seed_recovery())
    if not quick:
        report.rows.append(check_mlp_fit())
    report.rows += check_route_agreement(oracle=not quick)
    return report
