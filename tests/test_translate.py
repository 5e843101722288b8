"""Tests of symode.casadi.translate: every table entry against SymPy evalf at 30 digits.

The reference for each case is SymPy's own ``evalf`` at 30 significant digits of the same expression with
the exact binary value of the double input substituted -- an independent arbitrary-precision evaluation, so
the only error measured is CasADi's float64 arithmetic (and libm).  Errors are in ulps of the reference:
|computed - reference| / ulp(reference rounded to double).
"""
from __future__ import annotations

import math
from fractions import Fraction

import casadi
import pytest
import sympy

from symode.casadi.translate import OPERATIONS, nearest_double, to_casadi
from symode.errors import TranslationError

# Tolerances in ulps of the reference value, one per error model.
TOLERANCE_ULPS = {
    # one IEEE-754 operation (+ - * / sqrt) on exact inputs, or a constant rounded once to the nearest
    # double: IEEE 754 requires correct rounding, i.e. at most half an ulp
    "correctly_rounded": 0.5,
    # results that are an input, 0, 1 or 1/2 exactly (Abs, sign, Max, Min, Heaviside, Piecewise selection)
    "exact": 0.0,
    # one glibc libm call on an exact double (exp, log, sin, ..., pow): glibc's manual ("Known Maximum
    # Errors in Math Functions") lists at most 1-2 ulps for these on x86_64
    "libm": 2.0,
    # pow(x, e) with e the nearest double to a rational that is not a dyadic fraction: libm pow (<= 2 ulps)
    # plus the exponent's rounding, a relative error |e ln x| 2^-53 <= 1 ulp for the points used
    # (|e ln x| <= 1.1)
    "rational_pow": 3.0,
    # up to three correctly rounded operations and at most one libm call, at points chosen without
    # cancellation (all terms of one sign, condition numbers <= ~1): sum of the per-operation bounds
    "composite": 4.0,
}

X, Y, W = sympy.symbols("x y w", real=True)
half = sympy.Rational(1, 2)

