"""TOML spec files -> :class:`~symode.model.Model` (a public contract).

Format::

    name = "logistic"
    description = "..."               # optional
    states = ["z"]
    rhs = ["r*z*(1 - z/K)"]           # one expression per state; may use t
    z0 = ["0.1"]                      # one expression per state; may use params
    t0 = "0"                          # TOML number or decimal string
    t1 = "3"
    [params]                          # name = value; exact decimals as written
    r = "1.3"
    K = "2.0"
    [loss]
    terminal = "(z - 1.5)**2"         # states (at t1) and params
    running = "..."                   # optional running cost r(z, t, θ)
    [loss.observations]               # optional
    times = ["0.5", "1.0"]
    data = [["0.5"], ["-0.4"]]        # a row per time, a column per state; loss term Σ_j (z_j - d_ij)²

Every number is an exact decimal (TOML floats are read as ``decimal.Decimal``, never as binary doubles).
Expressions go through :func:`symode.expr.parse_expression` (an ``ast`` whitelist; no eval anywhere).
Unknown keys are errors, so a typo cannot silently drop part of a model.
"""
from __future__ import annotations

import json
import re
from decimal import Decimal, localcontext
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

import sympy

from .arrays import node as N
from .arrays.declare import Declarations, declare_params, declare_states, params_file_values
from .arrays.network import network_rhs
from .arrays.node import Node
from .errors import SpecError
from .expr import FUNCTIONS, parse_decimal
from .model import Model, squared_error_terms
from .spec_terms import MAX_OBSERVATIONS, Expressions, _list, _number, observation_terms

MODEL_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]{0,63}$")
#: Spec files larger than this are refused before parsing (a model spec is a few kB).
MAX_SPEC_BYTES = 1_000_000
#: Caps on declared sizes (each far above any model symode can derive in reasonable time).
MAX_STATES = 64
MAX_PARAMS = 4096

_TOP_KEYS = {"name", "description", "states", "rhs", "z0", "t0", "t1", "params", "params_file", "defs", "network",
             "loss"}
_LOSS_KEYS = {"terminal", "running", "observations"}


def _parse_float(text: str) -> Decimal:
    # TOML floats (incl. nan/inf) arrive here as text; keep them exact and refuse non-finite ones later
    return Decimal(text)


def load_spec(text: str | bytes, source: str = "<spec>", base_dir: str | Path | None = None) -> Model:
    """Parse spec TOML ``text`` into a validated :class:`Model`; every problem is a :class:`SpecError`.

    ``base_dir`` is the directory a ``params_file`` is looked up in (:func:`load_spec_file` passes the spec's).
    """
    if isinstance(text, bytes):
        if len(text) > MAX_SPEC_BYTES:
            raise SpecError(f"{source}: spec is larger than {MAX_SPEC_BYTES} bytes")
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SpecError(f"{source}: not UTF-8 text ({exc})") from None
    if len(text) > MAX_SPEC_BYTES:
        raise SpecError(f"{source}: spec is larger than {MAX_SPEC_BYTES} bytes")
    try:
        spec = tomllib.loads(text, parse_float=_parse_float)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{source}: invalid TOML: {exc}") from None
    try:
        return _build(spec, base_dir)
    except SpecError as exc:
        if source != "<spec>" and not str(exc).startswith(source):
            raise SpecError(f"{source}: {exc}") from None
        raise


def load_spec_file(path: str | Path) -> Model:
    """Read and parse a spec file (see :func:`load_spec`)."""
    p = Path(path)
    try:
        if p.stat().st_size > MAX_SPEC_BYTES:
            raise SpecError(f"{p}: spec is larger than {MAX_SPEC_BYTES} bytes")
        data = p.read_bytes()
    except OSError as exc:
        raise SpecError(f"cannot read spec file {p}: {exc.strerror or exc}") from None
    return load_spec(data, source=str(p), base_dir=p.parent)


