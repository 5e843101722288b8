"""``symode demo``: the seed notes' models derived by SymPy, then their numbers by every route."""
from __future__ import annotations

import sys


def _cmd_demo(args) -> int:
    from ..symbolic.render import render
    from .derive import _equations_for
    print("symode demo: the seed notes' models, derived by SymPy\n")
    for name in ("linreg", "linear"):
        n, description, eqs, cf_note = _equations_for(name, closed_form=(name == "linear"))
        sys.stdout.write(render(eqs, "text", title=f"{n}: {description}"))
        print()
    # the same model's numbers: exact (closed form), the 30-digit oracle, and every float64 route against it
    from ..check.report import check_model
    from ..library import get_model
    from ..methods import compute
    model = get_model("linear")
    for method in ("exact", "oracle"):
        print(f"symode grad linear --method {method}")
        sys.stdout.write(compute(model, method, digits=30).to_table())
        print()
    print("symode check linear --steps 400")
    sys.stdout.write(check_model(model, steps=400).to_markdown())
    return 0


def register(sub) -> None:
    s = sub.add_parser("demo", help="derive and print the seed model's gradients and adjoint equations")
    s.set_defaults(func=_cmd_demo)
