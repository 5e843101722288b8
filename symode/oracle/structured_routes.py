"""The oracle's two routes for a structured (matrix) model, with O(states + parameters) unknowns.

Both integrate tapes built from the matrix-form derivation (:mod:`symode.oracle.array_tape`: matrix products
are ``matvec`` operations), never the scalar expansion:

* adjoint (:func:`structured_adjoint_route`): the stored-checkpoint continuous adjoint of
  :class:`symode.oracle.routes._Adjoint` (same pieces, jumps, splitting) on the system (z, λ, μ) with
  λ̇ = -(∂f/∂z)ᵀλ - (∂r/∂z)ᵀ and μ̇ = -(∂f/∂θ)ᵀλ - (∂r/∂θ)ᵀ in matrix form: nz + nz + nθ unknowns, where forward
  sensitivities in every parameter would need nz·nθ.  It gives every reported value.
* forward in a few directions (:func:`structured_forward_route`): z with the tangents s_k = (dz/d(θ, z0))(v_k, w_k)
  for ``len(directions)`` random directions (v_k in θ, w_k in z0) and one more, s(t0) = -f(z0, t0), whose
  directional derivative is dL/dt0 + r(z0, t0).  It gives the loss, z(t1), dL/dt0, dL/dt1 and the directional
  derivatives D_k L = dL/dθ·v_k + dL/dz0·w_k, which the engine compares with the adjoint's dot products: every
  gradient component enters each comparison with a random weight, so an error in one of them shows.
"""
from __future__ import annotations

import weakref
from fractions import Fraction

import mpmath
import sympy

from ..arrays import node as N
from ..errors import IntegrationError
from ..model import Model
from ..symbolic.derive import derive
from .array_eval import ArrayEvaluator
from .array_tape import ArrayTaylorSystem
from .routes import _Adjoint, _mpf_to_fraction, _route_error
from .taylor import integrate, to_mpf

__all__ = ["structured_adjoint_route", "structured_forward_route", "random_directions"]

_SYSTEMS: "weakref.WeakKeyDictionary[Model, dict]" = weakref.WeakKeyDictionary()


def _col(values) -> list:
    return [x for v in values for x in v]


class _Systems:
    """The tapes of one structured model: ``state`` (z[, q]), ``backward`` (z, λ, μ), and per number of
    directions ``forward(m)`` (z, s_0 ... s_m[, q, Q_0 ... Q_m])."""

    def __init__(self, model: Model):
        self.model = model
        md = self.md = derive(model).matrix
        t = model.t
        z = list(model.states)
        params = list(model.params)
        groups = list(model.structure.groups)
        running = model.structure.running
        q = [sympy.Dummy("q", real=True)] if running is not None else []
        self.state = ArrayTaylorSystem(z + q, [*md.f, *([running] if q else [])], t, params, groups,
                                       quadratures=len(q))
        lam = _col(g.elements for g in md.lam)
        mu = [sympy.Dummy(f"mu_{p}", real=True) for p in model.param_names]
        back = [*md.f, *md.adjoint_rhs, *[N.neg(r) for r in md.param_rate]]
        self.backward = ArrayTaylorSystem(z + lam + mu, back, t, params, groups + list(md.lam),
                                          quadratures=len(md.param_rate))
        self._forward: dict = {}

    def forward(self, m: int):
        """(tape, direction groups [(s, v)] * (m + 1)); the last direction has no parameter part (the t0 one)."""
        if m not in self._forward:
            model, md = self.model, self.md
            states, values, extra_params, groups = list(model.states), list(md.f), [], list(model.structure.groups)
            dirs, r_rates = [], []
            for k in range(m + 1):
                s_g, v_g = md.direction_groups(f"{k}_")
                if k == m:
                    v_g = None
                rates, r_rate, _ = md.tangent(s_g, v_g)
                dirs.append((s_g, v_g))
                states += _col(g.elements for g in s_g)
                values += list(rates)
                groups += list(s_g) + (list(v_g) if v_g is not None else [])
                extra_params += _col(g.elements for g in v_g) if v_g is not None else []
                r_rates.append(r_rate)
            if model.structure.running is not None:
                states += [sympy.Dummy("q", real=True)] + [sympy.Dummy(f"Q{k}", real=True) for k in range(m + 1)]
                values += [model.structure.running] + r_rates
            tape = ArrayTaylorSystem(states, values, model.t, list(model.params) + extra_params, groups,
                                     quadratures=m + 2 if model.structure.running is not None else 0)
            self._forward[m] = (tape, dirs)
        return self._forward[m]


