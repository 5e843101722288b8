"""The registry of gradient methods: one class per method, one interface, the method a parameter.

Every method implements ``gradient(model, **options) -> GradResult``.  High-precision methods ("oracle",
"exact") take ``digits``; fixed-step float64 routes take ``scheme`` and ``steps``; options a method does not
use are refused with a clear error rather than ignored.
"""
from __future__ import annotations

import importlib
from typing import Protocol

from .errors import SpecError
from .model import Model
from .result import GradResult

#: method name -> "module:Class"; modules are imported only when the method is used.
METHODS = {
    "oracle": "symode.oracle.engine:OracleMethod",
    "exact": "symode.oracle.engine:ExactMethod",
    "discrete": "symode.casadi.routes:DiscreteAdjoint",
    "forward": "symode.casadi.routes:ForwardSensitivity",
    "adjoint": "symode.casadi.routes:BacksolveAdjoint",
    "adjoint-stored": "symode.casadi.routes:StoredAdjoint",
    "cvodes": "symode.casadi.routes:CvodesAdjoint",
}


class GradientMethod(Protocol):
    name: str
    #: option names this method accepts (e.g. {"digits"} or {"scheme", "steps"})
    options: frozenset

    def gradient(self, model: Model, **options) -> GradResult: ...


def get_method(name: str) -> GradientMethod:
    if name not in METHODS:
        raise SpecError(f"unknown method {name!r}; choose one of {', '.join(METHODS)}")
    module, cls = METHODS[name].split(":")
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and module.startswith(exc.name):
            raise SpecError(f"method {name!r} is not available in this build of symode") from None
        raise
    return getattr(mod, cls)()


def compute(model: Model, method: str, **options) -> GradResult:
    """Loss and gradients of ``model`` by ``method``; options not used by the method are an error."""
    m = get_method(method)
    given = {k: v for k, v in options.items() if v is not None}
    unused = sorted(set(given) - set(m.options))
    if unused:
        raise SpecError(f"method {method!r} does not take {', '.join('--' + u for u in unused)}")
    result = m.gradient(model, **given).check_finite()
    # a kink (abs, max, ...) exactly at the evaluation point: the gradient exists only by convention, so say
    # so on the result instead of letting a comparison silently pass or fail there
    from .check.compare import check_differentiable
    findings = check_differentiable(model)
    if findings:
        result.stats["non_differentiable"] = ("non-differentiable here; value depends on convention: "
                                              + "; ".join(findings))
    return result
