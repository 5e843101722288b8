"""Tests of symode.oracle.taylor against independent references.

Every expected value comes from a closed form evaluated by mpmath/SymPy at 60+ digits, from a different
integrator (mpmath.odefun), or from a textbook identity; each test says which.
"""
from __future__ import annotations

import random
import time

import mpmath
import pytest
import sympy as sp

from symode.errors import DerivationError, IntegrationError, SpecError
from symode.oracle import taylor
from symode.oracle.taylor import TaylorSystem, integrate, to_mpf

# Tolerances, each with its purpose.  Errors are measured relative to max(1, |reference|), the scale the
# integrator promises its digits on.
TOL = {
    # digits=30 must give 30 correct digits: the promise of integrate's docstring.
    "digits30": mpmath.mpf("1e-30"),
    # digits=50 must give 50 correct digits.
    "digits50": mpmath.mpf("1e-50"),
    # A binary-double constant 0.1 differs from 1/10 by 5.55e-18 relative; over t in [0, 1] the solution
    # exp(c t) then differs by ~5.55e-19 relative (c*t*5.55e-18): the error must lie in this decade band.
    "float_const_low": mpmath.mpf("1e-19"),
    "float_const_high": mpmath.mpf("1e-17"),
    # mpmath.odefun run at 40 dps is the independent reference for the MLP states; it is good to ~1e-37.
    "odefun": mpmath.mpf("1e-30"),
    # heyoka at 160 bits with tolerance 1e-40 is good to ~1e-40; the comparison checks our 30 digits.
    "heyoka": mpmath.mpf("1e-30"),
    # Central differences with step 1e-25 at 60 digits: truncation ~1e-50 * |third derivative|,
    # round-off ~1e-60 / 1e-25 = 1e-35: both far below the 1e-30 being checked.
    "central_difference": mpmath.mpf("1e-30"),
    # Blow-up of dz/dt = z**2 from z(0) = 1 is at t = 1 exactly; the error must name a time this close.
    "blowup_time": 1e-3,
    # ... and be raised this fast (seconds), i.e. not hang.
    "blowup_seconds": 5.0,
    # Hang guard for the MLP timing run (the brief's hard limit is "well under a minute").
    "mlp_seconds": 120.0,
}

t = sp.Symbol("t", real=True)
z, w, q, y = (sp.Symbol(n, real=True) for n in ("z", "w", "q", "y"))
a, b, r, K = (sp.Symbol(n, real=True) for n in ("a", "b", "r", "K"))



@pytest.fixture(autouse=True)
def _references_at_60_digits():
    """References are computed at 60 digits (restored afterwards: other test modules share mpmath.mp)."""
    with mpmath.workdps(60):
        yield


def R(s: str) -> sp.Rational:
    return sp.Rational(s)


def mp(x) -> mpmath.mpf:
    """An exact SymPy rational as an mpmath number at 60 digits (reference side)."""
    x = sp.Rational(x)
    return mpmath.mpf(int(x.p)) / int(x.q)


def relerr(got, ref) -> mpmath.mpf:
    got = to_mpf(got)
    return abs(got - ref) / max(1, abs(ref))


# ---------------------------------------------------------------------------------------------------
# Linear equation dz/dt = a z + b: z(t) = (z0 + b/a) exp(a (t - t0)) - b/a
# ---------------------------------------------------------------------------------------------------

def linear_ref(z0, a_, b_, t0, t1):
    A, Bv = mp(a_), mp(b_)
    return (mp(z0) + Bv / A) * mpmath.exp(A * (mp(t1) - mp(t0))) - Bv / A


@pytest.mark.parametrize("digits, tol", [(30, "digits30"), (50, "digits50")])
@pytest.mark.parametrize("times", [["0.5", "1", "3"], ["-0.25", "-1", "-2.5"]], ids=["forward", "backward"])
def test_linear_closed_form(digits, tol, times):
    sysm = TaylorSystem([z], [a * z + b], t, [a, b])
    a_, b_, z0, t0 = R("-1.5"), R("1/3"), R("0.7"), R("0.1")
    out = integrate(sysm, [z0], t0, [R(x) for x in times], [a_, b_], digits=digits)
    assert len(out) == len(times)
    for row, t1 in zip(out, times):
        assert relerr(row[0], linear_ref(z0, a_, b_, t0, R(t1))) < TOL[tol]


