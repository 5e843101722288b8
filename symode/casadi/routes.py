"""The float64 gradient routes: one interface (``gradient(model, ...) -> GradResult``), the route a parameter.

Every route returns the loss L and dL/dθ (total derivative, z0 = z0(θ) included), dL/dz0 (z0 a free input),
dL/dt0 and dL/dt1 (None where undefined: an observation at t1) with the conventions of
:mod:`symode.symbolic.derive`.  Observation times are fixed absolute times.

Fixed-step routes (options ``scheme``, ``steps``; one shared mechanism, :class:`_FixedStepRoute`)
---------------------------------------------------------------------------------------------
All four build one CasADi MX Function of x = (θ, e, t0, t1), z0 = z0(θ) + e evaluated at e = 0, so that
∂/∂θ is the total derivative and ∂/∂e = dL/dz0.  The forward solve is the same for all four: the state
y = (z, q) with q' = r carrying the running cost, the scheme's step (:func:`symode.casadi.solvers.step_function`)
repeated with ``mapaccum`` over the segments t0 -> τ_1 -> ... -> τ_m [-> t1] (observation times τ_i fixed;
t0, t1 symbolic inputs); the ``steps`` steps are shared among segments by
:func:`symode.casadi.solvers.allocate_steps`, uniform within a segment.  The discrete loss is
L_h = ℓ(z_N) + Σ ℓ_i(z(τ_i)) + q_N.

* ``discrete``  (:class:`DiscreteAdjoint`): reverse-mode AD of L_h through the solver graph
  (discretize-then-optimize; ``casadi.jtimes(L, x, 1, True)``).  dL/dt0 and dL/dt1 are derivatives of the
  graph in its t0/t1 inputs: the exact derivatives of L_h, converging to the continuous ones at the
  scheme's order (the grid moves with t0 and t1).
* ``forward``   (:class:`ForwardSensitivity`): forward-mode AD of the same graph with identity seeds
  (``casadi.jtimes(L, x, I, False)``): the same numbers as ``discrete`` up to rounding.
* ``adjoint``   (:class:`BacksolveAdjoint`): the continuous adjoint (derive(model).backward_system) in
  (z, λ, μ) stepped backward from t1 to t0 with the same scheme and grid (step -h), back-solving z
  (Chen et al. 2018 / torchdiffeq): λ(t1) = (∂ℓ/∂z)ᵀ, at each observation time λ += (∂ℓ_i/∂z)ᵀ(z(τ_i)) and,
  as torchdiffeq does, z is reset to the forward solution there.  Then
      dL/dθ = μ(t0) + (∂z0/∂θ)ᵀ λ(t0) + ∂ℓ/∂θ + Σ ∂ℓ_i/∂θ,  dL/dz0 = λ(t0),
      dL/dt0 = -λ(t0)ᵀ f(z0, t0) - r(z0, t0),  dL/dt1 = ∂ℓ/∂z f(z(t1), t1) + r(z(t1), t1).
  On a strongly contracting system, integrating z backward amplifies its errors (DESIGN.md); the route
  always compares the back-solved z(t0) with z0 and sets ``stats["warning"]`` when they disagree.
* ``adjoint-stored`` (:class:`StoredAdjoint`): the same adjoint in (λ, μ) only; z(t) at every stage time
  comes from the stored forward trajectory through the quintic Hermite interpolant of each step (z, f and
  z'' = ∂f/∂z f + ∂f/∂t at both ends; :func:`symode.casadi.model_graphs.quintic_hermite`).  Its error is
  O(h⁶) plus the O(h^p) of the stored nodes, so the route keeps the scheme's order p for every built-in
  scheme (p <= 5) -- stage values by cubic Hermite would cap it at 4 (dopri5 has stages at c = 1/5, 3/10,
  4/5, 8/9, so reusing forward stage states is not possible either).

Every result is checked, in this order (each raises :class:`~symode.errors.IntegrationError` with the time):

* linear stability along the computed trajectory (explicit schemes and user tableaux; the built-in implicit
  schemes are A-stable and skip it): at every grid node before the first bad one, the eigenvalues λ of ∂f/∂z
  (one vectorised CasADi evaluation, numpy eigenvalues) and the scheme's stability function
  R(w) = 1 + w bᵀ(I - wA)⁻¹𝟙 at w = hλ.  A decaying mode (Re(hλ) < 0) with |R(hλ)| > 1 is amplified where
  the exact solution damps it; when the product of these amplifications passes :data:`AMPLIFY_LIMIT` the
  model is stiff for the step size, and the error names the time the amplification starts, h·λ, |R(hλ)|, the
  step count that would put h·λ inside the stability region, and the remedies (implicit scheme, more steps,
  cvodes).  Growing modes (Re λ > 0) are the model's own behaviour and are not flagged.
* a trajectory that leaves the float64 range (non-finite or |z| > 1e100): the first such grid time.  When
  NaN appears after moderate values (|z| <= :data:`DOMAIN_MODERATE`, no inf) in a model that uses sqrt, log,
  real powers or division, the solution left the domain of those functions, and the message says so;
  otherwise it is a blow-up (shorten [t0, t1] for a finite-time singularity).
* a non-finite gradient (naming the first non-finite time of the backward solve where there is one).

With implicit schemes a Newton failure of the stage equations (CasADi's fast_newton raises and prints the failing inputs) becomes
an IntegrationError naming the step's start time, the printout captured.  ``stats["backsolve_z0_error"]``
(back-solve route) is the relative discrepancy |z_back(t0) - z0| / (1 + |z0|), and ``stats["warning"]``
appears above :data:`BACKSOLVE_WARN_RTOL`.  Output capture redirects the process's file descriptors 1 and 2
for the duration of a call: output of other threads in that window is captured too.

``cvodes`` (:class:`CvodesAdjoint`)
--------------------------------
CVODES (Adams-Moulton with Newton iteration and dense linear algebra by default; abstol = reltol = 1e-12;
all constructor arguments of :class:`CvodesAdjoint`) in process through
``casadi.integrator``, outputs at the observation times and t1, the running cost as a quadrature.  One
forward call gives z(τ_i) and the loss; a second call with ``nadj=1`` and the seeds (∂ℓ_i/∂z)ᵀ (plus
(∂ℓ/∂z)ᵀ at t1, 1 for the quadrature) gives CVODES's adjoint sensitivities λ(t0) = adj_x0 and
μ(t0) = adj_p; the assembly is the formula above.  Solver statistics go to ``stats``; CVODES failure flags
become plain IntegrationError messages, with the solver's C-level output captured (file descriptors 1 and
2 redirected around the call) and quoted in the error rather than printed; a failure at the first
right-hand-side call is placed at the solve's start time (t0 forward, t1 backward), and a non-finite loss or
∂ℓ/∂z at the solution is reported before the adjoint solve.

Why Adams by default (measured, CasADi 3.8.2): at rtol = atol = 1e-12 on the logistic model, BDF's global
error in z(t1) was 7e-11 in 283 steps, Adams' 8e-12 in 86 steps; and on the stiff dz/dt = -1000 (z - cos t)
the BDF *backward* (adjoint) problem stopped with CV_TOO_MUCH_WORK near t1 while Adams (with Newton
iteration, which CasADi uses for both) finished in about 500 forward + 400 backward steps.  ``CvodesAdjoint(multistep="bdf")``
selects BDF.  The adjoint call interpolates the checkpointed forward solution with CVODES's variable-degree
"polynomial" interpolation: the default cubic Hermite limited the gradients to ~3e-7 relative on the
oscillator (Adams takes long steps); with it every closed-form built-in model agrees to < 1e-9.

Graphs are built once per (model fingerprint, route, scheme, steps) and reused (:func:`_plan`).
"""
from __future__ import annotations

