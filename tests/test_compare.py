"""Tests of symode.check.compare and symode.check.tolerances.

Every expected value comes from an independent source named in a comment: a closed form (the iteration of explicit
Euler / RK4 on dz/dt = -z, exact binary fractions of floats), numpy's own documented behaviour (for contrast), or
a crafted input whose verdict follows from the metric's definition by hand arithmetic.
"""
from __future__ import annotations

import math
from fractions import Fraction

import mpmath
import numpy as np
import pytest
import sympy
from hypothesis import given, settings, strategies as st

from symode.check.compare import (
    ComparisonError, check_differentiable, compare, kink_crossings, kinks, model_removed_singularities,
    removed_singularities,
)
from symode.check.tolerances import (
    COMPARISON_TOLERANCES, Tolerance, ToleranceError, fixed_step_tolerance, high_precision_tolerance, solver_tolerance,
)
from symode.errors import SpecError, SymodeError
from symode.model import Model
from symode.result import GradResult
from symode.spec import load_spec

#: Tolerances used by these tests, with the reason for each value.
TOL = {
    # float64 values that differ in the last few bits: the float64 route table entry
    "f64": COMPARISON_TOLERANCES["float64-reordered"],
    # Richardson estimate vs the true error of Euler/RK4 on dz/dt = -z: the leading-order error model is exact
    # up to O(h) relative corrections (h = 1/100), so the estimate is within a factor 2 of the truth
    "richardson_factor": 2.0,
}

z, a, b = (sympy.Symbol(n, real=True) for n in ("z", "a", "b"))


def grad(method, params: dict, t1=0.2, **kw) -> GradResult:
    return GradResult("m", method, 1.0, dict(params), [0.5], 0.1, t1, **kw)


# ---------------------------------------------------------------------------------------------------------------
# NaN, Inf, shapes


def test_nan_never_passes_unlike_numpy_default():
    # numpy's documented default equal_nan=True: NaN vs NaN passes assert_allclose (this line must not raise)
    np.testing.assert_allclose([1.0, math.nan], [1.0, math.nan])
    c = compare([1.0, math.nan], [1.0, math.nan], rtol=1e-13, atol=1e-13)
    assert not c.ok
    assert c.worst.name == "[1]" and "nan" in c.worst.note
    assert not compare([math.nan], [2.0], rtol=1.0, atol=1e300).ok  # no tolerance lets NaN through
    with pytest.raises(ComparisonError, match="nan"):
        c.raise_if_failed()


@pytest.mark.parametrize("cand,ref", [(math.inf, 1.0), (-math.inf, 1.0), (math.inf, math.inf), (1.0, math.inf)])
def test_inf_never_passes(cand, ref):
    c = compare([cand], [ref], rtol=1.0, atol=1e300)
    assert not c.ok
    if not math.isfinite(ref):
        assert "reference is" in c.worst.note and "not finite" in c.worst.note


def test_shape_mismatch_names_both_shapes():
    c = compare([1.0, 2.0], [1.0, 2.0, 3.0], rtol=1e-13, atol=0)
    assert not c.ok and "(2,)" in c.failure and "(3,)" in c.failure
    assert not compare(np.ones(3), np.ones((1, 3)), rtol=1, atol=1).ok  # numpy would broadcast these
    assert not compare(1.0, [1.0], rtol=1, atol=1).ok  # () vs (1,)
    with pytest.raises(ComparisonError, match=r"\(2,\).*\(3,\)"):
        compare([1.0, 2.0], [1.0, 2.0, 3.0], rtol=1e-13, atol=0).raise_if_failed()


def test_gradresults_with_different_parameter_names_fail_naming_them():
    c = compare(grad("x", {"a": 1.0, "b": 2.0}), grad("y", {"a": 1.0, "c": 2.0}), rtol=1e-13, atol=0)
    assert not c.ok and "[a, b]" in c.failure and "[a, c]" in c.failure
    # grad_t1 present on one side only (an observation at t1 makes it undefined): a structural failure too
    c = compare(grad("x", {"a": 1.0}), grad("y", {"a": 1.0}, t1=None), rtol=1e-13, atol=0)
    assert not c.ok and "grad_t1" in c.failure
    assert not compare(grad("x", {"a": 1.0}), [1.0, 1.0, 0.5, 0.1, 0.2], rtol=1, atol=1).ok


