"""Tests of symode.casadi.schemes (tableaux as data) and symode.casadi.solvers (fixed-step graphs).

Independent sources: the order conditions of Butcher's rooted-tree theory (checked exactly), closed-form
solutions of test problems (evaluated with mpmath at 30 digits) and their closed-form derivatives.
"""
from __future__ import annotations

import math
from fractions import Fraction

import casadi
import mpmath
import numpy as np
import pytest
import sympy

from symode.casadi.schemes import SCHEMES, Tableau, get_scheme
from symode.casadi.solvers import allocate_steps, fixed_step_solve, step_function
from symode.errors import SpecError

TOLERANCES = {
    # fitted slope of log(error) vs log(h) against the scheme's order: the leading error term C h^p
    # dominates only asymptotically; the step counts below keep errors far above round-off (>= 1e-12
    # against a floor of ~N * 1e-16) and in the asymptotic range
    "order_slope": 0.3,
    # derivatives of the rk4 / gauss2 graph at N = 64 steps on [0.2, 1.7] vs closed-form derivatives:
    # a-priori rk4 global error for dz/dt = a z + b is ~ T |a| (h a)^4 / 120 ~ 6e-10 (h = 1.5/64, |a| = 0.7);
    # derivatives carry errors of the same size; 1e-7 leaves margin, while a wrong sign, a missing factor s
    # or an ignored t0 gives O(0.1-1) errors
    "derivative": 1e-7,
    # stiff dz/dt = -1000 (z - cos t), h = 0.01: backward Euler tracks the slow solution with error
    # ~ h max|z''| / (2 lambda) = 0.01 / 2000 = 5e-6 (the transient is damped by (1 + h lambda)^-N = 11^-100);
    # gauss2 (A-stable, order 4) must do at least as well
    "stiff": 2e-5,
    # "blows up": rk4's stability function at h lambda = -10 is R = 291 per step, so after 100 steps a
    # finite result would be ~1e246; anything below 1e10 would mean no blow-up
    "blowup": 1e10,
}

mpmath.mp.dps = 30

ORDERS = {"euler": 1, "backward_euler": 1, "midpoint": 2, "implicit_midpoint": 2, "rk4": 4, "rk38": 4,
          "gauss2": 4, "dopri5": 5}
# step counts per order (h from T/16 down to T/512 on intervals of length 4)
STEP_COUNTS = {1: [64, 128, 256, 512], 2: [64, 128, 256, 512], 4: [32, 64, 128, 256], 5: [16, 32, 64, 128]}


# ------------------------------------------------------------------------------------------------
# schemes: order conditions from rooted trees (Butcher): a tableau has order p iff
# Phi(t) = sum_i b_i g_i(t) equals 1/gamma(t) for every rooted tree t with at most p nodes, where
# g(leaf) = 1, g([t_1..t_m])_i = prod_k (A g(t_k))_i and gamma([t_1..t_m]) = |t| prod_k gamma(t_k).


def _trees(max_order):
    """Rooted trees as canonical nested sorted tuples, grouped by number of nodes."""
    def grow(tree):
        # every tree obtained by attaching one leaf to some node of `tree`
        yield tuple(sorted(tree + ((),)))
        for k, child in enumerate(tree):
            for grown in grow(child):
                yield tuple(sorted(tree[:k] + (grown,) + tree[k + 1:]))

    levels = {1: {()}}
    for n in range(2, max_order + 1):
        levels[n] = {g for t in levels[n - 1] for g in grow(t)}
    return levels


def _nodes(tree):
    return 1 + sum(_nodes(c) for c in tree)


def _gamma(tree):
    return _nodes(tree) * math.prod(_gamma(c) for c in tree)


def _phi(tree, A, b):
    s = len(b)

    def g(t):
        vec = [sympy.Integer(1)] * s
        for child in t:
            gc = g(child)
            Agc = [sum(A[i][j] * gc[j] for j in range(s)) for i in range(s)]
            vec = [vec[i] * Agc[i] for i in range(s)]
        return vec

    return sum(b[i] * gi for i, gi in enumerate(g(tree)))


def _exact(x):
    return sympy.Rational(x.numerator, x.denominator) if isinstance(x, Fraction) else sympy.sympify(x)


TREES = _trees(6)


