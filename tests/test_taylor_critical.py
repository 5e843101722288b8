"""Narrow features in time: the Taylor integrator's ``critical_times`` (symode.oracle.critical), the search that
finds them (symode.verify.features) and the oracle on models with an explicit-time spike.

Every expected value is independent of the code under test: closed forms in erf (by hand from
integral exp(-a (t - c)**2) dt = sqrt(pi/a)/2 * erf(sqrt(a) (t - c))), mpmath.quad with the spike's centre as a
breakpoint, or zeros and widths computed by hand; each test says which.
"""
from __future__ import annotations

import mpmath
import pytest
import sympy as sp

from symode.errors import IntegrationError, SpecError
from symode.methods import compute
from symode.model import Model
from symode.oracle.taylor import TaylorSystem, integrate, to_mpf
from symode.verify.features import TooManyFeatures, time_features

# Tolerances, each with its reason (errors relative to max(1, |reference|), the integrator's scale).
TOL = {
    # integrate(digits=40) promises ~40 digits relative to max(1, |y|); two digits of slack for the round-off
    # of ~60 steps.  The halving-only approach rule (max(d/2, w)) missed a tail of 3.4e-30 here: caught.
    "digits40": mpmath.mpf("1e-38"),
    # the oracle's reported values against an mpmath.quad reference at 40 digits: the oracle's own bound
    # (1e-29 at 30 digits) with a factor 10 of slack for the quadrature reference's last digits.
    "oracle": mpmath.mpf("1e-28"),
    # a critical time found by the search must sit this close to the centre computed by hand: a millionth of the
    # narrowest width here (1e-6), far closer than the integrator needs (within the width).  Not tighter: a
    # double root from nroots at 30 digits is good to ~1e-15 only (measured 3.6e-20 and worse, run to run).
    "position": mpmath.mpf("1e-12"),
}

t, y, u, k = sp.symbols("t y u k", real=True)
R = sp.Rational
A = sp.Integer(10) ** 10  # exp(-A (t - c)**2): width 1/sqrt(A) = 1e-5


def _gauss_integral(a, c, lo, hi):
    """integral_lo^hi exp(-a (s - c)**2) ds in closed form (erf), at the current mpmath precision."""
    a, c, lo, hi = map(mpmath.mpf, (a, c, lo, hi))
    return mpmath.sqrt(mpmath.pi / a) / 2 * (mpmath.erf(mpmath.sqrt(a) * (hi - c)) -
                                              mpmath.erf(mpmath.sqrt(a) * (lo - c)))


def _spike_system(*centres_and_a):
    rhs = sum(sp.exp(-a * (t - c) ** 2) for c, a in centres_and_a)
    return TaylorSystem([y], [rhs], t)


# -- integrate(critical_times=...) -------------------------------------------------------------------------------
@pytest.mark.parametrize("spikes, t0, t1", [
    ([(R(3, 10), A)], 0, 1),                         # one spike inside
    ([(R(3, 10), A)], 1, 0),                         # the same backward
    ([(R(3, 10), A), (R(7, 10), A * 100)], 0, 1),    # two spikes, widths 1e-5 and 1e-6
    ([(1, A)], 0, 1),                                # at the end: half a Gaussian
    ([(R(100001, 100000), A)], 0, 1),                # just past the end: only its tail lies inside
    ([(0, A)], 1, 0),                                # at the end of a backward integration
])
def test_a_spike_is_integrated_with_its_critical_time(spikes, t0, t1):
    # reference: the erf closed form of each Gaussian's integral over [t0, t1]
    system = _spike_system(*spikes)
    crit = [(c, 1 / sp.sqrt(a)) for c, a in spikes]
    with mpmath.workdps(60):
        exact = sum(_gauss_integral(a, c, t0, t1) for c, a in spikes)
        got = to_mpf(integrate(system, [0], t0, [t1], digits=40, critical_times=crit)[0][0])
        assert abs(got - exact) <= TOL["digits40"] * max(1, abs(exact)), (got, exact)
        assert abs(exact) > mpmath.mpf("1e-7")  # the spikes matter: the test is not vacuous


def test_without_critical_times_the_step_control_steps_over_the_spike():
    # the defect the keyword exists for (and why the verifier and the oracle pass critical times): the
    # coefficients at t = 0 are ~exp(-9e8) and one step goes from 0 to 1 (the true value is sqrt(pi)*1e-5)
    stats: dict = {}
    got = to_mpf(integrate(_spike_system((R(3, 10), A)), [0], 0, [1], digits=30, stats=stats)[0][0])
    assert abs(got) < mpmath.mpf("1e-100") and stats["steps"] <= 2
    assert "critical_landings" not in stats


