"""Derivation documents: Markdown files whose fenced ``symbols`` and ``claim`` blocks can be checked.

The format is documented for authors in ``derivations/README.md``; in brief::

    ```symbols
    params: a, b            # kinds: time, states, params, data, symbols, positive, lr
    data: x, y
    lr: LR                  # the learning rate (a positive symbol)
    f := a*x + b            # a definition (may use earlier definitions; optional "where s = e, ...")
    loss := (f - y)**2
    loss: loss              # the definition that gradient-descent updates descend
    ode: dz/dt = a*z + b    # ODE documents: one line per state (needs "time:" and "states:")
    running: 0.1*z**2       # optional running cost r(z, t, θ) of the model
    ```

    ```claim
    expect: FALSE           # optional: what the verifier must say (tests compare it)
    dloss/db = 2*(a*x + b - y)*Y
    b <- b - 2*(a*x + b - y)*LR
    ```

Expressions are the spec grammar of :func:`symode.expr.parse_expression` (numbers, declared names,
``+ - * / **``, the allowed one-argument functions); the document adds, *outside* that grammar, three
forms that are cut out of the text before the safe parser sees it and replaced by generated names:

* ``dN/dS`` — the partial derivative of ``N`` (a definition, expanded, or a declared symbol) with respect to
  the declared symbol ``S``, every other declared symbol held fixed.  When ``S`` is the time symbol and ``N``
  is a state or one of the derived-system symbols (``lambda_<state>``, ``mu_<param>``,
  ``S_<state>_<param>``, ``W_<state>_<state>``), ``dN/dt`` is that symbol's rate in the system
  :func:`symode.symbolic.derive.derive` derives from the declared model:
  ``dz/dt = f``, ``dλ/dt = -(∂f/∂z)ᵀλ - (∂r/∂z)ᵀ``, ``dμ/dt = -(∂f/∂θ)ᵀλ - (∂r/∂θ)ᵀ``,
  ``dS/dt = ∂f/∂z·S + ∂f/∂θ``, ``dW/dt = ∂f/∂z·W``.
* ``integral(g, s, lo, hi)`` — ``∫_lo^hi g ds`` (SymPy ``Integral``; evaluated symbolically where SymPy
  can, by mpmath quadrature otherwise).
* a trailing ``where s1 = e1, s2 = e2`` on a claim or definition substitutes (simultaneously) into both sides
  after every derivative is taken.

Claims (one per line; a line ending in ``\\`` continues on the next):

* ``LHS = RHS``: an equality; its kind is *ode* when LHS is exactly ``dN/dt`` of a derived-system symbol,
  *derivative* when LHS is any other ``dN/dS``, else *equality*;
* ``p <- RHS`` (optionally ``using NAME``): a gradient-descent update, checked against
  ``p - LR * dLOSS/dp`` with ``LR`` the declared learning rate and ``LOSS`` the declared loss (or NAME).

Parsing never evaluates text: the safe parser builds every SymPy tree.  Malformed lines become
:class:`~symode.errors.VerificationError` entries carrying file and line; the rest of the document is still
read.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import sympy

from ..errors import SpecError, VerificationError
from ..expr import check_name, parse_expression

#: Declaration kinds that introduce symbols.
SYMBOL_KINDS = ("time", "states", "params", "data", "symbols", "positive", "lr")
#: Declaration kinds that refer to symbols/definitions (processed after all symbols are known).
OTHER_KINDS = ("loss", "ode", "running")
#: Words with a meaning in claim syntax; they cannot be declared.
RESERVED = frozenset({"where", "using", "integral", "expect"})
#: Verdicts an ``expect:`` line may name.
STATUSES = ("TRUE", "FALSE", "UNDECIDED", "ERROR")
#: Largest document read (a derivation is a few kB; the cap bounds parsing time).
MAX_DOCUMENT_BYTES = 1_000_000
#: Most nodes in the expression tree of one definition or claim side, after definitions are expanded.
#: Definitions can nest (f2 := f1*(f1 + 1), f3 := f2*(f2 + 1), ...), doubling the tree per level while the
#: text stays short; the largest legitimate side here has a few hundred nodes, and SymPy's simplification
#: and 40-digit evaluation of 50,000 nodes already take seconds per point.
MAX_EXPRESSION_NODES = 50_000

_FENCE_RE = re.compile(r"^\s{0,3}(`{3,}|~{3,})\s*([^\s`]*)")
_DERIV_RE = re.compile(r"(?<![A-Za-z0-9_.])d([A-Za-z][A-Za-z0-9_]*)/d([A-Za-z][A-Za-z0-9_]*)(?![A-Za-z0-9_(])")
_INTEGRAL_RE = re.compile(r"(?<![A-Za-z0-9_])integral\s*\(")
_DEF_RE = re.compile(r"^([A-Za-z][A-Za-z0-9_]*)\s*:=(.*)$", re.S)
_KIND_RE = re.compile(r"^([A-Za-z]+)\s*:(?!=)(.*)$", re.S)


@dataclass
class Line:
    """A logical line of a fenced block: its 1-based line number in the file and its text."""

    number: int
    text: str


@dataclass
class Block:
    kind: str                 # "symbols" or "claim"
    start: int                # line number of the opening fence
    lines: list


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


@dataclass
class Problem:
    """A malformed line: reported as ERROR with file and line."""

    path: str
    line: int
    text: str
    message: str
    expect: str | None = None
    is_claim: bool = False


@dataclass
class Document:
    path: str
    claims: list = field(default_factory=list)
    problems: list = field(default_factory=list)
    #: every claim-or-problem entry in file order: ("claim", Claim) or ("problem", Problem)
    entries: list = field(default_factory=list)
    env: object = None
    parser: object = None

    def parse_claim(self, text: str, line: int = 0, expect: str | None = None) -> Claim:
        """Parse one more claim line in this document's declarations (raises VerificationError if malformed).

        For tools that vary claims (the mutation tests): no re-reading of the declarations.
        """
        try:
            return _parse_claim(self.env, self.parser, Line(line, text.strip()), expect)
        except SpecError as exc:
            raise VerificationError(_msg(exc, f"{self.path}:{line}")) from None


class _Env:
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
        self.failed: dict[str, int] = {}   # definitions whose line was malformed -> that line
        self.lines: dict[str, int] = {}    # declared name -> line of its declaration

    def names(self) -> dict:
        return {**self.symbols, **self.definitions}

    def known(self, name: str) -> bool:
        return name in self.symbols or name in self.definitions


# ---------------------------------------------------------------------------------------------------
# Markdown -> blocks


def _blocks(text: str, path: str, problems: list, others: list | None = None) -> list[Block]:
    """Fenced ``symbols``/``claim`` blocks with their logical lines; other fenced blocks are skipped (their
    (line, info word) pairs are appended to ``others``)."""
    blocks = []
    raw = text.splitlines()
    i = 0
    while i < len(raw):
        m = _FENCE_RE.match(raw[i])
        if not m:
            i += 1
            continue
        fence, info = m.group(1), m.group(2).lower()
        start = i + 1
        j = i + 1
        closed = False
        body = []
        while j < len(raw):
            c = re.match(r"^\s{0,3}(`{3,}|~{3,})\s*$", raw[j])
            if c and c.group(1)[0] == fence[0] and len(c.group(1)) >= len(fence):
                closed = True
                break
            body.append(Line(j + 1, raw[j]))
            j += 1
        if info in ("symbols", "claim"):
            if not closed:
                problems.append(Problem(path, start, raw[i].strip(),
                                        f"{path}:{start}: the ```{info} block opened here is never closed; end it with a line "
                                        f"of {fence}", is_claim=(info == "claim")))
            else:
                blocks.append(Block(info, start, _logical(body)))
        elif others is not None and info:
            others.append((start, info))
        i = j + 1
    return blocks


def _logical(lines: list[Line]) -> list[Line]:
    """Drop blank and ``#`` comment lines, strip trailing ``# ...`` comments, join ``\\`` continuations."""
    out: list[Line] = []
    pending: Line | None = None
    for ln in lines:
        text = ln.text.split("#", 1)[0].rstrip()
        if pending is not None:
            pending.text += " " + text.strip()
        elif text.strip():
            pending = Line(ln.number, text.strip())
        else:
            continue
        if pending.text.endswith("\\"):
            pending.text = pending.text[:-1].rstrip()
            continue
        out.append(pending)
        pending = None
    if pending is not None:
        out.append(pending)
    return out


