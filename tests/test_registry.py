"""The registry of gradient routes (symode.registry): one declaration per route, everything else derived.

What is checked, and against what:
- every list of routes (``symode grad --method`` choices, ``symode check``'s routes, the JSON schema's method
  enum and its per-kind rules) equals the registry, and the shipped schema file equals the schema derived from
  the built-ins alone;
- options are typed and reachable from ``compute`` and the CLI (CVODES's tolerances);
- a route in a real distribution outside symode (a temporary directory on PYTHONPATH holding a module and its
  ``*.dist-info/entry_points.txt``, found by importlib.metadata) appears in ``symode grad --method``, runs in
  ``symode check`` and is in ``symode schema grad``, with no edit to symode.  Its numbers come from an
  independent implementation (RK4 in NumPy, derivatives by the complex step), judged by ``symode check``
  against the oracle and compared here with symode's discrete adjoint (the same discrete quantity);
- declarations that break the rules are refused (RegistrationError), a result that breaks its route's
  declaration is refused, a broken plugin is skipped with one warning line.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from symode import FixedStep, GradResult, Option, Route, compute, get_model, grad_schema, register_method
from symode.errors import SpecError
from symode.registry import (BUILTIN_ROUTES, RegistrationError, _load, checkable_routes, route_names, routes,
                             unregister_method)

ROOT = Path(__file__).resolve().parents[1]

#: Tolerances of this module (each with its source).
TOL = {
    # toy route (NumPy RK4 + complex step) vs symode's discrete adjoint: the same discrete RK4 loss and its
    # exact derivatives, computed by two implementations in a different order: float64 rounding of a few
    # hundred operations (the project's "float64-reordered" entry is 1e-13 relative)
    "same_discrete_quantity": 1e-11,
}

# -----------------------------------------------------------------------------------------------------------
# a route package outside symode: RK4 in NumPy with complex-step derivatives

TOY_MODULE = '''
"""A symode route from outside symode: classical RK4 in NumPy; every derivative of the discrete loss by the
complex step, d/dx L(x) = Im L(x + i h) / h with h = 1e-30 (exact to rounding for analytic L)."""
import numpy as np
import sympy

from symode import FixedStep, GradResult, Option, Route, SpecError


class ComplexStepRK4(Route):
    name = "toy-rk4"
    summary = "RK4 in NumPy, derivatives by the complex step (a plugin outside symode)"
    options = (Option("steps", int, 100, "number of fixed steps"),)
    accuracy = FixedStep(order=4)

    def gradient(self, model, steps=100):
        if model.running is not None or model.observations or model.terminal is None:
            raise SpecError("toy-rk4 handles a terminal loss only")
        z, p, t = list(model.states), list(model.params), model.t
        f = sympy.lambdify([z, t, p], list(model.rhs), "numpy")
        z0 = sympy.lambdify([p], list(model.z0), "numpy")
        ell = sympy.lambdify([z, p], model.terminal, "numpy")
        theta = np.array([float(model.param_values[s]) for s in p], dtype=complex)
        x0 = np.concatenate([theta, np.zeros(len(z)), [float(model.t0), float(model.t1)]]).astype(complex)

        def loss(x):
            th, e, t0, t1 = x[:len(p)], x[len(p):len(p) + len(z)], x[-2], x[-1]
            y = np.array(z0(th), dtype=complex) + e
            h = (t1 - t0) / steps
            F = lambda yy, tt: np.array(f(yy, tt, th), dtype=complex)  # noqa: E731
            for k in range(steps):
                tk = t0 + k * h
                k1 = F(y, tk)
                k2 = F(y + h / 2 * k1, tk + h / 2)
                k3 = F(y + h / 2 * k2, tk + h / 2)
                k4 = F(y + h * k3, tk + h)
                y = y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
            return ell(y, th), y

        L, y1 = loss(x0)
        d = []
        for k in range(x0.size):
            x = x0.copy()
            x[k] += 1e-30j
            d.append(loss(x)[0].imag / 1e-30)
        n = len(p)
        return GradResult(model=model.name, method=self.name, loss=float(L.real),
                          grad={s.name: d[i] for i, s in enumerate(p)}, grad_z0=d[n:n + len(z)],
                          grad_t0=d[-2], grad_t1=d[-1], scheme="rk4", steps=steps,
                          z1=[float(v.real) for v in y1])


ROUTE = ComplexStepRK4()
'''


def _distribution(tmp_path: Path, module: str, entry_points: str, name: str = "toy_symode_route") -> Path:
    """A real (unpacked) distribution in ``tmp_path/site``: the module and its dist-info metadata."""
    site = tmp_path / "site"
    (site / name).mkdir(parents=True)
    (site / name / "__init__.py").write_text(module, encoding="utf-8")
    info = site / f"{name}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(entry_points, encoding="utf-8")
    return site


def _cli(site: Path, *args, timeout=600):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), str(ROOT)]), SYMODE_QUIET="1")
    return subprocess.run([sys.executable, "-m", "symode.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=timeout)


@pytest.mark.slow
def test_a_route_from_an_installed_distribution_is_everywhere(tmp_path):
    site = _distribution(tmp_path, TOY_MODULE, "[symode.methods]\ntoy-rk4 = toy_symode_route:ROUTE\n")
    # symode grad --method: a choice, listed in the help, and it runs
    p = _cli(site, "grad", "--help")
    assert p.returncode == 0 and "toy-rk4" in p.stdout and "fixed-step, order 4" in p.stdout, p.stdout + p.stderr
    p = _cli(site, "grad", "logistic", "--method", "toy-rk4", "--steps", "100", "--json")
    assert p.returncode == 0, p.stderr
    toy = json.loads(p.stdout)
    # the schema derived where the plugin is installed has it (and validates its output); the shipped one does not
    p = _cli(site, "schema", "grad")
    assert p.returncode == 0, p.stderr
    schema = json.loads(p.stdout)
    assert schema["properties"]["method"]["enum"][-1] == "toy-rk4"
    assert any("toy-rk4" in rule["if"]["properties"]["method"]["enum"] and rule["then"] == {"required": ["scheme", "steps"]}
               for rule in schema["allOf"])
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft202012Validator(schema).validate(toy)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(grad_schema(routes())).validate(toy)  # this process: no plugin
    # symode check runs it by default, judged against the oracle by its declared accuracy (Richardson, order 4)
    p = _cli(site, "check", "logistic", "--steps", "400")
    assert p.returncode == 0, p.stdout + p.stderr
    rows = {line.split("|")[1].strip(): line for line in p.stdout.splitlines() if line.startswith("| ")}
    assert "**PASS**" in rows["toy-rk4"], p.stdout
    assert "fixed-step-richardson" in rows["toy-rk4"]
    # an independent implementation of the same discrete quantity: symode's discrete adjoint (CasADi graph,
    # reverse mode) agrees with the complex-step NumPy RK4 to float64 rounding
    ref = compute(get_model("logistic"), "discrete", scheme="rk4", steps=100).to_dict()
    for key in ("loss", "grad_t0", "grad_t1"):
        assert abs(float(toy[key]) - float(ref[key])) <= TOL["same_discrete_quantity"] * abs(float(ref[key])), key
    for a, b in zip([*toy["grad"].values(), *toy["grad_z0"]], [*ref["grad"].values(), *ref["grad_z0"]]):
        assert abs(float(a) - float(b)) <= TOL["same_discrete_quantity"] * abs(float(b))


@pytest.mark.slow
def test_a_broken_plugin_is_skipped_with_one_warning_line(tmp_path):
    site = _distribution(tmp_path, "raise ImportError('this plugin is broken')\n",
                         "[symode.methods]\nbroken = toy_symode_route:ROUTE\n")
    p = _cli(site, "grad", "--help")
    assert p.returncode == 0
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("symode: warning: skipped the route plugin entry point broken = "), p.stderr
    assert "this plugin is broken" in lines[0] and "toy_symode_route" in lines[0]


# -----------------------------------------------------------------------------------------------------------
# everything that lists routes is derived from the registry


def _builtins():
    return [_load(ref) for ref in BUILTIN_ROUTES]


def test_shipped_schema_equals_the_schema_derived_from_the_builtin_routes():
    from symode.schema import shipped_grad_schema
    assert shipped_grad_schema() == grad_schema(_builtins())


def test_schema_method_enum_and_kind_rules_equal_the_registry():
    s = grad_schema()
    assert s["properties"]["method"]["enum"] == list(route_names())
    by_rule = {json.dumps(rule["then"], sort_keys=True): rule["if"]["properties"]["method"]["enum"]
               for rule in s["allOf"]}
    reference = [r.name for r in routes() if r.accuracy.kind in ("exact", "high-precision")]
    fixed = [r.name for r in routes() if r.accuracy.kind == "fixed-step"]
    assert reference == ["oracle", "exact"] and fixed == ["discrete", "forward", "adjoint", "adjoint-stored"]
    assert by_rule[json.dumps({"required": ["scheme", "steps"]}, sort_keys=True)] == fixed
    kind_rules = [v for k, v in by_rule.items() if "scheme" in k]
    assert sorted(kind_rules) == sorted([reference, fixed])
    # the quantity rules: routes without time gradients (diffrax's BacksolveAdjoint) may not carry them
    no_times = [r.name for r in routes() if "grad_t0" not in r.quantities]
    assert no_times == ["diffrax-backsolve"]
    forbid = {"not": {"anyOf": [{"required": ["grad_t0"]}, {"required": ["grad_t1"]}]}}
    assert by_rule[json.dumps(forbid, sort_keys=True)] == no_times
    # grad_t0 is never required, even of routes that compute it: it is absent where undefined (an observation
    # exactly at t0)
    assert not any("grad_t0" in rule["then"].get("required", ()) for rule in s["allOf"])
    assert "grad_t0" not in s["required"]


def test_cli_choices_and_check_routes_come_from_the_registry():
    from symode.cli import build_parser
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices
    grad = {a.dest: a for a in sub["grad"]._actions}
    assert list(grad["method"].choices) == list(route_names())
    for r in routes():  # every option of every route is a flag of symode grad
        for o in r.options:
            assert o.name in grad and o.flag in grad[o.name].option_strings
    assert [r.name for r in checkable_routes()] == ["discrete", "forward", "adjoint", "adjoint-stored", "cvodes",
                                                    "torchdiffeq", "torchdiffeq-adjoint", "diffrax",
                                                    "diffrax-direct", "diffrax-backsolve"]
    check = {a.dest: a for a in sub["check"]._actions}
    assert "discrete,forward,adjoint,adjoint-stored,cvodes" in check["methods"].help


@pytest.mark.slow
def test_cvodes_options_reach_the_route_from_compute_and_the_cli(tmp_path):
    # the declared defaults are the ones used; a given value reaches CVODES (its own statistics echo them)
    m = get_model("logistic")
    assert compute(m, "cvodes").stats["reltol"] == 1e-12
    loose = compute(m, "cvodes", abstol=1e-6, reltol=1e-6)
    assert loose.stats["abstol"] == 1e-6 and loose.stats["reltol"] == 1e-6
    # the Python API names Python arguments (hardening round two), the command line its flags
    with pytest.raises(SpecError, match="multistep="):
        compute(m, "cvodes", multistep="rk4")
    with pytest.raises(SpecError, match="max_num_steps="):
        compute(m, "cvodes", max_num_steps=2.5)
    with pytest.raises(SpecError, match="steps="):
        compute(m, "discrete", steps="100")
    p = _cli(tmp_path, "grad", "logistic", "--method", "cvodes", "--reltol", "1e-7", "--abstol", "1e-7",
             "--multistep", "bdf", "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["stats"]["reltol"] == 1e-7
    p = _cli(tmp_path, "grad", "logistic", "--method", "discrete", "--reltol", "1e-7")
    assert p.returncode == 2 and p.stderr.strip() == ("symode: error: method 'discrete' does not take --reltol (it "
                                                      "takes --scheme, --steps)")


# -----------------------------------------------------------------------------------------------------------
# register_method in process


@pytest.fixture
def registered():
    """Register routes for one test and remove them afterwards."""
    added = []

    def add(route):
        added.append(register_method(route).name)
        return route
    yield add
    for name in added:
        unregister_method(name)


class _LossAndGrad(Route):
    """A route that computes only L and dL/dθ: symode's discrete adjoint with the rest dropped."""

    name = "loss-and-grad"
    summary = "discrete adjoint, dL/dz0 and time gradients dropped (a test route)"
    options = (Option("steps", int, 100, "number of fixed steps"),)
    accuracy = FixedStep(order=4)
    quantities = frozenset({"loss", "grad"})

    def gradient(self, model, steps=100):
        r = compute(model, "discrete", scheme="rk4", steps=steps)
        return GradResult(model=r.model, method=self.name, loss=r.loss, grad=r.grad, grad_z0=None, grad_t0=None,
                          scheme=r.scheme, steps=r.steps)


