"""The oracle: loss and gradients of a model to a requested number of digits, with an honest error bound.

The work of two gradient routes (declared in :mod:`symode.oracle.methods`):

``oracle``  Taylor-method integration (:mod:`symode.oracle.taylor`) of the SymPy-derived systems of
            :func:`symode.symbolic.derive.derive`, by two independent routes:

  (a) forward sensitivity.  Integrate ``forward_system`` (z, S = ∂z/∂θ, W = ∂z/∂z0 and, with a running cost,
      q, Q, Qz0) from t0 to t1 with output at every observation time t_i and at t1; then
          L      = Σ_i ℓ_i(z(t_i)) + ℓ(z(t1)) + q(t1)
          dL/dθ  = Σ_i (∂ℓ_i/∂z S(t_i) + ∂ℓ_i/∂θ) + ∂ℓ/∂z S(t1) + ∂ℓ/∂θ + Q(t1)
          dL/dz0 = Σ_i ∂ℓ_i/∂z W(t_i) + ∂ℓ/∂z W(t1) + Qz0(t1)
          dL/dt0 = -dL/dz0 · f(z0, t0) - r(z0, t0)
          dL/dt1 = ∂ℓ/∂z · f(z(t1), t1) + r(z(t1), t1)        (None where an observation lies at t1)
  (b) continuous adjoint.  Integrate z (and q' = r) forward, storing z at the observation times and at
      ADJOINT_PIECES - 1 equally spaced checkpoints; then integrate ``backward_system`` (z, λ, μ) backward piece
      by piece from t1 to t0, with λ(t1) = (∂ℓ/∂z)ᵀ, the jumps λ += (∂ℓ_i/∂z)ᵀ(z(t_i)) going backward through
      each t_i, and z reset from the stored forward value at the start of every piece.  Back-solving z through
      a contracting system loses digits (docs/design.md): a piece whose back-solved z misses the stored forward
      z(lo) by more than 10^-(working digits - ROUTE_GUARD_DIGITS/2), or that runs out of its step budget, is halved
      (z at the midpoint from a forward solve), up to MAX_ADJOINT_SPLITS times; then
          dL/dθ  = μ(t0) + (∂z0/∂θ)ᵀ λ(t0) + ∂ℓ/∂θ + Σ_i ∂ℓ_i/∂θ
          dL/dz0 = λ(t0),   dL/dt0 = -λ(t0)ᵀ f(z0, t0) - r(z0, t0),   dL/dt1 as in (a).
      Signs follow the conventions of :mod:`symode.symbolic.derive`.  Both routes are in :mod:`symode.oracle.routes`.

  Parameters enter the Taylor systems as numeric parameters whose exact SymPy values are rounded once at
  working precision (never through a binary double).

  Error bound.  Both routes run at ``digits + ROUTE_GUARD_DIGITS`` digits; the forward route runs again at
  ``digits + ROUTE_GUARD_DIGITS + CHECK_EXTRA_DIGITS`` digits and its values are the ones reported.  With
      rel(a, b) = |a - b| / max(|a|, |b|, VALUE_FLOOR)
  over every reported value (loss, dL/dθ, dL/dz0, dL/dt0, dL/dt1, z(t1)), the estimate is
      e = max(rel(forward, adjoint), rel(forward, forward at higher precision))
  and ``error_bound`` = the power of ten at or above 10·e, but at least 10^-(digits-1) (the rounding of a
  value printed with ``digits`` significant digits is at most half a unit of its last digit, < 10^-(digits-1)
  relative).  Meaning: every reported value v satisfies |v - v*| <= error_bound · max(|v*|, VALUE_FLOOR) where
  v* is the exact value; values smaller in magnitude than VALUE_FLOOR are thus bounded absolutely.
  If e exceeds 10^-(digits-2) the routes disagree beyond the requested digits: :class:`IntegrationError`
  (a disagreement is a failure to report, never a number to return).

``exact``   The closed form of the model (``derive(model).closed_form``) evaluated at ``digits`` + 15 digits;
            :class:`~symode.errors.NoClosedFormError` where no closed form exists.  ``error_bound`` is
            10^-(digits-1), the rounding of the printed values.

Progress: a solve running longer than :data:`PROGRESS_DELAY_S` prints one line at most every
:data:`PROGRESS_INTERVAL_S` seconds to stderr (model, route, digits, fraction done) when stderr is a terminal
(or ``SYMODE_PROGRESS=1`` forces it); nothing for fast solves, nothing when stderr is captured (a pipeline's
stderr then holds only the one-line error, if any), nothing at all with ``quiet=True`` or ``SYMODE_QUIET=1``.
"""
from __future__ import annotations

