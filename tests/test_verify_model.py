"""``symode verify`` on claims about a model's solution, adjoint, loss and gradients (issue 10 §2).

Independent references used here:
- the closed form of dz/dt = a·z + b (z(t) = (z0 + b/a)·e^{a(t - t0)} - b/a), written into the claims' right-hand
  sides: the verifier's solution values, adjoint (with its observation jump), sensitivities, parameter
  quadrature and integrals along the solution come from Taylor integration, its loss gradients from the oracle,
  and they must agree with the closed form (and with its exact derivatives, taken by SymPy in the document);
- mutants of the Van der Pol document (sign flips, dropped terms, t0/t1 swaps, transposed Jacobians, one-sided
  values swapped) are wrong by construction unless the mutation does not change the parsed expression: each
  must be FALSE, never TRUE;
- hand-written identities of the adjoint (λ(t1) = ∂ℓ/∂z, the jump, dH/dt = 0) for abstract f and ℓ.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import sympy

from symode.expr import parse_expression
from symode.verify import parse_document, read_document, verify_document
from symode.verify.tolerances import VERIFY_SETTINGS
from tests.test_verify import _terms

ROOT = Path(__file__).resolve().parents[1]
VDP = ROOT / "derivations" / "van-der-pol.md"
VDP_MUTATED = ROOT / "derivations" / "van-der-pol-mutated.md"
GENERIC = ROOT / "derivations" / "generic-adjoint.md"

#: Tolerances of this module, with reasons.
TOL = {
    # Agreement the verifier must reach with the closed form (digits relative to the terms' scale): its own
    # threshold (VERIFY_SETTINGS["oracle_agree_digits"], 25) -- the closed form is exact, so every digit the
    # oracle's 1e-29 bound allows should be there.
    "closed_form_digits": VERIFY_SETTINGS["oracle_agree_digits"],
}

LINEAR = """
```symbols
time: t
states: z
params: a, b, w
data: zt, zd
interval: t0, t1
symbols: ti
ode: dz/dt = a*z + b
init: z = w
terminal: (z - zt)**2
observation at ti: (z - zd)**2
values: a = -1/2, b = 1/3, w = 3/2, zt = 1/5, zd = -1/4, t0 = 0, ti = 1/2, t1 = 1
zc := (w + b/a)*exp(a*(t - t0)) - b/a
z1 := zc where t = t1
zi := zc where t = ti
Lc := (z1 - zt)**2 + (zi - zd)**2
lam_after := 2*(z1 - zt)*exp(a*(t1 - t))
lam_before := lam_after + 2*(zi - zd)*exp(a*(ti - t))
```
"""


def _doc(text: str, claims: str, name: str = "model.md"):
    return parse_document(text + "\n```claim\n" + claims.strip() + "\n```\n", name)


def _results(text: str, claims: str, name: str = "model.md") -> list:
    doc = _doc(text, claims, name)
    return verify_document(doc)


def _by_text(results) -> dict:
    return {r.text: r for r in results}


# ---------------------------------------------------------------------------------------------------
# The numbers against a closed form


@pytest.mark.slow
def test_solution_adjoint_sensitivities_and_gradients_match_the_closed_form():
    """Every kind of value the oracle path uses, against the closed form of dz/dt = a z + b (exact)."""
    claims = """
