"""Claims whose notation could be read two ways are refused with a clear ERROR, never given a TRUE for the
other reading (issue 10 §1; red-team findings on d/dt of a definition and on observation times that move).

Each expected verdict's reason is worked by hand in its comment.
"""
from __future__ import annotations

import pytest

from tests.verify_cases import DECAY, verdict

ODE = """```symbols
time: t
states: u
params: k
ode: du/dt = -k*u
E := u**2
F := u**2*exp(t)
```
"""

OBSERVED = """```symbols
time: t
states: u
params: k
interval: t0, t1
ode: du/dt = -k*u
init: u = 1
terminal: u**2
observation at {when}: 3*u
values: k = 1/2, t0 = 0, t1 = 1
```
"""


def _verdict(text: str, claim: str):
    return verdict(text, claim, "contract.md")


@pytest.mark.parametrize("claim", [
    # along du/dt = -k u, d(u**2)/dt = -2 k u**2, not 0: the partial derivative with u held fixed is 0, and a
    # reader takes a TRUE as "E is conserved"
    "dE/dt = 0",
    "dE/dt = -2*k*u**2",
    # F depends on t explicitly too
    "dF/dt = u**2*exp(t)",
])
def test_d_dt_of_a_definition_of_the_states_is_an_error(claim):
    r = _verdict(ODE, claim)
    assert r.status == "ERROR", (r.status, r.detail)
    assert "chain rule" in r.detail


@pytest.mark.parametrize("claim, status", [
    # the chain rule the error asks for: d(u**2)/du * du/dt = 2u * (-k u) = -2 k u**2 (by hand)
    ("dE/du*du/dt = -2*k*u**2", "TRUE"),
    ("dE/du*du/dt = 0", "FALSE"),
])
def test_the_chain_rule_states_the_rate_along_the_solution(claim, status):
    assert _verdict(ODE, claim).status == status


@pytest.mark.parametrize("when, claim", [
    # L(t1) = u(t1)**2 + 3 u(t1/2): dL/dt1 = -2 k u(t1)**2 - (3k/2) u(t1/2) (by hand), while the adjoint
    # formulas hold the observation time fixed and give -2 k u(t1)**2: the fixed-time claim was TRUE
    ("t1/2", "dL/dt1 = -2*k*u(t1)**2"),
    ("t1/2", "dL/dt1 = -2*k*u(t1)**2 - 3*k*u(t1/2)/2"),
    # the same with the start: L depends on t0 through u and through the time (t0 + t1)/2
    ("(t0 + t1)/2", "dL/dt0 = -2*u(t1)*dL/du0"),
])
def test_a_gradient_in_a_symbol_an_observation_time_moves_with_is_an_error(when, claim):
    r = _verdict(OBSERVED.format(when=when), claim)
    assert r.status == "ERROR", (r.status, r.detail)
    assert "moves with" in r.detail


def test_a_fixed_observation_time_still_has_its_gradients():
    # with the observation at the fixed time 1/2, dL/dt1 = d(u(t1)**2)/dt1 = -2 k u(t1)**2 (by hand)
    assert _verdict(OBSERVED.format(when="1/2"), "dL/dt1 = -2*k*u(t1)**2").status == "TRUE"


def test_a_claim_true_only_at_the_documents_values_says_so():
    # W(1) = dz(1)/dz0 = exp(-k (1 - t0)): exp(-k) only at t0 = 0, the document's value (by hand).  A claim is
    # checked for the values moved as well, so it is FALSE, and the report says it holds at the document's
    # values only (the literal time 1 is not moved with t0)
    decl = DECAY.replace("t1 = 1", "t1 = 2")
    r = _verdict(decl, "W_u_u(1) = exp(-k)")
    assert r.status == "FALSE", (r.status, r.detail)
    assert "holds there only" in r.detail and "time written as a number" in r.detail
    # written with t0 it holds for every value: TRUE
    assert _verdict(decl, "W_u_u(1) = exp(-k*(1 - t0))").status == "TRUE"