def test_dicts_align_by_name_and_fail_on_different_keys():
    assert compare({"x": 1.0, "y": [1, 2]}, {"y": [1, 2], "x": 1.0}, rtol=0, atol=0).ok
    c = compare({"x": 1.0}, {"w": 1.0}, rtol=1, atol=1)
    assert not c.ok and "[x]" in c.failure and "[w]" in c.failure


# ---------------------------------------------------------------------------------------------------------------
# The metric


def test_metric_is_symmetric_where_numpy_isclose_is_not():
    # |0.9 - 1.0| = 0.1; rtol 0.105 times max(|c|, |r|) = 0.105 allows it both ways.  numpy's isclose scales by
    # |reference| only (documented): 0.105 * 1.0 passes, 0.105 * 0.9 = 0.0945 fails when the roles swap.
    assert np.isclose(0.9, 1.0, rtol=0.105, atol=0) != np.isclose(1.0, 0.9, rtol=0.105, atol=0)
    assert compare(0.9, 1.0, rtol=0.105, atol=0).ok and compare(1.0, 0.9, rtol=0.105, atol=0).ok
    # 0.1 > 0.09 * 1.0: fails both ways
    assert not compare(0.9, 1.0, rtol=0.09, atol=0).ok and not compare(1.0, 0.9, rtol=0.09, atol=0).ok


finite_or_not = st.floats(allow_nan=True, allow_infinity=True, width=64)


@settings(max_examples=200, deadline=None)
@given(finite_or_not, finite_or_not, st.sampled_from([0.0, 1e-15, 1e-13, 1e-3]), st.sampled_from([0.0, 1e-300, 1e-9]))
def test_swapping_candidate_and_reference_gives_the_same_verdict(x, y, rtol, atol):
    v1 = compare([x], [y], rtol=rtol, atol=atol).ok
    assert v1 == compare([y], [x], rtol=rtol, atol=atol).ok
    if not (math.isfinite(x) and math.isfinite(y)):
        assert not v1


def test_atol_near_zero():
    # reference 0: rtol * max(|c|, |r|) = rtol * 1e-20 ~ 0, so only atol can admit the candidate
    assert compare([1e-20], [0.0], rtol=1e-13, atol=1e-15).ok
    assert not compare([1e-20], [0.0], rtol=1e-13, atol=0).ok
    assert compare([0.0], [0.0], rtol=0, atol=0).ok  # exact equality needs no allowance


def test_worst_component_is_the_largest_fraction_of_its_allowance():
    # [0]: error 1e-4 of allowed 1e-9 * 1e6 = 1e-3 (ratio 0.1); [1]: error 1e-6 of allowed 1e-9 (ratio ~1000):
    # the worst is [1] although its absolute error is 100x smaller
    c = compare([1e6 + 1e-4, 1.0 + 1e-6, 3.0], [1e6, 1.0, 3.0], rtol=1e-9, atol=0)
    assert not c.ok and c.worst.name == "[1]"
    assert [r.ok for r in c.rows] == [True, False, True]
    md = c.to_markdown()
    assert "| [1] |" in md and "**NO**" in md and "worst [1]" in md


def test_worst_named_component_of_gradresults():
    c = compare(grad("x", {"a": 1.0, "b": 2.0}), grad("y", {"a": 1.0, "b": 2.0 + 1e-12}), tolerance=TOL["f64"])
    assert not c.ok and c.worst.name == "grad[b]"
    assert "float64-reordered" in c.to_markdown()  # the report names the table entry used


