"""Singularities in the text of an expression that SymPy's automatic evaluation removed at parse time.

:func:`removed_singularities` evaluates an expression's text *as written* (the syntax tree of
:func:`symode.expr.parse_written`) in mpmath, each function by its entry of the function table
(:data:`MPMATH_FUNCTIONS`, checked against the table's domains); a division by 0, a function outside its
domain (log of <= 0, sqrt of < 0) or 0**negative there is a singularity of the text.  Where the parsed
expression is finite there, SymPy removed it (``0*log(z)`` -> 0, ``z/z`` -> 1): every symode route evaluates
the simplified expression while a candidate evaluating the text as written gets NaN/Inf.
:func:`model_removed_singularities` checks every expression text of a spec-built model.

Limits (stated, not hidden): the text is evaluated at given points only; singularities SymPy introduced, or
cancellations that only occur at points nobody asked about, are not found.
"""
from __future__ import annotations

import ast
from typing import Any, Mapping, Sequence

import mpmath
import sympy

from ..errors import SpecError
from ..expr import FUNCTIONS, Written, make_symbol, names_in, parse_decimal, parse_written, register_backend
from .numbers import exact_number, to_mpf

__all__ = ["removed_singularities", "model_removed_singularities", "MPMATH_FUNCTIONS"]


#: The mpmath implementation of each function a spec may call (:data:`symode.expr.FUNCTIONS`), by name, for
#: evaluating an expression's text as written; a point outside the function's domain is a finding, not a call.
MPMATH_FUNCTIONS = register_backend("mpmath", "grammar", {
    "sin": mpmath.sin,
    "cos": mpmath.cos,
    "tan": mpmath.tan,
    "exp": mpmath.exp,
    "log": mpmath.log,
    "sqrt": mpmath.sqrt,
    "tanh": mpmath.tanh,
    "sinh": mpmath.sinh,
    "cosh": mpmath.cosh,
    "atan": mpmath.atan,
    "asinh": mpmath.asinh,
    "sigmoid": lambda x: 1 / (1 + mpmath.exp(-x)),
    "softplus": lambda x: mpmath.log(1 + mpmath.exp(x)),
    "abs": abs,
})


def _outside_domain(fname: str, a) -> str:
    """The finding for ``fname`` called at ``a`` outside its domain ("log of 0", "sqrt of a negative number -1")."""
    if a == 0:
        return f"{fname} of 0"
    if a < 0:
        return f"{fname} of a negative number {mpmath.nstr(a, 6)}"
    return f"{fname} of {mpmath.nstr(a, 6)}, outside its domain {FUNCTIONS[fname].domain.interval}"


def _strict_eval(written: Written, point: dict, findings: list) -> mpmath.mpf:
    """Evaluate the expression as written (``written.tree``) literally in mpmath, no simplification; record
    each singular operation (division by 0, 0 to a negative power, a negative base to a fraction power, a
    function outside its domain: log of <= 0, sqrt of < 0) as (text of the node, reason).  ``point`` maps each
    name as written to its value.  Iterative post-order: a left-nested sum of 2,000 terms is fine."""
    nan = mpmath.mpf("nan")
    seg = written.segment
    vals: dict[int, Any] = {}
    stack = [(written.tree.body, False)]
    while stack:
        node, done = stack.pop()
        if not done:
            stack.append((node, True))
            for child in (list(ast.iter_child_nodes(node))):
                if isinstance(child, ast.expr) and not (isinstance(node, ast.Call) and child is node.func):
                    stack.append((child, False))
            continue
        if isinstance(node, ast.Constant):
            q = parse_decimal(seg(node), "number")
            v = mpmath.mpf(int(q.p)) / int(q.q)
        elif isinstance(node, ast.Name):
            v = point[written.name(node)]
        elif isinstance(node, ast.UnaryOp):
            a = vals[id(node.operand)]
            v = -a if isinstance(node.op, ast.USub) else a
        elif isinstance(node, ast.BinOp):
            v = _strict_binop(node, vals[id(node.left)], vals[id(node.right)], seg, findings)
        elif isinstance(node, ast.Call):
            fname = written.name(node.func)
            a = vals[id(node.args[0])]
            domain = FUNCTIONS[fname].domain.contains
            if not mpmath.isfinite(a):
                v = nan
            elif domain is not None and not domain(a):
                findings.append((seg(node), _outside_domain(fname, a)))
                v = nan
            else:
                v = MPMATH_FUNCTIONS[fname](a)
        else:  # parse_expression already refused everything else
            raise SpecError(f"unexpected syntax {type(node).__name__}")
        vals[id(node)] = v
    return vals[id(written.tree.body)]


def _strict_binop(node: ast.BinOp, a, b, seg, findings: list):
    """``a op b`` as written (see :func:`_strict_eval`)."""
    if not (mpmath.isfinite(a) and mpmath.isfinite(b)):
        return mpmath.mpf("nan")  # an inner singularity was already recorded; NaN propagates through everything
    if isinstance(node.op, ast.Add):
        return a + b
    if isinstance(node.op, ast.Sub):
        return a - b
    if isinstance(node.op, ast.Mult):
        return a * b
    if isinstance(node.op, ast.Div):
        if b == 0:
            findings.append((seg(node), f"division by zero (denominator {seg(node.right)} = 0)"))
            return mpmath.mpf("nan")
        return a / b
    # Pow
    if a == 0 and b < 0:
        findings.append((seg(node), f"0 to the negative power {mpmath.nstr(b, 6)}"))
        return mpmath.mpf("nan")
    if a < 0 and b != mpmath.floor(b):
        findings.append((seg(node), f"negative base {mpmath.nstr(a, 6)} to the non-integer power "
                                    f"{mpmath.nstr(b, 6)}"))
        return mpmath.mpf("nan")
    return mpmath.power(a, b)


