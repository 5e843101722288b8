"""Verification of hand-written derivations (``symode verify``).

A derivation document (Markdown, format in ``derivations/README.md`` and :mod:`symode.verify.document`)
declares its symbols once and states claims in fenced ``claim`` blocks; :func:`verify_files` checks every
claim (SymPy's symbolic proof, rigorous ball-arithmetic evaluation at chosen points; see
:mod:`symode.verify.claims`) and returns one :class:`~symode.verify.report.ClaimResult` per claim.
"""
from __future__ import annotations

from .claims import TOLERANCES, Verdict, check
from .document import Claim, Document, parse_document, read_document
from .report import ClaimResult, markdown

__all__ = ["TOLERANCES", "Claim", "ClaimResult", "Document", "Verdict", "check", "check_claim", "markdown",
           "parse_document", "read_document", "verify_document", "verify_files"]


def check_claim(claim: Claim) -> ClaimResult:
    """Check one parsed claim."""
    v = check(claim.reference, claim.stated, claim.positive)
    return ClaimResult(claim.path, claim.line, claim.text, claim.kind, v.status, v.method, v.detail,
                       claim.against, v.point, v.values, v.corrected, claim.expect)


def verify_document(doc: Document) -> list[ClaimResult]:
    """Results for every entry of a parsed document, in file order (malformed lines as ERROR)."""
    results = []
    for kind, entry in doc.entries:
        if kind == "claim":
            results.append(check_claim(entry))
        else:
            results.append(ClaimResult(entry.path, entry.line, entry.text, "malformed", "ERROR",
                                       detail=entry.message, expect=entry.expect))
    return results


def verify_files(paths) -> list[ClaimResult]:
    """Read, parse and check each file; a missing or unreadable file raises VerificationError."""
    docs = [read_document(p) for p in paths]
    return [r for d in docs for r in verify_document(d)]
