"""The claim grammar of derivation documents: expressions with the document's extra forms, and claim lines.

Expressions are the spec grammar of :func:`symode.expr.parse_expression`; the document adds ``dN/dS``,
``integral(g, s, lo, hi)`` and a trailing ``where s = e, ...``, cut out of the text before the safe parser
sees it (see :mod:`symode.verify.document` for the format).  A claim line is ``LHS = RHS`` or
``p <- RHS [using NAME]``; :func:`parse_claim` turns it into a :class:`Claim` in the names an
:class:`~symode.verify.declarations.Env` declares.  Nothing here evaluates text.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sympy

from ..errors import SpecError, VerificationError
from ..expr import parse_expression
from .binding import NONFINITE, attach, domain_problem, substitute
from .fences import Line
from .forms import cut_forms
from .matrices import VerifyAlgebra, array_derivative, matrix_reference, split_claim

if TYPE_CHECKING:  # declarations imports this module
    from .declarations import Env

#: Words with a meaning in claim syntax; they cannot be declared.
RESERVED = frozenset({"where", "using", "integral", "expect"})
#: Verdicts an ``expect:`` line may name.
STATUSES = ("TRUE", "FALSE", "UNDECIDED", "ERROR")
#: Most nodes in the expression tree of one definition or claim side, after definitions are expanded.
#: Definitions can nest (f2 := f1*(f1 + 1), f3 := f2*(f2 + 1), ...), doubling the tree per level while the
#: text stays short; the largest legitimate side here has a few hundred nodes, and SymPy's simplification
#: and 40-digit evaluation of 50,000 nodes already take seconds per point.
MAX_EXPRESSION_NODES = 50_000

DERIV_RE = re.compile(r"(?<![A-Za-z0-9_.])d([A-Za-z][A-Za-z0-9_]*)/d([A-Za-z][A-Za-z0-9_]*)(?![A-Za-z0-9_(])")


@dataclass
class Claim:
    """One parsed claim.  ``reference`` is the value the claim is checked against (the left side, or for an
    update p - LR·∂loss/∂p); ``stated`` is the right side as written."""

    path: str
    line: int
    text: str
    kind: str                 # "equality", "derivative", "ode", "update"
    reference: sympy.Expr
    stated: sympy.Expr
    against: str              # words saying what the reference is
    expect: str | None
    positive: frozenset = frozenset()
    model: object = None      # the document's LossModel, for claims about its solution
    shape: tuple | None = None  # a claim in matrix form: reference and stated are SymPy matrices of this shape
    matrix_reference: str = ""  # its reference in matrix form, in the claim grammar (a FALSE verdict's correction)


# ---------------------------------------------------------------------------------------------------
# Text helpers (bracket-aware splitting)


def split_top(text: str, sep: str) -> list[str]:
    """Split ``text`` at occurrences of ``sep`` outside brackets."""
    parts, depth, cur, i = [], 0, [], 0
    while i < len(text):
        ch = text[i]
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if depth == 0 and text.startswith(sep, i):
            parts.append("".join(cur))
            cur = []
            i += len(sep)
            continue
        cur.append(ch)
        i += 1
    parts.append("".join(cur))
    return parts


def split_word(text: str, word: str) -> tuple[str, str | None]:
    """Split at the first top-level occurrence of the keyword ``word`` (a whole word)."""
    depth = 0
    for m in re.finditer(r"[()\[\]{}]|\b" + word + r"\b", text):
        tok = m.group(0)
        if tok in "([{":
            depth += 1
        elif tok in ")]}":
            depth -= 1
        elif depth == 0:
            return text[: m.start()], text[m.end():]
    return text, None


def find_equals(text: str) -> list[int]:
    """Positions of top-level single ``=`` signs (not part of ``==``, ``<=``, ``>=``, ``!=``, ``:=``)."""
    out, depth = [], 0
    for i, ch in enumerate(text):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "=" and depth == 0:
            prev = text[i - 1] if i else ""
            nxt = text[i + 1] if i + 1 < len(text) else ""
            if prev not in "=<>!:" and nxt != "=":
                out.append(i)
    return out



# ---------------------------------------------------------------------------------------------------
# Expressions with the document's extra forms


class ExpressionParser:
    """Parses expression text of one document, cutting out ``integral(...)`` and ``dN/dS`` first."""

    def __init__(self, env: Env):
        self.env = env
        self.counter = 0

    def _placeholder(self) -> str:
        # user names cannot contain "__" (refused at declaration), so these never collide
        self.counter += 1
        return f"Q__{self.counter}"

    def parse(self, text: str, field: str) -> sympy.Expr:
        if re.search(r"[A-Za-z0-9]__|__[A-Za-z0-9]", text):
            # generated names contain "__"; a user-typed one could otherwise alias a placeholder
            raise VerificationError(f"{field}: names containing '__' are reserved for generated names "
                                    f"(in {text.strip()!r})")
        extra: dict[str, sympy.Expr] = {}
        shown: dict[str, str] = {}
        text = cut_forms(self, text, field, extra, shown)
        text = self._cut_derivatives(text, field, extra, shown)
        try:
            names = {**self.env.names(), **self.env.arrays, **extra}
            algebra = VerifyAlgebra() if self.env.arrays else None
            return check_size(parse_expression(text, names, field, algebra=algebra), field)
        except SpecError as exc:
            msg = str(exc)
            for ph, orig in shown.items():
                msg = msg.replace(ph, orig)
            for name, line in self.env.failed.items():
                if f"unknown name {name!r}" in msg:
                    msg += f" (the definition of {name!r} on line {line} is malformed)"
            raise VerificationError(msg) from None

    def _cut_derivatives(self, text: str, field: str, extra: dict, shown: dict) -> str:
        def repl(m: re.Match) -> str:
            n, s = m.group(1), m.group(2)
            if not self.env.known(n) and self.env.known("d" + n):
                return m.group(0)  # a quotient of declared names dN / dS
            value = self.derivative(n, s, field)
            ph = self._placeholder()
            extra[ph] = value
            shown[ph] = m.group(0)
            return ph
        return DERIV_RE.sub(repl, text)

    def derivative(self, n: str, s: str, field: str) -> sympy.Expr:
        env = self.env
        token = f"d{n}/d{s}"
        model = env.model
        if env.array_groups and (n in env.arrays or s in env.arrays or s[:-1] in env.array_groups):
            value = array_derivative(env, n, s, f"{field}: in {token}")
            if value is not None:
                return value
        if model is not None and env.symbols.get(n) is model.loss:
            g = model.gradient(s, f"{field}: in {token}")
            if g is not None:
                return g
            if s in env.symbols:
                return sympy.Integer(0)       # L does not depend on a symbol the model does not use
            raise VerificationError(f"{field}: in {token}, {s!r} is not declared (gradients are taken with respect "
                                    f"to the model's parameters, t0, t1, or <state>0 for an initial value)")
        if s not in env.symbols:
            what = "a definition" if s in env.definitions else "not declared"
            raise VerificationError(f"{field}: in {token}, {s!r} is {what}; derivatives are taken with respect "
                                    f"to declared symbols")
        sym = env.symbols[s]
        if sym == env.time and n in env.rates:
            return env.rates[n]
        if n in env.definitions:
            moving = sorted(r for r in env.rates if env.symbols.get(r) in env.definitions[n].free_symbols)
            if sym == env.time and moving:
                # the partial derivative (states held fixed) read as the rate along the solution would make
                # a false conservation law dE/dt = 0 TRUE
                raise VerificationError(
                    f"{field}: {token} is ambiguous: {n} depends on {', '.join(moving)}, which move with t; for "
                    f"the rate along the solution write the chain rule ("
                    + " + ".join(f"d{n}/d{r}*d{r}/dt" for r in moving)
                    + (" + the derivative in t alone)" if env.time in env.definitions[n].free_symbols else ")"))
            if model is not None:
                return model.diff(env.definitions[n], sym, f"{field}: in {token}")
            return sympy.diff(env.definitions[n], sym)
        if n in env.functions:
            # an abstract function: the derivative of f(formal arguments) with respect to one of them
            fn, formal = env.functions[n]
            return sympy.diff(fn(*(env.symbols[a] for a in formal)), sym)
        if n in env.symbols:
            if sym == env.time and env.kinds.get(n) == "states":
                raise VerificationError(f"{field}: {token} needs the model: declare 'ode: d{n}/dt = ...' in a "
                                        f"```symbols block")
            return sympy.diff(env.symbols[n], sym)
        if n in env.failed:
            raise VerificationError(f"{field}: in {token}, the definition of {n!r} (line {env.failed[n]}) is "
                                    f"malformed; fix it first")
        raise VerificationError(f"{field}: in {token}, {n!r} is not a declared symbol or definition")


def check_size(expr: sympy.Expr, field: str) -> sympy.Expr:
    """``expr`` if its tree has at most MAX_EXPRESSION_NODES nodes (counted with an early stop, so a tree
    that is exponentially large but shared in memory costs no more than the cap to reject); arrays as they are
    (their elements are checked when a claim expands them)."""
    if not isinstance(expr, sympy.Basic):
        return expr
    n = 0
    for _ in sympy.preorder_traversal(expr):
        n += 1
        if n > MAX_EXPRESSION_NODES:
            raise VerificationError(f"{field}: the expression (definitions expanded) has more than "
                                    f"{MAX_EXPRESSION_NODES} nodes (MAX_EXPRESSION_NODES); state the claim on "
                                    f"smaller pieces")
    return expr


def message_at(exc: Exception, where: str) -> str:
    text = " ".join(str(exc).split())
    return text if text.startswith(where) else f"{where}: {text}"


def parse_with_where(parser: ExpressionParser, text: str, field: str) -> sympy.Expr:
    body, where = split_word(text, "where")
    value = parser.parse(body, field)
    if where is not None:
        if not isinstance(value, sympy.Basic):
            raise VerificationError(f"{field}: 'where' on an array: state the substitution in the claims instead")
        subs = substitutions(parser, where, field)
        check_model_substitution(parser.env, subs, (value,), field)
        value = finite_after(substitute(value, subs), field, where)
    return check_size(value, field)


def finite_after(value: sympy.Expr, field: str, where_text: str) -> sympy.Expr:
    """``value`` (after a ``where`` substitution) if it has no infinite or undefined part; else an ERROR: the
    substitution put a symbol where the expression is not defined (``1/x where x = 0``), and SymPy's ``zoo``
    would then compare equal to any other ``zoo``."""
    if isinstance(value, (sympy.Basic, sympy.MatrixBase)) and value.has(*NONFINITE):
        raise VerificationError(f"{field}: after 'where {where_text.strip()}' the expression is not finite "
                                f"(division by zero, log(0) or similar: {str(value)[:120]}); substitute a value "
                                f"where it is defined")
    return value


def finite_assumed(env: Env, value, field: str):
    """``value`` if it stays finite once the declared assumptions act (counts' and indices' already attached,
    positive ones as symode.verify.claims.check attaches them); else an ERROR: ``1/(N - abs(N))`` for a count
    N is 1/0 (SymPy's ``zoo``, which compares equal to any other ``zoo``)."""
    twins = {s: sympy.Symbol(s.name, positive=True) for s in env.positive}
    if isinstance(value, sympy.MatrixBase):
        probe = value.applyfunc(lambda e: attach(e, twins))
    else:
        probe = attach(value, twins) if isinstance(value, sympy.Basic) else value
    if isinstance(probe, (sympy.Basic, sympy.MatrixBase)) and probe.has(*NONFINITE):
        raise VerificationError(f"{field}: with the declared assumptions (positive:, count:, index:) the expression "
                                f"is not finite (division by zero, log(0) or similar: {str(probe)[:120]})")
    return value


def substitutions(parser: ExpressionParser, text: str, field: str) -> dict:
    subs = {}
    for part in split_top(text, ","):
        eq = find_equals(part)
        if len(eq) != 1:
            raise VerificationError(f"{field}: 'where' expects 'symbol = expression' items separated by commas, "
                                    f"got {part.strip()!r}")
        name, expr = part[: eq[0]].strip(), part[eq[0] + 1:]
        if name not in parser.env.symbols:
            raise VerificationError(f"{field}: 'where {name} = ...': {name!r} is not a declared symbol")
        sym = parser.env.symbols[name]
        value = parser.parse(expr, field)
        if sym in parser.env.positive and attach(value, parser.env.assumed).is_negative:
            # the value contradicts the declaration; the boundary 0 and values of unknown sign are allowed (the
            # assumption is then simply not used: it is applied only to symbols still free after 'where')
            line = parser.env.lines.get(name)
            at = f" (line {line})" if line else ""
            raise VerificationError(f"{field}: 'where {name} = {expr.strip()}': {name!r} is declared positive{at}, "
                                    f"but this value is negative; substitute a value in its domain or declare "
                                    f"{name!r} without 'positive:'")
        twin = parser.env.assumed.get(sym)
        problem = domain_problem(attach(value, parser.env.assumed), twin) if twin is not None else ""
        if problem:
            # a count is a positive integer, an index an integer: a value outside that contradicts the declaration
            kind = parser.env.kinds.get(name)
            line = parser.env.lines.get(name)
            at = f" (line {line})" if line else ""
            what = "a count (a positive integer)" if kind == "count" else "an index (an integer)"
            raise VerificationError(f"{field}: 'where {name} = {expr.strip()}': {name!r} is declared {what}{at}, but "
                                    f"{problem}; substitute a value in its domain or declare {name!r} under "
                                    f"'symbols:'")
        subs[sym] = value
    return subs


def parse_claim(env: Env, parser: ExpressionParser, ln: Line, expect: str | None) -> Claim:
    where = f"{env.path}:{ln.number}"
    text = ln.text
    head, rest = split_word(text, "using") if "<-" in text else (text, None)
    arrow = split_top(head, "<-")
    if len(arrow) == 2:
        name = arrow[0].strip()
        if name not in env.symbols:
            raise VerificationError(f"{where}: update '{name} <- ...': {name!r} is not a declared symbol")
        if env.lr is None:
            raise VerificationError(f"{where}: an update claim needs the learning rate: declare 'lr: LR'")
        loss = rest.strip() if rest is not None else env.loss
        if loss is None:
            raise VerificationError(f"{where}: an update claim needs the loss: declare 'loss: NAME' or write "
                                    f"'... using NAME'")
        if loss not in env.definitions:
            raise VerificationError(f"{where}: 'using {loss}': no definition named {loss!r}")
        p = env.symbols[name]
        reference = finite_assumed(env, assumed(env, p - env.lr * sympy.diff(env.definitions[loss], p)),
                                   f"{where} (update)")
        stated = finite_assumed(env, assumed(env, parser.parse(arrow[1], f"{where} (right-hand side)")),
                                f"{where} (right-hand side)")
        return Claim(env.path, ln.number, text, "update", reference, stated,
                     f"{name} - {env.lr.name}*d{loss}/d{name}", expect, frozenset(env.positive))
    if len(arrow) > 2:
        raise VerificationError(f"{where}: more than one '<-' in a claim")
    body, subs_text = split_word(text, "where")
    eq = find_equals(body)
    if len(eq) != 1:
        raise VerificationError(f"{where}: a claim is 'LHS = RHS' (one '=') or 'p <- RHS'; "
                                f"found {len(eq)} '=' in {text!r}")
    lhs_text, rhs_text = body[: eq[0]].strip(), body[eq[0] + 1:].strip()
    lhs = parser.parse(lhs_text, f"{where} (left-hand side)")
    rhs = parser.parse(rhs_text, f"{where} (right-hand side)")
    shape = None
    if not (isinstance(lhs, sympy.Basic) and isinstance(rhs, sympy.Basic)):
        # a claim in matrix form: both sides as matrices of elements, checked element by element
        lhs, rhs = split_claim(lhs, rhs, where)
        shape = lhs.shape
    if subs_text is not None:
        subs = substitutions(parser, subs_text, f"{where} (where)")
        check_model_substitution(env, subs, (lhs, rhs), f"{where} (where)")
        lhs = check_size(finite_after(substitute(lhs, subs), f"{where} (left-hand side)", subs_text),
                         f"{where} (left-hand side)")
        rhs = check_size(finite_after(substitute(rhs, subs), f"{where} (right-hand side)", subs_text),
                         f"{where} (right-hand side)")
    kind, against = "equality", "the left-hand side"
    m = DERIV_RE.fullmatch(lhs_text)
    if m and env.known(m.group(1)):
        n, s = m.groups()
        if env.time is not None and s == env.time.name and (env.kinds.get(n) in ("states", "derived")
                                                            or n in env.array_groups):
            kind, against = "ode", f"d{n}/d{s} of the system symode.symbolic.derive derives from the model"
        else:
            kind, against = "derivative", f"the partial derivative d{n}/d{s}"
    elif lhs_text in env.definitions:
        against = f"the definition of {lhs_text}"
    model = env.model if env.model is not None and (env.model.has_quantities(lhs) or env.model.has_quantities(rhs)
                                                    or env.model.along_integrals(lhs + rhs)) else None
    if model is not None:
        kind, against = _model_kind(env, lhs_text, kind, against)
    lhs = finite_assumed(env, assumed(env, lhs, model), f"{where} (left-hand side)")
    rhs = finite_assumed(env, assumed(env, rhs, model), f"{where} (right-hand side)")
    reference_text = ""
    if shape is not None:
        against += f" (a {shape[0]}x{shape[1]} array, element by element)"
        reference_text = matrix_reference(env, lhs_text)
        if shape == (1, 1):
            lhs, rhs, shape = lhs[0, 0], rhs[0, 0], None
    return Claim(env.path, ln.number, text, kind, lhs, rhs, against, expect, frozenset(env.positive), model, shape,
                 reference_text)


def assumed(env: Env, expr, model=None):
    """``expr`` (every ``where`` applied) with the index/count symbols still free given their assumptions
    (integer, positive) -- never those the model depends on (its solution is built from the symbols as
    parsed); arrays element by element."""
    twins = env.assumed
    if model is not None and twins:
        deps = model.dependencies()
        twins = {s: t for s, t in twins.items() if s not in deps}
    if isinstance(expr, sympy.MatrixBase):
        return expr.applyfunc(lambda e: attach(e, twins))
    return attach(expr, twins) if isinstance(expr, sympy.Basic) else expr


def _model_kind(env: Env, lhs_text: str, kind: str, against: str) -> tuple[str, str]:
    """Kind and reference words of a claim about the model's solution."""
    m = DERIV_RE.fullmatch(lhs_text)
    if m and env.symbols.get(m.group(1)) is env.model.loss:
        return "derivative", (f"{lhs_text}, the derivative of the model's loss (symode's adjoint and "
                              f"forward-sensitivity forms; the oracle's value at the document's values)")
    if lhs_text == "L":
        return kind, "the model's loss L (its definition; the oracle's value at the document's values)"
    return kind, f"{against}, along the model's solution"


def check_model_substitution(env: Env, subs: dict, sides, field: str) -> None:
    """A 'where' may not give a value to a symbol the model's solution depends on in a claim that names the
    solution: its quantities are those of the declared model, which the substitution would not change."""
    model = env.model
    if model is None or not any(model.has_quantities(s) or model.along_integrals(s) for s in sides):
        return
    if any(model.time in sympy.sympify(v).free_symbols for v in subs.values()) and any(
            model.along_integrals(s) for s in sides):
        # renaming the bound time of an integral along the solution (no capture) would leave a free time
        # symbol inside it, which the solution's evaluation reads as the integration time again
        raise VerificationError(f"{field}: 'where' gives a value containing the time symbol {model.time.name}, "
                                f"the variable of an integral along the solution in this claim; state the claim "
                                f"without it")
    bad = sorted(s.name for s in subs if s in model.dependencies())
    if bad:
        raise VerificationError(f"{field}: 'where' substitutes {', '.join(bad)}, on which the model's solution "
                                f"and loss depend; their values are the document's ('values:'), so state the claim "
                                f"without substituting them")


def parse_expect(ln: Line, where: str) -> str:
    value = ln.text.split(":", 1)[1].strip().upper()
    if value not in STATUSES:
        raise VerificationError(f"{where}: 'expect:' must be one of {', '.join(STATUSES)}, got {value!r}")
    return value
