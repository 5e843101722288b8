"""Expressions: safe parsing of user-written names, exact decimals and expressions into SymPy, and the one
table of supported functions.

* :mod:`symode.expr.functions` -- :data:`FUNCTIONS`, one entry per supported function (name, arity, SymPy
  function, derivative, domain, kinks), and :func:`register_backend`, through which every backend (CasADi,
  heyoka, the Taylor tape, the mpmath text evaluator) registers its implementation of each;
* :mod:`symode.expr.parser` -- :func:`parse_expression`: text -> SymPy through an ``ast`` whitelist (no
  ``eval``, ``sympify`` or ``parse_expr``), and :func:`parse_written`, which also hands out the text as
  written;
* :mod:`symode.expr.literals` -- :func:`check_name`, :func:`make_symbol` and :func:`parse_decimal`;
* :mod:`symode.expr.limits` -- :data:`LIMITS`, the parse-time caps.

Everything public is re-exported here: ``symode.expr.parse_expression`` is the name to use.
"""
from __future__ import annotations

from .functions import (  # noqa: F401
    ALLOWED_FUNCTIONS, BACKEND_COVERAGE, FUNCTIONS, Domain, Function, Unsupported, by_head, kink_switches,
    missing_implementations, register_backend, registered,
)
from .limits import LIMITS  # noqa: F401
from .literals import NAME_RE, check_name, make_symbol, parse_decimal  # noqa: F401
from .parser import Written, names_in, parse_expression, parse_written  # noqa: F401

__all__ = [
    "ALLOWED_FUNCTIONS",
    "FUNCTIONS",
    "Function",
    "Domain",
    "Unsupported",
    "BACKEND_COVERAGE",
    "register_backend",
    "registered",
    "missing_implementations",
    "by_head",
    "kink_switches",
    "NAME_RE",
    "LIMITS",
    "check_name",
    "make_symbol",
    "parse_decimal",
    "parse_expression",
    "parse_written",
    "Written",
    "names_in",
]
