"""``symode check``: every route against the oracle, with verdicts a user can act on.

The reference is the oracle (itself checked against closed forms in tests/test_oracle.py); what is tested
here is that the verdicts follow from the numbers: correct routes PASS at fine steps, and the back-solve
adjoint on a strongly contracting model (a known failure, docs/design.md: z(0) came back as 3.5e-19 instead of 1)
is reported as FAIL while the stored-trajectory adjoint is not, with a warning that names the route to trust.
"""
from __future__ import annotations

import subprocess
import sys

import pytest

from symode.check.report import check_model
from symode.library import get_model
from symode.spec import load_spec

CONTRACTING = '''
name = "contracting"
states = ["z"]
rhs = ["-k*(z - 1)"]
z0 = ["3"]
t0 = "0"
t1 = "1"
[params]
k = "50"
[loss]
terminal = "z**2"
running = "z**2"
'''


def test_every_route_passes_on_logistic_at_fine_steps():
    report = check_model(get_model("logistic"), steps=400)
    verdicts = {r.method: r.verdict for r in report.rows}
    assert verdicts == {"discrete": "PASS", "forward": "PASS", "adjoint": "PASS", "adjoint-stored": "PASS",
                        "cvodes": "PASS", "discrete vs forward": "PASS"}
    assert report.ok


def test_backsolve_adjoint_fails_on_contracting_model_and_report_names_route_to_trust():
    report = check_model(load_spec(CONTRACTING), steps=400)
    rows = {r.method: r for r in report.rows}
    assert rows["adjoint"].verdict == "FAIL"
    assert rows["adjoint-stored"].verdict in ("PASS", "COARSE")
    assert rows["cvodes"].verdict == "PASS"
    assert "adjoint-stored" in rows["adjoint"].warning
    assert not report.ok
    md = report.to_markdown()
    assert "Warnings:" in md and "trust method 'adjoint-stored'" in md


@pytest.mark.slow
def test_cli_exit_status(tmp_path):
    spec = tmp_path / "c.toml"
    spec.write_text(CONTRACTING)
    p = subprocess.run([sys.executable, "-m", "symode.cli", "check", str(spec), "--steps", "400"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 1 and "| adjoint | **FAIL**" in p.stdout
    p = subprocess.run([sys.executable, "-m", "symode.cli", "check", "logistic", "--steps", "400",
                        "--methods", "discrete,cvodes"], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
