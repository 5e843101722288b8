"""The high-precision routes "oracle" and "exact" (declarations; the work is in :mod:`symode.oracle.engine`)."""
from __future__ import annotations

from ..route import Exact, HighPrecision, Option, Route

#: significant digits of the high-precision routes
DIGITS = Option("digits", int, 30, "significant digits", low=5, high=1000)


class OracleMethod(Route):
    """Two Taylor-integrated routes (forward sensitivity, continuous adjoint) cross-checked, with an error bound."""

    name = "oracle"
    summary = "Taylor-method oracle at high precision, with an error bound"
    options = (DIGITS,)
    accuracy = HighPrecision()

    def __init__(self, quiet: bool | None = None):
        self.quiet = quiet

    def gradient(self, model, digits: int = 30):
        from .engine import oracle_gradient
        return oracle_gradient(model, digits, quiet=self.quiet)


class ExactMethod(Route):
    """The closed-form solution evaluated at high precision (NoClosedFormError where there is none)."""

    name = "exact"
    summary = "closed-form solution at high precision (models with a closed form)"
    options = (DIGITS,)
    accuracy = Exact()

    def gradient(self, model, digits: int = 30):
        from .engine import exact_gradient
        return exact_gradient(model, digits)


ORACLE = OracleMethod()
EXACT = ExactMethod()