def test_linear_growing_and_mpmath_backend():
    # Same closed form, a > 0 (growing solution) and the pure-mpmath fallback arithmetic.
    sysm = TaylorSystem([z], [a * z + b], t, [a, b])
    out = integrate(sysm, ["2"], 0, [R("2")], ["1.25", "-0.5"], digits=30, backend="mpmath")
    assert isinstance(out[0][0], mpmath.mpf)
    assert relerr(out[0][0], linear_ref(2, R("1.25"), R("-0.5"), 0, 2)) < TOL["digits30"]


# ---------------------------------------------------------------------------------------------------
# More closed forms
# ---------------------------------------------------------------------------------------------------

def test_logistic_closed_form():
    # z' = r z (1 - z/K): z(t) = K z0 e^{r t} / (K + z0 (e^{r t} - 1))   (t0 = 0)
    sysm = TaylorSystem([z], [r * z * (1 - z / K)], t, [r, K])
    r_, K_, z0 = R("1.3"), R("10"), R("0.5")
    times = [R("1"), R("4"), R("9")]
    out = integrate(sysm, [z0], 0, times, [r_, K_], digits=50)
    for row, t1 in zip(out, times):
        e = mpmath.exp(mp(r_) * mp(t1))
        ref = mp(K_) * mp(z0) * e / (mp(K_) + mp(z0) * (e - 1))
        assert relerr(row[0], ref) < TOL["digits50"]


def test_rotation_long_interval():
    # z' = w, w' = -z from (1, 0): z = cos t, w = -sin t; 20 time units (many steps) at 30 digits.
    sysm = TaylorSystem([z, w], [w, -z], t)
    out = integrate(sysm, [1, 0], 0, [5, 20], digits=30)
    for row, t1 in zip(out, [5, 20]):
        assert relerr(row[0], mpmath.cos(t1)) < TOL["digits30"]
        assert relerr(row[1], -mpmath.sin(t1)) < TOL["digits30"]


def test_non_autonomous():
    # z' = cos(t) z: z = z0 exp(sin t - sin t0); forward and backward from t0 = 1/2.
    sysm = TaylorSystem([z], [sp.cos(t) * z], t)
    t0, z0 = R("0.5"), R("1.5")
    for times in ([R("2"), R("6")], [R("-1"), R("-4")]):
        out = integrate(sysm, [z0], t0, times, digits=50)
        for row, t1 in zip(out, times):
            ref = mp(z0) * mpmath.exp(mpmath.sin(mp(t1)) - mpmath.sin(mp(t0)))
            assert relerr(row[0], ref) < TOL["digits50"]


def _every_op_g(x, p):
    """An expression in every supported operation, real and smooth for x in [2, 3] (used as g(x))."""
    return x * (sp.exp(x / 7) + sp.log(x) + sp.sin(x) * sp.cos(x / 3) + sp.tan(x / 4)
                + sp.sinh(x / 5) * sp.cosh(x / 6) + sp.tanh(x - 2) + sp.sqrt(x) + sp.atan(x) + sp.asinh(x)
                + sp.asin(x / 4) + sp.acos(x / 5) + sp.atanh(x / 4) + sp.acosh(x)
                + x**3 - 3 / x**2 + x**R("2/3") - x**R("-3/2") + x**p + x**(t / 3) + sp.pi / (1 + x)
                + sp.E / (3 + x))


@pytest.mark.slow
def test_every_operation_closed_form():
    # w' = cos t, w(t0) = 2 + sin t0  =>  w = 2 + sin t in [2, 3] for t in [0, 3].
    # z' = d/dt g(w(t), t) computed by SymPy  =>  z(t) = g(w(t), t) - g(w(t0), t0) + z0.
    # The rhs applies every operation (and its derivative's operations) to the state w and to t;
    # Abs (whose derivative sign() is outside the table) enters through a third state q.
    p = sp.Symbol("p", real=True)
    g = _every_op_g(w, p)
    dg = sp.diff(g, w) * sp.cos(t) + sp.diff(g, t)
    sysm = TaylorSystem([w, z, q], [sp.cos(t), dg, sp.Abs(w - 1) * sp.cos(t)], t, [p])
    for op in ("exp", "log", "sincos", "tan", "sinhcosh", "tanh", "sqrt", "ainv", "abs", "pow", "div", "sq"):
        assert any(o.op == op for o in sysm.main_ops), op
    t0, t1, z0, p_ = R("0.25"), R("2.75"), R("-1"), R("1.7")
    w0 = 2 + sp.sin(t0)  # a SymPy constant expression: evaluated at working precision by integrate
    for digits, tol in ((30, "digits30"), (50, "digits50")):
        out = integrate(sysm, [w0, z0, 0], t0, [t1], [p_], digits=digits)
        gsub = lambda tt: g.subs({w: 2 + sp.sin(tt), p: p_, t: tt})  # noqa: E731
        ref = mpmath.mpf(str((gsub(t1) - gsub(t0) + z0).evalf(70)))
        assert relerr(out[0][0], 2 + mpmath.sin(mp(t1))) < TOL[tol]
        assert relerr(out[0][1], ref) < TOL[tol]
        # q' = |w - 1| w' with w - 1 > 0  =>  q = ((w - 1)**2 - (w0 - 1)**2) / 2 (q0 = 0)
        w1, w0n = 2 + mpmath.sin(mp(t1)), 2 + mpmath.sin(mp(t0))
        assert relerr(out[0][2], ((w1 - 1) ** 2 - (w0n - 1) ** 2) / 2) < TOL[tol]


