"""The high-precision oracle (symode.oracle.engine) against independent references.

Independent references used here:
- closed forms (matrix exponential / dsolve, evaluated exactly by SymPy; symode.symbolic.closed_form), a method
  that shares no numerical code with the Taylor integrator;
- the logistic example published in the oracle issue (loss and dL/dr, dL/dK typed in from the issue text);
- the first-order Taylor identity L(z0 + δ) - L(z0) = dL/dz0 · δ + O(δ²) for the binary-double trap;
- central finite differences of the oracle's own loss in t0 / t1 (the definition of dL/dt0, dL/dt1), which
  checks the separately derived time-gradient formulas;
- the blow-up time of dz/dt = z², z(0) = 1, whose solution 1/(1 - t) is singular at t = 1.
"""
from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from functools import lru_cache

import mpmath
import pytest
import sympy

from symode.errors import IntegrationError, NoClosedFormError, SpecError
from symode.library import LIBRARY, get_model
from symode.methods import compute
from symode.model import Model
from symode.oracle import engine
from symode.oracle.engine import GUARD_DIGITS, exact_gradient, oracle_gradient, oracle_routes
from symode.spec import load_spec

#: Tolerances (relative, |a - b| <= tol * max(|b|, VALUE_FLOOR)), each with its reason.
TOL = {
    # oracle (either route, or the reported result) vs the closed form at `digits` digits: every value must be
    # right to all but the last printed digit (the rounding of the last digit alone is < 10^-(digits-1))
    "vs_exact": lambda digits: mpmath.mpf(10) ** -(digits - 1),
    # the published logistic values carry 29-32 significant digits; the issue asks for 28
    "published": mpmath.mpf(10) ** -28,
    # binary-double trap: Rational(0.1) - 1/10 = 5.55e-18 moves the loss by dL/dz0·δ (relative ~1e-15); the
    # first-order prediction must hold to 1 % (the O(δ²) remainder is ~1e-17 of the change)
    "taylor_first_order": mpmath.mpf("0.01"),
    # central difference with h = 1e-12 at 40 digits: truncation h²·L'''/6 ~ 1e-24, cancellation
    # 1e-40 / 1e-12 = 1e-28; 1e-20 leaves four orders of margin and still checks ~20 digits of the formula
    "fd_time": mpmath.mpf(10) ** -20,
    # the blow-up of 1/(1 - t) must be reported within 1e-3 of t = 1 (steps shrink geometrically towards it)
    "blowup_time": 1e-3,
}

CLOSED_FORM_MODELS = sorted(n for n, e in LIBRARY.items() if e.closed_form)
PUBLISHED_LOGISTIC = {  # from the issue text (independent of this code)
    "loss": "0.0030842100034167048037504551287",
    "r": "-0.13369402361358360651888692310",
    "K": "-0.056764194505877454213972876614",
}


@lru_cache(maxsize=None)
def model(name):
    return get_model(name)


@lru_cache(maxsize=None)
def oracle(name, digits):
    return oracle_gradient(model(name), digits, quiet=True)


@lru_cache(maxsize=None)
def exact(name, digits):
    return exact_gradient(model(name), digits)


@lru_cache(maxsize=None)
def routes(name, digits):
    return oracle_routes(model(name), digits + GUARD_DIGITS, quiet=True)


def _named(res) -> dict:
    """Every value of a GradResult or a route dict, by name (z1 included)."""
    if isinstance(res, dict):
        out = {"loss": res["loss"], "grad_t0": res["grad_t0"]}
        out.update({f"grad[{i}]": v for i, v in enumerate(res["grad"])})
        out.update({f"grad_z0[{i}]": v for i, v in enumerate(res["grad_z0"])})
        out.update({f"z1[{i}]": v for i, v in enumerate(res["z1"])})
        if res["grad_t1"] is not None:
            out["grad_t1"] = res["grad_t1"]
        return out
    return _named({"loss": res.loss, "grad": list(res.grad.values()), "grad_z0": res.grad_z0,
                   "grad_t0": res.grad_t0, "grad_t1": res.grad_t1, "z1": res.z1})


def _printed(res) -> dict:
    """The values as the JSON contract prints them (decimal strings read back at high precision)."""
    d = res.to_dict()
    with mpmath.workdps(120):
        return {"loss": mpmath.mpf(d["loss"]), "grad": [mpmath.mpf(v) for v in d["grad"].values()],
                "grad_z0": [mpmath.mpf(v) for v in d["grad_z0"]], "grad_t0": mpmath.mpf(d["grad_t0"]),
                "grad_t1": mpmath.mpf(d["grad_t1"]) if "grad_t1" in d else None,
                "z1": [mpmath.mpf(v) for v in d["z1"]]}


