"""Property tests of symode.expr.parse_expression (hypothesis).

1. Arbitrary text either parses to a SymPy expression or raises SpecError: never another exception.
2. Random expression trees over declared names, small decimals and the allowed functions, rendered to
   text and parsed, equal the same tree built directly with SymPy (independent reference: the tree is
   built from sympy.Add/Mul/Pow/sin/... and Rational(numerator, 10**scale), never from text), checked by
   evaluating both at a random point with mpmath at 30 digits.
"""
from __future__ import annotations

import keyword

import mpmath
import pytest
import sympy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from symode.errors import SpecError
from symode.expr import parse_expression

# Tolerances used in this module, each with its reason.
TOLERANCES = {
    # Both sides are evaluated by SymPy's evalf at 30 significant digits (it raises the working precision
    # until 30 digits are right); 1e-20 leaves 10 digits of margin for the last-digit rounding of two
    # differently-grouped but equal expressions, and is still 1e4 times tighter than float64's 1e-16.
    "fuzz_relative": mpmath.mpf("1e-20"),
}
EVAL_DIGITS = 30

FUZZ_SETTINGS = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,  # the same examples on every run: a CI failure reproduces locally
)

DECLARED = ["x", "y", "E", "I", "N", "S", "lambda", "beta", "if", "None", "re"]
SYMBOLS = {n: sympy.Symbol(n, real=True) for n in DECLARED}


# ---------------------------------------------------------------------------------------------------
# 1. arbitrary text

PIECES = [
    "+", "-", "*", "/", "**", "^", "%", "//", "@", "<", "==", "and", "or", "not", "if", "else", "lambda",
    ":", ":=", ",", ".", "(", ")", "[", "]", "{", "}", "'", '"', "f'", "b'", "\\", "#", "\n", " ", "\t",
    "__class__", "__import__", "__subclasses__", "__mro__", "__globals__", "__builtins__", "os", "system",
    "eval", "exec", "open", "getattr", "x", "y", "E", "I", "N", "S", "beta", "None", "True", "sin",
    "sigmoid", "abs", "log", "0", "1", "9", "0.1", "1e400", "1e-400", "2j", "0x1", "1_0", "nan", "inf",
    "...", "*", "=", ";", "\x00", "\uff58", "\u0430",
]


def check_total(text: str) -> None:
    try:
        value = parse_expression(text, SYMBOLS, "fuzz")
    except SpecError:
        return
    assert isinstance(value, sympy.Expr)
    assert not value.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo)


@FUZZ_SETTINGS
@given(st.text(max_size=200))
def test_arbitrary_text_parses_or_raises_spec_error(text):
    check_total(text)


@pytest.mark.slow
@FUZZ_SETTINGS
@given(st.lists(st.sampled_from(PIECES), max_size=40).map("".join))
def test_python_like_text_parses_or_raises_spec_error(text):
    check_total(text)


# ---------------------------------------------------------------------------------------------------
# 2. generated valid trees vs. the same tree built in SymPy

FUNCTIONS = {
    # name -> SymPy reference built from the textbook definition
    "sin": sympy.sin, "cos": sympy.cos, "tan": sympy.tan, "exp": sympy.exp, "tanh": sympy.tanh,
    "sinh": sympy.sinh, "cosh": sympy.cosh, "atan": sympy.atan, "asinh": sympy.asinh, "abs": sympy.Abs,
    "sigmoid": lambda u: 1 / (1 + sympy.exp(-u)),
    "softplus": lambda u: sympy.log(1 + sympy.exp(u)),
}
# log and sqrt need a positive argument; division a nonzero one: the generator wraps their argument
# as (1 + (a)**2), which is >= 1 at every real point, in the text and in the reference alike.
POSITIVE_ARG_FUNCTIONS = {"log": sympy.log, "sqrt": sympy.sqrt}


# Trees are plain tuples (cheap to generate and shrink); text and SymPy reference are built from them
# in the test:  ("name", n) | ("num", text, numerator, scale) | ("bin", op, a, b) | ("pow", a, k)
#             | ("neg", a) | ("call", function, a)


@st.composite
def decimals(draw):
    """("num", text, numerator, scale) of a small decimal literal, e.g. ("num", "12.05", 1205, 2)."""
    numerator = draw(st.integers(min_value=0, max_value=99_999))
    scale = draw(st.integers(min_value=0, max_value=4))
    digits = str(numerator).rjust(scale + 1, "0")
    text = digits if scale == 0 else digits[:-scale] + "." + digits[-scale:]
    if draw(st.booleans()) and scale > 0:
        # scientific form of the same value: d.ddd e-k
        mantissa = digits.lstrip("0") or "0"
        text = f"{mantissa[0]}.{mantissa[1:] or '0'}e{len(mantissa) - 1 - scale}"
    return ("num", text, numerator, scale)


def leaves():
    return st.one_of(st.sampled_from(DECLARED).map(lambda n: ("name", n)), decimals())


