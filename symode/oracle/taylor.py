"""Taylor-series integration of SymPy ODE systems at arbitrary precision (the oracle's integrator).

The system is ``dy/dt = f(y, t, p)`` with ``y`` the states, ``t`` the time symbol and ``p`` parameters whose
numeric values are given at integration time.  :class:`TaylorSystem` compiles ``f`` once (after
``sympy.cse``) into a *tape*: a flat list of elementary operations on numbered nodes.  :func:`integrate`
then advances the solution with Taylor's method.  The parts, one job per module:

* :mod:`symode.oracle.tape` -- the tape: each function of the table (:data:`symode.expr.FUNCTIONS`) becomes
  tape operations through its emitter (``TAYLOR_FUNCTIONS``);
* :mod:`symode.oracle.recurrences` -- the Taylor coefficients: writing every node as a series
  ``v(t + tau) = sum_k v[k] tau**k``, the states obey ``y[k+1] = f[k] / (k+1)`` and each tape operation has
  a recurrence giving its coefficient ``k`` from lower ones (the table ``RECURRENCES``; how to add an
  operation is in that module's docstring);
* :mod:`symode.oracle.piecewise` -- abs, sign, Heaviside: exact piecewise within a step (below);
* :mod:`symode.oracle.stepping` -- the step control, apart from the tape: Jorba & Zou's order
  ``K = ceil(-ln(eps)/2 + 1)`` and step size for the tolerance ``eps = 10**-(digits+5)`` (relative to
  ``max(1, ||y||_inf)``), landing on every output time and on every zero crossing of the argument ``a`` of
  an ``Abs``, ``sign`` or ``Heaviside`` (``Max``/``Min`` are built from ``Abs``);
* :mod:`symode.oracle.critical` -- critical times ``(c, w)`` given by the caller: narrow features (a spike
  ``exp(-1e10*(t - 0.3)**2)``) that the coefficients at a step's start do not show; the integration lands on
  each ``c`` and approaches it in halving, then one-width, steps instead of stepping over it;
* :mod:`symode.oracle.arithmetic` -- the numbers: ``gmpy2.mpfr`` (or ``mpmath.mpf``) at
  ``digits + ARITHMETIC_GUARD_DIGITS`` decimal digits; every constant and input converted from its exact
  value and rounded once, never through a binary double.

Non-smooth operations: within a step ``a`` keeps one side ``s`` of 0, so ``|a|`` is the series ``s * a`` and
``sign(a)``, ``Heaviside(a)`` are the constants ``s`` and ``(s + 1)/2``.  Each crossing ends a step, and the
next step takes the side it moves into.  An argument exactly 0 at a step start takes the side its first
nonzero Taylor coefficient points to (the step is recomputed when a sign/Heaviside value depended on it);
one that stays 0 keeps SymPy's values ``sign(0) = 0``, ``Heaviside(0, H0) = H0``.  When the right-hand side
pushes the argument back to 0 from both sides (a sliding mode of a discontinuous right-hand side) the
integration stops with an error.

Time runs in either direction: output times before ``t0`` are reached with negative steps.

Failures raise :class:`~symode.errors.IntegrationError` with ``time`` set: leaving the domain of an
operation at a step start ("log(z): log of a negative value (-1) at t = ...": log/sqrt/real power of a
non-positive number, division by zero, asin/atanh/acosh outside their real domain), non-finite values,
the step size collapsing (finite-time blow-up or a singularity of the right-hand side: steps shrink
geometrically towards it; a step below ``MIN_STEP_FRACTION`` of the interval is a collapse), a sliding
mode on a sign/Heaviside discontinuity, or the ``max_steps`` budget running out.  A collapse names its
cause: an operation whose argument is approaching the boundary of its domain ("log(z): its argument
approaches 0 near t = 1.0 (the solution leaves the domain of log)"; sqrt and non-integer real powers,
whose derivatives are unbounded there; asin/acos/atanh/acosh; a denominator, "division by zero"), the
restricted-domain functions named before divisions; else "finite-time blow-up".
Operations outside the table raise :class:`~symode.errors.DerivationError` when the system is compiled.

Known limit: the step rule trusts the last two Taylor coefficients at the step's start: a feature they do not
show yet (a spike far ahead) is stepped over unless the caller names it in ``critical_times``; and a solution
whose coefficients of orders ``K-1`` and ``K`` vanish at a step start while higher ones do not (e.g.
``dz/dt = t**60`` started at ``t = 0``) is stepped too far.  Neural-ODE right-hand sides do not have this
structure.
"""
from __future__ import annotations

