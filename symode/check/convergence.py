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

__all__ = ["step_counts", "convergence_data"]


def step_counts(steps: int) -> list[int]:
    """The step counts drawn around ``steps``: steps/4, steps/2, steps, 2·steps, 4·steps (at least 1, distinct)."""
    return sorted({max(1, steps // 4), max(1, steps // 2), steps, 2 * steps, 4 * steps})


def _relative_error(result, reference) -> float:
    got = np.array([float(v) for v in result.values()], dtype=float)
    ref = np.array([float(v) for v in reference.values()], dtype=float)
    if got.shape != ref.shape:
        raise SymodeError(f"{result.method} and the oracle report different quantities ({got.size} vs {ref.size})")
    return float(np.max(np.abs(got - ref)) / max(float(np.max(np.abs(ref))), 1e-300))


def convergence_data(model: Model, routes, scheme: str, steps: int, reference) -> dict:
    """route -> (h [n], e(h) [n]) at :func:`step_counts` for each fixed-step route named in ``routes`` (a route
    failing at some step count is left out there)."""
    from ..registry import get_route
    from ..train.objective import discretisation
    span = float(model.t1 - model.t0)
    out = {}
    for route in routes:
        hs, errs = [], []
        for n in step_counts(steps):
            try:
                r = compute(model, route, **discretisation(get_route(route), scheme, n)[0])
            except SymodeError:
                continue  # e.g. unstable at the coarsest step: the picture shows the counts that ran
            hs.append(span / n)
            errs.append(_relative_error(r, reference))
        if hs:
            out[route] = (np.array(hs), np.array(errs))
    return out
