"""``symode check MODEL``: every gradient route against the oracle; exit 1 if any route FAILs.

``--train`` adds the training cross-checks (:mod:`symode.train.checks`; alone without MODEL), ``--plot DIR`` the
pictures (error vs step size per route; the training checks' losses and trajectory distances).
"""
from __future__ import annotations

import sys


def _cmd_check(args) -> int:
    import math

    from ..casadi.methods import MAX_STEPS
    from ..casadi.schemes import SCHEMES
    from ..errors import SpecError
    from ..library import resolve_model
    from ..oracle.engine import MAX_DIGITS
    from ..outputs import check_plot_dir
    from ..registry import checkable_routes
    from ..suggest import choose
    from ..symbolic.budget import budget_from_env, call_with_budget
    # every option is checked before any work starts
    if args.plot is not None:
        from ..plots import INSTALL_HINT, PlotError, available
        check_plot_dir(args.plot, force=args.force)
        if not available():
            raise PlotError(f"--plot needs matplotlib: {INSTALL_HINT}")
    methods = None if args.methods is None else [m.strip() for m in args.methods.split(",")]
    if methods is not None and not all(methods):  # '' or 'discrete,' would otherwise check every route
        raise SpecError(f"--methods {args.methods!r}: an empty route name; give comma-separated route names such "
                        f"as 'discrete,cvodes' (or leave --methods out to check every route)")
    known = {r.name: r for r in checkable_routes()}
    for m in methods or ():
        if m not in known:
            raise SpecError(f"--methods: unknown route {m!r}{choose(m, known)}")
        missing = known[m].missing()
        if missing:
            raise SpecError(f"--methods: route {m!r} cannot run here: {'; '.join(missing)}")
    if args.scheme not in SCHEMES:
        raise SpecError(f"--scheme: unknown scheme {args.scheme!r}{choose(args.scheme, SCHEMES)}")
    if not 1 <= args.steps <= MAX_STEPS:
        raise SpecError(f"--steps must be an integer from 1 to {MAX_STEPS}, got {args.steps}")
    if args.max_rtol is not None and not (math.isfinite(args.max_rtol) and args.max_rtol > 0):
        raise SpecError(f"--max-rtol must be a finite positive number, got {args.max_rtol}")
    if not 5 <= args.digits <= MAX_DIGITS:
        raise SpecError(f"--digits must be an integer from 5 to {MAX_DIGITS}, got {args.digits}")
    if args.model is None and not args.train:
        raise SpecError("give a MODEL to check (or --train for the training cross-checks)")
    seconds, memory = budget_from_env()
    if args.model is None:
        return _train_checks(args)  # the built-in training checks only: no model of the user's to derive
    from .params import model_with_overrides, parameter_overrides
    model = model_with_overrides(resolve_model(args.model), parameter_overrides(args.param, args.params_json))
    # the derivation and the solves of a possibly untrusted model run under the time and memory budget, like
    # grad's; the training checks (--train) then run here, like `symode train` after its first gradient
    text, ok = call_with_budget(_route_report, model, args.scheme, args.steps, args.digits, methods, args.max_rtol,
                                seconds=seconds, memory_mb=memory, what=f"checking {args.model!r}")
    sys.stdout.write(text)
    if args.train:
        ok = _train_checks(args, model) == 0 and ok
    if args.plot is not None:
        from ..check.convergence import fixed_step_methods
        fixed = fixed_step_methods()
        _convergence_plot(args, model, [m for m in (methods or fixed) if m in fixed])
    return 0 if ok else 1


def _route_report(model, scheme, steps, digits, methods, max_rtol) -> tuple[str, bool]:
    """Every route against the oracle (in the budgeted child): the report's Markdown and whether all passed."""
    from ..check.report import DEFAULT_MAX_RTOL, check_model
    report = check_model(model, scheme=scheme, steps=steps, digits=digits, methods=methods,
                         max_rtol=max_rtol if max_rtol is not None else DEFAULT_MAX_RTOL)
    return report.to_markdown(), report.ok


def _train_checks(args, model=None) -> int:
    """``--train``: the training cross-checks (without MODEL, those of symode.train.checks; with MODEL, two routes'
    parameter trajectories from the model's values and a sign-flipped gradient on it)."""
    from ..train.checks import TrainCheckReport, check_route_agreement, training_checks
    if model is None:
        report = training_checks(quick=args.quick)
    else:
        report = TrainCheckReport(check_route_agreement(model, scheme=args.scheme, steps=args.steps))
    sys.stdout.write(("\n" if model is not None else "") + report.to_markdown())
    if args.plot is not None:
        from ..plots import write_pngs
        from ..train.checks import check_figures
        for p in write_pngs(check_figures(report), args.plot):
            print(f"wrote {p}")
    return 0 if report.ok else 1


def _convergence_plot(args, model, routes) -> None:
    from ..casadi.schemes import get_scheme
    from ..check.convergence import convergence_data
    from ..methods import compute
    from ..plots import convergence_figure, write_pngs
    reference = compute(model, "oracle", digits=args.digits)
    data = convergence_data(model, routes, args.scheme, args.steps, reference)
    fig = convergence_figure(data, get_scheme(args.scheme).order,
                             title=f"{model.name}: error vs step size ({args.scheme})")
    for p in write_pngs({"convergence": fig}, args.plot):
        print(f"wrote {p}")


def register(sub) -> None:
    from ..registry import checkable_routes
    s = sub.add_parser("check", help="cross-check every gradient route against the oracle")
    s.add_argument("model", nargs="?", default=None,
                   help="built-in model name or spec file (.toml); may be omitted with --train")
    s.add_argument("--scheme", default="rk4")
    s.add_argument("--steps", type=int, default=100)
    s.add_argument("--digits", type=int, default=30)
    s.add_argument("--methods", default=None,
                   help=f"comma-separated routes (default: {','.join(r.name for r in checkable_routes())})")
    from .params import add_parameter_options
    add_parameter_options(s, "check at")
    s.add_argument("--max-rtol", type=float, default=None,
                   help="largest relative discretisation error still called PASS (default 1e-6)")
    s.add_argument("--train", action="store_true",
                   help="also cross-check by training: alone, the seed's training checks; with MODEL, two routes' "
                        "parameter trajectories and a deliberately wrong gradient on MODEL")
    s.add_argument("--quick", action="store_true", help="with --train alone: skip the MLP fit and the oracle run")
    s.add_argument("--plot", default=None, metavar="DIR",
                   help="write PNG pictures into DIR: error vs step size per route (and the training checks' "
                        "pictures with --train); needs symode[plot]")
    s.add_argument("--force", action="store_true", help="with --plot: write into DIR even if it already holds files")
    s.set_defaults(func=_cmd_check)
