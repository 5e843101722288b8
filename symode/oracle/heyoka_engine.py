"""A second, independent integrator for the oracle: heyoka (Taylor method compiled by LLVM, MPFR precision).

:func:`heyoka_gradient` builds the model's forward-sensitivity system (z, S, W and the running-cost
quadratures, from :func:`symode.symbolic.derive.derive`) as heyoka expressions through an explicit translation
table (:data:`FUNCTIONS`), integrates it with ``fp_type=heyoka.real`` at the oracle's working precision and
assembles loss and gradients with the same formulas as the oracle's forward route.  :func:`compare_with_oracle`
reports the largest relative disagreement with :func:`symode.oracle.engine.oracle_gradient`.

Constants.  ``constants="exact"`` (the default) gives every rational constant of the right-hand side as an
MPFR number rounded once from its exact value, and the model parameters as heyoka runtime parameters set the
same way.  ``constants="float"`` reproduces the trap docs/design.md records: each constant and parameter value passed
as a Python float (heyoka folds ``u/10.`` into ``0.10000000000000001*u``), so every digit past about the 17th
is lost however high the MPFR precision is.  It exists to show, in a test, that the trap is real.

heyoka is optional (``pip install symode[heyoka]``); without it :func:`available` is False and the functions
raise :class:`~symode.errors.SymodeError` saying so.
"""
from __future__ import annotations

import math
import time as _time
from fractions import Fraction

import mpmath
import sympy

from ..errors import IntegrationError, SymodeError, TranslationError
from ..expr import FUNCTIONS as FUNCTION_TABLE, Unsupported, by_head, register_backend
from ..model import Model
from ..result import GradResult
from ..symbolic.derive import derive
from .engine import ROUTE_GUARD_DIGITS, _max_rel, _pretty_names
from .routes import Evaluator, assemble_forward

try:
    import heyoka as hy
except ImportError:  # pragma: no cover - exercised only without heyoka
    hy = None

__all__ = ["available", "heyoka_gradient", "compare_with_oracle", "FUNCTIONS", "HEYOKA_TOLERANCE"]

#: The table's functions heyoka has under the same name (one argument each).
_UNARY = ("sin", "cos", "tan", "exp", "log", "tanh", "sinh", "cosh", "atan", "asinh", "asin", "acos", "atanh",
          "acosh")


def _unary(name: str):
    """heyoka's function ``name`` of the one translated argument (looked up when called: heyoka is optional)."""
    def translate(tr, e):
        return getattr(hy, name)(tr(e.args[0]))
    return translate


def _pow(tr, e):
    base, ex = e.args
    b = tr(base)
    if ex == sympy.Rational(1, 2):
        return hy.sqrt(b)
    if ex.is_Integer:
        n = int(ex)
        # written as a product: heyoka 7.13's pow Taylor recurrence divides by the base, so
        # ``x**3`` at x = 0 gives NaN in real mode (measured); x*x*x does not
        r = _product_power(b, abs(n))
        return r if n > 0 else hy.expression(hy.real(1, tr.prec)) / r
    if ex.is_Rational:
        return b ** tr.const(Fraction(int(ex.p), int(ex.q)))
    return b ** tr(ex)


_NON_SMOOTH = Unsupported("heyoka's cross-check covers smooth right-hand sides; the Taylor oracle handles kinks "
                          "by landing on every zero crossing")

#: heyoka's implementation of each function of the table (:data:`symode.expr.FUNCTIONS`), by name.
HEYOKA_FUNCTIONS = register_backend("heyoka", "primitives", {
    **{name: _unary(name) for name in _UNARY},
    "pow": _pow,
    "abs": _NON_SMOOTH,
    "sign": _NON_SMOOTH,
    "Heaviside": _NON_SMOOTH,
    "Max": _NON_SMOOTH,
    "Min": _NON_SMOOTH,
})
_BY_HEAD = by_head(HEYOKA_FUNCTIONS)

#: SymPy function -> heyoka function name (one argument each); anything else is a TranslationError.
FUNCTIONS = {FUNCTION_TABLE[name].head: name for name in _UNARY}

