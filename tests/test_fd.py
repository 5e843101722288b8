"""Tests of symode.check.fd (finite differences with a plateau search).

Expected values are analytic derivatives (calculus); the allowed error of a plateau value is the textbook
central-difference error bound, computed here independently of the module:

    |g(h) - f'(θ)| <= M3 h² / 6  +  R / h

with M3 a bound on |f'''| near θ (from the closed-form third derivative) and R the absolute rounding/noise error of
f (4 * eps * max|f| for float64 evaluations of a few correctly-rounded operations; plus the noise amplitude).  The
plateau value is the median of plateau estimates, so it is bounded by the worst bound over the plateau's steps.
"""
from __future__ import annotations

import math
import random

import pytest

from symode.check.fd import FDError, fd_gradient

EPS = 2.0 ** -52

#: Tolerances of these tests, with reasons.
TOL = {
    # rounding of sin/exp/products in float64: each libm call and multiplication is within ~1 ulp, a few of
    # them give <= 4 eps relative (generous)
    "rounding_ulps": 4,
    # deterministic "noise" amplitude of the noisy test function (relative)
    "noise": 1e-10,
}


def bound(m3: float, fmax: float, noise_rel: float, hs) -> float:
    """max over the plateau's steps of the central-difference error bound (module docstring)."""
    r = (TOL["rounding_ulps"] * EPS + noise_rel) * fmax
    return max(m3 * h * h / 6 + r / h for h in hs)


def f_sin_exp(t):
    return math.sin(t[0]) * math.exp(t[1])


THETA = [0.7, 0.3]
EXACT = [math.cos(0.7) * math.exp(0.3), math.sin(0.7) * math.exp(0.3)]  # d/dx, d/dy of sin(x) e^y
# |d³/dx³| = |cos x| e^y <= e^(0.3 + 0.01); |d³/dy³| = sin(x) e^y <= e^(0.31); |f| <= e^0.31 near θ (steps <= 5e-3)
M3 = FMAX = math.exp(0.31)


def plateau_steps(c):
    return c.hs[c.plateau[0]:c.plateau[1] + 1]


def test_smooth_function_plateau_within_the_fd_error_bound():
    r = fd_gradient(f_sin_exp, THETA)
    assert r.ok and r.reason is None
    for c, exact in zip(r.components, EXACT):
        # the whole sweep is reported: 7 steps over 6 decades, ascending; the plateau has >= 3 of them
        assert len(c.hs) == len(c.values) == 7 and c.hs == sorted(c.hs)
        assert c.hs[-1] / c.hs[0] == pytest.approx(1e6, rel=1e-6)
        assert c.plateau[1] - c.plateau[0] >= 2
        assert abs(c.value - exact) <= bound(M3, FMAX, 0.0, plateau_steps(c))
    assert r.values() == [c.value for c in r.components]
    md = r.to_markdown()
    assert "theta[0]" in md and md.count("| yes |") >= 6


def noisy(t):
    # deterministic noise of relative size <= 1e-10 (a function of θ only, like a solver at rtol ~1e-10)
    u = random.Random(repr(t)).uniform(-1.0, 1.0)
    return f_sin_exp(t) * (1 + TOL["noise"] * u)


def test_noisy_function_plateau_moves_to_larger_steps():
    clean = fd_gradient(f_sin_exp, THETA)
    # told the truth about its accuracy, the sweep finds a plateau at larger steps than for the exact function
    r = fd_gradient(noisy, THETA, tol=1e-10)
    assert r.ok
    for c, c0, exact in zip(r.components, clean.components, EXACT):
        assert c.h_range[0] > c0.h_range[0] and c.h_range[1] > c0.h_range[1]
        assert abs(c.value - exact) <= bound(M3, FMAX, TOL["noise"], plateau_steps(c))
    # told float64 accuracy, no run of steps agrees to sqrt(1e-16): no plateau, said so, the sweep still reported
    r = fd_gradient(noisy, THETA, tol=1e-16)
    assert not r.ok and "no plateau" in r.reason
    for c in r.components:
        assert c.value is None and len(c.values) == 7 and all(math.isfinite(v) for v in c.values)
    with pytest.raises(FDError, match="no plateau"):
        r.values()


