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

from ..errors import SpecError, VerificationError
from .declarations import (OTHER_KINDS, SYMBOL_KINDS, Env, Problem, declare_rest, declare_symbols,
                           retry_definitions)
from .fences import Line, blocks as fenced_blocks, looks_like_keyword
from .grammar import (MAX_EXPRESSION_NODES, RESERVED, STATUSES, Claim, ExpressionParser, message_at, parse_claim,
                      parse_expect)
from .matrices import declare_spec, derived_arrays
from .odemodel import build_model

__all__ = ["MAX_DOCUMENT_BYTES", "MAX_EXPRESSION_NODES", "OTHER_KINDS", "RESERVED", "STATUSES", "SYMBOL_KINDS",
           "Claim", "Document", "Problem", "parse_document", "read_document"]

#: Largest document read (a derivation is a few kB; the cap bounds parsing time).
MAX_DOCUMENT_BYTES = 1_000_000


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
            return parse_claim(self.env, self.parser, Line(line, text.strip()), expect)
        except SpecError as exc:
            raise VerificationError(message_at(exc, f"{self.path}:{line}")) from None


def parse_document(text: str, path: str) -> Document:
    """Parse a derivation document's text (``path`` names it in messages).  Never raises for content:
    malformed declarations and claims become :class:`Problem` entries with their line."""
    doc = Document(path)
    problems: list = []
    others: list = []
    unclosed: list = []
    blocks = fenced_blocks(text, unclosed, others)
    for u in unclosed:
        problems.append(Problem(path, u.line, u.text, f"{path}:{u.line}: the ```{u.kind} block opened here is never "
                                                      f"closed; end it with a line of {u.fence}",
                                is_claim=(u.kind == "claim")))
    env = Env(path)
    parser = ExpressionParser(env)
    sym_lines = [ln for b in blocks if b.kind == "symbols" for ln in b.lines]
    rest = declare_symbols(env, sym_lines, problems)
    for b in blocks:
        if b.kind == "spec":
            declare_spec(env, "\n".join(ln.text for ln in b.lines), b.start, problems, Problem)
    declare_rest(env, parser, rest, problems)
    build_model(env, problems)
    if env.array_groups:
        derived_arrays(env)
    if env.retry and env.model is not None:
        retry_definitions(env, parser, problems)
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
                    expect = parse_expect(ln, f"{path}:{ln.number}")
                except VerificationError as exc:
                    entries.append((ln.number, "problem", Problem(path, ln.number, ln.text, str(exc))))
            else:
                claim_lines.append(ln)
        if not claim_lines:
            entries.append((b.start, "problem", Problem(path, b.start, "```claim",
                                                        f"{path}:{b.start}: empty ```claim block")))
        for ln in claim_lines:
            try:
                entries.append((ln.number, "claim", parse_claim(env, parser, ln, expect)))
            except (VerificationError, SpecError) as exc:
                entries.append((ln.number, "problem",
                                Problem(path, ln.number, ln.text, message_at(exc, f"{path}:{ln.number}"), expect,
                                        is_claim=True)))
    suspicious = [(n, w) for n, w in others if looks_like_keyword(w)]
    for n, w in suspicious:
        entries.append((n, "problem", Problem(
            path, n, f"```{w}", f"{path}:{n}: a fenced block marked {w!r} is not read (only ```claim and "
                                f"```symbols are); did you mean ```{looks_like_keyword(w)}?")))
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
