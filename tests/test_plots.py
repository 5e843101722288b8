"""Pictures (symode.plots, `--plot DIR`): each figure is drawn from the run's data, and is a valid, non-empty PNG.

Tolerances of this module:
"""
from __future__ import annotations

import json
import struct
import zlib

import numpy as np
import pytest
import sympy

import symode
from symode.cli import main

matplotlib = pytest.importorskip("matplotlib", reason="pictures need the extra symode[plot]")

from symode import plots  # noqa: E402
from symode.train import GradientDescent, Objective, run  # noqa: E402
from symode.train.paths import adjoint_path, state_path  # noqa: E402
from tests.test_codegen_compile import private_cache  # noqa: F401,E402  (autouse: a fresh build cache)

TOL = {
    # λ(t0) of the picture's adjoint path (Taylor method at 16 digits, z reset at every grid node, rounded to
    # float64) against the oracle's dL/dz0 (30 digits): the path's own integration error dominates, ~1e-14.
    "lambda_t0_rel": 1e-12,
    # the jump of λ at an observation time against ∂ℓ_i/∂z = 2 (z(τ) - d) with z(τ) from the oracle integrator
    # (float64 values on both sides).
    "jump_rel": 1e-12,
    # the picture's state paths (Taylor method at 16 digits, rounded to float64) and the targets (20 digits,
    # rounded) against the closed form of dz/dt = a z + b at 30 digits: a few ulps of states of size ~1.
    "path_abs": 1e-13,
    # the log-log slope of rk4's error over h = T/25 .. T/400 against the order 4 (asymptotic: higher-order
    # terms bend the line slightly at the coarse end).
    "slope_abs": 0.3,
}

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def check_png(data: bytes) -> tuple[int, int]:
    """A valid PNG: the signature, an IHDR chunk with a CRC that matches and a positive size, an IEND chunk;
    returns (width, height)."""
    assert data[:8] == PNG_SIGNATURE and len(data) > 1000
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    body = data[16:16 + 13]
    (crc,) = struct.unpack(">I", data[29:33])
    assert crc == zlib.crc32(b"IHDR" + body)
    width, height = struct.unpack(">II", body[:8])
    assert width > 100 and height > 100
    assert data[-12:] == b"\x00\x00\x00\x00IEND\xaeB`\x82"
    return width, height


def check_not_blank(path) -> None:
    import matplotlib.image
    img = matplotlib.image.imread(str(path))
    assert img.ndim == 3 and len(np.unique(img.reshape(-1, img.shape[2]), axis=0)) > 10


@pytest.fixture(scope="module")
def logistic_run():
    m = symode.get_model("logistic")
    return run(Objective(m, "discrete", steps=40), [1.3, 2.0], GradientDescent(0.05), 12, progress=False)


def test_loss_curve_has_one_point_per_iteration(logistic_run, tmp_path):
    fig = plots.loss_figure({"discrete": logistic_run.loss})
    (line,) = fig.axes[0].get_lines()
    assert list(line.get_xdata()) == list(range(13))
    assert list(line.get_ydata()) == list(logistic_run.loss)
    (path,) = plots.write_pngs({"loss": fig}, tmp_path)
    check_png(path.read_bytes())
    check_not_blank(path)


def test_same_data_same_bytes(logistic_run):
    a = plots.render_png(plots.loss_figure({"r": logistic_run.loss}))
    b = plots.render_png(plots.loss_figure({"r": logistic_run.loss}))
    assert a == b


def test_adjoint_path_is_the_oracle_gradient_at_t0_and_jumps_by_the_observation_term():
    m = symode.get_model("seed-encoder")  # observations (z - 1.2)^2 at 0.5 and (z - 1.4)^2 at 2, running cost
    path = adjoint_path(m)
    ref = symode.compute(m, "oracle", digits=30)
    assert path.lam[0, 0] == pytest.approx(float(ref.grad_z0[0]), rel=TOL["lambda_t0_rel"])
    assert [j[0] for j in path.jumps] == [0.5, 2.0]
    _, z = state_path(m, [m.t0, sympy.Rational(1, 2), m.t1])
    for (tau, before, after), zt, d in zip(path.jumps, (z[1, 0], z[2, 0]), (1.2, 1.4)):
        assert before[0] - after[0] == pytest.approx(2 * (zt - d), rel=TOL["jump_rel"])
    fig = plots.adjoint_figure(path)
    (line,) = fig.axes[0].get_lines()[:1]
    assert list(line.get_xdata()) == list(path.times) and list(line.get_ydata()) == list(path.lam[:, 0])
    # the observation time appears twice on the line: the jump is drawn, not interpolated over a step
    assert list(path.times).count(0.5) == 2


