"""Fixed-step Runge-Kutta solvers as CasADi graphs.

Two layers, following docs/design.md ("SX inside one step, MX across steps"):

* :func:`step_function` builds one step of a tableau (see :mod:`symode.casadi.schemes`) as a CasADi
  ``Function step(z[nz], t, h, p[np]) -> z_next[nz]``:

      K_i    = f(z + h * sum_j A_ij K_j,  t + c_i h,  p)
      z_next = z + h * sum_i b_i K_i

  Explicit schemes are one SX expression.  Implicit schemes solve the stage equations
  ``K_i - f(z + h sum_j A_ij K_j, t + c_i h, p) = 0`` for all K at once with
  ``casadi.rootfinder(..., 'fast_newton', ...)`` (the 'newton' plugin cannot be code-generated), starting
  from the explicit Euler predictor K_i = f(z, t, p).  Derivatives of the step go through the implicit
  function theorem (CasADi's rootfinder sensitivities), i.e. they are derivatives of the exact solution of
  the stage equations, not of the truncated Newton iteration.

* :func:`fixed_step_solve` repeats the step with ``Function.fold`` in MX (a loop, not an unrolled graph)
  and returns ``solve(z0[nz], p[np], t0, t1) -> Z[nz x n_out]``.

Time grid
---------
The number of steps N is fixed when the graph is built; t0 and t1 are symbolic inputs, so the graph can be
differentiated with respect to both.  Output times are given as exact fractions s_0 < s_1 < ... < s_m of
the interval, 0 <= s_k <= 1:

    tau_k = t0 + s_k (t1 - t0)

(so moving t1 moves every output time proportionally; to use absolute observation times, pass
s_k = (tau_k - t0)/(t1 - t0) at the nominal t0, t1).  The N steps are distributed over the sub-intervals
[s_{k-1}, s_k] (s_{-1} = 0) in proportion to their lengths by largest remainders, with at least one step
in each sub-interval of positive length (:func:`allocate_steps`); each sub-interval has a uniform grid:
step j of sub-interval k starts at t0 + (t1 - t0)(a + j w) with h_k = (t1 - t0) w, where a and w are the
doubles nearest to s_{k-1} and L_k / n_k, L_k = s_k - s_{k-1} (the step index j is carried exactly).
An output at s = 0 is z0.
t1 < t0 integrates backward in time (negative h).

The graphs return inf/NaN silently on blow-up: callers must check every result for finiteness.  An implicit
stage whose ``fast_newton`` iteration does not converge within ``max_iter`` makes the evaluation fail with
CasADi's "rootfinder process failed" (measured with CasADi 3.8.2); :mod:`symode.casadi.routes` turns that
into an IntegrationError naming the step's start time.
"""
from __future__ import annotations

import re
from fractions import Fraction
from typing import Sequence

import casadi

from symode.casadi.schemes import get_scheme
from symode.casadi.translate import nearest_double
from symode.errors import SpecError

__all__ = ["step_function", "fixed_step_solve", "allocate_steps", "NEWTON_DEFAULTS"]

#: Newton options for implicit stages.  fast_newton stops when ||residual||_inf < abstol or
#: ||Newton step||_inf < abstolStep.  Stages are scaled by the predictor's size (see step_function), so
#: both are relative: 1e-12 is a few thousand rounding errors, and Newton's quadratic convergence makes the
#: accepted iterate accurate to rounding.  50 iterations are only reached when it does not converge at all.
NEWTON_DEFAULTS = {"abstol": 1e-12, "abstolStep": 1e-12, "max_iter": 50}
#: Smallest stage scale: only guards the division when every predictor is exactly 0 (then K = 0 is the root).
_SIGMA_FLOOR = 1e-300

_NAME = re.compile(r"[A-Za-z](?:_?[A-Za-z0-9])*\Z")


def _check_name(name: str) -> str:
    # CasADi writes Function names into C unescaped (docs/design.md): only plain identifiers pass, in CasADi's
    # own rule (letter first, no double or trailing underscore, not a reserved word)
    if (not isinstance(name, str) or len(name) > 48 or not _NAME.fullmatch(name)
            or name in ("null", "jac", "hess")):
        raise SpecError(f"Function name {name!r} is not a plain identifier (a letter, then letters, digits "
                        "and single underscores, not ending in '_', at most 48 characters, not null/jac/hess)")
    return name