def _rel(a, b):
    return abs(a - b) / max(abs(b), engine.VALUE_FLOOR)


def _assert_close(got, ref, tol, what):
    g, r = _named(got), _named(ref)
    assert g.keys() == r.keys(), what
    with mpmath.workdps(120):
        bad = {k: mpmath.nstr(_rel(g[k], r[k]), 3) for k in r if _rel(g[k], r[k]) > tol}
    assert not bad, f"{what}: relative differences above {mpmath.nstr(tol, 3)}: {bad}"


# -- closed-form models: both routes and the result equal the exact values ------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("digits", [30, 50])
@pytest.mark.parametrize("name", CLOSED_FORM_MODELS)
def test_oracle_routes_equal_closed_form(name, digits):
    ref = exact(name, digits)
    r = routes(name, digits)
    _assert_close(r["forward"], ref, TOL["vs_exact"](digits), f"{name} forward route at {digits} digits")
    _assert_close(r["adjoint"], ref, TOL["vs_exact"](digits), f"{name} adjoint route at {digits} digits")
    res = oracle(name, digits)
    _assert_close(res, ref, TOL["vs_exact"](digits), f"{name} oracle result at {digits} digits")
    # the reported bound is honest: the printed decimal strings (what a user gets) are within it of the
    # closed form
    with mpmath.workdps(digits + 30):
        _assert_close(_printed(res), ref, mpmath.mpf(res.error_bound), f"{name}: printed values within error_bound")


def test_closed_form_model_list_is_the_expected_one():
    # the issue names these four; a library change that drops one must not silently shrink this test
    assert set(CLOSED_FORM_MODELS) >= {"linear", "seed-encoder", "logistic", "oscillator"}


@pytest.mark.parametrize("name", ["logistic", "oscillator"])
def test_time_gradients_match_closed_form(name):
    """dL/dt0 and dL/dt1 (signs included) against ∂L/∂T0, ∂L/∂T1 of the closed form."""
    res, ref = oracle(name, 30), exact(name, 30)
    tol = TOL["vs_exact"](30)
    assert ref.grad_t0 != 0 and ref.grad_t1 != 0
    assert _rel(res.grad_t0, ref.grad_t0) <= tol
    assert _rel(res.grad_t1, ref.grad_t1) <= tol


def test_observation_at_t1_leaves_grad_t1_undefined():
    # seed-encoder has an observation at t1 = 2: dL/dt1 is one-sided (derive.py conventions)
    assert oracle("seed-encoder", 30).grad_t1 is None
    assert "grad_t1" not in oracle("seed-encoder", 30).to_dict()


# -- no closed form: the routes agree and more precision changes nothing beyond the bound ----------------------
@pytest.mark.slow
@pytest.mark.parametrize("name", ["vanderpol", "mlp"])
def test_routes_agree_and_precision_doubling_is_within_bound(name):
    res = oracle(name, 30)
    bound = mpmath.mpf(res.error_bound)
    assert bound <= mpmath.mpf("1e-28")
    r = routes(name, 30)
    _assert_close(r["forward"], r["adjoint"], bound, f"{name}: forward vs adjoint route")
    doubled = oracle(name, 60)
    _assert_close(_printed(res), doubled, bound, f"{name}: 30 digits (as printed) vs 60 digits")


def test_no_closed_form_is_an_error_with_reason():
    with pytest.raises(NoClosedFormError, match="vanderpol.*no closed form"):
        exact_gradient(model("vanderpol"), 30)


# -- exact decimals --------------------------------------------------------------------------------------------
def _with(m: Model, **changes) -> Model:
    kw = dict(name=m.name, states=m.states, params=m.params, rhs=m.rhs, z0=m.z0, t0=m.t0, t1=m.t1,
              param_values=m.param_values, terminal=m.terminal,
              observations=[(o.time, o.term) for o in m.observations], running=m.running, t=m.t)
    kw.update(changes)
    return Model(**kw)