z(3/4) = zc where t = 3/4
z(t1) = z1
lambda_z(1/4) = lam_before where t = 1/4
lambda_z(ti) = lam_before where t = ti
lambda_z(ti, after) = lam_after where t = ti
lambda_z(3/4) = lam_after where t = 3/4
S_z_a(3/4) = dzc/da where t = 3/4
W_z_z(3/4) = exp(a*(3/4 - t0))
mu_b(1/4) = integral(lam_before, t, 1/4, ti) + integral(lam_after, t, ti, t1)
integral(z**2, t, t0, t1) = integral(zc**2, t, t0, t1)
L = Lc
dL/da = dLc/da
dL/db = dLc/db
dL/dw = dLc/dw
dL/dzt = dLc/dzt
dL/dt0 = dLc/dt0
dL/dt1 = dLc/dt1
"""
    results = _results(LINEAR, claims)
    for r in results:
        assert r.status == "TRUE", (r.text, r.status, r.detail)
        if r.method.startswith("oracle"):
            assert r.digits >= TOL["closed_form_digits"], (r.text, r.digits)
            # the document's values, the moved point, and the third point the claim's hash moves to
            assert r.points == VERIFY_SETTINGS["oracle_points"] + 1
    # the comparisons that need the numbers went through the oracle and the sweeps, not around them
    oracle = {r.text for r in results if r.method.startswith("oracle")}
    for text in ("z(3/4) = zc where t = 3/4", "lambda_z(1/4) = lam_before where t = 1/4", "dL/da = dLc/da",
                 "mu_b(1/4) = integral(lam_before, t, 1/4, ti) + integral(lam_after, t, ti, t1)", "L = Lc"):
        assert text in oracle, text


@pytest.mark.slow
def test_a_tiny_exact_difference_from_the_closed_form_is_false():
    """1e-20 relative is far beyond the oracle's 1e-29 bound (times the 1e6 safety factor): FALSE."""
    claims = """
z(3/4) = zc + 10**-20 where t = 3/4
dL/da = dLc/da*(1 + 10**-20)
lambda_z(ti) = lam_after where t = ti
"""
    for r in _results(LINEAR, claims):
        assert r.status == "FALSE", (r.text, r.status, r.detail)
        assert r.method == "oracle"


# ---------------------------------------------------------------------------------------------------
# The repository's documents


@pytest.mark.slow
def test_van_der_pol_document_is_true_and_its_proofs_are_confirmed_by_the_numbers():
    doc = read_document(VDP)
    assert not doc.problems, [p.message for p in doc.problems]
    results = verify_document(doc)
    assert results and all(r.status == "TRUE" for r in results), [(r.line, r.status, r.detail) for r in results
                                                                 if r.status != "TRUE"]
    by = _by_text(results)
    # the list: adjoint, terminal and observation jumps, dL/dθ as integrals, dL/dz0, dL/dt0, dL/dt1
    for text in ("lambda_x(t1) = at(dell/dx, t1)", "lambda_x(ti) = lambda_x(ti, after) + 2*(x(ti) - xd)",
                 "dL/dmu = integral(lambda_y*dfy/dmu, t, t0, t1) + lambda_y(t0)", "dL/dy0 = lambda_y(t0)",
                 "dL/dt1 = at(dell/dx*fx + dell/dy*fy + r, t1)", "dL/dt0 = -at(lambda_x*fx + lambda_y*fy + r, t0)"):
        assert by[text].method == "symbolic", text
    # a symbolic proof against symode's reference forms is confirmed by the oracle's numbers (an independent
    # route: if a reference form were wrong, the two would disagree)
    confirmed = 0
    for r in results:
        # every proved claim at fixed times (all but the rates and dH/dt, whose time t has no value)
        if r.method == "symbolic" and re.search(r"dL/|\bL =|\((t0|t1|ti)\b", r.text):
            assert "confirmed at the document's values and a second point" in r.detail, (r.text, r.detail)
            confirmed += 1
    assert confirmed >= 18
    assert {r.method for r in results} >= {"symbolic", f"oracle, {VERIFY_SETTINGS['oracle_digits']} digits"}


@pytest.mark.slow
def test_mutated_van_der_pol_document_is_false_claim_by_claim():
    doc = read_document(VDP_MUTATED)
    assert not doc.problems
    results = verify_document(doc)
    assert len(results) >= 25
    for r in results:
        assert r.expect == "FALSE" and r.status == "FALSE", (r.line, r.text, r.status, r.detail)
        if r.method == "oracle":
            lhs, rhs = (sympy.Float(v, 30) for v in r.values)
            assert lhs != rhs
            assert r.corrected, r.text


