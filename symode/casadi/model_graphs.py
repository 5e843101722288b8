"""A :class:`~symode.model.Model` as CasADi Functions: the pieces every gradient route is assembled from.

:class:`ModelGraphs` translates the model's SymPy expressions (through :func:`symode.casadi.translate.to_casadi`,
the explicit operation table) into SX Functions, once per model (memoised by fingerprint):

    f(z, t, p)          -> dz/dt = f(z, t, θ)
    faug(y, t, p)       -> (f, r) for y = (z, q): the state carrying the running cost as a quadrature q' = r
    zdd(z, t, p)        -> d²z/dt² = ∂f/∂z · f + ∂f/∂t (for the quintic Hermite interpolant of the stored
                           trajectory)
    jac(z, t, p)        -> ∂f/∂z (stiffness diagnosis)
    z0(p), dz0dp(p)     -> z0(θ), ∂z0/∂θ
    terminal(z, p)      -> (ℓ, (∂ℓ/∂z)ᵀ, (∂ℓ/∂θ)ᵀ)          zeros without a terminal term
    obs[i](z, p)        -> (ℓ_i, (∂ℓ_i/∂z)ᵀ, (∂ℓ_i/∂θ)ᵀ)
    back(y, t, p)       -> the augmented backward system in y = (z, λ, μ) (``derive(model).backward_system``):
                           (f, -(∂f/∂z)ᵀλ - (∂r/∂z)ᵀ, -(∂f/∂θ)ᵀλ - (∂r/∂θ)ᵀ)
    adj(w, z, t, p)     -> the same adjoint right-hand side in w = (λ, μ) with z an input (stored trajectory)
    adj_hermite(w, t, P)-> adj with z(t) from the quintic Hermite interpolant of one step (:func:`quintic_hermite`),
                           P = (p, z_a, z_b, f_a, f_b, a_a, a_b, t_a, h)
    gt0(lam, z, p)      -> dL/dt0 = -λᵀ f(z, t0) - r(z, t0)   (``grad_t0_expr``; evaluate at z0, λ(t0))
    gt1(z, p)           -> dL/dt1 = ∂ℓ/∂z f(z, t1) + r(z, t1) (``grad_t1_expr``; None where undefined)

All derivative expressions come from the SymPy derivation (:func:`symode.symbolic.derive.derive`), so the
continuous-adjoint routes use exactly the equations symode documents; the discrete routes differentiate the
solver graph instead.

Names: CasADi writes Function, input and output names into C without escaping (docs/design.md), so every name
used here is generated: ``"sm" + the first 16 hex digits of the model fingerprint + "_" + a fixed word``;
inputs and outputs are fixed words.  No user state or parameter name ever reaches CasADi.
"""
from __future__ import annotations

from fractions import Fraction
from functools import cached_property

import casadi
import sympy

from symode.casadi.translate import nearest_double, to_casadi
from symode.lru import LRUCache
from symode.model import Model
from symode.symbolic.derive import derive

__all__ = ["ModelGraphs", "model_graphs", "quintic_hermite", "segments", "exact_fraction"]


def quintic_hermite(theta, h, za, zb, fa, fb, aa, ab):
    """The quintic Hermite interpolant on one step [t_a, t_a + h] at θ = (t - t_a)/h in [0, 1].

    It matches z, z' = f and z'' = a at both ends:

        z(θ) = H0 za + H1 h fa + H2 h² aa + H3 h² ab + H4 h fb + H5 zb
        H0 = 1 - 10θ³ + 15θ⁴ - 6θ⁵     H5 = 10θ³ - 15θ⁴ + 6θ⁵
        H1 = θ - 6θ³ + 8θ⁴ - 3θ⁵       H4 = -4θ³ + 7θ⁴ - 3θ⁵
        H2 = (θ² - 3θ³ + 3θ⁴ - θ⁵)/2   H3 = (θ³ - 2θ⁴ + θ⁵)/2

    Interpolation error O(h⁶) for smooth z, so node values of order p <= 5 keep their order.
    """
    t2 = theta * theta
    t3 = t2 * theta
    t4 = t3 * theta
    t5 = t4 * theta
    H0 = 1 - 10 * t3 + 15 * t4 - 6 * t5
    H5 = 10 * t3 - 15 * t4 + 6 * t5
    H1 = theta - 6 * t3 + 8 * t4 - 3 * t5
    H4 = -4 * t3 + 7 * t4 - 3 * t5
    H2 = (t2 - 3 * t3 + 3 * t4 - t5) / 2
    H3 = (t3 - 2 * t4 + t5) / 2
    return H0 * za + H5 * zb + h * (H1 * fa + H4 * fb) + (h * h) * (H2 * aa + H3 * ab)


