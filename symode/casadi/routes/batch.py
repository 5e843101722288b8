"""Loss and gradients of one fixed-step route for many parameter sets at once (one graph, mapped)."""
from __future__ import annotations

import numpy as np

from symode.errors import IntegrationError, SpecError
from symode.model import Model

from .capture import _captured_output
from .diagnostics import BLOWUP, _check, _evaluate
from .plan import DEFAULT_SCHEME, DEFAULT_STEPS, _fixed_step_route, _grid, _plan, _x
from .stability import _decay_amplification, _needs_stability_check, _stiffness

def batch_gradient(model: Model, thetas, method: str = "discrete", scheme=DEFAULT_SCHEME,
                   steps: int = DEFAULT_STEPS, threads: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Loss and dL/dθ for many parameter sets: ``thetas`` [n, nθ] -> (loss [n], grad [n, nθ]).

    One graph (the fixed-step ``method``'s, built once) evaluated with ``Function.map(n, "thread", threads)``.
    A non-finite result for parameter set k, or one the stability check (module docstring) refuses, raises
    IntegrationError naming k and the failure time; the check runs for all sets in one vectorised evaluation.
    """
    try:
        route = _fixed_step_route(method)
    except SpecError as exc:
        raise SpecError(f"batch_gradient: {exc}") from None
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise SpecError(f"batch_gradient: threads must be a positive integer, got {threads!r}")
    plan = _plan(model, route, scheme, steps)
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
