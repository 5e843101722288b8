"""A gradient route's declaration: :class:`Route` and what it is made of (:class:`Option`,
:class:`Requirement`, the accuracy kinds :class:`Exact`, :class:`HighPrecision`, :class:`FixedStep`,
:class:`Adaptive`).  The registry that holds the routes is :mod:`symode.registry`.

A route declares

- ``name``: what ``--method`` and ``compute(model, name)`` call it (lowercase letters, digits and ``-``);
- ``summary``: one line for ``symode grad --help``;
- ``options``: :class:`Option` objects (name, type, default, help, choices), reachable as
  ``compute(model, name, **options)`` and as ``--option-name`` on ``symode grad``;
- ``quantities``: which of loss, grad (dL/dθ), grad_z0, grad_t0, grad_t1 it computes (loss and grad always);
- ``accuracy``: the kind of its error, which decides how ``symode check`` judges it and which fields its JSON
  carries: :class:`Exact`, :class:`HighPrecision`, :class:`FixedStep` (an order, a step count) or
  :class:`Adaptive` (solver tolerances);
- ``requires``: what it needs installed (:class:`Requirement`: a Python module from an extra, a program);
- ``agrees_with``: optionally the route whose numbers it reproduces up to float64 reordering (``symode check``
  then compares the two directly);
- ``default_check``: False for a route ``symode check`` runs only when named in ``--methods`` (the adapters to
  other libraries: seconds to start, foreign thread pools; ``symode audit`` is their thorough test);

and implements ``gradient(model, **options) -> GradResult``, receiving every declared option (defaults
filled in).  :func:`symode.methods.compute` checks each result against the declaration (:meth:`Route.check_result`).
"""
from __future__ import annotations

import functools
import importlib
import math
import importlib.util
import re
import shutil
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from .errors import SpecError, SymodeError

__all__ = ["Route", "Option", "Requirement", "Accuracy", "Exact", "HighPrecision", "FixedStep", "Adaptive",
           "RegistrationError", "QUANTITIES", "RESERVED_OPTIONS"]

#: What a route can compute; every route computes "loss" and "grad" (dL/dθ).
QUANTITIES = ("loss", "grad", "grad_z0", "grad_t0", "grad_t1")

#: The JSON schema's pattern for "method" is the same set, written "^[a-z][a-z0-9-]*$" (in JSON Schema '$' is the
#: end of the text); in Python '$' also matches before a final newline, so names are checked with fullmatch.
_NAME_RE = re.compile(r"[a-z][a-z0-9-]*", re.ASCII)
#: ``symode grad``'s own flags: no route option may take these names
RESERVED_OPTIONS = frozenset({"model", "method", "param", "params_json", "json", "help"})


class RegistrationError(SymodeError):
    """A route declaration is invalid or its name is taken (a bug in the route's package, not in user input)."""


def _load(ref: str):
    """The object named by ``"module:attribute"``."""
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


# ------------------------------------------------------------------------------------------------------------
# declarations

@dataclass(frozen=True)
class Option:
    """One option of a route: ``compute(model, route, name=value)`` and ``symode grad --name value``.

    ``type`` is int, float or str; ``choices`` (str options) limits the values, ``low``/``high`` (numbers) the
    range (inclusive; floats must also be finite).  The route receives the value converted and checked, so a
    command line can check every option before any work starts; the route may check more itself.
    ``also`` names further classes (``"module:Class"``) the Python API may pass as they are (e.g. a user
    Butcher tableau for ``scheme``); the command line gives the declared type only."""

    name: str
    type: type
    default: Any
    help: str
    choices: tuple = ()
    also: tuple = ()
    low: float | None = None
    high: float | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def spelled(self, cli: bool = False) -> str:
        """How the option is written: ``--max-num-steps`` on the command line, ``max_num_steps=`` in Python."""
        return self.flag if cli else f"{self.name}="

    def convert(self, value, route: str, *, cli: bool = False):
        """``value`` as this option's type, checked against choices and range, or SpecError naming the route
        and the option as the caller writes it (``cli``: the flag, else the keyword argument)."""
        def bad(what, hint=""):
            return SpecError(f"method {route!r}: {self.spelled(cli)} must be {what}, got {value!r}{hint}")
        if self.also and not isinstance(value, (bool, int, float, str)):
            if isinstance(value, tuple(_load(c) for c in self.also)):
                return value
        if self.type in (int, float):
            number = "an integer" if self.type is int else "a finite number"
            if isinstance(value, bool) or not isinstance(value, int if self.type is int else (int, float)):
                raise bad(number + self._range_text())
            if self.type is float:
                value = float(value)
                if not math.isfinite(value):
                    raise bad(number + self._range_text())
            if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
                raise bad(number + self._range_text())
            return value
        if not isinstance(value, str):
            raise bad("a string")
        if self.choices and value not in self.choices:
            from .suggest import did_you_mean
            raise bad("one of " + ", ".join(self.choices), did_you_mean(value, self.choices))
        return value

    def _range_text(self) -> str:
        def num(x) -> str:
            return str(int(x)) if float(x).is_integer() and abs(x) < 1e16 else f"{x:g}"
        if self.low is not None and self.high is not None:
            return f" from {num(self.low)} to {num(self.high)}"
        if self.low is not None:
            return f" of at least {num(self.low)}"
        return f" of at most {num(self.high)}" if self.high is not None else ""


