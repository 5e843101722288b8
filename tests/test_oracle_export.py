"""Golden case files (`symode oracle export`): content, round trip, all-or-nothing writing.

Independent references: the model's own spec fields (parameter values, t0, t1 as written in the library's
TOML), the model fingerprint (a rebuilt model must be the same model), the closed form (the exported reference
values of a closed-form model must equal it), and the JSON schema of the reference object.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from fractions import Fraction

import mpmath
import pytest

from symode.errors import SymodeError
from symode.library import get_model
from symode.oracle.engine import VALUE_FLOOR, exact_gradient
from symode.oracle.export import GOLDEN_FORMAT, GOLDEN_FORMAT_VERSION, export_golden, load_golden
from symode.spec import load_spec

#: |reference - closed form| <= 10^-(digits-1) relative: all but the last printed digit (rounding of the last one)
TOL_VS_EXACT = lambda digits: mpmath.mpf(10) ** -(digits - 1)  # noqa: E731


def _cli(*args):
    env = {**os.environ, "SYMODE_QUIET": "1"}
    return subprocess.run([sys.executable, "-m", "symode.cli", *args], capture_output=True, text=True,
                          timeout=120, env=env)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("golden") / "cases"  # not existing yet: export creates it
    p = _cli("oracle", "export", "logistic", "linear", "--out", str(out), "--digits", "25")
    assert p.returncode == 0, p.stderr
    return out, p


@pytest.mark.slow
def test_files_written_and_named(exported):
    out, p = exported
    assert sorted(os.listdir(out)) == ["linear.json", "logistic.json"]  # no temporary files left behind
    assert p.stdout.split() == [str(out / "logistic.json"), str(out / "linear.json")]


@pytest.mark.parametrize("name", ["logistic", "linear"])
def test_file_contents(exported, name):
    out, _ = exported
    data = load_golden(out / f"{name}.json")
    assert data["format"] == GOLDEN_FORMAT and data["format_version"] == GOLDEN_FORMAT_VERSION
    m = get_model(name)
    # the spec text rebuilds the very same model
    assert load_spec(data["spec"]).fingerprint() == m.fingerprint()
    # parameter values, t0, t1 as the library's spec writes them (exact decimals)
    spec_params = {k: str(v) for k, v in m.spec["params"].items()}
    # compared as exact rationals (Fraction parses decimal text exactly), not through 15-digit floats
    assert {k: Fraction(v) for k, v in data["params"].items()} == {k: Fraction(v) for k, v in spec_params.items()}
    assert list(data["params"]) == m.param_names
    assert Fraction(data["t0"]) == Fraction(str(m.spec["t0"]))
    assert Fraction(data["t1"]) == Fraction(str(m.spec["t1"]))
    assert data["digits"] == 25
    # the file explains its own conventions to a reader without symode (signs of the time gradients, totals)
    conv = data["conventions"]
    assert "total" in conv["grad"] and "-lambda(t0)^T f(z0, t0)" in conv["grad_t0"] and "relative" in conv["error_bound"]
    ref = data["reference"]
    assert ref["method"] == "oracle" and ref["model"] == name and ref["error_bound"] == data["error_bound"]
    # the reference values equal the closed form (an independent method) to the digits written
    ex = exact_gradient(m, 25)
    with mpmath.workdps(60):
        pairs = [(ref["loss"], ex.loss), (ref["grad_t0"], ex.grad_t0), (ref["grad_t1"], ex.grad_t1)]
        pairs += [(ref["grad"][k], v) for k, v in ex.grad.items()] + list(zip(ref["grad_z0"], ex.grad_z0))
        for text, v in pairs:
            assert abs(mpmath.mpf(text) - v) <= TOL_VS_EXACT(25) * max(abs(v), VALUE_FLOOR), (text, v)


def test_reference_validates_against_schema(exported):
    jsonschema = pytest.importorskip("jsonschema")
    from importlib import resources
    schema = json.loads(resources.files("symode").joinpath("schemas/grad.schema.json").read_text())
    out, _ = exported
    for name in ("logistic", "linear"):
        jsonschema.validate(json.loads((out / f"{name}.json").read_text())["reference"], schema)


@pytest.mark.slow
def test_one_bad_model_writes_nothing(tmp_path):
    out = tmp_path / "cases"
    p = _cli("oracle", "export", "linear", "no-such-model", "--out", str(out))
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1
    assert not out.exists()
    out.mkdir()
    p = _cli("oracle", "export", "linear", "no-such-model", "--out", str(out))
    assert p.returncode == 2 and os.listdir(out) == []


@pytest.mark.slow
def test_failed_solve_writes_nothing(tmp_path):
    bad = tmp_path / "blowup.toml"
    bad.write_text('name = "blowup"\nstates = ["z"]\nrhs = ["z**2"]\nz0 = ["1"]\nt0 = "0"\nt1 = "2"\n'
                   '[loss]\nterminal = "z"\n')
    out = tmp_path / "cases"
    out.mkdir()
    p = _cli("oracle", "export", "linear", str(bad), "--out", str(out))
    assert p.returncode == 2 and "blowup" in p.stderr
    assert os.listdir(out) == []


def test_unwritable_destination_writes_nothing(tmp_path):
    # a regular file where the directory should be: cannot be created (works even when running as root)
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(SymodeError, match="cannot write golden files"):
        export_golden([get_model("linear")], blocker / "cases", digits=20, quiet=True)
    assert blocker.read_text() == "not a directory"


def test_target_that_is_a_directory_writes_nothing(tmp_path):
    out = tmp_path / "cases"
    (out / "linear.json").mkdir(parents=True)  # the second target cannot be replaced
    with pytest.raises(SymodeError, match="linear.json"):
        export_golden([get_model("logistic"), get_model("linear")], out, digits=20, quiet=True)
    assert sorted(os.listdir(out)) == ["linear.json"]  # logistic.json not written, no temporaries left


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_directory_writes_nothing(tmp_path):
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o555)
    try:
        with pytest.raises(SymodeError, match="cannot write golden files"):
            export_golden([get_model("linear")], out, digits=20, quiet=True)
        assert os.listdir(out) == []
    finally:
        out.chmod(0o755)


def test_duplicate_model_refused(tmp_path):
    with pytest.raises(SymodeError, match="more than once"):
        export_golden([get_model("linear"), get_model("linear")], tmp_path, digits=20, quiet=True)
