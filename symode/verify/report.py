"""Verification results and their Markdown report.

One :class:`ClaimResult` per claim (or malformed line) with file:line, status (TRUE, FALSE, UNDECIDED, ERROR),
how it was decided and the details; :func:`markdown` renders a summary table and one section per entry.
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
    mismatched = [r for r in results if r.matches_expectation is False]
    out = ["# symode verify report", ""]
    n_files = len(files) if files is not None else len({r.path for r in results})
    out.append(f"{len(results)} claims in {n_files} file(s): {counts['TRUE']} TRUE ({numeric} of them by "
               f"numeric evaluation only), {counts['FALSE']} FALSE, {counts['UNDECIDED']} UNDECIDED, "
               f"{counts['ERROR']} ERROR.")
    if mismatched:
        out.append("")
        out.append(f"**{len(mismatched)} verdict(s) differ from the document's `expect:` annotation:** "
                   + ", ".join(f"{r.where} (expected {r.expect}, got {r.status})" for r in mismatched))
    out += ["", "| where | kind | claim | status |", "|---|---|---|---|"]
    for r in results:
        status = r.label + ("" if r.matches_expectation is not False else f" (expected {r.expect})")
        out.append(f"| {r.where} | {r.kind} | {_cell(_code(r.text))} | {_cell(status)} |")
    details = [r for r in results if r.status != "TRUE" or r.method.startswith("numeric")]
    if details:
        out += ["", "## Details"]
    for r in details:
        out += ["", f"### {r.where}: {r.label}", "", _code(r.text), ""]
        if r.status == "ERROR":
            out.append(f"- malformed: {r.detail}")
            continue
        out.append(f"- kind: {r.kind}; checked against {r.against}")
        if r.status == "FALSE":
            if r.method == "exact difference":
                out.append(f"- {r.detail}")
            if r.point:
                out.append("- counterexample: " + ", ".join(f"{k} = {v}" for k, v in r.point.items()))
            out.append(f"  - {r.against}: {r.values[0]}")
            out.append(f"  - right-hand side as written: {r.values[1]}")
            out.append(f"- corrected right-hand side: {_code(r.corrected)}")
        else:
            out.append(f"- {r.detail}")
    return "\n".join(out) + "\n"
