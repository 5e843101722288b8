"""The oracle: loss and gradients of a model to a requested number of digits, with an honest error bound.

The work of two gradient routes (declared in :mod:`symode.oracle.methods`):

``oracle``  Taylor-method integration (:mod:`symode.oracle.taylor`) of the SymPy-derived systems of
            :func:`symode.symbolic.derive.derive`, by two independent routes:

  (a) forward sensitivity.  Integrate ``forward_system`` (z, S = ∂z/∂θ, W = ∂z/∂z0 and, with a running cost,
      q, Q, Qz0) from t0 to t1 with output at every observation time t_i and at t1; then
          L      = Σ_i ℓ_i(z(t_i)) + ℓ(z(t1)) + q(t1)
          dL/dθ  = Σ_i (∂ℓ_i/∂z S(t_i) + ∂ℓ_i/∂θ) + ∂ℓ/∂z S(t1) + ∂ℓ/∂θ + Q(t1)
          dL/dz0 = Σ_i ∂ℓ_i/∂z W(t_i) + ∂ℓ/∂z W(t1) + Qz0(t1)
          dL/dt0 = -dL/dz0 · f(z0, t0) - r(z0, t0)
          dL/dt1 = ∂ℓ/∂z · f(z(t1), t1) + r(z(t1), t1)        (None where an observation lies at t1)
  (b) continuous adjoint.  Integrate z (and q' = r) forward, storing z at the observation times and at
      ADJOINT_PIECES - 1 equally spaced checkpoints; then integrate ``backward_system`` (z, λ, μ) backward piece
      by piece from t1 to t0, with λ(t1) = (∂ℓ/∂z)ᵀ, the jumps λ += (∂ℓ_i/∂z)ᵀ(z(t_i)) going backward through
      each t_i, and z reset from the stored forward value at the start of every piece.  Back-solving z through
      a contracting system loses digits (DESIGN.md): a piece whose back-solved z misses the stored forward
      z(lo) by more than 10^-(working digits - GUARD_DIGITS/2), or that runs out of its step budget, is halved
      (z at the midpoint from a forward solve), up to MAX_ADJOINT_SPLITS times; then
          dL/dθ  = μ(t0) + (∂z0/∂θ)ᵀ λ(t0) + ∂ℓ/∂θ + Σ_i ∂ℓ_i/∂θ
          dL/dz0 = λ(t0),   dL/dt0 = -λ(t0)ᵀ f(z0, t0) - r(z0, t0),   dL/dt1 as in (a).
      Signs follow the conventions of :mod:`symode.symbolic.derive`.

  Parameters enter the Taylor systems as numeric parameters whose exact SymPy values are rounded once at
  working precision (never through a binary double).

  Error bound.  Both routes run at ``digits + GUARD_DIGITS`` digits; the forward route runs again at
  ``digits + GUARD_DIGITS + CHECK_EXTRA_DIGITS`` digits and its values are the ones reported.  With
      rel(a, b) = |a - b| / max(|a|, |b|, VALUE_FLOOR)
  over every reported value (loss, dL/dθ, dL/dz0, dL/dt0, dL/dt1, z(t1)), the estimate is
      e = max(rel(forward, adjoint), rel(forward, forward at higher precision))
  and ``error_bound`` = the power of ten at or above 10·e, but at least 10^-(digits-1) (the rounding of a
  value printed with ``digits`` significant digits is at most half a unit of its last digit, < 10^-(digits-1)
  relative).  Meaning: every reported value v satisfies |v - v*| <= error_bound · max(|v*|, VALUE_FLOOR) where
  v* is the exact value; values smaller in magnitude than VALUE_FLOOR are thus bounded absolutely.
  If e exceeds 10^-(digits-2) the routes disagree beyond the requested digits: :class:`IntegrationError`
  (a disagreement is a failure to report, never a number to return).

``exact``   The closed form of the model (``derive(model).closed_form``) evaluated at ``digits`` + 15 digits;
            :class:`~symode.errors.NoClosedFormError` where no closed form exists.  ``error_bound`` is
            10^-(digits-1), the rounding of the printed values.

Progress: a solve running longer than :data:`PROGRESS_DELAY_S` prints one line at most every
:data:`PROGRESS_INTERVAL_S` seconds to stderr (model, route, digits, fraction done) when stderr is a terminal
(or ``SYMODE_PROGRESS=1`` forces it); nothing for fast solves, nothing when stderr is captured (a pipeline's
stderr then holds only the one-line error, if any), nothing at all with ``quiet=True`` or ``SYMODE_QUIET=1``.
"""
from __future__ import annotations