def test_critical_times_are_landed_on_but_not_returned():
    stats: dict = {}
    out = integrate(_spike_system((R(3, 10), A)), [0], 0, [R(1, 2), 1], digits=30, stats=stats,
                    critical_times=[(R(3, 10), R(1, 10 ** 5))])
    assert len(out) == 2 and stats["critical_landings"] == 1
    # y(1/2) = y(1): the spike is over by t = 1/2 (erf closed form: the rest is below exp(-4e8))
    with mpmath.workdps(50):
        exact = _gauss_integral(A, R(3, 10), 0, 1)
        assert abs(to_mpf(out[0][0]) - exact) <= mpmath.mpf("1e-29")


def test_critical_times_away_from_the_path_change_nothing():
    # a critical time behind the start and one past a wide margin: the same steps, bit for bit
    system = TaylorSystem([y], [-y + sp.sin(3 * t)], t)
    plain = integrate(system, [1], 0, [1], digits=30)
    behind = integrate(system, [1], 0, [1], digits=30, critical_times=[(-1, R(1, 10 ** 6))])
    assert plain == behind


@pytest.mark.parametrize("bad, match", [
    ([(R(3, 10),)], "pair"),
    ([(R(3, 10), 0)], "positive"),
    ([3], "pair"),
])
def test_bad_critical_times_are_a_spec_error(bad, match):
    with pytest.raises(SpecError, match=match):
        integrate(_spike_system((R(3, 10), A)), [0], 0, [1], digits=20, critical_times=bad)


# -- the search: time_features ------------------------------------------------------------------------------------
def _near(found, expected):
    with mpmath.workdps(40):  # whatever precision an earlier test left behind
        return any(abs(mpmath.mpf(sp.Float(c, 40)) - mpmath.mpf(expected)) <= TOL["position"] for c, _ in found)


def test_a_gaussian_spike_is_found_with_its_width():
    # u = -1e10 (t - 0.3)**2 changes by 1 at |t - 0.3| = 1e-5 (by hand): the width is the largest 2**-k in
    # (5e-6, 1e-5]
    found = time_features([sp.exp(-A * (t - R(3, 10)) ** 2) * u], t, 0, 1)
    assert len(found) == 1
    c, w = found[0]
    assert _near(found, R(3, 10)) and R(1, 2 * 10 ** 5) < w <= R(1, 10 ** 5)


def test_a_peak_that_never_reaches_zero_is_found():
    # -1e10 (t - 0.3)**2 - 30 has no real zero; its maximum at 0.3 is the feature (exp(-30) ~ 1e-13 matters)
    found = time_features([sp.exp(-A * (t - R(3, 10)) ** 2 - 30)], t, 0, 1)
    assert _near(found, R(3, 10))


def test_a_transcendental_argument_is_searched_rigorously():
    # sin(10 t - 3) = 0 at t = 0.3 + j*pi/10: 0.3, 0.6142, 0.9283 inside [0, 1] (by hand), and 0.1429 within
    # the searched margin; -1e10 sin(10 t - 3)**2 ~ -1e12 (t - c)**2 changes by 1 over 1e-6
    found = time_features([sp.exp(-A * sp.sin(10 * t - 3) ** 2)], t, 0, 1)
    with mpmath.workdps(30):
        for j in range(3):
            assert _near(found, mpmath.mpf(3) / 10 + j * mpmath.pi / 10), (j, found)
    assert all(R(1, 2 * 10 ** 6) < w <= R(1, 10 ** 6) for _, w in found)


def test_two_kinks_close_together_make_a_narrow_window():
    # each argument changes slowly (width O(1)), but the two switching times are 1e-5 apart (by hand)
    found = time_features([(sp.Abs(t - R(3, 10)) - sp.Abs(t - R(30001, 100000))) * u], t, 0, 1)
    assert _near(found, R(3, 10)) and _near(found, R(30001, 100000))
    assert all(w <= R(1, 10 ** 5) for _, w in found)
    found = time_features([sp.Heaviside(R(1, 10 ** 10) - (t - R(3, 10)) ** 2)], t, 0, 1)
    assert _near(found, R(29999, 100000)) and _near(found, R(30001, 100000))