# Over 80 lines on purpose: one pass over the spec's sections in the order the format above documents them,
# each a few checks sharing the declarations being built; split up, every helper would take and return them.
def _build(spec: dict, base_dir: Path | None = None) -> Model:
    unknown = sorted(set(spec) - _TOP_KEYS)
    if unknown:
        raise SpecError(f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_TOP_KEYS))}")
    name = spec.get("name")
    if not isinstance(name, str) or not MODEL_NAME_RE.fullmatch(name):
        raise SpecError(f"name: give a model name matching {MODEL_NAME_RE.pattern} (got {name!r})")
    description = spec.get("description", "")
    if not isinstance(description, str):
        raise SpecError("description: expected a string")

    state_entries = _list(spec, "states", "states")
    if not state_entries:
        raise SpecError("states: declare at least one state")
    if len(state_entries) > MAX_STATES:
        raise SpecError(f"states: at most {MAX_STATES} states are supported")
    params_table = spec.get("params", {})
    if not isinstance(params_table, dict):
        raise SpecError("params: expected a table of name = value")
    if len(params_table) > MAX_PARAMS:
        raise SpecError(f"params: at most {MAX_PARAMS} parameters are supported")
    decl = Declarations()
    state_groups = declare_states(decl, state_entries)
    file_values, file_field = params_file_values(spec, base_dir)
    param_values = declare_params(decl, params_table, file_values, file_field)
    states = [e for g in state_groups for e in g.elements]
    nz = len(states)
    ex = Expressions(decl)

    if "network" in spec:
        if "rhs" in spec:
            raise SpecError("rhs: a model with a [network] section takes its right-hand side from the network; "
                            "remove rhs")
        if len(state_groups) != 1 or not state_groups[0].is_array:
            raise SpecError("network: the network drives one vector state; declare states = "
                            "[{name = \"z\", size = D}]")
        table = spec["network"]
        if isinstance(table, dict) and table.get("state", state_groups[0].name) != state_groups[0].name:
            raise SpecError(f"network.state: {table.get('state')!r} is not the model's state")
        params = {g.name: g for g in decl.groups if g.kind == "param"}
        net_defs, net_rhs = network_rhs(table, state_groups[0], params, decl.taken)
        ex.add_defs(net_defs)
        rhs = [net_rhs]
    ex.parse_defs(spec.get("defs", {}))
    if "network" not in spec:
        rhs_list = _list(spec, "rhs", "rhs")
        if len(rhs_list) != len(state_groups):
            raise SpecError(f"rhs: {len(rhs_list)} expressions for {len(state_groups)} states; give one per state")
        rhs = [ex.state_value(e, g, f"rhs[{i}]", ex.with_t) for i, (e, g) in enumerate(zip(rhs_list, state_groups))]
    z0_list = _list(spec, "z0", "z0")
    if len(z0_list) != len(state_groups):
        raise SpecError(f"z0: {len(z0_list)} values for {len(state_groups)} states; give one per state")
    z0 = [ex.state_value(e, g, f"z0[{i}]", ex.initial_names()) for i, (e, g) in enumerate(zip(z0_list, state_groups))]
    times = {}
    for key in ("t0", "t1"):
        if key not in spec:
            raise SpecError(f"{key}: missing; give the interval as decimal strings, e.g. t0 = \"0\"")
        v = spec[key]
        if isinstance(v, str):
            times[key] = parse_decimal(v, key)
        elif isinstance(v, (int, Decimal)) and not isinstance(v, bool):
            times[key] = _number(v, key)
        else:
            raise SpecError(f"{key}: expected a number or decimal string, got {type(v).__name__}")

    loss = spec.get("loss")
    if not isinstance(loss, dict):
        raise SpecError("loss: missing [loss] table; give loss.terminal, loss.observations or loss.running")
    unknown = sorted(set(loss) - _LOSS_KEYS)
    if unknown:
        raise SpecError(f"loss: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_LOSS_KEYS))}")
    terminal = running = None
    if "terminal" in loss:
        terminal = ex.value(loss["terminal"], "loss.terminal", ex.names)
    if "running" in loss:
        running = ex.value(loss["running"], "loss.running", ex.with_t)
    observations = observation_terms(loss["observations"], states, ex) if "observations" in loss else []
    common = dict(name=name, rhs=rhs, z0=z0, t0=times["t0"], t1=times["t1"], param_values=param_values,
                  terminal=terminal, observations=observations, running=running, description=description,
                  spec=spec)
    if decl.structured or any(isinstance(v, Node) for v in (*rhs, *z0, terminal, running)):
        return Model(groups=decl.groups, defs=ex.defs, **common)
    return Model(states=states, params=[e for g in decl.groups if g.kind == "param" for e in g.elements], **common)


