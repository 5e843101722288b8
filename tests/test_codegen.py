"""Tests of C text generation (symode.codegen.ctext), atomic writing (symode.codegen.write), the committed
``generated/`` tree (symode.codegen.regenerate) and ``symode codegen``.  No compiler here: compiled code is
tested in test_codegen_compile.py.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import casadi
import numpy as np
import pytest
import sympy

import symode
from symode.cli import main as cli_main
from symode.codegen import regenerate
from symode.codegen.ctext import FILE_STEM, WORDS, display_name, generate
from symode.codegen.write import MARKER, TEMP_PREFIX, write_directory
from symode.errors import BuildError, SpecError, TranslationError
from symode.library import get_model
from symode.model import T, Model

TOL = {
    # The codegen graph vs symode.casadi.routes' discrete adjoint: two independent constructions of the same
    # discrete solve (same tableau, same segment step counts) whose grid times are rounded differently
    # (t0 + span*(a + k*w) here, a + (b - a)*(j/n) there): a few ulps per time, amplified by at most the
    # condition of 100 steps -- measured ~1e-16 relative; 1e-12 leaves room and still catches any
    # difference in the loss, the grid or the derivative assembly (those are >= 1e-8 at 100 steps).
    "codegen_vs_routes_rel": 1e-12,
    # Reverse mode (grad) vs forward mode (fsens) of the same graph: the same derivative summed in a
    # different order; measured <= 1e-13 absolute on the built-in models (lotka-volterra, L ~ 20, the
    # largest); 1e-11 relative to (1 + |value|) allows for the summation order and nothing more.
    "reverse_vs_forward_rel": 1e-11,
}

HOSTILE = {
    # state and parameter names no spec would accept (set directly on sympy.Symbol)
    "z_comment": '*/ system("rm -rf /"); /*',
    "z_keyword": "int",
    "p_include": '#include "evil.h"',
    "p_quote_newline": 'a"b\nc = 1; //',
    "p_keyword": "while",
    "p_close": "*/",
    "model": "evil */ name\n#define X 1",
}


def hostile_model() -> Model:
    z1 = sympy.Symbol(HOSTILE["z_comment"], real=True)
    z2 = sympy.Symbol(HOSTILE["z_keyword"], real=True)
    k = sympy.Symbol(HOSTILE["p_include"], real=True)
    c = sympy.Symbol(HOSTILE["p_quote_newline"], real=True)
    w = sympy.Symbol(HOSTILE["p_keyword"], real=True)
    e = sympy.Symbol(HOSTILE["p_close"], real=True)
    return Model(name=HOSTILE["model"], states=[z1, z2], params=[k, c, w, e],
                 rhs=[-k * z1 + c * z2, -w * z2 + sympy.sin(z1) * e], z0=[1, c], t0=0, t1=1,
                 param_values={k: sympy.Rational(1, 2), c: sympy.Rational(3, 10), w: 1, e: sympy.Rational(1, 4)},
                 terminal=(z1 - sympy.Rational(1, 5)) ** 2 + z2 ** 2,
                 observations=[(sympy.Rational(1, 2), z1 ** 2)], running=e * z2 ** 2, t=T)


# -- text ------------------------------------------------------------------------------------------------------

def test_generation_is_byte_deterministic_within_a_process():
    from symode.methods import compute
    first = generate(get_model("seed-encoder"))
    # other graphs built in between (other models, other options, the in-process routes, which share the
    # memoised model graphs and their cached derivatives) must not shift any name or counter
    generate(get_model("mlp-2-3"))
    generate(get_model("seed-encoder"), "euler", 10)
    compute(get_model("seed-encoder"), "discrete")
    compute(get_model("seed-encoder"), "forward")
    again = generate(get_model("seed-encoder"))
    assert first.files == again.files


def test_committed_generated_tree_is_current(tmp_path):
    # the committed generated/ must be exactly what `python -m symode.codegen.regenerate` writes
    out = tmp_path / "generated"
    assert regenerate.main(["--out", str(out)]) == 0
    committed = regenerate.DEFAULT_OUT

    def tree(root: Path) -> dict:
        return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    new, old = tree(out), tree(committed)
    assert sorted(new) == sorted(old), "file lists differ: run python -m symode.codegen.regenerate"
    changed = [name for name in new if new[name] != old[name]]
    assert not changed, f"generated/ is stale in {changed}: run python -m symode.codegen.regenerate"
    models = {name.split("/")[0] for name in new if "/" in name}
    assert models == set(regenerate.MODELS) and "linreg" not in models
    total = sum(len(v) for v in new.values())
    assert total < 4_000_000, f"generated/ holds {total} bytes; keep it to a few MB"


def test_header_documents_versions_hash_and_parameter_order():
    model = get_model("logistic")
    code = generate(model)
    h = code.files[f"{FILE_STEM}.h"].decode("ascii")
    assert f"symode {symode.__version__}" in h
    assert f"CasADi {casadi.__version__}" in h
    assert model.fingerprint() in h
    # parameters in the model's order (r then K), states by index
    assert re.search(r"theta\[0\]\s+r\n.*theta\[1\]\s+K\n", h, re.S)
    assert re.search(r"z\[0\]\s+z\n", h)
    assert "dL/dt0 = -lambda(t0)^T f(z0, t0) - r(z0, t0)" in h
    for word in WORDS:
        assert code.names[word] in h
    # the header's record of the .c file's hash is right
    c_sha = hashlib.sha256(code.files[f"{FILE_STEM}.c"]).hexdigest()
    assert c_sha in h
    meta = json.loads(code.files[f"{FILE_STEM}.json"])
    assert meta["model"]["params"] == ["r", "K"]
    assert meta["model"]["fingerprint"] == model.fingerprint()
    assert meta["files"][f"{FILE_STEM}.h"]["sha256"] == hashlib.sha256(code.files[f"{FILE_STEM}.h"]).hexdigest()


def test_casadi_names_are_generated():
    code = generate(get_model("lotka-volterra"))
    for word, fn in code.functions.items():
        assert re.fullmatch(r"symode_[0-9a-f]{12}_cas_" + word, fn.name())
        assert fn.name_in() == [f"i{k}" for k in range(fn.n_in())]
        assert fn.name_out() == [f"o{k}" for k in range(fn.n_out())]
    # every string literal in the C text is one of the generated input/output names
    c = code.files[f"{FILE_STEM}.c"].decode("ascii")
    literals = set(re.findall(r'"([^"\n]*)"', c))
    # (the internal kernels have up to six inputs: the step's VJP takes y, t, h, p, residuals, ybar)
    assert literals <= {"C", "default"} | {f"i{k}" for k in range(6)} | {f"o{k}" for k in range(6)}, literals


def test_hostile_names_never_reach_the_c_text():
    model = hostile_model()
    code = generate(model)
    c = code.files[f"{FILE_STEM}.c"].decode("ascii")
    h = code.files[f"{FILE_STEM}.h"].decode("ascii")
    for key, text in HOSTILE.items():
        if key in ("z_keyword", "p_keyword", "p_close"):
            # 'int', 'while' and '*/' occur in any C file; that they are not taken as names is shown by the
            # header listing them by index only, and by compiling with -Wall -Werror (test_codegen_compile)
            continue
        assert text not in c and text not in h, key
    for fragment in ("evil", "system(", "rm -rf", 'a"b', "#define X"):
        assert fragment not in c and fragment not in h, fragment
    # names outside [A-Za-z0-9_.-] are listed by index only; C keywords are harmless comment text
    assert re.search(r"z\[0\]  \(name not shown", h) and re.search(r"z\[1\]  int\n", h)
    for i in (0, 1, 3):
        assert re.search(rf"theta\[{i}\]  \(name not shown", h)
    assert re.search(r"theta\[2\]  while\n", h)
    # the full names are kept, escaped, in the JSON file
    meta = json.loads(code.files[f"{FILE_STEM}.json"])
    assert meta["model"]["states"] == model.state_names
    assert meta["model"]["params"] == model.param_names
    assert meta["model"]["name"] == HOSTILE["model"]
    assert code.files[f"{FILE_STEM}.json"].isascii()


@pytest.mark.parametrize("name,shown", [("W1_0_1", True), ("lotka-volterra", True), ("a*/b", False),
                                        ("x y", False), ("", False), ("a\nb", False), ("é", False),
                                        ("/", False), ("a??/", False)])
def test_display_name(name, shown):
    assert (display_name(name) == name) is shown


def test_unsupported_operation_and_options_are_refused():
    z, k = sympy.Symbol("z", real=True), sympy.Symbol("k", real=True)
    model = Model(name="gamma", states=[z], params=[k], rhs=[sympy.gamma(z) * k], z0=[1], t0=0, t1=1,
                  param_values={k: 1}, terminal=z ** 2)
    with pytest.raises(TranslationError, match="gamma"):
        generate(model)
    with pytest.raises(SpecError, match="scheme"):
        generate(get_model("logistic"), "rk5")
    with pytest.raises(SpecError, match="steps"):
        generate(get_model("logistic"), "rk4", 0)


# -- the generated graphs, in memory ---------------------------------------------------------------------------

def _nominal_args(model, code):
    theta = [float(v) for v in model.theta]
    z0 = code.functions["z0"](theta)
    return theta, z0, float(model.t0), float(model.t1)


@pytest.mark.parametrize("name", ["logistic", "seed-encoder", "lotka-volterra"])
def test_gradient_graph_matches_the_routes_discrete_adjoint(name):
    # an independent construction of the same discrete gradient: symode.casadi.routes' in-memory reverse mode
    # (compute(..., "discrete") runs the generated code itself; GradResult.grad is the total derivative, o5)
    from symode.casadi.methods import DISCRETE
    from symode.casadi.routes.fixed_step import fixed_step_gradient
    model = get_model(name)
    code = generate(model)
    L, _, gz0, gt0, gt1, g = (np.array(v).ravel() for v in code.functions["grad"](*_nominal_args(model, code)))
    ref = fixed_step_gradient(DISCRETE, model, "rk4", 100)
    tol = TOL["codegen_vs_routes_rel"]
    assert abs(L[0] - ref.loss) <= tol * abs(ref.loss)
    np.testing.assert_allclose(g, list(ref.grad.values()), rtol=tol, atol=tol * abs(ref.loss))
    np.testing.assert_allclose(gz0, ref.grad_z0, rtol=tol, atol=tol * abs(ref.loss))
    assert abs(gt0[0] - ref.grad_t0) <= tol * (abs(ref.grad_t0) + abs(ref.loss))
    if ref.grad_t1 is not None:  # undefined where an observation lies at t1 (documented in the header)
        assert abs(gt1[0] - ref.grad_t1) <= tol * (abs(ref.grad_t1) + abs(ref.loss))


def test_observation_at_t1_header_says_the_t1_input_is_unused():
    """seed-encoder's last observation is at t1 = 2: the solve ends at that fixed time, so the graph cannot
    depend on t1 (its output o4 is 0) and dL/dt1 is undefined; the header must say so, not promise a value."""
    model = get_model("seed-encoder")
    code = generate(model)
    header = code.files[FILE_STEM + ".h"].decode()
    assert "t1 input is" in header and "not used" in header and "Do not use it." in header
    args = list(_nominal_args(model, code))
    base = [np.array(v).ravel() for v in code.functions["grad"](*args)]
    args[3] = float(args[3]) + 0.25  # another t1: same results (what the header says)
    moved = [np.array(v).ravel() for v in code.functions["grad"](*args)]
    assert all(np.array_equal(a, b) for a, b in zip(base, moved)) and base[4][0] == 0.0
    # a model without an observation at t1 carries no such warning
    assert "Do not use it." not in generate(get_model("logistic")).files[FILE_STEM + ".h"].decode()


@pytest.mark.parametrize("name", ["seed-encoder", "lotka-volterra", "mlp"])
def test_forward_sensitivity_matches_the_discrete_adjoint(name):
    model = get_model(name)
    code = generate(model, with_fsens=True)
    args = _nominal_args(model, code)
    rev = code.functions["grad"](*args)
    fwd = code.functions["fsens"](*args)
    for a, b in zip(rev, fwd):
        a, b = np.array(a).ravel(), np.array(b).ravel()
        assert np.all(np.abs(a - b) <= TOL["reverse_vs_forward_rel"] * (1 + np.abs(a)))


def test_forward_function_returns_the_loss_states():
    # L = sum of observation terms + terminal + running for seed-encoder: observations at 0.5 and 2 = t1 with
    # data 1.2 and 1.4 (library spec), running cost 0.1*z**2 (integrated as Q).  Rebuild L from the forward
    # function's outputs and compare with the loss function.
    model = get_model("seed-encoder")
    code = generate(model)
    theta, z0, t0, t1 = _nominal_args(model, code)
    z1, Z, Q = (np.array(v) for v in code.functions["forward"](z0, theta, t0, t1))
    assert Z.shape == (1, 2)
    assert Z[0, 1] == z1[0, 0]  # the last observation is at t1
    L = float(code.functions["loss"](theta, z0, t0, t1))
    rebuilt = (Z[0, 0] - 1.2) ** 2 + (Z[0, 1] - 1.4) ** 2 + Q.item()
    assert abs(L - rebuilt) <= 4 * np.finfo(float).eps * abs(L)


# -- writing ---------------------------------------------------------------------------------------------------

def _leftovers(parent: Path) -> list[str]:
    return [p.name for p in parent.iterdir() if p.name.startswith(TEMP_PREFIX)]


def test_write_creates_directory_with_marker(tmp_path):
    out = write_directory({"a.c": b"x", "sub/b.h": b"y"}, tmp_path / "out")
    assert (out / "a.c").read_bytes() == b"x" and (out / "sub" / "b.h").read_bytes() == b"y"
    assert (out / MARKER).is_file()
    # a second write replaces the whole previous output (stale files disappear)
    write_directory({"c.c": b"z"}, out)
    assert sorted(p.name for p in out.iterdir()) == sorted([MARKER, "c.c"])
    assert _leftovers(tmp_path) == []


def test_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "out"
    # a failure after some files were written (the third value is not bytes)
    with pytest.raises(BuildError, match="bytes"):
        write_directory({"a.c": b"1", "b.c": b"2", "c.c": "text, not bytes", "d.c": b"4"}, target)
    assert not os.path.lexists(target)
    assert _leftovers(tmp_path) == []
    # an unwritable location: the parent is a regular file
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    with pytest.raises(BuildError):
        write_directory({"a.c": b"1"}, blocker / "out")
    assert not os.path.lexists(blocker / "out")
    # a bad file name is refused before anything is written
    with pytest.raises(BuildError, match="not allowed"):
        write_directory({"../escape.c": b"1"}, target)
    assert not os.path.lexists(target) and not (tmp_path / "escape.c").exists()


def test_failed_rewrite_keeps_the_previous_output(tmp_path):
    target = write_directory({"a.c": b"old"}, tmp_path / "out")
    with pytest.raises(BuildError):
        write_directory({"a.c": b"new", "b.c": None}, target)
    assert (target / "a.c").read_bytes() == b"old"
    assert sorted(p.name for p in target.iterdir()) == sorted([MARKER, "a.c"])
    assert _leftovers(tmp_path) == []


def test_write_refuses_to_replace_a_foreign_directory(tmp_path):
    foreign = tmp_path / "home"
    foreign.mkdir()
    (foreign / "notes.txt").write_bytes(b"keep me")
    with pytest.raises(BuildError, match="not a directory written by symode"):
        write_directory({"a.c": b"1"}, foreign)
    assert (foreign / "notes.txt").read_bytes() == b"keep me" and not (foreign / "a.c").exists()
    afile = tmp_path / "afile"
    afile.write_bytes(b"keep")
    with pytest.raises(BuildError):
        write_directory({"a.c": b"1"}, afile)
    assert afile.read_bytes() == b"keep"


# -- command line ----------------------------------------------------------------------------------------------

def test_cli_codegen_writes_the_committed_files(tmp_path, capsys):
    out = tmp_path / "logistic"
    assert cli_main(["codegen", "logistic", "--out", str(out)]) == 0
    committed = regenerate.DEFAULT_OUT / "logistic"
    for name in (f"{FILE_STEM}.c", f"{FILE_STEM}.h", f"{FILE_STEM}.json"):
        assert (out / name).read_bytes() == (committed / name).read_bytes()
    assert "_grad" in capsys.readouterr().out


def test_cli_codegen_failures_are_one_line_and_write_nothing(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    cases = [
        ["codegen", "logistic", "--out", str(blocker / "out")],        # unwritable location
        ["codegen", "logistic", "--out", str(tmp_path / "a"), "--steps", "0"],
        ["codegen", "no-such-model", "--out", str(tmp_path / "b")],
    ]
    for argv in cases:
        assert cli_main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("symode: error: ") and err.count("\n") == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]
    spec = tmp_path / "bad.toml"
    spec.write_text('name = "bad"\nstates = ["z"]\nrhs = ["k*z"]\nz0 = ["1"]\nt0 = "0"\nt1 = "1"\n'
                    '[params]\nk = "1"\n')  # no loss: refused before anything is generated
    assert cli_main(["codegen", str(spec), "--out", str(tmp_path / "c")]) == 2
    assert not (tmp_path / "c").exists()


def test_cli_codegen_of_a_spec_file(tmp_path):
    spec = tmp_path / "decay.toml"
    spec.write_text('name = "decay"\nstates = ["u"]\nrhs = ["-k*u"]\nz0 = ["2"]\nt0 = "0"\nt1 = "1"\n'
                    '[params]\nk = "0.5"\n[loss]\nterminal = "u**2"\n')
    out = tmp_path / "out"
    assert cli_main(["codegen", str(spec), "--out", str(out), "--scheme", "rk38", "--steps", "20"]) == 0
    h = (out / f"{FILE_STEM}.h").read_text(encoding="ascii")
    assert re.search(r"theta\[0\]  k\n", h) and re.search(r"z\[0\]  u\n", h)
    assert "rk38 (4 stages, order 4), 20 fixed steps" in h
    meta = json.loads((out / f"{FILE_STEM}.json").read_text(encoding="ascii"))
    assert meta["scheme"] == "rk38" and meta["steps"] == 20 and meta["model"]["theta_exact"] == ["1/2"]