def _vdp_claims():
    doc = read_document(VDP)
    return doc, [c for c in doc.claims]


def _mutants(text: str) -> list[str]:
    lhs, rhs = text.split(" = ", 1)
    out = [f"{lhs} = -({rhs})"]
    terms = _terms(rhs)
    if len(terms) > 1:
        out += [f"{lhs} = {' '.join(terms[:k] + terms[k + 1:])}" for k in range(len(terms))]
    swapped = re.sub(r"\bt([01])\b", lambda m: "t" + ("1" if m[1] == "0" else "0"), rhs)
    if swapped != rhs:
        out.append(f"{lhs} = {swapped}")
    transposed = re.sub(r"\bdf([xy])/d([xy])\b", lambda m: f"df{m[2]}/d{m[1]}", rhs)
    if transposed != rhs:
        out.append(f"{lhs} = {transposed}")
    if "lambda_x(ti, after)" in rhs:      # λ_x jumps at ti (λ_y does not: there the two are equal)
        out.append(f"{lhs} = {rhs.replace('lambda_x(ti, after)', 'lambda_x(ti)')}")
    return out


@pytest.mark.slow
def test_every_mutant_of_the_van_der_pol_claims_is_false():
    """Sign flips, dropped terms, t0 <-> t1, transposed Jacobians, a one-sided value made two-sided: each
    mutant that changes the parsed right-hand side is FALSE; none is TRUE."""
    doc, claims = _vdp_claims()
    mutants = []
    for c in claims:
        if c.text.endswith("= 0"):
            continue               # -(0) is 0: no mutant
        for text in _mutants(c.text):
            m = doc.parse_claim(text, c.line)
            if sympy.expand(m.stated - c.stated) == 0:
                continue           # the dropped term was 0 (e.g. lambda_x*dfx/dmu): not a mutant
            mutants.append(m)
    assert len(mutants) >= 60
    from symode.verify import check_claim
    from symode.verify.modelclaims import prepare_table
    prepare_table(doc.env.model, [e for m in mutants if m.model is not None for e in (m.reference, m.stated)])
    wrong = []
    for m in mutants:
        r = check_claim(m)
        if r.status != "FALSE":
            wrong.append((m.text, r.status, r.detail[:200]))
    assert not wrong, wrong


@pytest.mark.slow
def test_generic_document_is_proved_for_every_f_and_its_mutants_never_true():
    doc = read_document(GENERIC)
    assert not doc.problems
    results = verify_document(doc)
    assert all(r.status == "TRUE" and r.method == "symbolic" for r in results), \
        [(r.text, r.status, r.detail) for r in results if r.status != "TRUE"]
    from symode.verify import check_claim
    seen = 0
    for c in doc.claims:
        if c.text.endswith("= 0"):
            continue
        m = doc.parse_claim(_mutants(c.text)[0], c.line)
        r = check_claim(m)
        assert r.status in ("FALSE", "UNDECIDED"), (m.text, r.status, r.detail)
        seen += 1
    assert seen >= 9


# ---------------------------------------------------------------------------------------------------
# Soundness: a claim true only at the document's values, ambiguous times, corrections


VDP_DECL = VDP.read_text().split("## The adjoint")[0]


@pytest.mark.slow
def test_a_claim_true_only_at_the_documents_values_is_false():
    """Terms that vanish at the document's values (a factor mu - 3/2 at mu = 3/2, t0 at t0 = 0, a literal
    time equal to ti's value, t0 - 2*ti + t1 with ti midway, which an affine map of the times would keep 0,
    affine relations among the values, which moves by a shared step such as 6/100 kept 0 at x0 = 2, xt = 1/2,
    c = 1/10) are caught at the second point."""
    claims = """
dL/dt0 = -at(lambda_x*fx + lambda_y*fy + r, t0) + (mu - 3/2)*L
dL/dt1 = at(dell/dx*fx + dell/dy*fy + r, t1) + t0*dL/dmu
lambda_x(1) = lambda_x(ti)
x(2) = x(t1)
dL/dmu = dL/dmu + (t1 - 2*ti + t0)*x(t1)
lambda_x(t1) = at(dell/dx, t1) + (t0 + t1 - 2*ti)*lambda_y(ti)
dL/dmu = dL/dmu + (2*xt - x0 + 1)*x(t1)
dL/dc = dL/dc + (11*x0 - 30*c - 19)*y(ti)
"""
    for r in _results(VDP_DECL, claims, "vdp.md"):
        assert r.status == "FALSE", (r.text, r.status, r.detail)
        assert "second point" in r.detail, r.detail


