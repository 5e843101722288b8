"""Checking one claim: is ``reference == stated`` for all (generic) values of the symbols?

For a claim whose sides are SymPy expressions R (reference) and S (stated):

0. Assumptions are applied only now, after every ``where`` substitution: symbols declared positive (the
   learning rate, ``positive:``) that are still free become positive symbols; a symbol substituted away never
   lends its assumption to a simplification (``abs(T) = T where T = y - 5`` is judged for every y), nor does
   a bound integration variable of the same name (``integral(abs(T), T, -1, 1)`` is 1).
1. Screening: both sides at a few small-rational and random points, in ball arithmetic
   (:mod:`symode.verify.numeric`).  A point where the ball of R - S excludes 0 proves the sides differ:
   FALSE, with that point, however small the difference.
2. Symbolic proof: SymPy tries to reduce R - S to 0 in a budgeted child (:mod:`symode.verify.symbolic`).
   Reaching 0 is TRUE (symbolic); a cancelled difference that is exactly nonzero (a number, a rational
   function, an expression whose sign SymPy decides) is FALSE (exact difference), shown at a point where it
   is provably nonzero.  A claim containing integrals, ``Piecewise``, ``abs``, ``sign``, ``Max``/``Min``,
   ``Heaviside`` or a sum whose range may be empty goes through steps SymPy can get wrong (its sums follow
   Karr's convention there, the documents sum an empty range to 0), so its symbolic verdict is confirmed by
   the numbers (integrals by rigorous quadrature split at every kink, counts beside each sum's end of range)
   before it is reported; when they disagree the report says so and the verdict follows the numbers.
3. Numeric fallback: the sides at points placed where claims fail (near zeros of function arguments,
   denominators and kinks, scaled by the coefficients inside; one symbol at a time at 1e-6 and 1e6) and at
   ``numeric_points`` random points.  Agreement everywhere (to ``agree_digits`` digits relative to the
   scale of the terms) is "TRUE (numeric, N points)": evidence, not proof, labelled so, with the points and
   digits it rests on.  A point still undecided at the highest precision, or too few points inside the
   domain of both sides, is UNDECIDED with the reason.

A FALSE claim carries a counterexample (exact rationals, small ones where they show the difference), both
sides' values there, and the corrected right-hand side in the document's own syntax (confirmed numerically
against the reference; omitted when it has no form in the grammar).  Random points come from a fixed seed, so
verdicts are reproducible.
"""
from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field

import sympy

from .balls import Unevaluable, evaluate
from .binding import NONFINITE, attach
from .confirm import evaluable_form, unconfirmed
from .numeric import Outcome, compare_at, magnitude_bits, nonzero_at, shown_value
from .points import _count_points, count_sweep, extreme_points, random_point, targeted_points
from .printer import Unprintable, document_syntax
from .symbolic import attempt, fallible, integrated, simplified, summed
from .tolerances import TOLERANCES, VERIFY_SETTINGS

__all__ = ["TOLERANCES", "VERIFY_SETTINGS", "Verdict", "check"]


@dataclass
class Verdict:
    """The result of checking one claim."""

    status: str                   # "TRUE", "FALSE", "UNDECIDED"
    method: str                   # "symbolic", "numeric, N points", "counterexample", "exact difference", ...
    detail: str = ""
    point: dict = field(default_factory=dict)       # symbol name -> exact value (FALSE)
    values: tuple = ()            # (reference value, stated value) at the point, as text
    corrected: str = ""           # the corrected right-hand side, in the document's syntax (FALSE)
    points: int = 0               # points the numeric evidence rests on
    digits: int = 0               # digits of agreement at each of them (relative to the terms' scale)


