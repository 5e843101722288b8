"""The expression parser of the spec grammar: text -> SymPy, safely and exactly (:func:`parse_expression`).

Nothing here calls ``eval``, ``exec``, ``sympy.sympify`` or ``parse_expr``.  Expression text is parsed
with Python's :mod:`ast` module (which only builds a syntax tree and runs nothing) and the tree is walked
against a whitelist:

* numbers (decimal literals only, converted exactly: ``0.1`` is ``Rational(1, 10)``, never the binary
  double ``0.1000000000000000055511151231257827...``);
* names, resolved *only* through the ``names`` mapping the caller declares (``E``, ``I``, ``N``, ``S``,
  ``pi`` ... never mean SymPy constants; Python keywords such as ``lambda`` work as declared names);
* ``+ - * / **`` and unary ``+ -`` with Python's precedence (``**`` binds tighter than unary minus and is
  right-associative: ``-x**2 == -(x**2)``, ``a**b**c == a**(b**c)``);
* calls ``f(arg)`` of the functions in :data:`~symode.expr.functions.ALLOWED_FUNCTIONS` with exactly one
  positional argument, each built by its entry of the function table (:data:`~symode.expr.FUNCTIONS`):
  ``sigmoid(x) = 1/(1 + exp(-x))``, ``softplus(x) = log(1 + exp(x))``, ``abs`` is ``Abs``.

Everything else raises :class:`~symode.errors.SpecError` naming the field and quoting the offending text.
Parse-time resource caps are in :data:`~symode.expr.limits.LIMITS`.  :func:`parse_written` also hands out
the syntax tree as written, for checks that must read the text before SymPy simplified it.
"""
from __future__ import annotations

import ast
import difflib
import re
import time
import warnings
from collections.abc import Mapping

import sympy

from symode.errors import SpecError

from .functions import ALLOWED_FUNCTIONS, FUNCTIONS
from .limits import LIMITS, effective_exponent_excess
from .literals import NAME_RE, _first_bad_char, _quote, parse_decimal  # package-internal helpers
from .syntax import _KEYWORDS, _TOKEN_RE, _bracket_depth, _mangle_keywords, _op_class, _tree_size  # package-internal

__all__ = ["parse_expression", "parse_written", "Written", "names_in"]

#: The grammar's functions by name (what a call may name).
_GRAMMAR = {name: FUNCTIONS[name] for name in ALLOWED_FUNCTIONS}

_NONFINITE = (sympy.zoo, sympy.nan, sympy.oo, -sympy.oo)

# Names for the nodes we refuse, used in messages ("attribute access is not allowed ...").
_REFUSED_NODES: dict[type, str] = {
    ast.Attribute: "attribute access",
    ast.Subscript: "indexing/subscripts",
    ast.Lambda: "lambda expressions",
    ast.ListComp: "comprehensions",
    ast.SetComp: "comprehensions",
    ast.DictComp: "comprehensions",
    ast.GeneratorExp: "generator expressions",
    ast.Compare: "comparisons",
    ast.BoolOp: "boolean operators (and/or)",
    ast.IfExp: "conditional expressions (x if c else y)",
    ast.NamedExpr: "assignment expressions (:=)",
    ast.JoinedStr: "f-strings",
    ast.FormattedValue: "f-strings",
    ast.List: "lists",
    ast.Tuple: "tuples (a comma outside a function call?)",
    ast.Set: "sets",
    ast.Dict: "dicts",
    ast.Starred: "starred arguments",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
    ast.Slice: "slices",
}

_BINOP_NAMES: dict[type, str] = {
    ast.FloorDiv: "'//' (floor division)",
    ast.Mod: "'%' (modulo)",
    ast.MatMult: "'@' (matrix product)",
    ast.LShift: "'<<'",
    ast.RShift: "'>>'",
    ast.BitOr: "'|'",
    ast.BitAnd: "'&'",
}



