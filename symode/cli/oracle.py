"""``symode oracle ...``: oracle utilities (``export``: golden case files, see :mod:`symode.oracle.export`)."""
from __future__ import annotations


def _cmd_export(args) -> int:
    from ..library import resolve_model
    from ..errors import SpecError
    from ..oracle.engine import MAX_DIGITS
    from ..oracle.export import check_export, check_options, golden_cases, golden_paths, write_golden
    from ..outputs import check_targets, input_paths
    from ..symbolic.budget import budget_from_env, call_with_budget
    from .params import model_with_overrides, parameter_overrides
    if not 5 <= args.digits <= MAX_DIGITS:  # every option before any work starts
        raise SpecError(f"--digits must be an integer from 5 to {MAX_DIGITS}, got {args.digits}")
    check_options(args.points, args.seed, args.fixed_step or ())
    if args.workers is not None and args.workers < 1:
        raise SpecError(f"--workers must be a positive integer, got {args.workers}")
    seconds, memory = budget_from_env()
    overrides = parameter_overrides(args.param, args.params_json)
    # every name and value checked before any work; the same overrides apply to every model
    models = [model_with_overrides(resolve_model(name), overrides) for name in args.models]
    check_export(models)
    check_targets(golden_paths(models, args.out), option="--out", force=args.force,
                  inputs=input_paths(args.models, args.params_json))
    # the oracle runs of possibly untrusted specs, under the time and memory budget (a sweep's local worker
    # processes inherit the memory limit and are killed with it); writing stays here
    cases = call_with_budget(golden_cases, models, args.digits, seconds=seconds, memory_mb=memory,
                             what=f"computing golden cases at {args.digits} digits",
                             kwargs=dict(quiet=True if args.quiet else None, points=args.points, seed=args.seed,
                                         fixed_steps=args.fixed_step or (), scheduler=args.scheduler,
                                         workers=args.workers))
    for path in write_golden(cases, args.out):
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
    e.add_argument("--points", type=int, default=1, metavar="N",
                   help="parameter points per file: the model's values and N-1 drawn from --seed (default 1)")
    e.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the drawn points (default 0)")
    e.add_argument("--fixed-step", action="append", metavar="SCHEME:STEPS",
                   help="also the exact discrete gradient of a fixed-step scheme at every point, e.g. rk4:100 "
                        "(repeatable; euler, midpoint, rk4, rk38, dopri5)")
    e.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                   help="run the points on this Dask scheduler (extra symode[dask]); default: a local process pool")
    e.add_argument("--workers", type=int, metavar="N", help="local processes (default: the CPU count; 1: in process)")
    e.add_argument("--force", action="store_true", help="replace golden files that already exist in DIR")
    e.set_defaults(func=_cmd_export)
