"""Compiled generated code: the committed ``generated/`` sources built with symode.codegen.build (``-Wall -Werror``,
``-std=c99``), loaded through casadi.external and checked against the in-memory CasADi Functions; the standalone C
example; hostile names; the build cache.  Real cc, real CasADi.
"""
from __future__ import annotations

import ctypes
import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from symode.codegen.build import build_shared_library, find_compiler, load_function
from symode.codegen.ctext import FILE_STEM, WORDS, generate
from symode.codegen.regenerate import DEFAULT_OUT, MODELS, SCHEME, STEPS
from symode.library import get_model
from tests.build_log import BUILD_EVENTS
from tests.test_codegen import hostile_model

# Compiled C vs CasADi's in-memory virtual machine on the same Function: no tolerance, the bits must be equal
# (the same operations in the same order, IEEE doubles, -std=c99 without FMA contraction, no -ffast-math; the
# README's "bit for bit").  The standalone program prints %.17g, which round-trips a double exactly, so its
# printed numbers must equal the in-memory graph's too.
TOL = {
    # Standalone result vs the exact closed form: the only difference is RK4's discretisation error e(h) =
    # K h^4 + O(h^5).  Estimated by Richardson from the in-memory graphs at 100 and 200 steps:
    # e(100) ~ (16/15) |v_100 - v_200|.  Factor 2 covers the O(h^5) remainder; the floor covers rounding.
    "richardson_safety": 2.0,
    "closed_form_floor_rel": 1e-13,
    # Compiled discrete gradient vs its exact value in rational arithmetic (dz/dt = -z, below): the graph's
    # step is h = span * fl(1/N), within 1 ulp of 1/N, and each of the N = 100 steps rounds a few times, so
    # the relative error is a few hundred ulps at most (~1e-14); 1e-13 leaves a margin.
    "discrete_exact_rel": 1e-13,
}

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "standalone" / "main.c"


