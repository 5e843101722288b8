"""The canonical form of a claim about a document's model, for the symbolic check (:mod:`symode.verify.modelclaims`).

Two sides are equal for *every* solution when, after these rewritings (each a theorem about the model, in
symode's conventions, :mod:`symode.symbolic.derive`), SymPy reduces their difference to 0 with the solution
values treated as unknown functions of time:

* each loss quantity becomes its formula, in one of two forms:
  - adjoint:  dL/dθ = ∫_{t0}^{t1} (λᵀ ∂f/∂θ + ∂r/∂θ) dt + (∂z0/∂θ)ᵀ λ(t0) + ∂ℓ/∂θ + Σ_k ∂ℓ_k/∂θ,
    dL/dz0 = λ(t0),  dL/dt0 = -λ(t0)ᵀ f(z0, t0) - r(z0, t0);
  - forward:  dL/dθ = ∂ℓ/∂z S(t1) + ∂ℓ/∂θ + Σ_k (∂ℓ_k/∂z S(τ_k) + ∂ℓ_k/∂θ) + ∫ (∂r/∂z S + ∂r/∂θ) dt,
    dL/dz0 = ∂ℓ/∂z W(t1) + Σ_k ∂ℓ_k/∂z W(τ_k) + ∫ ∂r/∂z W dt,  dL/dt0 = -dL/dz0 · f(z0, t0) - r(z0, t0);
  - both: L = ℓ(z(t1)) + Σ_k ℓ_k(z(τ_k)) + ∫ r dt,  dL/dt1 = ∂ℓ/∂z f(z(t1), t1) + r(z(t1), t1);
* boundary values: z(t0) = z0(θ), S(t0) = ∂z0/∂θ, W(t0) = I, λ(t1) = (∂ℓ/∂z)ᵀ + (∂ℓ_k/∂z)ᵀ for an observation
  at t1, λ(τ_k, after) = λ(τ_k) - (∂ℓ_k/∂z)ᵀ, μ(T) = ∫_T^{t1} (λᵀ ∂f/∂θ + ∂r/∂θ) dt;
* integrals along the solution are split at t0 (∫_a^b = ∫_{t0}^b - ∫_{t0}^a, valid for any order of a, b) and
  those with the same upper limit merged into one, so equal integrands cancel.
* last (:meth:`Canon.integrated`), the values of z, S and W at T ≠ t0 outside integrals written as their value
  at t0 plus the integral of their rate from t0 to T, those of λ at T ≠ t1 as λ(t1) minus the integral of its
  rate from T to t1 plus the jumps of the observations in [T, t1), then merged again.

Whether a time is t0, t1 or an observation time is decided by the expressions, or by the values where the
expressions differ: when they disagree (:class:`~symode.verify.lossmodel.Ambiguous`) the symbolic check is
skipped and the numbers decide.
"""
from __future__ import annotations

import sympy

from .lossmodel import LossModel

#: The two forms of the gradient formulas a claim may be proved against.
FORMS = ("adjoint", "forward")


