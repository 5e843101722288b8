"""Comparing a candidate with a reference, and finding the points where a comparison cannot be trusted.

The metric (symmetric in candidate and reference, with an explicit allowance near zero)::

    component j passes  <=>  c_j and r_j are finite  and  |c_j - r_j| <= atol_j + rtol * max(|c_j|, |r_j|)

* NaN never passes, not even NaN against NaN (``numpy.testing.assert_allclose`` passes NaN vs NaN by default,
  ``equal_nan=True``).  Inf never passes: a symode reference is always finite, so a non-finite candidate is
  a failed solve, and a non-finite reference is a broken reference.
* Shapes must match exactly (no broadcasting): arrays by shape, GradResults and dicts by component names.  A
  length-2 vs length-3 gradient, or GradResults with different parameter names, fail naming both sides.
* Arithmetic is done in mpmath at the precision of the most precise input (an ``mpmath.mpf`` carries its
  mantissa length; a GradResult its ``digits``), never through float: a 50-digit reference is compared at 50
  digits.  Floats enter mpmath exactly.
* A float32 input (numpy float32 array or scalar) is compared at no less than the float32 table entry
  (``TOLERANCES["float32"]``) unless the caller passes ``allow_float32_strict=True``; the report says
  "float32 candidate".  float16 and long double inputs are refused (convert them yourself, visibly).

The second half of this module finds points where a gradient comparison is ill-posed:

* :func:`check_differentiable` — kinks of Abs, Heaviside, Max, Min, sign, Piecewise, floor, ceiling in a model's
  expressions that sit exactly at the nominal parameters (a state-independent argument equal to 0) or at the
  initial point (t0, z0); :func:`kink_crossings` checks state-dependent kinks along a sampled trajectory.
* :func:`removed_singularities` — singularities in the *text* of an expression (``0*log(z)``, ``z/z``) that
  SymPy's automatic evaluation removed at parse time, so that every symode route evaluates the simplified
  expression while a candidate evaluating the text as written gets NaN/Inf there.

Limits (stated, not hidden): the kink checks are exact-zero tests at given points, not a search over the
trajectory; the singularity check evaluates the written text at given points only and knows the spec grammar's
operations (``/``, ``**``, ``log``, ``sqrt``); it does not find singularities SymPy introduced or
cancellations that only occur at points nobody asked about.
"""
from __future__ import annotations

import ast
import keyword
import math
from dataclasses import dataclass, field
from fractions import Fraction
from decimal import Decimal
from typing import Any, Mapping, Sequence

import mpmath
import numpy as np
import sympy

from ..errors import SpecError, SymodeError
from ..result import GradResult
from .tolerances import TOLERANCES, Tolerance

__all__ = [
    "ComparisonError", "Flat", "flatten", "Row", "Comparison", "compare",
    "Kink", "kinks", "check_differentiable", "kink_crossings",
    "removed_singularities", "model_removed_singularities",
]


class ComparisonError(SymodeError):
    """A comparison failed (``Comparison.raise_if_failed``) or its inputs cannot be compared at all."""


# ---------------------------------------------------------------------------------------------------------------
# Flattening inputs into named components


@dataclass
class Flat:
    """An input flattened to named scalar components.

    ``keyed`` is True for GradResults and dicts (aligned by name) and False for arrays/sequences/scalars
    (aligned by position; ``shape`` must match exactly).  ``kind``: "float32", "mpf", "float64" or "exact".
    """

    names: list[str]
    values: list
    shape: Any
    keyed: bool
    kind: str
    prec_bits: int
    description: str
    param_names: list[str] | None = None


def _kind_and_bits(v, where: str) -> tuple[str, int]:
    """Classify one scalar: its kind and the binary precision needed to hold it exactly."""
    if isinstance(v, (bool, np.bool_)):
        raise ComparisonError(f"{where}: {v!r} is a boolean, not a number")
    if isinstance(v, mpmath.mpf):
        return "mpf", max(int(v._mpf_[3]), 1)
    if isinstance(v, mpmath.mpc) or isinstance(v, (complex, np.complexfloating)):
        raise ComparisonError(f"{where}: {v!r} is complex; compare real and imaginary parts separately")
    if isinstance(v, np.floating):
        if v.dtype == np.float32:
            return "float32", 24
        if v.dtype == np.float64:
            return "float64", 53
        raise ComparisonError(f"{where}: numpy {v.dtype} is not supported; convert to float64 or mpmath.mpf "
                              f"explicitly (a silent conversion would hide its precision)")
    if isinstance(v, float):
        return "float64", 53
    if isinstance(v, (int, np.integer)):
        return "exact", max(int(v).bit_length(), 1)
    if isinstance(v, (Fraction, Decimal)):
        return "exact", 0  # a NaN/Inf Decimal becomes an mpf NaN/Inf and fails like any non-finite value
    if isinstance(v, sympy.Float):
        return "mpf", int(v._prec)
    if isinstance(v, sympy.Basic) and v.is_number:
        if v.is_extended_real is False:
            raise ComparisonError(f"{where}: {v} is not real")
        return "exact", 0
    raise ComparisonError(f"{where}: {type(v).__name__} {v!r} is not a number "
                          f"(give floats, numpy arrays, mpmath.mpf or exact numbers)")


