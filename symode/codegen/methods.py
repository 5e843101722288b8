"""The ``discrete`` route, compiled: the declaration of :class:`symode.casadi.methods.DiscreteAdjoint` (options,
accuracy, quantities) whose ``gradient`` runs the generated one-sweep C through the cached handle
(:func:`symode.codegen.handle.compiled_gradient`), with the in-memory graph as fallback and diagnosis.

It lives in the codegen layer because it compiles; the registry names it among the built-in routes.
"""
from __future__ import annotations

from ..casadi.methods import DiscreteAdjoint

__all__ = ["CompiledDiscreteAdjoint", "DISCRETE"]


class CompiledDiscreteAdjoint(DiscreteAdjoint):
    """The discrete adjoint by one reverse sweep of the generated C (same derivative as the in-memory graph)."""

    summary = "discrete adjoint: one reverse sweep through the fixed-step solver (compiled C)"

    def gradient(self, model, scheme: str = "rk4", steps: int = 100):
        from .handle import compiled_gradient
        return compiled_gradient(self, model, scheme, steps)


DISCRETE = CompiledDiscreteAdjoint()