import contextlib
import ctypes
import hashlib
import io
import math
import os
import re
import sys
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from fractions import Fraction

import casadi
import numpy as np
import sympy

from symode.casadi.model_graphs import ModelGraphs, exact_fraction, model_graphs
from symode.casadi.schemes import SCHEMES, Tableau, get_scheme
from symode.casadi.solvers import NEWTON_DEFAULTS, allocate_steps, step_function
from symode.casadi.translate import nearest_double
from symode.errors import IntegrationError, SpecError
from symode.model import Model
from symode.result import GradResult

__all__ = ["DiscreteAdjoint", "ForwardSensitivity", "BacksolveAdjoint", "StoredAdjoint", "CvodesAdjoint",
           "batch_gradient", "ROUTES", "BLOWUP", "BACKSOLVE_WARN_RTOL"]

#: A state beyond this magnitude counts as blown up (no sensible model state is this large; overflow to inf
#: follows within a few steps anyway, and the threshold lets the error name the time before that).
BLOWUP = 1e100
#: The back-solve route warns when the back-solved z(t0) differs from the stored z0 by more than this,
#: relative to 1 + |z0|.  The discrepancy is forward plus backward truncation error on a benign model (rk4,
#: 100 steps: at most 8e-7 on the built-in models, spiral the largest; 2e-4 for spiral at 25 steps) and
#: amplified error on a contracting one (O(1) and beyond: 4e5 for dz/dt = -50 (z - 1) on [0, 1]).  The
#: measured discrepancy is always reported as ``stats["backsolve_z0_error"]``.
BACKSOLVE_WARN_RTOL = 1e-3
DEFAULT_SCHEME = "rk4"
DEFAULT_STEPS = 100
_IMPLICIT_ADVICE = ("use an implicit scheme (--scheme backward_euler, implicit_midpoint or gauss2) "
                    "or the adaptive CVODES route (--method cvodes)")


# -----------------------------------------------------------------------------------------------
# the plan: one built graph per (model, route, scheme, steps)

@dataclass
class _Plan:
    graphs: ModelGraphs
    route: str
    tableau: Tableau
    steps: int
    #: G(x) -> (L, g, Z, T, B, TB, zb0): loss, gradient (θ, z0, t0, t1), forward trajectory (naug x N+1) at
    #: node times T, backward trajectory B at times TB (adjoint routes; empty otherwise), back-solved z(t0)
    G: casadi.Function
    #: G restricted to (L, g, max |z| on the grid): what batches map over
    small: casadi.Function
    #: (n, threads) -> small.map(n, "thread", threads), built on first use
    maps: dict = field(default_factory=dict)
    #: K -> graphs.jac.map(K): ∂f/∂z at K points at once (the stability check), built on first use
    jmaps: dict = field(default_factory=dict)
    #: x -> the node times T alone (cheap: no solve), for batches
    grid: casadi.Function | None = None
    #: the scheme's stability polynomial (explicit schemes; :func:`_stability_polynomial`), set on first use
    rpoly: np.ndarray | None = None

    @property
    def nx(self) -> int:
        return self.graphs.np + self.graphs.nz + 2


_BUILD_LOCK = threading.Lock()  # CasADi graph construction is not thread-safe
_PLANS: "OrderedDict[tuple, _Plan]" = OrderedDict()
_MAX_PLANS = 64
_CODES = {"discrete": "da", "forward": "fs", "adjoint": "ba", "adjoint-stored": "sa"}


#: Most fixed steps of one route: the graph stores every node (the stored-trajectory adjoint needs them), and
#: beyond this a float64 route is dominated by rounding anyway; use a higher-order scheme instead.
MAX_STEPS = 1_000_000


def _check_steps(steps) -> int:
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= MAX_STEPS:
        raise SpecError(f"steps must be an integer from 1 to {MAX_STEPS}, got {steps!r}")
    return steps


def _plan(model: Model, route: str, scheme, steps: int) -> _Plan:
    tab = get_scheme(scheme)
    steps = _check_steps(steps)
    key = (model.fingerprint(), route, tab, steps)
    with _BUILD_LOCK:
        plan = _PLANS.get(key)
        if plan is not None:
            _PLANS.move_to_end(key)
            return plan
        plan = _build(model_graphs(model), route, tab, steps)
        _PLANS[key] = plan
        while len(_PLANS) > _MAX_PLANS:
            _PLANS.popitem(last=False)
        return plan


def _rows(v, a: int, b: int):
    """Rows a..b-1 of a column as a column (an empty range is 0 x 1: CasADi's empty slice is 1 x 0)."""
    return v[a:b] if b > a else casadi.MX(0, 1)


def _build(g: ModelGraphs, route: str, tab: Tableau, steps: int) -> _Plan:
    nz, np_ = g.nz, g.np
    # generated and deterministic (no process-history counter): a fixed code per route + a hash of the
    # discretisation; g.name() adds the model fingerprint
    tag = f"{_CODES[route]}{hashlib.sha256(repr((tab, steps)).encode()).hexdigest()[:8]}"
    t0n, t1n = exact_fraction(g.model.t0), exact_fraction(g.model.t1)
    ends = [Fraction(1) if end is None else (end - t0n) / (t1n - t0n) for _, end, _ in g.segments]
    counts = allocate_steps(ends, steps)

    x = casadi.MX.sym("x", np_ + nz + 2)
    p, e = _rows(x, 0, np_), x[np_:np_ + nz]
    t0, t1 = x[np_ + nz], x[np_ + nz + 1]
    z0 = g.z0(p) + e
    y = casadi.vertcat(z0, casadi.MX.zeros(g.naug - nz, 1))

    # ---- forward solve, segment by segment
    fstep = step_function(g.faug, tab, g.naug, np_, name=g.name(tag + "_fstep"))
    accum: dict[int, casadi.Function] = {}
    seg = []  # per segment: (node times 1 x n+1, nodes naug x n+1, h, obs index)
    for (start, end, obs), n in zip(g.segments, counts):
        a = t0 if start is None else casadi.MX(nearest_double(start))
        b = t1 if end is None else casadi.MX(nearest_double(end))
        sig = casadi.DM([[nearest_double(Fraction(j, n)) for j in range(n)]])
        starts = a + (b - a) * sig
        h = (b - a) / n
        if n not in accum:
            accum[n] = fstep.mapaccum(n)
        Y = accum[n](y, starts, h, p)
        seg.append((casadi.horzcat(starts, b), casadi.horzcat(y, Y), h, obs))
        y = Y[:, n - 1]
    z_end = y[0:nz]
    L = g.terminal(z_end, p)[0]
    if g.has_running:
        L = L + y[nz]
    for T, Z, h, obs in seg:
        if obs is not None:
            L = L + g.obs[obs](Z[0:nz, -1], p)[0]
    Zall = casadi.horzcat(seg[0][1][:, 0], *[Z[:, 1:] for _, Z, _, _ in seg])
    Tall = casadi.horzcat(seg[0][0][:, 0], *[T[:, 1:] for T, _, _, _ in seg])
    empty = casadi.MX(0, 1)
    B, TB, zb0 = empty, empty, z0

    if route in ("discrete", "forward"):
        if route == "discrete":
            grad = casadi.jtimes(L, x, casadi.MX(1), True)  # reverse mode: (∂L/∂x)ᵀ · 1
        else:
            grad = casadi.jtimes(L, x, casadi.DM.eye(x.numel()), False).T  # forward mode, identity seeds
    else:
        grad, B, TB, zb0 = _adjoint_graph(g, tab, tag, route, seg, z_end, z0, p)

    G = casadi.Function(g.name(tag + "_G"), [x], [L, grad, Zall, Tall, B, TB, zb0],
                        ["x"], ["L", "g", "Z", "T", "B", "TB", "zb0"])
    xs = casadi.MX.sym("x", x.numel())
    out = G(xs)
    # for batches: the loss, the gradient, the largest |state| on the grid (blow-up check) and the states at the
    # steps' start nodes (the stability check, :func:`_decay_amplification`)
    small = casadi.Function(g.name(tag + "_S"), [xs],
                            [out[0], out[1], casadi.mmax(casadi.fabs(out[2])), out[2][0:nz, 0:steps]],
                            ["x"], ["L", "g", "zmax", "Z"])
    grid = casadi.Function(g.name(tag + "_T"), [x], [Tall], ["x"], ["T"])
    return _Plan(g, route, tab, steps, G, small, grid=grid)


