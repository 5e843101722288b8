"""Comparing a candidate with a reference: one symmetric metric with an explicit allowance near zero.

The metric (symmetric in candidate and reference)::

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
  (``COMPARISON_TOLERANCES["float32"]``) unless the caller passes ``allow_float32_strict=True``; the report says
  "float32 candidate".  float16 and long double inputs are refused (convert them yourself, visibly).

The points where a gradient comparison cannot be trusted are found in :mod:`symode.check.kinks`
(non-differentiable points) and :mod:`symode.check.singularities` (singularities SymPy simplified away at parse
time); their functions stay importable from here.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any, Mapping, Sequence

import mpmath
import numpy as np
import sympy

from ..result import GradResult
from .kinks import Kink, check_differentiable, kink_crossings, kinks  # noqa: F401  (importable from here)
from .numbers import ComparisonError, to_mpf
from .singularities import model_removed_singularities, removed_singularities  # noqa: F401  (importable from here)
from .tolerances import COMPARISON_TOLERANCES, Tolerance

__all__ = [
    "ComparisonError", "Flat", "flatten", "Row", "Comparison", "compare",
    "Kink", "kinks", "check_differentiable", "kink_crossings",
    "removed_singularities", "model_removed_singularities",
]


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
    ``COMPARISON_TOLERANCES["float64-reordered"]``); explicit values override the entry's.  ``atol`` may be a number, a
    sequence (one per component) or a mapping component name -> allowance.  ``names`` labels array components.
    Structural mismatches (shape, names, kind of container) give a failed Comparison naming both sides; inputs
    that are not numbers at all raise :class:`ComparisonError`.
    """
    if tolerance is not None:
        rtol = tolerance.rtol if rtol is None else rtol
        atol = tolerance.atol if atol is None else atol
    if rtol is None or atol is None:
        raise ComparisonError("give both rtol and atol (or tolerance=COMPARISON_TOLERANCES[...]); there is no default "
                              "tolerance, because no single one fits every purpose")
    _check_tol(rtol, "rtol")
    c = flatten(candidate, "candidate", names)
    r = flatten(reference, "reference", names)
    notes: list[str] = []
    pairs = _aligned(c, r)
    if isinstance(pairs, str):
        return _fail(pairs, c, r, rtol, atol, notes, tolerance)
    names_list = [p[0] for p in pairs]
    atols = _per_component_atol(atol, names_list)
    rtol, atol, atols = _float32_floor(c, r, rtol, atol, atols, names_list, allow_float32_strict, notes)
    rows, digits = _rows(pairs, rtol, atols, c, r)
    worst = max(rows, key=lambda row: row.ratio) if rows else None
    ok = all(row.ok for row in rows)
    return Comparison(ok, rows, worst, rtol, atol, notes, None, c.description, r.description, digits, tolerance)


def _aligned(c: Flat, r: Flat) -> list[tuple] | str:
    """(name, candidate, reference) per component, or why the structures do not match (exactly; no
    broadcasting)."""
    if c.keyed != r.keyed:
        return (f"cannot compare a {c.description} with a {r.description}: give both as named results "
                f"(GradResult/dict) or both as arrays")
    if not c.keyed and c.shape != r.shape:
        return f"shape mismatch: candidate has shape {c.shape}, reference has shape {r.shape} (no broadcasting)"
    if not c.keyed:
        return list(zip(c.names, c.values, r.values))
    if c.param_names is not None and r.param_names is not None and c.param_names != r.param_names:
        return (f"parameter names differ: candidate [{', '.join(c.param_names)}], reference "
                f"[{', '.join(r.param_names)}]")
    only_c = [n for n in c.names if n not in set(r.names)]
    only_r = [n for n in r.names if n not in set(c.names)]
    if only_c or only_r:
        return (f"components differ: only in candidate [{', '.join(only_c)}], only in reference "
                f"[{', '.join(only_r)}] ({c.description} vs {r.description})")
    ref_by_name = dict(zip(r.names, r.values))
    return [(n, v, ref_by_name[n]) for n, v in zip(c.names, c.values)]


def _float32_floor(c: Flat, r: Flat, rtol, atol, atols: list, names_list: list, strict: bool, notes: list):
    """(rtol, atol, atols) raised to the float32 table entry where a side is float32 (unless ``strict``): a
    float32 value is never compared at a float64 tolerance by accident.  Says so in ``notes``."""
    f32 = COMPARISON_TOLERANCES["float32"]
    low = [side for side, f in (("candidate", c), ("reference", r)) if f.kind == "float32"]
    if not low:
        return rtol, atol, atols
    label = " and ".join(low)
    if strict:
        notes.append(f"float32 {label}: compared at the caller's tolerance (allow_float32_strict=True), "
                     f"not raised to the float32 floor rtol={f32.rtol:g}, atol={f32.atol:g}")
        return rtol, atol, atols
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
                 f" the float32 floor rtol={f32.rtol:g}, atol={f32.atol:g} (COMPARISON_TOLERANCES['float32'])")
    return rtol, atol, atols


def _rows(pairs: list, rtol, atols: list, c: Flat, r: Flat) -> tuple[list[Row], int]:
    """Every component's :class:`Row`, in mpmath at the precision of the most precise input, and the digits
    to display.  Exact inputs (Fraction, sympy numbers) are rounded to the working precision: it must resolve
    the allowance, i.e. 2**-prec * |r| << atol + rtol*|r|; floats and mpf values enter exactly at their own
    bits."""
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
        rt = to_mpf(rtol)
        for (name, cv, rv), at in zip(pairs, atols):
            cm, rm = to_mpf(cv), to_mpf(rv)
            if not (mpmath.isfinite(cm) and mpmath.isfinite(rm)):
                why = [] if mpmath.isfinite(cm) else [f"candidate is {cm}"]
                if not mpmath.isfinite(rm):
                    why.append(f"reference is {rm} (not finite: a symode reference always is; the reference is "
                               f"broken)")
                rows.append(Row(name, cv, rv, None, None, False, math.inf, "; ".join(why)))
                continue
            err = abs(cm - rm)
            allowed = to_mpf(at) + rt * max(abs(cm), abs(rm))
            ok = err <= allowed
            ratio = 0.0 if err == 0 else (math.inf if allowed == 0 else float(err / allowed))
            rows.append(Row(name, cv, rv, err, allowed, bool(ok), ratio))
    return rows, digits
