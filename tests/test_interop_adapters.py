"""The torchdiffeq and diffrax adapters: the same model and loss as the oracle, through the real libraries.

Independent references: the oracle (30 digits, a different method: Taylor series with its own error bound), and
symode's CasADi ``discrete`` route with the same Butcher tableau and step count (a different implementation of
the same discrete gradient: CasADi's reverse mode vs the frameworks' autodiff).

Tolerance table (this module):

| comparison | rtol | why |
|---|---|---|
| adaptive solver at (rtol, atol) vs oracle | 1000 x (rtol, atol) | ``solver_tolerance``: global error of an adaptive
  solve is 10-1000x its local tolerance (TOLERANCES "cvodes-vs-oracle" reasoning) |
| backprop through fixed steps vs symode discrete, same tableau and grid | 1e-12 | the same discrete function
  differentiated by two autodiff systems: only rounding order differs over 100 steps (~5000 ulps of room) |
| continuous adjoint with fixed steps vs the discrete gradient | must DIFFER by > 1e-10 | the fixed-step adjoint is
  not the gradient of the computed loss (O(h^4) apart); the test shows the mismatch exists, the audit measures it |
"""
from __future__ import annotations


import pytest

import symode
from symode.check.compare import compare
from symode.check.tolerances import solver_tolerance
from symode.library import get_model

torch = pytest.importorskip("torch", reason="the torchdiffeq adapter needs the extra symode[torch]")
pytest.importorskip("torchdiffeq", reason="the torchdiffeq adapter needs the extra symode[torch]")
jax = pytest.importorskip("jax", reason="the diffrax adapter needs the extra symode[jax]")
pytest.importorskip("diffrax", reason="the diffrax adapter needs the extra symode[jax]")

from symode.interop.diffrax_adapter import diffrax_gradient  # noqa: E402
from symode.interop.torchdiffeq_adapter import torchdiffeq_gradient  # noqa: E402

DISCRETE_RTOL = 1e-12
TIGHT = 1e-10


@pytest.fixture(scope="module")
def oracle():
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = symode.compute(get_model(name), "oracle", digits=25)
        return cache[name]
    return get


def _scale(ref) -> float:
    return max(abs(float(v)) for _, v in ref.named_values())


@pytest.mark.slow
@pytest.mark.parametrize("adjoint", [False, True], ids=["odeint", "odeint_adjoint"])
@pytest.mark.parametrize("name", ["seed-encoder", "logistic"])
def test_torchdiffeq_dopri5_matches_the_oracle(oracle, name, adjoint):
    """seed-encoder: z0(θ), observations, a running cost; logistic: terminal loss, dL/dt1 defined."""
    got = torchdiffeq_gradient(get_model(name), adjoint=adjoint, scheme="dopri5", rtol=TIGHT, atol=TIGHT)
    ref = oracle(name)
    tol = solver_tolerance(TIGHT, TIGHT).scaled(_scale(ref))
    c = compare(got, ref, tolerance=tol)
    assert c.ok, c.to_markdown()
    assert got.stats["config"]["function"] == ("odeint_adjoint" if adjoint else "odeint")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["lotka-volterra", "seed-encoder"])
def test_torchdiffeq_rk4_is_the_38_rule_and_backprop_is_the_discrete_gradient(name):
    """torchdiffeq's "rk4" equals symode's discrete gradient with Kutta's 3/8 tableau (rk38) on the same grid:
    loss, dL/dθ and dL/dz0 (dL/dt0 is not compared: torchdiffeq's grid t0 + k·h keeps h fixed when t0 moves,
    symode's stretches it -- two different discrete functions of t0)."""
    m = get_model(name)
    got = torchdiffeq_gradient(m, scheme="rk4", steps=100)
    ref = symode.compute(m, "discrete", scheme="rk38", steps=100)
    fields = lambda r: {"loss": r.loss, "grad": r.grad, "grad_z0": r.grad_z0}  # noqa: E731
    c = compare(fields(got), fields(ref), rtol=DISCRETE_RTOL, atol=DISCRETE_RTOL * _scale(ref))
    assert c.ok, c.to_markdown()
    # the classic tableau is a different scheme: it must NOT match to that tolerance (the check can fail)
    other = symode.compute(m, "discrete", scheme="rk4", steps=100)
    assert not compare(fields(got), fields(other), rtol=DISCRETE_RTOL, atol=DISCRETE_RTOL * _scale(ref)).ok