def _adjoint_graph(g: ModelGraphs, tab: Tableau, tag: str, route: str, seg, z_end, z0, p):
    """The continuous adjoint backward from t1 to t0 (back-solved or stored z); returns (grad, B, TB, zb0)."""
    nz, np_ = g.nz, g.np
    _, lam_T, dp_T = g.terminal(z_end, p)
    dtheta = dp_T
    backsolve = route == "adjoint"
    if backsolve:
        bstep = step_function(g.back, tab, 2 * nz + np_, np_, name=g.name(tag + "_bstep"))
        w = casadi.vertcat(z_end, lam_T, casadi.MX.zeros(np_, 1))
    else:
        bstep = step_function(g.adj_hermite, tab, nz + np_, g.nP, name=g.name(tag + "_astep"))
        w = casadi.vertcat(lam_T, casadi.MX.zeros(np_, 1))
    off = nz if backsolve else 0  # where λ starts in w
    accum: dict[int, casadi.Function] = {}
    Bs, TBs = [], []
    for T, Z, h, obs in reversed(seg):
        n = T.numel() - 1
        zk = Z[0:nz, :]
        if obs is not None:
            _, dz_i, dp_i = g.obs[obs](zk[:, n], p)
            dtheta = dtheta + dp_i
            lam = w[off:off + nz] + dz_i
            if backsolve:  # torchdiffeq resets the back-solved state to the forward one at output times
                w = casadi.vertcat(zk[:, n], lam, _rows(w, 2 * nz, 2 * nz + np_))
            else:
                w = casadi.vertcat(lam, _rows(w, nz, nz + np_))
        rev = list(range(n - 1, -1, -1))  # steps j = n-1 .. 0, each from T[j+1] back to T[j]
        t_from = T[:, [j + 1 for j in rev]]
        if backsolve:
            P = p
        else:
            F = g.f.map(n + 1)(zk, T, p)
            A = g.zdd.map(n + 1)(zk, T, p)
            left, right = rev, [j + 1 for j in rev]
            P = casadi.vertcat(casadi.repmat(p, 1, n), zk[:, left], zk[:, right], F[:, left], F[:, right],
                               A[:, left], A[:, right], T[:, left], casadi.repmat(h, 1, n))
        if n not in accum:
            accum[n] = bstep.mapaccum(n)
        W = accum[n](w, t_from, -h, P)
        Bs.append(W)
        TBs.append(T[:, rev])
        w = W[:, n - 1]
    lam0 = w[off:off + nz]
    mu0 = _rows(w, off + nz, off + nz + np_)
    dtheta = dtheta + mu0 + casadi.mtimes(g.dz0dp(p).T, lam0)
    dt0 = g.gt0(lam0, z0, p)
    dt1 = g.gt1(z_end, p) if g.gt1 is not None else casadi.MX(0)
    grad = casadi.vertcat(dtheta, lam0, dt0, dt1)
    zb0 = w[0:nz] if backsolve else z0
    return grad, casadi.horzcat(*Bs), casadi.horzcat(*TBs), zb0


# -----------------------------------------------------------------------------------------------
# checks

def _stability_polynomial(tab: Tableau) -> np.ndarray:
    """Ascending coefficients of an explicit scheme's stability function, a polynomial of degree <= s:

        R(w) = 1 + w bᵀ(I - wA)⁻¹𝟙 = 1 + Σ_{k=0}^{s-1} (bᵀA^k𝟙) w^{k+1}

    (A strictly lower triangular is nilpotent, so the Neumann series of (I - wA)⁻¹ ends after s terms).
    """
    if tab.implicit:
        raise ValueError(f"{tab.name} is implicit: its stability function is rational, not a polynomial")
    A, b, _ = tab.as_floats()
    A, b = np.array(A, dtype=float), np.array(b, dtype=float)
    coef, v = [1.0], np.ones(len(b))
    for _ in range(len(b)):
        coef.append(float(b @ v))
        v = A @ v
    return np.array(coef)


def _stability(tab: Tableau, w) -> np.ndarray:
    """R(w) = 1 + w bᵀ (I - wA)⁻¹ 𝟙, the scheme's stability function (one step of y' = λy multiplies y by
    R(hλ), w = hλ), elementwise for an array of complex w.  Explicit schemes: the polynomial
    (:func:`_stability_polynomial`); implicit ones: one s x s solve per w (inf where I - wA is singular)."""
    w = np.asarray(w, dtype=complex)
    with np.errstate(over="ignore", invalid="ignore"):
        if not tab.implicit:
            return np.polynomial.polynomial.polyval(w, _stability_polynomial(tab))
        A, b, _ = tab.as_floats()
        A, b = np.array(A, dtype=complex), np.array(b, dtype=complex)
        s, flat = len(b), w.reshape(-1)
        M = np.eye(s, dtype=complex)[None] - flat[:, None, None] * A[None]
        out = np.full(flat.shape, complex(math.inf))
        ok = np.abs(np.linalg.det(M)) > 1e-300
        if ok.any():
            k = np.linalg.solve(M[ok], np.ones((int(ok.sum()), s, 1), dtype=complex))[..., 0]
            out[ok] = 1 + flat[ok] * (k @ b)
        return out.reshape(w.shape)


#: The built-in implicit schemes are A-stable (|R(w)| <= 1 for every Re w <= 0: R is 1/(1 - w) for
#: backward Euler, (1 + w/2)/(1 - w/2) for the implicit midpoint rule and the (2,2) Padé approximant of e^w
#: for gauss2), so no decaying mode can be amplified by them and the check below is skipped for them.
A_STABLE = frozenset({"backward_euler", "implicit_midpoint", "gauss2"})
#: A decaying mode (Re(hλ) < 0) that the scheme has multiplied by more than this factor in total is no longer
#: approximated at all: the exact solution shrinks it, so the numerical mode then differs from the exact one
#: by more than the mode's own initial size.  The factor is the product over the steps so far of the largest
#: |R(h_j λ)| > 1 among the decaying eigenvalues λ of ∂f/∂z at the step's start (a bound on the spurious
#: growth).  A product, not a per-step slack: forward Euler amplifies lightly damped oscillatory modes at
#: every step size (|1 + iy| > 1), by a factor tending to 1 as h -> 0 (pendulum, 50 steps: 1.0012 per step,
#: 1.02 in total, an honest O(h) error); a stiff mode is amplified by orders of magnitude in one step
#: (rk4 at hλ = -10: 291).  Measured on the built-in models (every explicit scheme, 4..100 steps): rk4, rk38
#: and dopri5 never amplify a decaying mode there; the largest totals below the limit are Euler's on the
#: oscillator (1.82 at 4 steps) and the pendulum (1.69 at 8 steps); refused are Euler on the pendulum at 4 and
#: 6 steps (2.77, 2.02: hω ~ 1) and Euler (<= 50 steps) and the explicit midpoint rule (<= 10) on spiral.
AMPLIFY_LIMIT = 2.0


