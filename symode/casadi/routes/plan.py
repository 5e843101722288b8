"""The plan of a fixed-step route: its CasADi graph, built once per (model fingerprint, route, scheme, steps).

The graph is the one described in :mod:`symode.casadi.routes.fixed_step`: x = (θ, e, t0, t1) -> (L, gradient,
forward trajectory, backward trajectory, back-solved z(t0)).  Built plans are kept in a bounded
least-recently-used cache (:func:`_plan`); CasADi graph construction is not thread-safe, so it runs under
:data:`_BUILD_LOCK`.
"""
from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from fractions import Fraction

import casadi
import numpy as np

from symode.casadi.model_graphs import ModelGraphs, exact_fraction, model_graphs
from symode.casadi.schemes import Tableau, get_scheme
from symode.casadi.solvers import allocate_steps, step_function
from symode.casadi.translate import nearest_double
from symode.errors import SpecError
from symode.lru import LRUCache
from symode.model import Model

DEFAULT_SCHEME = "rk4"
DEFAULT_STEPS = 100


# -----------------------------------------------------------------------------------------------
# the plan: one built graph per (model, route, scheme, steps)

@dataclass
class _Plan:
    graphs: ModelGraphs
    #: the route (a :class:`symode.casadi.methods.FixedStepRoute`)
    route: object
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
#: built plans by (model fingerprint, route, tableau, steps); also the bound of the CVODES integrator cache
_MAX_PLANS = 64
_PLANS: "LRUCache[_Plan]" = LRUCache(_MAX_PLANS, build_lock=_BUILD_LOCK)


from ..methods import MAX_STEPS  # noqa: E402 - the declared range of the steps option


def _check_steps(steps) -> int:
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= MAX_STEPS:
        raise SpecError(f"steps= must be an integer from 1 to {MAX_STEPS}, got {steps!r}")
    return steps


def _fixed_step_route(route):
    """``route`` (a name or a route object) as a registered fixed-step route, or SpecError."""
    from symode.casadi.methods import FixedStepRoute
    from symode.registry import get_route, routes
    r = get_route(route) if isinstance(route, str) else route
    if not isinstance(r, FixedStepRoute):
        fixed = [x.name for x in routes() if isinstance(x, FixedStepRoute)]
        raise SpecError(f"method {getattr(r, 'name', r)!r} is not a fixed-step route; choose one of {', '.join(fixed)}")
    return r


def _plan(model: Model, route, scheme, steps: int) -> _Plan:
    """The built graph of the fixed-step ``route`` (a route object or its name) for ``model``, from the cache."""
    route = _fixed_step_route(route)
    tab = get_scheme(scheme)
    steps = _check_steps(steps)
    return _PLANS.get_or_build((model.fingerprint(), route, tab, steps),
                               lambda: _build(model_graphs(model), route, tab, steps))


def _rows(v, a: int, b: int):
    """Rows a..b-1 of a column as a column (an empty range is 0 x 1: CasADi's empty slice is 1 x 0)."""
    return v[a:b] if b > a else casadi.MX(0, 1)


@dataclass(frozen=True)
class ForwardGraph:
    """The forward solve every fixed-step route shares, as CasADi MX expressions of the input x = (θ, e, t0,
    t1): what a route's :meth:`~symode.casadi.methods.FixedStepRoute.gradient_graph` builds its gradient on."""

    g: ModelGraphs
    tableau: Tableau
    #: prefix of the names of the route's CasADi functions (route code + hash of the discretisation)
    tag: str
    #: per segment: (node times 1 x n+1, nodes naug x n+1, h, observation index or None)
    segments: list
    x: casadi.MX
    #: the discrete loss L_h, the final state z(t1), the initial state z0(θ) + e, the parameters θ
    L: casadi.MX
    z_end: casadi.MX
    z0: casadi.MX
    p: casadi.MX