class _Check:
    """The state of one check (see the module docstring for the steps).

    ``exact`` are the sides as stated; ``fast`` the same with SymPy's antiderivatives in place of the
    integrals it can do (cheap to evaluate, fallible).  Screening may use ``fast``; every difference found
    with it is confirmed with ``exact`` (rigorous quadrature) at the same point, and only evaluations of
    ``exact`` count as evidence for TRUE."""

    def __init__(self, reference, stated, positive, seed):
        self.reference, self.stated = reference, stated
        self.exact = (reference, stated)
        self.has_integrals = reference.has(sympy.Integral) or stated.has(sympy.Integral)
        self.fast = (integrated(reference), integrated(stated)) if self.has_integrals else self.exact
        self.positive = positive
        # Symbols only: SymPy lists x[i] of a sum among the free symbols too (its label x is listed as well)
        self.symbols = sorted((s for s in reference.free_symbols | stated.free_symbols if isinstance(s, sympy.Symbol)),
                              key=lambda s: s.name)
        self.rng = random.Random(seed)
        self.seed = seed
        self.fallible = fallible(reference, stated)
        self.counts = {"agree": 0, "undefined": 0, "unresolved": 0}
        self.kinds: dict = {}
        self.notes: list = []
        self.unreached: list = []     # critical counts beyond those checked: never TRUE past them
        self.blocked = ""             # why the numbers may not make this claim TRUE (an unseparated exact difference)

    # -- points

    def _at(self, exprs, point) -> Outcome:
        try:
            return compare_at(exprs[0], exprs[1], point)
        except Unevaluable:
            raise
        except (ValueError, ZeroDivisionError, ArithmeticError, RecursionError, MemoryError) as exc:
            return Outcome("undefined", point, note=f"evaluation failed ({type(exc).__name__})")

    def note(self, text: str) -> None:
        if text and text not in self.notes:
            self.notes.append(text)

    def compare(self, point, kind: str, exact: bool = False, probe: bool = False) -> Outcome:
        """The outcome at ``point``; a difference seen with the fast sides is confirmed with the exact ones.
        ``probe``: only a difference counts (a point where quadrature cannot decide is not held against the
        claim, nor counted for it)."""
        exprs = self.exact if exact else self.fast
        o = self._at(exprs, point)
        if probe and o.status != "differ":
            return o
        if exprs is not self.exact:
            if o.status != "differ":
                return o              # screening only: not evidence
            o = self._at(self.exact, point)
            if o.status != "differ":
                self.note(f"SymPy's antiderivative disagrees with quadrature at {_show_point(point)}; the "
                          f"quadrature is used")
                return Outcome("undefined", point)
        if o.status in self.counts:
            self.counts[o.status] += 1
        if o.status == "agree":
            self.kinds[kind] = self.kinds.get(kind, 0) + 1
        if o.status in ("unresolved", "undefined"):
            self.note(o.note)
        return o

    def scan(self, points, kind: str, exact: bool = False, probe: bool = False) -> Outcome | None:
        """The first point of ``points`` where the sides differ, or None."""
        for p in points:
            o = self.compare(p, kind, exact, probe)
            if o.status == "differ":
                return o
        return None

    def random_scan(self, wanted: int, exact: bool = False) -> Outcome | None:
        """Random points until ``wanted`` were decided (points outside the domain do not count); with
        integrals evaluated by quadrature only narrow points (a wide one can make the integrand vary as
        exp(1e6*s), beyond any quadrature's budget)."""
        got = tries = 0
        narrow = exact and self.has_integrals
        while got < wanted and tries < wanted * VERIFY_SETTINGS["max_tries_factor"]:
            tries += 1
            o = self.compare(random_point(self.symbols, self.rng, self.positive, narrow=narrow), "random", exact)
            if o.status == "differ":
                return o
            got += o.status in ("agree", "unresolved") or not (exact or not self.has_integrals)
        return None

    def count_points(self):
        """Points that sweep each count past the degree of LHS - RHS as a polynomial in it (sums done in
        closed form where SymPy can, only to find that degree: the claim is still evaluated as stated), and
        the counts on both sides of where a sum's range becomes empty (hi - lo + 1 = 0): there SymPy's closed
        forms (Karr's convention) and the documents' (an empty sum is 0) part."""
        difference = self.reference - self.stated
        if not any(s.is_integer for s in self.symbols) or not difference.has(sympy.Sum):
            return []
        ends = [hi - lo + 1 for e in difference.atoms(sympy.Sum) for _, lo, hi in e.limits]
        empty = _count_points(ends, self.symbols, self.rng, self.positive, [])
        return itertools.chain(empty, count_sweep(summed(difference), self.symbols, self.rng, self.positive,
                                                  self.unreached))

    def small_points(self):
        return [random_point(self.symbols, self.rng, self.positive, small=True)
                for _ in range(VERIFY_SETTINGS["small_points"])]

    # -- verdicts

    def false(self, o: Outcome, method="counterexample", detail="") -> Verdict:
        if not detail:
            detail = "the two sides differ at the point below" + (f" by LHS - RHS = {o.note}" if o.note else "") \
                + " (rigorous ball arithmetic)"
        return Verdict("FALSE", method, detail, point=_shown_point(o.point),
                       values=o.values, corrected=self.corrected())

    def corrected(self) -> str:
        """The reference in the document's syntax: simplified (with SymPy's antiderivatives) when that form
        is printable and agrees with the reference numerically, else as it stands; "" if unprintable."""
        ref = self.reference
        if not getattr(self, "correct", True):
            return ""
        candidates = [simplified(integrated(ref)), simplified(ref), ref]
        for c in candidates:
            try:
                text = document_syntax(c)
            except Unprintable:
                continue
            if c is ref or c == ref or self.confirms(c):
                return text
        return ""

    def confirms(self, candidate) -> bool:
        agree = 0
        for _ in range(VERIFY_SETTINGS["confirm_points"] * VERIFY_SETTINGS["max_tries_factor"]):
            p = random_point(self.symbols, self.rng, self.positive)
            try:
                o = compare_at(self.reference, candidate, p)
            except (Unevaluable, ValueError, ArithmeticError, ZeroDivisionError):
                return False
            if o.status in ("differ", "unresolved"):
                return False
            agree += o.status == "agree"
            if agree >= VERIFY_SETTINGS["confirm_points"]:
                return True
        return False

    def exact_false(self, nonzero) -> Verdict | None:
        """FALSE (exact difference) at a point where the cancelled difference is provably nonzero and both
        sides are defined; for a fallible claim the sides themselves must differ there."""
        randoms = (random_point(self.symbols, self.rng, self.positive, small=k < VERIFY_SETTINGS["small_points"])
                   for k in range(VERIFY_SETTINGS["small_points"] + VERIFY_SETTINGS["numeric_points"]))
        for p in itertools.chain(randoms, count_sweep(nonzero, self.symbols, self.rng, self.positive, [])):
            if not nonzero_at(nonzero, p, deep=True):
                continue
            try:
                o = compare_at(self.reference, self.stated, p, separate=True)
            except Unevaluable:
                o = Outcome("agree", p)
            if o.status == "undefined":
                continue
            if o.status != "differ":
                if self.fallible:
                    self.notes.append(f"SymPy found the exact difference {str(nonzero)[:200]}, but the sides "
                                      f"evaluated independently do not differ at {_show_point(p)}")
                    return None
                o.values = self.shown(p)
            return self.false(o, "exact difference",
                              f"LHS - RHS = {str(nonzero)[:300]} exactly (nonzero), nonzero at the point below")
        return None

    def shown(self, p) -> tuple:
        out = []
        for e in (self.reference, self.stated):
            try:
                z, _ = evaluate(e, p, VERIFY_SETTINGS["precisions"][0])
                out.append(shown_value(e, p, z))
            except Unevaluable:
                out.append("?")
        return tuple(out)


