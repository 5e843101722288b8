"""``symode demo``: the seed notes' story, end to end, in lines of at most :data:`WIDTH` characters.

1. derive the seed's gradients (linear regression) and its neural ODE's adjoint with SymPy;
2. verify the seed's own formulas (``derivations/seed-neural-ode.md``): the three errors are found;
3. generate, compile and call the C gradient of the neural ODE, checked against the in-memory graph;
4. check every gradient route against the 30-digit oracle (and the oracle against the closed form);
5. train: the linear regression (SymPy's update rule vs a complex-step gradient), the neural ODE from a = b = 0
   back to the generating a, b, (full run) a tanh MLP fitted to a damped oscillator, and two routes' parameter
   trajectories against their measured discretisation error, with a sign-flipped gradient that must be caught;
6. write the figures (when matplotlib is installed; otherwise say how to get them);

and end with a summary table: what agreed, within which tolerance, where the figures are.  ``quick`` skips the
MLP fit and the oracle-driven training.  Each step is a function returning its lines and summary rows, so the
command only prints; nothing here decides a verdict that the library's checks do not decide themselves.
"""
from __future__ import annotations

import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import sympy

__all__ = ["WIDTH", "Step", "run_demo", "seed_document"]

#: Widest line the demo prints.
WIDTH = 100


@dataclass
class Step:
    title: str
    lines: list = field(default_factory=list)
    rows: list = field(default_factory=list)  # (what, result, within, ok)
    footer: list = field(default_factory=list)  # lines after the summary table
    figures: dict = field(default_factory=dict)

    def say(self, text: str, indent: int = 3) -> None:
        pad = " " * indent
        self.lines += textwrap.wrap(text, WIDTH, initial_indent=pad, subsequent_indent=pad + "  ",
                                    break_on_hyphens=False) or [""]


def seed_document() -> Path | None:
    """``derivations/seed-neural-ode.md`` of the source tree symode runs from, if present."""
    p = Path(__file__).resolve().parents[1] / "derivations" / "seed-neural-ode.md"
    return p if p.is_file() else None


def _eq(expr) -> str:
    return sympy.sstr(sympy.simplify(expr))


def step_derive() -> Step:
    from .library import get_model
    from .symbolic.derive import derive
    from .symbolic.regression import LinearRegression
    s = Step("Derive the seed's gradients and adjoint (SymPy)")
    lr = LinearRegression()
    s.say(f"linear regression f(x) = a*x + b, loss = {_eq(lr.loss)}:")
    s.say(f"dloss/da = {_eq(lr.dloss_da)},  dloss/db = {_eq(lr.dloss_db)}", 5)
    s.say(f"gradient descent: a <- {_eq(lr.update_a)},  b <- {_eq(lr.update_b)}", 5)
    m = get_model("linear")
    d = derive(m)
    lam = d.lam[0]
    s.say(f"neural ODE dz/dt = {_eq(m.rhs[0])}, z(0) = {m.z0[0]}, L = {_eq(m.terminal)} at T = {m.t1}:")
    s.say(f"adjoint d{lam}/dt = {_eq(d.adjoint_rhs[0])}, {lam}(T) = {_eq(d.adjoint_final[0])}; "
          f"dL/da = integral of {_eq(lam * d.dfdp[0, 0])} dt, dL/db = integral of {_eq(lam * d.dfdp[0, 1])} dt; "
          f"dL/dt0 = {_eq(d.grad_t0_expr)}", 5)
    s.rows.append(("derive", "adjoint, dL/dθ, dL/dt0", "exact (SymPy)", True))
    return s


