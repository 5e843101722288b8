"""Array expressions as SymPy matrix expressions, for rendering (text, LaTeX, Markdown) and for checking.

:class:`MatrixText` turns a node of :mod:`symode.arrays.node` into SymPy's matrix algebra: ``MatrixSymbol`` for
a declared array, ``MatMul``, ``MatAdd``, ``Transpose``, ``HadamardProduct`` (⊙) and :class:`Elementwise` for
σ(x) and σ'(x).  The result is a real SymPy matrix expression: substituting explicit matrices for the symbols
and calling ``.as_explicit()`` expands it element by element (``tests/test_matrix_form.py`` does exactly that
to compare with the scalar derivation).
"""
from __future__ import annotations

import sympy
from sympy.matrices.expressions import MatrixExpr

from ..arrays import node as N


#: Functions LaTeX has a command for (\tanh); the others are set with \operatorname.
_LATEX_NAMED = frozenset({"sin", "cos", "tan", "exp", "log", "tanh", "sinh", "cosh"})


class Elementwise(MatrixExpr):
    """σ(X) applied to every element (``name`` a key of :data:`symode.arrays.node.FUNCTIONS`), or its derivative
    σ'(X) when ``derivative`` is true; shown as ``tanh(a1)`` / ``tanh'(a1)``."""

    def __new__(cls, name, arg, derivative=False):
        name = sympy.Symbol(name) if isinstance(name, str) else name
        return sympy.Basic.__new__(cls, name, arg, sympy.true if derivative else sympy.false)

    @property
    def fname(self) -> str:
        return self.args[0].name

    @property
    def derivative(self) -> bool:
        return bool(self.args[2])

    @property
    def shape(self):
        return self.args[1].shape

    def _entry(self, i, j, **kwargs):
        x = self.args[1][i, j]
        return N.function_derivative(self.fname, x) if self.derivative else N.FUNCTIONS[self.fname](x)

    def doit(self, **hints):
        arg = self.args[1].doit(**hints) if hints.get("deep", True) else self.args[1]
        if isinstance(arg, sympy.MatrixBase):  # explicit: evaluate element by element
            fn = (lambda x: N.function_derivative(self.fname, x)) if self.derivative else N.FUNCTIONS[self.fname]
            return sympy.ImmutableMatrix(arg.applyfunc(fn))
        return self.func(self.args[0], arg, self.args[2])

    def _label(self) -> str:
        return self.fname + ("'" if self.derivative else "")

    def _sympystr(self, printer):
        return f"{self._label()}({printer._print(self.args[1])})"

    def _latex(self, printer):
        name = rf"\{self.fname}" if self.fname in _LATEX_NAMED else rf"\operatorname{{{self.fname}}}"
        return rf"{name}{chr(39) if self.derivative else ''}\left({printer._print(self.args[1])}\right)"

    def _pretty(self, printer):
        from sympy.printing.pretty.stringpict import prettyForm
        arg = printer._print(self.args[1])
        return prettyForm(*prettyForm(*arg.parens()).left(self._label()))


class Total(sympy.Expr):
    """The sum of all elements of a matrix expression, shown as Σ(X)."""

    def __new__(cls, arg):
        return sympy.Expr.__new__(cls, arg)

    def doit(self, **hints):
        arg = self.args[0].doit(**hints) if hints.get("deep", True) else self.args[0]
        if getattr(arg, "is_Matrix", False):
            return sympy.Add(*arg.as_explicit())
        return self.func(arg)

    def _sympystr(self, printer):
        return f"sum({printer._print(self.args[0])})"

    def _latex(self, printer):
        return rf"\Sigma\left({printer._print(self.args[0])}\right)"

    def _pretty(self, printer):
        from sympy.printing.pretty.stringpict import prettyForm
        return prettyForm(*prettyForm(*printer._print(self.args[0]).parens()).left("Σ"))


#: LaTeX of each display-only matrix label, by its text (SymPy rebuilds a symbol from its args alone).
_LABEL_LATEX: dict = {}


class MatrixLabel(sympy.MatrixSymbol):
    """A display-only matrix symbol with its own text and LaTeX (e.g. λ(t₀)), never used in algebra."""

    def __new__(cls, text, rows, cols, latex: str | None = None):
        obj = super().__new__(cls, text, rows, cols)
        if latex is not None:
            _LABEL_LATEX[obj.name] = latex
        return obj

    def _latex(self, printer):
        return _LABEL_LATEX.get(self.name, self.name)

    def _sympystr(self, printer):
        return self.name

    def _pretty(self, printer):
        from sympy.printing.pretty.stringpict import prettyForm
        return prettyForm(self.name)


class MatrixText:
    """Node -> SymPy matrix expression.  ``names`` maps a node (a named term) or a group to the symbol shown."""

    def __init__(self, names: dict | None = None, symbols: dict | None = None):
        self.names = names if names is not None else {}  # shared: the caller adds named terms as it goes
        self.symbols = dict(symbols or {})  # scalar symbol -> what to show instead (e.g. z_0 -> z_0(t_1))
        self._memo: dict = {}

    def symbol_for(self, group: N.Group, label: str | None = None):
        label = label or group.name
        if not group.is_array:
            return group.elements[0]
        return sympy.MatrixSymbol(label, *group.shape)

    def __call__(self, value):
        if not isinstance(value, N.Node):
            return sympy.sympify(value).xreplace(self.symbols)
        if value in self.names:
            return self.names[value]
        out = self._memo.get(value)
        if out is None:
            out = self._memo[value] = self._convert(value)
        return out

    def _convert(self, n: N.Node):
        op, a = n.op, [self(x) for x in n.args]
        if op == "leaf":
            return self.names.get(n.attr) or self.symbol_for(n.attr)
        if op == "scalar":
            return sympy.sympify(n.attr).xreplace(self.symbols)
        if n.is_scalar and op in ("add", "mul", "power"):
            return {"add": sympy.Add, "mul": sympy.Mul}[op](*a) if op != "power" else a[0] ** n.attr
        if op == "add" and all(isinstance(x, sympy.ImmutableMatrix) for x in a):  # elements: one explicit matrix
            return sympy.ImmutableMatrix(sum(a[1:], a[0]))
        if op == "add":
            return sympy.MatAdd(*[x if getattr(x, "is_Matrix", False) else x * sympy.OneMatrix(*n.shape)
                                  for x in a])
        if op == "mul":
            scal = [x for x, s in zip(a, n.args) if s.is_scalar]
            arr = [x for x, s in zip(a, n.args) if not s.is_scalar]
            body = arr[0] if len(arr) == 1 else sympy.HadamardProduct(*arr)
            return sympy.MatMul(sympy.Mul(*scal), body) if scal else body
        if op == "power":
            return sympy.HadamardPower(a[0], n.attr)
        if op in ("func", "dfunc"):
            return Elementwise(n.attr, a[0], op == "dfunc")
        if op == "matmul":
            return sympy.MatMul(a[0], a[1])
        if op == "T":
            return sympy.Transpose(a[0])
        if op == "sum":
            return Total(a[0])
        # element-level operations (indexing, columns of scalars, broadcasts, scatters): show the elements
        return sympy.ImmutableMatrix(N.expand(n)).xreplace(self.symbols)
