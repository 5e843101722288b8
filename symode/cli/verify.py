"""``symode verify FILE...``: check the claims of derivation documents; a Markdown (or ``--json``) report.

Exit status: 0 when every verdict is as expected (equal to its block's ``expect:`` line, or, without one, TRUE
or UNDECIDED); 1 otherwise (a FALSE claim or malformed line that no ``expect:`` announces, a verdict that
differs from its ``expect:`` line, a document without claims); 2 a user error before any checking (a missing
or unreadable file, bad arguments, an ``--out`` that names an input or an existing file without ``--force``),
printed on one line.  Each claim is checked in a child process under the budget ``derive`` uses
(SYMODE_DERIVE_SECONDS, SYMODE_DERIVE_MEMORY_MB); a claim past it is UNDECIDED with the reason.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path


def _check_out(out: str, files: list, force: bool) -> Path:
    """The --out path after the checks that come before any work: never an input, never an existing file
    unless --force (and then only a regular file), in a directory that exists."""
    from ..errors import VerificationError
    target = Path(out)
    for f in files:
        try:
            same = target.exists() and Path(f).exists() and os.path.samefile(target, f)
        except OSError:
            same = False
        if same or target.resolve() == Path(f).resolve():
            raise VerificationError(f"--out {out}: that is the input document {f}; write the report elsewhere")
    if target.is_symlink() or (target.exists() and not target.is_file()):
        raise VerificationError(f"--out {out}: exists and is not a regular file; name a new file")
    if target.exists() and not force:
        raise VerificationError(f"--out {out}: the file exists; choose a new name or add --force to replace it")
    if not target.parent.is_dir():
        raise VerificationError(f"--out {out}: the directory {target.parent} does not exist")
    return target


def _write_atomic(target: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``target`` and rename it into place (all or nothing)."""
    from ..errors import VerificationError
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise VerificationError(f"--out {target}: cannot write the report ({exc.strerror or exc})") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        raise VerificationError(f"--out {target}: cannot write the report ({exc.strerror or exc})") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _cmd_verify(args) -> int:
    from ..symbolic.budget import budget_from_env
    from ..verify import exit_status, markdown, to_json, verify_files
    target = _check_out(args.out, args.files, args.force) if args.out else None
    budget = budget_from_env()
    results = verify_files(args.files, budget=budget)
    if args.json:
        text = json.dumps(to_json(results, files=args.files), indent=2) + "\n"
    else:
        text = markdown(results, files=args.files)
    if target is not None:
        _write_atomic(target, text)
    sys.stdout.write(text)
    return exit_status(results)


def register(sub) -> None:
    s = sub.add_parser("verify", help="check the claims of derivation documents (Markdown)")
    s.add_argument("files", nargs="+", metavar="FILE", help="derivation documents (see derivations/README.md)")
    s.add_argument("--out", default=None, help="also write the report to this new file (never an input)")
    s.add_argument("--force", action="store_true", help="with --out: replace an existing report file")
    s.add_argument("--json", action="store_true",
                   help="print the report as JSON (schema: symode/schemas/verify.schema.json)")
    s.set_defaults(func=_cmd_verify)
