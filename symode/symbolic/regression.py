"""The seed's traditional model: linear regression f(x) = a·x + b with squared loss, and gradient descent.

One sample:   loss = (a x + b - y)²,
              ∂loss/∂a = 2 (a x + b - y) x,   ∂loss/∂b = 2 (a x + b - y)
              a ← a - LR ∂loss/∂a,            b ← b - LR ∂loss/∂b.
A data set of n samples (mean):
              loss = (1/n) Σ_i (a x_i + b - y_i)²,   ∂loss/∂a = (2/n) Σ_i (a x_i + b - y_i) x_i, ...
Every quantity is derived by SymPy (differentiation of the loss), not written by hand.
"""
from __future__ import annotations

from functools import cached_property

import sympy

from .derive import Equation


class LinearRegression:
    """Named, memoised derivations of the seed's linear regression (name ``linreg``)."""

    name = "linreg"
    description = "The seed's traditional model f(x) = a*x + b with squared loss and gradient descent."

    def __init__(self):
        self.a, self.b, self.x, self.y = (sympy.Symbol(s, real=True) for s in ("a", "b", "x", "y"))
        self.LR = sympy.Symbol("LR", positive=True)
        self.n = sympy.Symbol("n", integer=True, positive=True)
        self.i = sympy.Symbol("i", integer=True)
        self.X, self.Y = sympy.IndexedBase("x"), sympy.IndexedBase("y")

    @cached_property
    def f(self):
        return self.a * self.x + self.b

    @cached_property
    def loss(self):
        return (self.f - self.y) ** 2

    @cached_property
    def dloss_da(self):
        return sympy.diff(self.loss, self.a)

    @cached_property
    def dloss_db(self):
        return sympy.diff(self.loss, self.b)

    @cached_property
    def update_a(self):
        return self.a - self.LR * self.dloss_da

    @cached_property
    def update_b(self):
        return self.b - self.LR * self.dloss_db

    @cached_property
    def dataset_loss(self):
        X, Y, i, n = self.X, self.Y, self.i, self.n
        return sympy.Sum((self.a * X[i] + self.b - Y[i]) ** 2, (i, 1, n)) / n

    @cached_property
    def dataset_dloss_da(self):
        return sympy.diff(self.dataset_loss, self.a)

    @cached_property
    def dataset_dloss_db(self):
        return sympy.diff(self.dataset_loss, self.b)

    @cached_property
    def equations(self) -> tuple:
        a, b, LR = self.a, self.b, self.LR
        D = sympy.Derivative
        loss = sympy.Symbol("loss")
        a_new, b_new = sympy.Symbol("a_new", real=True), sympy.Symbol("b_new", real=True)
        return (
            Equation("model", sympy.Function("f")(self.x), self.f, "the traditional model"),
            Equation("loss", loss, self.loss, "squared error of one sample"),
            Equation("dloss_da", D(loss, a), self.dloss_da, "gradient with respect to a"),
            Equation("dloss_db", D(loss, b), self.dloss_db, "gradient with respect to b (factor 1 from b)"),
            Equation("update_a", a_new, self.update_a, "gradient-descent update of a with learning rate LR"),
            Equation("update_b", b_new, self.update_b, "gradient-descent update of b with learning rate LR"),
            Equation("dataset_loss", loss, self.dataset_loss, "mean squared error over n samples"),
            Equation("dataset_dloss_da", D(loss, a), self.dataset_dloss_da, "data-set gradient with respect to a"),
            Equation("dataset_dloss_db", D(loss, b), self.dataset_dloss_db, "data-set gradient with respect to b"),
            Equation("dataset_update_a", a_new, a - LR * self.dataset_dloss_da, "data-set update of a"),
            Equation("dataset_update_b", b_new, b - LR * self.dataset_dloss_db, "data-set update of b"),
        )