def _systems(model: Model) -> _Systems:
    s = _SYSTEMS.get(model)
    if s is None:
        s = _SYSTEMS[model] = _Systems(model)
    return s


def random_directions(model: Model, count: int, seed: int = 12) -> list[tuple[list, list]]:
    """``count`` fixed pseudo-random directions (v in θ, w in z0) with exact entries in [-1, 1] (3 decimals), from
    a small LCG: the same directions on every run (results are reproducible)."""
    x = seed
    out = []
    for _ in range(count):
        vals = []
        for _ in range(model.np + model.nz):
            x = (1103515245 * x + 12345) % 2**31
            vals.append(sympy.Rational((x % 2001) - 1000, 1000))
        out.append((vals[:model.np], vals[model.np:]))
    return out


class _Terms:
    """The loss terms and their gradients at a point, from the matrix-form derivation, evaluated in mpmath."""

    def __init__(self, model: Model, digits: int):
        self.model, self.digits = model, digits
        self.md = derive(model).matrix
        self.pvals = {g: [model.param_values[e] for e in g.elements] for g in self.md.param_groups}

    def evaluator(self, z, extra=None) -> ArrayEvaluator:
        groups = dict(self.pvals)
        k = 0
        for g in self.md.state_groups:
            groups[g] = list(z[k:k + g.size])
            k += g.size
        groups.update(extra or {})
        return ArrayEvaluator(groups, {self.model.t: self.model.t0}, self.digits)

    def at(self, term, grads, z) -> tuple:
        """(ℓ, ∂ℓ/∂z flat, ∂ℓ/∂θ flat) of one loss term at the state values z."""
        ev = self.evaluator(z)
        return ev(term)[0], _col(ev(v) for v in grads[0]), _col(ev(v) for v in grads[1])


def structured_adjoint_route(model: Model, work_digits: int, progress, label: str, *, pieces: int,
                             max_splits: int, z_tol) -> dict:
    """Route (b) on the matrix-form systems; same keys as :func:`symode.oracle.routes.adjoint_route`."""
    return _StructuredAdjoint(model, work_digits, progress, label, pieces, max_splits, z_tol).run()


class _StructuredAdjoint(_Adjoint):
    """:class:`symode.oracle.routes._Adjoint` with the matrix-form tapes and loss terms."""

    def __init__(self, model: Model, work_digits: int, progress, label: str, pieces: int, max_splits: int, z_tol):
        # the base class's attributes, without its scalar derivation and scalar tapes
        self.model, self.work_digits, self.progress, self.label = model, work_digits, progress, label
        self.max_splits, self.z_tol = max_splits, z_tol
        t0, t1 = model.t0, model.t1
        self.span = span = t1 - t0
        cuts = {t0 + span * sympy.Rational(k, pieces) for k in range(1, pieces)}
        self.obs_at = {tm: i for i, tm in enumerate(model.observation_times)}
        self.times = sorted(cuts | set(self.obs_at) | {t1})
        self.splits = 0
        self.systems = _systems(model)
        self.terms = _Terms(model, work_digits)

    def run(self) -> dict:
        model, md, terms = self.model, self.terms.md, self.terms
        nz, np_ = model.nz, model.np
        t0, t1 = model.t0, model.t1
        z0 = self.forward_states()
        self.grad = [mpmath.mpf(0)] * np_
        self.lam = [mpmath.mpf(0)] * nz
        if model.structure.terminal is not None:
            val, dz, dp = terms.at(model.structure.terminal, md.terminal_grads, self.zat[t1])
            self.loss += val
            self.lam = dz
            self.grad = [g + d for g, d in zip(self.grad, dp)]
        if t1 in self.obs_at:
            self.jump(t1)
        lam, mu = self.sweep()
        z0v = [mpmath.mpf(sympy.Float(sympy.N(v, self.work_digits + 10), self.work_digits + 10)._mpf_) for v in z0]
        lam_vals = {}
        k = 0
        for g in md.lam:
            lam_vals[g] = lam[k:k + g.size]
            k += g.size
        ev0 = terms.evaluator(z0v, lam_vals)
        chain = _col(ev0(v) for v in md.z0_chain)
        grad = [g + m + c for g, m, c in zip(self.grad, mu, chain)]
        grad_t0 = None if md.grad_t0 is None else ev0(md.grad_t0)[0]
        grad_t1 = None if md.grad_t1 is None else terms.evaluator(self.zat[t1])(md.grad_t1)[0]
        return {"loss": self.loss, "grad": grad, "grad_z0": list(lam), "grad_t0": grad_t0, "grad_t1": grad_t1,
                "z1": list(self.zat[t1]), "splits": self.splits}

    def jump(self, tm) -> None:
        i = self.obs_at[tm]
        md = self.terms.md
        val, dz, dp = self.terms.at(self.model.structure.observations[i][1], md.observation_grads[i], self.zat[tm])
        self.loss += val
        self.lam = [a + b for a, b in zip(self.lam, dz)]
        self.grad = [a + b for a, b in zip(self.grad, dp)]


