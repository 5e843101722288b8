"""symode: a symbolic-autodiff verification framework for neural ODEs.

Public API (everything else is private and may change):

- :class:`Model`, :func:`load_spec`, :func:`load_spec_file`, :func:`dump_spec`, :func:`get_model`,
  :func:`mlp_model`, :func:`model_names` -- models and the TOML spec format; :class:`Group` and the array
  expressions of :mod:`symode.arrays.node` (``leaf``, ``matmul``, ``func`` ...) for structured models in Python;
- :func:`derive` / :class:`Derivation` -- named, memoised symbolic quantities (adjoint, sensitivities, closed forms);
- :func:`render` -- equations as text, LaTeX or Markdown;
- :func:`compute` -- loss and gradients by a named method ("oracle", "exact", "discrete", "forward",
  "adjoint", "adjoint-stored", "cvodes", and any a package registers), returning a :class:`GradResult`;
- the registry of methods (:mod:`symode.registry`, :mod:`symode.route`): :class:`Route`, :class:`Option`,
  :class:`Requirement`, the accuracy kinds :class:`Exact`, :class:`HighPrecision`, :class:`FixedStep`, :class:`Adaptive`,
  :func:`register_method`, :func:`get_route`, :func:`routes`, ``METHODS``; :func:`grad_schema` (the JSON Schema
  of ``symode grad --json`` for the registered methods);
- :func:`compile` -- a model's generated C, compiled and loaded: ``h.loss``, ``h.grad``, ``h.forward``,
  ``h.batch`` at any parameter values (:mod:`symode.codegen.handle`);
- symode as the oracle for other implementations: :func:`to_torch`, :func:`to_jax` (the model as a PyTorch module /
  JAX functions), :func:`assert_gradients_match` (:mod:`symode.testing`), :func:`audit` (torchdiffeq, diffrax),
  :func:`discrete_gradient` (the exact gradient of a fixed-step scheme); the adapters are registered methods
  ("torchdiffeq", "torchdiffeq-adjoint", "diffrax", "diffrax-direct", "diffrax-backsolve");
- the :class:`SymodeError` hierarchy.
"""
from ._version import __version__  # noqa: F401

__all__ = [
    "BuildError", "CompilerNotFound", "DerivationError", "IntegrationError", "MissingExtraError", "NoClosedFormError",
    "SpecError",
    "SymodeError", "TranslationError", "VerificationError", "get_model", "mlp_model", "model_names",
    "resolve_model", "METHODS", "compute", "T", "Model", "Observation", "GradResult", "dump_spec", "load_spec",
    "load_spec_file", "Derivation", "derive", "LinearRegression", "render", "check_model", "oracle_gradient",
    "exact_gradient", "export_golden", "load_golden", "Route", "Option", "Requirement", "Exact", "HighPrecision",
    "FixedStep", "Adaptive", "register_method", "unregister_method", "get_route", "routes", "grad_schema", "compile",
    "Group",
    "to_torch", "to_jax", "assert_gradients_match", "audit", "discrete_gradient",
]

from .arrays.node import Group  # noqa: F401
from .errors import (BuildError, CompilerNotFound, DerivationError, IntegrationError, MissingExtraError,  # noqa: F401
                     NoClosedFormError,
                     SpecError, SymodeError, TranslationError, VerificationError)
from .library import get_model, mlp_model, model_names, resolve_model  # noqa: F401
from .methods import METHODS, compute  # noqa: F401
from .registry import (Adaptive, Exact, FixedStep, HighPrecision, Option, Requirement, Route,  # noqa: F401
                       get_route, register_method, routes, unregister_method)
from .model import T, Model, Observation  # noqa: F401
from .result import GradResult  # noqa: F401
from .spec import dump_spec, load_spec, load_spec_file  # noqa: F401
from .symbolic.derive import Derivation, derive  # noqa: F401
from .symbolic.regression import LinearRegression  # noqa: F401
from .symbolic.render import render  # noqa: F401


def __getattr__(name):
    # the numeric stages load lazily (CasADi, gmpy2, the Taylor tape): importing symode stays cheap
    lazy = {"check_model": ("symode.check.report", "check_model"),
            "compile": ("symode.codegen.handle", "compile"),
            "oracle_gradient": ("symode.oracle.engine", "oracle_gradient"),
            "exact_gradient": ("symode.oracle.engine", "exact_gradient"),
            "export_golden": ("symode.oracle.export", "export_golden"),
            "load_golden": ("symode.oracle.export", "load_golden"),
            "grad_schema": ("symode.schema", "grad_schema"),
            "to_torch": ("symode.interop.torch_export", "to_torch"),
            "to_jax": ("symode.interop.jax_export", "to_jax"),
            "assert_gradients_match": ("symode.testing", "assert_gradients_match"),
            "audit": ("symode.interop.audit", "audit"),
            "discrete_gradient": ("symode.interop.discrete", "discrete_gradient")}
    if name in lazy:
        import importlib
        module, attr = lazy[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'symode' has no attribute {name!r}")
