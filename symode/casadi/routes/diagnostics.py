"""The checks every float64 result passes, and solver failures as plain messages.

Every result of a fixed-step route is checked, in this order (each raises
:class:`~symode.errors.IntegrationError` with the time):

* linear stability along the computed trajectory (explicit schemes and user tableaux; the built-in implicit
  schemes are A-stable and skip it): at every grid node before the first bad one, the eigenvalues λ of ∂f/∂z
  (one vectorised CasADi evaluation, numpy eigenvalues) and the scheme's stability function
  R(w) = 1 + w bᵀ(I - wA)⁻¹𝟙 at w = hλ.  A decaying mode (Re(hλ) < 0) with |R(hλ)| > 1 is amplified where
  the exact solution damps it; when the product of these amplifications passes :data:`AMPLIFY_LIMIT` the
  model is stiff for the step size, and the error names the time the amplification starts, h·λ, |R(hλ)|, the
  step count that would put h·λ inside the stability region, and the remedies (implicit scheme, more steps,
  cvodes).  Growing modes (Re λ > 0) are the model's own behaviour and are not flagged.
* a trajectory that leaves the float64 range (non-finite or |z| > 1e100): the first such grid time.  When
  NaN appears after moderate values (|z| <= :data:`DOMAIN_MODERATE`, no inf) in a model that uses sqrt, log,
  real powers or division, the solution left the domain of those functions, and the message says so;
  otherwise it is a blow-up (shorten [t0, t1] for a finite-time singularity).
* a non-finite gradient (naming the first non-finite time of the backward solve where there is one).

With implicit schemes a Newton failure of the stage equations (CasADi's fast_newton raises and prints the failing
inputs) becomes an IntegrationError naming the step's start time, the printout captured (:mod:`.capture`).

CVODES failures: :func:`_cvodes_error` translates the return flag (:data:`_CV_FLAGS`) and CVODES's printed
output into a message naming the time and the part of the model that failed.
"""
from __future__ import annotations

import re

import numpy as np
import sympy

from symode.casadi.solvers import NEWTON_DEFAULTS
from symode.errors import IntegrationError
from symode.expr import FUNCTIONS
from symode.model import Model

from .capture import _captured_output
from .plan import _Plan
from .stability import _decay_amplification, _needs_stability_check, _stiffness

#: A state beyond this magnitude counts as blown up (no sensible model state is this large; overflow to inf
#: follows within a few steps anyway, and the threshold lets the error name the time before that).
BLOWUP = 1e100
_IMPLICIT_ADVICE = ("use an implicit scheme (--scheme backward_euler, implicit_midpoint or gauss2) "
                    "or the adaptive CVODES route (--method cvodes)")



def _first_bad(M: np.ndarray) -> int | None:
    """Index of the first column that is non-finite or beyond :data:`BLOWUP`, or None."""
    if M.size == 0:
        return None
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(M) | (np.abs(M) > BLOWUP)
    cols = np.nonzero(bad.any(axis=0))[0]
    return int(cols[0]) if cols.size else None


def _where(plan: _Plan, model: Model) -> str:
    return f"method {plan.route.name!r} on model {model.name!r} ({plan.tableau.name}, {plan.steps} steps)"


#: SymPy function classes whose real domain is not all of ℝ (NaN outside it in float64): the one-argument
#: functions of the table (symode.expr.FUNCTIONS) with a domain test; powers are looked at below.
_DOMAIN_FUNCS = {f.head: f.name for f in FUNCTIONS.values()
                 if f.primitive and f.arity == 1 and f.domain.contains is not None}


def _restricted_functions(model: Model) -> list[str]:
    """The functions with a restricted real domain that the model's right-hand side and running cost use:
    log (and asin, acos, ...), sqrt (x**(1/2)), real powers (x**p, p not an integer) and division (x**-n)."""
    found: set[str] = set()
    for e in [*model.rhs, *([model.running] if model.running is not None else [])]:
        e = sympy.sympify(e)  # already SymPy expressions (the model's own), not user text
        for fn, label in _DOMAIN_FUNCS.items():
            if e.has(fn):
                found.add(label)
        for pw in e.atoms(sympy.Pow):
            x = pw.exp
            if x == sympy.Rational(1, 2):
                found.add("sqrt")
            elif not (x.is_integer is True):
                found.add("real powers")
            elif x.is_negative is True:
                found.add("division")
    order = ["sqrt", "log", "real powers", "division", *(n for n in _DOMAIN_FUNCS.values() if n != "log")]
    return [f for f in order if f in found]


