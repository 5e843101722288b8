"""The derivation of a structured model in matrix form: the same quantities as :class:`~.derive.Derivation`,
as array expressions (:mod:`symode.arrays.node`) over whole vectors and matrices.

For states z (one or more groups), parameters θ (groups: matrices W, vectors b, scalars) and the adjoint λ
(one group per state group, the same shape):

    adjoint_rhs[g]   = dλ_g/dt = -(∂f/∂z_g)ᵀλ - (∂r/∂z_g)ᵀ          e.g. -W1ᵀ(σ'(a1) ⊙ W2ᵀλ) for an MLP
    param_rate[P]    = (∂f/∂P)ᵀλ + (∂r/∂P)ᵀ, shaped like P          e.g. (σ'(a1) ⊙ W2ᵀλ) zᵀ for P = W1
                       so dL/dP = ∫_{t0}^{t1} param_rate[P] dt + (∂z0/∂P)ᵀλ(t0) + ∂ℓ/∂P + Σ_i ∂ℓ_i/∂P
    loss gradients   ∂ℓ/∂z_g, ∂ℓ/∂P (terminal), the same per observation, ∂r/∂z_g, ∂r/∂P
    z0_chain[P]      = (∂z0/∂P)ᵀλ(t0)
    grad_t0          = -Σ_g λ_gᵀ f_g - r            (at z0, t0, λ(t0))
    grad_t1          = Σ_g (∂ℓ/∂z_g)ᵀ f_g + r       (at z(t1), t1; None where an observation lies at t1)
    tangent_rhs      ṡ_g = Σ_h (∂f_g/∂z_h) s_h + Σ_P (∂f_g/∂P) v_P: forward sensitivity in the direction v

The signs and conventions are :mod:`symode.symbolic.derive`'s; every quantity equals the scalar derivation's
element by element (``tests/test_matrix_form.py`` expands them and compares exactly).
"""
from __future__ import annotations

from functools import cached_property

import sympy

from ..arrays import node as N
from .array_calculus import element_owner, jvp, vjp