def removed_singularities(text: str, point: Mapping[str, Any], *, candidate=None, rtol: float = 1e-9,
                          atol: float = 0.0, field: str = "expression") -> list[str]:
    """Singularities in the written ``text`` at ``point`` that SymPy's automatic evaluation removed.

    ``point`` maps every name the text uses (states, parameters, ``t``) to a value.  The text is first parsed
    by :func:`symode.expr.parse_expression` (the whitelist; nothing is evaluated as code), then its syntax tree
    is evaluated *as written* in mpmath: each division by 0, log of <= 0, sqrt of < 0 or 0**negative is a
    singularity of the text.  If the parsed (simplified) SymPy expression is finite there, SymPy removed it
    (``0*log(z)`` -> 0, ``z/z`` -> 1): every symode route uses the simplified value, while a candidate that
    evaluates the text literally gets NaN/Inf or an error.

    ``candidate``: the candidate's value of the expression at ``point``.  If given, a finding is reported only
    when it differs from the simplified value (the metric of :func:`compare` with ``rtol``/``atol``, or
    non-finite): "the candidate may disagree
    here".  Without it, every removed singularity is reported.  Singularities the simplified expression keeps
    are reported as such.  Limit: points only (no search for where a denominator vanishes).
    """
    from ..model import T

    if not isinstance(text, str):
        raise SpecError(f"{field}: removed_singularities needs the expression text as written (a str); a SymPy "
                        f"expression has already been simplified, its removed singularities are gone")
    names = {n: (T if n == "t" else make_symbol(n)) for n in point}
    written = parse_written(text, names, field)
    expr = written.expr
    exact = {names[n]: exact_number(v, f"{field}: point[{n}]") for n, v in point.items()}
    findings: list = []
    with mpmath.workdps(50):
        mp_point = {n: to_mpf(exact[names[n]]) for n in point}
        _strict_eval(written, mp_point, findings)
        if not findings:
            return []
        simplified = sympy.N(expr.xreplace(exact), 50)
        finite = simplified.is_number and simplified.is_real and simplified.is_finite
        at = ", ".join(f"{n} = {v}" for n, v in point.items())
        where = "; ".join(f"{reason} in `{seg}`" for seg, reason in findings)
        if not finite:
            return [f"{field}: singular at {at}: {where}; the parsed expression is not finite there either "
                    f"({simplified}): no route can evaluate it at this point"]
        s = to_mpf(simplified)
        if candidate is None:
            return [f"{field}: SymPy simplified away a singularity at {at}: {where}; the parsed expression "
                    f"`{expr}` is {mpmath.nstr(s, 17)} there and every symode route uses that value, while a "
                    f"candidate evaluating the text as written gets NaN/Inf or an error: it may disagree here"]
        c = to_mpf(candidate)
        if mpmath.isfinite(c) and abs(c - s) <= atol + rtol * max(abs(c), abs(s)):
            return []
        return [f"{field}: the candidate may disagree here: SymPy simplified away a singularity at {at} "
                f"({where}); the candidate gives {mpmath.nstr(c, 17)}, the parsed expression `{expr}` gives "
                f"{mpmath.nstr(s, 17)}"]


def model_removed_singularities(model, *, points: Sequence[Mapping[str, Any]] = (),
                                candidates: Mapping[str, Any] | None = None) -> list[str]:
    """:func:`removed_singularities` for every expression text of a spec-built model.

    Checked at the initial point (parameters at their nominal values, states at z0(θ), t = t0): the z0, rhs and
    running-cost texts; and at each extra point in ``points`` (mappings name -> value for states, t and any
    parameter to override): the rhs, running and terminal texts.  ``candidates`` maps a field name
    (``"rhs[0]"``, ``"z0[1]"``, ``"loss.running"``) to the candidate's value at the initial point.  A model
    built in Python has no text (SymPy simplified it on construction): that is an error, not an empty list.
    """
    spec = model.spec
    if not spec:
        raise SpecError(f"model {model.name!r} has no spec text; removed singularities can only be found in the "
                        f"text as written: call removed_singularities(text, point) with the expression text")
    if getattr(model, "structure", None) is not None:
        raise SpecError(f"model {model.name!r} has vectors or matrices: its texts are array expressions, which "
                        f"this check does not evaluate; call removed_singularities(text, point) on scalar texts")
    candidates = dict(candidates or {})
    params = {p.name: model.param_values[p] for p in model.params}
    z0 = {s.name: e.xreplace(model.param_values) for s, e in zip(model.states, model.z0)}
    initial = {**params, **z0, "t": model.t0}
    loss = spec.get("loss", {}) if isinstance(spec.get("loss"), Mapping) else {}
    out = []

    def check(text, pt, fld, cand=None):
        if not isinstance(text, str):
            return
        used = names_in(text)
        out.extend(removed_singularities(text, {n: v for n, v in pt.items() if n in used}, candidate=cand,
                                         field=fld))

    for i, text in enumerate(spec.get("z0", [])):
        check(text, params, f"z0[{i}]", candidates.get(f"z0[{i}]"))
    for i, text in enumerate(spec.get("rhs", [])):
        check(text, initial, f"rhs[{i}]", candidates.get(f"rhs[{i}]"))
    check(loss.get("running"), initial, "loss.running", candidates.get("loss.running"))
    for j, extra in enumerate(points):
        pt = {**initial, **dict(extra)}
        for i, text in enumerate(spec.get("rhs", [])):
            check(text, pt, f"rhs[{i}] (point {j})")
        check(loss.get("running"), pt, f"loss.running (point {j})")
        check(loss.get("terminal"), pt, f"loss.terminal (point {j})")
    return out