def test_a_route_with_fewer_quantities_is_checked_on_those_and_its_json_omits_the_rest(registered):
    from symode.check.report import check_model
    registered(_LossAndGrad())
    m = get_model("logistic")
    r = compute(m, "loss-and-grad")
    d = r.to_dict()
    assert "grad_z0" not in d and "grad_t0" not in d and "grad_t1" not in d
    schema = grad_schema()
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft202012Validator(schema).validate(d)
    full = compute(m, "discrete").to_dict()
    jsonschema.Draft202012Validator(schema).validate(full)
    with pytest.raises(jsonschema.ValidationError):  # a route that computes grad_z0 must give it
        jsonschema.Draft202012Validator(schema).validate({k: v for k, v in full.items() if k != "grad_z0"})
    with pytest.raises(jsonschema.ValidationError):  # and one that does not, must not
        jsonschema.Draft202012Validator(schema).validate({**d, "grad_z0": full["grad_z0"]})
    report = check_model(m, methods=["loss-and-grad", "discrete"])
    rows = {row.method: row for row in report.rows}
    assert rows["loss-and-grad"].verdict == "PASS", rows["loss-and-grad"].detail
    names = rows["loss-and-grad"].comparison.to_markdown()
    assert "grad_z0" not in names and "grad_t0" not in names


