"""Non-differentiable points (kinks) of a model, where a gradient comparison is ill-posed.

* :func:`kinks` -- every non-smooth node of a model's expressions: the kinked functions of the table
  (:func:`symode.expr.kink_switches`: abs, sign, Heaviside, Max, Min) and Piecewise, floor, ceiling;
* :func:`check_differentiable` -- kinks that sit exactly at the nominal parameters (a state-independent
  argument equal to 0) or at the initial point (t0, z0);
* :func:`kink_crossings` -- state-dependent kinks along a sampled trajectory;
* :func:`crossed_kinks` -- the kinks the model's own solution crosses inside (t0, t1), with their times
  (:func:`symode.casadi.routes.switching.switching_times`), as findings for a result.

Limits (stated, not hidden): the checks are exact-zero tests at given points, not a search over the
trajectory.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import sympy

from ..errors import SpecError
from ..expr import FUNCTIONS, kink_switches
from .numbers import exact_number

__all__ = ["Kink", "kinks", "check_differentiable", "kink_crossings", "crossed_kinks"]

#: Piecewise definitions and integer rounding: not functions of the spec grammar, but a model built in Python
#: may hold them.
_OTHER_KINKS = (sympy.Piecewise, sympy.floor, sympy.ceiling)
#: The node classes with kinks: the table's kinked functions, then the others.
_KINK_TYPES = tuple(f.head for f in FUNCTIONS.values() if f.kinks is not None) + _OTHER_KINKS


@dataclass(frozen=True)
class Kink:
    """A non-smooth node of a model expression.

    ``switches`` are the expressions whose zero is the kink (Abs(u), sign(u), Heaviside(u): u; Max/Min(a, b):
    a - b per pair; Piecewise: lhs - rhs of each relational condition); for floor/ceiling the kink is where
    the argument is an integer.  ``depends`` says what the switches depend on: "params", "time", "state".
    """

    field: str
    node: sympy.Expr
    switches: tuple
    depends: str

    @property
    def function(self) -> str:
        return type(self.node).__name__


def _switches(node) -> tuple:
    table = kink_switches(node)
    if table is not None:
        return table
    if isinstance(node, (sympy.floor, sympy.ceiling)):
        return (node.args[0],)
    if isinstance(node, sympy.Piecewise):
        out = []
        for _, cond in node.args:
            rels = [cond] if isinstance(cond, sympy.core.relational.Relational) else \
                list(cond.atoms(sympy.core.relational.Relational)) if isinstance(cond, sympy.Basic) else []
            out += [rel.lhs - rel.rhs for rel in rels]
        return tuple(out)
    return ()


def _fields(model) -> list[tuple[str, sympy.Expr]]:
    out = [(f"rhs[{i}]", e) for i, e in enumerate(model.rhs)] + [(f"z0[{i}]", e) for i, e in enumerate(model.z0)]
    if model.terminal is not None:
        out.append(("loss.terminal", model.terminal))
    if model.running is not None:
        out.append(("loss.running", model.running))
    out += [(f"loss.observations[{i}]", o.term) for i, o in enumerate(model.observations)]
    return out


def kinks(model) -> list[Kink]:
    """Every non-smooth node (see :data:`_KINK_TYPES`) in the model's rhs, z0 and loss terms."""
    structure = getattr(model, "structure", None)
    if structure is not None and not structure.has_kinks():  # a smooth network: nothing to expand and search
        return []
    states, t = set(model.states), model.t
    out = []
    for name, expr in _fields(model):
        for node in sorted(expr.atoms(*_KINK_TYPES), key=sympy.default_sort_key):
            sw = _switches(node)
            syms = set().union(*(s.free_symbols for s in sw)) if sw else set()
            depends = "state" if syms & states else "time" if t in syms else "params"
            out.append(Kink(name, node, sw, depends))
    return out


