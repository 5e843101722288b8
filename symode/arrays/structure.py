"""The matrix form of a model (:class:`Structure`) and values given for array parameters (:func:`array_items`)."""
from __future__ import annotations

from dataclasses import dataclass

import sympy

from ..errors import SpecError
from . import node as N

__all__ = ["Structure", "array_items"]


@dataclass(frozen=True)
class Structure:
    """The matrix form of a model: what each state and parameter is (:class:`~symode.arrays.node.Group`), named
    intermediate terms, and the model's expressions as array nodes or scalar SymPy expressions.

    ``rhs`` and ``z0`` hold one value per state group (a vector state's value is a column node); the loss
    terms are scalars.  The flat scalar form (``Model.rhs`` ...) is the element-wise expansion of these.
    """

    groups: tuple
    rhs: tuple
    z0: tuple
    terminal: object = None
    observations: tuple = ()  # (time, value)
    running: object = None
    defs: tuple = ()          # (name, value), for display

    @property
    def state_groups(self) -> tuple:
        return tuple(g for g in self.groups if g.kind == "state")

    @property
    def param_groups(self) -> tuple:
        return tuple(g for g in self.groups if g.kind == "param")

    def has_kinks(self) -> bool:
        """Whether any expression may have a non-smooth point: a kinked element-wise function (relu, abs) or a
        scalar piece with abs, sign, Heaviside, Max, Min, Piecewise, floor or ceiling.  False means smooth
        everywhere, without expanding anything."""
        kinked = (sympy.Abs, sympy.sign, sympy.Heaviside, sympy.Max, sympy.Min, sympy.Piecewise, sympy.floor,
                  sympy.ceiling)
        values = [v for _, v in self.named() if v is not None]
        for n in N.walk([v for v in values if isinstance(v, N.Node)]):
            if (n.op == "func" and n.attr in N.KINKED) or (n.op == "scalar" and n.attr.has(*kinked)):
                return True
        return any(not isinstance(v, N.Node) and sympy.sympify(v).has(*kinked) for v in values)

    def named(self) -> list[tuple[str, object]]:
        """Every expression with a stable name (the canonical text's order)."""
        out = [(f"def:{n}", v) for n, v in self.defs]
        out += [(f"rhs[{i}]", v) for i, v in enumerate(self.rhs)] + [(f"z0[{i}]", v) for i, v in enumerate(self.z0)]
        out += [("terminal", self.terminal), ("running", self.running)]
        out += [(f"obs[{i}]", v) for i, (_, v) in enumerate(self.observations)]
        return out


def array_items(group: N.Group, value):
    """(index text, value) for each element of ``value`` given for the array parameter ``group`` (row-major)."""
    import numpy as np
    arr = value
    if isinstance(value, (list, tuple)):
        rows = list(value)
        if len(group.dims) == 2 and all(isinstance(r, (list, tuple)) for r in rows):
            arr = [x for r in rows for x in r]
            dims = (len(rows), len(rows[0]) if rows else 0)
            if any(len(r) != dims[1] for r in rows):
                raise SpecError(f"parameter {group.name}: the rows have different lengths")
        else:
            dims = (len(rows),)
            arr = rows
    elif isinstance(value, np.ndarray):
        dims = value.shape
        arr = list(value.reshape(-1))
    else:
        raise SpecError(f"parameter {group.name} is an array of shape {'x'.join(map(str, group.dims))}: give a "
                        f"nested list of that shape, not a {type(value).__name__}")
    if tuple(dims) != tuple(group.dims):
        raise SpecError(f"parameter {group.name}: expected shape {'x'.join(map(str, group.dims))}, got "
                        f"{'x'.join(map(str, dims))}")
    cols = group.shape[1]
    return [(f"[{k // cols}, {k % cols}]" if len(group.dims) == 2 else f"[{k}]", x) for k, x in enumerate(arr)]