def _to_mpf(v) -> mpmath.mpf:
    """The value as an mpf at the current working precision (exact for floats, ints within precision)."""
    if isinstance(v, mpmath.mpf):
        return +v if v._mpf_[3] > mpmath.mp.prec else v  # unary plus rounds to working precision
    if isinstance(v, (float, np.floating)):
        return mpmath.mpf(float(v))  # exact: float32 and float64 values are binary doubles
    if isinstance(v, (int, np.integer)):
        return mpmath.mpf(int(v))
    if isinstance(v, Fraction):
        return mpmath.mpf(v.numerator) / v.denominator
    if isinstance(v, Decimal):
        if not v.is_finite():
            return mpmath.mpf("nan") if v.is_nan() else mpmath.mpf("inf") * (-1 if v < 0 else 1)
        num, den = v.as_integer_ratio()
        return mpmath.mpf(num) / den
    if isinstance(v, sympy.Float):
        return +mpmath.mpf(v._mpf_)
    if isinstance(v, sympy.Rational):
        return mpmath.mpf(int(v.p)) / int(v.q)
    if isinstance(v, sympy.Basic):
        dps = mpmath.mp.dps + 5
        val = sympy.N(v, dps)
        if not isinstance(val, sympy.Float):
            return mpmath.mpf("nan")
        return +mpmath.mpf(val._mpf_)
    raise ComparisonError(f"cannot convert {v!r} to a number")


def _scalar_like(x) -> bool:
    return isinstance(x, (int, float, Fraction, Decimal, mpmath.mpf, np.number, np.bool_, bool, mpmath.mpc,
                          complex)) or (
        isinstance(x, sympy.Basic) and x.is_number) or (isinstance(x, np.ndarray) and x.ndim == 0)


def _flatten_keyed(obj, prefix: str, names: list, values: list, where: str) -> None:
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            _flatten_keyed(v, f"{prefix}[{k}]" if prefix else str(k), names, values, where)
    elif isinstance(obj, (list, tuple, np.ndarray)) and not (isinstance(obj, np.ndarray) and obj.ndim == 0):
        for i, v in enumerate(obj):
            _flatten_keyed(v, f"{prefix}[{i}]", names, values, where)
    elif _scalar_like(obj):
        names.append(prefix)
        values.append(obj[()] if isinstance(obj, np.ndarray) else obj)
    else:
        raise ComparisonError(f"{where}: {prefix or 'value'} is a {type(obj).__name__}, not a number")


def flatten(x, where: str = "value", names: Sequence[str] | None = None) -> Flat:
    """Flatten a GradResult, dict, sequence, numpy array or scalar into named components (see :class:`Flat`).

    ``names`` labels the components of an array/sequence (row-major order); its length must equal the size.
    """
    param_names = None
    if isinstance(x, GradResult):
        pairs = x.named_values()
        nm, vals = [p[0] for p in pairs], [p[1] for p in pairs]
        keyed, shape = True, None
        param_names = list(x.grad)
        description = (f"GradResult of {x.method!r} (parameters [{', '.join(param_names)}], "
                       f"{len(x.grad_z0)} initial states, grad_t1 {'present' if x.grad_t1 is not None else 'absent'})")
    elif isinstance(x, Mapping):
        nm, vals = [], []
        _flatten_keyed(x, "", nm, vals, where)
        keyed, shape = True, None
        description = f"dict with components [{', '.join(nm[:8])}{', ...' if len(nm) > 8 else ''}]"
    else:
        if _scalar_like(x):
            arr = np.empty((), dtype=object)
            arr[()] = x[()] if isinstance(x, np.ndarray) else x
            shape = ()
        elif isinstance(x, np.ndarray):
            arr = x
            shape = x.shape
        elif isinstance(x, (list, tuple)):
            try:
                arr = np.asarray(x, dtype=object)
            except ValueError as exc:
                raise ComparisonError(f"{where}: not a rectangular array ({exc})") from None
            for v in arr.ravel():
                if isinstance(v, (list, tuple, np.ndarray)):
                    raise ComparisonError(f"{where}: nested sequences of different lengths (ragged); "
                                          f"give a rectangular array")
            shape = arr.shape
        else:
            raise ComparisonError(f"{where}: cannot compare a {type(x).__name__}; give a GradResult, dict, "
                                  f"sequence, numpy array or number")
        vals = list(arr.ravel()) if arr.shape != () else [arr[()]]
        if arr.dtype == np.float16 or (arr.dtype.kind == "f" and arr.dtype.itemsize > 8):
            raise ComparisonError(f"{where}: numpy {arr.dtype} arrays are not supported; convert to float64 or "
                                  f"mpmath.mpf explicitly")
        if names is not None:
            nm = [str(n) for n in names]
            if len(nm) != len(vals):
                raise ComparisonError(f"{where}: {len(nm)} names for {len(vals)} components (shape {shape})")
        elif shape == ():
            nm = ["value"]
        else:
            nm = ["[" + ",".join(str(i) for i in idx) + "]" for idx in np.ndindex(*shape)]
        keyed = False
        description = f"{type(x).__name__} of shape {shape}" + (f" (dtype {arr.dtype})"
                                                                if isinstance(x, np.ndarray) else "")
    kinds, bits = set(), 53
    for n, v in zip(nm, vals):
        k, b = _kind_and_bits(v, f"{where} {n}")
        kinds.add(k)
        bits = max(bits, b)
    if isinstance(x, GradResult) and x.digits:
        bits = max(bits, int(x.digits * 3.33) + 1)
    kind = ("float32" if "float32" in kinds else "mpf" if "mpf" in kinds
            else "float64" if "float64" in kinds else "exact")
    return Flat(nm, vals, shape, keyed, kind, bits, description, param_names)


