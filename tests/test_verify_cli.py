"""``symode verify`` in CI: --json with its schema, exit status against expect:, corrections that verify,
per-claim budgets, and an --out that never destroys a file.

Independent references: the JSON Schema file shipped in the package (validated with jsonschema, not with the
code that writes the JSON); the documents' own expect: lines read from their text; hand-written claims whose
truth is stated next to them.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from symode.verify import parse_document, verify_document

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted((ROOT / "derivations").glob("*.md"))
SCHEMA = json.loads((ROOT / "symode" / "schemas" / "verify.schema.json").read_text())

#: Tolerances of this module: none (exit codes, verdict words and exact texts only).
TOL: dict = {}

MIXED = """```symbols
params: a, b
data: x, y
f := (a*x + b - y)**2
```

```claim
expect: FALSE
df/db = 2*(a*x + b - y)*x
```

```claim
df/da = 2*(a*x + b - y)*x
df/db = 2*(a*x + b - w)
```
"""


def _cli(*args, env=None, timeout=900):
    e = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, "-m", "symode.cli", "verify", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout, env=e)


@pytest.mark.slow
def test_repository_documents_exit_0_with_matched_expectations_and_valid_json():
    """Acceptance: the repository's documents are all as expected: exit 0, the report says how many matched."""
    proc = _cli(*DOCS, "--json")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    report = json.loads(proc.stdout)
    jsonschema.validate(report, SCHEMA)
    # every expect: line of the documents, counted from their text: all matched
    n_expect = sum(len([ln for ln in _claim_lines(d) if ln[1] is not None]) for d in DOCS)
    assert n_expect > 0 and report["matched"] == n_expect and report["mismatched"] == 0
    assert all(c["as_expected"] for c in report["claims"])
    proc = _cli(*DOCS)
    assert proc.returncode == 0
    assert f"{n_expect} verdicts matched their expectation" in proc.stdout
    assert "Every verdict is as expected." in proc.stdout


def _claim_lines(path: Path):
    """(line, expect) for each claim line, read from the text (not via the parser)."""
    expect, inside, out = None, False, []
    for i, line in enumerate(path.read_text().splitlines(), start=1):
        s = line.strip()
        if s.startswith("```claim"):
            inside, expect = True, None
        elif s.startswith("```") and inside:
            inside = False
        elif inside and s.startswith("expect:"):
            expect = s.split(":", 1)[1].strip()
        elif inside and s and not s.startswith("#"):
            out.append((i, expect))
    return out


def test_unexpected_false_and_error_exit_1_and_the_json_says_why(tmp_path):
    doc = tmp_path / "mixed.md"
    doc.write_text(MIXED)
    proc = _cli(doc, "--json")
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    jsonschema.validate(report, SCHEMA)
    by_line = {c["line"]: c for c in report["claims"]}
    # line 9: FALSE (the factor x is wrong: d/db (a x + b - y)^2 = 2 (a x + b - y)), and announced
    assert by_line[9]["verdict"] == "FALSE" and by_line[9]["matched"] is True and by_line[9]["as_expected"]
    assert by_line[9]["counterexample"] and by_line[9]["corrected"]
    assert by_line[13]["verdict"] == "TRUE" and by_line[13]["matched"] is None
    assert by_line[14]["verdict"] == "ERROR" and by_line[14]["evidence"] == "malformed"
    assert not by_line[14]["as_expected"] and report["exit_status"] == 1


def test_corrected_right_sides_are_in_the_document_syntax_and_verify_true():
    """A FALSE claim's correction, pasted back as the right-hand side, is TRUE."""
    text = """```symbols
symbols: x, a, s
positive: T
lr: LR
g := abs(x)
loss := (a*x - 1)**2
loss: loss
```
```claim
dg/dx = 1
integral(abs(s - a), s, -3, 3) = 9 + a**2
sqrt(T**2 + x**2) = T + abs(x)
a <- a - LR*x
dloss/da = 2*(a*x - 1)
```
"""
    doc = parse_document(text, "c.md")
    results = [r for r in verify_document(doc) if r.status == "FALSE"]
    assert len(results) == 5
    for r in results:
        assert r.corrected, r.text
        assert "Piecewise" not in r.corrected and "Eq(" not in r.corrected
        if "<-" in r.text:
            again = doc.parse_claim(f"{r.text.split('<-')[0].strip()} <- {r.corrected}", r.line)
        else:
            again = doc.parse_claim(f"{r.text.split(' = ')[0]} = {r.corrected}", r.line)
        (v,) = verify_document(_one(doc, again))
        assert v.status == "TRUE", (r.text, r.corrected, v.detail)