def structured_forward_route(model: Model, work_digits: int, progress, directions, label: str = "forward") -> dict:
    """Route (a) in the given directions (see the module docstring): loss, z1, grad_t0, grad_t1 and
    "directional" (one D_k L per direction)."""
    systems = _systems(model)
    md = systems.md
    m = len(directions)
    tape, dirs = systems.forward(m)
    terms = _Terms(model, work_digits)
    pv = model.param_values
    z0 = [sympy.sympify(e).xreplace(pv) for e in model.z0]
    z0m = [mpmath.mpf(sympy.Float(sympy.N(v, work_digits + 10), work_digits + 10)._mpf_) for v in z0]
    ev0 = terms.evaluator(z0m)
    y0 = list(z0)
    dir_params = []
    for (s_g, v_g), (v, w) in zip(dirs, [*directions, (None, None)]):
        if v_g is None:  # the t0 direction: s(t0) = -f(z0, t0)
            y0 += [_mpf_to_fraction(-x) for x in _col(ev0(f) for f in md.f)]
            continue
        vg = {}
        k = 0
        for pg, g in zip(md.param_groups, v_g):
            vg[g] = v[k:k + g.size]
            k += g.size
        _, _, z0_dir = md.tangent(s_g, v_g)
        ev_v = terms.evaluator(z0m, vg)
        y0 += [_mpf_to_fraction(a) + Fraction(int(b.p), int(b.q)) for a, b in zip(_col(ev_v(x) for x in z0_dir), w)]
        dir_params += list(v)
    running = model.structure.running is not None
    if running:
        y0 += [0] * (m + 2)
    times = sorted(set(model.observation_times) | {model.t1})
    try:
        out = integrate(tape, y0, model.t0, times, params=[*model.theta, *dir_params], digits=work_digits,
                        progress=progress.callback(label, work_digits))
    except IntegrationError as exc:
        raise _route_error(model, label, exc) from None
    at = {tm: [to_mpf(x) for x in row] for tm, row in zip(times, out)}
    nz = model.nz
    loss = mpmath.mpf(0)
    D = [mpmath.mpf(0)] * (m + 1)
    st = model.structure

    def add(term, grads, tm):
        nonlocal loss
        row = at[tm]
        val, dz, dp = terms.at(term, grads, row[:nz])
        loss += val
        for k in range(m + 1):
            s = row[nz * (k + 1):nz * (k + 2)]
            D[k] += mpmath.fsum(a * b for a, b in zip(dz, s))
            if k < m:
                D[k] += mpmath.fsum(a * b for a, b in zip(dp, directions[k][0]))

    for i, (tm, v) in enumerate(st.observations):
        add(v, md.observation_grads[i], tm)
    if st.terminal is not None:
        add(st.terminal, md.terminal_grads, model.t1)
    row1 = at[model.t1]
    if running:
        base = nz * (m + 2)
        loss += row1[base]
        D = [d + q for d, q in zip(D, row1[base + 1:base + 2 + m])]
    r0 = ev0(st.running)[0] if running else 0
    z1 = row1[:nz]
    grad_t0 = None if md.grad_t0 is None else D[m] - r0
    grad_t1 = None if md.grad_t1 is None else terms.evaluator(z1)(md.grad_t1)[0]
    return {"loss": loss, "z1": list(z1), "grad_t0": grad_t0, "grad_t1": grad_t1, "directional": D[:m]}

