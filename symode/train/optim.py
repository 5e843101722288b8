"""Optimisers: one class per update rule, one interface (``step(theta, grad) -> new theta``).

Plain gradient descent is the seed notes' rule, with the learning rate η written ``LR`` there:

    θ_{k+1} = θ_k - η ∇L(θ_k)

Adam (Kingma & Ba 2015, Algorithm 1) keeps running moments of the gradient g_k = ∇L(θ_k):

    m_k = β1 m_{k-1} + (1 - β1) g_k,        v_k = β2 v_{k-1} + (1 - β2) g_k²     (m_0 = v_0 = 0)
    m̂_k = m_k / (1 - β1^k),                 v̂_k = v_k / (1 - β2^k)
    θ_{k+1} = θ_k - η m̂_k / (√v̂_k + ε)

Every optimiser is deterministic: the same gradients give the same iterates, bit for bit.
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import SpecError

__all__ = ["Optimizer", "GradientDescent", "Adam", "OPTIMIZERS", "make_optimizer"]


def _positive(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise SpecError(f"{what} must be a finite positive number, got {value!r}")
    return float(value)


class Optimizer:
    """The interface: ``step`` takes θ_k and ∇L(θ_k) and returns θ_{k+1} (a new array)."""

    name = ""

    def __init__(self, lr: float):
        self.lr = _positive(lr, "the learning rate")

    def step(self, theta: np.ndarray, grad: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def describe(self) -> str:
        return f"{self.name} (learning rate {self.lr:g})"


class GradientDescent(Optimizer):
    """θ ← θ - η ∇L(θ): the seed's update rule."""

    name = "gd"

    def step(self, theta, grad):
        return np.asarray(theta, dtype=float) - self.lr * np.asarray(grad, dtype=float)


class Adam(Optimizer):
    """Adam with bias-corrected moments (module docstring); defaults β1 = 0.9, β2 = 0.999, ε = 1e-8."""

    name = "adam"

    def __init__(self, lr: float, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
        super().__init__(lr)
        for b, what in ((beta1, "beta1"), (beta2, "beta2")):
            if isinstance(b, bool) or not isinstance(b, (int, float)) or not 0 <= b < 1:
                raise SpecError(f"Adam's {what} must be in [0, 1), got {b!r}")
        self.beta1, self.beta2 = float(beta1), float(beta2)
        self.eps = _positive(eps, "Adam's eps")
        self.k = 0
        self.m = self.v = None

    def step(self, theta, grad):
        g = np.asarray(grad, dtype=float)
        if self.m is None:
            self.m, self.v = np.zeros_like(g), np.zeros_like(g)
        self.k += 1
        self.m = self.beta1 * self.m + (1 - self.beta1) * g
        self.v = self.beta2 * self.v + (1 - self.beta2) * g * g
        m_hat = self.m / (1 - self.beta1 ** self.k)
        v_hat = self.v / (1 - self.beta2 ** self.k)
        return np.asarray(theta, dtype=float) - self.lr * m_hat / (np.sqrt(v_hat) + self.eps)


#: name -> class; ``symode train --optimizer`` chooses among these.
OPTIMIZERS = {cls.name: cls for cls in (GradientDescent, Adam)}


def make_optimizer(name: str, lr: float) -> Optimizer:
    """A fresh optimiser by name (its state starts empty)."""
    cls = OPTIMIZERS.get(name)
    if cls is None:
        raise SpecError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")
    return cls(lr)
