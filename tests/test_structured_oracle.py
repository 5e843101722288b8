"""Issue 12, item 3: the oracle on structured (network) models.

References (independent of the structured oracle):
* the scalar oracle on ``model.scalar_model()`` (forward sensitivities in every parameter, the SymPy scalar
  derivation): same model, other equations and tapes;
* a closed form on a linear network (identity activations): z(t) = expm(M (t - t0)) [z0; 1] with
  M = [[W2 W1, W2 b1 + b2], [0, 0]], evaluated with mpmath at 80 digits, and its derivatives by central
  differences with step 1e-25 (truncation ~1e-50, rounding ~1e-55 relative: far below the 1e-29 compared);
* heyoka's variational equations (multiple precision, LLVM-compiled Taylor) on P2's scalar form (slow tier).

Agreement is judged by the oracle's own error bound: |a - b| <= (bound_a + bound_b) * max(|b|, 1e-8) per value.
"""
from __future__ import annotations

import sys
from pathlib import Path

import mpmath
import pytest

from symode.errors import IntegrationError
from symode.library import get_model
from symode.oracle.engine import oracle_gradient
from symode.spec import load_spec, load_spec_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_structured_routes import RICH  # noqa: E402

FLOOR = mpmath.mpf(10) ** -8


def within_bounds(a, b) -> None:
    bound = mpmath.mpf(a.error_bound) + mpmath.mpf(b.error_bound)
    for (name, x), (_, y) in zip(a.named_values(), b.named_values()):
        assert abs(x - y) <= bound * max(abs(y), FLOOR), (name, x, y)


@pytest.mark.parametrize("text", ["mlp-2-3", RICH, RICH.replace('["sigmoid", "softplus"]', '["relu", "tanh"]')],
                         ids=["mlp", "rich", "relu"])
def test_structured_oracle_equals_scalar_oracle(text):
    m = get_model(text) if text == "mlp-2-3" else load_spec(text)
    a = oracle_gradient(m, 30, quiet=True)
    b = oracle_gradient(m.scalar_model(), 30, quiet=True)
    assert [n for n, _ in a.named_values()] == [n for n, _ in b.named_values()]
    within_bounds(a, b)
    assert "random directions" in a.stats["route_check"]


LINEAR = '''
name = "lin"
states = [{name = "z", size = 2}]
z0 = [["0.5", "-0.5"]]
t0 = "0.1"
t1 = "1.2"
[network]
hidden = [3]
activation = "identity"
[params]
W1 = [["0.1", "-0.2"], ["0.3", "0.4"], ["-0.5", "0.6"]]
b1 = ["0.01", "0.02", "0.03"]
W2 = [["0.5", "-0.3", "0.2"], ["-0.4", "0.1", "0.3"]]
b2 = ["0", "0.1"]
[loss]
terminal = "sum((z - [0.2, 0.1])**2)"
[loss.observations]
times = ["0.5"]
data = [["0.3", "0.2"]]
'''


def _linear_network_loss(theta, z0, t0, t1) -> mpmath.mpf:
    """The closed form: L for the linear network of LINEAR (θ in the model's order)."""
    W1 = mpmath.matrix(3, 2)
    k = 0
    for i in range(3):
        for j in range(2):
            W1[i, j] = theta[k]
            k += 1
    b1 = mpmath.matrix(theta[6:9])
    W2 = mpmath.matrix(2, 3)
    k = 9
    for i in range(2):
        for j in range(3):
            W2[i, j] = theta[k]
            k += 1
    b2 = mpmath.matrix(theta[15:17])
    A, c = W2 * W1, W2 * b1 + b2
    M = mpmath.zeros(3, 3)
    for i in range(2):
        for j in range(2):
            M[i, j] = A[i, j]
        M[i, 2] = c[i]

    def z(t):
        y = mpmath.expm(M * (t - t0)) * mpmath.matrix([z0[0], z0[1], 1])
        return [y[0], y[1]]
    z5, z1 = z(mpmath.mpf("0.5")), z(t1)
    return (z5[0] - mpmath.mpf("0.3")) ** 2 + (z5[1] - mpmath.mpf("0.2")) ** 2 + \
        (z1[0] - mpmath.mpf("0.2")) ** 2 + (z1[1] - mpmath.mpf("0.1")) ** 2