# ---------------------------------------------------------------------------------------------------
# Text helpers (bracket-aware splitting)


def _split_top(text: str, sep: str) -> list[str]:
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


def _split_word(text: str, word: str) -> tuple[str, str | None]:
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


def _find_equals(text: str) -> list[int]:
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


class _Parser:
    """Parses expression text of one document, cutting out ``integral(...)`` and ``dN/dS`` first."""

    def __init__(self, env: _Env):
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
        text = self._cut_integrals(text, field, extra, shown)
        text = self._cut_derivatives(text, field, extra, shown)
        try:
            return _check_size(parse_expression(text, {**self.env.names(), **extra}, field), field)
        except SpecError as exc:
            msg = str(exc)
            for ph, orig in shown.items():
                msg = msg.replace(ph, orig)
            for name, line in self.env.failed.items():
                if f"unknown name {name!r}" in msg:
                    msg += f" (the definition of {name!r} on line {line} is malformed)"
            raise VerificationError(msg) from None

    def _cut_integrals(self, text: str, field: str, extra: dict, shown: dict) -> str:
        while True:
            m = _INTEGRAL_RE.search(text)
            if not m:
                return text
            depth, end = 0, None
            for k in range(m.end() - 1, len(text)):
                if text[k] == "(":
                    depth += 1
                elif text[k] == ")":
                    depth -= 1
                    if depth == 0:
                        end = k
                        break
            if end is None:
                raise VerificationError(f"{field}: unbalanced brackets in integral(...) in {text!r}")
            inner = text[m.end():end]
            args = _split_top(inner, ",")
            if len(args) != 4:
                raise VerificationError(f"{field}: integral takes 4 arguments integral(g, s, lo, hi), "
                                        f"got {len(args)} in {text[m.start():end + 1]!r}")
            var = args[1].strip()
            if var not in self.env.symbols:
                raise VerificationError(f"{field}: the integration variable {var!r} of integral(...) is not a "
                                        f"declared symbol; declare it in a ```symbols block")
            g = self.parse(args[0], field)
            lo = self.parse(args[2], field)
            hi = self.parse(args[3], field)
            ph = self._placeholder()
            extra[ph] = sympy.Integral(g, (self.env.symbols[var], lo, hi))
            shown[ph] = text[m.start():end + 1]
            text = text[: m.start()] + ph + text[end + 1:]

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
        return _DERIV_RE.sub(repl, text)

    def derivative(self, n: str, s: str, field: str) -> sympy.Expr:
        env = self.env
        token = f"d{n}/d{s}"
        if s not in env.symbols:
            what = "a definition" if s in env.definitions else "not declared"
            raise VerificationError(f"{field}: in {token}, {s!r} is {what}; derivatives are taken with respect "
                                    f"to declared symbols")
        sym = env.symbols[s]
        if sym == env.time and n in env.rates:
            return env.rates[n]
        if n in env.definitions:
            return sympy.diff(env.definitions[n], sym)
        if n in env.symbols:
            if sym == env.time and env.kinds.get(n) == "states":
                raise VerificationError(f"{field}: {token} needs the model: declare 'ode: d{n}/dt = ...' in a "
                                        f"```symbols block")
            return sympy.diff(env.symbols[n], sym)
        if n in env.failed:
            raise VerificationError(f"{field}: in {token}, the definition of {n!r} (line {env.failed[n]}) is "
                                    f"malformed; fix it first")
        raise VerificationError(f"{field}: in {token}, {n!r} is not a declared symbol or definition")