def _decay_amplification(plan: _Plan, Z: np.ndarray, T: np.ndarray, H: np.ndarray, P: np.ndarray):
    """For the steps starting at the columns of Z (states nz x K, times T (K,), step sizes H (K,), parameters
    P (np x K)): the largest |R(hλ)| over the eigenvalues λ of ∂f/∂z(z, t) that decay in the direction of
    integration (Re(hλ) < 0, beyond rounding), 1 where there is none or the Jacobian is not finite; and that
    eigenvalue (nan where none).  One vectorised Jacobian evaluation (a map of ``graphs.jac``, built once per
    column count; P may be np x 1, repeated for every column) and one batched eigenvalue computation."""
    g = plan.graphs
    nz, K = g.nz, Z.shape[1]
    jm = plan.jmaps.get(K)
    if jm is None:
        with _BUILD_LOCK:
            jm = plan.jmaps.setdefault(K, g.jac.map(K))
    J = np.array(jm(Z, T.reshape(1, K), P), dtype=float).reshape(nz, K, nz).transpose(1, 0, 2)
    finite = np.all(np.isfinite(J), axis=(1, 2)) & np.isfinite(H)
    J[~finite] = 0.0
    with np.errstate(over="ignore", invalid="ignore"):  # huge (finite) states just before a blow-up
        lam = np.linalg.eigvals(J)  # (K, nz)
        w = H[:, None] * lam
        # eigenvalues carry an error of a few ε‖J‖: a mode with Re(hλ) within that of 0 is neutral
        noise = 64 * np.finfo(float).eps * np.abs(H) * np.linalg.norm(J, axis=(1, 2))
        decaying = (w.real < -noise[:, None]) & finite[:, None] & np.isfinite(w)
        wd = np.where(decaying, w, 0)
        if plan.tableau.implicit:
            Rw = _stability(plan.tableau, wd)
        else:
            if plan.rpoly is None:
                plan.rpoly = _stability_polynomial(plan.tableau)
            Rw = np.polynomial.polynomial.polyval(wd, plan.rpoly)
        R = np.where(decaying, np.abs(Rw), 0.0)
    R = np.nan_to_num(R, nan=math.inf)
    worst = np.argmax(R, axis=1)
    rows = np.arange(K)
    rho = np.maximum(R[rows, worst], 1.0)
    lam_w = np.where(R[rows, worst] > 1.0, lam[rows, worst], complex(math.nan, math.nan))
    return rho, lam_w


def _stable_fraction(tab: Tableau, w: complex) -> float:
    """The largest s in (0, 1] with |R(s w)| <= 1 found by bisection from s -> 0 (a decaying w: |R(s w)| ≈
    1 + s Re w < 1 for small s, for every consistent scheme)."""
    lo, hi = 0.0, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if abs(complex(_stability(tab, mid * w))) <= 1.0:
            lo = mid
        else:
            hi = mid
    return lo


def _stiffness(plan: _Plan, T: np.ndarray, rho: np.ndarray, lam: np.ndarray, upto: int):
    """(message, time) for the first step before ``upto`` at which the total amplification of decaying modes
    exceeds :data:`AMPLIFY_LIMIT`, or None.  ``rho``/``lam`` from :func:`_decay_amplification`, one entry per
    step (step j from T[j] to T[j+1])."""
    n = min(upto, rho.size)
    if n == 0:
        return None
    with np.errstate(divide="ignore"):
        total = np.cumsum(np.log(rho[:n]))
    over = np.nonzero(total > math.log(AMPLIFY_LIMIT))[0]
    if over.size == 0:
        return None
    j = int(over[0])
    # the run of amplifying steps that ends at j: where it starts (the time named) and its worst step
    start = j
    while start > 0 and rho[start - 1] > 1.0:
        start -= 1
    run = rho[start:j + 1]
    k = start + int(np.argmax(run >= run.max() * (1 - 1e-9)))  # the earliest worst step (rounding aside)
    h = float(T[k + 1] - T[k])
    lam_k, w = complex(lam[k]), complex(h * lam[k])
    R = float(rho[k])
    frac = _stable_fraction(plan.tableau, w)
    need = f"at least about {math.ceil(plan.steps / frac)} steps" if frac > 0 else "many more steps"
    where = (f"at t = {T[k]:.6g}" if k == start == j else
             f"from t = {T[start]:.6g} on (by t = {T[j + 1]:.6g} by a factor > {AMPLIFY_LIMIT:g}); the largest "
             f"amplification is at t = {T[k]:.6g}")
    msg = (f"the model is stiff for this step size: the scheme amplifies a mode that the exact solution damps "
           f"{where}: there ∂f/∂z has the decaying eigenvalue λ = {_fmt_complex(lam_k)}, and h·λ = {_fmt_complex(w)} "
           f"(h = {h:.4g}) lies outside the stability region of {plan.tableau.name} (|R(hλ)| = {R:.3g} > 1): "
           f"each step multiplies this mode by {R:.3g} where the exact solution shrinks it by "
           f"e^(h·Re λ) = {math.exp(w.real):.3g}.  "
           f"The result would be meaningless; use an implicit scheme (--scheme backward_euler, "
           f"implicit_midpoint or gauss2: A-stable, they damp every decaying mode at any step size), "
           f"{need} (--steps), or the adaptive CVODES route (--method cvodes)")
    return msg, float(T[start])


def _fmt_complex(v: complex) -> str:
    return f"{v.real:.4g}" if abs(v.imag) <= 1e-12 * abs(v) else f"{v.real:.4g}{v.imag:+.4g}i"


def _first_bad(M: np.ndarray) -> int | None:
    """Index of the first column that is non-finite or beyond :data:`BLOWUP`, or None."""
    if M.size == 0:
        return None
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(M) | (np.abs(M) > BLOWUP)
    cols = np.nonzero(bad.any(axis=0))[0]
    return int(cols[0]) if cols.size else None


def _where(plan: _Plan, model: Model) -> str:
    return f"method {plan.route!r} on model {model.name!r} ({plan.tableau.name}, {plan.steps} steps)"


#: SymPy function classes whose real domain is not all of ℝ (NaN outside it in float64)
_DOMAIN_FUNCS = {sympy.log: "log", sympy.asin: "asin", sympy.acos: "acos", sympy.acosh: "acosh",
                 sympy.atanh: "atanh", sympy.acoth: "acoth"}


def _restricted_functions(model: Model) -> list[str]:
    """The functions with a restricted real domain that the model's right-hand side and running cost use:
    log (and asin, acos, ...), sqrt (x**(1/2)), real powers (x**p, p not an integer) and division (x**-n)."""
    found: set[str] = set()
    for e in [*model.rhs, *([model.running] if model.running is not None else [])]:
        e = sympy.sympify(e)  # already SymPy expressions (the model's own), not user text
        for fn, label in _DOMAIN_FUNCS.items():
            if e.has(fn):
                found.add(label)
        for pw in e.atoms(sympy.Pow):
            x = pw.exp
            if x == sympy.Rational(1, 2):
                found.add("sqrt")
            elif not (x.is_integer is True):
                found.add("real powers")
            elif x.is_negative is True:
                found.add("division")
    order = ["sqrt", "log", "real powers", "division", "asin", "acos", "acosh", "atanh", "acoth"]
    return [f for f in order if f in found]


