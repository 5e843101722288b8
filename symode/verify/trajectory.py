"""Numeric values of a document model's quantities at the document's values, to 30 digits with an error bound.

* ``L``, ``dL/dθ``, ``dL/dz0``, ``dL/dt0``, ``dL/dt1``: :func:`symode.compute` with the ``oracle`` method at
  ``oracle_digits`` digits (its two routes, forward sensitivity and continuous adjoint, and a rerun at higher
  precision give its error bound).
* Solution values at times T (z, S, W from a forward solve; λ, μ from a backward sweep) and integrals along
  the solution: Taylor integration (:mod:`symode.oracle.taylor`) of the systems
  :func:`symode.symbolic.derive.derive` derives, in one forward solve of (z, S, W) from t0 to t1 with output at
  every time needed, and one backward sweep of (z, [S, W,] λ, μ, q_1..q_m) from t1 to t0, piece by piece
  between those times, each piece restarting z (and S, W) from the forward solve (back-solving a contracting
  system loses digits), with λ(t1) = (∂ℓ/∂z)ᵀ, λ += (∂ℓ_k/∂z)ᵀ going backward through each observation time,
  and one quadrature q_i' = g_i per integral ∫ g_i dt, so ∫_lo^hi g_i dt = q_i(hi) - q_i(lo).  A piece whose
  back-solved z misses the forward z by more than 10^-(working digits - 5) (relative to max(1, |z|)) is a
  failure (the quantities are then unavailable and the claims that need them UNDECIDED, never guessed).

Narrow features in time (:mod:`symode.verify.features`): the zeros and extremes of every argument of the
integrands, the right-hand side and the running cost that depends on t alone are located before the sweeps
(a spike ``exp(-1e10*(t - 0.3)**2)`` is ~exp(-9e8) at t0: the Taylor steps, chosen from the coefficients at
their start, would pass over it at both precisions, and the error bound with them); both sweeps, at both
precisions, land on them and approach them in halving steps (:mod:`symode.oracle.critical`).  An integrand's
argument that depends on the states too (``exp(-1e10*(u - 0.7)**2)``) is followed along a forward solve and its
crossings and extremes located there (:mod:`symode.verify.solutionfeatures`); one the solution passes and leaves
between two scan points without a sign change of the argument or its rate is the limit.  An integrand with more
narrow features than can be located is not evaluated (its claims UNDECIDED).

Error bound of the swept values, as the oracle's: both sweeps run at D = oracle_digits + 10 and D + 15 working
digits; with e = |v_D - v_{D+15}| / max(|v|, 1e-8), the bound is max(10 e, 10^-(oracle_digits - 1)) times
max(|v|, 1e-8).  A value is a ball (midpoint, radius) for :mod:`symode.verify.balls`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import mpmath
import sympy

from ..errors import SymodeError
from .lossmodel import LossModel
from .tolerances import VERIFY_SETTINGS

#: Values below this magnitude are bounded absolutely (the oracle's VALUE_FLOOR).
VALUE_FLOOR = mpmath.mpf(10) ** -8
#: Extra digits of the second sweep, and digits of the working precision beyond the requested ones.
CHECK_EXTRA_DIGITS = 15
GUARD_DIGITS = 10


@dataclass
class Table:
    """Values (key -> (midpoint, radius) as mpf) and failures (key -> reason) of one model's quantities."""

    values: dict = field(default_factory=dict)
    failed: dict = field(default_factory=dict)
    notes: dict = field(default_factory=dict)      # "oracle", "sweep": how the values were obtained

    def has(self, key) -> bool:
        return key in self.values or key in self.failed


