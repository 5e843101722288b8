"""``symode oracle ...``: oracle utilities (``export``: golden case files, see :mod:`symode.oracle.export`)."""
from __future__ import annotations


def _cmd_export(args) -> int:
    from ..library import resolve_model
    from ..oracle.export import export_golden
    from .params import model_with_overrides, parameter_overrides
    overrides = parameter_overrides(args.param, args.params_json)
    # every name and value checked before any work; the same overrides apply to every model
    models = [model_with_overrides(resolve_model(name), overrides) for name in args.models]
    for path in export_golden(models, args.out, digits=args.digits, quiet=True if args.quiet else None):
        print(path)
    return 0


def register(sub) -> None:
    """Add the ``oracle`` command (with its own subcommands) to the ``symode`` argument parser."""
    o = sub.add_parser("oracle", help="high-precision oracle utilities (golden case files)")
    osub = o.add_subparsers(dest="oracle_command", parser_class=type(o), metavar="SUBCOMMAND")
    osub.required = True
    e = osub.add_parser("export", help="write one golden JSON file per model (oracle reference values)")
    e.add_argument("models", nargs="+", metavar="MODEL", help="built-in model names or spec files (.toml)")
    e.add_argument("--out", required=True, metavar="DIR", help="directory for <model name>.json files")
    e.add_argument("--digits", type=int, default=30, help="significant digits (default 30)")
    e.add_argument("--quiet", action="store_true", help="no progress lines on stderr (also SYMODE_QUIET=1)")
    from .params import add_parameter_options
    add_parameter_options(e, "export at")
    e.set_defaults(func=_cmd_export)
