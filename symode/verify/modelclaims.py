"""Checking a claim that names the model's solution, adjoint, loss or gradients (:mod:`symode.verify.lossmodel`).

1. Numbers first, where the document gives values (``values:``): both sides at those values, every solution
   value, integral along the solution and loss quantity taken from :mod:`symode.verify.trajectory` (the oracle
   at 30 digits, with its error bound) as a ball of that radius, evaluated in ball arithmetic.  Symbols of the
   claim without a value are universally quantified: they are sampled at a few small rationals.  The sides
   *differ* when LHS - RHS excludes 0 even with every radius multiplied by ``oracle_false_factor``: FALSE
   (oracle).  They *agree* when the ball of LHS - RHS contains 0 and its radius is below
   10^-oracle_agree_digits times the scale of the terms.
2. Symbolic proof (:mod:`symode.verify.references`): each side in canonical form, in the adjoint form of the
   gradient formulas, then the forward-sensitivity form; LHS - RHS reduced to 0 by SymPy with the solution
   values as unknown functions of time is TRUE (symbolic), a proof for every solution (and every abstract
   function).  When the numbers of step 1 disagree with a proof, the verdict follows the numbers and says so.
   When the canonical sides no longer mention the solution at all, the general check decides
   (:func:`symode.verify.claims.check`: FALSE with a counterexample is possible there).
3. Otherwise the numbers decide: agreement is "TRUE (oracle, 30 digits)", a strong numeric check at the
   document's values (labelled so, with the digits and the error bound), never float64; else UNDECIDED with
   the reason.  Before that TRUE, each kink of the claim's own terms (abs, ...) that both points leave on one
   side is crossed: the claim is checked at a point across it (a term ``abs(k - 0.3) - (k - 0.3)`` is 0 at
   k = 1/2 and at its moved neighbour, nonzero below 0.3); a kink in a solution value, which cannot be
   located before solving, leaves the claim UNDECIDED.
"""
from __future__ import annotations

import copy
import random
from dataclasses import dataclass, field

import mpmath
import sympy
from flint import acb, arb, fmpz

from ..errors import SymodeError
from .balls import Unevaluable, evaluate, working_precision
from .claims import Verdict, check
from .lossmodel import Ambiguous, LossModel
from .extrapoints import free_samples, saturated, short, sign_at
from .points import SMALL
from .printer import Unprintable, document_syntax
from .references import FORMS, Canon
from .confirm import unconfirmed
from .symbolic import attempt, fallible
from .tolerances import VERIFY_SETTINGS
from .trajectory import compute_table, keys_of, normalized

__all__ = ["check_model_claim", "is_model_claim", "prepare_table"]


def is_model_claim(model: LossModel | None, *exprs) -> bool:
    return model is not None and any(model.has_quantities(e) or model.along_integrals(e) for e in exprs)


def prepare_table(model: LossModel, exprs, budget: tuple | None = None) -> None:
    """Compute (once, for all claims of a document) every numeric value the expressions need at every point
    of the model; under ``budget`` = (seconds, MiB) in a child process.  Failures are recorded per value,
    never raised."""
    from .trajectory import Table
    table = model.table if model.table is not None else Table()
    missing: dict = {}
    for p, point in enumerate(model.points):
        fingerprint = point.model.fingerprint()
        for e in exprs:
            for k in keys_of(model, normalized(model, e), point.values)[0].values():
                if table.has((p, k)):
                    continue
                hit = _VALUES.get((fingerprint, k))
                if hit is not None:
                    table.values[(p, k)], notes = hit
                    table.notes.update(notes)
                else:
                    missing.setdefault(p, set()).add(k)
    model.table = table
    if not missing:
        return
    if budget is None:
        new = compute_table(model, missing)
    else:
        from ..symbolic.budget import BudgetExceeded, call_with_budget
        try:
            new = call_with_budget(compute_table, model, missing, seconds=budget[0], memory_mb=budget[1],
                                   what="computing the model's solution at the document's values")
        except BudgetExceeded as exc:
            new = Table(failed={(p, k): " ".join(str(exc).split()) for p, ks in missing.items() for k in ks})
    table.values.update(new.values)
    table.failed.update(new.failed)
    table.notes.update(new.notes)
    if len(_VALUES) > 20_000:
        _VALUES.clear()
    for (p, k), v in new.values.items():
        _VALUES[(model.points[p].model.fingerprint(), k)] = (v, dict(new.notes))


