"""``symode audit torchdiffeq|diffrax [MODEL...]``: audit another library's gradients against the oracle.

See :mod:`symode.interop.audit` for what is measured and how verdicts are given.  Prints a Markdown report (or
one JSON object with ``--json``); ``--plot FILE`` also draws error vs requested tolerance.  Exit status 1 when
any quantity of any configuration FAILs or a configuration errors, else 0; 2 on a user error.
"""
from __future__ import annotations

import json
import math
import sys


def _floats(text: str, flag: str) -> list[float]:
    from ..errors import SpecError
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise SpecError(f"{flag} {text!r}: give comma-separated numbers, e.g. 1e-4,1e-6") from None


def _ints(text: str, flag: str) -> list[int]:
    from ..errors import SpecError
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise SpecError(f"{flag} {text!r}: give comma-separated integers, e.g. 50,100") from None


def _json_safe(obj):
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_json_safe(v) for v in obj]
    return obj


def _cmd_audit(args) -> int:
    from ..errors import SpecError
    from ..interop.audit import DEFAULT_MODELS, DEFAULT_RTOLS, DEFAULT_STEPS, audit
    from ..library import resolve_model
    from ..oracle.engine import MAX_DIGITS
    from ..outputs import check_targets, input_paths
    from ..symbolic.budget import budget_from_env, call_with_budget
    # every option is checked before any work starts (the audit runs for minutes); the picture is written last,
    # so whether it may be written is decided first
    rtols = _floats(args.rtol, "--rtol") if args.rtol else DEFAULT_RTOLS
    steps = _ints(args.steps, "--steps") if args.steps else DEFAULT_STEPS
    if not 5 <= args.digits <= MAX_DIGITS:
        raise SpecError(f"--digits must be an integer from 5 to {MAX_DIGITS}, got {args.digits}")
    if args.workers is not None and args.workers < 1:
        raise SpecError(f"--workers must be a positive integer, got {args.workers}")
    if args.plot is not None:
        from ..interop.audit_plot import check_plot_path
        check_targets([args.plot], option="--plot", force=args.force, inputs=input_paths(args.models))
        check_plot_path(args.plot)  # the format (.png, .svg) and the extra symode[plot]
    models = [resolve_model(n) for n in (args.models or DEFAULT_MODELS)]
    seconds, memory = budget_from_env()
    # the oracle and the library's solves of possibly untrusted specs run under the time and memory budget, as
    # every other command's work does (local worker processes inherit the memory limit and die with the child);
    # the picture and the report are written here, after it
    report = call_with_budget(audit, args.library, models, seconds=seconds, memory_mb=memory,
                              what=f"auditing {args.library}",
                              kwargs=dict(routes=args.routes.split(",") if args.routes else None,
                                          solvers=args.methods.split(",") if args.methods else None,
                                          rtols=rtols, steps=steps, atol=args.atol, digits=args.digits,
                                          scheduler=args.scheduler, workers=args.workers))
    if args.plot:
        from ..interop.audit_plot import plot_audit
        plot_audit(report, args.plot)
    if args.json:
        sys.stdout.write(json.dumps(_json_safe(report.to_dict()), indent=1) + "\n")
    else:
        sys.stdout.write(report.to_markdown())
    return 1 if report.failed else 0


def register(sub) -> None:
    s = sub.add_parser("audit", help="audit torchdiffeq's or diffrax's gradients against the oracle (exit 1 on a "
                                     "FAIL)")
    s.add_argument("library", choices=["torchdiffeq", "diffrax"])
    s.add_argument("models", nargs="*", metavar="MODEL",
                   help="built-in model names or spec files (default: logistic seed-encoder lotka-volterra "
                        "vanderpol)")
    s.add_argument("--routes", metavar="LIST", help="torchdiffeq,torchdiffeq-adjoint | diffrax,diffrax-direct,"
                                                    "diffrax-backsolve (default: all)")
    s.add_argument("--methods", metavar="LIST", help="the library's solvers (default: dopri5,rk4 | "
                                                     "tsit5,dopri5,kvaerno5,rk4)")
    s.add_argument("--rtol", metavar="LIST", help="requested tolerances of adaptive solvers (default "
                                                  "1e-4,1e-6,1e-8,1e-10)")
    s.add_argument("--atol", type=float, default=None, help="absolute tolerance (default: equal to each rtol)")
    s.add_argument("--steps", metavar="LIST", help="step counts of fixed-step solvers (default 100)")
    s.add_argument("--digits", type=int, default=30, help="oracle digits (default 30)")
    s.add_argument("--json", action="store_true", help="print one JSON object instead of Markdown")
    s.add_argument("--plot", metavar="FILE", help="also draw error vs requested tolerance to FILE (.png, .svg; "
                                                  "extra symode[plot])")
    s.add_argument("--force", action="store_true", help="replace an existing --plot FILE (never one of the inputs)")
    s.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="run on this Dask scheduler (extra symode[dask])")
    s.add_argument("--workers", type=int, metavar="N", help="local processes (default: the CPU count; 1: in process)")
    s.set_defaults(func=_cmd_audit)