def test_convergence_figure_from_the_routes_errors(tmp_path):
    from symode.check.convergence import convergence_data, step_counts
    m = symode.get_model("logistic")
    data = convergence_data(m, ["forward", "adjoint-stored"], "rk4", 100, symode.compute(m, "oracle"))
    assert step_counts(100) == [25, 50, 100, 200, 400]
    for h, e in data.values():
        slope = np.polyfit(np.log(h), np.log(e), 1)[0]
        assert abs(slope - 4) < TOL["slope_abs"]
    fig = plots.convergence_figure(data, 4)
    lines = fig.axes[0].get_lines()
    assert list(lines[0].get_ydata()) == list(data["forward"][1])
    assert lines[-1].get_label() == "order 4"


@pytest.mark.slow
def test_train_cli_writes_the_pictures_from_the_run(capsys, tmp_path):
    rc = main(["train", "linear", "--truth", "nominal", "--z0", "0.5", "--z0", "1", "--param", "a=-0.5",
               "--iterations", "7", "--lr", "0.5", "--steps", "30", "--json", "--plot", str(tmp_path / "figs")])
    d = json.loads(capsys.readouterr().out)
    assert rc == 0
    names = sorted(p.rsplit("/", 1)[1] for p in d["figures"])
    assert names == ["adjoint.png", "loss.png", "trajectories.png"]
    for p in d["figures"]:
        check_png(open(p, "rb").read())
        check_not_blank(p)
    assert not [p for p in (tmp_path / "figs").iterdir() if p.name.startswith(".")]  # no temporary files left


def test_train_figures_use_the_run(logistic_run):
    from symode.train import figures, make_problem
    problem = make_problem(symode.get_model("logistic"))
    figs = figures(problem, {"discrete": logistic_run})
    (fitted, before) = figs["trajectories"].axes[0].get_lines()[:2]
    t, z = state_path(symode.train.with_theta(problem.model, logistic_run.theta[-1]))
    assert list(fitted.get_xdata()) == list(t) and list(fitted.get_ydata()) == list(z[:, 0])
    _, z0 = state_path(symode.train.with_theta(problem.model, logistic_run.theta[0]))
    assert list(before.get_ydata()) == list(z0[:, 0])


def test_fitted_vs_true_trajectories_are_the_closed_form_at_the_runs_parameters_and_the_truth():
    import mpmath
    from symode.train import figures, make_problem
    problem = make_problem(symode.get_model("linear"), truth={}, times=["0.5", "1.5"], initial=[[-1], [1]])
    res = run(Objective(problem.model, "discrete", steps=20, compiled=False), [-0.3, 0.2], GradientDescent(0.5), 3,
              progress=False)
    lines = figures(problem, {"discrete": res}, adjoint=False)["trajectories"].axes[0].get_lines()
    assert len(lines) == 6  # per trajectory: fitted (solid), true (dashed), observed (dots)

    def closed(a, b, z0, ts):  # z(t) of dz/dt = a z + b, z(0) = z0
        with mpmath.workdps(30):
            a, b = mpmath.mpf(float(a)), mpmath.mpf(float(b))
            return [float((z0 + b / a) * mpmath.exp(a * mpmath.mpf(float(t))) - b / a) for t in ts]
    for k, z0 in enumerate((-1, 1)):
        fitted, true, observed = lines[3 * k:3 * k + 3]
        t = fitted.get_xdata()
        assert t[0] == 0 and t[-1] == 1.5 and len(t) == 101
        assert list(fitted.get_ydata()) == pytest.approx(closed(*res.theta[-1], z0, t), abs=TOL["path_abs"])
        assert list(true.get_ydata()) == pytest.approx(closed(-0.8, 0.5, z0, t), abs=TOL["path_abs"])
        assert list(observed.get_xdata()) == [0.5, 1.5]
        assert list(observed.get_ydata()) == pytest.approx(closed(-0.8, 0.5, z0, [0.5, 1.5]), abs=TOL["path_abs"])
        assert true.get_linestyle() == "--" and observed.get_marker() == "o"
    assert res.theta[-1][0] != -0.8  # the fitted line is not the true one drawn twice