def exact_fraction(value) -> Fraction:
    """A model time as a Fraction: exact for rationals, the nearest double for other exact reals (e.g. pi)."""
    if isinstance(value, sympy.Rational):
        return Fraction(int(value.p), int(value.q))
    return Fraction(nearest_double(value))


def initial_observation(model: Model) -> int | None:
    """The index of an observation lying exactly at t0 (0), else None."""
    return 0 if model.observation_times and model.observation_times[0] == model.t0 else None


def segments(model: Model) -> list[tuple[Fraction | None, Fraction | None, int | None]]:
    """The solve's segments: [(start, end, observation index or None)], times as exact Fractions.

    t0 -> τ_1 -> ... -> τ_m [-> t1 when τ_m < t1].  ``start`` is None for the first segment (it starts at the
    symbolic t0) and ``end`` is None for a final segment ending at the symbolic t1; observation times are fixed
    absolute times (moving t0 or t1 does not move them).
    """
    out = []
    start = None
    times = [exact_fraction(tm) for tm in model.observation_times]
    first = initial_observation(model)
    if first is not None:
        # an observation exactly at t0 is evaluated on z0 (the routes add it) and the solve starts at that fixed
        # time: the graph does not depend on t0, and dL/dt0 is undefined (one-sided), as for an observation at t1
        start = times[0]
        times = times[1:]
    t1 = exact_fraction(model.t1)
    for i, tau in enumerate(times, start=0 if first is None else 1):
        # an observation exactly at t1 ends the last segment at the constant τ_m: the graph then does not depend
        # on t1 at all, and dL/dt1 is reported as undefined (one-sided), as derive's grad_t1_expr says
        out.append((start, tau, i))
        start = tau
    if not times or times[-1] < t1:
        out.append((start, None, None))
    return out


