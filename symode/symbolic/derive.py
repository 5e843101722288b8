"""Symbolic derivation engine: every derived quantity of a :class:`~symode.model.Model`, named and computed once.

Conventions (stated once here; tests check every sign against closed forms):

Forward sensitivity.  S = ∂z/∂θ (nz × nθ) obeys
    dS/dt = ∂f/∂z · S + ∂f/∂θ,          S(t0) = ∂z0/∂θ,
and W = ∂z/∂z0 (nz × nz, z0 treated as free) obeys dW/dt = ∂f/∂z · W, W(t0) = I.
The running cost is carried as quadratures q' = r, Q' = ∂r/∂z · S + ∂r/∂θ, Qz0' = ∂r/∂z · W.

Continuous adjoint (Chen et al. 2018, Algorithm 1, generalised to observation and running terms).
λ(t) = ∂L/∂z(t) (column, nz) obeys, backward from t1 to t0,
    dλ/dt = -(∂f/∂z)ᵀ λ - (∂r/∂z)ᵀ,     λ(t1) = (∂ℓ/∂z)ᵀ at z(t1)     (0 without a terminal term),
    at each observation time t_i, going backward:  λ(t_i⁻) = λ(t_i⁺) + (∂ℓ_i/∂z)ᵀ,
and the parameter quadrature μ obeys
    dμ/dt = -(∂f/∂θ)ᵀ λ - (∂r/∂θ)ᵀ,     μ(t1) = 0,   so   μ(t0) = ∫_{t0}^{t1} (λᵀ ∂f/∂θ + ∂r/∂θ) dt.
Then
    dL/dθ  = μ(t0) + (∂z0/∂θ)ᵀ λ(t0) + ∂ℓ/∂θ + Σ_i ∂ℓ_i/∂θ       (total derivative, z0 = z0(θ) included)
    dL/dz0 = λ(t0)                                                 (z0 treated as a free input)
    dL/dt1 = ∂ℓ/∂z(z(t1)) · f(z(t1), t1) + r(z(t1), t1)             (observation times are fixed absolute times)
    dL/dt0 = -λ(t0)ᵀ f(z0, t0) - r(z0, t0)                          (moving the start later shortens the solve)
dL/dt1 is undefined (one-sided) when an observation lies exactly at t1, and dL/dt0 when one lies exactly at t0;
dL/dt1 is 0 for a loss made only of observations before t1.  The augmented backward system is the single ODE in (z, λ, μ) with right-hand side
(f, -(∂f/∂z)ᵀλ - (∂r/∂z)ᵀ, -(∂f/∂θ)ᵀλ - (∂r/∂θ)ᵀ), integrated from t1 down to t0.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import sympy

from ..lru import LRUCache
from ..model import Model


@dataclass(frozen=True)
class Equation:
    """One named derived equation ``lhs = rhs`` (both SymPy objects), with a one-line description."""

    name: str
    lhs: sympy.Basic
    rhs: sympy.Basic
    description: str = ""


@dataclass(frozen=True)
class OdeSystem:
    """A first-order system y' = rhs(y, t) with initial values, as plain SymPy lists (for numeric routes).

    ``blocks`` maps a block name (e.g. "z", "S", "lambda") to the slice of ``states`` it occupies.
    """

    states: tuple
    rhs: tuple
    init: tuple
    blocks: dict = field(default_factory=dict)


def _fresh(base: str, taken: set[str]) -> sympy.Symbol:
    """A real symbol named ``base`` (suffixed with '_' until it clashes with no model name)."""
    name = base
    while name in taken:
        name += "_"
    taken.add(name)
    return sympy.Symbol(name, real=True)


def _col(items) -> sympy.Matrix:
    items = list(items)
    return sympy.Matrix(len(items), 1, items)


class Derivation:
    """Named symbolic quantities of a model, each computed lazily on first access and memoised.

    Access by attribute (``d.dfdz``) or by name (``d.get("dfdz")``); ``Derivation.NAMES`` lists them all.
    """

    NAMES = (
        "z", "theta", "f", "dfdz", "dfdp", "dfdt", "z0", "dz0dp",
        "S", "W", "sens_rhs", "sens_init", "sens_z0_rhs",
        "dldz_terminal", "dldp_terminal", "dldz_obs", "dldp_obs", "drdz", "drdp",
        "lam", "mu", "adjoint_rhs", "adjoint_quad_rhs", "adjoint_final", "adjoint_jumps",
        "grad_t1_expr", "grad_t0_expr", "forward_system", "backward_system", "equations", "closed_form", "matrix",
    )

    def __init__(self, model: Model):
        self.model = model
        self._taken = {*model.state_names, *model.param_names, model.t.name}

    def get(self, name: str):
        if name not in self.NAMES:
            raise KeyError(f"no derived quantity named {name!r}; known: {', '.join(self.NAMES)}")
        return getattr(self, name)

    # -- the model as matrices --------------------------------------------------------------------------------
    @cached_property
    def z(self) -> sympy.Matrix:
        return _col(self.model.states)

    @cached_property
    def theta(self) -> sympy.Matrix:
        return _col(self.model.params)

    @cached_property
    def f(self) -> sympy.Matrix:
        return _col(self.model.rhs)

    @cached_property
    def z0(self) -> sympy.Matrix:
        return _col(self.model.z0)

    @cached_property
    def dfdz(self) -> sympy.Matrix:
        """∂f/∂z, nz × nz (row i = gradient of f_i)."""
        return self.f.jacobian(self.z)

    @cached_property
    def dfdp(self) -> sympy.Matrix:
        """∂f/∂θ, nz × nθ."""
        return self.f.jacobian(self.theta) if self.model.np else sympy.zeros(self.model.nz, 0)

    @cached_property
    def dfdt(self) -> sympy.Matrix:
        return self.f.diff(self.model.t)

    @cached_property
    def dz0dp(self) -> sympy.Matrix:
        """∂z0/∂θ, nz × nθ (the encoder chain)."""
        return self.z0.jacobian(self.theta) if self.model.np else sympy.zeros(self.model.nz, 0)

    # -- loss pieces ------------------------------------------------------------------------------------------
    def _grad(self, expr, wrt: sympy.Matrix) -> sympy.Matrix:
        if expr is None:
            return sympy.zeros(wrt.rows, 1)
        return _col(sympy.diff(expr, s) for s in wrt)

    @cached_property
    def dldz_terminal(self) -> sympy.Matrix:
        """(∂ℓ/∂z)ᵀ of the terminal term, a column in the state symbols (evaluate at z(t1))."""
        return self._grad(self.model.terminal, self.z)

    @cached_property
    def dldp_terminal(self) -> sympy.Matrix:
        return self._grad(self.model.terminal, self.theta)

    @cached_property
    def dldz_obs(self) -> tuple:
        """(∂ℓ_i/∂z)ᵀ for each observation, columns in the state symbols (evaluate at z(t_i))."""
        return tuple(self._grad(o.term, self.z) for o in self.model.observations)

    @cached_property
    def dldp_obs(self) -> tuple:
        return tuple(self._grad(o.term, self.theta) for o in self.model.observations)

    @cached_property
    def drdz(self) -> sympy.Matrix:
        return self._grad(self.model.running, self.z)

    @cached_property
    def drdp(self) -> sympy.Matrix:
        return self._grad(self.model.running, self.theta)

    # -- forward sensitivity ----------------------------------------------------------------------------------
    @cached_property
    def S(self) -> sympy.Matrix:
        """Sensitivity symbols S[i, j] = ∂z_i/∂θ_j (named S_<state>_<param>)."""
        m = self.model
        return sympy.Matrix(m.nz, m.np, lambda i, j: _fresh(f"S_{m.state_names[i]}_{m.param_names[j]}",
                                                           self._taken))

    @cached_property
    def W(self) -> sympy.Matrix:
        """Initial-state sensitivity symbols W[i, j] = ∂z_i/∂z0_j (named W_<state>_<state>)."""
        m = self.model
        return sympy.Matrix(m.nz, m.nz, lambda i, j: _fresh(f"W_{m.state_names[i]}_{m.state_names[j]}",
                                                           self._taken))

    @cached_property
    def sens_rhs(self) -> sympy.Matrix:
        """dS/dt = ∂f/∂z · S + ∂f/∂θ."""
        return self.dfdz * self.S + self.dfdp

    @cached_property
    def sens_init(self) -> sympy.Matrix:
        """S(t0) = ∂z0/∂θ."""
        return self.dz0dp

    @cached_property
    def sens_z0_rhs(self) -> sympy.Matrix:
        """dW/dt = ∂f/∂z · W, W(t0) = I."""
        return self.dfdz * self.W

    # -- continuous adjoint -----------------------------------------------------------------------------------
    @cached_property
    def lam(self) -> sympy.Matrix:
        """Adjoint symbols λ_i = ∂L/∂z_i(t) (named lambda_<state>)."""
        return _col(_fresh(f"lambda_{s}", self._taken) for s in self.model.state_names)

    @cached_property
    def mu(self) -> sympy.Matrix:
        """Parameter-quadrature symbols μ_j (named mu_<param>)."""
        return _col(_fresh(f"mu_{p}", self._taken) for p in self.model.param_names)

    @cached_property
    def adjoint_rhs(self) -> sympy.Matrix:
        """dλ/dt = -(∂f/∂z)ᵀ λ - (∂r/∂z)ᵀ."""
        return -self.dfdz.T * self.lam - self.drdz

    @cached_property
    def adjoint_quad_rhs(self) -> sympy.Matrix:
        """dμ/dt = -(∂f/∂θ)ᵀ λ - (∂r/∂θ)ᵀ, μ(t1) = 0."""
        return -self.dfdp.T * self.lam - self.drdp

    @cached_property
    def adjoint_final(self) -> sympy.Matrix:
        """λ(t1⁺) = (∂ℓ/∂z)ᵀ at z(t1) (zero without terminal term); observation jumps come on top."""
        return self.dldz_terminal

    @cached_property
    def adjoint_jumps(self) -> tuple:
        """(t_i, Δλ_i) pairs: going backward through t_i, λ += (∂ℓ_i/∂z)ᵀ evaluated at z(t_i)."""
        return tuple((o.time, g) for o, g in zip(self.model.observations, self.dldz_obs))

    # -- time gradients ---------------------------------------------------------------------------------------
    @cached_property
    def grad_t1_expr(self):
        """dL/dt1 as an expression in the state symbols, to evaluate at z = z(t1), t = t1; None where undefined.

        dL/dt1 = ∂ℓ/∂z · f(z, t1) + r(z, t1).  Undefined (one-sided) if an observation lies exactly at t1.
        """
        m = self.model
        if any(o.time == m.t1 for o in m.observations):
            return None
        expr = (self.dldz_terminal.T * self.f)[0, 0]
        if m.running is not None:
            expr += m.running
        return expr.subs(m.t, m.t1)

    @cached_property
    def grad_t0_expr(self):
        """dL/dt0 = -λᵀ f(z, t0) - r(z, t0) as an expression in λ and z symbols, evaluated at z = z0, λ = λ(t0);
        None where undefined (an observation exactly at t0: the start cannot move past a fixed observation)."""
        m = self.model
        if any(tm == m.t0 for tm in m.observation_times):
            return None
        expr = -(self.lam.T * self.f)[0, 0]
        if m.running is not None:
            expr -= m.running
        return expr.subs(m.t, m.t0)

    # -- whole systems for numeric routes ---------------------------------------------------------------------
    @cached_property
    def forward_system(self) -> OdeSystem:
        """State (z, S, W[, q, Q, Qz0]) flattened row-major, its right-hand side and initial values.

        q' = r, Q' = ∂r/∂z · S + ∂r/∂θ, Qz0' = ∂r/∂z · W carry the running cost and its gradients.
        """
        m = self.model
        states, rhs, init, blocks = [], [], [], {}

        def add(block, syms, exprs, inits):
            start = len(states)
            states.extend(syms)
            rhs.extend(exprs)
            init.extend(inits)
            blocks[block] = slice(start, len(states))

        add("z", list(self.z), list(self.f), list(self.z0))
        add("S", list(self.S), list(self.sens_rhs), list(self.sens_init))
        add("W", list(self.W), list(self.sens_z0_rhs), list(sympy.eye(m.nz)))
        if m.running is not None:
            q = _fresh("q", self._taken)
            Q = [_fresh(f"Q_{p}", self._taken) for p in m.param_names]
            Qz = [_fresh(f"Qz0_{s}", self._taken) for s in m.state_names]
            drdz_row = self.drdz.T
            add("q", [q], [m.running], [0])
            add("Q", Q, list(drdz_row * self.S + self.drdp.T), [0] * m.np)
            add("Qz0", Qz, list(drdz_row * self.W), [0] * m.nz)
        return OdeSystem(tuple(states), tuple(rhs), tuple(sympy.Integer(v) if isinstance(v, int) else v for v in init), blocks)

    @cached_property
    def backward_system(self) -> OdeSystem:
        """The augmented backward system in (z, λ, μ), to integrate from t1 down to t0.

        ``init`` holds the values at t1 as expressions in the state symbols z (evaluate them at z(t1)):
        (z(t1), (∂ℓ/∂z)ᵀ, 0).  Observation jumps are applied by the caller (see ``adjoint_jumps``).
        """
        m = self.model
        states = [*self.z, *self.lam, *self.mu]
        rhs = [*self.f, *self.adjoint_rhs, *self.adjoint_quad_rhs]
        init = [*self.z, *self.adjoint_final, *([sympy.Integer(0)] * m.np)]
        nz, np_ = m.nz, m.np
        blocks = {"z": slice(0, nz), "lambda": slice(nz, 2 * nz), "mu": slice(2 * nz, 2 * nz + np_)}
        return OdeSystem(tuple(states), tuple(rhs), tuple(init), blocks)

    # -- rendering --------------------------------------------------------------------------------------------
    @cached_property
    def matrix(self):
        """The matrix-form derivation (:class:`~.matrix_form.MatrixDerivation`) of a structured model, else None."""
        if self.model.structure is None:
            return None
        from .matrix_form import MatrixDerivation
        return MatrixDerivation(self.model)

    @cached_property
    def equations(self) -> tuple:
        """The derived equations in reading order, for text / LaTeX / Markdown rendering (in matrix form for a
        structured model: one page for any size)."""
        if self.matrix is not None:
            return self.matrix.equations
        from .equations import model_equations
        return tuple(model_equations(self))

    # -- closed forms -----------------------------------------------------------------------------------------
    @cached_property
    def closed_form(self):
        """A :class:`~symode.symbolic.closed_form.ClosedForm` or a :class:`~symode.symbolic.closed_form.NoClosedForm`."""
        from .closed_form import find_closed_form
        return find_closed_form(self)


#: derivations by model fingerprint (never by the Model object: a model changed after its derivation must not
#: find it again); the 32 most recently used are kept
_CACHE: "LRUCache[Derivation]" = LRUCache(32)


def derive(model: Model) -> Derivation:
    """The memoised :class:`Derivation` of ``model``: models with the same fingerprint (structure and values)
    share one derivation."""
    return _CACHE.get_or_build(model.fingerprint(), lambda: Derivation(model))