def test_tree_counts_match_oeis_a000081():
    # number of rooted trees with n nodes: 1, 1, 2, 4, 9, 20 (OEIS A000081)
    assert [len(TREES[n]) for n in range(1, 7)] == [1, 1, 2, 4, 9, 20]


@pytest.mark.parametrize("name", list(SCHEMES))
def test_tableau_has_exactly_its_stated_order(name):
    tab = SCHEMES[name]
    assert tab.order == ORDERS[name]
    A = [[_exact(a) for a in row] for row in tab.A]
    b = [_exact(x) for x in tab.b]
    defects = {}
    for n in range(1, tab.order + 2):
        defects[n] = [sympy.nsimplify(sympy.expand(_phi(t, A, b) - sympy.Rational(1, _gamma(t))))
                      for t in TREES[n]]
    for n in range(1, tab.order + 1):
        assert all(d == 0 for d in defects[n]), (name, n, defects[n])
    # and not order + 1: the stated order is the true one
    assert any(d != 0 for d in defects[tab.order + 1]), name


def test_gauss2_floats_are_correctly_rounded():
    # reference: 1/4 -+ sqrt(3)/6 and 1/2 -+ sqrt(3)/6 at 40 digits with mpmath
    mpmath.mp.dps = 40
    try:
        r = mpmath.sqrt(3) / 6
        A, b, c = SCHEMES["gauss2"].as_floats()
        exact = {"A01": mpmath.mpf(1) / 4 - r, "A10": mpmath.mpf(1) / 4 + r,
                 "c0": mpmath.mpf(1) / 2 - r, "c1": mpmath.mpf(1) / 2 + r}
        got = {"A01": A[0][1], "A10": A[1][0], "c0": c[0], "c1": c[1]}
        for key, value in got.items():
            assert abs(mpmath.mpf(value) - exact[key]) <= mpmath.mpf(math.ulp(value)) / 2, key
    finally:
        mpmath.mp.dps = 30


def test_get_scheme_unknown_name_lists_known_names():
    with pytest.raises(SpecError, match="rk4.*gauss2"):
        get_scheme("rk45")
    with pytest.raises(SpecError):
        get_scheme(4)


@pytest.mark.parametrize("kwargs, message", [
    (dict(A=((0, 0), (1, 0)), b=(1, 0, 0), c=(0, 1)), "shapes"),
    (dict(A=((0, 0), (1, 0)), b=(Fraction(1, 2), Fraction(1, 2)), c=(0, Fraction(1, 2))), "row-sum"),
    (dict(A=((0, 0), (1, 0)), b=(Fraction(1, 2), Fraction(1, 3)), c=(0, 1)), "sum\\(b\\)"),
    (dict(A=((0, 0), (1, 0)), b=(Fraction(1, 2), Fraction(1, 2)), c=(0, 1), implicit=True), "strictly lower"),
    (dict(A=((1,),), b=(1,), c=(1,), implicit=False), "strictly lower"),
    (dict(A=((0, 0), (1, 0)), b=(Fraction(1, 2), Fraction(1, 2)), c=(0, 1), order=0), "order"),
])
def test_invalid_user_tableau_is_refused(kwargs, message):
    args = dict(name="user", order=2, implicit=False) | kwargs
    with pytest.raises(SpecError, match=message):
        Tableau(**args)


def test_user_tableau_heun_works():
    # Heun's method (explicit trapezoid), order 2: one step of dz/dt = z from z = 1 with h = 0.1 gives
    # 1 + h + h^2/2 = 1.105 (its stability polynomial, by hand)
    heun = Tableau("heun", ((0, 0), (1, 0)), (Fraction(1, 2), Fraction(1, 2)), (0, 1), 2, False)
    assert get_scheme(heun) is heun
    f = _rhs(1, 0, lambda z, t, p: z)
    step = step_function(f, heun, 1, 0)
    assert float(step(1.0, 0.0, 0.1, casadi.DM(0, 1))) == pytest.approx(1.105, rel=1e-15)
    # float entries are accepted (to rounding): row sums of 0.1-ish decimals
    Tableau("floats", ((0.0, 0.0), (0.1, 0.0)), (0.0, 1.0), (0.0, 0.1), 1, False)