def _check_size(expr: sympy.Expr, field: str) -> sympy.Expr:
    """``expr`` if its tree has at most MAX_EXPRESSION_NODES nodes (counted with an early stop, so a tree
    that is exponentially large but shared in memory costs no more than the cap to reject)."""
    n = 0
    for _ in sympy.preorder_traversal(expr):
        n += 1
        if n > MAX_EXPRESSION_NODES:
            raise VerificationError(f"{field}: the expression (definitions expanded) has more than "
                                    f"{MAX_EXPRESSION_NODES} nodes (MAX_EXPRESSION_NODES); state the claim on "
                                    f"smaller pieces")
    return expr


# ---------------------------------------------------------------------------------------------------
# Declarations


def _names_list(rest: str, where: str) -> list[str]:
    names = [p.strip() for p in rest.split(",")]
    if not rest.strip() or any(not p for p in names):
        raise VerificationError(f"{where}: expected a comma-separated list of names, got {rest.strip()!r}")
    for n in names:
        check_name(n, where)
    return names


def _declare_symbols(env: _Env, lines: list[Line], problems: list) -> list[Line]:
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
            names = _names_list(rest, where)
            if kind in ("time", "lr") and len(names) != 1:
                raise VerificationError(f"{where}: '{kind}:' declares exactly one name, got {len(names)}")
            for n in names:
                _check_new_name(env, n, where)
                positive = kind in ("positive", "lr")
                sym = sympy.Symbol(n, positive=True) if positive else sympy.Symbol(n, real=True)
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
            problems.append(Problem(env.path, ln.number, ln.text, _msg(exc, where)))
    return rest_lines


