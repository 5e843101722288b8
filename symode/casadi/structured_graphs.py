"""The CasADi Functions of a structured model, in MX with the matrix structure kept.

Same Functions, signatures and meanings as :class:`~symode.casadi.model_graphs.ModelGraphs` (so every route and
the generated C use them unchanged), built from the matrix-form derivation
(:class:`~symode.symbolic.matrix_form.MatrixDerivation`) through :class:`~symode.casadi.structured.NodeGraph`:

    f(z, t, p)           W2·tanh(W1·z + b1) + b2 as mtimes / tanh / + on whole arrays
    back(y, t, p), adj   (f, -W1ᵀ(tanh'(a1) ⊙ W2ᵀλ), -vec((tanh'(a1) ⊙ W2ᵀλ) zᵀ), ...): λ's and μ's rates from one
                         reverse sweep, μ's blocks in θ's row-major order
    terminal, obs[i]     (ℓ, (∂ℓ/∂z)ᵀ, (∂ℓ/∂θ)ᵀ) from the array derivatives of the loss term
    gt0, gt1, z0, dz0dp, faug, jac, zdd, adj_hermite   as for the scalar form

No Function here holds an expression per weight or a dense Jacobian in θ: the graph is linear in the number of
layers, and the Functions keep θ as an input (``p``), so compiled code can be reused for any parameter values.
"""
from __future__ import annotations

from functools import cached_property

import casadi

from symode.casadi.model_graphs import ModelGraphs, quintic_hermite
from symode.casadi.structured import NodeGraph, flatten_rowmajor
from symode.model import Model
from symode.symbolic.derive import derive

__all__ = ["StructuredGraphs"]


def _column(values, sizes) -> casadi.MX:
    parts = [flatten_rowmajor(v) if v.shape[1] > 1 else v for v in values]
    return casadi.vertcat(*parts) if parts else casadi.MX(0, 1)


class StructuredGraphs(ModelGraphs):
    """MX Functions of a structured model (see the module docstring)."""

    def __init__(self, model: Model):
        self._common(model)
        md = derive(model).matrix
        self.md = md
        nz, np_ = self.nz, self.np
        z, t, p = casadi.MX.sym("z", nz), casadi.MX.sym("t"), casadi.MX.sym("p", np_)
        lam, mu = casadi.MX.sym("lam", nz), casadi.MX.sym("mu", np_)
        slots, zo, po = {}, 0, 0
        for g, lg in zip(md.state_groups, md.lam):
            slots[g], slots[lg] = (z, zo), (lam, zo)
            zo += g.size
        for g in md.param_groups:
            slots[g] = (p, po)
            po += g.size
        ng = NodeGraph(slots)
        ng.bind(model.t, t)
        self._ng, self._sym = ng, (z, t, p, lam, mu)
        fx = _column([ng(v) for v in md.f], None)
        rx = ng(model.structure.running) if self.has_running else casadi.MX(0, 1)
        self.f = self._fn("f", [z, t, p], [fx], ["z", "t", "p"], ["dz"])
        q = casadi.MX.sym("q", self.naug - nz)
        y = casadi.vertcat(z, q)
        self.faug = self._fn("faug", [y, t, p], [casadi.vertcat(fx, rx)], ["y", "t", "p"], ["dy"])
        J = casadi.jacobian(fx, z)
        self.jac = self._fn("jac", [z, t, p], [J], ["z", "t", "p"], ["J"])
        zdd = casadi.jtimes(fx, z, fx) + casadi.jacobian(fx, t)
        self.zdd = self._fn("zdd", [z, t, p], [zdd], ["z", "t", "p"], ["a"])
        z0x = _column([ng(v) for v in md.z0], None)
        self.z0 = self._fn("z0", [p], [z0x], ["p"], ["z0"])
        self.dz0dp = self._fn("dz0dp", [p], [casadi.jacobian(z0x, p)], ["p"], ["J"])

        def loss_fn(word, term, grads):
            val = ng(term) if term is not None else casadi.MX(1, 1)
            dz = _column([ng(v) for v in grads[0]], None)
            dp = _column([ng(v) for v in grads[1]], None)
            return self._fn(word, [z, p], [val, dz, dp], ["z", "p"], ["l", "dldz", "dldp"])

        st = model.structure
        self.terminal = loss_fn("term", st.terminal, md.terminal_grads)
        self.obs = [loss_fn(f"obs{i}", v, md.observation_grads[i]) for i, (_, v) in enumerate(st.observations)]
        self.gt0 = None if md.grad_t0 is None else self._fn("gt0", [lam, z, p], [ng(md.grad_t0)], ["lam", "z", "p"],
                                                            ["g"])
        self.gt1 = None if md.grad_t1 is None else self._fn("gt1", [z, p], [ng(md.grad_t1)], ["z", "p"], ["g"])

    def _adjoint_rates(self):
        """(dλ/dt, dμ/dt) = (-(∂f/∂z)ᵀλ - (∂r/∂z)ᵀ, -(∂f/∂θ)ᵀλ - (∂r/∂θ)ᵀ) from one reverse sweep."""
        ng, md = self._ng, self.md
        dlam = _column([ng(v) for v in md.adjoint_rhs], None)
        dmu = -_column([ng(v) for v in md.param_rate], None)
        return dlam, dmu

    @cached_property
    def back(self) -> casadi.Function:
        z, t, p, lam, mu = self._sym
        fx = self.f(z, t, p)
        dlam, dmu = self._adjoint_rates()
        return self._fn("back", [casadi.vertcat(z, lam, mu), t, p], [casadi.vertcat(fx, dlam, dmu)],
                        ["y", "t", "p"], ["dy"])

    @cached_property
    def adj(self) -> casadi.Function:
        z, t, p, lam, mu = self._sym
        dlam, dmu = self._adjoint_rates()
        return self._fn("adj", [casadi.vertcat(lam, mu), z, t, p], [casadi.vertcat(dlam, dmu)],
                        ["w", "z", "t", "p"], ["dw"])

    @cached_property
    def adj_hermite(self) -> casadi.Function:
        nz, np_ = self.nz, self.np
        t = casadi.MX.sym("t")
        w = casadi.MX.sym("w", nz + np_)
        P = casadi.MX.sym("P", self.nP)
        pp = P[0:np_] if np_ else casadi.MX(0, 1)
        za, zb, fa, fb, aa, ab = (P[np_ + k * nz: np_ + (k + 1) * nz] for k in range(6))
        ta, hh = P[np_ + 6 * nz], P[np_ + 6 * nz + 1]
        zi = quintic_hermite((t - ta) / hh, hh, za, zb, fa, fb, aa, ab)
        return self._fn("adjh", [w, t, P], [self.adj(w, zi, t, pp)], ["w", "t", "p"], ["dw"])