#: the largest |z| on the last good grid point for which a NaN that follows counts as leaving the domain
#: (not as overflow: inf - inf or 0 * inf after a blow-up make NaN too, but only from huge values)
DOMAIN_MODERATE = 1e50


def _check(plan: _Plan, model: Model, out: dict, theta) -> None:
    """Raise IntegrationError for an unstable (stiff), blown-up or domain-leaving trajectory, or a non-finite
    result (see the module docstring)."""
    Z, T = out["Z"], out["T"].ravel()
    g = plan.graphs
    k = _first_bad(Z)
    if _needs_stability_check(plan.tableau):
        upto = Z.shape[1] - 1 if k is None else k
        if upto > 0:
            M = T.size - 1
            P = np.asarray(theta, dtype=float).reshape(g.np, 1)  # the map repeats it for every column
            rho, lam = _decay_amplification(plan, Z[:g.nz, :M], T[:M], np.diff(T), P)
            stiff = _stiffness(plan, T, rho, lam, upto)
            if stiff:
                msg, t_stiff = stiff
                raise IntegrationError(f"{_where(plan, model)}: {msg}.", time=t_stiff)
    if k is not None:
        t_bad = float(T[k])
        zc = Z[:g.nz, k]
        prev = Z[:g.nz, k - 1] if k > 0 else None
        last = (f"; the last good value was z = {np.array2string(prev, precision=4)} at t = {T[k - 1]:.6g}"
                if prev is not None else "")
        funcs = _restricted_functions(model)
        col = Z[:, k]
        # NaN without any growth before it: the stages left the domain of sqrt/log/... within the last step
        if (np.any(np.isnan(col)) and not np.any(np.isinf(col)) and prev is not None
                and np.max(np.abs(Z[:, k - 1])) <= DOMAIN_MODERATE and funcs):
            raise IntegrationError(
                f"{_where(plan, model)}: the solution left the domain of the model's functions near "
                f"t = {t_bad:.6g} (e.g. sqrt or log of a negative value; z = "
                f"{np.array2string(prev, precision=4)} at t = {T[k - 1]:.6g}, then NaN in the step to "
                f"t = {t_bad:.6g}); the model uses {', '.join(funcs)}, whose real domain is restricted.  "
                f"If the exact solution leaves the domain there, the model is undefined beyond it: shorten "
                f"[t0, t1] or change the model; if not (a coarse step overshooting), use more steps",
                time=t_bad)
        msg = (f"{_where(plan, model)}: the forward solution left the float64 range (non-finite or "
               f"|z| > {BLOWUP:g}) near t = {t_bad:.6g}{last}.  ")
        if not np.all(np.isfinite(zc)) and prev is None:
            msg += "The initial state or the parameters are not finite; check z0 and the parameter values."
        else:
            msg += ("If the exact solution blows up there (a finite-time singularity), shorten [t0, t1]; "
                    "otherwise try more steps, " + _IMPLICIT_ADVICE + ".")
        raise IntegrationError(msg, time=t_bad)
    values = np.concatenate([np.ravel(out["L"]), np.ravel(out["g"])])
    if not np.all(np.isfinite(values)):
        B, TB = out["B"], out["TB"].ravel()
        kb = _first_bad(B)
        if kb is not None:
            t_bad = float(TB[kb])
            raise IntegrationError(f"{_where(plan, model)}: the backward (adjoint) solve became non-finite near "
                                   f"t = {t_bad:.6g} although the forward solution stayed finite; try more "
                                   f"steps, {_IMPLICIT_ADVICE}", time=t_bad)
        raise IntegrationError(f"{_where(plan, model)}: the loss or gradient is non-finite although the "
                               f"solution stayed finite on [{float(T[0]):.6g}, {float(T[-1]):.6g}] (a "
                               f"derivative of the model is undefined along it, e.g. sqrt or abs at 0)")


def _needs_stability_check(tab: Tableau) -> bool:
    """Every explicit scheme and every implicit one that is not a built-in A-stable scheme (user tableaux)."""
    if tab.implicit and tab.name in A_STABLE:
        return tab != SCHEMES[tab.name]
    return True


# -----------------------------------------------------------------------------------------------
# the routes

def _grid(plan: _Plan) -> np.ndarray:
    """The node times of the plan's grid at the model's own t0, t1 (what every batch member uses)."""
    return np.array(plan.grid(_x(plan.graphs)), dtype=float).ravel()


def _x(g: ModelGraphs, theta=None) -> np.ndarray:
    th = np.asarray(g.theta, dtype=float).ravel() if theta is None else np.asarray(theta, dtype=float).ravel()
    return np.concatenate([th, np.zeros(g.nz), [g.t0, g.t1]])


_NEWTON_T_RE = re.compile(r"Function \S+_(fstep|bstep|astep) \(0x[0-9a-f]+\)\s*\n(?:Input 0 \(z\):[^\n]*\n)?"
                          r"Input 1 \(t\): ([-+0-9.eE]+)")
_SOLVE_WORD = {"fstep": "forward", "bstep": "backward (back-solved adjoint)", "astep": "backward (adjoint)"}
_OUTPUTS = ("L", "g", "Z", "T", "B", "TB", "zb0")


def _evaluate(plan: _Plan, model: Model, xv) -> dict:
    """G at one point as numpy arrays.  Implicit schemes: a Newton failure (CasADi raises and prints the
    failing call's inputs) becomes an IntegrationError naming the step's start time, output captured."""
    if not plan.tableau.implicit:
        res = plan.G(xv)
    else:
        with _captured_output() as box:
            try:
                res, err = plan.G(xv), None
            except RuntimeError as exc:
                res, err = None, exc
        if err is not None:
            m = _NEWTON_T_RE.search(box["text"])
            t_fail = float(m.group(2)) if m else None
            solve = _SOLVE_WORD[m.group(1)] if m else "a"
            near = f" in the step starting at t = {t_fail:.6g}" if m else ""
            raise IntegrationError(
                f"{_where(plan, model)}: the Newton iteration for the implicit stages of the {solve} solve did "
                f"not converge{near} (tolerance {NEWTON_DEFAULTS['abstol']:g}, {NEWTON_DEFAULTS['max_iter']} "
                f"iterations): the solution probably blows up or leaves the model's domain there"
                + ("; the back-solved state is unstable on contracting dynamics: use method 'adjoint-stored' or "
                   "'discrete'" if m and m.group(1) == "bstep" else "; try more steps or method 'cvodes'"),
                time=t_fail) from None
    return {k: np.array(res[i], dtype=float) for i, k in enumerate(_OUTPUTS)}


