"""Training the seed's linear regression f(x) = a·x + b on a data set (x_i, y_i), i = 1..n.

The data-set loss and its gradient-descent update are SymPy's (:class:`symode.LinearRegression`):

    L(a, b) = (1/n) Σ_i (a x_i + b - y_i)²
    a ← a - LR · (2/n) Σ_i (a x_i + b - y_i) x_i,      b ← b - LR · (2/n) Σ_i (a x_i + b - y_i)

Three independent ways to train it, which the training cross-check compares:

* :class:`DerivedUpdate`: the update rule itself (``dataset_update_a``, ``dataset_update_b`` of
  ``LinearRegression.equations``), turned into a function by ``sympy.lambdify`` (symode's own symbols, no user
  text), applied as θ ← U(θ);
* :class:`DerivedGradient`: the derived gradient (``dataset_dloss_da``, ``dataset_dloss_db``) for any optimiser;
* :class:`NumericGradient`: no symbolic step at all -- the complex-step derivative of the loss written in numpy,
  ∂L/∂a = Im L(a + i h, b) / h with h = 1e-30, exact to rounding for a real-analytic loss (no subtraction,
  so no cancellation).

The least-squares solution (``numpy.linalg.lstsq``) is the closed-form fixed point of all three.
"""
from __future__ import annotations

import time
from functools import cached_property

import numpy as np
import sympy

from ..errors import SpecError
from .loop import TrainResult

__all__ = ["regression_data", "DerivedUpdate", "DerivedGradient", "NumericGradient", "run_update",
           "least_squares", "COMPLEX_STEP"]

#: The complex step: far below float64 resolution of a and b, yet Im(L(a + ih)) = h ∂L/∂a + O(h³) keeps full
#: relative precision because no difference of nearby numbers is formed.
COMPLEX_STEP = 1e-30


