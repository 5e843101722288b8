"""Closed-form solutions and, from them, exact closed-form loss and gradients.

Two methods, tried in order:
- linear constant-coefficient systems f = A z + b (A, b free of z and t): z(t) = e^{Aτ} Z0 + ∫_0^τ e^{As} ds · b,
  τ = t - T0 (matrix exponential; ∫ = A⁻¹(e^{Aτ} - I) when A is invertible);
- scalar equations: SymPy ``dsolve`` with z(T0) = Z0, accepted only when the solution is explicit and satisfies
  the ODE and the initial condition after simplification.

The solution is kept symbolic in the parameters θ, the free initial state Z0 and the interval ends T0, T1, so
the loss L(θ, Z0, T0, T1) can be differentiated exactly:
    dL/dθ  = ∂L/∂θ + (∂L/∂Z0) · ∂z0/∂θ     (then Z0 := z0(θ))
    dL/dz0 = ∂L/∂Z0,   dL/dt0 = ∂L/∂T0,   dL/dt1 = ∂L/∂T1.
When no closed form is found the result is a :class:`NoClosedForm` carrying the plain reason.
"""
from __future__ import annotations

from dataclasses import dataclass

import mpmath
import sympy

from ..errors import NoClosedFormError
from .budget import BudgetExceeded, budget_from_env, call_with_budget
from .derive import _fresh

#: Seconds allowed for the whole closed-form search of one model (dsolve and integrate can run unbounded; the
#: built-in models' searches take under 3 s, a 2x2 system with a running cost does not finish in 90 s).
CLOSED_FORM_SECONDS = 30.0


@dataclass(frozen=True)
class NoClosedForm:
    """No closed form: ``reason`` says why in plain words.  Falsy, so ``if d.closed_form:`` reads naturally."""

    reason: str

    def __bool__(self) -> bool:
        return False

    def require(self):
        raise NoClosedFormError(self.reason)


@dataclass(frozen=True)
class ClosedForm:
    """Exact solution z(t; θ, Z0, T0) and the loss and gradients as expressions in θ, Z0, T0, T1.

    ``grad_t1`` is None where dL/dt1 is undefined (an observation at t1).
    """

    method: str
    Z0: tuple
    T0: sympy.Symbol
    T1: sympy.Symbol
    solution: tuple
    loss: sympy.Expr
    grad_theta: tuple
    grad_z0: tuple
    grad_t0: sympy.Expr | None
    grad_t1: sympy.Expr | None
    z0_of_theta: tuple
    params: tuple
    t: sympy.Symbol

    def require(self):
        return self

    def substitutions(self, model) -> dict:
        """Nominal values: θ, Z0 = z0(θ), T0 = t0, T1 = t1 (exact)."""
        sub = {p: model.param_values[p] for p in self.params}
        sub.update({Z: e.subs(sub) for Z, e in zip(self.Z0, self.z0_of_theta)})
        sub[self.T0] = model.t0
        sub[self.T1] = model.t1
        return sub

    def check_regular(self, model) -> None:
        """Raise :class:`IntegrationError` if the solution is singular somewhere on [t0, t1] at the nominal values.

        A closed form can be evaluated past a pole (dz/dt = z², z0 = 1 gives z = 1/(1 - t), finite again at
        t = 2) although no solution of the ODE reaches t1.  Matrix-exponential solutions are entire in t and
        need no check; ``dsolve`` solutions are checked with SymPy's ``continuous_domain``, and one that cannot
        be checked is refused rather than trusted.
        """
        if self.method == "matrix exponential":
            return
        from sympy.calculus.util import continuous_domain

        from ..errors import IntegrationError
        sub = self.substitutions(model)
        sub.pop(self.T1)
        interval = sympy.Interval(model.t0, model.t1)
        for s in self.solution:
            e = s.subs(sub)
            if _undefined(e):
                raise NoClosedFormError(
                    f"the closed form is undefined at these parameter values (a 0/0 or a division by zero in "
                    f"{s}); only closed forms of linear systems are evaluated as limits there; use --method oracle")
            try:
                dom = continuous_domain(e, self.t, interval)
            except (NotImplementedError, ValueError, TypeError) as exc:
                raise NoClosedFormError(f"cannot verify that the closed form {e} is regular on [{model.t0}, "
                                        f"{model.t1}] ({type(exc).__name__}); use --method oracle") from None
            bad = interval - dom
            if bad != sympy.S.EmptySet:
                where = bad.inf
                raise IntegrationError(
                    f"the closed-form solution is singular at t = {where} (about {float(where):.6g}) inside "
                    f"[t0, t1] = [{model.t0}, {model.t1}]: the solution blows up there (a finite-time "
                    f"singularity), so no value at t1 exists; shorten the interval", time=float(where))

    def evaluate(self, model, digits: int = 30) -> dict:
        """Loss and gradients at the model's nominal values as mpmath numbers with ``digits`` significant digits.

        The solution is first checked to be regular on [t0, t1] (:meth:`check_regular`).  Exact substitution
        first, then ``evalf`` at ``digits`` + guard digits; tiny imaginary parts from complex intermediate forms
        (e.g. eigenvalues of an underdamped oscillator) are checked and dropped.  Where the substitution is
        undefined (0/0: ``b/a`` at ``a = 0``, a repeated eigenvalue) a matrix-exponential closed form is
        evaluated as a limit (:func:`symode.symbolic.closed_form_limit.limit_values`, which measures its own
        error bound); other closed forms are refused there.  The result also has ``error_bound`` (a string)
        and ``note`` (None, or why the values are limits).
        """
        self.check_regular(model)
        sub = self.substitutions(model)
        exprs = self._named()
        try:
            flat = {k: _evaluate(e, sub, digits, k) for k, e in exprs.items()}
            bound, note = f"1e-{digits - 1}", None
        except _Singular as exc:
            if self.method != "matrix exponential":
                raise NoClosedFormError(f"the closed form is undefined at these parameter values ({exc}); use "
                                        "--method oracle") from None
            from .closed_form_limit import limit_values
            variables = [*self.params, *self.Z0]
            flat, bound = limit_values(exprs, variables, {s: sub[s] for s in variables},
                                       {self.T0: sub[self.T0], self.T1: sub[self.T1]}, digits)
            note = (f"the closed form is undefined at these parameter values ({exc}), a removable singularity of "
                    "a linear system's solution: values are its limit there, error bound measured")
        out = {k: flat[k] for k in ("loss", "grad_t0", "grad_t1")}
        for key, n in (("grad", len(self.grad_theta)), ("grad_z0", len(self.grad_z0)), ("z1", len(self.solution))):
            out[key] = [flat[f"{key}[{i}]"] for i in range(n)]
        out["error_bound"], out["note"] = bound, note
        return out

    def _named(self) -> dict:
        """Every expression evaluate() returns, by flat name (``grad[0]``, ...)."""
        named = {"loss": self.loss, "grad_t0": self.grad_t0, "grad_t1": self.grad_t1}
        named.update({f"grad[{i}]": g for i, g in enumerate(self.grad_theta)})
        named.update({f"grad_z0[{i}]": g for i, g in enumerate(self.grad_z0)})
        named.update({f"z1[{i}]": s.subs(self.t, self.T1) for i, s in enumerate(self.solution)})
        return named


