"""``symode demo``: the seed notes' story from derivation to training (:mod:`symode.demo`); exit 1 if any of
its cross-checks disagreed."""
from __future__ import annotations


def _cmd_demo(args) -> int:
    from ..demo import run_demo
    from ..outputs import check_plot_dir
    plot_dir = None if args.no_plot else args.plot
    check_plot_dir(plot_dir, force=args.force)  # before the demo's minutes of work
    return 0 if run_demo(quick=args.quick, plot_dir=plot_dir, emit=lambda line: print(line, flush=True)) else 1


def register(sub) -> None:
    s = sub.add_parser("demo", help="the seed notes' neural ODE end to end: derive, verify, compile, check, "
                                    "train, figures")
    s.add_argument("--quick", action="store_true", help="skip the MLP fit and the oracle-driven training")
    s.add_argument("--plot", default="symode-demo-figures", metavar="DIR",
                   help="where the figures go (default ./symode-demo-figures; needs symode[plot])")
    s.add_argument("--no-plot", action="store_true", help="write no figures")
    s.add_argument("--force", action="store_true", help="write the figures even if --plot DIR already holds files")
    s.set_defaults(func=_cmd_demo)
