"""Acceptance tests of hardening round two (issue 11), the route items:

* item 1, ``TestR2Item01UnresolvedSteps``: a fixed-step route detects a grid that does not resolve its own
  solution (a step-halving estimate against the step's own scale): a blow-up is refused, a coarse grid flagged;
* item 2, ``TestR2Item02KinkCrossings``: a result that depends on a kink crossed inside the interval says so,
  and CVODES stops at the switching times, so that its gradient agrees with the oracle;
* concurrency, ``TestR2ConcurrentRoutes``: every route from 4 threads at once gives the results of a
  one-thread run, and the process's stdout and stderr still work afterwards.

Expected values come from hand-derived formulas stated at each test.
"""
from __future__ import annotations

import math

import pytest
import sympy

from symode.errors import IntegrationError
from symode.library import get_model, model_names
from symode.methods import compute
from symode.model import T, Model
from symode.registry import get_route, route_names
from symode.spec import load_spec
from tests.test_hardening import assert_clear_cli_error, cli, spec_text, write

TOL = {
    # dz/dt = z², z(0) = 1 has its pole at t = 1 exactly (z = 1/(1 - t)); with t1 = 1 the last grid step
    # ends on it.  The error must name a time within five rk4 steps of 100 of it.
    "pole_time": 0.05,
}
#: step_halving_error of the built-in models at the default grid (rk4, 100 steps), measured: 5e-15 (mlp) to
#: 5e-7 (spiral).  The warning threshold (resolution.UNRESOLVED_WARN = 1e-2) is 2e4 times above the largest.
RESOLVED_BOUND = 1e-5

POLE = spec_text(name="pole", rhs=("z**2",), z0=("1",), t1='"1"', params={}, terminal="z**2")


def _sym(name):
    return sympy.Symbol(name, real=True)


class TestR2Item01UnresolvedSteps:
    def test_the_issues_pole_is_refused_on_the_command_line(self, tmp_path):
        path = write(tmp_path, "pole.toml", POLE)
        rc, out, err = cli(tmp_path, "grad", path, "--method", "discrete")
        line = assert_clear_cli_error(rc, out, err, "does not resolve", "blows up")
        t = float(line.split("near t = ")[1].split(":")[0])
        assert abs(t - 1) <= TOL["pole_time"], line

    @pytest.mark.parametrize("route", ["discrete", "forward", "adjoint", "adjoint-stored"])
    @pytest.mark.parametrize("scheme", ["rk4", "dopri5", "midpoint"])
    def test_every_fixed_step_route_refuses_the_pole(self, route, scheme):
        m = load_spec(POLE)
        with pytest.raises(IntegrationError) as info:
            compute(m, route, scheme=scheme, steps=100)
        assert info.value.time is not None and abs(info.value.time - 1) <= TOL["pole_time"], str(info.value)

    def test_a_steep_finite_solution_on_a_coarse_grid_is_refused_without_claiming_a_pole(self):
        # t1 = 0.99: z(0.99) = 1/(1 - 0.99) = 100 is finite (by hand), but 20 rk4 steps cannot follow the last
        # stretch (z from ~17 to ~100 in one step).  The grid cannot tell this from a pole, so the error must
        # not claim one: it says what would tell (cvodes, oracle) and what to change (more steps).
        m = load_spec(spec_text(name="steep", rhs=("z**2",), z0=("1",), t1='"0.99"', params={}, terminal="z"))
        with pytest.raises(IntegrationError) as info:
            compute(m, "discrete", scheme="rk4", steps=20)
        message = str(info.value)
        assert "or a grid far too coarse" in message and "more steps" in message and "cvodes" in message
        # and with enough steps the same model is resolved: rk4's global error at 10,000 steps is far below
        # the 1e-6 relative asked here (the loss is z(t1) = 100)
        r = compute(m, "discrete", scheme="rk4", steps=10_000)
        assert "warning" not in r.stats and r.loss == pytest.approx(100, rel=1e-6)

    def test_a_grid_too_coarse_for_the_growth_is_flagged(self):
        # Explicit Euler approaching the pole stays finite and smooth-looking (z(1) ≈ 30 instead of no value):
        # not refused, but flagged on the result.
        r = compute(load_spec(POLE), "discrete", scheme="euler", steps=100)
        assert "does not resolve the solution near t = 0.99" in r.stats["warning"]
        assert r.stats["step_halving_error"] > 1e-2

    def test_fast_exponential_growth_outgrowing_the_grid_is_flagged_not_refused(self):
        # dz/dt = 50 z with rk4, 10 steps: h·λ = 5, rk4 multiplies by R(5) = 65.375 per step where e^5 = 148.4
        # (by hand): the grid does not resolve the growth, but the growth rate is constant (no blow-up)
        z, a = _sym("z"), _sym("a")
        m = Model(name="grow", states=[z], params=[a], rhs=[a * z], z0=[1], t0=0, t1=1, param_values={a: 50},
                  terminal=z ** 2)
        r = compute(m, "discrete", scheme="rk4", steps=10)
        assert "does not resolve" in r.stats["warning"]
        assert r.loss == pytest.approx(65.375 ** 20, rel=1e-13)

    def test_a_stiff_decaying_transient_stepped_over_is_not_refused(self):
        # dz/dt = -1000 (z - cos t): gauss2 with h·λ = -40 steps over the transient (a decaying mode): the
        # step-halving estimate is large on the first step, but nothing grows: flagged at most, never refused
        z, k = _sym("z"), _sym("k")
        m = Model(name="stiff-relax", states=[z], params=[k], rhs=[-k * (z - sympy.cos(T))], z0=[0], t0=0, t1=1,
                  param_values={k: 1000}, terminal=(z - sympy.Rational(1, 2)) ** 2)
        r = compute(m, "discrete", scheme="gauss2", steps=25)
        assert math.isfinite(r.loss)

    @pytest.mark.parametrize("name", [n for n in model_names() if n != "linreg"])
    def test_resolved_runs_are_not_flagged(self, name):
        r = compute(get_model(name), "discrete")
        assert r.stats["step_halving_error"] < RESOLVED_BOUND, r.stats
        assert "warning" not in r.stats