#: the largest |z| on the last good grid point for which a NaN that follows counts as leaving the domain
#: (not as overflow: inf - inf or 0 * inf after a blow-up make NaN too, but only from huge values)
DOMAIN_MODERATE = 1e50


def _check(plan: _Plan, model: Model, out: dict, theta) -> None:
    """Raise IntegrationError for an unstable (stiff), blown-up or domain-leaving trajectory, or a non-finite
    result (see the module docstring)."""
    Z, T = out["Z"], out["T"].ravel()
    g = plan.graphs
    k = _first_bad(Z)
    if _needs_stability_check(plan.tableau):
        upto = Z.shape[1] - 1 if k is None else k
        if upto > 0:
            M = T.size - 1
            P = np.asarray(theta, dtype=float).reshape(g.np, 1)  # the map repeats it for every column
            rho, lam = _decay_amplification(plan, Z[:g.nz, :M], T[:M], np.diff(T), P)
            stiff = _stiffness(plan, T, rho, lam, upto)
            if stiff:
                msg, t_stiff = stiff
                raise IntegrationError(f"{_where(plan, model)}: {msg}.", time=t_stiff)
    if k is not None:
        t_bad = float(T[k])
        zc = Z[:g.nz, k]
        prev = Z[:g.nz, k - 1] if k > 0 else None
        last = (f"; the last good value was z = {np.array2string(prev, precision=4)} at t = {T[k - 1]:.6g}"
                if prev is not None else "")
        funcs = _restricted_functions(model)
        col = Z[:, k]
        # NaN without any growth before it: the stages left the domain of sqrt/log/... within the last step
        if (np.any(np.isnan(col)) and not np.any(np.isinf(col)) and prev is not None
                and np.max(np.abs(Z[:, k - 1])) <= DOMAIN_MODERATE and funcs):
            raise IntegrationError(
                f"{_where(plan, model)}: the solution left the domain of the model's functions near "
                f"t = {t_bad:.6g} (e.g. sqrt or log of a negative value; z = "
                f"{np.array2string(prev, precision=4)} at t = {T[k - 1]:.6g}, then NaN in the step to "
                f"t = {t_bad:.6g}); the model uses {', '.join(funcs)}, whose real domain is restricted.  "
                f"If the exact solution leaves the domain there, the model is undefined beyond it: shorten "
                f"[t0, t1] or change the model; if not (a coarse step overshooting), use more steps",
                time=t_bad)
        msg = (f"{_where(plan, model)}: the forward solution left the float64 range (non-finite or "
               f"|z| > {BLOWUP:g}) near t = {t_bad:.6g}{last}.  ")
        if not np.all(np.isfinite(zc)) and prev is None:
            msg += "The initial state or the parameters are not finite; check z0 and the parameter values."
        else:
            msg += ("If the exact solution blows up there (a finite-time singularity), shorten [t0, t1]; "
                    "otherwise try more steps, " + _IMPLICIT_ADVICE + ".")
        raise IntegrationError(msg, time=t_bad)
    values = np.concatenate([np.ravel(out["L"]), np.ravel(out["g"])])
    if not np.all(np.isfinite(values)):
        B, TB = out["B"], out["TB"].ravel()
        kb = _first_bad(B)
        if kb is not None:
            t_bad = float(TB[kb])
            raise IntegrationError(f"{_where(plan, model)}: the backward (adjoint) solve became non-finite near "
                                   f"t = {t_bad:.6g} although the forward solution stayed finite; try more "
                                   f"steps, {_IMPLICIT_ADVICE}", time=t_bad)
        raise IntegrationError(f"{_where(plan, model)}: the loss or gradient is non-finite although the "
                               f"solution stayed finite on [{float(T[0]):.6g}, {float(T[-1]):.6g}] (a "
                               f"derivative of the model is undefined along it, e.g. sqrt or abs at 0)")



_NEWTON_T_RE = re.compile(r"Function \S+_(fstep|bstep|astep) \(0x[0-9a-f]+\)\s*\n(?:Input 0 \(z\):[^\n]*\n)?"
                          r"Input 1 \(t\): ([-+0-9.eE]+)")
_SOLVE_WORD = {"fstep": "forward", "bstep": "backward (back-solved adjoint)", "astep": "backward (adjoint)"}
_OUTPUTS = ("L", "g", "Z", "T", "B", "TB", "zb0")