import os
import sys
import time as _time
import weakref
from dataclasses import dataclass
from fractions import Fraction

import mpmath
import sympy

from ..errors import IntegrationError, NoClosedFormError, SpecError
from ..model import Model
from ..result import GradResult
from ..symbolic.derive import derive
from .taylor import TaylorSystem, integrate, to_mpf

__all__ = ["oracle_gradient", "exact_gradient", "oracle_routes",
           "GUARD_DIGITS", "CHECK_EXTRA_DIGITS", "VALUE_FLOOR_DIGITS", "PROGRESS_DELAY_S", "PROGRESS_INTERVAL_S"]

#: Digits carried by the integrations above the requested ``digits`` (the integrator's accuracy is absolute
#: relative to max(1, |y|); the guard keeps values down to VALUE_FLOOR at full relative accuracy).
GUARD_DIGITS = 10
#: Extra digits of the repeated forward run that checks the precision (its values are the ones reported).
CHECK_EXTRA_DIGITS = 15
#: Values smaller in magnitude than 10^-VALUE_FLOOR_DIGITS are bounded absolutely (see the module docstring).
VALUE_FLOOR_DIGITS = 8
VALUE_FLOOR = mpmath.mpf(10) ** -VALUE_FLOOR_DIGITS
#: Safety factor between the measured difference and the reported bound.
BOUND_SAFETY = 10
#: Routes disagreeing by more than 10^-(digits - DISAGREE_SLACK_DIGITS) (relative) raise IntegrationError.
DISAGREE_SLACK_DIGITS = 2
#: Number of equal pieces the adjoint's backward solve is cut into (z is reset from the stored forward
#: solution at each piece start); observation times cut it further.
ADJOINT_PIECES = 4
#: Most halvings of one backward piece when back-solving z misses the stored forward solution (a contracting
#: system); 2^12 sub-pieces per piece is far beyond any model the oracle handles in reasonable time.
MAX_ADJOINT_SPLITS = 12
#: Seconds a computation runs silently before progress lines start, and the least gap between two lines.
PROGRESS_DELAY_S = 1.0
PROGRESS_INTERVAL_S = 0.5
#: Most digits accepted (the cost grows about like digits^3: logistic takes ~1.4 s at 100 digits).
MAX_DIGITS = 1000


def _check_digits(digits) -> int:
    if isinstance(digits, bool) or not isinstance(digits, int) or not 5 <= digits <= MAX_DIGITS:
        raise SpecError(f"digits = {digits!r}: give an integer from 5 to {MAX_DIGITS}")
    return digits


def _quiet_env() -> bool:
    return os.environ.get("SYMODE_QUIET", "").strip() not in ("", "0")


def _progress_wanted(stream) -> bool:
    """Progress goes to terminals (or wherever SYMODE_PROGRESS=1 says); never into captured stderr by default."""
    if os.environ.get("SYMODE_PROGRESS", "").strip() not in ("", "0"):
        return True
    if stream is not None:  # an explicit stream was asked for
        return True
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


