"""The derived equations of a structured model in matrix form (one page for any network size).

Arranges :class:`~.matrix_form.MatrixDerivation`'s quantities as :class:`~.derive.Equation` values whose sides are
SymPy matrix expressions (:mod:`.matrix_display`): named terms (a1 = W1 z + b1, h1 = tanh(a1)), the dynamics,
the adjoint dλ/dt = -W1ᵀ(tanh'(a1) ⊙ W2ᵀλ), dL/dP = ∫ ... dt for every parameter array P, dL/dz0, dL/dt0,
dL/dt1 and the forward sensitivity in a direction.  Nothing is derived here.
"""
from __future__ import annotations

import sympy

from ..arrays import node as N
from .derive import Equation
from .equations import Label
from .matrix_display import MatrixLabel, MatrixText


def _text(symbol) -> str:
    return sympy.pretty(symbol, use_unicode=True)


def _lam_label(md, g) -> str:
    """The name of λ's symbol: λ for one state group, λ_<name> for several."""
    return "lambda" if len(md.state_groups) == 1 else g.name


def _loss_summary(md, show) -> list[Equation]:
    """The loss: terminal term, observation terms (one generic line when they are all squared errors of data) and
    the running cost."""
    m = md.model
    st = md.structure
    t0, t1 = sympy.Symbol("t_0", real=True), sympy.Symbol("t_1", real=True)
    parts, eqs = [], []
    L = sympy.Symbol("L")
    if st.terminal is not None:
        parts.append(Label("ℓ(z(t1))", r"\ell(z(t_1))"))
        eqs.append(Equation("terminal_term", Label("ℓ", r"\ell"), show(st.terminal), "the terminal term ℓ, at z = z(t1)"))
    if st.observations:
        i = sympy.Symbol("i", integer=True)
        parts.append(sympy.Sum(Label("ℓ_i(z(t_i))", r"\ell_i(z(t_i))"), (i, 1, len(st.observations))))
        times = ", ".join(str(tm) for tm in m.observation_times)
        for k, (tm, v) in enumerate(st.observations):
            eqs.append(Equation(f"observation_term_{k}", Label(f"ℓ_{k + 1}", rf"\ell_{{{k + 1}}}"), show(v),
                                f"observation term {k + 1}, at z = z({tm})"))
        if len(st.observations) > 3:  # one page: the first and the last, and the times
            eqs = eqs[:2] + [eqs[-1]] if st.terminal is not None else [eqs[0], eqs[-1]]
            eqs[-1] = Equation(eqs[-1].name, eqs[-1].lhs, eqs[-1].rhs,
                               eqs[-1].description + f" (observation times: {times})")
    if st.running is not None:
        parts.append(sympy.Integral(show(st.running), (m.t, t0, t1)))
    return [Equation("loss", L, sympy.Add(*parts), f"the loss, t_0 = {m.t0}, t_1 = {m.t1}")] + eqs


def matrix_equations(md) -> list[Equation]:
    """The equations in reading order (see the module docstring)."""
    st = md.structure
    m = md.model
    names: dict = {}
    show = MatrixText(names)
    for g, lam in zip(md.state_groups, md.lam):
        names[lam] = show.symbol_for(lam, _lam_label(md, lam))
    eqs = []
    for n, v in st.defs:  # named terms, each shown with the earlier names
        lhs = sympy.MatrixSymbol(n, *v.shape) if isinstance(v, N.Node) and not v.is_scalar else sympy.Symbol(n)
        eqs.append(Equation(f"def_{n}", lhs, show(v), f"named term {n}"))
        names[v] = eqs[-1].lhs
    z_sym = [show.symbol_for(g) for g in md.state_groups]
    for g, zs, f in zip(md.state_groups, z_sym, md.f):
        eqs.append(Equation("dynamics", Label(f"d{g.name}/dt", rf"\frac{{d {sympy.latex(zs)}}}{{dt}}"), show(f),
                            "the model's right-hand side f(z, t, θ)"))
    for g, zs, v in zip(md.state_groups, z_sym, md.z0):
        eqs.append(Equation("initial_state", Label(f"{g.name}(t0)", rf"{sympy.latex(zs)}(t_0)"), show(v),
                            "initial state z0(θ)"))
    eqs += _loss_summary(md, show)
    lam_sym = [names[lam] for lam in md.lam]
    for lam, ls, rate in zip(md.lam, lam_sym, md.adjoint_rhs):
        eqs.append(Equation("adjoint", Label(f"d{_text(ls)}/dt", rf"\frac{{d {sympy.latex(ls)}}}{{dt}}"),
                            show(rate), "adjoint λ = dL/dz(t), integrated backward: dλ/dt = -(∂f/∂z)ᵀλ - (∂r/∂z)ᵀ"))
    for g, lam, ls, dz in zip(md.state_groups, md.lam, lam_sym, md.terminal_grads[0]):
        eqs.append(Equation("adjoint_final", Label(f"{_text(ls)}(t1)", rf"{sympy.latex(ls)}(t_1)"),
                            show(dz), "λ(t1) = (∂ℓ/∂z)ᵀ at z(t1) (zero without a terminal term)"))
    for k, (tm, (dz, _)) in enumerate(zip(m.observation_times, md.observation_grads)):
        if k in (0, len(m.observation_times) - 1) or len(m.observation_times) <= 3:
            for lam, ls, d in zip(md.lam, lam_sym, dz):
                eqs.append(Equation(f"adjoint_jump_{k}", Label(f"Δ{_text(ls)}(t={tm})",
                                                                rf"\Delta {sympy.latex(ls)}({sympy.latex(tm)})"),
                                    show(d), f"going backward through t = {tm}: λ += (∂ℓ_{k + 1}/∂z)ᵀ at z({tm})"))
    eqs += _gradients(md, show, lam_sym)
    return eqs