# ---------------------------------------------------------------------------------------------------------------
# The comparison


@dataclass
class Row:
    """One component: candidate, reference, |c - r|, the allowance atol + rtol*max(|c|,|r|), and the verdict.

    ``ratio`` = error / allowed (inf for a non-finite value or an exceeded zero allowance): the worst row is the
    one with the largest ratio.
    """

    name: str
    candidate: Any  # as given (float, numpy scalar, mpf, exact number)
    reference: Any
    error: Any  # mpf at the comparison's working precision; None where a value is not finite
    allowed: Any
    ok: bool
    ratio: float
    note: str = ""


def _fmt(v, digits: int) -> str:
    """A value as the reader should see it: floats by their shortest repr, mpf at ``digits`` digits."""
    if v is None:
        return "-"
    if isinstance(v, (float, np.floating)):
        return repr(float(v)) + (" (float32)" if isinstance(v, np.float32) else "")
    if isinstance(v, mpmath.mpf):
        if not mpmath.isfinite(v):
            return str(v)
        return mpmath.nstr(v, digits)
    return str(v)


@dataclass
class Comparison:
    """The outcome of :func:`compare`: ``ok``, every component's :class:`Row`, the ``worst`` row, and notes."""

    ok: bool
    rows: list[Row]
    worst: Row | None
    rtol: float
    atol: Any
    notes: list[str] = field(default_factory=list)
    failure: str | None = None  # a structural failure (shapes, names), where no component rows could be formed
    candidate: str = ""
    reference: str = ""
    digits: int = 17
    tolerance: Tolerance | None = None

    def worst_line(self) -> str:
        """The worst component in words (empty where there are no component rows)."""
        w = self.worst
        if w is None:
            return ""
        if w.error is None:
            return (f"worst {w.name}: {w.note} (candidate {_fmt(w.candidate, self.digits)}, reference "
                    f"{_fmt(w.reference, self.digits)})")
        rel = "<=" if w.ok else ">"
        return (f"worst {w.name}: candidate {_fmt(w.candidate, self.digits)} vs reference "
                f"{_fmt(w.reference, self.digits)}, |c - r| = {_fmt(w.error, 3)} {rel} allowed {_fmt(w.allowed, 3)}")

    def summary(self) -> str:
        """One line: the verdict and the worst component (or the structural reason)."""
        verdict = "PASS" if self.ok else "FAIL"
        notes = f" [{'; '.join(self.notes)}]" if self.notes else ""
        if self.failure:
            return f"{verdict}: {self.failure}{notes}"
        if self.worst is None:
            return f"{verdict}: no components{notes}"
        return (f"{verdict}: {len(self.rows)} components, {self.worst_line()} "
                f"(rtol={_fmt_tol(self.rtol)}, atol={_fmt_tol(self.atol)}){notes}")

    def to_markdown(self, max_rows: int = 40) -> str:
        """A Markdown report: verdict, metric and tolerance, notes, and a table of the components
        (all of them up to ``max_rows``; beyond that the ``max_rows`` worst, in their original order)."""
        out = [f"**Comparison: {'PASS' if self.ok else 'FAIL'}**", "",
               f"- candidate: {self.candidate}", f"- reference: {self.reference}",
               "- metric: |c - r| <= atol + rtol * max(|c|, |r|) per component; NaN/Inf never pass",
               f"- rtol = {_fmt_tol(self.rtol)}, atol = {_fmt_tol(self.atol)}"]
        if self.tolerance is not None:
            out.append(f"- tolerance entry: {self.tolerance.describe()}")
        for n in self.notes:
            out.append(f"- note: {n}")
        if self.failure:
            out += ["", f"Failed before comparing values: {self.failure}"]
            return "\n".join(out) + "\n"
        out += ["", f"{len(self.rows)} components; {self.worst_line() or 'no components'}", ""]
        rows = self.rows
        if len(rows) > max_rows:
            keep = set(sorted(range(len(rows)), key=lambda i: -rows[i].ratio)[:max_rows])
            rows = [r for i, r in enumerate(rows) if i in keep]
            out.append(f"({len(self.rows) - max_rows} passing-better components not shown)")
            out.append("")
        out.append("| component | candidate | reference | abs error | allowed | ok |")
        out.append("|---|---|---|---|---|---|")
        for r in rows:
            mark = "yes" if r.ok else ("**NO** " + r.note).strip()
            out.append(f"| {r.name} | {_fmt(r.candidate, self.digits)} | {_fmt(r.reference, self.digits)} | "
                       f"{_fmt(r.error, 3)} | {_fmt(r.allowed, 3)} | {mark} |")
        return "\n".join(out) + "\n"

    def raise_if_failed(self) -> "Comparison":
        """Raise :class:`ComparisonError` with :meth:`summary` if the comparison failed; else return self."""
        if not self.ok:
            raise ComparisonError(self.summary())
        return self