@pytest.mark.parametrize("scheme, amplification", [
    # one step of dz/dt = lam z multiplies z by the stability function R(h lam), by hand:
    ("backward_euler", lambda x: 1 / (1 - x)),
    ("implicit_midpoint", lambda x: (1 + x / 2) / (1 - x / 2)),
    ("gauss2", lambda x: (1 + x / 2 + x**2 / 12) / (1 - x / 2 + x**2 / 12)),  # the (2,2) Pade approximant
    ("rk4", lambda x: 1 + x + x**2 / 2 + x**3 / 6 + x**4 / 24),
])
def test_one_step_is_the_stability_function(scheme, amplification):
    # the stage equations are linear here: Newton is exact after one iteration, only rounding remains
    f = _rhs(1, 1, lambda z, t, p: p[0] * z)
    step = step_function(f, scheme, 1, 1)
    lam, h, z = -3.0, 0.1, 1.5
    assert float(step(z, 0.0, h, lam)) == pytest.approx(z * amplification(h * lam), rel=1e-14)


@pytest.mark.parametrize("scheme", ["backward_euler", "implicit_midpoint", "gauss2"])
@pytest.mark.parametrize("scale", [1e-30, 1.0, 1e6])
def test_implicit_stages_are_solved_relative_to_their_size(scheme, scale):
    """Regression: with Newton's absolute tolerance 1e-12 on unscaled stages, a stage residual below 1e-12
    was accepted at the predictor, so a decaying stiff solution stopped decaying near 1e-17, and stages of
    size 1e6 could not converge at all.  One step of dz/dt = lam z with h lam = -100 must equal
    z R(h lam) (the stability function, by hand as above) at every magnitude of z."""
    R = {"backward_euler": lambda x: 1 / (1 - x),
         "implicit_midpoint": lambda x: (1 + x / 2) / (1 - x / 2),
         "gauss2": lambda x: (1 + x / 2 + x**2 / 12) / (1 - x / 2 + x**2 / 12)}[scheme]
    f = _rhs(1, 1, lambda z, t, p: p[0] * z)
    step = step_function(f, scheme, 1, 1)
    lam, h = -1000.0, 0.1
    z = 1.5 * scale
    # rounding: z + h K cancels all but R of z, amplifying K's rounding by ~|h lam| = 100: 1e-12 has room
    assert float(step(z, 0.0, h, lam)) == pytest.approx(z * R(h * lam), rel=1e-12)


def test_explicit_step_is_sx_and_the_loop_is_mx():
    # docs/design.md: SX inside one step, MX (fold) across steps
    f = _rhs(1, 1, lambda z, t, p: p[0] * z)
    assert step_function(f, "rk4", 1, 1).is_a("SXFunction")
    assert step_function(f, "gauss2", 1, 1).is_a("MXFunction")  # wraps the rootfinder
    assert fixed_step_solve(f, "rk4", 1, 1, 100).is_a("MXFunction")


# ------------------------------------------------------------------------------------------------
# test problems with closed forms (mpmath)


def _rhs(nz, np_, fn):
    z, t, p = casadi.SX.sym("z", nz), casadi.SX.sym("t"), casadi.SX.sym("p", np_)
    return casadi.Function("f", [z, t, p], [fn(z, t, p)])


def _linear_exact(z0, p, t0, t):
    a, b = p
    return [(z0[0] + b / a) * mpmath.exp(a * (t - t0)) - b / a]


def _rotation_exact(z0, p, t0, t):
    w = p[0] * (t - t0)
    return [mpmath.cos(w) * z0[0] - mpmath.sin(w) * z0[1], mpmath.sin(w) * z0[0] + mpmath.cos(w) * z0[1]]


def _nonautonomous_exact(z0, p, t0, t):
    return [z0[0] * mpmath.exp(p[0] * (mpmath.sin(t) - mpmath.sin(t0)))]


def _logistic_exact(z0, p, t0, t):
    return [1 / (1 + (1 / z0[0] - 1) * mpmath.exp(-p[0] * (t - t0)))]


