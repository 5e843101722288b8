"""The benchmark problems' spec files under examples/ (issue 12): P2, P3 and the D = 8, H = 256 MLP.

Expected values are the benchmark's definition (issue 13, benchmarks/problems.py): symode's deterministic weights
in the order W1, b1, W2, b2, z0 = (1, -1, ...)/2, squared errors against d_kj = ((7k + 3j) mod 11 - 5)/10 at
t_k = k/10, k = 1..10; the right-hand side is checked against a plain SymPy matrix construction.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import sympy

from symode.library import _weights
from symode.spec import load_spec_file

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
PROBLEMS = {"bench-p2": (2, 16), "bench-p3": (8, 64), "bench-mlp-8-256": (8, 256)}


@pytest.mark.parametrize("name", sorted(PROBLEMS))
def test_bench_specs_are_the_benchmark_problems(name):
    D, H = PROBLEMS[name]
    m = load_spec_file(EXAMPLES / f"{name}.toml")
    assert m.structure is not None and m.nz == D and m.np == 2 * H * D + H + D
    assert m.theta == _weights(m.np, seed=1000 * D + H)
    assert list(m.z0) == [sympy.Rational(1 if i % 2 == 0 else -1, 2) for i in range(D)]
    assert m.observation_times == tuple(sympy.Rational(k, 10) for k in range(1, 11)) and not m.has_terminal
    z = [sympy.Symbol(f"z_{j}", real=True) for j in range(D)]
    for k, o in enumerate(m.observations, start=1):
        want = sum((z[j] - sympy.Rational((7 * k + 3 * j) % 11 - 5, 10)) ** 2 for j in range(D))
        assert sympy.expand(o.term - want) == 0
    text = (EXAMPLES / f"{name}.toml").read_text()
    assert len(text.splitlines()) < 30  # "written as specs in a few lines"
    if H <= 16:  # the right-hand side, element by element
        W1 = sympy.Matrix(H, D, lambda i, j: sympy.Symbol(f"W1_{i}_{j}", real=True))
        b1 = sympy.Matrix(H, 1, lambda i, j: sympy.Symbol(f"b1_{i}", real=True))
        W2 = sympy.Matrix(D, H, lambda i, j: sympy.Symbol(f"W2_{i}_{j}", real=True))
        b2 = sympy.Matrix(D, 1, lambda i, j: sympy.Symbol(f"b2_{i}", real=True))
        f = W2 * (W1 * sympy.Matrix(z) + b1).applyfunc(sympy.tanh) + b2
        assert all(sympy.expand(a - b) == 0 for a, b in zip(m.rhs, f))


def test_generator_writes_the_committed_files(tmp_path, monkeypatch):
    import importlib.util
    spec = importlib.util.spec_from_file_location("write_bench_specs", EXAMPLES / "write_bench_specs.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    monkeypatch.setattr(mod, "HERE", tmp_path)
    mod.main()
    for f in tmp_path.iterdir():
        assert f.read_bytes() == (EXAMPLES / f.name).read_bytes(), f.name


@pytest.mark.slow
def test_codegen_default_of_the_networks_is_linear_in_the_parameters():
    """``symode codegen``'s default writes no forward-sensitivity function (all nθ + nz + 2 directions: quadratic
    in nθ, 93 MB of C for P3) and C text that grows at most in proportion to the parameter count: from P3
    (1,096 parameters) to D = 8, H = 256 (4,360) the .c file may grow at most 4,360 / 1,096 times (measured 1.5 MB
    -> 2.1 MB)."""
    from symode.codegen.ctext import generate
    sizes = {}
    for name in ("bench-p3", "bench-mlp-8-256"):
        m = load_spec_file(EXAMPLES / f"{name}.toml")
        code = generate(m)
        assert "fsens" not in code.functions
        c = next(v for k, v in code.files.items() if k.endswith(".c"))
        assert b"fsens" not in c
        sizes[name] = (m.np, len(c))
    (n3, s3), (n256, s256) = sizes["bench-p3"], sizes["bench-mlp-8-256"]
    assert s256 / s3 <= n256 / n3, sizes