#: Relative agreement expected between heyoka and the oracle, by constant mode, as a function of the digits
#: requested.  "exact": both are accurate to the requested digits (each carries ROUTE_GUARD_DIGITS more), so they
#: agree to 10^-(digits-1).  "float": a constant rounded to float64 has relative error up to 2^-53 ≈ 1.1e-16,
#: which propagates to the loss and gradients at about that size; they can agree no better than ~1e-18
#: (a floor: a disagreement *below* this means the trap was not reproduced).
HEYOKA_TOLERANCE = {
    "exact": lambda digits: mpmath.mpf(10) ** -(digits - 1),
    "float_floor": mpmath.mpf(10) ** -18,
}


def available() -> bool:
    """True when heyoka is importable and built with MPFR (``heyoka.real``) support."""
    if hy is None:
        return False
    try:
        return bool(hy._with_real())
    except AttributeError:  # pragma: no cover - very old heyoka
        return hasattr(hy, "real")


def _require():
    if not available():
        raise SymodeError("heyoka with multiprecision (heyoka.real) support is not installed; "
                          "pip install 'symode[heyoka]'")


class _Translator:
    """SymPy -> heyoka expressions through an explicit table; constants exact (MPFR) or as Python floats."""

    def __init__(self, states, params, t, prec: int, constants: str):
        if constants not in ("exact", "float"):
            raise SymodeError(f"constants={constants!r}: choose 'exact' or 'float'")
        self.prec = prec
        self.constants = constants
        names = [f"y{i}" for i in range(len(states))]  # generated names: user names never reach LLVM
        hv = hy.make_vars(*names) if len(names) > 1 else [hy.make_vars(*names)]
        self.vars = list(hv)
        self.map = dict(zip(states, self.vars))
        self.params = list(params)
        self.t = t
        if constants == "exact":  # heyoka wants exactly as many values as the highest par index used + 1
            self.map.update({p: hy.par[i] for i, p in enumerate(self.params)})

    def real(self, value: Fraction):
        if self.constants == "float":
            return hy.real(float(value), self.prec)  # the trap: one binary double per constant
        return hy.real(value.numerator, self.prec) / hy.real(value.denominator, self.prec)  # one rounding

    def const(self, value: Fraction):
        if self.constants == "float":
            return hy.expression(float(value))  # as a user would write u/10.
        return hy.expression(self.real(value))

    def __call__(self, e):
        if e in self.map:
            return self.map[e]
        if e == self.t:
            return hy.time
        if isinstance(e, sympy.Symbol):
            raise TranslationError(f"symbol {e} is not a state, parameter or time")
        if isinstance(e, sympy.Rational):
            return self.const(Fraction(int(e.p), int(e.q)))
        if isinstance(e, sympy.Float):
            r = sympy.Rational(e)  # the exact binary value the Float holds
            return self.const(Fraction(int(r.p), int(r.q)))
        if isinstance(e, sympy.Add):
            out = None
            for a in e.args:
                x = self(a)
                out = x if out is None else out + x
            return out
        if isinstance(e, sympy.Mul):
            out = None
            for a in e.args:
                x = self(a)
                out = x if out is None else out * x
            return out
        impl = _BY_HEAD.get(type(e))
        if impl is not None and (impl is _pow or len(e.args) == 1):
            return impl(self, e)
        raise TranslationError(f"{type(e).__name__} ({e}) is not in the SymPy -> heyoka table; supported: + - * / "
                               f"**, {', '.join(sorted(FUNCTIONS.values()))}")


def _product_power(b, n: int):
    """b**n (n >= 1) by binary powering with products only."""
    result, base = None, b
    while True:
        if n & 1:
            result = base if result is None else result * base
        n >>= 1
        if not n:
            return result
        base = base * base


def _exact_fraction(v, what: str) -> Fraction | None:
    v = sympy.sympify(v)
    if isinstance(v, sympy.Rational):
        return Fraction(int(v.p), int(v.q))
    return None


def _to_real(tr: _Translator, v, what: str):
    f = _exact_fraction(v, what)
    if f is not None:
        return tr.real(f)
    # a non-rational exact number (e.g. exp(1/2) in z0): decimal text with margin, rounded once by MPFR
    text = sympy.N(v, int(tr.prec * 0.30103) + 10)
    return hy.real(str(text), tr.prec)


def _from_real(x) -> mpmath.mpf:
    # heyoka.real prints enough decimal digits to round-trip at its precision
    return mpmath.mpf(str(x))


