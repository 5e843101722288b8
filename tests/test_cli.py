"""The command line as a user runs it (a real subprocess): output, exit codes, one-line errors."""
from __future__ import annotations

import subprocess
import sys

import pytest

from tests.test_spec import LOGISTIC


def run(*args, cwd=None):
    p = subprocess.run([sys.executable, "-m", "symode.cli", *args], capture_output=True, text=True, cwd=cwd,
                       timeout=300)
    return p.returncode, p.stdout, p.stderr


@pytest.mark.slow
def test_derive_logistic_latex_prints_adjoint_equations():
    rc, out, err = run("derive", "logistic", "--format", "latex")
    assert rc == 0, err
    # the adjoint ODE of the logistic model, dλ/dt = -(r - 2 r z/K) λ, in SymPy's LaTeX
    assert r"\frac{d}{d t} \left[\begin{matrix}\lambda_{z}{\left(t \right)}\end{matrix}\right]" in out
    assert "adjoint_final" in out and "grad_t0" in out and "augmented_backward_system" in out


@pytest.mark.slow
def test_derive_spec_file_markdown(tmp_path):
    p = tmp_path / "logistic.toml"
    p.write_text(LOGISTIC)
    rc, out, err = run("derive", str(p), "--format", "markdown")
    assert rc == 0, err
    assert "### `adjoint`" in out and "$$" in out


@pytest.mark.slow
def test_derive_text_with_closed_form():
    rc, out, err = run("derive", "linear", "--closed-form")
    assert rc == 0, err
    assert "closed_form_solution" in out and "closed_form_dL_dt0" in out


@pytest.mark.slow
def test_derive_reports_no_closed_form_plainly():
    rc, out, err = run("derive", "vanderpol", "--closed-form")
    assert rc == 0, err
    assert "Closed form: no closed form" in out and "Traceback" not in out + err


@pytest.mark.slow
def test_models_lists_builtins():
    rc, out, _ = run("models")
    assert rc == 0
    for name in ("linear", "logistic", "oscillator", "lotka-volterra", "vanderpol", "pendulum", "spiral", "mlp",
                 "linreg"):
        assert name in out


@pytest.mark.slow
@pytest.mark.parametrize("args", [
    ("derive", "no-such-model"),
    ("derive", "missing.toml"),
    ("derive", "logistic", "--format", "pdf"),
    ("nonsense",),
    (),
])
def test_user_errors_are_one_line_exit_2(args):
    rc, out, err = run(*args)
    assert rc == 2
    assert len(err.strip().splitlines()) == 1 and err.startswith("symode: error:")
    assert "Traceback" not in err


@pytest.mark.slow
def test_injection_spec_via_cli_creates_nothing(tmp_path):
    p = tmp_path / "evil.toml"
    p.write_text(LOGISTIC.replace('"r*z*(1 - z/K)"', '''"__import__('os').system('touch PWNED')"'''))
    rc, out, err = run("derive", str(p), cwd=tmp_path)
    assert rc == 2 and "rhs[0]" in err
    assert sorted(x.name for x in tmp_path.iterdir()) == ["evil.toml"]


@pytest.mark.slow
def test_derivation_runs_under_a_time_budget(monkeypatch):
    """Hardening item 4: a derivation too big for its budget ends with a clear error, not a hang."""
    import os
    import time
    env = {**os.environ, "SYMODE_DERIVE_SECONDS": "0.5"}
    start = time.perf_counter()
    # mlp-16-1024 (33,808 parameters): reading its values alone takes the budgeted child well past 0.5 s (the
    # matrix-form derivation of mlp-8-64 can finish within it on a quiet machine)
    p = subprocess.run([sys.executable, "-m", "symode.cli", "derive", "mlp-16-1024"], capture_output=True, text=True,
                       env=env, timeout=120)
    assert p.returncode == 2 and "time budget of 0.5 s" in p.stderr
    assert time.perf_counter() - start < 60  # generous: only catches a hang (import + fork + kill)


@pytest.mark.slow
@pytest.mark.parametrize("args,fragment", [
    (("--params-json", "{params}"), "NaN is not a number"),
    (("--param", "r=nan"), "not a finite number"),
    (("--param", "r=1e400"), "--param r"),
    (("--param", "q=1"), "no parameter named q"),
    (("--param", "r"), "expected NAME=DECIMAL"),
])
def test_parameter_overrides_refuse_non_finite_values(tmp_path, args, fragment):
    """Hardening item 5: JSON NaN (accepted by Python's json by default) and friends are refused up front."""
    p = tmp_path / "p.json"
    p.write_text('{"r": NaN}')
    args = tuple(a.format(params=p) for a in args)
    rc, out, err = run("grad", "logistic", "--method", "exact", *args)
    assert rc == 2 and fragment in err and out == ""


@pytest.mark.slow
def test_parameter_override_changes_the_exact_value(tmp_path):
    """--param r=1.5 equals a spec written with r = "1.5" (same exact decimal, two ways in)."""
    import json
    spec = tmp_path / "l.toml"
    spec.write_text(LOGISTIC.replace('r = "1.3"', 'r = "1.5"'))
    rc, a, err = run("grad", "logistic", "--method", "exact", "--param", "r=1.5", "--json")
    assert rc == 0, err
    rc, b, err = run("grad", str(spec), "--method", "exact", "--json")
    assert rc == 0, err
    assert json.loads(a)["grad"] == json.loads(b)["grad"]
