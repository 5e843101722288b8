"""The float64 gradient routes: one interface (``gradient(model, ...) -> GradResult``), the route a parameter.

Every route returns the loss L and dL/dθ (total derivative, z0 = z0(θ) included), dL/dz0 (z0 a free input),
dL/dt0 and dL/dt1 (None where undefined: an observation at t1) with the conventions of
:mod:`symode.symbolic.derive`.  Observation times are fixed absolute times.

The package, one job per module:

- :mod:`.plan`: the graph of a fixed-step route and the cache of built graphs (the "plan");
- :mod:`.fixed_step`: the four fixed-step routes (discrete, forward, adjoint, adjoint-stored);
- :mod:`.cvodes`: the adaptive CVODES route with adjoint sensitivities;
- :mod:`.stability`: linear stability of a scheme along the computed trajectory (stiffness);
- :mod:`.diagnostics`: the checks every result passes and the translation of solver failures (CasADi's
  and CVODES's printed output, return flags) into :class:`~symode.errors.IntegrationError` messages;
- :mod:`.capture`: capture of C-level output (file descriptors 1 and 2) around a call;
- :mod:`.batch`: one fixed-step graph mapped over many parameter sets.
"""
from __future__ import annotations

from .batch import batch_gradient
from .cvodes import CvodesAdjoint
from .diagnostics import BLOWUP
from .fixed_step import (BACKSOLVE_WARN_RTOL, BacksolveAdjoint, DiscreteAdjoint, ForwardSensitivity,
                         StoredAdjoint)

__all__ = ["DiscreteAdjoint", "ForwardSensitivity", "BacksolveAdjoint", "StoredAdjoint", "CvodesAdjoint",
           "batch_gradient", "ROUTES", "BLOWUP", "BACKSOLVE_WARN_RTOL"]


ROUTES = {cls.name: cls for cls in (DiscreteAdjoint, ForwardSensitivity, BacksolveAdjoint, StoredAdjoint,
                                     CvodesAdjoint)}
