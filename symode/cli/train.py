"""``symode train MODEL|SPEC``: fit a model's parameters by gradient descent or Adam with a chosen gradient route.

Targets: the model's own loss (default), observations generated from a truth (``--truth``; ``--times``, ``--z0``,
``--noise``, ``--seed`` shape them) or read from a file (``--data`` CSV/NPZ).  ``linreg`` trains the seed's linear
regression on a data set (``--truth a=.. --truth b=..`` with ``--points``, or ``--data`` with columns x, y) with
the SymPy-derived gradient (``--method derived``) or the complex-step numeric one (``--method numeric``).
Output: a summary table, or with ``--json`` one JSON object (:mod:`symode.train.loop`); ``--plot DIR`` writes
PNG pictures (matplotlib, ``symode[plot]``).
"""
from __future__ import annotations

import math
import sys

from ..errors import SpecError


def _decimals(text: str, what: str) -> list:
    from ..expr import parse_decimal
    parts = [p.strip() for p in text.split(",")]
    if not text.strip() or any(not p for p in parts):
        raise SpecError(f"{what} {text!r}: expected comma-separated decimals")
    return [parse_decimal(p, what) for p in parts]


def _truth(pairs) -> dict | None:
    """``--truth NAME=DECIMAL`` (repeatable) or ``--truth nominal``; None without --truth."""
    from .grad import parameter_overrides
    if not pairs:
        return None
    return parameter_overrides([p for p in pairs if p.strip() != "nominal"], None, flag="--truth")


def _check_args(args) -> None:
    if args.iterations < 0:
        raise SpecError(f"--iterations must be a non-negative integer, got {args.iterations}")
    if not (math.isfinite(args.lr) and args.lr > 0):
        raise SpecError(f"--lr must be a finite positive number, got {args.lr}")
    if not (math.isfinite(args.noise) and args.noise >= 0):
        raise SpecError(f"--noise must be a finite number >= 0, got {args.noise}")
    if args.seed < 0:
        raise SpecError(f"--seed must be a non-negative integer, got {args.seed}")


def _first_evaluation(objective, theta0):
    return objective(theta0)


def _train_linreg(args, optimizer):
    import numpy as np

    from ..train import run
    from ..train.regression import REGRESSION_METHODS, read_regression_data, regression_data
    from .grad import parameter_overrides
    method = args.method or "derived"
    if method not in REGRESSION_METHODS:
        raise SpecError(f"linreg: --method must be one of {', '.join(REGRESSION_METHODS)}, got {method!r}")
    from .grad import given_route_options
    flags = {"--" + k.replace("_", "-"): v for k, v in given_route_options(args).items()}
    for flag, given in (*flags.items(), ("--times", args.times), ("--z0", args.z0)):
        if given is not None:
            raise SpecError(f"linreg: {flag} does not apply (the linear regression has no ODE)")
    truth = _truth(args.truth)
    if (truth is None) == (args.data is None):
        raise SpecError("linreg trains on a data set: give --truth a=DECIMAL --truth b=DECIMAL (generated, with "
                        "--points and --noise) or --data FILE.csv (columns x, y)")
    if args.data is not None:
        x, y = read_regression_data(args.data)
        source, truth_f = f"read from {args.data}", None
    else:
        unknown = sorted(set(truth) - {"a", "b"})
        if unknown or set(truth) != {"a", "b"}:
            raise SpecError("linreg: give --truth a=DECIMAL and --truth b=DECIMAL")
        truth_f = {k: float(v) for k, v in truth.items()}
        points = 20 if args.points is None else args.points
        x, y = regression_data(truth_f["a"], truth_f["b"], points, noise=args.noise, seed=args.seed)
        source = (f"{points} points y = a x + b on [-1, 1] at a = {truth['a']}, b = {truth['b']}"
                  + (f", noise sigma {args.noise:g} (seed {args.seed})" if args.noise else ""))
    start = parameter_overrides(args.param, args.params_json)
    unknown = sorted(set(start) - {"a", "b"})
    if unknown:
        raise SpecError(f"linreg has no parameter named {', '.join(unknown)} (its parameters: a, b)")
    theta0 = np.array([float(start.get("a", 0)), float(start.get("b", 0))])
    objective = REGRESSION_METHODS[method](x, y)
    result = run(objective, theta0, optimizer, args.iterations)
    result.targets, result.truth, result.seed = source, truth_f, args.seed
    return None, {objective.method: result}


