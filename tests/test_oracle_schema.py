"""The `symode grad --json` contract: real outputs (library and CLI) validate against grad.schema.json.

Independent references: the JSON Schema itself (draft 2020-12, checked with the jsonschema package's own
metaschema), and hand-written invalid objects that must be rejected (so the schema is not vacuous).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import lru_cache
from importlib import resources

import pytest

jsonschema = pytest.importorskip("jsonschema")

from symode.library import get_model  # noqa: E402
from symode.methods import compute  # noqa: E402


@lru_cache(maxsize=None)
def schema():
    text = resources.files("symode").joinpath("schemas/grad.schema.json").read_text(encoding="utf-8")
    s = json.loads(text)
    jsonschema.Draft202012Validator.check_schema(s)
    return s


def validate(obj):
    jsonschema.Draft202012Validator(schema()).validate(obj)


def test_schema_is_valid_draft_2020_12():
    assert schema()["$schema"] == "https://json-schema.org/draft/2020-12/schema"


@pytest.mark.slow
@pytest.mark.parametrize("name,method", [("logistic", "oracle"), ("logistic", "exact"), ("oscillator", "oracle"),
                                         ("seed-encoder", "oracle"), ("seed-encoder", "exact"), ("mlp", "oracle")])
def test_library_outputs_validate(name, method):
    d = compute(get_model(name), method, digits=30).to_dict()
    validate(json.loads(json.dumps(d)))
    assert d["method"] == method and d["digits"] == 30


@pytest.mark.slow
@pytest.mark.parametrize("method", ["oracle", "exact"])
def test_cli_json_is_one_object_and_validates(method):
    env = {**os.environ}
    env.pop("SYMODE_QUIET", None)  # progress (if any) must go to stderr, never into the JSON on stdout
    p = subprocess.run([sys.executable, "-m", "symode.cli", "grad", "logistic", "--method", method, "--json"],
                       capture_output=True, text=True, timeout=120, env=env)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert len(lines) == 1
    obj = json.loads(lines[0])
    validate(obj)
    assert obj["model"] == "logistic" and obj["method"] == method


_GOOD = {"model": "m", "method": "oracle", "digits": 30, "loss": "0.5", "grad": {"a": "-1.5e-3"},
         "grad_z0": ["2"], "grad_t0": "0.0", "error_bound": "1e-29"}


def test_minimal_good_object_validates():
    validate(_GOOD)
    validate({"model": "m", "method": "discrete", "loss": "0.1", "grad": {}, "grad_z0": ["1e-05"],
              "grad_t0": "-3.0", "scheme": "rk4", "steps": 100})


@pytest.mark.parametrize("bad", [
    {k: v for k, v in _GOOD.items() if k != "grad_z0"},            # a required key missing (grad_t0 may be absent: an observation at t0)
    {**_GOOD, "loss": 0.5},                                          # a JSON number instead of a decimal string
    {**_GOOD, "loss": "nan"},                                        # not a finite decimal
    {**_GOOD, "grad": {"a": "1,5"}},                                 # not a decimal
    {**_GOOD, "extra": 1},                                           # unknown key
    {k: v for k, v in _GOOD.items() if k != "error_bound"},         # oracle without error bound
    {**_GOOD, "digits": "30"},                                       # digits not an integer
    {**_GOOD, "error_bound": "-1e-29"},                              # negative bound
    {"model": "m", "method": "discrete", "loss": "0.1", "grad": {}, "grad_z0": ["1"], "grad_t0": "1"},  # no scheme
])
def test_bad_objects_rejected(bad):
    with pytest.raises(jsonschema.ValidationError):
        validate(bad)