def _evaluate(plan: _Plan, model: Model, xv) -> dict:
    """G at one point as numpy arrays.  Implicit schemes: a Newton failure (CasADi raises and prints the
    failing call's inputs) becomes an IntegrationError naming the step's start time, output captured."""
    if not plan.tableau.implicit:
        res = plan.G(xv)
    else:
        with _captured_output() as box:
            try:
                res, err = plan.G(xv), None
            except RuntimeError as exc:
                res, err = None, exc
        if err is not None:
            m = _NEWTON_T_RE.search(box["text"])
            t_fail = float(m.group(2)) if m else None
            solve = _SOLVE_WORD[m.group(1)] if m else "a"
            near = f" in the step starting at t = {t_fail:.6g}" if m else ""
            raise IntegrationError(
                f"{_where(plan, model)}: the Newton iteration for the implicit stages of the {solve} solve did "
                f"not converge{near} (tolerance {NEWTON_DEFAULTS['abstol']:g}, {NEWTON_DEFAULTS['max_iter']} "
                f"iterations): the solution probably blows up or leaves the model's domain there"
                + ("; the back-solved state is unstable on contracting dynamics: use method 'adjoint-stored' or "
                   "'discrete'" if m and m.group(1) == "bstep" else "; try more steps or method 'cvodes'"),
                time=t_fail) from None
    return {k: np.array(res[i], dtype=float) for i, k in enumerate(_OUTPUTS)}



#: CVODES return flags (SUNDIALS cvodes.h) as plain messages: what happened and what to do.  {max_steps} is
#: the step limit; {t_start} the time the failing solve starts at (t0 forward, the last output time backward).
_CV_FLAGS = {
    "CV_TOO_MUCH_WORK": "CVODES took its maximum number of internal steps ({max_steps}) without reaching the "
                        "next output time: the solution may blow up there, or the problem needs more steps "
                        "(--max-num-steps) or a looser tolerance",
    "CV_TOO_MUCH_ACC": "CVODES could not reach the requested accuracy (the tolerances are too small for float64 "
                       "at the solution's scale): loosen abstol/reltol (--abstol, --reltol)",
    "CV_ERR_FAILURE": "the local error test failed repeatedly (or with the smallest step): the solution probably "
                      "blows up or is not smooth there; check the model, or loosen the tolerance",
    "CV_CONV_FAILURE": "the Newton iteration of CVODES failed to converge repeatedly: the right-hand side may be "
                       "discontinuous, undefined (the solution left its domain) or the solution blows up; "
                       "check the model, or loosen the tolerance",
    "CV_LINIT_FAIL": "the linear solver of CVODES could not be initialised (an internal failure, e.g. out of "
                     "memory); retry, or use a fixed-step route",
    "CV_LSETUP_FAIL": "the linear solver setup failed (a singular or non-finite Jacobian ∂f/∂z): the solution "
                      "probably left the model's domain; check the model",
    "CV_LSOLVE_FAIL": "the linear solve failed (a singular or non-finite Jacobian ∂f/∂z): the solution "
                      "probably left the model's domain; check the model",
    "CV_RHSFUNC_FAIL": "the right-hand side failed (non-finite values) and could not recover: the solution "
                       "probably left the model's domain (sqrt or log of a negative value, overflow); check "
                       "the model or shorten [t0, t1]",
    "CV_FIRST_RHSFUNC_ERR": "at t = {t_start:.6g} (the start of this solve) the right-hand side could not be "
                            "evaluated (e.g. sqrt or log of a negative value at the {where_state}): check z0, "
                            "the parameter values and the model's domain",
    "CV_REPTD_RHSFUNC_ERR": "the right-hand side failed (non-finite values) repeatedly: the solution probably "
                            "left the model's domain (log or sqrt of a negative number, overflow); check the "
                            "model or shorten [t0, t1]",
    "CV_UNREC_RHSFUNC_ERR": "the right-hand side failed (non-finite values) and CVODES could not recover by "
                            "reducing the step: the solution probably left the model's domain; check the model",
    "CV_QRHSFUNC_FAIL": "the running cost failed (non-finite values): the solution probably left its domain",
    "CV_FIRST_QRHSFUNC_ERR": "at t = {t_start:.6g} (the start of this solve) the running cost could not be "
                             "evaluated (e.g. sqrt or log of a negative value at the {where_state})",
    "CV_REPTD_QRHSFUNC_ERR": "the running cost failed (non-finite values) repeatedly: the solution probably left "
                             "its domain (log or sqrt of a negative number)",
    "CV_UNREC_QRHSFUNC_ERR": "the running cost failed (non-finite values) and CVODES could not recover: the "
                             "solution probably left its domain",
    "CV_ILL_INPUT": "CVODES rejected its input: a non-finite initial state or parameter, or tolerances out of "
                    "range; check z0, the parameter values and abstol/reltol",
    "CV_BAD_T": "CVODES was asked for the solution at a time outside the interval it has integrated (an "
                "internal failure); report it with the model",
    "CV_TOO_CLOSE": "the output times are too close to t0: make t1 and the observation times differ from t0",
    "CV_MEM_FAIL": "CVODES ran out of memory",
    "CV_NO_ADJ": "the adjoint solve was not initialised (an internal failure); report it with the model",
    "CV_NO_FWD": "the adjoint solve found no forward solution to differentiate (an internal failure)",
    "CV_NO_BCK": "no backward (adjoint) problem was created (an internal failure)",
    "CV_BAD_TB0": "the adjoint solve's start time lies outside the forward solve's interval (an internal "
                  "failure); report it with the model",
    "CV_REIFWD_FAIL": "re-integrating the forward problem between checkpoints failed during the adjoint solve: "
                      "the forward solution is probably ill-behaved there (near a blow-up or the edge of the "
                      "model's domain); shorten [t0, t1] or loosen the tolerance",
    "CV_FWD_FAIL": "the forward re-integration inside the adjoint solve failed: the forward solution is "
                   "probably ill-behaved there; shorten [t0, t1] or loosen the tolerance",
    "CV_GETY_BADT": "the adjoint solve asked for the forward solution outside its interval (an internal "
                    "failure); report it with the model",
}
_FLAG_RE = re.compile(r"\bCV_[A-Z0-9_]+\b")
#: CasADi's own "NaN/Inf detected" warnings name the function that failed: say which part of the model it was
_NONFINITE_RE = re.compile(r"_(cv[fa]):(\w+) failed: (NaN|Inf) detected for output (\w+)")
_NONFINITE_PART = {"daeF": "the right-hand side", "quadF": "the running cost",
                   "jacF": "the Jacobian ∂f/∂z of the right-hand side", "daeB": "the adjoint right-hand side",
                   "quadB": "the adjoint quadrature (∂f/∂θ terms)"}
