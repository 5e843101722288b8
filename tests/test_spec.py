"""Spec files (the public TOML contract) and Model validation.

Expected values are hand-written from the format's definition (exact decimals, one expression per state).
"""
from __future__ import annotations


import pytest
import sympy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from symode.errors import SpecError
from symode.library import LIBRARY, get_model, mlp_model, model_names
from symode.model import T, Model
from symode.spec import dump_spec, load_spec, load_spec_file

LOGISTIC = '''
name = "logistic"
states = ["z"]
rhs = ["r*z*(1 - z/K)"]
z0 = ["0.1"]
t0 = "0"
t1 = "3"
[params]
r = "1.3"
K = "2.0"
[loss]
terminal = "(z - 1.5)**2"
'''


def spec(**over) -> str:
    """The logistic spec with top-level lines replaced (value given as raw TOML)."""
    lines = LOGISTIC.strip().splitlines()
    out = []
    for line in lines:
        key = line.split("=")[0].strip()
        if key in over and not line.startswith("["):
            v = over.pop(key)
            if v is not None:
                out.append(f"{key} = {v}")
        else:
            out.append(line)
    head = [f"{k} = {v}" for k, v in over.items() if v is not None]
    return "\n".join(head + out) + "\n"


def test_issue_example_parses_exactly():
    m = load_spec(LOGISTIC)
    z, r, K = sympy.symbols("z r K", real=True)
    assert m.name == "logistic" and m.states == (z,) and m.params == (r, K)
    assert m.rhs == (r * z * (1 - z / K),)
    assert m.z0 == (sympy.Rational(1, 10),)  # exact decimal, not the binary double 0.1
    assert m.z0[0] != sympy.Rational(0.1)
    assert m.param_values == {r: sympy.Rational(13, 10), K: 2}
    assert m.t0 == 0 and m.t1 == 3
    assert m.terminal == (z - sympy.Rational(3, 2)) ** 2


def test_toml_numbers_are_exact_decimals():
    m = load_spec(spec(t1="3.1", z0='["0.1"]').replace('r = "1.3"', "r = 1.3"))
    assert m.t1 == sympy.Rational(31, 10)
    assert m.param_values[m.params[0]] == sympy.Rational(13, 10)


def test_observations_and_running_cost():
    text = LOGISTIC.replace('terminal = "(z - 1.5)**2"', 'running = "0.5*z**2*t"\n[loss.observations]\n'
                                                         'times = ["0.5", "3"]\ndata = [["0.25"], ["-1"]]')
    m = load_spec(text)
    z = m.states[0]
    assert [o.time for o in m.observations] == [sympy.Rational(1, 2), 3]
    assert m.observations[0].term == (z - sympy.Rational(1, 4)) ** 2
    assert m.observations[1].term == (z + 1) ** 2
    assert m.running == z ** 2 * T / 2 and m.terminal is None


def test_z0_may_use_params_and_rhs_may_use_t():
    m = load_spec(spec(z0='["K/20"]', rhs='["r*z*(1 - z/K) + sin(t)"]'))
    r, K = m.params
    assert m.z0 == (K / 20,)
    assert m.rhs[0].has(T)


@pytest.mark.parametrize("field,value,fragment", [
    ("z0", '["0.1", "0.2"]', "z0: 2 values for 1 states"),
    ("rhs", '[]', "rhs: 0 expressions"),
    ("t1", '"0"', "t1 = 0 must be greater than t0"),
    ("t1", '"-1"', "must be greater"),
    ("t0", '"nan"', "t0"),
    ("t1", '"1e400"', "t1"),
    ("t1", "inf", "t1"),
    ("t1", "nan", "t1"),
    ("states", '["t"]', "'t' is the time variable"),
    ("states", '["z", "z"]', "declared twice"),
    ("states", '["r"]', "declared twice"),
    ("name", '"bad name"', "name"),
    ("name", '"../etc"', "name"),
    ("z0", '["z"]', "z0[0]"),
    ("rhs", '["r*q"]', "q"),
    ("extra", '"1"', "unknown key"),
])
def test_structural_errors_name_the_field(field, value, fragment):
    with pytest.raises(SpecError) as exc:
        load_spec(spec(**{field: value}))
    assert fragment in str(exc.value)


@pytest.mark.parametrize("loss,fragment", [
    ('[loss.observations]\ntimes = ["2", "1"]\ndata = [["1"], ["1"]]', "strictly increasing"),
    ('[loss.observations]\ntimes = ["-0.5"]\ndata = [["1"]]', "outside [t0, t1]"),  # an observation at t0 is allowed (issue 12)
    ('[loss.observations]\ntimes = ["4"]\ndata = [["1"]]', "outside [t0, t1]"),
    ('[loss.observations]\ntimes = ["1"]\ndata = [["1", "2"]]', "data[0]"),
    ('[loss.observations]\ntimes = ["1", "2"]\ndata = [["1"]]', "1 rows for 2 times"),
    ('[loss.observations]\ntimes = ["1"]\ndata = [["nan"]]', "data[0][0]"),
    ('[loss]\nterminal = "t*z"', "loss.terminal"),
    ('[loss]\nbogus = "z"', "unknown key"),
    ('[loss]', "the loss is empty"),
])
def test_loss_errors(loss, fragment):
    text = LOGISTIC.split("[loss]")[0] + loss + "\n"
    with pytest.raises(SpecError) as exc:
        load_spec(text)
    assert fragment in str(exc.value)