class _Converter:
    """Walks a whitelisted ``ast`` tree and builds the SymPy expression (see the module docstring)."""

    def __init__(self, src: str, names: Mapping[str, sympy.Expr], field: str, algebra=None):
        self.src = src  # the user's text (stripped); positions equal those in the mangled text
        self.names = names
        self.field = field
        self.algebra = algebra  # array values and their operations (see parse_expression), or None
        self.deadline = time.perf_counter() + LIMITS["max_parse_seconds"]
        # Start offset of each line, splitting as Python's tokenizer does (\r\n, \r, \n).  Offsets
        # are characters, equal to ast's UTF-8 byte offsets because the text is ASCII.  (ast's own
        # get_source_segment re-splits the whole text on every call: O(n^2) over a long expression.)
        self.line_starts = [0] + [m.end() for m in re.finditer(r"\r\n|\r|\n", src)]

    # -- helpers -------------------------------------------------------------------------------------
    def source(self, node: ast.AST) -> str | None:
        """The user's text of ``node``, or None where the node carries no position."""
        try:
            start = self.line_starts[node.lineno - 1] + node.col_offset
            end = self.line_starts[node.end_lineno - 1] + node.end_col_offset
        except (AttributeError, TypeError, IndexError):
            return None
        return self.src[start:end]

    def segment(self, node: ast.AST) -> str:
        seg = self.source(node)
        return seg if seg is not None else "?"

    def fail(self, node: ast.AST, message: str) -> SpecError:
        return SpecError(f"{self.field}: {message} in {_quote(self.segment(node))}")

    def original_name(self, node: ast.Name) -> str:
        """The name as the user wrote it (undoing the keyword mangling)."""
        seg = self.source(node)
        if seg is not None and seg != node.id and seg in _KEYWORDS and "_" + seg[1:] == node.id:
            return seg
        return node.id

    def is_array(self, value) -> bool:
        return self.algebra is not None and self.algebra.is_array(value)

    def array_op(self, node: ast.AST, method: str, *args):
        """``self.algebra.<method>(*args)``; its SpecError (a shape mismatch ...) is reported at ``node``."""
        try:
            value = getattr(self.algebra, method)(*args)
        except SpecError as exc:
            raise self.fail(node, str(exc)) from None
        return self.check_value(value, node, False)  # a scalar result continues as SymPy (checked)

    def negate(self, value, node: ast.AST, constant: bool):
        if self.is_array(value):
            return self.array_op(node, "neg", value)
        return self.check_value(-value, node, constant)

    def check_value(self, value: sympy.Expr, node: ast.AST, constant: bool) -> sympy.Expr:
        """Refuse non-finite, oversized or non-real constant results of one node."""
        if self.is_array(value):  # built from checked scalars by the algebra
            return value
        if value in _NONFINITE or any(a in _NONFINITE for a in value.args):
            raise self.fail(
                node, "the value is not finite (division by zero, log(0) or similar)"
            )
        excess = effective_exponent_excess(value)
        if excess is not None:
            raise self.fail(node, excess)
        # SymPy folds the numbers of an n-ary product or sum into one coefficient ((1e299)*(1e300)*(1e21)*z):
        # that coefficient is a constant of the model as much as a lone number is, and the writer must be able
        # to spell it, so the cap applies to it too
        terms = value.args if isinstance(value, sympy.Add) else (value,)
        coeffs = [c for c in (t.as_coeff_Mul()[0] for t in terms) if isinstance(c, sympy.Rational)]
        if coeffs:
            max_digits = LIMITS["max_constant_digits"]
            # bit_length * log10(2) is within one digit of the decimal length; never str() a huge int
            digits = max(max(abs(c.p).bit_length(), abs(c.q).bit_length()) for c in coeffs) * 0.30103
            if digits > max_digits:
                raise self.fail(
                    node,
                    f"a constant has about {int(digits)} digits, more than the cap of {max_digits} "
                    "(LIMITS['max_constant_digits'])",
                )
        if constant and value.is_extended_real is False:
            raise self.fail(
                node,
                "the value is not a real number (square root or fractional power of a negative number, "
                "or log of a negative number)",
            )
        if time.perf_counter() > self.deadline:
            raise self.fail(
                node,
                f"parsing took longer than the cap of {LIMITS['max_parse_seconds']} s "
                "(LIMITS['max_parse_seconds']); simplify the expression",
            )
        return value

    # -- conversion ----------------------------------------------------------------------------------
    def convert(self, node: ast.AST) -> tuple[sympy.Expr, bool]:
        """Return (expression, is_constant) for ``node``; is_constant means no names below it."""
        if isinstance(node, ast.Constant):
            return self.constant(node), True
        if isinstance(node, ast.Name):
            return self.name(node), False
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.USub):
                arg, const = self.convert(node.operand)
                return self.negate(arg, node, const), const
            if isinstance(node.op, ast.UAdd):
                return self.convert(node.operand)
            op = "'not'" if isinstance(node.op, ast.Not) else "'~'"
            raise self.fail(node, f"the operator {op} is not allowed")
        if isinstance(node, ast.BinOp):
            return self.binop(node)
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, ast.Subscript) and self.algebra is not None:
            return self.subscript(node), False
        if isinstance(node, ast.List) and self.algebra is not None:  # [a, b, c]: a column of scalars
            return self.array_op(node, "stack", [self.convert(e)[0] for e in node.elts]), False
        what = _REFUSED_NODES.get(type(node), f"the construct {type(node).__name__}")
        raise self.fail(node, f"{what} not allowed in an expression (only numbers, declared names, "
                              f"+ - * / **, and calls of {', '.join(ALLOWED_FUNCTIONS)})")

    def constant(self, node: ast.Constant) -> sympy.Expr:
        v = node.value
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            if isinstance(v, complex):
                raise self.fail(node, "imaginary numbers are not allowed")
            if isinstance(v, (str, bytes)):
                raise self.fail(node, "string literals are not allowed")
            raise self.fail(node, f"the constant {v!r} is not allowed")
        text = self.segment(node)
        # Same rules as parse_decimal, on the literal's source text: exact, and 1e400 is refused.
        return parse_decimal(text, f"{self.field} (number {text!r})")

    def name(self, node: ast.Name) -> sympy.Expr:
        name = self.original_name(node)
        if not NAME_RE.fullmatch(name):
            raise self.fail(node, f"{name!r} is not a valid name (names start with a letter)")
        if name in self.names:
            return self.names[name]
        hint = ""
        close = difflib.get_close_matches(name, list(self.names), n=1)
        if close:
            hint = f" (did you mean {close[0]!r}?)"
        elif name in _GRAMMAR:
            hint = f" ({name} is a function: call it as {name}(...))"
        raise self.fail(node, f"unknown name {name!r}{hint}; declare it as a state or parameter")

    def binop(self, node: ast.BinOp) -> tuple[sympy.Expr, bool]:
        # "a + b - c + ..." is a LEFT-nested chain of BinOps in the ast.  Walk that spine iteratively and
        # build one n-ary Add (or Mul for "a * b / c ...") instead of n binary ones: no recursion depth
        # per term, and O(n log n) in SymPy instead of the O(n^2) of re-flattening after every "+".
        cls = _op_class(node.op)
        if cls is None:  # ** (right-nested) or a refused operator
            if isinstance(node.op, ast.Pow) or (isinstance(node.op, ast.MatMult) and self.algebra is not None):
                left, lc = self.convert(node.left)
                return self.apply_binop(node, left, lc)
            return self.apply_binop(node, sympy.Integer(0), True)  # raises before converting anything
        spine = []
        cur: ast.AST = node
        while isinstance(cur, ast.BinOp) and _op_class(cur.op) == cls:
            spine.append(cur)
            cur = cur.left
        first, const = self.convert(cur)
        items = [first]
        for b in reversed(spine):
            right, rc = self.convert(b.right)
            const = const and rc
            if isinstance(b.op, ast.Sub):
                right = self.negate(right, b, rc)
            elif isinstance(b.op, ast.Div):
                right = self.array_op(b, "reciprocal", right) if self.is_array(right) \
                    else self.check_value(1 / right, b, rc)
            items.append(right)
        if any(self.is_array(v) for v in items):
            return self.array_op(node, cls, items), False
        value = sympy.Add(*items) if cls == "add" else sympy.Mul(*items)
        return self.check_value(value, node, const), const

    def apply_binop(self, node: ast.BinOp, left: sympy.Expr, lc: bool) -> tuple[sympy.Expr, bool]:
        """``left ** right`` with the exponent cap; every other operator here is refused."""
        op = node.op
        if isinstance(op, ast.BitXor):
            raise self.fail(node, "'^' is bitwise XOR in Python syntax, not a power: use ** for powers")
        if isinstance(op, ast.MatMult) and self.algebra is not None:
            right, _ = self.convert(node.right)
            return self.array_op(node, "matmul", left, right), False
        if not isinstance(op, ast.Pow):
            what = _BINOP_NAMES.get(type(op), type(op).__name__)
            raise self.fail(node, f"the operator {what} is not allowed (use + - * / **)")
        right, rc = self.convert(node.right)
        if not self.is_array(right) and right.is_Number:
            cap = LIMITS["max_exponent"]
            if abs(right) > cap:
                raise self.fail(
                    node,
                    f"the exponent {_quote(str(right))[1:-1]} exceeds the cap |exponent| <= {cap} "
                    "(LIMITS['max_exponent'])",
                )
        if self.is_array(left) or self.is_array(right):
            return self.array_op(node, "power", left, right), False
        return self.check_value(left**right, node, lc and rc), lc and rc

    def subscript(self, node: ast.Subscript):
        """``x[i]`` or ``x[i, j]`` with non-negative integer literals, for the array algebra."""
        value, _ = self.convert(node.value)
        index = node.slice
        items = index.elts if isinstance(index, ast.Tuple) else [index]
        out = []
        for item in items:
            if not (isinstance(item, ast.Constant) and type(item.value) is int):
                raise self.fail(node, "an index must be a non-negative integer literal, e.g. z[0] or W[1, 2]")
            out.append(item.value)
        return self.array_op(node, "index", value, tuple(out))

    def call(self, node: ast.Call) -> tuple[sympy.Expr, bool]:
        if not isinstance(node.func, ast.Name):
            raise self.fail(node, "only calls of a bare function name are allowed, e.g. sin(x)")
        fname = self.original_name(node.func)
        array_functions = self.algebra.functions if self.algebra is not None else ()
        if fname not in _GRAMMAR and fname not in array_functions:
            raise self.fail(node, f"unknown function {fname!r}; the allowed functions are "
                                  f"{', '.join(ALLOWED_FUNCTIONS)}")
        if node.keywords:
            raise self.fail(node, f"{fname}() takes no keyword arguments")
        if any(isinstance(a, ast.Starred) for a in node.args):
            raise self.fail(node, f"{fname}() takes no starred arguments")
        if len(node.args) != 1:
            raise self.fail(node, f"{fname}() takes exactly one argument ({len(node.args)} given)")
        arg, const = self.convert(node.args[0])
        if fname in array_functions or self.is_array(arg):
            return self.array_op(node, "call", fname, arg), False
        return self.check_value(_GRAMMAR[fname].sympy_function(arg), node, const), const