#: Values already computed, by (model fingerprint, key): documents that state claims about the same model at
#: the same values (a document and its mutated copy) share them within one run.
_VALUES: dict = {}


@dataclass
class _Num:
    status: str                    # "differ", "agree", "unresolved", "unavailable"
    detail: str = ""
    point: dict = field(default_factory=dict)
    values: tuple = ()
    digits: int = 0
    points: int = 0
    where: str = "the document's values"


def _ball(mid: mpmath.mpf, rad: mpmath.mpf, factor: int = 1) -> acb:
    sign, man, exp, _ = mid._mpf_            # the exact binary value (never mpf(mid): that rounds to mp.prec)
    m = arb(fmpz(int(man) * (-1 if sign else 1))) * arb(2) ** int(exp) if man else arb(0)
    with mpmath.workdps(30):
        r = arb(mpmath.nstr(rad * factor, 20, min_fixed=-1, max_fixed=-1)) * (1 + arb(2) ** -40)
    return acb(m + arb(0, r.upper()))


def _show(model: LossModel, point: dict) -> str:
    return ", ".join(f"{s} = {v}" for s, v in point.items())


def numeric(model: LossModel, reference, stated, positive=frozenset()) -> _Num:
    """Step 1 of the module docstring, at every point of the model (FALSE at one is FALSE)."""
    if not model.points:
        return _Num("unavailable", model.numeric_reason)
    digits, n = [], 0
    for p, point in enumerate(model.points):
        out = _numeric_at(model, p, point, reference, stated, positive)
        if out.status != "agree":
            return out
        digits.append(out.digits)
        n += out.points
    if len(model.points) < VERIFY_SETTINGS["oracle_points"]:
        return _Num("unresolved", f"the sides agree at the document's values, but {model.numeric_reason}, and one "
                                  f"point cannot tell a claim that holds only there")
    return _Num("agree", digits=min(digits), points=n,
                point={s.name: str(v) for s, v in model.points[0].values.items()})


def _numeric_at(model: LossModel, p: int, point, reference, stated, positive) -> _Num:
    reference, stated = normalized(model, reference), normalized(model, stated)
    keys, bad = keys_of(model, reference, point.values)
    k2, b2 = keys_of(model, stated, point.values)
    keys.update(k2)
    bad.update(b2)
    if bad:
        node, why = next(iter(bad.items()))
        return _Num("unavailable", f"{node} cannot be evaluated: {why}")
    if model.table is None or any(not model.table.has((p, k)) for k in keys.values()):
        prepare_table(model, [reference, stated])
    table = model.table
    for node, k in keys.items():
        if (p, k) in table.failed:
            return _Num("unavailable", f"no value for {node}: {table.failed[(p, k)]}")
    holders = {node: sympy.Symbol(f"v__{i}", real=True) for i, node in enumerate(keys)}
    R, S = sympy.sympify(reference).xreplace(holders), sympy.sympify(stated).xreplace(holders)
    free = sorted((R.free_symbols | S.free_symbols) - set(holders.values()) - set(point.values),
                  key=lambda s: s.name)
    rng = random.Random(20181)
    samples = [{}] if not free else [
        {s: (abs(v) if s in positive else v) for s, v in zip(free, rng.sample(SMALL, len(free)) if len(free) <= len(SMALL)
                                                           else [rng.choice(SMALL) for _ in free])}
        for _ in range(VERIFY_SETTINGS["oracle_sample_points"])]
    fixed = {s: v for s, v in point.values.items() if s in R.free_symbols | S.free_symbols}
    balls = {holders[n]: table.values[(p, k)] for n, k in keys.items()}
    digits = []
    probes = free_samples(R, S, free, fixed, balls, positive, rng) if free else []
    for i, sample in enumerate(samples + probes):
        exact = {**fixed, **sample}
        out = _compare(R, S, exact, balls)
        if i >= len(samples) and out.status != "differ":
            continue                # a probe: only a difference counts (an extreme value may be out of domain)
        if out.status in ("differ", "unresolved", "unavailable"):
            out.point = {s.name: str(v) for s, v in {**point.values, **sample}.items()}
            out.where = ("the second point (the document's values moved; they agree at the document's values, so "
                         "the claim holds there only: it relies on the values themselves, such as t0 = 0, or on a "
                         "time written as a number, which is not moved with t0 and t1)" if p
                         else "the document's values")
            return out
        digits.append(out.digits)
    return _Num("agree", digits=min(digits), points=len(samples))


