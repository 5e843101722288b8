"""Wrong TRUE verdicts from ``where``, declared assumptions and sums (red-team findings #1, #2, #3, #14, #15).

Five classes, each with false claims in several forms (the reason each is false computed by hand in its comment),
true claims in odd forms that must stay TRUE, and a trimmed copy of the red-team document:

1. a ``count:``/``index:`` symbol's assumptions (positive integer / integer) acted before a ``where`` that
   breaks them (``abs(N) = N where N = y - 5`` was TRUE);
2. a ``positive:`` symbol's assumption reached a bound integration variable of the same name
   (``integral(abs(T), T, -1, 1) = 0`` was TRUE);
3. ``where a = s`` captured the bound variable of an integral/sum over s (``integral(a, s, 0, 1) = 1/2
   where a = s`` was TRUE);
4. a ``where`` that made a side non-finite (``1/x = 2/x where x = 0``) compared SymPy's ``zoo`` with itself;
5. a sum over an empty range (hi < lo) followed SymPy's Karr convention (-Σ_{hi+1}^{lo-1}) silently.

No tolerances here: every assertion is on a verdict (ball arithmetic decides them exactly or not at all).
"""
from __future__ import annotations

import pytest

from symode.verify import parse_document, verify_document

DECL = """```symbols
symbols: x, y, a, s
positive: T
index: i, j
count: N, M
indexed: v
E := integral(a, s, 0, 1)
F := integral(a*s, s, 0, 1) where a = s
```
"""


def _verdicts(decl: str, claims: str):
    return verify_document(parse_document(decl + f"```claim\n{claims}\n```\n", "where.md"))


def _verdict(claim: str):
    r, = _verdicts(DECL, claim)
    return r


def _document_matches_expect(text: str) -> None:
    results = verify_document(parse_document(text, "redteam.md"))
    assert results
    for r in results:
        assert r.expect is not None and r.status == r.expect, (r.line, r.text, r.status, r.detail)


# ---------------------------------------------------------------------------------------------------------
# 1. count:/index: assumptions act only after the 'where' substitutions


@pytest.mark.parametrize("claim, problem", [
    ("abs(N) = N where N = -3", "not positive"),          # a count is a positive integer
    ("N = N where N = 0", "not positive"),
    ("N = N where N = 1/2", "not an integer"),
    ("abs(N) = N where N = -M", "not positive"),           # -M < 0 for the count M
    ("i = i where i = 3/2", "not an integer"),              # an index is an integer (of any sign)
    ("(-1)**(2*i) = 1 where i = M + 1/2", "not an integer"),
    ("abs(T) = T where T = -N", "negative"),               # a positive symbol given -N < 0 (N a count)
])
def test_a_where_value_outside_a_count_or_index_domain_is_an_error_naming_the_declaration(claim, problem):
    r = _verdict(claim)
    assert r.status == "ERROR", (r.status, r.detail)
    assert problem in r.detail and "line" in r.detail, r.detail


@pytest.mark.parametrize("claim", [
    # y = 0: |0 - 5| = 5, RHS -5 (by hand)
    "abs(N) = N where N = y - 5",
    # y = -1: sqrt(1) = 1, RHS -1
    "sqrt(N**2) = N where N = y",
    # x = 1/4: (-1)**(1/2) = i (principal branch), not 1
    "(-1)**(2*i) = 1 where i = x",
    # x = 0: |0 - 1| = 1, RHS -1
    "abs(N - 1) = N - 1 where N = x",
    # x = 1/2: (-1)**1 = -1 != 1
    "(-1)**(2*N) = 1 where N = x",
    # a count used as an integration variable keeps no assumption: integral_{-1}^{1} |N| dN = 1 (by hand), not 0
    "integral(abs(N), N, -1, 1) = 0",
    # the bound index stays an integer (each term 1) but the free one is x: at x = 1/4, (-1)**(1/2) = i, the
    # RHS M + 1 is real
    "sum((-1)**(2*i), i, 1, M) + (-1)**(2*i) = M + 1 where i = x",
])
def test_assumptions_never_simplify_before_a_substitution_that_breaks_them(claim):
    r = _verdict(claim)
    assert r.status == "FALSE", (r.status, r.detail)


