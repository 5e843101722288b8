"""Critical times of the Taylor integrator: narrow features that the coefficients at a step's start do not show.

Jorba & Zou's step (:mod:`symode.oracle.stepping`) is chosen from the Taylor coefficients at the step's start.
A term such as ``exp(-1e10*(t - 0.3)**2)`` is about ``exp(-4e8)`` at ``t = 0``: its coefficients there are far
below the tolerance, the step rule sees a constant, and one step goes from 0 to 1 straight over the spike.
Running the integration again at higher precision does the same, so even the error estimate is fooled.

A *critical time* ``(c, w)`` says "a feature of width about ``w`` at time ``c`` that the coefficients may not
show from afar" (who finds them: :mod:`symode.verify.features`).  With critical times the integrator

* never steps over ``c``: a step that would pass it ends on it exactly (an internal target, not returned);
* approaching ``c`` from a distance ``d``, never takes a step longer than ``d/2`` while ``d > NEAR_WIDTHS*w``,
  nor longer than ``w`` closer in: the distance halves at every step until ``c`` is ``NEAR_WIDTHS`` widths
  away, then the steps are at most one width, and the step control's own (shorter) steps take over where the
  coefficients show the feature.  The step right after ``c`` is chosen from the coefficients at ``c`` itself:
  leaving a feature needs no limit.

Why not halve all the way in (``max(d/2, w)``): measured on ``y' = exp(-1e10*(t - 0.3)**2)`` (w = 1e-5) at 40
digits, a step from 14.6 to 7.3 widths short of 0.3 was accepted -- the coefficients at its start, ~exp(-214)
times Hermite polynomials that cancel, promised a tiny truncation error -- while the Gaussian grew by exp(160)
across it, and the step missed its tail there: 3.4e-30 absolute, at 30 and at 40 digits alike (so the check at
higher precision could not see it).  A step ending ``NEAR_WIDTHS/2 = 16`` widths out leaves at most exp(-256)
of a Gaussian behind, and one-width steps grow it by at most exp(64) each where it is below exp(-900).

Critical times behind the start or beyond the last output time are not landed on; those beyond the last output
time still limit the steps that approach them (the tail of a feature just past the end lies inside).
"""
from __future__ import annotations

from symode.errors import SpecError

__all__ = ["CriticalTimes", "NEAR_WIDTHS"]

#: Within this many widths of a critical time the steps approaching it are at most one width (see above).
NEAR_WIDTHS = 32


class CriticalTimes:
    """The critical times ahead of an integration, in working numbers, ordered in the direction of time."""

    def __init__(self, items, B, bits: int, t, direction: int, end, floor):
        from .arithmetic import to_working  # (arithmetic imports nothing of the integrator's)
        ahead = []
        for i, item in enumerate(items):
            try:
                c, w = item
            except (TypeError, ValueError):
                raise SpecError(f"critical_times[{i}] = {item!r}: give a pair (time, width)") from None
            c = to_working(c, f"critical_times[{i}] time", B, bits)
            w = to_working(w, f"critical_times[{i}] width", B, bits)
            if not w > 0:
                raise SpecError(f"critical_times[{i}]: the width {w} must be positive")
            if (c - t) * direction > 0:
                ahead.append((c, w, (c - end) * direction < 0))
        ahead.sort(key=lambda x: x[0] * direction)
        self.ahead = ahead
        self.direction = direction
        # a step shorter than the collapse threshold is never asked for: closer than that, land on c
        self.floor = floor

    def __bool__(self) -> bool:
        return bool(self.ahead)

    def limit(self, t, h):
        """(h, c): the step ``h`` from ``t`` limited by the critical times ahead, and the critical time it
        lands on exactly (None when it lands on none)."""
        d = self.direction
        while self.ahead and (self.ahead[0][0] - t) * d <= 0:
            self.ahead.pop(0)
        size = abs(h)
        for c, w, land in self.ahead:
            dist = (c - t) * d
            cap = max(dist / 2 if dist > NEAR_WIDTHS * w else w, self.floor)
            if cap < size:
                size = cap
            if land and size >= dist:  # the (limited) step reaches c, the nearest first: end on it
                return c - t, c
            if size <= dist / NEAR_WIDTHS:
                break  # a critical time further ahead (distance >= dist) allows at least dist/NEAR_WIDTHS
        return (size * d if size != abs(h) else h), None