@pytest.mark.slow
def test_torchdiffeq_fixed_step_adjoint_is_not_the_discrete_gradient():
    m = get_model("lotka-volterra")
    got = torchdiffeq_gradient(m, adjoint=True, scheme="rk4", steps=100)
    ref = symode.compute(m, "discrete", scheme="rk38", steps=100)
    assert abs(got.loss - ref.loss) <= 1e-13 * abs(ref.loss)  # the same forward solve
    worst = max(abs(got.grad[k] - ref.grad[k]) / abs(ref.grad[k]) for k in ref.grad)
    assert worst > 1e-10  # the adjoint ODE discretised is not the adjoint of the discretisation


@pytest.mark.slow
@pytest.mark.threads
def test_diffrax_checkpoint_rk4_is_the_discrete_gradient_including_times():
    """No observations: diffrax's dt0 = (t1 - t0)/steps moves the grid with t0 and t1 exactly as symode's
    discrete route does, so every quantity, dL/dt0 and dL/dt1 included, is the same discrete derivative."""
    m = get_model("logistic")
    for adjoint in ("checkpoint", "direct"):
        got = diffrax_gradient(m, adjoint=adjoint, scheme="rk4", steps=100)
        ref = symode.compute(m, "discrete", scheme="rk4", steps=100)
        c = compare(got, ref, rtol=DISCRETE_RTOL, atol=DISCRETE_RTOL * _scale(ref))
        assert c.ok, c.to_markdown()


@pytest.mark.slow
@pytest.mark.threads
def test_diffrax_adaptive_matches_the_oracle(oracle):
    got = diffrax_gradient(get_model("seed-encoder"), scheme="tsit5", rtol=TIGHT, atol=TIGHT)
    ref = oracle("seed-encoder")
    c = compare(got, ref, tolerance=solver_tolerance(TIGHT, TIGHT).scaled(_scale(ref)))
    assert c.ok, c.to_markdown()


@pytest.mark.slow
@pytest.mark.threads
def test_diffrax_backsolve_has_no_time_gradients_and_says_why(oracle):
    got = diffrax_gradient(get_model("logistic"), adjoint="backsolve", scheme="tsit5", rtol=TIGHT, atol=TIGHT)
    assert got.grad_t0 is None and got.grad_t1 is None
    assert set(got.stats["unavailable"]) == {"grad_t0", "grad_t1"}
    assert "BacksolveAdjoint" in got.stats["unavailable"]["grad_t0"]
    d = got.to_dict()
    assert "grad_t0" not in d and "grad_t1" not in d
    assert "dL/dt0" not in got.to_table()
    ref = oracle("logistic")
    c = compare({"grad": got.grad, "grad_z0": got.grad_z0}, {"grad": ref.grad, "grad_z0": ref.grad_z0},
                tolerance=solver_tolerance(TIGHT, TIGHT).scaled(_scale(ref)))
    assert c.ok, c.to_markdown()


@pytest.mark.slow
@pytest.mark.threads
def test_backsolve_result_is_valid_json_schema():
    jsonschema = pytest.importorskip("jsonschema")
    import json
    from importlib import resources
    schema = json.loads(resources.files("symode").joinpath("schemas/grad.schema.json").read_text())
    got = diffrax_gradient(get_model("logistic"), adjoint="backsolve", scheme="rk4", steps=20)
    jsonschema.validate(json.loads(got.to_json()), schema)
    d = json.loads(got.to_json())
    d["grad_t0"] = "0.5"  # the route declares no time gradients: a result carrying one is invalid
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(d, schema)
    d = json.loads(symode.compute(get_model("logistic"), "diffrax", solver="rk4", fixed_steps=20).to_json())
    jsonschema.validate(d, schema)  # a route that declares time gradients may carry them
    del d["grad_t0"]  # and may omit dL/dt0 (undefined where an observation lies at t0: never required)
    jsonschema.validate(d, schema)


