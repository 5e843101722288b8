"""The peer implementations of the benchmark problems: each ``make_<tool>(problem)`` returns a function
``theta (np.ndarray) -> (loss, dL/dθ as np.ndarray)`` in the model's parameter order, or raises ImportError.

* ``jax``: a hand-written ``lax.scan`` of the 3/8-rule RK4 over symode's grid (10 segments of 10 steps), loss and
  gradient by ``jax.value_and_grad`` under ``jax.jit`` (reverse mode through the steps: the discrete gradient).
* ``torchdiffeq``: ``odeint`` (backpropagation through the solver: the discrete gradient) and ``odeint_adjoint``
  (the continuous adjoint, back-solving z and resetting it to the forward value at each output time), method
  "rk4" (the 3/8 rule) with ``step_size`` 0.01.
* ``diffrax``: the 3/8 rule as an explicit RK tableau, ``StepTo`` on symode's grid, ``SaveAt(ts=...)``;
  ``RecursiveCheckpointAdjoint`` (discrete) and ``BacksolveAdjoint`` (continuous, back-solved).

Threads: the caller pins the process to one core; torch is set to one thread and XLA's Eigen pool is off.
"""
from __future__ import annotations

import os

import numpy as np

from benchmarks.problems import Problem, grid

# the 3/8 rule (Kutta): A, b, c
A38 = [[], [1 / 3], [-1 / 3, 1.0], [1.0, -1.0, 1.0]]
B38 = [1 / 8, 3 / 8, 3 / 8, 1 / 8]
C38 = [0.0, 1 / 3, 2 / 3, 1.0]


def _split(problem: Problem, th, xp):
    """(W1, b1, W2, b2) or A from the flat θ (model order), for numpy-like module ``xp``."""
    if problem.kind == "spiral":
        return (xp.reshape(th, (2, 2)),)
    D, H = problem.D, problem.H
    a = H * D
    return (xp.reshape(th[0:a], (H, D)), th[a:a + H], xp.reshape(th[a + H:a + H + D * H], (D, H)),
            th[a + H + D * H:])


def _rhs(problem: Problem, xp, tanh):
    if problem.kind == "spiral":
        return lambda z, P: (z ** 3) @ P[0]

    def f(z, P):
        W1, b1, W2, b2 = P
        return W2 @ tanh(W1 @ z + b1) + b2
    return f


def _setup_jax():
    os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
    import jax
    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_platforms", "cpu")
    return jax


def _jax_loss(problem: Problem, unroll: int):
    jax = _setup_jax()
    import jax.numpy as jnp
    f = _rhs(problem, jnp, jnp.tanh)
    _, H = grid(problem)
    hs = jnp.asarray(H.reshape(10, 10))
    data = jnp.asarray(problem.data)
    z0 = jnp.asarray(problem.z0)

    def step(z, h, P):
        k1 = f(z, P)
        k2 = f(z + h * (k1 / 3), P)
        k3 = f(z + h * (k2 - k1 / 3), P)
        k4 = f(z + h * (k1 - k2 + k3), P)
        return z + h * (k1 + 3 * (k2 + k3) + k4) / 8

    def loss(th):
        P = _split(problem, th, jnp)

        def segment(z, hrow):
            z, _ = jax.lax.scan(lambda zz, h: (step(zz, h, P), None), z, hrow, unroll=unroll)
            return z, z
        _, zs = jax.lax.scan(segment, z0, hs)
        return jnp.sum((zs - data) ** 2)
    return jax, loss


def make_jax(problem: Problem, unroll: int = 10):
    """Loss and gradient; ``unroll`` steps per scan iteration (10: one observation interval)."""
    jax, loss = _jax_loss(problem, unroll)
    return _value_and_grad(jax, loss)


def _value_and_grad(jax, loss):
    """theta -> (L, dL/dθ) by ``jax.jit(jax.value_and_grad(loss))``, waiting for the result."""
    vg = jax.jit(jax.value_and_grad(loss))

    def run(theta):
        L, g = vg(theta)
        g.block_until_ready()
        return L, g
    return run


