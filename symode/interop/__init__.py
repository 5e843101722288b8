"""symode as the correctness oracle for other implementations: export and adapters (optional extras).

* :mod:`symode.interop.emit` -- a model's right-hand side, z0(θ) and loss terms as Python source for PyTorch or
  JAX (generated from the SymPy expressions; no framework is imported to produce the text);
* :mod:`symode.interop.torch_export`, :mod:`symode.interop.jax_export` -- the same as callables
  (``to_torch(model)``, ``to_jax(model)``);
* the adapters that run torchdiffeq and diffrax on the same model and loss and return a
  :class:`~symode.result.GradResult` (registered gradient methods).

The frameworks are optional extras, imported only when used; :func:`require` turns an absent one into a
one-line :class:`MissingExtraError` naming the extra to install.
"""
from __future__ import annotations

import importlib

from ..errors import MissingExtraError

__all__ = ["MissingExtraError", "require", "to_torch", "to_jax", "torch_source", "jax_source"]


def __getattr__(name):
    # the exports load their framework only when used
    lazy = {"to_torch": "torch_export", "torch_source": "torch_export", "to_jax": "jax_export",
            "jax_source": "jax_export"}
    if name in lazy:
        return getattr(importlib.import_module(f"{__name__}.{lazy[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def require(module: str, extra: str, what: str):
    """Import ``module`` or raise :class:`MissingExtraError` naming ``extra`` (``pip install 'symode[extra]'``)."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(f"{what} needs {module.split('.')[0]}, which is not installed ({exc}); "
                                f"install the extra: pip install 'symode[{extra}]'") from None
