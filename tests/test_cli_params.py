"""The same parameter overrides on every command (issue 12, item 1): --param NAME=DECIMAL (an array element by
its element name) and --params-json FILE (arrays as nested lists) on grad, check, codegen and oracle export.

Expected values: a spec file with the overridden values written inline (two ways in, one model).
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

NET = '''
name = "net"
states = [{name = "z", size = 2}]
z0 = [["0.5", "-0.5"]]
t0 = "0"
t1 = "1"
[network]
hidden = [2]
[params]
W1 = [["0.1", "-0.2"], ["0.3", "0.4"]]
b1 = ["0.01", "0.02"]
W2 = [["0.5", "-0.3"], ["-0.4", "0.1"]]
b2 = ["0", "0.1"]
[loss]
terminal = "sum(z**2)"
'''


def run(*args, cwd=None):
    p = subprocess.run([sys.executable, "-m", "symode.cli", *args], capture_output=True, text=True, cwd=cwd,
                       timeout=600)
    return p.returncode, p.stdout, p.stderr


@pytest.fixture()
def files(tmp_path):
    (tmp_path / "net.toml").write_text(NET)
    (tmp_path / "edited.toml").write_text(NET.replace('W1 = [["0.1", "-0.2"], ["0.3", "0.4"]]',
                                                      'W1 = [["0.7", "-0.2"], ["0.3", "0.25"]]')
                                          .replace('b2 = ["0", "0.1"]', 'b2 = ["0", "-0.3"]'))
    (tmp_path / "p.json").write_text(json.dumps({"W1": [["0.7", "-0.2"], [0.3, "0.25"]]}))
    return tmp_path


def test_grad_takes_arrays_and_elements(files):
    rc, a, err = run("grad", str(files / "net.toml"), "--method", "discrete", "--steps", "20", "--json",
                     "--params-json", str(files / "p.json"), "--param", "b2_1=-0.3")
    assert rc == 0, err
    rc, b, err = run("grad", str(files / "edited.toml"), "--method", "discrete", "--steps", "20", "--json")
    assert rc == 0, err
    a, b = json.loads(a), json.loads(b)
    assert a["loss"] == b["loss"] and a["grad"] == b["grad"]


@pytest.mark.parametrize("bad,fragment", [
    ('{"W1": [["1", "2"]]}', "expected shape 2x2"),
    ('{"W1": 1, "W1": 2}', "given twice"),
    ('{"W9": 1}', "no parameter named W9"),
    ('{"W1": [[NaN, 1], [1, 1]]}', "NaN is not a number"),
])
def test_bad_overrides_are_one_line_errors(files, bad, fragment):
    (files / "bad.json").write_text(bad)
    rc, out, err = run("grad", str(files / "net.toml"), "--method", "discrete", "--params-json", str(files / "bad.json"))
    assert rc == 2 and out == "" and fragment in err and len(err.strip().splitlines()) == 1, err


def test_codegen_check_and_export_take_the_same_overrides(files):
    rc, out, err = run("codegen", str(files / "net.toml"), "--out", str(files / "a"), "--steps", "20",
                       "--params-json", str(files / "p.json"), "--param", "b2_1=-0.3")
    assert rc == 0, err
    rc, out, err = run("codegen", str(files / "edited.toml"), "--out", str(files / "b"), "--steps", "20")
    assert rc == 0, err
    for f in ("symode_model.c", "symode_model.h"):
        assert (files / "a" / f).read_text().replace("net.toml", "") == (files / "b" / f).read_text()
    rc, out, err = run("oracle", "export", str(files / "net.toml"), "--out", str(files / "g"), "--digits", "10",
                       "--params-json", str(files / "p.json"), "--param", "b2_1=-0.3", "--quiet")
    assert rc == 0, err
    golden = json.loads((files / "g" / "net.json").read_text())
    assert golden["params"]["W1_1_1"] == "0.25" and golden["params"]["b2_1"] == "-0.3"
    rc, out, err = run("check", str(files / "net.toml"), "--methods", "discrete", "--steps", "40", "--digits", "10",
                       "--params-json", str(files / "p.json"))
    assert rc == 0, err + out
