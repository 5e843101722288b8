"""``symode schema grad``: the JSON Schema of ``symode grad --json`` for the methods registered here.

The schema shipped in the package covers the built-in methods; a package that adds methods (entry point group
``symode.methods``) changes the method list, and this command prints the schema derived from what is installed
(:func:`symode.schema.grad_schema`).
"""
from __future__ import annotations

import json
import sys


def _cmd_schema(args) -> int:
    from ..schema import grad_schema
    sys.stdout.write(json.dumps(grad_schema(), indent=2) + "\n")
    return 0


def register(sub) -> None:
    s = sub.add_parser("schema", help="print the JSON Schema of a symode output for the methods installed here")
    s.add_argument("output", choices=["grad"], help="which output: grad (symode grad --json)")
    s.set_defaults(func=_cmd_schema)