@pytest.mark.slow
def test_the_corrected_right_hand_side_of_a_false_model_claim_verifies_true():
    claims = """
dL/dmu = integral(lambda_y*dfy/dmu, t, t0, t1)
dL/dt0 = -dL/dt1
"""
    doc = _doc(VDP_DECL, claims, "vdp.md")
    results = verify_document(doc)
    from symode.verify import check_claim
    for r in results:
        assert r.status == "FALSE" and r.corrected
        lhs = r.text.split(" = ")[0]
        again = check_claim(doc.parse_claim(f"{lhs} = {r.corrected}", r.line))
        assert again.status == "TRUE", (r.corrected, again.status, again.detail)


@pytest.mark.slow
def test_claims_without_values_or_outside_the_interval_are_undecided_never_true():
    claims = """
x(5) = 1
dL/dmu = 2*L
"""
    for r in _results(VDP_DECL, claims, "vdp.md"):
        assert r.status in ("UNDECIDED", "FALSE"), (r.text, r.status)
    generic = GENERIC.read_text().split("The adjoint ODE")[0]
    for r in _results(generic, "dL/dt0 = -dL/dt1\ndL/dth = integral(lambda_z*df/dth, t, t0, t1)"):
        assert r.status == "UNDECIDED", (r.text, r.status, r.detail)
        assert "abstract functions" in r.detail


# ---------------------------------------------------------------------------------------------------
# Malformed model claims and declarations: ERROR with the line


@pytest.mark.parametrize("claim, needle", [
    ("dL/dmu = integral(lambda_y*dfy/dmu, t, t0, t1) where mu = 2", "depend"),
    ("dL/dx = lambda_x(t0)", "is a state"),
    ("dL/dti = 0", "does not depend"),
    ("lambda_x(t1, later) = 0", "'after' or 'before'"),
    ("at(x, t1, t0) = 0", "takes 2"),
    ("dG/dmu = 0", "not a quantity symode derives"),
])
def test_malformed_model_claims_are_errors_naming_the_line(claim, needle):
    doc = _doc(VDP_DECL + "\n```symbols\nG := at(lambda_x, t)\n```\n", claim, "vdp.md")
    problems = [p for p in doc.problems if p.is_claim]
    assert len(problems) == 1, [p.message for p in doc.problems]
    assert needle in problems[0].message and "vdp.md:" in problems[0].message, problems[0].message


@pytest.mark.parametrize("change, needle", [
    (("init: y = mu - 1\n", ""), "no 'init:' line for state(s) y"),
    (("mu = 3/2, ", ""), "no value for mu"),
    (("terminal: ell\n", "terminal: ell + t1\n"), "a time of the model"),
    (("observation at ti: obs\n", "observation at ti: obs*t\n"), "uses the time"),
    (("observation at ti: obs\n", "observation at t1: obs\n"), None),
])
def test_malformed_model_declarations_are_errors(change, needle):
    text = VDP_DECL.replace(*change)
    assert text != VDP_DECL
    doc = _doc(text, "dL/dt1 = at(dell/dx*fx + dell/dy*fy + r, t1)", "vdp.md")
    messages = [p.message for p in doc.problems]
    if needle is None:   # an observation at t1: dL/dt1 is undefined there
        assert any("dL/dt1 is undefined" in m for m in messages), messages
    else:
        assert any(needle in m for m in messages), messages


# ---------------------------------------------------------------------------------------------------
# Sums over indexed data


