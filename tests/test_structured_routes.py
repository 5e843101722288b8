"""Issue 12, item 3: every float64 route gives the same numbers on the structured (matrix) form of a model and on
its scalar form (``Model.scalar_model()``, the element-wise expansion: the reference here is the existing scalar
path, independent of the structured CasADi graphs), and the structured graphs keep matrix products.

Tolerances (reasons):
    FLOAT64   tolerance("float64-reordered") (1e-13): the same discrete scheme, only the order of the floating-
              point operations differs (mtimes loops vs expanded sums)
    CVODES    the accuracy `symode check` measures for the route (route_tolerance, doubled): an adaptive solver's
              step sequence depends on rounding, so the two forms agree to its own accuracy, not to rounding
"""
from __future__ import annotations

import pytest

from symode.check.compare import compare
from symode.check.tolerances import tolerance
from symode.library import get_model
from symode.methods import compute
from symode.spec import load_spec

FLOAT64 = tolerance("float64-reordered")

#: A network with everything the structured path translates: two hidden layers with different activations, a
#: time input, a running cost, z0 from an encoder of the parameters, and losses that use parameters.
RICH = '''
name = "rich"
states = [{name = "z", size = 2}]
z0 = ["tanh(E @ [0.3, -0.2] + c)"]
t0 = "0.1"
t1 = "0.9"
[network]
hidden = [3, 2]
activation = ["sigmoid", "softplus"]
time_input = true
[params]
W1 = [["0.1", "-0.2"], ["0.3", "0.4"], ["-0.5", "0.6"]]
Wt1 = ["0.2", "-0.1", "0.05"]
b1 = ["0.01", "0.02", "0.03"]
W2 = [["0.5", "-0.3", "0.2"], ["-0.4", "0.1", "0.3"]]
b2 = ["0", "0.1"]
W3 = [["0.7", "-0.6"], ["0.2", "0.9"]]
b3 = ["-0.1", "0.2"]
E = [["1", "0.5"], ["-0.5", "1"]]
c = ["0.1", "-0.1"]
k = "0.3"
[loss]
terminal = "sum((z - [0.5, -0.5])**2) + k*sum(W3**2)"
running = "0.1*sum(z**2)"
[loss.observations]
times = ["0.4", "0.6"]
data = [["0.2", "0.1"], ["0.3", "-0.2"]]
term = "sum((z - data)**2)/2"
'''

MODELS = {"mlp-2-3": lambda: get_model("mlp-2-3"), "rich": lambda: load_spec(RICH)}


@pytest.fixture(scope="module", params=sorted(MODELS))
def pair(request):
    m = MODELS[request.param]()
    assert m.structure is not None
    return m, m.scalar_model()


@pytest.mark.parametrize("method", ["discrete", "forward", "adjoint", "adjoint-stored"])
def test_fixed_step_routes_equal_on_both_forms(pair, method):
    m, sm = pair
    a = compute(m, method, scheme="rk4", steps=40)
    b = compute(sm, method, scheme="rk4", steps=40)
    res = compare(a, b, tolerance=FLOAT64)
    assert res.ok, res.summary()


def test_cvodes_equal_on_both_forms_to_its_accuracy(pair):
    """CVODES's global error is not bounded by its tolerances (mlp-2-3, 10 observation times: 1.1e-7 at 1e-12), so
    the two forms are compared at the accuracy ``symode check`` measures for the structured form (its rule plus
    10x its difference from a rerun at 100x tighter tolerances: symode.check.tolerances.solver_tolerance), doubled
    because both forms carry that error."""
    from symode.check.report import route_tolerance
    from symode.registry import get_route
    m, sm = pair
    r, tol = route_tolerance(get_route("cvodes"), m, {})
    assert tol.purpose == "adaptive-solver+refinement"
    res = compare(compute(sm, "cvodes"), r, tolerance=tol.scaled(2.0))
    assert res.ok, res.summary()