def test_sir_names_resolve_through_the_symbol_table():
    text = '''
name = "sir"
states = ["S", "I", "R"]
rhs = ["-beta*S*I/N", "beta*S*I/N - gamma*I", "gamma*I"]
z0 = ["990", "10", "0"]
t0 = "0"
t1 = "1"
[params]
beta = "0.3"
gamma = "0.1"
N = "1000"
E = "2"
Q = "1"
O = "1"
lambda = "0.5"
zeta = "1"
re = "1"
[loss]
terminal = "(I - E)**2 + lambda*zeta*re*Q*O"
'''
    m = load_spec(text)
    names = {p.name: p for p in (*m.states, *m.params)}
    S, I, N, beta, E = (names[k] for k in ("S", "I", "N", "beta", "E"))
    assert m.rhs[0] == -beta * S * I / N
    assert not m.terminal.has(sympy.E) and m.terminal.has(E)  # E is the parameter, never Euler's number
    assert not m.rhs[0].has(sympy.I)


@pytest.mark.parametrize("payload", [
    "__import__('os').system('touch PWNED')",
    "().__class__.__mro__[1].__subclasses__()",
    "\"\".__class__.__mro__[1].__subclasses__()",
    "exec('open(\\'PWNED\\', \\'w\\')')",
    "eval('1')",
    "(lambda: open('PWNED', 'w'))()",
    "[open('PWNED','w') for x in (1,)]",
    "z.__class__",
    "z[0]",
    "open('PWNED', 'w')",
    "sin(x=z)",
    "z ^ 2",
])
@pytest.mark.parametrize("field", ["rhs", "z0", "terminal", "param"])
def test_injection_is_refused_and_runs_nothing(payload, field, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    esc = payload.replace("\\", "\\\\").replace('"', '\\"')
    if field == "rhs":
        text = spec(rhs=f'["{esc}"]')
    elif field == "z0":
        text = spec(z0=f'["{esc}"]')
    elif field == "terminal":
        text = LOGISTIC.replace('terminal = "(z - 1.5)**2"', f'terminal = "{esc}"')
    else:
        text = LOGISTIC.replace('K = "2.0"', f'K = "{esc}"')
    with pytest.raises(SpecError):
        load_spec(text)
    assert list(tmp_path.iterdir()) == []


def test_caret_hint():
    with pytest.raises(SpecError, match=r"use \*\*"):
        load_spec(spec(rhs='["r*z^2"]'))


def test_bad_toml_and_files(tmp_path):
    with pytest.raises(SpecError, match="invalid TOML"):
        load_spec("name = ")
    with pytest.raises(SpecError, match="cannot read spec file"):
        load_spec_file(tmp_path / "missing.toml")
    p = tmp_path / "m.toml"
    p.write_bytes(b"\xff\xfe")
    with pytest.raises(SpecError, match="UTF-8"):
        load_spec_file(p)


_TOML_ALPHABET = st.sampled_from(list('=[]"\'{}.,#\n ') + ["name", "states", "rhs", "z0", "t0", "t1", "params",
                                                           "loss", "terminal", "z", "r", "1", "0.1", "nan", "inf",
                                                           "__import__", "(", ")", "**", "^", "observations",
                                                           "times", "data", "true", "1e999", "-"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_TOML_ALPHABET, max_size=60).map("".join))
def test_fuzz_load_spec_raises_only_spec_error(text):
    try:
        load_spec(text)
    except SpecError:
        pass


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=80))
def test_fuzz_expression_fields_raise_only_spec_error(expr):
    esc = expr.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    esc = "".join(ch if ch.isprintable() else f"\\u{ord(ch):04x}" for ch in esc if ord(ch) < 0x10000)
    try:
        load_spec(spec(rhs=f'["{esc}"]'))
    except SpecError:
        pass


@pytest.mark.parametrize("name", [n for n in model_names() if n != "linreg"])
def test_builtin_models_round_trip_through_dump_spec(name):
    m = get_model(name)
    assert load_spec(dump_spec(m)).fingerprint() == m.fingerprint()


def test_library_entries_and_mlp_sizes():
    assert {"linear", "logistic", "oscillator", "lotka-volterra", "vanderpol", "pendulum", "spiral",
            "mlp"} <= set(LIBRARY)
    m = get_model("mlp-3-8")
    assert m.nz == 3 and m.np == 3 * 8 + 8 + 8 * 3 + 3
    with pytest.raises(SpecError):
        mlp_model(0, 4)
    with pytest.raises(SpecError, match="unknown model"):
        get_model("nope")


def test_python_api_refuses_floats_and_strings():
    z, a = sympy.symbols("z a", real=True)
    kw = dict(name="m", states=[z], params=[a], rhs=[a * z], z0=[1], t0=0, t1=1, terminal=z)
    with pytest.raises(SpecError, match="float"):
        Model(**kw, param_values={a: 0.1})
    with pytest.raises(SpecError, match="str"):
        Model(**{**kw, "rhs": ["a*z"]}, param_values={a: 1})
    with pytest.raises(SpecError, match="no value"):
        Model(**kw, param_values={})
    Model(**kw, param_values={a: sympy.Rational(1, 10)})
