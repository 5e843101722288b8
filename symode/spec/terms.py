"""Expressions of a spec: the names they may use (states, parameters, t, named terms) and the observation terms.

``[loss.observations]`` gives ``times`` and either ``data`` (one row per time, one value per state element: the
squared-error term Σ_j (z_j - d_j)²) or a ``term`` (one expression for every time) or ``terms`` (one per time).
A term may use ``t`` (the observation's time) and, where data is given, ``data`` (that time's row: a number for
one state, a vector otherwise), e.g. ``term = "sum((z - data)**2)/2"`` or ``term = "x + y"``.
"""
from __future__ import annotations

from decimal import Decimal

import sympy

from ..arrays import node as N
from ..arrays.algebra import ArrayAlgebra
from ..arrays.declare import Declarations
from ..arrays.node import Node
from ..errors import SpecError
from ..expr import check_name, parse_decimal, parse_expression
from ..model import T, squared_error_terms

#: Most observation times of one model.
MAX_OBSERVATIONS = 10_000
_OBS_KEYS = {"times", "data", "term", "terms"}


def _number(value, field: str):
    if isinstance(value, Decimal) and not value.is_finite():
        raise SpecError(f"{field}: {value} is not a finite number; give a finite decimal")
    return parse_decimal(value, field)


def _list(table: dict, key: str, field: str) -> list:
    v = table.get(key)
    if not isinstance(v, list):
        raise SpecError(f"{field}: expected a list, got {type(v).__name__ if v is not None else 'nothing'}")
    return v


class Expressions:
    """The names expressions may use (declared states and parameters, t, named terms) and their parsing."""

    def __init__(self, decl: Declarations):
        self.decl = decl
        self.names = decl.names()
        self.with_t = {**self.names, "t": T}
        self.defs: list = []
        self.algebra = ArrayAlgebra()

    def initial_names(self) -> dict:
        """What z0 may use: the parameters and the named terms (one that uses a state is refused by Model)."""
        params = {g.name for g in self.decl.groups if g.kind == "param"}
        return {n: v for n, v in self.names.items() if n in params or n in dict(self.defs)}

    def add_defs(self, defs) -> None:
        for n, v in defs:
            self.defs.append((n, v))
            self.names[n] = self.with_t[n] = v

    def parse_defs(self, table) -> None:
        if not isinstance(table, dict):
            raise SpecError("defs: expected a table of name = expression")
        for n, text in table.items():
            field = f"defs.{n}"
            check_name(n, field)
            if n == "t" or n in self.with_t or n in self.decl.taken:
                raise SpecError(f"{field}: the name {n!r} is already taken; give the term another name")
            self.decl.taken.add(n)
            self.add_defs([(n, self.value(text, field, self.with_t))])

    def value(self, text, field: str, names: dict):
        """A scalar SymPy expression or an array node."""
        if isinstance(text, (int, Decimal)) and not isinstance(text, bool):
            return _number(text, field)
        if not isinstance(text, str):
            raise SpecError(f"{field}: expected an expression string, got {type(text).__name__}")
        return parse_expression(text, names, field, algebra=self.algebra)

    def state_value(self, entry, group, field: str, names: dict):
        """One state's rhs or z0: a scalar expression, or for a vector state one vector expression or a list of
        scalar expressions (one per element)."""
        if group.is_array and isinstance(entry, list):
            if len(entry) != group.size:
                raise SpecError(f"{field}: {len(entry)} expressions for the {group.size} elements of {group.name}")
            items = [self.value(e, f"{field}[{j}]", names) for j, e in enumerate(entry)]
            for j, v in enumerate(items):
                if isinstance(v, Node) and not v.is_scalar:
                    raise SpecError(f"{field}[{j}]: expected a scalar expression")
            return N.stack(items)
        return self.value(entry, field, names)


def observation_terms(obs, states: list, ex: Expressions) -> list:
    """[(time, term)] from [loss.observations] (see the module docstring)."""
    if not isinstance(obs, dict):
        raise SpecError("loss.observations: expected a table with times and data (and/or term)")
    unknown = sorted(set(obs) - _OBS_KEYS)
    if unknown:
        raise SpecError(f"loss.observations: unknown key(s) {', '.join(unknown)}; allowed: "
                        f"{', '.join(sorted(_OBS_KEYS))}")
    obs_times = _list(obs, "times", "loss.observations.times")
    if len(obs_times) > MAX_OBSERVATIONS:
        raise SpecError(f"loss.observations.times: at most {MAX_OBSERVATIONS} observations are supported")
    times_v = [_number(v, f"loss.observations.times[{i}]") for i, v in enumerate(obs_times)]
    if "term" in obs and "terms" in obs:
        raise SpecError("loss.observations: give term (one for every time) or terms (one per time), not both")
    if "data" not in obs and "term" not in obs and "terms" not in obs:
        raise SpecError("loss.observations: give data (rows of values: squared errors), a term or terms")
    nz = len(states)
    rows = None
    if "data" in obs:
        data = _list(obs, "data", "loss.observations.data")
        if len(data) != len(times_v):
            raise SpecError(f"loss.observations.data: {len(data)} rows for {len(times_v)} times; "
                            f"give one row per time")
        rows = []
        for i, row in enumerate(data):
            if not isinstance(row, list) or len(row) != nz:
                raise SpecError(f"loss.observations.data[{i}]: expected a row of {nz} values (one per state), "
                                f"got {row!r}")
            rows.append([_number(v, f"loss.observations.data[{i}][{j}]") for j, v in enumerate(row)])
    if "term" not in obs and "terms" not in obs:
        return list(zip(times_v, squared_error_terms(states, rows)))
    names = dict(ex.with_t)
    marks = [sympy.Dummy(f"data_{j}", real=True) for j in range(nz)] if rows is not None else []
    if rows is not None:
        if "data" in ex.decl.taken:
            raise SpecError("loss.observations: 'data' names both the data rows and a declared state or "
                            "parameter; rename the declared one")
        names["data"] = N.stack(marks) if nz > 1 else marks[0]
    if "term" in obs:  # parsed once, with t and the data row as placeholders filled in per time
        term = ex.value(obs["term"], "loss.observations.term", names)
        terms = [term] * len(times_v)
    else:
        texts = _list(obs, "terms", "loss.observations.terms")
        if len(texts) != len(times_v):
            raise SpecError(f"loss.observations.terms: {len(texts)} terms for {len(times_v)} times; give one per "
                            f"time")
        terms = [ex.value(text, f"loss.observations.terms[{i}]", names) for i, text in enumerate(texts)]
    out = []
    for i, (tm, term) in enumerate(zip(times_v, terms)):
        mapping = {T: tm, **(dict(zip(marks, rows[i])) if rows is not None else {})}
        out.append((tm, N.xreplace(term, mapping)))
    return out
