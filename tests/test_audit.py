"""``symode audit``: the verdicts must report what is really there, with evidence.

Independent references: the oracle (30 digits), the closed form of dz/dt = -k (z - c) (examples/contracting.toml:
z = c + (z0 - c) e^{-kt}, so L = ∫ z² dt has dL/dk = -0.0015625 exactly at k = 40, c = 1, z0 = 2 up to e^-40 terms,
hand-computed below), central finite differences of the library's own loss (the audit's evidence), and symode's
exact discrete gradient (dual numbers, checked against CasADi in test_golden_sweep.py).

Tolerance table (this module): the audit's own thresholds are under test (VERDICT_OK = 10, VERDICT_LOOSE = 1000
in units of the promise; DISCRETE_MATCH_RTOL = 1e-10); the assertions below are about which side of them a
measured fault lies on, by many orders of magnitude.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import symode
from symode.interop.audit import DISCRETE_MATCH_RTOL, audit
from symode.library import get_model

pytest.importorskip("torch", reason="the torchdiffeq audit needs the extra symode[torch]")
pytest.importorskip("torchdiffeq", reason="the torchdiffeq audit needs the extra symode[torch]")

pytestmark = pytest.mark.slow  # every test runs a library and the oracle (seconds each)

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _run(report, model, route, solver, setting=None):
    m = next(x for x in report.models if x["model"] == model)
    return next(r for r in m["runs"] if r["route"] == route and r["solver"] == solver
                and (setting is None or setting in (r["rtol"], r["steps"])))


def _q(run, name):
    return next(q for q in run["quantities"] if q["quantity"] == name)


@pytest.fixture(scope="module")
def td_report():
    return audit("torchdiffeq", [get_model("lotka-volterra"), get_model("logistic")], rtols=(1e-9,),
                 steps=(100,), workers=1)


def test_time_gradient_fault_of_backprop_through_fixed_steps(td_report):
    """torchdiffeq odeint, rk4 with a step size, observations on the grid: dL/dt0 is wrong (an output on a grid
    point is read without its dependence on the grid's position), while its loss, dL/dθ and dL/dz0 are the
    exact discrete gradient.  Finite differences of torchdiffeq's own loss agree with the oracle."""
    run = _run(td_report, "lotka-volterra", "torchdiffeq", "rk4")
    t0 = _q(run, "grad_t0")
    assert t0["verdict"] == "FAIL" and t0["rel_error"] > 0.1
    ev = t0["fd_evidence"]
    assert ev["fd_vs_oracle"] < 1e-3 < 0.1 < ev["fd_vs_library"]
    assert all(_q(run, n)["verdict"] == "ok" for n in ("loss", "grad[alpha]", "grad_z0[1]"))
    assert run["matches_discrete"] and run["discrete_difference"] <= DISCRETE_MATCH_RTOL
    # without observations the same configuration is fine: the fault needs an output time on the grid
    assert _q(_run(td_report, "logistic", "torchdiffeq", "rk4"), "grad_t0")["verdict"] == "ok"


def test_fixed_step_adjoint_mismatch_is_reported(td_report):
    run = _run(td_report, "lotka-volterra", "torchdiffeq-adjoint", "rk4")
    assert run["matches_discrete"] is False and run["discrete_difference"] > 1e3 * DISCRETE_MATCH_RTOL
    assert _q(run, "grad_t0")["verdict"] == "ok"  # the adjoint's own time gradient is right
    assert isinstance(run["backsolve_z0_error"], float) and not run["backsolve_unstable"]


def test_adaptive_configurations_and_sign_conventions(td_report):
    for route in ("torchdiffeq", "torchdiffeq-adjoint"):
        run = _run(td_report, "logistic", route, "dopri5")
        assert {q["verdict"] for q in run["quantities"]} <= {"ok", "loose"}
        for name in ("grad_t0", "grad_t1"):
            assert abs(_q(run, name)["ratio"] - 1) < 1e-5  # same sign convention as symode, measured
    md = td_report.to_markdown()
    assert "dL/dt0: library / symode ratio from" in md and "same sign convention" in md
    assert "FAIL grad_t0" in md and "symode is right" in md and "fixed-step MISMATCH" in md
    assert td_report.failed


def test_backsolve_instability_is_found_and_explains_the_gradient(tmp_path):
    m = symode.load_spec_file(EXAMPLES / "contracting.toml")
    rep = audit("torchdiffeq", [m], routes=["torchdiffeq-adjoint"], solvers=["dopri5"], rtols=(1e-6,), workers=1)
    run = rep.models[0]["runs"][0]
    assert run["backsolve_unstable"] and run["backsolve_z0_error"] > 1e3
    k = _q(run, "grad[k]")
    # the closed form: L = ∫_0^1 (1 + e^{-40 t})² dt, dL/dk = -∫ 2 t e^{-40t} (1 + e^{-40t}) dt ≈ -2/1600 - 2/6400
    assert abs(float(k["reference"]) - (-2 / 1600 - 2 / 6400)) < 1e-15
    assert k["verdict"] == "FAIL" and k["rel_error"] > 1e6
    assert "back-solve unstable" in rep.to_markdown()


def test_cli_json_and_exit_status(tmp_path):
    env = {**os.environ, "SYMODE_QUIET": "1"}
    p = subprocess.run([sys.executable, "-m", "symode.cli", "audit", "torchdiffeq", "logistic", "--methods",
                        "dopri5", "--rtol", "1e-8", "--json", "--workers", "1"],
                       capture_output=True, text=True, timeout=600, env=env)
    assert p.returncode == 0, p.stderr
    data = json.loads(p.stdout)
    assert data["library"] == "torchdiffeq" and data["versions"]["torchdiffeq"]
    runs = data["models"][0]["runs"]
    assert {(r["route"], r["solver"], r["rtol"]) for r in runs} == {("torchdiffeq", "dopri5", 1e-8),
                                                                   ("torchdiffeq-adjoint", "dopri5", 1e-8)}
    assert {q["quantity"] for q in runs[0]["quantities"]} == {"loss", "grad[r]", "grad[K]", "grad_z0[0]",
                                                              "grad_t0", "grad_t1"}
    p = subprocess.run([sys.executable, "-m", "symode.cli", "audit", "torchdiffeq", "lotka-volterra", "--methods",
                        "rk4", "--routes", "torchdiffeq", "--workers", "1"],
                       capture_output=True, text=True, timeout=600, env=env)
    assert p.returncode == 1 and "FAIL grad_t0" in p.stdout, p.stderr
    for args, msg in ((["--methods", "rk45"], "unknown torchdiffeq solver"),
                      (["--routes", "odeint"], "unknown torchdiffeq route"),
                      (["--rtol", "1e-3,x"], "comma-separated"), (["--rtol", "-1"], "finite positive")):
        p = subprocess.run([sys.executable, "-m", "symode.cli", "audit", "torchdiffeq", "logistic", *args],
                           capture_output=True, text=True, timeout=600, env=env)
        assert p.returncode == 2 and msg in p.stderr and p.stderr.count("\n") == 1, p.stderr


def test_missing_extra_is_one_line(monkeypatch):
    from symode.interop import MissingExtraError
    from symode.route import Requirement
    monkeypatch.setattr(Requirement, "missing", lambda self: f"{self.name}: not installed ({self.hint})")
    with pytest.raises(MissingExtraError, match=r"cannot run here: .*pip install 'symode\[jax\]'") as info:
        audit("diffrax", [get_model("logistic")], workers=1)
    assert "\n" not in str(info.value)


def test_plot(td_report, tmp_path):
    pytest.importorskip("matplotlib", reason="--plot needs the extra symode[plot]")
    from symode.interop.audit_plot import audit_figure, plot_audit, render
    out = plot_audit(td_report, str(tmp_path / "audit.png"))
    data = Path(out).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert render(audit_figure(td_report)) == data  # the same report, the same bytes (no date in the metadata)
    assert [p.name for p in tmp_path.iterdir()] == ["audit.png"]  # no temporary file left
    # the lines drawn are the report's numbers: per adaptive (route, solver), the worst relative error per rtol,
    # recomputed here from the report's quantity rows
    ax = audit_figure(td_report).axes[0]
    drawn = {ln.get_label(): (list(ln.get_xdata()), list(ln.get_ydata())) for ln in ax.get_lines()}
    runs = [r for r in td_report.models[0]["runs"] if r["rtol"] is not None and "error" not in r]
    assert runs
    for r in runs:
        xs, ys = drawn[f"{r['route']} {r['solver']}"]
        worst = max(q["rel_error"] for q in r["quantities"] if "rel_error" in q)
        assert ys[xs.index(r["rtol"])] == max(worst, 1e-17)
    assert render(audit_figure(td_report), "svg").startswith(b"<?xml")
    fixed_only = audit("torchdiffeq", [get_model("logistic")], solvers=["rk4"], routes=["torchdiffeq"], workers=1)
    with pytest.raises(symode.SpecError, match="no adaptive configuration"):
        plot_audit(fixed_only, str(tmp_path / "none.png"))


@pytest.mark.slow
@pytest.mark.threads
def test_diffrax_audit():
    pytest.importorskip("diffrax", reason="the diffrax audit needs the extra symode[jax]")
    rep = audit("diffrax", [get_model("logistic")], solvers=["tsit5", "rk4"], rtols=(1e-9,), steps=(50,),
                workers=1)
    back = _run(rep, "logistic", "diffrax-backsolve", "tsit5")
    assert _q(back, "grad_t0")["verdict"] == "n/a" and "BacksolveAdjoint" in _q(back, "grad_t0")["note"]
    assert _q(back, "grad[r]")["verdict"] == "ok"
    assert _run(rep, "logistic", "diffrax", "rk4")["matches_discrete"]
    assert _run(rep, "logistic", "diffrax-direct", "rk4")["matches_discrete"]
    assert _run(rep, "logistic", "diffrax-backsolve", "rk4")["matches_discrete"] is False
    for route in ("diffrax", "diffrax-direct"):
        assert abs(_q(_run(rep, "logistic", route, "tsit5"), "grad_t1")["ratio"] - 1) < 1e-6


def test_plot_target_is_checked_before_any_work(tmp_path):
    """An existing --plot file is refused (exit 2, one line) unless --force, and a bad extension too: before the
    audit starts (these runs would otherwise take minutes)."""
    import subprocess
    import sys
    existing = tmp_path / "errors.png"
    existing.write_bytes(b"mine")
    for extra, message in ((["--plot", str(existing)], "already exists; pass --force"),
                           (["--plot", str(tmp_path / "errors.gif")], "ending in .png or .svg")):
        p = subprocess.run([sys.executable, "-m", "symode.cli", "audit", "torchdiffeq", "logistic", *extra],
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 2 and message in p.stderr and p.stderr.count("\n") == 1, p.stderr
    assert existing.read_bytes() == b"mine"