class _FixedStepRoute:
    """The shared mechanism of the four fixed-step routes; subclasses only set ``name``."""

    name = ""
    options = frozenset({"scheme", "steps"})

    def plan(self, model: Model, scheme=DEFAULT_SCHEME, steps: int = DEFAULT_STEPS) -> _Plan:
        return _plan(model, self.name, scheme, steps)

    def gradient(self, model: Model, scheme=DEFAULT_SCHEME, steps: int = DEFAULT_STEPS) -> GradResult:
        plan = self.plan(model, scheme, steps)
        g = plan.graphs
        out = _evaluate(plan, model, _x(g))
        _check(plan, model, out, g.theta)
        gv = out["g"].ravel()
        nz, np_ = g.nz, g.np
        stats: dict = {"grid_points": int(out["T"].size)}
        if self.name == "adjoint":
            z0v = np.array(g.z0(g.theta), dtype=float).ravel()
            zb = out["zb0"].ravel()
            rel = float(np.max(np.abs(zb - z0v)) / (1 + np.max(np.abs(z0v))))
            stats["backsolve_z0_error"] = rel if math.isfinite(rel) else repr(rel)
            if not rel <= BACKSOLVE_WARN_RTOL:
                stats["warning"] = (f"the back-solved state at t0 differs from z0 by {rel:.3g} (relative to "
                                    f"1 + |z0|): integrating z backward amplified its errors (the forward "
                                    f"dynamics contract), so these gradients are unreliable; trust method "
                                    f"'adjoint-stored' or 'discrete' instead")
        return GradResult(
            model=model.name, method=self.name, loss=float(out["L"].ravel()[0]),
            grad={n: float(v) for n, v in zip(model.param_names, gv[:np_])},
            grad_z0=[float(v) for v in gv[np_:np_ + nz]], grad_t0=float(gv[np_ + nz]),
            grad_t1=None if g.gt1 is None else float(gv[np_ + nz + 1]),
            scheme=plan.tableau.name, steps=plan.steps,
            z1=[float(v) for v in out["Z"][:nz, -1]], stats=stats)


class DiscreteAdjoint(_FixedStepRoute):
    """Reverse-mode AD through the fixed-step solver graph (discretize-then-optimize)."""

    name = "discrete"


class ForwardSensitivity(_FixedStepRoute):
    """Forward-mode AD (identity seeds) through the same solver graph as :class:`DiscreteAdjoint`."""

    name = "forward"


class BacksolveAdjoint(_FixedStepRoute):
    """The continuous adjoint with z back-solved alongside (λ, μ) (Chen et al. 2018)."""

    name = "adjoint"


class StoredAdjoint(_FixedStepRoute):
    """The continuous adjoint with z from the stored forward trajectory (quintic Hermite between nodes)."""

    name = "adjoint-stored"


# -----------------------------------------------------------------------------------------------
# CVODES

#: built CVODES integrator pairs (forward, adjoint), keyed by (model fingerprint, tolerances, method)
_CVODES: "OrderedDict[tuple, tuple]" = OrderedDict()

#: CVODES return flags (SUNDIALS cvodes.h) as plain messages: what happened and what to do.  {max_steps} is
#: the step limit; {t_start} the time the failing solve starts at (t0 forward, the last output time backward).
_CV_FLAGS = {
    "CV_TOO_MUCH_WORK": "CVODES took its maximum number of internal steps ({max_steps}) without reaching the "
                        "next output time: the solution may blow up there, or the problem needs more steps "
                        "(CvodesAdjoint(max_num_steps=...)) or a looser tolerance",
    "CV_TOO_MUCH_ACC": "CVODES could not reach the requested accuracy (the tolerances are too small for float64 "
                       "at the solution's scale): loosen abstol/reltol (CvodesAdjoint(abstol=..., reltol=...))",
    "CV_ERR_FAILURE": "the local error test failed repeatedly (or with the smallest step): the solution probably "
                      "blows up or is not smooth there; check the model, or loosen the tolerance",
    "CV_CONV_FAILURE": "the Newton iteration of CVODES failed to converge repeatedly: the right-hand side may be "
                       "discontinuous, undefined (the solution left its domain) or the solution blows up; "
                       "check the model, or loosen the tolerance",
    "CV_LINIT_FAIL": "the linear solver of CVODES could not be initialised (an internal failure, e.g. out of "
                     "memory); retry, or use a fixed-step route",
    "CV_LSETUP_FAIL": "the linear solver setup failed (a singular or non-finite Jacobian ∂f/∂z): the solution "
                      "probably left the model's domain; check the model",
    "CV_LSOLVE_FAIL": "the linear solve failed (a singular or non-finite Jacobian ∂f/∂z): the solution "
                      "probably left the model's domain; check the model",
    "CV_RHSFUNC_FAIL": "the right-hand side failed (non-finite values) and could not recover: the solution "
                       "probably left the model's domain (sqrt or log of a negative value, overflow); check "
                       "the model or shorten [t0, t1]",
    "CV_FIRST_RHSFUNC_ERR": "at t = {t_start:.6g} (the start of this solve) the right-hand side could not be "
                            "evaluated (e.g. sqrt or log of a negative value at the {where_state}): check z0, "
                            "the parameter values and the model's domain",
    "CV_REPTD_RHSFUNC_ERR": "the right-hand side failed (non-finite values) repeatedly: the solution probably "
                            "left the model's domain (log or sqrt of a negative number, overflow); check the "
                            "model or shorten [t0, t1]",
    "CV_UNREC_RHSFUNC_ERR": "the right-hand side failed (non-finite values) and CVODES could not recover by "
                            "reducing the step: the solution probably left the model's domain; check the model",
    "CV_QRHSFUNC_FAIL": "the running cost failed (non-finite values): the solution probably left its domain",
    "CV_FIRST_QRHSFUNC_ERR": "at t = {t_start:.6g} (the start of this solve) the running cost could not be "
                             "evaluated (e.g. sqrt or log of a negative value at the {where_state})",
    "CV_REPTD_QRHSFUNC_ERR": "the running cost failed (non-finite values) repeatedly: the solution probably left "
                             "its domain (log or sqrt of a negative number)",
    "CV_UNREC_QRHSFUNC_ERR": "the running cost failed (non-finite values) and CVODES could not recover: the "
                             "solution probably left its domain",
    "CV_ILL_INPUT": "CVODES rejected its input: a non-finite initial state or parameter, or tolerances out of "
                    "range; check z0, the parameter values and abstol/reltol",
    "CV_BAD_T": "CVODES was asked for the solution at a time outside the interval it has integrated (an "
                "internal failure); report it with the model",
    "CV_TOO_CLOSE": "the output times are too close to t0: make t1 and the observation times differ from t0",
    "CV_MEM_FAIL": "CVODES ran out of memory",
    "CV_NO_ADJ": "the adjoint solve was not initialised (an internal failure); report it with the model",
    "CV_NO_FWD": "the adjoint solve found no forward solution to differentiate (an internal failure)",
    "CV_NO_BCK": "no backward (adjoint) problem was created (an internal failure)",
    "CV_BAD_TB0": "the adjoint solve's start time lies outside the forward solve's interval (an internal "
                  "failure); report it with the model",
    "CV_REIFWD_FAIL": "re-integrating the forward problem between checkpoints failed during the adjoint solve: "
                      "the forward solution is probably ill-behaved there (near a blow-up or the edge of the "
                      "model's domain); shorten [t0, t1] or loosen the tolerance",
    "CV_FWD_FAIL": "the forward re-integration inside the adjoint solve failed: the forward solution is "
                   "probably ill-behaved there; shorten [t0, t1] or loosen the tolerance",
    "CV_GETY_BADT": "the adjoint solve asked for the forward solution outside its interval (an internal "
                    "failure); report it with the model",
}
_FLAG_RE = re.compile(r"\bCV_[A-Z0-9_]+\b")
#: CasADi's own "NaN/Inf detected" warnings name the function that failed: say which part of the model it was
_NONFINITE_RE = re.compile(r"_(cv[fa]):(\w+) failed: (NaN|Inf) detected for output (\w+)")
_NONFINITE_PART = {"daeF": "the right-hand side", "quadF": "the running cost",
                   "jacF": "the Jacobian ∂f/∂z of the right-hand side", "daeB": "the adjoint right-hand side",
                   "quadB": "the adjoint quadrature (∂f/∂θ terms)"}
