"""Model export to PyTorch and JAX (symode.interop.emit / torch_export / jax_export).

Independent reference: the model's SymPy expressions evaluated exactly (SymPy ``evalf`` at 40 digits with the
float64 inputs substituted as exact rationals) at random points -- not the emitter's own text.

Tolerance table (this module):

| comparison | tolerance | why |
|---|---|---|
| export vs exact value | 1e-14 x scale | scale = the expression's terms evaluated in absolute value (Σ|terms|, Π|factors|,
  |f(x)| + |f'(x)|·scale(x)): float64 evaluation rounds each operation by 2^-53 of the terms' size, a few dozen
  operations stay far below 1e-14 of that size, while any wrong sign, constant or function is off by O(scale) |
"""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import sympy

import symode
from symode.errors import TranslationError
from symode.interop.emit import model_source
from symode.library import get_model
from symode.spec import load_spec

torch = pytest.importorskip("torch", reason="the PyTorch export needs the extra symode[torch]")
jax = pytest.importorskip("jax", reason="the JAX export needs the extra symode[jax]")

from symode.interop.jax_export import to_jax  # noqa: E402
from symode.interop.torch_export import to_torch  # noqa: E402

pytestmark = [pytest.mark.threads, pytest.mark.slow]  # threads: see tests/conftest.py

EXPORT_RTOL = 1e-14
EXAMPLES = __import__("pathlib").Path(__file__).resolve().parents[1] / "examples"
MODELS = ["linear", "seed-encoder", "logistic", "oscillator", "lotka-volterra", "vanderpol", "pendulum",
          "spiral", "mlp"]

#: every function of the spec grammar, time, a rational power, a division and a negative power
EVERY_FUNCTION = '''
name = "every-function"
states = ["x", "y"]
rhs = ["sin(x)*cos(y) + tan(x/4) - exp(-y) + log(1 + x**2) + sqrt(2 + y**2) + a*t",
       "tanh(x) + sinh(y/3) + cosh(x/5) + atan(y) + asinh(x) + sigmoid(y) + softplus(x) + abs(x - y) + x**(-2) + (1 + y**2)**1.5 + b/x"]
z0 = ["a", "b*2"]
t0 = "0"
t1 = "1"
[params]
a = "0.7"
b = "-0.3"
[loss]
terminal = "x**3 - y/b"
running = "0.5*(x - t)**2 + a*y"
[loss.observations]
times = ["0.5"]
data = [["0.25", "-1.5"]]
'''


def _scale(expr, subs) -> sympy.Float:
    """The size of the terms an evaluation of ``expr`` rounds (see the tolerance table)."""
    if expr.is_Symbol or expr.is_number:
        return abs(expr.subs(subs).evalf(40))
    if expr.is_Add:
        return sum(_scale(a, subs) for a in expr.args)
    if expr.is_Mul:
        out = sympy.Integer(1)
        for a in expr.args:
            out *= _scale(a, subs)
        return out
    if expr.is_Pow:
        b, e = expr.args
        value = abs(expr.subs(subs).evalf(40))
        return value + abs(e * value / b.subs(subs).evalf(40)) * _scale(b, subs) if e.is_number else value
    (x,) = expr.args
    v = expr.subs(subs).evalf(40)
    u = sympy.Dummy("u", real=True)
    d = sympy.diff(expr.func(u), u).subs(u, x.subs(subs)).evalf(40) if x.free_symbols else 0
    return abs(v) + abs(d) * _scale(x, subs)


def _exact(expr, subs):
    return sympy.sympify(expr).subs(subs).evalf(40)


def _points(model, rng, n=5):
    for _ in range(n):
        z = rng.uniform(0.2, 1.6, model.nz) * rng.choice([-1, 1], model.nz)
        if model.name == "every-function":
            z = np.abs(z) + 0.1  # x**(-2) and b/x: keep away from x = 0
        theta = np.array([float(v) for v in model.theta]) * rng.uniform(0.5, 1.5, model.np)
        yield z, float(rng.uniform(-1, 2)), theta