class _Progress:
    """Rate-limited progress lines on stderr for one oracle computation."""

    def __init__(self, model_name: str, quiet: bool | None = None, stream=None):
        self.model = model_name
        self.quiet = (_quiet_env() or not _progress_wanted(stream)) if quiet is None else quiet
        self.stream = stream
        self.start = _time.monotonic()
        self.last = 0.0

    def callback(self, route: str, digits: int, base: float = 0.0, width: float = 1.0):
        if self.quiet:
            return None

        def cb(fraction: float):
            now = _time.monotonic()
            if now - self.start < PROGRESS_DELAY_S or now - self.last < PROGRESS_INTERVAL_S:
                return
            self.last = now
            done = min(1.0, max(0.0, base + width * fraction))
            print(f"symode: oracle {self.model}: {route} route at {digits} digits, {100 * done:.0f}% "
                  f"({now - self.start:.0f} s)", file=self.stream or sys.stderr, flush=True)
        return cb


# -- exact numbers <-> mpmath ------------------------------------------------------------------------------------
def _mpf_to_rational(x) -> sympy.Rational:
    """The exact binary value of an mpf as a SymPy Rational (no rounding)."""
    f = _mpf_to_fraction(x)
    return sympy.Rational(f.numerator, f.denominator)


def _mpf_to_fraction(x) -> Fraction:
    """The exact binary value of an mpf as a Fraction.

    Built from the raw ``_mpf_`` tuple (sign, mantissa, exponent, bits): ``mpf.man_exp`` drops the sign.
    Values are handed to :func:`integrate` as Fractions for the same reason (its mpf input path goes
    through ``man_exp``).
    """
    x = mpmath.mpf(x)
    if not mpmath.isfinite(x):
        raise IntegrationError(f"non-finite value {x}")
    sign, man, exp, _ = x._mpf_
    if not man:
        return Fraction(0)
    v = Fraction(int(man) * 2 ** int(exp)) if exp >= 0 else Fraction(int(man), 2 ** int(-exp))
    return -v if sign else v


class _Evaluator:
    """Evaluates SymPy expressions in the state (and λ) symbols at the model's exact parameter values."""

    def __init__(self, model: Model, digits: int):
        self.model = model
        self.digits = digits
        self.pv = dict(model.param_values)

    def __call__(self, expr, values: dict, what: str, time=None) -> mpmath.mpf:
        """``expr`` at ``values`` ({symbol: mpf or exact SymPy number}), parameters at their exact values."""
        sub = dict(self.pv)
        for s, v in values.items():
            sub[s] = v if isinstance(v, sympy.Basic) else _mpf_to_rational(v)
        if time is not None:
            sub[self.model.t] = time
        e = sympy.sympify(expr).xreplace(sub)
        v = e.evalf(self.digits + 5)
        if not (v.is_real and v.is_finite) or isinstance(v, sympy.Symbol) or v.free_symbols:
            raise IntegrationError(f"{what} is not a finite real number ({v})",
                                   time=None if time is None else float(time))
        return mpmath.mp.make_mpf(sympy.Float(v, self.digits + 5)._mpf_)


# -- compiled systems, once per model ----------------------------------------------------------------------------
@dataclass
class _Systems:
    forward: TaylorSystem
    state: TaylorSystem       # z (and q' = r with a running cost)
    backward: TaylorSystem


_SYSTEMS: "weakref.WeakKeyDictionary[Model, _Systems]" = weakref.WeakKeyDictionary()


def _systems(model: Model) -> _Systems:
    s = _SYSTEMS.get(model)
    if s is None:
        d = derive(model)
        fw, bw = d.forward_system, d.backward_system
        z_states, z_rhs = list(model.states), list(model.rhs)
        if model.running is not None:
            q = sympy.Dummy("q", real=True)  # a Dummy never collides with a user name
            z_states.append(q)
            z_rhs.append(model.running)
        s = _Systems(forward=TaylorSystem(fw.states, fw.rhs, model.t, params=model.params),
                     state=TaylorSystem(z_states, z_rhs, model.t, params=model.params),
                     backward=TaylorSystem(bw.states, bw.rhs, model.t, params=model.params))
        _SYSTEMS[model] = s
    return s


def _route_error(model: Model, route: str, exc: IntegrationError) -> IntegrationError:
    return IntegrationError(f"oracle on model {model.name!r} ({route} route): {exc}", time=exc.time)