def _fmt_tol(v) -> str:
    if isinstance(v, Mapping):
        vals = [float(x) for x in v.values()]
        return f"per component (max {max(vals, default=0.0):.3g})"
    if isinstance(v, (list, tuple)):
        return f"per component (max {max((float(x) for x in v), default=0.0):.3g})"
    return f"{float(v):.3g}"


def _check_tol(v, what: str):
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.floating, mpmath.mpf, Fraction)):
        raise ComparisonError(f"{what} must be a number, got {v!r}")
    f = float(v)
    if not (math.isfinite(f) and f >= 0):
        raise ComparisonError(f"{what} must be finite and >= 0, got {v!r}")
    return v


def _per_component_atol(atol, names: list[str]) -> list:
    if isinstance(atol, Mapping):
        missing = [n for n in names if n not in atol]
        if missing:
            raise ComparisonError(f"atol has no entry for component(s) {', '.join(missing[:5])}")
        return [_check_tol(atol[n], f"atol[{n}]") for n in names]
    if isinstance(atol, (list, tuple, np.ndarray)):
        if len(atol) != len(names):
            raise ComparisonError(f"atol has {len(atol)} entries for {len(names)} components")
        return [_check_tol(a, f"atol[{n}]") for a, n in zip(atol, names)]
    _check_tol(atol, "atol")
    return [atol] * len(names)


def _fail(reason: str, c: Flat, r: Flat, rtol, atol, notes, tol) -> Comparison:
    return Comparison(False, [], None, rtol, atol, notes, reason, c.description, r.description, tolerance=tol)


