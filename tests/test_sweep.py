"""The one-sweep discrete adjoint (symode.codegen.sweep), its generated C driver (symode.codegen.driver) and the
compiled handle (symode.compile, compute(..., "discrete")).  Real CasADi, real cc, ctypes.

Expected values: the flat C driver on CasADi's step kernels against the in-memory reference graph built from the
same kernels (bit for bit: same operations, same order; the dense step kernels of a network are tested against
the same graph in tests/test_dense.py); the reference against symode.casadi.routes' discrete adjoint (an independent
construction: CasADi's reverse mode over a mapaccum graph, TOL below); checkpointed against stored (bit for
bit: recomputed states come from the same kernel); the residual VJP against CasADi's VJP of the whole step.
"""
from __future__ import annotations

from fractions import Fraction

import casadi
import numpy as np
import pytest
import sympy

import symode
from symode.casadi.model_graphs import model_graphs
from symode.casadi.methods import DISCRETE
from symode.casadi.routes.fixed_step import fixed_step_gradient
from symode.codegen import sweep
from tests.build_log import BUILD_EVENTS
from symode.codegen.handle import handle_for
from symode.errors import IntegrationError, SpecError
from symode.library import get_model
from symode.model import Model
from tests.test_codegen_compile import private_cache  # noqa: F401  (autouse: a fresh build cache)

TOL = {
    # reference graph vs the routes' discrete adjoint: the same discrete solve and grid arithmetic
    # (a + (b - a)(j/n), h = (b - a)/n), differentiated by a different reverse sweep (per-step VJPs summed in
    # the driver's order vs CasADi's reverse mode of the whole graph): rounding only, measured <= 6e-16
    # relative to the largest component; 1e-12 still catches any wrong term (>= 1e-8 at 100 steps).
    "sweep_vs_routes_rel": 1e-12,
    # the step's VJP with residual inputs vs CasADi's VJP of the step recomputing them: the same operations on
    # the same values; bit for bit is expected, 4 ulps allowed for a different evaluation order of shared nodes.
    "residual_vjp_rel": 4 * np.finfo(float).eps,
    # structured (MX matrix products) vs scalar form of the same network: the same discrete solve with the sums
    # of the matrix products in another order; rounding only (measured 5e-16 on P2); 1e-13 relative to the
    # largest component catches any wrong term.
    "structured_vs_scalar_rel": 1e-13,
}

# compiled with CasADi's step kernels (a dense network with an explicit scheme gets symode's dense loops instead,
# which agree with the reference to rounding: tests/test_dense.py; with an implicit scheme it keeps CasADi's)
CASES = [("logistic", "rk4", None), ("seed-encoder", "rk38", None), ("lotka-volterra", "dopri5", None),
         ("mlp", "implicit_midpoint", None), ("seed-encoder", "rk4", 7), ("pendulum", "rk38", 9),
         ("lotka-volterra", "gauss2", None), ("seed-encoder", "backward_euler", 13)]




def _inputs(model):
    """Nominal θ, z0(θ), t0, t1, and perturbed ones (θ ± 3%, z0 shifted, t0/t1 moved by 1% of the span)."""
    th = np.array([float(v) for v in model.theta])
    g = model_graphs(model)
    z0 = np.array(g.z0(th)).ravel()
    t0, t1 = float(model.t0), float(model.t1)
    span = t1 - t0
    s = np.array([(-1) ** k for k in range(th.size)])
    # an end at which an observation lies stays put: the handle refuses to move it (the compiled loss
    # evaluates that observation on z0 / z(t1) of the compiled interval)
    times = model.observation_times
    m0 = t0 if times and times[0] == model.t0 else t0 - 0.01 * span
    m1 = t1 if times and times[-1] == model.t1 else t1 + 0.01 * span
    return [(th, z0, t0, t1), (th * (1 + 0.03 * s), z0 + 0.05, m0, m1)]


def _reference(model, scheme, steps=100):
    g = model_graphs(model)
    k = sweep.step_kernels(g, scheme, "tref_k")
    terms = sweep.term_kernels(g, "tref_k")
    return g, sweep.reference(g, k, terms, sweep.layout(g, steps), "tref")


