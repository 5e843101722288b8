"""The benchmark problems, each as a symode Model and as plain arrays for the peer implementations.

All: float64, observation losses at the 10 times t_k = k/10 on [0, 1] (squared error against fixed data,
L = Σ_k Σ_j (z_j(t_k) - d_kj)²), z0 fixed (independent of θ), 100 steps of the 3/8-rule RK4 (``rk38``,
torchdiffeq's "rk4"), 10 per observation interval.

* P1: Chen et al.'s spiral (torchdiffeq's ode_demo, symode's built-in ``spiral``): dz/dt = (z³)ᵀ A, 2 states,
  θ = A (4 parameters) at the true A = [[-0.1, 2], [-2, -0.1]], z0 = (2, 0).  The issues do not define P1; the
  brief's reading (JAX's 14 µs suggests a small model) is this one.
* P2: tanh MLP dz/dt = W2 tanh(W1 z + b1) + b2, D = 2, H = 16 (82 parameters).
* P3: the same with D = 8, H = 64 (1,096 parameters).
* P4: the same with D = 8, H = 256 (4,360 parameters).

The MLPs use symode's deterministic weights (:func:`symode.library.mlp_model`'s generator) and z0 = (1, -1, ...)/2;
parameters are ordered W1 (H x D, row-major), b1, W2 (D x H, row-major), b2.  The data are exact decimals
d_kj = ((7k + 3j) mod 11 - 5)/10.

Where a structured spec exists (``examples/bench-p2.toml`` ...; issue 12), the Model is loaded from it instead
of being built as scalar expressions; the arrays are the same either way.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sympy

from symode.expr import make_symbol
from symode.library import _weights, get_model
from symode.model import T, Model

ROOT = Path(__file__).resolve().parents[1]
TIMES = [sympy.Rational(k, 10) for k in range(1, 11)]
STEPS = 100
SCHEME = "rk38"


@dataclass
class Problem:
    name: str
    label: str
    kind: str                 # "spiral" or "mlp"
    D: int
    H: int
    theta: np.ndarray         # nominal parameters (doubles), the model's order
    z0: np.ndarray
    data: np.ndarray          # 10 x D
    model: Model

    @property
    def np(self) -> int:
        return self.theta.size


def _data(D: int) -> list[list[sympy.Rational]]:
    return [[sympy.Rational(((7 * k + 3 * j) % 11) - 5, 10) for j in range(D)] for k in range(1, 11)]


def _observations(z, data):
    return [(tk, sympy.Add(*[(zj - dj) ** 2 for zj, dj in zip(z, row)])) for tk, row in zip(TIMES, data)]


def spiral() -> Problem:
    base = get_model("spiral")
    z = list(base.states)
    data = _data(2)
    model = Model(name="bench-p1", states=z, params=base.params, rhs=base.rhs, z0=base.z0, t0=0, t1=1,
                  param_values=base.param_values, observations=_observations(z, data), t=T,
                  description="P1: Chen et al.'s spiral with observation losses at t = 0.1, ..., 1")
    return Problem("P1", "spiral (D=2, 4 params)", "spiral", 2, 0,
                   np.array([float(v) for v in model.theta]), np.array([2.0, 0.0]),
                   np.array(data, dtype=float), model)


def mlp(name: str, D: int, H: int) -> Problem:
    data = _data(D)
    spec = ROOT / "examples" / f"bench-{name.lower()}.toml" if name != "P4" else ROOT / "examples" / "bench-mlp-8-256.toml"
    z0 = [sympy.Rational(1 if i % 2 == 0 else -1, 2) for i in range(D)]
    values = _weights(H * D + H + D * H + D, seed=1000 * D + H)
    if spec.is_file():  # the structured form (issue 12)
        from symode.spec import load_spec_file
        model = load_spec_file(str(spec))
    else:
        z = [make_symbol(f"z{i + 1}") for i in range(D)]
        W1 = sympy.Matrix(H, D, lambda i, j: make_symbol(f"W1_{i}_{j}"))
        b1 = sympy.Matrix(H, 1, lambda i, j: make_symbol(f"b1_{i}"))
        W2 = sympy.Matrix(D, H, lambda i, j: make_symbol(f"W2_{i}_{j}"))
        b2 = sympy.Matrix(D, 1, lambda i, j: make_symbol(f"b2_{i}"))
        f = W2 * (W1 * sympy.Matrix(z) + b1).applyfunc(sympy.tanh) + b2
        params = [*W1, *b1, *W2, *b2]
        model = Model(name=f"bench-{name.lower()}", states=z, params=params, rhs=list(f), z0=z0, t0=0, t1=1,
                      param_values=dict(zip(params, values)), observations=_observations(z, data), t=T,
                      description=f"{name}: tanh MLP D={D}, H={H}, observation losses at t = 0.1, ..., 1")
    theta = np.array([float(v) for v in model.theta])
    if not np.array_equal(theta, np.array([float(v) for v in values])):
        raise ValueError(f"{spec}: its parameter values differ from the benchmark's definition of {name}")
    return Problem(name, f"MLP D={D}, H={H} ({theta.size} params)", "mlp", D, H, theta,
                   np.array([float(v) for v in z0]), np.array(data, dtype=float), model)


def problems(names=("P1", "P2", "P3", "P4")) -> list[Problem]:
    make = {"P1": spiral, "P2": lambda: mlp("P2", 2, 16), "P3": lambda: mlp("P3", 8, 64),
            "P4": lambda: mlp("P4", 8, 256)}
    return [make[n]() for n in names]


def grid(problem: Problem) -> tuple[np.ndarray, np.ndarray]:
    """Step start times and step sizes of symode's grid: segment [a, b] = [(k-1)/10, k/10], 10 steps,
    t = a + (b - a)(j/10), h = (b - a)/10 (the doubles symode's generated code computes)."""
    T0, H = [], []
    for k in range(1, 11):
        a, b = (k - 1) / 10, k / 10
        for j in range(10):
            T0.append(a + (b - a) * (j / 10))
            H.append((b - a) / 10)
    return np.array(T0), np.array(H)
