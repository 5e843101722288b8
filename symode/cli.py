"""The ``symode`` command line: a thin layer that parses arguments and calls the library.

Exit status: 0 success; 1 a check found a problem (e.g. a FALSE claim); 2 a user error (bad model, bad spec,
bad arguments), printed as one line ``symode: error: ...`` without a traceback.
"""
from __future__ import annotations

import argparse
import sys

from .errors import SymodeError


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse would print the usage block too)
        raise _UsageError(f"{self.prog}: {message}")


class _UsageError(Exception):
    pass


def _cmd_models(args) -> int:
    from .library import LIBRARY
    from .symbolic.regression import LinearRegression
    width = max(len(n) for n in LIBRARY) + 2
    for name, entry in LIBRARY.items():
        print(f"{name.ljust(width)}{entry.summary}")
    print(f"{'linreg'.ljust(width)}{LinearRegression.description}")
    return 0


def _equations_for(name: str, closed_form: bool):
    from .library import resolve_model
    from .symbolic.derive import derive
    if name == "linreg":
        from .symbolic.regression import LinearRegression
        lr = LinearRegression()
        return lr.name, lr.description, list(lr.equations), None
    model = resolve_model(name)
    d = derive(model)
    eqs = list(d.equations)
    cf_note = None
    if closed_form:
        from .symbolic.closed_form_equations import closed_form_equations
        cf = d.closed_form
        if cf:
            eqs += closed_form_equations(d, cf)
        else:
            cf_note = cf.reason
    return model.name, model.description, eqs, cf_note


def _derive_text(model_name: str, fmt: str, closed_form: bool) -> str:
    from .symbolic.render import render
    name, description, eqs, cf_note = _equations_for(model_name, closed_form)
    title = f"{name}: {description}" if description else name
    text = render(eqs, fmt, title=title)
    if cf_note:
        prefix = {"text": "", "latex": "% ", "markdown": "> "}[fmt]
        text += f"\n{prefix}Closed form: {cf_note}\n"
    return text


def _cmd_derive(args) -> int:
    from .library import resolve_model
    from .symbolic.budget import budget_from_env, call_with_budget
    if args.model != "linreg":
        resolve_model(args.model)  # spec errors are reported here, before any derivation starts
    seconds, memory = budget_from_env()
    # a spec is untrusted input: derive it in a child process under a time and memory budget
    text = call_with_budget(_derive_text, args.model, args.format, args.closed_form, seconds=seconds,
                            memory_mb=memory, what=f"deriving {args.model!r}")
    sys.stdout.write(text)
    return 0


def _cmd_demo(args) -> int:
    from .symbolic.render import render
    print("symode demo: the seed notes' models, derived by SymPy\n")
    for name in ("linreg", "linear"):
        n, description, eqs, cf_note = _equations_for(name, closed_form=(name == "linear"))
        sys.stdout.write(render(eqs, "text", title=f"{n}: {description}"))
        print()
    # the same model's numbers: exact (closed form), the 30-digit oracle, and every float64 route against it
    from .check.report import check_model
    from .library import get_model
    from .methods import compute
    model = get_model("linear")
    for method in ("exact", "oracle"):
        print(f"symode grad linear --method {method}")
        sys.stdout.write(compute(model, method, digits=30).to_table())
        print()
    print("symode check linear --steps 400")
    sys.stdout.write(check_model(model, steps=400).to_markdown())
    return 0


def build_parser() -> argparse.ArgumentParser:
    from .symbolic.render import FORMATS
    p = _Parser(prog="symode", description="Symbolic-autodiff verification for neural ODEs.")
    sub = p.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")
    sub.required = True
    s = sub.add_parser("models", help="list the built-in models")
    s.set_defaults(func=_cmd_models)
    s = sub.add_parser("demo", help="derive and print the seed model's gradients and adjoint equations")
    s.set_defaults(func=_cmd_demo)
    s = sub.add_parser("derive", help="print a model's derived equations")
    s.add_argument("model", help="built-in model name or spec file (.toml)")
    s.add_argument("--format", choices=FORMATS, default="text")
    s.add_argument("--closed-form", action="store_true", help="also search for and print closed forms")
    s.set_defaults(func=_cmd_derive)
    for register in _EXTENSIONS:
        register(sub)
    return p


#: Later stages (oracle, CasADi routes, verification) register their subcommands here.
_EXTENSIONS: list = []


def _load_extensions():
    import importlib
    for mod in ("symode.cli_grad", "symode.cli_oracle", "symode.cli_check", "symode.cli_codegen", "symode.cli_verify"):
        try:
            m = importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name != mod:
                raise
            continue
        if m.register not in _EXTENSIONS:
            _EXTENSIONS.append(m.register)


def main(argv=None) -> int:
    _load_extensions()
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        return int(args.func(args) or 0)
    except _UsageError as exc:
        print(f"symode: error: {exc}", file=sys.stderr)
        return 2
    except SymodeError as exc:
        msg = " ".join(str(exc).split())  # one line, whatever the message held
        print(f"symode: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("symode: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