class _Singular(Exception):
    """An expression is undefined (0/0, division by zero) at the substituted values."""


def _undefined(e) -> bool:
    return e.has(sympy.nan, sympy.zoo, sympy.oo, -sympy.oo)


def _evaluate(expr, sub: dict, digits: int, name: str):
    """``expr`` at the exact values ``sub`` as an mpf with ``digits`` digits (None for None)."""
    if expr is None:
        return None
    prec = digits + 15
    exact = expr.subs(sub)
    if _undefined(exact):
        raise _Singular(f"{name} is {exact}")
    v = exact.evalf(prec)
    re, im = v.as_real_imag()
    re, im = sympy.N(re, prec), sympy.N(im, prec)
    if not (re.is_finite and im.is_finite):
        raise _Singular(f"{name} evaluates to {v}")
    if im != 0 and abs(im) > abs(re) * sympy.Float(10) ** (-(digits + 5)) + sympy.Float(10) ** (-(digits + 10)):
        raise NoClosedFormError(f"closed form evaluates to a complex number ({v}); cannot use it here")
    with mpmath.workdps(prec):
        return mpmath.mpf(sympy.Float(re, prec)._mpf_)


def _solve_linear(f, z, t, T0, Z0):
    A = f.jacobian(z)
    if A.has(t) or any(A.has(s) for s in z):
        return None
    b = sympy.expand(f - A * z)
    if b.has(t) or any(b.has(s) for s in z):
        return None
    tau = sympy.Symbol("tau", real=True)
    n = A.rows
    Phi = (A * tau).exp()
    if A.det() != 0:
        integral = A.inv() * (Phi - sympy.eye(n))
    else:
        s = sympy.Symbol("s", real=True)
        integral = (A * s).exp().applyfunc(lambda e: sympy.integrate(e, (s, 0, tau)))
        if integral.has(sympy.Integral):
            return None
    sol = Phi * sympy.Matrix(Z0) + integral * b
    return [e.subs(tau, t - T0) for e in sol]


