"""Checking a candidate against a reference: the tolerance table, comparisons, finite differences.

* :mod:`symode.check.tolerances` — THE table of tolerances, one entry per purpose with the reason for its value,
  and the functions that derive a tolerance from a solver's order and step size or from its rtol/atol.
* :mod:`symode.check.compare` — ``compare(candidate, reference, rtol=..., atol=...)``: one symmetric metric
  ``|c - r| <= atol + rtol * max(|c|, |r|)``, computed in mpmath at the reference's precision; NaN and Inf never
  pass; shapes and names must match exactly.
* :mod:`symode.check.kinks` — non-differentiable points (kinks of abs, Heaviside, Max, Min, sign, Piecewise) at
  the parameters, at the initial point and along a sampled trajectory.
* :mod:`symode.check.singularities` — singularities SymPy simplified away at parse time, found by evaluating
  the expression text as written.
* :mod:`symode.check.numbers` — the lossless conversions of numbers these checks share.
* :mod:`symode.check.fd` — central finite differences with a sweep of step sizes and a plateau search; the
  answer is a plateau (value, spread, step range) or an explicit "no plateau", never the value at one step.
"""