def test_exp_based_product_form():
    # y' = y h'(t) with h = sinh(t)/(1+t**2) + sqrt(1+t) : y = y0 exp(h(t) - h(t0)).
    h = sp.sinh(t) / (1 + t**2) + sp.sqrt(1 + t)
    sysm = TaylorSystem([y], [y * sp.diff(h, t)], t)
    t0, t1, y0 = R("0"), R("2"), R("3")
    out = integrate(sysm, [y0], t0, [t1], digits=30)
    ref = mp(y0) * mpmath.exp(mpmath.sinh(2) / 5 + mpmath.sqrt(3) - 1)
    assert relerr(out[0][0], ref) < TOL["digits30"]


def test_abs_crossings():
    # z' = cos t, z(0) = 0 => z = sin t, which crosses 0 at pi and 2 pi; w' = |z| =>
    # w(7) = int_0^7 |sin t| dt = 2 + 2 + (1 - cos 7)  (the abs argument starts exactly at 0 too).
    sysm = TaylorSystem([z, w], [sp.cos(t), sp.Abs(z)], t)
    stats = {}
    out = integrate(sysm, [0, 0], 0, [7], digits=30, stats=stats)
    assert stats["abs_crossings"] == 2
    assert relerr(out[0][1], 5 - mpmath.cos(7)) < TOL["digits30"]


# ---------------------------------------------------------------------------------------------------
# Exact constants
# ---------------------------------------------------------------------------------------------------

def test_exact_decimal_constant():
    # z' = z/10, z(0) = 1: z(1) = exp(1/10), to 50 digits.
    out = integrate(TaylorSystem([z], [z / 10], t), [1], 0, [1], digits=50)
    assert relerr(out[0][0], mpmath.exp(mpmath.mpf(1) / 10)) < TOL["digits50"]


@pytest.mark.parametrize("const", [sp.Float(0.1), sp.Rational(0.1)], ids=["Float", "Rational(float)"])
def test_binary_double_constant_is_kept_binary(const):
    # The binary double nearest 0.1 is 0.1000000000000000055511151231257827...: the solution then is
    # exp(double(0.1)) (mpmath.mpf(0.1) is that exact double), which differs from exp(1/10) at about the
    # 18th digit -- proof that the tape neither rounds 1/10 through float nor "fixes" a Float to 1/10.
    out = integrate(TaylorSystem([z], [const * z], t), [1], 0, [1], digits=50)
    got = to_mpf(out[0][0])
    assert relerr(got, mpmath.exp(mpmath.mpf(0.1))) < TOL["digits50"]
    diff = relerr(got, mpmath.exp(mpmath.mpf(1) / 10))
    assert TOL["float_const_low"] < diff < TOL["float_const_high"]


def test_input_types_are_converted_exactly():
    # y0/t0/t_out/params given as str, int, Rational, mpmath.mpf and a SymPy constant, all exact values
    # of the same linear problem (reference: the closed form).
    sysm = TaylorSystem([z], [a * z + b], t, [a, b])
    ref = linear_ref(R("0.3"), R("-0.7"), R("0.2"), R("0.5"), R("2"))
    variants = [
        (["0.3"], "0.5", ["2"], ["-0.7", "0.2"]),
        ([R("3/10")], R("1/2"), [2], [R("-7/10"), "1/5"]),
        ([mpmath.mpf(3) / 10], mpmath.mpf(0.5), [mpmath.mpf(2)], [R("-0.7"), R("0.2")]),
    ]
    for y0, t0, tout, pv in variants:
        out = integrate(sysm, y0, t0, tout, pv, digits=30)
        # mpmath.mpf(3)/10 is 0.3 rounded at 60 digits: 1e-60 relative, far below the tolerance.
        assert relerr(out[0][0], ref) < TOL["digits30"]
    out = integrate(TaylorSystem([z], [sp.pi * z], t), [sp.sqrt(2)], 0, [1], digits=50)
    assert relerr(out[0][0], mpmath.sqrt(2) * mpmath.exp(mpmath.pi)) < TOL["digits50"]