def _compare(R, S, exact: dict, balls: dict) -> _Num:
    bits = VERIFY_SETTINGS["oracle_bits"]
    factor = VERIFY_SETTINGS["oracle_false_factor"]
    with working_precision(bits):
        try:
            r, sr = evaluate(R, {**exact, **{h: _ball(*v) for h, v in balls.items()}}, bits)
            s, ss = evaluate(S, {**exact, **{h: _ball(*v) for h, v in balls.items()}}, bits)
            rw, _ = evaluate(R, {**exact, **{h: _ball(*v, factor) for h, v in balls.items()}}, bits)
            sw, _ = evaluate(S, {**exact, **{h: _ball(*v, factor) for h, v in balls.items()}}, bits)
        except Unevaluable as exc:
            return _Num("unavailable", f"a side has no numeric value ({exc}; abstract functions are checked "
                                       f"symbolically only)")
        except (ValueError, ZeroDivisionError, ArithmeticError) as exc:
            return _Num("unavailable", f"evaluation failed ({type(exc).__name__})")
        finite = all(z.real.is_finite() and z.imag.is_finite() for z in (r, s, rw, sw))
        if not finite or not (r.imag.contains(0) and s.imag.contains(0)):
            return _Num("unavailable", "a side has no finite real value at the document's values")
        shown = (r.real.mid().str(20, radius=False), s.real.mid().str(20, radius=False))
        wide = rw.real - sw.real
        if not wide.contains(0):
            d = (r.real - s.real).mid().str(6, radius=False)
            return _Num("differ", f"LHS - RHS = {d}, more than {factor:g} times the error bound of the values it "
                                  f"is computed from", values=shown)
        d = r.real - s.real
        scale = max(sr, ss, abs(r.real).upper(), abs(s.real).upper())
        need = scale * arb(10) ** -VERIFY_SETTINGS["oracle_agree_digits"]
        if d.contains(0) and d.rad() <= need:
            got = VERIFY_SETTINGS["oracle_agree_digits"]
            if d.rad() > 0 and scale > 0:
                got = int((-(arb(d.rad()) / scale).log() / arb(10).log()).mid().floor().unique_fmpz())
            return _Num("agree", digits=max(got, VERIFY_SETTINGS["oracle_agree_digits"]), values=shown)
        return _Num("unresolved", f"the sides differ by {d.mid().str(6, radius=False)} (relative to the terms' scale "
                                  f"{scale.mid().str(6, radius=False)}), within {factor:g} times the error bound "
                                  f"but not within {VERIFY_SETTINGS['oracle_agree_digits']} digits", values=shown)


def symbolic(model: LossModel, canon: Canon, reference, stated):
    """Step 2: ("proved", form, how), ("pure", LHS - RHS, form) when the solution cancels, or ("no", reason, the
    canonical LHS - RHS in the adjoint form with the forward values integrated (Canon.integrated), or None)."""
    forms = FORMS if any(model.quantities[q][0] in ("param", "initial", "t0")
                         for q in (sympy.sympify(reference).free_symbols | sympy.sympify(stated).free_symbols)
                         if q in model.quantities) else FORMS[:1]
    reason = "SymPy did not reduce LHS - RHS to 0"
    first = None
    for form in forms:
        try:
            cR, cS = canon.canon(reference, form), canon.canon(stated, form)
        except Ambiguous as exc:
            return "no", f"symbolic check skipped ({exc})", None
        D = canon.merged(cR - cS)
        if D == 0:
            return "proved", form, "the canonical forms are equal"
        if not (model.solution_values(D) or model.along_integrals(D)):
            return "pure", D, form
        first = D if first is None else first
        # the integrals were merged above; what is left is algebra in them and in the solution values, which
        # SymPy treats fastest (and soundly: a difference that is 0 for every value of these is 0) as symbols
        opaque = {a: sympy.Dummy("u", real=True) for a in model.along_integrals(D)}
        D = D.xreplace(opaque)
        D = D.xreplace({a: sympy.Dummy("v", real=True) for a in model.solution_values(D)})
        proved, how, _, reason = attempt(D)
        if proved is True:
            return "proved", form, how, D
    # a difference that is 0 by the model's equations themselves: the forward quantities' values written as
    # their start plus the integral of their rate, merged; what is left (if anything) replaces the difference
    # the numeric refinement below evaluates, as its large terms cancelled exactly here too
    try:
        whole = canon.merged(canon.integrated(first))
    except Ambiguous:
        whole = first
    if whole == 0:
        return "proved", "adjoint", ("the canonical forms are equal once each value of the solution and its "
                                     "sensitivities is written as its start plus the integral of its rate")
    if not (model.solution_values(whole) or model.along_integrals(whole)):
        return "pure", whole, "integrated adjoint"
    return "no", reason, whole


