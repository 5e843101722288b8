"""``compute(model, method, **options)``: loss and gradients of a model by any registered route.

The routes, their options and what they declare live in :mod:`symode.registry`; this module runs one.  Options
a route does not declare are refused with a clear error rather than ignored; declared options that are not
given (or given as None) take the route's declared defaults.
"""
from __future__ import annotations

import weakref

from .errors import SpecError
from .model import Model
from .registry import METHODS, Route, get_route
from .result import GradResult

__all__ = ["METHODS", "compute", "get_method"]


def get_method(name: str) -> Route:
    """The registered route ``name`` (SpecError naming the choices where there is none)."""
    return get_route(name)


def compute(model: Model, method: str, **options) -> GradResult:
    """Loss and gradients of ``model`` by ``method``; options not declared by the route are an error."""
    route = get_route(method)
    given = {k: v for k, v in options.items() if v is not None}
    resolved = route.resolve_options(given)
    missing = route.missing()
    if missing:
        raise SpecError(f"method {method!r} cannot run here: {'; '.join(missing)}")
    result = route.gradient(model, **resolved)
    route.check_result(result)
    result.check_finite()
    # a kink (abs, max, ...) exactly at the evaluation point: the gradient exists only by convention, so say
    # so on the result instead of letting a comparison silently pass or fail there
    findings = _kinks(model)
    if findings:
        result.stats["non_differentiable"] = ("non-differentiable here; value depends on convention: "
                                              + "; ".join(findings))
    # a kink crossed inside the interval: the value is defined, but every route's accuracy argument assumes a
    # smooth right-hand side, so say so on the result too
    from .check.kinks import crossed_kinks
    crossed = crossed_kinks(model)
    if crossed:
        result.stats["kink_crossings"] = "; ".join(crossed)
    return result


_KINKS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _kinks(model: Model) -> list:
    """check_differentiable at the model's own θ, once per model object (its values do not change)."""
    found = _KINKS.get(model)
    if found is None:
        from .check.compare import check_differentiable
        found = _KINKS[model] = check_differentiable(model)
    return found