# (id, expression, points as tuples of (x, y, w) doubles, error model)
POS = [(0.3, 0.45, 1.25), (1.7, 1.1, 0.6), (2.9, 2.3, 3.7)]
MIXED = [(-1.2, 0.45, 1.25), (0.3, -2.1, 0.6), (2.9, 1.1, -0.7)]
CASES = [
    # arithmetic
    ("add", X + Y, POS, "correctly_rounded"),
    ("add_many", X + Y + W + 3, POS, "composite"),
    ("sub", X - 3 * Y, [(5.0, 0.45, 0), (9.1, 1.1, 0)], "composite"),
    ("mul", X * Y, MIXED, "correctly_rounded"),
    ("mul_many", X * Y * W, MIXED, "composite"),
    ("div", X / Y, MIXED, "correctly_rounded"),
    ("div_rational", X / 10, MIXED, "correctly_rounded"),  # x/10 as one division, not x*0.1
    ("neg_div_rational", -X / 3, MIXED, "correctly_rounded"),
    ("rational_coefficient", 2 * X / 3, MIXED, "composite"),
    ("big_rational_coefficient", sympy.Rational(10**30 + 1, 7) * X, MIXED, "composite"),
    ("reciprocal_product", 1 / (X * Y), POS, "composite"),
    ("divide_by_power", X / Y**2, MIXED, "composite"),  # x / sq(y): two roundings
    # powers
    ("pow_2", X**2, MIXED, "correctly_rounded"),
    ("pow_3", X**3, MIXED, "libm"),
    ("pow_5", X**5, MIXED, "libm"),
    ("pow_16", X**16, POS, "libm"),
    ("pow_m1", 1 / X, MIXED, "correctly_rounded"),
    ("pow_m2", X**-2, MIXED, "libm"),
    ("pow_m3", X**-3, MIXED, "libm"),
    ("sqrt", sympy.sqrt(X), POS, "correctly_rounded"),
    ("pow_m_half", 1 / sympy.sqrt(X), POS, "libm"),  # exponent -1/2 is exact
    ("pow_3_half", X**sympy.Rational(3, 2), POS, "libm"),
    ("pow_third", X**sympy.Rational(1, 3), POS, "rational_pow"),
    ("pow_two_thirds", X**sympy.Rational(2, 3), POS, "rational_pow"),
    ("pow_m_five_sevenths", X**sympy.Rational(-5, 7), POS, "rational_pow"),
    ("pow_float_integral", X**sympy.Float(3.0), MIXED, "libm"),
    ("pow_float", X**sympy.Float(0.7), POS, "libm"),  # 0.7 here is the double 0.69999..., exactly
    ("pow_symbolic", X**Y, POS, "libm"),
    ("pow_symbolic_base_number", 2**Y, MIXED, "libm"),
    # elementary functions
    ("exp", sympy.exp(X), MIXED, "libm"),
    ("log", sympy.log(X), [(0.3, 0, 0), (1.7, 0, 0), (29.0, 0, 0)], "libm"),
    ("sin", sympy.sin(X), MIXED, "libm"),
    ("cos", sympy.cos(X), MIXED, "libm"),
    ("tan", sympy.tan(X), MIXED, "libm"),
    ("sinh", sympy.sinh(X), MIXED, "libm"),
    ("cosh", sympy.cosh(X), MIXED, "libm"),
    ("tanh", sympy.tanh(X), MIXED, "libm"),
    ("atan", sympy.atan(X), MIXED, "libm"),
    ("asinh", sympy.asinh(X), MIXED, "libm"),
    # the spec grammar's sigmoid and softplus arrive expanded; points avoid log's cancellation near 1
    ("sigmoid", 1 / (1 + sympy.exp(-X)), MIXED, "composite"),
    ("softplus", sympy.log(1 + sympy.exp(X)), [(0.5, 0, 0), (1.3, 0, 0), (2.9, 0, 0)], "composite"),
    # piecewise-linear and selection operations (exact)
    ("abs", sympy.Abs(X), MIXED + [(0.0, 0, 0)], "exact"),
    ("sign", sympy.sign(X), MIXED + [(0.0, 0, 0)], "exact"),
    ("max", sympy.Max(X, Y, W), MIXED, "exact"),
    ("min", sympy.Min(X, Y, W), MIXED, "exact"),
    ("heaviside", sympy.Heaviside(X), MIXED + [(0.0, 0, 0)], "exact"),  # H(0) = 1/2 in SymPy
    ("heaviside_h0", sympy.Heaviside(X, 0), MIXED + [(0.0, 0, 0)], "exact"),
    ("piecewise", sympy.Piecewise((X, X < Y), (Y, sympy.And(X >= Y, W > 0)), (W, True)),
     MIXED + [(1.0, 1.0, 2.0), (1.0, 1.0, -2.0)], "exact"),
    # numbers and constants: the nearest double
    ("integer", sympy.Integer(3) + 0 * X, POS, "exact"),
    ("rational", sympy.Rational(1, 10) + 0 * X, POS, "correctly_rounded"),
    ("rational_big", sympy.Rational(10**30 + 1, 7) + 0 * X, POS, "correctly_rounded"),
    ("float_30_digits", sympy.Float("0.123456789012345678901234567890", 30) + 0 * X, POS,
     "correctly_rounded"),
    ("pi", sympy.pi + 0 * X, POS, "correctly_rounded"),
    ("E", sympy.E + 0 * X, POS, "correctly_rounded"),
    ("pi_times_x", sympy.pi * X, MIXED, "composite"),
]


def _reference(expr, point) -> sympy.Float:
    exact = {s: sympy.Rational(Fraction(v)) for s, v in zip((X, Y, W), point)}
    value = sympy.N(expr.subs(exact), 30)
    assert value.is_real, (expr, point, value)
    return value


def _ulps(computed: float, reference) -> float:
    ref_double = float(reference)
    diff = abs(sympy.Rational(Fraction(computed)) - sympy.Rational(reference))
    if ref_double == 0.0:
        return 0.0 if computed == 0.0 else math.inf
    return float(diff / sympy.Rational(Fraction(math.ulp(ref_double))))


