"""Testing another implementation's gradients against symode: :func:`assert_gradients_match` and a pytest plugin.

::

    from symode.testing import assert_gradients_match
    assert_gradients_match(my_fn, "logistic", rtol=1e-6)            # a callable against the oracle
    assert_gradients_match("result.json", "golden/logistic.json", rtol=1e-8)
    assert_gradients_match(result, symode.compute(m, "oracle"), rtol=1e-10, quantities=["grad", "grad_z0"])

**Candidates**: a :class:`~symode.result.GradResult`; a dict in the grad JSON schema's shape (``loss``,
``grad`` (by name, or a sequence in the model's parameter order), ``grad_z0``, ``grad_t0``, ``grad_t1``); a
path to such a JSON file; or a callable ``fn(params, z0, t0, t1) -> (loss, grads)`` called at the reference's
point with ``params`` a dict name -> float (model order), ``z0`` a float64 numpy array, ``t0``/``t1`` floats,
and ``grads`` a dict with the keys ``params`` (dict or sequence), ``z0``, ``t0``, ``t1`` -- each the derivative
with respect to that argument, so ``grads["params"]`` holds z0 fixed; symode adds the chain through z0(θ)
((∂z0/∂θ)ᵀ dL/dz0, exact) before comparing it with the total dL/dθ of the reference.

**References**: a :class:`~symode.model.Model`, a built-in model name or a ``.toml`` spec path (computed by
``method``, default the oracle at ``digits``); a ``(model, method)`` pair; a GradResult; or a golden file
(``symode oracle export``; every parameter point of the file is checked for a callable candidate, ``point=``
selects one for the others).

**Numbers**: decimal strings (in dicts, JSON files, golden files) are read exactly (``decimal.Decimal``; JSON
numbers too), never through a binary double; the comparison runs in mpmath at the precision of the most precise
side (:func:`symode.check.compare.compare`: |c - r| <= atol + rtol·max(|c|, |r|) per component, NaN/Inf never
pass).  ``atol`` defaults to ``rtol`` times the scale of the reference's quantities -- |loss| for the loss, the
largest |component| of the gradients for every gradient component -- so agreement is relative to the terms'
scale, never an absolute floor; pass ``atol`` to choose another allowance.

On a mismatch an :class:`AssertionError` lists every compared quantity (reference, candidate, absolute and
relative error, allowance) like ``numpy.testing.assert_allclose`` and names the worst.
"""
from __future__ import annotations

import math
import re
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import mpmath

from ..errors import SpecError
from ..result import GradResult

__all__ = ["assert_gradients_match", "gradients_match", "reference_result", "QUANTITIES", "Mismatch"]

#: The quantity groups of a gradient result, in display order.
QUANTITIES = ("loss", "grad", "grad_z0", "grad_t0", "grad_t1")
_DECIMAL = re.compile(r"^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$")


class Mismatch(AssertionError):
    """Raised by :func:`assert_gradients_match`; ``comparisons`` holds one Comparison per point."""

    def __init__(self, message: str, comparisons: list):
        super().__init__(message)
        self.comparisons = comparisons


# ---------------------------------------------------------------------------------------------------------------
# reading values exactly

def _number(v, where: str):
    if isinstance(v, bool):
        raise SpecError(f"{where}: {v!r} is a boolean, not a number")
    if isinstance(v, str):
        if not _DECIMAL.match(v.strip()):
            raise SpecError(f"{where}: {v!r} is not a decimal number")
        return Decimal(v.strip())
    if isinstance(v, (int, float, Decimal, mpmath.mpf)):
        return v
    try:
        import numpy as np
        if isinstance(v, np.generic) and v.shape == ():
            return v
    except ImportError:  # pragma: no cover - numpy is a dependency
        pass
    if hasattr(v, "item") and callable(v.item):  # 0-d torch / jax arrays
        try:
            return float(v.item())
        except (TypeError, ValueError):
            pass
    raise SpecError(f"{where}: {type(v).__name__} {v!r} is not a number")


