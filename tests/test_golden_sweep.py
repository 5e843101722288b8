"""Golden files with several parameter points and fixed-step references, `symode compare`, and sweeps on a
process pool and a Dask cluster.

Independent references: the JSON Schema (symode/schemas/golden.schema.json, written by hand from the format's
description), symode's CasADi ``discrete`` route for the fixed-step references (float64 reverse mode through a
CasADi graph, vs the exact dual-number evaluation of symode.interop.discrete), and the serial run for the
parallel ones (byte equality).

Tolerance table (this module):

| comparison | rtol | why |
|---|---|---|
| discrete-mp (exact) vs CasADi discrete (float64), same scheme and steps | 1e-12 | the float64 route's own rounding
  over a few hundred steps (measured <= 4e-14 on the built-in models); a wrong grid, tableau or loss term is
  off by >= 1e-6 |
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from importlib import resources

import pytest

import symode
from symode.check.compare import compare
from symode.library import get_model
from symode.interop.discrete import discrete_gradient
from symode.oracle.export import export_golden, golden_case, load_golden, point_values

DISCRETE_RTOL = 1e-12


def _cli(*args, cwd=None):
    env = {**os.environ, "SYMODE_QUIET": "1"}
    return subprocess.run([sys.executable, "-m", "symode.cli", *args], capture_output=True, text=True,
                          timeout=600, env=env, cwd=cwd)


@pytest.fixture(scope="module")
def multi(tmp_path_factory):
    out = tmp_path_factory.mktemp("golden")
    (path,) = export_golden([get_model("seed-encoder")], out, digits=20, points=3, seed=11,
                            fixed_steps=["rk4:40"], workers=1)
    return path


@pytest.mark.slow
def test_schema_validates_files(multi, tmp_path):
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(resources.files("symode").joinpath("schemas/golden.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    data = json.loads(multi.read_text())
    jsonschema.validate(data, schema)
    (single,) = export_golden([get_model("lotka-volterra")], tmp_path, digits=15)
    jsonschema.validate(json.loads(single.read_text()), schema)
    for broken in ({**data, "extra": 1}, {**data, "points": []},
                   {**data, "z0": [0.79]},  # a JSON number, not a decimal string
                   {**data, "points": [{**data["points"][0], "fixed_step": [{"scheme": "rk4", "steps": 0}]}]}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, schema)


@pytest.mark.slow
def test_points_and_fields(multi):
    data = load_golden(multi)
    m = get_model("seed-encoder")
    pts = data["points"]
    assert len(pts) == 3 and data["seed"] == 11
    # point 0 is the model's own values and repeats the first-version top-level fields
    assert pts[0]["params"] == data["params"] == {"a": "-0.6", "b": "0.9", "w": "1.1", "c": "-0.2"}
    assert data["z0"] == pts[0]["z0"] == ["0.79"]  # 0.9 w + c = 0.99 - 0.2 by hand
    assert pts[0]["reference"] == data["reference"]
    for pt in pts[1:]:
        w, c = Decimal(pt["params"]["w"]), Decimal(pt["params"]["c"])
        assert pt["z0"] == [str(Decimal("0.9") * w + c)]  # exact decimal z0 at that point
        ref = symode.compute(m.with_values({k: Decimal(v) for k, v in pt["params"].items()}), "oracle",
                             digits=20).to_dict()
        assert pt["reference"]["loss"] == ref["loss"] and pt["reference"]["grad"] == ref["grad"]
    assert pts[1]["params"] != pts[2]["params"]


def test_point_values_are_seeded_exact_decimals():
    m = get_model("lotka-volterra")
    a, b, c = point_values(m, 4, 3), point_values(m, 4, 3), point_values(m, 4, 4)
    assert a == b and a != c and a[0] == c[0]
    for pt in a[1:]:
        for name, text in pt.items():
            v, nominal = Decimal(text), Decimal(a[0][name])
            assert abs(v / nominal - 1) <= Decimal("0.2501") and len(v.as_tuple().digits) <= 4
    with pytest.raises(symode.SpecError, match="--points"):
        point_values(m, 0, 1)


@pytest.mark.parametrize("name, scheme", [("seed-encoder", "rk4"), ("lotka-volterra", "rk38"),
                                          ("pendulum", "dopri5"), ("spiral", "midpoint")])
@pytest.mark.slow
def test_fixed_step_reference_equals_casadi_discrete(name, scheme):
    m = get_model(name)
    exact = discrete_gradient(m, scheme, 60, digits=25)
    f64 = symode.compute(m, "discrete", scheme=scheme, steps=60)
    scale = max(abs(float(v)) for _, v in exact.named_values())
    c = compare(f64, exact, rtol=DISCRETE_RTOL, atol=DISCRETE_RTOL * scale)
    assert c.ok, c.to_markdown()
    # and it is the discrete gradient, not the ODE's: the oracle differs by far more than the tolerance
    assert not compare(symode.compute(m, "oracle", digits=20), exact, rtol=DISCRETE_RTOL,
                       atol=DISCRETE_RTOL * scale).ok


@pytest.mark.slow
def test_fixed_step_in_golden_is_discrete_mp(multi):
    data = load_golden(multi)
    fs = data["points"][1]["fixed_step"][0]
    assert (fs["scheme"], fs["steps"], fs["reference"]["method"]) == ("rk4", 40, "discrete-mp")
    m = get_model("seed-encoder").with_values({k: Decimal(v) for k, v in data["points"][1]["params"].items()})
    assert fs["reference"]["grad"] == discrete_gradient(m, "rk4", 40, 20).to_dict()["grad"]
    with pytest.raises(symode.SpecError, match="implicit"):
        discrete_gradient(m, "gauss2", 10)


@pytest.mark.slow
def test_compare_cli_exit_codes(multi, tmp_path):
    ok = tmp_path / "ok.json"
    ok.write_text(json.dumps(json.loads(multi.read_text())["reference"]))
    p = _cli("compare", str(ok), "--against", str(multi), "--point", "0")
    assert p.returncode == 0 and p.stdout.startswith("match:"), p.stderr
    # one result per point, as a JSON array: the point-0 result is wrong at points 1 and 2
    arr = tmp_path / "arr.json"
    arr.write_text(json.dumps([json.loads(ok.read_text())] * 3))
    p = _cli("compare", str(arr), "--against", str(multi))
    assert p.returncode == 1 and "point 1" in p.stdout and "worst:" in p.stdout
    # a model reference, float64 values as JSON numbers
    r = symode.compute(get_model("logistic"), "discrete", scheme="rk4", steps=10).to_dict()
    res = tmp_path / "r.json"
    res.write_text(json.dumps(r))
    p = _cli("compare", str(res), "--against", "logistic", "--rtol", "1e-2")
    assert p.returncode == 0, p.stdout + p.stderr
    p = _cli("compare", str(res), "--against", "logistic")
    assert p.returncode == 1 and "MISMATCH" in p.stdout
    for args, msg in (((str(res), "--against", "nosuchmodel"), "unknown model"),
                      ((str(arr), "--against", "logistic"), "needs a golden file"),
                      ((str(res), "--against", str(multi)), "--point"),
                      ((str(tmp_path / "missing.json"), "--against", "logistic"), "cannot read")):
        p = _cli("compare", *args)
        assert p.returncode == 2 and p.stderr.startswith("symode: error:") and msg in p.stderr, p.stderr
        assert p.stderr.count("\n") == 1


@pytest.mark.slow
def test_first_version_files_still_compare(multi, tmp_path):
    data = json.loads(multi.read_text())
    old = {k: v for k, v in data.items() if k not in ("points", "z0", "seed")}
    path = tmp_path / "old.json"
    path.write_text(json.dumps(old))
    assert load_golden(path)["params"] == data["params"]
    from symode.testing import assert_gradients_match
    assert_gradients_match(data["reference"], path, rtol=0.0, atol=0.0)


def _files(d):
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())}


@pytest.mark.slow
@pytest.mark.threads
def test_sweep_on_a_process_pool_and_a_dask_cluster_writes_the_same_bytes(tmp_path):
    pytest.importorskip("dask.distributed", reason="the Dask sweep needs the extra symode[dask]")
    from dask.distributed import LocalCluster
    models = [get_model("logistic"), get_model("oscillator")]
    kw = dict(digits=20, points=3, seed=5, fixed_steps=["rk4:20"])
    export_golden(models, tmp_path / "serial", scheduler="serial", **kw)
    export_golden(models, tmp_path / "pool", workers=2, **kw)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        p = _cli("oracle", "export", "logistic", "oscillator", "--out", str(tmp_path / "dask"), "--digits", "20",
                 "--points", "3", "--seed", "5", "--fixed-step", "rk4:20", "--scheduler", cluster.scheduler_address)
        assert p.returncode == 0, p.stderr
    serial = _files(tmp_path / "serial")
    assert sorted(serial) == ["logistic.json", "oscillator.json"]
    assert _files(tmp_path / "pool") == serial
    assert _files(tmp_path / "dask") == serial


@pytest.mark.slow
def test_sweep_errors(tmp_path):
    from symode.sweep import ProgressBar, run_sweep
    with pytest.raises(symode.SpecError, match="tcp://HOST:PORT"):
        run_sweep(abs, [(1,)], scheduler="localhost:8786")
    with pytest.raises(symode.SpecError, match="--workers"):
        run_sweep(abs, [(1,)], workers=0)
    assert run_sweep(abs, [(-1,), (2,), (-3,)], scheduler="serial") == [1, 2, 3]
    import io
    s = io.StringIO()
    bar = ProgressBar(2, "x", stream=s)
    bar.step()
    bar.step()
    assert s.getvalue() == "\rx [" + "#" * 15 + "." * 15 + "] 1/2\rx [" + "#" * 30 + "] 2/2\n"
    # a failing point leaves the output directory untouched
    bad = symode.load_spec('name = "blowup"\nstates = ["z"]\nrhs = ["z**2"]\nz0 = ["1"]\nt0 = "0"\nt1 = "2"\n'
                           '[params]\n[loss]\nterminal = "z"\n')
    with pytest.raises(symode.SymodeError):
        export_golden([bad], tmp_path / "out", digits=15, points=1)
    assert not (tmp_path / "out").exists()