def parse_expression(text: object, names: Mapping[str, sympy.Expr], field: str, *, algebra=None):
    """Parse expression ``text`` into a SymPy expression, safely and exactly.

    ``names`` maps every name the text may use (states, parameters, ``t``) to its SymPy value; no other
    name resolves.  Numbers are exact decimals (``0.1 -> Rational(1, 10)``).  Grammar, precedence and the
    function definitions are in the module docstring; caps are in :data:`LIMITS`.  The result is finite
    and, where constant, real.  Any refusal raises SpecError whose message starts with ``field``.

    ``algebra`` (optional) lets ``names`` map to array values: an object with ``is_array(value)``, the
    operations ``add(items)``, ``mul(items)``, ``neg(x)``, ``reciprocal(x)``, ``power(x, y)``, ``matmul(a, b)``,
    ``index(x, indices)``, ``stack(items)`` (a list literal ``[a, b]``), ``call(function_name, x)`` and a set
    ``functions`` of names it adds (``sum``).
    Wherever an operand is an array (or the operator is ``@``, a subscript or one of those functions) the
    algebra builds the value, raising SpecError for a shape mismatch; everything scalar is built exactly as
    without it, so scalar results are unchanged.  The result is then a scalar SymPy expression or an array.
    """
    return _parse(text, names, field, algebra)[0]