@pytest.mark.parametrize("name,scheme,checkpoints", CASES)
def test_compiled_driver_equals_the_reference_graph_bit_for_bit(name, scheme, checkpoints):
    model = get_model(name)
    h = handle_for(model, scheme, 100, checkpoints)
    if checkpoints is not None:
        assert h.interval < 100  # the block recomputation is exercised
    g, ref = _reference(model, scheme)
    J = lambda th: np.array(g.dz0dp(th)).reshape(g.nz, g.np)  # noqa: E731
    for th, z0, t0, t1 in _inputs(model):
        want = [np.array(v).ravel() for v in ref["grad"](th, z0, t0, t1)]
        L, dth, dz0, dt0, dt1 = h.grad_arrays(th, z0, t0, t1)
        assert L == want[0][0] and np.array_equal(dth, want[1]) and np.array_equal(dz0, want[2])
        assert dt0 == want[3][0] and (dt1 is None or dt1 == want[4][0])
        # z0 = None: z0(θ), and the total derivative (z0 = z0(θ) is the nominal z0 only for the first input)
        Lt, tot, dz0t, _, _ = h.grad_arrays(th, None, t0, t1)
        z0th = np.array(g.z0(th)).ravel()
        want_t = [np.array(v).ravel() for v in ref["grad"](th, z0th, t0, t1)]
        assert Lt == want_t[0][0] and np.array_equal(dz0t, want_t[2])
        np.testing.assert_allclose(tot, want_t[1] + J(th).T @ want_t[2], rtol=1e-15, atol=1e-15 * abs(Lt))
        assert h.loss(th, z0, t0, t1) == L
        z1, Z, q = h.forward(th, z0, t0, t1)
        fz1, fZ, fq = (casadi.DM(v).full() for v in ref["forward"](z0, th, t0, t1))
        assert np.array_equal(z1, fz1.ravel()) and np.array_equal(Z, fZ.reshape(Z.shape)) and q == fq.item()


@pytest.mark.parametrize("name,scheme", [("logistic", "rk4"), ("seed-encoder", "rk38"), ("spiral", "rk38"),
                                         ("mlp", "dopri5"), ("pendulum", "gauss2")])
def test_reference_graph_agrees_with_the_routes_discrete_adjoint(name, scheme):
    model = get_model(name)
    g, ref = _reference(model, scheme)
    th = np.array([float(v) for v in model.theta])
    L, dp, dz0, dt0, dt1 = (np.array(v).ravel() for v in ref["grad"](th, np.array(g.z0(th)).ravel(),
                                                                       float(model.t0), float(model.t1)))
    r = fixed_step_gradient(DISCRETE, model, scheme, 100)  # the in-memory route
    tot = dp + np.array(g.dz0dp(th)).reshape(g.nz, g.np).T @ dz0
    scale = max(np.max(np.abs(tot)), abs(r.loss))
    tol = TOL["sweep_vs_routes_rel"]
    assert abs(L[0] - r.loss) <= tol * abs(r.loss)
    assert np.max(np.abs(tot - list(r.grad.values()))) <= tol * scale
    assert np.max(np.abs(dz0 - r.grad_z0)) <= tol * scale
    assert abs(dt0[0] - r.grad_t0) <= tol * scale
    if r.grad_t1 is not None:
        assert abs(dt1[0] - r.grad_t1) <= tol * scale


def test_the_vjp_reads_residuals_instead_of_recomputing_tanh():
    g = model_graphs(get_model("mlp"))
    k = sweep.step_kernels(g, "rk38", "tres_k")
    ops = [k.bstep.instruction_id(i) for i in range(k.bstep.n_instructions())]
    assert k.nres == 4 * 4  # H = 4 hidden tanh per stage, 4 stages
    assert casadi.OP_TANH not in ops  # the reverse pass evaluates no tanh at all
    # the VJP with residuals equals CasADi's VJP of the step (which recomputes them)
    from symode.casadi.solvers import step_function
    step = step_function(g.faug, "rk38", g.naug, g.np, name="tres_plain")
    rng = np.random.default_rng(1)
    y, p, ybar = rng.normal(size=g.naug), np.array(g.theta).ravel(), rng.normal(size=g.naug)
    y1, r = k.fstep(y, 0.3, 0.01, p)
    assert np.array_equal(np.array(y1).ravel(), np.array(step(y, 0.3, 0.01, p)).ravel())
    got = np.concatenate([np.array(v).ravel() for v in k.bstep(y, 0.3, 0.01, p, r, ybar)])
    ys, ts, hs, ps = (casadi.SX.sym(n, m) for n, m in (("y", g.naug), ("t", 1), ("h", 1), ("p", g.np)))
    yb = casadi.SX.sym("yb", g.naug)
    vjp = casadi.Function("v", [ys, ts, hs, ps, yb],
                          [casadi.jtimes(step(ys, ts, hs, ps), casadi.vertcat(ys, ts, hs, ps), yb, True)])
    want = np.array(vjp(y, 0.3, 0.01, p, ybar)).ravel()
    assert np.max(np.abs(got - want)) <= TOL["residual_vjp_rel"] * np.max(np.abs(want))


