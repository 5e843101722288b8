"""Write the benchmark problems' spec files (issue 12/13): P2, P3 and the D = 8, H = 256 MLP.

    python examples/write_bench_specs.py        # rewrites examples/bench-*.toml and their parameter files

Each is a tanh MLP neural ODE dz/dt = W2 tanh(W1 z + b1) + b2 written with a [network] section, z0 =
(1, -1, 1, ...)/2, parameters from a JSON file next to the spec (symode's deterministic weights,
``symode.library._weights`` with seed 1000 D + H, in the order W1, b1, W2, b2), and squared errors against the
data d_kj = ((7k + 3j) mod 11 - 5)/10 at the 10 times t_k = k/10 (the last at t1 = 1, so dL/dt1 is undefined).
``tests/test_examples.py`` checks the files against that definition.
"""
from __future__ import annotations

import json
from pathlib import Path

import sympy

from symode.library import _weights
from symode.spec import decimal_text

HERE = Path(__file__).resolve().parent
PROBLEMS = {"bench-p2": (2, 16, "P2"), "bench-p3": (8, 64, "P3"), "bench-mlp-8-256": (8, 256, "D = 8, H = 256")}


def spec_text(name: str, D: int, H: int, label: str) -> str:
    data = [[f'"{decimal_text(sympy.Rational((7 * k + 3 * j) % 11 - 5, 10), "data")}"'
             for j in range(D)] for k in range(1, 11)]
    rows = ",\n        ".join("[" + ", ".join(r) + "]" for r in data)
    z0 = ", ".join('"0.5"' if i % 2 == 0 else '"-0.5"' for i in range(D))
    times = ", ".join(f'"{k / 10:g}"' for k in range(1, 11))
    return f'''name = "{name}"
description = "{label}: tanh MLP neural ODE, D = {D}, H = {H} ({2 * H * D + H + D} parameters); squared errors at t = 0.1, ..., 1"
states = [{{name = "z", size = {D}}}]
z0 = [[{z0}]]
t0 = "0"
t1 = "1"
params_file = "{name}-params.json"

[network]
hidden = [{H}]
activation = "tanh"

[loss.observations]
times = [{times}]
data = [{rows}]
'''


def params_json(D: int, H: int) -> str:
    w = iter(_weights(2 * H * D + H + D, seed=1000 * D + H))
    text = lambda: decimal_text(next(w), "weight")  # noqa: E731
    out = {"W1": [[text() for _ in range(D)] for _ in range(H)], "b1": [text() for _ in range(H)],
           "W2": [[text() for _ in range(H)] for _ in range(D)], "b2": [text() for _ in range(D)]}
    return json.dumps(out, separators=(",", ":")) + "\n"


def main() -> None:
    for name, (D, H, label) in PROBLEMS.items():
        (HERE / f"{name}.toml").write_text(spec_text(name, D, H, label))
        (HERE / f"{name}-params.json").write_text(params_json(D, H))
        print(f"wrote {name}.toml, {name}-params.json")


if __name__ == "__main__":
    main()