def _one(doc, claim):
    from symode.verify.document import Document
    d = Document(doc.path)
    d.entries = [("claim", claim)]
    return d


@pytest.mark.slow
def test_a_claim_past_its_budget_is_undecided_and_the_rest_is_checked(tmp_path):
    # the integral claim needs SymPy's antiderivative and rigorous quadrature (seconds); 1 s is not enough.
    # The other claims are checked: 2*x differentiated is 2 (hand).
    doc = tmp_path / "slow.md"
    doc.write_text("""```symbols
symbols: x, a, b, s, t0, t1, z0, zt
zs := (z0 + b/a)*exp(a*(s - t0)) - b/a
lam := 2*(zt - 1)*exp(a*(t1 - s))
g := 2*x
```
```claim
dg/dx = 2
integral(lam*zs, s, t0, t1) = integral(lam*zs, s, t0, t1) + 0*x
dg/dx = 3
```
""")
    proc = _cli(doc, "--json", env={"SYMODE_DERIVE_SECONDS": "1"})
    report = json.loads(proc.stdout)
    jsonschema.validate(report, SCHEMA)
    verdicts = {c["line"]: c for c in report["claims"]}
    assert verdicts[8]["verdict"] == "TRUE"
    assert verdicts[10]["verdict"] == "FALSE"
    if verdicts[9]["verdict"] == "UNDECIDED":          # past the budget on this machine (the usual case)
        assert verdicts[9]["evidence"] == "budget" and "budget" in verdicts[9]["detail"]
    else:                                              # a very fast machine: never anything but TRUE
        assert verdicts[9]["verdict"] == "TRUE"


class TestOut:
    """--out never overwrites an input or an existing file without --force, and writes atomically."""

    def _doc(self, tmp_path):
        doc = tmp_path / "ok.md"
        doc.write_text("```symbols\nparams: a\n```\n```claim\nda/da = 1\n```\n")
        return doc

    def test_out_equal_to_an_input_is_refused_even_with_force(self, tmp_path):
        doc = self._doc(tmp_path)
        before = doc.read_text()
        for extra in ((), ("--force",)):
            proc = _cli(doc, "--out", doc, *extra)
            assert proc.returncode == 2 and proc.stdout == ""
            assert proc.stderr.startswith("symode: error:") and proc.stderr.count("\n") == 1
            assert "input document" in proc.stderr
            assert doc.read_text() == before
        # the same file through another spelling of its path
        proc = _cli(doc, "--out", tmp_path / "." / "ok.md")
        assert proc.returncode == 2 and doc.read_text() == before

    def test_existing_file_needs_force_and_is_replaced_atomically(self, tmp_path):
        doc = self._doc(tmp_path)
        out = tmp_path / "report.md"
        out.write_text("old report\n")
        proc = _cli(doc, "--out", out)
        assert proc.returncode == 2 and "--force" in proc.stderr and out.read_text() == "old report\n"
        proc = _cli(doc, "--out", out, "--force")
        assert proc.returncode == 0 and out.read_text() == proc.stdout
        assert sorted(p.name for p in tmp_path.iterdir()) == ["ok.md", "report.md"]   # no temporary left

    def test_new_file_and_json(self, tmp_path):
        doc = self._doc(tmp_path)
        out = tmp_path / "report.json"
        proc = _cli(doc, "--out", out, "--json")
        assert proc.returncode == 0
        assert json.loads(out.read_text()) == json.loads(proc.stdout)
        jsonschema.validate(json.loads(out.read_text()), SCHEMA)

    def test_missing_directory_and_non_regular_target_are_refused_before_any_work(self, tmp_path):
        doc = self._doc(tmp_path)
        proc = _cli(doc, "--out", tmp_path / "nope" / "r.md")
        assert proc.returncode == 2 and "does not exist" in proc.stderr
        proc = _cli(doc, "--out", tmp_path, "--force")
        assert proc.returncode == 2 and "not a regular file" in proc.stderr
