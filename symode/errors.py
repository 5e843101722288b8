"""One exception hierarchy for everything a user can get wrong or a solver can fail at.

Every error symode raises on purpose is a :class:`SymodeError`.  Messages name the field, parameter or
time involved and say what to do; the CLI prints ``str(error)`` on one line and exits with status 2.
"""
from __future__ import annotations


class SymodeError(Exception):
    """Base class of every error symode raises deliberately."""


class SpecError(SymodeError):
    """A model specification (TOML spec, expression text or Python model) is invalid."""


class DerivationError(SymodeError):
    """A symbolic derivation cannot be carried out (e.g. it exceeded its time or size budget)."""


class NoClosedFormError(DerivationError):
    """A closed form was requested where none was found; the message says why."""


class TranslationError(SymodeError):
    """A SymPy expression uses an operation outside the SymPy -> CasADi translation table."""


class BuildError(SymodeError):
    """Compiling generated C failed; ``log`` carries the full compiler output."""

    def __init__(self, message: str, log: str = ""):
        super().__init__(message)
        self.log = log


class CompilerNotFound(BuildError):
    """The C compiler could not be found."""


class IntegrationError(SymodeError):
    """A numerical solve failed (blow-up, non-finite value, leaving the domain, solver failure).

    ``time`` is the time the solve failed near, where known.
    """

    def __init__(self, message: str, time: float | None = None):
        super().__init__(message)
        self.time = time


class VerificationError(SymodeError):
    """A derivation document or claim is malformed."""


class MissingExtraError(SymodeError):
    """An optional dependency (a framework an adapter or a sweep needs) is not installed; the message names the
    extra to install (``pip install 'symode[torch]'``)."""
