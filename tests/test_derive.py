"""The symbolic derivation engine against independent derivations.

Independent references used here:
- the textbook solution of dz/dt = a z + b, z(t) = (z0 + b/a) e^{a (t - t0)} - b/a, typed in by hand below
  (not taken from symode's closed-form module);
- SymPy's dsolve/integrate applied in the test to the adjoint ODE that symode derived;
- exact differentiation of closed forms in t0 and t1 (the definition of dL/dt0 and dL/dt1).
"""
from __future__ import annotations

import mpmath
import pytest
import sympy

from symode.library import get_model, mlp_model
from symode.model import Model, T
from symode.symbolic.derive import Derivation, derive
from symode.symbolic.regression import LinearRegression

a, b, z, y, z0, t0, t1 = sympy.symbols("a b z y z0 t0 t1", real=True)
t = T


def _linear_model():
    return Model(name="lin", states=[z], params=[a, b], rhs=[a * z + b], z0=[sympy.Rational(1)], t0=0, t1=1,
                 param_values={a: sympy.Rational(-1, 2), b: 1}, terminal=(z - 2) ** 2)


@pytest.mark.slow
def test_adjoint_route_solved_symbolically_equals_closed_form_gradient():
    """Acceptance (foundation): λ(t) in closed form and ∫ λ ∂f/∂θ dt by SymPy equal ∂L/∂a, ∂L/∂b exactly."""
    m = _linear_model()
    d = derive(m)
    lam = d.lam[0]
    # the hand-typed textbook solution, with symbolic z0, t0, t1 and target y
    zsol = (z0 + b / a) * sympy.exp(a * (t - t0)) - b / a
    L = (zsol.subs(t, t1) - y) ** 2
    # adjoint ODE derived by symode: dλ/dt = -(∂f/∂z)ᵀ λ  (no running cost); terminal condition 2 (z(t1) - y)
    lam_f = sympy.Function("lam")
    rhs = d.adjoint_rhs[0].subs(lam, lam_f(t))
    final = sympy.diff((z - y) ** 2, z).subs(z, zsol.subs(t, t1))
    sol = sympy.dsolve(sympy.Eq(lam_f(t).diff(t), rhs), lam_f(t), ics={lam_f(t1): final}).rhs
    # parameter quadrature: dL/dθ = ∫_{t0}^{t1} λᵀ ∂f/∂θ dt, with ∂f/∂θ from symode, z(t) substituted
    for j, p in enumerate((a, b)):
        integrand = (-d.adjoint_quad_rhs[j]).subs({lam: sol, z: zsol})
        adjoint_grad = sympy.integrate(integrand, (t, t0, t1), conds="none")
        assert sympy.simplify(adjoint_grad - sympy.diff(L, p)) == 0
    # and dL/dz0 = λ(t0)
    assert sympy.simplify(sol.subs(t, t0) - sympy.diff(L, z0)) == 0


def _check_time_gradient_signs(model):
    """dL/dt0 = -λ(t0)ᵀ f(z0, t0) and dL/dt1 = ∂ℓ/∂z f(z(t1)) against exact d/dT0, d/dT1 of the closed form."""
    d = derive(model)
    cf = d.closed_form
    assert cf, f"{model.name}: expected a closed form ({getattr(cf, 'reason', '')})"
    sub = cf.substitutions(model)
    prec = 40
    # λ(t0) = dL/dz0 (exact, from the closed form); z0 nominal
    lam0 = {l: g.subs(sub) for l, g in zip(d.lam, cf.grad_z0)}
    z0v = {s: e.subs(sub) for s, e in zip(model.states, cf.z0_of_theta)}
    formula_t0 = d.grad_t0_expr.subs({**lam0, **z0v}).subs(sub)
    exact_t0 = sympy.diff(cf.loss, cf.T0).subs(sub)
    assert abs(sympy.N(formula_t0 - exact_t0, prec)) < sympy.Float(10) ** -30
    z1 = {s: e.subs(model.t, cf.T1).subs(sub) for s, e in zip(model.states, cf.solution)}
    formula_t1 = d.grad_t1_expr.subs(z1).subs(sub)
    exact_t1 = sympy.diff(cf.loss, cf.T1).subs(sub)
    assert abs(sympy.N(formula_t1 - exact_t1, prec)) < sympy.Float(10) ** -30
    # the signs themselves are not both zero and are opposite for these autonomous terminal-loss models
    assert abs(sympy.N(exact_t0, prec)) > 1e-6
    return sympy.N(exact_t0, prec), sympy.N(exact_t1, prec)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["linear", "logistic", "oscillator"])
def test_t0_t1_gradient_signs_against_closed_form(name):
    g0, g1 = _check_time_gradient_signs(get_model(name))
    # autonomous f, terminal loss, z0 independent of t0: shifting both ends by δ leaves L unchanged,
    # so dL/dt0 = -dL/dt1 (an independent identity, and the sign torchdiffeq users get wrong)
    assert abs(g0 + g1) < 1e-30


def test_t0_sign_by_hand_on_scalar_linear():
    """Worked by hand: dz/dt = a z, L = z(t1); z(t1) = z0 e^{a(t1-t0)} so dL/dt0 = -a z0 e^{a(t1-t0)} < 0."""
    m = Model(name="exp", states=[z], params=[a], rhs=[a * z], z0=[1], t0=0, t1=1,
              param_values={a: sympy.Rational(1, 2)}, terminal=z)
    cf = derive(m).closed_form
    v = cf.evaluate(m, 30)
    with mpmath.workdps(40):
        expected = -mpmath.exp(mpmath.mpf(1) / 2) / 2
        assert abs(v["grad_t0"] - expected) < mpmath.mpf(10) ** -28
    assert v["grad_t0"] < 0 < v["grad_t1"]