def _check_new_name(env: _Env, n: str, where: str) -> None:
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


def _msg(exc: Exception, where: str) -> str:
    text = " ".join(str(exc).split())
    return text if text.startswith(where) else f"{where}: {text}"


def _parse_with_where(parser: _Parser, text: str, field: str) -> sympy.Expr:
    body, where = _split_word(text, "where")
    value = parser.parse(body, field)
    if where is not None:
        value = value.subs(_substitutions(parser, where, field), simultaneous=True)
    return _check_size(value, field)


def _substitutions(parser: _Parser, text: str, field: str) -> dict:
    subs = {}
    for part in _split_top(text, ","):
        eq = _find_equals(part)
        if len(eq) != 1:
            raise VerificationError(f"{field}: 'where' expects 'symbol = expression' items separated by commas, "
                                    f"got {part.strip()!r}")
        name, expr = part[: eq[0]].strip(), part[eq[0] + 1:]
        if name not in parser.env.symbols:
            raise VerificationError(f"{field}: 'where {name} = ...': {name!r} is not a declared symbol")
        subs[parser.env.symbols[name]] = parser.parse(expr, field)
    return subs


def _declare_rest(env: _Env, parser: _Parser, lines: list[Line], problems: list) -> None:
    """Pass 2: definitions, the loss, the model, in file order."""
    for ln in lines:
        where = f"{env.path}:{ln.number}"
        try:
            d = _DEF_RE.match(ln.text)
            if d:
                name, body = d.group(1), d.group(2)
                check_name(name, where)
                _check_new_name(env, name, where)
                env.failed[name] = ln.number  # until the definition parses
                env.definitions[name] = _parse_with_where(parser, body, f"{where} (definition of {name})")
                del env.failed[name]
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
                env.ode[state] = (ln.number, _parse_with_where(parser, body, f"{where} (ode of {state})"))
            elif kind == "running":
                if env.running is not None:
                    raise VerificationError(f"{where}: the running cost is declared twice")
                env.running = _parse_with_where(parser, rest, f"{where} (running cost)")
        except (VerificationError, SpecError) as exc:
            problems.append(Problem(env.path, ln.number, ln.text, _msg(exc, where)))


