"""Model claims with a kink in their own terms are checked on both sides of it (issue 10, §1 "only across a
kink", for claims checked through the oracle).

The oracle checks a model claim at the document's values and at a moved second point.  A term such as
``abs(k - 0.3) - (k - 0.3)`` is 0 at both (k = 1/2 and its neighbour) and nonzero below 0.3, so such a claim
was TRUE (oracle, 30 digits).  Each false claim's error is computed by hand in its comment (the model is
du/dt = -k u, u(0) = 1, so u(t) = exp(-k t) and dL/dk = integral(-lambda_u*u) exactly).
"""
from __future__ import annotations

import pytest

from tests.verify_cases import DECAY, verdict


RIGHT = "integral(-lambda_u*u, t, t0, t1)"


def _verdict(claim: str):
    return verdict(DECAY, claim, "kinks.md")


@pytest.mark.parametrize("claim, across", [
    # the extra term is 0 for k > 0.3 and 2*(0.3 - k)*u(t1) below: at k = 0.2, 0.2*exp(-0.2) (by hand)
    (f"dL/dk = {RIGHT} + (abs(k - 0.3) - (k - 0.3))*u(t1)", "k = 1/5"),
    # |k - 0.3|/(k - 0.3) - 1 (a sign) is 0 above 0.3 and -2 below: the claim is off by 2*u(t1) there
    (f"dL/dk = {RIGHT} + (abs(k - 0.3)/(k - 0.3) - 1)*u(t1)", "k = 1/5"),
    # a kink in the end time: 0 for t1 < 3 (both points), 2*(t1 - 3)*u(t1) past it: at t1 = 4, 2*exp(-2)
    (f"dL/dk = {RIGHT} + (abs(t1 - 3) + t1 - 3)*u(t1)", "t1 = 4"),
])
def test_a_claim_false_only_across_a_kink_of_its_own_terms_is_false(claim, across):
    r = _verdict(claim)
    assert r.status == "FALSE", (r.status, r.detail)
    assert across in r.detail and "across the kink" in r.detail


def test_a_true_claim_with_kinks_is_checked_across_them_and_stays_true():
    # |k - 0.3|*|k + 0.3| = |k**2 - 0.09| for every k: the term is 0 on every side of the kinks at +-0.3
    r = _verdict(f"dL/dk = {RIGHT} + (abs(k - 0.3)*abs(k + 0.3) - abs(k**2 - 0.09))*u(t1)")
    assert r.status == "TRUE", (r.status, r.detail)


def test_a_kink_in_a_solution_value_the_points_do_not_cross_is_undecided():
    # |u(t1) - 0.3| - (u(t1) - 0.3) is 0 while u(t1) = exp(-k) > 0.3 (both points) and 2*(0.3 - exp(-k)) for
    # k > 1.2: false there, and where that is cannot be known before solving: never TRUE
    r = _verdict(f"dL/dk = {RIGHT} + abs(u(t1) - 0.3) - (u(t1) - 0.3)")
    assert r.status == "UNDECIDED", (r.status, r.detail)
    assert "kink" in r.detail
