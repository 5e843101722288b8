"""The training objective: L(θ) and dL/dθ of a model at a float64 parameter vector, by a chosen route.

Any registered route can drive training (``symode.compute(model, method, **options)`` at the model with its
parameters replaced, :meth:`symode.Model.with_values`): the oracle and the closed form for small models,
CVODES, every fixed-step route, and routes other packages register.  Two faster paths, both with θ an input of
something built once:

* the default ``discrete`` route runs the compiled one-sweep C (:func:`symode.compile`, built on the first
  evaluation and cached by the model's structure): ~30 µs per gradient on the seed problem against ~7 ms for
  ``compute``.  The handle checks finiteness only, so the in-memory graph's stability, blow-up and domain
  diagnosis (:func:`symode.casadi.routes.batch_gradient`) runs at the first iterate, and at any iterate where
  the compiled solve fails (it then names the time and the cause).  A stiff step size reached only in the
  middle of training is therefore not diagnosed as such; a non-finite result always is an error.  Without a C
  compiler (or with ``compiled=False``, a user tableau or more than 100,000 steps) the in-memory graph serves;
* the other routes on symode's fixed-step graph evaluate that graph at every iterate
  (:func:`~symode.casadi.routes.batch_gradient`, with the same checks as ``compute``).

θ is a float64 vector ordered like ``model.params``; a float handed to ``with_values`` is converted to the exact
binary number it holds (``fractions.Fraction``), so the route sees exactly the iterate the optimiser produced.
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from ..errors import IntegrationError, SpecError
from ..model import Model

__all__ = ["Objective", "SignFlipped", "with_theta"]


def with_theta(model: Model, theta) -> Model:
    """``model`` with its parameters replaced by the float64 vector ``theta`` (ordered like ``model.params``),
    each float entering as the exact binary number it holds."""
    th = np.asarray(theta, dtype=float).reshape(-1)
    if th.size != model.np:
        raise SpecError(f"theta has {th.size} values for the {model.np} parameters of {model.name!r} "
                        f"({', '.join(model.param_names)})")
    return model.with_values({p: Fraction(float(v)) for p, v in zip(model.params, th)})


class Objective:
    """θ -> (L(θ), dL/dθ) of ``model`` by the registered route ``method`` with its ``options``.

    ``options`` are the route's own (``scheme``/``steps`` for fixed-step routes, ``digits`` for the oracle and
    the closed form, ...); ``None`` values are dropped, the route's defaults fill the rest (so that a history
    says exactly what produced it), and an option the route does not take is a SpecError.
    """

    def __init__(self, model: Model, method: str = "discrete", *, compiled: bool | None = None, **options):
        from ..casadi.methods import FixedStepRoute
        from ..codegen.methods import CompiledDiscreteAdjoint
        from ..registry import get_route
        self.model = model
        self.method = method
        self.route = get_route(method)  # an unknown method is a SpecError naming the known ones
        self.options = self.route.resolve_options({k: v for k, v in options.items() if v is not None})
        # a route on symode's fixed-step graph: θ is an input of one graph built once (the fast path)
        self.fixed_step = isinstance(self.route, FixedStepRoute)
        opts = self.options
        can = (isinstance(self.route, CompiledDiscreteAdjoint) and isinstance(opts.get("scheme"), str)
               and opts.get("steps", 0) <= 100_000)
        if compiled and not can:
            raise SpecError(f"method {method!r} with these options has no compiled form (the discrete adjoint "
                            f"with a named scheme and at most 100,000 steps has)")
        self.compiled = can and compiled is not False  # may turn False on first use: no C compiler
        self._handle = None
        self._diagnosed = False
        self.calls = 0

    @property
    def np(self) -> int:
        return self.model.np

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def param_names(self) -> list[str]:
        return self.model.param_names

    def describe(self) -> str:
        """The route and its options in words, e.g. ``discrete (scheme rk4, steps 100; compiled C)``."""
        inner = ", ".join(f"{k} {v}" for k, v in self.options.items()) + ("; compiled C" if self.compiled else "")
        return f"{self.method} ({inner})" if inner else self.method

    def at(self, theta) -> Model:
        """The model with its parameters replaced by ``theta`` (exact binary values of the floats)."""
        return with_theta(self.model, self._theta(theta))

    def _theta(self, theta) -> np.ndarray:
        th = np.asarray(theta, dtype=float).reshape(-1)
        if th.size != self.model.np:
            raise SpecError(f"theta has {th.size} values for the {self.model.np} parameters of "
                            f"{self.model.name!r} ({', '.join(self.model.param_names)})")
        if not np.all(np.isfinite(th)):
            bad = [n for n, v in zip(self.model.param_names, th) if not math.isfinite(v)]
            raise IntegrationError(f"the parameters became non-finite ({', '.join(bad)}): training diverged; "
                                   f"lower the learning rate")
        return th

    def _graph(self, th) -> tuple[float, np.ndarray]:
        """The in-memory fixed-step graph at θ, with compute's finiteness, stability and domain checks."""
        from ..casadi.routes import batch_gradient
        L, G = batch_gradient(self.model, th.reshape(1, -1), self.method, threads=1, **self.options)
        return float(L[0]), np.array(G[0], dtype=float)

    def _compiled(self, th):
        """The compiled one-sweep C at θ (module docstring); None when no C compiler is found."""
        from ..codegen.handle import compile as compile_model
        from ..errors import CompilerNotFound
        if self._handle is None:
            try:
                self._handle = compile_model(self.model, scheme=self.options["scheme"], steps=self.options["steps"])
            except CompilerNotFound:
                self.compiled = False
                return None
        if not self._diagnosed:  # the in-memory graph's diagnosis once, at the first iterate
            self._graph(th)
            self._diagnosed = True
        try:
            L, g, *_ = self._handle.grad_arrays(th)
        except IntegrationError:
            self._graph(th)  # names the time and the cause where the graph sees them
            raise
        return float(L), g

    def __call__(self, theta) -> tuple[float, np.ndarray]:
        th = self._theta(theta)
        self.calls += 1
        if self.compiled:
            out = self._compiled(th)
            if out is not None:
                return out
        if self.fixed_step:
            return self._graph(th)
        from ..methods import compute
        r = compute(self.at(th), self.method, **self.options)
        return float(r.loss), np.array([float(v) for v in r.grad.values()], dtype=float)


class SignFlipped:
    """A deliberately wrong gradient: ``objective``'s with the sign of component ``index`` flipped.

    Used by the training cross-check to show that a wrong gradient is detected by its trajectory (it is never a
    route a user can choose)."""

    def __init__(self, objective: Objective, index: int):
        if not 0 <= index < objective.np:
            raise SpecError(f"component {index} is outside 0..{objective.np - 1}")
        self.inner, self.index = objective, index
        self.model = objective.model
        self.method = f"{objective.method}, sign of dL/d{objective.param_names[index]} flipped"

    @property
    def np(self) -> int:
        return self.inner.np

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def param_names(self) -> list[str]:
        return self.inner.param_names

    @property
    def options(self) -> dict:
        return self.inner.options

    @property
    def compiled(self):
        return getattr(self.inner, "compiled", None)

    def describe(self) -> str:
        return self.inner.describe() + f" with the sign of dL/d{self.model.param_names[self.index]} flipped"

    def __call__(self, theta):
        L, g = self.inner(theta)
        g = g.copy()
        g[self.index] = -g[self.index]
        return L, g
