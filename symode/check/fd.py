"""Finite-difference gradients with a step sweep and a plateau search (no single-step answer).

For each component j of θ, central differences over a sweep of steps h::

    g_j(h) = (f(θ + h e_j) - f(θ - h e_j)) / (x⁺ - x⁻)      x± = θ_j ± h as floats (the step actually taken)

    error(h) ≈ |f'''| h² / 6   (truncation, grows with h)   +   ~ tol |f| / h   (rounding, grows as h shrinks)

where ``tol`` is the relative accuracy of f (machine epsilon for a float64 route; larger for a noisy or
adaptive-solver route).  The default centre step ``h₀ = tol**(1/3) * max(1, |θ_j|)`` balances the two terms;
the sweep is ``h₀ * 10**k`` for k = -3..3.  The **plateau** is the longest run of at least ``min_len``
consecutive steps whose estimates mutually agree: ``max - min <= agree * scale`` with
``scale = max(|median of the run|, |f(θ)| / max(1, |θ_j|))`` (the second term keeps the test meaningful when the
derivative is ~0).  The reported value is the run's median, with its spread and step range; all sweep values are
kept.  No plateau → the component is not ok, with the reason; nothing is picked.

Default ``agree = sqrt(tol)`` (1e-8 for float64): at the optimal step the error is ~tol**(2/3) (2e-11), and one
decade of h either way multiplies the truncation error by 100 or the rounding error by 10, so estimates within a
decade or two of the optimum agree to ~1e-9; sqrt(tol) admits those and rejects runs that reach into the
truncation- or rounding-dominated ends.  A function less accurate than ``tol`` (noise) has no such run: pass its
real accuracy as ``tol`` and the sweep moves to larger steps.

Kinks: central differences of a function with a kink exactly at θ (|x| at 0) agree perfectly (they return the
mean of the one-sided slopes), so a plateau alone proves nothing.  Each step also gives one-sided differences;
for a smooth f, ``|forward - backward| ≈ |f''| h`` shrinks with h, at a kink it tends to the jump in slope.  A
plateau is refused as a kink when, over its steps whose gap exceeds both its rounding noise (~10 tol |f| / h)
and ``agree * scale``, the gap does not shrink with h: log-log slope below 0.5 between the first and last such
step (smooth: slope 1, or 2 where f'' = 0; kink: slope 0).
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Callable, Sequence

from ..errors import SymodeError


class FDError(SymodeError):
    """Finite differences gave no trustworthy value (no plateau, a kink) or were called with invalid inputs."""


@dataclass
class FDComponent:
    """The sweep and the plateau for one component of θ (steps ascending)."""

    index: int
    name: str
    hs: list[float]
    values: list[float]
    gaps: list[float]  # |forward - backward| one-sided differences per step (kink detector)
    ok: bool
    value: float | None
    spread: float | None
    h_range: tuple[float, float] | None
    plateau: tuple[int, int] | None  # indices (first, last) into hs, inclusive
    reason: str | None


@dataclass
class FDResult:
    """Per-component finite-difference results; ``ok`` only if every component has a smooth plateau."""

    components: list[FDComponent]
    tol: float
    agree: float
    f0: float

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.components)

    @property
    def reason(self) -> str | None:
        bad = [f"{c.name}: {c.reason}" for c in self.components if not c.ok]
        return "; ".join(bad) if bad else None

    def values(self) -> list[float]:
        """The plateau values; raises :class:`FDError` naming the components without one."""
        if not self.ok:
            raise FDError(f"finite differences found no trustworthy value: {self.reason}")
        return [c.value for c in self.components]

    def spreads(self) -> list[float | None]:
        return [c.spread for c in self.components]

    def to_markdown(self) -> str:
        out = [f"**Finite differences: {'plateau found for every component' if self.ok else 'NOT OK'}**", "",
               f"- central differences; f's relative accuracy tol = {self.tol:.3g}; estimates agree when "
               f"max - min <= {self.agree:.3g} x scale", ""]
        for c in self.components:
            if c.ok:
                out.append(f"- {c.name}: {c.value!r} (spread {c.spread:.3g}, h from {c.h_range[0]:.3g} to "
                           f"{c.h_range[1]:.3g})")
            else:
                out.append(f"- {c.name}: no value: {c.reason}")
        out += ["", "| component | h | central difference | one-sided gap | on plateau |", "|---|---|---|---|---|"]
        for c in self.components:
            for i, (h, v, g) in enumerate(zip(c.hs, c.values, c.gaps)):
                on = c.plateau is not None and c.plateau[0] <= i <= c.plateau[1]
                out.append(f"| {c.name} | {h:.3g} | {v!r} | {g:.3g} | {'yes' if on else ''} |")
        return "\n".join(out) + "\n"


def _call(func, theta) -> float:
    try:
        v = float(func(list(theta)))
    except (ArithmeticError, ValueError):
        return math.nan
    return v


def _plateau(values: list[float], scale_floor: float, agree: float, min_len: int):
    """Longest run (ties: smallest spread) of consecutive finite values with max - min <= agree * scale."""
    best = None
    n = len(values)
    for i in range(n):
        for j in range(i + min_len - 1, n):
            run = values[i:j + 1]
            if not all(math.isfinite(v) for v in run):
                break
            spread = max(run) - min(run)
            scale = max(abs(statistics.median(run)), scale_floor)
            if spread > agree * scale:
                break
            key = (j - i + 1, -spread)
            if best is None or key > best[0]:
                best = (key, i, j, spread)
    return None if best is None else best[1:]


def fd_gradient(func: Callable[[list[float]], float], theta: Sequence[float], *, tol: float = 1e-16,
                hs: Sequence[float] | None = None, agree: float | None = None, min_len: int = 3,
                scale: float | None = None, names: Sequence[str] | None = None) -> FDResult:
    """Central-difference gradient of the scalar ``func`` at ``theta`` with a plateau search (module docstring).

    ``tol``: relative accuracy of ``func`` (1e-16 ~ float64 rounding; give the route's real accuracy, e.g.
    1e-10 for a solver at rtol 1e-10).  ``hs``: explicit steps (the same for every component) instead of the
    default sweep ``tol**(1/3) * max(1, |θ_j|) * 10**k``, k = -3..3.  ``agree``: relative agreement of a
    plateau (default sqrt(tol)).  ``min_len``: fewest consecutive steps that make a plateau (default 3: two
    agreeing values can agree by accident).  ``scale``: the size of derivative below which agreement is judged
    absolutely (default |f(θ)| / max(1, |θ_j|)); needed where both f(θ) and the derivative are ~0 (x³ at 0
    has no relative plateau: its estimates h² never agree relatively).
    Costs 1 + 2 * len(theta) * len(steps) evaluations.
    """
    # Long because the plateau search is one loop over components with its bookkeeping inline (steps tried,
    # agreement found, the reason when none is); it reads as the module docstring's algorithm, step by step.
    if not (isinstance(tol, (int, float)) and 0 < tol < 1):
        raise FDError(f"tol must be the function's relative accuracy, 0 < tol < 1, got {tol!r}")
    agree = math.sqrt(tol) if agree is None else agree
    if not (isinstance(agree, (int, float)) and 0 < agree < 1):
        raise FDError(f"agree must be in (0, 1), got {agree!r}")
    if not (isinstance(min_len, int) and min_len >= 2):
        raise FDError(f"min_len must be an integer >= 2, got {min_len!r}")
    theta = [float(x) for x in theta]
    if not all(math.isfinite(x) for x in theta):
        raise FDError(f"theta must be finite, got {theta}")
    names = [str(n) for n in names] if names is not None else [f"theta[{j}]" for j in range(len(theta))]
    if len(names) != len(theta):
        raise FDError(f"{len(names)} names for {len(theta)} parameters")
    if hs is not None:
        steps = sorted(float(h) for h in hs)
        if len(steps) < min_len or not all(math.isfinite(h) and h > 0 for h in steps):
            raise FDError(f"hs must hold at least {min_len} finite positive steps, got {list(hs)}")
    f0 = _call(func, theta)
    if not math.isfinite(f0):
        raise FDError(f"func(theta) is {f0} at theta = {theta}; finite differences need a finite value there")
    comps = []
    for j, xj in enumerate(theta):
        base = tol ** (1 / 3) * max(1.0, abs(xj))
        sweep = steps if hs is not None else [base * 10.0 ** k for k in range(-3, 4)]
        hs_taken, vals, gaps, noise = [], [], [], []
        for h in sweep:
            xp, xm = xj + h, xj - h
            tp, tm = list(theta), list(theta)
            tp[j], tm[j] = xp, xm
            fp, fm = _call(func, tp), _call(func, tm)
            hp, hm = xp - xj, xj - xm  # the steps actually taken after rounding θ_j ± h
            hs_taken.append((xp - xm) / 2)
            # rounding noise of a one-sided difference ~ 2 tol F / h; the gap holds two of them; margin 2.5
            noise.append(10 * tol * max(abs(f0), abs(fp), abs(fm)) / max(min(hp, hm), 1e-300))
            if hp <= 0 or hm <= 0:
                vals.append(math.nan)
                gaps.append(math.nan)
                continue
            vals.append((fp - fm) / (xp - xm))
            gaps.append(abs((fp - f0) / hp - (f0 - fm) / hm))
        scale_floor = abs(f0) / max(1.0, abs(xj)) if scale is None else float(scale)
        found = _plateau(vals, scale_floor, agree, min_len)
        comp = FDComponent(j, names[j], hs_taken, vals, gaps, False, None, None, None, None, None)
        if found is None:
            finite = sum(math.isfinite(v) for v in vals)
            comp.reason = (f"no plateau: no {min_len} consecutive steps agree within {agree:.3g} relative "
                           f"({finite}/{len(vals)} estimates finite); f may be less accurate than tol = {tol:.3g} "
                           f"(pass its real accuracy), or not smooth near theta")
        else:
            i, k, spread = found
            run = vals[i:k + 1]
            scale = max(abs(statistics.median(run)), scale_floor)
            # one-sided gaps above their rounding noise (and above the agreement level): their trend in h
            usable = [m for m in range(i, k + 1) if gaps[m] > max(noise[m], agree * scale)]
            kink = False
            if len(usable) >= 2:
                a, b = usable[0], usable[-1]
                slope = math.log(gaps[b] / gaps[a]) / math.log(hs_taken[b] / hs_taken[a])
                kink = slope < 0.5  # smooth: gap ~ |f''| h (slope 1) or ~h² (slope 2); kink: gap -> jump (slope 0)
            comp.plateau = (i, k)
            comp.spread = spread
            comp.h_range = (hs_taken[i], hs_taken[k])
            if kink:
                comp.reason = (f"kink at theta: the one-sided differences differ by {gaps[a]:.3g} at h = "
                               f"{hs_taken[a]:.3g} and {gaps[b]:.3g} at h = {hs_taken[b]:.3g} (not shrinking with h); "
                               f"the derivative is not defined there (the central-difference plateau "
                               f"{statistics.median(run)!r} is only the mean of the one-sided slopes)")
            else:
                comp.ok = True
                comp.value = statistics.median(run)
        comps.append(comp)
    return FDResult(comps, tol, agree, f0)