def _subs(model, z, t, theta):
    out = {s: sympy.Rational(float(v)) for s, v in zip(model.states, z)}
    out.update({s: sympy.Rational(float(v)) for s, v in zip(model.params, theta)})
    out[model.t] = sympy.Rational(float(t))
    return out


def _check(name, got, expr, subs):
    exact = _exact(expr, subs)
    scale = max(_scale(sympy.sympify(expr), subs), abs(exact))
    err = abs(sympy.Float(float(got), 40) - exact)
    assert err <= EXPORT_RTOL * scale, f"{name}: export {got!r} vs exact {exact} (|err| {err:.3g}, scale {scale:.3g})"


def _models():
    return [get_model(n) for n in MODELS] + [load_spec(EVERY_FUNCTION)]


@pytest.mark.parametrize("model", _models(), ids=lambda m: m.name)
def test_torch_and_jax_equal_the_sympy_expressions(model):
    rng = np.random.default_rng(20240614)
    tm = to_torch(model)
    jm = to_jax(model)
    import jax.numpy as jnp
    for z, t, theta in _points(model, rng):
        subs = _subs(model, z, t, theta)
        zt, tt, pt = (torch.tensor(z, dtype=torch.float64), torch.tensor(t, dtype=torch.float64),
                      torch.tensor(theta, dtype=torch.float64))
        zj, pj = jnp.asarray(z), jnp.asarray(theta)
        ns = tm._ns
        for j, e in enumerate(model.rhs):
            _check(f"torch rhs[{j}]", ns["rhs"](tt, zt, pt)[j].item(), e, subs)
            _check(f"jax rhs[{j}]", float(jm.rhs(t, zj, pj)[j]), e, subs)
        for j, e in enumerate(model.z0):
            _check(f"torch z0[{j}]", ns["z0"](pt)[j].item(), e, subs)
            _check(f"jax z0[{j}]", float(jm.z0(pj)[j]), e, subs)
        if model.terminal is not None:
            _check("torch terminal", ns["terminal"](zt, pt).item(), model.terminal, subs)
            _check("jax terminal", float(jm.terminal(zj, pj)), model.terminal, subs)
        if model.running is not None:
            _check("torch running", ns["running"](tt, zt, pt).item(), model.running, subs)
            _check("jax running", float(jm.running(t, zj, pj)), model.running, subs)
        for i, o in enumerate(model.observations):
            _check(f"torch observation {i}", ns[f"observation_{i}"](zt, pt).item(), o.term, subs)
            _check(f"jax observation {i}", float(jm.observations[i](zj, pj)), o.term, subs)


@pytest.mark.parametrize("name", ["mlp", "bench-p2"])
def test_network_models_keep_their_matrix_structure(name):
    """A structured (network) model is exported as matrix products, not one expression per weight: the text
    has one `@` per product of the network, no element of a weight matrix is read one by one, and its size does
    not grow with the hidden width.  (Its values are checked against the scalar SymPy form by the test above
    for mlp, and here for the P2 spec at random points.)"""
    m = get_model(name) if name == "mlp" else symode.load_spec_file(EXAMPLES / f"{name}.toml")
    assert m.structure is not None
    for backend in ("torch", "jax"):
        text = model_source(m, backend)
        rhs = text[text.index("def rhs"):text.index("def z0")]
        assert rhs.count(" @ ") == 2 and "W1_" not in rhs and "p[..., " not in rhs
        assert len(rhs) < 1200
    if name == "bench-p2":
        rng = np.random.default_rng(7)
        tm, jm = to_torch(m), to_jax(m)
        import jax.numpy as jnp
        for z, t, theta in _points(m, rng, n=2):
            subs = _subs(m, z, t, theta)
            out_t = tm._ns["rhs"](torch.tensor(t), torch.tensor(z), torch.tensor(theta))
            out_j = jm.rhs(t, jnp.asarray(z), jnp.asarray(theta))
            for j, e in enumerate(m.rhs):
                _check(f"torch rhs[{j}]", out_t[j].item(), e, subs)
                _check(f"jax rhs[{j}]", float(out_j[j]), e, subs)