def test_handle_at_other_parameters_equals_compute_on_a_model_with_those_values():
    m = get_model("lotka-volterra")
    h = symode.compile(m, "rk4", 100)
    th = np.array([1.25, 0.75, 1.5, 2.5])  # exact binary fractions: the model below has the same doubles
    r = h.grad(th)
    m2 = m.with_values({p: Fraction(v) for p, v in zip(m.params, th)})
    c = symode.compute(m2, "discrete", scheme="rk4", steps=100)
    assert r.loss == c.loss and r.grad == c.grad and r.grad_z0 == c.grad_z0 and r.grad_t0 == c.grad_t0
    assert r.method == "discrete" and c.stats["compiled"] == h.prefix


def test_batch_equals_single_calls_bit_for_bit_on_two_threads():
    m = get_model("mlp")
    h = symode.compile(m, "rk38", 50)
    base = h.nominal(m)[0]
    TH = base * (1 + 0.05 * np.sin(np.arange(7))[:, None])
    L, G = h.batch(TH, threads=2)
    for k in range(7):
        Lk, gk = h.grad_arrays(TH[k])[:2]
        assert L[k] == Lk and np.array_equal(G[k], gk)
    with pytest.raises(SpecError, match="shape"):
        h.batch(np.ones((2, 3)))
    assert h.batch(np.zeros((0, m.np)))[1].shape == (0, m.np)


def test_second_compile_is_a_cache_hit_for_any_parameter_values():
    m = get_model("vanderpol")
    h1 = symode.compile(m, "rk4", 40)
    start = len(BUILD_EVENTS)
    h2 = symode.compile(get_model("vanderpol").with_values({"mu": Fraction(3, 2)}), "rk4", 40)
    assert h2.handle is h1.handle and len(BUILD_EVENTS) == start  # nothing generated or compiled
    assert h2.grad().loss != h1.grad().loss  # the defaults are each model's own values


def _sym(n):
    return sympy.Symbol(n, real=True)


def test_failures_raise_integration_errors():
    z, a = _sym("z"), _sym("a")
    blow = Model(name="blow", states=[z], params=[a], rhs=[a * z ** 2], z0=[1], t0=0, t1=2,
                 param_values={a: 1}, terminal=z)
    h = symode.compile(blow, "rk4", 50)
    with pytest.raises(IntegrationError, match="non-finite"):
        h.grad()
    # a Newton failure of an implicit stage is a kernel failure (the generated loop fails loudly), not a number
    hb = symode.compile(blow, "backward_euler", 100)
    with pytest.raises(IntegrationError, match="Newton"):
        hb.grad()
    with pytest.raises(IntegrationError, match="Newton"):
        symode.compute(blow, "discrete", scheme="backward_euler", steps=100)
    with pytest.raises(SpecError, match="shape"):
        h.grad(np.ones(3))


def test_compute_checks_stability_once_per_model(monkeypatch):
    from symode.codegen import handle
    calls = []
    real = handle._check
    monkeypatch.setattr(handle, "_check", lambda *a: calls.append(1) or real(*a))
    m = get_model("pendulum")
    r1 = symode.compute(m, "discrete", scheme="rk4", steps=64)
    r2 = symode.compute(m, "discrete", scheme="rk4", steps=64)
    assert calls == [1] and r1.grad == r2.grad
    # stiffness is still found (the routes' check on the compiled trajectory)
    z, k = _sym("z"), _sym("k")
    stiff = Model(name="stiff", states=[z], params=[k], rhs=[-k * z], z0=[1], t0=0, t1=1,
                  param_values={k: 1000}, terminal=z ** 2)
    with pytest.raises(IntegrationError, match="stiff"):
        symode.compute(stiff, "discrete", scheme="rk4", steps=20)