def test_outputs_at_t0_and_repeated_times():
    # Outputs equal to t0 return y0; a repeated time returns the same state twice (closed form e^t).
    out = integrate(TaylorSystem([z], [z], t), [1], 0, [0, 1, 1], digits=30)
    assert to_mpf(out[0][0]) == 1
    assert relerr(out[1][0], mpmath.e) < TOL["digits30"]
    assert out[2][0] == out[1][0]


# ---------------------------------------------------------------------------------------------------
# Failures
# ---------------------------------------------------------------------------------------------------

def test_blowup_is_reported_near_its_time():
    # z' = z**2, z(0) = 1: z = 1/(1 - t) blows up at t = 1.
    start = time.perf_counter()
    with pytest.raises(IntegrationError, match="step size collapsed") as info:
        integrate(TaylorSystem([z], [z**2], t), [1], 0, [2], digits=30)
    assert time.perf_counter() - start < TOL["blowup_seconds"]
    assert abs(info.value.time - 1.0) < TOL["blowup_time"]


def test_log_argument_reaching_zero():
    # z' = -1, z(0) = 1 => z = 1 - t reaches 0 at t = 1, where log(z) stops being defined.
    sysm = TaylorSystem([z, w], [-1, sp.log(z)], t)
    with pytest.raises(IntegrationError, match="log") as info:
        integrate(sysm, [1, 0], 0, [2], digits=30)
    assert abs(info.value.time - 1.0) < TOL["blowup_time"]
    # Before t = 1 the solve is fine: w(t) = int_0^t log(1-s) ds = (1-t) - (1-t) log(1-t) - 1.
    out = integrate(sysm, [1, 0], 0, [R("0.5")], digits=30)
    half = mpmath.mpf(1) / 2
    assert relerr(out[0][1], half - half * mpmath.log(half) - 1) < TOL["digits30"]


@pytest.mark.parametrize("rhs, y0, match", [
    (sp.log(z), -1, "log"),
    (sp.sqrt(z), -1, "sqrt"),
    (z**R("1/3"), -1, "real power"),
    (sp.asin(z), 2, "asin"),
    (1 / z, 0, "division by zero"),
])
def test_domain_errors_name_the_operation_and_time(rhs, y0, match):
    with pytest.raises(IntegrationError, match=match) as info:
        integrate(TaylorSystem([z], [rhs], t), [y0], R("0.25"), [1], digits=30)
    assert info.value.time == 0.25


def test_nonfinite_constant_is_reported():
    # exp(exp(p)) with p = 1e9 overflows gmpy2's exponent range (2**(2**30)); mpmath has none to overflow.
    if taylor.BACKEND != "gmpy2":
        pytest.skip("only gmpy2 has a finite exponent range")
    with pytest.raises(IntegrationError, match="not finite"):
        integrate(TaylorSystem([z], [sp.exp(sp.exp(a)) * z], t, [a]), [1], 0, [1], ["1e9"], digits=30)


def test_max_steps_budget():
    # The rotation needs many steps over 1000 time units; a budget of 5 must stop it with a clear error.
    with pytest.raises(IntegrationError, match="max_steps") as info:
        integrate(TaylorSystem([z, w], [w, -z], t), [1, 0], 0, [1000], digits=30, max_steps=5)
    assert 0 < info.value.time < 1000


@pytest.mark.parametrize("rhs, match", [
    (sp.Heaviside(z, a), "Heaviside"),  # a symbolic value at 0: refused (a number H0 is supported)
    (sp.erf(z), "erf"),
    (sp.floor(z), "floor"),
    (z * sp.Symbol("k", real=True), "symbol k"),
    (sp.I * z, "not a finite real"),
])
def test_unsupported_operations_are_named(rhs, match):
    with pytest.raises(DerivationError, match=match):
        TaylorSystem([z], [rhs], t)


def test_bad_arguments():
    sysm = TaylorSystem([z], [z], t)
    with pytest.raises(SpecError, match="out of order"):
        integrate(sysm, [1], 0, [2, 1])
    with pytest.raises(SpecError, match="y0"):
        integrate(sysm, [1, 2], 0, [1])
    with pytest.raises(SpecError, match="not a decimal"):
        integrate(sysm, ["__import__('os')"], 0, [1])
    with pytest.raises(SpecError, match="not finite"):
        integrate(sysm, [float("nan")], 0, [1])


