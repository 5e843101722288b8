"""The oracle's two routes to the loss and its gradients, by Taylor integration (:mod:`symode.oracle.taylor`) of
the SymPy-derived systems of :func:`symode.symbolic.derive.derive`; the formulas are in the docstring of
:mod:`symode.oracle.engine`, which runs both and bounds the error.

* :func:`forward_route` -- (a) forward sensitivities; :func:`assemble_forward` turns a forward-sensitivity
  solution into loss and gradients (shared with the heyoka cross-check);
* :func:`adjoint_route` -- (b) the stored-checkpoint continuous adjoint, piece by piece backward, halving a
  piece whose back-solved z misses the stored forward z;
* :class:`Evaluator` -- a model expression at a point, at the model's exact parameter values.

Parameters enter the Taylor systems as numeric parameters whose exact SymPy values are rounded once at
working precision (never through a binary double).
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING

import mpmath
import sympy

from ..errors import IntegrationError
from ..lru import LRUCache
from ..model import Model
from ..symbolic.derive import derive
from .taylor import TaylorSystem, integrate, to_mpf

if TYPE_CHECKING:  # the engine owns the progress lines and imports this module
    from .engine import _Progress

__all__ = ["forward_route", "assemble_forward", "adjoint_route", "Evaluator", "critical_times", "restart_fraction"]


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


#: A value handed back to the integrator (a restart) below 2**-RESTART_UNDERFLOW_BITS in magnitude goes as 0: it is
#: far below the integrator's accuracy at any allowed precision (10**-(digits + 5) relative to max(1, |y|), digits
#: at most ~1000), and its exact Fraction would not be: the tail exp(-2e9) of a spike in an adjoint state has a
#: denominator of 2.9e9 bits, seconds and hundreds of megabytes to build and to round.
RESTART_UNDERFLOW_BITS = 1_000_000


def restart_fraction(x) -> Fraction:
    """An mpf state value as the exact Fraction a restarted integration starts from (0 below
    2**-RESTART_UNDERFLOW_BITS, see there)."""
    x = mpmath.mpf(x)
    if x and mpmath.mag(x) < -RESTART_UNDERFLOW_BITS:
        return Fraction(0)
    return _mpf_to_fraction(x)


class Evaluator:
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


#: the compiled Taylor systems by model fingerprint (never by the Model object), the 32 most recently used
_SYSTEMS: "LRUCache[_Systems]" = LRUCache(32)


def _systems(model: Model) -> _Systems:
    return _SYSTEMS.get_or_build(model.fingerprint(), lambda: _build_systems(model))


def _build_systems(model: Model) -> _Systems:
    d = derive(model)
    fw, bw = d.forward_system, d.backward_system
    z_states, z_rhs = list(model.states), list(model.rhs)
    if model.running is not None:
        q = sympy.Dummy("q", real=True)  # a Dummy never collides with a user name
        z_states.append(q)
        z_rhs.append(model.running)
    return _Systems(forward=TaylorSystem(fw.states, fw.rhs, model.t, params=model.params),
                    state=TaylorSystem(z_states, z_rhs, model.t, params=model.params),
                    backward=TaylorSystem(bw.states, bw.rhs, model.t, params=model.params))


def critical_times(model: Model) -> tuple:
    """The model's explicit-time features, ``((c, w), ...)``, for every integration of its systems
    (:func:`symode.verify.features.model_features`, once per model): a spike of a forcing term or running cost
    in t alone, ``exp(-1e10*(t - 0.3)**2)``, is landed on and approached in halving steps instead of being
    stepped over (:mod:`symode.oracle.critical`).  A matrix-form model's are not searched (its scalar form
    would be built for it): none.  Too many features to locate: IntegrationError (a number that could be
    wrong is never returned)."""
    from ..verify.features import TooManyFeatures, model_features
    try:
        return model_features(model)
    except TooManyFeatures as exc:
        raise IntegrationError(f"oracle on model {model.name!r}: {exc}: the Taylor steps could pass over a "
                               f"narrow feature of the right-hand side or running cost in time, so no value "
                               f"is given; shorten the interval or smooth the term") from None


def _route_error(model: Model, route: str, exc: IntegrationError) -> IntegrationError:
    return IntegrationError(f"oracle on model {model.name!r} ({route} route): {exc}", time=exc.time)


# -- the two routes -----------------------------------------------------------------------------------------------
def forward_route(model: Model, work_digits: int, progress: "_Progress", label: str = "forward") -> dict:
    """Route (a): forward sensitivities.  Returns loss, grad, grad_z0, grad_t0, grad_t1, z1 as mpf."""
    fw = derive(model).forward_system
    ev = Evaluator(model, work_digits)
    pv = model.param_values
    init = [sympy.sympify(e).xreplace(pv) for e in fw.init]
    times = sorted({o.time for o in model.observations} | {model.t1})
    try:
        out = integrate(_systems(model).forward, init, model.t0, times, params=model.theta, digits=work_digits,
                        progress=progress.callback(label, work_digits), critical_times=critical_times(model))
    except IntegrationError as exc:
        raise _route_error(model, label, exc) from None
    at = {tm: [to_mpf(v) for v in row] for tm, row in zip(times, out)}
    return assemble_forward(model, at, ev)


def assemble_forward(model: Model, at: dict, ev: "Evaluator") -> dict:
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
    # undefined where an observation lies at t0 (observation times are fixed: the start cannot move past it)
    grad_t0 = None if d.grad_t0_expr is None else -mpmath.fsum(g * f for g, f in zip(gz0, f0)) - r0
    z1 = row1[b["z"]]
    gt1 = d.grad_t1_expr
    grad_t1 = None if gt1 is None else ev(gt1, dict(zip(model.states, z1)), "dL/dt1", model.t1)
    return {"loss": loss, "grad": grad, "grad_z0": gz0, "grad_t0": grad_t0, "grad_t1": grad_t1, "z1": list(z1)}


def adjoint_route(model: Model, work_digits: int, progress: "_Progress", label: str, *, pieces: int, max_splits: int,
                  z_tol) -> dict:
    """Route (b): stored-checkpoint continuous adjoint, the backward solve cut into ``pieces`` equal pieces (and
    at every observation time); a piece whose back-solved z misses the stored forward z by more than ``z_tol``
    (relative) is halved, at most ``max_splits`` times.  Same keys as :func:`forward_route`, plus "splits"."""
    return _Adjoint(model, work_digits, progress, label, pieces, max_splits, z_tol).run()


class _Adjoint:
    """One run of the adjoint route: the stored forward states ``zat``, then λ, μ backward piece by piece."""

    #: the model's critical times (:func:`critical_times`); the matrix-form subclass keeps none
    critical: tuple = ()

    def __init__(self, model: Model, work_digits: int, progress: "_Progress", label: str, pieces: int,
                 max_splits: int, z_tol):
        self.model, self.work_digits, self.progress, self.label = model, work_digits, progress, label
        self.max_splits, self.z_tol = max_splits, z_tol
        self.d = derive(model)
        self.ev = Evaluator(model, work_digits)
        self.systems = _systems(model)
        self.critical = critical_times(model)
        t0, t1 = model.t0, model.t1
        self.span = span = t1 - t0
        cuts = {t0 + span * sympy.Rational(k, pieces) for k in range(1, pieces)}
        self.obs_at = {o.time: i for i, o in enumerate(model.observations)}
        self.times = sorted(cuts | set(self.obs_at) | {t1})
        self.splits = 0

    def zs(self, tm) -> dict:
        return dict(zip(self.model.states, self.zat[tm]))

    def run(self) -> dict:
        model, d, ev = self.model, self.d, self.ev
        nz, np_ = model.nz, model.np
        t0, t1 = model.t0, model.t1
        z0 = self.forward_states()
        zs = self.zs
        self.grad = [mpmath.mpf(0)] * np_
        # λ(t1) from the terminal term, then the observation jump at t1 if any; loss and ∂ℓ/∂θ terms on the way
        self.lam = [mpmath.mpf(0)] * nz
        if model.terminal is not None:
            self.loss += ev(model.terminal, zs(t1), "terminal term", t1)
            self.lam = [ev(g, zs(t1), f"d(terminal)/d{s}", t1) for g, s in zip(d.dldz_terminal, model.states)]
            self.grad = [g + ev(e, zs(t1), f"d(terminal)/d{p}", t1)
                         for g, e, p in zip(self.grad, d.dldp_terminal, model.params)]
        if t1 in self.obs_at:
            self.jump(t1)
        lam, mu = self.sweep()
        z0v = {s: v for s, v in zip(model.states, z0)}
        dz0dp = d.dz0dp
        grad = [self.grad[j] + mu[j] + mpmath.fsum(ev(dz0dp[i, j], {}, f"dz0[{i}]/d{model.params[j]}") * lam[i]
                                                   for i in range(nz) if dz0dp[i, j] != 0)
                for j in range(np_)]
        lam_sub = dict(zip(d.lam, lam))
        grad_t0 = None if d.grad_t0_expr is None else ev(d.grad_t0_expr, {**z0v, **lam_sub}, "dL/dt0", t0)
        gt1 = d.grad_t1_expr
        grad_t1 = None if gt1 is None else ev(gt1, zs(t1), "dL/dt1", t1)
        return {"loss": self.loss, "grad": grad, "grad_z0": list(lam), "grad_t0": grad_t0, "grad_t1": grad_t1,
                "z1": list(self.zat[t1]), "splits": self.splits}

    def sweep(self) -> tuple[list, list]:
        """λ and μ at t0 from λ(t1) = ``self.lam`` (μ(t1) = 0): the backward pieces, with the observation jumps
        going backward through each observation time (one at t0 last)."""
        lam, mu = self.lam, [mpmath.mpf(0)] * self.model.np
        bounds = sorted({self.model.t0, *self.times})  # ascending; pieces run from bounds[k] down to bounds[k-1]
        for k in range(len(bounds) - 1, 0, -1):
            hi, lo = bounds[k], bounds[k - 1]
            lam, mu = self.piece(hi, lo, self.zat[hi], lam, mu, 0)
            if lo in self.obs_at:
                self.lam = lam
                self.jump(lo)
                lam = self.lam
        return lam, mu

    def forward_states(self) -> list:
        """Integrate z (and q' = r) forward, storing z at every cut; set ``zat``, ``loss`` (the running cost
        so far) and the backward step ``budget``; return z0 (exact)."""
        model, work_digits = self.model, self.work_digits
        nz, t0 = model.nz, model.t0
        z0 = [sympy.sympify(e).xreplace(model.param_values) for e in model.z0]
        y0 = z0 + ([0] if model.running is not None else [])
        state_stats: dict = {}
        try:
            out = integrate(self.systems.state, y0, t0, self.times, params=model.theta, digits=work_digits,
                            stats=state_stats, progress=self.progress.callback(self.label, work_digits, 0.0, 0.3),
                            critical_times=self.critical)
        except IntegrationError as exc:
            raise _route_error(model, self.label + " (state solve)", exc) from None
        self.zat = {tm: [to_mpf(v) for v in row[:nz]] for tm, row in zip(self.times, out)}
        self.zat[t0] = [mpmath.mpf(sympy.Float(sympy.N(v, work_digits + 10), work_digits + 10)._mpf_) for v in z0]
        self.loss = to_mpf(out[-1][nz]) if model.running is not None else mpmath.mpf(0)
        # a backward piece may take a few times the forward solve's steps (λ, μ ride along); more means z is
        # being back-solved through a contracting region and diverges: split the piece instead of waiting
        self.budget = 4 * state_stats.get("steps", 0) + 1000
        return z0

    def jump(self, tm) -> None:
        """The observation at ``tm``: its loss term, λ += (∂ℓ_i/∂z)ᵀ, and its ∂ℓ_i/∂θ."""
        model, d, ev, zs = self.model, self.d, self.ev, self.zs
        i = self.obs_at[tm]
        what = f"observation term {i}"
        self.loss += ev(model.observations[i].term, zs(tm), what, tm)
        self.lam = [la + ev(g, zs(tm), f"d({what})/d{s}", tm)
                    for la, g, s in zip(self.lam, d.dldz_obs[i], model.states)]
        self.grad = [g + ev(e, zs(tm), f"d({what})/d{p}", tm)
                     for g, e, p in zip(self.grad, d.dldp_obs[i], model.params)]

    def piece(self, hi, lo, zhi, lam, mu, depth):
        """λ, μ at ``lo`` from their values at ``hi`` (z(hi) = ``zhi`` from the forward solve)."""
        model, work_digits, label, span = self.model, self.work_digits, self.label, self.span
        nz, np_, t1 = model.nz, model.np, model.t1
        y = [restart_fraction(v) for v in (*zhi, *lam, *mu)]
        failure = None
        try:
            res = integrate(self.systems.backward, y, hi, [lo], params=model.theta, digits=work_digits,
                            max_steps=self.budget, critical_times=self.critical,
                            progress=self.progress.callback(label, work_digits, 0.3 + 0.7 * float((t1 - hi) / span),
                                                            0.7 * float((hi - lo) / span)))
            row = [to_mpf(v) for v in res[0]]
            # the back-solved z must land on the stored forward z(lo): else back-solving lost digits
            scale = max(1, *(abs(v) for v in row))  # the integrator's accuracy is relative to this
            worst = max(abs(a - b) for a, b in zip(row[:nz], self.zat[lo])) / scale
            if worst <= self.z_tol:
                return row[nz:2 * nz], row[2 * nz:2 * nz + np_]
            failure = IntegrationError(f"back-solving z from t = {float(hi):.6g} to {float(lo):.6g} missed the "
                                       f"forward solution by {mpmath.nstr(worst, 3)} (relative); the system is "
                                       f"too contracting for the adjoint at this precision", time=float(lo))
        except IntegrationError as exc:
            failure = exc
        if depth >= self.max_splits:
            raise _route_error(model, label + " (backward solve)", failure)
        mid = (hi + lo) / 2
        try:  # z at the midpoint: forward from the stored z(lo)
            zm = integrate(self.systems.state, [restart_fraction(v) for v in self.zat[lo]]
                           + ([0] if model.running is not None else []),
                           lo, [mid], params=model.theta, digits=work_digits, critical_times=self.critical)[0][:nz]
        except IntegrationError as exc:
            raise _route_error(model, label + " (state solve)", exc) from None
        self.zat[mid] = [to_mpf(v) for v in zm]
        self.splits += 1
        lam, mu = self.piece(hi, mid, zhi, lam, mu, depth + 1)
        return self.piece(mid, lo, self.zat[mid], lam, mu, depth + 1)