def _shown_point(point: dict) -> dict:
    """A point for a report: {name: value text}; indexed data as its first elements x[0:n] (n past the
    largest integer of the point, where a sum over the data ends)."""
    ints = [int(v) for v in point.values() if not isinstance(v, tuple) and v.is_Integer]
    n = min(max(ints, default=4) + 1, VERIFY_SETTINGS["sequence_length"])
    out = {}
    for s, v in point.items():
        if isinstance(v, tuple):
            out[f"{s.name}[0:{n}]"] = "(" + ", ".join(map(str, v[:n])) + ")"
        else:
            out[s.name] = str(v)
    return out


def _show_point(p) -> str:
    return ", ".join(f"{s.name} = {v}" for s, v in p.items())


def check(reference: sympy.Expr, stated: sympy.Expr, positive: frozenset = frozenset(),
          seed: int = 20181, prove: bool = True, correct: bool = True) -> Verdict:
    """Check ``reference == stated`` identically in their free symbols (see the module docstring).

    ``positive``: symbols declared positive (sampled > 0; SymPy may use the assumption, applied here after
    every substitution).  ``prove=False`` skips the symbolic proof (the numbers alone decide); ``seed`` fixes
    the random points, so a verdict is reproducible.  ``correct=False``: a FALSE verdict carries no corrected
    right-hand side (the caller states one; simplifying it can take seconds).
    """
    reference, stated = sympy.sympify(reference), sympy.sympify(stated)
    twins = {s: sympy.Symbol(s.name, positive=True) for s in positive if not s.is_positive}
    # free occurrences only: an integration variable of the same name is not the positive symbol
    reference, stated = attach(reference, twins), attach(stated, twins)
    positive = frozenset(twins.get(s, s) for s in positive)
    if reference.has(*NONFINITE) or stated.has(*NONFINITE):
        # 1/(T - abs(T)) with T > 0 is SymPy's zoo, equal to any other zoo: never "the same expression"
        return Verdict("UNDECIDED", "symbolic", "a side is not finite with the declared assumptions (division by "
                                                "zero, log(0) or similar)")
    for lim in (x for e in (reference, stated) for a in e.atoms(sympy.Sum) for x in a.limits[0][1:]):
        if not _integer_limit(lim):
            # a sum runs over the integers lo <= i <= hi; SymPy's closed forms read sum(1, i, 1, N/2) as N/2
            # for odd N too, so a claim with such a limit has no one meaning to check
            return Verdict("UNDECIDED", "symbolic", f"the sum limit {lim} is not an integer for every value of "
                                                    f"its symbols (a sum runs over the integers lo <= i <= hi): "
                                                    f"write limits that are integers")
    if reference == stated:
        return Verdict("TRUE", "symbolic", "both sides are the same expression")
    c = _Check(reference, stated, positive, seed)
    c.correct = correct
    if not c.symbols:
        return _constant(c, prove)
    try:
        found = c.scan(c.small_points(), "small") or c.random_scan(VERIFY_SETTINGS["screen_points"])
    except Unevaluable as exc:
        return _symbolic_only(c, prove, str(exc))
    if found is not None:
        return c.false(found)
    proved, how, nonzero, reason = (False, "", None, "symbolic proof skipped")
    if prove:
        proved, how, nonzero, reason = attempt(c.fast[0] - c.fast[1])
        if proved == "nonzero":
            v = c.exact_false(nonzero)
            if v is not None:
                return v
            if not c.fallible:
                # an exact nonzero difference (no fallible step) that no point separates: the numbers may still
                # find a point where the sides differ, but their agreement is no evidence against SymPy's
                c.blocked = (f"SymPy found LHS - RHS = {str(nonzero)[:200]} exactly (nonzero), but no point tried "
                             f"separates it numerically")
            proved = False
        elif proved == "unseparated":
            c.blocked = (f"LHS - RHS has the coefficient {nonzero[:200]}, which shows no difference from 0 at the "
                         f"deepest precision while its terms' magnitudes say a nonzero value could hide below it")
            proved = False
        elif proved and not c.fallible:
            return Verdict("TRUE", "symbolic", f"SymPy reduced LHS - RHS to 0 ({how})")
    return _numeric(c, proved, how, reason)


