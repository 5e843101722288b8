"""``symode grad``: loss and gradients of a model by one method (JSON contract in :mod:`symode.result`)."""
from __future__ import annotations

import sys


def _cmd_grad(args) -> int:
    from .library import resolve_model
    from .methods import compute
    model = resolve_model(args.model)
    result = compute(model, args.method, digits=args.digits, scheme=args.scheme, steps=args.steps)
    sys.stdout.write(result.to_json() + "\n" if args.json else result.to_table())
    return 0


def register(sub) -> None:
    from .methods import METHODS
    s = sub.add_parser("grad", help="loss and gradients of a model by one method")
    s.add_argument("model", help="built-in model name or spec file (.toml)")
    s.add_argument("--method", choices=list(METHODS), default="oracle")
    s.add_argument("--digits", type=int, default=None, help="significant digits (oracle, exact; default 30)")
    s.add_argument("--scheme", default=None, help="fixed-step scheme (float64 routes; default rk4)")
    s.add_argument("--steps", type=int, default=None, help="number of fixed steps (float64 routes; default 100)")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.set_defaults(func=_cmd_grad)