def test_per_component_atol_mapping():
    c = compare({"x": 1e-10, "y": 1e-10}, {"x": 0.0, "y": 0.0}, rtol=0, atol={"x": 1e-9, "y": 1e-11})
    assert [r.ok for r in c.rows] == [True, False]


def test_float32_candidate_gets_the_float32_floor_and_the_note():
    ref = [1 / 3, 2 / 3]
    cand = np.array(ref, dtype=np.float32)  # float32 rounding: relative error <= 2**-24 = 6e-8 per value
    c = compare(cand, ref, rtol=1e-13, atol=0)
    assert c.ok and c.rtol == COMPARISON_TOLERANCES["float32"].rtol
    assert any("float32 candidate" in n for n in c.notes) and "float32 candidate" in c.to_markdown()
    strict = compare(cand, ref, rtol=1e-13, atol=0, allow_float32_strict=True)
    assert not strict.ok and any("allow_float32_strict" in n for n in strict.notes)
    # a float32 scalar is a float32 candidate too; a looser caller tolerance is kept
    c = compare(np.float32(0.5), 0.75, rtol=0.5, atol=0)
    assert c.ok and c.rtol == 0.5 and "float32 candidate" in c.notes[0]
    # a float32 error far above the floor still fails: 1.001 vs 1 is 1e-3 relative
    assert not compare(np.float32(1.001), 1.0, rtol=1e-13, atol=0).ok


def test_float16_is_refused_not_downcast_silently():
    with pytest.raises(ComparisonError, match="float16"):
        compare(np.ones(2, dtype=np.float16), [1.0, 1.0], rtol=1e-3, atol=0)


def test_mpf_compared_at_the_reference_precision_not_through_float():
    with mpmath.workdps(50):
        ref = mpmath.mpf(1) / 3
        cand = ref * (1 + mpmath.mpf(10) ** -40)  # differs at the 40th significant digit
    # float(cand) == float(ref): a float round-trip would pass the 1e-45 test as well
    assert float(cand) == float(ref)
    assert compare(cand, ref, rtol=1e-35, atol=0).ok
    assert not compare(cand, ref, rtol=1e-45, atol=0).ok
    assert compare([cand], [ref], rtol=1e-35, atol=0).ok and not compare([cand], [ref], rtol=1e-45, atol=0).ok


def test_float_enters_exactly():
    # float(1/3) = 6004799503160661 / 2**54 and 3 * 6004799503160661 = 2**54 - 1, so |1/3 - float(1/3)| is exactly
    # 1 / (3 * 2**54) (hand arithmetic on the binary fraction)
    # a float round-trip of the Fraction would give error 0
    c = compare(1 / 3, Fraction(1, 3), rtol=0, atol=1e-30)
    expected = Fraction(1, 3 * 2 ** 54)
    assert Fraction(1 / 3) - Fraction(1, 3) == -expected  # the hand arithmetic, checked with exact rationals
    assert abs(Fraction(str(c.rows[0].error)) - expected) <= expected * Fraction(1, 10 ** 12)
    assert not c.ok


def test_invalid_inputs_raise():
    with pytest.raises(ComparisonError, match="rtol"):
        compare([1.0], [1.0], rtol=-1, atol=0)
    with pytest.raises(ComparisonError, match="give both"):
        compare([1.0], [1.0], rtol=1e-13)
    with pytest.raises(ComparisonError, match="str"):
        compare(["1.0"], [1.0], rtol=1e-13, atol=0)
    with pytest.raises(ComparisonError, match="complex"):
        compare([1j], [1.0], rtol=1e-13, atol=0)
    assert issubclass(ComparisonError, SymodeError)


# ---------------------------------------------------------------------------------------------------------------
# Tolerances


def test_table_entries_have_reasons_and_valid_values():
    for key, tol in COMPARISON_TOLERANCES.items():
        assert tol.purpose == key and len(tol.reason) > 40
        assert 0 < tol.rtol < 1e-4 and 0 <= tol.atol < 1e-4
        assert key in tol.describe()
    # the CVODES entry is the adaptive-solver rule at the stated solver tolerances rtol = atol = 1e-12
    s = solver_tolerance(1e-12, 1e-12)
    assert math.isclose(s.rtol, COMPARISON_TOLERANCES["cvodes-vs-oracle"].rtol) and "1e-12" in s.describe()
    with pytest.raises(ToleranceError):
        solver_tolerance(0, 1e-12)