class Written:
    """An expression as written and as parsed (see :func:`parse_written`).

    ``expr``: the SymPy expression :func:`parse_expression` returns (after SymPy's automatic evaluation, which
    may have simplified ``0*log(z)`` to 0); ``tree``: the whitelisted syntax tree of the text as written
    (``tree.body`` is the root; every node is a number, name, ``+ - * / **``, unary ``+ -`` or a call of a
    grammar function); ``text``: the stripped text.  :meth:`segment` and :meth:`name` read the user's text.
    """

    def __init__(self, expr: sympy.Expr, tree: ast.Expression, conv: "_Converter"):
        self.expr, self.tree, self.text = expr, tree, conv.src
        self._conv = conv

    def segment(self, node: ast.AST) -> str:
        """The user's text of ``node``."""
        return self._conv.segment(node)

    def name(self, node: ast.Name) -> str:
        """The name of a name node (or a call's function) as the user wrote it (a keyword such as ``lambda``
        is parsed under a mangled name)."""
        return self._conv.original_name(node)


def parse_written(text: object, names: Mapping[str, sympy.Expr], field: str) -> Written:
    """:func:`parse_expression`, also handing out the syntax tree as written (:class:`Written`): for checks
    that read the text before SymPy's evaluation simplified it (symode.check.singularities)."""
    return Written(*_parse(text, names, field))


