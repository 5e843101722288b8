"""Call forms a derivation document adds to the expression grammar, cut out before the safe parser sees the text.

Each form is found in the text (a declared or reserved name followed by a bracket), its bracketed arguments
are split at top-level commas and parsed recursively by the document's parser, and the form is replaced by a
generated name bound to the SymPy value (nothing is evaluated as code):

* ``integral(g, s, lo, hi)``: ∫_lo^hi g ds.  Over the model's time symbol in a document with a loss model
  (``interval:``), the bare state and derived-system symbols in ``g`` are the solution's values at s (an
  integral *along the solution*);
* ``sum(g, i, lo, hi)``: Σ_{i=lo}^{hi} g over a declared ``index:`` symbol (SymPy ``Sum``); other uses of the
  name ``sum`` are left alone;
* ``at(g, T)``: ``g`` along the solution at time T (state and derived symbols -> their values at T, t -> T);
* ``x(T)``, ``lambda_x(T)``, ``lambda_x(T, after)``: a solution function of the model at time T;
* ``f(a, b)``: a declared abstract function (``functions: f(x, y)``), with as many arguments as declared;
* ``x[i]``: element i of declared indexed data (``indexed: x``; SymPy ``Indexed``).
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING

import sympy

from ..errors import VerificationError
from .matrices import elementwise, solution_array

if TYPE_CHECKING:
    from .grammar import ExpressionParser

#: Words that open a call form in every document.
WORDS = ("integral", "sum", "at")


def _split_top(text: str) -> list[str]:
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    parts.append("".join(cur))
    return parts


def _close(text: str, open_at: int) -> int | None:
    """Index of the bracket closing the one at ``open_at``."""
    depth = 0
    for k in range(open_at, len(text)):
        if text[k] in "([{":
            depth += 1
        elif text[k] in ")]}":
            depth -= 1
            if depth == 0:
                return k
    return None


def cut_forms(parser: "ExpressionParser", text: str, field: str, extra: dict, shown: dict) -> str:
    """``text`` with every call form replaced by a generated name bound in ``extra`` (see the module docstring)."""
    env = parser.env
    model = getattr(env, "model", None)
    calls = set(WORDS) | set(env.functions)
    if model is not None:
        calls |= set(model.fn) | _solution_arrays(env)
    indexed = set(env.indexed)
    names = sorted(calls | indexed, key=len, reverse=True)
    pattern = re.compile(r"(?<![A-Za-z0-9_.])(" + "|".join(map(re.escape, names)) + r")\s*([(\[])")
    pos = 0
    while True:
        m = pattern.search(text, pos)
        if not m:
            return text
        name, bracket = m.group(1), m.group(2)
        if (bracket == "(") != (name in calls) or (bracket == "[" and name not in indexed):
            pos = m.end()
            continue
        end = _close(text, m.end() - 1)
        if end is None:
            raise VerificationError(f"{field}: unbalanced brackets after {name!r} in {text.strip()!r}")
        args = _split_top(text[m.end():end])
        value = _form(parser, name, bracket, args, field, text[m.start():end + 1])
        if value is None:          # not this form (sum(x) of the array algebra): leave the text alone
            pos = m.end()
            continue
        ph = parser._placeholder()
        extra[ph] = value
        shown[ph] = text[m.start():end + 1]
        text = text[: m.start()] + ph + text[end + 1:]
        pos = m.start() + len(ph)


def _solution_arrays(env) -> set:
    """Arrays whose elements are solution functions of the model (a spec's states and their adjoints)."""
    model = env.model
    return {n for n, g in env.array_groups.items() if all(e.name in model.fn for e in g.elements)}


def _nargs(name: str, args: list, want, field: str, whole: str) -> None:
    if len(args) not in ((want,) if isinstance(want, int) else want):
        shape = {"integral": "integral(g, s, lo, hi)", "sum": "sum(g, i, lo, hi)", "at": "at(g, T)"}.get(name, name)
        raise VerificationError(f"{field}: {shape} takes {want if isinstance(want, int) else ' or '.join(map(str, want))}"
                                f" arguments, got {len(args)} in {whole!r}")


def _form(parser, name: str, bracket: str, args: list, field: str, whole: str):
    env = parser.env
    model = getattr(env, "model", None)
    if bracket == "[":
        if len(args) != 1:
            raise VerificationError(f"{field}: indexed data takes one index, e.g. x[i], got {whole!r}")
        return env.indexed[name][parser.parse(args[0], field)]
    if name == "integral" and name not in env.functions:
        _nargs(name, args, 4, field, whole)
        var = args[1].strip()
        if var not in env.symbols:
            raise VerificationError(f"{field}: the integration variable {var!r} of integral(...) is not a "
                                    f"declared symbol; declare it in a ```symbols block")
        s = env.symbols[var]
        g, lo, hi = (parser.parse(a, field) for a in (args[0], args[2], args[3]))
        if s in lo.free_symbols | hi.free_symbols:
            raise VerificationError(f"{field}: the integration variable {var!r} appears in the limits of {whole!r}")
        along = model is not None and s == model.time
        return elementwise(g, lambda e: sympy.Integral(model.at(e, s) if along else e, (s, lo, hi)), whole)
    if name == "sum" and name not in env.functions:
        if len(args) != 4:
            return None
        var = args[1].strip()
        if env.kinds.get(var) != "index":
            raise VerificationError(f"{field}: the summation index {var!r} of {whole!r} is not declared; declare "
                                    f"it under 'index:'")
        g, lo, hi = (parser.parse(a, field) for a in (args[0], args[2], args[3]))
        return sympy.Sum(g, (env.symbols[var], lo, hi))
    if name == "at" and name not in env.functions:
        _nargs(name, args, 2, field, whole)
        if model is None:
            raise VerificationError(f"{field}: at(g, T) needs the model's interval: declare 'interval: t0, t1'")
        T = parser.parse(args[1], field)
        return elementwise(parser.parse(args[0], field), lambda e: model.at(e, T), whole)
    if name in env.functions:
        fn, formal = env.functions[name]
        _nargs(name, args, len(formal), field, whole)
        return fn(*(parser.parse(a, field) for a in args))
    # a solution function of the model
    _nargs(name, args, (1, 2), field, whole)
    after = False
    if len(args) == 2:
        side = args[1].strip()
        if side not in ("after", "before"):
            raise VerificationError(f"{field}: the second argument of {name}(T, ...) is 'after' or 'before', "
                                    f"got {side!r}")
        after = side == "after"
    T = parser.parse(args[0], field)
    if name not in model.fn:
        return solution_array(env, name, T, after)
    return (model.fn_after if after else model.fn)[name](T)
