"""The model: an initial-value problem with a scalar loss.

A :class:`Model` is the single input every later stage (symbolic derivation, oracle, CasADi routes) takes:

    dz/dt = f(z, t, θ),   z(t0) = z0(θ),   t in [t0, t1]

    L(θ) = ℓ(z(t1), θ)                       terminal term (optional)
         + Σ_i ℓ_i(z(t_i), θ)                observation terms, t0 <= t_1 < ... < t_m <= t1 (optional)
         + ∫_{t0}^{t1} r(z(t), t, θ) dt      running cost (optional)

At least one of the three loss parts must be present.  ``states`` is the vector z, ``params`` the flat vector θ
(matrix parameters such as an MLP's weights are flattened row-major into their elements ``W1_0_0, W1_0_1, ...``;
a structured model keeps them as matrices in ``structure``), ``t`` the time symbol.  All numbers (t0, t1, observation times, nominal parameter values) are exact
SymPy numbers: a spec's ``0.1`` is ``Rational(1, 10)``, never the binary double.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from types import MappingProxyType
from typing import Mapping, Sequence

import sympy

from .arrays import node as N
from .arrays.structure import Structure, array_items
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


def _value(value, field: str, shape: tuple[int, int] | None = None):
    """A model expression: a scalar SymPy expression or (in a structured model) an array node of ``shape``."""
    if isinstance(value, N.Node):
        want = shape or (1, 1)
        if value.shape != want:
            raise SpecError(f"{field}: expected a {'scalar' if want == (1, 1) else f'{want[0]}x{want[1]} array'}, "
                            f"got a {value.shape[0]}x{value.shape[1]} array")
        return value
    if shape not in (None, (1, 1)):
        raise SpecError(f"{field}: expected a {shape[0]}x{shape[1]} array, got a scalar")
    return _expr(value, field)


class Model:
    """An ODE initial-value problem with a scalar loss; see the module docstring for the equations.

    The constructor validates structure (lengths, symbols used, time ordering, finiteness) and raises
    :class:`~symode.errors.SpecError` before anything is derived.  A model is immutable: its fingerprint and
    structure hash are computed once, on first use.

    Scalar form: ``states``, ``params`` (symbols) and one scalar expression per state in ``rhs`` and ``z0``.
    Structured form (vectors and matrices): pass ``groups`` (:class:`~symode.arrays.node.Group`, states and
    parameters in order) instead of ``states``/``params``, and one value per *state group* in ``rhs``/``z0``
    (array nodes for vector states); losses may be nodes too.  ``structure`` then holds the matrix form and
    ``states``, ``params``, ``rhs`` ... the element-wise scalar form (expanded on first use).
    """

    def __init__(self, *, name: str, states: Sequence[sympy.Symbol] = (), params: Sequence[sympy.Symbol] = (),
                 rhs: Sequence = (), z0: Sequence = (), t0, t1,
                 param_values: Mapping[sympy.Symbol, object] | None = None,
                 terminal=None, observations: Sequence[tuple[object, object]] = (), running=None,
                 t: sympy.Symbol = T, groups: Sequence[N.Group] | None = None, defs: Sequence = (),
                 description: str = "", spec: Mapping | None = None, _shared: dict | None = None):
        s = object.__setattr__
        s(self, "name", name)
        s(self, "description", description)
        s(self, "t", t)
        structured = groups is not None
        if structured:
            groups = tuple(groups)
            if states or params:
                raise SpecError(f"model {name!r}: give either groups or states/params, not both")
            states = [e for g in groups if g.kind == "state" for e in g.elements]
            params = [e for g in groups if g.kind == "param" for e in g.elements]
        s(self, "states", tuple(states))
        s(self, "params", tuple(params))
        self._check_declarations(t)
        sgroups = tuple(g for g in groups if g.kind == "state") if structured else ()
        shapes = [g.shape for g in sgroups] if structured else [None] * len(self.states)
        if len(rhs) != len(shapes):
            raise SpecError(f"model {name!r}: rhs has {len(rhs)} expressions for {len(shapes)} states; "
                            f"give one per state")
        if len(z0) != len(shapes):
            raise SpecError(f"model {name!r}: z0 has {len(z0)} values for {len(shapes)} states; "
                            f"give one per state")
        rhs_v = tuple(_value(e, f"rhs[{i}]", sh) for i, (e, sh) in enumerate(zip(rhs, shapes)))
        z0_v = tuple(_value(e, f"z0[{i}]", sh) for i, (e, sh) in enumerate(zip(z0, shapes)))
        s(self, "t0", _exact(t0, "t0"))
        s(self, "t1", _exact(t1, "t1"))
        if not self.t1 > self.t0:
            raise SpecError(f"model {name!r}: t1 = {self.t1} must be greater than t0 = {self.t0}")
        s(self, "param_values", MappingProxyType(self._values(param_values)))
        term_v = None if terminal is None else _value(terminal, "loss.terminal")
        run_v = None if running is None else _value(running, "loss.running")
        obs_v = tuple((_exact(tm, f"loss.observations.times[{i}]"), _value(v, f"loss.observations[{i}]"))
                      for i, (tm, v) in enumerate(observations))
        s(self, "observation_times", tuple(tm for tm, _ in obs_v))
        self._check_times()
        if term_v is None and not obs_v and run_v is None:
            raise SpecError(f"model {name!r}: the loss is empty; give a terminal term, observations or a running cost")
        zs, ps = set(self.states), set(self.params)
        self._check_symbols("rhs", rhs_v, zs | ps | {t})
        self._check_symbols("z0", z0_v, ps)
        if term_v is not None:
            self._check_symbols("loss.terminal", [term_v], zs | ps)
        if run_v is not None:
            self._check_symbols("loss.running", [run_v], zs | ps | {t})
        for i, (_, v) in enumerate(obs_v):
            self._check_symbols(f"loss.observations[{i}]", [v], zs | ps)
        if structured:
            defs = tuple((n, v) for n, v in defs)
            s(self, "structure", Structure(groups, rhs_v, z0_v, term_v, obs_v, run_v, defs))
        else:
            s(self, "structure", None)
            s(self, "_scalar", {"rhs": rhs_v, "z0": z0_v, "terminal": term_v, "running": run_v,
                                "observations": tuple(Observation(tm, v) for tm, v in obs_v)})
        s(self, "spec", MappingProxyType(dict(spec)) if spec is not None else None)
        # what does not depend on the parameter values is shared with copies made by with_values
        s(self, "_shared", _shared if _shared is not None else {})
        s(self, "_frozen", True)

    def __setattr__(self, key, value):
        raise AttributeError(f"Model is immutable: cannot set {key!r} (use with_values for other parameter values)")

    __delattr__ = __setattr__

    def __getstate__(self) -> dict:  # pickling (mapping proxies cannot be pickled; the caches are rebuilt)
        state = {k: v for k, v in self.__dict__.items() if k not in ("_shared", "_fingerprint")}
        state["param_values"] = dict(self.param_values)
        state["spec"] = None if self.spec is None else dict(self.spec)
        return state

    def __setstate__(self, state: dict) -> None:
        for k, v in state.items():
            object.__setattr__(self, k, v)
        object.__setattr__(self, "param_values", MappingProxyType(state["param_values"]))
        object.__setattr__(self, "spec", None if state["spec"] is None else MappingProxyType(state["spec"]))
        object.__setattr__(self, "_shared", {})

    # -- validation ----------------------------------------------------------------------------------------
    def _check_declarations(self, t) -> None:
        name = self.name
        if not self.states:
            raise SpecError(f"model {name!r}: at least one state is required")
        for kind, syms in (("state", self.states), ("parameter", self.params)):
            for sym in syms:
                if not isinstance(sym, sympy.Symbol):
                    raise SpecError(f"model {name!r}: {kind} {sym!r} is not a sympy.Symbol")
        seen: set = set()
        for sym in (*self.states, *self.params):
            if sym == t:
                raise SpecError(f"model {name!r}: {sym} is the time symbol; it cannot be a state or parameter")
            if sym.name in seen:
                raise SpecError(f"model {name!r}: the name {sym.name!r} is declared twice")
            seen.add(sym.name)

    def _values(self, param_values) -> dict:
        pv = dict(param_values or {})
        missing = [p.name for p in self.params if p not in pv]
        if missing:
            shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
            raise SpecError(f"model {self.name!r}: no value for parameter(s) {shown}")
        declared = set(self.params)
        extra = [str(k) for k in pv if k not in declared]
        if extra:
            raise SpecError(f"model {self.name!r}: values given for undeclared parameter(s) {', '.join(extra)}")
        return {p: _exact(pv[p], f"params.{p.name}") for p in self.params}

    def _check_times(self) -> None:
        times = self.observation_times
        for i in range(1, len(times)):
            if not times[i] > times[i - 1]:
                raise SpecError(f"model {self.name!r}: observation times must be strictly increasing "
                                f"(times[{i}] = {times[i]} after {times[i - 1]})")
        for i, tm in enumerate(times):
            if not (self.t0 <= tm <= self.t1):
                raise SpecError(f"model {self.name!r}: observation time times[{i}] = {tm} is outside [t0, t1] = "
                                f"[{self.t0}, {self.t1}]; observations must lie in the interval")

    def _check_symbols(self, field: str, exprs, allowed: set) -> None:
        for i, e in enumerate(exprs):
            bad = sorted(str(x) for x in N.symbols_of(e) - allowed)
            if bad:
                where = field if len(exprs) == 1 else f"{field}[{i}]"
                raise SpecError(f"model {self.name!r}: {where} uses {', '.join(bad)}, which is not allowed there "
                                f"(allowed: {', '.join(sorted(str(x) for x in allowed))})")
            if not isinstance(e, N.Node) and e.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo):
                raise SpecError(f"model {self.name!r}: {field} is not finite ({e})")

    # -- the scalar form (expanded from the structure on first use) ----------------------------------------------
    def _scalar_field(self, key: str):
        """One field of the scalar form; a structured model expands it from its nodes on first use (each field
        apart: asking whether there is a terminal term never expands the right-hand side)."""
        sc = self.__dict__.get("_scalar")
        if sc is not None:
            return sc[key]
        cache = self._shared.setdefault("scalar", {})
        if key not in cache:
            st = self.structure
            memo = self._shared.setdefault("expand_memo", {})

            def one(v):
                return None if v is None else N.expand(v, memo)[0, 0]
            if key in ("rhs", "z0"):
                cache[key] = _flatten_memo(getattr(st, key), memo)
            elif key == "observations":
                cache[key] = tuple(Observation(tm, one(v)) for tm, v in st.observations)
            else:
                cache[key] = one(getattr(st, key))
        return cache[key]

    @property
    def rhs(self) -> tuple:
        """f(z, t, θ), one scalar expression per (element of a) state."""
        return self._scalar_field("rhs")

    @property
    def z0(self) -> tuple:
        return self._scalar_field("z0")

    @property
    def terminal(self):
        return self._scalar_field("terminal")

    @property
    def running(self):
        return self._scalar_field("running")

    @property
    def observations(self) -> tuple:
        return self._scalar_field("observations")

    @property
    def has_terminal(self) -> bool:
        return (self.structure.terminal if self.structure else self._scalar["terminal"]) is not None

    @property
    def has_running(self) -> bool:
        return (self.structure.running if self.structure else self._scalar["running"]) is not None

    @property
    def groups(self) -> tuple:
        """States and parameters as :class:`~symode.arrays.node.Group` (each scalar its own group)."""
        if self.structure is not None:
            return self.structure.groups
        return (*(N.Group(x.name, "state", (), (x,)) for x in self.states),
                *(N.Group(x.name, "param", (), (x,)) for x in self.params))

    @property
    def param_groups(self) -> dict:
        """Array parameters by name, as SymPy matrices of their element symbols."""
        return {g.name: g.matrix() for g in self.groups if g.kind == "param" and g.is_array}

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
        return [x.name for x in self.states]

    @property
    def theta(self) -> list:
        """Nominal parameter values, in the order of ``params``."""
        return [self.param_values[p] for p in self.params]

    def values_with(self, values: Mapping, convert=lambda key, v: v) -> dict:
        """The nominal values with some replaced: keys of ``values`` are symbols or names (unknown ones are a
        SpecError); ``convert(key, v)`` may turn each given value into a number.  An array parameter's name
        takes a nested list (or array) of its shape; its elements' names (``W1_0_1``) take one value each."""
        by_name = {p.name: p for p in self.params}
        arrays = {g.name: g for g in self.groups if g.kind == "param" and g.is_array}
        pv = dict(self.param_values)
        for k, v in values.items():
            if isinstance(k, str) and k in arrays and k not in by_name:
                for (idx, x), sym in zip(array_items(arrays[k], v), arrays[k].elements):
                    pv[sym] = convert(f"{k}{idx}", x)
                continue
            key = by_name.get(k) if isinstance(k, str) else k
            if key not in pv:
                from .suggest import choose
                raise SpecError(f"model {self.name!r}: no parameter named {k!s}"
                                f"{choose(str(k), [*by_name, *arrays], verb='its parameters are')}")
            pv[key] = convert(k, v)
        return pv

    def with_values(self, values: Mapping) -> "Model":
        """A copy with some parameter values replaced (keys: symbols or names; see :meth:`values_with`).  Values
        are exact numbers, or decimal strings as ``symode grad --param NAME=DECIMAL`` takes them (``"1.5"``,
        ``"-2e-3"``: exact)."""
        from .expr import parse_decimal

        def convert(key, v):
            return parse_decimal(v, f"with_values: {key!s}") if isinstance(v, str) else v
        pv = self.values_with(values, convert)
        st = self.structure
        if st is not None:
            return Model(name=self.name, groups=st.groups, rhs=st.rhs, z0=st.z0, t0=self.t0, t1=self.t1,
                         param_values=pv, terminal=st.terminal, observations=st.observations, running=st.running,
                         t=self.t, defs=st.defs, description=self.description, spec=None, _shared=self._shared)
        sc = self._scalar
        return Model(name=self.name, states=self.states, params=self.params, rhs=sc["rhs"], z0=sc["z0"],
                     t0=self.t0, t1=self.t1, param_values=pv, terminal=sc["terminal"],
                     observations=[(o.time, o.term) for o in sc["observations"]], running=sc["running"],
                     t=self.t, description=self.description, spec=None, _shared=self._shared)

    def scalar_model(self) -> "Model":
        """The same model in scalar form (element-wise expressions, no structure); a scalar model itself."""
        if self.structure is None:
            return self
        return Model(name=self.name, states=self.states, params=self.params, rhs=self.rhs, z0=self.z0, t0=self.t0,
                     t1=self.t1, param_values=self.param_values, terminal=self.terminal,
                     observations=[(o.time, o.term) for o in self.observations], running=self.running, t=self.t,
                     description=self.description)

    # -- hashes ------------------------------------------------------------------------------------------------
    def _structure_text(self) -> list[str]:
        """The canonical text of everything but the parameter values (shared by with_values copies)."""
        parts = self._shared.get("text")
        if parts is None:
            if self.structure is None:
                sc = self._scalar
                parts = [
                    "name=" + self.name,
                    "states=" + ",".join(self.state_names),
                    "params=" + ",".join(self.param_names),
                    "rhs=" + ";".join(sympy.srepr(e) for e in sc["rhs"]),
                    "z0=" + ";".join(sympy.srepr(e) for e in sc["z0"]),
                    f"t0={sympy.srepr(self.t0)}", f"t1={sympy.srepr(self.t1)}",
                    None,  # the values go here (the fingerprint's historical order)
                    "terminal=" + (sympy.srepr(sc["terminal"]) if sc["terminal"] is not None else ""),
                    "obs=" + ";".join(f"{sympy.srepr(o.time)}:{sympy.srepr(o.term)}" for o in sc["observations"]),
                    "running=" + (sympy.srepr(sc["running"]) if sc["running"] is not None else ""),
                ]
            else:
                st = self.structure
                parts = [
                    "structured-model-1",
                    "name=" + self.name,
                    "groups=" + ";".join(f"{g.kind}:{g.name}:{'x'.join(map(str, g.dims))}" for g in st.groups),
                    f"t0={sympy.srepr(self.t0)}", f"t1={sympy.srepr(self.t1)}",
                    "obs_times=" + ";".join(sympy.srepr(tm) for tm, _ in st.observations),
                    N.canonical_text(st.named()),
                    None,
                ]
            self._shared["text"] = parts
        return parts

    def fingerprint(self) -> str:
        """sha256 of a canonical text of the model (structure and values): names generated code and caches.

        Computed once per model.  A scalar model's text is the one symode has always used (committed
        generated code prints it)."""
        fp = self.__dict__.get("_fingerprint")
        if fp is None:
            values = "values=" + ";".join(sympy.srepr(self.param_values[p]) for p in self.params)
            text = "\n".join(values if part is None else part for part in self._structure_text())
            fp = hashlib.sha256(text.encode()).hexdigest()
            object.__setattr__(self, "_fingerprint", fp)
        return fp

    def structure_hash(self) -> str:
        """sha256 of the same canonical text without the parameter values: equal for every copy made by
        :meth:`with_values`, so that code compiled with θ as an input can be keyed by it."""
        h = self._shared.get("structure_hash")
        if h is None:
            text = "\n".join("values=(omitted)" if part is None else part for part in self._structure_text())
            h = self._shared["structure_hash"] = hashlib.sha256(("structure\n" + text).encode()).hexdigest()
        return h

    def __repr__(self) -> str:
        return f"Model({self.name!r}, states={self.state_names}, params={self.param_names})"


def _flatten_memo(values, memo: dict) -> tuple:
    out = []
    for v in values:
        out.extend(N.expand(v, memo)) if isinstance(v, N.Node) else out.append(v)
    return tuple(out)
