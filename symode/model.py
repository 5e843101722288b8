"""The model: an initial-value problem with a scalar loss.

A :class:`Model` is the single input every later stage (symbolic derivation, oracle, CasADi routes) takes:

    dz/dt = f(z, t, θ),   z(t0) = z0(θ),   t in [t0, t1]

    L(θ) = ℓ(z(t1), θ)                       terminal term (optional)
         + Σ_i ℓ_i(z(t_i), θ)                observation terms, t0 < t_1 < ... < t_m <= t1 (optional)
         + ∫_{t0}^{t1} r(z(t), t, θ) dt      running cost (optional)

At least one of the three loss parts must be present.  ``states`` is the vector z, ``params`` the flat vector θ
(matrix parameters such as an MLP's weights are flattened row-major; ``param_groups`` keeps their shape for
display), ``t`` the time symbol.  All numbers (t0, t1, observation times, nominal parameter values) are exact
SymPy numbers: a spec's ``0.1`` is ``Rational(1, 10)``, never the binary double.
"""
from __future__ import annotations

import hashlib
from decimal import Decimal
from fractions import Fraction
from dataclasses import dataclass
from typing import Mapping, Sequence

import sympy

from .errors import SpecError

#: The time symbol every model uses; spec expressions refer to it as ``t``.
T = sympy.Symbol("t", real=True)


@dataclass(frozen=True)
class Observation:
    """One observation term ℓ_i(z(t_i), θ) of the loss, at the fixed absolute time ``time``."""

    time: sympy.Rational
    term: sympy.Expr


def _exact(value, field: str) -> sympy.Expr:
    """An exact, finite, real SymPy number.

    Python floats are refused (their decimal meaning is ambiguous: give a decimal string through the spec, or a
    sympy.Rational); strings are refused too (this is the Python API: text goes through the spec parser).
    """
    if isinstance(value, (bool, float, str)):
        raise SpecError(f"{field}: give an exact number (int, fractions.Fraction or a sympy number), "
                        f"not {type(value).__name__} {value!r}")
    if isinstance(value, int):
        v = sympy.Integer(value)
    elif isinstance(value, Fraction):
        v = sympy.Rational(value.numerator, value.denominator)
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise SpecError(f"{field}: {value} is not a finite number")
        v = sympy.Rational(*value.as_integer_ratio())
    elif isinstance(value, sympy.Basic):
        v = value
    else:
        raise SpecError(f"{field}: {value!r} is not a number")
    if not (v.is_number and v.is_real and v.is_finite):
        raise SpecError(f"{field}: {value!r} is not a finite real number")
    return v


def _expr(value, field: str) -> sympy.Expr:
    """A scalar SymPy expression (ints allowed); strings are refused: text goes through the spec parser."""
    if isinstance(value, bool) or not isinstance(value, (int, sympy.Expr)):
        raise SpecError(f"{field}: expected a scalar SymPy expression, got {type(value).__name__}")
    if getattr(value, "is_Matrix", False) or getattr(value, "shape", ()) not in ((), None):
        raise SpecError(f"{field}: expected a scalar expression, got a matrix of shape {value.shape}; "
                        f"the loss and each rhs/z0 entry must be scalar")
    return sympy.Integer(value) if isinstance(value, int) else value


def squared_error_terms(states: Sequence[sympy.Symbol], data_rows: Sequence[Sequence]) -> list[sympy.Expr]:
    """ℓ_i = Σ_j (z_j - d_ij)² for each data row d_i (the default observation loss)."""
    return [sympy.Add(*[(z - d) ** 2 for z, d in zip(states, row)]) for row in data_rows]


