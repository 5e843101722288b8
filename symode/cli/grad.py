"""``symode grad``: loss and gradients of a model by one method (JSON contract in :mod:`symode.result`)."""
from __future__ import annotations

import sys

from ..errors import SpecError
from .params import add_parameter_options, model_with_overrides, parameter_overrides  # noqa: F401 (train uses it)


def route_option_flags() -> list:
    """One flag per route option name across the registry: (Option, [routes that take it]), first-declared
    order.  The first route's declaration gives the flag's type and help; the defaults of all are shown."""
    from ..registry import routes
    flags: dict = {}
    for r in routes():
        for o in r.options:
            flags.setdefault(o.name, (o, []))[1].append(r)
    return list(flags.values())


def add_route_option_flags(parser) -> None:
    """One flag per route option of the registry (``--scheme``, ``--steps``, ``--digits``, ``--reltol`` ...),
    each defaulting to None (the chosen route's own default)."""
    for option, users in route_option_flags():
        parser.add_argument(option.flag, dest=option.name, type=option.type, default=None,
                            metavar=option.name.upper(), help=_option_help(option, users))


def given_route_options(args) -> dict:
    """The route options given on the command line (None: not given)."""
    return {o.name: getattr(args, o.name) for o, _ in route_option_flags()}


def _cmd_grad(args) -> int:
    from ..library import resolve_model
    from ..methods import compute
    from ..registry import get_route
    from ..symbolic.budget import budget_from_env, call_with_budget
    # every option is checked before any work starts (a spec may take minutes to derive)
    options = given_route_options(args)
    route = get_route(args.method)
    route.resolve_options({k: v for k, v in options.items() if v is not None}, cli=True)
    if route.missing():
        raise SpecError(f"--method {args.method} cannot run here: {'; '.join(route.missing())}")
    seconds, memory = budget_from_env()
    model = model_with_overrides(resolve_model(args.model), parameter_overrides(args.param, args.params_json))
    # derivation and solve of a possibly untrusted model: in a child under the time/memory budget
    result = call_with_budget(compute, model, args.method, seconds=seconds, memory_mb=memory,
                              what=f"computing {args.method} gradients of {model.name!r}", kwargs=options)
    sys.stdout.write(result.to_json() + "\n" if args.json else result.to_table())
    return 0


def _option_help(option, users) -> str:
    by_default: dict = {}
    for r in users:
        by_default.setdefault(r.option(option.name).default, []).append(r.name)
    where = "; ".join(f"{', '.join(names)}: default {d}" for d, names in by_default.items())
    choices = f", one of {', '.join(option.choices)}" if option.choices else ""
    return f"{option.help}{choices} ({where})".replace("%", "%%")


def _methods_help() -> str:
    from ..registry import routes
    lines = ["methods (more come from installed packages: entry point group symode.methods):"]
    for r in routes():
        needs = f"; needs {', '.join(q.name for q in r.requires)}" if r.requires else ""
        lines.append(f"  {r.name}: {r.accuracy.describe()}{needs}")
        lines.append(f"      {r.summary}")
    return "\n".join(lines)


def register(sub) -> None:
    import argparse

    from ..registry import route_names
    s = sub.add_parser("grad", help="loss and gradients of a model by one method", epilog=_methods_help(),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("model", help="built-in model name or spec file (.toml)")
    s.add_argument("--method", choices=list(route_names()), default="oracle",
                   help="the gradient route (default oracle; the list below)")
    add_route_option_flags(s)
    add_parameter_options(s)
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.set_defaults(func=_cmd_grad)