def heyoka_gradient(model: Model, digits: int = 30, *, constants: str = "exact",
                    compact_mode: bool = True) -> GradResult:
    """Loss and gradients of ``model`` from heyoka's MPFR Taylor integrator (forward-sensitivity route).

    Integrates at ``digits + ROUTE_GUARD_DIGITS`` digits (tolerance 10^-(that)), like the oracle's working
    precision.  ``stats`` holds the build and integration seconds.  No error bound is claimed (method
    "heyoka", for cross-checks).
    """
    _require()
    started = _time.monotonic()
    work = digits + ROUTE_GUARD_DIGITS
    prec = math.ceil(work * math.log2(10)) + 16
    d = derive(model)
    fw = d.forward_system
    rhs_syms = set().union(*(sympy.sympify(e).free_symbols for e in fw.rhs))
    used = [p for p in model.params if p in rhs_syms]  # heyoka counts the parameters the system uses
    tr = _Translator(fw.states, used, model.t, prec, constants)
    pv = model.param_values
    # float mode: the parameter values become constants of the expressions, each passed as a Python float
    rhs = [tr(sympy.sympify(e) if constants == "exact" else sympy.sympify(e).xreplace(pv)) for e in fw.rhs]
    init = [_to_real(tr, sympy.sympify(e).xreplace(pv), f"initial value {i}") for i, e in enumerate(fw.init)]
    pars = [tr.real(_exact_fraction(pv[p], p.name)) for p in used] if constants == "exact" else []
    kw = dict(fp_type=hy.real, prec=prec, tol=hy.real(10, prec) ** hy.real(-work, prec), compact_mode=compact_mode)
    if pars:
        kw["pars"] = pars
    ta = hy.taylor_adaptive(list(zip(tr.vars, rhs)), init, **kw)
    built = _time.monotonic()
    ta.time = tr.real(Fraction(int(model.t0.p), int(model.t0.q)))
    times = sorted({o.time for o in model.observations} | {model.t1})
    at = {}
    with mpmath.workdps(work + 10):
        for tm in times:
            outcome = ta.propagate_until(tr.real(Fraction(int(tm.p), int(tm.q))))[0]
            if outcome != hy.taylor_outcome.time_limit:
                raise IntegrationError(f"heyoka on model {model.name!r}: integration stopped with {outcome} "
                                       f"before t = {tm}", time=float(ta.time))
            at[tm] = [_from_real(x) for x in ta.state]
            if not all(mpmath.isfinite(x) for x in at[tm]):
                raise IntegrationError(f"heyoka on model {model.name!r}: non-finite state at t = {tm}",
                                       time=float(tm))
        r = assemble_forward(model, at, Evaluator(model, work))
    res = GradResult(model=model.name, method="heyoka", loss=r["loss"], grad=dict(zip(model.param_names, r["grad"])),
                     grad_z0=r["grad_z0"], grad_t0=r["grad_t0"], grad_t1=r["grad_t1"], digits=digits,
                     z1=r["z1"], stats={"constants": constants, "precision_bits": prec,
                                        "build_seconds": round(built - started, 3),
                                        "integrate_seconds": round(_time.monotonic() - built, 3)})
    return res.check_finite()


def _as_route(res: GradResult) -> dict:
    return {"loss": res.loss, "grad": list(res.grad.values()), "grad_z0": list(res.grad_z0),
            "grad_t0": res.grad_t0, "grad_t1": res.grad_t1, "z1": list(res.z1 or [])}


def compare_with_oracle(model: Model, digits: int = 30, *, constants: str = "exact", oracle=None) -> dict:
    """Largest relative disagreement between heyoka and symode's oracle on every reported value.

    Returns {"difference": mpf, "worst": value name, "tolerance": mpf, "agrees": bool, "heyoka": GradResult,
    "oracle": GradResult}; the tolerance is :data:`HEYOKA_TOLERANCE` ["exact"] (for ``constants="float"`` the
    same tolerance applies: the float build is expected to fail it).
    """
    from .engine import oracle_gradient
    ora = oracle if oracle is not None else oracle_gradient(model, digits, quiet=True)
    hey = heyoka_gradient(model, digits, constants=constants)
    with mpmath.workdps(digits + ROUTE_GUARD_DIGITS + 10):
        diff, worst = _max_rel(_as_route(hey), _as_route(ora), _pretty_names(model))
    tol = HEYOKA_TOLERANCE["exact"](digits)
    return {"difference": diff, "worst": worst, "tolerance": tol, "agrees": bool(diff <= tol),
            "heyoka": hey, "oracle": ora}