def test_fixed_step_a_priori():
    # h = 1/100, order 4: 10 * 1 * 1e-8 = 1e-7 (hand arithmetic); the reason states h, the constant and safety
    t = fixed_step_tolerance(4, 100, 1.0)
    assert math.isclose(t.rtol, 1e-7) and math.isclose(t.atol, 1e-7)
    assert "h = 1/100" in t.reason and "C 1" in t.reason
    # tiny predicted error: the float64 floor
    assert fixed_step_tolerance(4, 10_000, 1.0).rtol == COMPARISON_TOLERANCES["float64-floor"].rtol
    with pytest.raises(ToleranceError):
        fixed_step_tolerance(0, 100, 1.0)


def euler(n):  # explicit Euler on dz/dt = -z, z(0) = 1, t in [0, 1]: z_n = (1 - h)^n exactly
    return (1 - 1 / n) ** n


def rk4(n):  # classic RK4 on dz/dt = -z: the amplification factor is the degree-4 Taylor polynomial of e^-h
    h = 1 / n
    return (1 - h + h ** 2 / 2 - h ** 3 / 6 + h ** 4 / 24) ** n


@pytest.mark.parametrize("route,order", [(euler, 1), (rk4, 4)])
def test_fixed_step_richardson_bounds_the_true_error(route, order):
    exact = math.exp(-1)
    n = 50
    true_err = abs(route(n) - exact)
    t = fixed_step_tolerance(order, n, 1.0, safety=1.0, richardson=((n, [route(n)]), (2 * n, [route(2 * n)])))
    est = t.atol["[0]"]
    assert true_err / TOL["richardson_factor"] <= est <= true_err * TOL["richardson_factor"]
    # with the default safety 10 the comparison against the closed form passes; with the estimate / 100 it fails
    t10 = fixed_step_tolerance(order, n, 1.0, richardson=((n, [route(n)]), (2 * n, [route(2 * n)])))
    assert compare([route(n)], [exact], tolerance=t10).ok
    assert not compare([route(n)], [exact], rtol=0, atol=est / 100).ok
    with pytest.raises(ToleranceError, match="different step counts"):
        fixed_step_tolerance(order, n, 1.0, richardson=((n, [1.0]), (n, [1.0])))


def test_scaled_tolerance_and_unknown_purpose():
    t = COMPARISON_TOLERANCES["float64-reordered"].scaled(1e3)  # gradient terms of size 1000: atol 1e-13 * 1e3
    assert t.rtol == 1e-13 and math.isclose(t.atol, 1e-10) and "scaled by 1000" in t.reason
    from symode.check.tolerances import tolerance
    assert tolerance("float32") is COMPARISON_TOLERANCES["float32"]
    with pytest.raises(ToleranceError, match="float64-reordered"):
        tolerance("float64")


def test_high_precision_tolerance():
    t = high_precision_tolerance(30)
    assert t.rtol == 1e-27
    assert high_precision_tolerance(30, error_bound=1e-26).atol == 2e-26
    assert isinstance(t, Tolerance)


# ---------------------------------------------------------------------------------------------------------------
# Non-differentiable points


def kink_model(a_value, b_value=1, z0=None):
    return Model(name="k", states=[z], params=[a, b], rhs=[-sympy.Abs(a) * z + sympy.Max(z, b)],
                 z0=[z0 if z0 is not None else sympy.Abs(b - 1)], t0=0, t1=1,
                 param_values={a: a_value, b: b_value}, terminal=sympy.Abs(z - 2))