def extend(children):
    return st.one_of(
        st.tuples(st.just("bin"), st.sampled_from("+-*/"), children, children),
        st.tuples(st.just("pow"), children, st.integers(min_value=0, max_value=3)),
        st.tuples(st.just("neg"), children),
        st.tuples(st.just("call"), st.sampled_from(sorted(FUNCTIONS) + sorted(POSITIVE_ARG_FUNCTIONS)),
                  children),
    )


trees = st.recursive(leaves(), extend, max_leaves=8)


def render(tree) -> str:
    """Fully parenthesised text of ``tree``; division by (1 + b**2), log/sqrt of (1 + a**2)."""
    kind = tree[0]
    if kind == "name":
        return tree[1]
    if kind == "num":
        return tree[1]
    if kind == "bin":
        _, op, a, b = tree
        if op == "/":
            return f"({render(a)} / (1 + ({render(b)})**2))"
        return f"({render(a)} {op} {render(b)})"
    if kind == "pow":
        return f"({render(tree[1])})**{tree[2]}"
    if kind == "neg":
        return f"-({render(tree[1])})"
    name, a = tree[1], tree[2]
    if name in POSITIVE_ARG_FUNCTIONS:
        return f"{name}(1 + ({render(a)})**2)"
    return f"{name}({render(a)})"


def build(tree) -> sympy.Expr:
    """The same tree built directly with SymPy constructors (the independent reference)."""
    kind = tree[0]
    if kind == "name":
        return SYMBOLS[tree[1]]
    if kind == "num":
        return sympy.Rational(tree[2], 10 ** tree[3])
    if kind == "bin":
        _, op, a, b = tree
        ea, eb = build(a), build(b)
        if op == "+":
            return sympy.Add(ea, eb)
        if op == "-":
            return sympy.Add(ea, sympy.Mul(-1, eb))
        if op == "*":
            return sympy.Mul(ea, eb)
        return sympy.Mul(ea, sympy.Pow(1 + eb**2, -1))
    if kind == "pow":
        return sympy.Pow(build(tree[1]), tree[2])
    if kind == "neg":
        return sympy.Mul(-1, build(tree[1]))
    name, a = tree[1], tree[2]
    if name in POSITIVE_ARG_FUNCTIONS:
        return POSITIVE_ARG_FUNCTIONS[name](1 + build(a) ** 2)
    return FUNCTIONS[name](build(a))


points = st.fixed_dictionaries(
    {n: st.fractions(min_value=-2, max_value=2, max_denominator=1000) for n in DECLARED}
)


def evaluate(expr: sympy.Expr, point: dict) -> mpmath.mpf:
    subs = {SYMBOLS[n]: sympy.Rational(v.numerator, v.denominator) for n, v in point.items()}
    value = sympy.N(expr.subs(subs), EVAL_DIGITS)
    assert value.is_real, (expr, value)
    # evalf computes in mpmath; take its binary value exactly (Float() also covers an exact Zero result)
    return mpmath.mpf(sympy.Float(value, EVAL_DIGITS)._mpf_)


@pytest.mark.slow
@FUZZ_SETTINGS
@given(trees, points)
def test_generated_trees_match_direct_sympy(tree, point):
    text, reference = render(tree), build(tree)
    parsed = parse_expression(text, SYMBOLS, "fuzz")
    if parsed == reference:
        return
    # Equal up to how SymPy grouped the terms: compare values at a random point.
    a = evaluate(parsed, point)
    b = evaluate(reference, point)
    with mpmath.workdps(EVAL_DIGITS):
        assert abs(a - b) <= TOLERANCES["fuzz_relative"] * max(1, abs(b)), (text, parsed, reference, a, b)


ALL_FUNCTIONS = sorted(FUNCTIONS) + sorted(POSITIVE_ARG_FUNCTIONS)


@pytest.mark.slow
@pytest.mark.parametrize("name", ALL_FUNCTIONS)
@settings(FUZZ_SETTINGS, max_examples=15)
@given(tree=trees, point=points)
def test_each_function_of_a_generated_tree(name, tree, point):
    # Random trees rarely contain a given function; this calls each one on a random tree.
    tree = ("call", name, tree)
    text, reference = render(tree), build(tree)
    parsed = parse_expression(text, SYMBOLS, "fuzz")
    a = evaluate(parsed, point)
    b = evaluate(reference, point)
    with mpmath.workdps(EVAL_DIGITS):
        assert abs(a - b) <= TOLERANCES["fuzz_relative"] * max(1, abs(b)), (text, parsed, reference, a, b)


@pytest.mark.parametrize("keyword_name", [k for k in keyword.kwlist if k[0].isalpha()])
def test_every_python_keyword_works_as_a_declared_name(keyword_name):
    s = sympy.Symbol(keyword_name, real=True)
    got = parse_expression(f"2*{keyword_name} + sin({keyword_name})", {keyword_name: s}, "f")
    assert got == 2 * s + sympy.sin(s)