# -- which values a claim needs -------------------------------------------------------------------------------
def bare_integrand(model: LossModel, integral, values: dict) -> sympy.Expr:
    """The integrand of an integral along the solution in bare symbols (solution values at the integration
    variable -> their symbols, the variable -> the time symbol), constants substituted; raises ValueError
    when it needs anything else (a value at another time, a loss quantity, a symbol without a value)."""
    (var, lo, hi), = integral.limits
    g = integral.function
    reps = {}
    for app in model.solution_values(g):
        name, T, after = model.application(app)
        if T != var:
            raise ValueError(f"the integrand uses {app}, a value at a fixed time; move it out of the integral")
        reps[app] = model.symbols[name]
    g = g.xreplace(reps).xreplace({var: model.time}).xreplace(values)
    if model.solution_values(g) or g.atoms(sympy.Integral):
        raise ValueError("nested integrals along the solution are not evaluated")
    allowed = set(model.symbols.values()) | {model.time}
    extra = sorted(str(s) for s in g.free_symbols - allowed)
    if extra:
        raise ValueError(f"the integrand uses {', '.join(extra)}, which has no value (declare it under 'values:')")
    return g


def normalized(model: LossModel, expr):
    """``expr`` with the constant factor of each integrand along the solution taken out of its integral
    (∫ 1e-40·g dt -> 1e-40·∫ g dt): values are bounded relative to their size, down to a floor, so the
    integral of g keeps its 30 digits where that of 1e-40·g would sit below the floor."""
    expr = sympy.sympify(expr)
    reps = {}
    for integral in model.along_integrals(expr):
        c, g = integral.function.as_content_primitive()
        if c != 1:
            reps[integral] = c * sympy.Integral(g, *integral.limits)
    return expr.xreplace(reps) if reps else expr


def keys_of(model: LossModel, expr, values: dict) -> tuple[dict, dict]:
    """({node: key} of every numeric quantity ``expr`` needs at ``values`` (a point's), {node: reason} of those it
    cannot have)."""
    expr = sympy.sympify(expr)
    keys, bad = {}, {}
    for q in expr.free_symbols:
        if q in model.quantities:
            keys[q] = ("loss", q)
    inside = set()
    for integral in model.along_integrals(expr):
        inside |= set(model.solution_values(integral.function))
        try:
            g = bare_integrand(model, integral, values)
            (_, lo, hi), = integral.limits
            lo_v, hi_v = _time(model, lo, values), _time(model, hi, values)
            keys[integral] = ("integral", g, lo_v, hi_v)
        except ValueError as exc:
            bad[integral] = str(exc)
    for app in model.solution_values(expr):
        if app in inside:
            continue
        name, T, after = model.application(app)
        try:
            keys[app] = ("value", name, _time(model, T, values), after)
        except ValueError as exc:
            bad[app] = str(exc)
    return keys, bad


def _time(model: LossModel, T, values: dict) -> sympy.Rational:
    v = model.time_value(T, values)
    if v is None or not v.is_Rational:
        raise ValueError(f"the time {T} has no exact rational value at the document's values")
    lo, hi = values[model.t0], values[model.t1]
    if not lo <= v <= hi:
        raise ValueError(f"the time {T} = {v} is outside [{model.t0}, {model.t1}] = [{lo}, {hi}]")
    return v


# -- computing them ----------------------------------------------------------------------------------------------
def compute_table(model: LossModel, keys: dict) -> Table:
    """The value (or the reason it has none) of every key of ``keys`` = {point index: set of keys}, in the
    table under (point index, key); run under a budget by the caller."""
    table = Table()
    with mpmath.workdps(2 * VERIFY_SETTINGS["oracle_digits"] + 2 * GUARD_DIGITS + CHECK_EXTRA_DIGITS):
        for p, ks in keys.items():
            part = Table()
            _compute_point(model, model.points[p], ks, part)
            table.values.update({(p, k): v for k, v in part.values.items()})
            table.failed.update({(p, k): v for k, v in part.failed.items()})
            table.notes.update(part.notes)
    return table


