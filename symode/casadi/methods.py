"""The float64 routes on CasADi (declarations and per-route behaviour; the numerics are in
:mod:`symode.casadi.routes`, imported when a route runs).

- four fixed-step routes sharing one mechanism (:class:`FixedStepRoute`; options ``scheme``, ``steps``): each
  says which gradient graph it builds on the shared forward solve (:meth:`FixedStepRoute.gradient_graph`) and
  what it adds to the result's statistics (:meth:`FixedStepRoute.result_stats`);
- ``cvodes`` (:class:`CvodesAdjoint`): CVODES with adjoint sensitivities, its tolerances as options.

The equations and conventions are in :mod:`symode.casadi.routes.fixed_step` and
:mod:`symode.casadi.routes.cvodes`.
"""
from __future__ import annotations

import hashlib

from ..route import Adaptive, FixedStep, Option, Route

from .schemes import SCHEMES

#: Most fixed steps of one route: the graph stores every node (the stored-trajectory adjoint needs them), and
#: beyond this a float64 route is dominated by rounding anyway; use a higher-order scheme instead.
MAX_STEPS = 1_000_000

SCHEME = Option("scheme", str, "rk4", "fixed-step scheme", choices=tuple(SCHEMES),
                also=("symode.casadi.schemes:Tableau",))
STEPS = Option("steps", int, 100, "number of fixed steps", low=1, high=MAX_STEPS)


class FixedStepRoute(Route):
    """A route on the shared fixed-step solver graph (:mod:`symode.casadi.routes.plan`): the forward solve is
    common; a subclass says which gradient graph it builds on it."""

    options = (SCHEME, STEPS)
    accuracy = FixedStep()
    #: two letters in the names of the route's CasADi functions (generated, deterministic names)
    code: str = ""

    @property
    def function_code(self) -> str:
        return self.code or "r" + hashlib.sha256(self.name.encode()).hexdigest()[:4]

    def gradient(self, model, scheme: str = "rk4", steps: int = 100):
        from .routes.fixed_step import fixed_step_gradient
        return fixed_step_gradient(self, model, scheme, steps)

    def gradient_graph(self, fwd):
        """(gradient, backward trajectory B, its times TB, back-solved z(t0)) as CasADi MX expressions, from
        the forward graph ``fwd`` (:class:`symode.casadi.routes.plan.ForwardGraph`)."""
        raise NotImplementedError

    def result_stats(self, plan, out) -> dict:
        """Route-specific entries of ``GradResult.stats`` from the evaluated graph ``out``."""
        return {}


class DiscreteAdjoint(FixedStepRoute):
    """Reverse-mode AD through the fixed-step solver graph (discretize-then-optimize)."""

    name = "discrete"
    summary = "discrete adjoint: reverse-mode AD through the fixed-step solver"
    code = "da"

    def gradient_graph(self, fwd):
        from .routes.plan import reverse_mode_gradient
        return reverse_mode_gradient(fwd)


class ForwardSensitivity(FixedStepRoute):
    """Forward-mode AD (identity seeds) through the same solver graph as :class:`DiscreteAdjoint`."""

    name = "forward"
    summary = "forward sensitivities: forward-mode AD through the same solver (discrete's numbers)"
    code = "fs"
    agrees_with = "discrete"

    def gradient_graph(self, fwd):
        from .routes.plan import forward_mode_gradient
        return forward_mode_gradient(fwd)


class BacksolveAdjoint(FixedStepRoute):
    """The continuous adjoint with z back-solved alongside (λ, μ) (Chen et al. 2018)."""

    name = "adjoint"
    summary = "continuous adjoint, z back-solved (torchdiffeq's adjoint); warns when that is unstable"
    code = "ba"

    def gradient_graph(self, fwd):
        from .routes.plan import adjoint_gradient
        return adjoint_gradient(fwd, backsolve=True)

    def result_stats(self, plan, out) -> dict:
        from .routes.fixed_step import backsolve_stats
        return backsolve_stats(plan, out)


class StoredAdjoint(FixedStepRoute):
    """The continuous adjoint with z from the stored forward trajectory (quintic Hermite between nodes)."""

    name = "adjoint-stored"
    summary = "continuous adjoint, z from the stored forward trajectory"
    code = "sa"

    def gradient_graph(self, fwd):
        from .routes.plan import adjoint_gradient
        return adjoint_gradient(fwd, backsolve=False)


class CvodesAdjoint(Route):
    """CVODES with adjoint sensitivities, in process (:mod:`symode.casadi.routes.cvodes`)."""

    name = "cvodes"
    summary = "CVODES (SUNDIALS) adaptive solve with adjoint sensitivities"
    options = (Option("abstol", float, 1e-12, "CVODES absolute tolerance (positive)", low=1e-300),
               Option("reltol", float, 1e-12, "CVODES relative tolerance (positive)", low=1e-300),
               Option("max_num_steps", int, 20000, "CVODES's limit of internal steps per output interval", low=1),
               Option("multistep", str, "adams", "linear multistep method", choices=("adams", "bdf")))
    accuracy = Adaptive(rtol_option="reltol", atol_option="abstol")

    def gradient(self, model, abstol: float = 1e-12, reltol: float = 1e-12, max_num_steps: int = 20000,
                 multistep: str = "adams"):
        from .routes.cvodes import cvodes_gradient  # validates the values
        return cvodes_gradient(model, abstol, reltol, max_num_steps, multistep)


DISCRETE = DiscreteAdjoint()
FORWARD = ForwardSensitivity()
ADJOINT = BacksolveAdjoint()
ADJOINT_STORED = StoredAdjoint()
CVODES = CvodesAdjoint()