def compare(candidate, reference, *, rtol=None, atol=None, tolerance: Tolerance | None = None,
            names: Sequence[str] | None = None, allow_float32_strict: bool = False) -> Comparison:
    """Compare ``candidate`` with ``reference`` component by component (metric in the module docstring).

    ``rtol``/``atol`` are given explicitly or taken from ``tolerance`` (a :class:`Tolerance`, e.g.
    ``TOLERANCES["float64-reordered"]``); explicit values override the entry's.  ``atol`` may be a number, a
    sequence (one per component) or a mapping component name -> allowance.  ``names`` labels array components.
    Structural mismatches (shape, names, kind of container) give a failed Comparison naming both sides; inputs
    that are not numbers at all raise :class:`ComparisonError`.
    """
    if tolerance is not None:
        rtol = tolerance.rtol if rtol is None else rtol
        atol = tolerance.atol if atol is None else atol
    if rtol is None or atol is None:
        raise ComparisonError("give both rtol and atol (or tolerance=TOLERANCES[...]); there is no default "
                              "tolerance, because no single one fits every purpose")
    _check_tol(rtol, "rtol")
    c = flatten(candidate, "candidate", names)
    r = flatten(reference, "reference", names)
    notes: list[str] = []

    # -- structure: exact match, no broadcasting ----------------------------------------------------------
    if c.keyed != r.keyed:
        return _fail(f"cannot compare a {c.description} with a {r.description}: give both as named results "
                     f"(GradResult/dict) or both as arrays", c, r, rtol, atol, notes, tolerance)
    if not c.keyed and c.shape != r.shape:
        return _fail(f"shape mismatch: candidate has shape {c.shape}, reference has shape {r.shape} "
                     f"(no broadcasting)", c, r, rtol, atol, notes, tolerance)
    if c.keyed:
        if c.param_names is not None and r.param_names is not None and c.param_names != r.param_names:
            return _fail(f"parameter names differ: candidate [{', '.join(c.param_names)}], reference "
                         f"[{', '.join(r.param_names)}]", c, r, rtol, atol, notes, tolerance)
        only_c = [n for n in c.names if n not in set(r.names)]
        only_r = [n for n in r.names if n not in set(c.names)]
        if only_c or only_r:
            return _fail(f"components differ: only in candidate [{', '.join(only_c)}], only in reference "
                         f"[{', '.join(only_r)}] ({c.description} vs {r.description})",
                         c, r, rtol, atol, notes, tolerance)
        ref_by_name = dict(zip(r.names, r.values))
        pairs = [(n, v, ref_by_name[n]) for n, v in zip(c.names, c.values)]
    else:
        pairs = list(zip(c.names, c.values, r.values))
    names_list = [p[0] for p in pairs]
    atols = _per_component_atol(atol, names_list)

    # -- float32: never compared at a float64 tolerance by accident -----------------------------------------
    f32 = TOLERANCES["float32"]
    low = [side for side, f in (("candidate", c), ("reference", r)) if f.kind == "float32"]
    if low:
        label = " and ".join(low)
        if allow_float32_strict:
            notes.append(f"float32 {label}: compared at the caller's tolerance (allow_float32_strict=True), "
                         f"not raised to the float32 floor rtol={f32.rtol:g}, atol={f32.atol:g}")
        else:
            raised = float(rtol) < f32.rtol or any(float(a) < f32.atol for a in atols)
            rtol = max(float(rtol), f32.rtol)
            atols = [max(float(a), f32.atol) for a in atols]
            if isinstance(atol, Mapping):
                atol = dict(zip(names_list, atols))
            elif isinstance(atol, (list, tuple, np.ndarray)):
                atol = list(atols)
            else:
                atol = atols[0] if atols else max(float(atol), f32.atol)
            notes.append(f"float32 {label}: tolerance " + ("raised to" if raised else "at least") +
                         f" the float32 floor rtol={f32.rtol:g}, atol={f32.atol:g} (TOLERANCES['float32'])")

    # -- values, in mpmath at the precision of the most precise input ---------------------------------------
    # Exact inputs (Fraction, sympy numbers) are rounded to the working precision: it must resolve the
    # allowance, i.e. 2**-prec * |r| << atol + rtol*|r|; floats and mpf values enter exactly at their own bits.
    need = 0
    if float(rtol) > 0:
        need = math.ceil(-math.log2(float(rtol)))
    for (_, _, rv), at in zip(pairs, atols):
        try:
            mag = abs(float(rv))
        except (OverflowError, ValueError, TypeError):
            mag = 0.0
        if float(at) > 0 and math.isfinite(mag) and mag > 0:
            need = max(need, math.ceil(math.log2(mag) - math.log2(float(at))))
    prec = max(mpmath.mp.prec, c.prec_bits, r.prec_bits, min(need, 4000)) + 30
    top = max(c.prec_bits, r.prec_bits)  # display digits: those the most precise input has (max 60)
    digits = 17 if top <= 53 else min(int(top * math.log10(2)) + 1, 60)
    rows: list[Row] = []
    with mpmath.workprec(prec):
        rt = _to_mpf(rtol)
        for (name, cv, rv), at in zip(pairs, atols):
            cm, rm = _to_mpf(cv), _to_mpf(rv)
            if not (mpmath.isfinite(cm) and mpmath.isfinite(rm)):
                why = [] if mpmath.isfinite(cm) else [f"candidate is {cm}"]
                if not mpmath.isfinite(rm):
                    why.append(f"reference is {rm} (not finite: a symode reference always is; the reference is "
                               f"broken)")
                rows.append(Row(name, cv, rv, None, None, False, math.inf, "; ".join(why)))
                continue
            err = abs(cm - rm)
            allowed = _to_mpf(at) + rt * max(abs(cm), abs(rm))
            ok = err <= allowed
            ratio = 0.0 if err == 0 else (math.inf if allowed == 0 else float(err / allowed))
            rows.append(Row(name, cv, rv, err, allowed, bool(ok), ratio))
    worst = max(rows, key=lambda row: row.ratio) if rows else None
    ok = all(row.ok for row in rows)
    return Comparison(ok, rows, worst, rtol, atol, notes, None, c.description, r.description, digits, tolerance)


# ---------------------------------------------------------------------------------------------------------------
# Non-differentiable points (kinks)

_KINK_TYPES = (sympy.Abs, sympy.Heaviside, sympy.Max, sympy.Min, sympy.sign, sympy.Piecewise,
               sympy.floor, sympy.ceiling)


@dataclass(frozen=True)
class Kink:
    """A non-smooth node of a model expression.

    ``switches`` are the expressions whose zero is the kink (Abs(u), sign(u), Heaviside(u): u; Max/Min(a, b):
    a - b per pair; Piecewise: lhs - rhs of each relational condition); for floor/ceiling the kink is where
    the argument is an integer.  ``depends`` says what the switches depend on: "params", "time", "state".
    """

    field: str
    node: sympy.Expr
    switches: tuple
    depends: str

    @property
    def function(self) -> str:
        return type(self.node).__name__


def _switches(node) -> tuple:
    if isinstance(node, (sympy.Abs, sympy.sign, sympy.floor, sympy.ceiling)):
        return (node.args[0],)
    if isinstance(node, sympy.Heaviside):
        return (node.args[0],)
    if isinstance(node, (sympy.Max, sympy.Min)):
        a = node.args
        return tuple(a[i] - a[j] for i in range(len(a)) for j in range(i + 1, len(a)))
    if isinstance(node, sympy.Piecewise):
        out = []
        for _, cond in node.args:
            rels = [cond] if isinstance(cond, sympy.core.relational.Relational) else \
                list(cond.atoms(sympy.core.relational.Relational)) if isinstance(cond, sympy.Basic) else []
            out += [rel.lhs - rel.rhs for rel in rels]
        return tuple(out)
    return ()