def check_model_claim(model: LossModel, reference, stated, positive=frozenset(), correct: bool = True) -> Verdict:
    """Verdict on ``reference == stated`` (see the module docstring)."""
    canon = Canon(model)
    num = numeric(model, reference, stated, positive)
    oracle = "; ".join(model.table.notes.values()) if model.table is not None else ""
    if num.status == "differ":
        return Verdict("FALSE", "oracle", f"at {num.where} (below) the sides differ: {num.detail} (values: "
                                          f"{oracle})",
                       point=num.point, values=num.values, corrected=_corrected(canon, reference) if correct else "")
    sym = symbolic(model, canon, reference, stated)
    if sym[0] == "proved" and num.status != "agree" and len(sym) > 3 and fallible(sym[3]):
        # a proof through SymPy's antiderivatives or piecewise rewritings, not confirmed by the numbers (none, or
        # unresolved): its fallible steps are confirmed on their own (integrals by quadrature), else no TRUE
        problem = unconfirmed(sym[3], sympy.Integer(0), positive)
        if problem:
            return Verdict("UNDECIDED", "symbolic", f"SymPy reduced LHS - RHS to 0 ({sym[2]}) in the {sym[1]} form, "
                                                    f"but {problem}; numerically: {num.detail}", points=0)
    if sym[0] == "proved":
        form, how = sym[1], sym[2]
        detail = (f"SymPy reduced LHS - RHS to 0 ({how}) with the solution as unknown functions of time, after "
                  f"writing the model's quantities in their {form} form and its boundary values")
        if num.status == "agree":
            detail += (f"; confirmed at the document's values and a second point to {num.digits} digits "
                       f"({oracle})")
        elif num.status != "unavailable":
            detail += f"; the numbers at the document's values did not confirm it: {num.detail}"
        return Verdict("TRUE", "symbolic", detail, points=num.points, digits=num.digits)
    if sym[0] == "pure":
        # the solution cancelled: LHS - RHS is an expression of the symbols alone, which the general check
        # decides for all their values (a counterexample is a point where this difference is nonzero)
        D, form = sym[1], sym[2]
        v = check(D, sympy.Integer(0), positive, correct=False)
        v.detail = (f"with the model's quantities in their {form} form and its boundary values, LHS - RHS = "
                    f"{document_text(canon, D)}: {v.detail}")
        if v.status == "FALSE":
            v.corrected = _corrected(canon, reference) if correct else ""
            v.values = ()
        return v
    if num.status == "agree" and sym[2] is not None:
        # the sides agree to the values' accuracy; their canonical difference, in which the solution's large
        # terms cancelled exactly, may still be resolvable (a factor 1 + 1e-40, a term 1e-50*x(t1)): evaluated
        # on its own, a ball that excludes 0 is a FALSE
        diff = numeric(model, sym[2], sympy.Integer(0), positive)
        if diff.status != "differ" and sym[2].has(sympy.tanh, sympy.sinh, sympy.cosh):
            # 2*u(t1)*(1 - tanh(200)) is 4e-174 relative: below any working precision as written, exact in its
            # exponential form 4*u(t1)/(exp(400) + 1)
            try:
                exp_form = sympy.cancel(sympy.together(sym[2].rewrite(sympy.exp)))
            except (sympy.PolynomialError, TypeError, ValueError):
                exp_form = None
            if exp_form is not None and not exp_form.has(sympy.I):
                diff = numeric(model, exp_form, sympy.Integer(0), positive)
        if diff.status == "differ":
            return Verdict("FALSE", "oracle", f"the sides agree to the values' accuracy, but their difference in "
                                              f"canonical form, LHS - RHS = {document_text(canon, sym[2])[:300]}, is "
                                              f"nonzero at {diff.where} (below): {diff.detail} ({oracle})",
                           point=diff.point, values=(), corrected=_corrected(canon, reference) if correct else "")
    if num.status == "agree":
        beyond = _beyond_kinks(model, sym[2] if sym[2] is not None else reference - stated, reference, stated,
                               positive, lambda e: document_text(canon, e))
        if beyond.status == "differ":
            return Verdict("FALSE", "oracle", f"at {beyond.where} (below) the sides differ: {beyond.detail} "
                                              f"({oracle})", point=beyond.point, values=beyond.values,
                           corrected=_corrected(canon, reference) if correct else "")
        if beyond.status != "agree":
            return Verdict("UNDECIDED", "oracle", f"{sym[1]}; the sides agree at the document's values and at a "
                                                  f"second point, but {beyond.detail}", points=0)
        num.points += beyond.points
        third = _third_point(model, reference, stated, positive)
        if third.status == "differ":
            return Verdict("FALSE", "oracle", f"at {third.where} (below) the sides differ: {third.detail} ({oracle})",
                           point=third.point, values=third.values,
                           corrected=_corrected(canon, reference) if correct else "")
        num.points += third.points
        point = ", ".join(f"{k} = {v}" for k, v in num.point.items())
        return Verdict("TRUE", f"oracle, {VERIFY_SETTINGS['oracle_digits']} digits",
                       f"{sym[1]}; at the document's values ({point}) and at a second point (every value moved "
                       f"by a few percent, the times by an increasing quadratic), and at a third point where the "
                       f"parameters are moved by amounts drawn from a hash of the claim"
                       f"{' (not a valid model there: skipped)' if third.status != 'agree' else ''}, "
                       f"the sides agree to {num.digits} "
                       f"digits relative to the terms' scale, every radius included ({oracle}): a strong numeric check at "
                       f"{num.points} points, not a proof", points=num.points, digits=num.digits)
    return Verdict("UNDECIDED", "oracle" if num.status != "unavailable" else "symbolic",
                   f"{sym[1]}; numerically: {num.detail}", points=0)