@pytest.fixture(scope="module", autouse=True)
def private_cache(tmp_path_factory):
    """A fresh build cache for this module (the user's cache is neither used nor filled)."""
    old = os.environ.get("SYMODE_CACHE_DIR")
    os.environ["SYMODE_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if old is None:
        os.environ.pop("SYMODE_CACHE_DIR", None)
    else:
        os.environ["SYMODE_CACHE_DIR"] = old


def _committed_sources(name: str) -> dict[str, bytes]:
    d = DEFAULT_OUT / name
    return {f"{FILE_STEM}.c": (d / f"{FILE_STEM}.c").read_bytes(), f"{FILE_STEM}.h": (d / f"{FILE_STEM}.h").read_bytes()}


def _inputs(model, code):
    """Nominal inputs and three perturbations (θ scaled by 1 ± 3%, z0 shifted, t0/t1 moved by 1% of the span;
    observation times stay inside (t0, t1])."""
    theta = np.array([float(v) for v in model.theta])
    z0 = np.array(code.functions["z0"](theta)).ravel()
    t0, t1 = float(model.t0), float(model.t1)
    span = t1 - t0
    signs = np.array([(-1) ** k for k in range(len(theta))])
    out = [(theta, z0, t0, t1)]
    out.append((theta * (1 + 0.03 * signs), z0, t0, t1))
    out.append((theta * (1 - 0.02 * signs), z0 + 0.05, t0 - 0.01 * span, t1))
    out.append((theta, z0 * 0.9, t0 + 0.01 * span, t1 + 0.01 * span))
    return out


def _call(fn, word, theta, z0, t0, t1):
    args = (z0, theta, t0, t1) if word == "forward" else (theta,) if word == "z0" else (theta, z0, t0, t1)
    out = fn(*args)
    return [np.array(v).ravel() for v in (out if isinstance(out, tuple) else (out,))]


def _check_compiled(model, code, library):
    for inputs in _inputs(model, code):
        for word in WORDS:
            compiled = load_function(library, code.names[word])
            for a, b in zip(_call(code.functions[word], word, *inputs), _call(compiled, word, *inputs)):
                assert np.all(np.isfinite(b))
                assert a.dtype == b.dtype == np.float64 and a.tobytes() == b.tobytes(), (word, a, b, a - b)


@pytest.mark.parametrize("name", [n if n in ("logistic", "mlp") else pytest.param(n, marks=pytest.mark.slow)
                                  for n in MODELS])  # every model with committed code
def test_committed_code_compiles_and_matches_in_memory(name):
    model = get_model(name)
    code = generate(model, SCHEME, STEPS)
    library = build_shared_library(_committed_sources(name), name_hint=name)
    _check_compiled(model, code, library)


@pytest.mark.slow
def test_header_agrees_with_the_compiled_code():
    name = "logistic"
    code = generate(get_model(name))
    src = _committed_sources(name)
    # the header's prototypes and the definitions in one translation unit: any mismatch is a compile error.
    # (the .c text goes in under a .h name so that the build compiles it only through both.c)
    tu = f'#include "{FILE_STEM}.h"\n#include "{FILE_STEM}_c.h"\n'.encode()
    library = build_shared_library({f"{FILE_STEM}.h": src[f"{FILE_STEM}.h"], f"{FILE_STEM}_c.h": src[f"{FILE_STEM}.c"],
                                    "both.c": tu}, name_hint="both")
    h = src[f"{FILE_STEM}.h"].decode("ascii")
    # the header's work-size macros equal what the compiled F_work reports (called as a C user would)
    lib = ctypes.CDLL(str(library))
    for word in WORDS:
        sizes = [ctypes.c_longlong(-1) for _ in range(4)]
        work = getattr(lib, code.names[word] + "_work")
        work.restype = ctypes.c_int
        assert work(*[ctypes.byref(s) for s in sizes]) == 0
        for key, size in zip(("ARG", "RES", "IW", "W"), sizes):
            m = re.search(rf"#define {code.names[word]}_SZ_{key} (\d+)\n", h)
            assert m and int(m.group(1)) == size.value, (word, key)


@pytest.mark.slow
def test_hostile_names_compile_with_werror_load_and_run():
    model = hostile_model()
    code = generate(model)
    library = build_shared_library({k: v for k, v in code.files.items() if not k.endswith(".json")},
                                   name_hint="hostile")  # DEFAULT_FLAGS: -Wall -Werror -std=c99
    _check_compiled(model, code, library)


def _run_standalone(tmp_path, d: Path) -> dict:
    """Build examples/standalone/main.c against the generated directory ``d``, run it, parse what it prints."""
    exe = tmp_path / "main"
    cmd = [find_compiler(), "-std=c99", "-O2", "-Wall", "-Werror", "-I", str(d), "-o", str(exe), str(EXAMPLE),
           str(d / f"{FILE_STEM}.c"), "-lm"]
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True, timeout=60).stdout
    values: dict = {"grad_theta": {}, "grad_z0": {}}
    for line in out.splitlines():
        parts = line.split()
        if parts[0] in ("grad_theta", "grad_z0"):
            values[parts[0]][int(parts[1])] = float(parts[2])
        else:
            values[parts[0]] = float(parts[1])
    return values


def _as_vector(v) -> np.ndarray:
    return np.array([v["loss"], *[v["grad_theta"][i] for i in sorted(v["grad_theta"])],
                     *[v["grad_z0"][i] for i in sorted(v["grad_z0"])], v["grad_t0"], v["grad_t1"]])


def _graph_vector(model, steps: int) -> np.ndarray:
    code = generate(model, SCHEME, steps)
    theta = [float(v) for v in model.theta]
    z0 = code.functions["z0"](theta)
    L, _, gz0, gt0, gt1, g = (np.array(v).ravel() for v in
                              code.functions["grad"](theta, z0, float(model.t0), float(model.t1)))
    return np.concatenate([L, g, gz0, gt0, gt1])