@dataclass(frozen=True)
class Requirement:
    """Something a route needs installed: a Python ``module`` (e.g. from an extra), or one of the programs
    ``executables`` on PATH, or a ``probe`` (a callable returning None when satisfied, else a reason).
    ``hint`` says how to install it (``pip install 'symode[torch]'``)."""

    name: str
    module: str | None = None
    executables: tuple = ()
    probe: Callable[[], str | None] | None = None
    hint: str = ""

    def missing(self) -> str | None:
        """None when satisfied, else one line saying what is missing and how to get it (looked up once per
        process: installing a package while symode runs is not noticed)."""
        return _missing(self)

    def _look(self) -> str | None:
        reason = None
        if self.module is not None and importlib.util.find_spec(self.module.split(".")[0]) is None:
            reason = f"the Python module {self.module!r} is not installed"
        elif self.executables and not any(shutil.which(e) for e in self.executables):
            reason = f"none of {', '.join(self.executables)} is on PATH"
        elif self.probe is not None:
            reason = self.probe()
        if reason is None:
            return None
        return f"{self.name}: {reason}" + (f" ({self.hint})" if self.hint else "")


@functools.lru_cache(maxsize=None)
def _missing(req: Requirement) -> str | None:
    return req._look()


class Accuracy:
    """The kind of a route's error.  It decides how ``symode check`` judges the route
    (:func:`symode.check.report.route_tolerance`) and which fields the route's results carry
    (:meth:`result_fields`, checked on every result and written into the JSON schema).  ``reference`` kinds (exact, high precision) are the yardsticks
    ``symode check`` measures against, not what it checks."""

    kind = ""
    reference = False

    def describe(self) -> str:
        return self.kind

    def result_fields(self) -> tuple[tuple, tuple]:
        """(fields every result must carry, fields it must not carry), GradResult attribute names."""
        return (), ()

    def validate(self, route: "Route") -> None:
        """Raise RegistrationError if ``route``'s options do not fit this kind."""


class Exact(Accuracy):
    """Exact values (a closed form) printed to ``digits`` digits; ``error_bound`` is their rounding."""

    kind = "exact"
    reference = True

    def result_fields(self):
        return ("digits", "error_bound"), ("scheme", "steps")


class HighPrecision(Accuracy):
    """Values to ``digits`` digits with an error bound (the Taylor oracle)."""

    kind = "high-precision"
    reference = True

    def result_fields(self):
        return ("digits", "error_bound"), ("scheme", "steps")


class FixedStep(Accuracy):
    """A fixed-step float64 solve: error O(h^p).  The order p is ``order`` or, when that is None, the order of
    the scheme named by the route's ``scheme_option``; the route must take the step count ``steps_option``
    (``symode check`` runs it at N and 2N steps and estimates its error by Richardson extrapolation)."""

    kind = "fixed-step"

    def __init__(self, order: int | None = None, *, scheme_option: str = "scheme", steps_option: str = "steps"):
        self.order, self.scheme_option, self.steps_option = order, scheme_option, steps_option

    def describe(self) -> str:
        return f"fixed-step, order {self.order}" if self.order else "fixed-step, order of the scheme"

    def result_fields(self):
        return ("scheme", "steps"), ()

    def validate(self, route):
        names = route.option_names()
        if self.steps_option not in names:
            raise RegistrationError(f"route {route.name!r}: a FixedStep route needs the option {self.steps_option!r}")
        if self.order is None and self.scheme_option not in names:
            raise RegistrationError(f"route {route.name!r}: FixedStep without an order needs the option "
                                    f"{self.scheme_option!r} (the order comes from the scheme)")


class Adaptive(Accuracy):
    """An adaptive float64 solver run at relative/absolute tolerances (the options ``rtol_option`` and
    ``atol_option``); ``symode check`` allows its global error a stated factor above them."""

    kind = "adaptive"

    def __init__(self, *, rtol_option: str = "reltol", atol_option: str = "abstol"):
        self.rtol_option, self.atol_option = rtol_option, atol_option

    def describe(self) -> str:
        return f"adaptive, {self.rtol_option}/{self.atol_option}"

    def validate(self, route):
        missing = [o for o in (self.rtol_option, self.atol_option) if o not in route.option_names()]
        if missing:
            raise RegistrationError(f"route {route.name!r}: an Adaptive route needs the options {missing}")


