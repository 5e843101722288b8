"""``symode check MODEL``: every gradient route against the oracle; exit 1 if any route FAILs."""
from __future__ import annotations

import sys


def _cmd_check(args) -> int:
    import math

    from ..check.report import DEFAULT_MAX_RTOL, check_model
    from ..registry import checkable_routes
    from ..errors import SpecError
    from ..library import resolve_model
    model = resolve_model(args.model)
    methods = [m.strip() for m in args.methods.split(",")] if args.methods else None
    known = {r.name: r for r in checkable_routes()}
    for m in methods or ():
        if m not in known:
            raise SpecError(f"--methods: unknown route {m!r}; choose from {', '.join(known)}")
        missing = known[m].missing()
        if missing:
            raise SpecError(f"--methods: route {m!r} cannot run here: {'; '.join(missing)}")
    if args.steps < 1:
        raise SpecError(f"--steps must be a positive integer, got {args.steps}")
    if args.max_rtol is not None and not (math.isfinite(args.max_rtol) and args.max_rtol > 0):
        raise SpecError(f"--max-rtol must be a finite positive number, got {args.max_rtol}")
    if not 5 <= args.digits <= 1000:
        raise SpecError(f"--digits must be an integer from 5 to 1000, got {args.digits}")
    report = check_model(model, scheme=args.scheme, steps=args.steps, digits=args.digits, methods=methods,
                         max_rtol=args.max_rtol if args.max_rtol is not None else DEFAULT_MAX_RTOL)
    sys.stdout.write(report.to_markdown())
    return 0 if report.ok else 1


def register(sub) -> None:
    from ..registry import checkable_routes
    s = sub.add_parser("check", help="cross-check every gradient route against the oracle")
    s.add_argument("model", help="built-in model name or spec file (.toml)")
    s.add_argument("--scheme", default="rk4")
    s.add_argument("--steps", type=int, default=100)
    s.add_argument("--digits", type=int, default=30)
    s.add_argument("--methods", default=None,
                   help=f"comma-separated routes (default: {','.join(r.name for r in checkable_routes())})")
    s.add_argument("--max-rtol", type=float, default=None,
                   help="largest relative discretisation error still called PASS (default 1e-6)")
    s.set_defaults(func=_cmd_check)