SUMS = """
```symbols
params: a
index: i
count: N
indexed: x, y
```
"""


@pytest.mark.parametrize("claim, expected", [
    ("sum(1, i, 1, N) = N", "TRUE"),
    ("sum(x[i], i, 1, 0) = 0", "TRUE"),
    ("sum(x[i], i, 1, N) = sum(x[N + 1 - i], i, 1, N)", "TRUE"),
    ("sum(a*x[i], i, 1, N) = a*sum(x[i], i, 1, N)", "TRUE"),
    ("sum(x[i], i, 1, N) = N*x[1]", "FALSE"),
    ("sum(x[i]**2, i, 1, N) = sum(x[i], i, 1, N)**2", "FALSE"),
    ("sum(x[i]*y[i], i, 1, N) = sum(x[i], i, 1, N)*sum(y[i], i, 1, N)", "FALSE"),
    ("sum(x[i], i, 1, N) = sum(x[i], i, 2, N + 1)", "FALSE"),
])
def test_sums_over_indexed_data(claim, expected):
    r, = _results(SUMS, claim)
    assert r.status == expected, (claim, r.status, r.detail)
    if expected == "FALSE":
        assert any(k.startswith("x[0:") for k in r.point), r.point
        # the corrected right-hand side parses back in the document's syntax
        syms = {n: sympy.Symbol(n, real=True) for n in ("a",)}
        assert r.corrected
        if "[" not in r.corrected and "sum(" not in r.corrected:
            parse_expression(r.corrected, syms, "corrected")


# ---------------------------------------------------------------------------------------------------
# Network models in matrix form


NETWORK = ROOT / "derivations" / "network-matrix-form.md"


@pytest.mark.slow
def test_network_document_in_matrix_form():
    """Every matrix-form claim of the network document as its expect: line says; the TRUE ones were checked
    element by element (against the scalar derivation's rates and the oracle), the FALSE ones name an
    element and give the matrix-form correction, which verifies TRUE when fed back."""
    doc = read_document(NETWORK)
    assert not doc.problems, [p.message for p in doc.problems]
    results = verify_document(doc)
    from symode.verify import check_claim
    for r in results:
        assert r.status == (r.expect or "TRUE"), (r.text, r.status, r.detail)
        if r.status == "TRUE" and "array" in r.against:
            assert "elements of the" in r.detail, r.detail
        if r.status == "FALSE":
            assert "element [" in r.detail and r.corrected, (r.text, r.detail)
            lhs = r.text.split(" = ")[0]
            again = check_claim(doc.parse_claim(f"{lhs} = {r.corrected}", r.line))
            assert again.status == "TRUE", (r.corrected, again.status, again.detail)
    texts = {r.text for r in results}
    assert "dlambda_z/dt = -transpose(W1) @ (dtanh(a1) * (transpose(W2) @ lambda_z))" in texts
    assert "dL/dW1 = integral((dtanh(a1) * (transpose(W2) @ lambda_z)) @ transpose(z), t, t0, t1)" in texts


def test_matrix_claims_with_mismatched_shapes_are_errors():
    text = NETWORK.read_text().split("The spec names")[0]
    doc = _doc(text, "dlambda_z/dt = transpose(W1)\ndL/dW1 = lambda_z(t0)\ndW1/dt = 0", "net.md")
    messages = [p.message for p in doc.problems]
    assert len(messages) == 3, messages
    assert sum("the left side is a 2x1 array and the right side a 2x2 one" in m for m in messages) == 1, messages
    assert sum("the left side is a 2x2 array and the right side a 2x1 one" in m for m in messages) == 1, messages
    assert any("of an array, only the rate" in m or "not derived" in m for m in messages), messages


