"""The adapters as registered routes (declarations; the numerics are in :mod:`symode.interop.torchdiffeq_adapter`
and :mod:`symode.interop.diffrax_adapter`, imported when a route runs).

Five routes, each running the library on the same model and loss as the oracle:

======================  =========================================  ===========================================
route                   library call                               quantities
======================  =========================================  ===========================================
``torchdiffeq``         ``torchdiffeq.odeint`` (backprop)           all
``torchdiffeq-adjoint`` ``torchdiffeq.odeint_adjoint``              all
``diffrax``             ``RecursiveCheckpointAdjoint``              all
``diffrax-direct``      ``DirectAdjoint``                           all
``diffrax-backsolve``   ``BacksolveAdjoint``                        loss, dL/dθ, dL/dz0 (no t0/t1 gradients)
======================  =========================================  ===========================================

Options (``symode grad --solver --rtol --atol --fixed-steps``): ``solver`` (the library's own solver names),
``rtol``/``atol`` (adaptive solvers; defaults 1e-7 / 1e-9, torchdiffeq's), ``fixed_steps`` (fixed-step solvers:
the step count; step size (t1 - t0)/N).  A fixed-step solver without ``fixed_steps``, or with an rtol/atol
given, is refused; so is ``fixed_steps`` with an adaptive solver.  Accuracy kind: adaptive (``symode check``
allows the solver's global error 1000x rtol/atol).  ``default_check = False``: ``symode check`` runs these
routes only when named in ``--methods`` (starting a foreign library costs seconds and, for JAX, a thread pool in
the checking process); ``symode audit`` is their thorough test.
"""
from __future__ import annotations

from ..route import Adaptive, Option, Requirement, Route

__all__ = ["TORCHDIFFEQ", "TORCHDIFFEQ_ADJOINT", "DIFFRAX", "DIFFRAX_DIRECT", "DIFFRAX_BACKSOLVE"]

_TORCH = (Requirement("torch", module="torch", hint="pip install torch==2.13.0 'symode[torch]'"),
          Requirement("torchdiffeq", module="torchdiffeq", hint="pip install 'symode[torch]'"))
_JAX = (Requirement("jax", module="jax", hint="pip install 'symode[jax]'"),
        Requirement("diffrax", module="diffrax", hint="pip install 'symode[jax]'"))
# ranges declared so that the command line checks them before any work (the adapters check them again)
_RTOL = Option("rtol", float, 1e-7, "relative tolerance of an adaptive library solver (positive)", low=1e-300)
_ATOL = Option("atol", float, 1e-9, "absolute tolerance of an adaptive library solver (positive)", low=1e-300)
_STEPS = Option("fixed_steps", int, None, "step count of a fixed-step library solver (rk4, euler, ...)", low=1,
                high=10_000_000)


class _AdapterRoute(Route):
    """Shared: option resolution (tolerances only for adaptive solvers) and the call into the adapter."""

    accuracy = Adaptive(rtol_option="rtol", atol_option="atol")
    default_check = False
    fixed: tuple = ()

    def resolve_options(self, given, *, cli: bool = False):
        opts = super().resolve_options(given, cli=cli)
        if opts["solver"] in self.fixed:  # the tolerances' defaults do not apply to a fixed-step solver
            for k in ("rtol", "atol"):
                if k not in given:
                    opts[k] = None
        return opts

    def gradient(self, model, solver=None, rtol=None, atol=None, fixed_steps=None):
        return self.run(model, scheme=solver, steps=fixed_steps, rtol=rtol, atol=atol)


class _Torchdiffeq(_AdapterRoute):
    requires = _TORCH
    adjoint = False

    def __init__(self):
        from .torchdiffeq_adapter import ADAPTIVE, FIXED
        self.fixed = FIXED
        self.options = (Option("solver", str, "dopri5", "the library's solver", choices=ADAPTIVE + FIXED),
                        _RTOL, _ATOL, _STEPS)

    def run(self, model, **kw):
        from .torchdiffeq_adapter import torchdiffeq_gradient
        return torchdiffeq_gradient(model, adjoint=self.adjoint, **kw)


class TorchdiffeqOdeint(_Torchdiffeq):
    name = "torchdiffeq"
    summary = "torchdiffeq.odeint on the exported model: backpropagation through the solver"


class TorchdiffeqAdjoint(_Torchdiffeq):
    name = "torchdiffeq-adjoint"
    summary = "torchdiffeq.odeint_adjoint on the exported model: continuous adjoint, z back-solved"
    adjoint = True


class _Diffrax(_AdapterRoute):
    requires = _JAX
    adjoint = "checkpoint"

    def __init__(self):
        from .diffrax_adapter import ADAPTIVE, FIXED
        self.fixed = FIXED
        self.options = (Option("solver", str, "tsit5", "the library's solver", choices=ADAPTIVE + FIXED),
                        _RTOL, _ATOL, _STEPS)

    def run(self, model, **kw):
        from .diffrax_adapter import diffrax_gradient
        return diffrax_gradient(model, adjoint=self.adjoint, **kw)


class DiffraxCheckpoint(_Diffrax):
    name = "diffrax"
    summary = "diffrax.diffeqsolve with RecursiveCheckpointAdjoint (backprop with checkpointing)"


class DiffraxDirect(_Diffrax):
    name = "diffrax-direct"
    summary = "diffrax.diffeqsolve with DirectAdjoint"
    adjoint = "direct"


class DiffraxBacksolve(_Diffrax):
    name = "diffrax-backsolve"
    summary = "diffrax.diffeqsolve with BacksolveAdjoint (continuous adjoint; no t0/t1 gradients)"
    adjoint = "backsolve"
    quantities = frozenset({"loss", "grad", "grad_z0"})


TORCHDIFFEQ = TorchdiffeqOdeint()
TORCHDIFFEQ_ADJOINT = TorchdiffeqAdjoint()
DIFFRAX = DiffraxCheckpoint()
DIFFRAX_DIRECT = DiffraxDirect()
DIFFRAX_BACKSOLVE = DiffraxBacksolve()