def _values(obj: Mapping, where: str, param_names: Sequence[str] | None) -> dict:
    """A grad-schema dict as {quantity: value or {name: value} or [values]} with exact numbers."""
    out: dict = {}
    for key in obj:
        if key in ("loss", "grad_t0", "grad_t1"):
            out[key] = _number(obj[key], f"{where} {key}")
        elif key == "grad":
            g = obj[key]
            if isinstance(g, Mapping):
                out["grad"] = {str(k): _number(v, f"{where} grad[{k}]") for k, v in g.items()}
            else:
                seq = list(g)
                if param_names is None or len(seq) != len(param_names):
                    raise SpecError(f"{where}: grad is a sequence of {len(seq)} values; give it as an object "
                                    f"name -> value (or as many values as the model has parameters)")
                out["grad"] = {n: _number(v, f"{where} grad[{n}]") for n, v in zip(param_names, seq)}
        elif key == "grad_z0":
            out["grad_z0"] = [_number(v, f"{where} grad_z0[{i}]") for i, v in enumerate(list(obj[key]))]
    if "loss" not in out and "grad" not in out:
        raise SpecError(f"{where}: no loss or grad found; give the keys of `symode grad --json` "
                        f"(loss, grad, grad_z0, grad_t0, grad_t1)")
    return out


def _from_result(r: GradResult) -> dict:
    out = {"loss": r.loss, "grad": dict(r.grad), "grad_z0": list(r.grad_z0)}
    if r.grad_t0 is not None:
        out["grad_t0"] = r.grad_t0
    if r.grad_t1 is not None:
        out["grad_t1"] = r.grad_t1
    return out


def _read_json(path) -> Any:
    """A result or golden JSON file: a regular file read to at most MAX_GOLDEN_BYTES, parsed strictly (exact
    decimals, no NaN, no key twice; :func:`symode.inputs.read_json_file`)."""
    from ..inputs import read_json_file
    from ..oracle.export import MAX_GOLDEN_BYTES
    return read_json_file(path, "JSON file", MAX_GOLDEN_BYTES)


# ---------------------------------------------------------------------------------------------------------------
# references

class _Point:
    """One reference point: its values, and where known the model and parameter values that produced them."""

    def __init__(self, values: dict, label: str, model=None, params=None, z0=None, t0=None, t1=None):
        self.values, self.label, self.model = values, label, model
        self.params, self.z0, self.t0, self.t1 = params, z0, t0, t1


def _model_point(model, method: str, digits: int, label: str) -> _Point:
    from ..methods import compute
    from ..registry import get_route
    # digits go to the routes that declare them (the references); every other option keeps its default
    opts = {"digits": digits} if "digits" in get_route(method).option_names() else {}
    result = compute(model, method, **opts)
    return _Point(_from_result(result), label, model, {p.name: model.param_values[p] for p in model.params},
                  None, model.t0, model.t1)


def _golden_points(data: dict, where: str) -> list[_Point]:
    from ..spec import load_spec
    model = load_spec(data["spec"], source=f"{where} (spec)")
    raw = data.get("points") or [{k: data[k] for k in ("params", "t0", "t1", "reference") if k in data}]
    points = []
    for i, pt in enumerate(raw):
        params = {k: Decimal(v) for k, v in pt["params"].items()}
        m = model.with_values({k: _exact(v) for k, v in params.items()})
        values = _values(pt["reference"], f"{where} point {i} reference", model.param_names)
        points.append(_Point(values, f"{where} point {i}", m, params, None, pt.get("t0"), pt.get("t1")))
    return points


def _exact(d: Decimal):
    import sympy
    n, q = d.as_integer_ratio()
    return sympy.Rational(n, q)


def _resolve_model(ref):
    from ..model import Model
    if isinstance(ref, Model):
        return ref
    from ..library import resolve_model
    return resolve_model(str(ref))


