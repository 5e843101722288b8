"""``symode models``: list the built-in models."""
from __future__ import annotations


def _cmd_models(args) -> int:
    from ..library import LIBRARY
    from ..symbolic.regression import LinearRegression
    width = max(len(n) for n in LIBRARY) + 2
    for name, entry in LIBRARY.items():
        print(f"{name.ljust(width)}{entry.summary}")
    print(f"{'linreg'.ljust(width)}{LinearRegression.description}")
    return 0


def register(sub) -> None:
    s = sub.add_parser("models", help="list the built-in models")
    s.set_defaults(func=_cmd_models)