def _numeric(c: _Check, proved, how: str, reason: str) -> Verdict:
    """Steps 2 (confirmation of a fallible proof) and 3 (numeric fallback) of the module docstring."""
    # the critical arguments of the claim as stated (an integrand's kinks) and of SymPy's antiderivatives
    exprs = c.exact + c.fast if c.has_integrals else c.fast
    targeted = targeted_points(exprs, c.symbols, c.rng, c.positive, c.unreached)
    found = (c.scan(targeted, "targeted")
             or c.scan(extreme_points(c.symbols, c.rng, c.positive), "extreme")
             or c.scan(c.count_points(), "count"))
    if found is None and c.has_integrals:
        # the evidence: quadrature at small and narrow random points (|v| <= 3); the targeted points beyond
        # them (past a kink of SymPy's antiderivative, at T > 2*pi where its |sin| integral goes wrong) probed
        # by quadrature too, where the fast sides (SymPy's antiderivatives) cannot show a difference
        far = [p for p in targeted if any(not isinstance(v, tuple) and abs(v) > 3 for v in p.values())]
        found = c.scan(_spread(far, VERIFY_SETTINGS["probe_integral_points"]), "targeted", exact=True, probe=True)
        found = found or c.scan(c.small_points()[: VERIFY_SETTINGS["confirm_integral_points"] // 2], "small",
                                exact=True)
        # (a small point where both sides vanish within rounding counts neither way: more random ones then)
        wanted = (max(VERIFY_SETTINGS["confirm_integral_points"] // 2,
                      VERIFY_SETTINGS["confirm_integral_points"] - c.counts["agree"]) if proved
                  else VERIFY_SETTINGS["numeric_points"])
        found = found or c.random_scan(wanted, exact=True)
    elif found is None:
        found = c.random_scan(VERIFY_SETTINGS["numeric_points"])
    if found is not None:
        if proved:
            return c.false(found, detail=f"SymPy reduced LHS - RHS to 0 ({how}), but rigorous evaluation (integrals "
                                         f"by quadrature split at the kinks) shows the sides differ at the point "
                                         f"below; the verdict follows the numbers")
        return c.false(found)
    return _evidence(c, proved, how, reason)


def _integer_limit(lim) -> bool:
    """Whether a sum's limit is an integer for every value of its symbols: provably (N + 1), or, for a limit in
    counts and indices alone that SymPy cannot classify ((N + 20 - abs(N - 20))/2), at every combination of
    them from -max_count to max_count (N/2 fails at N = 1)."""
    if lim.is_integer:
        return True
    syms = sorted(lim.free_symbols, key=lambda s: s.name)
    if lim.is_integer is False or not syms or len(syms) > 2 or not all(s.is_integer for s in syms):
        return False
    import itertools
    n = VERIFY_SETTINGS["max_count"]
    for values in itertools.product(range(-n, n + 1), repeat=len(syms)):
        v = lim.xreplace(dict(zip(syms, map(sympy.Integer, values))))
        if v.is_finite and not v.is_integer:
            return False
    return True


def _spread(points: list, n: int) -> list:
    """At most ``n`` of ``points``, evenly spread over the list (every symbol's targets represented)."""
    if len(points) <= n:
        return points
    return [points[round(k * (len(points) - 1) / (n - 1))] for k in range(n)] if n > 1 else points[:n]


def _evidence(c: _Check, proved, how: str, reason: str) -> Verdict:
    """TRUE or UNDECIDED from the points that agreed (no point differed)."""
    n, digits = c.counts["agree"], VERIFY_SETTINGS["agree_digits"]
    where = ", ".join(f"{k} {kind}" for kind, k in c.kinds.items())
    notes = "; ".join(c.notes)
    needed = VERIFY_SETTINGS["numeric_points"]
    if proved:
        needed = VERIFY_SETTINGS["confirm_integral_points"] if c.has_integrals else needed
    if c.counts["unresolved"]:
        return Verdict("UNDECIDED", "numeric", f"{reason}; at {c.counts['unresolved']} point(s) the sides could "
                                               f"neither be told apart nor brought into agreement"
                                               + (f" ({notes})" if notes else ""), points=n)
    if c.blocked:
        return Verdict("UNDECIDED", "numeric", f"{c.blocked}; the sides agree at the {n} points checked",
                       points=n)
    if c.unreached:
        return Verdict("UNDECIDED", "numeric", f"{reason}; the sides agree at the {n} points checked, but a "
                                               f"critical argument changes sign only past them: "
                                               f"{'; '.join(c.unreached[:3])}", points=n)
    if n < needed or c.kinds.get("random", 0) < VERIFY_SETTINGS["confirm_integral_points"] // 2:
        what = (f"SymPy reduced LHS - RHS to 0 ({how}), but the numeric confirmation found" if proved
                else f"{reason}; only")
        return Verdict("UNDECIDED", "numeric", f"{what} {n} points inside the domain of both sides (log/sqrt of "
                                               f"negatives, division by 0, divergent integrals)"
                                               + (f"; {notes}" if notes else ""), points=n)
    if proved:
        return Verdict("TRUE", "symbolic", f"SymPy reduced LHS - RHS to 0 ({how}); confirmed by rigorous "
                                           f"evaluation at {n} points ({where}), agreeing to {digits} digits",
                       points=n, digits=digits)
    return Verdict("TRUE", f"numeric, {n} points",
                   f"{reason}; the sides agree to {digits} digits (relative to the largest term) at {n} points "
                   f"({where}; exact rational points, ball arithmetic): evidence, not proof"
                   + (f"; note: {notes}" if notes else ""), points=n, digits=digits)


def _constant(c: _Check, prove: bool) -> Verdict:
    """A claim without symbols: one point, pushed to the deepest precision (``deep_precisions``) trying to
    separate the sides.  No difference visible there is no proof that there is none (1 - tanh(1000) =
    5e-869): the claim is TRUE (symbolic) when SymPy reduces LHS - RHS to 0 (a fallible step confirmed by that
    agreement), FALSE when SymPy's exact nonzero difference is provably nonzero in ball arithmetic, TRUE
    (numeric, 1 point) only when the precision reached exceeds what the magnitudes of its terms say a
    difference could hide below (``constant_guard_bits`` in the settings), else UNDECIDED with the reason."""
    try:
        o = compare_at(c.reference, c.stated, {}, separate=True, deep=True)
    except Unevaluable as exc:
        return _symbolic_only(c, prove, str(exc))
    if o.status == "differ":
        return c.false(o)
    if o.status != "agree":
        return Verdict("UNDECIDED", "numeric", o.note or "a side is not a finite real number")
    reason = "symbolic proof skipped"
    magnitude = magnitude_bits(c.reference, c.stated)
    need = None if magnitude is None else (VERIFY_SETTINGS["constant_guard_bits"]
                                           + VERIFY_SETTINGS["constant_bits_per_magnitude"] * magnitude)
    if prove:
        proved, how, nonzero, reason = attempt(c.fast[0] - c.fast[1])
        if proved is True:
            detail = f"SymPy reduced LHS - RHS to 0 ({how})"
            if c.fallible:
                detail += (f"; confirmed by rigorous evaluation (integrals by quadrature split at the kinks): no "
                           f"difference at {o.bits}-bit precision")
            return Verdict("TRUE", "symbolic", detail, points=int(c.fallible))
        if proved == "nonzero" and not c.fallible and nonzero_at(nonzero, {}, deep=True):
            o.values = c.shown({})
            return c.false(o, "exact difference", f"LHS - RHS = {str(nonzero)[:300]} exactly (nonzero), "
                                                  f"provably nonzero in ball arithmetic")
        if proved == "nonzero" and not c.fallible:
            reason = f"SymPy found LHS - RHS = {str(nonzero)[:200]} exactly, but the numbers cannot separate it"
            need = None
        elif proved == "nonzero":
            c.note(f"SymPy's difference {str(nonzero)[:200]} went through a step it can get wrong (integration, "
                   f"piecewise)")
    if need is not None and o.bits >= need and magnitude <= VERIFY_SETTINGS["constant_max_magnitude"]:
        bits = o.bits
        return Verdict("TRUE", "numeric, 1 point",
                       f"{reason}; the constants show no difference at {bits}-bit precision (ball arithmetic; "
                       f"integrals by quadrature split at the kinks), beyond {need} bits = "
                       f"{VERIFY_SETTINGS['constant_guard_bits']} + {VERIFY_SETTINGS['constant_bits_per_magnitude']}"
                       f" x the largest magnitude of its terms (2**±{magnitude}): evidence, not proof"
                       + (f"; note: {'; '.join(c.notes)}" if c.notes else ""), points=1, digits=int(bits * 0.301))
    return Verdict("UNDECIDED", "numeric", f"{reason}; the constants show no difference at {o.bits}-bit precision "
                                           f"(ball arithmetic), which is no proof that there is none: its terms reach "
                                           f"2**±{magnitude}, so a difference may lie below it (1 - tanh(1000) = "
                                           f"5e-869)", points=1)


def _symbolic_only(c: _Check, prove: bool, why: str) -> Verdict:
    """A claim with nodes that have no numeric value (abstract functions, a sum of more than 10000 terms): its
    evaluable equivalent where there is one (:func:`symode.verify.confirm.evaluable_form`), else the symbolic
    proof alone -- TRUE only when every fallible step it went through is confirmed numerically
    (:func:`symode.verify.confirm.unconfirmed`), FALSE only for an exact difference without fallible steps."""
    form = evaluable_form(c.reference, c.stated)
    if form is not None:
        v = check(form[0], form[1], c.positive, c.seed, prove, c.correct)
        v.detail = f"{form[2]}: {v.detail}"
        return v
    if prove:
        proved, how, nonzero, reason = attempt(integrated(c.reference) - integrated(c.stated))
        if proved is True:
            problem = unconfirmed(c.reference, c.stated, c.positive, c.seed) if c.fallible else ""
            if not problem:
                return Verdict("TRUE", "symbolic", f"SymPy reduced LHS - RHS to 0 ({how})"
                               + ("; each of its antiderivatives confirmed by rigorous quadrature" if c.fallible
                                  else ""))
            reason = f"SymPy reduced LHS - RHS to 0 ({how}), but {problem}"
        if proved == "nonzero" and not c.fallible:
            return Verdict("FALSE", "exact difference", f"LHS - RHS = {str(nonzero)[:300]} exactly (nonzero)",
                           corrected=c.corrected())
    else:
        reason = "symbolic proof skipped"
    return Verdict("UNDECIDED", "symbolic", f"{reason}; the claim cannot be evaluated numerically ({why})")