def _reference_points(reference, method: str, digits: int) -> list[_Point]:
    from ..model import Model
    if isinstance(reference, GradResult):
        return [_Point(_from_result(reference), f"{reference.method} result for {reference.model!r}")]
    if isinstance(reference, tuple) and len(reference) == 2:
        model = _resolve_model(reference[0])
        return [_model_point(model, str(reference[1]), digits, f"{model.name} by {reference[1]}")]
    if isinstance(reference, Mapping):
        return [_Point(_values(reference, "reference", None), "reference dict")]
    if isinstance(reference, (str, Path)) and str(reference).lower().endswith(".json"):
        data = _read_json(reference)
        if isinstance(data, dict) and data.get("format") == "symode-golden":
            from ..oracle.export import load_golden
            load_golden(reference)  # format and version checks
            return _golden_points(data, str(reference))
        if isinstance(data, dict):
            return [_Point(_values(data, str(reference), None), str(reference))]
        raise SpecError(f"{reference}: expected a JSON object (a grad result or a golden file)")
    if isinstance(reference, (Model, str, Path)):
        model = _resolve_model(reference)
        return [_model_point(model, method, digits, f"{model.name} by {method}")]
    raise SpecError(f"cannot use a {type(reference).__name__} as the reference: give a model, (model, method), "
                    f"a GradResult, a grad dict or a golden/grad JSON file")


def reference_result(reference, *, method: str = "oracle", digits: int = 30) -> list[dict]:
    """The reference values (one dict per point) :func:`assert_gradients_match` would compare against."""
    return [p.values for p in _reference_points(reference, method, digits)]


# ---------------------------------------------------------------------------------------------------------------
# candidates

def _call(fn: Callable, point: _Point) -> dict:
    import numpy as np
    import sympy
    from ..casadi.translate import nearest_double
    m = point.model
    if m is None:
        raise SpecError("a callable candidate needs a reference that knows its model (a model, (model, method) "
                        "or a golden file), not bare values")
    params = {p.name: nearest_double(m.param_values[p]) for p in m.params}
    theta = {p: m.param_values[p] for p in m.params}
    z0_exact = [sympy.sympify(e).xreplace(theta) for e in m.z0]
    z0 = np.array([nearest_double(v) for v in z0_exact], dtype=np.float64)
    out = fn(params, z0, nearest_double(m.t0), nearest_double(m.t1))
    try:
        loss, grads = out
    except (TypeError, ValueError):
        raise SpecError("the candidate callable must return (loss, grads)") from None
    if not isinstance(grads, Mapping):
        raise SpecError("the candidate callable's grads must be a dict with keys params, z0, t0, t1")
    unknown = sorted(set(grads) - {"params", "z0", "t0", "t1"})
    if unknown:
        raise SpecError(f"the candidate callable's grads has unknown key(s) {', '.join(map(str, unknown))}; "
                        f"use params, z0, t0, t1 (derivatives with respect to the four arguments)")
    values: dict = {"loss": _number(loss, "candidate loss")}
    gz0 = None
    if "z0" in grads:
        gz0 = [_number(v, f"candidate grads z0[{i}]") for i, v in enumerate(list(grads["z0"]))]
        values["grad_z0"] = gz0
    if "params" in grads:
        g = grads["params"]
        if isinstance(g, Mapping):
            partial = {str(k): _number(v, f"candidate grads params[{k}]") for k, v in g.items()}
        else:
            seq = list(g)
            if len(seq) != m.np:
                raise SpecError(f"candidate grads params has {len(seq)} values for {m.np} parameters")
            partial = {n: _number(v, f"candidate grads params[{n}]") for n, v in zip(m.param_names, seq)}
        values["grad"] = _add_z0_chain(m, partial, gz0)
    for key in ("t0", "t1"):
        if key in grads:
            values[f"grad_{key}"] = _number(grads[key], f"candidate grads {key}")
    return values


def _add_z0_chain(model, partial: dict, gz0) -> dict:
    """dL/dθ = ∂L/∂θ (z0 fixed) + (∂z0/∂θ)ᵀ dL/dz0, the Jacobian exact (SymPy) at the model's values."""
    import sympy
    from ..symbolic.derive import derive
    jac = derive(model).dz0dp.xreplace(dict(model.param_values))
    if all(v == 0 for v in jac):
        return partial
    if gz0 is None:
        raise SpecError("z0 depends on the parameters here: the candidate callable must return grads['z0'] too "
                        "(dL/dθ is compared as a total derivative)")
    out = {}
    with mpmath.workprec(200):
        for k, name in enumerate(model.param_names):
            if name not in partial:
                continue
            acc = _mp(partial[name])
            for j in range(model.nz):
                if jac[j, k] != 0:
                    acc += mpmath.mpf(sympy.N(jac[j, k], 60)) * _mp(gz0[j])
            out[name] = acc
    return out


