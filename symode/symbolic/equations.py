"""The derived equations of a model, in reading order, as :class:`~symode.symbolic.derive.Equation` values.

This module only arranges quantities the :class:`~symode.symbolic.derive.Derivation` already computed; it
derives nothing itself.
"""
from __future__ import annotations

import sympy

from .derive import Equation


class Label(sympy.Symbol):
    """A display-only symbol with separate text and LaTeX forms (e.g. ∂f/∂z), never used in algebra."""

    def __new__(cls, text: str, latex: str):
        obj = super().__new__(cls, text)
        obj._latex_form = latex
        return obj

    def _latex(self, printer):
        return self._latex_form

    def _sympystr(self, printer):
        return self.name

    def _pretty(self, printer):
        from sympy.printing.pretty.stringpict import prettyForm
        return prettyForm(self.name)


def model_equations(d) -> list[Equation]:
    m = d.model
    t = m.t
    t0, t1 = sympy.Symbol("t_0", real=True), sympy.Symbol("t_1", real=True)
    D = sympy.Derivative
    zf = {s: sympy.Function(s.name)(t) for s in m.states}
    zcol = sympy.Matrix([zf[s] for s in m.states])
    lam_f = sympy.Matrix([sympy.Function(s.name)(t) for s in d.lam])

    def tf(e):
        """State symbols -> z(t), so displayed right-hand sides read as functions of time."""
        return e.xreplace(zf)  # plain symbol -> function replacement: xreplace is exact and fast

    def at(time):
        return {s: sympy.Function(s.name)(time) for s in m.states}

    eqs = [
        Equation("dynamics", D(zcol, t), tf(d.f), "the model's right-hand side f(z, t, θ)"),
        Equation("initial_state", zcol.subs(t, t0), d.z0, "initial state z0(θ) (may depend on the parameters)"),
    ]
    loss = sympy.Integer(0)
    if m.terminal is not None:
        loss += m.terminal.xreplace(at(t1))
    for o in m.observations:
        loss += o.term.xreplace(at(o.time))
    if m.running is not None:
        loss += sympy.Integral(m.running.xreplace(zf), (t, t0, t1))
    eqs.append(Equation("loss", sympy.Symbol("L"), loss, f"the loss, t_0 = {m.t0}, t_1 = {m.t1}"))
    eqs += [
        Equation("dfdz", Label("df/dz", r"\frac{\partial f}{\partial z}"), d.dfdz, "Jacobian of f in the state"),
        Equation("dfdp", Label("df/dtheta", r"\frac{\partial f}{\partial \theta}"), d.dfdp,
                 "Jacobian of f in the parameters"),
        Equation("dz0dp", Label("dz0/dtheta", r"\frac{\partial z_0}{\partial \theta}"), d.dz0dp,
                 "Jacobian of the initial state in the parameters"),
    ]
    if m.terminal is not None:
        eqs.append(Equation("dldz_terminal", Label("dl/dz(t1)", r"\frac{\partial \ell}{\partial z(t_1)}"),
                            d.dldz_terminal.T, "gradient of the terminal term, at z(t1)"))
    for i, (o, g) in enumerate(zip(m.observations, d.dldz_obs)):
        eqs.append(Equation(f"dldz_obs_{i}", Label(f"dl_{i}/dz(t={o.time})",
                                                   rf"\frac{{\partial \ell_{{{i}}}}}{{\partial z({sympy.latex(o.time)})}}"),
                            g.T, f"gradient of observation term {i}, at z({o.time})"))
    Sf = d.S
    eqs += [
        Equation("sensitivity", D(Sf, t), tf(d.sens_rhs), "forward sensitivity S = dz/dθ: dS/dt = f_z S + f_θ"),
        Equation("sensitivity_initial", Label("S(t0)", r"S(t_0)"), d.sens_init, "S(t0) = dz0/dθ"),
        Equation("adjoint", D(lam_f, t), tf(d.adjoint_rhs.xreplace(dict(zip(d.lam, lam_f)))),
                 "adjoint λ = dL/dz(t), integrated backward: dλ/dt = -f_zᵀ λ - r_zᵀ"),
        Equation("adjoint_final", lam_f.subs(t, t1), d.adjoint_final.xreplace(at(t1)),
                 "λ(t1) = dℓ/dz at z(t1) (zero without a terminal term)"),
    ]
    for i, (time, jump) in enumerate(d.adjoint_jumps):
        eqs.append(Equation(f"adjoint_jump_{i}", Label(f"Delta lambda(t={time})", rf"\Delta\lambda({sympy.latex(time)})"),
                            jump.xreplace(at(time)),
                            f"going backward through t = {time}: λ += dℓ_{i}/dz"))
    mu_f = sympy.Matrix([sympy.Function(s.name)(t) for s in d.mu])
    lam0 = lam_f.subs(t, t0)
    eqs += [
        Equation("adjoint_quadrature", D(mu_f, t), tf(d.adjoint_quad_rhs.xreplace(dict(zip(d.lam, lam_f)))),
                 "μ(t1) = 0, so μ(t0) = ∫ (λᵀ f_θ + r_θ) dt"),
        Equation("grad_theta", Label("dL/dtheta", r"\frac{dL}{d\theta}"),
                 (mu_f.subs(t, t0) + d.dz0dp.T * lam0 + d.dldp_terminal
                  + sum(d.dldp_obs, sympy.zeros(m.np, 1))).T if m.np else sympy.zeros(1, 0),
                 "dL/dθ = μ(t0) + (dz0/dθ)ᵀ λ(t0) + ∂ℓ/∂θ + Σ ∂ℓ_i/∂θ"),
        Equation("grad_z0", Label("dL/dz0", r"\frac{dL}{dz_0}"), lam0.T, "dL/dz0 = λ(t0)"),
    ]
    if d.grad_t0_expr is not None:
        eqs.append(Equation("grad_t0", Label("dL/dt0", r"\frac{dL}{dt_0}"),
                            d.grad_t0_expr.subs(dict(zip(d.lam, lam0))).subs(dict(zip(m.states, d.z0)),
                                                                             simultaneous=True),
                            "dL/dt0 = -λ(t0)ᵀ f(z0, t0) - r(z0, t0)"))
    if d.grad_t1_expr is not None:
        eqs.append(Equation("grad_t1", Label("dL/dt1", r"\frac{dL}{dt_1}"),
                            d.grad_t1_expr.xreplace(at(t1)),
                            "dL/dt1 = ∂ℓ/∂z · f(z(t1), t1) + r(z(t1), t1)"))
    aug_states = sympy.Matrix([*zcol, *lam_f, *mu_f])
    aug_rhs = tf(sympy.Matrix([*d.f, *d.adjoint_rhs, *d.adjoint_quad_rhs]).xreplace(dict(zip(d.lam, lam_f))))
    eqs.append(Equation("augmented_backward_system", D(aug_states, t), aug_rhs,
                        "(z, λ, μ) integrated together from t1 down to t0 (Chen et al. 2018, Algorithm 1)"))
    return eqs
