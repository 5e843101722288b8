"""The JSON Schema of ``symode grad --json``, derived from the registry of routes.

The shipped file ``symode/schemas/grad.schema.json`` holds the fixed part (the value formats, the field list,
the description) and the route-dependent part for the built-in routes.  :func:`grad_schema` rebuilds the
route-dependent part from the routes registered now (plugins included):

- ``properties.method.enum``: every route's name;
- ``required``: model, method, loss, grad, and grad_z0 if every route computes it; where some route does not
  compute grad_z0 / grad_t0, ``allOf`` forbids it for those routes (and grad_t1 for routes without time
  gradients), and requires grad_z0 for the routes that compute it.  grad_t0 is never required: like grad_t1 it
  is absent where undefined (an observation exactly at t0);
- ``allOf``: per accuracy kind, the fields its results carry (:meth:`symode.route.Accuracy.result_fields`):
  digits and error_bound (and no scheme/steps) for exact and high precision; scheme and steps for fixed-step.

``tests/test_oracle_schema.py`` keeps the shipped file equal to the schema derived from the built-ins alone;
``symode schema grad`` prints the one derived from what is installed.
"""
from __future__ import annotations

import json
from importlib import resources

from .registry import routes

__all__ = ["grad_schema", "shipped_grad_schema"]


def shipped_grad_schema() -> dict:
    """The schema file as shipped in the package (the built-in routes)."""
    text = resources.files("symode").joinpath("schemas/grad.schema.json").read_text(encoding="utf-8")
    return json.loads(text)


def _when(names, then: dict) -> dict:
    return {"if": {"properties": {"method": {"enum": list(names)}}, "required": ["method"]}, "then": then}


def grad_schema(route_list=None) -> dict:
    """The schema of ``symode grad --json`` for ``route_list`` (default: every registered route)."""
    rs = list(routes() if route_list is None else route_list)
    schema = shipped_grad_schema()
    names = [r.name for r in rs]
    schema["properties"]["method"]["enum"] = names
    required = ["model", "method", "loss", "grad"]
    rules = []
    for q in ("grad_z0", "grad_t0"):
        have = [r.name for r in rs if q in r.quantities]
        if len(have) == len(rs):
            if q == "grad_z0":
                required.append(q)
            continue
        lacking = [n for n in names if n not in have]
        forbid = [q, "grad_t1"] if q == "grad_t0" else [q]
        if have and q == "grad_z0":
            rules.append(_when(have, {"required": [q]}))
        rules.append(_when(lacking, {"not": {"anyOf": [{"required": [f]} for f in forbid]}}))
    schema["required"] = required
    groups: dict = {}  # the accuracy kinds' result fields, grouped in order of first appearance
    for r in rs:
        need, forbid = r.accuracy.result_fields()
        if need or forbid:
            groups.setdefault((tuple(need), tuple(forbid)), []).append(r.name)
    for (need, forbid), members in groups.items():
        then: dict = {"required": list(need)} if need else {}
        if forbid:
            then["not"] = {"anyOf": [{"required": [f]} for f in forbid]}
        rules.append(_when(members, then))
    schema["allOf"] = rules
    return schema