class Canon:
    """Reference forms and rewritings for one model (see the module docstring)."""

    def __init__(self, model: LossModel):
        self.m = m = model
        self.var = sympy.Dummy("s", real=True)      # the integration variable of canonical integrals
        self.z = list(m.states)
        self.lam = [m.fn[f"lambda_{z.name}"] for z in self.z]
        self.terminal = sympy.sympify(m.terminal) if m.terminal is not None else sympy.Integer(0)
        self.running = sympy.sympify(m.running) if m.running is not None else sympy.Integer(0)

    # -- helpers -----------------------------------------------------------------------------------------------
    def at(self, expr, T) -> sympy.Expr:
        return self.m.at(expr, T)

    def along(self, expr, lo, hi) -> sympy.Expr:
        """∫_lo^hi expr dt along the solution (0 when expr is 0)."""
        g = self.at(expr, self.var)
        return sympy.Integral(g, (self.var, lo, hi)) if g != 0 else sympy.Integer(0)

    def _obs(self):
        return [(tau, sympy.sympify(term)) for tau, term in self.m.observations]

    def dl_dz(self, term, i) -> sympy.Expr:
        return sympy.diff(term, self.z[i])

    def _sym(self, name: str) -> sympy.Symbol:
        return self.m.symbols[name]

    # -- the loss quantities -----------------------------------------------------------------------------------
    def reference(self, sym, form: str) -> sympy.Expr:
        m = self.m
        kind, target = m.quantities[sym]
        t0, t1 = m.t0, m.t1
        if kind == "loss":
            return (self.at(self.terminal, t1) + sum((self.at(term, tau) for tau, term in self._obs()), sympy.Integer(0))
                    + self.along(self.running, t0, t1))
        if kind == "t1":
            return self.at(sum(self.dl_dz(self.terminal, i) * f for i, f in enumerate(m.rhs)) + self.running, t1)
        if kind == "param":
            return self._param(target, form)
        if kind == "initial":
            return self._initial(target, form)
        f0 = [self.at(f, t0) for f in m.rhs]
        if form == "adjoint":
            lam0 = [lam(t0) for lam in self.lam]
        else:
            lam0 = [self._initial(k, form) for k in range(len(self.z))]
        return -sum(l * f for l, f in zip(lam0, f0)) - self.at(self.running, t0)

    def _param(self, p, form: str) -> sympy.Expr:
        m = self.m
        t0, t1 = m.t0, m.t1
        out = self.at(sympy.diff(self.terminal, p), t1)
        out += sum((self.at(sympy.diff(term, p), tau) for tau, term in self._obs()), sympy.Integer(0))
        if form == "adjoint":
            integrand = sum(self._sym(f"lambda_{z.name}") * sympy.diff(f, p) for z, f in zip(self.z, m.rhs))
            out += self.along(integrand + sympy.diff(self.running, p), t0, t1)
            out += sum(lam(t0) * sympy.diff(z0, p) for lam, z0 in zip(self.lam, m.init))
            return out
        S = [self._sym(f"S_{z.name}_{p.name}") for z in self.z]
        out += self.at(sum(self.dl_dz(self.terminal, i) * S[i] for i in range(len(S))), t1)
        out += sum((self.at(sum(self.dl_dz(term, i) * S[i] for i in range(len(S))), tau) for tau, term in self._obs()),
                   sympy.Integer(0))
        out += self.along(sum(self.dl_dz(self.running, i) * S[i] for i in range(len(S))) + sympy.diff(self.running, p),
                          t0, t1)
        return out

    def _initial(self, k: int, form: str) -> sympy.Expr:
        m = self.m
        if form == "adjoint":
            return self.lam[k](m.t0)
        W = [self._sym(f"W_{z.name}_{self.z[k].name}") for z in self.z]

        def dot(term):
            return sum(self.dl_dz(term, i) * W[i] for i in range(len(W)))
        out = self.at(dot(self.terminal), m.t1)
        out += sum((self.at(dot(term), tau) for tau, term in self._obs()), sympy.Integer(0))
        return out + self.along(dot(self.running), m.t0, m.t1)

    # -- rewriting ---------------------------------------------------------------------------------------------
    def _boundary(self, app) -> sympy.Expr | None:
        """The rewriting of one solution value (None: it stays)."""
        m = self.m
        name, T, after = m.application(app)
        kind, i, j = m.kinds[name]
        if after:
            if kind == "lambda":
                k = m.observation_at(T)
                if k is not None:
                    return self.lam[i](T) - self.at(self.dl_dz(sympy.sympify(m.observations[k][1]), i), T)
            return m.fn[name](T)
        if kind == "z" and m.same_time(T, m.t0):
            return sympy.sympify(m.init[i])
        if kind == "S" and m.same_time(T, m.t0):
            return sympy.diff(m.init[i], m.params[j])
        if kind == "W" and m.same_time(T, m.t0):
            return sympy.Integer(1 if i == j else 0)
        if kind == "lambda" and m.same_time(T, m.t1):
            out = self.at(self.dl_dz(self.terminal, i), m.t1)
            k = m.observation_at(m.t1)
            if k is not None:
                out += self.at(self.dl_dz(sympy.sympify(m.observations[k][1]), i), m.t1)
            return out
        if kind == "mu":
            p = m.params[i]
            integrand = sum(self._sym(f"lambda_{z.name}") * sympy.diff(f, p) for z, f in zip(self.z, m.rhs))
            return self.along(integrand + sympy.diff(self.running, p), T, m.t1)
        return None

    def canon(self, expr, form: str) -> sympy.Expr:
        """``expr`` with every loss quantity replaced by its ``form`` and the boundary values rewritten (may
        raise :class:`~symode.verify.lossmodel.Ambiguous`)."""
        m = self.m
        expr = sympy.sympify(expr)
        reps = {q: self.reference(q, form) for q in expr.free_symbols if q in m.quantities}
        expr = expr.xreplace(reps)
        for _ in range(6):
            reps = {}
            for app in m.solution_values(expr):
                new = self._boundary(app)
                if new is not None:
                    reps[app] = new
            if not reps:
                break
            expr = expr.xreplace(reps)
        return expr

    def integrated(self, expr) -> sympy.Expr:
        """``expr`` with each value of a forward quantity (z, S, W: continuous, no jumps) at a time T other
        than t0, outside integrals, written as its value at t0 plus the integral of its rate (the fundamental
        theorem of calculus: z(T) = z0(θ) + ∫_{t0}^T f dt along the solution), so that a difference that is 0
        only by the model's equations (x(t1) - x(t0) - ∫ y dt for dx/dt = y) merges to 0 or to what is left.
        Each value of λ at T ≠ t1 likewise becomes λ(t1) - ∫_T^{t1} λ' dt + the jumps in [T, t1); a second pass
        rewrites the values of z that λ(t1) and the jumps bring in."""
        expr = sympy.sympify(expr)
        for _ in range(3):
            new = self._integrated_once(expr)
            if new == expr:
                break
            expr = new
        return expr

    def _integrated_once(self, expr) -> sympy.Expr:
        m = self.m
        # integrals along the solution, and derivatives of abstract functions (whose variables may be solution
        # values), are kept whole: a value is rewritten only where it is a factor or an argument
        hidden = {a: sympy.Dummy("i") for a in [*m.along_integrals(expr), *expr.atoms(sympy.Derivative, sympy.Subs)]}
        bare = expr.xreplace(hidden)
        reps = {}
        for app in m.solution_values(bare):
            name, T, after = m.application(app)
            kind, i, _ = m.kinds[name]
            if after:
                continue
            if kind in ("z", "S", "W") and m.same_time(T, m.t0, strict=False) is False:
                reps[app] = self._boundary(m.fn[name](m.t0)) + self.along(m.rates[name], m.t0, T)
            elif kind == "lambda" and m.same_time(T, m.t1, strict=False) is False:
                jumps = self._jumps_from(T, i)
                if jumps is not None:
                    reps[app] = self._boundary(m.fn[name](m.t1)) - self.along(m.rates[name], T, m.t1) + jumps
        if not reps:
            return expr
        return bare.xreplace(reps).xreplace({d: a for a, d in hidden.items()})

    def _jumps_from(self, T, i: int):
        """Σ (∂ℓ_k/∂z_i)(z(τ_k)) over the observations with T <= τ_k < t1 (what λ_i gains going backward from
        t1 to T, λ(T) including an observation at T), or None where their order is not known (no values)."""
        m = self.m
        out = sympy.Integer(0)
        for tau, term in self._obs():
            if m.same_time(tau, m.t1, strict=False) is not False:
                continue            # in λ(t1) already
            v, vt, v1 = m.time_value(tau), m.time_value(T), m.time_value(m.t1)
            if v is None or vt is None or v1 is None:
                return None
            if vt <= v < v1:
                out += self.at(self.dl_dz(term, i), tau)
        return out

    def merged(self, expr) -> sympy.Expr:
        """``expr`` with its integrals along the solution split at t0 and merged by upper limit (see the
        module docstring); integrands that cancel are dropped."""
        m = self.m
        expr = sympy.expand(expr, deep=False, mul=True, multinomial=False, power_exp=False, power_base=False,
                            log=False)
        groups: dict = {}
        rest = []
        for term in sympy.Add.make_args(expr):
            factors = sympy.Mul.make_args(term)
            ints = [f for f in factors if isinstance(f, sympy.Integral) and m.solution_values(f.function)]
            if len(ints) != 1 or len(ints[0].limits) != 1 or len(ints[0].limits[0]) != 3:
                rest.append(term)
                continue
            integral = ints[0]
            coeff = sympy.Mul(*[f for f in factors if f is not integral])
            var, lo, hi = integral.limits[0]
            g = integral.function.xreplace({var: self.var}) * coeff
            for x, sign in ((hi, 1), (lo, -1)):
                if sympy.expand(x - m.t0) != 0:
                    groups[x] = groups.get(x, sympy.Integer(0)) + sign * g
        out = sympy.Add(*rest)
        for x, g in groups.items():
            g = sympy.cancel(sympy.expand(g))
            if g != 0:
                out += sympy.Integral(g, (self.var, m.t0, x))
        return out

    def printable(self, expr) -> sympy.Expr:
        """``expr`` with the canonical integration variable shown as the model's time symbol (for reports)."""
        return sympy.sympify(expr).xreplace({self.var: self.m.time})
