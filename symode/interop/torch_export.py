"""A symode model as a PyTorch module (float64), generated from its SymPy expressions (extra ``symode[torch]``).

``to_torch(model)`` returns a :class:`torch.nn.Module` whose ``forward(t, z)`` is f(z, t, θ) -- the signature
torchdiffeq's ``odeint`` / ``odeint_adjoint`` call -- with θ the module's one parameter ``theta`` (float64,
shape ``(np,)``, the model's order, initialised to the nominal values rounded to the nearest double).  The
module also has ``z0()`` (z0(θ)), ``terminal(z)``, ``running(t, z)`` and ``observation(i, z)``; each returns
None-free values only for the terms the model has (``has_terminal``, ``has_running``, ``observation_times``).
``z`` may carry leading batch dimensions (``z[..., j]`` is state j).

The functions are the text of :func:`symode.interop.emit.model_source` compiled once per model (cached by the
model's fingerprint); ``torch_source(model)`` returns that text.
"""
from __future__ import annotations

from ..model import Model
from . import require
from .emit import compiled_module, model_source

__all__ = ["to_torch", "torch_source", "torch_functions"]

def torch_source(model: Model) -> str:
    """The generated PyTorch module text of ``model`` (byte-deterministic)."""
    return model_source(model, "torch")


def torch_functions(model: Model) -> dict:
    """The compiled namespace of :func:`torch_source` (``rhs``, ``z0``, ``terminal``, ... and constants)."""
    torch = require("torch", "torch", "the PyTorch export")
    return compiled_module(model, "torch", {"torch": torch})


def to_torch(model: Model, theta=None):
    """``model`` as a ``torch.nn.Module`` (see the module docstring); ``theta`` overrides the nominal θ
    (a sequence of floats in the model's parameter order)."""
    torch = require("torch", "torch", "the PyTorch export")
    ns = torch_functions(model)
    values = list(ns["THETA"] if theta is None else theta)
    if len(values) != model.np:
        from ..errors import SpecError
        raise SpecError(f"model {model.name!r}: theta has {len(values)} values for {model.np} parameters")
    return _module_class(torch)(model, ns, torch.tensor(values, dtype=torch.float64))


_CLASS = None


def _module_class(torch):
    """The nn.Module subclass, defined on first use (torch is imported lazily)."""
    global _CLASS
    if _CLASS is not None:
        return _CLASS

    class SymodeTorchModel(torch.nn.Module):
        """dz/dt = f(z, t, θ) of a symode model; ``theta`` is the parameter vector (float64)."""

        def __init__(self, model: Model, ns: dict, theta):
            super().__init__()
            self.model_name = model.name
            self.fingerprint = model.fingerprint()
            self._ns = ns
            self.theta = torch.nn.Parameter(theta)
            self.t0, self.t1 = ns["T0"], ns["T1"]
            self.observation_times = tuple(ns["OBSERVATION_TIMES"])
            self.has_terminal = "terminal" in ns
            self.has_running = "running" in ns
            self.nz, self.np = ns["NZ"], ns["NP"]

        def forward(self, t, z):
            return self._ns["rhs"](t, z, self.theta)

        def z0(self, theta=None):
            return self._ns["z0"](self.theta if theta is None else theta)

        def terminal(self, z):
            return self._ns["terminal"](z, self.theta)

        def running(self, t, z):
            return self._ns["running"](t, z, self.theta)

        def observation(self, i: int, z):
            return self._ns[f"observation_{i}"](z, self.theta)

        def extra_repr(self) -> str:
            return f"model={self.model_name!r}, nz={self.nz}, np={self.np}"

    _CLASS = SymodeTorchModel
    return _CLASS
