"""``symode codegen MODEL --out DIR``: write C sources for a model's solve, loss and gradients.

Produces the text with :func:`symode.codegen.ctext.generate` (in a budgeted child process: a spec is untrusted
input and its symbolic derivation could be arbitrarily slow) and writes it with
:func:`symode.codegen.write.write_directory` (all or nothing: DIR is never left half-written).
"""
from __future__ import annotations


def _generate_files(name_or_path: str, scheme: str, steps: int, overrides: dict, with_fsens: bool = False,
                    checkpoints: int | None = None) -> tuple[dict, str, dict]:
    from ..codegen.ctext import generate
    from ..library import resolve_model
    from .params import model_with_overrides
    code = generate(model_with_overrides(resolve_model(name_or_path), overrides), scheme, steps,
                    with_fsens=with_fsens, checkpoints=checkpoints)
    return code.files, code.prefix, {**code.flat, **{"cas_" + k: v for k, v in code.names.items()}}


def _cmd_codegen(args) -> int:
    from ..codegen.ctext import check_options
    from ..codegen.write import write_directory
    from ..library import resolve_model
    from ..outputs import check_targets, input_paths
    from ..symbolic.budget import budget_from_env, call_with_budget
    from .params import model_with_overrides, parameter_overrides
    check_options(args.scheme, args.steps, args.checkpoints, cli=True)  # every option before any work starts
    check_targets([args.out], option="--out", force=args.force,
                  inputs=input_paths(args.model, args.params_json))
    seconds, memory = budget_from_env()
    overrides = parameter_overrides(args.param, args.params_json)
    model_with_overrides(resolve_model(args.model), overrides)  # spec and value errors here, before the derivation
    files, prefix, names = call_with_budget(_generate_files, args.model, args.scheme, args.steps, overrides,
                                            "fsens" in (args.with_ or []), args.checkpoints,
                                            seconds=seconds, memory_mb=memory,
                                            what=f"generating C code for {args.model!r}")
    path = write_directory(files, args.out)
    print(f"wrote {path}: {', '.join(sorted(files))}")
    print(f"functions: {', '.join(names.values())}")
    return 0


def register(sub) -> None:
    """Add the ``codegen`` command to the ``symode`` argument parser."""
    from ..casadi.schemes import SCHEMES
    s = sub.add_parser("codegen", help="write C code for a model's forward solve, loss and gradients")
    s.add_argument("model", help="built-in model name or spec file (.toml)")
    s.add_argument("--out", required=True, metavar="DIR",
                   help="output directory (created; an existing one only with --force, and only if it is a "
                        "previous symode output)")
    s.add_argument("--force", action="store_true", help="replace --out DIR if it exists (a previous symode output)")
    s.add_argument("--scheme", choices=list(SCHEMES), default="rk4", help="fixed-step scheme (default rk4)")
    s.add_argument("--steps", type=int, default=100, help="number of fixed steps (default 100)")
    from .params import add_parameter_options
    add_parameter_options(s, "generate with")
    s.add_argument("--with", dest="with_", action="append", choices=["fsens"], metavar="fsens",
                   help="also generate the forward-sensitivity cross-check P_cas_fsens (np + nz + 2 directions; "
                        "large for many parameters)")
    s.add_argument("--checkpoints", type=int, default=None, metavar="N",
                   help="store N forward states in the gradient and recompute the steps between them (default: "
                        "store every state when they fit in 256 MiB)")
    s.set_defaults(func=_cmd_codegen)