@pytest.mark.slow
def test_standalone_example_prints_the_gradient(tmp_path):
    from symode.symbolic.derive import derive
    model = get_model("logistic")
    printed = _as_vector(_run_standalone(tmp_path, DEFAULT_OUT / "logistic"))
    # 1. the same numbers as the in-memory graph (the compiled discrete adjoint)
    v100 = _graph_vector(model, STEPS)
    assert printed.tobytes() == v100.tobytes(), (printed, v100, printed - v100)
    # 2. the exact gradient (closed form, independent of CasADi) to RK4's accuracy at 100 steps
    exact = derive(model).closed_form.evaluate(model, 30)
    ref = np.array([float(exact["loss"]), *map(float, exact["grad"]), *map(float, exact["grad_z0"]),
                    float(exact["grad_t0"]), float(exact["grad_t1"])])
    v200 = _graph_vector(model, 2 * STEPS)
    bound = TOL["richardson_safety"] * (16 / 15) * np.abs(v100 - v200) + TOL["closed_form_floor_rel"] * np.abs(ref)
    assert np.all(np.abs(printed - ref) <= bound), (printed - ref, bound)
    # the sign convention of dL/dt0 (closed form: dL/dt0 = -lambda(t0) f(z0, t0)) is reproduced, not just its size
    assert np.sign(printed[-2]) == np.sign(ref[-2]) != 0


@pytest.mark.slow
def test_second_load_uses_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SYMODE_CACHE_DIR", str(tmp_path / "fresh-cache"))
    src = _committed_sources("linear")
    code = generate(get_model("linear"))
    start = len(BUILD_EVENTS)
    first = build_shared_library(src, name_hint="linear")
    second = build_shared_library(src, name_hint="linear")
    events = [e for e, _ in BUILD_EVENTS[start:]]
    assert events == ["compile", "hit"]
    assert first == second
    loss = load_function(second, code.names["loss"])
    assert np.isfinite(float(loss([-0.8, 0.5], [1.0], 0.0, 1.5)))


@pytest.mark.slow
def test_model_without_parameters_runs_standalone_with_the_exact_discrete_gradient(tmp_path):
    # dz/dt = -z, z0 = 1, L = z(1)^2, no parameters.  One RK4 step multiplies z by R(-h) with
    # R(x) = 1 + x + x^2/2 + x^3/6 + x^4/24 (the scheme's stability polynomial), so the discrete loss is
    # L_h = R(-(t1 - t0)/N)^(2N) z0^2, exactly.  Hence dL/dz0 = 2 R^(2N) z0,
    # dL/dt1 = -2 R^(2N-1) R'(-h) z0^2 with R'(x) = 1 + x + x^2/2 + x^3/6, and dL/dt0 = -dL/dt1.
    from fractions import Fraction

    import sympy

    from symode.codegen.write import write_directory
    from symode.model import Model
    z = sympy.Symbol("z", real=True)
    model = Model(name="decay", states=[z], params=[], rhs=[-z], z0=[1], t0=0, t1=1, terminal=z ** 2)
    N = STEPS
    x = -Fraction(1, N)
    R = 1 + x + x ** 2 / 2 + x ** 3 / 6 + x ** 4 / 24
    dR = 1 + x + x ** 2 / 2 + x ** 3 / 6
    exact = {"loss": R ** (2 * N), "grad_z0": 2 * R ** (2 * N), "grad_t1": -2 * R ** (2 * N - 1) * dR}
    exact["grad_t0"] = -exact["grad_t1"]
    d = write_directory(generate(model).files, tmp_path / "decay")
    printed = _run_standalone(tmp_path, d)
    assert printed["grad_theta"] == {}
    for key in ("loss", "grad_t0", "grad_t1"):
        assert abs(printed[key] - float(exact[key])) <= TOL["discrete_exact_rel"] * abs(float(exact[key])), key
    assert abs(printed["grad_z0"][0] - float(exact["grad_z0"])) <= TOL["discrete_exact_rel"] * float(exact["grad_z0"])