def test_progress_callback():
    calls = []
    start = time.monotonic()
    integrate(TaylorSystem([z, w], [w, -z], t), [1, 0], 0, [60], digits=30, progress=calls.append)
    elapsed = time.monotonic() - start
    assert calls and calls[-1] == 1.0
    assert all(0 <= c <= 1 for c in calls) and calls == sorted(calls)
    assert len(calls) <= 10 * elapsed + 2  # at most ~10 calls a second (+ the final one)


# ---------------------------------------------------------------------------------------------------
# Timing: MLP D=2, H=4, tanh, with forward sensitivities (46 states) at 30 digits on [0, 1]
# ---------------------------------------------------------------------------------------------------

def mlp_sensitivity_system(D=2, H=4, seed=1):
    """f(z) = W2 tanh(W1 z + b1) + b2 with S' = f_z S + f_p, S(0) = 0 (S = dz/dp)."""
    rng = random.Random(seed)
    zs = sp.Matrix([sp.Symbol(f"z{i}", real=True) for i in range(D)])
    W1 = sp.Matrix(H, D, lambda i, j: sp.Symbol(f"W1_{i}{j}", real=True))
    b1 = sp.Matrix([sp.Symbol(f"b1_{i}", real=True) for i in range(H)])
    W2 = sp.Matrix(D, H, lambda i, j: sp.Symbol(f"W2_{i}{j}", real=True))
    b2 = sp.Matrix([sp.Symbol(f"b2_{i}", real=True) for i in range(D)])
    params = list(W1) + list(b1) + list(W2) + list(b2)
    f = W2 * (W1 * zs + b1).applyfunc(sp.tanh) + b2
    P = len(params)
    S = sp.Matrix(D, P, lambda i, j: sp.Symbol(f"S_{i}_{j}", real=True))
    dS = f.jacobian(zs) * S + f.jacobian(params)
    values = [sp.Rational(rng.randint(-100, 100), 100) for _ in params]
    z0 = [R("0.5"), R("-1/3")]
    return list(zs), list(f), list(S), list(dS), params, values, z0


@pytest.mark.slow
def test_mlp_sensitivities_timing_and_accuracy():
    zs, f, S, dS, params, values, z0 = mlp_sensitivity_system()
    D, P = len(zs), len(params)
    start = time.perf_counter()
    sysm = TaylorSystem(zs + S, f + dS, t, params)
    compiled = time.perf_counter()
    stats = {}
    out = integrate(sysm, z0 + [0] * (D * P), 0, [1], values, digits=30, stats=stats)[0]
    elapsed = time.perf_counter() - start
    print(f"\n[taylor timing] MLP D=2 H=4 tanh + forward sensitivities ({len(zs + S)} states, "
          f"{len(sysm.main_ops)} tape ops): compile {compiled - start:.3f} s, 30-digit solve on [0, 1] "
          f"{elapsed - (compiled - start):.3f} s, {stats['steps']} steps of order {stats['order']}")
    assert elapsed < TOL["mlp_seconds"]

    # Independent reference for the states: mpmath.odefun (a different Taylor integrator) at 40 dps.
    fl = sp.lambdify([t] + zs + params, f, modules="mpmath")
    pv = [mp(v) for v in values]
    with mpmath.workdps(40):
        ref = mpmath.odefun(lambda tt, yy: fl(tt, *yy, *pv), 0, [mp(v) for v in z0])(1)
    for i in range(D):
        assert relerr(out[i], ref[i]) < TOL["odefun"]

    # Sensitivities vs central differences of the state equations alone (no sensitivity equations) at
    # 60 digits, for a few parameters of each kind.
    plain = TaylorSystem(zs, f, t, params)
    delta = sp.Rational(1, 10**25)
    for j in (0, 9, 14, P - 1):  # W1[0,0], b1[1], W2[0,2], b2[-1]
        up = list(values); up[j] += delta
        dn = list(values); dn[j] -= delta
        zu = integrate(plain, z0, 0, [1], up, digits=60)[0]
        zd = integrate(plain, z0, 0, [1], dn, digits=60)[0]
        for i in range(D):
            fd = (to_mpf(zu[i]) - to_mpf(zd[i])) / (2 * mp(delta))
            assert relerr(out[D + i * P + j], fd) < TOL["central_difference"]