@pytest.mark.parametrize("claim", [
    "abs(N) = N",                                   # N >= 1
    "abs(N) = N where N = M + 1",                   # M + 1 >= 2: M keeps its assumption after the 'where'
    "abs(N) = N where N = 3",
    "abs(i) = -i where i = -3",                     # an index may be negative: |-3| = 3 = -(-3)
    "(-1)**(2*i) = 1",                              # i an integer
    "(-1)**(2*i) = 1 where i = N - 5",              # an integer expression keeps it an integer
    "sqrt(N**2) = N where N = y**2 + 1",            # y**2 + 1 > 0 for real y
    "sum((-1)**(2*j), j, 1, N) = N",                # the bound index is an integer: every term is 1
    "integral(abs(N), N, -1, 1) = 1",               # by hand: 1/2 + 1/2
])
def test_true_claims_with_assumptions_stay_true(claim):
    r = _verdict(claim)
    assert r.status == "TRUE", (r.status, r.detail)


# ---------------------------------------------------------------------------------------------------------
# 2. a bound integration variable keeps no assumption of the free symbol of its name


@pytest.mark.parametrize("claim", [
    # integral_{-1}^{1} |T| dT = 1 (by hand), not 0
    "integral(abs(T), T, -1, 1) = 0",
    # integral_{-2}^{1} |T| a dT = (2 + 1/2) a = 5a/2 (by hand), not -3a/2
    "integral(sqrt(T**2)*a, T, -2, 1) = -3*a/2",
    # integral_{-3}^{0} |T| dT = 9/2; with T positive inside it would be -9/2 (by hand)
    "integral(abs(T), T, -3, 0) = -9/2",
    # the free T is positive, the bound one is not: LHS = 1 + T (by hand), RHS T - 1
    "integral(abs(T), T, -1, 1) + abs(T) = T - 1",
])
def test_a_positive_symbol_as_integration_variable_over_negative_values_is_false(claim):
    r = _verdict(claim)
    assert r.status == "FALSE", (r.status, r.detail)


@pytest.mark.parametrize("claim", [
    "integral(abs(T), T, -1, 1) = 1",
    "integral(sqrt(T**2)*a, T, -2, 1) = 5*a/2",
    # |T| = T for the free, positive T; the integral is 1 (by hand)
    "integral(abs(T), T, -1, 1) + abs(T) = 1 + T",
    # s <= 0 < T on the range: integral_{-1}^{0} (T - s) ds = T + 1/2 (by hand)
    "integral(abs(s - T), s, -1, 0) = T + 1/2",
])
def test_true_integrals_over_a_positive_symbols_name_stay_true(claim):
    r = _verdict(claim)
    assert r.status == "TRUE", (r.status, r.detail)


# ---------------------------------------------------------------------------------------------------------
# 3. 'where' never captures a bound variable


@pytest.mark.parametrize("claim", [
    # integral_0^1 a ds = a -> s; at s = 1: 1 != 1/2 (by hand)
    "integral(a, s, 0, 1) = 1/2 where a = s",
    # sum_{i=1}^{N} a = N*a -> N*i; at N = 1, i = 5: 5 != 1
    "sum(a, i, 1, N) = N*(N + 1)/2 where a = i",
    # the same integral hidden in the definition E
    "E = 1/2 where a = s",
    # integral_0^2 a*x dx = 2a -> 2x; at x = 1: 2 != 8/3
    "integral(a*x, x, 0, 2) = 8/3 where a = x",
    # F = integral_0^1 a*s' ds' with a = s: s/2 (the definition's own 'where'); at s = 1: 1/2 != 1/3
    "F = 1/3",
    # an integral inside a sum: sum_{i=1}^{2} integral_0^1 a*i ds' = 3a -> 3s; at s = 1: 3 != 3/2 (the captured
    # value, 3 * integral_0^1 s ds)
    "sum(integral(a*i, s, 0, 1), i, 1, 2) = 3/2 where a = s",
])
def test_a_where_value_naming_a_bound_variable_does_not_capture_it(claim):
    r = _verdict(claim)
    assert r.status == "FALSE", (r.status, r.detail)


@pytest.mark.parametrize("claim", [
    "integral(a, s, 0, 1) = s where a = s",
    "sum(a, i, 1, N) = N*i where a = i",
    "E = s where a = s",
    "integral(a*x, x, 0, 2) = 2*x where a = x",
    "F = s/2",
    # simultaneous: integral_0^1 a*s ds = a/2 and the RHS a/2 both become s/2
    "integral(a*s, s, 0, 1) = a/2 where a = s, s = a",
    # the bound s is not the 'where' symbol: integral_0^1 s ds = 1/2 whatever the free s
    "integral(s, s, 0, 1) = 1/2 where s = 2",
    # a value without the bound variable substitutes as before: integral_0^1 x ds = x
    "integral(a, s, 0, 1) = x where a = x",
])
def test_true_claims_with_where_into_integrals_and_sums_stay_true(claim):
    r = _verdict(claim)
    assert r.status == "TRUE", (r.status, r.detail)