def _check_rhs(f: casadi.Function, nz: int, np_: int) -> None:
    if not isinstance(f, casadi.Function):
        raise SpecError(f"the right-hand side must be a casadi.Function (z, t, p) -> dz, "
                        f"not {type(f).__name__}")
    if isinstance(nz, bool) or not isinstance(nz, int) or nz < 1:
        raise SpecError(f"nz must be a positive integer, got {nz!r}")
    if isinstance(np_, bool) or not isinstance(np_, int) or np_ < 0:
        raise SpecError(f"np_ must be a non-negative integer, got {np_!r}")
    expected_in = [(nz, 1), (1, 1), (np_, 1)]
    got_in = [f.size_in(i) for i in range(f.n_in())]
    if f.n_in() != 3 or any(tuple(g) != e and not (e[0] == 0 and g[0] * g[1] == 0)
                            for g, e in zip(got_in, expected_in)):
        raise SpecError(f"the right-hand side Function must take (z[{nz}], t[1], p[{np_}]), "
                        f"it takes inputs of shapes {got_in}")
    if f.n_out() != 1 or tuple(f.size_out(0)) != (nz, 1):
        raise SpecError(f"the right-hand side Function must return one output dz[{nz}], it returns "
                        f"shapes {[f.size_out(i) for i in range(f.n_out())]}")


def _symbols(kind, nz, np_):
    return kind.sym("z", nz), kind.sym("t"), kind.sym("h"), kind.sym("p", np_)


def _stage_input(z, h, row, K):
    """z + h * sum_j a_ij K_j, skipping exact zeros."""
    terms = [a * K[j] for j, a in enumerate(row) if a != 0.0 and j < len(K)]
    if not terms:
        return z
    incr = terms[0]
    for term in terms[1:]:
        incr = incr + term
    return z + h * incr


def _weighted_sum(weights, K):
    terms = [w * k for w, k in zip(weights, K) if w != 0.0]
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total


#: Largest SX expansion of an MX right-hand side that a step is still built in SX for.  SX is faster per
#: evaluation, but expands a matrix product into one instruction per weight: a D = 8, H = 64 network's f is 18 MX
#: instructions and 3,224 SX ones, and its step body in C grew with every weight.  Beyond this the step stays MX
#: (matrix products as loops; generated C independent of the widths).
SX_EXPANSION_LIMIT = 1000


def _kind_for(f):
    # SX inside one step when f can be evaluated on SX (SX Functions, and MX Functions made only of
    # SX-evaluable nodes) and its expansion stays small (SX_EXPANSION_LIMIT); MX otherwise
    if f.is_a("SXFunction"):
        return casadi.SX
    try:
        expanded = f.expand()
    except RuntimeError:
        return casadi.MX
    return casadi.SX if expanded.n_instructions() <= SX_EXPANSION_LIMIT else casadi.MX