def _theta_map(model, theta) -> dict:
    if theta is None:
        return dict(model.param_values)
    if isinstance(theta, Mapping):
        return model.values_with(theta, lambda k, v: exact_number(v, f"theta[{k}]"))
    vals = list(theta)
    if len(vals) != model.np:
        raise SpecError(f"model {model.name!r}: theta has {len(vals)} values for {model.np} parameters "
                        f"({', '.join(model.param_names)})")
    return {p: exact_number(v, f"theta[{p.name}]") for p, v in zip(model.params, vals)}



def _is_kink_point(switch: sympy.Expr, node, values: dict) -> tuple[bool, sympy.Expr]:
    """Whether ``switch`` (substituted with exact ``values``) puts ``node`` exactly on its kink."""
    val = switch.xreplace(values)
    if val.free_symbols:
        return False, val
    if isinstance(node, (sympy.floor, sympy.ceiling)):
        return bool(val.is_integer), val
    zero = val.is_zero
    if zero is None:  # e.g. sqrt(2)**2 - 2 written unevaluated: let simplify decide, else treat as nonzero
        zero = sympy.simplify(val).is_zero
    return bool(zero), val


def _show(v) -> str:
    """A parameter value for messages: exact when short (1/2), else 17 significant digits (a float's value)."""
    if isinstance(v, sympy.Rational) and v.q > 10 ** 6:
        return str(sympy.N(v, 17))
    return str(v)


def check_differentiable(model, theta=None, *, near: float = 1e-8) -> list[str]:
    """Non-differentiable points of the model at parameters ``theta`` (default: the nominal values).

    Flags, per kink (see :func:`kinks`):

    * a switch depending on parameters only that is exactly 0 at ``theta`` (e.g. ``abs(a)`` with ``a = 0``, or
      ``abs(z0 - c)`` inside z0's expression): the gradient is not defined there and each library returns its
      own convention (SymPy's d|x|/dx is sign(x), 0 at 0), so routes may legitimately disagree;
    * a switch that is within ``near`` (relative to 1 + the size of its terms) of 0: defined, but finite
      differences with steps larger than the distance straddle the kink;
    * a switch in the rhs or running cost that is exactly 0 at the initial point (t0, z0(θ)).

    State-dependent kinks elsewhere on the trajectory are not found here: sample the trajectory and call
    :func:`kink_crossings`.  Returns human-readable findings (empty: nothing found at these points).
    """
    values = _theta_map(model, theta)
    z0 = {s: e.xreplace(values) for s, e in zip(model.states, model.z0)}
    initial = {**values, **z0, model.t: model.t0}
    where_theta = ", ".join(f"{p.name} = {_show(values[p])}" for p in model.params) or "no parameters"
    out = []
    for k in kinks(model):
        for sw in k.switches:
            if k.depends == "params":
                hit, val = _is_kink_point(sw, k.node, values)
                if hit:
                    out.append(f"{k.field}: {k.node} is not differentiable at the parameters ({where_theta}): "
                               f"its switch {sw} is {val} there; the derivative's value depends on the "
                               f"convention of each library, so routes may disagree here")
                    continue
                num = sympy.N(val, 30) if val.is_number else None
                if num is not None and num.is_real and not isinstance(k.node, (sympy.floor, sympy.ceiling)):
                    scale = 1 + sum(abs(sympy.N(term.xreplace(values), 30)) for term in sympy.Add.make_args(sw))
                    if abs(num) <= near * scale:
                        out.append(f"{k.field}: {k.node} is {float(abs(num)):.3g} from its kink at the "
                                   f"parameters ({where_theta}); finite differences with steps larger than "
                                   f"that straddle the kink")
            elif k.field.startswith(("rhs", "loss.running")):
                hit, val = _is_kink_point(sw, k.node, initial)
                if hit:
                    pt = ", ".join(f"{s.name} = {z0[s]}" for s in model.states)
                    out.append(f"{k.field}: {k.node} sits on its kink at the initial point (t = {model.t0}, "
                               f"{pt}): its switch {sw} is {val} there; not differentiable at this point, the "
                               f"value depends on convention")
    return out


