"""The model of an ODE document with a loss, and the quantities of its solution that claims can name.

A document that declares ``interval: t0, t1`` (with ``time:``, ``states:``, one ``ode:`` and one ``init:`` line
per state, and at least one of ``terminal:``, ``observation at T:``, ``running:``) has the model

    dz/dt = f(z, t, θ),   z(t0) = z0(θ),   L = ℓ(z(t1)) + Σ_k ℓ_k(z(τ_k)) + ∫_{t0}^{t1} r(z(t), t) dt

and its claims may name (symode's conventions, :mod:`symode.symbolic.derive`):

* ``x(T)``, ``lambda_x(T)``, ``mu_a(T)``, ``S_x_a(T)``, ``W_x_y(T)``: the solution, the adjoint λ(T) = ∂L/∂z(T),
  the parameter quadrature μ(T) = ∫_T^{t1} (λᵀ ∂f/∂θ + ∂r/∂θ) dt and the sensitivities ∂z(T)/∂θ, ∂z(T)/∂z0, at
  a time T.  They are SymPy applications of undefined functions named like the derived-system symbols.  λ jumps
  at an observation time τ: ``lambda_x(τ)`` is ∂L/∂z(τ), which includes the observation (the left limit, the
  value the backward solve has after the jump), and ``lambda_x(τ, after)`` the value just after it (before the
  jump going backward); everything else is continuous, so ``after`` changes nothing there.
* ``L``, ``dL/da``, ``dL/dx0`` (z0 treated as a free input), ``dL/dt0``, ``dL/dt1``: Symbols with exactly these
  names (no declared name contains '/'); their meaning is in :data:`QUANTITY_KINDS`.
* ``integral(g, t, lo, hi)`` over the model's time symbol: ∫ g dt *along the solution* (the bare state and
  derived-system symbols in ``g`` stand for their values at t), and ``at(g, T)``: ``g`` along the solution at T.

Derivatives of expressions that contain these quantities follow the solution (:meth:`LossModel.diff`):
d x(T)/dθ = S(T), d x(T)/dt0 = -W(T) f(z0, t0), d q(T)/dT = the rate of q; a derivative symode does not derive
(d λ(T)/dθ, d²L) is an error, never a silent 0.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import sympy
from sympy.core.function import AppliedUndef

from ..errors import VerificationError

#: What each loss quantity symbol means: ``L`` and the kinds of ``dL/d<target>``.
QUANTITY_KINDS = {
    "loss": "the model's loss L",
    "param": "dL/dθ, the total derivative (z0(θ) included)",
    "initial": "dL/dz0 for one state, z0 treated as a free input (λ(t0))",
    "t0": "dL/dt0 (observation times fixed)",
    "t1": "dL/dt1 (observation times fixed)",
}

#: Suffix of the undefined function that stands for a one-sided value "just after" an observation.
AFTER = "__after"


@dataclass
class Point:
    """The model at one set of values (``values``: Symbol -> exact number; ``model``: the symode Model there),
    where claims are checked numerically: the document's values, and a second point with the parameters and
    times moved (a claim true only at the document's values, such as one that drops a term proportional to
    mu - 1 at mu = 1, differs there)."""

    values: dict
    model: object


class Ambiguous(Exception):
    """Whether two times coincide is decided differently by their expressions and by their values."""


@dataclass
class LossModel:
    """The declared model of a document (see the module docstring).  Built by :mod:`symode.verify.odemodel`."""

    time: sympy.Symbol
    t0: sympy.Symbol
    t1: sympy.Symbol
    states: list
    rhs: list
    init: list
    terminal: object = None
    observations: list = field(default_factory=list)       # [(time expression, term)]
    running: object = None
    values: dict = field(default_factory=dict)             # Symbol -> exact number (the document's values)
    params: list = field(default_factory=list)             # θ: symbols the model uses besides states and times
    functions: dict = field(default_factory=dict)          # abstract function name -> UndefinedFunction
    kinds: dict = field(default_factory=dict)              # solution-function name -> (kind, i, j)
    symbols: dict = field(default_factory=dict)            # solution-function name -> its bare symbol
    rates: dict = field(default_factory=dict)              # solution-function name -> rate (bare symbols)
    points: list = field(default_factory=list)             # [Point]: where claims are checked numerically
    numeric_reason: str = ""                               # why there are none
    table: object = None                                   # numeric values (symode.verify.trajectory)

    def __post_init__(self):
        self.fn: dict = {}
        self.fn_after: dict = {}
        self.quantities: dict = {}
        self.loss = self.quantity("L", "loss", None)
        for i, z in enumerate(self.states):
            self.add_function(z.name, ("z", i, None), z)

    # -- names -------------------------------------------------------------------------------------------------
    def add_function(self, name: str, kind: tuple, symbol: sympy.Symbol) -> None:
        self.kinds[name] = kind
        self.symbols[name] = symbol
        self.fn[name] = sympy.Function(name, real=True)
        self.fn_after[name] = sympy.Function(name + AFTER, real=True)

    def quantity(self, name: str, kind: str, target) -> sympy.Symbol:
        sym = sympy.Symbol(name, real=True)
        self.quantities[sym] = (kind, target)
        return sym

    def gradient(self, target: str, field_: str) -> sympy.Expr:
        """``dL/d<target>`` (raises VerificationError naming ``field_`` where it is not a derived quantity)."""
        token = f"dL/d{target}"
        names = {s.name: s for s in self.params}
        for tau, _ in self.observations:
            moving = {s.name for s in sympy.sympify(tau).free_symbols}
            if target in moving and str(tau) != target:
                # symode's dL/dθ, dL/dt0 and dL/dt1 hold the observation times fixed: with a time that moves
                # with the target, the total derivative has a term these formulas do not have
                raise VerificationError(f"{field_}: {token} is not the derivative symode states: the observation "
                                        f"at {tau} moves with {target}, and the adjoint formulas hold observation "
                                        f"times fixed; give that time its own symbol with a value (ti, say) to "
                                        f"state the fixed-time derivative")
        if target == self.t0.name or target == self.t1.name:
            which = "t0" if target == self.t0.name else "t1"
            end = self.t0 if which == "t0" else self.t1
            for tau, _ in self.observations:
                same = self.same_time(tau, end, strict=False)
                if same is not False:
                    raise VerificationError(f"{field_}: {token} is undefined: an observation lies at {end.name} "
                                            f"(observation times are fixed, so {end.name} cannot move past it)")
            return self.quantity(token, which, None)
        if target in names:
            return self.quantity(token, "param", names[target])
        if target in self.kinds and self.kinds[target][0] == "z":
            raise VerificationError(f"{field_}: {target!r} is a state: L depends on the solution, not on the "
                                    f"symbol {target}; the adjoint lambda_{target}(T) is dL/d{target}(T), and "
                                    f"dL/d{target}0 the derivative with respect to its initial value")
        for i, z in enumerate(self.states):
            if target == f"{z.name}0" and target not in names:
                return self.quantity(token, "initial", i)
        if target == self.time.name or any(target == str(tau) for tau, _ in self.observations):
            raise VerificationError(f"{field_}: {token}: L does not depend on {target!r} (the time variable and "
                                    f"the observation times are fixed)")
        return None

    # -- solution values ---------------------------------------------------------------------------------------
    def at(self, expr, T, after: bool = False) -> sympy.Expr:
        """``expr`` along the solution at time T: bare state/derived symbols -> their values at T, t -> T."""
        expr = sympy.sympify(expr)
        fns = self.fn_after if after else self.fn
        reps = {sym: fns[name](T) for name, sym in self.symbols.items() if sym in expr.free_symbols}
        if self.time in expr.free_symbols:
            reps[self.time] = T
        return expr.xreplace(reps) if reps else expr

    def application(self, e) -> tuple | None:
        """(name, time, after) when ``e`` is a solution value ``q(T)`` of this model, else None."""
        if not isinstance(e, AppliedUndef):
            return None
        name = type(e).__name__
        after = name.endswith(AFTER)
        base = name[: -len(AFTER)] if after else name
        if base in self.fn and type(e) is (self.fn_after if after else self.fn)[base]:
            return base, e.args[0], after
        return None

    def solution_values(self, expr) -> list:
        return [e for e in sympy.sympify(expr).atoms(AppliedUndef) if self.application(e) is not None]

    def along_integrals(self, expr) -> list:
        """The integrals of ``expr`` whose integrand contains solution values (integrals along the solution)."""
        return [i for i in sympy.sympify(expr).atoms(sympy.Integral) if self.solution_values(i.function)]

    def has_quantities(self, expr) -> bool:
        expr = sympy.sympify(expr)
        return bool(self.solution_values(expr)) or any(s in self.quantities for s in expr.free_symbols)

    @property
    def numeric(self):
        """The symode Model at the document's values, or None."""
        return self.points[0].model if self.points else None

    # -- times -------------------------------------------------------------------------------------------------
    def time_value(self, T, values: dict | None = None):
        """The exact value of the time expression ``T`` at the document's values (or ``values``), or None."""
        v = sympy.sympify(T).xreplace(self.values if values is None else values)
        return v if v.is_number and v.is_real else None

    def same_time(self, a, b, strict: bool = True):
        """Whether times ``a`` and ``b`` coincide: True when their expressions are equal, else their values
        decide (False without values: generic times differ).  ``strict``: raise :class:`Ambiguous` where the
        expressions differ but the values are equal; otherwise return None there."""
        if sympy.expand(sympy.sympify(a) - b) == 0:
            return True
        va, vb = self.time_value(a), self.time_value(b)
        if va is None or vb is None or va != vb:
            return False
        if strict:
            raise Ambiguous(f"{a} and {b} are different expressions with the same value")
        return None

    def observation_at(self, T) -> int | None:
        """Index of the observation at time T (None when there is none)."""
        for k, (tau, _) in enumerate(self.observations):
            if self.same_time(T, tau):
                return k
        return None

    # -- dependence and derivatives ----------------------------------------------------------------------------
    def dependencies(self) -> set:
        """Symbols the solution and the loss depend on (besides a time argument)."""
        deps = set(self.params) | {self.t0, self.t1}
        for tau, _ in self.observations:
            deps |= sympy.sympify(tau).free_symbols
        return deps

    def rate(self, name: str, T, after: bool = False) -> sympy.Expr:
        """d/dT of the solution value ``name(T)``: the declared/derived rate along the solution at T."""
        return self.at(self.rates[name], T, after)

    def diff(self, expr, s: sympy.Symbol, field_: str) -> sympy.Expr:
        """d expr / d s where ``expr`` may contain solution values, loss quantities and integrals along the
        solution (see the module docstring); raises VerificationError for derivatives symode does not derive."""
        expr = sympy.sympify(expr)
        if not (self.has_quantities(expr) or self.along_integrals(expr)):
            return sympy.diff(expr, s)
        reps: dict = {}

        def collect(e):
            if isinstance(e, sympy.Integral) and self.solution_values(e.function):
                reps.setdefault(e, sympy.Dummy("I"))
                return
            if self.application(e) is not None or e in self.quantities:
                reps.setdefault(e, sympy.Dummy("q"))
                return
            for a in e.args:
                collect(a)
        collect(expr)
        e = expr.xreplace(reps)
        out = sympy.diff(e, s)
        for atom, u in reps.items():
            de = sympy.diff(e, u)
            if de != 0:
                out += de * self._atom_diff(atom, s, field_)
        back = {u: atom for atom, u in reps.items()}
        return out.xreplace(back)

    def _atom_diff(self, atom, s, field_: str) -> sympy.Expr:
        if isinstance(atom, sympy.Integral):
            (var, lo, hi), = atom.limits
            g = atom.function
            inner = sympy.Integral(self.diff(g, s, field_), (var, lo, hi)) if s != var else 0
            return inner + g.xreplace({var: hi}) * sympy.diff(hi, s) - g.xreplace({var: lo}) * sympy.diff(lo, s)
        deps = self.dependencies()
        if atom in self.quantities:
            if s in deps:
                raise VerificationError(f"{field_}: the derivative of {atom} with respect to {s} is not a quantity "
                                        f"symode derives (second derivatives of L); state the claim without it")
            return sympy.Integer(0)
        name, T, after = self.application(atom)
        kind, i, _ = self.kinds[name]
        total = self.rate(name, T, after) * sympy.diff(T, s) if s in sympy.sympify(T).free_symbols else 0
        if s not in deps:
            return total
        if kind != "z":
            raise VerificationError(f"{field_}: the derivative of {name}({T}) with respect to {s} is not a "
                                    f"quantity symode derives; state the claim without it")
        if s == self.t0:
            f0 = [self.at(f, self.t0) for f in self.rhs]
            return total - sum(self.fn[f"W_{self.states[i].name}_{zk.name}"](T) * f0[k]
                               for k, zk in enumerate(self.states))
        if s in self.params:
            return total + self.fn[f"S_{self.states[i].name}_{s.name}"](T)
        return total          # t1 or an observation time: z(T) depends on them only through T
