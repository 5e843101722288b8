"""heyoka as a second, independent integrator for the oracle, and the float-constant trap.

Independent references: heyoka (a different Taylor integrator, compiled by LLVM, MPFR arithmetic) against
symode's own Taylor oracle, and both against closed forms.  The trap (docs/design.md, facts): a constant given to heyoka as
a Python float (``u/10.``) is the binary double, so the result is wrong past about the 16th-17th digit however
high the MPFR precision is; the same model with exact constants agrees to the requested digits.
"""
from __future__ import annotations

import mpmath
import pytest

pytest.importorskip("heyoka")

from symode.library import get_model, model_names  # noqa: E402
from symode.oracle import heyoka_engine  # noqa: E402
from symode.oracle.engine import VALUE_FLOOR, exact_gradient, oracle_gradient  # noqa: E402
from symode.oracle.heyoka_engine import HEYOKA_TOLERANCE, compare_with_oracle, heyoka_gradient  # noqa: E402

pytestmark = pytest.mark.skipif(not heyoka_engine.available(), reason="heyoka built without heyoka.real (MPFR)")

#: Tolerances (relative).  "agree": HEYOKA_TOLERANCE["exact"], all but the last of `digits` digits.
#: "float_floor": a float64 constant's rounding error 2^-53 ≈ 1.1e-16 enters the solution at first order, so
#: the float build must differ by more than 1e-18 (else the trap was not reproduced); "float_ceiling": and by
#: less than 1e-12 (a larger difference would be a translation bug, not double rounding).
TOL = {"agree": HEYOKA_TOLERANCE["exact"], "float_floor": HEYOKA_TOLERANCE["float_floor"],
       "float_ceiling": mpmath.mpf("1e-12")}


#: every built-in ODE model (linreg is a regression, not an ODE): the README's claim covers them all
ODE_MODELS = [n for n in model_names() if n != "linreg"]


@pytest.mark.slow
@pytest.mark.parametrize("name", ODE_MODELS)
def test_exact_constants_agree_with_oracle(name):
    r = compare_with_oracle(get_model(name), 30, constants="exact")
    assert r["agrees"], (name, mpmath.nstr(r["difference"], 3), r["worst"])
    assert r["difference"] <= TOL["agree"](30)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["logistic", "pendulum"])  # constants 1.3 / 9.81, 1.5, 0.2: not dyadic
def test_float_constants_trap(name):
    m = get_model(name)
    ora = oracle_gradient(m, 30, quiet=True)
    exact_build = compare_with_oracle(m, 30, constants="exact", oracle=ora)
    float_build = compare_with_oracle(m, 30, constants="float", oracle=ora)
    assert exact_build["agrees"]
    assert not float_build["agrees"]
    assert TOL["float_floor"] < float_build["difference"] < TOL["float_ceiling"], \
        mpmath.nstr(float_build["difference"], 3)


def test_heyoka_equals_closed_form():
    m = get_model("seed-encoder")  # observations, a running cost and an encoder z0(θ)
    h, ex = heyoka_gradient(m, 30), exact_gradient(m, 30)
    with mpmath.workdps(60):
        pairs = [(h.loss, ex.loss), (h.grad_t0, ex.grad_t0)]  # grad_t1: undefined (observation at t1)
        pairs += list(zip(h.grad.values(), ex.grad.values())) + list(zip(h.grad_z0, ex.grad_z0))
        for a, b in pairs:
            assert abs(a - b) <= TOL["agree"](30) * max(abs(b), VALUE_FLOOR), (a, b)