def _evaluate(expr, kind, points):
    syms = [kind.sym(n) for n in "xyw"]
    (out,) = to_casadi([expr], dict(zip((X, Y, W), syms)))
    fn = casadi.Function("g", syms, [out])
    return [float(fn(*p)) for p in points]


@pytest.mark.slow
@pytest.mark.parametrize("kind", [casadi.SX, casadi.MX], ids=["SX", "MX"])
@pytest.mark.parametrize("case_id, expr, points, model", CASES, ids=[c[0] for c in CASES])
def test_table_entry_against_30_digits(kind, case_id, expr, points, model):
    tolerance = TOLERANCE_ULPS[model]
    for point, value in zip(points, _evaluate(expr, kind, points)):
        reference = _reference(expr, point)
        err = _ulps(value, reference)
        assert err <= tolerance, f"{case_id} at {point}: {value!r} vs {reference} ({err:.3f} ulps)"


# comparisons and logic, each checked against Python's comparison of the same doubles
RELATIONS = [
    (sympy.Eq(X, Y), lambda a, b: a == b),
    (sympy.Ne(X, Y), lambda a, b: a != b),
    (X < Y, lambda a, b: a < b),
    (X <= Y, lambda a, b: a <= b),
    (X > Y, lambda a, b: a > b),
    (X >= Y, lambda a, b: a >= b),
    (sympy.Or(X < 0, Y < 0), lambda a, b: a < 0 or b < 0),
    (sympy.And(X < 0, Y < 0), lambda a, b: a < 0 and b < 0),
    (sympy.Not(X < Y, evaluate=False), lambda a, b: not a < b),  # evaluated, Not(x<y) is x>=y
    (sympy.true, lambda a, b: True),
    (sympy.false, lambda a, b: False),
]


def test_relational_and_boolean_entries():
    x, y = casadi.SX.sym("x"), casadi.SX.sym("y")
    # Piecewise((1, r), (0, True)) would fold constant conditions away: translate the relations directly
    outs = to_casadi([r for r, _ in RELATIONS], {X: x, Y: y})
    fn = casadi.Function("g", [x, y], outs)
    for a, b in [(1.0, 1.0), (1.0, 2.0), (2.0, 1.0), (-1.0, 3.0), (-1.0, -3.0)]:
        values = [float(v) for v in fn(a, b)]
        assert values == [1.0 if p(a, b) else 0.0 for _, p in RELATIONS], (a, b)


def test_cases_cover_every_table_entry():
    heads = set()
    for expr in [c[1] for c in CASES] + [r for r, _ in RELATIONS]:
        heads.update(type(node) for node in sympy.preorder_traversal(expr))
    # Dummy is a Symbol subclass (same planner); Zero/One/NegativeOne are Integer singletons
    untested = set(OPERATIONS) - heads - {sympy.Dummy, sympy.core.numbers.Zero, sympy.core.numbers.NegativeOne}
    assert not untested, untested


def test_nearest_double_is_correctly_rounded():
    # independent references: Python's correctly rounded int/Fraction division and math constants
    assert nearest_double(sympy.Rational(1, 3)) == 1 / 3
    assert nearest_double(sympy.Rational(-7, 10)) == -0.7
    assert nearest_double(sympy.pi) == math.pi
    assert nearest_double(sympy.E) == math.e
    assert nearest_double(sympy.sqrt(2)) == math.sqrt(2)  # sqrt is correctly rounded in IEEE 754
    # a rational whose naive float(p)/float(q) is off by one ulp (p is not representable)
    p, q = 2**60 + 1, 3
    assert nearest_double(sympy.Rational(p, q)) == float(Fraction(p, q))
    assert nearest_double(Fraction(p, q)) == float(Fraction(p, q))


@pytest.mark.parametrize("expr, name", [
    (sympy.besselj(0, X), "besselj"),
    (sympy.gamma(X), "gamma"),
    (sympy.DiracDelta(X), "DiracDelta"),
    (sympy.Function("g")(X), "g"),
    (sympy.acos(X), "acos"),
    (sympy.I * X, "ImaginaryUnit"),
    (X + sympy.nan, "NaN"),
])
def test_unsupported_operation_names_it(expr, name):
    with pytest.raises(TranslationError, match=f"'{name}'"):
        to_casadi([expr], {X: casadi.SX.sym("x")})