def step_function(f: casadi.Function, tableau, nz: int, np_: int, *, name: str = "rk_step",
                  newton: dict | None = None, kind=None) -> casadi.Function:
    """One step of ``tableau`` (a :class:`Tableau` or scheme name) for dz/dt = f(z, t, p).

    ``f`` is a ``casadi.Function (z[nz], t[1], p[np]) -> (dz[nz])``.  Returns
    ``Function name(z[nz], t, h, p[np]) -> (z_next[nz])``; see the module docstring for the equations.
    ``newton`` overrides :data:`NEWTON_DEFAULTS` for implicit schemes.  ``kind`` (``casadi.MX``) keeps an
    explicit step in MX with ``f`` inlined (default: SX whenever ``f`` can be evaluated on SX, which expands an
    MX Function's matrix products into scalar operations).
    """
    tab = get_scheme(tableau)
    _check_rhs(f, nz, np_)
    _check_name(name)
    options = dict(NEWTON_DEFAULTS)
    if newton:
        unknown = set(newton) - set(NEWTON_DEFAULTS)
        if unknown:
            raise SpecError(f"unknown Newton options {sorted(unknown)}; known: {sorted(NEWTON_DEFAULTS)}")
        options.update(newton)
    A, b, c = tab.as_floats()
    s = tab.stages
    if not tab.implicit:
        # kind=MX given: f's graph is inlined into the step (its matrix operations stay matrix operations and
        # the step's graph shows them, e.g. to symode.codegen.sweep); default: SX where f evaluates on SX
        inline = kind is casadi.MX
        kind = _kind_for(f) if kind is None else kind
        z, t, h, p = _symbols(kind, nz, np_)
        K = []
        for i in range(s):
            zi = _stage_input(z, h, A[i], K)
            ti = t if c[i] == 0.0 else t + c[i] * h
            K.append(f.call([zi, ti, p], True, False)[0] if inline else f(zi, ti, p))
        z_next = z + h * _weighted_sum(b, K)
        return casadi.Function(name, [z, t, h, p], [z_next], ["z", "t", "h", "p"], ["z_next"])

    kind = _kind_for(f)
    # Stage equations in scaled unknowns: K_i = sigma * Q_i with sigma = max(|predictor|_inf, tiny), residual
    # Q_i - f(z + h sum_j A_ij sigma Q_j, t + c_i h, p) / sigma.  The root K is the same for every sigma > 0
    # (so the implicit-function derivatives are those of the exact stage solution), but fast_newton's
    # absolute tolerances become relative to the size of the stages: unscaled, a residual below 1e-12 was
    # accepted at the predictor once |f| < 1e-13 (a decaying stiff solution stopped decaying at ~1e-17),
    # and stages of size 1e6 could not reach 1e-12 in float64 at all.
    Qall = kind.sym("Q", s * nz)
    z, t, h, p = _symbols(kind, nz, np_)
    sigma = kind.sym("sigma")
    K = [sigma * Qall[i * nz:(i + 1) * nz] for i in range(s)]
    residual = []
    for i in range(s):
        zi = _stage_input(z, h, A[i], K)
        ti = t if c[i] == 0.0 else t + c[i] * h
        residual.append(Qall[i * nz:(i + 1) * nz] - f(zi, ti, p) / sigma)
    g = casadi.Function(name + "_stages", [Qall, casadi.vertcat(z, t, h, p, sigma)],
                        [casadi.vertcat(*residual)], ["Q", "zthps"], ["residual"])
    solver = casadi.rootfinder(name + "_newton", "fast_newton", g, options)
    # step in MX around the rootfinder
    zm, tm, hm, pm = _symbols(casadi.MX, nz, np_)
    # predictor: f at each stage's time (explicit Euler for the stage values)
    guess = casadi.vertcat(*[f(zm, tm if c[i] == 0.0 else tm + c[i] * hm, pm) for i in range(s)])
    sig = casadi.fmax(casadi.norm_inf(guess), _SIGMA_FLOOR)
    Qsol = solver(guess / sig, casadi.vertcat(zm, tm, hm, pm, sig))
    Ks = [sig * Qsol[i * nz:(i + 1) * nz] for i in range(s)]
    z_next = zm + hm * _weighted_sum(b, Ks)
    return casadi.Function(name, [zm, tm, hm, pm], [z_next], ["z", "t", "h", "p"], ["z_next"])


def _fractions(output_fractions) -> tuple[Fraction, ...]:
    try:
        values = list(output_fractions)
    except TypeError:
        raise SpecError("output_fractions must be a sequence of numbers in [0, 1]") from None
    if not values:
        raise SpecError("output_fractions is empty; give at least one output time fraction (e.g. [1])")
    out = []
    for v in values:
        if isinstance(v, bool):
            raise SpecError("output_fractions contains a boolean; give numbers in [0, 1]")
        try:
            fr = Fraction(v) if not hasattr(v, "p") else Fraction(int(v.p), int(v.q))
        except (TypeError, ValueError):
            raise SpecError(f"output fraction {v!r} is not an exact or finite number") from None
        out.append(fr)
    if out[0] < 0 or out[-1] > 1 or any(b <= a for a, b in zip(out, out[1:])):
        raise SpecError(f"output_fractions {[str(x) for x in out]} must increase strictly within [0, 1]")
    return tuple(out)