def test_linear_network_against_its_closed_form():
    m = load_spec(LINEAR)
    r = oracle_gradient(m, 30, quiet=True)
    with mpmath.workdps(80):
        theta = [mpmath.mpf(v.p) / v.q for v in m.theta]
        z0 = [mpmath.mpf("0.5"), mpmath.mpf("-0.5")]
        t0, t1 = mpmath.mpf("0.1"), mpmath.mpf("1.2")
        h = mpmath.mpf(10) ** -25

        def d(f):
            return (f(h) - f(-h)) / (2 * h)
        ref = {"loss": _linear_network_loss(theta, z0, t0, t1)}
        for j, name in enumerate(m.param_names):
            ref[f"grad[{name}]"] = d(lambda e: _linear_network_loss([x + (e if k == j else 0)
                                                                      for k, x in enumerate(theta)], z0, t0, t1))
        for i in range(2):
            ref[f"grad_z0[{i}]"] = d(lambda e: _linear_network_loss(theta, [x + (e if k == i else 0)
                                                                             for k, x in enumerate(z0)], t0, t1))
        ref["grad_t0"] = d(lambda e: _linear_network_loss(theta, z0, t0 + e, t1))
        ref["grad_t1"] = d(lambda e: _linear_network_loss(theta, z0, t0, t1 + e))
        bound = mpmath.mpf(r.error_bound)
        got = dict(r.named_values())
        assert set(got) == set(ref)
        for name, v in ref.items():
            assert abs(got[name] - v) <= bound * max(abs(v), FLOOR), (name, got[name], v)


def test_unknowns_grow_with_states_plus_parameters():
    """The adjoint carries z, λ and μ (2 nz + nθ unknowns); the forward route nz per direction -- never nz·nθ."""
    from symode.oracle.structured_engine import DIRECTIONS
    from symode.oracle.structured_routes import _systems
    m = get_model("mlp-4-32")
    s = _systems(m)
    assert s.backward.n_states == 2 * m.nz + m.np
    tape, _ = s.forward(DIRECTIONS)
    assert tape.n_states == m.nz * (DIRECTIONS + 2)
    # one tape operation per matrix product, not one per weight
    n_matvec = sum(1 for o in s.backward._ops if o.op == "matvec")
    assert n_matvec == 4 and len(s.backward._ops) < 20 * 32


def test_a_wrong_gradient_component_is_caught_by_the_random_directions(monkeypatch):
    """Sabotage one component of the adjoint's dL/dθ by 1e-20 relative: the directional cross-check sees it."""
    from symode.oracle import structured_routes as R
    real = R._StructuredAdjoint.run

    def run(self):
        out = real(self)
        out["grad"][5] *= 1 + mpmath.mpf(10) ** -20
        return out
    monkeypatch.setattr(R._StructuredAdjoint, "run", run)
    with pytest.raises(IntegrationError, match="random direction"):
        oracle_gradient(get_model("mlp-2-3"), 30, quiet=True)


@pytest.mark.slow
def test_p2_against_heyoka_variational_equations():
    heyoka_engine = pytest.importorskip("symode.oracle.heyoka_engine")
    pytest.importorskip("heyoka")
    m = load_spec_file(Path(__file__).resolve().parents[1] / "examples" / "bench-p2.toml")
    r = oracle_gradient(m, 30, quiet=True)
    out = heyoka_engine.compare_with_oracle(m.scalar_model(), 30, oracle=r)  # heyoka's own tolerance table
    assert out["agrees"], (out["worst"], out["difference"], out["tolerance"])
    assert out["difference"] <= mpmath.mpf(r.error_bound) * 10
