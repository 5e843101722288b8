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

from .errors import SpecError
from .expr import FUNCTIONS, check_name, make_symbol, parse_decimal, parse_expression
from .model import T, Model, squared_error_terms

MODEL_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]{0,63}$")
#: Spec files larger than this are refused before parsing (a model spec is a few kB).
MAX_SPEC_BYTES = 1_000_000
#: Caps on declared sizes (each far above any model symode can derive in reasonable time).
MAX_STATES = 64
MAX_PARAMS = 4096
MAX_OBSERVATIONS = 10_000

_TOP_KEYS = {"name", "description", "states", "rhs", "z0", "t0", "t1", "params", "loss"}
_LOSS_KEYS = {"terminal", "running", "observations"}
_OBS_KEYS = {"times", "data"}


def _parse_float(text: str) -> Decimal:
    # TOML floats (incl. nan/inf) arrive here as text; keep them exact and refuse non-finite ones later
    return Decimal(text)


def _number(value, field: str):
    if isinstance(value, Decimal) and not value.is_finite():
        raise SpecError(f"{field}: {value} is not a finite number; give a finite decimal")
    return parse_decimal(value, field)


def _list(spec: dict, key: str, field: str | None = None) -> list:
    v = spec.get(key)
    if not isinstance(v, list):
        raise SpecError(f"{field or key}: expected a list, got {type(v).__name__ if v is not None else 'nothing'}")
    return v


def _expr_text(value, field: str, names: dict):
    if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
        return _number(value, field)
    if not isinstance(value, str):
        raise SpecError(f"{field}: expected an expression string, got {type(value).__name__}")
    return parse_expression(value, names, field)


def load_spec(text: str | bytes, source: str = "<spec>") -> Model:
    """Parse spec TOML ``text`` into a validated :class:`Model`; every problem is a :class:`SpecError`."""
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
        return _build(spec)
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
    return load_spec(data, source=str(p))


# Over 80 lines on purpose: one pass over the spec's sections in the order the format above documents them,
# each a few checks sharing the symbol table being built; split up, every helper would take and return it.
def _build(spec: dict) -> Model:
    unknown = sorted(set(spec) - _TOP_KEYS)
    if unknown:
        raise SpecError(f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_TOP_KEYS))}")
    name = spec.get("name")
    if not isinstance(name, str) or not MODEL_NAME_RE.match(name):
        raise SpecError(f"name: give a model name matching {MODEL_NAME_RE.pattern} (got {name!r})")
    description = spec.get("description", "")
    if not isinstance(description, str):
        raise SpecError("description: expected a string")

    state_names = _list(spec, "states")
    if not state_names:
        raise SpecError("states: declare at least one state")
    if len(state_names) > MAX_STATES:
        raise SpecError(f"states: at most {MAX_STATES} states are supported")
    params_table = spec.get("params", {})
    if not isinstance(params_table, dict):
        raise SpecError("params: expected a table of name = value")
    if len(params_table) > MAX_PARAMS:
        raise SpecError(f"params: at most {MAX_PARAMS} parameters are supported")

    symbols: dict = {}
    for i, n in enumerate(state_names):
        _declare(symbols, n, f"states[{i}]")
    param_syms, param_values = [], {}
    for n, v in params_table.items():
        sym = _declare(symbols, n, f"params.{n}")
        if isinstance(v, dict | list):
            raise SpecError(f"params.{n}: expected a number, got a {type(v).__name__}")
        param_syms.append(sym)
        param_values[sym] = _number(v, f"params.{n}")
    states = [symbols[n] for n in state_names]
    nz = len(states)

    with_t = {**symbols, "t": T}
    only_params = {p.name: p for p in param_syms}
    rhs_list = _list(spec, "rhs")
    if len(rhs_list) != nz:
        raise SpecError(f"rhs: {len(rhs_list)} expressions for {nz} states; give one per state")
    rhs = [_expr_text(e, f"rhs[{i}]", with_t) for i, e in enumerate(rhs_list)]
    z0_list = _list(spec, "z0")
    if len(z0_list) != nz:
        raise SpecError(f"z0: {len(z0_list)} values for {nz} states; give one per state")
    z0 = [_expr_text(e, f"z0[{i}]", only_params) for i, e in enumerate(z0_list)]
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
        terminal = _expr_text(loss["terminal"], "loss.terminal", symbols)
    if "running" in loss:
        running = _expr_text(loss["running"], "loss.running", with_t)
    observations = []
    if "observations" in loss:
        obs = loss["observations"]
        if not isinstance(obs, dict):
            raise SpecError("loss.observations: expected a table with times and data")
        unknown = sorted(set(obs) - _OBS_KEYS)
        if unknown:
            raise SpecError(f"loss.observations: unknown key(s) {', '.join(unknown)}; allowed: times, data")
        obs_times = _list(obs, "times", "loss.observations.times")
        data = _list(obs, "data", "loss.observations.data")
        if len(obs_times) > MAX_OBSERVATIONS:
            raise SpecError(f"loss.observations.times: at most {MAX_OBSERVATIONS} observations are supported")
        if len(data) != len(obs_times):
            raise SpecError(f"loss.observations.data: {len(data)} rows for {len(obs_times)} times; "
                            f"give one row per time")
        times_v = [_number(v, f"loss.observations.times[{i}]") if not isinstance(v, str)
                   else parse_decimal(v, f"loss.observations.times[{i}]") for i, v in enumerate(obs_times)]
        rows = []
        for i, row in enumerate(data):
            if not isinstance(row, list) or len(row) != nz:
                raise SpecError(f"loss.observations.data[{i}]: expected a row of {nz} values (one per state), "
                                f"got {row!r}")
            rows.append([_number(v, f"loss.observations.data[{i}][{j}]") if not isinstance(v, str)
                         else parse_decimal(v, f"loss.observations.data[{i}][{j}]") for j, v in enumerate(row)])
        observations = list(zip(times_v, squared_error_terms(states, rows)))
    return Model(name=name, states=states, params=param_syms, rhs=rhs, z0=z0, t0=times["t0"], t1=times["t1"],
                 param_values=param_values, terminal=terminal, observations=observations, running=running,
                 description=description, spec=spec)