def test_piecewise_without_otherwise_is_refused():
    with pytest.raises(TranslationError, match="otherwise"):
        to_casadi([sympy.Piecewise((X, X > 0))], {X: casadi.SX.sym("x")})


def test_missing_symbol_names_it():
    with pytest.raises(TranslationError, match="'theta'"):
        to_casadi([X + sympy.Symbol("theta", real=True)], {X: casadi.SX.sym("x")})
    # same name, other assumptions: named, with the hint
    with pytest.raises(TranslationError, match="real=True"):
        to_casadi([sympy.Symbol("x")], {X: casadi.SX.sym("x")})


def test_mapping_must_be_scalar_and_one_kind():
    with pytest.raises(TranslationError, match="1x1"):
        to_casadi([X], {X: casadi.SX.sym("x", 2)})
    with pytest.raises(TranslationError, match="mixes"):
        to_casadi([X + Y], {X: casadi.SX.sym("x"), Y: casadi.MX.sym("y")})
    with pytest.raises(TranslationError, match="casadi"):
        to_casadi([X], {X: 1.0})


def test_shared_subexpressions_stay_shared():
    x, y = casadi.SX.sym("x"), casadi.SX.sym("y")
    e = sympy.sin(X + Y)
    expr = e * sympy.cos(e) + sympy.exp(e)
    (translated,) = to_casadi([expr], {X: x, Y: y})
    # the tree CasADi builds when every occurrence is written out again (SX does no hash-consing)
    naive = casadi.sin(x + y) * casadi.cos(casadi.sin(x + y)) + casadi.exp(casadi.sin(x + y))
    assert casadi.n_nodes(translated) < casadi.n_nodes(naive)
    fn = casadi.Function("g", [x, y], [translated, naive])
    a, b = fn(0.3, 0.8)
    assert float(a) == float(b)


def test_sharing_across_outputs():
    x = casadi.SX.sym("x")
    e = sympy.tanh(sympy.exp(X) + 1)
    outs = to_casadi([e, 2 * e, e**2], {X: x})
    total = casadi.vertcat(*outs)
    separate = sum(casadi.n_nodes(to_casadi([o], {X: x})[0]) for o in (e, 2 * e, e**2))
    assert casadi.n_nodes(total) < separate


@pytest.mark.slow
def test_deep_tree_does_not_hit_recursion_limit():
    # SymPy itself cannot evaluate-construct or hash a tree this deep recursively: build it unevaluated,
    # hashing level by level (the hash is cached per node)
    expr = X
    for _ in range(3000):
        expr = sympy.sin(expr, evaluate=False)
        hash(expr)
    x = casadi.SX.sym("x")
    (out,) = to_casadi([expr], {X: x})
    # reference: the same nesting evaluated with Python floats (the same libm sin, step by step)
    value = 0.5
    for _ in range(3000):
        value = math.sin(value)
    assert float(casadi.Function("g", [x], [out])(0.5)) == value


def test_constant_expression_gets_the_mapping_kind():
    (out,) = to_casadi([sympy.Integer(2)], {X: casadi.MX.sym("x")})
    assert isinstance(out, casadi.MX)
    (out,) = to_casadi([sympy.Integer(2)], {})
    assert isinstance(out, casadi.SX) and float(casadi.evalf(out)) == 2.0


@pytest.mark.parametrize("text", ["z*exp(800)*1e-300*1e-48", "z*1e-300*1e-300", "z*1e300*1e300"])
def test_constants_outside_float64_range_are_refused(text):
    """Regression: exp(800)*1e-300*1e-48 ~ 0.58 exactly, but as float64 factors it became inf*0 or 0: the
    float64 routes returned loss 1.0 where the oracle gave 0.58.  A constant that rounds to 0 or inf is refused."""
    from symode.expr import parse_expression
    z = sympy.Symbol("z", real=True)
    e = parse_expression(text, {"z": z}, "rhs[0]")
    with pytest.raises(TranslationError, match="outside the float64 range"):
        to_casadi([e], {z: casadi.SX.sym("z")})