def test_graphs_keep_matrix_products():
    """The right-hand side and the adjoint are MX Functions whose size does not depend on the hidden width: a
    scalar expansion would grow with every weight (H = 16 -> 64: 4x)."""
    from symode.casadi.model_graphs import model_graphs
    sizes = []
    for H in (16, 64):
        g = model_graphs(get_model(f"mlp-4-{H}"))
        assert g.f.is_a("MXFunction") and g.adj.is_a("MXFunction")
        sizes.append((g.f.n_instructions(), g.adj.n_instructions(), g.back.n_instructions()))
    assert sizes[0] == sizes[1]


def test_structured_fixed_step_graph_does_not_grow_with_width():
    """The discrete adjoint's whole loss-and-gradient graph (routes) has the same size for H = 64 and H = 256."""
    from symode.casadi.routes.plan import _plan
    counts = []
    for H in (64, 256):
        plan = _plan(get_model(f"mlp-2-{H}"), "discrete", "rk4", 22)
        counts.append(plan.G.n_instructions())
    assert counts[0] == counts[1]


def test_relu_kink_at_the_initial_point_is_flagged():
    """relu(a) with a pre-activation exactly 0 at (t0, z0): 0.2*0.5 + 0*(-0.5) - 0.1 = 0 (by hand)."""
    text = RICH.replace('activation = ["sigmoid", "softplus"]', 'activation = ["relu", "tanh"]').replace(
        'W1 = [["0.1", "-0.2"], ["0.3", "0.4"], ["-0.5", "0.6"]]', 'W1 = [["0.2", "0"], ["0.3", "0.4"], ["-0.5", "0.6"]]')
    text = text.replace('z0 = ["tanh(E @ [0.3, -0.2] + c)"]', 'z0 = [["0.5", "-0.5"]]').replace('t0 = "0.1"', 't0 = "0"')
    text = text.replace('Wt1 = ["0.2", "-0.1", "0.05"]', 'Wt1 = ["0", "-0.1", "0.05"]').replace(
        'b1 = ["0.01", "0.02", "0.03"]', 'b1 = ["-0.1", "0.02", "0.03"]')
    m = load_spec(text)
    assert m.structure.has_kinks() and not load_spec(RICH).structure.has_kinks()
    r = compute(m, "discrete", scheme="rk4", steps=40)
    assert "sits on its kink at the initial point" in r.stats["non_differentiable"]


RELU_TIME = '''
name = "relu2"
states = [{name = "z", size = 2}]
z0 = [["0.5", "-0.5"]]
t0 = "0"
t1 = "1"
[network]
hidden = [2]
activation = "relu"
time_input = true
[params]
W1 = [["0.3", "-0.7"], ["0.5", "0.2"]]
b1 = ["-0.8", "0.3"]
Wt1 = ["1", "0"]
W2 = [["0.3", "-0.7"], ["0.5", "0.2"]]
b2 = ["0.1", "-0.2"]
[loss]
terminal = "sum(z*z)"
'''


def test_a_relu_network_in_matrix_form_names_its_kink_crossing_and_cvodes_runs():
    """Regression (red-team pass): on a matrix-form model with relu the kink finder raised inside (the structured
    graph has no element-wise translation) -- every result silently lost its kink note and CVODES/check died
    with a traceback.  The crossing (the first unit's pre-activation 0.3 z0 - 0.7 z1 + t - 0.8 changes sign near
    t = 0.29) is now found on the scalar form of the same model: the same note, the same time, on both forms;
    and CVODES gives the scalar form's numbers."""
    m = load_spec(RELU_TIME)
    s = m.scalar_model()
    a, b = compute(m, "discrete", scheme="rk4", steps=50), compute(s, "discrete", scheme="rk4", steps=50)
    assert "kink_crossings" in a.stats and a.stats["kink_crossings"] == b.stats["kink_crossings"]
    assert "t = 0.2944" in a.stats["kink_crossings"]
    c, d = compute(m, "cvodes"), compute(s, "cvodes")
    assert c.stats["pieces"] == d.stats["pieces"] == 2
    assert compare(c, d, tolerance=tolerance("cvodes-vs-oracle")).ok
