"""An adversarial corpus for ``symode verify``: no wrong TRUE.

Each claim below carries its truth, established independently of the verifier (the reason is written next to
it: a textbook identity, a hand computation, or a point where the two sides visibly differ, with the values).
The checker may answer UNDECIDED (with a reason) to a false claim, never TRUE; true claims written in odd but
equivalent forms must be TRUE.  Classes (issue 10, section 1): tiny exact terms, narrow regions, parameter-
dependent falsity, period-dependent falsity, kinks, assumptions broken by substitutions, SymPy's integration.
"""
from __future__ import annotations

import pytest

from symode.verify import parse_document, verify_document

#: Tolerances of this module: none (verdicts are words; every value checked here is exact).
TOL: dict = {}

SYMBOLS = """```symbols
symbols: x, y, a, b, s, h
positive: T, P
E := 0.000000000000000000000000000000001*x*sin(x)
F := a*x**2/b
g := abs(x)
```
"""

# (claim, truth, why): truth True/False; "ERROR" where the claim contradicts a declaration.
CORPUS = [
    # --- true claims in odd but equivalent forms
    ("sin(x)**2 + cos(x)**2 = 1", True, "Pythagoras"),
    ("cosh(x)**2 - sinh(x)**2 = 1", True, "hyperbolic Pythagoras"),
    ("exp(2*log(T)) = T**2", True, "exp(2 log T) = T^2 for T > 0"),
    ("sqrt(T**2) = T", True, "T > 0"),
    ("abs(x)**2 = x**2", True, "|x|^2 = x^2 for real x"),
    ("tanh(x) = (exp(2*x) - 1)/(exp(2*x) + 1)", True, "definition of tanh"),
    ("sigmoid(x) = (1 + tanh(x/2))/2", True, "1/(1+e^-x) = (1 + tanh(x/2))/2"),
    ("softplus(x) - softplus(-x) = x", True, "log((1+e^x)/(1+e^-x)) = log(e^x) = x"),
    ("atan(x) + atan(1/x) = 2*atan(1)*x/abs(x)", True, "atan x + atan(1/x) = sign(x) pi/2, pi/2 = 2 atan 1"),
    ("asinh(x) = log(x + sqrt(x**2 + 1))", True, "definition of asinh"),
    ("(x**3 - y**3)/(x - y) = x**2 + x*y + y**2", True, "factorisation, x != y"),
    ("integral(abs(s), s, -1, 1) = 1", True, "two triangles of area 1/2"),
    ("integral(abs(sin(s)), s, 0, 10) = 7 + cos(10)", True,
     "3 humps of area 2 on [0, 3 pi], then int_{3pi}^{10} -sin = cos(10) + 1"),
    ("integral(exp(a*s), s, 0, 1) = (exp(a) - 1)/a", True, "antiderivative exp(a s)/a, a != 0"),
    ("abs(x*y) = abs(x)*abs(y)", True, "|xy| = |x||y|"),
    ("x + 0.000000000000000000000000000000000000000001 - x = 0.000000000000000000000000000000000000000001", True,
     "exact decimals: the x cancel"),
    ("dE/dx = 0.000000000000000000000000000000001*(sin(x) + x*cos(x))", True, "product rule"),
    ("(x + 1000000000000000000000000000000) - 1000000000000000000000000000000 = x", True, "cancellation of 1e30"),
    ("exp(x)*exp(-x) = 1", True, "exp(x - x)"),
    ("cos(x)**2 - sin(x)**2 = cos(2*x)", True, "double angle"),
    ("(x**2 - 1)/(x - 1) = x + 1", True, "factorisation, x != 1"),
    ("softplus(x) = x + softplus(-x)", True, "as above"),
    ("sin(x)**2 = (1 - cos(2*x))/2", True, "half angle"),
    ("asinh(sinh(x)) = x", True, "sinh is a bijection of the reals"),
    ("T**a*T**b = T**(a + b)", True, "T > 0"),
    ("exp(a*log(T)) = T**a", True, "T > 0"),
    ("dg/dx = x/abs(x)", True, "d|x|/dx = sign x for x != 0"),
    ("T/abs(T) = 1", True, "T > 0"),
    ("abs(T) = T where T = y**2 + 1", True, "y^2 + 1 > 0"),
    ("integral(abs(s - a), s, 0, 1) = (a**2 + (1 - a)**2)/2 where a = 0.25", True,
     "0.25^2/2 + 0.75^2/2 = 0.3125 = (0.0625 + 0.5625)/2"),
    # --- false by a tiny exact term
    ("exp(-100) = 0", False, "exp(-100) = 3.7e-44 > 0"),
    ("x*exp(-100) = 0", False, "nonzero for x != 0"),
    ("dE/dx = 0", False, "1e-33 (sin x + x cos x) = 1.1e-33 at x = 3/2"),
    ("x + 0.0000000000000000000000000000000000000001 = x", False, "differs by 1e-40"),
    ("exp(x) = exp(x)*(1 + 0.00000000000000000000000000000000000000000000000001)", False, "differs by exp(x)/1e50"),
    ("sin(x)**2 + cos(x)**2 = 1 + 0.000000000000000000000000000000000000000000001", False, "differs by 1e-45"),
    ("(a*(x + h)**2/b - F)/h = dF/dx where h = 0.000000000000000000000000000001", False,
     "forward difference: a (2 x + h)/b vs 2 a x/b, off by a h/b = a/(1e30 b)"),
    ("log(1 + 0.000000000000000000000000000001) = 0.000000000000000000000000000001", False,
     "log(1 + e) = e - e^2/2 + ..., off by 5e-61"),
    ("tanh(100) = 1", False, "1 - tanh(100) = 2/(e^200 + 1) = 2.8e-87"),
    ("tanh(100 + x**2) = 1", False, "1 - tanh(u) = 2/(e^(2u) + 1) > 0"),
    ("tanh(1000 + x**2) = 1", False, "as above, 1e-868: beyond any working precision, exact in exponential form"),
    ("1/(1 + exp(-1000 - x**2)) = 1", False, "sigmoid(u) < 1 for finite u"),
    ("log(1 + exp(200 + x**2)) = 200 + x**2", False, "log(1 + e^u) - u = log(1 + e^-u) > 0"),
    # --- false only in a narrow region
    ("tanh(10000*x)**2 = 1", False, "at x = 5e-5: tanh(1/2)^2 = 0.21"),
    ("abs(x - 0.001) + abs(x + 0.001) = 2*abs(x)", False, "at x = 0: 0.002 vs 0"),
    ("1/(1 + 1000000*x**2) = 0", False, "positive everywhere"),
    ("exp(-1000000*x**2) = 0", False, "positive everywhere; 1 at x = 0"),
    ("abs(x - 1/3) + abs(x + 1/3) = 2*abs(x)", False, "at x = 0: 2/3 vs 0"),
    # --- false only for some parameter values
    ("sqrt(a**2*x**2) = a*x", False, "|a x| != a x when a x < 0"),
    ("integral(exp(a*s), s, 0, 1) = exp(a) - 1", False, "true only at a = 1: a = 2 gives (e^2 - 1)/2 vs e^2 - 1"),
    ("a*x**2 + b = abs(a)*x**2 + b", False, "a < 0"),
    ("integral(abs(s - a), s, -3, 3) = 9 + a**2", False, "for |a| > 3 the integral is 6|a|: a = 4 gives 24 vs 25"),
    ("abs(x + 5) = x + 5", False, "x < -5"),
    ("x/abs(x) = 1", False, "x < 0"),
    # --- false only past a period
    ("atan(tan(x)) = x", False, "x = 2: atan(tan 2) = 2 - pi"),
    ("integral(abs(sin(s)), s, 0, 10) = 3 + cos(10)", False, "SymPy's antiderivative of |sin|; the truth is 7 + cos 10"),
    ("integral(abs(sin(s)), s, 0, T) = 1 - cos(T)", False, "true for T <= pi only; T = 4: 3 + cos 4 vs 1 - cos 4"),
    ("atan(tan(x/1000)) = x/1000", False, "x = 1e6: atan(tan 1000) = 1000 - 318 pi"),
    ("sin(x)**2 = sin(x)*abs(sin(x))", False, "sin x < 0, e.g. x = -1"),
    # --- false across a kink
    ("abs(x) = x", False, "x < 0"),
    ("integral(abs(s - a), s, 0, 1) = 1/2 - a", False, "true for a <= 0 only; a = 1/2 gives 1/4 vs 0"),
    ("integral(abs(s), s, -1, a) = (1 + a**2)/2", False, "a < 0: (1 - a^2)/2"),
    ("dg/dx = 1", False, "d|x|/dx = -1 for x < 0"),
    ("abs(x - y) = x - y", False, "x < y"),
    ("(x + abs(x))/2 = x", False, "x < 0: 0 vs x"),
    # --- assumptions and substitutions
    ("abs(T) = T where T = -2", "ERROR", "T is declared positive; -2 contradicts it"),
    ("sqrt(T**2) = T where T = y - 5", False, "y = 3/2: 7/2 vs -7/2"),
    ("abs(P - T) = P - T", False, "P < T"),
    ("sqrt(T**2) = T where T = -y**2 - 1", "ERROR", "negative for every y"),
    ("abs(T)/T = 1 where T = a**2 - 4", False, "a = 1: |-3|/(-3) = -1"),
]