@pytest.mark.parametrize("call, message", [
    (lambda m: torchdiffeq_gradient(m, scheme="rk4"), "takes fixed steps: give their number"),
    (lambda m: torchdiffeq_gradient(m, scheme="dopri5", steps=10), "is adaptive; fixed_steps does not apply"),
    (lambda m: torchdiffeq_gradient(m, scheme="rk4", steps=10, rtol=1e-3), "rtol/atol do not apply"),
    (lambda m: torchdiffeq_gradient(m, scheme="dopri5", rtol=-1.0), "rtol must be a finite positive"),
    (lambda m: torchdiffeq_gradient(m, scheme="rk45"), "unknown torchdiffeq solver 'rk45'"),
    pytest.param(lambda m: diffrax_gradient(m, scheme="dopri8"), "unknown diffrax solver 'dopri8'",
                 marks=pytest.mark.threads),
    pytest.param(lambda m: diffrax_gradient(m, adjoint="implicit"), "unknown diffrax adjoint 'implicit'",
                 marks=pytest.mark.threads),
])
def test_bad_options_are_clear_errors(call, message):
    with pytest.raises(symode.SpecError, match=message):
        call(get_model("linear"))


def test_missing_extra_is_one_line_naming_it(monkeypatch):
    import sys
    from symode.interop import MissingExtraError
    monkeypatch.setitem(sys.modules, "torchdiffeq", None)  # import torchdiffeq now raises ImportError
    with pytest.raises(MissingExtraError) as info:
        torchdiffeq_gradient(get_model("linear"))
    msg = str(info.value)
    assert "\n" not in msg and "pip install 'symode[torch]'" in msg and msg.startswith("the torchdiffeq adapter")


# tests/test_observation_t0.py's model: an observation exactly at t0 (evaluated on z0; dL/dt0 undefined there)
OBS_AT_T0 = '''
name = "obs0"
states = ["x"]
rhs = ["-a*x + b"]
z0 = ["1"]
t0 = "0"
t1 = "1"
[params]
a = "0.5"
b = "0.3"
[loss]
terminal = "x**2"
[loss.observations]
times = ["0", "0.5"]
data = [["0.9"], ["0.5"]]
'''


@pytest.mark.slow
@pytest.mark.threads
def test_observation_at_t0_is_evaluated_on_z0_and_dL_dt0_is_undefined():
    """References: the oracle (adaptive solvers, tolerance as above) and symode's CasADi discrete route (fixed
    steps, DISCRETE_RTOL; its grid starts at the observation's fixed time, as diffrax's does at t0 = 0)."""
    from symode.interop.discrete import discrete_gradient
    from symode.spec import load_spec
    m = load_spec(OBS_AT_T0)
    ref = symode.compute(m, "oracle", digits=25)
    assert ref.grad_t0 is None and ref.grad_t1 is not None
    tol = solver_tolerance(TIGHT, TIGHT).scaled(_scale(ref))
    runs = [torchdiffeq_gradient(m, adjoint=a, rtol=TIGHT, atol=TIGHT) for a in (False, True)]
    runs += [diffrax_gradient(m, adjoint=a, rtol=TIGHT, atol=TIGHT) for a in ("checkpoint", "backsolve")]
    fields = lambda r: {"loss": r.loss, "grad": r.grad, "grad_z0": r.grad_z0}  # noqa: E731
    for got in runs:
        assert got.grad_t0 is None, got.method
        c = compare(got if got.grad_t1 is not None else fields(got), ref if got.grad_t1 is not None else fields(ref),
                    tolerance=tol)
        assert c.ok, c.to_markdown()
    # the time gradients compared above: dL/dt1 of the three routes that compute it; backsolve computes none, and
    # says so only for dL/dt1 (dL/dt0 is undefined for the model, not unavailable from the library)
    assert [r.grad_t1 is not None for r in runs] == [True, True, True, False]
    assert set(runs[-1].stats["unavailable"]) == {"grad_t1"}
    discrete = symode.compute(m, "discrete", scheme="rk4", steps=100)
    # diffrax: loss, dL/dθ, dL/dz0 only -- its grid runs uniformly through the observation at 0.5 (read from the
    # dense output) where symode's discrete problem ends a segment, so dL/dt1 is another discrete function's
    # derivative (docs/audits.md, Finding 6); the exact discrete reference is the same function: every quantity
    for got, pick in ((diffrax_gradient(m, scheme="rk4", steps=100), fields),
                      (discrete_gradient(m, "rk4", 100, digits=20), lambda r: r)):
        assert got.grad_t0 is None
        c = compare(pick(got), pick(discrete), rtol=DISCRETE_RTOL, atol=DISCRETE_RTOL * _scale(discrete))
        assert c.ok, c.to_markdown()