def names_in(text: str) -> set[str]:
    """The identifiers in ``text``: a superset of the names it uses (function names included)."""
    return {m.group("name") for m in _TOKEN_RE.finditer(text) if m.group("name")}


def _parse(text: object, names: Mapping[str, sympy.Expr], field: str, algebra=None):
    """(expression, syntax tree, converter) of ``text`` (see :func:`parse_expression`)."""
    tree, src = _syntax_tree(text, field)
    conv = _Converter(src, names, field, algebra)
    max_depth = LIMITS["max_depth"]
    try:
        value, _ = conv.convert(tree.body)
    except RecursionError:  # pragma: no cover - depth is capped above; belt and braces
        raise SpecError(f"{field}: expression too deeply nested (LIMITS['max_depth'] = {max_depth})") from None
    except (ArithmeticError, ValueError, MemoryError) as exc:
        # SymPy's exact evaluation of huge constants can fail inside SymPy itself: with gmpy2 ground types,
        # sqrt of a 600-digit integer raised OverflowError ("'mpz' too large to convert to float")
        raise SpecError(f"{field}: a constant in {_quote(src)} is too large to evaluate exactly "
                        f"({type(exc).__name__}); use smaller numbers") from None
    if conv.is_array(value):
        return value, tree, conv
    if not isinstance(value, sympy.Expr):
        raise SpecError(f"{field}: {_quote(src)} is not a scalar expression")
    if value.has(*_NONFINITE):
        raise SpecError(f"{field}: {_quote(src)} is not finite (division by zero, log(0) or similar)")
    if value.has(sympy.I):
        # e.g. sqrt(c) where a name maps to a negative constant: models are real
        raise SpecError(f"{field}: {_quote(src)} is not real (it contains the imaginary unit)")
    return value, tree, conv