@pytest.fixture(scope="module")
def verdicts():
    text = SYMBOLS + "".join(f"```claim\n{c}\n```\n" for c, _, _ in CORPUS)
    doc = parse_document(text, "corpus.md")
    assert not [p for p in doc.problems if not p.is_claim], [p.message for p in doc.problems]
    results = verify_document(doc)
    assert len(results) == len(CORPUS)
    return {r.text: r for r in results}


def test_the_corpus_is_large_and_covers_every_class():
    assert len(CORPUS) >= 60
    assert sum(t is False for _, t, _ in CORPUS) >= 35


@pytest.mark.slow
@pytest.mark.parametrize("claim, truth, why", CORPUS, ids=[c for c, _, _ in CORPUS])
def test_no_wrong_true(verdicts, claim, truth, why):
    r = verdicts[claim]
    if truth is True:
        assert r.status == "TRUE", f"{claim} ({why}): {r.status} {r.detail}"
    elif truth is False:
        assert r.status in ("FALSE", "UNDECIDED"), f"WRONG {r.status}: {claim} ({why}): {r.detail}"
        assert r.detail, "a verdict without a reason"
        if r.status == "FALSE":
            # the difference is stated (the two values may agree to the 20 digits shown: 1e-50 relative)
            assert "LHS - RHS" in r.detail, r.detail
    else:
        assert r.status == "ERROR" and "declared positive" in r.detail, r.detail