# -- the two routes -----------------------------------------------------------------------------------------------
def _forward_route(model: Model, work_digits: int, progress: _Progress, label: str = "forward") -> dict:
    """Route (a): forward sensitivities.  Returns loss, grad, grad_z0, grad_t0, grad_t1, z1 as mpf."""
    fw = derive(model).forward_system
    ev = _Evaluator(model, work_digits)
    pv = model.param_values
    init = [sympy.sympify(e).xreplace(pv) for e in fw.init]
    times = sorted({o.time for o in model.observations} | {model.t1})
    try:
        out = integrate(_systems(model).forward, init, model.t0, times, params=model.theta, digits=work_digits,
                        progress=progress.callback(label, work_digits))
    except IntegrationError as exc:
        raise _route_error(model, label, exc) from None
    at = {tm: [to_mpf(v) for v in row] for tm, row in zip(times, out)}
    return _assemble_forward(model, at, ev)


def _assemble_forward(model: Model, at: dict, ev: "_Evaluator") -> dict:
    """Loss and gradients from the forward-sensitivity solution ``at`` = {time: state row of forward_system}
    at every observation time and at t1 (the formulas of route (a) in the module docstring)."""
    d = derive(model)
    b = d.forward_system.blocks
    pv = model.param_values
    nz, np_ = model.nz, model.np

    def unpack(row):
        z = row[b["z"]]
        S = row[b["S"]]  # row-major nz × nθ
        W = row[b["W"]]  # row-major nz × nz
        return z, [S[i * np_:(i + 1) * np_] for i in range(nz)], [W[i * nz:(i + 1) * nz] for i in range(nz)]

    loss = mpmath.mpf(0)
    grad = [mpmath.mpf(0)] * np_
    gz0 = [mpmath.mpf(0)] * nz

    def add_term(term, dldz, dldp, time, what):
        nonlocal loss, grad, gz0
        z, S, W = unpack(at[time])
        zs = dict(zip(model.states, z))
        loss += ev(term, zs, what, time)
        gz = [ev(g, zs, f"d({what})/d{s}", time) for g, s in zip(dldz, model.states)]
        gp = [ev(g, zs, f"d({what})/d{p}", time) for g, p in zip(dldp, model.params)]
        grad = [grad[j] + gp[j] + mpmath.fsum(gz[i] * S[i][j] for i in range(nz)) for j in range(np_)]
        gz0 = [gz0[k] + mpmath.fsum(gz[i] * W[i][k] for i in range(nz)) for k in range(nz)]

    for i, o in enumerate(model.observations):
        add_term(o.term, d.dldz_obs[i], d.dldp_obs[i], o.time, f"observation term {i}")
    if model.terminal is not None:
        add_term(model.terminal, d.dldz_terminal, d.dldp_terminal, model.t1, "terminal term")
    row1 = at[model.t1]
    if model.running is not None:
        loss += row1[b["q"]][0]
        grad = [g + Q for g, Q in zip(grad, row1[b["Q"]])]
        gz0 = [g + Q for g, Q in zip(gz0, row1[b["Qz0"]])]
    z0 = {s: sympy.sympify(e).xreplace(pv) for s, e in zip(model.states, model.z0)}
    f0 = [ev(fi, z0, f"rhs[{i}] at t0", model.t0) for i, fi in enumerate(model.rhs)]
    r0 = ev(model.running, z0, "running cost at t0", model.t0) if model.running is not None else 0
    grad_t0 = -mpmath.fsum(g * f for g, f in zip(gz0, f0)) - r0
    z1 = row1[b["z"]]
    gt1 = d.grad_t1_expr
    grad_t1 = None if gt1 is None else ev(gt1, dict(zip(model.states, z1)), "dL/dt1", model.t1)
    return {"loss": loss, "grad": grad, "grad_z0": gz0, "grad_t0": grad_t0, "grad_t1": grad_t1, "z1": list(z1)}