@pytest.mark.slow
def test_mlp_sensitivities_against_heyoka():
    # heyoka (an independent, LLVM-compiled Taylor integrator; an optional extra) in MPFR precision, with
    # the parameters given as exact MPFR quotients p/q (never as doubles).  Skipped where not installed.
    hy = pytest.importorskip("heyoka")
    if not hy._with_real():
        pytest.skip("this heyoka build has no MPFR (heyoka.real) support")
    zs, f, S, dS, params, values, z0 = mlp_sensitivity_system()
    states, rhs = zs + S, f + dS
    prec = 160
    symbol_map = {s: hy.make_vars(f"x{i}") for i, s in enumerate(states)}
    symbol_map.update({p: hy.par[j] for j, p in enumerate(params)})

    def real(v):
        v = sp.Rational(v)
        return hy.real(int(v.p), prec) / hy.real(int(v.q), prec)
    ta = hy.taylor_adaptive([(symbol_map[s], hy.from_sympy(e, symbol_map)) for s, e in zip(states, rhs)],
                            [real(v) for v in z0 + [0] * len(S)], fp_type=hy.real, prec=prec,
                            tol=hy.real(10, prec) ** -40, pars=[real(v) for v in values])
    ta.propagate_until(hy.real(1, prec))
    ours = integrate(TaylorSystem(states, rhs, t, params), z0 + [0] * len(S), 0, [1], values, digits=30)[0]
    for i in range(len(states)):
        ref = mpmath.mpf(str(ta.state[i]))  # heyoka.real prints all its digits
        assert relerr(ours[i], ref) < TOL["heyoka"]


def test_negative_mpf_inputs_keep_their_sign():
    """Regression: mpf.man_exp drops the sign, which once turned y0 = -1.5 into +1.5.

    dz/dt = 0 keeps z at its initial value, so the output must equal the input exactly.
    """
    import mpmath as _mp
    z = sp.Symbol("z", real=True)
    system = TaylorSystem([z], [sp.Integer(0)], sp.Symbol("t", real=True))
    out = integrate(system, [_mp.mpf(-1.5)], _mp.mpf(-2), [_mp.mpf(-1)], digits=30)
    assert to_mpf(out[0][0]) == _mp.mpf(-1.5)


# ---------------------------------------------------------------------------------------------------------------
# Non-smooth operations: sign (the derivative SymPy gives for Abs), Heaviside, Max, Min
# ---------------------------------------------------------------------------------------------------------------

def abs_decay_sensitivity_system():
    """z' = -|a| z with its forward sensitivity s = dz/da: s' = (df/dz) s + df/da, both built by SymPy."""
    s = sp.Symbol("s", real=True)
    f = -sp.Abs(a) * z
    ds = sp.diff(f, z) * s + sp.diff(f, a)
    assert ds.has(sp.sign)  # SymPy differentiates Abs(a) into sign(a): the operation under test
    return TaylorSystem([z, s], [f, ds], t, [a])


@pytest.mark.parametrize("a_", ["0.5", "-0.5"])
def test_sign_in_a_sensitivity_system_closed_form(a_):
    # z = z0 exp(-|a| t)  =>  dz/da = -sign(a) t z0 exp(-|a| t)   (closed form, by hand)
    sysm = abs_decay_sensitivity_system()
    z0, t1 = R("1.5"), R("2")
    out = integrate(sysm, [z0, 0], 0, [t1], [R(a_)], digits=30)[0]
    A = mp(R(a_))
    zref = mp(z0) * mpmath.exp(-abs(A) * mp(t1))
    assert relerr(out[0], zref) < TOL["digits30"]
    assert relerr(out[1], -mpmath.sign(A) * mp(t1) * zref) < TOL["digits30"]


def test_sign_of_zero_keeps_sympys_convention():
    # a = 0: sign(0) = 0 in SymPy (sympy.sign(0) == 0), so s' = -|0| s - 0 * z = 0 and s stays 0; z stays z0.
    assert sp.sign(0) == 0
    out = integrate(abs_decay_sensitivity_system(), [1, 0], 0, [2], [0], digits=30)[0]
    assert to_mpf(out[0]) == 1 and to_mpf(out[1]) == 0


def test_sign_and_heaviside_of_a_crossing_state():
    # z' = cos t, z(0) = 0  =>  z = sin t: starts exactly at 0 (moving up), crosses 0 at pi and 2 pi.
    # int_0^7 sign(sin s) ds = pi - pi + (7 - 2 pi) = 7 - 2 pi;  int_0^7 Heaviside(sin s) ds = pi + 7 - 2 pi.
    # The third state mixes |z| with sign(2 z) (another argument node crossing at the same times):
    # int_0^7 |sin s| ds = 5 - cos 7 (as in test_abs_crossings).
    sysm = TaylorSystem([z, w, q, y], [sp.cos(t), sp.sign(z), sp.Heaviside(z), sp.Abs(z) + sp.sign(2 * z)], t)
    stats = {}
    out = integrate(sysm, [0, 0, 0, 0], 0, [7], digits=30, stats=stats)[0]
    assert stats["abs_crossings"] == 2
    assert relerr(out[1], 7 - 2 * mpmath.pi) < TOL["digits30"]
    assert relerr(out[2], 7 - mpmath.pi) < TOL["digits30"]
    assert relerr(out[3], 5 - mpmath.cos(7) + 7 - 2 * mpmath.pi) < TOL["digits30"]