def test_decimal_z0_is_one_tenth_and_binary_double_differs_at_17th_digit():
    spec_model = model("logistic")  # its spec says z0 = "0.1"
    assert spec_model.z0[0] == sympy.Rational(1, 10)
    binary = _with(spec_model, z0=[sympy.Rational(0.1)])  # the double 0.1000000000000000055511...
    delta = sympy.Rational(0.1) - sympy.Rational(1, 10)
    assert delta != 0
    ref = exact("logistic", 30)  # closed form at z0 = 1/10 exactly
    dec = oracle("logistic", 30)
    _assert_close(dec, ref, TOL["vs_exact"](30), "spec z0 = 0.1 vs closed form at 1/10")
    bin_res = oracle_gradient(binary, 30, quiet=True)
    with mpmath.workdps(60):
        change = bin_res.loss - ref.loss
        predicted = ref.grad_z0[0] * mpmath.mpf(sympy.Float(delta, 60)._mpf_)
        rel = abs(change) / abs(ref.loss)
        # the binary z0 differs in the 17th significant digit of z0, and moves the loss far beyond the bound...
        assert mpmath.mpf("1e-18") < rel < mpmath.mpf("1e-13"), mpmath.nstr(rel, 3)
        assert rel > 1000 * mpmath.mpf(dec.error_bound)
        # ...by exactly the first-order amount dL/dz0 · δ
        assert abs(change - predicted) <= TOL["taylor_first_order"] * abs(predicted)


def test_logistic_matches_published_example():
    d = oracle("logistic", 30).to_dict()
    with mpmath.workdps(60):
        got = {"loss": d["loss"], "r": d["grad"]["r"], "K": d["grad"]["K"]}
        for k, pub in PUBLISHED_LOGISTIC.items():
            assert _rel(mpmath.mpf(got[k]), mpmath.mpf(pub)) <= TOL["published"], (k, got[k], pub)


# -- time gradients by finite differences on a model without closed form ---------------------------------------
@pytest.mark.slow
def test_time_gradients_match_central_differences_vanderpol():
    m = model("vanderpol")
    h = sympy.Rational(1, 10**12)
    digits = 40

    def loss(**kw):
        return oracle_gradient(_with(m, **kw), digits, quiet=True).loss

    base = oracle("vanderpol", digits)
    with mpmath.workdps(80):
        hm = mpmath.mpf(10) ** -12
        fd_t0 = (loss(t0=m.t0 + h) - loss(t0=m.t0 - h)) / (2 * hm)
        fd_t1 = (loss(t1=m.t1 + h) - loss(t1=m.t1 - h)) / (2 * hm)
        assert _rel(base.grad_t0, fd_t0) <= TOL["fd_time"], (base.grad_t0, fd_t0)
        assert _rel(base.grad_t1, fd_t1) <= TOL["fd_time"], (base.grad_t1, fd_t1)
        assert base.grad_t0 != 0 and base.grad_t1 != 0


# -- a contracting system: the adjoint must not back-solve z through it blindly ----------------------------------
CONTRACT_SPEC = '''
name = "contract"
states = ["z"]
rhs = ["-k*z"]
z0 = ["1"]
t0 = "0"
t1 = "1"
[params]
k = "200"
[loss]
terminal = "(z - 0.5)**2"
running = "z"
'''


def test_contracting_system_adjoint_equals_closed_form(monkeypatch):
    """dz/dt = -200 z on [0, 1]: back-solving z alone amplifies its error by e^200 (docs/design.md records this at
    k = 50 in float64); the adjoint route splits its backward pieces until the back-solved z meets the stored
    forward z, and stays exact.  (z(t1) = e^-200 itself is below VALUE_FLOOR: bounded absolutely.)"""
    m = load_spec(CONTRACT_SPEC)
    ref = exact_gradient(m, 30)
    r = oracle_routes(m, 30 + GUARD_DIGITS, quiet=True)
    assert r["adjoint"]["splits"] > 0
    with monkeypatch.context() as mp:  # without splitting, the back-solve misses and the route says so
        mp.setattr(engine, "MAX_ADJOINT_SPLITS", 0)
        with pytest.raises(IntegrationError, match="back-solving z"):
            oracle_routes(m, 30 + GUARD_DIGITS, quiet=True)
    _assert_close(r["adjoint"], ref, TOL["vs_exact"](30), "contracting model, adjoint route")
    _assert_close(r["forward"], ref, TOL["vs_exact"](30), "contracting model, forward route")


