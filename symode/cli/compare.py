"""``symode compare RESULT.json --against GOLDEN.json|MODEL``: check another implementation's numbers in CI.

RESULT.json holds one object in the shape of ``symode grad --json`` (loss, grad, grad_z0, grad_t0, grad_t1;
decimal strings or JSON numbers, read exactly) or, against a golden file with several points, a JSON array
with one such object per point in the file's order.  The reference is a golden file (``symode oracle export``)
or a model (a built-in name or a spec file, computed by ``--method``, default the oracle).  Exit status 0 when
every compared value agrees (|c - r| <= atol + rtol·max(|c|, |r|)), 1 on a mismatch (the table names each
quantity and the worst), 2 on a user error.  See :mod:`symode.testing` for the comparison's rules.
"""
from __future__ import annotations

import sys

#: --rtol's default: tight enough that a wrong sign, factor or term fails by orders of magnitude, loose enough for
#: an adaptive float64 solver at a tight tolerance (1e-10 local tolerances give ~1e-9..1e-7 global error).
DEFAULT_RTOL = 1e-6


def _cmd_compare(args) -> int:
    from ..errors import SpecError
    from ..symbolic.budget import budget_from_env, call_with_budget
    from ..testing import _read_json
    seconds, memory = budget_from_env()
    data = _read_json(args.result)
    if not isinstance(data, (list, dict)):
        raise SpecError(f"{args.result}: expected a JSON object (or an array of them)")
    if isinstance(data, list) and not args.against.lower().endswith(".json"):
        raise SpecError(f"{args.result}: a list of results needs a golden file with that many points "
                        f"(--against FILE.json)")
    # a MODEL reference is computed (the oracle: minutes for a large model): in a child under the budget
    bad, compared = call_with_budget(_compare, data, args.against, args.result, args.point, seconds=seconds,
                                     memory_mb=memory, what=f"comparing {args.result} with {args.against}",
                                     kwargs=dict(rtol=args.rtol, atol=args.atol, method=args.method,
                                                 digits=args.digits, quantities=args.quantities.split(",")
                                                 if args.quantities else None))
    if bad:
        sys.stdout.write("\n\n".join(bad) + "\n")
        return 1
    print(f"match: {compared} values agree within rtol={args.rtol!r}"
          f"{'' if args.atol is None else f', atol={args.atol!r}'}")
    return 0


def _compare(data, against: str, result_name: str, point, **kw) -> tuple[list[str], int]:
    """The mismatch messages and the number of values compared (in the budgeted child)."""
    from ..errors import SpecError
    from ..testing import gradients_match
    if isinstance(data, list):
        from ..testing import _reference_points
        n = len(_reference_points(against, kw["method"], kw["digits"]))
        if len(data) != n:
            raise SpecError(f"{result_name} holds {len(data)} results; {against} has {n} point(s)")
        results = [gradients_match(d, against, point=i, **kw) for i, d in enumerate(data)]
    else:
        results = [gradients_match(data, against, point=point, **kw)]
    bad = [msg for ok, _, msg in results if not ok]
    return bad, sum(len(c.rows) for _, comps, _ in results for c in comps)


def register(sub) -> None:
    s = sub.add_parser("compare", help="compare a gradient result (JSON) with a golden file or a model's oracle; "
                                       "exit 1 on a mismatch")
    s.add_argument("result", metavar="RESULT.json", help="a `symode grad --json`-shaped object (or an array, one "
                                                         "per golden point)")
    s.add_argument("--against", required=True, metavar="GOLDEN.json|MODEL",
                   help="a golden file, or a built-in model name / spec file (computed by --method)")
    s.add_argument("--rtol", type=float, default=DEFAULT_RTOL, help=f"relative tolerance (default {DEFAULT_RTOL:g})")
    s.add_argument("--atol", type=float, default=None,
                   help="absolute tolerance (default: rtol x the scale of the reference's values)")
    s.add_argument("--quantities", metavar="LIST", help="compare only these, e.g. loss,grad,grad_z0")
    s.add_argument("--point", type=int, default=None, metavar="I", help="the golden file's point I")
    s.add_argument("--method", default="oracle", help="how to compute a MODEL reference (default oracle)")
    s.add_argument("--digits", type=int, default=30, help="digits of a computed reference (default 30)")
    s.set_defaults(func=_cmd_compare)
