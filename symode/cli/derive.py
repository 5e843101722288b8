"""``symode derive MODEL``: print a model's derived equations (text, LaTeX or Markdown)."""
from __future__ import annotations

import sys


def _equations_for(name: str, closed_form: bool):
    from ..library import resolve_model
    from ..symbolic.derive import derive
    if name == "linreg":
        from ..symbolic.regression import LinearRegression
        lr = LinearRegression()
        return lr.name, lr.description, list(lr.equations), None
    model = resolve_model(name)
    d = derive(model)
    eqs = list(d.equations)
    cf_note = None
    if closed_form:
        from ..symbolic.closed_form_equations import closed_form_equations
        cf = d.closed_form
        if cf:
            eqs += closed_form_equations(d, cf)
        else:
            cf_note = cf.reason
    return model.name, model.description, eqs, cf_note


def _derive_text(model_name: str, fmt: str, closed_form: bool) -> str:
    from ..symbolic.render import render
    name, description, eqs, cf_note = _equations_for(model_name, closed_form)
    title = f"{name}: {description}" if description else name
    text = render(eqs, fmt, title=title)
    if cf_note:
        prefix = {"text": "", "latex": "% ", "markdown": "> "}[fmt]
        text += f"\n{prefix}Closed form: {cf_note}\n"
    return text


def _cmd_derive(args) -> int:
    from ..library import resolve_model
    from ..symbolic.budget import budget_from_env, call_with_budget
    if args.model != "linreg":
        resolve_model(args.model)  # spec errors are reported here, before any derivation starts
    seconds, memory = budget_from_env()
    # a spec is untrusted input: derive it in a child process under a time and memory budget
    text = call_with_budget(_derive_text, args.model, args.format, args.closed_form, seconds=seconds,
                            memory_mb=memory, what=f"deriving {args.model!r}")
    sys.stdout.write(text)
    return 0


def register(sub) -> None:
    from ..symbolic.render import FORMATS
    s = sub.add_parser("derive", help="print a model's derived equations")
    s.add_argument("model", help="built-in model name or spec file (.toml)")
    s.add_argument("--format", choices=FORMATS, default="text")
    s.add_argument("--closed-form", action="store_true", help="also search for and print closed forms")
    s.set_defaults(func=_cmd_derive)