def test_route_disagreement_is_an_error(monkeypatch):
    """A disagreement between the routes is reported as a failure, never returned as a number (the check
    itself is tested by perturbing the adjoint route's result by 1e-20, far beyond 30 digits)."""
    real = engine._adjoint_route

    def perturbed(*args, **kwargs):
        out = real(*args, **kwargs)
        out["grad"] = [g * (1 + mpmath.mpf("1e-20")) for g in out["grad"]]
        return out

    monkeypatch.setattr(engine, "_adjoint_route", perturbed)
    with pytest.raises(IntegrationError, match="routes disagree on dL/da"):
        oracle_gradient(model("linear"), 30, quiet=True)


# -- failures ---------------------------------------------------------------------------------------------------
BLOWUP_SPEC = '''
name = "blowup"
states = ["z"]
rhs = ["z**2"]
z0 = ["1"]
t0 = "0"
t1 = "2"
[loss]
terminal = "z**2"
'''


def test_blowup_is_an_integration_error_near_t1():
    started = time.monotonic()
    with pytest.raises(IntegrationError) as info:
        oracle_gradient(load_spec(BLOWUP_SPEC), 30, quiet=True)
    assert time.monotonic() - started < 10
    assert info.value.time is not None and abs(info.value.time - 1.0) < TOL["blowup_time"]
    assert "blowup" in str(info.value)


def _cli(*args, env_extra=None, timeout=120):
    env = {**os.environ, "SYMODE_QUIET": "1", **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "symode.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


@pytest.mark.slow
def test_blowup_cli_one_line_exit_2(tmp_path):
    spec = tmp_path / "blowup.toml"
    spec.write_text(BLOWUP_SPEC)
    p = _cli("grad", str(spec), "--method", "oracle", "--json", timeout=30)
    assert p.returncode == 2
    assert p.stdout == ""
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("symode: error:") and "t = 0.99" in lines[0], p.stderr


@pytest.mark.slow
def test_exact_cli_without_closed_form_one_line_exit_2():
    p = _cli("grad", "vanderpol", "--method", "exact")
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "no closed form" in lines[0], p.stderr


@pytest.mark.parametrize("digits", [0, 4, 10**6, True, 30.0])
def test_bad_digits_refused(digits):
    with pytest.raises(SpecError, match="digits"):
        oracle_gradient(model("linear"), digits)


def test_registry_and_options():
    res = compute(model("linear"), "oracle", digits=30)
    assert res.method == "oracle" and res.digits == 30
    _assert_close(res, exact("linear", 30), TOL["vs_exact"](30), "compute(..., 'oracle')")
    assert compute(model("linear"), "exact", digits=30).method == "exact"
    with pytest.raises(SpecError, match="does not take steps="):  # Python's name for it (hardening round two)
        compute(model("linear"), "oracle", steps=10)


# -- progress --------------------------------------------------------------------------------------------------
def test_progress_is_silent_when_fast_and_rate_limited_when_slow(monkeypatch):
    monkeypatch.delenv("SYMODE_QUIET", raising=False)
    out = io.StringIO()
    p = engine._Progress("m", stream=out)
    cb = p.callback("forward", 40)
    cb(0.5)  # within the first second: nothing
    assert out.getvalue() == ""
    p.start -= 10  # pretend the computation has been running 10 s
    for f in (0.1, 0.2, 0.3):  # three calls in a burst: one line (at most one per PROGRESS_INTERVAL_S)
        cb(f)
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and "oracle m: forward route at 40 digits, 10%" in lines[0]
    monkeypatch.setenv("SYMODE_QUIET", "1")
    assert engine._Progress("m").callback("forward", 40) is None
    assert engine._Progress("m", quiet=True).callback("forward", 40) is None


@pytest.mark.slow
def test_progress_lines_on_a_slow_solve(capfd, monkeypatch):
    monkeypatch.delenv("SYMODE_QUIET", raising=False)
    monkeypatch.setenv("SYMODE_PROGRESS", "1")  # captured stderr is not a terminal: force progress on
    monkeypatch.setattr(engine, "PROGRESS_DELAY_S", 0.0)  # make the (fast) solve count as slow
    monkeypatch.setattr(engine, "PROGRESS_INTERVAL_S", 0.0)
    oracle_gradient(model("vanderpol"), 30)
    out, err = capfd.readouterr()
    assert out == ""
    assert "symode: oracle vanderpol:" in err and "route at" in err
    oracle_gradient(model("vanderpol"), 30, quiet=True)
    assert capfd.readouterr().err == ""
    # default for a captured (non-terminal) stderr: no progress, so a failing command's stderr is one line
    monkeypatch.delenv("SYMODE_PROGRESS")
    oracle_gradient(model("vanderpol"), 30)
    assert capfd.readouterr().err == ""