import math
import time as _time
from collections.abc import Callable
from operator import mul

from symode.errors import IntegrationError, SpecError

from .arithmetic import BACKEND, number_backend, to_mpf, to_working
from .recurrences import Coefficients, _Domain, fmt, kernels
from .piecewise import first_crossing, moves_into  # (importing it registers abs/sign/Heaviside's recurrences)
from .critical import CriticalTimes
from .stepping import MIN_STEP_FRACTION, TOLERANCE_MARGIN_DIGITS, StepControl, diagnose_collapse, order
from .tape import TaylorSystem

__all__ = ["TaylorSystem", "integrate", "to_mpf", "BACKEND", "ARITHMETIC_GUARD_DIGITS", "TOLERANCE_MARGIN_DIGITS"]

#: Decimal digits the arithmetic carries beyond the ``digits`` asked of :func:`integrate` (round-off of many
#: steps and of the long convolution sums stays far below the requested digits).  Not the oracle's
#: ``ROUTE_GUARD_DIGITS``, which is how many digits beyond the user's the oracle asks of this integrator.
ARITHMETIC_GUARD_DIGITS = 10
#: Seconds between two ``progress`` calls (at most ~10 calls a second).
PROGRESS_INTERVAL_S = 0.1


def integrate(system: TaylorSystem, y0, t0, t_out, params=(), digits: int = 30, *,
              progress: Callable[[float], None] | None = None, max_steps: int = 100_000,
              stats: dict | None = None, backend: str | None = None, critical_times=()) -> list[list]:
    """Integrate ``system`` from ``(t0, y0)`` and return the states at each time of ``t_out``.

    ``y0``, ``t0``, ``t_out`` and ``params`` may be ints, ``Fraction``s, decimal strings, SymPy numbers
    (``Rational`` exactly; ``Float`` as the exact binary number it holds; ``pi``, ``sqrt(2)``... evaluated at
    working precision) or ``mpmath.mpf``; they are converted exactly and rounded once.  ``t_out`` must be
    ordered in the direction of integration, all on one side of ``t0`` (times equal to ``t0`` allowed):
    ascending for ``t_out >= t0``, descending for ``t_out <= t0`` (backward integration, negative steps).

    ``digits``: decimal digits wanted.  The arithmetic carries ``digits + ARITHMETIC_GUARD_DIGITS`` digits and each
    step's truncation error is kept near ``10**-(digits + TOLERANCE_MARGIN_DIGITS) * max(1, ||y||_inf)``,
    so the results are good to about ``digits`` digits relative to ``max(1, ||y||_inf)``.

    Returns ``result[i][j]`` = state ``j`` at ``t_out[i]`` in the working number type (``gmpy2.mpfr``, or
    ``mpmath.mpf`` with ``backend="mpmath"``); :func:`to_mpf` converts exactly.  ``progress(fraction)``
    is called at most ~10 times a second (and once with 1.0 at the end).  ``max_steps`` bounds the number
    of steps (IntegrationError when used up).  ``stats``, if a dict, receives ``steps``, ``order``,
    ``precision_bits``, ``tolerance``, ``truncation_error_estimate`` (sum over steps of the estimated
    local truncation error, relative to ``max(1, ||y||)``), ``abs_crossings`` and ``backend`` (and
    ``critical_landings`` when ``critical_times`` are given).

    ``critical_times``: pairs ``(c, w)``, "a feature of width about ``w`` at time ``c`` that the Taylor
    coefficients may not show from afar" (a spike ``exp(-1e10*(t - 0.3)**2)``): the integration lands on every
    ``c`` between ``t0`` and the last output time (not returned) and, approaching ``c``, takes no step longer
    than ``|t - c|/2``, nor than ``w`` within ``NEAR_WIDTHS`` (32) widths of ``c`` (:mod:`symode.oracle.critical`).
    Without them the steps and results are those of the plain step control, bit for bit.
    """
    y0, params, t_out = _checked_arguments(system, y0, params, t_out, digits, max_steps)
    B = number_backend(backend)
    bits = math.ceil((digits + ARITHMETIC_GUARD_DIGITS) * math.log2(10)) + 8
    K = order(digits)

    with B.precision(bits):
        yv = [to_working(v, f"y0[{i}]", B, bits) for i, v in enumerate(y0)]
        t = to_working(t0, "t0", B, bits)
        pv = [to_working(v, f"params[{i}] ({system.params[i]})", B, bits) for i, v in enumerate(params)]
        targets = [to_working(v, f"t_out[{i}]", B, bits) for i, v in enumerate(t_out)]
        if not targets:
            return []
        direction = 1 if targets[-1] >= t else -1
        prev = t
        for i, tt in enumerate(targets):
            if (tt - prev) * direction < 0:
                raise SpecError(f"t_out[{i}] = {t_out[i]} is out of order: t_out must run away from t0 = {t0} "
                                f"monotonically (ascending forward, descending backward)")
            prev = tt
        run = _Integration(system, B, bits, K, t, pv, direction)
        critical_times = list(critical_times) if critical_times is not None else []
        if critical_times:
            span = abs(targets[-1] - t)
            run.critical = CriticalTimes(critical_times, B, bits, t, direction, targets[-1],
                                         span * B.number(MIN_STEP_FRACTION) * 4)
        results = run.solve(t, yv, targets, progress, max_steps)
        if stats is not None:
            stats.update(steps=run.steps, order=K, precision_bits=bits,
                         tolerance=f"1e-{digits + TOLERANCE_MARGIN_DIGITS}",
                         truncation_error_estimate=float(run.err_est), abs_crossings=run.crossings, backend=B.name)
            if critical_times:
                stats["critical_landings"] = run.landings
        return results


