"""Training (`symode train`, symode.train): optimisers, the objective over any route, targets, the loop, the CLI.

Tolerances of this module (each with where the expected value comes from):
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import mpmath
import numpy as np
import pytest
import sympy

import symode
from symode.cli import main
from symode.errors import SpecError
from symode.train import (Adam, GradientDescent, Objective, TrainingDiverged, fit_model, make_optimizer,
                          make_problem, read_targets, run, truth_targets, with_theta)
from symode.train.regression import DerivedGradient, NumericGradient, regression_data
from tests.test_codegen_compile import private_cache  # noqa: F401,E402  (autouse: a fresh build cache)

TOL = {
    # float64 operations that are the same arithmetic in a different order or evaluation path (the fixed-step
    # objective maps the route's graph over θ; compute() calls it directly): a few ulps.
    "same_graph_rel": 1e-13,
    # the oracle objective (30 digits, rounded to float64) vs the closed form differentiated here with SymPy and
    # evaluated with mpmath at 30 digits: only the final rounding to float64 remains (1 ulp ~ 1.1e-16).
    "oracle_vs_closed_form_rel": 4e-16,
    # targets are the oracle's 20-digit states rounded to float64: half an ulp, 1.1e-16 relative.
    "target_rel": 2.3e-16,
    # the fit model's loss at the truth: 11 squared errors of at most half an ulp (~1e-16) each, averaged.
    "loss_at_truth": 1e-30,
    # the SymPy-derived linear-regression gradient vs the formula (2/n) Σ (a x + b - y)(x, 1) summed here
    # with math.fsum: the lambdified sum rounds at each of 20 terms (~20 ulps).
    "linreg_gradient_rel": 1e-14,
    # the history's gradient norm (scaled by the largest component against overflow) vs sqrt(fsum(g_j^2)):
    # a few roundings of numbers of the same size, ~2 ulps.
    "norm_rel": 5e-16,
    # an interop adapter (adaptive, rtol 1e-10, atol 1e-12) against symode's discrete adjoint (rk4, 200 steps:
    # ~1e-12) over 5 steps of gradient descent at learning rate 1: symode check allows an adaptive route
    # 1000 x its rtol relative per gradient (|dL/dθ| <= 2.5 here, 2.5e-7), accumulated over 5 steps; measured
    # 1.3e-10 (torchdiffeq and diffrax).  Training moves θ by 2.1 in those steps.
    "adapter_vs_discrete_abs": 1.25e-6,
}


def _linear_closed_form(a, b, z0, T):
    """z(T) of dz/dt = a z + b from z0 (a != 0), in mpmath."""
    return (z0 + b / a) * mpmath.exp(a * T) - b / a


# -- optimisers ------------------------------------------------------------------------------------------------

def test_gradient_descent_is_the_seed_rule():
    th, g = np.array([0.5, -1.0]), np.array([2.0, 0.25])
    assert list(GradientDescent(0.1).step(th, g)) == [0.5 - 0.1 * 2.0, -1.0 - 0.1 * 0.25]


def test_adam_first_step_has_the_learning_rate_as_size():
    # Kingma & Ba, section 2.1: with bias correction the first step is lr * g/(|g| + eps), i.e. ~lr * sign(g)
    th = Adam(0.01).step(np.array([1.0, 1.0, 1.0]), np.array([3.0, -1e-3, 250.0]))
    expected = [1.0 - 0.01 * g / (abs(g) + 1e-8) for g in (3.0, -1e-3, 250.0)]
    assert th == pytest.approx(expected, rel=1e-15)


def test_adam_second_step_by_hand():
    # Algorithm 1 of Kingma & Ba written out for two steps with gradients g1, g2
    b1, b2, eps, lr = 0.9, 0.999, 1e-8, 0.05
    g1, g2 = 0.7, -0.2
    m = (1 - b1) * g1
    v = (1 - b2) * g1 ** 2
    x = 2.0 - lr * (m / (1 - b1)) / (math.sqrt(v / (1 - b2)) + eps)
    m = b1 * m + (1 - b1) * g2
    v = b2 * v + (1 - b2) * g2 ** 2
    x = x - lr * (m / (1 - b1 ** 2)) / (math.sqrt(v / (1 - b2 ** 2)) + eps)
    opt = Adam(lr)
    th = opt.step(np.array([2.0]), np.array([g1]))
    th = opt.step(th, np.array([g2]))
    assert th[0] == pytest.approx(x, rel=1e-15)


@pytest.mark.parametrize("lr", [0.0, -1.0, float("nan"), float("inf"), True])
def test_bad_learning_rate(lr):
    with pytest.raises(SpecError, match="learning rate"):
        GradientDescent(lr)


def test_unknown_optimizer():
    with pytest.raises(SpecError, match="unknown optimizer 'sgd'; choose one of gd, adam"):
        make_optimizer("sgd", 0.1)


# -- the objective ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["adjoint", "adjoint-stored"])  # the continuous adjoint, z back-solved or stored
def test_fixed_step_objective_equals_compute_at_the_iterate(method):
    m = symode.get_model("lotka-volterra")
    th = np.array([1.4, 0.9, 1.1, 2.9])
    L, g = Objective(m, method, steps=50)(th)
    r = symode.compute(with_theta(m, th), method, steps=50)
    assert L == pytest.approx(float(r.loss), rel=TOL["same_graph_rel"])
    assert g == pytest.approx([float(v) for v in r.grad.values()], rel=TOL["same_graph_rel"])


def test_oracle_objective_against_the_closed_form():
    m = symode.get_model("linear")  # L = (z(1.5) - 0.4)^2, z(0) = 1
    th = np.array([-0.55, 0.3])
    L, g = Objective(m, "oracle", digits=30)(th)
    a, b = sympy.symbols("a b")
    zT = (1 + b / a) * sympy.exp(a * sympy.Rational(3, 2)) - b / a
    loss = (zT - sympy.Rational(2, 5)) ** 2
    at = {a: sympy.Rational(Fraction(th[0])), b: sympy.Rational(Fraction(th[1]))}
    ref = [float(sympy.N(e.subs(at), 30)) for e in (loss, sympy.diff(loss, a), sympy.diff(loss, b))]
    assert [L, *g] == pytest.approx(ref, rel=TOL["oracle_vs_closed_form_rel"])


def test_with_theta_uses_the_exact_binary_value():
    m = with_theta(symode.get_model("linear"), [0.1, -0.3])
    assert m.param_values[m.params[0]] == sympy.Rational(Fraction(0.1))  # not 1/10
    assert m.param_values[m.params[0]] != sympy.Rational(1, 10)


def test_objective_refuses_options_and_methods_it_does_not_have():
    m = symode.get_model("linear")
    with pytest.raises(SpecError, match="does not take digits="):
        Objective(m, "discrete", digits=30)
    with pytest.raises(SpecError, match="unknown method 'backprop'"):
        Objective(m, "backprop")
    with pytest.raises(SpecError, match="3 values for the 2 parameters"):
        Objective(m, "discrete")([1.0, 2.0, 3.0])


# -- targets and the fitting model -----------------------------------------------------------------------------

def _seed_targets():
    m = symode.get_model("linear")
    xs = [[sympy.Rational(k, 2)] for k in (-2, 0, 3)]
    return m, truth_targets(m, {"a": sympy.Rational(-1, 2)}, times=["0.5", "1.5"], initial=xs)


def test_truth_targets_against_the_closed_form():
    m, tg = _seed_targets()
    _, z = tg.as_arrays()
    with mpmath.workdps(30):
        for k, x in enumerate((-1, 0, 1.5)):
            for i, T in enumerate((0.5, 1.5)):
                ref = _linear_closed_form(mpmath.mpf(-0.5), mpmath.mpf(0.5), mpmath.mpf(x), mpmath.mpf(T))
                assert z[k, i, 0] == pytest.approx(float(ref), rel=TOL["target_rel"])
    assert "the truth a=-0.5, b=0.5" in tg.source


def test_fit_model_stacks_trajectories_and_its_loss_vanishes_at_the_truth():
    m, tg = _seed_targets()
    fit = fit_model(m, tg)
    assert fit.state_names == ["z_1", "z_2", "z_3"] and fit.t1 == sympy.Rational(3, 2)
    assert [o.time for o in fit.observations] == [sympy.Rational(1, 2), sympy.Rational(3, 2)]
    at_truth = symode.compute(fit.with_values({"a": sympy.Rational(-1, 2)}), "oracle", digits=30)
    assert abs(float(at_truth.loss)) < TOL["loss_at_truth"]
    elsewhere = symode.compute(fit, "oracle", digits=30)  # a = -0.8: the data do not fit
    assert float(elsewhere.loss) > 1e-4


def test_fit_model_loss_is_the_mean_over_trajectories():
    # one trajectory observed once: (z - d)^2; two identical trajectories: the same value (mean, not sum)
    m = symode.get_model("linear")
    one = fit_model(m, truth_targets(m, {"a": sympy.Rational(-1)}, times=["1.5"]))
    two = fit_model(m, truth_targets(m, {"a": sympy.Rational(-1)}, times=["1.5"], initial=[[1], [1]]))
    l1 = symode.compute(one, "oracle", digits=20).loss
    l2 = symode.compute(two, "oracle", digits=20).loss
    assert float(l1) > 1e-3 and abs(float(l1 - l2)) < 1e-18 * float(l1)


def test_read_csv_targets_with_trajectories_and_initial_rows(tmp_path):
    f = tmp_path / "d.csv"
    f.write_text("trajectory,t,x,v\nA,0,1,0\nA,0.5,0.8,-0.7\nA,1,0.4,-0.9\nB,1,0.1,0.2\nB,0.5,0.3,0.1\n")
    tg = read_targets(str(f), symode.get_model("oscillator"))
    assert tg.times == [sympy.Rational(1, 2), 1]
    assert tg.initial == [[1, 0], None]  # A starts from its t0 row; B from the model's z0
    assert tg.trajectories[1] == [[sympy.Rational(3, 10), sympy.Rational(1, 10)], [sympy.Rational(1, 10),
                                                                                   sympy.Rational(1, 5)]]


def test_read_npz_targets(tmp_path):
    f = tmp_path / "d.npz"
    np.savez(f, t=np.array([0.5, 1.0]), z=np.array([[[0.9], [0.8]], [[0.1], [0.2]]]), z0=np.array([[1.0], [0.0]]))
    tg = read_targets(str(f), symode.get_model("linear"))
    assert tg.count == 2 and tg.initial == [[1], [0]] and float(tg.trajectories[0][1][0]) == 0.8


@pytest.mark.parametrize("text, message", [
    ("t,y\n0.5,1\n", "the header must name the columns t, z"),
    ("t,z\n0.5,1\n0.5,2\n", "strictly increasing"),
    ("t,z\n-1,1\n", "not after t0"),
    ("t,z\n0.5,nan\n", "not a finite number"),
    ("t,z\n0.5\n", "line 2 has 1 fields"),
    ("trajectory,t,z\n1,0.5,1\n2,0.7,1\n", "the same times"),
])
def test_bad_csv_targets(tmp_path, text, message):
    f = tmp_path / "d.csv"
    f.write_text(text)
    with pytest.raises(SpecError, match=message):
        read_targets(str(f), symode.get_model("linear"))


def test_npz_with_pickled_objects_is_refused(tmp_path):
    f = tmp_path / "d.npz"
    np.savez(f, t=np.array([0.5]), z=np.array([[object()]], dtype=object))
    with pytest.raises(SpecError, match="without pickled objects"):
        read_targets(str(f), symode.get_model("linear"))


def test_problem_refuses_conflicting_targets(tmp_path):
    m = symode.get_model("linear")
    with pytest.raises(SpecError, match="either --truth"):
        make_problem(m, truth={}, data=str(tmp_path / "x.csv"))
    with pytest.raises(SpecError, match="give --truth as well"):
        make_problem(m, noise=0.1)


# -- the loop --------------------------------------------------------------------------------------------------

def test_history_has_one_entry_per_iterate_and_reproduces_gradient_descent():
    m = symode.get_model("logistic")
    obj = Objective(m, "discrete", steps=40)
    res = run(obj, [1.3, 2.0], GradientDescent(0.05), 5, progress=False)
    assert res.theta.shape == (6, 2) and res.loss.shape == (6,) and res.iterations == 5
    for k in range(5):  # each step is θ_k - lr ∇L(θ_k) with the route's own gradient at θ_k
        L, g = obj(res.theta[k])
        assert L == res.loss[k]
        assert res.grad_norm[k] == pytest.approx(math.sqrt(math.fsum(v * v for v in g)), rel=TOL["norm_rel"])
        assert list(res.theta[k + 1]) == list(res.theta[k] - 0.05 * g)


def test_linreg_derived_gradient_against_the_formula():
    x, y = regression_data(1.5, 0.5, 20, noise=0.3, seed=3)
    a, b = 0.25, -0.75
    n = len(x)
    ref = [math.fsum(2 * (a * xi + b - yi) * xi for xi, yi in zip(x, y)) / n,
           math.fsum(2 * (a * xi + b - yi) for xi, yi in zip(x, y)) / n]
    for obj in (DerivedGradient(x, y), NumericGradient(x, y)):
        assert list(obj([a, b])[1]) == pytest.approx(ref, rel=TOL["linreg_gradient_rel"])


def test_a_huge_but_finite_gradient_has_a_finite_norm():
    from symode.train.loop import _norm
    assert _norm([3e300, 4e300]) == pytest.approx(5e300, rel=TOL["norm_rel"])
    assert math.isinf(_norm([1.7e308, 1.7e308])) and math.isnan(_norm([1.0, float("nan")])) and _norm([0.0]) == 0


def test_divergence_is_an_error_with_the_partial_history():
    m = symode.get_model("linear")
    with pytest.raises(TrainingDiverged, match="lower the learning rate") as info:
        run(Objective(m, "discrete", steps=20), [-0.8, 0.5], GradientDescent(1e6), 10, progress=False)
    assert 1 <= info.value.iteration <= 10 and len(info.value.result.loss) == info.value.iteration


def test_progress_bar_only_when_asked(capsys, monkeypatch):
    obj = NumericGradient(*regression_data(1.0, 0.0, 5))
    run(obj, [0.0, 0.0], GradientDescent(0.1), 3)
    assert capsys.readouterr().err == ""  # captured stderr is not a terminal
    monkeypatch.setenv("SYMODE_PROGRESS", "1")
    run(obj, [0.0, 0.0], GradientDescent(0.1), 3)
    err = capsys.readouterr().err
    assert "3/3" in err and "loss" in err and "|g|" in err  # iterations, loss and gradient norm
    monkeypatch.setenv("SYMODE_QUIET", "1")
    run(obj, [0.0, 0.0], GradientDescent(0.1), 3)
    assert capsys.readouterr().err == ""


# -- the command line ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def schema():
    jsonschema = pytest.importorskip("jsonschema")
    s = json.loads((Path(symode.__file__).parent / "schemas" / "train.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(s)
    return jsonschema.Draft202012Validator(s)


def _cli(capsys, *args):
    rc = main(list(args))
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.mark.slow
def test_cli_recovers_the_seed_parameters(capsys, schema):
    rc, out, err = _cli(capsys, "train", "linear", "--truth", "nominal", "--times", "1.5", "--z0=-1", "--z0", "0",
                        "--z0", "1", "--param", "a=0", "--param", "b=0", "--lr", "1", "--iterations", "120", "--json")
    assert rc == 0 and err == ""
    d = json.loads(out)
    schema.validate(d)
    assert d["truth"] == {"a": -0.8, "b": 0.5} and len(d["loss"]) == 121 and d["theta"][0] == [0.0, 0.0]
    assert d["compiled"] is True and d["options"] == {"scheme": "rk4", "steps": 100}
    # the generating values (the model's nominal a, b) are recovered; the optimisation has not quite finished
    assert abs(d["final"]["a"] + 0.8) < 1e-5 and abs(d["final"]["b"] - 0.5) < 1e-5


@pytest.mark.slow
def test_cli_table_and_noise_reproducible_by_seed(capsys):
    args = ["train", "logistic", "--truth", "r=1.1", "--noise", "0.01", "--iterations", "3", "--optimizer",
            "adam", "--lr", "0.01", "--steps", "30"]
    outs = [_cli(capsys, *args, "--seed", s, "--json")[1] for s in ("4", "4", "5")]
    assert outs[0] == outs[1] and outs[0] != outs[2]
    rc, out, _ = _cli(capsys, *args)
    assert rc == 0 and "noise sigma 0.01" in out and "fell" in out


def test_cli_linreg(capsys, schema):
    rc, out, _ = _cli(capsys, "train", "linreg", "--truth", "a=2", "--truth", "b=-1", "--lr", "0.3",
                      "--iterations", "200", "--json")
    d = json.loads(out)
    schema.validate(d)
    assert rc == 0 and d["method"] == "derived gradient (SymPy)"
    assert d["final"]["a"] == pytest.approx(2.0, abs=1e-9) and d["final"]["b"] == pytest.approx(-1.0, abs=1e-9)


@pytest.mark.parametrize("args, message", [
    (["linear", "--lr", "-1"], "--lr must be a finite positive number"),
    (["linear", "--truth", "nominal", "--data", "x.csv"], "either --truth"),
    (["linear", "--method", "backprop"], "unknown method 'backprop'"),
    (["linear", "--truth", "c=1"], "no parameter named c"),
    (["linear", "--truth", "a"], "expected NAME=DECIMAL"),
    (["linear", "--noise", "0.1"], "give --truth as well"),
    (["linreg"], "linreg trains on a data set"),
    (["linreg", "--truth", "a=1", "--truth", "b=1", "--steps", "10"], "--steps does not apply"),
    (["linear", "--points", "5"], "--points applies to linreg only"),
    (["linear", "--truth", "nominal", "--z0", "1,2"], "initial state 1 has 2 values for the 1 states"),
    (["linear", "--truth", "nominal", "--times", "0,1"], "is not after t0"),
    (["linear", "--truth", "nominal", "--times", "1,x"], "--times"),
    (["linear", "--seed", "-3"], "--seed must be a non-negative integer"),
    (["linear", "--lr", "1e9", "--iterations", "5", "--steps", "20"], "lower the learning rate"),
])
def test_cli_errors_are_one_line_exit_2(capsys, args, message):
    rc, out, err = _cli(capsys, "train", *args)
    assert rc == 2 and out == "" and message in err and err.count("\n") == 1 and err.startswith("symode: error:")


@pytest.mark.slow
def test_cli_subprocess_real_entry_point(tmp_path):
    f = tmp_path / "d.csv"
    f.write_text("t,z\n0.5,0.8\n1.0,0.7\n1.5,0.65\n")
    p = subprocess.run([sys.executable, "-m", "symode.cli", "train", "linear", "--data", str(f), "--iterations",
                        "2", "--steps", "20"], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "SYMODE_PROGRESS": ""})
    assert p.returncode == 0, p.stderr
    assert f"targets    read from {f}" in p.stdout and p.stderr == ""


class _Relabelled(symode.Route):
    """A route from outside symode's graph: the discrete adjoint through compute(), under another name."""

    name = "relabelled-discrete"
    summary = "symode's discrete adjoint behind a plugin route (a test route)"
    options = (symode.Option("steps", int, 100, "number of fixed steps"),)
    accuracy = symode.FixedStep(order=4)

    def gradient(self, model, steps=100):
        r = symode.compute(model, "discrete", scheme="rk4", steps=steps)
        return symode.GradResult(model=r.model, method=self.name, loss=r.loss, grad=r.grad, grad_z0=r.grad_z0,
                                 grad_t0=r.grad_t0, grad_t1=r.grad_t1, scheme=r.scheme, steps=r.steps)


