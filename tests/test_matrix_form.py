"""Issue 12, item 2: the derivation in matrix form.

The displayed equations (SymPy matrix expressions: λ̇ = -W1ᵀ(σ'(a1) ⊙ W2ᵀλ), dL/dW1 = ∫ (σ'(a1) ⊙ W2ᵀλ) zᵀ dt, ...)
are expanded element by element (explicit matrices of the element symbols substituted, ``as_explicit``) and
compared exactly (``expand`` of the difference is 0) with the scalar derivation of the same model
(``derive(model.scalar_model())``, SymPy's Jacobians of the expanded right-hand side: an independent route to the
same quantities).  No tolerances: the comparison is symbolic and exact.
"""
from __future__ import annotations

import pytest
import sympy

from symode.arrays import node as N
from symode.library import get_model
from symode.spec import load_spec
from symode.symbolic.derive import derive
from symode.symbolic.render import render

SMALL = '''
name = "small"
states = [{name = "z", size = 2}]
z0 = ["tanh(E @ [0.3, -0.2])"]
t0 = "0"
t1 = "1"
[network]
hidden = [3, 2]
activation = ["sigmoid", "softplus"]
time_input = true
[params]
W1 = [["0.1", "-0.2"], ["0.3", "0.4"], ["-0.5", "0.6"]]
Wt1 = ["0.2", "-0.1", "0.05"]
b1 = ["0.01", "0.02", "0.03"]
W2 = [["0.5", "-0.3", "0.2"], ["-0.4", "0.1", "0.3"]]
b2 = ["0", "0.1"]
W3 = [["0.7", "-0.6"], ["0.2", "0.9"]]
b3 = ["-0.1", "0.2"]
E = [["1", "0.5"], ["-0.5", "1"]]
k = "0.3"
[loss]
terminal = "sum((z - [0.5, -0.5])**2) + k*sum(W3**2)"
running = "0.1*sum(z**2)*k"
[loss.observations]
times = ["0.4", "0.6"]
data = [["0.2", "0.1"], ["0.3", "-0.2"]]
term = "sum((z - data)**2)/2 + k*z[0]"
'''


def zero(m) -> bool:
    items = list(m) if isinstance(m, (list, tuple, sympy.MatrixBase)) else [m]
    return all(sympy.expand(x) == 0 for x in items)


class Expander:
    """Display symbols -> explicit matrices of element symbols (named terms -> their elements)."""

    def __init__(self, model):
        self.model = model
        md = derive(model).matrix
        self.md = md
        self.sub = {}
        for g in model.groups:
            if g.is_array:
                self.sub[sympy.MatrixSymbol(g.name, *g.shape)] = sympy.ImmutableMatrix(g.matrix())
        lam = md.lam[0]
        self.sub[sympy.MatrixSymbol("lambda", *lam.shape)] = sympy.ImmutableMatrix(lam.matrix())
        s, v = md.sens
        for g in (*s, *v):
            if g.is_array:
                self.sub[sympy.MatrixSymbol(g.name, *g.shape)] = sympy.ImmutableMatrix(g.matrix())
        for name, node in model.structure.defs:
            self.sub[sympy.MatrixSymbol(name, *node.shape)] = sympy.ImmutableMatrix(N.expand(node))

    def __call__(self, expr):
        e = expr.xreplace(self.sub).doit()  # explicit matrices multiply out bottom-up
        return sympy.Matrix(e.as_explicit()) if getattr(e, "is_Matrix", False) else e


@pytest.fixture(scope="module")
def case():
    m = load_spec(SMALL)
    sd = derive(m.scalar_model())
    eqs = {e.name: e for e in derive(m).equations}
    ex = Expander(m)
    # the scalar derivation's λ symbols and the matrix form's carry the same names (lambda_z_0 ...)
    lam_map = {a: b for a, b in zip(ex.md.lam[0].elements, sd.lam)}
    assert [str(a) for a in lam_map] == [str(b) for b in lam_map.values()]
    return m, sd, eqs, ex, lam_map


def test_adjoint_elementwise(case):
    m, sd, eqs, ex, lam = case
    got = ex(eqs["adjoint"].rhs).xreplace(lam)
    assert zero(got - sd.adjoint_rhs)


