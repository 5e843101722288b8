"""Linear stability of a fixed-step scheme along the computed trajectory: is the model stiff for the step size?

At every grid node the eigenvalues λ of ∂f/∂z (one vectorised CasADi evaluation, numpy eigenvalues) and the
scheme's stability function R(w) = 1 + w bᵀ(I - wA)⁻¹𝟙 at w = hλ; a decaying mode (Re(hλ) < 0) with
|R(hλ)| > 1 is amplified where the exact solution damps it (see :data:`AMPLIFY_LIMIT`).
"""
from __future__ import annotations

import math

import numpy as np

from symode.casadi.schemes import SCHEMES, Tableau

from .plan import _BUILD_LOCK, _Plan

def _stability_polynomial(tab: Tableau) -> np.ndarray:
    """Ascending coefficients of an explicit scheme's stability function, a polynomial of degree <= s:

        R(w) = 1 + w bᵀ(I - wA)⁻¹𝟙 = 1 + Σ_{k=0}^{s-1} (bᵀA^k𝟙) w^{k+1}

    (A strictly lower triangular is nilpotent, so the Neumann series of (I - wA)⁻¹ ends after s terms).
    """
    if tab.implicit:
        raise ValueError(f"{tab.name} is implicit: its stability function is rational, not a polynomial")
    A, b, _ = tab.as_floats()
    A, b = np.array(A, dtype=float), np.array(b, dtype=float)
    coef, v = [1.0], np.ones(len(b))
    for _ in range(len(b)):
        coef.append(float(b @ v))
        v = A @ v
    return np.array(coef)


def _stability(tab: Tableau, w) -> np.ndarray:
    """R(w) = 1 + w bᵀ (I - wA)⁻¹ 𝟙, the scheme's stability function (one step of y' = λy multiplies y by
    R(hλ), w = hλ), elementwise for an array of complex w.  Explicit schemes: the polynomial
    (:func:`_stability_polynomial`); implicit ones: one s x s solve per w (inf where I - wA is singular)."""
    w = np.asarray(w, dtype=complex)
    with np.errstate(over="ignore", invalid="ignore"):
        if not tab.implicit:
            return np.polynomial.polynomial.polyval(w, _stability_polynomial(tab))
        A, b, _ = tab.as_floats()
        A, b = np.array(A, dtype=complex), np.array(b, dtype=complex)
        s, flat = len(b), w.reshape(-1)
        M = np.eye(s, dtype=complex)[None] - flat[:, None, None] * A[None]
        out = np.full(flat.shape, complex(math.inf))
        ok = np.abs(np.linalg.det(M)) > 1e-300
        if ok.any():
            k = np.linalg.solve(M[ok], np.ones((int(ok.sum()), s, 1), dtype=complex))[..., 0]
            out[ok] = 1 + flat[ok] * (k @ b)
        return out.reshape(w.shape)


#: The built-in implicit schemes are A-stable (|R(w)| <= 1 for every Re w <= 0: R is 1/(1 - w) for
#: backward Euler, (1 + w/2)/(1 - w/2) for the implicit midpoint rule and the (2,2) Padé approximant of e^w
#: for gauss2), so no decaying mode can be amplified by them and the check below is skipped for them.
A_STABLE = frozenset({"backward_euler", "implicit_midpoint", "gauss2"})
#: A decaying mode (Re(hλ) < 0) that the scheme has multiplied by more than this factor in total is no longer
#: approximated at all: the exact solution shrinks it, so the numerical mode then differs from the exact one
#: by more than the mode's own initial size.  The factor is the product over the steps so far of the largest
#: |R(h_j λ)| > 1 among the decaying eigenvalues λ of ∂f/∂z at the step's start (a bound on the spurious
#: growth).  A product, not a per-step slack: forward Euler amplifies lightly damped oscillatory modes at
#: every step size (|1 + iy| > 1), by a factor tending to 1 as h -> 0 (pendulum, 50 steps: 1.0012 per step,
#: 1.02 in total, an honest O(h) error); a stiff mode is amplified by orders of magnitude in one step
#: (rk4 at hλ = -10: 291).  Measured on the built-in models (every explicit scheme, 4..100 steps): rk4, rk38
#: and dopri5 never amplify a decaying mode there; the largest totals below the limit are Euler's on the
#: oscillator (1.82 at 4 steps) and the pendulum (1.69 at 8 steps); refused are Euler on the pendulum at 4 and
#: 6 steps (2.77, 2.02: hω ~ 1) and Euler (<= 50 steps) and the explicit midpoint rule (<= 10) on spiral.
AMPLIFY_LIMIT = 2.0