# ---------------------------------------------------------------------------------------------------------------
# 2. Kinks crossed inside the interval

# dz/dt = a |t - 1| - b z: the kink of |t - 1| is crossed at t = 1 (a time kink; the issue's 1.4e-4 was of this
# kind: CVODES with Adams at 1e-12 stepped across it and returned dL/db 4e-5 off).
TIME_KINK = spec_text(name="tkink", rhs=("a*abs(t - 1) - b*z",), z0=("0",), t1='"2"',
                      params={"a": '"1"', "b": '"0.5"'}, terminal="z**2")
# dz/dt = a - b |z|, z0 = -1, a = 1, b = 1/2: while z < 0, z' = 1 + z/2, so z = -2 + e^{t/2} (by hand), which
# crosses 0 at t = 2 ln 2.
STATE_KINK = spec_text(name="skink", rhs=("a - b*abs(z)",), z0=("-1",), t1='"3"',
                       params={"a": '"1"', "b": '"0.5"'}, terminal="z**2")


#: symode's own routes with a numeric result on a model without a closed form (all but exact)
_OWN_ROUTES = ("oracle", "discrete", "forward", "adjoint", "adjoint-stored", "cvodes")


def _cvodes_vs_oracle():
    from symode.check.tolerances import COMPARISON_TOLERANCES
    return COMPARISON_TOLERANCES["cvodes-vs-oracle"]


class TestR2Item02KinkCrossings:
    @pytest.mark.parametrize("text", [TIME_KINK, STATE_KINK], ids=["time-kink", "state-kink"])
    def test_cvodes_across_a_kink_agrees_with_the_oracle(self, text):
        from symode.check.compare import compare
        m = load_spec(text)
        c, o = compute(m, "cvodes"), compute(m, "oracle", digits=30)
        result = compare(c, o, tolerance=_cvodes_vs_oracle())
        assert result.ok, result.summary()

    def test_cvodes_stops_at_the_switching_time(self):
        r = compute(load_spec(STATE_KINK), "cvodes")
        (tau,) = r.stats["switching_times"]
        assert tau == pytest.approx(2 * math.log(2), rel=1e-9)  # the hand value; CVODES's z is good to ~1e-10
        assert r.stats["pieces"] == 2

    # every registered route but exact (this model has no closed form: dsolve's solution is implicit); the
    # adapters of other libraries run in the slow tier
    @pytest.mark.parametrize("route", [*_OWN_ROUTES, *(pytest.param(r, marks=pytest.mark.slow) for r in route_names()
                                                      if r not in _OWN_ROUTES and r != "exact")])
    def test_every_route_says_its_result_depends_on_a_crossed_kink(self, route):
        missing = get_route(route).missing()
        if missing:  # a registered route whose optional dependency is not installed here (CI installs them)
            pytest.skip("; ".join(missing))
        r = compute(load_spec(STATE_KINK), route)
        note = r.stats["kink_crossings"]
        assert "crosses the kink of Abs(z)" in note
        t = float(note.split("at t = ")[1].split(" ")[0])
        assert t == pytest.approx(2 * math.log(2), rel=1e-9)
        assert "kink" in r.to_table()  # and the table shows it

    def test_a_smooth_model_carries_no_such_note(self):
        assert "kink_crossings" not in compute(get_model("logistic"), "discrete").stats