_TIME_RE = re.compile(r"\bt\s*(?:=|is)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)")


def _cvodes_error(model: Model, exc: Exception, chatter: str, max_steps: int, stage: str,
                  t_start: float) -> IntegrationError:
    """A CVODES failure as an IntegrationError: the return flag translated (:data:`_CV_FLAGS`), the time of
    the failure (from CVODES's own messages, or ``t_start`` for a failure at the first right-hand-side call),
    which part of the model returned NaN/Inf where CasADi says so, and the last lines CVODES printed."""
    text = str(exc)
    m = _FLAG_RE.search(text)
    flag = m.group(0) if m else None
    first_call = flag in ("CV_FIRST_RHSFUNC_ERR", "CV_FIRST_QRHSFUNC_ERR")
    times = _TIME_RE.findall(chatter) or _TIME_RE.findall(text)
    t_fail = t_start if first_call else (float(times[-1]) if times else None)
    where_state = "initial state" if stage == "forward" else "final state z(t1), where the adjoint starts"
    if flag in _CV_FLAGS:
        what = _CV_FLAGS[flag].format(max_steps=max_steps, t_start=t_start, where_state=where_state)
    elif flag:
        what = f"CVODES stopped with return flag {flag} (see the return flags in the SUNDIALS CVODES guide)"
    else:  # not a CVODES flag: CasADi's own message, without its source-file prefix
        last = text.strip().splitlines()[-1] if text.strip() else type(exc).__name__
        what = "CVODES failed: " + re.sub(r"\S*\.(?:cpp|hpp|h):\d+:\s*", "", last)
    bad = _NONFINITE_RE.findall(chatter)
    if bad:
        _, fn, kind, _ = bad[-1]
        part = _NONFINITE_PART.get(fn, "a model function")
        what += f" ({part} returned {kind} there)"
    near = "" if first_call or t_fail is None else f" near t = {t_fail:.6g}"
    lines = [ln for ln in chatter.strip().splitlines() if ln.strip()]
    quoted = ""
    if lines:
        shown = [ln if len(ln) <= 200 else ln[:197] + "..." for ln in lines[-5:]]
        more = f" ({len(lines) - 5} earlier lines omitted)" if len(lines) > 5 else ""
        quoted = f"  CVODES said{more}: " + " | ".join(shown)
    tag = f" [{flag}]" if flag else ""
    return IntegrationError(f"method 'cvodes' on model {model.name!r} ({stage} solve) failed{near}: {what}"
                            f"{tag}.{quoted}", time=t_fail)