class Route:
    """One gradient route (see the module docstring).  Subclass it, set the class attributes, implement
    :meth:`gradient`, and register an instance (:func:`register_method` or the ``symode.methods`` entry
    point)."""

    name: str = ""
    summary: str = ""
    options: tuple = ()
    quantities: frozenset = frozenset(QUANTITIES)
    accuracy: Accuracy = Accuracy()
    requires: tuple = ()
    agrees_with: str | None = None
    default_check: bool = True

    def gradient(self, model, **options):
        """Loss and gradients of ``model`` (a :class:`~symode.model.Model`) as a GradResult; ``options`` holds
        every declared option, defaults filled in."""
        raise NotImplementedError(f"route {self.name!r} does not implement gradient()")

    # -- derived from the declaration -------------------------------------------------------------------------
    def option_names(self) -> tuple:
        return tuple(o.name for o in self.options)

    def option(self, name: str) -> Option | None:
        return next((o for o in self.options if o.name == name), None)

    def missing(self) -> list[str]:
        """What this route needs and is not installed (empty when it can run)."""
        return [m for m in (r.missing() for r in self.requires) if m]

    def available(self) -> bool:
        return not self.missing()

    def resolve_options(self, given: Mapping, *, cli: bool = False) -> dict:
        """Every declared option: the given values (checked against the declared types, choices and ranges),
        defaults for the rest.  An option the route does not declare is an error naming it as the caller
        writes it (``cli``: ``--steps``; else the Python keyword ``steps=``) and the options it does take."""
        unused = sorted(set(given) - set(self.option_names()))
        if unused:
            def spell(name):
                return "--" + name.replace("_", "-") if cli else f"{name}="
            takes = ", ".join(spell(o.name) for o in self.options) or "no options"
            raise SpecError(f"method {self.name!r} does not take {', '.join(spell(u) for u in unused)} (it takes "
                            f"{takes})")
        return {o.name: o.convert(given[o.name], self.name, cli=cli) if o.name in given else o.default
                for o in self.options}

    def comparable(self, result):
        """``result`` as it is compared with this route's results: the whole GradResult, or a dict of only the
        quantities this route computes when it declares fewer."""
        q = self.quantities
        if {"grad_z0", "grad_t0"} <= q:
            return result
        d: dict = {"loss": result.loss, "grad": dict(result.grad)}
        if "grad_z0" in q:
            d["grad_z0"] = list(result.grad_z0)
        if "grad_t0" in q:
            d["grad_t0"] = result.grad_t0
            if result.grad_t1 is not None:
                d["grad_t1"] = result.grad_t1
        return d

    def check_result(self, result) -> None:
        """Raise RegistrationError when a result breaks the declaration (a bug in the route)."""
        def broken(what):
            return RegistrationError(f"route {self.name!r} returned a result that {what} (a bug in the route)")
        if result.method != self.name:
            raise broken(f"names the method {result.method!r}")
        for q in ("grad_z0", "grad_t0"):
            declared = q in self.quantities
            value = getattr(result, q)
            # grad_t0 may be absent although declared: it is undefined where an observation lies at t0
            if (value is None and declared and q != "grad_t0") or (value is not None and not declared):
                raise broken(f"lacks the declared quantity {q}" if declared else f"has the undeclared quantity {q}")
        if "grad_t1" not in self.quantities and result.grad_t1 is not None:
            raise broken("has the undeclared quantity grad_t1")
        need, forbid = self.accuracy.result_fields()
        for f in need:
            if getattr(result, f) is None:
                raise broken(f"lacks {f} ({self.accuracy.describe()} results carry it)")
        for f in forbid:
            if getattr(result, f) is not None:
                raise broken(f"has {f} ({self.accuracy.describe()} results do not carry it)")

    def validate(self) -> None:
        """Raise RegistrationError for an ill-formed declaration."""
        where = f"route {self.name!r}"
        if not isinstance(self.name, str) or not _NAME_RE.fullmatch(self.name):
            raise RegistrationError(f"route name {self.name!r}: use lowercase letters, digits and '-', starting "
                                    f"with a letter")
        if not isinstance(self.accuracy, Accuracy) or type(self.accuracy) is Accuracy:
            raise RegistrationError(f"{where}: accuracy must be Exact(), HighPrecision(), FixedStep(...) or "
                                    f"Adaptive(...)")
        q = set(self.quantities)
        if not {"loss", "grad"} <= q or not q <= set(QUANTITIES):
            raise RegistrationError(f"{where}: quantities must include loss and grad, within {', '.join(QUANTITIES)}")
        if ("grad_t0" in q) != ("grad_t1" in q):
            raise RegistrationError(f"{where}: the time gradients grad_t0 and grad_t1 are declared together")
        seen = set()
        for o in self.options:
            if not isinstance(o, Option) or not o.name.isidentifier() or o.name in RESERVED_OPTIONS:
                raise RegistrationError(f"{where}: option {o!r} is not an Option with a free identifier name")
            if o.type not in (int, float, str) or o.name in seen:
                raise RegistrationError(f"{where}: option {o.name!r}: type int, float or str, declared once")
            seen.add(o.name)
        if not all(isinstance(r, Requirement) for r in self.requires):
            raise RegistrationError(f"{where}: requires must hold Requirement objects")
        self.accuracy.validate(self)

    def __repr__(self) -> str:
        return f"<route {self.name!r} ({self.accuracy.describe()})>"
