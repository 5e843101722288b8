"""The training cross-checks (symode.train.checks, `symode check --train`): each acceptance item of training,
and attempts to fool them.

Tolerances: the checks' own table, symode.train.checks.TRAIN_TOLERANCES (each entry states its reason); this
module adds none.  References: the least-squares solution (numpy), the generating parameters, the loss at the
start, the other route's and the oracle's trajectories.
"""
from __future__ import annotations

import numpy as np
import pytest

import symode
from symode.cli import main
from symode.train import GradientDescent, Objective, run
from symode.train.checks import (TRAIN_TOLERANCES, check_linreg, check_mlp_fit, check_route_agreement,
                                 check_seed_recovery, seed_problem, training_checks)
from tests.test_codegen_compile import private_cache  # noqa: F401,E402  (autouse: a fresh build cache)


def test_linreg_symbolic_rule_and_numeric_gradient_give_the_same_iterates():
    c = check_linreg()
    assert c.ok, c.detail
    sym, num = c.runs["derived update"], c.runs["numeric gradient"]
    assert sym.theta.shape == num.theta.shape == (201, 2)
    assert np.max(np.abs(sym.theta - num.theta)) <= 1e-12
    # both are real training runs: the loss fell by orders of magnitude toward the noise floor
    assert sym.loss[-1] < 1e-2 * sym.loss[0]


@pytest.mark.slow
def test_seed_neural_ode_recovers_the_generating_parameters():
    c = check_seed_recovery()
    assert c.ok, c.measured
    (res,) = c.runs.values()
    assert list(res.theta[0]) == [0.0, 0.0]
    assert abs(res.final["a"] + 0.8) <= 1e-6 and abs(res.final["b"] - 0.5) <= 1e-6


@pytest.mark.slow
def test_mlp_fit_loss_falls_a_hundredfold():
    c = check_mlp_fit()
    assert c.ok, c.measured
    (res,) = c.runs.values()
    assert res.loss[0] / res.loss[-1] >= TRAIN_TOLERANCES["mlp-fall"].atol
    assert c.problem.model.np == 22 and c.problem.targets.count == 3


@pytest.mark.slow
def test_route_agreement_and_the_sign_flip_is_caught():
    agree, wrong = check_route_agreement()
    assert agree.ok, agree.detail
    assert wrong.ok and "leaves the allowance at iteration 1" in wrong.measured
    (dev, allow), = agree.deviations.values()
    assert np.all(dev <= allow)
    (dev_w, allow_w), = wrong.deviations.values()
    assert np.max(dev_w[1:] / allow_w[1:]) > 1e6  # not a marginal detection (iteration 0 is the common start)


@pytest.mark.slow
def test_route_agreement_against_the_oracle_trajectory():
    agree, _ = check_route_agreement(oracle=True)
    assert agree.ok, agree.detail
    assert "oracle" in agree.runs and agree.oracle.count("<=") == 2


@pytest.mark.slow
@pytest.mark.parametrize("flip", [0, 1])
def test_each_component_flip_is_caught_on_another_model(flip):
    # the pendulum's own loss from its nominal values: no blow-up, the flipped trajectory simply walks away
    m = symode.get_model("pendulum")
    agree, wrong = check_route_agreement(m, steps=40, iterations=10, flip=flip)
    assert agree.ok, agree.detail
    assert wrong.ok, wrong.measured


class _Scaled:
    """A subtly wrong gradient: one component off by a relative 1e-4 (far above the routes' discretisation
    error at 50 rk4 steps, ~1e-8, far below what a loss curve would show)."""

    def __init__(self, inner, index, factor=1 + 1e-4):
        self.inner, self.index, self.factor = inner, index, factor
        self.name, self.param_names, self.options = inner.name, inner.param_names, inner.options
        self.method = inner.method + " (scaled)"

    def describe(self):
        return self.inner.describe() + " scaled"

    def __call__(self, theta):
        L, g = self.inner(theta)
        g = g.copy()
        g[self.index] *= self.factor
        return L, g


@pytest.mark.slow
def test_a_subtly_wrong_gradient_is_caught_too():
    _, wrong = check_route_agreement(wrong=lambda objective: _Scaled(objective, 1))
    assert wrong.ok, wrong.measured  # "ok": the wrong route was detected
    assert "scaled: leaves the allowance" in wrong.measured


def test_a_correct_route_is_not_flagged_against_itself_at_another_resolution():
    # the same route at 25 and 50 steps: different discretisations of the same gradient, inside the allowance
    model = seed_problem().model
    a25, a50 = (run(Objective(model, "discrete", steps=n, compiled=False), [0.0, 0.0], GradientDescent(1.0), 20,
                    progress=False) for n in (25, 50))
    gap = np.max(np.abs(a25.theta - a50.theta))
    assert 1e-12 < gap < 1e-5  # visible but small: the discretisation error the allowance is built from


@pytest.mark.slow
def test_check_train_cli_quick(capsys):
    rc = main(["check", "--train", "--quick"])
    out = capsys.readouterr().out
    assert rc == 0
    for name in ("linreg", "seed-recovery", "route-agreement", "wrong-gradient"):
        assert f"| {name} | **PASS** |" in out
    assert "mlp-fit" not in out and "Why these tolerances:" in out


@pytest.mark.slow
def test_check_model_train_cli(capsys):
    rc = main(["check", "logistic", "--train", "--steps", "50", "--methods", "discrete"])
    out = capsys.readouterr().out
    # at 50 rk4 steps the routes' error is ~1e-5 of what they compute: COARSE, as symode check says of the route
    assert rc == 0 and "| discrete | **COARSE** |" in out and "| route-agreement | **COARSE** |" in out
    assert "| wrong-gradient | **PASS** |" in out


def test_check_needs_a_model_or_train(capsys):
    assert main(["check"]) == 2
    assert "give a MODEL to check (or --train" in capsys.readouterr().err


@pytest.mark.slow
def test_full_training_checks():
    report = training_checks()
    assert report.ok, report.to_markdown()
    assert [r.name for r in report.rows] == ["linreg", "seed-recovery", "mlp-fit", "route-agreement",
                                             "wrong-gradient"]


@pytest.mark.slow
def test_agreement_within_a_huge_allowance_is_not_evidence():
    # rk4 with 2 steps: both routes' Richardson allowances are ~20% of how far training moves the parameters,
    # so "agreeing" within them says nothing: FAIL, not PASS
    agree, _ = check_route_agreement(steps=2)
    assert agree.verdict == "FAIL" and agree.measured.startswith("cannot be checked")
    coarse, _ = check_route_agreement(steps=4)  # ~0.7% of the movement: agreement, but coarse
    assert coarse.verdict == "COARSE" and coarse.ok


@pytest.mark.slow
def test_a_route_that_fails_to_train_is_a_failed_check():
    # explicit Euler with 2 steps is unstable once training moves a to about -6: the stability check stops it
    agree, wrong = check_route_agreement(scheme="euler", steps=2)
    assert agree.verdict == "FAIL" and "failed" in agree.measured and "stiff" in agree.measured
    assert not wrong.ok