class Model:
    """An ODE initial-value problem with a scalar loss; see the module docstring for the equations.

    The constructor validates structure (lengths, symbols used, time ordering, finiteness) and raises
    :class:`~symode.errors.SpecError` before anything is derived.
    """

    def __init__(self, *, name: str, states: Sequence[sympy.Symbol], params: Sequence[sympy.Symbol],
                 rhs: Sequence[sympy.Expr], z0: Sequence[sympy.Expr], t0, t1,
                 param_values: Mapping[sympy.Symbol, object] | None = None,
                 terminal: sympy.Expr | None = None,
                 observations: Sequence[tuple[object, sympy.Expr]] = (),
                 running: sympy.Expr | None = None,
                 t: sympy.Symbol = T,
                 param_groups: Mapping[str, sympy.Matrix] | None = None,
                 description: str = "",
                 spec: Mapping | None = None):
        self.name = name
        self.description = description
        self.t = t
        self.states = tuple(states)
        self.params = tuple(params)
        if not self.states:
            raise SpecError(f"model {name!r}: at least one state is required")
        for kind, syms in (("state", self.states), ("parameter", self.params)):
            for s in syms:
                if not isinstance(s, sympy.Symbol):
                    raise SpecError(f"model {name!r}: {kind} {s!r} is not a sympy.Symbol")
        seen: set = set()
        for s in (*self.states, *self.params):
            if s == t:
                raise SpecError(f"model {name!r}: {s} is the time symbol; it cannot be a state or parameter")
            if s in seen or s.name in {x.name for x in seen}:
                raise SpecError(f"model {name!r}: the name {s.name!r} is declared twice")
            seen.add(s)
        self.rhs = tuple(_expr(e, f"rhs[{i}]") for i, e in enumerate(rhs))
        self.z0 = tuple(_expr(e, f"z0[{i}]") for i, e in enumerate(z0))
        if len(self.rhs) != len(self.states):
            raise SpecError(f"model {name!r}: rhs has {len(self.rhs)} expressions for {len(self.states)} states; "
                            f"give one per state")
        if len(self.z0) != len(self.states):
            raise SpecError(f"model {name!r}: z0 has {len(self.z0)} values for {len(self.states)} states; "
                            f"give one per state")
        self.t0 = _exact(t0, "t0")
        self.t1 = _exact(t1, "t1")
        if not self.t1 > self.t0:
            raise SpecError(f"model {name!r}: t1 = {self.t1} must be greater than t0 = {self.t0}")
        pv = dict(param_values or {})
        missing = [p.name for p in self.params if p not in pv]
        if missing:
            raise SpecError(f"model {name!r}: no value for parameter(s) {', '.join(missing)}")
        extra = [str(k) for k in pv if k not in self.params]
        if extra:
            raise SpecError(f"model {name!r}: values given for undeclared parameter(s) {', '.join(extra)}")
        self.param_values = {p: _exact(pv[p], f"params.{p.name}") for p in self.params}
        self.terminal = None if terminal is None else _expr(terminal, "loss.terminal")
        self.running = None if running is None else _expr(running, "loss.running")
        obs = []
        for i, (time, term) in enumerate(observations):
            obs.append(Observation(_exact(time, f"loss.observations.times[{i}]"),
                                   _expr(term, f"loss.observations[{i}]")))
        self.observations = tuple(obs)
        for i in range(1, len(obs)):
            if not obs[i].time > obs[i - 1].time:
                raise SpecError(f"model {name!r}: observation times must be strictly increasing "
                                f"(times[{i}] = {obs[i].time} after {obs[i - 1].time})")
        for i, o in enumerate(obs):
            if not (self.t0 < o.time <= self.t1):
                raise SpecError(f"model {name!r}: observation time times[{i}] = {o.time} is outside (t0, t1] = "
                                f"({self.t0}, {self.t1}]; observations must lie after t0 and at or before t1")
        if self.terminal is None and not obs and self.running is None:
            raise SpecError(f"model {name!r}: the loss is empty; give a terminal term, observations or a running cost")
        zs, ps = set(self.states), set(self.params)
        self._check_symbols("rhs", self.rhs, zs | ps | {t})
        self._check_symbols("z0", self.z0, ps)
        if self.terminal is not None:
            self._check_symbols("loss.terminal", [self.terminal], zs | ps)
        if self.running is not None:
            self._check_symbols("loss.running", [self.running], zs | ps | {t})
        for i, o in enumerate(obs):
            self._check_symbols(f"loss.observations[{i}]", [o.term], zs | ps)
        self.param_groups = dict(param_groups or {})
        self.spec = dict(spec) if spec is not None else None

    def _check_symbols(self, field: str, exprs, allowed: set) -> None:
        for i, e in enumerate(exprs):
            bad = sorted(str(s) for s in e.free_symbols - allowed)
            if bad:
                where = field if len(exprs) == 1 else f"{field}[{i}]"
                raise SpecError(f"model {self.name!r}: {where} uses {', '.join(bad)}, which is not allowed there "
                                f"(allowed: {', '.join(sorted(str(s) for s in allowed))})")
            if e.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo):
                raise SpecError(f"model {self.name!r}: {field} is not finite ({e})")

    # -- convenience -------------------------------------------------------------------------------------------
    @property
    def nz(self) -> int:
        return len(self.states)

    @property
    def np(self) -> int:
        return len(self.params)

    @property
    def param_names(self) -> list[str]:
        return [p.name for p in self.params]

    @property
    def state_names(self) -> list[str]:
        return [s.name for s in self.states]

    @property
    def has_terminal(self) -> bool:
        return self.terminal is not None

    @property
    def theta(self) -> list:
        """Nominal parameter values, in the order of ``params``."""
        return [self.param_values[p] for p in self.params]

    def values_with(self, values: Mapping, convert=lambda key, v: v) -> dict:
        """The nominal values with some replaced: keys of ``values`` are symbols or names (unknown ones are a
        SpecError); ``convert(key, v)`` may turn each given value into a number."""
        by_name = {p.name: p for p in self.params}
        pv = dict(self.param_values)
        for k, v in values.items():
            key = by_name.get(k) if isinstance(k, str) else k
            if key not in pv:
                raise SpecError(f"model {self.name!r}: no parameter named {k!s}")
            pv[key] = convert(k, v)
        return pv

    def with_values(self, values: Mapping) -> "Model":
        """A copy with some parameter values replaced (keys: symbols or names)."""
        pv = self.values_with(values)
        return Model(name=self.name, states=self.states, params=self.params, rhs=self.rhs, z0=self.z0,
                     t0=self.t0, t1=self.t1, param_values=pv, terminal=self.terminal,
                     observations=[(o.time, o.term) for o in self.observations], running=self.running,
                     t=self.t, param_groups=self.param_groups, description=self.description, spec=None)

    def fingerprint(self) -> str:
        """sha256 of a canonical text of the model (structure and values): names generated code and caches."""
        parts = [
            "name=" + self.name,
            "states=" + ",".join(self.state_names),
            "params=" + ",".join(self.param_names),
            "rhs=" + ";".join(sympy.srepr(e) for e in self.rhs),
            "z0=" + ";".join(sympy.srepr(e) for e in self.z0),
            f"t0={sympy.srepr(self.t0)}", f"t1={sympy.srepr(self.t1)}",
            "values=" + ";".join(sympy.srepr(self.param_values[p]) for p in self.params),
            "terminal=" + (sympy.srepr(self.terminal) if self.terminal is not None else ""),
            "obs=" + ";".join(f"{sympy.srepr(o.time)}:{sympy.srepr(o.term)}" for o in self.observations),
            "running=" + (sympy.srepr(self.running) if self.running is not None else ""),
        ]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()

    def __repr__(self) -> str:
        return f"Model({self.name!r}, states={self.state_names}, params={self.param_names})"
