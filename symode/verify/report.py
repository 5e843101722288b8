"""Verification results: the Markdown report, the JSON report and the exit status.

One :class:`ClaimResult` per claim (or malformed line) with file:line, status (TRUE, FALSE, UNDECIDED, ERROR),
how it was decided and the details; :func:`markdown` renders a summary table and one section per entry;
:func:`to_json` the object described by ``symode/schemas/verify.schema.json``.  An entry is *as expected*
when its verdict equals its block's ``expect:`` line, or, without one, when it is TRUE or UNDECIDED;
:func:`exit_status` is 0 when every entry is as expected, else 1.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ClaimResult:
    path: str
    line: int
    text: str
    kind: str                  # "equality", "derivative", "ode", "update", or "malformed"
    status: str                # "TRUE", "FALSE", "UNDECIDED", "ERROR"
    method: str = ""
    detail: str = ""
    against: str = ""
    point: dict = field(default_factory=dict)
    values: tuple = ()
    corrected: str = ""
    expect: str | None = None
    points: int = 0            # points numeric evidence rests on
    digits: int = 0            # digits of agreement at each

    @property
    def evidence(self) -> str:
        """How the verdict was reached: symbolic, numeric, exact difference, counterexample, budget, malformed."""
        if self.status == "ERROR":
            return "malformed"
        return self.method.split(",")[0]

    @property
    def as_expected(self) -> bool:
        """The verdict equals the expect: line, or (without one) is TRUE or UNDECIDED."""
        if self.expect is not None:
            return self.expect == self.status
        return self.status in ("TRUE", "UNDECIDED")

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"

    @property
    def label(self) -> str:
        """Status as reported: 'TRUE (symbolic)', 'TRUE (numeric, 24 points)', 'FALSE', ..."""
        if self.status == "TRUE":
            return f"TRUE ({self.method})"
        return self.status

    @property
    def matches_expectation(self) -> bool | None:
        return None if self.expect is None else self.expect == self.status


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _code(text: str) -> str:
    return "`" + text.replace("`", "'") + "`"


def markdown(results: list[ClaimResult], files: list | None = None) -> str:
    """The Markdown report: counts, a table of every entry, then details of every entry that is not TRUE
    by symbolic proof (FALSE with counterexample and correction, UNDECIDED and ERROR with the reason, numeric
    TRUE with its evidence).  ``files``: the files checked (default: those the results name)."""
    counts = {s: sum(r.status == s for r in results) for s in ("TRUE", "FALSE", "UNDECIDED", "ERROR")}
    numeric = sum(r.status == "TRUE" and r.method.startswith("numeric") for r in results)
    oracle = sum(r.status == "TRUE" and r.method.startswith("oracle") for r in results)
    mismatched = [r for r in results if r.matches_expectation is False]
    matched = sum(r.matches_expectation is True for r in results)
    out = ["# symode verify report", ""]
    n_files = len(files) if files is not None else len({r.path for r in results})
    out.append(f"{len(results)} claims in {n_files} file(s): {counts['TRUE']} TRUE ({numeric} of them by "
               f"numeric evaluation only, {oracle} by the oracle at the document's values), {counts['FALSE']} FALSE, {counts['UNDECIDED']} UNDECIDED, "
               f"{counts['ERROR']} ERROR; {matched} verdicts matched their expectation (`expect:`).")
    unexpected = [r for r in results if not r.as_expected and r.matches_expectation is None]
    out.append("")
    if not mismatched and not unexpected:
        out.append("Every verdict is as expected.")
    if mismatched:
        out.append(f"**{len(mismatched)} verdict(s) differ from the document's `expect:` annotation:** "
                   + ", ".join(f"{r.where} (expected {r.expect}, got {r.status})" for r in mismatched))
    if unexpected:
        out.append(f"**{len(unexpected)} FALSE or ERROR verdict(s) without an `expect:` line:** "
                   + ", ".join(r.where for r in unexpected))
    out += ["", "| where | kind | claim | status |", "|---|---|---|---|"]
    for r in results:
        status = r.label + {True: " (as expected)", False: f" (expected {r.expect})", None: ""}[r.matches_expectation]
        out.append(f"| {r.where} | {r.kind} | {_cell(_code(r.text))} | {_cell(status)} |")
    details = [r for r in results if r.status != "TRUE" or r.method.startswith(("numeric", "oracle"))]
    if details:
        out += ["", "## Details"]
    for r in details:
        out += ["", f"### {r.where}: {r.label}", "", _code(r.text), ""]
        if r.status == "ERROR":
            out.append(f"- malformed: {r.detail}")
            continue
        out.append(f"- kind: {r.kind}; checked against {r.against}")
        if r.status == "FALSE":
            out.append(f"- {r.detail}")
            if r.point or r.values:
                out.append("- counterexample: " + (", ".join(f"{k} = {v}" for k, v in r.point.items())
                                                   or "(no symbols)"))
            if r.values:
                out.append(f"  - {r.against}: {r.values[0]}")
                out.append(f"  - right-hand side as written: {r.values[1]}")
            out.append("- corrected right-hand side: " + (_code(r.corrected) if r.corrected else
                                                          "(none in the document's syntax)"))
        else:
            out.append(f"- {r.detail}")
    return "\n".join(out) + "\n"


def exit_status(results: list[ClaimResult]) -> int:
    """0 when every entry is as expected (see the module docstring), else 1."""
    return 0 if all(r.as_expected for r in results) else 1


#: Version of the JSON report's layout (``symode/schemas/verify.schema.json``).
JSON_VERSION = 1


def to_json(results: list[ClaimResult], files: list | None = None) -> dict:
    """The JSON report: the files, the counts and one object per claim (or malformed line)."""
    counts = {s: sum(r.status == s for r in results) for s in ("TRUE", "FALSE", "UNDECIDED", "ERROR")}
    claims = []
    for r in results:
        c = {"file": r.path, "line": r.line, "claim": r.text, "kind": r.kind, "verdict": r.status,
             "evidence": r.evidence, "method": r.method, "detail": r.detail, "points": r.points,
             "digits": r.digits, "expected": r.expect, "matched": r.matches_expectation,
             "as_expected": r.as_expected}
        if r.status != "ERROR":
            c["against"] = r.against
        if r.status == "FALSE":
            c["counterexample"] = dict(r.point)
            c["values"] = list(r.values)
            c["corrected"] = r.corrected
        claims.append(c)
    return {"version": JSON_VERSION, "files": list(files if files is not None else dict.fromkeys(r.path for r in results)),
            "counts": counts, "matched": sum(r.matches_expectation is True for r in results),
            "mismatched": sum(r.matches_expectation is False for r in results),
            "exit_status": exit_status(results), "claims": claims}
