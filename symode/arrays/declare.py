"""Declaring states and parameters in a spec, scalars or arrays (:class:`~symode.arrays.node.Group`).

``states`` entries are names (scalars) or tables ``{name = "z", size = 8}`` (a column vector).  ``[params]``
entries are numbers (scalars), lists (vectors) or lists of rows (matrices); a ``params_file`` (JSON or
``.npz``, next to the spec) adds more, each name declared once.  An array's elements are the model's flat
states and parameters, named ``z_0``, ``b1_3``, ``W1_2_0`` (row-major): every such name must be free.
"""
from __future__ import annotations

from pathlib import Path

import sympy

from ..errors import SpecError
from ..expr import check_name
from . import node as N
from .values import array_value, dims_of, read_params_file

#: Most scalar elements of all states and of all parameters (the structured paths cost grows linearly).
MAX_STATE_ELEMENTS = 4096
MAX_PARAM_ELEMENTS = 1_000_000


def _element_names(name: str, dims: tuple) -> list[str]:
    if not dims:
        return [name]
    if len(dims) == 1:
        return [f"{name}_{i}" for i in range(dims[0])]
    return [f"{name}_{i}_{j}" for i in range(dims[0]) for j in range(dims[1])]


class Declarations:
    """The names a spec declares: groups in order, and every scalar name taken (elements included)."""

    def __init__(self):
        self.groups: list[N.Group] = []
        self.taken: set[str] = set()

    def declare(self, name, kind: str, dims: tuple, field: str) -> N.Group:
        name = check_name(name, field)
        if name == "t":
            raise SpecError(f"{field}: 't' is the time variable; choose another name for the state or parameter")
        elements = _element_names(name, dims)
        for e in [name, *elements]:
            if e in self.taken:
                raise SpecError(f"{field}: the name {e!r} is declared twice"
                                + ("" if e == name else f" (it names an element of {name})"))
        self.taken.update([name, *elements])
        g = N.Group(name, kind, tuple(dims), tuple(sympy.Symbol(e, real=True) for e in elements))
        self.groups.append(g)
        return g

    def names(self) -> dict:
        """name -> SymPy symbol (scalar) or leaf node (array), for the expression parser."""
        return {g.name: (N.leaf(g) if g.is_array else g.elements[0]) for g in self.groups}

    @property
    def structured(self) -> bool:
        return any(g.is_array for g in self.groups)


def declare_states(decl: Declarations, entries: list) -> list[N.Group]:
    out = []
    for i, entry in enumerate(entries):
        field = f"states[{i}]"
        if isinstance(entry, dict):
            unknown = sorted(set(entry) - {"name", "size"})
            if unknown:
                raise SpecError(f"{field}: unknown key(s) {', '.join(unknown)}; a vector state is "
                                f"{{name = \"z\", size = 8}}")
            size = entry.get("size")
            if type(size) is not int or not 1 <= size <= MAX_STATE_ELEMENTS:
                raise SpecError(f"{field}: size must be an integer from 1 to {MAX_STATE_ELEMENTS}")
            out.append(decl.declare(entry.get("name"), "state", (size,), f"{field}.name"))
        else:
            out.append(decl.declare(entry, "state", (), field))
    if sum(g.size for g in out) > MAX_STATE_ELEMENTS:
        raise SpecError(f"states: at most {MAX_STATE_ELEMENTS} state elements in all")
    return out


def declare_params(decl: Declarations, table: dict, file_values: dict, file_field: str) -> dict:
    """Declare the ``[params]`` entries, then the params file's; returns {element symbol: exact value}."""
    values: dict = {}
    entries = [(n, v, f"params.{n}") for n, v in table.items()]
    for n, v in file_values.items():
        if n in table:
            raise SpecError(f"{file_field}: {n!r} is also given in [params]; give each parameter once")
        entries.append((n, v, f"{file_field} {n}"))
    for name, v, field in entries:
        if isinstance(v, dict):
            raise SpecError(f"{field}: expected a number, a list (vector) or a list of rows (matrix), got a table")
        dims = dims_of(v, field)
        exact = array_value(v, field) if field.startswith("params.") else v
        g = decl.declare(name, "param", dims, field)
        flat = exact if len(dims) == 1 else [x for r in exact for x in r] if dims else [exact]
        values.update(zip(g.elements, flat))
    if len(values) > MAX_PARAM_ELEMENTS:
        raise SpecError(f"params: at most {MAX_PARAM_ELEMENTS} parameter elements in all")
    return values


def params_file_values(spec: dict, base_dir: Path | None) -> tuple[dict, str]:
    """The values of the spec's ``params_file`` (resolved inside the spec's directory), and the field name."""
    ref = spec.get("params_file")
    if ref is None:
        return {}, "params_file"
    if not isinstance(ref, str) or not ref:
        raise SpecError("params_file: expected a file name, e.g. \"weights.json\"")
    rel = Path(ref)
    if rel.is_absolute() or ".." in rel.parts:
        raise SpecError(f"params_file: {ref!r} must be a path relative to the spec file, inside its directory")
    if base_dir is None:
        raise SpecError("params_file: a spec given as text has no directory to find the file in; load it with "
                        "load_spec_file, or give the values in [params]")
    base = Path(base_dir).resolve()
    path = (base / rel).resolve()
    if base not in path.parents:
        raise SpecError(f"params_file: {ref!r} resolves outside the spec's directory")
    return read_params_file(path, f"params_file {ref}"), f"params_file {ref}"