class MatrixDerivation:
    """Named array-valued quantities of a structured model (see the module docstring), each computed once."""

    def __init__(self, model):
        self.model = model
        st = model.structure
        self.structure = st
        self.groups = st.groups
        self.state_groups = st.state_groups
        self.param_groups = st.param_groups
        self.owner = element_owner(self.groups)
        self._taken = {*model.state_names, *model.param_names, model.t.name}

    # -- the model's expressions, one node per state group -------------------------------------------------------
    @cached_property
    def f(self) -> tuple:
        return tuple(N.lift(v) for v in self.structure.rhs)

    @cached_property
    def z0(self) -> tuple:
        return tuple(N.lift(v) for v in self.structure.z0)

    def _new_groups(self, prefix: str, groups, kind: str) -> tuple:
        out = []
        for g in groups:
            els = tuple(sympy.Symbol(N.fresh_name(f"{prefix}_{e.name}", self._taken), real=True) for e in g.elements)
            out.append(N.Group(f"{prefix}_{g.name}", kind, g.dims, els))
        return tuple(out)

    @cached_property
    def lam(self) -> tuple:
        """Adjoint groups λ_g (elements lambda_<state element>), shaped like the state groups."""
        return self._new_groups("lambda", self.state_groups, "adjoint")

    @cached_property
    def lam_nodes(self) -> tuple:
        return tuple(N.lift(N.leaf(g)) if g.is_array else N.scalar(g.elements[0]) for g in self.lam)

    # -- the adjoint: one reverse sweep of f (and r) seeded with λ ------------------------------------------------
    @cached_property
    def _f_vjp(self) -> dict:
        pairs = list(zip(self.f, self.lam_nodes))
        if self.structure.running is not None:
            pairs.append((N.lift(self.structure.running), N.scalar(1)))
        return vjp(pairs, self.owner)

    @cached_property
    def adjoint_rhs(self) -> tuple:
        """dλ_g/dt = -(∂f/∂z_g)ᵀλ - (∂r/∂z_g)ᵀ for each state group."""
        return tuple(self._neg(self._f_vjp.get(g), g) for g in self.state_groups)

    @cached_property
    def param_rate(self) -> tuple:
        """(∂f/∂P)ᵀλ + (∂r/∂P)ᵀ for each parameter group P (the integrand of dL/dP)."""
        return tuple(self._zero_if_none(self._f_vjp.get(g), g) for g in self.param_groups)

    @staticmethod
    def _zero_if_none(v, g):
        if v is not None:
            return v
        return N.scalar(0) if not g.is_array else N.broadcast(N.scalar(0), g.shape)

    def _neg(self, v, g):
        return self._zero_if_none(None, g) if v is None else N.neg(v)

    # -- loss terms -------------------------------------------------------------------------------------------
    def _loss_grads(self, term) -> tuple[tuple, tuple]:
        if term is None:
            return (tuple(self._zero_if_none(None, g) for g in self.state_groups),
                    tuple(self._zero_if_none(None, g) for g in self.param_groups))
        d = vjp([(N.lift(term), N.scalar(1))], self.owner)
        return (tuple(self._zero_if_none(d.get(g), g) for g in self.state_groups),
                tuple(self._zero_if_none(d.get(g), g) for g in self.param_groups))

    @cached_property
    def terminal_grads(self) -> tuple[tuple, tuple]:
        """(∂ℓ/∂z_g per state group, ∂ℓ/∂P per parameter group) of the terminal term (zeros without one)."""
        return self._loss_grads(self.structure.terminal)

    @cached_property
    def observation_grads(self) -> tuple:
        return tuple(self._loss_grads(v) for _, v in self.structure.observations)

    @cached_property
    def running_grads(self) -> tuple[tuple, tuple]:
        return self._loss_grads(self.structure.running)

    @cached_property
    def z0_chain(self) -> tuple:
        """(∂z0/∂P)ᵀλ(t0) for each parameter group (λ(t0) in the λ symbols)."""
        d = vjp(list(zip(self.z0, self.lam_nodes)), self.owner)
        return tuple(self._zero_if_none(d.get(g), g) for g in self.param_groups)

    # -- time gradients ---------------------------------------------------------------------------------------
    @cached_property
    def grad_t0(self) -> N.Node:
        """-Σ_g λ_gᵀ f_g - r, in z, t and λ (evaluate at z0, t0, λ(t0)); None where an observation lies at t0."""
        m = self.model
        if any(tm == m.t0 for tm in m.observation_times):
            return None
        terms = [N.neg(N.total(N.mul(lam, f))) for lam, f in zip(self.lam_nodes, self.f)]
        if self.structure.running is not None:
            terms.append(N.neg(self.structure.running))
        return N.xreplace(N.add(*terms), {m.t: m.t0})

    @cached_property
    def grad_t1(self):
        """Σ_g (∂ℓ/∂z_g)ᵀ f_g + r at t1, in z; None where an observation lies at t1."""
        m = self.model
        if any(tm == m.t1 for tm in m.observation_times):
            return None
        terms = [N.total(N.mul(g, f)) for g, f in zip(self.terminal_grads[0], self.f)]
        if self.structure.running is not None:
            terms.append(N.lift(self.structure.running))
        return N.xreplace(N.add(*terms), {m.t: m.t1})

    # -- forward sensitivity in one direction -------------------------------------------------------------------
    @cached_property
    def sens(self) -> tuple:
        """Direction groups s_g (the sensitivity, shaped like the states) and v_P (shaped like the parameters)."""
        return (self._new_groups("s", self.state_groups, "tangent"),
                self._new_groups("v", self.param_groups, "direction"))

    @cached_property
    def tangent_rhs(self) -> tuple:
        """ṡ_g = Σ_h (∂f_g/∂z_h) s_h + Σ_P (∂f_g/∂P) v_P for each state group."""
        return self.tangent(*self.sens)[0]

    def tangent(self, s_groups, v_groups=None, prefix: str = "") -> tuple:
        """(ṡ per state group, the running cost's directional derivative (∂r/∂z) s + (∂r/∂θ) v or None, and
        (∂z0/∂θ) v per state group) for the direction groups ``s_groups`` (shaped like the states) and
        ``v_groups`` (like the parameters; None: the direction has no parameter part)."""
        pairs = list(zip(self.state_groups, s_groups))
        if v_groups is not None:
            pairs += list(zip(self.param_groups, v_groups))
        tangents = {g: (N.leaf(x) if x.is_array else N.scalar(x.elements[0])) for g, x in pairs}
        running = self.structure.running
        out = jvp([*self.f, *([running] if running is not None else [])], tangents, self.owner)
        rates = tuple(self._zero_if_none(o, g) for o, g in zip(out, self.state_groups))
        r_rate = (out[-1] if out[-1] is not None else N.scalar(0)) if running is not None else None
        z0 = jvp(self.z0, {g: t for g, t in tangents.items() if g.kind == "param"}, self.owner)
        return rates, r_rate, tuple(self._zero_if_none(o, g) for o, g in zip(z0, self.state_groups))

    def direction_groups(self, tag: str) -> tuple:
        """Fresh direction groups (s shaped like the states, v like the parameters) named with ``tag``."""
        return (self._new_groups(f"s{tag}", self.state_groups, "tangent"),
                self._new_groups(f"v{tag}", self.param_groups, "direction"))

    @cached_property
    def equations(self) -> tuple:
        from .matrix_equations import matrix_equations
        return tuple(matrix_equations(self))