def test_sign_backward_in_time():
    # The same integral run backward from t = 7 (z(7) = sin 7, w(7) = 0) to 0: w(0) = -(7 - 2 pi).
    sysm = TaylorSystem([z, w], [sp.cos(t), sp.sign(z)], t)
    out = integrate(sysm, [sp.sin(7), 0], 7, [0], digits=30)[0]
    assert relerr(out[0], 0) < TOL["digits30"]
    assert relerr(out[1], -(7 - 2 * mpmath.pi)) < TOL["digits30"]


def test_argument_that_stays_at_zero():
    # z' = 0, z(0) = 0: z stays 0, so sign(z) = 0 and Heaviside(z, H0) = H0 on the whole interval
    # (SymPy: Heaviside(0) = 1/2, Heaviside(0, 1) = 1):  w(2) = 0, q(2) = 2 * 1/2, y(2) = 2 * 1.
    sysm = TaylorSystem([z, w, q, y], [sp.Integer(0), sp.sign(z), sp.Heaviside(z), sp.Heaviside(z, 1)], t)
    out = integrate(sysm, [0, 0, 0, 0], 0, [2], digits=30)[0]
    assert [to_mpf(v) for v in out] == [0, 0, 1, 2]


def test_max_min_closed_form():
    # w = sin t (w' = cos t, w(0) = 0); z' = Max(w, 0, w - 1) = max(sin t, 0): z(7) = 2 + (1 - cos 7);
    # q' = Min(w, 0): q(7) = -2;  y' = Max(w, -w) = |sin t|: y(7) = 5 - cos 7.
    sysm = TaylorSystem([w, z, q, y], [sp.cos(t), sp.Max(w, 0, w - 1), sp.Min(w, 0), sp.Max(w, -w)], t)
    out = integrate(sysm, [0, 0, 0, 0], 0, [7], digits=30)[0]
    assert relerr(out[1], 3 - mpmath.cos(7)) < TOL["digits30"]
    assert relerr(out[2], -2) < TOL["digits30"]
    assert relerr(out[3], 5 - mpmath.cos(7)) < TOL["digits30"]


def test_sensitivity_through_a_crossing_state_against_central_differences():
    # z' = cos t - a |z|, z(0) = 0: z starts at 0 moving up and crosses 0 once, between t = 2 and 3 (mpmath.odefun
    # gives z(2) = 0.569 and z(3) = -0.255; z stays negative up to 7).  The SymPy sensitivity system
    # s' = -a sign(z) s - |z| is checked against central differences of z(7) in a (state equation alone,
    # 60 digits, step 1e-25: see TOL["central_difference"]).  The crossings are transversal, so z(7) is
    # smooth in a.
    s = sp.Symbol("s", real=True)
    f = sp.cos(t) - a * sp.Abs(z)
    sens = TaylorSystem([z, s], [f, sp.diff(f, z) * s + sp.diff(f, a)], t, [a])
    plain = TaylorSystem([z], [f], t, [a])
    a_, delta = R("0.3"), sp.Rational(1, 10**25)
    stats = {}
    got = integrate(sens, [0, 0], 0, [7], [a_], digits=30, stats=stats)[0][1]
    assert stats["abs_crossings"] == 1
    zu = integrate(plain, [0], 0, [7], [a_ + delta], digits=60)[0][0]
    zd = integrate(plain, [0], 0, [7], [a_ - delta], digits=60)[0][0]
    fd = (to_mpf(zu) - to_mpf(zd)) / (2 * mp(delta))
    assert relerr(got, fd) < TOL["central_difference"]


# ---------------------------------------------------------------------------------------------------------------
# Messages when the solution leaves the domain of an operation
# ---------------------------------------------------------------------------------------------------------------

def _first_time(message: str) -> float:
    import re
    return float(re.search(r"\bt = ([-+]?\d+\.?\d*(?:[eE][-+]?\d+)?)", message).group(1))


