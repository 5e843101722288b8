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

import re
from decimal import Decimal
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

from ..arrays.declare import Declarations, declare_params, declare_states, params_file_values
from ..arrays.network import network_rhs
from ..arrays.node import Node
from ..errors import SpecError
from ..inputs import read_user_file, user_text
from ..expr import parse_decimal
from ..model import T, Model
from .terms import MAX_OBSERVATIONS, Expressions, _list, _number, observation_terms

#: A model name (it names golden files and generated directories): always used with ``fullmatch``; ``\Z``,
#: not ``$``, which also matches before a trailing newline (``"x\n"``).
MODEL_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_\-]{0,63}\Z", re.ASCII)
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
        text = user_text(text, source)
    if len(text) > MAX_SPEC_BYTES:
        raise SpecError(f"{source}: spec is larger than {MAX_SPEC_BYTES} bytes")
    text = text.removeprefix("\ufeff")  # a byte-order mark some editors write; TOML itself refuses it
    try:
        spec = tomllib.loads(text, parse_float=_parse_float)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{source}: invalid TOML: {exc}") from None
    except ValueError as exc:  # int() of an integer beyond Python's 4300-digit conversion limit
        raise SpecError(f"{source}: a number in the spec is too large to read ({exc}); numbers have at most "
                        "100 significant digits and magnitudes up to 1e300") from None
    except RecursionError:
        raise SpecError(f"{source}: arrays or tables nested too deeply") from None
    try:
        return _build(spec, base_dir)
    except SpecError as exc:
        if source != "<spec>" and not str(exc).startswith(source):
            raise SpecError(f"{source}: {exc}") from None
        raise


def load_spec_file(path: str | Path) -> Model:
    """Read and parse a spec file (see :func:`load_spec`)."""
    p = Path(path)
    return load_spec(read_user_file(p, "spec file", MAX_SPEC_BYTES), source=str(p), base_dir=p.parent)


# Over 80 lines on purpose: one pass over the spec's sections in the order the format above documents them,
# each a few checks sharing the declarations being built; split up, every helper would take and return them.
def _build(spec: dict, base_dir: Path | None = None) -> Model:
    unknown = sorted(set(spec) - _TOP_KEYS)
    if unknown:
        raise SpecError(f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_TOP_KEYS))}")
    name = spec.get("name")
    if not isinstance(name, str) or not MODEL_NAME_RE.fullmatch(name):
        raise SpecError(f"name: give a model name of 1-64 ASCII letters, digits, '_' or '-', starting with a "
                        f"letter, nothing after it (got {name!r})")
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
        net_defs, net_rhs = network_rhs(table, state_groups[0], params, decl.taken, T)
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