def allocate_steps(output_fractions, n_steps: int) -> tuple[int, ...]:
    """Steps per sub-interval [s_{k-1}, s_k] (s_{-1} = 0): proportional to its length, at least one for
    every sub-interval of positive length, exactly ``n_steps`` in total (largest remainders; ties go to
    the earlier sub-interval).  A zero-length first sub-interval (s_0 = 0) gets 0 steps."""
    s = _fractions(output_fractions)
    if isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < 1:
        raise SpecError(f"n_steps must be a positive integer, got {n_steps!r}")
    lengths = [b - a for a, b in zip((Fraction(0),) + s[:-1], s)]
    positive = sum(1 for L in lengths if L > 0)
    if n_steps < positive:
        raise SpecError(f"n_steps = {n_steps} is less than the {positive} output sub-intervals; "
                        "give at least one step per output time")
    total = sum(lengths)
    quota = [n_steps * L / total for L in lengths]
    counts = [max(1, int(q)) if L > 0 else 0 for q, L in zip(quota, lengths)]
    while sum(counts) < n_steps:
        k = max(range(len(counts)), key=lambda i: (lengths[i] > 0, quota[i] - counts[i], -i))
        counts[k] += 1
    while sum(counts) > n_steps:
        k = min((i for i in range(len(counts)) if counts[i] > 1), key=lambda i: (quota[i] - counts[i], i))
        counts[k] -= 1
    return tuple(counts)


def fixed_step_solve(f: casadi.Function, tableau, nz: int, np_: int, n_steps: int,
                     output_fractions: Sequence = (1,), *, name: str = "solve",
                     newton: dict | None = None) -> casadi.Function:
    """Fixed-step solve of dz/dt = f(z, t, p) from t0 to t1 with ``n_steps`` steps of ``tableau``.

    Returns ``Function name(z0[nz], p[np], t0, t1) -> (Z[nz x m])``; column k of Z approximates
    z(t0 + s_k (t1 - t0)) for s = ``output_fractions`` (default: only t1).  Steps are distributed over the
    output sub-intervals by :func:`allocate_steps`; see the module docstring for the grid.  The step is
    repeated with ``Function.fold`` in MX.
    """
    _check_name(name)
    s = _fractions(output_fractions)
    counts = allocate_steps(s, n_steps)
    step = step_function(f, tableau, nz, np_, name=name + "_step", newton=newton)
    # One loop body for all sub-intervals: the state is carried with an exact step counter k (an integer
    # in a double), so that step k of a sub-interval starting at fraction a with width w = L/n starts at
    # t0 + span * (a + k w) -- computed, not accumulated by repeated addition, and without an N-long table
    # of times in the graph (the C text stays independent of N).
    kind = casadi.SX if step.is_a("SXFunction") else casadi.MX
    x = kind.sym("x", nz + 1)
    t0_, span_, a_, w_ = kind.sym("t0"), kind.sym("span"), kind.sym("a"), kind.sym("w")
    p_ = kind.sym("p", np_)
    z_, k_ = x[:nz], x[nz]
    z_next = step(z_, t0_ + span_ * (a_ + k_ * w_), span_ * w_, p_)
    body = casadi.Function(name + "_body", [x, t0_, span_, a_, w_, p_], [casadi.vertcat(z_next, k_ + 1)],
                           ["x", "t0", "span", "a", "w", "p"], ["x_next"])
    z0 = casadi.MX.sym("z0", nz)
    p = casadi.MX.sym("p", np_)
    t0 = casadi.MX.sym("t0")
    t1 = casadi.MX.sym("t1")
    span = t1 - t0
    columns = []
    z = z0
    start = Fraction(0)
    folds: dict[int, casadi.Function] = {}
    for stop, n in zip(s, counts):
        if n > 0:
            if n not in folds:
                folds[n] = body.fold(n)
            width = (stop - start) / n
            x_end = folds[n](casadi.vertcat(z, 0), t0, span, nearest_double(start), nearest_double(width), p)
            z = x_end[:nz]
        columns.append(z)
        start = stop
    Z = casadi.horzcat(*columns)
    return casadi.Function(name, [z0, p, t0, t1], [Z], ["z0", "p", "t0", "t1"], ["Z"])
