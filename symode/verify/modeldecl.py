"""Declarations that extend a document beyond symbols and definitions: the model's loss, its values, abstract
functions and indexed data (the format is in ``derivations/README.md``).

Pass 1 (symbol kinds, :func:`declare_symbol_kind`):

    interval: t0, t1          the model's start and end times (two new symbols); declaring it makes the
                              document's model a loss model (symode.verify.lossmodel)
    functions: f(z), ell(z)   abstract functions, each with its formal arguments (declared symbols)
    index: i                  integer symbols for sums
    count: N                  positive integer symbols (sums' upper limits)
    indexed: x, y             indexed data x[i], y[i]

Pass 2 (:func:`declare_model_line`, in file order with the definitions):

    init: x = expression      z0 of one state, a function of the parameters
    terminal: expression      ℓ(z(t1))
    observation at T: expr    ℓ_k(z(T)) at the fixed time T (a constant or an expression of declared symbols)
    values: a = 1, t1 = 2     the document's values (exact constants), where the oracle checks claims
"""
from __future__ import annotations

import re

import sympy

from ..errors import VerificationError
from ..expr import check_name, parse_expression
from .grammar import parse_with_where, split_top

#: Pass-1 kinds handled here.
EXTRA_SYMBOL_KINDS = ("interval", "functions", "index", "count", "indexed")
#: Pass-2 kinds handled here (plus "observation at T:").
EXTRA_OTHER_KINDS = ("init", "terminal", "values")

class DataLabel(sympy.Symbol):
    """The label of indexed data ``x[i]``: sampled as a whole sequence of values (symode.verify.points)."""


OBSERVATION_RE = re.compile(r"^observation\s+at\s+(.+?)\s*:(?!=)(.*)$", re.S)
_FUNCTION_RE = re.compile(r"\s*([A-Za-z][A-Za-z0-9_]*)\s*\(([^()]*)\)\s*$")


def declare_symbol_kind(env, kind: str, rest: str, line: int, where: str, names_list, check_new_name) -> None:
    """One pass-1 line of a kind in EXTRA_SYMBOL_KINDS."""
    if kind == "functions":
        parts = split_top(rest, ",")
        if not rest.strip():
            raise VerificationError(f"{where}: write 'functions: f(x), g(x, y)'")
        for part in parts:
            m = _FUNCTION_RE.match(part)
            if not m:
                raise VerificationError(f"{where}: {part.strip()!r} is not 'name(argument, ...)'; write e.g. "
                                        f"'functions: f(z), ell(z)'")
            name, args = m.group(1), [a.strip() for a in m.group(2).split(",")] if m.group(2).strip() else []
            check_name(name, where)
            for a in args:
                check_name(a, where)
            check_new_name(env, name, where)
            env.functions[name] = (sympy.Function(name, real=True), args)
            env.kinds[name] = "function"
            env.lines[name] = line
        return
    names = names_list(rest, where)
    if kind == "interval":
        if len(names) != 2:
            raise VerificationError(f"{where}: 'interval:' declares the start and end times, e.g. 'interval: t0, "
                                    f"t1', got {len(names)} names")
        if env.interval is not None:
            raise VerificationError(f"{where}: the interval is declared twice")
    for n in names:
        check_new_name(env, n, where)
        env.kinds[n] = kind
        env.lines[n] = line
        if kind == "indexed":
            env.indexed[n] = sympy.IndexedBase(DataLabel(n, real=True))
            continue
        env.symbols[n] = sympy.Symbol(n, real=True)
        if kind in ("index", "count"):
            # parsed without its assumptions; a claim gets the twin after its 'where' substitutions
            # (symode.verify.binding.attach), so no simplification relies on them before a value may break them
            env.assumed[env.symbols[n]] = (sympy.Symbol(n, integer=True, positive=True) if kind == "count"
                                             else sympy.Symbol(n, integer=True))
    if kind == "interval":
        env.interval = (env.symbols[names[0]], env.symbols[names[1]])


def check_functions(env, problems: list, Problem) -> None:
    """After pass 1: each abstract function's formal arguments are declared symbols."""
    for name, (fn, args) in list(env.functions.items()):
        bad = [a for a in args if a not in env.symbols]
        if bad:
            line = env.lines[name]
            problems.append(Problem(env.path, line, f"functions: {name}(...)",
                                    f"{env.path}:{line}: the argument(s) {', '.join(bad)} of {name}(...) are not "
                                    f"declared symbols; declare them (e.g. under 'states:')"))


def declare_model_line(env, parser, text: str, line: int, where: str) -> bool:
    """One pass-2 line of the kinds here; False when the line is not one of them."""
    m = OBSERVATION_RE.match(text)
    if m:
        _need_interval(env, where, "observation at T:")
        when = parser.parse(m.group(1), f"{where} (observation time)")
        term = parse_with_where(parser, m.group(2), f"{where} (observation term)")
        env.observations.append((line, when, term))
        return True
    km = re.match(r"^([A-Za-z]+)\s*:(?!=)(.*)$", text, re.S)
    if not km or km.group(1) not in EXTRA_OTHER_KINDS:
        return False
    kind, rest = km.group(1), km.group(2).strip()
    if kind == "init":
        _need_interval(env, where, "init:")
        parts = split_top(rest, "=")
        if len(parts) != 2 or env.kinds.get(parts[0].strip()) != "states":
            raise VerificationError(f"{where}: write 'init: x = expression' for a declared state x")
        state = parts[0].strip()
        if state in env.init:
            raise VerificationError(f"{where}: the initial value of {state!r} is given twice")
        env.init[state] = (line, parse_with_where(parser, parts[1], f"{where} (initial value of {state})"))
    elif kind == "terminal":
        _need_interval(env, where, "terminal:")
        if env.terminal is not None:
            raise VerificationError(f"{where}: the terminal loss is declared twice")
        env.terminal = (line, parse_with_where(parser, rest, f"{where} (terminal loss)"))
    else:
        for part in split_top(rest, ","):
            eq = split_top(part, "=")
            name = eq[0].strip()
            if len(eq) != 2 or not name:
                raise VerificationError(f"{where}: write 'values: a = 1, b = 0.5' (exact constants)")
            if name not in env.symbols or env.kinds.get(name) in ("states", "time", "index", "derived"):
                raise VerificationError(f"{where}: 'values: {name} = ...': {name!r} is not a declared parameter, "
                                        f"symbol or interval end")
            value = parse_expression(eq[1], {}, f"{where} (value of {name})")
            sym = env.symbols[name]
            if sym in env.values:
                raise VerificationError(f"{where}: the value of {name!r} is given twice")
            twin = env.assumed.get(sym, sym)
            if (sym in env.positive or twin.is_positive) and not value > 0:
                raise VerificationError(f"{where}: {name!r} is declared positive, but its value {value} is not")
            if twin.is_integer and not value.is_Integer:
                raise VerificationError(f"{where}: {name!r} is an integer, but its value {value} is not")
            env.values[sym] = value
            env.value_line = env.value_line or line
    return True


def _need_interval(env, where: str, what: str) -> None:
    if env.interval is None:
        raise VerificationError(f"{where}: '{what}' belongs to a model with a loss: declare its interval first "
                                f"('interval: t0, t1', with 'time:', 'states:' and one 'ode:' line per state)")