def make_jax_loss(problem: Problem, unroll: int = 10):
    """The loss alone (the forward solve), for JAX's grad/forward ratio."""
    jax, loss = _jax_loss(problem, unroll)
    f = jax.jit(loss)

    def run(theta):
        return f(theta).block_until_ready()
    return run


def _torch_module(problem: Problem):
    import torch
    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float64)

    class Func(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.p = torch.nn.Parameter(torch.zeros(problem.np, dtype=torch.float64))

        def forward(self, t, z):
            P = _split(problem, self.p, torch)
            if problem.kind == "spiral":
                return (z ** 3) @ P[0]
            W1, b1, W2, b2 = P
            return W2 @ torch.tanh(W1 @ z + b1) + b2
    return torch, Func()


def _make_torchdiffeq(problem: Problem, adjoint: bool):
    torch, func = _torch_module(problem)
    from torchdiffeq import odeint, odeint_adjoint
    t = torch.tensor([0.0] + [k / 10 for k in range(1, 11)], dtype=torch.float64)
    data = torch.tensor(problem.data)
    z0 = torch.tensor(problem.z0)
    opts = {"step_size": 0.01}

    def run(theta):
        with torch.no_grad():
            func.p.copy_(torch.from_numpy(theta))
        func.p.grad = None
        if adjoint:
            zs = odeint_adjoint(func, z0, t, method="rk4", options=opts, adjoint_options=dict(opts))
        else:
            zs = odeint(func, z0, t, method="rk4", options=opts)
        L = torch.sum((zs[1:] - data) ** 2)
        L.backward()
        return float(L.detach()), func.p.grad.numpy().copy()
    return run


def make_torchdiffeq_odeint(problem: Problem):
    return _make_torchdiffeq(problem, False)


def make_torchdiffeq_adjoint(problem: Problem):
    return _make_torchdiffeq(problem, True)


def _make_diffrax(problem: Problem, backsolve: bool):
    jax = _setup_jax()
    import diffrax
    import jax.numpy as jnp
    f = _rhs(problem, jnp, jnp.tanh)

    class RK38(diffrax.AbstractERK):
        tableau = diffrax.ButcherTableau(
            c=np.array(C38[1:]), b_sol=np.array(B38), b_error=np.zeros(4),
            a_lower=(np.array(A38[1]), np.array(A38[2]), np.array(A38[3])))
        interpolation_cls = diffrax.ThirdOrderHermitePolynomialInterpolation.from_k

        def order(self, terms):
            return 4

    T0, H = grid(problem)
    ts_grid = jnp.asarray(np.append(T0, 1.0))
    obs = jnp.asarray([k / 10 for k in range(1, 11)])
    data = jnp.asarray(problem.data)
    z0 = jnp.asarray(problem.z0)
    # BacksolveAdjoint solves backward between the output times with the forward's controller, and StepTo's
    # increasing grid cannot serve a backward solve: constant steps of 0.01 instead (nodes within rounding
    # of symode's grid; outputs at the observation times by interpolation at distance ~1e-17 from a node)
    adj = diffrax.BacksolveAdjoint() if backsolve else diffrax.RecursiveCheckpointAdjoint()
    control = (dict(stepsize_controller=diffrax.ConstantStepSize(), dt0=0.01) if backsolve else
               dict(stepsize_controller=diffrax.StepTo(ts=ts_grid), dt0=None))

    def loss(th):
        P = _split(problem, th, jnp)
        sol = diffrax.diffeqsolve(diffrax.ODETerm(lambda t, z, args: f(z, args)), RK38(), t0=0.0, t1=1.0,
                                  y0=z0, args=P, saveat=diffrax.SaveAt(ts=obs), adjoint=adj, max_steps=200,
                                  **control)
        return jnp.sum((sol.ys - data) ** 2)
    return _value_and_grad(jax, loss)


def make_diffrax_rca(problem: Problem):
    return _make_diffrax(problem, False)


def make_diffrax_backsolve(problem: Problem):
    return _make_diffrax(problem, True)