def _syntax_tree(text: object, field: str) -> tuple[ast.Expression, str]:
    """The checked syntax tree of ``text`` (the caps and character rules) and the stripped text."""
    if not isinstance(text, str):
        raise SpecError(f"{field}: an expression must be a string, got {type(text).__name__}; "
                        "write it in quotes, e.g. \"-beta*S*I/N\"")
    max_len = LIMITS["max_text_length"]
    if len(text) > max_len:
        raise SpecError(f"{field}: expression is {len(text)} characters long, more than the cap of "
                        f"{max_len} (LIMITS['max_text_length']); split it into named intermediate terms")
    bad = _first_bad_char(text)
    if bad is not None:
        pos, what = bad
        raise SpecError(
            f"{field}: {what} at position {pos + 1} of {_quote(text)}; expressions are ASCII only "
            "(Python would silently turn look-alikes such as fullwidth letters into ASCII ones)"
        )
    if "#" in text:
        # Python's tokenizer would read the rest of the line as a comment and silently drop it
        raise SpecError(f"{field}: '#' at position {text.index('#') + 1} of {_quote(text)} is not part of the "
                        "expression grammar (Python would drop the rest of the line as a comment); remove it")
    # Python's eval mode rejects leading indentation; TOML multi-line strings often have some.
    src = text.strip()
    lead = len(text) - len(text.lstrip())
    if not src:
        raise SpecError(f"{field}: expression is empty; write an expression such as \"-beta*S*I/N\"")
    max_depth = LIMITS["max_depth"]
    if _bracket_depth(src) > max_depth:
        raise SpecError(f"{field}: brackets nested more than {max_depth} deep (LIMITS['max_depth']) in "
                        f"{_quote(src)}; split the expression")
    # Each name or number is at least one syntax node: refuse long texts before Python's parser, whose
    # conversion of a left-nested chain of ~5,000 operations to Python objects hits the recursion limit.
    n_operands = sum(1 for _ in _TOKEN_RE.finditer(src))
    if n_operands > LIMITS["max_nodes"]:
        raise SpecError(f"{field}: expression has {n_operands} names and numbers, more than the cap of "
                        f"{LIMITS['max_nodes']} syntax nodes (LIMITS['max_nodes']); split it into named "
                        "intermediate terms")
    mangled = _mangle_keywords(src)
    try:
        with warnings.catch_warnings():
            # e.g. "invalid decimal literal" SyntaxWarnings: the parse result is refused or accepted anyway
            warnings.simplefilter("ignore")
            tree = ast.parse(mangled, mode="eval")
    except SyntaxError as exc:
        col = exc.offset if exc.offset is not None else 0
        line = exc.lineno or 1
        where = f"line {line}, column {col + (lead if line == 1 else 0)}"
        hint = "; to split an expression over lines, wrap it in parentheses" if "\n" in src else ""
        raise SpecError(f"{field}: syntax error ({exc.msg}) at {where} of {_quote(text)}{hint}") from None
    except (RecursionError, MemoryError, ValueError) as exc:
        raise SpecError(f"{field}: the expression is too deeply nested or too complex for Python's parser "
                        f"({type(exc).__name__}); caps: LIMITS['max_depth'] = {max_depth}") from None
    count, depth = _tree_size(tree)
    if count > LIMITS["max_nodes"]:
        raise SpecError(f"{field}: expression has {count} syntax nodes, more than the cap of "
                        f"{LIMITS['max_nodes']} (LIMITS['max_nodes']); split it into named intermediate terms")
    if depth > max_depth:
        raise SpecError(f"{field}: expression is nested {depth} levels deep, more than the cap of "
                        f"{max_depth} (LIMITS['max_depth']); split it into named intermediate terms")
    return tree, src