def test_training_takes_any_registered_route(capsys):
    symode.register_method(_Relabelled())
    try:
        m = symode.get_model("logistic")
        plugin = Objective(m, "relabelled-discrete", steps=30)
        assert not plugin.fixed_step and plugin.options == {"steps": 30}
        a = run(plugin, [1.3, 2.0], GradientDescent(0.05), 4, progress=False)
        b = run(Objective(m, "discrete", steps=30), [1.3, 2.0], GradientDescent(0.05), 4, progress=False)
        # the plugin goes through compute() at each iterate, symode's own route through its mapped graph
        assert a.theta == pytest.approx(b.theta, rel=TOL["same_graph_rel"], abs=0)
        rc = main(["train", "logistic", "--method", "relabelled-discrete", "--steps", "30", "--iterations", "2",
                   "--json"])
        assert rc == 0 and json.loads(capsys.readouterr().out)["options"] == {"steps": 30}
    finally:
        symode.unregister_method("relabelled-discrete")


@pytest.mark.slow
@pytest.mark.parametrize("route", ["torchdiffeq", "diffrax"])
def test_training_with_an_interop_adapter_when_installed(route):
    # the adapters of issue 14 are registered routes where symode.interop is there and the library installed
    try:
        missing = symode.get_route(route).missing()
    except SpecError:
        pytest.skip(f"no route {route!r} registered here (symode.interop)")
    if missing:
        pytest.skip("; ".join(missing))
    m = symode.get_model("linear")
    problem = make_problem(m, truth={}, times=["1.5"], initial=[[-1], [1]])
    lib = run(Objective(problem.model, route, rtol=1e-10, atol=1e-12), [0.0, 0.0], GradientDescent(1.0), 5,
              progress=False)
    ref = run(Objective(problem.model, "discrete", steps=200, compiled=False), [0.0, 0.0], GradientDescent(1.0), 5,
              progress=False)
    assert np.max(np.abs(ref.theta[-1] - ref.theta[0])) > 0.1  # the parameters moved: agreement means something
    assert np.max(np.abs(lib.theta - ref.theta)) <= TOL["adapter_vs_discrete_abs"]
    assert lib.loss[-1] < 0.2 * lib.loss[0]  # measured: 0.0997


