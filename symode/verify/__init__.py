"""Verification of hand-written derivations (``symode verify``).

A derivation document (Markdown, format in ``derivations/README.md`` and :mod:`symode.verify.document`)
declares its symbols once and states claims in fenced ``claim`` blocks; :func:`verify_files` checks every
claim (SymPy's symbolic proof, rigorous ball-arithmetic evaluation at chosen points; see
:mod:`symode.verify.claims`) and returns one :class:`~symode.verify.report.ClaimResult` per claim.
"""
from __future__ import annotations

from .claims import TOLERANCES, VERIFY_SETTINGS, Verdict, check
from .document import Claim, Document, parse_document, read_document
from .report import ClaimResult, exit_status, markdown, to_json

__all__ = ["TOLERANCES", "VERIFY_SETTINGS", "Claim", "ClaimResult", "Document", "Verdict", "check", "check_claim", "exit_status",
           "markdown", "parse_document", "read_document", "to_json", "verify_document", "verify_files"]


def _result(claim: Claim, v: Verdict) -> ClaimResult:
    return ClaimResult(claim.path, claim.line, claim.text, claim.kind, v.status, v.method, v.detail,
                       claim.against, v.point, v.values, v.corrected, claim.expect, v.points, v.digits)


def _verdict(model, reference, stated, positive, correct: bool = True) -> Verdict:
    if model is not None and (model.has_quantities(reference - stated) or model.along_integrals(reference - stated)):
        from .modelclaims import check_model_claim
        return check_model_claim(model, reference, stated, positive, correct)
    return check(reference, stated, positive, correct=correct)


def check_claim(claim: Claim) -> ClaimResult:
    """Check one parsed claim (in this process, without a budget).  A claim that names the model's solution,
    adjoint, loss or gradients is checked by :mod:`symode.verify.modelclaims`; a claim in matrix form element
    by element (:func:`symode.verify.matrices.combined`)."""
    if claim.shape is not None:
        from .matrices import combined
        rows, cols = claim.shape
        verdicts = [((k // cols, k % cols), _verdict(claim.model, r, s, claim.positive, correct=False))
                    for k, (r, s) in enumerate(zip(claim.reference, claim.stated))]
        from .matrices import elements_text
        v = combined(verdicts, claim.shape, claim.matrix_reference)
        if v.status == "FALSE" and not v.corrected:
            v.corrected = elements_text(claim.reference)
        return _result(claim, v)
    return _result(claim, _verdict(claim.model, claim.reference, claim.stated, claim.positive))


def check_claim_budgeted(claim: Claim, seconds: float, memory_mb: int) -> ClaimResult:
    """Check one claim in a forked child under the budget ``derive`` uses (SYMODE_DERIVE_SECONDS,
    SYMODE_DERIVE_MEMORY_MB): a claim that runs past it is UNDECIDED with the reason, and the rest of the
    document is still checked."""
    from ..symbolic.budget import BudgetExceeded, call_with_budget
    try:
        return call_with_budget(check_claim, claim, seconds=seconds, memory_mb=memory_mb,
                                what=f"checking the claim at {claim.path}:{claim.line}")
    except BudgetExceeded as exc:
        return _result(claim, Verdict("UNDECIDED", "budget", " ".join(str(exc).split())))


def verify_document(doc: Document, budget: tuple | None = None) -> list[ClaimResult]:
    """Results for every entry of a parsed document, in file order (malformed lines as ERROR).

    ``budget``: (seconds, MiB) per claim, each claim then checked in a budgeted child; None checks in process.
    """
    results = []
    model = getattr(doc.env, "model", None)
    if model is not None and model.numeric is not None:
        # every value the claims need, in one solve, before the claims are checked (in children that inherit it)
        from .modelclaims import prepare_table
        prepare_table(model, [e for c in doc.claims if c.model is not None for e in (c.reference, c.stated)], budget)
    for kind, entry in doc.entries:
        if kind == "claim":
            results.append(check_claim(entry) if budget is None else check_claim_budgeted(entry, *budget))
        else:
            results.append(ClaimResult(entry.path, entry.line, entry.text, "malformed", "ERROR",
                                       detail=entry.message, expect=entry.expect))
    return results


def verify_files(paths, budget: tuple | None = None) -> list[ClaimResult]:
    """Read, parse and check each file; a missing or unreadable file raises VerificationError."""
    docs = [read_document(p) for p in paths]
    return [r for d in docs for r in verify_document(d, budget)]