def step_verify() -> Step:
    from .verify import verify_files
    s = Step("Verify the seed's own formulas")
    doc = seed_document()
    if doc is None:
        s.say("derivations/seed-neural-ode.md is not here (it ships with the source tree); skipped")
        s.rows.append(("verify seed formulas", "document not found", "-", True))
        return s
    results = verify_files([str(doc)])
    counts = {k: sum(r.status == k for r in results) for k in ("TRUE", "FALSE", "UNDECIDED", "ERROR")}
    as_expected = all(r.matches_expectation is not False for r in results)
    s.say(f"symode verify derivations/{doc.name}: {len(results)} claims, " +
          ", ".join(f"{v} {k}" for k, v in counts.items() if v) +
          (", every verdict as the document expects" if as_expected else ", SOME VERDICTS UNEXPECTED"))
    for r in results:
        if r.status == "FALSE" and r.corrected:
            s.say(f"line {r.line}: {r.text}", 5)
            s.say(f"FALSE, corrected: {r.corrected if len(r.corrected) < 60 else r.corrected[:57] + '...'}", 9)
    s.rows.append(("verify seed formulas", f"{counts['TRUE']} TRUE, {counts['FALSE']} FALSE",
                   "expect: lines", as_expected and counts["ERROR"] == 0))
    return s


def step_codegen() -> Step:
    from .check.tolerances import COMPARISON_TOLERANCES
    from .codegen.build import build_shared_library, load_function
    from .codegen.ctext import FILE_STEM, generate
    from .errors import BuildError
    from .library import get_model
    s = Step("Generate, compile and call the C gradient")
    m = get_model("linear")
    code = generate(m, "rk4", 100)
    size = len(code.files[f"{FILE_STEM}.c"])
    s.say(f"symode codegen linear: {FILE_STEM}.c ({size / 1024:.0f} kB) + .h, rk4 with 100 steps")
    try:
        start = time.perf_counter()
        lib = build_shared_library({k: v for k, v in code.files.items() if not k.endswith(".json")},
                                   name_hint="demo-linear")
        built = time.perf_counter() - start
        fn = load_function(lib, code.names["grad"])
    except BuildError as exc:
        s.say(f"no C compiler run: {' '.join(str(exc).split())[:150]}")
        s.rows.append(("C gradient", "not built (no compiler)", "-", True))
        return s
    theta = np.array([float(v) for v in m.theta])
    args = (theta, np.array([1.0]), 0.0, float(m.t1))
    got = np.concatenate([np.array(v, dtype=float).ravel() for v in fn(*args)])
    ref = np.concatenate([np.array(v, dtype=float).ravel() for v in code.functions["grad"](*args)])
    tol = COMPARISON_TOLERANCES["compiled-vs-graph"]
    diff = float(np.max(np.abs(got - ref) / np.maximum(np.abs(ref), 1e-300)))
    ok = bool(np.all(np.abs(got - ref) <= tol.atol + tol.rtol * np.maximum(np.abs(got), np.abs(ref))))
    s.say(f"cc -O2 in {built:.1f} s (cached after the first run); {code.names['grad']}(a, b, z0, t0, t1) "
          f"gives L = {got[0]:.12g}, dL/da = {got[1]:.12g}, dL/db = {got[2]:.12g}")
    s.say(f"compiled vs the in-memory CasADi graph: largest relative difference {diff:.2g} "
          f"(allowed {tol.rtol:g})")
    s.rows.append(("C gradient vs in-memory graph", f"rel. diff {diff:.2g}", f"{tol.rtol:g} (compiled-vs-graph)", ok))
    _one_sweep(s, m)
    return s


def _one_sweep(s: Step, m) -> None:
    """symode.compile: the one-reverse-sweep C behind a handle (training's default gradient), against the
    in-memory graph (the same discrete derivative in another order)."""
    from .check.tolerances import COMPARISON_TOLERANCES
    from .codegen.handle import compile as compile_model
    from .train.objective import Objective
    start = time.perf_counter()
    h = compile_model(m, scheme="rk4", steps=100)
    built = time.perf_counter() - start
    theta = np.array([float(v) for v in m.theta])
    L, g, *_ = h.grad_arrays(theta)
    got = np.array([L, *g])
    ref_loss, ref_grad = Objective(m, compiled=False)(theta)[:2]
    ref = np.array([ref_loss, *ref_grad])
    tol = COMPARISON_TOLERANCES["float64-reordered"]
    diff = float(np.max(np.abs(got - ref) / np.maximum(np.abs(ref), 1e-300)))
    ok = bool(np.all(np.abs(got - ref) <= tol.atol + tol.rtol * np.maximum(np.abs(got), np.abs(ref))))
    s.say(f"symode.compile(linear): one reverse sweep in C behind a handle ({built:.1f} s), training's default "
          f"gradient: L = {got[0]:.12g}, dL/da = {got[1]:.12g}; vs the in-memory graph: largest relative "
          f"difference {diff:.2g} (allowed {tol.rtol:g}, float64 reordering)")
    s.rows.append(("one-sweep C vs in-memory graph", f"rel. diff {diff:.2g}", f"{tol.rtol:g} (float64-reordered)",
                   ok))


