"""THE tolerance table: how closely a candidate must agree with a reference, one entry per purpose.

Every comparison in symode uses one metric (see :func:`symode.check.compare.compare`)::

    |c - r| <= atol + rtol * max(|c|, |r|)          per component; NaN/Inf never pass

A :class:`Tolerance` is the pair (rtol, atol) plus the purpose and the reason for the values; reports print
``Tolerance.describe()`` so a reader sees which entry was used and why.  ``atol`` is the allowance near zero,
stated for quantities of order one: for a problem whose gradient terms are of size ``s`` use
``COMPARISON_TOLERANCES[key].scaled(s)`` (rounding errors of a component that cancels to ~0 are relative to
the terms that cancelled, not to the result).

Entries of :data:`COMPARISON_TOLERANCES` are fixed values for comparisons whose error is arithmetic only.
Comparisons whose error comes from discretisation are derived, not tabulated:

* :func:`fixed_step_tolerance` — a fixed-step route of order p with step h = interval/steps against the exact
  (oracle) gradient: ``safety * C * h**p`` with a stated C, or better, C estimated per component from two step
  counts (Richardson);
* :func:`backsolve_tolerance` — a back-solve adjoint: the Richardson allowance plus the error propagated from
  its measured state reconstruction error;
* :func:`solver_tolerance` — an adaptive solver run at (rtol, atol) against the oracle (plus its measured
  difference from a rerun at tighter tolerances);
* :func:`high_precision_tolerance` — an mpmath result at N digits (and optional error bound) against another.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Mapping

from ..errors import SymodeError

#: float64 unit roundoff (2**-53) and machine epsilon (2**-52).
FLOAT64_EPS = 2.0 ** -52
#: float32 machine epsilon (2**-23 = 1.19e-7).
FLOAT32_EPS = 2.0 ** -23


class ToleranceError(SymodeError):
    """A tolerance was asked for with invalid inputs (a negative step count, equal Richardson step counts ...)."""


@dataclass(frozen=True)
class Tolerance:
    """(rtol, atol) for one purpose.  ``atol`` may be a mapping component name -> allowance (Richardson)."""

    rtol: float
    atol: float | Mapping[str, float]
    purpose: str
    reason: str

    def scaled(self, scale: float) -> "Tolerance":
        """The same tolerance for quantities of size ``scale``: atol multiplied by ``scale`` (rtol unchanged)."""
        if not (math.isfinite(scale) and scale > 0):
            raise ToleranceError(f"scale must be a finite positive number, got {scale!r}")
        atol = ({k: v * scale for k, v in self.atol.items()} if isinstance(self.atol, Mapping)
                else self.atol * scale)
        return replace(self, atol=atol, reason=self.reason + f" (atol scaled by {scale:g})")

    def atol_max(self) -> float:
        return max(self.atol.values(), default=0.0) if isinstance(self.atol, Mapping) else self.atol

    def describe(self) -> str:
        """One line for reports: the values, the purpose and the reason."""
        if isinstance(self.atol, Mapping):
            atol = f"atol per component (max {self.atol_max():.3g})"
        else:
            atol = f"atol={self.atol:.3g}"
        return f"rtol={self.rtol:.3g}, {atol} [{self.purpose}]: {self.reason}"

    def __str__(self) -> str:
        return self.describe()


def _t(rtol: float, atol: float, purpose: str, reason: str) -> Tolerance:
    return Tolerance(rtol, atol, purpose, reason)


#: Purpose -> tolerance.  The reason of each entry says where the remaining disagreement comes from.
COMPARISON_TOLERANCES: dict[str, Tolerance] = {
    "float64-reordered": _t(
        1e-13, 1e-13, "float64-reordered",
        "two float64 routes computing the same discrete quantity in a different order (discrete adjoint vs "
        "forward sensitivity of the same scheme and steps): same exact arithmetic, only rounding differs; "
        "1e-13 is ~450 ulps, room for the rounding of a few hundred steps of O(1) condition"),
    "compiled-vs-graph": _t(
        1e-14, 1e-14, "compiled-vs-graph",
        "generated C vs the in-memory CasADi graph it was generated from: the same operations in nearly the same "
        "order (gcc without -ffast-math keeps IEEE semantics; only CasADi's code-generation reorderings differ); "
        "1e-14 is ~45 ulps"),
    "dense-vs-graph": _t(
        1e-13, 1e-13, "dense-vs-graph",
        "a dense network's generated step loops (symode.codegen.dense) vs the in-memory CasADi graph of the same "
        "discrete loss: the same exact arithmetic with the matrix products summed in another order, the bias "
        "added first, activation derivatives written out (e.g. 1 - tanh^2 vs CasADi's chain rule) and symode's "
        "own tanh (within 3 ulps of tanh, libm's within 2.1): a few ulps per operation through 100s of steps of "
        "O(1) condition, measured <= 3.0e-15 relative to the largest component (P3, rk38, 100 steps); 1e-13 "
        "(~450 ulps) still catches any wrong or missing term, which moves a gradient by >= 1e-8 relative"),
    "cvodes-vs-oracle": _t(
        1e-9, 1e-9, "cvodes-vs-oracle",
        "CVODES (adaptive BDF/Adams) at rtol = atol = 1e-12 vs the mpmath oracle: the local tolerance controls "
        "each step's error, the global error of the state and of the adjoint quadratures accumulates to "
        "~10-1000x the local tolerance; 1e-9 = 1000 x 1e-12 (see solver_tolerance)"),
    "float32": _t(
        1e-5, 1e-6, "float32",
        "a float32 candidate (eps = 1.19e-7): 1e-5 is ~84 ulps, room for the rounding of a few hundred float32 "
        "operations of O(1) condition; atol 1e-6 (~8 ulps at 1) for components cancelling to ~0.  Never compare "
        "a float32 candidate at a float64 tolerance: its own rounding exceeds it"),
    "float64-floor": _t(
        1e-13, 0.0, "float64-floor",
        "the smallest rtol any float64 candidate can be held to (rounding of a few hundred operations); added "
        "to derived tolerances so that a discretisation estimate of ~0 does not demand exact equality"),
}


def tolerance(purpose: str) -> Tolerance:
    """The table entry for ``purpose``; an unknown purpose is an error naming the known ones."""
    try:
        return COMPARISON_TOLERANCES[purpose]
    except KeyError:
        known = ", ".join(COMPARISON_TOLERANCES)
        raise ToleranceError(f"no tolerance for purpose {purpose!r}; known: {known}") from None


#: The default error constant C of fixed_step_tolerance: the error of a stable order-p scheme is
#: ~ C * h**p * (solution scale) with C of order |d^(p+1) z/dt^(p+1)| / (p+1)!  times the interval; for the
#: smooth O(1) models of symode's test suite C <= 1 (measured bound, not a theorem: pass `constant` or,
#: better, a Richardson pair for anything else).
DEFAULT_STEP_CONSTANT = 1.0


def fixed_step_tolerance(order: int, steps: int, interval: float, safety: float = 10.0, *,
                         constant: float = DEFAULT_STEP_CONSTANT, richardson=None) -> Tolerance:
    """Expected error of a fixed-step route (scheme of order ``order``, ``steps`` steps over ``interval``).

    Without ``richardson``: a priori, ``rtol = atol = safety * constant * h**order`` with ``h = interval/steps``,
    plus the float64 floor (rtol 1e-13).  ``constant`` is stated in the returned reason.

    With ``richardson = ((steps_a, values_a), (steps_b, values_b))`` (values: GradResult, dict, sequence or
    array of the route's results at two other step counts, same order ``order``): the error constant is
    estimated per component from ``v_a - v_b ≈ C (h_a**p - h_b**p)`` (asymptotic regime assumed:
    ``e(h) = C h**p`` plus higher order), so the expected error at ``steps`` is
    ``e_j = |v_a,j - v_b,j| * h**p / |h_a**p - h_b**p|`` and ``atol_j = safety * e_j`` per component name;
    ``rtol`` is the float64 floor.  The step counts should be in the asymptotic regime (e.g. N and 2N with
    the same N as the checked route): an estimate from too coarse steps is not a bound.
    """
    if not (isinstance(order, int) and order >= 1):
        raise ToleranceError(f"order must be a positive integer (the scheme's order), got {order!r}")
    if not (isinstance(steps, int) and steps >= 1):
        raise ToleranceError(f"steps must be a positive integer, got {steps!r}")
    interval = float(interval)
    if not (math.isfinite(interval) and interval > 0):
        raise ToleranceError(f"interval must be t1 - t0 > 0, got {interval!r}")
    if not (math.isfinite(safety) and safety >= 1):
        raise ToleranceError(f"safety must be a finite factor >= 1, got {safety!r}")
    h = interval / steps
    floor = COMPARISON_TOLERANCES["float64-floor"].rtol
    if richardson is None:
        if not (math.isfinite(constant) and constant > 0):
            raise ToleranceError(f"constant must be a finite positive number, got {constant!r}")
        e = safety * constant * h ** order
        return Tolerance(max(e, floor), e, "fixed-step",
                         f"a priori error of an order-{order} scheme: safety {safety:g} x C {constant:g} x "
                         f"h^{order} with h = {interval:g}/{steps} = {h:.3g}, floor rtol {floor:g}")
    from .compare import flatten  # local import: compare imports this module

    try:
        (na, va), (nb, vb) = richardson
    except (TypeError, ValueError):
        raise ToleranceError("richardson must be ((steps_a, values_a), (steps_b, values_b))") from None
    for n in (na, nb):
        if not (isinstance(n, int) and n >= 1):
            raise ToleranceError(f"Richardson step counts must be positive integers, got {n!r}")
    if na == nb:
        raise ToleranceError(f"Richardson needs two different step counts, got {na} twice")
    fa, fb = flatten(va, "richardson values_a"), flatten(vb, "richardson values_b")
    if fa.names != fb.names:
        raise ToleranceError(f"Richardson values differ in structure: {fa.shape} vs {fb.shape}")
    ha, hb = interval / na, interval / nb
    denom = abs(ha ** order - hb ** order)
    atol = {}
    for name, a, b in zip(fa.names, fa.values, fb.values):
        d = abs(float(a) - float(b))
        if not math.isfinite(d):
            raise ToleranceError(f"Richardson values for {name} are not finite ({a}, {b}); the route failed")
        atol[name] = safety * d * h ** order / denom
    worst = max(atol.values(), default=0.0)
    return Tolerance(floor, atol, "fixed-step-richardson",
                     f"error of an order-{order} scheme at h = {interval:g}/{steps} = {h:.3g} estimated per "
                     f"component from step counts {na} and {nb} (e = |v_a - v_b| h^p / |h_a^p - h_b^p|), "
                     f"times safety {safety:g} (largest allowance {worst:.3g}); floor rtol {floor:g}")


#: Safety factor of the back-solve reconstruction allowance (see backsolve_tolerance).
BACKSOLVE_SAFETY = 10.0


def backsolve_tolerance(base: Tolerance, z_error: float, scale: float, safety: float = BACKSOLVE_SAFETY) -> Tolerance:
    """``base`` (the Richardson tolerance of a back-solve adjoint) plus the error its back-solved state causes.

    The back-solve route evaluates the adjoint equations on a state z_back(t) integrated backward from z(t1),
    not on the forward solution; it measures the discrepancy ``z_error`` = max_t |z_back(t) - z(t)| / (1 + |z(t)|)
    over its own grid (max norms; ``stats["backsolve_z_error"]``).  This error is not of the scheme's order p
    (forward and backward truncation errors cancel to leading order for a one-step method, so it falls like
    h^(p+1) on a benign model; on a contracting one it is amplified without bound), so a step-halving estimate of
    order p need not contain it: on ``examples/bench-mlp-8-256.toml`` (rk4, 100 steps; z_error 8e-11, gradient
    scale 60 in θ) one component was off by 1.49e-10 while its 100/200-step difference was 1.15e-11 (terms of
    different orders cancelling in the difference), 20% beyond the Richardson allowance.  To first order the adjoint
    integrand evaluated on a state off by a relative ``z_error`` is off by ``z_error`` relative (for a model
    with O(1) derivatives over the interval), so the gradient by about ``z_error`` times its scale; the
    allowance added to every component is ``safety * z_error * scale`` (``scale``: the largest |component| of
    the route's gradient).  On a strongly contracting model z_error is O(1) or more and the allowance is of the
    size of the gradient: ``symode check`` then says the route cannot be checked (FAIL), never PASS.
    """
    for name, v in (("z_error", z_error), ("scale", scale)):
        if not (isinstance(v, (int, float)) and v >= 0):  # NaN fails too
            raise ToleranceError(f"backsolve {name} must be a number >= 0, got {v!r}")
    if not (math.isfinite(safety) and safety >= 1):
        raise ToleranceError(f"safety must be a finite factor >= 1, got {safety!r}")
    extra = safety * z_error * scale if math.isfinite(z_error) and math.isfinite(scale) else math.inf
    atol = ({k: v + extra for k, v in base.atol.items()} if isinstance(base.atol, Mapping) else base.atol + extra)
    return Tolerance(base.rtol, atol, base.purpose + "+backsolve",
                     base.reason + f"; plus the back-solve's reconstruction error: measured |z_back - z| = "
                     f"{z_error:.3g} relative to 1 + |z| (largest on the grid), times the gradient's scale "
                     f"{scale:.3g}, times safety {safety:g} = {extra:.3g} on every component")


#: Global error of an adaptive solver relative to its local tolerances (see the "cvodes-vs-oracle" entry).
SOLVER_GLOBAL_FACTOR = 1000.0


#: ``symode check`` reruns an adaptive route at tolerances this many times tighter to measure its global error.
SOLVER_REFINEMENT = 100.0
#: Safety factor on that measured error (as for Richardson).
SOLVER_REFINEMENT_SAFETY = 10.0


def solver_tolerance(rtol: float, atol: float, factor: float = SOLVER_GLOBAL_FACTOR, *, refined=None,
                     safety: float = SOLVER_REFINEMENT_SAFETY) -> Tolerance:
    """Tolerance for an adaptive solver run at local tolerances (rtol, atol) against the oracle.

    Adaptive solvers control the local error per step; the global error is not bounded by it and typically
    ends up 10-1000x larger (error propagation over the interval, plus the adjoint's own quadrature).  The
    comparison tolerance is ``factor * (rtol, atol)``, never below the float64 floor.

    That factor is a typical value, not a bound: CVODES at 1e-12 was off by 1.1e-7 on mlp-2-3 (10 observation
    times; its adjoint interpolates a forward solution of few long order-12 Adams steps) and by 5e-9 on
    lotka-volterra.  So with ``refined = (values, values_tight)`` -- the route's results at (rtol, atol) and at
    tolerances :data:`SOLVER_REFINEMENT` times tighter -- the measured difference is added per component:
    ``atol_j = factor * atol + safety * |v_j - v_tight,j|``.  The difference estimates the error of the run at
    (rtol, atol) (measured against the oracle at 1e-12 vs 1e-14: error / difference between 0.98 and 1.4 on
    mlp-2-3, lotka-volterra, oscillator, vanderpol, spiral, bench-p2).  A wrong gradient that does not depend on
    the tolerances (a bug, a wrong adjoint) is not covered by it and still fails.
    """
    for name, v in (("rtol", rtol), ("atol", atol), ("factor", factor), ("safety", safety)):
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
            raise ToleranceError(f"solver {name} must be a finite positive number, got {v!r}")
    floor = COMPARISON_TOLERANCES["float64-floor"].rtol
    reason = (f"adaptive solver at rtol={rtol:g}, atol={atol:g}: global error taken as {factor:g}x the "
              f"local tolerances; floor rtol {floor:g}")
    if refined is None:
        return Tolerance(max(factor * rtol, floor), factor * atol, "adaptive-solver", reason)
    from .compare import flatten  # local import: compare imports this module

    try:
        va, vb = refined
    except (TypeError, ValueError):
        raise ToleranceError("refined must be (values, values_at_tighter_tolerances)") from None
    fa, fb = flatten(va, "refined values"), flatten(vb, "refined values_tight")
    if fa.names != fb.names:
        raise ToleranceError(f"refined values differ in structure: {fa.shape} vs {fb.shape}")
    atol_j = {}
    for name, a, b in zip(fa.names, fa.values, fb.values):
        d = abs(float(a) - float(b))
        atol_j[name] = factor * atol + (safety * d if math.isfinite(d) else math.inf)
    worst = max(atol_j.values(), default=0.0)
    return Tolerance(max(factor * rtol, floor), atol_j, "adaptive-solver+refinement",
                     reason + f"; plus safety {safety:g} x the measured difference from a rerun at "
                     f"{SOLVER_REFINEMENT:g}x tighter tolerances, per component (largest allowance {worst:.3g})")


def high_precision_tolerance(digits: int, error_bound=None, guard_digits: int = 3) -> Tolerance:
    """Tolerance for an mpmath result computed at ``digits`` significant digits (oracle vs oracle / exact).

    ``rtol = 10**-(digits - guard_digits)``: the last ``guard_digits`` digits absorb the oracle's accumulated
    rounding.  If the result carries an ``error_bound`` (absolute), ``atol`` is twice it (both sides may be
    off by the bound); otherwise atol equals rtol (quantities of order one).
    """
    if not (isinstance(digits, int) and guard_digits < digits <= 300):
        # above 300 digits a float rtol would underflow to 0
        raise ToleranceError(f"digits must be an integer in ({guard_digits}, 300], got {digits!r}")
    rtol = 10.0 ** -(digits - guard_digits)
    atol = rtol if error_bound is None else max(2 * float(error_bound), rtol)
    return Tolerance(rtol, atol, "high-precision",
                     f"mpmath at {digits} digits, {guard_digits} guard digits"
                     + ("" if error_bound is None else f", error bound {float(error_bound):.3g} (atol = 2x bound)"))