import functools
import os
import sys
import threading
import time as _time

import mpmath

from ..errors import IntegrationError, NoClosedFormError, SpecError
from ..model import Model
from ..result import GradResult
from ..symbolic.derive import derive
from . import routes

__all__ = ["oracle_gradient", "exact_gradient", "oracle_routes",
           "ROUTE_GUARD_DIGITS", "GUARD_DIGITS", "CHECK_EXTRA_DIGITS", "VALUE_FLOOR_DIGITS", "PROGRESS_DELAY_S",
           "PROGRESS_INTERVAL_S"]

#: Digits the routes integrate to beyond the requested ``digits`` (the integrator's accuracy is absolute
#: relative to max(1, |y|); the guard keeps values down to VALUE_FLOOR at full relative accuracy).  Not the
#: integrator's own ARITHMETIC_GUARD_DIGITS (symode.oracle.taylor), the digits its arithmetic carries beyond
#: what it is asked for.
ROUTE_GUARD_DIGITS = 10
#: The same number under its earlier name.
GUARD_DIGITS = ROUTE_GUARD_DIGITS
#: Extra digits of the repeated forward run that checks the precision (its values are the ones reported).
CHECK_EXTRA_DIGITS = 15
#: Values smaller in magnitude than 10^-VALUE_FLOOR_DIGITS are bounded absolutely (see the module docstring).
VALUE_FLOOR_DIGITS = 8
VALUE_FLOOR = mpmath.mpf(10) ** -VALUE_FLOOR_DIGITS
#: Safety factor between the measured difference and the reported bound.
BOUND_SAFETY = 10
#: Routes disagreeing by more than 10^-(digits - DISAGREE_SLACK_DIGITS) (relative) raise IntegrationError.
DISAGREE_SLACK_DIGITS = 2
#: Number of equal pieces the adjoint's backward solve is cut into (z is reset from the stored forward
#: solution at each piece start); observation times cut it further.
ADJOINT_PIECES = 4
#: Most halvings of one backward piece when back-solving z misses the stored forward solution (a contracting
#: system); 2^12 sub-pieces per piece is far beyond any model the oracle handles in reasonable time.
MAX_ADJOINT_SPLITS = 12
#: Seconds a computation runs silently before progress lines start, and the least gap between two lines.
PROGRESS_DELAY_S = 1.0
PROGRESS_INTERVAL_S = 0.5
#: Most digits accepted (the cost grows about like digits^3: logistic takes ~1.4 s at 100 digits).
MAX_DIGITS = 1000


def _check_digits(digits) -> int:
    if isinstance(digits, bool) or not isinstance(digits, int) or not 5 <= digits <= MAX_DIGITS:
        raise SpecError(f"digits={digits!r}: give an integer from 5 to {MAX_DIGITS}")
    return digits


def _quiet_env() -> bool:
    return os.environ.get("SYMODE_QUIET", "").strip() not in ("", "0")


def _progress_wanted(stream) -> bool:
    """Progress goes to terminals (or wherever SYMODE_PROGRESS=1 says); never into captured stderr by default."""
    if os.environ.get("SYMODE_PROGRESS", "").strip() not in ("", "0"):
        return True
    if stream is not None:  # an explicit stream was asked for
        return True
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