def _fields(model) -> list[tuple[str, sympy.Expr]]:
    out = [(f"rhs[{i}]", e) for i, e in enumerate(model.rhs)] + [(f"z0[{i}]", e) for i, e in enumerate(model.z0)]
    if model.terminal is not None:
        out.append(("loss.terminal", model.terminal))
    if model.running is not None:
        out.append(("loss.running", model.running))
    out += [(f"loss.observations[{i}]", o.term) for i, o in enumerate(model.observations)]
    return out


def kinks(model) -> list[Kink]:
    """Every non-smooth node (see :data:`_KINK_TYPES`) in the model's rhs, z0 and loss terms."""
    states, t = set(model.states), model.t
    out = []
    for name, expr in _fields(model):
        for node in sorted(expr.atoms(*_KINK_TYPES), key=sympy.default_sort_key):
            sw = _switches(node)
            syms = set().union(*(s.free_symbols for s in sw)) if sw else set()
            depends = "state" if syms & states else "time" if t in syms else "params"
            out.append(Kink(name, node, sw, depends))
    return out


def _theta_map(model, theta) -> dict:
    if theta is None:
        return dict(model.param_values)
    if isinstance(theta, Mapping):
        return model.values_with(theta, lambda k, v: _sympy_number(v, f"theta[{k}]"))
    vals = list(theta)
    if len(vals) != model.np:
        raise SpecError(f"model {model.name!r}: theta has {len(vals)} values for {model.np} parameters "
                        f"({', '.join(model.param_names)})")
    return {p: _sympy_number(v, f"theta[{p.name}]") for p, v in zip(model.params, vals)}


def _sympy_number(v, where: str) -> sympy.Expr:
    """An exact SymPy number for v (floats and mpf enter exactly as binary fractions)."""
    if isinstance(v, (bool, np.bool_)):
        raise SpecError(f"{where}: {v!r} is not a number")
    if isinstance(v, sympy.Basic):
        return v
    if isinstance(v, (int, np.integer)):
        return sympy.Integer(int(v))
    if isinstance(v, Fraction):
        return sympy.Rational(v.numerator, v.denominator)
    if isinstance(v, Decimal):
        return sympy.Rational(*v.as_integer_ratio())
    if isinstance(v, (float, np.floating)):
        f = float(v)
        if not math.isfinite(f):
            raise SpecError(f"{where}: {f} is not finite")
        return sympy.Rational(*f.as_integer_ratio())
    if isinstance(v, mpmath.mpf):
        if not mpmath.isfinite(v):
            raise SpecError(f"{where}: {v} is not finite")
        man, exp = v.man_exp
        return sympy.Integer(int(man)) * sympy.Integer(2) ** int(exp)
    raise SpecError(f"{where}: {type(v).__name__} {v!r} is not a number")


def _is_kink_point(switch: sympy.Expr, node, values: dict) -> tuple[bool, sympy.Expr]:
    """Whether ``switch`` (substituted with exact ``values``) puts ``node`` exactly on its kink."""
    val = switch.xreplace(values)
    if val.free_symbols:
        return False, val
    if isinstance(node, (sympy.floor, sympy.ceiling)):
        return bool(val.is_integer), val
    zero = val.is_zero
    if zero is None:  # e.g. sqrt(2)**2 - 2 written unevaluated: let simplify decide, else treat as nonzero
        zero = sympy.simplify(val).is_zero
    return bool(zero), val


def _show(v) -> str:
    """A parameter value for messages: exact when short (1/2), else 17 significant digits (a float's value)."""
    if isinstance(v, sympy.Rational) and v.q > 10 ** 6:
        return str(sympy.N(v, 17))
    return str(v)


def check_differentiable(model, theta=None, *, near: float = 1e-8) -> list[str]:
    """Non-differentiable points of the model at parameters ``theta`` (default: the nominal values).

    Flags, per kink (see :func:`kinks`):

    * a switch depending on parameters only that is exactly 0 at ``theta`` (e.g. ``abs(a)`` with ``a = 0``, or
      ``abs(z0 - c)`` inside z0's expression): the gradient is not defined there and each library returns its
      own convention (SymPy's d|x|/dx is sign(x), 0 at 0), so routes may legitimately disagree;
    * a switch that is within ``near`` (relative to 1 + the size of its terms) of 0: defined, but finite
      differences with steps larger than the distance straddle the kink;
    * a switch in the rhs or running cost that is exactly 0 at the initial point (t0, z0(θ)).

    State-dependent kinks elsewhere on the trajectory are not found here: sample the trajectory and call
    :func:`kink_crossings`.  Returns human-readable findings (empty: nothing found at these points).
    """
    values = _theta_map(model, theta)
    z0 = {s: e.xreplace(values) for s, e in zip(model.states, model.z0)}
    initial = {**values, **z0, model.t: model.t0}
    where_theta = ", ".join(f"{p.name} = {_show(values[p])}" for p in model.params) or "no parameters"
    out = []
    for k in kinks(model):
        for sw in k.switches:
            if k.depends == "params":
                hit, val = _is_kink_point(sw, k.node, values)
                if hit:
                    out.append(f"{k.field}: {k.node} is not differentiable at the parameters ({where_theta}): "
                               f"its switch {sw} is {val} there; the derivative's value depends on the "
                               f"convention of each library, so routes may disagree here")
                    continue
                num = sympy.N(val, 30) if val.is_number else None
                if num is not None and num.is_real and not isinstance(k.node, (sympy.floor, sympy.ceiling)):
                    scale = 1 + sum(abs(sympy.N(term.xreplace(values), 30)) for term in sympy.Add.make_args(sw))
                    if abs(num) <= near * scale:
                        out.append(f"{k.field}: {k.node} is {float(abs(num)):.3g} from its kink at the "
                                   f"parameters ({where_theta}); finite differences with steps larger than "
                                   f"that straddle the kink")
            elif k.field.startswith(("rhs", "loss.running")):
                hit, val = _is_kink_point(sw, k.node, initial)
                if hit:
                    pt = ", ".join(f"{s.name} = {z0[s]}" for s in model.states)
                    out.append(f"{k.field}: {k.node} sits on its kink at the initial point (t = {model.t0}, "
                               f"{pt}): its switch {sw} is {val} there; not differentiable at this point, the "
                               f"value depends on convention")
    return out


