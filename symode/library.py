"""Built-in models, available by name (``symode models`` lists them).

All are written as spec TOML (the same public format users write, so the library exercises the parser); the
tanh MLP's text is generated for its size (``mlp`` is D=2, H=4; ``mlp-D-H`` any other size, e.g. ``mlp-2-16``)
and uses the ``[network]`` section.  The seed's traditional linear regression is not an ODE and lives in
:mod:`symode.symbolic.regression` (name ``linreg``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import sympy

from .errors import SpecError
from .model import Model
from .spec import load_spec


@dataclass(frozen=True)
class Entry:
    name: str
    summary: str
    toml: str | None = None
    closed_form: bool = False  # a closed form is expected (tests check the oracle against it)
    stiff: bool = False


_SPECS = [
    Entry("linear", "the seed's neural ODE dz/dt = a*z + b, theta = [a, b]", '''
name = "linear"
description = "The seed's neural ODE: dz/dt = a*z + b with theta = [a, b] and a squared terminal loss."
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
''', closed_form=True),
    Entry("seed-encoder", "the seed's pipeline x -> g(x) = w*x + c -> z0 -> dz/dt = a*z + b, observations + running cost",
          '''
name = "seed-encoder"
description = "x -> g(x) = w*x + c gives z0 (x = 0.9); dz/dt = a*z + b; squared error at two times plus a running cost."
states = ["z"]
rhs = ["a*z + b"]
z0 = ["w*0.9 + c"]
t0 = "0"
t1 = "2"
[params]
a = "-0.6"
b = "0.9"
w = "1.1"
c = "-0.2"
[loss]
running = "0.1*z**2"
[loss.observations]
times = ["0.5", "2"]
data = [["1.2"], ["1.4"]]
''', closed_form=True),
    Entry("logistic", "logistic growth r*z*(1 - z/K)", '''
name = "logistic"
description = "Logistic growth with a squared terminal loss."
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
''', closed_form=True),
    Entry("oscillator", "damped harmonic oscillator x'' + c x' + k x = 0", '''
name = "oscillator"
description = "Damped harmonic oscillator as a first-order system (linear, constant coefficients)."
states = ["x", "v"]
rhs = ["v", "-k*x - c*v"]
z0 = ["1", "0"]
t0 = "0"
t1 = "2"
[params]
k = "2.0"
c = "0.3"
[loss]
terminal = "(x - 0.2)**2 + 0.5*v**2"
''', closed_form=True),
    Entry("lotka-volterra", "Lotka-Volterra predator-prey", '''
name = "lotka-volterra"
description = "Lotka-Volterra predator-prey with observations of both populations."
states = ["prey", "pred"]
rhs = ["alpha*prey - beta*prey*pred", "delta*prey*pred - gamma*pred"]
z0 = ["1.0", "0.5"]
t0 = "0"
t1 = "2"
[params]
alpha = "1.5"
beta = "1.0"
delta = "1.0"
gamma = "3.0"
[loss.observations]
times = ["1", "2"]
data = [["1.9", "0.8"], ["2.5", "2.1"]]
'''),
    Entry("vanderpol", "Van der Pol oscillator", '''
name = "vanderpol"
description = "Van der Pol oscillator, mu = 1 (non-stiff)."
states = ["x", "y"]
rhs = ["y", "mu*(1 - x**2)*y - x"]
z0 = ["2", "0"]
t0 = "0"
t1 = "2"
[params]
mu = "1.0"
[loss]
terminal = "(x - 0.5)**2 + (y + 1)**2"
'''),
    Entry("pendulum", "damped nonlinear pendulum", '''
name = "pendulum"
description = "Damped pendulum theta'' = -(g/L) sin(theta) - b theta'."
states = ["th", "om"]
rhs = ["om", "-(g/L)*sin(th) - b*om"]
z0 = ["1.0", "0"]
t0 = "0"
t1 = "2"
[params]
g = "9.81"
L = "1.5"
b = "0.2"
[loss]
terminal = "(th - 0.1)**2 + 0.1*om**2"
'''),
    Entry("spiral", "Chen et al.'s spiral dz/dt = A^T z**3 (torchdiffeq ode_demo)", '''
name = "spiral"
description = "Chen et al. 2018 spiral (torchdiffeq ode_demo): dz_j/dt = sum_i z_i**3 A_ij, true A = [[-0.1, 2], [-2, -0.1]]."
states = ["z1", "z2"]
rhs = ["z1**3*A11 + z2**3*A21", "z1**3*A12 + z2**3*A22"]
z0 = ["2", "0"]
t0 = "0"
t1 = "1"
[params]
A11 = "-0.1"
A12 = "2.0"
A21 = "-2.0"
A22 = "-0.1"
[loss.observations]
times = ["0.5", "1"]
data = [["0.8", "1.0"], ["-0.3", "0.9"]]
'''),
]

LIBRARY: dict[str, Entry] = {e.name: e for e in _SPECS}
LIBRARY["mlp"] = Entry("mlp", "tanh MLP neural ODE dz/dt = W2 tanh(W1 z + b1) + b2 (D=2, H=4; mlp-D-H for others), "
                              "observations at 10 times and a terminal loss")
_MLP_RE = re.compile(r"mlp-([0-9]{1,6})-([0-9]{1,6})")  # fullmatch; [0-9]: \d takes any script's digits
#: Largest MLP built by name (the benchmark's largest is D = 8, H = 256).
MAX_MLP_STATES, MAX_MLP_HIDDEN = 16, 1024
#: The built-in MLPs' observation times: 10 times strictly inside [0, 1] (so dL/dt0 and dL/dt1 are defined).
MLP_OBSERVATION_TIMES = tuple(f"0.{k}5" for k in range(10))


def _weights(count: int, seed: int) -> list[sympy.Rational]:
    """Deterministic exact weights in [-0.5, 0.5) with two decimals (a small LCG: no global RNG state)."""
    out, x = [], seed
    for _ in range(count):
        x = (1103515245 * x + 12345) % 2**31
        out.append(sympy.Rational((x % 100) - 50, 100))
    return out


def _decimal(v: sympy.Rational) -> str:
    from .spec import decimal_text
    return decimal_text(v, "weight")


def mlp_spec(D: int = 2, H: int = 4, *, t1="1", name: str | None = None) -> str:
    """Spec text of the tanh MLP neural ODE with state width D and hidden width H (a ``[network]`` section).

    f(z) = W2 · tanh(W1 · z + b1) + b2, W1: H×D, b1: H, W2: D×H, b2: D, weights from a fixed LCG in
    [-0.5, 0.5) (:func:`_weights`); z0 = (1, -1, 1, ...)/2; loss: squared errors against fixed data at the 10
    times of :data:`MLP_OBSERVATION_TIMES` plus the terminal term Σ_j (z_j - (j+1)/(D+1))².
    """
    if not (1 <= D <= MAX_MLP_STATES and 1 <= H <= MAX_MLP_HIDDEN):
        raise SpecError(f"mlp: D must be 1..{MAX_MLP_STATES} and H 1..{MAX_MLP_HIDDEN} (got D={D}, H={H})")
    w = iter(_weights(2 * H * D + H + D, seed=1000 * D + H))

    def matrix(rows, cols):
        return "[" + ", ".join("[" + ", ".join(f'"{_decimal(next(w))}"' for _ in range(cols)) + "]"
                               for _ in range(rows)) + "]"

    def vector(n):
        return "[" + ", ".join(f'"{_decimal(next(w))}"' for _ in range(n)) + "]"

    params = [f"W1 = {matrix(H, D)}", f"b1 = {vector(H)}", f"W2 = {matrix(D, H)}", f"b2 = {vector(D)}"]
    z0 = ", ".join('"0.5"' if i % 2 == 0 else '"-0.5"' for i in range(D))
    terminal = " + ".join(f"(z[{j}] - {j + 1}/{D + 1})**2" for j in range(D))
    data = ", ".join("[" + ", ".join(f'"{((7 * k + 3 * j) % 11 - 5) / 10:g}"' for j in range(D)) + "]"
                     for k in range(len(MLP_OBSERVATION_TIMES)))
    name = name or ("mlp" if (D, H) == (2, 4) else f"mlp-{D}-{H}")
    return "\n".join([
        f'name = "{name}"',
        f'description = "tanh MLP neural ODE, D={D} states, H={H} hidden units; squared errors at 10 times and '
        f'a terminal loss"',
        f'states = [{{name = "z", size = {D}}}]',
        f"z0 = [[{z0}]]",
        't0 = "0"',
        f't1 = "{t1}"',
        "[network]",
        f"hidden = [{H}]",
        'activation = "tanh"',
        "[params]",
        *params,
        "[loss]",
        f'terminal = "{terminal}"',
        "[loss.observations]",
        "times = [" + ", ".join(f'"{t}"' for t in MLP_OBSERVATION_TIMES) + "]",
        f"data = [{data}]",
        "",
    ])


def mlp_model(D: int = 2, H: int = 4, *, t1="1", name: str | None = None) -> Model:
    """The tanh MLP neural ODE of :func:`mlp_spec` as a (structured) model."""
    return load_spec(mlp_spec(D, H, t1=t1, name=name), source=f"built-in model {name or f'mlp-{D}-{H}'!r}")


def model_names() -> list[str]:
    return [*LIBRARY, "linreg"]


def get_model(name: str) -> Model:
    """A built-in model by name (``mlp-D-H`` for MLPs of other sizes)."""
    entry = LIBRARY.get(name)
    if entry is not None and entry.toml is not None:
        return load_spec(entry.toml, source=f"built-in model {name!r}")
    if name == "mlp":
        return mlp_model()
    m = _MLP_RE.fullmatch(name) if isinstance(name, str) else None
    if m:
        return mlp_model(int(m.group(1)), int(m.group(2)))
    if name == "linreg":
        raise SpecError("linreg is the seed's linear regression (not an ODE model): use `symode derive linreg`")
    from .suggest import did_you_mean
    raise SpecError(f"unknown model {name!r}; built-in models: {', '.join(model_names())}, or a path to a .toml "
                    f"spec file{did_you_mean(name, model_names())}")


def resolve_model(name_or_path: str) -> Model:
    """A built-in model name or a spec file path (ending in .toml, containing a path separator, or an existing
    file whose name is not a built-in model's).  A FIFO, device or socket of that name counts as a path too, so
    that reading it is refused naming what it is (a directory of that name does not: codegen writes those)."""
    import os
    if (name_or_path.lower().endswith(".toml") or "/" in name_or_path or "\\" in name_or_path
            or (name_or_path not in LIBRARY and os.path.lexists(name_or_path) and not os.path.isdir(name_or_path))):
        from .spec import load_spec_file
        return load_spec_file(name_or_path)
    return get_model(name_or_path)