def _declare(symbols: dict, name, field: str):
    name = check_name(name, field)
    if name == "t":
        raise SpecError(f"{field}: 't' is the time variable; choose another name for the state or parameter")
    if name in symbols:
        raise SpecError(f"{field}: the name {name!r} is declared twice")
    symbols[name] = make_symbol(name)
    return symbols[name]


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
    import sympy
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


def expr_to_text(expr, field: str = "expression") -> str:
    """Spec-grammar text of a SymPy expression (round-trips through :func:`symode.expr.parse_expression`).

    Refuses anything the grammar cannot express exactly (binary floats, constants such as pi, other functions).
    """
    import sympy
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
            return e.name

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

    Observation terms are written as data when they have the default squared-error form; models whose loss
    terms are not expressible in the format (custom observation terms) raise :class:`SpecError`.
    """
    lines = [f"name = {_toml_str(model.name)}"]
    if model.description:
        lines.append(f"description = {_toml_str(model.description)}")
    lines.append("states = [" + ", ".join(_toml_str(n) for n in model.state_names) + "]")
    lines.append("rhs = [" + ", ".join(_toml_str(expr_to_text(e, f"rhs[{i}]")) for i, e in enumerate(model.rhs)) + "]")
    lines.append("z0 = [" + ", ".join(_toml_str(expr_to_text(e, f"z0[{i}]")) for i, e in enumerate(model.z0)) + "]")
    lines.append(f"t0 = {_toml_str(decimal_text(model.t0, 't0'))}")
    lines.append(f"t1 = {_toml_str(decimal_text(model.t1, 't1'))}")
    lines.append("")
    lines.append("[params]")
    for p in model.params:
        lines.append(f"{p.name} = {_toml_str(decimal_text(model.param_values[p], 'params.' + p.name))}")
    lines.append("")
    lines.append("[loss]")
    if model.terminal is not None:
        lines.append(f"terminal = {_toml_str(expr_to_text(model.terminal, 'loss.terminal'))}")
    if model.running is not None:
        lines.append(f"running = {_toml_str(expr_to_text(model.running, 'loss.running'))}")
    if model.observations:
        rows = []
        for i, o in enumerate(model.observations):
            row = _sse_row(model, o.term)
            if row is None:
                raise SpecError(f"loss.observations[{i}]: only squared-error observation terms can be written "
                                f"to a spec")
            rows.append("[" + ", ".join(_toml_str(decimal_text(v, f"loss.observations.data[{i}]")) for v in row) + "]")
        lines.append("")
        lines.append("[loss.observations]")
        lines.append("times = [" + ", ".join(_toml_str(decimal_text(o.time, "loss.observations.times"))
                                             for o in model.observations) + "]")
        lines.append("data = [" + ", ".join(rows) + "]")
    return "\n".join(lines) + "\n"


def _sse_row(model: Model, term):
    """The data row d if ``term`` is exactly Σ_j (z_j - d_j)², else None."""
    import sympy
    row = []
    for z in model.states:
        c = sympy.diff(term, z).subs({s: 0 for s in model.states})  # = -2 d_j for the SSE form
        row.append(-c / 2)
    candidate = squared_error_terms(model.states, [row])[0]
    return row if sympy.expand(candidate - term) == 0 else None