def _beyond_kinks(model: LossModel, difference, reference, stated, positive, show=str) -> _Num:
    """The claim checked across each kink or switch of its own terms: ``abs(k - 0.3)`` is the same branch at
    k = 1/2 and at the moved k, so a claim wrong only below 0.3 agrees at both; ``tanh(1000*(k - 0.3))`` is a
    smooth switch that does the same.  The arguments: those of abs-type kinks (:func:`points.kink_arguments`),
    and of functions that are saturated at the document's values (|argument| > ``switch_argument``:
    tanh(200), exp(200)).  For each in the valued symbols alone (parameters, times, initial values), its zeros
    in one symbol (the others at the document's values; the ``max_roots`` nearest the document's value v, in
    the symbol's domain) give the points: beyond the outermost zeros (r - (v - r)/2) and midway between
    neighbouring ones (a window between two kinks), each where the sign differs from the document's.  Returns
    "agree" with the points added, "differ" at one, or "unresolved" / "unavailable" with the reason (a kink or
    a saturated tanh/atan in a solution value, which cannot be located before the solve, or a point where the
    model is not valid): never TRUE then."""
    from .lossmodel import Point
    from .odemodel import _at_values
    from .points import _critical, _real_roots, kink_arguments
    base = model.points[0].values
    D = sympy.sympify(difference)
    kinks = kink_arguments(D)
    switches = [u for u in _critical(D) if u not in kinks and saturated(u, model, base)]
    located, candidates = [], []
    for u in kinks + switches:
        if model.has_quantities(u) or model.solution_values(u) or model.along_integrals(u):
            if u in kinks or any(f.args[0] == u for f in D.atoms(sympy.tanh, sympy.atan)):
                return _Num("unresolved", f"the claim has a kink or switch where {show(u)} = 0, in the model's "
                                          f"solution: the points checked may all lie on one side of it")
            continue
        syms = sorted(u.free_symbols, key=lambda x: x.name)
        if not syms or not set(syms) <= set(base):
            continue
        located.append(u)
        for s_ in syms:
            v = base[s_]
            us = u.xreplace({k: w for k, w in base.items() if k != s_})
            pos = s_ in positive or bool(s_.is_positive)
            roots = sorted(_real_roots(us, s_, pos), key=lambda r: abs(r - v))[: VERIFY_SETTINGS["max_roots"]]
            roots = sorted(roots)
            here = [(p + q) / 2 for p, q in zip(roots, roots[1:])]
            if roots:
                lo, hi = roots[0], roots[-1]
                here += [lo - (v - lo) / 2 if v > lo else lo - max(1, abs(lo)) / 100,
                         hi + (hi - v) / 2 if v < hi else hi + max(1, abs(hi)) / 100]
            candidates += [(s_, short(a), u) for a in here if not (pos and not a > 0)]

    # a point is worth an oracle run when the signs of all the arguments there form a pattern not seen yet (a
    # window where abs(a) is active and abs(b) is not, though each sign alone was seen at the two points)
    def pattern(values):
        return tuple(sign_at(w, values) for w in located)
    patterns = {pattern(p.values) for p in model.points}
    added = 0
    for s_, across, u in candidates:
        values = {**base, s_: across}
        pat = pattern(values)
        if pat in patterns:
            continue
        patterns.add(pat)
        try:
            point = Point(values, _at_values(model, values))
        except (SymodeError, TypeError, ValueError) as exc:
            return _Num("unavailable", f"across the kink where {show(u)} = 0 ({s_} = {across}) the model is "
                                       f"not valid ({exc}), so that side is not checked")
        other = copy.copy(model)
        other.points, other.table = [point], None
        out = _numeric_at(other, 0, point, reference, stated, positive)
        out.where = f"{s_} = {across}, across the kink where {show(u)} = 0"
        if out.status != "agree":
            if out.status in ("unresolved", "unavailable"):
                out.detail = f"at {out.where}: {out.detail}"
            return out
        added += out.points
    return _Num("agree", points=added)