def _decay_amplification(plan: _Plan, Z: np.ndarray, T: np.ndarray, H: np.ndarray, P: np.ndarray):
    """For the steps starting at the columns of Z (states nz x K, times T (K,), step sizes H (K,), parameters
    P (np x K)): the largest |R(hλ)| over the eigenvalues λ of ∂f/∂z(z, t) that decay in the direction of
    integration (Re(hλ) < 0, beyond rounding), 1 where there is none or the Jacobian is not finite; and that
    eigenvalue (nan where none).  One vectorised Jacobian evaluation (a map of ``graphs.jac``, built once per
    column count; P may be np x 1, repeated for every column) and one batched eigenvalue computation."""
    g = plan.graphs
    nz, K = g.nz, Z.shape[1]
    jm = plan.jmaps.get(K)
    if jm is None:
        with _BUILD_LOCK:
            jm = plan.jmaps.setdefault(K, g.jac.map(K))
    J = np.array(jm(Z, T.reshape(1, K), P), dtype=float).reshape(nz, K, nz).transpose(1, 0, 2)
    finite = np.all(np.isfinite(J), axis=(1, 2)) & np.isfinite(H)
    J[~finite] = 0.0
    with np.errstate(over="ignore", invalid="ignore"):  # huge (finite) states just before a blow-up
        lam = np.linalg.eigvals(J)  # (K, nz)
        w = H[:, None] * lam
        # eigenvalues carry an error of a few ε‖J‖: a mode with Re(hλ) within that of 0 is neutral
        noise = 64 * np.finfo(float).eps * np.abs(H) * np.linalg.norm(J, axis=(1, 2))
        decaying = (w.real < -noise[:, None]) & finite[:, None] & np.isfinite(w)
        wd = np.where(decaying, w, 0)
        if plan.tableau.implicit:
            Rw = _stability(plan.tableau, wd)
        else:
            if plan.rpoly is None:
                plan.rpoly = _stability_polynomial(plan.tableau)
            Rw = np.polynomial.polynomial.polyval(wd, plan.rpoly)
        R = np.where(decaying, np.abs(Rw), 0.0)
    R = np.nan_to_num(R, nan=math.inf)
    worst = np.argmax(R, axis=1)
    rows = np.arange(K)
    rho = np.maximum(R[rows, worst], 1.0)
    lam_w = np.where(R[rows, worst] > 1.0, lam[rows, worst], complex(math.nan, math.nan))
    return rho, lam_w


def _stable_fraction(tab: Tableau, w: complex) -> float:
    """The largest s in (0, 1] with |R(s w)| <= 1 found by bisection from s -> 0 (a decaying w: |R(s w)| ≈
    1 + s Re w < 1 for small s, for every consistent scheme)."""
    lo, hi = 0.0, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if abs(complex(_stability(tab, mid * w))) <= 1.0:
            lo = mid
        else:
            hi = mid
    return lo


def _stiffness(plan: _Plan, T: np.ndarray, rho: np.ndarray, lam: np.ndarray, upto: int):
    """(message, time) for the first step before ``upto`` at which the total amplification of decaying modes
    exceeds :data:`AMPLIFY_LIMIT`, or None.  ``rho``/``lam`` from :func:`_decay_amplification`, one entry per
    step (step j from T[j] to T[j+1])."""
    n = min(upto, rho.size)
    if n == 0:
        return None
    with np.errstate(divide="ignore"):
        total = np.cumsum(np.log(rho[:n]))
    over = np.nonzero(total > math.log(AMPLIFY_LIMIT))[0]
    if over.size == 0:
        return None
    j = int(over[0])
    # the run of amplifying steps that ends at j: where it starts (the time named) and its worst step
    start = j
    while start > 0 and rho[start - 1] > 1.0:
        start -= 1
    run = rho[start:j + 1]
    k = start + int(np.argmax(run >= run.max() * (1 - 1e-9)))  # the earliest worst step (rounding aside)
    h = float(T[k + 1] - T[k])
    lam_k, w = complex(lam[k]), complex(h * lam[k])
    R = float(rho[k])
    frac = _stable_fraction(plan.tableau, w)
    need = f"at least about {math.ceil(plan.steps / frac)} steps" if frac > 0 else "many more steps"
    where = (f"at t = {T[k]:.6g}" if k == start == j else
             f"from t = {T[start]:.6g} on (by t = {T[j + 1]:.6g} by a factor > {AMPLIFY_LIMIT:g}); the largest "
             f"amplification is at t = {T[k]:.6g}")
    msg = (f"the model is stiff for this step size: the scheme amplifies a mode that the exact solution damps "
           f"{where}: there ∂f/∂z has the decaying eigenvalue λ = {_fmt_complex(lam_k)}, and h·λ = {_fmt_complex(w)} "
           f"(h = {h:.4g}) lies outside the stability region of {plan.tableau.name} (|R(hλ)| = {R:.3g} > 1): "
           f"each step multiplies this mode by {R:.3g} where the exact solution shrinks it by "
           f"e^(h·Re λ) = {math.exp(w.real):.3g}.  "
           f"The result would be meaningless; use an implicit scheme (--scheme backward_euler, "
           f"implicit_midpoint or gauss2: A-stable, they damp every decaying mode at any step size), "
           f"{need} (--steps), or the adaptive CVODES route (--method cvodes)")
    return msg, float(T[start])


def _fmt_complex(v: complex) -> str:
    return f"{v.real:.4g}" if abs(v.imag) <= 1e-12 * abs(v) else f"{v.real:.4g}{v.imag:+.4g}i"



def _needs_stability_check(tab: Tableau) -> bool:
    """Every explicit scheme and every implicit one that is not a built-in A-stable scheme (user tableaux)."""
    if tab.implicit and tab.name in A_STABLE:
        return tab != SCHEMES[tab.name]
    return True