class ModelGraphs:
    """CasADi SX Functions of one model (see the module docstring for the list and the equations)."""

    def _common(self, model: Model) -> None:
        """What every kind of graphs has: names, sizes, nominal values and the solve's segments."""
        self.model = model
        self.fingerprint = model.fingerprint()
        self.prefix = "sm" + self.fingerprint[:16]
        self.nz, self.np = model.nz, model.np
        self.has_running = model.has_running
        self.naug = model.nz + (1 if self.has_running else 0)
        self.nP = model.np + 6 * model.nz + 2
        self.theta = casadi.DM([nearest_double(v) for v in model.theta]) if model.np else casadi.DM(0, 1)
        self.t0 = nearest_double(model.t0)
        self.t1 = nearest_double(model.t1)
        self.segments = segments(model)
        #: the observation evaluated on z0 itself (one lying at t0), or None
        self.obs0 = initial_observation(model)

    def __init__(self, model: Model):
        self._common(model)
        m = model
        d = derive(model)
        nz, np_ = m.nz, m.np
        z = casadi.SX.sym("z", nz)
        t = casadi.SX.sym("t")
        p = casadi.SX.sym("p", np_)
        lam = casadi.SX.sym("lam", nz)
        mu = casadi.SX.sym("mu", np_)
        base = {s: z[i] for i, s in enumerate(m.states)}
        base.update({s: p[j] for j, s in enumerate(m.params)})
        base[m.t] = t
        adj_map = dict(base)
        adj_map.update({s: lam[i] for i, s in enumerate(d.lam)})
        adj_map.update({s: mu[j] for j, s in enumerate(d.mu)})

        def tr(exprs, mapping=base):
            exprs = [sympy.sympify(e) for e in exprs]
            return casadi.vertcat(*to_casadi(exprs, mapping)) if exprs else casadi.SX(0, 1)

        fx = tr(m.rhs)
        rx = tr([m.running]) if self.has_running else casadi.SX(0, 1)
        self.f = self._fn("f", [z, t, p], [fx], ["z", "t", "p"], ["dz"])
        q = casadi.SX.sym("q", self.naug - nz)
        y = casadi.vertcat(z, q)
        self.faug = self._fn("faug", [y, t, p], [casadi.vertcat(fx, rx)], ["y", "t", "p"], ["dy"])
        J = casadi.jacobian(fx, z)
        self.jac = self._fn("jac", [z, t, p], [J], ["z", "t", "p"], ["J"])
        zdd = casadi.mtimes(J, fx) + casadi.jacobian(fx, t)
        self.zdd = self._fn("zdd", [z, t, p], [zdd], ["z", "t", "p"], ["a"])
        z0x = tr(m.z0)
        self.z0 = self._fn("z0", [p], [z0x], ["p"], ["z0"])
        self.dz0dp = self._fn("dz0dp", [p], [casadi.jacobian(z0x, p)], ["p"], ["J"])

        def loss_fn(word, expr, dz, dp):
            val = tr([expr]) if expr is not None else casadi.SX(1, 1)
            return self._fn(word, [z, p], [val, tr(list(dz)), tr(list(dp))], ["z", "p"], ["l", "dldz", "dldp"])

        self.terminal = loss_fn("term", m.terminal, d.dldz_terminal, d.dldp_terminal)
        self.obs = [loss_fn(f"obs{i}", o.term, d.dldz_obs[i], d.dldp_obs[i])
                    for i, o in enumerate(m.observations)]
        self._sym = (z, t, p, lam, mu, adj_map, tr)
        self.gt0 = None if d.grad_t0_expr is None else self._fn("gt0", [lam, z, p], [tr([d.grad_t0_expr], adj_map)],
                                                                ["lam", "z", "p"], ["g"])
        g1 = d.grad_t1_expr
        self.gt1 = None if g1 is None else self._fn("gt1", [z, p], [tr([g1])], ["z", "p"], ["g"])

    # The adjoint right-hand sides need ∂f/∂θ from SymPy, the costliest derivation (5 s for a 4-state,
    # 292-parameter MLP): built on first use, so the discrete, forward and CVODES routes never pay for it.
    @cached_property
    def back(self) -> casadi.Function:
        z, t, p, lam, mu, adj_map, tr = self._sym
        bs = derive(self.model).backward_system
        return self._fn("back", [casadi.vertcat(z, lam, mu), t, p], [tr(bs.rhs, adj_map)],
                        ["y", "t", "p"], ["dy"])

    @cached_property
    def adj(self) -> casadi.Function:
        z, t, p, lam, mu, adj_map, tr = self._sym
        d = derive(self.model)
        rhs = tr([*d.adjoint_rhs, *d.adjoint_quad_rhs], adj_map)
        return self._fn("adj", [casadi.vertcat(lam, mu), z, t, p], [rhs], ["w", "z", "t", "p"], ["dw"])

    @cached_property
    def adj_hermite(self) -> casadi.Function:
        # the stored-trajectory adjoint: z(t) comes from the quintic Hermite interpolant of one forward step,
        # whose data ride in the step's parameter vector P = (p, za, zb, fa, fb, aa, ab, ta, h)
        z, t, p, lam, mu, adj_map, tr = self._sym
        nz, np_ = self.nz, self.np
        w = casadi.vertcat(lam, mu)
        P = casadi.SX.sym("P", self.nP)
        pp = P[0:np_] if np_ else casadi.SX(0, 1)
        za, zb, fa, fb, aa, ab = (P[np_ + k * nz: np_ + (k + 1) * nz] for k in range(6))
        ta, hh = P[np_ + 6 * nz], P[np_ + 6 * nz + 1]
        zi = quintic_hermite((t - ta) / hh, hh, za, zb, fa, fb, aa, ab)
        return self._fn("adjh", [w, t, P], [self.adj(w, zi, t, pp)], ["w", "t", "p"], ["dw"])

    def _fn(self, word, inputs, outputs, names_in, names_out) -> casadi.Function:
        return casadi.Function(f"{self.prefix}_{word}", inputs, outputs, names_in, names_out)

    def name(self, word: str) -> str:
        """A generated CasADi name for this model: fixed prefix + a word symode chose."""
        return f"{self.prefix}_{word}"


_GRAPHS: "LRUCache[ModelGraphs]" = LRUCache(32)


def model_graphs(model: Model) -> ModelGraphs:
    """The memoised :class:`ModelGraphs` of ``model`` (keyed by its fingerprint; at most 32 kept)."""
    return _GRAPHS.get_or_build(model.fingerprint(), lambda: _build_graphs(model))


def _build_graphs(model: Model) -> ModelGraphs:
    if model.structure is not None:  # arrays: MX graphs with matrix products (symode.casadi.structured_graphs)
        from symode.casadi.structured_graphs import StructuredGraphs
        return StructuredGraphs(model)
    return ModelGraphs(model)