def _third_point(model: LossModel, reference, stated, positive) -> _Num:
    """The claim at a third point: the parameters (not the times) moved by 3 to 7 % each, by amounts drawn from
    a generator seeded with a hash of the claim itself.  The second point is fixed (a seeded generator), so a
    difference that vanishes at both, (k - 1/2)*(k - 4063/10007)*u(t1) with k = 1/2 moved to 4063/10007, was
    TRUE; a claim cannot name the values its own hash moves to.  "agree" (with its points), "differ", or
    another status where the point cannot be built or decided (then it adds nothing: the verdict rests on the
    two points, as before)."""
    import hashlib
    from .lossmodel import Point
    from .odemodel import _at_values
    seed = int.from_bytes(hashlib.sha256(f"{sympy.srepr(reference)}={sympy.srepr(stated)}".encode()).digest()[:8],
                          "big")
    rng = random.Random(seed)
    base = model.points[0].values
    values = dict(base)
    for s_ in sorted((p for p in model.params if p in base), key=lambda x: x.name):
        if s_.is_integer:
            continue
        values[s_] = base[s_] * (1 + sympy.Rational(rng.randint(30, 70), 1000) * rng.choice((1, -1))) \
            + sympy.Rational(rng.randint(1, 999), 100003)
        if (s_ in positive or s_.is_positive) and not values[s_] > 0:
            values[s_] = abs(values[s_])
    try:
        point = Point(values, _at_values(model, values))
    except (SymodeError, TypeError, ValueError):
        return _Num("unavailable")
    other = copy.copy(model)
    other.points, other.table = [point], None
    out = _numeric_at(other, 0, point, reference, stated, positive)
    out.where = "a third point (the parameters moved by amounts drawn from a hash of the claim)"
    return out if out.status in ("differ", "agree") else _Num("unavailable")


def document_text(canon: Canon, expr) -> str:
    try:
        return document_syntax(canon.printable(expr))
    except Unprintable:
        return str(expr)


def _corrected(canon: Canon, reference) -> str:
    """The reference (left side) in the adjoint form, in the document's syntax ("" if it has none)."""
    try:
        return document_syntax(canon.printable(canon.canon(reference, "adjoint")))
    except (Unprintable, Ambiguous):
        try:
            return document_syntax(reference)
        except Unprintable:
            return ""
