"""The float64 gradient routes: one interface (``gradient(model, ...) -> GradResult``), the route a parameter.

Every route returns the loss L and dL/dθ (total derivative, z0 = z0(θ) included), dL/dz0 (z0 a free input),
dL/dt0 and dL/dt1 (None where undefined: an observation at t1) with the conventions of
:mod:`symode.symbolic.derive`.  Observation times are fixed absolute times.

The routes themselves (name, options, accuracy, per-route behaviour) are declared in
:mod:`symode.casadi.methods` and registered in :mod:`symode.registry`; this package is their numerical work,
one job per module:

- :mod:`.plan`: the graph of a fixed-step route and the cache of built graphs (the "plan");
- :mod:`.fixed_step`: the shared mechanism of the fixed-step routes (discrete, forward, adjoint, adjoint-stored);
- :mod:`.cvodes`: the adaptive CVODES route with adjoint sensitivities;
- :mod:`.stability`: linear stability of a scheme along the computed trajectory (stiffness);
- :mod:`.diagnostics`: the checks every result passes and the translation of solver failures (CasADi's
  and CVODES's printed output, return flags) into :class:`~symode.errors.IntegrationError` messages;
- :mod:`.capture`: capture of C-level output (file descriptors 1 and 2) around a call;
- :mod:`.batch`: one fixed-step graph mapped over many parameter sets.
"""
from __future__ import annotations

from .batch import batch_gradient
from .cvodes import cvodes_gradient
from .diagnostics import BLOWUP
from .fixed_step import BACKSOLVE_WARN_RTOL, fixed_step_gradient

__all__ = ["batch_gradient", "cvodes_gradient", "fixed_step_gradient", "BLOWUP", "BACKSOLVE_WARN_RTOL"]