def test_sensitivity_system_matches_hand_derivation():
    d = derive(_linear_model())
    S_a, S_b = d.S
    assert d.sens_rhs == sympy.Matrix([[a * S_a + z, a * S_b + 1]])
    assert d.sens_init == sympy.zeros(1, 2)
    assert d.dz0dp == sympy.zeros(1, 2)


def test_adjoint_with_running_cost_and_observations():
    """dλ/dt = -f_zᵀλ - r_zᵀ, dμ/dt = -f_θᵀλ - r_θᵀ, jumps ∂ℓ_i/∂z: checked against hand derivation."""
    x, v, k, c = sympy.symbols("x v k c", real=True)
    m = Model(name="osc", states=[x, v], params=[k, c], rhs=[v, -k * x - c * v], z0=[1, 0], t0=0, t1=2,
              param_values={k: 2, c: sympy.Rational(3, 10)}, running=c * x ** 2,
              observations=[(1, (x - 1) ** 2 + v ** 2)])
    d = derive(m)
    lx, lv = d.lam
    assert d.adjoint_rhs == sympy.Matrix([k * lv - 2 * c * x, -lx + c * lv])
    assert d.adjoint_quad_rhs == sympy.Matrix([x * lv, v * lv - x ** 2])
    (time, jump), = d.adjoint_jumps
    assert time == 1 and jump == sympy.Matrix([2 * x - 2, 2 * v])
    assert d.adjoint_final == sympy.zeros(2, 1)
    # dL/dt1 = r(z(t1)) only (no terminal term): t1 moves only the end of the running cost
    assert d.grad_t1_expr == c * x ** 2
    assert d.grad_t0_expr == -(lx * v + lv * (-k * x - c * v)) - c * x ** 2


def test_grad_t1_undefined_with_observation_at_t1():
    m = get_model("seed-encoder")  # its last observation is at t1 = 2
    assert derive(m).grad_t1_expr is None


def test_memoised_and_named():
    m = get_model("logistic")
    d = derive(m)
    assert derive(m) is d
    assert d.dfdz is d.dfdz and d.get("dfdz") is d.dfdz
    with pytest.raises(KeyError):
        d.get("no_such_quantity")
    for name in Derivation.NAMES:
        if name != "closed_form":
            d.get(name)


def test_matrix_parameters_mlp_shapes():
    m = mlp_model(3, 5)
    d = derive(m)
    P = 3 * 5 + 5 + 5 * 3 + 3
    assert m.np == P and d.dfdp.shape == (3, P) and d.sens_rhs.shape == (3, P)
    assert m.param_groups["W1"].shape == (5, 3)
    # ∂f_i/∂b2_j = δ_ij (hand derivation)
    b2 = [m.param_groups["b2"][j] for j in range(3)]
    cols = [m.params.index(s) for s in b2]
    assert d.dfdp[:, cols] == sympy.eye(3)


def test_no_closed_form_is_a_plain_result():
    cf = derive(get_model("vanderpol")).closed_form
    assert not cf and "no closed form" in cf.reason


def test_regression_seed_model_derivatives():
    """Hand derivation: ∂/∂a (ax+b-y)² = 2(ax+b-y)x; ∂/∂b = 2(ax+b-y) (factor 1, not the seed's Y)."""
    lr = LinearRegression()
    A, B, X, Y, LR = lr.a, lr.b, lr.x, lr.y, lr.LR
    assert sympy.expand(lr.dloss_da - 2 * (A * X + B - Y) * X) == 0
    assert sympy.expand(lr.dloss_db - 2 * (A * X + B - Y)) == 0
    assert sympy.expand(lr.update_a - (A - LR * 2 * (A * X + B - Y) * X)) == 0
    assert sympy.expand(lr.update_b - (B - LR * 2 * (A * X + B - Y))) == 0
    # data set (mean): with n = 2 concrete samples the Sum form equals the explicit mean's gradient
    xs, ys = sympy.symbols("x1 x2", real=True), sympy.symbols("y1 y2", real=True)
    explicit = sum((A * xi + B - yi) ** 2 for xi, yi in zip(xs, ys)) / 2
    concrete = lr.dataset_dloss_da.subs(lr.n, 2).doit()
    concrete = concrete.subs({lr.X[1]: xs[0], lr.X[2]: xs[1], lr.Y[1]: ys[0], lr.Y[2]: ys[1]})
    assert sympy.expand(concrete - sympy.diff(explicit, A)) == 0


@pytest.mark.slow
def test_closed_form_past_a_pole_is_refused_not_evaluated():
    """dz/dt = z², z0 = 1: z = 1/(1 - t) has a pole at t = 1 (by hand); at t1 = 2 the formula is finite (-1)
    but no solution reaches t1, so evaluating the closed form must fail naming the time."""
    from symode.errors import IntegrationError
    m = Model(name="blow", states=[z], params=[], rhs=[z ** 2], z0=[1], t0=0, t1=2, terminal=z ** 2)
    cf = derive(m).closed_form
    assert cf and cf.method == "dsolve"
    with pytest.raises(IntegrationError, match="singular at t = 1") as exc:
        cf.evaluate(m, 30)
    assert exc.value.time == 1.0
    # the same model on [0, 1/2] is regular: z(1/2) = 2 exactly
    m2 = Model(name="ok", states=[z], params=[], rhs=[z ** 2], z0=[1], t0=0, t1=sympy.Rational(1, 2), terminal=z)
    assert abs(derive(m2).closed_form.evaluate(m2, 30)["loss"] - 2) < 1e-28
