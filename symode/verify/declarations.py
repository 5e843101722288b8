"""Declarations of a derivation document: the ``symbols`` blocks' kinds, definitions, loss and model lines.

Two passes over the lines of every ``symbols`` block: symbol kinds first (so a definition may use any declared
symbol), then definitions, ``loss:``, ``ode:`` and ``running:`` in file order.  Malformed lines become
:class:`Problem` entries with their line; the rest is still read.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import sympy

from ..errors import SpecError, VerificationError
from ..expr import check_name
from .fences import Line
from .grammar import RESERVED, ExpressionParser, message_at, parse_with_where
from .modeldecl import (EXTRA_OTHER_KINDS, EXTRA_SYMBOL_KINDS, check_functions,
                        declare_model_line, declare_symbol_kind)

#: Declaration kinds that introduce symbols.
SYMBOL_KINDS = ("time", "states", "params", "data", "symbols", "positive", "lr") + EXTRA_SYMBOL_KINDS
#: Declaration kinds that refer to symbols/definitions (processed after all symbols are known).
OTHER_KINDS = ("loss", "ode", "running") + EXTRA_OTHER_KINDS

_DEF_RE = re.compile(r"^([A-Za-z][A-Za-z0-9_]*)\s*:=(.*)$", re.S)
_KIND_RE = re.compile(r"^([A-Za-z]+)\s*:(?!=)(.*)$", re.S)


@dataclass
class Problem:
    """A malformed line: reported as ERROR with file and line."""

    path: str
    line: int
    text: str
    message: str
    expect: str | None = None
    is_claim: bool = False


class Env:
    """Names a document declares, with their SymPy values."""

    def __init__(self, path: str):
        self.path = path
        self.symbols: dict[str, sympy.Symbol] = {}
        self.kinds: dict[str, str] = {}
        self.definitions: dict[str, sympy.Expr] = {}
        self.time: sympy.Symbol | None = None
        self.lr: sympy.Symbol | None = None
        self.loss: str | None = None
        self.rates: dict[str, sympy.Expr] = {}
        self.ode: dict[str, tuple[int, sympy.Expr]] = {}
        self.running: sympy.Expr | None = None
        self.positive: set = set()
        self.assumed: dict = {}            # index/count symbol as parsed -> its twin with the declared assumptions
        self.failed: dict[str, int] = {}   # definitions whose line was malformed -> that line
        self.lines: dict[str, int] = {}    # declared name -> line of its declaration
        # the model's loss and the other extensions (symode.verify.modeldecl, symode.verify.lossmodel)
        self.interval: tuple | None = None
        self.init: dict = {}               # state name -> (line, expression)
        self.terminal: tuple | None = None  # (line, expression)
        self.observations: list = []       # (line, time expression, term)
        self.values: dict = {}             # Symbol -> exact number
        self.value_line: int | None = None
        self.functions: dict = {}          # abstract function name -> (UndefinedFunction, formal argument names)
        self.indexed: dict = {}            # indexed data name -> IndexedBase
        self.model = None                  # LossModel, when 'interval:' is declared
        self.spec_model = None             # the Model of a ```spec block (symode.verify.matrices)
        self.arrays: dict = {}             # array name -> array node (a spec's vectors, matrices, named terms)
        self.array_groups: dict = {}       # array name -> Group (states, parameters, their adjoint/quadrature)
        self.retry: list = []              # (line, problem) of definitions to parse again after the model

    def names(self) -> dict:
        return {**self.symbols, **self.definitions}

    def known(self, name: str) -> bool:
        return (name in self.symbols or name in self.definitions or name in self.functions or name in self.indexed
                or name in self.arrays)


def names_list(rest: str, where: str) -> list[str]:
    names = [p.strip() for p in rest.split(",")]
    if not rest.strip() or any(not p for p in names):
        raise VerificationError(f"{where}: expected a comma-separated list of names, got {rest.strip()!r}")
    for n in names:
        check_name(n, where)
    return names


def declare_symbols(env: Env, lines: list[Line], problems: list) -> list[Line]:
    """Pass 1: symbol kinds.  Returns the lines left for pass 2."""
    rest_lines = []
    for ln in lines:
        where = f"{env.path}:{ln.number}"
        m = _KIND_RE.match(ln.text)
        if not m or m.group(1) not in SYMBOL_KINDS:
            rest_lines.append(ln)
            continue
        kind, rest = m.group(1), m.group(2)
        try:
            if kind in EXTRA_SYMBOL_KINDS:
                declare_symbol_kind(env, kind, rest, ln.number, where, names_list, check_new_name)
                continue
            names = names_list(rest, where)
            if kind in ("time", "lr") and len(names) != 1:
                raise VerificationError(f"{where}: '{kind}:' declares exactly one name, got {len(names)}")
            for n in names:
                check_new_name(env, n, where)
                positive = kind in ("positive", "lr")
                # a real symbol even when declared positive: the assumption is applied when a claim is checked,
                # after its 'where' substitutions, so no simplification relies on it where a substitution
                # gives the symbol another value (symode.verify.claims, step 0)
                sym = sympy.Symbol(n, real=True)
                env.symbols[n] = sym
                env.kinds[n] = kind
                env.lines[n] = ln.number
                if positive:
                    env.positive.add(sym)
                if kind == "time":
                    if env.time is not None:
                        raise VerificationError(f"{where}: the time symbol is declared twice")
                    env.time = sympy.Symbol(n, real=True)
                    env.symbols[n] = env.time
                if kind == "lr":
                    if env.lr is not None:
                        raise VerificationError(f"{where}: the learning rate is declared twice")
                    env.lr = sym
        except (VerificationError, SpecError) as exc:
            problems.append(Problem(env.path, ln.number, ln.text, message_at(exc, where)))
    check_functions(env, problems, Problem)
    return rest_lines


def check_new_name(env: Env, n: str, where: str) -> None:
    if n in RESERVED:
        raise VerificationError(f"{where}: {n!r} is a reserved word of the claim syntax; choose another name")
    if "__" in n:
        raise VerificationError(f"{where}: {n!r} contains '__', which is reserved for generated names")
    if env.known(n):
        raise VerificationError(f"{where}: the name {n!r} is declared twice")
    if (n.startswith("d") and env.known(n[1:])) or env.known("d" + n):
        other = n[1:] if n.startswith("d") and env.known(n[1:]) else "d" + n
        raise VerificationError(f"{where}: the names {n!r} and {other!r} together make 'd{n}/d...' ambiguous "
                                f"(derivative or quotient); rename one of them")



def declare_rest(env: Env, parser: ExpressionParser, lines: list[Line], problems: list) -> None:
    """Pass 2: definitions, the loss, the model, in file order.  A definition that fails is kept in
    ``env.retry`` (it may name the model's derived quantities, known only once the model is built)."""
    for ln in lines:
        where = f"{env.path}:{ln.number}"
        d = _DEF_RE.match(ln.text)
        try:
            if d:
                name, body = d.group(1), d.group(2)
                check_name(name, where)
                check_new_name(env, name, where)
                env.failed[name] = ln.number  # until the definition parses
                env.definitions[name] = parse_with_where(parser, body, f"{where} (definition of {name})")
                del env.failed[name]
                continue
            if declare_model_line(env, parser, ln.text, ln.number, where):
                continue
            m = _KIND_RE.match(ln.text)
            if not m or m.group(1) not in OTHER_KINDS:
                raise VerificationError(
                    f"{where}: cannot read {ln.text!r}; a ```symbols line is 'kind: names' (kinds: "
                    f"{', '.join(SYMBOL_KINDS + OTHER_KINDS)}) or 'name := expression'")
            kind, rest = m.group(1), m.group(2).strip()
            if kind == "loss":
                if rest not in env.definitions:
                    raise VerificationError(f"{where}: 'loss: {rest}': no definition named {rest!r} above "
                                            f"(write '{rest} := ...' first)")
                if env.loss is not None:
                    raise VerificationError(f"{where}: the loss is declared twice")
                env.loss = rest
            elif kind == "ode":
                om = re.match(r"^d([A-Za-z][A-Za-z0-9_]*)/d([A-Za-z][A-Za-z0-9_]*)\s*=(?!=)(.*)$", rest, re.S)
                if not om:
                    raise VerificationError(f"{where}: write 'ode: dz/dt = expression' (one line per state)")
                state, tname, body = om.groups()
                if env.kinds.get(state) != "states":
                    raise VerificationError(f"{where}: {state!r} is not declared under 'states:'")
                if env.time is None or tname != env.time.name:
                    raise VerificationError(f"{where}: d{state}/d{tname}: declare {tname!r} as the time symbol "
                                            f"('time: {tname}')")
                if state in env.ode:
                    raise VerificationError(f"{where}: the ODE of {state!r} is given twice")
                env.ode[state] = (ln.number, parse_with_where(parser, body, f"{where} (ode of {state})"))
            elif kind == "running":
                if env.running is not None:
                    raise VerificationError(f"{where}: the running cost is declared twice")
                env.running = parse_with_where(parser, rest, f"{where} (running cost)")
        except (VerificationError, SpecError) as exc:
            problems.append(Problem(env.path, ln.number, ln.text, message_at(exc, where)))
            if d and d.group(1) in env.failed:
                env.retry.append((ln, problems[-1]))


def retry_definitions(env: Env, parser: ExpressionParser, problems: list) -> None:
    """Definitions that failed in pass 2, parsed again in file order once the model's names exist."""
    for ln, problem in env.retry:
        name, body = _DEF_RE.match(ln.text).groups()
        where = f"{env.path}:{ln.number}"
        if name in env.definitions:
            continue
        try:
            value = parse_with_where(parser, body, f"{where} (definition of {name})")
        except (VerificationError, SpecError):
            continue
        env.definitions[name] = value
        env.failed.pop(name, None)
        problems.remove(problem)