def _build_model(env: _Env, problems: list) -> None:
    """Model from the ``ode:`` lines; fills ``env.rates`` with the derived systems' right-hand sides.

    Numeric values a Model needs (t0 = 0, t1 = 1, every parameter 1, z0 = 0) do not enter the derived
    right-hand sides, which are symbolic in every symbol; they only make the Model constructible.
    """
    if not env.ode:
        return
    from ..model import Model
    from ..symbolic.derive import derive
    first = min(n for n, _ in env.ode.values())
    where = f"{env.path}:{first}"
    states = [n for n, k in env.kinds.items() if k == "states"]
    missing = [s for s in states if s not in env.ode]
    if missing:
        problems.append(Problem(env.path, first, "ode", f"{where}: no 'ode:' line for state(s) "
                                                        f"{', '.join(missing)}; give one per state"))
        return
    zs = [env.symbols[s] for s in states]
    rhs = [env.ode[s][1] for s in states]
    used = set().union(*(e.free_symbols for e in rhs))
    if env.running is not None:
        used |= env.running.free_symbols
    # declared parameters first, then any other declared symbol the model uses (data, constants): all are
    # parameters of the Model, so derive() can differentiate with respect to each
    params = [env.symbols[n] for n, k in env.kinds.items() if k == "params"]
    params += [s for n, s in env.symbols.items()
               if s in used and s not in params and s not in zs and s != env.time]
    try:
        model = Model(name="document", states=zs, params=params, rhs=rhs, z0=[0] * len(zs), t0=0, t1=1,
                      param_values={p: 1 for p in params}, terminal=None if env.running is not None else 0,
                      running=env.running, t=env.time)
    except SpecError as exc:
        problems.append(Problem(env.path, first, "ode", f"{where}: the declared model is invalid: {exc}"))
        return
    d = derive(model)
    rename = {}
    auto: dict[str, sympy.Expr] = {}
    meaning: dict[str, str] = {}
    collisions: list[str] = []

    def add(name: str, derived_sym, rate, what: str):
        # S_x_a_b is both dx/d(a_b) and dx_a/db: never let one silently replace the other
        if name in meaning:
            collisions.append(f"{name!r} would be both {meaning[name]} and {what}")
            return
        meaning[name] = what
        sym = sympy.Symbol(name, real=True)
        rename[derived_sym] = sym
        auto[name] = (sym, rate)

    sn = [s.name for s in zs]
    pn = [p.name for p in params]
    for i, s in enumerate(sn):
        add(f"lambda_{s}", d.lam[i], d.adjoint_rhs[i], f"the adjoint of {s}")
        for j, p in enumerate(pn):
            add(f"S_{s}_{p}", d.S[i, j], d.sens_rhs[i, j], f"d{s}/d{p} (sensitivity)")
        for j, s2 in enumerate(sn):
            add(f"W_{s}_{s2}", d.W[i, j], d.sens_z0_rhs[i, j], f"d{s}/d{s2}(0) (initial-state sensitivity)")
    for j, p in enumerate(pn):
        add(f"mu_{p}", d.mu[j], d.adjoint_quad_rhs[j], f"the parameter quadrature of {p}")
    if collisions:
        decl = sorted({env.lines[n] for n in sn + pn if n in env.lines} | {first})
        lines = ", ".join(f"{env.path}:{k}" for k in decl)
        problems.append(Problem(env.path, first, "ode",
                                f"{where}: derived-system names collide: {'; '.join(collisions)}; rename the "
                                f"states/params declared at {lines} (e.g. without '_') so every derived name "
                                f"is unique"))
        return
    for name in auto:
        if env.known(name):
            at = f" (declared at {env.path}:{env.lines[name]})" if name in env.lines else ""
            problems.append(Problem(env.path, first, "ode", f"{where}: {name!r} is a name of the derived "
                                                            f"systems ({meaning[name]}); rename the declared "
                                                            f"{name!r}{at}"))
            return
    for name, (sym, rate) in auto.items():
        env.symbols[name] = sym
        env.kinds[name] = "derived"
        env.rates[name] = sympy.sympify(rate).xreplace(rename)
    for s, e in zip(sn, rhs):
        env.rates[s] = e


# ---------------------------------------------------------------------------------------------------
# Claims


def _parse_claim(env: _Env, parser: _Parser, ln: Line, expect: str | None) -> Claim:
    where = f"{env.path}:{ln.number}"
    text = ln.text
    head, rest = _split_word(text, "using") if "<-" in text else (text, None)
    arrow = _split_top(head, "<-")
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
        reference = p - env.lr * sympy.diff(env.definitions[loss], p)
        stated = parser.parse(arrow[1], f"{where} (right-hand side)")
        return Claim(env.path, ln.number, text, "update", reference, stated,
                     f"{name} - {env.lr.name}*d{loss}/d{name}", expect, frozenset(env.positive))
    if len(arrow) > 2:
        raise VerificationError(f"{where}: more than one '<-' in a claim")
    body, subs_text = _split_word(text, "where")
    eq = _find_equals(body)
    if len(eq) != 1:
        raise VerificationError(f"{where}: a claim is 'LHS = RHS' (one '=') or 'p <- RHS'; "
                                f"found {len(eq)} '=' in {text!r}")
    lhs_text, rhs_text = body[: eq[0]].strip(), body[eq[0] + 1:].strip()
    lhs = parser.parse(lhs_text, f"{where} (left-hand side)")
    rhs = parser.parse(rhs_text, f"{where} (right-hand side)")
    if subs_text is not None:
        subs = _substitutions(parser, subs_text, f"{where} (where)")
        lhs = _check_size(lhs.subs(subs, simultaneous=True), f"{where} (left-hand side)")
        rhs = _check_size(rhs.subs(subs, simultaneous=True), f"{where} (right-hand side)")
    kind, against = "equality", "the left-hand side"
    m = _DERIV_RE.fullmatch(lhs_text)
    if m and env.known(m.group(1)):
        n, s = m.groups()
        if env.time is not None and s == env.time.name and env.kinds.get(n) in ("states", "derived"):
            kind, against = "ode", f"d{n}/d{s} of the system symode.symbolic.derive derives from the model"
        else:
            kind, against = "derivative", f"the partial derivative d{n}/d{s}"
    elif lhs_text in env.definitions:
        against = f"the definition of {lhs_text}"
    return Claim(env.path, ln.number, text, kind, lhs, rhs, against, expect, frozenset(env.positive))


