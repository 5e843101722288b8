"""``symode verify FILE...``: check the claims of derivation documents and print a Markdown report.

Exit status: 0 every claim TRUE or UNDECIDED and as its ``expect:`` line states; 1 some claim FALSE, some
claim/declaration malformed or a document without claims (ERROR, reported with file and line; the other claims
are still checked), or some verdict differs from its ``expect:`` line; 2 a user error before any checking (a
missing or unreadable file, bad arguments), printed on one line.
"""
from __future__ import annotations

import sys
from pathlib import Path


def _cmd_verify(args) -> int:
    from ..errors import VerificationError
    from ..verify import markdown, verify_files
    results = verify_files(args.files)
    text = markdown(results, files=args.files)
    if args.out:
        try:
            Path(args.out).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise VerificationError(f"--out {args.out}: cannot write the report ({exc.strerror or exc})") from None
    sys.stdout.write(text)
    # a verdict that differs from the document's expect: line makes the document's own statement false
    return 1 if any(r.status in ("FALSE", "ERROR") or r.matches_expectation is False for r in results) else 0


def register(sub) -> None:
    s = sub.add_parser("verify", help="check the claims of derivation documents (Markdown) with SymPy")
    s.add_argument("files", nargs="+", metavar="FILE", help="derivation documents (see derivations/README.md)")
    s.add_argument("--out", default=None, help="also write the Markdown report to this file")
    s.set_defaults(func=_cmd_verify)