def _mp(v) -> mpmath.mpf:
    if isinstance(v, Decimal):
        n, q = v.as_integer_ratio()
        return mpmath.mpf(n) / q
    return mpmath.mpf(float(v)) if not isinstance(v, mpmath.mpf) else v


def _candidate_values(candidate, point: _Point, param_names) -> dict:
    if isinstance(candidate, GradResult):
        return _from_result(candidate)
    if isinstance(candidate, Mapping):
        return _values(candidate, "candidate", param_names)
    if isinstance(candidate, (str, Path)):
        data = _read_json(candidate)
        if not isinstance(data, dict):
            raise SpecError(f"{candidate}: expected one JSON object in the grad schema")
        return _values(data, str(candidate), param_names)
    if callable(candidate):
        return _call(candidate, point)
    raise SpecError(f"cannot use a {type(candidate).__name__} as the candidate: give a GradResult, a grad dict, "
                    f"a JSON file or a callable fn(params, z0, t0, t1) -> (loss, grads)")


# ---------------------------------------------------------------------------------------------------------------
# selection, tolerance, comparison, message

def _select(values: dict, quantities) -> dict:
    if quantities is None:
        return values
    wanted = set(quantities)
    bad = [q for q in wanted if q not in QUANTITIES]
    if bad:
        raise SpecError(f"unknown quantit{'y' if len(bad) == 1 else 'ies'} {', '.join(sorted(bad))}; "
                        f"choose from {', '.join(QUANTITIES)}")
    return {k: v for k, v in values.items() if k in wanted}


def _default_atol(ref: dict, rtol: float) -> dict:
    """Per component: rtol x |loss| for the loss, rtol x max |gradient component| for every gradient one."""
    grads = [abs(_mp(v)) for k, v in ref.items() if k != "loss"
             for v in (v.values() if isinstance(v, dict) else v if isinstance(v, list) else [v])]
    gscale = max(grads, default=mpmath.mpf(0))
    out = {}
    for k, v in ref.items():
        names = ([f"{k}[{n}]" for n in v] if isinstance(v, dict) else
                 [f"{k}[{i}]" for i in range(len(v))] if isinstance(v, list) else [k])
        scale = abs(_mp(v)) if k == "loss" else gscale
        for n in names:
            out[n] = float(rtol * scale)
    return out


def _compare_point(cand: dict, ref: dict, rtol, atol, quantities):
    from ..check.compare import compare
    c, r = _select(cand, quantities), _select(ref, quantities)
    if quantities is None:  # the reference decides what is compared; an extra candidate quantity is fine
        c = {k: v for k, v in c.items() if k in r}
    ordered = lambda d: {k: d[k] for k in QUANTITIES if k in d}  # noqa: E731
    c, r = ordered(c), ordered(r)
    if atol is None:
        atol = _default_atol(r, rtol)
        missing_keys = [k for k in _flat_names(c) if k not in atol]
        for k in missing_keys:  # components only the candidate has fail structurally anyway
            atol[k] = 0.0
    return compare(c, r, rtol=rtol, atol=atol)


def _flat_names(values: dict) -> list[str]:
    out = []
    for k, v in values.items():
        out += ([f"{k}[{n}]" for n in v] if isinstance(v, dict) else
                [f"{k}[{i}]" for i in range(len(v))] if isinstance(v, list) else [k])
    return out


def _fmt(v, digits=17) -> str:
    if v is None:
        return "-"
    if isinstance(v, Decimal):
        return str(v)
    if isinstance(v, mpmath.mpf):
        return mpmath.nstr(v, digits) if mpmath.isfinite(v) else str(v)
    if isinstance(v, float) or type(v).__module__ == "numpy":
        return repr(float(v))
    return str(v)