def regression_data(a: float, b: float, n: int = 20, *, noise: float = 0.0, seed: int = 0,
                    low: float = -1.0, high: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """x_i equally spaced on [low, high] (n points), y_i = a x_i + b + N(0, noise²) drawn from
    ``numpy.random.default_rng(seed)``."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise SpecError(f"the data set needs at least 2 points, got {n!r}")
    x = np.linspace(low, high, n)
    y = a * x + b
    if noise:
        y = y + np.random.default_rng(seed).normal(0.0, noise, size=n)
    return x, y


def _check_data(x, y) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(x, dtype=float).reshape(-1), np.asarray(y, dtype=float).reshape(-1)
    if x.size != y.size or x.size < 1:
        raise SpecError(f"x and y must be non-empty and of equal length, got {x.size} and {y.size}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise SpecError("the data set holds non-finite values")
    return x, y


class _Regression:
    name = "linreg"
    param_names = ["a", "b"]
    options: dict = {}

    def __init__(self, x, y):
        self.x, self.y = _check_data(x, y)

    @cached_property
    def _lr(self):
        from ..symbolic.regression import LinearRegression
        return LinearRegression()

    def _lambdify(self, exprs, extra=()):
        lr = self._lr
        # the data-set formulas index x[i], y[i] for i = 1..n: pad index 0 so the arrays are 1-based
        f = sympy.lambdify([lr.a, lr.b, *extra, lr.X, lr.Y, lr.n], exprs, modules="math")
        pad = lambda v: [0.0, *v.tolist()]  # noqa: E731
        xs, ys, n = pad(self.x), pad(self.y), int(self.x.size)
        return lambda a, b, *e: f(float(a), float(b), *e, xs, ys, n)

    def loss(self, theta) -> float:
        a, b = theta
        return float(np.mean((a * self.x + b - self.y) ** 2))


class DerivedGradient(_Regression):
    """θ -> (L, ∇L) with ∇L from SymPy's data-set derivatives (module docstring)."""

    method = "derived gradient (SymPy)"

    @cached_property
    def _grad(self):
        return self._lambdify([self._lr.dataset_dloss_da, self._lr.dataset_dloss_db])

    def __call__(self, theta):
        return self.loss(theta), np.array(self._grad(*theta), dtype=float)


class NumericGradient(_Regression):
    """θ -> (L, ∇L) with ∇L by the complex step on the numpy loss (module docstring)."""

    method = "numeric gradient (complex step)"

    def __call__(self, theta):
        a, b = (float(v) for v in theta)
        h = COMPLEX_STEP
        ga = np.mean((complex(a, h) * self.x + b - self.y) ** 2).imag / h
        gb = np.mean((a * self.x + complex(b, h) - self.y) ** 2).imag / h
        return self.loss((a, b)), np.array([ga, gb])


class DerivedUpdate(_Regression):
    """θ ← U(θ) with U = (``dataset_update_a``, ``dataset_update_b``) of ``LinearRegression.equations``."""

    method = "derived update rule (SymPy)"

    def __init__(self, x, y, lr: float):
        super().__init__(x, y)
        self.lr = float(lr)

    @cached_property
    def _update(self):
        eqs = {e.name: e.rhs for e in self._lr.equations}
        return self._lambdify([eqs["dataset_update_a"], eqs["dataset_update_b"]], extra=(self._lr.LR,))

    def step(self, theta) -> np.ndarray:
        return np.array(self._update(theta[0], theta[1], self.lr), dtype=float)


def run_update(rule: DerivedUpdate, theta0, iterations: int) -> TrainResult:
    """K steps θ ← U(θ) of the derived update rule; the history has the losses and (derived) gradient norms."""
    grad = DerivedGradient(rule.x, rule.y)
    theta = np.array(theta0, dtype=float)
    thetas, losses, norms = [], [], []
    start = time.perf_counter()
    for k in range(iterations + 1):
        L, g = grad(theta)
        thetas.append(theta)
        losses.append(L)
        norms.append(float(np.linalg.norm(g)))
        if k < iterations:
            theta = rule.step(theta)
    return TrainResult(model=rule.name, method=rule.method, options={}, optimizer="derived update", lr=rule.lr,
                       params=list(rule.param_names), theta=np.array(thetas), loss=np.array(losses),
                       grad_norm=np.array(norms), seconds=time.perf_counter() - start)


def least_squares(x, y) -> np.ndarray:
    """The closed-form minimiser (a, b) of the data-set loss (``numpy.linalg.lstsq`` on [x 1])."""
    x, y = _check_data(x, y)
    A = np.stack([x, np.ones_like(x)], axis=1)
    return np.linalg.lstsq(A, y, rcond=None)[0]


def read_regression_data(path: str) -> tuple[np.ndarray, np.ndarray]:
    """A CSV file with a header row naming the columns ``x`` and ``y`` (any order) and one exact decimal per field."""
    from ..expr import parse_decimal
    from .data import csv_table
    if not str(path).lower().endswith(".csv"):
        raise SpecError(f"--data {path}: linreg reads a .csv file with columns x, y")
    table = csv_table(path)
    header = [h.strip() for h in table[0]] if table else []
    if sorted(header) != ["x", "y"]:
        raise SpecError(f"--data {path}: the header must name the columns x and y, got "
                        f"{', '.join(header) or 'nothing'}")
    col = {h: i for i, h in enumerate(header)}
    xs, ys = [], []
    for r, row in enumerate(table[1:], start=2):
        if len(row) != 2:
            raise SpecError(f"--data {path}: line {r} has {len(row)} fields for 2 columns")
        xs.append(float(parse_decimal(row[col["x"]].strip(), f"--data {path} line {r} column x")))
        ys.append(float(parse_decimal(row[col["y"]].strip(), f"--data {path} line {r} column y")))
    if len(xs) < 2:
        raise SpecError(f"--data {path}: the data set needs at least 2 rows")
    return np.array(xs), np.array(ys)


#: ``symode train linreg --method``: the gradient behind the optimiser.
REGRESSION_METHODS = {"derived": DerivedGradient, "numeric": NumericGradient}