def _gradients(md, show, lam_sym) -> list[Equation]:
    m = md.model
    t = m.t
    t0, t1 = sympy.Symbol("t_0", real=True), sympy.Symbol("t_1", real=True)
    lam0 = {g: Label(f"{_text(s)}(t0)", rf"{sympy.latex(s)}(t_0)") if not getattr(s, "is_Matrix", False) else
            MatrixLabel(f"{_text(s)}(t0)", *s.shape, latex=rf"{sympy.latex(s)}(t_0)") for g, s in zip(md.lam, lam_sym)}
    at_t0 = MatrixText({**show.names, **{g: lam0[g] for g in md.lam}})
    eqs = []
    obs = md.observation_grads
    for j, (P, rate) in enumerate(zip(md.param_groups, md.param_rate)):
        parts = []
        if not N.is_zero(rate) and rate.op != "broadcast":
            parts.append(sympy.Integral(show(rate), (t, t0, t1)))
        for extra in (md.z0_chain[j], md.terminal_grads[1][j], *[o[1][j] for o in obs]):
            if not (N.is_zero(extra) or extra.op == "broadcast"):
                parts.append(at_t0(extra) if extra is md.z0_chain[j] else show(extra))
        rhs = (sympy.MatAdd(*parts) if parts and getattr(parts[0], "is_Matrix", False) else sympy.Add(*parts)) \
            if parts else sympy.Integer(0)
        eqs.append(Equation(f"grad_{P.name}", Label(f"dL/d{P.name}", rf"\frac{{dL}}{{d{sympy.latex(show.symbol_for(P))}}}"),
                            rhs, "∫ (∂f/∂P)ᵀλ + (∂r/∂P)ᵀ dt + (∂z0/∂P)ᵀλ(t0) + ∂ℓ/∂P + Σ ∂ℓ_i/∂P, shaped like P"))
    for g, lam in zip(md.state_groups, md.lam):
        eqs.append(Equation("grad_z0", Label(f"dL/d{g.name}0", rf"\frac{{dL}}{{d{g.name}_0}}"), lam0[lam],
                            "dL/dz0 = λ(t0) (z0 a free input)"))
    if md.grad_t0 is not None:
        eqs.append(Equation("grad_t0", Label("dL/dt0", r"\frac{dL}{dt_0}"), at_t0(md.grad_t0),
                            "dL/dt0 = -λ(t0)ᵀ f(z0, t0) - r(z0, t0) (named terms and z at t0)"))
    if md.grad_t1 is not None:
        eqs.append(Equation("grad_t1", Label("dL/dt1", r"\frac{dL}{dt_1}"), show(md.grad_t1),
                            "dL/dt1 = (∂ℓ/∂z)ᵀ f(z(t1), t1) + r(z(t1), t1) (named terms and z at t1)"))
    s, v = md.sens
    for g, sg, rate in zip(md.state_groups, s, md.tangent_rhs):
        ss = show.symbol_for(sg)
        eqs.append(Equation("sensitivity", Label(f"d{sg.name}/dt", rf"\frac{{d {sympy.latex(ss)}}}{{dt}}"), show(rate),
                            "forward sensitivity s = (dz/dθ) v in a direction v (v_P shaped like each parameter P): "
                            "ds/dt = (∂f/∂z) s + (∂f/∂θ) v, s(t0) = (∂z0/∂θ) v"))
    return eqs