def step_check(steps: int = 100) -> tuple[Step, object]:
    from .check.report import check_model
    from .library import get_model
    from .methods import compute
    s = Step(f"Check every route against the 30-digit oracle (rk4, {steps} steps)")
    m = get_model("linear")
    oracle = compute(m, "oracle", digits=30)
    exact = compute(m, "exact", digits=30)
    gap = max(abs(float(a - b)) for a, b in zip(oracle.values(), exact.values()))
    bound = oracle.to_dict()["error_bound"]
    s.say(f"oracle (Taylor method, forward and adjoint routes) vs closed form: largest difference "
          f"{gap:.1g}, error bound {bound}")
    s.rows.append(("oracle vs closed form", f"{gap:.1g}", f"bound {bound}", gap <= 10 * float(bound)))
    report = check_model(m, steps=steps)
    s.lines.append(f"   {'route':<21}{'verdict':<9}{'worst |error|':>15}{'allowed there':>15}")
    for r in report.rows:
        w = r.comparison.worst if r.comparison is not None else None
        err = f"{float(w.error):.2g}" if w is not None and w.error is not None else "-"
        allowed = f"{float(w.allowed):.2g}" if w is not None and w.allowed is not None else "-"
        s.lines.append(f"   {r.method:<21}{r.verdict:<9}{err:>15}{allowed:>15}")
        s.rows.append((f"{r.method} vs oracle" if " vs " not in r.method else r.method, f"{r.verdict}, {err}",
                       allowed + (" (Richardson)" if r.method in ("discrete", "forward", "adjoint", "adjoint-stored")
                                  else ""), r.verdict != "FAIL"))
    return s, report


def step_train(quick: bool) -> tuple[Step, dict]:
    from .train.checks import check_linreg, check_mlp_fit, check_route_agreement, check_seed_recovery
    s = Step("Train with the derived gradients")
    lin = check_linreg()
    s.say(f"linear regression on 20 points: SymPy's update rule vs a complex-step gradient, 200 steps: "
          f"{lin.measured}")
    seed = check_seed_recovery()
    s.say("neural ODE dz/dt = a*z + b on 11 initial states (the seed's x -> z0 -> z(T)), gradient descent from "
          f"a = b = 0 with the discrete adjoint: {seed.measured} (generating a = -0.8, b = 0.5)")
    checks = [lin, seed]
    if not quick:
        mlp = check_mlp_fit()
        s.say(f"tanh MLP neural ODE (22 parameters) fitted to 3 trajectories of a damped oscillator: {mlp.measured}")
        checks.append(mlp)
    agree, wrong = check_route_agreement(oracle=not quick)
    s.say(f"two routes from the same start ({agree.reason.split(':')[0]}): {agree.measured}")
    if agree.oracle:
        s.say(f"each route's trajectory against the oracle's exact gradient descent: {agree.oracle}")
    # the route's description holds '; ' itself (", steps 50; compiled C"): cut before the worst-component detail
    s.say(f"a deliberately wrong gradient: {wrong.measured.split('; worst ')[0]}")
    checks += [agree, wrong]
    names = {"linreg": "linreg: SymPy update vs numeric", "seed-recovery": "seed ODE recovers a, b",
             "mlp-fit": "MLP fit: loss falls", "route-agreement": "two routes' trajectories",
             "wrong-gradient": "sign-flipped gradient"}
    for c in checks:
        s.rows.append((names[c.name], *c.short, c.ok))
    return s, {c.name: c for c in checks}


