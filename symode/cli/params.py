"""Parameter overrides, the same on every command that evaluates a model (grad, check, codegen, oracle export,
train): ``--param NAME=DECIMAL`` (repeatable; NAME a parameter or an array element such as ``W1_0_1``) and
``--params-json FILE`` (a JSON object ``name: value``; an array parameter takes a nested list of its shape).

Values are exact: decimal strings and JSON numbers are the decimals they spell (``0.1`` is 1/10); NaN and
Infinity (which Python's json accepts by default), duplicate keys and non-finite values are refused.
"""
from __future__ import annotations

from ..errors import SpecError

__all__ = ["add_parameter_options", "parameter_overrides", "model_with_overrides", "MAX_PARAMS_JSON_BYTES"]

#: Largest --params-json file read (a 4,360-parameter network as JSON decimals is ~35 kB).
MAX_PARAMS_JSON_BYTES = 64 * 1024 * 1024


def add_parameter_options(parser, what: str = "evaluate at") -> None:
    parser.add_argument("--param", action="append", metavar="NAME=DECIMAL",
                        help=f"{what} this parameter value instead of the model's (repeatable; an array element "
                             f"is NAME_i or NAME_i_j)")
    parser.add_argument("--params-json", metavar="FILE",
                        help="parameter values as a JSON object name: value (decimal strings or numbers; an array "
                             "takes a nested list of its shape)")


def _read_json(path: str) -> dict:
    from ..arrays.values import read_json_values
    from ..inputs import read_user_file, user_text
    # a regular file only, opened without blocking, read to the cap; UTF-8 with an optional byte-order mark
    data = read_user_file(path, "--params-json", MAX_PARAMS_JSON_BYTES)
    return read_json_values(user_text(data, f"--params-json {path}"), "--params-json")


def parameter_overrides(pairs, json_path, flag: str = "--param") -> dict:
    """``--param NAME=DECIMAL`` pairs and a ``--params-json`` file as exact values (see the module docstring);
    ``flag`` names the option in messages (``symode train --truth`` reads the same pairs)."""
    from ..expr import parse_decimal
    values: dict = _read_json(json_path) if json_path else {}
    given: set = set()
    for pair in pairs or ():
        name, sep, text = pair.partition("=")
        if not sep:
            raise SpecError(f"{flag} {pair!r}: expected NAME=DECIMAL")
        name = name.strip()
        if name in given:
            raise SpecError(f"{flag} {name}: given twice; give each parameter once")
        given.add(name)
        values[name] = parse_decimal(text.strip(), f"{flag} {name}")  # a --param overrides --params-json
    return values


def model_with_overrides(model, overrides: dict):
    """``model`` with the overrides applied (unknown names are a SpecError naming the closest)."""
    return model.with_values(overrides) if overrides else model