# -- writing specs ------------------------------------------------------------------------------------------------
#: SymPy functions written back under their own name: the grammar's primitives whose SymPy class has the
#: grammar name (sin ... asinh; Abs is written "abs" by the printer; sqrt, sigmoid and softplus are powers,
#: exp and log in SymPy and are written as such).
_DUMP_FUNCS = {f.name for f in FUNCTIONS.values() if f.grammar and f.primitive and f.head.__name__ == f.name}


def decimal_text(v, field: str) -> str:
    """Exact decimal text of a rational number with a terminating expansion (else SpecError).

    Used wherever symode writes numbers for others to read (spec files, golden files): the text parses back
    to exactly the same rational.
    """
    if not isinstance(v, sympy.Rational):
        raise SpecError(f"{field}: {v} is not a rational number; exact decimals only")
    q = r = int(v.q)
    for f in (2, 5):
        while r % f == 0:
            r //= f
    if r != 1:
        raise SpecError(f"{field}: {v} has no finite decimal expansion; exact decimals only")
    # exact: q divides a power of ten no larger than q**2, and the context gets enough digits for that
    with localcontext() as ctx:
        ctx.prec = len(str(abs(int(v.p)))) + 2 * len(str(q)) + 5
        return format((Decimal(int(v.p)) / Decimal(q)).normalize(), "f")


def expr_to_text(expr, field: str = "expression", symbol_text: dict | None = None) -> str:
    """Spec-grammar text of a SymPy expression (round-trips through :func:`symode.expr.parse_expression`).

    Refuses anything the grammar cannot express exactly (binary floats, constants such as pi, other functions).
    ``symbol_text`` gives the text of some symbols (an array's element ``z_0`` is written ``z[0]``); ``Max(x, 0)``
    is written ``relu(x)``.
    """
    symbol_text = symbol_text or {}
    from sympy.printing.str import StrPrinter

    class _Printer(StrPrinter):
        def _print_Float(self, e):
            raise SpecError(f"{field}: the binary float {e} cannot be written exactly; use sympy.Rational")

        def _print_Abs(self, e):
            return f"abs({self._print(e.args[0])})"

        def _print_Function(self, e):
            name = type(e).__name__
            if name not in _DUMP_FUNCS:
                raise SpecError(f"{field}: the function {name!r} is not in the spec grammar")
            return f"{name}({self._print(e.args[0])})"

        def _print_Exp1(self, e):
            return "exp(1)"

        def _print_NumberSymbol(self, e):
            raise SpecError(f"{field}: the constant {e} is not in the spec grammar")

        _print_Pi = _print_NumberSymbol

        def _print_ImaginaryUnit(self, e):
            raise SpecError(f"{field}: complex numbers are not in the spec grammar")

        def _print_Symbol(self, e):
            return symbol_text.get(e, e.name)

        def _print_Max(self, e):
            if len(e.args) == 2 and 0 in e.args:
                return f"relu({self._print(e.args[1] if e.args[0] == 0 else e.args[0])})"
            raise SpecError(f"{field}: Max of {e.args} is not in the spec grammar (only relu(x) = Max(x, 0))")

    for node in sympy.preorder_traversal(expr):
        if isinstance(node, (sympy.Function, sympy.Abs)) and not isinstance(node, sympy.Abs) \
                and type(node).__name__ not in _DUMP_FUNCS:
            raise SpecError(f"{field}: the function {type(node).__name__!r} is not in the spec grammar")
    return _Printer({"order": "none"}).doprint(expr)


def _toml_str(s: str) -> str:
    # JSON's string escapes (\\, \", \n, \uXXXX) are all valid TOML basic-string escapes
    return json.dumps(s, ensure_ascii=True)