def test_check_differentiable_flags_abs_of_a_zero_parameter():
    found = check_differentiable(kink_model(0, b_value=3))
    # abs(a) at a = 0 (d|a|/da has no value there); abs(b - 1) at b = 3 is smooth
    assert len(found) == 1 and "Abs(a)" in found[0] and "a = 0" in found[0]
    assert check_differentiable(kink_model(sympy.Rational(1, 2), b_value=3)) == []
    # b = 1: z0 = |b - 1| sits on its kink, and at t0 the state z0 = 0 ... Max(z, b) = Max(0, 1) is smooth
    found = check_differentiable(kink_model(sympy.Rational(1, 2), b_value=1))
    assert len(found) == 1 and found[0].startswith("z0[0]")
    # nominal values overridden by theta (by name); a 1e-12 switch is close, not on, the kink
    close = check_differentiable(kink_model(1), {"a": sympy.Rational(1, 10 ** 12), "b": 3})
    assert len(close) == 1 and "1e-12 from its kink" in close[0]


def test_check_differentiable_state_kink_at_the_initial_point():
    # Max(z, b) with z0 = b: the rhs switch b - z is 0 at t0
    m = kink_model(1, b_value=2, z0=b)
    found = check_differentiable(m)
    assert len(found) == 1 and "initial point" in found[0] and "Max(b, z)" in found[0]
    assert {k.depends for k in kinks(m)} == {"params", "state"}


def test_kink_crossings_along_a_trajectory():
    m = kink_model(1, b_value=1)
    # z from 0.5 to 1.5 crosses b = 1 between the first two samples; z(t1) = 2 sits on |z - 2|'s kink
    found = kink_crossings(m, [0, sympy.Rational(1, 2), 1], [[0.5], [1.5], [2.0]])
    assert any("crosses" in f and "Max(b, z)" in f for f in found)
    assert any("loss.terminal" in f and "touches" in f for f in found)
    assert kink_crossings(m, [0, 1], [[1.5], [1.75]]) == []


# ---------------------------------------------------------------------------------------------------------------
# Singularities simplified away at parse time

SING_SPEC = """
name = "sing"
states = ["z"]
rhs = ["-z + 0*log(z)"]
z0 = ["0"]
t0 = "0"
t1 = "1"
[params]
k = "1"
[loss]
terminal = "(z - k)**2"
"""


def test_zero_times_log_at_zero_is_flagged():
    # 0*log(z) is 0 for SymPy (its automatic evaluation drops the log); log(0) is -inf and 0 * -inf is NaN in
    # IEEE arithmetic (a literal evaluation)
    found = removed_singularities("0*log(z)", {"z": 0})
    assert len(found) == 1 and "simplified away" in found[0] and "log of 0" in found[0]
    assert removed_singularities("0*log(z)", {"z": 1}) == []
    assert "candidate may disagree" in removed_singularities("0*log(z)", {"z": 0}, candidate=math.nan)[0]
    assert removed_singularities("0*log(z)", {"z": 0}, candidate=0.0) == []
    # the model built from the spec: rhs[0] at the initial point z0 = 0
    found = model_removed_singularities(load_spec(SING_SPEC))
    assert len(found) == 1 and found[0].startswith("rhs[0]") and "z = 0" in found[0]


def test_other_removed_singularities():
    assert "division by zero" in removed_singularities("(x - 1)/(x - 1) * y", {"x": 1, "y": 3})[0]
    assert "sqrt of a negative" in removed_singularities("sqrt(x)**2", {"x": -1})[0]
    kept = removed_singularities("z/z + log(z)", {"z": 0})  # log(z) survives simplification
    assert len(kept) == 1 and "not finite there either" in kept[0]


def test_removed_singularities_needs_text_and_never_evaluates_it():
    with pytest.raises(SpecError, match="text"):
        removed_singularities(sympy.log(z) * 0, {"z": 0})
    with pytest.raises(SpecError):
        removed_singularities("__import__('os').system('true')", {"z": 0})
    python_model = kink_model(1)
    with pytest.raises(SpecError, match="no spec text"):
        model_removed_singularities(python_model)
