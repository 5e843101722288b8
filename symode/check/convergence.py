"""Error against step size: each fixed-step route at several step counts against the oracle (``symode check
--plot``).

For a route at N steps (h = (t1 - t0)/N) the error is normwise relative over every reported value v (loss,
dL/dθ, dL/dz0, dL/dt0, dL/dt1):

    e(h) = max_j |v_j(h) - v_j*| / max_j |v_j*|

with v* the oracle's values.  A scheme of order p shows e(h) ~ C h^p until rounding (~1e-16 · condition) takes
over; the picture draws that slope next to the measured points.
"""
from __future__ import annotations

import numpy as np

from ..errors import SymodeError
from ..methods import compute
from ..model import Model

__all__ = ["step_counts", "convergence_data", "fixed_step_methods", "discretisation"]


def fixed_step_methods() -> tuple:
    """Names of the registered fixed-step routes (accuracy ``FixedStep``: error O(h^p), a step-count option)."""
    from ..registry import routes
    from ..route import FixedStep
    return tuple(r.name for r in routes() if isinstance(r.accuracy, FixedStep))


def discretisation(route, scheme=None, steps: int | None = None) -> tuple[dict, int]:
    """For a fixed-step ``route``: (its options for ``scheme`` and ``steps`` under the names its accuracy
    declares, the order p of its error)."""
    from ..casadi.schemes import get_scheme
    acc = route.accuracy
    given = {acc.steps_option: steps} if steps is not None else {}
    if scheme is not None and acc.scheme_option in route.option_names():
        given[acc.scheme_option] = scheme
    opts = route.resolve_options(given)
    return given, acc.order or get_scheme(opts[acc.scheme_option]).order


def step_counts(steps: int) -> list[int]:
    """The step counts drawn around ``steps``: steps/4, steps/2, steps, 2·steps, 4·steps (at least 1, distinct)."""
    return sorted({max(1, steps // 4), max(1, steps // 2), steps, 2 * steps, 4 * steps})


def _flat(values) -> list[float]:
    """The numbers of a GradResult, or of the dict ``Route.comparable`` makes of one, in a fixed order."""
    if not isinstance(values, dict):
        return [float(v) for v in values.values()]
    out = [float(values["loss"]), *(float(v) for v in values["grad"].values())]
    out += [float(v) for v in values.get("grad_z0", ())]
    out += [float(values[k]) for k in ("grad_t0", "grad_t1") if values.get(k) is not None]
    return out


def _relative_error(route, result, reference) -> float:
    """Over the quantities ``route`` computes (``Route.comparable``)."""
    got = np.array(_flat(route.comparable(result)), dtype=float)
    ref = np.array(_flat(route.comparable(reference)), dtype=float)
    if got.shape != ref.shape:
        raise SymodeError(f"{result.method} and the oracle report different quantities ({got.size} vs {ref.size})")
    return float(np.max(np.abs(got - ref)) / max(float(np.max(np.abs(ref))), 1e-300))


def convergence_data(model: Model, routes, scheme: str, steps: int, reference) -> dict:
    """route -> (h [n], e(h) [n]) at :func:`step_counts` for each fixed-step route named in ``routes`` (a route
    failing at some step count is left out there)."""
    from ..registry import get_route
    span = float(model.t1 - model.t0)
    out = {}
    for route in routes:
        hs, errs = [], []
        declared = get_route(route)
        for n in step_counts(steps):
            try:
                r = compute(model, route, **discretisation(declared, scheme, n)[0])
            except SymodeError:
                continue  # e.g. unstable at the coarsest step: the picture shows the counts that ran
            hs.append(span / n)
            errs.append(_relative_error(declared, r, reference))
        if hs:
            out[route] = (np.array(hs), np.array(errs))
    return out