def kink_crossings(model, times: Sequence, states: Sequence[Sequence], theta=None) -> list[str]:
    """Where state- or time-dependent kink switches cross or touch zero along a sampled trajectory.

    ``times[i]`` and ``states[i]`` (one value per state) are samples of the solution z(t) at the parameters
    ``theta``.  For kinks in the rhs and running cost every sample is checked: a sign change between samples
    is a crossing (the gradient stays defined for a transversal crossing, but fixed-step routes lose their
    order there and their discrete gradient sees the kink), an exact zero at a sample is a touch (not
    differentiable if the trajectory is tangent to the kink).  Kinks in the terminal term are checked at the
    sample at t1, kinks in observation terms at their observation times (when sampled).  Samples are points:
    a touch between samples is not seen.
    """
    if len(times) != len(states):
        raise SpecError(f"kink_crossings: {len(times)} times but {len(states)} state samples")
    values = _theta_map(model, theta)
    ts = [exact_number(t, f"times[{i}]") for i, t in enumerate(times)]
    samples = []
    for i, zs in enumerate(states):
        zs = list(zs)
        if len(zs) != model.nz:
            raise SpecError(f"kink_crossings: states[{i}] has {len(zs)} values for {model.nz} states")
        samples.append({s: exact_number(v, f"states[{i}][{j}]") for j, (s, v) in enumerate(zip(model.states, zs))})
    obs_time = {f"loss.observations[{i}]": o.time for i, o in enumerate(model.observations)}
    out = []
    for k in kinks(model):
        if k.depends == "params":
            continue
        if k.field.startswith(("rhs", "loss.running")):
            idx = list(range(len(ts)))
        else:
            at = model.t1 if k.field == "loss.terminal" else obs_time.get(k.field)
            idx = [i for i, t in enumerate(ts) if t == at]
            if not idx:
                out.append(f"{k.field}: {k.node} not checked: no sample at t = {at}")
                continue
        for sw in k.switches:
            vals = []
            for i in idx:
                v = sympy.N(sw.xreplace({**values, **samples[i], model.t: ts[i]}), 30)
                vals.append(v)
            for n, (i, v) in enumerate(zip(idx, vals)):
                if isinstance(k.node, (sympy.floor, sympy.ceiling)):
                    continue
                if v == 0:
                    out.append(f"{k.field}: {k.node} touches its kink at t = {ts[i]} (switch {sw} = 0); not "
                               f"differentiable there if the trajectory is tangent to it or the term is a loss "
                               f"evaluated there")
                elif n + 1 < len(idx) and vals[n + 1] != 0 and (v > 0) != (vals[n + 1] > 0):
                    out.append(f"{k.field}: {k.node} crosses its kink between t = {ts[i]} and "
                               f"t = {ts[idx[n + 1]]} (switch {sw} changes sign); fixed-step routes lose "
                               f"order across it and finite differences may straddle it")
    return out



def crossed_kinks(model) -> list[str]:
    """Findings for every kink of the rhs or running cost that the solution crosses inside (t0, t1), with the
    time (from a float64 CVODES solve and root finding on the switch: see
    :func:`symode.casadi.routes.switching.switching_times`); empty when none is crossed, or when that solve
    fails (the route that produced the result solved the model, so it has reported its own failures)."""
    from ..casadi.routes.switching import state_switches, switching_times
    if not state_switches(model):
        return []
    try:
        crossings = switching_times(model)
    except Exception:  # noqa: BLE001 - a finder failure must not turn a computed result into an error
        return []
    return [f"{c.field}: the solution crosses the kink of {c.node} at t = {c.time:.12g} (its switch {c.switch} "
            f"changes sign there): the result depends on a non-smooth point inside [t0, t1]; fixed-step routes "
            f"lose their order across it, CVODES restarts there" for c in crossings]
