"""symode: a symbolic-autodiff verification framework for neural ODEs.

Public API (everything else is private and may change):

- :class:`Model`, :func:`load_spec`, :func:`load_spec_file`, :func:`dump_spec`, :func:`get_model`,
  :func:`mlp_model`, :func:`model_names` -- models and the TOML spec format;
- :func:`derive` / :class:`Derivation` -- named, memoised symbolic quantities (adjoint, sensitivities, closed forms);
- :func:`render` -- equations as text, LaTeX or Markdown;
- :func:`compute` -- loss and gradients by a named method ("oracle", "exact", "discrete", "forward",
  "adjoint", "adjoint-stored", "cvodes"), returning a :class:`GradResult`;
- the :class:`SymodeError` hierarchy.
"""
__version__ = "0.1.0"

from .errors import (BuildError, CompilerNotFound, DerivationError, IntegrationError, NoClosedFormError,  # noqa: F401
                     SpecError, SymodeError, TranslationError, VerificationError)
from .library import get_model, mlp_model, model_names, resolve_model  # noqa: F401
from .methods import METHODS, compute  # noqa: F401
from .model import T, Model, Observation  # noqa: F401
from .result import GradResult  # noqa: F401
from .spec import dump_spec, load_spec, load_spec_file  # noqa: F401
from .symbolic.derive import Derivation, derive  # noqa: F401
from .symbolic.regression import LinearRegression  # noqa: F401
from .symbolic.render import render  # noqa: F401