@pytest.mark.parametrize("g, text", [
    (sp.log(z), r"log\(z\): its argument approaches 0 .*domain of log"),
    (sp.sqrt(z), r"sqrt\(z\): its argument approaches 0 .*domain of sqrt"),
    (z ** R("1/3"), r"z\*\*\(1/3\): its base approaches 0 .*real power"),
    (1 / z, r"1/z: its denominator approaches 0 .*division by zero"),
])
def test_leaving_the_domain_names_the_function(g, text):
    # z' = -1, z(0) = 1  =>  z = 1 - t reaches 0 at t = 1 (exact), where g(z) stops being defined/smooth.
    with pytest.raises(IntegrationError, match=text) as info:
        integrate(TaylorSystem([z, w], [-1, g], t), [1, 0], 0, [2], digits=30)
    assert abs(info.value.time - 1.0) < TOL["blowup_time"]
    assert abs(_first_time(str(info.value)) - 1.0) < TOL["blowup_time"]


def test_log_of_a_state_also_divided_by_names_log_first():
    # log(z) and its derivative 1/z both reach their singular point at t = 1: the cause named is log.
    sysm = TaylorSystem([z, w, q], [-1, sp.log(z), w / z], t)
    with pytest.raises(IntegrationError, match=r"^log\(z\): .*domain of log") as info:
        integrate(sysm, [1, 0, 0], 0, [2], digits=30)
    assert abs(info.value.time - 1.0) < TOL["blowup_time"]


def test_asin_reaching_its_domain_boundary():
    # z = 1/2 - t reaches -1 at t = 3/2, the boundary of asin's domain [-1, 1].
    with pytest.raises(IntegrationError, match=r"asin\(z\): its argument approaches -1 .*domain of asin") as info:
        integrate(TaylorSystem([z, w], [-1, sp.asin(z)], t), [R("1/2"), 0], 0, [2], digits=30)
    assert abs(info.value.time - 1.5) < TOL["blowup_time"]


def test_outside_the_domain_at_the_start_says_so():
    with pytest.raises(IntegrationError, match=r"log\(z\): log of a negative value .* at t = 0\.25.*domain of log"):
        integrate(TaylorSystem([z], [sp.log(z)], t), [-1], R("0.25"), [1], digits=30)
    with pytest.raises(IntegrationError, match=r"asin\(z\): asin of 2\.0, outside its real domain"):
        integrate(TaylorSystem([z], [sp.asin(z)], t), [2], R("0.25"), [1], digits=30)


def test_blowup_message_claims_no_domain_problem():
    # z' = z**2, z(0) = 1: z = 1/(1 - t), a blow-up at t = 1, not a domain exit.
    with pytest.raises(IntegrationError) as info:
        integrate(TaylorSystem([z], [z**2], t), [1], 0, [2], digits=30)
    msg = str(info.value)
    assert "blow-up" in msg and "domain" not in msg and "denominator" not in msg
    assert abs(_first_time(msg) - 1.0) < TOL["blowup_time"]


def test_argument_starting_at_zero_backward_in_time():
    # z' = 1, z(0) = 0 (z = t), run backward to t = -2: z < 0 on the whole interval, so
    # w' = sign(z) = -1  =>  w(-2) = w(0) - int_{-2}^0 (-1) ds = 2;
    # q' = |z| = -s      =>  q(-2) = q(0) - int_{-2}^0 (-s) ds = -2.
    # (The side must come from z's first coefficient *and* the time direction: z moves into z < 0.)
    sysm = TaylorSystem([z, w, q], [sp.Integer(1), sp.sign(z), sp.Abs(z)], t)
    out = integrate(sysm, [0, 0, 0], 0, [-2], digits=30)[0]
    assert [to_mpf(v) for v in out] == [-2, 2, -2]


@pytest.mark.parametrize("rhs, z0, when", [
    (-sp.sign(z), 1, 1.0),            # z = 1 - t reaches 0 at t = 1, then sign(z) pushes back from both sides
    # z' = +1 below 0, -2 above, -1/2 at 0 (Heaviside(0) = 1/2): z moves down, where z' = +1 pushes it back up
    (1 - 3 * sp.Heaviside(z), 0, 0.0),
])
def test_sliding_along_a_discontinuity_is_reported(rhs, z0, when):
    # A Filippov sliding mode: no classical solution continues past `when`; the error must say so at once
    # (not chatter through max_steps).
    start = time.perf_counter()
    with pytest.raises(IntegrationError, match="sliding mode") as info:
        integrate(TaylorSystem([z], [rhs], t), [z0], 0, [2], digits=30)
    assert abs(info.value.time - when) < TOL["blowup_time"]
    assert time.perf_counter() - start < TOL["blowup_seconds"]