@pytest.mark.slow
def test_check_plot_cli(capsys, tmp_path):
    rc = main(["check", "logistic", "--methods", "discrete", "--steps", "40", "--plot", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0 and f"wrote {tmp_path / 'convergence.png'}" in out
    check_png((tmp_path / "convergence.png").read_bytes())


def test_without_matplotlib_the_error_says_how_to_get_it(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(plots, "available", lambda: False)
    assert main(["train", "logistic", "--iterations", "1", "--plot", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "symode[plot]" in err and not (tmp_path / "x").exists()


def test_no_data_is_an_error():
    with pytest.raises(plots.PlotError, match="no training runs"):
        plots.loss_figure({})


@pytest.mark.slow
def test_check_train_figures_draw_the_checks_numbers(tmp_path):
    from symode.train.checks import TrainCheckReport, check_figures, check_route_agreement
    agree, wrong = check_route_agreement(iterations=6)
    figs = check_figures(TrainCheckReport([agree, wrong]))
    assert sorted(figs) == ["route-agreement-loss", "train-deviation"]
    lines = figs["route-agreement-loss"].axes[0].get_lines()
    assert [list(line.get_ydata()) for line in lines] == [list(r.loss) for r in agree.runs.values()]
    dev, allow = agree.deviations["discrete vs adjoint-stored"]
    drawn = {line.get_label(): line for line in figs["train-deviation"].axes[0].get_lines()}
    shown = drawn["discrete vs adjoint-stored"].get_ydata()
    assert np.array_equal(np.nan_to_num(shown), np.abs(dev))  # zeros are drawn as gaps (NaN)
    assert np.array_equal(np.nan_to_num(drawn["allowance (discrete vs adjoint-stored)"].get_ydata()), allow)
    for path in plots.write_pngs(figs, tmp_path):
        check_png(path.read_bytes())


def test_tolerance_figure_for_audits_draws_the_given_errors():
    tols, errs = np.array([1e-4, 1e-6, 1e-8]), np.array([3e-4, 2e-6, 0.0])
    fig = plots.tolerance_figure({"lib dopri5": (tols, errs)})
    line, diagonal = fig.axes[0].get_lines()
    assert list(line.get_xdata()) == list(tols)
    assert list(np.nan_to_num(line.get_ydata())) == list(errs)  # an exact 0 is a gap, not a fake tiny value
    assert diagonal.get_label() == "error = tolerance"
    check_png(plots.render_png(fig))


class _LossAndGrad(symode.Route):
    """A plugin fixed-step route computing only L and dL/dθ (forward sensitivities with the rest dropped)."""

    name = "loss-and-grad-only"
    summary = "a test route"
    options = (symode.Option("n", int, 100, "number of fixed steps"),)
    accuracy = symode.FixedStep(order=4, steps_option="n")
    quantities = frozenset({"loss", "grad"})

    def gradient(self, model, n=100):
        r = symode.compute(model, "forward", scheme="rk4", steps=n)
        return symode.GradResult(model=r.model, method=self.name, loss=r.loss, grad=r.grad, grad_z0=None,
                                 grad_t0=None, scheme="rk4", steps=n)


def test_convergence_of_a_plugin_route_with_its_own_option_names_and_fewer_quantities():
    from symode.check.convergence import convergence_data
    symode.register_method(_LossAndGrad())
    try:
        m = symode.get_model("logistic")
        data = convergence_data(m, ["loss-and-grad-only"], "rk4", 40, symode.compute(m, "oracle"))
        h, e = data["loss-and-grad-only"]
        assert list(h) == [float(m.t1) / n for n in (10, 20, 40, 80, 160)]
        assert abs(np.polyfit(np.log(h), np.log(e), 1)[0] - 4) < TOL["slope_abs"]
    finally:
        symode.unregister_method("loss-and-grad-only")