def test_torch_module_interface():
    m = get_model("oscillator")
    tm = to_torch(m)
    assert isinstance(tm, torch.nn.Module)
    assert [n for n, _ in tm.named_parameters()] == ["theta"]
    assert tm.theta.dtype == torch.float64 and tm.theta.tolist() == [2.0, 0.3]
    z = torch.tensor([[1.0, 0.0], [0.5, -1.0]], dtype=torch.float64)  # a batch of two states
    out = tm(torch.tensor(0.0, dtype=torch.float64), z)
    # f = (v, -k x - c v) by hand at k = 2, c = 0.3
    assert out.tolist() == [[0.0, -2.0], [-1.0, -2.0 * 0.5 + 0.3]]
    out.sum().backward()  # θ is a leaf parameter torch can differentiate
    assert tm.theta.grad.tolist() == [-1.5, 1.0]  # ∂/∂k Σ(-k x) = -(1 + 0.5), ∂/∂c Σ(-c v) = -(0 - 1)


def test_constant_right_hand_side_has_the_batch_shape():
    m = load_spec('name = "c"\nstates = ["z", "w"]\nrhs = ["1", "w"]\nz0 = ["0", "1"]\nt0 = "0"\nt1 = "1"\n'
                  '[params]\n[loss]\nterminal = "z"\n')
    tm = to_torch(m)
    out = tm(torch.tensor(0.0, dtype=torch.float64), torch.zeros(3, 2, dtype=torch.float64))
    assert out.shape == (3, 2) and out[:, 0].tolist() == [1.0, 1.0, 1.0]
    jm = to_jax(m)
    import jax.numpy as jnp
    assert jm.rhs(0.0, jnp.zeros((3, 2)), jm.theta).shape == (3, 2)


def test_jax_functions_are_traceable_in_float64():
    m = get_model("logistic")
    jm = to_jax(m)
    import jax.numpy as jnp
    g = jax.jit(jax.grad(lambda p: jm.rhs(0.0, jnp.array([0.5]), p)[0]))(jm.theta)
    # d/dr [r z (1 - z/K)] = z (1 - z/K) = 0.5 * 0.75; d/dK = r z^2 / K^2 = 1.3 * 0.25 / 4 (by hand)
    assert g.dtype == jnp.float64
    assert abs(float(g[0]) - 0.375) < 1e-15 and abs(float(g[1]) - 1.3 * 0.25 / 4) < 1e-15


def test_source_is_deterministic_across_processes():
    """Byte-identical text in two fresh interpreters with different hash seeds (no set/dict-order leaks)."""
    code = ("import hashlib, symode; from symode.interop.emit import model_source; "
            "print(hashlib.sha256(''.join(model_source(symode.get_model(n), b) for n in "
            "('mlp', 'seed-encoder', 'spiral') for b in ('torch', 'jax')).encode()).hexdigest())")
    outs = set()
    for seed in ("1", "2"):
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                           env={**os.environ, "PYTHONHASHSEED": seed})
        assert p.returncode == 0, p.stderr
        outs.add(p.stdout)
    assert len(outs) == 1


def test_user_names_never_reach_the_code():
    """Names are addressed by index; a name that is code appears nowhere, a plain one only in a comment."""
    evil = sympy.Symbol("__import__('os').system('echo pwned')", real=True)
    z = sympy.Symbol("z", real=True)
    m = symode.Model(name="evil", states=[z], params=[evil], rhs=[evil * z], z0=[1], t0=0, t1=1,
                     param_values={evil: 2}, terminal=z ** 2)
    for backend in ("torch", "jax"):
        text = model_source(m, backend)
        assert "system" not in text and "__import__" not in text
        assert "p_0 = p[..., 0]\n" in text  # bound by index, no comment for an unsafe name
    assert to_torch(m)(torch.tensor(0.0, dtype=torch.float64), torch.ones(1, dtype=torch.float64)).item() == 2.0


def test_unsupported_operation_is_refused_naming_it():
    z = sympy.Symbol("z", real=True)
    m = symode.Model(name="g", states=[z], params=[], rhs=[sympy.gamma(z)], z0=[1], t0=0, t1=1, terminal=z)
    with pytest.raises(TranslationError, match="gamma"):
        model_source(m, "torch")
    with pytest.raises(TranslationError, match="unknown export backend"):
        model_source(get_model("linear"), "tensorflow")
