"""A symode model as pure JAX functions (float64), generated from its SymPy expressions (extra ``symode[jax]``).

``to_jax(model)`` returns a :class:`JaxModel` of pure functions of ``jnp`` arrays:

    rhs(t, z, p)         f(z, t, θ)   (diffrax's vector field is ``lambda t, y, args: rhs(t, y, args)``)
    z0(p)                z0(θ)
    terminal(z, p), running(t, z, p), observations[i](z, p)   (None where the model lacks the term)

and ``theta`` (nominal θ as a float64 array), ``t0``, ``t1``, ``observation_times``.  Every function is
traceable (``jax.jit``, ``jax.grad``, ``jax.vmap``).  Importing this module's functions switches JAX to 64-bit
(``jax.config.update("jax_enable_x64", True)``): without it JAX silently computes in float32, and a float64
comparison against the oracle would be meaningless.  ``jax_source(model)`` returns the generated text.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..model import Model
from . import require
from .emit import compiled_module, model_source

__all__ = ["JaxModel", "to_jax", "jax_source", "enable_x64"]

def enable_x64():
    """Import jax with 64-bit floats on (process-wide, see the module docstring); returns ``jax``."""
    jax = require("jax", "jax", "the JAX export")
    jax.config.update("jax_enable_x64", True)
    return jax


def jax_source(model: Model) -> str:
    """The generated JAX module text of ``model`` (byte-deterministic)."""
    return model_source(model, "jax")


@dataclass(frozen=True)
class JaxModel:
    """The pure functions of one model (see the module docstring)."""

    name: str
    fingerprint: str
    rhs: Callable
    z0: Callable
    terminal: Callable | None
    running: Callable | None
    observations: tuple
    theta: object
    t0: float
    t1: float
    observation_times: tuple
    nz: int
    np: int


def to_jax(model: Model) -> JaxModel:
    """``model`` as a :class:`JaxModel` (see the module docstring)."""
    enable_x64()
    import jax.numpy as jnp
    ns = compiled_module(model, "jax", {"jnp": jnp})
    m = len(ns["OBSERVATION_TIMES"])
    return JaxModel(model.name, model.fingerprint(), ns["rhs"], ns["z0"], ns.get("terminal"), ns.get("running"),
                    tuple(ns[f"observation_{i}"] for i in range(m)),
                    jnp.asarray(ns["THETA"], dtype=jnp.float64), ns["T0"], ns["T1"],
                    tuple(ns["OBSERVATION_TIMES"]), ns["NZ"], ns["NP"])
