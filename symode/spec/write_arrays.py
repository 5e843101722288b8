"""Array expressions back to spec text (for :func:`symode.spec.dump_spec` of a structured model).

:func:`node_text` writes a node in the spec grammar (``W1 @ z + b1``, ``tanh(a1)``, ``sum((z - [1, 2])**2)``),
using the names of earlier named terms where a sub-expression is one; parsing the text gives the same node.
"""
from __future__ import annotations

import sympy

from ..arrays import node as N
from ..errors import SpecError

_ATOM, _POW, _MUL, _ADD = 4, 3, 2, 1


def _wrap(text: str, level: int, need: int) -> str:
    return f"({text})" if level < need else text


def _scalar_level(e) -> int:
    e = sympy.sympify(e)
    if isinstance(e, sympy.Add):
        return _ADD
    if isinstance(e, sympy.Mul) or (e.is_Number and (e < 0 or not e.is_Integer)):
        return _MUL
    if isinstance(e, sympy.Pow):
        return _POW
    return _ATOM


class NodeText:
    """Writes nodes as text; ``named`` maps nodes to the names of terms already written."""

    def __init__(self, symbol_text: dict, field: str):
        self.symbol_text = symbol_text
        self.field = field
        self.named: dict = {}

    def scalar(self, e) -> tuple[str, int]:
        from .write import expr_to_text
        return expr_to_text(sympy.sympify(e), self.field, self.symbol_text), _scalar_level(e)

    def __call__(self, value) -> str:
        return self.text(value, 0)

    def text(self, v, need: int) -> str:
        t, level = self.render(v)
        return _wrap(t, level, need)

    def render(self, v) -> tuple[str, int]:
        if not isinstance(v, N.Node):
            return self.scalar(v)
        if v in self.named:
            return self.named[v], _ATOM
        op, a = v.op, v.args
        if op == "leaf":
            return v.attr.name, _ATOM
        if op == "scalar":
            return self.scalar(v.attr)
        if op == "add":
            return " + ".join(self.text(x, _ADD) for x in a), _ADD
        if op == "mul":
            if a[0].op == "scalar" and a[0].attr == -1:
                rest = N.mul(*a[1:])
                return "-" + self.text(rest, _POW), _MUL
            return " * ".join([self.text(a[0], _MUL)] + [self.text(x, _POW) for x in a[1:]]), _MUL
        if op == "power":
            exp = self.text(N.scalar(v.attr), _ATOM)
            return f"{self.text(a[0], _ATOM)}**{exp}", _POW
        if op == "matmul":
            return f"{self.text(a[0], _MUL)} @ {self.text(a[1], _POW)}", _MUL
        if op == "func":
            return f"{v.attr}({self.text(a[0], 0)})", _ATOM
        if op == "sum":
            return f"sum({self.text(a[0], 0)})", _ATOM
        if op == "T":
            return f"transpose({self.text(a[0], 0)})", _ATOM
        if op == "index":
            i, j = v.attr
            idx = f"{i}" if a[0].shape[1] == 1 else f"{i}, {j}"
            return f"{self.text(a[0], _ATOM)}[{idx}]", _ATOM
        if op == "stack":
            return "[" + ", ".join(self.text(x, 0) for x in a) + "]", _ATOM
        raise SpecError(f"{self.field}: the array operation {op!r} cannot be written in a spec")


def element_texts(groups) -> dict:
    """Element symbol -> its spec text (``z_0`` -> ``z[0]``, ``W1_0_1`` -> ``W1[0, 1]``)."""
    out = {}
    for g in groups:
        if not g.is_array:
            continue
        cols = g.shape[1]
        for k, e in enumerate(g.elements):
            out[e] = f"{g.name}[{k}]" if len(g.dims) == 1 else f"{g.name}[{k // cols}, {k % cols}]"
    return out
