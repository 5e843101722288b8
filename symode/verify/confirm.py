"""Claims that cannot be evaluated as stated: an evaluable equivalent, or a confirmation of SymPy's fallible steps.

A claim with an abstract function (``f(z)``) or a sum of more than 10000 terms has no numeric value, so the
numbers cannot confirm a symbolic proof that went through a step SymPy can get wrong (its antiderivative of
|sin s| is wrong past 2*pi: ``integral(abs(sin(s)), s, 0, 10)*f(z) = (3 + cos(10))*f(z)`` was "proved").

* :func:`evaluable_form` rewrites such a claim into an equivalent one that can be evaluated, where that is
  exact: each abstract function applied at one argument tuple only (and its derivatives there), none of them
  bound by an integral or a sum, becomes a free real value (the claim holds for every f exactly when it holds
  for every value of f(z) and of its derivatives at z: a smooth f takes any values and derivatives at one
  point); a sum whose term does not depend on its index becomes the number of terms times the term.
* :func:`unconfirmed` says why a symbolic proof of a claim that still cannot be evaluated is not confirmed:
  each integral without abstract functions is evaluated by rigorous quadrature and compared with SymPy's
  antiderivative at a few points; an integral with an abstract function, or an ``abs``/``Piecewise``/...
  outside the integrals, cannot be confirmed (the proof is then UNDECIDED, never TRUE).
"""
from __future__ import annotations

import random

import sympy
from sympy.core.function import AppliedUndef

from .balls import Unevaluable
from .numeric import compare_at
from .points import random_point
from .symbolic import FALLIBLE, integrated
from .tolerances import VERIFY_SETTINGS

__all__ = ["evaluable_form", "unconfirmed"]


def _bound(exprs) -> set:
    """Every variable bound by an integral or a sum in ``exprs``."""
    out = set()
    for e in exprs:
        for node in e.atoms(sympy.Integral, sympy.Sum):
            out.update(lim[0] for lim in node.limits)
    return out


def _function_values(exprs) -> dict | None:
    """{application or derivative node: free real symbol} for the abstract functions of ``exprs``, or None when
    one is applied at two argument tuples, inside a binding of its arguments, or in a node other than a plain
    application or a derivative of one (a Subs, a derivative at a composite argument)."""
    bound = _bound(exprs)
    nodes = set()
    for e in exprs:
        nodes |= e.atoms(AppliedUndef)
    if not nodes:
        return {}
    args: dict = {}
    for a in nodes:
        if args.setdefault(a.func, a.args) != a.args or a.free_symbols & bound:
            return None
    names = {}
    for e in exprs:
        for d in e.atoms(sympy.Derivative, sympy.Subs):
            if not (isinstance(d, sympy.Derivative) and isinstance(d.expr, AppliedUndef)
                    and all(v in d.expr.args for v, _ in d.variable_count)):
                if d.has(*nodes):
                    return None
                continue
            # an unambiguous name: d^2f/dz^2 and df/dzz (a variable named zz) must not be one symbol
            order = sum(n for _, n in d.variable_count)
            names[d] = sympy.Symbol(f"d{'^' + str(order) if order > 1 else ''}{d.expr.func}/"
                                    + " ".join(f"d{v}" + (f"^{n}" if n > 1 else "") for v, n in d.variable_count)
                                    + f"({', '.join(map(str, d.expr.args))})", real=True)
    for a in nodes:
        names[a] = sympy.Symbol(f"{a.func}({', '.join(map(str, a.args))})", real=True)
    return names


def _counted_sums(exprs) -> dict:
    """{Sum: count * term} for the sums whose term does not depend on the index (count >= 0 known)."""
    out = {}
    for e in exprs:
        for s in e.atoms(sympy.Sum):
            if len(s.limits) != 1:
                continue
            i, lo, hi = s.limits[0]
            count = hi - lo + 1
            if i not in s.function.free_symbols and count.is_nonnegative:
                out[s] = count * s.function
    return out


def evaluable_form(reference, stated):
    """(reference, stated, what was rewritten) equivalent to the claim and without abstract functions or sums
    of constant terms (see the module docstring), or None when no such rewriting applies."""
    exprs = (sympy.sympify(reference), sympy.sympify(stated))
    said = []
    sums = _counted_sums(exprs)
    if sums:
        exprs = tuple(e.xreplace(sums) for e in exprs)
        said.append("each sum of a term independent of its index written as the count times the term")
    names = _function_values(exprs)
    if names is None:
        return None
    if names:
        # derivatives first: they contain the applications
        order = sorted(names, key=lambda n: not isinstance(n, sympy.Derivative))
        for n in order:
            exprs = tuple(e.xreplace({n: names[n]}) for e in exprs)
        shown = ", ".join(sorted(s.name for s in names.values()))
        said.append(f"{shown} taken as free values (the claim holds for every function exactly when it holds for "
                    f"every value of the function and its derivatives at the one point where it is applied)")
    if not said:
        return None
    return exprs[0], exprs[1], "; ".join(said)


def unconfirmed(reference, stated, positive=frozenset(), seed: int = 20181) -> str:
    """Why a symbolic proof of ``reference == stated`` (a claim that cannot be evaluated) through fallible
    steps is not confirmed, or "" when every fallible step is: each integral agrees with SymPy's
    antiderivative at ``confirm_integral_points`` points (quadrature, ball arithmetic)."""
    exprs = (sympy.sympify(reference), sympy.sympify(stated))
    integrals = set()
    for e in exprs:
        integrals |= e.atoms(sympy.Integral)
    outside = [e.xreplace({i: sympy.Dummy() for i in integrals}) for e in exprs]
    if any(e.has(*FALLIBLE) for e in outside):
        return ("the proof went through abs/sign/Piecewise/Max/Min/Heaviside, which SymPy can get wrong, and the "
                "claim cannot be evaluated to confirm it")
    rng = random.Random(seed)
    for i in sorted(integrals, key=sympy.default_sort_key):
        anti = integrated(i)
        if anti.has(sympy.Integral):
            continue                     # not done by SymPy: the proof did not use an antiderivative of it
        syms = sorted((s for s in i.free_symbols if isinstance(s, sympy.Symbol)), key=lambda s: s.name)
        wanted = VERIFY_SETTINGS["confirm_integral_points"] if syms else 1
        agree = 0
        for _ in range(wanted * VERIFY_SETTINGS["max_tries_factor"]):
            p = random_point(syms, rng, positive, narrow=True)
            try:
                o = compare_at(i, anti, p)
            except Unevaluable as exc:
                return f"the proof used SymPy's antiderivative of {i}, which cannot be evaluated to confirm it ({exc})"
            except (ValueError, ZeroDivisionError, ArithmeticError):
                continue
            if o.status == "differ":
                where = ", ".join(f"{s} = {v}" for s, v in p.items()) or "its only value"
                return (f"the proof used SymPy's antiderivative of {i}, {anti}, which rigorous quadrature "
                        f"contradicts at {where} (quadrature {o.values[0]}, SymPy {o.values[1]})")
            agree += o.status == "agree"
            if agree >= wanted:
                break
        if agree < wanted:
            return f"SymPy's antiderivative of {i} could not be confirmed by quadrature at {wanted} points"
    return ""