_TIME_RE = re.compile(r"\bt\s*(?:=|is)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)")


try:
    _LIBC = ctypes.CDLL(None)
except OSError:  # pragma: no cover - every Linux/macOS Python has a C library to load
    _LIBC = None


def _flush_all():
    """Flush Python's and C's stdio buffers (C++ iostreams are synced to stdio), so that nothing written
    while the descriptors were redirected comes out later, and nothing from before gets captured."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, ValueError):
            pass
    if _LIBC is not None:
        _LIBC.fflush(None)


@contextlib.contextmanager
def _captured_output():
    """Redirect file descriptors 1 and 2 (C-level stdout/stderr) to a temporary file; yields a box whose
    "text" holds what was written once the block has ended."""
    _flush_all()
    tmp = tempfile.TemporaryFile(mode="w+b")
    saved = [os.dup(1), os.dup(2)]
    box = {"text": ""}
    # CasADi's own messages go through Python's sys.stdout/sys.stderr objects (which need not write to fd 1
    # or 2, e.g. under pytest), SUNDIALS's through C stdio: capture both
    py_text = io.StringIO()
    try:
        os.dup2(tmp.fileno(), 1)
        os.dup2(tmp.fileno(), 2)
        with contextlib.redirect_stdout(py_text), contextlib.redirect_stderr(py_text):
            yield box
    finally:
        _flush_all()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])
        tmp.seek(0)
        box["text"] = tmp.read().decode("utf-8", "replace") + py_text.getvalue()
        tmp.close()


def _cvodes_error(model: Model, exc: Exception, chatter: str, max_steps: int, stage: str,
                  t_start: float) -> IntegrationError:
    """A CVODES failure as an IntegrationError: the return flag translated (:data:`_CV_FLAGS`), the time of
    the failure (from CVODES's own messages, or ``t_start`` for a failure at the first right-hand-side call),
    which part of the model returned NaN/Inf where CasADi says so, and the last lines CVODES printed."""
    text = str(exc)
    m = _FLAG_RE.search(text)
    flag = m.group(0) if m else None
    first_call = flag in ("CV_FIRST_RHSFUNC_ERR", "CV_FIRST_QRHSFUNC_ERR")
    times = _TIME_RE.findall(chatter) or _TIME_RE.findall(text)
    t_fail = t_start if first_call else (float(times[-1]) if times else None)
    where_state = "initial state" if stage == "forward" else "final state z(t1), where the adjoint starts"
    if flag in _CV_FLAGS:
        what = _CV_FLAGS[flag].format(max_steps=max_steps, t_start=t_start, where_state=where_state)
    elif flag:
        what = f"CVODES stopped with return flag {flag} (see the return flags in the SUNDIALS CVODES guide)"
    else:  # not a CVODES flag: CasADi's own message, without its source-file prefix
        last = text.strip().splitlines()[-1] if text.strip() else type(exc).__name__
        what = "CVODES failed: " + re.sub(r"\S*\.(?:cpp|hpp|h):\d+:\s*", "", last)
    bad = _NONFINITE_RE.findall(chatter)
    if bad:
        _, fn, kind, _ = bad[-1]
        part = _NONFINITE_PART.get(fn, "a model function")
        what += f" ({part} returned {kind} there)"
    near = "" if first_call or t_fail is None else f" near t = {t_fail:.6g}"
    lines = [ln for ln in chatter.strip().splitlines() if ln.strip()]
    quoted = ""
    if lines:
        shown = [ln if len(ln) <= 200 else ln[:197] + "..." for ln in lines[-5:]]
        more = f" ({len(lines) - 5} earlier lines omitted)" if len(lines) > 5 else ""
        quoted = f"  CVODES said{more}: " + " | ".join(shown)
    tag = f" [{flag}]" if flag else ""
    return IntegrationError(f"method 'cvodes' on model {model.name!r} ({stage} solve) failed{near}: {what}"
                            f"{tag}.{quoted}", time=t_fail)


class CvodesAdjoint:
    """CVODES with adjoint sensitivities (see the module docstring); tolerances are constructor arguments."""

    name = "cvodes"
    options = frozenset()

    def __init__(self, abstol: float = 1e-12, reltol: float = 1e-12, max_num_steps: int = 20000,
                 multistep: str = "adams"):
        for label, v in (("abstol", abstol), ("reltol", reltol)):
            if isinstance(v, bool) or not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise SpecError(f"cvodes: {label} must be a positive finite number, got {v!r}")
        if multistep not in ("adams", "bdf"):
            raise SpecError(f"cvodes: multistep must be 'adams' or 'bdf', got {multistep!r}")
        self.abstol, self.reltol, self.max_num_steps = float(abstol), float(reltol), int(max_num_steps)
        self.multistep = multistep

    def _integrators(self, g: ModelGraphs):
        key = (g.fingerprint, self.abstol, self.reltol, self.max_num_steps, self.multistep)
        with _BUILD_LOCK:
            if key in _CVODES:
                _CVODES.move_to_end(key)
                return _CVODES[key]
            z = casadi.SX.sym("z", g.nz)
            t = casadi.SX.sym("t")
            p = casadi.SX.sym("p", g.np)
            dae = {"x": z, "p": p, "t": t, "ode": g.f(z, t, p)}
            if g.has_running:
                dae["quad"] = g.faug(casadi.vertcat(z, 0), t, p)[g.nz]
            tout = [nearest_double(end) if end is not None else g.t1 for _, end, _ in g.segments]
            # quad_err_con always on: the adjoint's parameter quadrature (adj_p) is a quadrature even without a
            # running cost, and without error control CasADi 3.8.2's polynomial-interpolation adjoint returned
            # dL/dk = 1.01 instead of 0.352 on dz/dt = k z over [0.5, 1] (tests/test_routes.py regression)
            opts = {"abstol": self.abstol, "reltol": self.reltol, "max_num_steps": self.max_num_steps,
                    "quad_err_con": True, "linear_multistep_method": self.multistep}
            fwd = casadi.integrator(g.name("cvf"), "cvodes", dae, g.t0, tout, opts)
            adj = casadi.integrator(g.name("cva"), "cvodes", dae, g.t0, tout,
                                    dict(opts, nadj=1, interpolation_type="polynomial"))
            _CVODES[key] = (fwd, adj)
            while len(_CVODES) > _MAX_PLANS:
                _CVODES.popitem(last=False)
            return fwd, adj

    def _call(self, model, fn, stage, t_start, **kw):
        with _captured_output() as box:
            try:
                res = fn(**kw)
                err = None
            except RuntimeError as exc:
                res, err = None, exc
        if err is not None:
            raise _cvodes_error(model, err, box["text"], self.max_num_steps, stage, t_start)
        return res, box["text"], fn.stats()

    def gradient(self, model: Model) -> GradResult:
        g = model_graphs(model)
        fwd, adj = self._integrators(g)
        th = g.theta
        z0 = g.z0(th)
        res, chat1, st1 = self._call(model, fwd, "forward", g.t0, x0=z0, p=th)
        X = np.array(res["xf"], dtype=float).reshape(g.nz, -1)
        bad = _first_bad(X)
        tout = [nearest_double(end) if end is not None else g.t1 for _, end, _ in g.segments]
        if bad is not None:
            raise IntegrationError(f"method 'cvodes' on model {model.name!r}: the solution is non-finite or "
                                   f"beyond {BLOWUP:g} at the output time t = {tout[bad]:.6g}", time=tout[bad])
        m = len(tout)
        seeds = np.zeros((g.nz, m))
        loss = 0.0
        dtheta = np.zeros(g.np)
        for k, (_, _, obs) in enumerate(g.segments):
            if obs is not None:
                l_i, dz_i, dp_i = g.obs[obs](X[:, k], th)
                loss += float(l_i)
                seeds[:, k] += np.array(dz_i, dtype=float).ravel()
                dtheta += np.array(dp_i, dtype=float).ravel()
        z1 = X[:, -1]
        l_T, dz_T, dp_T = g.terminal(z1, th)
        loss += float(l_T)
        seeds[:, -1] += np.array(dz_T, dtype=float).ravel()
        dtheta += np.array(dp_T, dtype=float).ravel()
        kw = {"x0": z0, "p": th, "adj_xf": casadi.DM(seeds)}
        if g.has_running:
            loss += float(np.array(res["qf"], dtype=float).ravel()[-1])
            qs = np.zeros((1, m))
            qs[0, -1] = 1.0
            kw["adj_qf"] = casadi.DM(qs)
        if not (math.isfinite(loss) and np.all(np.isfinite(seeds))):
            cols = np.nonzero(~np.all(np.isfinite(seeds), axis=0))[0]
            kb = int(cols[0]) if cols.size else m - 1
            raise IntegrationError(
                f"method 'cvodes' on model {model.name!r}: the loss or its derivative ∂ℓ/∂z is non-finite at "
                f"t = {tout[kb]:.6g}, where z = {np.array2string(X[:, kb], precision=6)} (e.g. sqrt or log of "
                f"a negative value, or sqrt at 0, in a loss term); check the loss terms", time=tout[kb])
        ares, chat2, st2 = self._call(model, adj, "adjoint", tout[-1], **kw)
        lam0 = np.array(ares["adj_x0"], dtype=float).ravel()
        mu0 = np.array(ares["adj_p"], dtype=float).ravel()
        dtheta += mu0 + np.array(g.dz0dp(th), dtype=float).reshape(g.nz, g.np).T @ lam0
        dt0 = float(g.gt0(lam0, z0, th))
        dt1 = None if g.gt1 is None else float(g.gt1(z1, th))
        stats = {
            "steps": int(st1.get("nsteps", 0)), "steps_backward": int(st2.get("nstepsB", 0)),
            "error_test_failures": int(st1.get("netfails", 0)) + int(st2.get("netfailsB", 0)),
            "convergence_failures": int(st1.get("nncfails", 0)) + int(st2.get("nncfailsB", 0)),
            "rhs_evaluations": int(st1.get("nfevals", 0)) + int(st2.get("nfevalsB", 0)),
            "abstol": self.abstol, "reltol": self.reltol,
        }
        chatter = (chat1 + chat2).strip()
        if chatter:
            stats["solver_messages"] = chatter[-2000:]
        result = GradResult(model=model.name, method=self.name, loss=loss,
                            grad={n: float(v) for n, v in zip(model.param_names, dtheta)},
                            grad_z0=[float(v) for v in lam0], grad_t0=dt0, grad_t1=dt1,
                            z1=[float(v) for v in z1], stats=stats)
        for label, v in result.named_values():
            if not math.isfinite(float(v)):
                raise IntegrationError(f"method 'cvodes' on model {model.name!r}: {label} is {v} (non-finite); "
                                       f"the adjoint solve failed", time=None)
        return result


ROUTES = {cls.name: cls for cls in (DiscreteAdjoint, ForwardSensitivity, BacksolveAdjoint, StoredAdjoint,
                                     CvodesAdjoint)}


# -----------------------------------------------------------------------------------------------
# batches

def batch_gradient(model: Model, thetas, method: str = "discrete", scheme=DEFAULT_SCHEME,
                   steps: int = DEFAULT_STEPS, threads: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Loss and dL/dθ for many parameter sets: ``thetas`` [n, nθ] -> (loss [n], grad [n, nθ]).

    One graph (the fixed-step ``method``'s, built once) evaluated with ``Function.map(n, "thread", threads)``.
    A non-finite result for parameter set k, or one the stability check (module docstring) refuses, raises
    IntegrationError naming k and the failure time; the check runs for all sets in one vectorised evaluation.
    """
    route = ROUTES.get(method)
    if route is None or not issubclass(route, _FixedStepRoute):
        fixed = [k for k, v in ROUTES.items() if issubclass(v, _FixedStepRoute)]
        raise SpecError(f"batch_gradient: method {method!r} is not a fixed-step route; choose one of "
                        f"{', '.join(fixed)}")
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise SpecError(f"batch_gradient: threads must be a positive integer, got {threads!r}")
    plan = _plan(model, method, scheme, steps)
    g = plan.graphs
    TH = np.asarray(thetas, dtype=float)
    if TH.ndim == 1 and g.np == 1:
        TH = TH.reshape(-1, 1)
    if TH.ndim != 2 or TH.shape[1] != g.np:
        raise SpecError(f"batch_gradient: thetas must have shape [n, {g.np}] (one row per parameter set, columns "
                        f"{', '.join(model.param_names)}), got {TH.shape}")
    n = TH.shape[0]
    if n == 0:
        return np.zeros(0), np.zeros((0, g.np))
    X = np.stack([_x(g, th) for th in TH], axis=1)
    with _captured_output() as box:  # a failing implicit stage prints its inputs from C++
        try:
            fmap = plan.maps.get((n, threads))
            if fmap is None:
                fmap = plan.maps[(n, threads)] = plan.small.map(n, "thread", threads)
            L, Gr, zmax, Zs = fmap(X)
            failed = False
        except RuntimeError:
            failed = True
    if failed:  # diagnose every set one by one below
        L, Gr, zmax = np.full(n, np.nan), np.full((plan.nx, n), np.nan), np.full(n, np.nan)
    L = np.array(L, dtype=float).reshape(n)
    Gr = np.array(Gr, dtype=float).reshape(plan.nx, n)
    zmax = np.array(zmax, dtype=float).reshape(n)
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(L) & np.all(np.isfinite(Gr), axis=0) & (zmax <= BLOWUP)
    if not failed and ok.any() and _needs_stability_check(plan.tableau):
        # the stability check of every finite set at once; a flagged set is diagnosed (and raises) below
        steps = plan.steps
        Tn = _grid(plan)
        Zs = np.array(Zs, dtype=float).reshape(g.nz, n * steps)
        rho, lam = _decay_amplification(plan, Zs, np.tile(Tn[:-1], n), np.tile(np.diff(Tn), n),
                                        np.repeat(TH.T, steps, axis=1))
        for k in np.nonzero(ok)[0]:
            if _stiffness(plan, Tn, rho[k * steps:(k + 1) * steps], lam[k * steps:(k + 1) * steps], steps):
                ok[k] = False
    for k in np.nonzero(~ok)[0]:
        try:
            out = _evaluate(plan, model, X[:, k])
            _check(plan, model, out, TH[k])
        except IntegrationError as exc:
            raise IntegrationError(f"parameter set {k}: {exc}", time=exc.time) from None
        if failed:  # this set is fine on its own: take its values
            L[k], Gr[:, k] = float(out["L"].ravel()[0]), out["g"].ravel()
            continue
        raise IntegrationError(f"parameter set {k}: non-finite result", time=None)
    del box
    return L, Gr[:g.np, :].T.copy()