def test_parameter_gradients_elementwise(case):
    """dL/dP = ∫ (integrand) dt + ...: the integrand, flattened row-major, is -dμ/dt of the scalar derivation."""
    m, sd, eqs, ex, lam = case
    pos = {p: i for i, p in enumerate(m.params)}
    for g in m.groups:
        if g.kind != "param":
            continue
        rhs = eqs[f"grad_{g.name}"].rhs
        integrals = [a for a in sympy.Add.make_args(rhs) if isinstance(a, sympy.Integral)] or \
            [a for a in getattr(rhs, "args", ()) if isinstance(a, sympy.Integral)]
        want = [-sd.adjoint_quad_rhs[pos[e]] for e in g.elements]
        if not integrals:
            assert zero(want), g.name
            continue
        got = ex(integrals[0].function)
        got = list(got) if isinstance(got, sympy.MatrixBase) else [got]
        assert zero([a.xreplace(lam) - b for a, b in zip(got, want)]), g.name


def test_loss_gradients_and_jumps(case):
    m, sd, eqs, ex, lam = case
    assert zero(ex(eqs["adjoint_final"].rhs) - sd.dldz_terminal)
    for k in range(len(m.observation_times)):
        assert zero(ex(eqs[f"adjoint_jump_{k}"].rhs) - sd.dldz_obs[k])
    # ∂ℓ/∂W3 = 2k W3 (terminal term), ∂ℓ_i/∂k terms in grad_k: compare the whole non-integral part
    md = ex.md
    pos = {p: i for i, p in enumerate(m.params)}
    for j, g in enumerate(md.param_groups):
        parts = [md.terminal_grads[1][j], *[o[1][j] for o in md.observation_grads]]
        got = sum((N.expand(p) for p in parts), sympy.zeros(*g.shape))
        want = sd.dldp_terminal + sum(sd.dldp_obs, sympy.zeros(m.np, 1))
        assert zero([a - want[pos[e]] for a, e in zip(got, g.elements)]), g.name


def test_z0_chain_time_gradients_and_sensitivity(case):
    m, sd, eqs, ex, lam = case
    md = ex.md
    # (∂z0/∂E)ᵀλ(t0)
    j = [g.name for g in md.param_groups].index("E")
    want = sd.dz0dp.T * sd.lam
    pos = {p: i for i, p in enumerate(m.params)}
    got = N.expand(md.z0_chain[j]).xreplace(lam)
    assert zero([a - want[pos[e]] for a, e in zip(got, md.param_groups[j].elements)])
    # dL/dt1 and dL/dt0 (as expressions in z, λ)
    assert zero(N.expand(md.grad_t1)[0, 0] - sd.grad_t1_expr)
    assert zero(N.expand(md.grad_t0)[0, 0].xreplace(lam) - sd.grad_t0_expr)
    # ds/dt = ∂f/∂z s + ∂f/∂θ v
    s, v = md.sens
    svec = sympy.Matrix(s[0].elements)
    vvec = sympy.Matrix([e for g in v for e in g.elements])
    got = ex(eqs["sensitivity"].rhs)
    # linear in s and v: compare the coefficient of each direction component with the Jacobian's column
    for j, vj in enumerate(vvec):
        assert zero(got.diff(vj) - sd.dfdp[:, j]), vj
    for i, si in enumerate(svec):
        assert zero(got.diff(si) - sd.dfdz[:, i]), si
    assert zero(got.subs({x: 0 for x in (*svec, *vvec)}))


def test_one_page_for_any_size():
    """The rendered derivation does not grow with the hidden width (H = 16, 64, 256: the same lines)."""
    lines = {H: render(derive(get_model(f"mlp-8-{H}")).equations, "text").count("\n") for H in (16, 64, 256)}
    assert len(set(lines.values())) == 1 and lines[64] < 200, lines
    text = render(derive(get_model("mlp-8-64")).equations, "markdown")
    assert r"- W_{1}^{T} \left(\tanh'\left(a_{1}\right) \circ \left(W_{2}^{T} \lambda\right)\right)" in text


@pytest.mark.parametrize("fmt", ["text", "latex", "markdown"])
def test_all_formats_render(case, fmt):
    m, *_ = case
    out = render(derive(m).equations, fmt)
    assert "grad_W1" in out and "adjoint" in out