def _adjoint_route(model: Model, work_digits: int, progress: _Progress, label: str = "adjoint") -> dict:
    """Route (b): stored-checkpoint continuous adjoint.  Same keys as :func:`_forward_route`."""
    d = derive(model)
    ev = _Evaluator(model, work_digits)
    pv = model.param_values
    nz, np_ = model.nz, model.np
    t0, t1 = model.t0, model.t1
    systems = _systems(model)
    span = t1 - t0
    cuts = {t0 + span * sympy.Rational(k, ADJOINT_PIECES) for k in range(1, ADJOINT_PIECES)}
    obs_at = {o.time: i for i, o in enumerate(model.observations)}
    times = sorted(cuts | set(obs_at) | {t1})
    z0 = [sympy.sympify(e).xreplace(pv) for e in model.z0]
    y0 = z0 + ([0] if model.running is not None else [])
    state_stats: dict = {}
    try:
        out = integrate(systems.state, y0, t0, times, params=model.theta, digits=work_digits, stats=state_stats,
                        progress=progress.callback(label, work_digits, 0.0, 0.3))
    except IntegrationError as exc:
        raise _route_error(model, label + " (state solve)", exc) from None
    zat = {tm: [to_mpf(v) for v in row[:nz]] for tm, row in zip(times, out)}
    zat[t0] = [mpmath.mpf(sympy.Float(v, work_digits + 10)._mpf_) for v in z0]
    loss = to_mpf(out[-1][nz]) if model.running is not None else mpmath.mpf(0)
    grad = [mpmath.mpf(0)] * np_

    def zs(tm):
        return dict(zip(model.states, zat[tm]))

    # λ(t1) from the terminal term, then the observation jump at t1 if any; loss and ∂ℓ/∂θ terms on the way
    lam = [mpmath.mpf(0)] * nz
    if model.terminal is not None:
        loss += ev(model.terminal, zs(t1), "terminal term", t1)
        lam = [ev(g, zs(t1), f"d(terminal)/d{s}", t1) for g, s in zip(d.dldz_terminal, model.states)]
        grad = [g + ev(e, zs(t1), f"d(terminal)/d{p}", t1) for g, e, p in zip(grad, d.dldp_terminal, model.params)]

    def jump(tm):
        nonlocal lam, grad, loss
        i = obs_at[tm]
        what = f"observation term {i}"
        loss += ev(model.observations[i].term, zs(tm), what, tm)
        lam = [la + ev(g, zs(tm), f"d({what})/d{s}", tm) for la, g, s in zip(lam, d.dldz_obs[i], model.states)]
        grad = [g + ev(e, zs(tm), f"d({what})/d{p}", tm) for g, e, p in zip(grad, d.dldp_obs[i], model.params)]

    if t1 in obs_at:
        jump(t1)
    mu = [mpmath.mpf(0)] * np_
    # a backward piece may take a few times the forward solve's steps (λ, μ ride along); more means z is
    # being back-solved through a contracting region and diverges: split the piece instead of waiting
    budget = 4 * state_stats.get("steps", 0) + 1000
    z_tol = mpmath.mpf(10) ** -(work_digits - GUARD_DIGITS // 2)
    splits = 0

    def piece(hi, lo, zhi, lam, mu, depth):
        """λ, μ at ``lo`` from their values at ``hi`` (z(hi) = ``zhi`` from the forward solve)."""
        nonlocal splits
        y = [_mpf_to_fraction(v) for v in (*zhi, *lam, *mu)]
        failure = None
        try:
            res = integrate(systems.backward, y, hi, [lo], params=model.theta, digits=work_digits,
                            max_steps=budget,
                            progress=progress.callback(label, work_digits, 0.3 + 0.7 * float((t1 - hi) / span),
                                                       0.7 * float((hi - lo) / span)))
            row = [to_mpf(v) for v in res[0]]
            # the back-solved z must land on the stored forward z(lo): else back-solving lost digits
            scale = max(1, *(abs(v) for v in row))  # the integrator's accuracy is relative to this
            worst = max(abs(a - b) for a, b in zip(row[:nz], zat[lo])) / scale
            if worst <= z_tol:
                return row[nz:2 * nz], row[2 * nz:2 * nz + np_]
            failure = IntegrationError(f"back-solving z from t = {float(hi):.6g} to {float(lo):.6g} missed the "
                                       f"forward solution by {mpmath.nstr(worst, 3)} (relative); the system is "
                                       f"too contracting for the adjoint at this precision", time=float(lo))
        except IntegrationError as exc:
            failure = exc
        if depth >= MAX_ADJOINT_SPLITS:
            raise _route_error(model, label + " (backward solve)", failure)
        mid = (hi + lo) / 2
        try:  # z at the midpoint: forward from the stored z(lo)
            zm = integrate(systems.state, [_mpf_to_fraction(v) for v in zat[lo]] + ([0] if model.running is not None
                                                                                      else []),
                           lo, [mid], params=model.theta, digits=work_digits)[0][:nz]
        except IntegrationError as exc:
            raise _route_error(model, label + " (state solve)", exc) from None
        zat[mid] = [to_mpf(v) for v in zm]
        splits += 1
        lam, mu = piece(hi, mid, zhi, lam, mu, depth + 1)
        return piece(mid, lo, zat[mid], lam, mu, depth + 1)

    bounds = [t0] + times  # ascending; pieces run from bounds[k] down to bounds[k-1]
    for k in range(len(bounds) - 1, 0, -1):
        hi, lo = bounds[k], bounds[k - 1]
        lam, mu = piece(hi, lo, zat[hi], lam, mu, 0)
        if lo in obs_at:
            jump(lo)
    z0v = {s: v for s, v in zip(model.states, z0)}
    dz0dp = d.dz0dp
    grad = [grad[j] + mu[j] + mpmath.fsum(ev(dz0dp[i, j], {}, f"dz0[{i}]/d{model.params[j]}") * lam[i]
                                          for i in range(nz) if dz0dp[i, j] != 0)
            for j in range(np_)]
    lam_sub = dict(zip(d.lam, lam))
    grad_t0 = ev(d.grad_t0_expr, {**z0v, **lam_sub}, "dL/dt0", t0)
    gt1 = d.grad_t1_expr
    grad_t1 = None if gt1 is None else ev(gt1, zs(t1), "dL/dt1", t1)
    return {"loss": loss, "grad": grad, "grad_z0": list(lam), "grad_t0": grad_t0, "grad_t1": grad_t1,
            "z1": list(zat[t1]), "splits": splits}


def _flat(r: dict) -> list[tuple[str, mpmath.mpf]]:
    out = [("loss", r["loss"])]
    out += [(f"grad[{i}]", v) for i, v in enumerate(r["grad"])]
    out += [(f"grad_z0[{i}]", v) for i, v in enumerate(r["grad_z0"])]
    out += [("grad_t0", r["grad_t0"])]
    if r["grad_t1"] is not None:
        out.append(("grad_t1", r["grad_t1"]))
    out += [(f"z1[{i}]", v) for i, v in enumerate(r["z1"])]
    return out


def _max_rel(a: dict, b: dict, names: dict) -> tuple[mpmath.mpf, str]:
    """max over values of |a - b| / max(|a|, |b|, VALUE_FLOOR), and the name of the worst value."""
    worst, where = mpmath.mpf(0), ""
    for (k, x), (_, y) in zip(_flat(a), _flat(b)):
        r = abs(x - y) / max(abs(x), abs(y), VALUE_FLOOR)
        if r > worst or not where:
            worst, where = r, names.get(k, k)
    return worst, where


def _pretty_names(model: Model) -> dict:
    names = {f"grad[{j}]": f"dL/d{p}" for j, p in enumerate(model.param_names)}
    names.update({f"grad_z0[{i}]": f"dL/dz0[{i}]" for i in range(model.nz)})
    names.update({"grad_t0": "dL/dt0", "grad_t1": "dL/dt1"})
    return names


def _power_of_ten_at_least(x: mpmath.mpf) -> int:
    """The smallest integer n with 10^n >= x (x > 0)."""
    n = int(mpmath.floor(mpmath.log10(x)))
    while mpmath.mpf(10) ** n < x:
        n += 1
    while mpmath.mpf(10) ** (n - 1) >= x:
        n -= 1
    return n


def oracle_routes(model: Model, work_digits: int, *, quiet: bool | None = None) -> dict:
    """Both routes at ``work_digits`` integration digits: {"forward": {...}, "adjoint": {...}} (mpf values).

    For tests and diagnostics; :func:`oracle_gradient` is the checked, bounded result.
    """
    progress = _Progress(model.name, quiet)
    with mpmath.workdps(work_digits + 10):
        return {"forward": _forward_route(model, work_digits, progress),
                "adjoint": _adjoint_route(model, work_digits, progress)}


def oracle_gradient(model: Model, digits: int = 30, *, quiet: bool | None = None) -> GradResult:
    """Loss and gradients by the oracle (see the module docstring), every value within ``error_bound``."""
    digits = _check_digits(digits)
    if not isinstance(model, Model):
        raise SpecError(f"oracle: expected a symode Model, got {type(model).__name__}")
    started = _time.monotonic()
    progress = _Progress(model.name, quiet)
    lo = digits + GUARD_DIGITS
    hi = lo + CHECK_EXTRA_DIGITS
    with mpmath.workdps(hi + 10):
        fwd = _forward_route(model, lo, progress, "forward")
        adj = _adjoint_route(model, lo, progress, "adjoint")
        ref = _forward_route(model, hi, progress, "forward (check)")
        names = _pretty_names(model)
        e_route, w_route = _max_rel(fwd, adj, names)
        e_prec, w_prec = _max_rel(fwd, ref, names)
        limit = mpmath.mpf(10) ** -(digits - DISAGREE_SLACK_DIGITS)
        if e_route > limit:
            raise IntegrationError(
                f"oracle on model {model.name!r}: the forward-sensitivity and adjoint routes disagree on {w_route} "
                f"by {mpmath.nstr(e_route, 3)} (relative) at {lo} working digits, more than the {digits} digits "
                f"requested allow; the solution may be too sensitive (chaotic or stiff) for this interval")
        if e_prec > limit:
            raise IntegrationError(
                f"oracle on model {model.name!r}: raising the working precision from {lo} to {hi} digits changed "
                f"{w_prec} by {mpmath.nstr(e_prec, 3)} (relative), more than the {digits} digits requested allow")
        est = max(e_route, e_prec) * BOUND_SAFETY
        n = -(digits - 1)
        if est > 0:
            n = max(n, _power_of_ten_at_least(est))
        bound = f"1e{n}"
        result = GradResult(
            model=model.name, method="oracle", loss=+ref["loss"],
            grad={p: +v for p, v in zip(model.param_names, ref["grad"])},
            grad_z0=[+v for v in ref["grad_z0"]], grad_t0=+ref["grad_t0"],
            grad_t1=None if ref["grad_t1"] is None else +ref["grad_t1"],
            digits=digits, error_bound=bound, z1=[+v for v in ref["z1"]],
            stats={"working_digits": lo, "check_digits": hi,
                   "route_difference": mpmath.nstr(e_route, 2) if e_route else "0",
                   "precision_difference": mpmath.nstr(e_prec, 2) if e_prec else "0",
                   "adjoint_splits": adj["splits"], "seconds": round(_time.monotonic() - started, 3)})
    return result.check_finite()


def exact_gradient(model: Model, digits: int = 30) -> GradResult:
    """Loss and gradients from the closed form; :class:`NoClosedFormError` (with the reason) where none exists."""
    digits = _check_digits(digits)
    cf = derive(model).closed_form
    if not cf:
        raise NoClosedFormError(f"model {model.name!r} has no closed form ({cf.reason}); use --method oracle")
    v = cf.evaluate(model, digits)
    return GradResult(model=model.name, method="exact", loss=v["loss"],
                      grad=dict(zip(model.param_names, v["grad"])), grad_z0=list(v["grad_z0"]),
                      grad_t0=v["grad_t0"], grad_t1=v["grad_t1"], digits=digits, error_bound=f"1e-{digits - 1}",
                      z1=list(v["z1"])).check_finite()
