"""The exact gradient of a fixed-step scheme, in high precision: references for implementations that must match a
discrete gradient bit for bit (the ``fixed_step`` entries of golden files, :mod:`symode.oracle.export`).

The discrete problem is the one symode's float64 ``discrete`` route differentiates (:mod:`symode.casadi.routes`),
here in exact arithmetic rounded at ``digits + 10`` digits instead of float64:

* segments t0 -> τ_1 -> ... -> τ_m [-> t1] between the fixed observation times, ``steps`` steps shared among
  them in proportion to their nominal lengths (:func:`symode.casadi.solvers.allocate_steps`), uniform within a
  segment: step j of a segment [a, b] with n steps starts at a + j (b - a)/n, h = (b - a)/n, where a = t0 for
  the first segment and b = t1 for the last (so the grid moves with t0 and t1; observation times do not);
* an explicit Runge-Kutta step of the tableau (:data:`symode.casadi.schemes.SCHEMES`, exact fractions):
  K_i = f(y + h Σ_j A_ij K_j, t + c_i h, θ), y_next = y + h Σ_i b_i K_i, on y = (z, q) with q' = r;
* L_h = ℓ(z_N) + Σ_i ℓ_i(z(τ_i)) + q_N with z(t0) = z0(θ) + e; an observation exactly at t0 is evaluated on z0
  and the grid then starts at that fixed time (as in :func:`symode.casadi.model_graphs.segments`), so dL/dt0 is
  None (undefined, as on every symode route).

Everything is evaluated with forward-mode dual numbers (:mod:`symode.interop.dual`) in the np + nz + 2
directions θ, e, t0, t1, so the returned values are dL_h/dθ (total), dL_h/dz0 (at e = 0), dL_h/dt0 and dL_h/dt1
-- the exact derivatives of the discrete loss, which a float64 implementation of the same scheme reproduces up
to its rounding.  dL/dt1 is None where the last observation lies at t1 (the grid then ends at a fixed time).
The model's numbers are exact (``0.1`` is 1/10); the model functions come from the "exact" backend of
:mod:`symode.interop.emit`.

Error bound: the computation runs at ``digits + 10`` and again at ``digits + 25`` digits; ``error_bound`` is the
power of ten at or above 10 x their largest relative difference (relative to max(|v|, 1e-8), as the oracle's),
and at least 10^-(digits-1).  Implicit tableaux are refused (this reference has no Newton solver).
"""
from __future__ import annotations

import threading
from fractions import Fraction

import mpmath
import sympy

from ..errors import IntegrationError, SpecError
from ..model import Model
from ..result import GradResult
from .dual import DomainError, Dual, functions_namespace

__all__ = ["discrete_gradient", "EXTRA_DIGITS", "CHECK_DIGITS"]

EXTRA_DIGITS = 10
CHECK_DIGITS = 25
_VALUE_FLOOR = mpmath.mpf(10) ** -8
_LOCK = threading.Lock()
_NS: dict[str, tuple] = {}


def _namespace(model: Model):
    from .emit import compile_source, model_module
    key = model.fingerprint()
    with _LOCK:
        got = _NS.get(key)
    if got is None:
        text, constants = model_module(model, "exact")
        cache: dict = {}

        def K(i):
            prec = mpmath.mp.prec
            if (i, prec) not in cache:
                cache[(i, prec)] = mpmath.mpf(sympy.N(constants[i], int(prec * 0.30103) + 10))
            return cache[(i, prec)]

        ns = compile_source(text, {"_d": functions_namespace(), "_q": lambda p, q: mpmath.mpf(p) / q, "_K": K,
                                   "__name__": f"symode_exact_{key[:16]}"})
        got = (ns,)
        with _LOCK:
            _NS[key] = got
    return got[0]


def _mp(x) -> mpmath.mpf:
    if isinstance(x, Fraction):
        return mpmath.mpf(x.numerator) / x.denominator
    if isinstance(x, sympy.Rational):
        return mpmath.mpf(int(x.p)) / int(x.q)
    return mpmath.mpf(sympy.N(x, mpmath.mp.dps + 10))