# ---------------------------------------------------------------------------------------------------------------
# Concurrency: every route from 4 threads at once

_THREADS_SCRIPT = r"""
import concurrent.futures, json, os, sys, threading
from symode.library import get_model
from symode.methods import compute

ROUTES = [("oracle", {"digits": 20}), ("exact", {"digits": 20}), ("discrete", {}), ("forward", {}),
          ("adjoint", {}), ("adjoint-stored", {}), ("cvodes", {}),
          ("discrete", {"scheme": "gauss2", "steps": 20}), ("adjoint-stored", {"scheme": "backward_euler"})]
# and every other registered route that can run here (the interop adapters where torch or JAX is installed)
from symode.registry import routes
ROUTES += [(r.name, {}) for r in routes() if r.name not in {n for n, _ in ROUTES} and not r.missing()]
m = get_model("logistic")


def values(r):
    d = r.to_dict()
    d.pop("stats", None)  # timings and solver counters of a run, not its values
    return d


reference = [values(compute(m, name, **opts)) for name, opts in ROUTES]  # one thread, one route at a time
before = os.fstat(1), os.fstat(2)
barrier = threading.Barrier(4)


def work(k):
    barrier.wait()
    got = []
    for rnd in range(3):
        order = ROUTES if (k + rnd) % 2 == 0 else ROUTES[::-1]
        for name, opts in order:
            got.append((ROUTES.index((name, opts)), values(compute(m, name, **opts))))
    return got


with concurrent.futures.ThreadPoolExecutor(4) as pool:
    results = [item for part in pool.map(work, range(4)) for item in part]
after = os.fstat(1), os.fstat(2)
report = {
    "routes": [name for name, _ in ROUTES],
    "runs": len(results),
    "mismatches": [ROUTES[i][0] for i, v in results if v != reference[i]],
    "same_descriptors": all((a.st_dev, a.st_ino) == (b.st_dev, b.st_ino) for a, b in zip(before, after)),
    "links": [a.st_nlink for a in after],
}
print(json.dumps(report))
sys.stdout.flush()
os.write(1, b"FD1-ALIVE\n")
os.write(2, b"FD2-ALIVE\n")
"""


class TestR2ConcurrentRoutes:
    @pytest.mark.slow  # 20 s with symode's routes, 60 s with the torchdiffeq and diffrax adapters installed
    def test_every_route_from_four_threads_gives_the_sequential_results_and_leaves_stdout_working(self):
        import json
        import subprocess
        import sys
        from pathlib import Path
        p = subprocess.run([sys.executable, "-c", _THREADS_SCRIPT], capture_output=True, text=True, timeout=900,
                           cwd=Path(__file__).resolve().parents[1], env={**__import__("os").environ,
                                                                      "SYMODE_QUIET": "1"})
        assert p.returncode == 0, p.stderr[-3000:]
        lines = p.stdout.splitlines()
        assert "FD1-ALIVE" in lines, f"stdout lost after the threads: {p.stdout[-2000:]!r}"
        assert "FD2-ALIVE" in p.stderr, f"stderr lost after the threads: {p.stderr[-2000:]!r}"
        report = json.loads(next(line for line in lines if line.startswith("{")))
        assert report["routes"][:9] == ["oracle", "exact", "discrete", "forward", "adjoint", "adjoint-stored",
                                        "cvodes", "discrete", "adjoint-stored"], report["routes"]
        assert report["runs"] == 4 * 3 * len(report["routes"])
        assert report["mismatches"] == [], report
        assert report["same_descriptors"] and all(n > 0 for n in report["links"]), report