def _compute_point(model: LossModel, point, keys: set, table: Table) -> None:
    losses = [k for k in keys if k[0] == "loss"]
    swept = [k for k in keys if k[0] != "loss"]
    if losses:
        _oracle(model, point, losses, table)
    if swept:
        swept, critical = _critical_times(model, point, swept, table)
    if swept:
        try:
            lo = _Sweep(model, point, swept, VERIFY_SETTINGS["oracle_digits"] + GUARD_DIGITS, critical).run()
            hi = _Sweep(model, point, swept, VERIFY_SETTINGS["oracle_digits"] + GUARD_DIGITS + CHECK_EXTRA_DIGITS,
                        critical).run()
        except (SymodeError, ArithmeticError, ValueError) as exc:
            for k in swept:
                table.failed[k] = f"the solution could not be computed: {' '.join(str(exc).split())}"
            return
        worst = 0
        for k in swept:
            v1, v2 = lo[k], hi[k]
            e = abs(v1 - v2) / max(abs(v2), VALUE_FLOOR)
            worst = max(worst, e)
            bound = max(10 * e, mpmath.mpf(10) ** -(VERIFY_SETTINGS["oracle_digits"] - 1))
            table.values[k] = (v2, bound * max(abs(v2), VALUE_FLOOR))
        table.notes["sweep"] = (f"solution values and integrals along it by Taylor integration at "
                                f"{VERIFY_SETTINGS['oracle_digits'] + GUARD_DIGITS} and "
                                f"{VERIFY_SETTINGS['oracle_digits'] + GUARD_DIGITS + CHECK_EXTRA_DIGITS} digits "
                                f"(largest relative difference {mpmath.nstr(worst, 2) if worst else '0'})")


def _critical_times(model: LossModel, point, keys: list, table: Table) -> tuple[list, dict]:
    """(the keys still to sweep, {"model": critical times of the model's right-hand side and running cost,
    "integrals": those of the integrands along the solution}) at ``point`` (:mod:`symode.verify.features`): the
    sweeps land on them and approach them in halving steps, so a spike exp(-1e10*(t - 0.3)**2) is integrated,
    not stepped over.  An integrand with too many narrow features to locate is failed (its claims UNDECIDED);
    a model with too many fails every key."""
    from .features import TooManyFeatures, model_features, time_features
    M = point.model
    try:
        own = model_features(M)
    except TooManyFeatures as exc:
        for k in keys:
            table.failed[k] = f"the solution could not be computed: {exc}"
        return [], {}
    found, kept = set(), []
    for k in keys:
        if k[0] == "integral":
            try:
                found.update(time_features([k[1]], model.time, M.t0, M.t1))
            except TooManyFeatures as exc:
                table.failed[k] = (f"the integral along the solution is not evaluated: {exc} (the Taylor steps "
                                   f"could pass over a narrow feature of its integrand there)")
                continue
        kept.append(k)
    # features in the solution's values (a spike in u itself), located along a forward solve
    from .solutionfeatures import solution_features
    found.update(solution_features(M, [k[1] for k in kept if k[0] == "integral"], own))
    return kept, {"model": own, "integrals": tuple(sorted(found))}


def _oracle(model: LossModel, point, keys: list, table: Table) -> None:
    from ..methods import compute
    try:
        r = compute(point.model, "oracle", digits=VERIFY_SETTINGS["oracle_digits"])
    except SymodeError as exc:
        for k in keys:
            table.failed[k] = f"the oracle failed: {' '.join(str(exc).split())}"
        return
    bound = mpmath.mpf(r.error_bound)
    table.notes["oracle"] = (f"symode.compute(model, 'oracle', digits={VERIFY_SETTINGS['oracle_digits']}): error bound "
                             f"{r.error_bound} (forward-sensitivity and adjoint routes, precision raised from "
                             f"{r.stats.get('working_digits')} to {r.stats.get('check_digits')} digits)")
    for k in keys:
        kind, target = model.quantities[k[1]]
        v = {"loss": lambda: r.loss, "param": lambda: r.grad.get(target.name), "t0": lambda: r.grad_t0,
             "t1": lambda: r.grad_t1, "initial": lambda: r.grad_z0[target]}[kind]()
        if v is None:
            table.failed[k] = f"the oracle gives no value for {k[1]}"
            continue
        v = mpmath.mpf(v)
        table.values[k] = (v, bound * max(abs(v), VALUE_FLOOR))