def step_figures(directory, checks: dict) -> Step:
    from . import plots
    s = Step("Figures")
    if directory is None:
        s.say("not written (--no-plot)")
        return s
    if not plots.available():
        s.say(f"matplotlib is not installed: {plots.INSTALL_HINT} to get the pictures")
        s.rows.append(("figures", "matplotlib not installed", "see below", True))
        s.footer.append(f"Figures: none; {plots.INSTALL_HINT} to get them")
        return s
    from .check.convergence import convergence_data
    from .library import get_model
    from .methods import compute
    from .train.checks import TrainCheckReport, check_figures
    from .train.paths import adjoint_path
    from .train.problem import figures
    seed = checks["seed-recovery"]
    f = figures(seed.problem, seed.runs, adjoint=False)
    figs = {"seed-loss": f["loss"], "seed-trajectories": f["trajectories"]}
    enc = get_model("seed-encoder")
    figs["seed-encoder-adjoint"] = plots.adjoint_figure(
        adjoint_path(enc), title="seed-encoder: adjoint λ(t), jumps at the observation times 0.5 and 2")
    lin = get_model("linear")
    data = convergence_data(lin, ("discrete", "adjoint", "adjoint-stored"), "rk4", 100,
                            compute(lin, "oracle", digits=30))
    figs["convergence"] = plots.convergence_figure(data, 4, title="linear: error vs step size (rk4)")
    figs.update(check_figures(TrainCheckReport([checks["route-agreement"], checks["wrong-gradient"]])))
    if "mlp-fit" in checks:
        mlp = checks["mlp-fit"]
        f = figures(mlp.problem, mlp.runs)
        figs.update({"mlp-loss": f["loss"], "mlp-trajectories": f["trajectories"], "mlp-adjoint": f["adjoint"]})
    paths = plots.write_pngs(figs, directory)
    s.say(f"{len(paths)} PNG files in {directory}/: " + ", ".join(p.name for p in paths))
    s.rows.append(("figures", f"{len(paths)} PNG files", "written (path below)", True))
    s.footer.append(f"Figures: {Path(directory).resolve()}/ ({len(paths)} PNG files)")
    return s


def run_demo(*, quick: bool = False, plot_dir="symode-demo-figures", emit=print) -> bool:
    """Run every step, calling ``emit(line)`` for each output line; True when everything agreed."""
    start = time.perf_counter()
    out = emit

    def emit(line: str) -> None:  # noqa: F811 -- every line through the width limit
        for part in textwrap.wrap(line, WIDTH, subsequent_indent="     ", break_on_hyphens=False) or [""]:
            out(part)

    emit("symode demo: the seed notes' neural ODE from derivation to training, every number cross-checked"
         + (" (quick)" if quick else ""))
    steps, checks = [], {}

    def show(step: Step) -> None:
        emit("")
        emit(f"{len(steps) + 1}. {step.title}")
        for line in step.lines:
            emit(line)
        steps.append(step)

    show(step_derive())
    show(step_verify())
    show(step_codegen())
    show(step_check()[0])
    train, checks = step_train(quick)
    show(train)
    show(step_figures(plot_dir, checks))
    rows = [r for s in steps for r in s.rows]
    ok = all(r[3] for r in rows)
    emit("")
    emit(f"Summary ({time.perf_counter() - start:.0f} s): " + ("everything agreed" if ok else "SOMETHING DISAGREED"))
    w = (32, 30, 30)
    emit(f"  {'what':<{w[0]}}{'result':<{w[1]}}{'within':<{w[2]}}ok")
    for what, result, within, good in rows:
        emit(f"  {what[:w[0] - 1]:<{w[0]}}{result[:w[1] - 1]:<{w[1]}}{within[:w[2] - 1]:<{w[2]}}"
             + ("yes" if good else "NO"))
    for s in steps:
        for line in s.footer:
            emit(line)
    return ok