def reverse_mode_gradient(fwd: ForwardGraph):
    """The discrete adjoint: reverse-mode AD of L_h, (∂L/∂x)ᵀ · 1; no backward trajectory."""
    empty = casadi.MX(0, 1)
    return casadi.jtimes(fwd.L, fwd.x, casadi.MX(1), True), empty, empty, fwd.z0


def forward_mode_gradient(fwd: ForwardGraph):
    """Forward sensitivities: forward-mode AD of L_h with identity seeds; no backward trajectory."""
    empty = casadi.MX(0, 1)
    return casadi.jtimes(fwd.L, fwd.x, casadi.DM.eye(fwd.x.numel()), False).T, empty, empty, fwd.z0


def adjoint_gradient(fwd: ForwardGraph, *, backsolve: bool):
    """The continuous adjoint on the forward grid, z back-solved (``backsolve``) or from the stored nodes."""
    return _adjoint_graph(fwd.g, fwd.tableau, fwd.tag, backsolve, fwd.segments, fwd.z_end, fwd.z0, fwd.p)


def _build(g: ModelGraphs, route, tab: Tableau, steps: int) -> _Plan:
    nz, np_ = g.nz, g.np
    # generated and deterministic (no process-history counter): a fixed code per route + a hash of the
    # discretisation; g.name() adds the model fingerprint
    tag = f"{route.function_code}{hashlib.sha256(repr((tab, steps)).encode()).hexdigest()[:8]}"
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
    if g.obs0 is not None:  # an observation at t0: evaluated on z0
        L = L + g.obs[g.obs0](z0, p)[0]
    if g.has_running:
        L = L + y[nz]
    for T, Z, h, obs in seg:
        if obs is not None:
            L = L + g.obs[obs](Z[0:nz, -1], p)[0]
    Zall = casadi.horzcat(seg[0][1][:, 0], *[Z[:, 1:] for _, Z, _, _ in seg])
    Tall = casadi.horzcat(seg[0][0][:, 0], *[T[:, 1:] for T, _, _, _ in seg])
    grad, B, TB, zb0 = route.gradient_graph(ForwardGraph(g, tab, tag, seg, x, L, z_end, z0, p))

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


def _adjoint_graph(g: ModelGraphs, tab: Tableau, tag: str, backsolve: bool, seg, z_end, z0, p):
    """The continuous adjoint backward from t1 to t0 (back-solved or stored z); returns (grad, B, TB, zb0)."""
    nz, np_ = g.nz, g.np
    _, lam_T, dp_T = g.terminal(z_end, p)
    dtheta = dp_T
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
    if g.obs0 is not None:  # the observation at t0: its jump is the last one going backward
        _, dz_0, dp_0 = g.obs[g.obs0](z0, p)
        lam0, dtheta = lam0 + dz_0, dtheta + dp_0
    mu0 = _rows(w, off + nz, off + nz + np_)
    dtheta = dtheta + mu0 + casadi.mtimes(g.dz0dp(p).T, lam0)
    dt0 = g.gt0(lam0, z0, p) if g.gt0 is not None else casadi.MX(0)
    dt1 = g.gt1(z_end, p) if g.gt1 is not None else casadi.MX(0)
    grad = casadi.vertcat(dtheta, lam0, dt0, dt1)
    zb0 = w[0:nz] if backsolve else z0
    return grad, casadi.horzcat(*Bs), casadi.horzcat(*TBs), zb0



def _grid(plan: _Plan) -> np.ndarray:
    """The node times of the plan's grid at the model's own t0, t1 (what every batch member uses)."""
    return np.array(plan.grid(_x(plan.graphs)), dtype=float).ravel()


def _x(g: ModelGraphs, theta=None) -> np.ndarray:
    th = np.asarray(g.theta, dtype=float).ravel() if theta is None else np.asarray(theta, dtype=float).ravel()
    return np.concatenate([th, np.zeros(g.nz), [g.t0, g.t1]])