def _message(comparisons: list, labels: list, rtol, atol) -> str:
    bad = [(c, lab) for c, lab in zip(comparisons, labels) if not c.ok]
    atol_text = "rtol x the reference's scale (default)" if atol is None else f"{atol!r}"
    lines = [f"gradients do not match at {len(bad)} of {len(comparisons)} point(s) "
             f"(|c - r| <= atol + rtol*max(|c|, |r|), rtol={rtol!r}, atol={atol_text})"]
    worst_all = None
    for c, lab in bad:
        lines += ["", f"{lab}:"]
        if c.failure:
            lines.append(f"  {c.failure}")
            continue
        rows = [("quantity", "reference", "candidate", "abs error", "rel error", "allowed", "")]
        rels = {}
        for row in c.rows:
            rel = "-"
            if row.error is not None:
                rv = _mp(row.reference) if not isinstance(row.reference, mpmath.mpf) else row.reference
                rel = "inf" if rv == 0 and row.error != 0 else ("0" if row.error == 0 else
                                                                  mpmath.nstr(row.error / abs(rv), 3))
            rels[row.name] = rel
            rows.append((row.name, _fmt(row.reference, 20), _fmt(row.candidate, 20), _fmt(row.error, 3), rel,
                         _fmt(row.allowed, 3), "ok" if row.ok else ("MISMATCH " + row.note).strip()))
        widths = [max(len(r[i]) for r in rows) for i in range(6)]
        lines += [("  " + "  ".join(cell.ljust(w) for cell, w in zip(r[:6], widths)) + "  " + r[6]).rstrip()
                  for r in rows]
        nbad = sum(1 for row in c.rows if not row.ok)
        w = c.worst
        lines.append(f"  {nbad} of {len(c.rows)} quantities differ; worst {w.name}: candidate "
                     f"{_fmt(w.candidate, 20)} vs reference {_fmt(w.reference, 20)}, abs error {_fmt(w.error, 3)}, "
                     f"rel error {rels[w.name]}, allowed {_fmt(w.allowed, 3)}")
        if c.worst is not None and (worst_all is None or c.worst.ratio > worst_all[0].ratio):
            worst_all = (c.worst, lab)
    if worst_all is not None:
        lines += ["", f"worst: {worst_all[0].name} ({worst_all[1]})"]
    return "\n".join(lines)


def gradients_match(candidate, reference, *, rtol: float, atol=None, quantities=None, method: str = "oracle",
                    digits: int = 30, point: int | None = None) -> tuple[bool, list, str]:
    """The comparisons :func:`assert_gradients_match` makes: (ok, comparisons, message)."""
    if isinstance(rtol, bool) or not isinstance(rtol, (int, float)) or not (math.isfinite(rtol) and rtol >= 0):
        raise SpecError(f"rtol must be a finite number >= 0, got {rtol!r}")
    # the rest of the options too, before the reference is computed (an oracle run may take minutes)
    if isinstance(atol, bool) or (isinstance(atol, (int, float)) and not (math.isfinite(atol) and atol >= 0)):
        raise SpecError(f"atol must be a finite number >= 0, got {atol!r}")
    _select({}, quantities)
    points = _reference_points(reference, method, digits)
    if point is not None:
        if not (isinstance(point, int) and 0 <= point < len(points)):
            raise SpecError(f"point = {point!r}: the reference has {len(points)} point(s) (0..{len(points) - 1})")
        points = [points[point]]
    elif len(points) > 1 and not callable(candidate):
        raise SpecError(f"the reference has {len(points)} parameter points: choose one with point=i (--point I "
                        f"on the command line), or give one result per point (a list), or a callable candidate")
    comparisons, labels = [], []
    for pt in points:
        names = pt.model.param_names if pt.model is not None else (list(pt.values.get("grad", {})) or None)
        cand = _candidate_values(candidate, pt, names)
        comparisons.append(_compare_point(cand, pt.values, rtol, atol, quantities))
        labels.append(pt.label)
    ok = all(c.ok for c in comparisons)
    return ok, comparisons, "" if ok else _message(comparisons, labels, rtol, atol)


def assert_gradients_match(candidate, reference, *, rtol: float, atol=None, quantities=None,
                           method: str = "oracle", digits: int = 30, point: int | None = None) -> list:
    """Assert that ``candidate``'s loss and gradients match ``reference`` (see the module docstring).

    ``quantities`` limits the comparison to some of ``loss, grad, grad_z0, grad_t0, grad_t1``.  Returns the
    comparisons (one per point) when they match; raises :class:`Mismatch` (an AssertionError) otherwise.
    """
    ok, comparisons, message = gradients_match(candidate, reference, rtol=rtol, atol=atol, quantities=quantities,
                                               method=method, digits=digits, point=point)
    if not ok:
        raise Mismatch(message, comparisons)
    return comparisons