def kink_crossings(model, times: Sequence, states: Sequence[Sequence], theta=None) -> list[str]:
    """Where state- or time-dependent kink switches cross or touch zero along a sampled trajectory.

    ``times[i]`` and ``states[i]`` (one value per state) are samples of the solution z(t) at the parameters
    ``theta``.  For kinks in the rhs and running cost every sample is checked: a sign change between samples
    is a crossing (the gradient stays defined for a transversal crossing, but fixed-step routes lose their
    order there and their discrete gradient sees the kink), an exact zero at a sample is a touch (not
    differentiable if the trajectory is tangent to the kink).  Kinks in the terminal term are checked at the
    sample at t1, kinks in observation terms at their observation times (when sampled).  Samples are points:
    a touch between samples is not seen.
    """
    if len(times) != len(states):
        raise SpecError(f"kink_crossings: {len(times)} times but {len(states)} state samples")
    values = _theta_map(model, theta)
    ts = [_sympy_number(t, f"times[{i}]") for i, t in enumerate(times)]
    samples = []
    for i, zs in enumerate(states):
        zs = list(zs)
        if len(zs) != model.nz:
            raise SpecError(f"kink_crossings: states[{i}] has {len(zs)} values for {model.nz} states")
        samples.append({s: _sympy_number(v, f"states[{i}][{j}]") for j, (s, v) in enumerate(zip(model.states, zs))})
    obs_time = {f"loss.observations[{i}]": o.time for i, o in enumerate(model.observations)}
    out = []
    for k in kinks(model):
        if k.depends == "params":
            continue
        if k.field.startswith(("rhs", "loss.running")):
            idx = list(range(len(ts)))
        else:
            at = model.t1 if k.field == "loss.terminal" else obs_time.get(k.field)
            idx = [i for i, t in enumerate(ts) if t == at]
            if not idx:
                out.append(f"{k.field}: {k.node} not checked: no sample at t = {at}")
                continue
        for sw in k.switches:
            vals = []
            for i in idx:
                v = sympy.N(sw.xreplace({**values, **samples[i], model.t: ts[i]}), 30)
                vals.append(v)
            for n, (i, v) in enumerate(zip(idx, vals)):
                if isinstance(k.node, (sympy.floor, sympy.ceiling)):
                    continue
                if v == 0:
                    out.append(f"{k.field}: {k.node} touches its kink at t = {ts[i]} (switch {sw} = 0); not "
                               f"differentiable there if the trajectory is tangent to it or the term is a loss "
                               f"evaluated there")
                elif n + 1 < len(idx) and vals[n + 1] != 0 and (v > 0) != (vals[n + 1] > 0):
                    out.append(f"{k.field}: {k.node} crosses its kink between t = {ts[i]} and "
                               f"t = {ts[idx[n + 1]]} (switch {sw} changes sign); fixed-step routes lose "
                               f"order across it and finite differences may straddle it")
    return out


# ---------------------------------------------------------------------------------------------------------------
# Singularities SymPy simplified away at parse time


_STRICT_FUNCS = {
    "sin": mpmath.sin, "cos": mpmath.cos, "tan": mpmath.tan, "exp": mpmath.exp, "tanh": mpmath.tanh,
    "sinh": mpmath.sinh, "cosh": mpmath.cosh, "atan": mpmath.atan, "asinh": mpmath.asinh, "abs": abs,
    "sigmoid": lambda x: 1 / (1 + mpmath.exp(-x)), "softplus": lambda x: mpmath.log(1 + mpmath.exp(x)),
}