PROBLEMS = {
    # name: (rhs, z0, p, t0, t1, closed form z(t))
    "linear": (_rhs(1, 2, lambda z, t, p: p[0] * z + p[1]), [1.0], [0.5, 0.3], 0.2, 4.2, _linear_exact),
    "rotation": (_rhs(2, 1, lambda z, t, p: casadi.vertcat(-p[0] * z[1], p[0] * z[0])), [1.0, 0.5], [1.3],
                 0.0, 4.0, _rotation_exact),
    "nonautonomous": (_rhs(1, 1, lambda z, t, p: p[0] * casadi.cos(t) * z), [0.8], [0.9], 0.3, 4.3,
                      _nonautonomous_exact),
    "logistic": (_rhs(1, 1, lambda z, t, p: p[0] * z * (1 - z)), [0.1], [1.5], 0.0, 4.0, _logistic_exact),
}
OUTPUTS = [Fraction(1, 4), Fraction(1, 2), Fraction(3, 4), Fraction(1)]


def _mp(values):
    return [mpmath.mpf(v) for v in values]  # exact binary values of the doubles


def _max_error(Z, exact, z0, p, t0, t1, fractions):
    """max over output columns and components of |Z - z(t0 + s (t1 - t0))|, in mpmath."""
    worst = mpmath.mpf(0)
    T0, T1 = mpmath.mpf(t0), mpmath.mpf(t1)
    for k, s in enumerate(fractions):
        tau = T0 + mpmath.mpf(s.numerator) / s.denominator * (T1 - T0)
        ref = exact(_mp(z0), _mp(p), T0, tau)
        for i, r in enumerate(ref):
            worst = max(worst, abs(mpmath.mpf(float(Z[i, k])) - r))
    return float(worst)


@pytest.mark.slow
@pytest.mark.parametrize("problem", list(PROBLEMS))
@pytest.mark.parametrize("scheme", list(ORDERS))
def test_empirical_convergence_order(scheme, problem):
    # the maximum error over four output times: a single time can sit near a zero of the leading
    # global-error coefficient and show a misleading slope
    f, z0, p, t0, t1, exact = PROBLEMS[problem]
    counts = STEP_COUNTS[ORDERS[scheme]]
    errors = []
    for n in counts:
        solve = fixed_step_solve(f, scheme, len(z0), len(p), n, OUTPUTS)
        Z = np.array(solve(z0, p, t0, t1))
        errors.append(_max_error(Z, exact, z0, p, t0, t1, OUTPUTS))
    assert min(errors) > 1e-13, errors  # far above round-off, else the slope means nothing
    slope = np.polyfit(np.log([(t1 - t0) / n for n in counts]), np.log(errors), 1)[0]
    assert abs(slope - ORDERS[scheme]) <= TOLERANCES["order_slope"], (slope, errors)


def test_output_columns_and_initial_column():
    f, z0, p, t0, t1, exact = PROBLEMS["rotation"]
    fractions = [0, Fraction(1, 3), 1]
    solve = fixed_step_solve(f, "rk4", 2, 1, 300, fractions)
    Z = np.array(solve(z0, p, t0, t1))
    assert Z.shape == (2, 3)
    assert list(Z[:, 0]) == z0  # s = 0 is the initial state itself
    # rk4 at h = 4/300: a-priori error ~ T (h w)^4 / 120 ~ 1e-8
    assert _max_error(Z, exact, z0, p, t0, t1, [Fraction(0), Fraction(1, 3), Fraction(1)]) < 1e-7


def test_backward_in_time():
    # t1 < t0: negative steps; closed form of the linear problem holds for either direction
    f, z0, p, _, _, exact = PROBLEMS["linear"]
    solve = fixed_step_solve(f, "rk4", 1, 2, 200, [1])
    Z = np.array(solve(z0, p, 3.0, 1.0))
    assert _max_error(Z, exact, z0, p, 3.0, 1.0, [Fraction(1)]) < 1e-8


def test_allocate_steps_by_hand():
    # hand-computed: quotas 10 * (1/3, 2/3) = (3.33, 6.67) -> (3, 7); s0 = 0 gets no steps
    assert allocate_steps([0, Fraction(1, 3), 1], 10) == (0, 3, 7)
    # quotas (3.33, 3.33, 3.33): the remaining step goes to the earliest
    assert allocate_steps([Fraction(1, 3), Fraction(2, 3), 1], 10) == (4, 3, 3)
    # a tiny first interval still gets one step: quotas (0.1, 9.9) -> (1, 9)
    assert allocate_steps([Fraction(1, 100), 1], 10) == (1, 9)
    assert allocate_steps([Fraction(1, 4), Fraction(1, 2), 1], 4) == (1, 1, 2)
    with pytest.raises(SpecError, match="at least one step"):
        allocate_steps([Fraction(1, 4), Fraction(1, 2), 1], 2)
    for bad in ([], [Fraction(1, 2), Fraction(1, 4)], [Fraction(3, 2)], [-0.5, 1]):
        with pytest.raises(SpecError):
            allocate_steps(bad, 10)