def test_a_network_model_is_fitted_in_matrix_form_with_the_scalar_forms_numbers():
    # the built-in mlp is a [network] spec: its fit keeps W1, b1, W2, b2 as arrays and copies the state vector
    # per trajectory; the scalar form of the same fit model is the reference (same arithmetic up to reordering)
    mlp = symode.get_model("mlp")
    osc = symode.get_model("oscillator")
    tg = symode.train.ode_targets(osc, ["0.5", "1"], initial=[[1, 0], [0, 1]])
    fit = fit_model(mlp, tg)
    st = fit.structure
    assert [g.name for g in st.groups if g.kind == "state"] == ["z_1", "z_2"]
    assert [g.dims for g in st.groups if g.kind == "param"] == [(4, 2), (4,), (2, 4), (2,)]
    th = np.array([float(v) for v in fit.theta])
    L, g = Objective(fit, "discrete", steps=20, compiled=False)(th)
    Ls, gs = Objective(fit.scalar_model(), "discrete", steps=20, compiled=False)(th)
    assert L == pytest.approx(Ls, rel=TOL["same_graph_rel"]) and g == pytest.approx(gs, rel=TOL["same_graph_rel"])


# -- the compiled default ---------------------------------------------------------------------------------------

def test_the_default_gradient_is_the_compiled_discrete_adjoint_with_the_graphs_numbers():
    m = symode.get_model("lotka-volterra")
    th = [1.4, 0.9, 1.1, 2.9]
    fast = Objective(m, steps=40)
    assert fast.compiled and fast.describe() == "discrete (scheme rk4, steps 40; compiled C)"
    a = run(fast, th, GradientDescent(0.01), 6, progress=False)
    b = run(Objective(m, steps=40, compiled=False), th, GradientDescent(0.01), 6, progress=False)
    # one reverse sweep in C vs CasADi's reverse mode of the graph: rounding only (the sweep's own tests measure
    # <= 6e-16 relative to the largest component)
    assert np.max(np.abs(a.theta - b.theta)) <= TOL["same_graph_rel"] * np.max(np.abs(b.theta))
    assert np.max(np.abs(a.loss - b.loss)) <= TOL["same_graph_rel"] * np.max(np.abs(b.loss))


def test_the_compiled_path_is_diagnosed_by_the_graph():
    # stiff for rk4 with 5 steps at the start: the graph's stability check speaks before any compiled step
    stiff = fit_model(symode.get_model("linear"), truth_targets(symode.get_model("linear"), {}, times=["1.5"]))
    with pytest.raises(symode.IntegrationError, match="stiff"):
        Objective(stiff, steps=5)([-12.0, 0.5])
    with pytest.raises(SpecError, match="no compiled form"):
        Objective(stiff, "adjoint", compiled=True)
