"""An observation exactly at t0 (issue 12, item 1): evaluated on z0, the adjoint's last jump; dL/dt0 undefined.

References: the closed form (``exact``) of the seed's linear model; by hand, adding the observation
(z0 - d)² at t0 adds exactly (z0 - d)² to L and 2(z0 - d) to dL/dz0 and nothing else (z0 does not depend on θ);
the oracle for the float64 routes (tolerance: fixed_step_tolerance for rk4 with 400 steps, the a priori bound of
the check tolerances table; CVODES: the table's cvodes-vs-oracle).
"""
from __future__ import annotations

import json

import jsonschema
import mpmath
import pytest

from symode.check.compare import compare
from symode.check.tolerances import fixed_step_tolerance, tolerance
from symode.codegen.ctext import generate
from symode.methods import compute
from symode.schema import shipped_grad_schema
from symode.spec import load_spec

BASE = '''
name = "obs0"
states = ["x"]
rhs = ["-a*x + b"]
z0 = ["1"]
t0 = "0"
t1 = "1"
[params]
a = "0.5"
b = "0.3"
[loss]
terminal = "x**2"
[loss.observations]
'''
WITH_T0 = BASE + 'times = ["0", "0.5"]\ndata = [["0.9"], ["0.5"]]\n'
WITHOUT = BASE + 'times = ["0.5"]\ndata = [["0.5"]]\n'

NET = '''
name = "net0"
states = [{name = "z", size = 2}]
z0 = [["0.5", "-0.5"]]
t0 = "0"
t1 = "1"
[network]
hidden = [3]
[params]
W1 = [["0.1", "-0.2"], ["0.3", "0.4"], ["-0.5", "0.6"]]
b1 = ["0.01", "0.02", "0.03"]
W2 = [["0.5", "-0.3", "0.2"], ["-0.4", "0.1", "0.3"]]
b2 = ["0", "0.1"]
[loss.observations]
times = ["0", "0.6"]
data = [["0.4", "-0.4"], ["0.3", "0.2"]]
'''


@pytest.fixture(scope="module")
def oracle():
    return compute(load_spec(WITH_T0), "oracle", digits=30)


def test_oracle_against_closed_form_and_hand(oracle):
    ex = compute(load_spec(WITH_T0), "exact", digits=30)
    assert oracle.grad_t0 is None and ex.grad_t0 is None and oracle.grad_t1 is not None
    bound = mpmath.mpf(oracle.error_bound)
    for (n, a), (_, b) in zip(oracle.named_values(), ex.named_values()):
        assert abs(a - b) <= 2 * bound * max(abs(b), mpmath.mpf(10) ** -8), n
    without = compute(load_spec(WITHOUT), "oracle", digits=30)
    with mpmath.workdps(50):
        d = mpmath.mpf(1) / 10  # z0 - 0.9
        assert abs((oracle.loss - without.loss) - d ** 2) < 1e-27
        assert abs((oracle.grad_z0[0] - without.grad_z0[0]) - 2 * d) < 1e-27
        for k in oracle.grad:
            assert abs(oracle.grad[k] - without.grad[k]) < 1e-27


@pytest.mark.parametrize("method", ["discrete", "forward", "adjoint", "adjoint-stored", "cvodes"])
def test_float64_routes(oracle, method):
    m = load_spec(WITH_T0)
    r = compute(m, method) if method == "cvodes" else compute(m, method, scheme="rk4", steps=400)
    assert r.grad_t0 is None
    tol = tolerance("cvodes-vs-oracle") if method == "cvodes" else fixed_step_tolerance(4, 400, 1.0)
    res = compare(r, oracle, tolerance=tol)
    assert res.ok, res.summary()


def test_json_omits_grad_t0_and_validates(oracle):
    d = json.loads(oracle.to_json())
    assert "grad_t0" not in d and "grad_t1" in d
    jsonschema.validate(d, shipped_grad_schema())
    assert "undefined" in oracle.to_table()


def test_structured_oracle_with_observation_at_t0():
    m = load_spec(NET)
    a = compute(m, "oracle", digits=30)
    b = compute(m.scalar_model(), "oracle", digits=30)
    assert a.grad_t0 is None and b.grad_t0 is None
    bound = mpmath.mpf(a.error_bound) + mpmath.mpf(b.error_bound)
    for (n, x), (_, y) in zip(a.named_values(), b.named_values()):
        assert abs(x - y) <= bound * max(abs(y), mpmath.mpf(10) ** -8), n


def test_generated_header_says_t0_is_unused():
    header = generate(load_spec(WITH_T0), "rk4", 20).files["symode_model.h"].decode()
    assert "FIRST OBSERVATION LIES AT t0" in header