def test_rhs_and_name_validation():
    f = PROBLEMS["linear"][0]
    with pytest.raises(SpecError, match="inputs"):
        fixed_step_solve(f, "rk4", 2, 2, 10)  # wrong nz
    with pytest.raises(SpecError, match="casadi.Function"):
        fixed_step_solve(lambda z, t, p: z, "rk4", 1, 2, 10)
    with pytest.raises(SpecError, match="identifier"):
        fixed_step_solve(f, "rk4", 1, 2, 10, name='x"); system("id')
    with pytest.raises(SpecError, match="Newton"):
        fixed_step_solve(f, "gauss2", 1, 2, 10, newton={"tol": 1e-3})


# ------------------------------------------------------------------------------------------------
# derivatives with respect to z0, p, t0, t1


def _linear_derivatives(z0, a, b, t0, t1, s):
    """Closed-form derivatives of z(tau), tau = t0 + s (t1 - t0), for dz/dt = a z + b.

    z(tau) = (z0 + b/a) e^{a (tau - t0)} - b/a;  d/dt1 = s f(z(tau));
    d/dt0 = (1 - s) f(z(tau)) - e^{a (tau - t0)} f(z0)   (moving t0 moves the start and, by 1 - s, tau).
    """
    z0, a, b, t0, t1 = map(mpmath.mpf, (z0, a, b, t0, t1))
    s = mpmath.mpf(s.numerator) / s.denominator
    u = s * (t1 - t0)
    E = mpmath.exp(a * u)
    z = (z0 + b / a) * E - b / a
    return {
        "z0": E,
        "a": (z0 + b / a) * u * E - b / a**2 * E + b / a**2,
        "b": (E - 1) / a,
        "t0": (1 - s) * (a * z + b) - E * (a * z0 + b),
        "t1": s * (a * z + b),
    }


@pytest.mark.parametrize("scheme", ["rk4", "gauss2"])
def test_derivatives_match_closed_form(scheme):
    f = PROBLEMS["linear"][0]
    z0, a, b, t0, t1 = 1.0, -0.7, 0.3, 0.2, 1.7
    fractions = [Fraction(1, 2), Fraction(1)]
    solve = fixed_step_solve(f, scheme, 1, 2, 64, fractions)
    Z0, P, T0, T1 = casadi.MX.sym("z0"), casadi.MX.sym("p", 2), casadi.MX.sym("t0"), casadi.MX.sym("t1")
    Z = solve(Z0, P, T0, T1)
    jac = casadi.Function("jacobian", [Z0, P, T0, T1], [casadi.jacobian(Z, casadi.vertcat(Z0, P, T0, T1))])
    J = np.array(jac(z0, [a, b], t0, t1))
    assert np.all(np.isfinite(J))
    for row, s in enumerate(fractions):
        ref = _linear_derivatives(z0, a, b, t0, t1, s)
        for col, key in enumerate(["z0", "a", "b", "t0", "t1"]):
            assert abs(J[row, col] - float(ref[key])) <= TOLERANCES["derivative"], (s, key, J[row, col],
                                                                                  ref[key])


@pytest.mark.parametrize("scheme", ["rk38", "dopri5"])
def test_time_derivatives_nonautonomous(scheme):
    # z(t1) = z0 exp(q (sin t1 - sin t0)): d/dt1 = q cos(t1) z(t1); d/dt0 = -q cos(t0) z(t1).
    # Order >= 4 at h = 2/400 = 0.005: discretization errors ~ C h^4 ~ 6e-10 C with C = O(1) here
    f = PROBLEMS["nonautonomous"][0]
    z0, q, t0, t1 = 0.8, 0.9, 0.3, 2.3
    n = 400
    solve = fixed_step_solve(f, scheme, 1, 1, n)
    T0, T1 = casadi.MX.sym("t0"), casadi.MX.sym("t1")
    jac = casadi.Function("j", [T0, T1], [casadi.jacobian(solve(z0, q, T0, T1), casadi.vertcat(T0, T1))])
    J = np.array(jac(t0, t1)).ravel()
    zt1 = z0 * mpmath.exp(q * (mpmath.sin(t1) - mpmath.sin(t0)))
    ref = [float(-q * mpmath.cos(t0) * zt1), float(q * mpmath.cos(t1) * zt1)]
    assert np.all(np.abs(J - ref) <= 1e-8), (J, ref)