# ---------------------------------------------------------------------------------------------------------
# 4. a 'where' that makes a side non-finite is an ERROR naming the line


@pytest.mark.parametrize("claim", [
    "1/x = 2/x where x = 0",                  # 1/0: undefined (1/x and 2/x differ by 1/x)
    "log(x) = log(x) + 1 where x = 0",        # log 0: undefined (the sides differ by 1 wherever defined)
    "y/x = 2*y/x where x = 0",
    "x*log(x) = 0 where x = 0",               # 0*log(0): SymPy's nan
    "1/(x - y) = 2/(x - y) where x = y",
    "integral(s, s, 0, 1/x) = 1 where x = 0",   # an infinite limit (SymPy's doit crashed on it before)
])
def test_a_where_that_makes_a_side_infinite_is_an_error(claim):
    r = _verdict(claim)
    assert r.status == "ERROR", (r.status, r.detail)
    assert "not finite" in r.detail and "where.md:" in r.detail, r.detail


@pytest.mark.parametrize("claim", [
    # the assumptions themselves make a side 1/0: N - |N| = 0 for a count, T - |T| = 0 for T > 0 (SymPy's zoo,
    # equal to any other zoo, was "the same expression" for the positive T)
    "1/(N - abs(N)) = 2/(N - abs(N))",
    "1/(T - abs(T)) = 2/(T - abs(T))",
    "log(T - abs(T)) = log(T - abs(T)) + 1",
])
def test_a_side_made_infinite_by_the_declared_assumptions_is_an_error(claim):
    r = _verdict(claim)
    assert r.status == "ERROR", (r.status, r.detail)
    assert "not finite" in r.detail, r.detail


def test_check_never_calls_two_infinite_sides_the_same():
    import sympy

    from symode.verify import check
    T = sympy.Symbol("T", real=True)
    v = check(1 / (T - sympy.Abs(T)), 2 / (T - sympy.Abs(T)), frozenset({T}))
    assert v.status == "UNDECIDED", v


def test_a_where_putting_the_time_symbol_into_an_integral_along_the_solution_is_an_error():
    # without capture, c = t is the free time outside the integral; the solution's evaluation would read it as
    # the integration time again, so the claim is refused rather than judged (base: FALSE for a true claim)
    decl = ("```symbols\ntime: t\nstates: u\nparams: k\nsymbols: c\ninterval: t0, t1\node: du/dt = -k*u\n"
            "init: u = 1\nterminal: u**2\nvalues: k = 1/2, t0 = 0, t1 = 1\n```\n")
    r, = _verdicts(decl, "integral(lambda_u*u*c, t, t0, t1) = c*integral(lambda_u*u, t, t0, t1) where c = t")
    assert r.status == "ERROR" and "time symbol t" in r.detail, (r.status, r.detail)


def test_a_definition_whose_where_makes_it_infinite_is_an_error_on_its_line():
    results = _verdicts("```symbols\nsymbols: x, y\nG := 1/(x - y) where x = y\n```\n", "x = x")
    errors = [r for r in results if r.status == "ERROR"]
    assert errors and "not finite" in errors[0].detail and errors[0].line == 3, [(r.line, r.detail) for r in results]


@pytest.mark.parametrize("claim", [
    "1/x = 1/2 where x = 2",
    "y/x = 1 where x = y",                    # y/y = 1: SymPy cancels it, no infinity arises
    "log(x) = 0 where x = 1",
    "1/(N + abs(N)) = 1/(2*N)",               # N >= 1: finite, 1/(2N) on both sides
])
def test_where_values_inside_the_domain_stay_true(claim):
    r = _verdict(claim)
    assert r.status == "TRUE", (r.status, r.detail)


# ---------------------------------------------------------------------------------------------------------
# 5. an empty range sums to 0 (hi < lo), and SymPy's Karr closed forms are confirmed against it


@pytest.mark.parametrize("claim", [
    # N = 1: the range 3..1 is empty, 0 != N - 2 = -1 (SymPy's closed form N - 2 is Karr's value)
    "sum(1, i, 3, N) = N - 2",
    # N = 1: 0 != v[1] - v[1] - v[2] = -v[2]
    "sum(v[i], i, 3, N) = sum(v[i], i, 1, N) - v[1] - v[2]",
    # N = 1: 0 != 1 - 10 = -9 (Karr: -(2 + 3 + 4) = -9 too)
    "sum(i, i, 5, N) = N*(N + 1)/2 - 10",
    # the range N..200 is empty from N = 201 on, beyond the random counts (1 to 12) and the extreme ones
    # (25, 100): at N = 202 the sum is 0, RHS -1 (Karr's -sum_{201}^{201} 1 = -1 equals the RHS at every N);
    # only the counts beside the end of the range (hi - lo + 1 = 0 at N = 201) show it
    "sum(1, i, N, 200) = 201 - N",
    # constant ranges: 3..1 is empty
    "sum(1, i, 3, 1) = -1",
    # M = 1: the range 1..-1 is empty, 0 != M - 2 = -1 (Karr: -sum_{0}^{0} 1 = -1, SymPy's proof)
    "sum(1, i, 1, M - 2) = M - 2",
])
def test_sums_over_empty_ranges_are_zero_under_the_usual_convention(claim):
    r = _verdict(claim)
    assert r.status == "FALSE", (r.status, r.detail)