def _num(expr, subs: dict, digits: int) -> mpmath.mpf:
    """``expr`` at ``subs`` (symbol -> mpf or exact number) as an mpf."""
    reps = {s: (sympy.Float(v, digits + 10) if isinstance(v, mpmath.mpf) else v) for s, v in subs.items()}
    v = sympy.sympify(expr).xreplace(reps).evalf(digits + 5)
    if not (v.is_number and v.is_real and v.is_finite):
        raise ValueError(f"{expr} is not a finite real number at the solution ({v})")
    return mpmath.mpf(sympy.Float(v, digits + 5)._mpf_)


class _Sweep:
    """One forward solve and one backward sweep at ``digits`` working digits (see the module docstring)."""

    def __init__(self, model: LossModel, point, keys: list, digits: int, critical: dict):
        from ..symbolic.derive import derive
        self.m, self.keys, self.digits = model, keys, digits
        self.fw_critical = critical["model"]
        self.bw_critical = tuple(sorted({*critical["model"], *critical["integrals"]}))
        M = point.model
        self.M, self.d = M, derive(M)
        d = self.d
        nz, np_ = M.nz, M.np
        self.t0, self.t1 = M.t0, M.t1
        self.obs = {o.time: o for o in M.observations}
        integrals = [k for k in keys if k[0] == "integral"]
        self.integrals = {k: i for i, k in enumerate(dict.fromkeys(integrals))}
        # derived symbols of the document -> those of derive(M) (same positions)
        to_d = {}
        for name, (kind, i, j) in model.kinds.items():
            to_d[model.symbols[name]] = {"z": lambda: d.z[i], "lambda": lambda: d.lam[i], "mu": lambda: d.mu[i],
                                         "S": lambda: d.S[i, j], "W": lambda: d.W[i, j]}[kind]()
        # only the columns of S and W and the entries of μ that some value or integrand needs (column j of
        # S obeys dS_j/dt = ∂f/∂z S_j + ∂f/∂θ_j on its own)
        used = set().union(*(k[1].free_symbols for k in self.integrals)) if self.integrals else set()
        named = {n for n, s in model.symbols.items() if s in used} | {k[1] for k in keys if k[0] == "value"}
        self.s_cols = sorted({model.kinds[n][2] for n in named if model.kinds[n][0] == "S"})
        self.w_cols = sorted({model.kinds[n][2] for n in named if model.kinds[n][0] == "W"})
        self.mus = sorted({model.kinds[n][1] for n in named if model.kinds[n][0] == "mu"})
        fw_states, fw_rhs = list(d.z), list(d.f)
        for cols, M_, rhs_ in ((self.s_cols, d.S, d.sens_rhs), (self.w_cols, d.W, d.sens_z0_rhs)):
            for j in cols:
                fw_states += list(M_[:, j])
                fw_rhs += list(rhs_[:, j])
        self.n_fw = len(fw_states)
        self.fw_index = {s: i for i, s in enumerate(fw_states)}
        q = [sympy.Dummy(f"q{i}", real=True) for i in range(len(self.integrals))]
        bw_states = fw_states + list(d.lam) + [d.mu[j] for j in self.mus] + q
        bw_rhs = fw_rhs + list(d.adjoint_rhs) + [d.adjoint_quad_rhs[j] for j in self.mus] + \
            [k[1].xreplace(to_d) for k in self.integrals]
        from ..oracle.taylor import TaylorSystem
        self.fw = TaylorSystem(fw_states, fw_rhs, M.t, params=M.params)
        self.bw = TaylorSystem(bw_states, bw_rhs, M.t, params=M.params)
        self.nz, self.np = nz, np_
        times = {self.t0, self.t1, *self.obs}
        for k in keys:
            times |= {k[2]} if k[0] == "value" else {k[2], k[3]}
        span = self.t1 - self.t0
        pieces = VERIFY_SETTINGS["oracle_sweep_pieces"]
        times |= {self.t0 + span * sympy.Rational(i, pieces) for i in range(1, pieces)}
        self.cuts = sorted(times)

    def values_at(self, row) -> dict:
        return dict(zip(self.M.states, row[: self.nz]))

    def run(self) -> dict:
        from ..oracle.routes import restart_fraction
        from ..oracle.taylor import integrate, to_mpf
        M, d, D = self.M, self.d, self.digits
        pv = M.param_values
        y0 = [sympy.sympify(e).xreplace(pv) for e in M.z0]
        for j in self.s_cols:
            y0 += [sympy.sympify(e).xreplace(pv) for e in d.sens_init[:, j]]
        for j in self.w_cols:
            y0 += list(sympy.eye(self.nz)[:, j])
        with mpmath.workdps(D + 10):
            out = integrate(self.fw, y0, self.t0, self.cuts[1:], params=M.theta, digits=D,
                            critical_times=self.fw_critical)
            fwd = {self.t0: [mpmath.mpf(sympy.Float(sympy.N(v, D + 10), D + 10)._mpf_) for v in y0]}
            fwd.update({tm: [to_mpf(v) for v in row] for tm, row in zip(self.cuts[1:], out)})
            lam_after, lam_before, mu, q = {}, {}, {}, {}
            subs1 = {**pv, **self.values_at(fwd[self.t1])}
            lam = [_num(g, subs1, D) for g in d.dldz_terminal]
            lam_after[self.t1] = lam
            lam = self.jump(lam, self.t1, fwd)
            lam_before[self.t1] = lam
            mus = [mpmath.mpf(0)] * len(self.mus)
            qs = [mpmath.mpf(0)] * len(self.integrals)
            mu[self.t1], q[self.t1] = mus, qs
            for hi, lo in zip(self.cuts[::-1], self.cuts[-2::-1]):
                y = [restart_fraction(v) for v in (*fwd[hi], *lam, *mus, *qs)]
                row = [to_mpf(v) for v in integrate(self.bw, y, hi, [lo], params=M.theta, digits=D,
                                                    critical_times=self.bw_critical)[0]]
                z_back, z_fwd = row[: self.nz], fwd[lo][: self.nz]
                scale = max([mpmath.mpf(1)] + [abs(v) for v in z_fwd])
                miss = max(abs(a - b) for a, b in zip(z_back, z_fwd)) / scale
                if miss > mpmath.mpf(10) ** -(D - 5):
                    raise ValueError(f"back-solving z from t = {hi} to {lo} missed the forward solution by "
                                     f"{mpmath.nstr(miss, 3)} (relative): the system is too contracting here")
                k = self.n_fw
                nm = len(self.mus)
                lam, mus, qs = row[k:k + self.nz], row[k + self.nz:k + self.nz + nm], row[k + self.nz + nm:]
                lam_after[lo] = lam
                lam = self.jump(lam, lo, fwd)
                lam_before[lo], mu[lo], q[lo] = lam, mus, qs
            return {key: self.value(key, fwd, lam_before, lam_after, mu, q) for key in self.keys}

    def jump(self, lam, tm, fwd) -> list:
        """λ going backward through time ``tm``: + (∂ℓ_k/∂z)ᵀ for an observation there."""
        o = self.obs.get(tm)
        if o is None:
            return lam
        subs = {**self.M.param_values, **self.values_at(fwd[tm])}
        return [la + _num(sympy.diff(o.term, z), subs, self.digits) for la, z in zip(lam, self.M.states)]

    def value(self, key, fwd, lam_before, lam_after, mu, q) -> mpmath.mpf:
        if key[0] == "integral":
            i = self.integrals[key]
            return q[key[3]][i] - q[key[2]][i]
        _, name, T, after = key
        kind, i, j = self.m.kinds[name]
        d = self.d
        if kind == "lambda":
            return (lam_after if after else lam_before)[T][i]
        if kind == "mu":
            return mu[T][self.mus.index(i)]
        sym = {"z": lambda: d.z[i], "S": lambda: d.S[i, j], "W": lambda: d.W[i, j]}[kind]()
        return fwd[T][self.fw_index[sym]]