@pytest.mark.parametrize("scheme", list(ORDERS))
def test_graph_is_differentiable_for_every_scheme(scheme):
    f, z0, p, t0, t1, _ = PROBLEMS["logistic"]
    solve = fixed_step_solve(f, scheme, 1, 1, 20, [Fraction(1, 2), 1])
    Z0, P, T0, T1 = casadi.MX.sym("z0"), casadi.MX.sym("p"), casadi.MX.sym("t0"), casadi.MX.sym("t1")
    jac = casadi.Function("j", [Z0, P, T0, T1],
                          [casadi.jacobian(solve(Z0, P, T0, T1), casadi.vertcat(Z0, P, T0, T1))])
    J = np.array(jac(z0, p, t0, t1))
    assert J.shape == (2, 4) and np.all(np.isfinite(J))
    # sanity independent of the scheme: d z(t1)/d t1 = f(z(t1)) = r z (1 - z) > 0 on a growing logistic
    assert J[1, 3] > 0 and J[1, 2] < 0


# ------------------------------------------------------------------------------------------------
# stiffness


def test_stiff_problem_explicit_blows_up_implicit_stays_accurate():
    lam = 1000.0
    f = _rhs(1, 1, lambda z, t, p: -p[0] * (z - casadi.cos(t)))
    L = mpmath.mpf(lam)

    def exact(t):
        # z = z_p + (z0 - z_p(0)) e^{-lambda t}, z_p = (lambda^2 cos t + lambda sin t) / (lambda^2 + 1), z0 = 0
        zp = lambda u: (L**2 * mpmath.cos(u) + L * mpmath.sin(u)) / (L**2 + 1)  # noqa: E731
        return zp(t) - zp(0) * mpmath.exp(-L * t)

    fractions = [Fraction(1, 2), Fraction(1)]
    results = {}
    for scheme in ["rk4", "backward_euler", "gauss2"]:
        solve = fixed_step_solve(f, scheme, 1, 1, 100, fractions)  # h = 0.01, h lambda = -10
        results[scheme] = np.array(solve(0.0, lam, 0.0, 1.0)).ravel()
    rk4 = results["rk4"]
    assert not np.all(np.isfinite(rk4)) or np.max(np.abs(rk4)) > TOLERANCES["blowup"], rk4
    for scheme in ["backward_euler", "gauss2"]:
        for value, s in zip(results[scheme], [0.5, 1.0]):
            assert abs(mpmath.mpf(float(value)) - exact(mpmath.mpf(s))) <= TOLERANCES["stiff"], (scheme, s)


# ------------------------------------------------------------------------------------------------
# code generation (text only; compiling is tested with the codegen module)


@pytest.mark.parametrize("scheme", ["rk4", "dopri5", "gauss2", "backward_euler"])
def test_solve_and_reverse_derivative_generate_c(scheme):
    f = PROBLEMS["nonautonomous"][0]
    solve = fixed_step_solve(f, scheme, 1, 1, 50, [Fraction(1, 2), 1], name="solve_test")
    gen = casadi.CodeGenerator("symode_solver_test")
    gen.add(solve)
    gen.add(solve.reverse(1))
    text = gen.dump()
    assert "#error" not in text
    assert "solve_test(" in text and "adj1_solve_test" in text
    # the time loop stays a loop: the C text does not grow with the number of steps
    longer = casadi.CodeGenerator("symode_solver_test_long")
    longer.add(fixed_step_solve(f, scheme, 1, 1, 500, [Fraction(1, 2), 1], name="solve_test"))
    short = casadi.CodeGenerator("symode_solver_test_short")
    short.add(solve)
    assert len(longer.dump()) < 2 * len(short.dump())