def dump_spec(model: Model) -> str:
    """The model as spec TOML text: ``load_spec(dump_spec(m))`` gives a model with the same fingerprint.

    Observation terms are written as data when they have the default squared-error form, else as ``terms``
    (one expression per time).  A structured model is written with its arrays, named terms and matrix
    expressions (a ``[network]`` as the named terms it stands for).
    """
    from .arrays.text import NodeText, element_texts
    st = model.structure
    write = NodeText(element_texts(model.groups), "expression")
    lines = [f"name = {_toml_str(model.name)}"]
    if model.description:
        lines.append(f"description = {_toml_str(model.description)}")
    sgroups = [g for g in model.groups if g.kind == "state"]
    lines.append("states = [" + ", ".join(_toml_str(g.name) if not g.is_array else
                                          f"{{name = {_toml_str(g.name)}, size = {g.size}}}" for g in sgroups) + "]")
    rhs, z0 = (st.rhs, st.z0) if st is not None else (model.rhs, model.z0)
    for key, values in (("rhs", rhs), ("z0", z0)):
        if st is not None and key == "rhs":  # named terms first: the right-hand sides use their names
            for n, v in st.defs:
                write.named[v] = n
        items = []
        for i, v in enumerate(values):
            write.field = f"{key}[{i}]"
            if isinstance(v, N.Node) and v.op == "stack":
                items.append("[" + ", ".join(_toml_str(write(x)) for x in v.args) + "]")
            else:
                items.append(_toml_str(write(v)))
        lines.append(f"{key} = [" + ", ".join(items) + "]")
    lines.append(f"t0 = {_toml_str(decimal_text(model.t0, 't0'))}")
    lines.append(f"t1 = {_toml_str(decimal_text(model.t1, 't1'))}")
    lines += ["", "[params]"]
    pv = model.param_values
    for g in model.groups:
        if g.kind != "param":
            continue
        vals = [_toml_str(decimal_text(pv[e], f"params.{e.name}")) for e in g.elements]
        if not g.is_array:
            lines.append(f"{g.name} = {vals[0]}")
        elif len(g.dims) == 1:
            lines.append(f"{g.name} = [" + ", ".join(vals) + "]")
        else:
            c = g.shape[1]
            lines.append(f"{g.name} = [" + ", ".join("[" + ", ".join(vals[r * c:(r + 1) * c]) + "]"
                                                  for r in range(g.shape[0])) + "]")
    if st is not None and st.defs:
        lines += ["", "[defs]"]
        write.named = {}
        for n, v in st.defs:
            write.field = f"defs.{n}"
            lines.append(f"{n} = {_toml_str(write(v))}")
            write.named[v] = n
    lines += ["", "[loss]"]
    terminal, running = (st.terminal, st.running) if st is not None else (model.terminal, model.running)
    for key, v in (("terminal", terminal), ("running", running)):
        if v is not None:
            write.field = f"loss.{key}"
            lines.append(f"{key} = {_toml_str(write(v))}")
    if model.observation_times:
        values = [v for _, v in st.observations] if st is not None else [o.term for o in model.observations]
        rows = [None if isinstance(v, N.Node) else _sse_row(model, v) for v in values]
        lines += ["", "[loss.observations]"]
        lines.append("times = [" + ", ".join(_toml_str(decimal_text(tm, "loss.observations.times"))
                                             for tm in model.observation_times) + "]")
        if all(r is not None for r in rows):
            lines.append("data = [" + ", ".join("[" + ", ".join(_toml_str(decimal_text(v, f"loss.observations.data[{i}]"))
                                                                for v in r) + "]" for i, r in enumerate(rows)) + "]")
        else:
            terms = []
            for i, v in enumerate(values):
                write.field = f"loss.observations.terms[{i}]"
                terms.append(_toml_str(write(v)))
            lines.append("terms = [" + ", ".join(terms) + "]")
    return "\n".join(lines) + "\n"


def _sse_row(model: Model, term):
    """The data row d if ``term`` is exactly Σ_j (z_j - d_j)², else None."""
    row = []
    for z in model.states:
        c = sympy.diff(term, z).subs({s: 0 for s in model.states})  # = -2 d_j for the SSE form
        row.append(-c / 2)
    candidate = squared_error_terms(model.states, [row])[0]
    return row if sympy.expand(candidate - term) == 0 else None