def _strict_eval(tree: ast.AST, src: str, point: dict, findings: list, shown: str | None = None) -> mpmath.mpf:
    """Evaluate the written expression tree literally in mpmath (no simplification); record each singular
    operation (division by 0, log of <= 0, sqrt of < 0, 0 to a negative power, negative base to a fraction
    power) as (text of the node, reason).  Iterative post-order: a left-nested sum of 2,000 terms is fine."""
    from ..expr import parse_decimal

    nan = mpmath.mpf("nan")
    # ``shown``: the text as the user wrote it (keyword names unmangled; same length, same positions as src)
    seg = lambda node: ast.get_source_segment(shown or src, node) or "?"  # noqa: E731
    vals: dict[int, Any] = {}
    stack = [(tree.body, False)]
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
            v = point[node.id]
        elif isinstance(node, ast.UnaryOp):
            a = vals[id(node.operand)]
            v = -a if isinstance(node.op, ast.USub) else a
        elif isinstance(node, ast.BinOp):
            a, b = vals[id(node.left)], vals[id(node.right)]
            if not (mpmath.isfinite(a) and mpmath.isfinite(b)):
                v = nan  # an inner singularity was already recorded; NaN propagates through everything
            elif isinstance(node.op, ast.Add):
                v = a + b
            elif isinstance(node.op, ast.Sub):
                v = a - b
            elif isinstance(node.op, ast.Mult):
                v = a * b
            elif isinstance(node.op, ast.Div):
                if b == 0:
                    findings.append((seg(node), f"division by zero (denominator {seg(node.right)} = 0)"))
                    v = nan
                else:
                    v = a / b
            else:  # Pow
                if a == 0 and b < 0:
                    findings.append((seg(node), f"0 to the negative power {mpmath.nstr(b, 6)}"))
                    v = nan
                elif a < 0 and b != mpmath.floor(b):
                    findings.append((seg(node), f"negative base {mpmath.nstr(a, 6)} to the non-integer power "
                                                f"{mpmath.nstr(b, 6)}"))
                    v = nan
                else:
                    v = mpmath.power(a, b)
        elif isinstance(node, ast.Call):
            fname = node.func.id
            a = vals[id(node.args[0])]
            if not mpmath.isfinite(a):
                v = nan
            elif fname == "log" and a <= 0:
                findings.append((seg(node), f"log of {'0' if a == 0 else 'a negative number ' + mpmath.nstr(a, 6)}"))
                v = nan
            elif fname == "log":
                v = mpmath.log(a)
            elif fname == "sqrt" and a < 0:
                findings.append((seg(node), f"sqrt of a negative number {mpmath.nstr(a, 6)}"))
                v = nan
            elif fname == "sqrt":
                v = mpmath.sqrt(a)
            else:
                v = _STRICT_FUNCS[fname](a)
        else:  # parse_expression already refused everything else
            raise SpecError(f"unexpected syntax {type(node).__name__}")
        vals[id(node)] = v
    return vals[id(tree.body)]


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
    from ..expr import _mangle_keywords, make_symbol, parse_expression
    from ..model import T

    if not isinstance(text, str):
        raise SpecError(f"{field}: removed_singularities needs the expression text as written (a str); a SymPy "
                        f"expression has already been simplified, its removed singularities are gone")
    names = {n: (T if n == "t" else make_symbol(n)) for n in point}
    expr = parse_expression(text, names, field)
    exact = {names[n]: _sympy_number(v, f"{field}: point[{n}]") for n, v in point.items()}
    mangled = {("_" + n[1:] if n in keyword.kwlist else n): n for n in point}
    src = _mangle_keywords(text.strip())
    tree = ast.parse(src, mode="eval")
    findings: list = []
    with mpmath.workdps(50):
        mp_point = {m: _to_mpf(exact[names[n]]) for m, n in mangled.items()}
        _strict_eval(tree, src, mp_point, findings, shown=text.strip())
        if not findings:
            return []
        simplified = sympy.N(expr.xreplace(exact), 50)
        finite = simplified.is_number and simplified.is_real and simplified.is_finite
        at = ", ".join(f"{n} = {v}" for n, v in point.items())
        where = "; ".join(f"{reason} in `{seg}`" for seg, reason in findings)
        if not finite:
            return [f"{field}: singular at {at}: {where}; the parsed expression is not finite there either "
                    f"({simplified}): no route can evaluate it at this point"]
        s = _to_mpf(simplified)
        if candidate is None:
            return [f"{field}: SymPy simplified away a singularity at {at}: {where}; the parsed expression "
                    f"`{expr}` is {mpmath.nstr(s, 17)} there and every symode route uses that value, while a "
                    f"candidate evaluating the text as written gets NaN/Inf or an error: it may disagree here"]
        c = _to_mpf(candidate)
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
    candidates = dict(candidates or {})
    params = {p.name: model.param_values[p] for p in model.params}
    z0 = {s.name: e.xreplace(model.param_values) for s, e in zip(model.states, model.z0)}
    initial = {**params, **z0, "t": model.t0}
    loss = spec.get("loss", {}) if isinstance(spec.get("loss"), Mapping) else {}
    out = []

    def check(text, pt, fld, cand=None):
        if not isinstance(text, str):
            return
        used = _names_in(text)
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


def _names_in(text: str) -> set[str]:
    """The identifiers in ``text`` (a superset of the names it uses; function names are dropped by the caller's
    point filter because no point has them)."""
    from ..expr import _TOKEN_RE

    return {m.group("name") for m in _TOKEN_RE.finditer(text) if m.group("name")}