class _Progress:
    """Rate-limited progress lines on stderr for one oracle computation."""

    def __init__(self, model_name: str, quiet: bool | None = None, stream=None):
        self.model = model_name
        self.quiet = (_quiet_env() or not _progress_wanted(stream)) if quiet is None else quiet
        self.stream = stream
        self.start = _time.monotonic()
        self.last = 0.0

    def callback(self, route: str, digits: int, base: float = 0.0, width: float = 1.0):
        if self.quiet:
            return None

        def cb(fraction: float):
            now = _time.monotonic()
            if now - self.start < PROGRESS_DELAY_S or now - self.last < PROGRESS_INTERVAL_S:
                return
            self.last = now
            done = min(1.0, max(0.0, base + width * fraction))
            print(f"symode: oracle {self.model}: {route} route at {digits} digits, {100 * done:.0f}% "
                  f"({now - self.start:.0f} s)", file=self.stream or sys.stderr, flush=True)
        return cb


def _forward_route(model: Model, work_digits: int, progress: _Progress, label: str = "forward") -> dict:
    """Route (a), forward sensitivities (:func:`symode.oracle.routes.forward_route`)."""
    return routes.forward_route(model, work_digits, progress, label)


def _adjoint_route(model: Model, work_digits: int, progress: _Progress, label: str = "adjoint") -> dict:
    """Route (b), the continuous adjoint (:func:`symode.oracle.routes.adjoint_route`) with this module's
    ADJOINT_PIECES and MAX_ADJOINT_SPLITS; a back-solved z must meet the stored forward z to
    10^-(work_digits - ROUTE_GUARD_DIGITS/2)."""
    return routes.adjoint_route(model, work_digits, progress, label, pieces=ADJOINT_PIECES,
                                max_splits=MAX_ADJOINT_SPLITS,
                                z_tol=mpmath.mpf(10) ** -(work_digits - ROUTE_GUARD_DIGITS // 2))


def _flat(r: dict) -> list[tuple[str, mpmath.mpf]]:
    out = [("loss", r["loss"])]
    out += [(f"grad[{i}]", v) for i, v in enumerate(r["grad"])]
    out += [(f"grad_z0[{i}]", v) for i, v in enumerate(r["grad_z0"])]
    if r["grad_t0"] is not None:
        out.append(("grad_t0", r["grad_t0"]))
    if r["grad_t1"] is not None:
        out.append(("grad_t1", r["grad_t1"]))
    out += [(f"z1[{i}]", v) for i, v in enumerate(r["z1"])]
    return out


def _max_rel(a: dict, b: dict, names: dict) -> tuple[mpmath.mpf, str]:
    """max over values of |a - b| / max(|a|, |b|, VALUE_FLOOR), and the name of the worst value."""
    worst, where = mpmath.mpf(0), ""
    for (k, x), (_, y) in zip(_flat(a), _flat(b)):
        r = abs(x - y) / max(abs(x), abs(y), VALUE_FLOOR)
        if r > worst or not where:
            worst, where = r, names.get(k, k)
    return worst, where


def _pretty_names(model: Model) -> dict:
    names = {f"grad[{j}]": f"dL/d{p}" for j, p in enumerate(model.param_names)}
    names.update({f"grad_z0[{i}]": f"dL/dz0[{i}]" for i in range(model.nz)})
    names.update({"grad_t0": "dL/dt0", "grad_t1": "dL/dt1"})
    return names


def _power_of_ten_at_least(x: mpmath.mpf) -> int:
    """The smallest integer n with 10^n >= x (x > 0)."""
    n = int(mpmath.floor(mpmath.log10(x)))
    while mpmath.mpf(10) ** n < x:
        n += 1
    while mpmath.mpf(10) ** (n - 1) >= x:
        n -= 1
    return n


def oracle_routes(model: Model, work_digits: int, *, quiet: bool | None = None) -> dict:
    """Both routes at ``work_digits`` integration digits: {"forward": {...}, "adjoint": {...}} (mpf values).

    For tests and diagnostics; :func:`oracle_gradient` is the checked, bounded result.
    """
    progress = _Progress(model.name, quiet)
    with mpmath.workdps(work_digits + 10):
        return {"forward": _forward_route(model, work_digits, progress),
                "adjoint": _adjoint_route(model, work_digits, progress)}


#: mpmath's working precision is one process-wide setting (``mpmath.mp``) that ``workdps`` changes and restores:
#: two threads computing at different precisions would change it under each other (the adjoint route then
#: "misses the forward solution" and fails, or a value is rounded to the other thread's digits).  The
#: high-precision routes therefore run one at a time in a process; float64 routes are not held up.
PRECISION_LOCK = threading.RLock()


def _one_at_a_time(fn):
    @functools.wraps(fn)
    def held(*args, **kwargs):
        with PRECISION_LOCK:
            return fn(*args, **kwargs)
    return held


@_one_at_a_time
def oracle_gradient(model: Model, digits: int = 30, *, quiet: bool | None = None) -> GradResult:
    """Loss and gradients by the oracle (see the module docstring), every value within ``error_bound``."""
    digits = _check_digits(digits)
    if not isinstance(model, Model):
        raise SpecError(f"oracle: expected a symode Model, got {type(model).__name__}")
    started = _time.monotonic()
    progress = _Progress(model.name, quiet)
    if model.structure is not None:  # a network: the matrix-form routes (symode.oracle.structured_engine)
        from .structured_engine import structured_oracle
        return structured_oracle(model, digits, progress, started)
    lo = digits + ROUTE_GUARD_DIGITS
    hi = lo + CHECK_EXTRA_DIGITS
    with mpmath.workdps(hi + 10):
        fwd = _forward_route(model, lo, progress, "forward")
        adj = _adjoint_route(model, lo, progress, "adjoint")
        ref = _forward_route(model, hi, progress, "forward (check)")
        names = _pretty_names(model)
        e_route, w_route = _max_rel(fwd, adj, names)
        e_prec, w_prec = _max_rel(fwd, ref, names)
        limit = mpmath.mpf(10) ** -(digits - DISAGREE_SLACK_DIGITS)
        if e_route > limit:
            raise IntegrationError(
                f"oracle on model {model.name!r}: the forward-sensitivity and adjoint routes disagree on {w_route} "
                f"by {mpmath.nstr(e_route, 3)} (relative) at {lo} working digits, more than the {digits} digits "
                f"requested allow; the solution may be too sensitive (chaotic or stiff) for this interval")
        if e_prec > limit:
            raise IntegrationError(
                f"oracle on model {model.name!r}: raising the working precision from {lo} to {hi} digits changed "
                f"{w_prec} by {mpmath.nstr(e_prec, 3)} (relative), more than the {digits} digits requested allow")
        est = max(e_route, e_prec) * BOUND_SAFETY
        n = -(digits - 1)
        if est > 0:
            n = max(n, _power_of_ten_at_least(est))
        bound = f"1e{n}"
        result = GradResult(
            model=model.name, method="oracle", loss=+ref["loss"],
            grad={p: +v for p, v in zip(model.param_names, ref["grad"])},
            grad_z0=[+v for v in ref["grad_z0"]], grad_t0=None if ref["grad_t0"] is None else +ref["grad_t0"],
            grad_t1=None if ref["grad_t1"] is None else +ref["grad_t1"],
            digits=digits, error_bound=bound, z1=[+v for v in ref["z1"]],
            stats={"working_digits": lo, "check_digits": hi,
                   "route_difference": mpmath.nstr(e_route, 2) if e_route else "0",
                   "precision_difference": mpmath.nstr(e_prec, 2) if e_prec else "0",
                   "adjoint_splits": adj["splits"], "seconds": round(_time.monotonic() - started, 3)})
    return result.check_finite()


@_one_at_a_time
def exact_gradient(model: Model, digits: int = 30) -> GradResult:
    """Loss and gradients from the closed form; :class:`NoClosedFormError` (with the reason) where none exists."""
    digits = _check_digits(digits)
    cf = derive(model).closed_form
    if not cf:
        raise NoClosedFormError(f"model {model.name!r} has no closed form ({cf.reason}); use --method oracle")
    v = cf.evaluate(model, digits)
    result = GradResult(model=model.name, method="exact", loss=v["loss"],
                        grad=dict(zip(model.param_names, v["grad"])), grad_z0=list(v["grad_z0"]),
                        grad_t0=v["grad_t0"], grad_t1=v["grad_t1"], digits=digits, error_bound=v["error_bound"],
                        z1=list(v["z1"]))
    if v["note"]:
        result.stats["closed_form"] = v["note"]
    return result.check_finite()