@pytest.mark.parametrize("claim", [
    "sum(1, i, 3, N) = (N - 2 + abs(N - 2))/2",          # max(N - 2, 0)
    "sum(1, i, N, 200) = (201 - N + abs(201 - N))/2",    # max(201 - N, 0)
    "sum(1, i, 3, 1) = 0",
    "sum(v[i], i, 1, 0) = 0",                            # hi = lo - 1: empty in every convention
    "sum(v[i], i, 1, N) = sum(v[i], i, 1, N + 1) - v[N + 1]",
    "sum(1, i, 1, N) = N",                               # symbolic, confirmed at counts (never empty here)
    "sum(i, i, 1, N) = N*(N + 1)/2",
])
def test_true_sums_stay_true(claim):
    r = _verdict(claim)
    assert r.status == "TRUE", (r.status, r.detail)


# ---------------------------------------------------------------------------------------------------------
# The red-team documents, trimmed: every verdict matches its `expect:`.  count-assumption-where.md expected
# FALSE for `abs(N) = N where N = -3`; a count is a positive integer, so that 'where' contradicts the
# declaration and is an ERROR (as for 'positive:'), in its own block here.

REDTEAM = {
    "count-assumption-where": """```symbols
symbols: x, y
count: N
index: i
```

```claim
expect: ERROR
abs(N) = N where N = -3
```

```claim
expect: FALSE
abs(N) = N where N = y - 5
sqrt(N**2) = N where N = y
(-1)**(2*i) = 1 where i = x
```
""",
    "positive-integration-variable": """```symbols
positive: T
symbols: a
```

```claim
expect: FALSE
integral(abs(T), T, -1, 1) = 0
integral(sqrt(T**2)*a, T, -2, 1) = -3*a/2
```

```claim
expect: TRUE
integral(abs(T), T, -1, 1) = 1
```
""",
    "where-captures-bound-variable": """```symbols
symbols: a, s, x
index: i
count: N
E := integral(a, s, 0, 1)
```

```claim
expect: FALSE
integral(a, s, 0, 1) = 1/2 where a = s
sum(a, i, 1, N) = N*(N + 1)/2 where a = i
E = 1/2 where a = s
integral(a*x, x, 0, 2) = 8/3 where a = x
```
""",
    "where-makes-infinity": """```symbols
symbols: x, y
```

```claim
expect: ERROR
1/x = 2/x where x = 0
log(x) = log(x) + 1 where x = 0
y/x = 2*y/x where x = 0
```
""",
    "sum-empty-range-karr": """```symbols
count: N
index: i
indexed: v
```

```claim
expect: FALSE
sum(1, i, 3, N) = N - 2
sum(v[i], i, 3, N) = sum(v[i], i, 1, N) - v[1] - v[2]
```

```claim
expect: TRUE
sum(1, i, 3, N) = (N - 2 + abs(N - 2))/2
```
""",
}


@pytest.mark.parametrize("name", sorted(REDTEAM))
def test_redteam_documents_verify_as_expected(name):
    _document_matches_expect(REDTEAM[name])


def test_only_sums_that_may_be_empty_by_more_than_one_need_numeric_confirmation():
    # Karr and the usual convention differ only where hi < lo - 1 (by hand: sum_{3}^{1} is -1 vs 0, sum_{1}^{0}
    # is 0 in both); a proof over 1..N (N >= 1) or 1..N-1 needs no confirmation, over 3..N or N..200 it does
    import sympy

    from symode.verify.symbolic import fallible
    N = sympy.Symbol("N", integer=True, positive=True)
    i = sympy.Symbol("i", integer=True)
    assert not fallible(sympy.Sum(1, (i, 1, N)), sympy.Sum(i, (i, 1, N - 1)))
    assert fallible(sympy.Sum(1, (i, 3, N)))
    assert fallible(sympy.Sum(1, (i, N, 200)))
    assert fallible(sympy.Sum(1, (i, 1, i + N)))        # a bound-dependent or unknown range: confirmed
