"""Closed-form results as displayable equations (solution, loss, every gradient)."""
from __future__ import annotations

import sympy

from .derive import Equation
from .equations import Label


def closed_form_equations(d, cf) -> list[Equation]:
    m = d.model
    eqs = [Equation("closed_form_solution", sympy.Matrix([sympy.Function(s.name)(m.t) for s in m.states]),
                    sympy.Matrix(cf.solution), f"closed-form solution ({cf.method}); z(t_0) = z_0")]
    eqs.append(Equation("closed_form_loss", sympy.Symbol("L"), cf.loss, "closed-form loss"))
    for p, g in zip(m.params, cf.grad_theta):
        eqs.append(Equation(f"closed_form_dL_d{p.name}", Label(f"dL/d{p.name}", rf"\frac{{dL}}{{d{sympy.latex(p)}}}"),
                            g, f"exact dL/d{p.name} (z0 = z0(θ) chain included)"))
    for Z, g in zip(cf.Z0, cf.grad_z0):
        eqs.append(Equation(f"closed_form_dL_d{Z.name}", Label(f"dL/d{Z.name}", rf"\frac{{dL}}{{d{sympy.latex(Z)}}}"),
                            g, f"exact dL/d{Z.name}"))
    if cf.grad_t0 is not None:
        eqs.append(Equation("closed_form_dL_dt0", Label("dL/dt0", r"\frac{dL}{dt_0}"), cf.grad_t0, "exact dL/dt0"))
    if cf.grad_t1 is not None:
        eqs.append(Equation("closed_form_dL_dt1", Label("dL/dt1", r"\frac{dL}{dt_1}"), cf.grad_t1, "exact dL/dt1"))
    return eqs