@pytest.mark.parametrize("func,x", [
    (lambda t: abs(t[0]), 0.0),                 # |x| at 0: one-sided slopes -1 and 1
    (lambda t: abs(t[0] - 1e-3), 1e-3),         # the same kink away from 0
    (lambda t: max(t[0], 2 * t[0]), 0.0),       # slopes 1 and 2
])
def test_kink_at_theta_is_refused(func, x):
    r = fd_gradient(func, [x])
    assert not r.ok and "kink" in r.reason
    with pytest.raises(FDError, match="kink"):
        r.values()


def test_smooth_points_that_look_special_are_not_kinks():
    # sin at 0: f'' = 0 (one-sided gap only O(h²)), f' = 1, |f'''| <= 1, |f| <= 5e-3 on the sweep
    r = fd_gradient(lambda t: math.sin(t[0]), [0.0])
    assert r.ok and abs(r.components[0].value - 1.0) <= bound(1.0, 5e-3, 0.0, plateau_steps(r.components[0]))
    # x² at 0: central differences are exactly 0 = f'(0); one-sided gaps 2h shrink with h
    r = fd_gradient(lambda t: t[0] ** 2, [0.0])
    assert r.ok and r.components[0].value == 0.0
    # exp(50 x) at 0.3: f' = 50 e^15; |f'''| <= 50³ e^(15 + 50*5e-3)
    r = fd_gradient(lambda t: math.exp(50 * t[0]), [0.3])
    c = r.components[0]
    m3, fmax = 50 ** 3 * math.exp(15.25), math.exp(15.25)
    assert r.ok and abs(c.value - 50 * math.exp(15)) <= bound(m3, fmax, 0.0, plateau_steps(c))


def test_zero_derivative_of_a_zero_function_needs_a_scale():
    # x³ at 0: estimates are h² exactly (((h)³ - (-h)³) / 2h), never relatively agreeing; with scale = 1 they
    # agree absolutely and the value is one of them, <= (largest plateau step)²
    assert not fd_gradient(lambda t: t[0] ** 3, [0.0]).ok
    r = fd_gradient(lambda t: t[0] ** 3, [0.0], scale=1.0)
    assert r.ok and 0 <= r.components[0].value <= r.components[0].h_range[1] ** 2 * (1 + 1e-12)


def test_non_finite_evaluations_break_runs_but_not_the_search():
    # NaN beyond x = 0.501: only the largest step of the default sweep around 0.5 (h = 4.6e-3) reaches it
    def f(t):
        return math.sin(t[0]) if t[0] < 0.501 else math.nan
    r = fd_gradient(f, [0.5])
    c = r.components[0]
    assert math.isnan(c.values[-1]) and r.ok
    assert abs(c.value - math.cos(0.5)) <= bound(1.0, 1.0, 0.0, plateau_steps(c))


def test_explicit_steps_and_invalid_inputs():
    r = fd_gradient(f_sin_exp, THETA, hs=[1e-6, 1e-5, 1e-4, 1e-7])
    assert r.components[0].hs == pytest.approx([1e-7, 1e-6, 1e-5, 1e-4], rel=1e-9)
    with pytest.raises(FDError):
        fd_gradient(f_sin_exp, THETA, tol=0)
    with pytest.raises(FDError):
        fd_gradient(f_sin_exp, [math.nan, 0.0])
    with pytest.raises(FDError, match="finite value"):
        fd_gradient(lambda t: math.nan, [0.0])
    with pytest.raises(FDError):
        fd_gradient(f_sin_exp, THETA, hs=[1e-6])