def _parse_expect(ln: Line, where: str) -> str:
    value = ln.text.split(":", 1)[1].strip().upper()
    if value not in STATUSES:
        raise VerificationError(f"{where}: 'expect:' must be one of {', '.join(STATUSES)}, got {value!r}")
    return value


def _looks_like_keyword(word: str) -> str | None:
    """'claim' or 'symbols' when a fence's info word looks like a misspelling of it (``claims``, ``Claim:``,
    ``symbol``, ``cliam``), else None."""
    import difflib
    w = re.sub(r"[^a-z]", "", word.lower())
    for kw in ("claim", "symbols"):
        if word != kw and (w.startswith(kw[:5]) or difflib.SequenceMatcher(None, w, kw).ratio() >= 0.75):
            return kw
    return None


def parse_document(text: str, path: str) -> Document:
    """Parse a derivation document's text (``path`` names it in messages).  Never raises for content:
    malformed declarations and claims become :class:`Problem` entries with their line."""
    doc = Document(path)
    problems: list = []
    others: list = []
    blocks = _blocks(text, path, problems, others)
    env = _Env(path)
    parser = _Parser(env)
    sym_lines = [ln for b in blocks if b.kind == "symbols" for ln in b.lines]
    rest = _declare_symbols(env, sym_lines, problems)
    _declare_rest(env, parser, rest, problems)
    _build_model(env, problems)
    entries = [(p.line, "problem", p) for p in problems]
    for b in blocks:
        if b.kind != "claim":
            continue
        expect = None
        expect_line = None
        claim_lines = []
        for ln in b.lines:
            if re.match(r"^expect\s*:", ln.text):
                if expect_line is not None:
                    # which one would hold is a guess: the block states no verdict until the author decides
                    entries.append((ln.number, "problem", Problem(
                        path, ln.number, ln.text, f"{path}:{ln.number}: a second 'expect:' line in the ```claim "
                                                  f"block (the first is on line {expect_line}); keep one, or "
                                                  f"split the block")))
                    continue
                expect_line = ln.number
                try:
                    expect = _parse_expect(ln, f"{path}:{ln.number}")
                except VerificationError as exc:
                    entries.append((ln.number, "problem", Problem(path, ln.number, ln.text, str(exc))))
            else:
                claim_lines.append(ln)
        if not claim_lines:
            entries.append((b.start, "problem", Problem(path, b.start, "```claim",
                                                        f"{path}:{b.start}: empty ```claim block")))
        for ln in claim_lines:
            try:
                entries.append((ln.number, "claim", _parse_claim(env, parser, ln, expect)))
            except (VerificationError, SpecError) as exc:
                entries.append((ln.number, "problem",
                                Problem(path, ln.number, ln.text, _msg(exc, f"{path}:{ln.number}"), expect,
                                        is_claim=True)))
    suspicious = [(n, w) for n, w in others if _looks_like_keyword(w)]
    for n, w in suspicious:
        entries.append((n, "problem", Problem(
            path, n, f"```{w}", f"{path}:{n}: a fenced block marked {w!r} is not read (only ```claim and "
                                f"```symbols are); did you mean ```{_looks_like_keyword(w)}?")))
    entries.sort(key=lambda e: e[0])
    if not any(b.kind == "claim" for b in blocks) and not any(p.is_claim for p in problems):
        # a whole-document problem: listed after the line-by-line ones
        entries.append((1, "problem", Problem(
            path, 1, "", f"{path}:1: no ```claim blocks found: the document states nothing to check (claims go "
                         f"in fenced blocks opened by a line ```claim; see derivations/README.md)")))
    doc.entries = [(k, v) for _, k, v in entries]
    doc.claims = [v for k, v in doc.entries if k == "claim"]
    doc.problems = [v for k, v in doc.entries if k == "problem"]
    doc.env, doc.parser = env, parser
    return doc


def read_document(path: str | Path) -> Document:
    """Read and parse a document file; a missing/unreadable/oversized file raises VerificationError."""
    p = Path(path)
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise VerificationError(f"{path}: cannot read the file ({exc.strerror or exc}); check the path") from None
    if not p.is_file():
        raise VerificationError(f"{path}: not a regular file; give a Markdown derivation document")
    if size > MAX_DOCUMENT_BYTES:
        raise VerificationError(f"{path}: {size} bytes, more than the cap of {MAX_DOCUMENT_BYTES}; split the "
                                f"document")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise VerificationError(f"{path}: cannot read the file as UTF-8 text ({exc})") from None
    return parse_document(text, str(path))