def _train_model(args, optimizer):
    import numpy as np

    from ..library import resolve_model
    from ..symbolic.budget import budget_from_env, call_with_budget
    from ..train import Objective, make_problem, run
    from .grad import parameter_overrides
    model = resolve_model(args.model)
    if args.points is not None:
        raise SpecError("--points applies to linreg only (an ODE model's observations are set by --times and --z0)")
    times = _decimals(args.times, "--times") if args.times is not None else None
    initial = [_decimals(z, "--z0") for z in args.z0] if args.z0 else None
    # the truth ("nominal" included) refers to the model as written; --param moves only the start
    problem = make_problem(model, truth=_truth(args.truth), data=args.data, times=times, initial=initial,
                           noise=args.noise, seed=args.seed)
    start = parameter_overrides(args.param, args.params_json)
    if start:
        problem.model = problem.model.with_values(start)
    from .grad import given_route_options
    objective = Objective(problem.model, args.method or "discrete", **given_route_options(args))
    theta0 = np.array([float(v) for v in problem.model.theta])
    seconds, memory = budget_from_env()
    # the first gradient of a possibly untrusted model (derivation, graphs) in a child under the budget; the
    # training itself then runs here
    call_with_budget(_first_evaluation, objective, theta0, seconds=seconds, memory_mb=memory,
                     what=f"the first {objective.method} gradient of {problem.model.name!r}")
    result = run(objective, theta0, optimizer, args.iterations)
    result.targets = problem.targets.source if problem.targets is not None else None
    result.truth, result.seed = problem.truth, args.seed
    return problem, {objective.describe(): result}


def _cmd_train(args) -> int:
    import json

    from ..train import make_optimizer
    _check_args(args)
    optimizer = make_optimizer(args.optimizer, args.lr)
    if args.plot is not None:
        from ..outputs import check_plot_dir
        from ..plots import INSTALL_HINT, PlotError, available
        check_plot_dir(args.plot, force=args.force)
        if not available():
            raise PlotError(f"--plot needs matplotlib: {INSTALL_HINT}")
    problem, runs = (_train_linreg if args.model == "linreg" else _train_model)(args, optimizer)
    result = next(iter(runs.values()))
    paths = []
    if args.plot is not None:
        from ..plots import loss_figure, write_pngs
        if problem is None:
            figs = {"loss": loss_figure({label: r.loss for label, r in runs.items()}, title="training loss: linreg")}
        else:
            from ..train import figures
            figs = figures(problem, runs)
        paths = [str(p) for p in write_pngs(figs, args.plot)]
    if args.json:
        d = result.to_dict()
        if paths:
            d["figures"] = paths
        sys.stdout.write(json.dumps(d) + "\n")
    else:
        sys.stdout.write(result.to_table())
        for p in paths:
            print(f"wrote {p}")
    return 0


def register(sub) -> None:
    from ..train import OPTIMIZERS
    from .grad import add_route_option_flags
    s = sub.add_parser("train", help="fit a model's parameters with gradient descent or Adam")
    s.add_argument("model", help="built-in model name, spec file (.toml), or linreg")
    s.add_argument("--method", default=None,
                   help="gradient route (default discrete, the discrete adjoint; any registered route, see "
                        "`symode grad --help`); linreg: derived or numeric")
    add_route_option_flags(s)
    s.add_argument("--optimizer", choices=list(OPTIMIZERS), default="gd",
                   help="gd: theta <- theta - lr * dL/dtheta (the seed's rule); adam: Adam (default gd)")
    s.add_argument("--lr", type=float, default=0.1, help="learning rate (default 0.1)")
    s.add_argument("--iterations", type=int, default=100, help="optimiser steps (default 100)")
    s.add_argument("--seed", type=int, default=0, help="seed of the noise generator (default 0)")
    s.add_argument("--param", action="append", metavar="NAME=DECIMAL", help="start value (repeatable)")
    s.add_argument("--params-json", metavar="FILE", help="start values as a JSON object of decimal strings")
    s.add_argument("--truth", action="append", metavar="NAME=DECIMAL",
                   help="generate targets from these parameter values (repeatable; 'nominal': the model's own)")
    s.add_argument("--times", default=None, metavar="T1,T2,...",
                   help="observation times of generated targets (default: the model's, else 10 equal steps)")
    s.add_argument("--z0", action="append", metavar="V1,V2,...",
                   help="initial state of one generated trajectory (repeatable; default the model's z0)")
    s.add_argument("--noise", type=float, default=0.0, help="standard deviation of noise on generated targets")
    s.add_argument("--points", type=int, default=None, help="linreg: number of generated data points (default 20)")
    s.add_argument("--data", default=None, metavar="FILE", help="targets from a .csv or .npz file")
    s.add_argument("--json", action="store_true", help="print the parameter and loss history as one JSON object")
    s.add_argument("--plot", default=None, metavar="DIR", help="write PNG pictures into DIR (needs symode[plot])")
    s.add_argument("--force", action="store_true", help="with --plot: write into DIR even if it already holds files")
    s.set_defaults(func=_cmd_train)