def test_a_result_that_breaks_its_declaration_is_refused(registered):
    class Liar(_LossAndGrad):
        name = "liar"

        def gradient(self, model, steps=100):
            r = compute(model, "discrete", scheme="rk4", steps=steps)
            r.method = self.name
            return r  # declares loss and grad only, but returns grad_z0 too

    registered(Liar())
    with pytest.raises(RegistrationError, match="undeclared quantity grad_z0"):
        compute(get_model("logistic"), "liar")


@pytest.mark.parametrize("attrs,fragment", [
    ({"name": "Bad Name"}, "lowercase"),
    ({"name": "oracle"}, "is taken"),
    ({"accuracy": None}, "accuracy must be"),
    ({"quantities": frozenset({"loss"})}, "must include loss and grad"),
    ({"quantities": frozenset({"loss", "grad", "grad_t0"})}, "declared together"),
    ({"options": (Option("steps", float, 1.0, "x"),)}, "is float but route"),
    ({"options": (Option("json", int, 1, "x"),)}, "free identifier name"),
    ({"accuracy": FixedStep()}, "needs the option 'scheme'"),
])
def test_bad_declarations_are_refused(attrs, fragment):
    bad = type("Bad", (_LossAndGrad,), {"name": "bad-route", **attrs})()
    with pytest.raises(RegistrationError, match=fragment):
        register_method(bad)
    assert "bad-route" not in route_names()


def test_unknown_methods_and_fixed_step_only_helpers_name_the_choices():
    from symode.casadi.routes import batch_gradient
    with pytest.raises(SpecError, match="unknown method 'nope'; choose one of oracle, exact"):
        compute(get_model("linear"), "nope")
    with pytest.raises(SpecError, match="not a fixed-step route; choose one of discrete, forward, adjoint"):
        batch_gradient(get_model("linear"), [[1.0]], method="oracle")
