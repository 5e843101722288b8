"""symode.testing: assert_gradients_match against hand-written NumPy implementations, and the pytest plugin.

Independent references: the oracle (30 digits) and the closed form of the linear model; the NumPy candidates are
written here by hand (RK4 with forward sensitivities derived on paper), not taken from symode.

Tolerance table (this module):

| comparison | rtol | why |
|---|---|---|
| correct NumPy RK4 (4000 steps) vs oracle | 1e-9 | RK4 global error C h^4 with h = 1.5/4000: ~1e-13 x C, C ~ 10 here; the
  deliberate errors below are O(1) relative, eight orders above it |
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from decimal import Decimal

import numpy as np
import pytest

import symode
from symode.errors import SpecError
from symode.library import get_model
from symode.spec import load_spec
from symode.testing import Mismatch, assert_gradients_match, gradients_match
from symode.testing.cache import cached_reference, reference_path

RTOL = 1e-9

#: dz/dt = a z + b, z0 = 1; L = (z(0.5) - 1.2)^2 + (z(1.5) - 0.4)^2: an observation before t1 and a terminal term
SPEC = '''
name = "lin-obs"
states = ["z"]
rhs = ["a*z + b"]
z0 = ["1"]
t0 = "0"
t1 = "1.5"
[params]
a = "-0.8"
b = "0.5"
[loss]
terminal = "(z - 0.4)**2"
[loss.observations]
times = ["0.5"]
data = [["1.2"]]
'''


def numpy_gradient(params, z0, t0, t1, *, bug=None, steps=4000):
    """RK4 on (z, dz/da, dz/db, dz/dz0) by hand: ds_a/dt = a s_a + z, ds_b/dt = a s_b + 1, ds_z0/dt = a s_z0.
    L = (z(τ) - 1.2)^2 + (z(t1) - 0.4)^2 with τ = 0.5 fixed; dL/dt1 = 2 (z(t1) - 0.4) f(z(t1));
    dL/dt0 = -dL/dz0 · f(z0) (τ does not move with t0)."""
    a, b = params["a"], params["b"]

    def F(y):
        z, sa, sb, sz = y
        return np.array([a * z + b, a * sa + z, a * sb + 1.0, a * sz])

    def solve(y, ta, tb, n):
        h = (tb - ta) / n
        for _ in range(n):
            k1 = F(y); k2 = F(y + h / 2 * k1); k3 = F(y + h / 2 * k2); k4 = F(y + h * k3)  # noqa: E702
            y = y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        return y

    tau = 0.5
    n1 = round(steps * (tau - t0) / (t1 - t0))
    y_tau = solve(np.array([z0[0], 0.0, 0.0, 1.0]), t0, tau, n1)
    y_1 = solve(y_tau, tau, t1, steps - n1)
    r_tau, r_1 = y_tau[0] - 1.2, y_1[0] - 0.4
    two = 1.0 if bug == "missing factor 2" else 2.0
    loss = r_tau ** 2 + r_1 ** 2
    g = {"a": two * r_tau * y_tau[1] + two * r_1 * y_1[1],  # the factor-2 slip is in dL/da only
         "b": 2 * r_tau * y_tau[2] + 2 * r_1 * y_1[2]}
    g_z0 = 2 * r_tau * y_tau[3] + 2 * r_1 * y_1[3]
    f0 = a * z0[0] + b
    g_t0 = -g_z0 * f0
    if bug == "wrong sign":
        g_t0 = +g_z0 * f0
    if bug == "ignores observation times":
        g_t0 = -(2 * r_1 * y_1[3]) * f0  # only the terminal term's sensitivity: the observation forgotten
    g_t1 = 2 * r_1 * (a * y_1[0] + b)
    return loss, {"params": g, "z0": [g_z0], "t0": g_t0, "t1": g_t1}


@pytest.fixture(scope="module")
def model():
    return load_spec(SPEC)


@pytest.fixture(scope="module")
def oracle(model):
    return symode.compute(model, "oracle", digits=30)


@pytest.mark.slow
def test_correct_numpy_implementation_passes(model, oracle):
    comparisons = assert_gradients_match(numpy_gradient, model, rtol=RTOL)
    assert comparisons[0].ok and len(comparisons[0].rows) == 6  # loss, a, b, z0, t0, t1: everything compared
    assert_gradients_match(numpy_gradient, (model, "exact"), rtol=RTOL)  # the closed form agrees too


@pytest.mark.parametrize("bug, quantity", [
    ("wrong sign", "grad_t0"),
    ("missing factor 2", "grad[a]"),
    ("ignores observation times", "grad_t0"),
])
@pytest.mark.slow
def test_deliberate_error_is_named(model, oracle, bug, quantity):
    with pytest.raises(Mismatch) as info:
        assert_gradients_match(lambda *a: numpy_gradient(*a, bug=bug), model, rtol=RTOL)
    msg = str(info.value)
    assert f"worst: {quantity}" in msg
    # like assert_allclose: every quantity with reference, candidate, abs and rel error
    table = [line.split() for line in msg.splitlines() if line.startswith("  ") and not line.startswith("   ")]
    names = {row[0] for row in table if row}
    assert {"loss", "grad[a]", "grad[b]", "grad_z0[0]", "grad_t0", "grad_t1"} <= names
    row = next(r for r in table if r and r[0] == quantity)
    assert row[-1] == "MISMATCH"
    assert "abs error" in msg and "rel error" in msg


@pytest.mark.slow
def test_only_the_wrong_quantity_is_flagged(model):
    for bug, wrong in (("missing factor 2", {"grad[a]"}), ("wrong sign", {"grad_t0"}),
                       ("ignores observation times", {"grad_t0"})):
        ok, comparisons, _ = gradients_match(lambda *a: numpy_gradient(*a, bug=bug), model, rtol=RTOL)
        assert not ok and {r.name for r in comparisons[0].rows if not r.ok} == wrong


@pytest.mark.slow
def test_quantities_selects(model):
    wrong = lambda *a: numpy_gradient(*a, bug="wrong sign")  # noqa: E731
    assert_gradients_match(wrong, model, rtol=RTOL, quantities=["loss", "grad", "grad_z0", "grad_t1"])
    with pytest.raises(Mismatch):
        assert_gradients_match(wrong, model, rtol=RTOL, quantities=["grad_t0"])
    with pytest.raises(SpecError, match="unknown quantity grad_t2"):
        assert_gradients_match(wrong, model, rtol=RTOL, quantities=["grad_t2"])


def test_decimal_strings_are_read_exactly(tmp_path):
    """A candidate that differs from the reference only in the 25th digit: equal as float64 strings would be,
    different when read exactly -- and the comparison sees it at rtol 1e-22."""
    ref = {"loss": "0.1234567890123456789012345", "grad": {"a": "1"}}
    cand = {"loss": "0.1234567890123456789012346", "grad": {"a": "1"}}
    assert float(ref["loss"]) == float(cand["loss"])
    assert_gradients_match(cand, ref, rtol=1e-20)
    with pytest.raises(Mismatch, match="worst: loss"):
        assert_gradients_match(cand, ref, rtol=1e-26)
    path = tmp_path / "result.json"
    path.write_text(json.dumps(cand))
    with pytest.raises(Mismatch, match="worst: loss"):
        assert_gradients_match(str(path), ref, rtol=1e-26)
    # JSON numbers (not strings) are read as decimals too
    path.write_text('{"loss": 0.1234567890123456789012346, "grad": {"a": 1}}')
    with pytest.raises(Mismatch, match="worst: loss"):
        assert_gradients_match(path, ref, rtol=1e-26)


@pytest.mark.slow
def test_golden_file_reference(tmp_path, model):
    from symode.oracle.export import export_golden
    (path,) = export_golden([model], tmp_path, digits=25, quiet=True)
    assert_gradients_match(numpy_gradient, path, rtol=RTOL)
    with pytest.raises(Mismatch, match="worst: grad_t0"):
        assert_gradients_match(lambda *a: numpy_gradient(*a, bug="wrong sign"), str(path), rtol=RTOL)
    golden = json.loads(path.read_text())
    # a GradResult-shaped candidate against the golden file: the golden's own reference passes, exactly
    assert_gradients_match(golden["reference"], path, rtol=0.0, atol=0.0)


@pytest.mark.slow
def test_missing_quantity_is_named(model, oracle):
    cand = {k: v for k, v in oracle.to_dict().items() if k != "grad_t1"}
    with pytest.raises(Mismatch, match=r"only in reference \[grad_t1\]"):
        assert_gradients_match(cand, oracle, rtol=1e-20)


@pytest.mark.slow
def test_bad_inputs_are_clear_errors(model, oracle):
    with pytest.raises(SpecError, match="not a decimal number"):
        assert_gradients_match({"loss": "0x10", "grad": {}}, oracle, rtol=1e-6)
    with pytest.raises(SpecError, match="must return \\(loss, grads\\)"):
        assert_gradients_match(lambda *a: 1.0, model, rtol=1e-6)
    with pytest.raises(SpecError, match="unknown key"):
        assert_gradients_match(lambda *a: (1.0, {"grad": {}}), model, rtol=1e-6)
    with pytest.raises(SpecError, match="needs a reference that knows its model"):
        assert_gradients_match(numpy_gradient, oracle, rtol=1e-6)
    with pytest.raises(SpecError, match="rtol must be"):
        assert_gradients_match(oracle, oracle, rtol=float("nan"))


@pytest.mark.slow
def test_z0_chain_is_added_for_callables():
    """seed-encoder: z0 = 0.9 w + c.  A callable returning ∂L/∂θ with z0 fixed passes against the total
    gradient; returning the total itself (double counting the chain) fails on w and c only."""
    m = get_model("seed-encoder")
    ref = symode.compute(m, "oracle", digits=25)
    total = {k: float(v) for k, v in ref.grad.items()}
    gz0 = float(ref.grad_z0[0])
    partial = dict(total, w=total["w"] - 0.9 * gz0, c=total["c"] - gz0)
    ans = lambda grads: lambda *a: (float(ref.loss), {"params": grads, "z0": [gz0],  # noqa: E731
                                                      "t0": float(ref.grad_t0)})
    assert_gradients_match(ans(partial), m, rtol=1e-12, quantities=["loss", "grad", "grad_z0", "grad_t0"])
    ok, comps, _ = gradients_match(ans(total), m, rtol=1e-12, quantities=["grad"])
    assert not ok and {r.name for r in comps[0].rows if not r.ok} == {"grad[w]", "grad[c]"}


@pytest.mark.slow
def test_reference_cache_keyed_by_model_and_digits(tmp_path, model):
    stats: dict = {}
    r1 = cached_reference(model, 20, root=tmp_path, stats=stats)
    r2 = cached_reference(model, 20, root=tmp_path, stats=stats)
    assert stats == {"misses": 1, "hits": 1}
    assert r1.to_dict() == r2.to_dict()
    assert reference_path(model, 20, tmp_path).exists()
    cached_reference(model, 21, root=tmp_path, stats=stats)  # other digits: another entry
    other = model.with_values({"a": Decimal("-0.7")})
    cached_reference(other, 20, root=tmp_path, stats=stats)  # other values: another hash
    assert stats == {"misses": 3, "hits": 1}
    reference_path(model, 20, tmp_path).write_text('{"format": "symode-reference-cache-1", "garbage": 1}')
    r3 = cached_reference(model, 20, root=tmp_path, stats=stats)  # damaged: recomputed and replaced
    assert stats["misses"] == 4 and r3.to_dict() == r1.to_dict()


@pytest.mark.slow
def test_pytest_plugin_fixture_caches_across_runs(tmp_path):
    test = tmp_path / "test_uses_symode.py"
    test.write_text(textwrap.dedent('''
        from symode.testing import assert_gradients_match

        def test_it(symode_reference):
            ref = symode_reference("logistic", digits=20)
            assert_gradients_match(ref, ("logistic", "exact"), rtol=1e-15)
            print("STATS", symode_reference.stats)
    '''))
    env = {**os.environ, "SYMODE_CACHE_DIR": str(tmp_path / "cache"), "SYMODE_QUIET": "1"}
    outs = []
    for _ in range(2):
        p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", str(test)],
                           capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
        assert p.returncode == 0, p.stdout + p.stderr
        outs.append(next(line for line in p.stdout.splitlines() if "STATS" in line))
    assert outs == ["STATS {'hits': 0, 'misses': 1}", "STATS {'hits': 1, 'misses': 0}"]