def _solve_scalar(f, z, t, T0, Z0):
    zf = sympy.Function("zf")
    ode = sympy.Eq(zf(t).diff(t), f.subs(z, zf(t)))
    try:
        sol = sympy.dsolve(ode, zf(t), ics={zf(T0): Z0})
    except (NotImplementedError, ValueError, TypeError) as exc:
        return f"SymPy dsolve found no explicit solution ({type(exc).__name__}: {exc})"
    if isinstance(sol, list):
        return "dsolve returned several solution branches; the branch through z0 is ambiguous"
    if not (isinstance(sol, sympy.Eq) and sol.lhs == zf(t)) or sol.rhs.has(zf) or sol.rhs.has(sympy.Integral):
        return "dsolve returned an implicit or non-elementary solution"
    expr = sol.rhs
    residual = sympy.simplify(expr.diff(t) - f.subs(z, expr))
    initial = sympy.simplify(expr.subs(t, T0) - Z0)
    if residual != 0 or initial != 0:
        return "dsolve's solution could not be verified symbolically (residual did not simplify to 0)"
    return [expr]


def _search(model_data):
    """The closed-form search proper (runs in a budgeted child process); returns a ClosedForm or a reason."""
    (states, params, t, rhs, z0, terminal, observations, running) = model_data
    z = sympy.Matrix(states)
    f = sympy.Matrix(rhs)
    taken = {s.name for s in (*states, *params, t)}
    T0, T1 = _fresh("t_0", taken), _fresh("t_1", taken)
    Z0 = tuple(_fresh(f"{s.name}_0", taken) for s in states)
    sol = _solve_linear(f, z, t, T0, Z0)
    method = "matrix exponential"
    if sol is None:
        if len(states) != 1:
            return ("no closed form: the system is nonlinear or has time-dependent coefficients, and SymPy's "
                    "dsolve is only tried for scalar equations")
        sol = _solve_scalar(f[0], z[0], t, T0, Z0[0])
        method = "dsolve"
        if isinstance(sol, str):
            return "no closed form: " + sol
    at = lambda time: {s: e.subs(t, time) for s, e in zip(states, sol)}  # noqa: E731
    L = sympy.Integer(0)
    if terminal is not None:
        L += terminal.subs(at(T1), simultaneous=True)
    for time, term in observations:
        L += term.subs(at(time), simultaneous=True)
    if running is not None:
        integrand = running.subs({s: e for s, e in zip(states, sol)}, simultaneous=True)
        R = sympy.integrate(integrand, (t, T0, T1))
        if R.has(sympy.Integral):
            return "no closed form: SymPy could not integrate the running cost along the solution"
        L += R
    grad_z0 = tuple(sympy.diff(L, Z) for Z in Z0)
    dz0dp = sympy.Matrix(z0).jacobian(sympy.Matrix(params)) if params else sympy.zeros(len(states), 0)
    grad_theta = tuple(sympy.diff(L, p) + sum(grad_z0[i] * dz0dp[i, j] for i in range(len(states)))
                       for j, p in enumerate(params))
    grad_t1 = sympy.diff(L, T1)  # set to None by the caller where an observation sits at t1
    return ClosedForm(method=method, Z0=Z0, T0=T0, T1=T1, solution=tuple(sol), loss=L, grad_theta=grad_theta,
                      grad_z0=grad_z0, grad_t0=sympy.diff(L, T0), grad_t1=grad_t1, z0_of_theta=tuple(z0),
                      params=tuple(params), t=t)


def find_closed_form(derivation, seconds: float = CLOSED_FORM_SECONDS):
    """Closed form of the derivation's model, or :class:`NoClosedForm` saying why (never an exception trace)."""
    m = derivation.model
    data = (m.states, m.params, m.t, m.rhs, m.z0, m.terminal,
            tuple((o.time, o.term) for o in m.observations), m.running)
    env_seconds, memory = budget_from_env(default_seconds=seconds)
    try:
        result = call_with_budget(_search, data, seconds=min(seconds, env_seconds), memory_mb=memory,
                                  what=f"closed-form search for {m.name!r}")
    except BudgetExceeded as exc:
        return NoClosedForm(f"no closed form found within the budget: {exc}")
    if isinstance(result, str):
        return NoClosedForm(result)
    if result.grad_t1 is not None and any(tm == m.t1 for tm in m.observation_times):
        result = ClosedForm(**{**result.__dict__, "grad_t1": None})
    if result.grad_t0 is not None and any(tm == m.t0 for tm in m.observation_times):
        # undefined (one-sided): the fixed observation time would fall before a later start
        result = ClosedForm(**{**result.__dict__, "grad_t0": None})
    return result