@pytest.mark.slow
@pytest.mark.parametrize("claim", [
    "dL/dmu = integral(lambda_y*dfy/dmu, t, t0, t1) + lambda_y(t0) + 10**-40",   # a tiny exact constant
    "dL/dmu = dL/dmu*(1 + 10**-40)",                                           # a tiny relative factor
    "lambda_x(t1) = at(dell/dx, t1)*(1 + 10**-50)",                            # the same on a solution value
    "L = L + exp(-200)",
    "x(t0) = x0 + (mu - 3/2)*c",                                               # zero at the values only
    "dL/dx0 = lambda_x(t0) + q",                                               # a free symbol
    "dL/dt1 = at(dell/dx*fx + dell/dy*fy + r, t1) + 10**-45*x(ti)",
    "x(t1) = x(t0) + integral(y, t, t0, t1)*(1 + 10**-35)",                    # 0 only by dx/dt = y
    "y(t1) = y(t0) + integral(fy, t, t0, t1) + 10**-40*x(ti)",
    "S_y_mu(t1) = 1 + integral(dfy/dx*S_x_mu + dfy/dy*S_y_mu + dfy/dmu, t, t0, t1)*(1 - 10**-40)",
    "lambda_y(t0) = lambda_y(t1) + integral(lambda_x + lambda_y*mu*(1 - x**2), t, t0, t1)*(1 + 10**-35)",
])
def test_model_claims_false_by_a_tiny_or_special_term_are_false(claim):
    """The sides' values agree to their 30 digits here; the canonical difference, in which the large terms
    cancel exactly, is what shows the claim false (evaluated on its own, or exactly)."""
    decl = VDP_DECL.replace("symbols: ti", "symbols: ti, q")
    r, = _results(decl, claim, "vdp.md")
    assert r.status == "FALSE", (claim, r.status, r.detail)


@pytest.mark.slow
def test_a_value_of_the_solution_is_its_start_plus_the_integral_of_its_rate():
    """z(T) = z(t0) + ∫_{t0}^T f dt (and the same for the sensitivities), λ(T) = λ(t1) - ∫_T^{t1} λ' dt + the
    observations' jumps in [T, t1) are proved symbolically: the difference is 0 by the model's equations, not
    only numerically; a wrong rate, limit or jump stays FALSE."""
    claims = """
x(t1) = x(t0) + integral(y, t, t0, t1)
y(ti) = mu - 1 + integral(fy, t, t0, ti)
S_y_mu(t1) = 1 + integral(dfy/dx*S_x_mu + dfy/dy*S_y_mu + dfy/dmu, t, t0, t1)
lambda_y(t0) = lambda_y(t1) + integral(lambda_x + lambda_y*mu*(1 - x**2), t, t0, t1)
lambda_x(t0) = lambda_x(t1) + integral(2*c*x - lambda_y*(2*mu*x*y + 1), t, t0, t1) + 2*(x(ti) - xd)
lambda_x(ti, after) = lambda_x(t1) + integral(2*c*x - lambda_y*(2*mu*x*y + 1), t, ti, t1)
lambda_x(3/2) = lambda_x(t1) + integral(2*c*x - lambda_y*(2*mu*x*y + 1), t, 3/2, t1)
"""
    for r in _results(VDP_DECL, claims, "vdp.md"):
        assert (r.status, r.method) == ("TRUE", "symbolic"), (r.text, r.status, r.detail)
    wrong = """
y(t1) = y(t0) + integral(fy, t, t0, ti)
x(t1) = x0 + integral(y, t, ti, t1)
S_y_mu(t1) = integral(dfy/dx*S_x_mu + dfy/dy*S_y_mu + dfy/dmu, t, t0, t1)
lambda_x(t0) = lambda_x(t1) + integral(2*c*x - lambda_y*(2*mu*x*y + 1), t, t0, t1)
lambda_x(1/2) = lambda_x(t1) + integral(2*c*x - lambda_y*(2*mu*x*y + 1), t, 1/2, t1)
lambda_x(ti, after) = lambda_x(t1) + integral(2*c*x - lambda_y*(2*mu*x*y + 1), t, ti, t1) + 2*(x(ti) - xd)
"""
    for r in _results(VDP_DECL, wrong, "vdp.md"):
        assert r.status == "FALSE", (r.text, r.status, r.detail)