def _checked_arguments(system, y0, params, t_out, digits, max_steps) -> tuple[list, list, list]:
    if not isinstance(system, TaylorSystem):
        raise SpecError(f"system must be a TaylorSystem, got {type(system).__name__}")
    if isinstance(digits, bool) or not isinstance(digits, int) or digits < 1:
        raise SpecError(f"digits = {digits!r} must be a positive integer")
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
        raise SpecError(f"max_steps = {max_steps!r} must be a positive integer")
    y0 = list(y0)
    params = list(params)
    t_out = list(t_out)
    if len(y0) != system.n_states:
        raise SpecError(f"y0 has {len(y0)} values for {system.n_states} states")
    if len(params) != len(system.params):
        raise SpecError(f"params has {len(params)} values for {len(system.params)} parameters "
                        f"({', '.join(map(str, system.params))})")
    return y0, params, t_out


class _Integration:
    """One call of :func:`integrate`: the coefficient arrays with the tape's kernels bound to them, the step
    control, and the counters (``steps``, ``crossings``, ``err_est``)."""

    def __init__(self, system: TaylorSystem, B, bits: int, K: int, t, pv: list, direction: int):
        self.system, self.B, self.bits, self.K, self.direction = system, B, bits, K, direction
        zero = self.zero = B.from_fraction(0, 1)
        one = self.one = B.from_fraction(1, 1)
        S = self.S = [[zero] * (K + 1) for _ in range(system.n_nodes)]
        for i, p in enumerate(pv):
            S[system.n_states + 1 + i][0] = p
        for node, value in system._literals:
            S[node][0] = to_working(value, f"the constant {value}", B, bits)
        S[system.t_node][1] = one
        cx = Coefficients(S, system._is_const, B)
        try:
            for op in system.const_ops:
                kernels(op, cx)[0]()
        except _Domain as exc:
            raise IntegrationError(f"{exc.message(system)} in a constant part of the right-hand side (it depends "
                                   f"only on parameters); check the parameter values", time=float(t)) from None
        for n, c in enumerate(system._is_const):
            if c and not B.is_finite(S[n][0]):
                raise IntegrationError(f"a constant part of the right-hand side is not finite ({S[n][0]}); "
                                       f"check the parameter values", time=float(t))
        self.f0s, self.fks = [], []
        for op in system.main_ops:
            f0, fk = kernels(op, cx)
            self.f0s.append(f0)
            if fk is not None:
                self.fks.append(fk)
        self.X = [S[i] for i in range(system.n_states)]
        # the states with a right-hand side on the tape come first; a system may end with quadratures (states
        # nothing depends on, advanced from their integrand's series: symode.oracle.array_tape)
        self.XR = list(zip(self.X, [S[n] for n in system.rhs_nodes]))
        self.quads = getattr(system, "quadratures", ())
        self.X_ode = self.X[:len(system.rhs_nodes)]
        self.inv = [one / (k + 1) for k in range(K + 1)]
        self.control = StepControl(B, K)
        self.abs_cells = list(cx.abs_state.values())
        for c in self.abs_cells:
            c["dir"] = direction
        self.steps = self.crossings = self.landings = 0
        self.err_est = zero
        self.critical = None

    def solve(self, t, yv, targets, progress, max_steps: int) -> list[list]:
        """The states at every time of ``targets`` (ordered away from ``t``), starting from ``yv`` at ``t``."""
        B, system = self.B, self.system
        span = abs(targets[-1] - t)
        t_start = t
        min_step = span * B.from_fraction(1, 1) * B.number(MIN_STEP_FRACTION)
        last_report = _time.monotonic()
        results = []
        ti = 0
        while ti < len(targets) and targets[ti] == t:
            results.append(list(yv))
            ti += 1
        while ti < len(targets):
            if self.steps >= max_steps:
                raise IntegrationError(f"max_steps = {max_steps} steps used up at t = {fmt(t, 17)} before reaching "
                                       f"t = {fmt(targets[-1])}; raise max_steps or shorten the interval",
                                       time=float(t))
            self.coefficients(t, yv)
            h, landing, n1, n2, scale = self.control.step(self.control_arrays(), yv, self.direction, targets[ti] - t)
            if not B.is_finite(h):
                raise IntegrationError(f"the step size is not finite at t = {fmt(t)} (non-finite Taylor "
                                       f"coefficients): the solution is singular there", time=float(t))
            on_critical = None
            if self.critical:
                h2, on_critical = self.critical.limit(t, h)
                if h2 is not h:
                    h, landing = h2, False
            if not landing and on_critical is None and abs(h) < min_step:
                raise IntegrationError(
                    f"{diagnose_collapse(system, self.S, yv, t)}; the step size collapsed to {fmt(h)} at "
                    f"t = {fmt(t, 17)}. Stop the integration before this time or change the model or its initial "
                    f"values", time=float(t))
            cross = first_crossing(self.abs_cells, h, self.zero, self.bits)
            if cross is not None:  # land on the first zero crossing of an abs/sign/Heaviside argument
                h, landing, on_critical = cross[0], False, None
                # Another argument crossing at the same point (e.g. z and 2*z) is not forced: if round-off
                # puts it on its old side at the next step start, that step finds its crossing at once and
                # ends after a round-off-sized step.
                cross[1]["forced"] = cross[2]
                cross[1]["check"] = cross[1]["piecewise"]  # a discontinuous rhs may not let it cross
                self.crossings += 1
            yv = self.advance(h, n1, n2, scale)
            t = targets[ti] if landing else (t + h if on_critical is None else on_critical)
            self.landings += on_critical is not None
            self.steps += 1
            for i, v in enumerate(yv):
                if not B.is_finite(v):
                    raise IntegrationError(f"state {system.states[i]} became non-finite ({v}) at t = {fmt(t)}",
                                           time=float(t))
            while ti < len(targets) and targets[ti] == t:
                results.append(list(yv))
                ti += 1
            if progress is not None:
                now = _time.monotonic()
                if now - last_report >= PROGRESS_INTERVAL_S:
                    last_report = now
                    progress(float(abs(t - t_start) / span) if span > 0 else 1.0)
        if progress is not None:
            progress(1.0)
        return results

    def coefficients(self, t, yv) -> None:
        """The Taylor coefficients of every node at ``(t, yv)``, orders 0..K of the states.

        A sign/Heaviside argument exactly 0 at ``t`` whose side a higher coefficient decided makes its
        order-0 value (sign(0) = 0) wrong for the open step: the coefficients are computed again with that
        side (at most once per argument).  A side forced at a crossing is then checked: the argument must
        move into it, else the right-hand side slides along the discontinuity.
        """
        X, XR, T, K, inv = self.X, self.XR, self.S[self.system.t_node], self.K, self.inv
        f0s, fks = self.f0s, self.fks
        for _pass in range(len(self.abs_cells) + 1):
            for x, v in zip(X, yv):
                x[0] = v
            T[0] = t
            try:
                for f in f0s:
                    f()
            except _Domain as exc:
                raise IntegrationError(f"{exc.message(self.system)} at t = {fmt(t, 17)}: the solution left the "
                                       f"domain of {exc.func}", time=float(t)) from None
            for x, r in XR:
                x[1] = r[0]
            for k in range(1, K):
                for f in fks:
                    f(k)
                ik = inv[k]
                for x, r in XR:
                    x[k + 1] = r[k] * ik
            redo = [c for c in self.abs_cells if c["redo"]]
            if not redo:
                break
            for c in redo:
                c["forced"], c["redo"], c["check"] = c["sigma"], False, True
        for c in self.abs_cells:
            c["forced"] = None
            if c["check"]:
                c["check"] = False
                if not moves_into(c, K):
                    name = c["op"].label
                    raise IntegrationError(
                        f"{self.system.describe(c['op'])}: at t = {fmt(t, 17)} the argument of {name} is 0 and "
                        f"the right-hand side pushes it back towards 0 from both sides (a sliding mode along the "
                        f"discontinuity of {name}, where {name} has no single value); the Taylor integrator "
                        f"cannot continue. Stop the integration before this time or change the model",
                        time=float(t))

    def control_arrays(self) -> list:
        """The coefficient arrays the step size is chosen from: the states', and for each quadrature block
        bounds on its coefficients of orders K-1 and K."""
        if not self.quads:
            return self.X
        K, zero = self.K, self.zero
        out = list(self.X_ode)
        for q in self.quads:
            n1, n2 = q.top_norms(self.S, K)
            out.append([zero] * (K - 1) + [n1, n2])
        return out

    def advance(self, h, n1, n2, scale) -> list:
        """The states at t + h from their Taylor polynomials; adds the step's truncation estimate to err_est."""
        B, K, zero, one = self.B, self.K, self.zero, self.one
        hp = [one]
        for _ in range(K):
            hp.append(hp[-1] * h)
        yv = [B.fsum(map(mul, x, hp)) for x in self.X_ode]
        if self.quads:
            yv += [x[0] for x in self.X[len(yv):]]
            for q in self.quads:
                for i, d in zip(q.states, q.increments(self.S, hp, K, B)):
                    yv[i] = yv[i] + d
        e1 = n1 * abs(hp[K - 1]) if n1 > 0 else zero
        e2 = n2 * abs(hp[K]) if n2 > 0 else zero
        self.err_est = self.err_est + max(e1, e2) / scale
        return yv