@pytest.mark.parametrize("expr", [
    sp.exp(-t / 2) * u,                      # a decay: its argument changes by 1 over 2 time units
    sp.sin(t) * u + sp.tanh(u),              # wide, and an argument of the state (not listed)
    sp.exp(-(t - R(1, 2)) ** 2) * u,         # a wide bump
])
def test_wide_features_and_state_arguments_need_nothing(expr):
    assert time_features([expr], t, 0, 1) == ()


def test_a_cliff_just_past_the_end_is_kept_and_one_far_away_is_not():
    # exp(1e6 (t - 1) - 50): zero of the argument at 1 + 5e-5, 50 widths out: exp(-50) at t = 1 matters
    assert _near(time_features([sp.exp(10 ** 6 * (t - 1) - 50)], t, 0, 1), 1 + mpmath.mpf(5) / 10 ** 5)
    # exp(1e6 (t - 2)): exp(-1e6) at t = 1, a million widths away
    assert time_features([sp.exp(10 ** 6 * (t - 2))], t, 0, 1) == ()


def test_too_many_narrow_features_are_refused():
    # sin(1e6 t) has ~3e5 zeros in [0, 1]: not located, so the integral is not trusted
    with pytest.raises(TooManyFeatures):
        time_features([sp.exp(-10 ** 8 * sp.sin(10 ** 6 * t) ** 2)], t, 0, 1)


# -- the oracle on models with an explicit-time spike (symode.compute(model, "oracle")) --------------------------
B = sp.Integer(10) ** 8   # width 1e-4: still ~exp(-9e6) at t = 0, far below the tolerance


def _quad(f):
    # mpmath.quad with the spike's centre and +-5 widths as breakpoints
    c = mpmath.mpf(3) / 10
    return mpmath.quad(f, [0, c - mpmath.mpf(5) / 10 ** 4, c, c + mpmath.mpf(5) / 10 ** 4, 1])


def _g(s):
    return mpmath.exp(-mpmath.mpf(B) * (s - mpmath.mpf(3) / 10) ** 2)


def _assert_oracle(model, loss, dk):
    r = compute(model, "oracle", digits=30)
    assert float(r.error_bound) <= 1e-28
    for got, ref in ((r.loss, loss), (r.grad["k"], dk)):
        assert abs(mpmath.mpf(got) - ref) <= TOL["oracle"] * abs(ref), (got, ref)


def test_oracle_forcing_spike():
    # du/dt = -k u + g(t), u(0) = 1, L = u(1): u(1) = e^-k + int_0^1 e^(-k(1-s)) g(s) ds,
    # dL/dk = -e^-k - int_0^1 (1-s) e^(-k(1-s)) g(s) ds (variation of constants, by hand; quad)
    g = sp.exp(-B * (t - R(3, 10)) ** 2)
    m = Model(name="forcing_spike", states=[u], params=[k], rhs=[-k * u + g], z0=[1], t0=0, t1=1,
              param_values={k: R(1, 2)}, terminal=u, t=t)
    with mpmath.workdps(40):
        h = mpmath.mpf(1) / 2
        loss = mpmath.exp(-h) + _quad(lambda s: mpmath.exp(-h * (1 - s)) * _g(s))
        dk = -mpmath.exp(-h) - _quad(lambda s: (1 - s) * mpmath.exp(-h * (1 - s)) * _g(s))
        _assert_oracle(m, loss, dk)


def test_oracle_running_cost_spike():
    # du/dt = -k u, u = e^(-k t), L = int_0^1 g(t) u**2 dt = int g e^(-2kt), dL/dk = -int 2t g e^(-2kt) (quad)
    g = sp.exp(-B * (t - R(3, 10)) ** 2)
    m = Model(name="running_spike", states=[u], params=[k], rhs=[-k * u], z0=[1], t0=0, t1=1,
              param_values={k: R(1, 2)}, running=g * u ** 2, t=t)
    with mpmath.workdps(40):
        loss = _quad(lambda s: _g(s) * mpmath.exp(-s))
        dk = -_quad(lambda s: 2 * s * _g(s) * mpmath.exp(-s))
        _assert_oracle(m, loss, dk)


def test_oracle_refuses_a_forcing_with_too_many_spikes():
    m = Model(name="spike_train", states=[u], params=[k], rhs=[-k * u + sp.exp(-B * sp.sin(10 ** 6 * t) ** 2)],
              z0=[1], t0=0, t1=1, param_values={k: R(1, 2)}, terminal=u, t=t)
    with pytest.raises(IntegrationError, match="narrow feature"):
        compute(m, "oracle", digits=30)