def _solve(model: Model, ns: dict, tab, steps: int) -> tuple:
    """(L, K directions) as a Dual, at the current mpmath precision."""
    from ..casadi.model_graphs import exact_fraction, initial_observation, segments
    from ..casadi.solvers import allocate_steps
    nz, np_ = model.nz, model.np
    K = np_ + nz + 2
    theta = [Dual.variable(_mp(v), k, K) for k, v in enumerate(model.theta)]
    e = [Dual.variable(0, np_ + j, K) for j in range(nz)]
    t0 = Dual.variable(_mp(model.t0), np_ + nz, K)
    t1 = Dual.variable(_mp(model.t1), np_ + nz + 1, K)
    z0 = [a + b for a, b in zip(ns["z0"](theta), e)]
    running = model.running is not None
    y = z0 + ([Dual(mpmath.mpf(0), None)] if running else [])
    segs = segments(model)
    t0n, t1n = exact_fraction(model.t0), exact_fraction(model.t1)
    counts = allocate_steps([Fraction(1) if end is None else (end - t0n) / (t1n - t0n) for _, end, _ in segs], steps)
    A = [[_mp(a) for a in row] for row in tab.A]
    b = [_mp(x) for x in tab.b]
    c = [_mp(x) for x in tab.c]

    def field(t, yy):
        z = yy[:nz]
        out = list(ns["rhs"](t, z, theta))
        return out + [ns["running"](t, z, theta)] if running else out

    loss = Dual(mpmath.mpf(0), None)
    if initial_observation(model) is not None:  # an observation at t0, on z0 (segments start at its fixed time)
        loss = loss + ns["observation_0"](z0, theta)
    for (start, end, obs), n in zip(segs, counts):
        a = t0 if start is None else Dual(_mp(start), None)
        bb = t1 if end is None else Dual(_mp(end), None)
        h = (bb - a) / n
        for j in range(n):
            t = a + (bb - a) * (mpmath.mpf(j) / n)
            try:
                ks = []
                for i in range(len(b)):
                    yi = [yv + h * sum((A[i][m] * ks[m][q] for m in range(i) if A[i][m] != 0),
                                       Dual(mpmath.mpf(0), None)) for q, yv in enumerate(y)]
                    ks.append(field(t + c[i] * h, yi))
                y = [yv + h * sum((b[i] * ks[i][q] for i in range(len(b)) if b[i] != 0), Dual(mpmath.mpf(0), None))
                     for q, yv in enumerate(y)]
            except DomainError as exc:
                raise IntegrationError(f"discrete-mp on {model.name!r}: {exc} in the step from t = "
                                       f"{mpmath.nstr(t.v, 8)}", time=float(t.v)) from None
            if any(not mpmath.isfinite(yv.v) or abs(yv.v) > mpmath.mpf(10) ** 100 for yv in y):
                raise IntegrationError(f"discrete-mp on {model.name!r}: the discrete solution blew up near "
                                       f"t = {mpmath.nstr(t.v, 8)}", time=float(t.v))
        if obs is not None:
            loss = loss + ns[f"observation_{obs}"](y[:nz], theta)
    if model.terminal is not None:
        loss = loss + ns["terminal"](y[:nz], theta)
    if running:
        loss = loss + y[nz]
    return loss, y


def _values(model: Model, loss: Dual) -> dict:
    from ..casadi.model_graphs import initial_observation
    nz, np_ = model.nz, model.np
    zero = [mpmath.mpf(0)] * (np_ + nz + 2)
    d = list(loss.d) if loss.d is not None else zero
    at_t1 = bool(model.observations) and model.observations[-1].time == model.t1
    at_t0 = initial_observation(model) is not None
    return {"loss": loss.v, "grad": d[:np_], "grad_z0": d[np_:np_ + nz], "grad_t0": None if at_t0 else d[np_ + nz],
            "grad_t1": None if at_t1 else d[np_ + nz + 1]}


def discrete_gradient(model: Model, scheme: str = "rk4", steps: int = 100, digits: int = 30) -> GradResult:
    """The exact discrete loss and gradient of ``scheme`` with ``steps`` steps (see the module docstring)."""
    from ..casadi.schemes import get_scheme
    if isinstance(digits, bool) or not isinstance(digits, int) or not 5 <= digits <= 1000:
        raise SpecError(f"digits = {digits!r}: give an integer from 5 to 1000")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise SpecError(f"steps must be a positive integer, got {steps!r}")
    tab = get_scheme(scheme)
    if tab.implicit:
        raise SpecError(f"scheme {tab.name!r} is implicit; the high-precision discrete reference supports "
                        f"explicit schemes only (euler, midpoint, rk4, rk38, dopri5)")
    ns = _namespace(model)
    runs = []
    for extra in (EXTRA_DIGITS, CHECK_DIGITS):
        with mpmath.workdps(digits + extra):
            loss, y = _solve(model, ns, tab, steps)
            runs.append((_values(model, loss), [v.v for v in y[:model.nz]]))
    (lo, _), (hi, z1) = runs
    worst = mpmath.mpf(0)
    with mpmath.workdps(digits + CHECK_DIGITS):
        for key in ("loss", "grad", "grad_z0", "grad_t0", "grad_t1"):
            a, b_ = lo[key], hi[key]
            for x, y_ in zip(a if isinstance(a, list) else [a], b_ if isinstance(b_, list) else [b_]):
                if x is not None:
                    worst = max(worst, abs(x - y_) / max(abs(y_), _VALUE_FLOOR))
        bound = max(int(mpmath.ceil(mpmath.log10(10 * worst))) if worst > 0 else -digits, -(digits - 1))
    with mpmath.workdps(digits + EXTRA_DIGITS):
        r = GradResult(model=model.name, method="discrete-mp", loss=+hi["loss"],
                       grad={n: +v for n, v in zip(model.param_names, hi["grad"])},
                       grad_z0=[+v for v in hi["grad_z0"]],
                       grad_t0=None if hi["grad_t0"] is None else +hi["grad_t0"],
                       grad_t1=None if hi["grad_t1"] is None else +hi["grad_t1"], digits=digits,
                       error_bound=f"1e{bound}", scheme=tab.name, steps=steps, z1=[+v for v in z1])
    return r
