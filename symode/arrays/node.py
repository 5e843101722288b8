"""Array expressions: the vectors and matrices of a network model, kept as matrices.

A :class:`Node` is an immutable expression over whole arrays with a shape ``(rows, cols)``: vectors are columns
``(n, 1)``, scalars ``(1, 1)``.  Operations (each checks shapes and raises :class:`~symode.errors.SpecError`
naming both shapes on a mismatch):

    leaf      a declared state or parameter array (:class:`Group`); its elements are SymPy symbols
    scalar    a scalar SymPy expression (numbers, scalar parameters, t, elements such as z_0)
    add, mul  element-wise sum and product (Hadamard); a scalar operand broadcasts to the other shape
    power     element-wise x**c with a constant exponent c
    func      an element-wise function of :data:`FUNCTIONS` (tanh, sigmoid, softplus, relu, ...)
    dfunc     its derivative, element-wise (σ'(a); produced by the derivation, never parsed)
    matmul    the matrix product A·B
    T         the transpose
    sum       the sum of all elements (a scalar)
    index     one element x[i, j] (a scalar)
    stack     a column of scalars
    broadcast a scalar repeated to a shape; scatter: a scalar placed at (i, j) of a zero array (derivation only)

Scalar operands of ``add``/``mul`` combine in SymPy before they reach a node, so a scalar sub-expression is
always one ``scalar`` node.  Equal trees are equal nodes (structural equality, hash computed once), so a
sub-expression used twice is one node: the derivation, the CasADi graphs and the oracle's tape share it.

:func:`expand` turns a node into the SymPy matrix of its elements (the scalar form of the same model, used to
check every structured path against the scalar one); :func:`canonical_text` writes a node set as text for
the model's fingerprint.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import sympy

from ..errors import SpecError
from ..expr import FUNCTIONS as _TABLE  # the one table of functions: the scalar meaning of each name

__all__ = ["Group", "Node", "FUNCTIONS", "KINKED", "leaf", "scalar", "lift", "add", "mul", "neg", "power",
           "func", "dfunc", "matmul", "transpose", "total", "index", "stack", "broadcast", "scatter",
           "is_zero", "expand", "xreplace", "symbols_of", "canonical_text", "walk", "function_derivative"]


def _relu(x):
    return sympy.Max(x, 0)


#: Element-wise functions: name -> the scalar SymPy function (the parser's meaning of each name, plus relu).
FUNCTIONS: dict = {**{f.name: f.sympy_function for f in _TABLE.values() if f.grammar},
                   "relu": _relu, "identity": lambda x: x}
#: Functions with a kink (not differentiable where the argument is 0): results flag it.
KINKED = frozenset({"relu", "abs"})


@dataclass(frozen=True)
class Group:
    """A declared state or parameter: ``dims`` () for a scalar, (n,) a column vector, (m, n) a matrix.

    ``elements`` are its scalar symbols in row-major order (``W1_0_1`` is row 0, column 1; ``b1_2``; a
    scalar's only element is its own symbol).  They make up the model's flat ``states`` and ``params``.
    """

    name: str
    kind: str  # "state" or "param"
    dims: tuple
    elements: tuple

    @property
    def shape(self) -> tuple[int, int]:
        d = self.dims
        return (1, 1) if not d else (d[0], 1) if len(d) == 1 else (d[0], d[1])

    @property
    def is_array(self) -> bool:
        return bool(self.dims)

    @property
    def size(self) -> int:
        return len(self.elements)

    def element(self, i: int, j: int = 0) -> sympy.Symbol:
        return self.elements[i * self.shape[1] + j]

    def matrix(self) -> sympy.Matrix:
        r, c = self.shape
        return sympy.Matrix(r, c, list(self.elements))

    def describe(self) -> str:
        return self.name if not self.dims else f"{self.name} ({'x'.join(map(str, self.dims))})"


class Node:
    """One array expression (see the module docstring); build it with the functions below, not directly."""

    __slots__ = ("op", "args", "shape", "attr", "_hash")

    def __init__(self, op: str, args: tuple, shape: tuple[int, int], attr=None):
        self.op, self.args, self.shape, self.attr = op, args, shape, attr
        self._hash = hash((op, args, shape, attr))

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other) -> bool:
        if self is other:
            return True
        return (isinstance(other, Node) and self._hash == other._hash and self.op == other.op
                and self.shape == other.shape and self.attr == other.attr and self.args == other.args)

    def __repr__(self) -> str:
        if self.op == "leaf":
            return self.attr.name
        if self.op == "scalar":
            return str(self.attr)
        inner = ", ".join(map(repr, self.args))
        extra = f"{self.attr}; " if self.attr is not None else ""
        return f"{self.op}({extra}{inner})"

    @property
    def is_scalar(self) -> bool:
        return self.shape == (1, 1)


def _shape_text(shape) -> str:
    return "scalar" if shape == (1, 1) else f"{shape[0]}x{shape[1]}"


# -- constructors ---------------------------------------------------------------------------------------------
def leaf(group: Group) -> Node:
    return Node("leaf", (), group.shape, group)


def scalar(expr) -> Node:
    """A scalar SymPy expression as a node."""
    if isinstance(expr, Node):
        return expr
    return Node("scalar", (), (1, 1), sympy.sympify(expr))


def lift(value) -> Node:
    """A node for ``value`` (a node already, or a scalar SymPy expression / number)."""
    return value if isinstance(value, Node) else scalar(value)


def is_zero(x: Node) -> bool:
    return x.op == "scalar" and x.attr == 0


def _is_one(x: Node) -> bool:
    return x.op == "scalar" and x.attr == 1


def _result_shape(xs: list[Node], what: str) -> tuple[int, int]:
    shapes = {x.shape for x in xs if x.shape != (1, 1)}
    if len(shapes) > 1:
        raise SpecError(f"{what} of arrays of different shapes ({', '.join(sorted(map(_shape_text, shapes)))}); "
                        f"element-wise operations need equal shapes (a scalar combines with any shape)")
    return shapes.pop() if shapes else (1, 1)


def _flat(op: str, xs: Iterable[Node]) -> list[Node]:
    out = []
    for x in xs:
        out.extend(x.args if x.op == op else (x,))
    return out


def add(*values) -> Node:
    """Element-wise sum (scalars broadcast); scalar terms are summed in SymPy first."""
    xs = _flat("add", map(lift, values))
    shape = _result_shape(xs, "sum")
    scal = sympy.Add(*[x.attr for x in xs if x.op == "scalar"])
    arrays = [x for x in xs if x.op != "scalar"]
    if not arrays:
        return scalar(scal)
    terms = arrays + ([scalar(scal)] if scal != 0 else [])
    if len(terms) == 1:
        return terms[0] if terms[0].shape == shape else broadcast(terms[0], shape)
    return Node("add", tuple(terms), shape)


def mul(*values) -> Node:
    """Element-wise (Hadamard) product (scalars broadcast); scalar factors are multiplied in SymPy first."""
    xs = _flat("mul", map(lift, values))
    shape = _result_shape(xs, "element-wise product")
    scal = sympy.Mul(*[x.attr for x in xs if x.op == "scalar"])
    arrays = [x for x in xs if x.op != "scalar"]
    if scal == 0:
        return broadcast(scalar(0), shape) if shape != (1, 1) else scalar(0)
    if not arrays:
        return scalar(scal)
    factors = ([scalar(scal)] if scal != 1 else []) + arrays
    if len(factors) == 1:
        return factors[0]
    return Node("mul", tuple(factors), shape)


def neg(x) -> Node:
    return mul(-1, x)


def power(x, exponent) -> Node:
    """Element-wise ``x ** exponent`` for a constant exponent."""
    x = lift(x)
    e = sympy.sympify(exponent)
    if not e.is_number:
        raise SpecError("the exponent of an array power must be a number")
    if x.op == "scalar":
        return scalar(x.attr ** e)
    if e == 1:
        return x
    if e == 0:
        return broadcast(scalar(1), x.shape)
    return Node("power", (x,), x.shape, e)


def func(name: str, x) -> Node:
    """Element-wise function ``name`` (a key of :data:`FUNCTIONS`)."""
    if name not in FUNCTIONS:
        raise SpecError(f"unknown element-wise function {name!r}; known: {', '.join(sorted(FUNCTIONS))}")
    x = lift(x)
    if name == "identity":
        return x
    if x.op == "scalar":
        return scalar(FUNCTIONS[name](x.attr))
    return Node("func", (x,), x.shape, name)


def dfunc(name: str, x) -> Node:
    """The derivative of element-wise function ``name``, element-wise (σ'(x))."""
    x = lift(x)
    if name == "identity":
        return broadcast(scalar(1), x.shape) if x.shape != (1, 1) else scalar(1)
    if x.op == "scalar":
        return scalar(function_derivative(name, x.attr))
    return Node("dfunc", (x,), x.shape, name)


_DX = sympy.Dummy("x", real=True)


def function_derivative(name: str, arg):
    """d/dx of the scalar function ``name`` at ``arg`` (SymPy's derivative of :data:`FUNCTIONS`' meaning)."""
    return sympy.diff(FUNCTIONS[name](_DX), _DX).xreplace({_DX: arg})


def matmul(a, b) -> Node:
    a, b = lift(a), lift(b)
    if a.shape[1] != b.shape[0]:
        raise SpecError(f"matrix product of a {_shape_text(a.shape)} and a {_shape_text(b.shape)} array: the "
                        f"inner sizes {a.shape[1]} and {b.shape[0]} differ")
    if a.op == "scalar" and b.op == "scalar":
        return scalar(a.attr * b.attr)
    if is_zero(a) or is_zero(b):
        return broadcast(scalar(0), (a.shape[0], b.shape[1]))
    return Node("matmul", (a, b), (a.shape[0], b.shape[1]))


def transpose(x) -> Node:
    x = lift(x)
    if x.is_scalar:
        return x
    if x.op == "T":
        return x.args[0]
    if x.op == "broadcast":
        return broadcast(x.args[0], (x.shape[1], x.shape[0]))
    return Node("T", (x,), (x.shape[1], x.shape[0]))


def total(x) -> Node:
    """The sum of all elements (a scalar)."""
    x = lift(x)
    if x.is_scalar:
        return x
    if x.op == "broadcast":
        return scalar(x.args[0].attr * x.shape[0] * x.shape[1]) if x.args[0].op == "scalar" else \
            mul(x.shape[0] * x.shape[1], x.args[0])
    return Node("sum", (x,), (1, 1))


def index(x, i: int, j: int = 0) -> Node:
    x = lift(x)
    r, c = x.shape
    if not (0 <= i < r and 0 <= j < c):
        raise SpecError(f"index [{i}, {j}] is outside a {_shape_text(x.shape)} array")
    if x.is_scalar:
        return x
    if x.op == "leaf":
        return scalar(x.attr.element(i, j))
    if x.op == "stack":
        return x.args[i]
    if x.op == "broadcast":
        return x.args[0]
    return Node("index", (x,), (1, 1), (i, j))


def stack(items) -> Node:
    """A column of scalars."""
    xs = [lift(v) for v in items]
    for x in xs:
        if not x.is_scalar:
            raise SpecError(f"a column is built from scalars, got a {_shape_text(x.shape)} array")
    if len(xs) == 1:
        return xs[0]
    return Node("stack", tuple(xs), (len(xs), 1))


def broadcast(x, shape) -> Node:
    x = lift(x)
    if not x.is_scalar:
        raise SpecError("only a scalar can be broadcast")
    if shape == (1, 1):
        return x
    return Node("broadcast", (x,), tuple(shape))


def scatter(x, i: int, j: int, shape) -> Node:
    """A zero array of ``shape`` with the scalar ``x`` at (i, j)."""
    x = lift(x)
    if tuple(shape) == (1, 1):
        return x
    return Node("scatter", (x,), tuple(shape), (i, j))


def fresh_name(base: str, taken: set) -> str:
    """``base``, suffixed with '_' until it is not in ``taken``; the result is added to ``taken``."""
    name = base
    while name in taken:
        name += "_"
    taken.add(name)
    return name


# -- traversal ----------------------------------------------------------------------------------------------
def walk(roots: Iterable[Node]) -> list[Node]:
    """Every node reachable from ``roots``, each once, children before parents (iterative post-order)."""
    seen: set = set()
    order: list[Node] = []
    for root in roots:
        if root in seen:
            continue
        stack_ = [(root, False)]
        while stack_:
            node, done = stack_.pop()
            if done:
                if node not in seen:
                    seen.add(node)
                    order.append(node)
                continue
            if node in seen:
                continue
            stack_.append((node, True))
            stack_.extend((a, False) for a in reversed(node.args) if a not in seen)
    return order


def xreplace(value, mapping: dict, groups: dict | None = None):
    """``value`` with scalar symbols replaced (SymPy's ``xreplace`` inside every scalar of a node) and, with
    ``groups`` (Group -> Group of the same shape), whole arrays renamed (e.g. a copy of a state); the tree is
    rebuilt through the constructors, so constant parts fold."""
    if not isinstance(value, Node):
        return sympy.sympify(value).xreplace(mapping)
    memo: dict = {}
    for n in walk([value]):
        a = [memo[x] for x in n.args]
        memo[n] = _rebuild(n, a, mapping, groups or {})
    return memo[value]


def _rebuild(n: Node, a: list, mapping: dict, groups: dict) -> Node:
    op = n.op
    if op == "leaf":
        if n.attr in groups:
            new = groups[n.attr]
            if new.shape != n.attr.shape:
                raise SpecError(f"internal: {n.attr.name} renamed to an array of another shape")  # pragma: no cover
            return leaf(new)
        if any(e in mapping for e in n.attr.elements):
            raise SpecError(f"internal: cannot substitute elements of the array {n.attr.name}")  # pragma: no cover
        return n
    if op == "scalar":
        return scalar(n.attr.xreplace(mapping))
    builders = {"add": lambda: add(*a), "mul": lambda: mul(*a), "power": lambda: power(a[0], n.attr),
                "func": lambda: func(n.attr, a[0]), "dfunc": lambda: dfunc(n.attr, a[0]),
                "matmul": lambda: matmul(*a), "T": lambda: transpose(a[0]), "sum": lambda: total(a[0]),
                "index": lambda: index(a[0], *n.attr), "stack": lambda: stack(a),
                "broadcast": lambda: broadcast(a[0], n.shape), "scatter": lambda: scatter(a[0], *n.attr, n.shape)}
    return builders[op]()


def symbols_of(value) -> set:
    """The scalar SymPy symbols a node (or SymPy expression) depends on: leaf elements and free symbols."""
    if not isinstance(value, Node):
        return set(sympy.sympify(value).free_symbols)
    out: set = set()
    for n in walk([value]):
        if n.op == "leaf":
            out.update(n.attr.elements)
        elif n.op == "scalar":
            out.update(n.attr.free_symbols)
    return out


def expand(value, memo: dict | None = None) -> sympy.Matrix:
    """The SymPy matrix of a node's elements (scalar expressions in the element symbols)."""
    if not isinstance(value, Node):
        return sympy.Matrix([[sympy.sympify(value)]])
    memo = {} if memo is None else memo
    for n in walk([value]):
        if n in memo:
            continue
        a = [memo[x] for x in n.args]
        memo[n] = _expand_one(n, a)
    return memo[value]


def _expand_one(n: Node, a: list) -> sympy.Matrix:
    op, (r, c) = n.op, n.shape
    if op == "leaf":
        return n.attr.matrix()
    if op == "scalar":
        return sympy.Matrix([[n.attr]])
    if op in ("add", "mul"):
        combine = sympy.Add if op == "add" else sympy.Mul
        return sympy.Matrix(r, c, lambda i, j: combine(*[m[0, 0] if m.shape == (1, 1) else m[i, j] for m in a]))
    if op == "power":
        return a[0].applyfunc(lambda v: v ** n.attr)
    if op == "func":
        return a[0].applyfunc(FUNCTIONS[n.attr])
    if op == "dfunc":
        return a[0].applyfunc(lambda v: function_derivative(n.attr, v))
    if op == "matmul":
        return a[0] * a[1]
    if op == "T":
        return a[0].T
    if op == "sum":
        return sympy.Matrix([[sympy.Add(*a[0])]])
    if op == "index":
        return sympy.Matrix([[a[0][n.attr]]])
    if op == "stack":
        return sympy.Matrix([m[0, 0] for m in a])
    if op == "broadcast":
        return sympy.Matrix(r, c, lambda i, j: a[0][0, 0])
    if op == "scatter":
        return sympy.Matrix(r, c, lambda i, j: a[0][0, 0] if (i, j) == n.attr else 0)
    raise SpecError(f"internal: no expansion for array operation {op!r}")  # pragma: no cover


def canonical_text(named: Iterable[tuple[str, object]]) -> str:
    """A canonical text of named nodes / SymPy expressions: equal texts mean equal expressions (fingerprints).

    Nodes are numbered in post-order; each line gives its number, operation, shape, attribute (``srepr`` for
    SymPy values, the name for leaves) and argument numbers.
    """
    named = list(named)
    ids: dict = {}
    lines = []
    for n in walk([v for _, v in named if isinstance(v, Node)]):
        ids[n] = len(ids)
        if n.op == "leaf":
            attr = f"{n.attr.kind}:{n.attr.name}"
        elif isinstance(n.attr, sympy.Basic):
            attr = sympy.srepr(n.attr)
        else:
            attr = repr(n.attr)
        lines.append(f"n{ids[n]}={n.op}[{n.shape[0]}x{n.shape[1]}]({attr};{','.join(str(ids[x]) for x in n.args)})")
    for name, v in named:
        lines.append(f"{name}=" + (f"n{ids[v]}" if isinstance(v, Node) else
                                    "" if v is None else sympy.srepr(sympy.sympify(v))))
    return "\n".join(lines)
