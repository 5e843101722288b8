"""``symode grad``: loss and gradients of a model by one method (JSON contract in :mod:`symode.result`)."""
from __future__ import annotations

import json
import sys

from ..errors import SpecError


def _refuse_constant(name: str):
    raise SpecError(f"--params-json: {name} is not a number; give finite decimals as strings")


def parameter_overrides(pairs, json_path, flag: str = "--param") -> dict:
    """``--param NAME=DECIMAL`` pairs and a ``--params-json`` file (an object name -> decimal string or
    integer) as exact values; NaN/Infinity (which Python's json accepts by default) and floats are refused.
    ``flag`` names the option in messages (``symode train --truth`` reads the same pairs)."""
    from ..expr import parse_decimal
    values: dict = {}
    if json_path:
        try:
            with open(json_path, encoding="utf-8") as fh:
                data = json.load(fh, parse_constant=_refuse_constant, parse_float=lambda s: s)
        except OSError as exc:
            raise SpecError(f"--params-json: cannot read {json_path}: {exc.strerror or exc}") from None
        except json.JSONDecodeError as exc:
            raise SpecError(f"--params-json: invalid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise SpecError("--params-json: expected a JSON object of name: value")
        for k, v in data.items():
            values[k] = parse_decimal(v, f"--params-json {k}")
    for pair in pairs or ():
        name, sep, text = pair.partition("=")
        if not sep:
            raise SpecError(f"{flag} {pair!r}: expected NAME=DECIMAL")
        values[name.strip()] = parse_decimal(text.strip(), f"{flag} {name.strip()}")
    return values


def _cmd_grad(args) -> int:
    from ..library import resolve_model
    from ..methods import compute
    from ..symbolic.budget import budget_from_env, call_with_budget
    model = resolve_model(args.model)
    overrides = parameter_overrides(args.param, args.params_json)
    if overrides:
        model = model.with_values(overrides)
    seconds, memory = budget_from_env()
    # derivation and solve of a possibly untrusted model: in a child under the time/memory budget
    result = call_with_budget(compute, model, args.method, seconds=seconds, memory_mb=memory,
                              what=f"computing {args.method} gradients of {model.name!r}",
                              kwargs=dict(digits=args.digits, scheme=args.scheme, steps=args.steps))
    sys.stdout.write(result.to_json() + "\n" if args.json else result.to_table())
    return 0


def register(sub) -> None:
    from ..methods import METHODS
    s = sub.add_parser("grad", help="loss and gradients of a model by one method")
    s.add_argument("model", help="built-in model name or spec file (.toml)")
    s.add_argument("--method", choices=list(METHODS), default="oracle")
    s.add_argument("--digits", type=int, default=None, help="significant digits (oracle, exact; 5 to 1000, default 30)")
    s.add_argument("--scheme", default=None, help="fixed-step scheme (float64 routes; default rk4)")
    s.add_argument("--steps", type=int, default=None, help="number of fixed steps (float64 routes; default 100)")
    s.add_argument("--param", action="append", metavar="NAME=DECIMAL",
                   help="evaluate at this parameter value instead of the model's (repeatable)")
    s.add_argument("--params-json", metavar="FILE", help="parameter values as a JSON object of decimal strings")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.set_defaults(func=_cmd_grad)