def test_structured_rhs_gives_matrix_kernels_with_residuals(monkeypatch):
    """An MX right-hand side with matrix products (the structured network form) keeps MX kernels: the hidden
    layer's tanh becomes one residual vector per stage, the VJP evaluates no tanh, and the sweep gives the
    gradient of the scalar form of the same model (mlp: D = 2, H = 4) to rounding."""
    m = get_model("mlp")
    g0 = model_graphs(m)
    D, H = 2, 4

    class Structured:  # the scalar graphs with an MX, mtimes-based f (W1, b1, W2, b2 flattened row-major)
        pass
    g = Structured()
    g.__dict__.update({k: getattr(g0, k) for k in ("nz", "np", "naug", "z0", "dz0dp", "terminal", "obs", "segments",
                                                   "model", "has_running")})
    y, t, p = casadi.MX.sym("y", D), casadi.MX.sym("t"), casadi.MX.sym("p", m.np)
    a = H * D
    W1, b1 = casadi.reshape(p[0:a], D, H).T, p[a:a + H]
    W2, b2 = casadi.reshape(p[a + H:a + H + D * H], H, D).T, p[a + H + D * H:]
    g.faug = casadi.Function("mxf", [y, t, p], [casadi.mtimes(W2, casadi.tanh(casadi.mtimes(W1, y) + b1)) + b2])
    # below the kernels' expansion limit the structured f gives scalar kernels (the same numbers, see below)
    assert sweep.step_kernels(g, "rk38", "tsx2_k").fstep.is_a("SXFunction")
    # the solvers expand a small MX f to SX, and so do the kernels: force MX as for a large network
    import symode.casadi.solvers as solvers
    real = solvers._kind_for
    monkeypatch.setattr(solvers, "_kind_for", lambda f: casadi.MX if f is g.faug else real(f))
    monkeypatch.setattr(sweep, "SWEEP_SX_LIMIT", 0)
    k = sweep.step_kernels(g, "rk38", "tmx_k")
    assert k.fstep.is_a("MXFunction") and k.nres == 4 * H
    ops = [k.bstep.instruction_id(i) for i in range(k.bstep.n_instructions())]
    assert casadi.OP_TANH not in ops and casadi.OP_MTIMES in ops
    lay = sweep.layout(g0, 100)
    th = np.array([float(v) for v in m.theta])
    z0 = np.array(g0.z0(th)).ravel()
    got = [np.array(v).ravel() for v in sweep.reference(g, k, sweep.term_kernels(g, "tmx_k"), lay, "tmx")["grad"](
        th, z0, 0.0, 1.0)]
    ks = sweep.step_kernels(g0, "rk38", "tsx_k")
    want = [np.array(v).ravel() for v in sweep.reference(g0, ks, sweep.term_kernels(g0, "tsx_k"), lay, "tsx")["grad"](
        th, z0, 0.0, 1.0)]
    scale = max(abs(want[0][0]), np.max(np.abs(want[1])))
    for a_, b_ in zip(got, want):
        assert np.max(np.abs(a_ - b_)) <= TOL["structured_vs_scalar_rel"] * scale


def test_an_observation_at_t0_is_on_z0_and_leaves_dt0_undefined():
    z, a = _sym("z"), _sym("a")
    m = Model(name="obs0", states=[z], params=[a], rhs=[-a * z], z0=[a], t0=0, t1=1, param_values={a: 2},
              observations=[(0, (z - 1) ** 2), (Fraction(1, 2), z ** 2)], terminal=z)
    h = handle_for(m, "rk4", 40)
    g, ref = _reference(m, "rk4", 40)
    th = np.array([2.0])
    z0 = np.array([2.0])
    want = [np.array(v).ravel() for v in ref["grad"](th, z0, 0.0, 1.0)]
    L, dth, dz0, dt0, dt1 = h.grad_arrays(th, z0, 0.0, 1.0)
    assert dt0 is None and dt1 is not None  # one-sided at t0, as the routes report
    assert L == want[0][0] and np.array_equal(dth, want[1]) and np.array_equal(dz0, want[2])
    r = fixed_step_gradient(DISCRETE, m, "rk4", 40)  # the in-memory route
    c = symode.compute(m, "discrete", scheme="rk4", steps=40)
    assert r.grad_t0 is None and c.grad_t0 is None
    scale = max(abs(r.loss), max(abs(v) for v in r.grad.values()))
    assert abs(c.loss - r.loss) <= TOL["sweep_vs_routes_rel"] * scale
    assert abs(c.grad["a"] - r.grad["a"]) <= TOL["sweep_vs_routes_rel"] * scale
    assert abs(c.grad_t1 - r.grad_t1) <= TOL["sweep_vs_routes_rel"] * scale


def test_handle_refuses_an_interval_that_breaks_the_compiled_observation_times():
    """Regression (red-team pass): the generated code evaluates the observations at fixed times under the
    compiled model's rules, and h.loss(t1=0.5) with observations at 0.51 and 0.9 returned a number of another
    loss without a word.  An interval must keep every observation inside it, and one compiled at t0/t1 keeps
    that end."""
    from symode.errors import SpecError
    m = symode.get_model("seed-encoder")  # observations strictly inside [t0, t1]
    times = [float(x) for x in m.observation_times]
    h = symode.compile(m, scheme="rk4", steps=40)
    for kw in (dict(t1=times[-1] / 2), dict(t0=(times[0] + times[1]) / 2), dict(t0=1.0, t1=0.0),
               dict(t1=float("nan"))):
        with pytest.raises(SpecError):
            h.loss(**kw)
