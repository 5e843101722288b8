"""Acceptance tests of the hardening issue: one class per item (``TestItem01Injection`` ... ``TestItem17FD``).

"Clear error" (the issue's definition) is checked the same way everywhere:

* library: the specific :class:`~symode.errors.SymodeError` subclass, whose message names the field, parameter or
  time involved;
* CLI (``python -m symode.cli ...``): exit status 2, exactly one stderr line starting ``symode: error:``, no
  traceback, nothing on stdout, and nothing written (the working directory and the build cache stay empty).

Many spec-error cases go through :func:`cli_batch`: ONE subprocess that calls ``symode.cli.main(argv)`` (the
function ``python -m symode.cli`` runs) once per case, with Python-level stdout/stderr captured per case.  That
keeps ~40 CLI cases inside the time budget; checks that need a process of their own (C-level stderr of CVODES,
process-group kills, budgets) use :func:`cli` (one real ``python -m symode.cli`` process each).

Expected values come from independent sources stated at each test (closed forms by hand, textbook step
formulas, a second route).  Where an existing test already shows an item completely, it is named in
``docs/failure-modes.md`` and the test here is a focused end-to-end check through the public surface.
"""
from __future__ import annotations

import builtins
import json
import math
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import mpmath
import numpy as np
import pytest
import sympy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from symode.errors import BuildError, CompilerNotFound, IntegrationError, SpecError
from symode.expr import parse_expression
from symode.library import get_model
from symode.methods import METHODS, compute
from symode.registry import get_route
from symode.model import T, Model
from symode.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]

#: Tolerances and limits used below, each with its reason.
TOL = {
    # Blow-up of dz/dt = z², z(0) = 1 is at t = 1 exactly (z = 1/(1 - t)).  Adaptive solvers (oracle, CVODES)
    # stop within ~1e-12 of it; fixed-step routes (rk4, h = 0.02) notice |z| > 1e100 a few steps after it
    # (measured: t = 1.04, two steps).  0.1 = five steps: a route that reports t = 2 (the end) or 0 fails.
    "blowup_time": 0.1,
    # The same margin for leaving the domain of sqrt/log at t = 1 (z = 1 - t crosses 0 there).
    "domain_time": 0.1,
    # Renaming every symbol (SIR names -> neutral names) may reorder SymPy's canonical term order, so float64
    # sums are rounded in another order: a few ulps times the condition of the loss.  1e-12 relative; a name
    # resolved to a constant (E = e, I = i) changes the values at O(1).
    "rename_rel": 1e-12,
    # Closed-form values checked at 30 digits (exact route): its error bound is 1e-29; 1e-25 leaves room.
    "exact_rel": 1e-25,
    # Backward Euler's discrete loss is a rational number (1/101)^20 (textbook: z_{n+1} = z_n / (1 + h k)).
    # The route does not divide: it solves the stage equation K = f(z + h K) and forms z + h K, where
    # h K = -(hk/(1+hk)) z cancels all but 1/101 of z, so each step's rounding (~u = 1.1e-16 relative in K)
    # is amplified ~(1 + hk) = 101 times: ~1e-14 per step, ~1e-13 after 10 steps, ~2e-13 for the square.
    # 1e-12 leaves a factor 5; an unconverged Newton stage (the bug this guards: 8e-33 instead of 8e-41)
    # is off by orders of magnitude.
    "backward_euler_rel": 1e-12,
    # Compiled generated C vs CasADi's in-memory evaluation of the same Functions: identical operations in
    # the same order (-std=c99 turns off FMA contraction), so a few ulps at most.
    "compiled_vs_inmemory_rel": 1e-12,
    # Finite differences of the float64 discrete loss against its reverse-mode derivative: the FD error at
    # the optimal step is ~tol^(2/3) relative (tol = 1e-14 -> 5e-10); 1e-7 leaves room for the loss's noise.
    "fd_vs_ad_rel": 1e-7,
}
LIMIT = {
    # Wall time of one refused resource bomb, parse included (the caps bound it to milliseconds; the rest is
    # Python start-up and imports on a loaded 2-core machine).  Only catches a hang or a blow-up.
    "bomb_s": 10.0,
    # A budgeted derivation (budget 2 s) must end within this: budget + start-up + kill.
    "budget_cli_s": 20.0,
    # How long processes of a finished CLI call may linger (being reaped) before they count as leaked.
    "linger_s": 3.0,
}

CLI_ENV = {"SYMODE_QUIET": "1"}


# ---------------------------------------------------------------------------------------------------------------
# helpers: specs and the command line


def spec_text(*, name: str = "m", states=("z",), rhs=("-a*z",), z0=("1",), t0: str = '"0"', t1: str = '"1"',
              params: dict | None = None, terminal: str | None = "z**2", running: str | None = None,
              obs_times: str | None = None, obs_data: str | None = None, extra: str = "") -> str:
    """A spec in TOML.  Expression strings are JSON-quoted (valid TOML basic strings); ``t0``, ``t1``, the
    parameter values and the observation arrays are given as raw TOML (so bare ``nan``/``inf`` can be written)."""
    q = json.dumps
    params = {"a": '"1"'} if params is None else params
    lines = [f"name = {q(name)}", f"states = [{', '.join(q(s) for s in states)}]",
             f"rhs = [{', '.join(q(e) for e in rhs)}]", f"z0 = [{', '.join(q(e) for e in z0)}]",
             f"t0 = {t0}", f"t1 = {t1}", extra, "[params]"]
    lines += [f"{k} = {v}" for k, v in params.items()]
    lines.append("[loss]")
    if terminal is not None:
        lines.append(f"terminal = {q(terminal)}")
    if running is not None:
        lines.append(f"running = {q(running)}")
    if obs_times is not None:
        lines += ["[loss.observations]", f"times = {obs_times}", f"data = {obs_data}"]
    return "\n".join(lines) + "\n"


def _env(tmp_path: Path, extra: dict | None = None) -> dict:
    return {**os.environ, **CLI_ENV, "SYMODE_CACHE_DIR": str(tmp_path / "cache"), **(extra or {})}


def _workdir(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    return work


def assert_nothing_written(tmp_path: Path) -> None:
    """The CLI's working directory is empty and the build cache holds no partial files: only complete entries
    (``compute(..., "discrete")`` compiles the model's library, a reusable cache entry, before a numerical
    failure is found), each library with its sha256 sidecar matching, and no temporary file of a build."""
    from symode.codegen.cache import TEMP_PREFIX, library_intact
    work = tmp_path / "work"
    assert not work.exists() or list(work.iterdir()) == [], sorted(p.name for p in work.iterdir())
    cache = tmp_path / "cache"
    if cache.exists():
        files = [p for p in cache.rglob("*") if p.is_file()]
        assert not [p for p in files if p.name.startswith(TEMP_PREFIX)], files
        for so in (p for p in files if p.suffix == ".so"):
            assert library_intact(so), so
        assert all(p.suffix == ".so" or p.name.endswith(".so.sha256") or p.name == ".lock" for p in files), files


def cli(tmp_path: Path, *args: str, env_extra: dict | None = None, timeout: float = 300):
    """One real ``python -m symode.cli`` process in ``tmp_path/work``; returns (rc, stdout, stderr)."""
    p = subprocess.run([sys.executable, "-m", "symode.cli", *args], capture_output=True, text=True,
                       cwd=_workdir(tmp_path), env=_env(tmp_path, env_extra), timeout=timeout)
    return p.returncode, p.stdout, p.stderr


_DRIVER = r"""
import contextlib, io, json, os, sys, time, traceback
cases = json.load(open(sys.argv[1]))
from symode.cli import main
results = []
for case in cases:
    # a case is an argv, or [argv, environment additions for this case only]
    argv, env = (case[0], case[1]) if case and isinstance(case[0], list) else (case, {})
    saved = dict(os.environ)
    os.environ.update(env)
    out, err = io.StringIO(), io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(argv)
        except SystemExit as exc:
            rc = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            traceback.print_exc()
            rc = 1
    os.environ.clear()
    os.environ.update(saved)
    results.append({"rc": rc, "out": out.getvalue(), "err": err.getvalue(),
                    "seconds": time.perf_counter() - start})
    with open(sys.argv[2], "w") as fh:  # after every case: a crash still leaves the earlier results
        json.dump(results, fh)
"""


def cli_batch(tmp_path: Path, argvs: list, env_extra: dict | None = None, timeout: float = 300, preexec=None):
    """Run ``symode.cli.main(argv)`` for every argv in one subprocess (cwd ``tmp_path/work``).

    An item of ``argvs`` is an argv, or a pair [argv, environment additions for that case only].  Returns a
    list of dicts rc/out/err/seconds, one per argv (out/err: what the case printed through Python's
    sys.stdout/sys.stderr, as ``main`` does).  Results go through a file, not stdout, so that C-level output of
    a case cannot corrupt them.  ``preexec`` runs in the child before it starts (resource limits)."""
    box = tmp_path / "driver"
    box.mkdir(exist_ok=True)
    (box / "argv.json").write_text(json.dumps(argvs))
    (box / "driver.py").write_text(_DRIVER)
    p = subprocess.run([sys.executable, str(box / "driver.py"), str(box / "argv.json"), str(box / "out.json")],
                       capture_output=True, text=True, cwd=_workdir(tmp_path), env=_env(tmp_path, env_extra),
                       timeout=timeout, preexec_fn=preexec)
    results = json.loads((box / "out.json").read_text()) if (box / "out.json").exists() else []
    assert len(results) == len(argvs), f"driver died after {len(results)} cases: {p.stderr[-3000:]}"
    shutil.rmtree(box)
    return results


def assert_clear_cli_error(rc: int, out: str, err: str, *fragments: str, label: str = "") -> str:
    """Exit status 2, one ``symode: error:`` line on stderr naming every fragment, no traceback, no stdout."""
    where = f"[{label}] " if label else ""
    assert rc == 2, f"{where}exit status {rc}, expected 2; stderr: {err[-2000:]!r}; stdout: {out[:500]!r}"
    assert out == "", f"{where}stdout not empty: {out[:500]!r}"
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("symode: error:"), f"{where}not one error line: {err[-2000:]!r}"
    assert "Traceback" not in err, f"{where}{err}"
    for frag in fragments:
        assert frag in lines[0], f"{where}{frag!r} not in the message: {lines[0]!r}"
    return lines[0]


def first_time(message: str) -> float | None:
    """The first ``t = <number>`` in a message (the time an error names)."""
    m = re.search(r"\bt = ([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)", message)
    return float(m.group(1)) if m else None


def write(tmp_path: Path, name: str, text: str) -> str:
    d = tmp_path / "specs"
    d.mkdir(exist_ok=True)
    p = d / name
    p.write_text(text, encoding="utf-8")
    return str(p)


def _sym(name: str) -> sympy.Symbol:
    return sympy.Symbol(name, real=True)


# ---------------------------------------------------------------------------------------------------------------
# 1. Code-execution payloads are refused by the ast whitelist (fuzzed), in every expression field

#: Payload fragments: escapes that need no builtins, attribute access, indexing, string literals, lambdas,
#: comprehensions, keyword and starred arguments, and the other Python constructs outside the grammar.
PAYLOADS = [
    '"".__class__.__mro__[1].__subclasses__()',
    "().__class__.__base__.__subclasses__()[0]",
    "__import__('os').system('touch PWNED')",
    "z.__class__", "a.real", "sin.__globals__", "a[0]", "z[::-1]", "'abc'", "b'x'", "f'{z}'",
    "lambda: 1", "(lambda x: x)(z)", "[x for x in (1,)]", "{x for x in (1,)}", "(x for x in (1,))",
    "{1: z}", "[z]", "(z, a)", "sin(x=z)", "sin(*[z])", "exp(**{})", "z if a else 1", "(y := 1)",
    "z and a", "not z", "z < a", "z @ a", "z // a", "z % a", "~z", "eval('1')", "exec('1')",
    "open('PWNED', 'w')", "getattr(z, 'real')", "__builtins__", "globals()", "print(1)", "breakpoint()",
]
#: Where a payload sits inside an otherwise valid expression.
CONTEXTS = ["{}", "z + {}", "sin({})", "{}*a", "a - ({})**2", "exp(-{})/a", "(\n{}\n)"]
#: Every expression field of a spec -> the spec_text argument that sets it.
FIELDS = {"rhs[0]": ("rhs",), "z0[0]": ("z0",), "loss.terminal": ("terminal",), "loss.running": ("running",)}


class _Tripwire(Exception):
    pass


class _tripwires:
    """Replace eval/exec/compile/__import__-style entry points and os.system/subprocess with functions that
    raise: if parsing a payload reaches any of them, the test fails with _Tripwire instead of running it."""

    def __enter__(self):
        def trip(*_a, **_k):
            raise _Tripwire("a refused payload reached a code-execution entry point")
        self.saved = [(builtins, "eval", builtins.eval), (builtins, "exec", builtins.exec),
                      (os, "system", os.system), (os, "popen", os.popen),
                      (subprocess, "Popen", subprocess.Popen)]
        for obj, name, _ in self.saved:
            setattr(obj, name, trip)
        return self

    def __exit__(self, *exc):
        for obj, name, orig in self.saved:
            setattr(obj, name, orig)
        return False


class TestItem01Injection:
    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(payload=st.sampled_from(PAYLOADS), context=st.sampled_from(CONTEXTS),
           field=st.sampled_from(sorted(FIELDS)))
    def test_fuzzed_payloads_in_every_field_are_refused_naming_the_field(self, payload, context, field):
        expr = context.format(payload)
        key = FIELDS[field][0]
        kwargs = {"rhs": ("-a*z",), "z0": ("1",), "terminal": "z**2", "running": None}
        kwargs[key] = (expr,) if key in ("rhs", "z0") else expr
        text = spec_text(**kwargs)
        with _tripwires():
            with pytest.raises(SpecError) as info:
                load_spec(text)
        assert str(info.value).startswith(field), (field, str(info.value))

    @settings(max_examples=200, deadline=None)
    @given(payload=st.sampled_from(PAYLOADS), context=st.sampled_from(CONTEXTS))
    def test_fuzzed_payloads_refused_by_the_expression_parser(self, payload, context):
        names = {"z": _sym("z"), "a": _sym("a"), "t": T}
        with _tripwires():
            with pytest.raises(SpecError) as info:
                parse_expression(context.format(payload), names, "model.rhs.z")
        assert str(info.value).startswith("model.rhs.z:")

    @pytest.mark.slow
    def test_cli_refuses_the_no_builtins_escape_in_every_field_and_runs_nothing(self, tmp_path):
        escape = "\"\".__class__.__mro__[1].__subclasses__()[0]('touch PWNED')"
        system = "__import__('os').system('touch PWNED')"
        cases = []
        for payload in (escape, system):
            for key, field in (("rhs", "rhs[0]"), ("z0", "z0[0]"), ("terminal", "loss.terminal"),
                               ("running", "loss.running")):
                kwargs = {key: (payload,) if key in ("rhs", "z0") else payload}
                path = write(tmp_path, f"evil-{len(cases)}.toml", spec_text(**kwargs))
                for cmd in (["derive", path], ["grad", path, "--method", "discrete", "--json"]):
                    cases.append((cmd, field))
        results = cli_batch(tmp_path, [c for c, _ in cases])
        for (cmd, field), r in zip(cases, results):
            assert_clear_cli_error(r["rc"], r["out"], r["err"], field, label=" ".join(cmd[:1]) + " " + field)
        assert_nothing_written(tmp_path)
        assert not list(tmp_path.rglob("PWNED"))


# ---------------------------------------------------------------------------------------------------------------
# 2. Names resolve only through the declared symbol table

SIR_NAMES = ("E", "I", "N", "S", "Q", "O", "beta", "gamma", "lambda", "zeta", "re")


def _sir_spec(rename: dict | None = None) -> str:
    """An SEIR-like model using every name of the issue; ``rename`` maps each name to a neutral one."""
    r = rename or {n: n for n in SIR_NAMES}
    src = {
        "states": ["S", "E", "I"],
        "rhs": ["-beta*S*I/N + Q*O", "beta*S*I/N - lambda*E", "lambda*E - gamma*I - zeta*re*I"],
        "z0": ["9", "0", "1"],
        "params": {"beta": '"0.5"', "gamma": '"0.1"', "N": '"10"', "lambda": '"0.3"', "zeta": '"0.2"',
                   "re": '"0.5"', "Q": '"0.1"', "O": '"0.2"'},
        "terminal": "(I - 1)**2 + E*S/N",
    }

    def sub(text: str) -> str:
        return re.sub(r"[A-Za-z_][A-Za-z0-9_]*", lambda m: r.get(m.group(0), m.group(0)), text)

    return spec_text(states=[r[s] for s in src["states"]], rhs=[sub(e) for e in src["rhs"]],
                     z0=src["z0"], params={r[k]: v for k, v in src["params"].items()},
                     terminal=sub(src["terminal"]), t1='"2"')


class TestItem02Names:
    @pytest.mark.slow
    def test_sir_names_are_the_declared_symbols_end_to_end(self, tmp_path):
        neutral = {n: f"v{i}" for i, n in enumerate(SIR_NAMES)}
        sir = write(tmp_path, "sir.toml", _sir_spec())
        plain = write(tmp_path, "plain.toml", _sir_spec(neutral))
        # dz/dt = -E*I*z, z(0) = 1 with E = 2, I = 1/2, t1 = 1, L = z(1)^2: by hand z(1) = e^{-E I},
        # L = e^{-2 E I} = e^{-2}, dL/dE = -2 I e^{-2 E I} = -e^{-2}, dL/dI = -2 E e^{-2 E I} = -4 e^{-2}.
        # If E were Euler's number or I the imaginary unit, L would differ at O(1) (or be complex).
        ei = write(tmp_path, "ei.toml", spec_text(rhs=("-E*I*z",), params={"E": '"2"', "I": '"0.5"'}))
        res = cli_batch(tmp_path, [["grad", sir, "--method", "discrete", "--steps", "50", "--json"],
                                   ["grad", plain, "--method", "discrete", "--steps", "50", "--json"],
                                   ["grad", ei, "--method", "exact", "--json"]])
        for r in res:
            assert r["rc"] == 0, r["err"]
        a, b, c = (json.loads(r["out"]) for r in res)
        # renaming every symbol changes nothing: each name meant the declared symbol, nothing else
        assert set(a["grad"]) == set(SIR_NAMES) - {"S", "E", "I"}
        pairs = [(a["loss"], b["loss"])] + [(a["grad"][n], b["grad"][neutral[n]]) for n in a["grad"]]
        pairs += list(zip(a["grad_z0"], b["grad_z0"]))
        for x, y in pairs:
            assert math.isclose(float(x), float(y), rel_tol=TOL["rename_rel"], abs_tol=1e-300), (x, y)
        with mpmath.workdps(40):
            e2 = mpmath.exp(-2)
            for got, want in ((c["loss"], e2), (c["grad"]["E"], -e2), (c["grad"]["I"], -4 * e2)):
                assert abs(mpmath.mpf(got) - want) <= TOL["exact_rel"] * abs(want), (got, want)

    @pytest.mark.slow
    def test_name_errors_are_clear(self, tmp_path):
        cases = [
            # (spec, fragments the one-line message must contain)
            (spec_text(rhs=("-b*z",)), ("rhs[0]", "'b'")),                                  # undeclared
            (spec_text(rhs=("-a*z + E",)), ("rhs[0]", "'E'")),                               # E undeclared
            (spec_text(states=("t",), rhs=("-a*t",), terminal="t**2"), ("states[0]", "'t'")),  # state t
            (spec_text(params={"a": '"1"', "z": '"2"'}), ("params.z", "declared twice")),
            (spec_text(states=("z", "z"), rhs=("-a*z", "z"), z0=("1", "1")), ("states[1]", "declared twice")),
            (spec_text(states=("\u0437",), rhs=("-a*z",)), ("states[0]", "U+0437")),         # Cyrillic ze
            (spec_text(rhs=("-\u0430*z",)), ("rhs[0]", "U+0430")),                           # Cyrillic a
            (spec_text(rhs=("-\uff41*z",)), ("rhs[0]", "U+FF41")),                           # fullwidth a
            (spec_text(params={"1a": '"1"'}), ("params.1a", "start with a letter")),
            (spec_text(params={"a" * 65: '"1"'}), ("params.", "65 characters")),
            (spec_text(params={"_a": '"1"'}, rhs=("-z",)), ("params._a",)),
        ]
        paths = [write(tmp_path, f"n{i}.toml", text) for i, (text, _) in enumerate(cases)]
        results = cli_batch(tmp_path, [["derive", p] for p in paths])
        for (text, frags), r in zip(cases, results):
            assert_clear_cli_error(r["rc"], r["out"], r["err"], *frags, label=frags[0])
        assert_nothing_written(tmp_path)


# ---------------------------------------------------------------------------------------------------------------
# 3. '^' is refused with the hint "use **"

class TestItem03Caret:
    @pytest.mark.slow
    def test_caret_is_refused_with_the_hint(self, tmp_path):
        paths = [write(tmp_path, "c1.toml", spec_text(rhs=("-a*z^2",))),
                 write(tmp_path, "c2.toml", spec_text(terminal="(z - 1)^2"))]
        results = cli_batch(tmp_path, [["derive", paths[0]], ["grad", paths[1], "--method", "exact"]])
        assert_clear_cli_error(*(results[0][k] for k in ("rc", "out", "err")), "rhs[0]", "use **")
        assert_clear_cli_error(*(results[1][k] for k in ("rc", "out", "err")), "loss.terminal", "use **")
        # library: the same refusal, whatever the operands (2^3 is 1 as XOR: the trap the hint avoids)
        with pytest.raises(SpecError, match=r"use \*\*"):
            parse_expression("2^3", {}, "x")


# ---------------------------------------------------------------------------------------------------------------
# 4. Resource bombs end within a stated budget with a clear error

def _procs_mentioning(marker: str) -> list[int]:
    """Pids of live (non-zombie) processes whose command line contains ``marker``."""
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
            state = (d / "stat").read_text().split(") ")[-1][:1]
        except OSError:
            continue
        if marker in cmd and state != "Z":
            pids.append(int(d.name))
    return pids


class TestItem04ResourceBombs:
    @pytest.mark.slow
    def test_parse_time_bombs_are_refused_fast_naming_the_cap(self, tmp_path):
        bombs = [
            ("9**9**9**9", "max_exponent"),
            ("z**1000000", "max_exponent"),
            ("(" * 5000 + "z" + ")" * 5000, "max_text_length"),   # 5,000 nested parentheses
            ("(" * 200 + "z" + ")" * 200, "max_depth"),           # nested deeper than the cap, short text
            (" + ".join(f"{i}*z" for i in range(20000)), "max_text_length"),  # a 20,000-term sum
            ("+".join(["z"] * 4000), "max_nodes"),               # many terms under the length cap
            ("z*1" + "0" * 5000, "rhs[0]"),                        # a 5,001-digit literal
            ("z*1" + "0" * 400, "1e300"),                          # 1e400 written out: beyond float64
        ]
        paths = [write(tmp_path, f"b{i}.toml", spec_text(rhs=(b,))) for i, (b, _) in enumerate(bombs)]
        started = time.monotonic()
        results = cli_batch(tmp_path, [["derive", p] for p in paths])
        assert time.monotonic() - started < LIMIT["bomb_s"] * len(bombs)
        for (bomb, frag), r in zip(bombs, results):
            assert_clear_cli_error(r["rc"], r["out"], r["err"], "rhs[0]", label=bomb[:30])
            assert r["seconds"] < LIMIT["bomb_s"], (bomb[:30], r["seconds"])
        # the message names the cap that was hit (LIMITS['...']) where a cap applies
        named = [(bomb[:20], frag, r["err"]) for (bomb, frag), r in zip(bombs, results) if frag not in r["err"]]
        assert not named, named
        assert_nothing_written(tmp_path)

    @pytest.mark.slow
    def test_derivation_budget_ends_the_run_and_leaves_no_process_behind(self, tmp_path):
        """A closed-form search SymPy cannot finish: with a 2 s budget the CLI ends with a clear error, and
        none of its budgeted (grand)children keeps running afterwards."""
        marker = f"bomb-{os.getpid()}-{time.monotonic_ns()}.toml"
        path = write(tmp_path, marker, spec_text(rhs=("(z + a)**7*(z + 2)**5 - t*z",)))
        out, err = tmp_path / "stdout", tmp_path / "stderr"
        started = time.monotonic()
        leaked: list[int] = []
        try:
            with open(out, "w") as fo, open(err, "w") as fe:
                # files, not pipes: a leaked child holding a pipe open would otherwise block this call
                p = subprocess.run([sys.executable, "-m", "symode.cli", "derive", path, "--closed-form"],
                                   stdout=fo, stderr=fe, cwd=_workdir(tmp_path),
                                   env=_env(tmp_path, {"SYMODE_DERIVE_SECONDS": "2"}),
                                   timeout=LIMIT["budget_cli_s"])
            elapsed = time.monotonic() - started
            deadline = time.monotonic() + LIMIT["linger_s"]
            while _procs_mentioning(marker) and time.monotonic() < deadline:
                time.sleep(0.1)
            leaked = _procs_mentioning(marker)
        finally:
            for pid in _procs_mentioning(marker):  # only processes this test started (unique marker)
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        assert_clear_cli_error(p.returncode, out.read_text(), err.read_text(), "time budget of 2 s")
        assert elapsed < LIMIT["budget_cli_s"]
        assert not leaked, f"budgeted children outlived the CLI (still running: pids {leaked})"

    @pytest.mark.slow
    def test_memory_budget_ends_the_derivation_with_a_clear_error(self, tmp_path):
        """The address-space limit of the derivation child: 64 MiB is less than SymPy needs for any model, so
        this stands in for an expansion that explodes (a real one would take minutes to reach 4 GiB)."""
        path = write(tmp_path, "mem.toml", spec_text(rhs=("-a*z*(1 - z)",)))
        rc, out, err = cli(tmp_path, "derive", path, env_extra={"SYMODE_DERIVE_MEMORY_MB": "64"},
                           timeout=LIMIT["budget_cli_s"])
        assert_clear_cli_error(rc, out, err, "memory budget of 64 MiB")
        assert_nothing_written(tmp_path)

    @pytest.mark.slow
    def test_grad_derives_untrusted_models_under_the_budget_too(self, tmp_path):
        """`grad --method oracle` derives the model (adjoint, sensitivities) before integrating: that derivation
        must run under SYMODE_DERIVE_SECONDS like `derive` does."""
        started = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-m", "symode.cli", "grad", "mlp-8-64", "--method", "oracle"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                cwd=_workdir(tmp_path), env=_env(tmp_path, {"SYMODE_DERIVE_SECONDS": "2"}),
                                start_new_session=True)
        try:
            out, err = proc.communicate(timeout=LIMIT["budget_cli_s"])
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the session this test started
            proc.communicate()
            pytest.fail(f"`symode grad mlp-8-64 --method oracle` with SYMODE_DERIVE_SECONDS=2 still ran after "
                        f"{LIMIT['budget_cli_s']:g} s: the derivation is not budgeted")
        assert_clear_cli_error(proc.returncode, out, err, "budget")
        assert time.monotonic() - started < LIMIT["budget_cli_s"]


# ---------------------------------------------------------------------------------------------------------------
# 5. Non-finite or unrepresentable literals are refused up front, naming the field

class TestItem05NonFinite:
    @pytest.mark.slow
    def test_non_finite_literals_refused_naming_the_field(self, tmp_path):
        cases = [
            (spec_text(rhs=("-1e400*z",)), "rhs[0]"),
            (spec_text(rhs=("-a*z*1e-400",)), "rhs[0]"),
            (spec_text(z0=("1e400",)), "z0[0]"),
            (spec_text(params={"a": "nan"}), "params.a"),                 # TOML nan
            (spec_text(params={"a": "-inf"}), "params.a"),                # TOML inf
            (spec_text(params={"a": '"NaN"'}), "params.a"),
            (spec_text(params={"a": '"Infinity"'}), "params.a"),
            (spec_text(params={"a": "1e400"}), "params.a"),
            (spec_text(t1="inf"), "t1"),
            (spec_text(t0="nan"), "t0"),
            (spec_text(z0=("nan",)), "z0[0]"),                              # text 'nan' is not a number
            (spec_text(obs_times="[0.5]", obs_data="[[nan]]"), "loss.observations.data[0][0]"),
            (spec_text(obs_times="[inf]", obs_data="[[1]]"), "loss.observations.times[0]"),
        ]
        paths = [write(tmp_path, f"nf{i}.toml", text) for i, (text, _) in enumerate(cases)]
        argvs = [["grad", p, "--method", "discrete", "--json"] for p in paths]
        pj = tmp_path / "specs" / "p.json"
        pj.write_text('{"a": NaN}')                                          # JSON NaN (Python's json accepts it)
        argvs += [["grad", "logistic", "--method", "discrete", "--params-json", str(pj)]]
        cases += [(None, "--params-json")]
        argvs += [["grad", "logistic", "--method", "discrete", "--param", "r=inf"]]
        cases += [(None, "--param r")]
        results = cli_batch(tmp_path, argvs)
        for (_, field), r in zip(cases, results):
            assert_clear_cli_error(r["rc"], r["out"], r["err"], field, label=field)
        assert_nothing_written(tmp_path)

    def test_python_api_refuses_nan_and_inf_values(self):
        z, a = _sym("z"), _sym("a")
        base = dict(name="m", states=[z], params=[a], rhs=[-a * z], z0=[1], t0=0, t1=1, param_values={a: 1},
                    terminal=z ** 2)
        for change, field in (({"param_values": {a: sympy.nan}}, "params.a"), ({"z0": [sympy.oo]}, "z0"),
                              ({"t1": sympy.oo}, "t1"), ({"param_values": {a: float("nan")}}, "params.a")):
            with pytest.raises(SpecError, match=re.escape(field)):
                Model(**{**base, **change})


# ---------------------------------------------------------------------------------------------------------------
# 6. Structural mismatches are SpecErrors before anything is derived or compiled

class TestItem06Structure:
    @pytest.mark.slow
    def test_structural_errors_before_any_work(self, tmp_path):
        cases = [
            (spec_text(z0=("1", "2")), ("z0", "2 values for 1 states")),
            (spec_text(rhs=("-a*z", "z")), ("rhs", "2 expressions for 1 states")),
            (spec_text(obs_times='["0.5"]', obs_data='[["1", "2"]]'), ("loss.observations.data[0]",)),
            (spec_text(obs_times='["0.5", "0.7"]', obs_data='[["1"]]'), ("loss.observations.data",)),
            (spec_text(t1='"0"'), ("t1", "t0")),
            (spec_text(t1='"-1"'), ("t1", "t0")),
            (spec_text(obs_times='["0.7", "0.5"]', obs_data='[["1"], ["2"]]'), ("times[1]", "increasing")),
            (spec_text(obs_times='["0.5", "0.5"]', obs_data='[["1"], ["2"]]'), ("times[1]", "increasing")),
            (spec_text(obs_times='["1.5"]', obs_data='[["1"]]'), ("times[0]", "outside")),
            (spec_text(obs_times='["-0.5"]', obs_data='[["1"]]'), ("times[0]", "outside")),  # t0 itself is allowed (issue 12)
            (spec_text(terminal=None), ("loss",)),
            (spec_text().replace('terminal = "z**2"', 'terminal = ["z**2", "z"]'), ("loss.terminal",)),
        ]
        argvs = []
        for i, (text, _) in enumerate(cases):
            p = write(tmp_path, f"s{i}.toml", text)
            argvs.append(["codegen", p, "--out", str(tmp_path / "work" / f"out{i}")])
            argvs.append(["grad", p, "--method", "discrete", "--json"])
        results = cli_batch(tmp_path, argvs)
        for i, (_, frags) in enumerate(cases):
            for r in results[2 * i: 2 * i + 2]:
                assert_clear_cli_error(r["rc"], r["out"], r["err"], *frags, label=frags[0])
                # refused while reading the spec: milliseconds, not a derivation (seconds) or a compile
                assert r["seconds"] < 5, (frags, r["seconds"])
        assert_nothing_written(tmp_path)

    def test_non_scalar_loss_in_the_python_api(self):
        z, a = _sym("z"), _sym("a")
        with pytest.raises(SpecError, match="loss.terminal.*scalar"):
            Model(name="m", states=[z], params=[a], rhs=[-a * z], z0=[1], t0=0, t1=1, param_values={a: 1},
                  terminal=sympy.Matrix([z, z ** 2]))
        with pytest.raises(SpecError, match="loss.running"):
            Model(name="m", states=[z], params=[a], rhs=[-a * z], z0=[1], t0=0, t1=1, param_values={a: 1},
                  running=sympy.Matrix([[z]]))


# ---------------------------------------------------------------------------------------------------------------
# 7. No user-supplied text reaches generated C

EVIL_STATE = 'x*/ system("id"); /*\n#include <stdio.h>'
EVIL_PARAM = 'k"; return 0; //\n??/'
EVIL_MODEL = 'evil */ "name"\n#define X 1'
#: User text that must not appear in the generated C ('*/' is checked structurally: see _comments_balanced).
EVIL_TEXTS = ["system(", '"id"', "#include <stdio.h>", "return 0; //", "??/", '"name"', "#define X", "evil",
              '"desc"', "#error"]


@pytest.fixture
def private_cache(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv("SYMODE_CACHE_DIR", str(root))
    monkeypatch.delenv("SYMODE_CC", raising=False)
    monkeypatch.delenv("CC", raising=False)
    return root


def _hostile_model() -> Model:
    """Names with comment terminators, quotes, newlines, a trigraph and C keywords (Python API: a spec refuses
    such names outright, see item 2)."""
    z, w, k, ret = _sym(EVIL_STATE), _sym("int"), _sym(EVIL_PARAM), _sym("return")
    return Model(name=EVIL_MODEL, states=[z, w], params=[k, ret], rhs=[-k * z + ret * w, z - w], z0=[1, ret],
                 t0=0, t1=1, param_values={k: 2, ret: sympy.Rational(1, 2)}, terminal=z ** 2 + w,
                 description='*/ "desc"\n#error')


class TestItem07GeneratedC:
    @pytest.mark.slow
    def test_hostile_names_never_reach_c_and_the_code_compiles(self, private_cache):
        from symode.codegen import ctext
        from symode.codegen.build import build_shared_library, load_function
        m = _hostile_model()
        code = ctext.generate(m, "rk4", 20)
        c_sources = {n: d for n, d in code.files.items() if n.endswith((".c", ".h"))}
        assert c_sources, sorted(code.files)
        for name, data in c_sources.items():
            text = data.decode("utf-8")
            for bad in EVIL_TEXTS:
                assert bad not in text, (name, bad)
            assert _comments_balanced(text), name  # no '*/' of a user name closes a comment early
        # every exported symbol is the generated prefix (a hash), never a user name
        exported = re.findall(r"CASADI_SYMBOL_EXPORT\s+\w+\s+(\w+)\s*\(", c_sources["symode_model.c"].decode())
        assert exported and all(n.startswith(code.prefix) for n in exported), exported
        assert re.fullmatch(r"symode_[0-9a-f]{12}", code.prefix)
        lib = build_shared_library({n: d for n, d in c_sources.items()}, name_hint="hostile")
        grad = load_function(lib, code.names["grad"])
        ref = code.functions["grad"]
        args = [casadi_dm(v) for v in ([2.0, 0.5], [1.0, 0.5], 0.0, 1.0)]  # θ, z0 = z0(θ), t0, t1
        got, want = grad(*args), ref(*args)
        for g, w in zip(got, want):
            g, w = np.array(g, dtype=float).ravel(), np.array(w, dtype=float).ravel()
            assert np.all(np.isfinite(g))
            assert np.allclose(g, w, rtol=TOL["compiled_vs_inmemory_rel"], atol=0.0), (g, w)

    @pytest.mark.slow
    def test_cli_codegen_keeps_a_hostile_description_out_of_the_c_files(self, tmp_path):
        text = spec_text(extra='description = "*/ system(\\"id\\"); /*\\n#include <stdio.h>\\n#error"')
        path = write(tmp_path, "desc.toml", text)
        out = tmp_path / "gen"
        rc, stdout, stderr = cli(tmp_path, "codegen", path, "--out", str(out), "--steps", "10")
        assert rc == 0, stderr
        for f in out.iterdir():
            if f.suffix in (".c", ".h"):
                body = f.read_text()
                for bad in ("system(", "#include <stdio.h>", "#error", '\\"id'):
                    assert bad not in body, (f.name, bad)


def _comments_balanced(text: str) -> bool:
    """True if every '*/' in ``text`` closes a comment opened by '/*': scanning left to right, openers and
    closers alternate (a '*/' inside a user name would close a comment early and leave a stray closer)."""
    i, inside = 0, False
    while True:
        a, b = text.find("/*", i), text.find("*/", i)
        if not inside:
            if b != -1 and (a == -1 or b < a):
                return False  # a closer outside any comment
            if a == -1:
                return True
            inside, i = True, a + 2
        else:
            if b == -1:
                return False  # an unclosed comment
            inside, i = False, b + 2


def casadi_dm(v):
    import casadi
    return casadi.DM(v)


# ---------------------------------------------------------------------------------------------------------------
# 8. Compiler missing / failing / timing out

def _generated_sources(steps: int = 10) -> dict:
    from symode.codegen import ctext
    code = ctext.generate(get_model("logistic"), "rk4", steps)
    return {n: d for n, d in code.files.items() if n.endswith((".c", ".h"))}


def _script(path: Path, body: str) -> str:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


class TestItem08Compiler:
    def test_missing_compiler_names_it_and_the_setting(self, private_cache, monkeypatch):
        from symode.codegen.build import build_shared_library
        sources = _generated_sources()
        for setting in ("SYMODE_CC", "CC"):
            monkeypatch.delenv("SYMODE_CC", raising=False)
            monkeypatch.setenv(setting, "/nonexistent/bin/cc-42")
            with pytest.raises(CompilerNotFound) as info:
                build_shared_library(sources, name_hint="logistic")
            msg = str(info.value)
            assert "/nonexistent/bin/cc-42" in msg and setting in msg and "SYMODE_CC" in msg
            monkeypatch.delenv(setting)
        assert not private_cache.exists() or not any(private_cache.rglob("*.so"))

    def test_compiler_failure_is_a_build_error_with_the_full_log(self, private_cache, monkeypatch, tmp_path):
        from symode.codegen.build import build_shared_library
        # A compiler that prints 500 numbered lines and fails: every line must be in the error's log.
        fake = _script(tmp_path / "failcc", 'if [ "$1" = "--version" ]; then echo "failcc 1.0"; exit 0; fi\n'
                                            'i=1; while [ $i -le 500 ]; do echo "diag line $i: error"; '
                                            'i=$((i+1)); done; exit 1\n')
        monkeypatch.setenv("SYMODE_CC", fake)
        with pytest.raises(BuildError) as info:
            build_shared_library(_generated_sources(), name_hint="logistic")
        err = info.value
        assert all(f"diag line {i}: error" in err.log for i in (1, 250, 500))
        assert len(err.log.strip().splitlines()) == 500
        assert "diag line 1: error" in str(err) and "logistic" in str(err)
        # nothing half-written: no library, no temporaries, in any entry
        assert not [p for p in private_cache.rglob("*") if p.is_file() and p.name != ".lock"]

    @pytest.mark.slow
    def test_compile_timeout_says_so_and_how_to_proceed(self, private_cache, monkeypatch, tmp_path):
        from symode.codegen.build import build_shared_library
        fake = _script(tmp_path / "slowcc", 'if [ "$1" = "--version" ]; then echo "slowcc 1.0"; exit 0; fi\n'
                                            "exec sleep 60\n")
        monkeypatch.setenv("SYMODE_CC", fake)
        started = time.monotonic()
        with pytest.raises(BuildError) as info:
            build_shared_library(_generated_sources(), name_hint="logistic", timeout=1)
        assert time.monotonic() - started < 15
        msg = str(info.value)
        assert "timeout of 1 s" in msg and "-O1" in msg and "in process" in msg
        assert not [p for p in private_cache.rglob("*") if p.is_file() and p.name != ".lock"]


# ---------------------------------------------------------------------------------------------------------------
# 9. Flags that break an oracle are refused

class TestItem09Flags:
    @pytest.mark.parametrize("flag", ["-ffast-math", "-Ofast", "-funsafe-math-optimizations"])
    def test_fast_math_flags_refused_before_anything_is_written(self, flag, private_cache):
        from symode.codegen.build import DEFAULT_FLAGS, build_shared_library
        with pytest.raises(BuildError) as info:
            build_shared_library(_generated_sources(), name_hint="logistic", flags=DEFAULT_FLAGS + (flag,))
        assert repr(flag) in str(info.value) and "IEEE" in str(info.value)
        assert not private_cache.exists()

    def test_a_flag_cannot_ride_in_on_the_compiler_setting(self, private_cache, monkeypatch):
        from symode.codegen.build import build_shared_library
        monkeypatch.setenv("SYMODE_CC", f"{shutil.which('cc')} -ffast-math")
        with pytest.raises(BuildError):  # CompilerNotFound is a BuildError: no such executable
            build_shared_library(_generated_sources(), name_hint="logistic")
        assert not private_cache.exists() or not any(private_cache.rglob("*.so"))


# ---------------------------------------------------------------------------------------------------------------
# 10. The build cache

class TestItem10Cache:
    def test_key_covers_compiler_path_and_version_versions_and_platform(self, private_cache, monkeypatch,
                                                                       tmp_path):
        import symode.codegen.build as build
        sources = {n: d.encode() if isinstance(d, str) else d for n, d in _generated_sources().items()}
        cc = build.find_compiler()
        key = build.build_key(sources, cc, build.DEFAULT_FLAGS)
        assert build.build_key(sources, cc, build.DEFAULT_FLAGS) == key  # deterministic
        # another path to the same compiler (a symlink): the path is part of the key
        link = tmp_path / "cc-link"
        link.symlink_to(cc)
        assert build.build_key(sources, str(link), build.DEFAULT_FLAGS) != key
        # another compiler version (a wrapper answering --version differently, compiling with the real cc)
        other = _script(tmp_path / "cc-v2", f'if [ "$1" = "--version" ]; then echo "cc 99.0"; exit 0; fi\n'
                                            f'exec {cc} "$@"\n')
        assert build.build_key(sources, other, build.DEFAULT_FLAGS) != key
        for attr, value in (("_casadi_version", lambda: "0.0.0-other"), ("_symode_version", lambda: "9.9.9")):
            with monkeypatch.context() as mp:
                mp.setattr(build, attr, value)
                assert build.build_key(sources, cc, build.DEFAULT_FLAGS) != key, attr
        with monkeypatch.context() as mp:
            mp.setattr(build.platform, "machine", lambda: "other-arch")
            assert build.build_key(sources, cc, build.DEFAULT_FLAGS) != key
        with monkeypatch.context() as mp:
            mp.setattr(build.sys, "platform", "other-os")
            assert build.build_key(sources, cc, build.DEFAULT_FLAGS) != key

    def test_cache_directory_is_private_whatever_the_umask(self, tmp_path, monkeypatch):
        from symode.codegen.build import cache_dir
        root = tmp_path / "fresh" / "cache"
        monkeypatch.setenv("SYMODE_CACHE_DIR", str(root))
        old = os.umask(0)
        try:
            assert cache_dir() == root
        finally:
            os.umask(old)
        assert stat.S_IMODE(root.stat().st_mode) == 0o700
        root.chmod(0o777)
        with pytest.raises(BuildError, match="writable"):
            cache_dir()

    @pytest.mark.slow
    def test_generated_library_damaged_after_load_is_detected_and_rebuilt(self, private_cache):
        from symode.codegen.build import build_shared_library, load_function
        from tests.build_log import BUILD_EVENTS
        sources = _generated_sources()
        lib = build_shared_library(sources, name_hint="logistic")
        assert re.fullmatch(r"logistic-[0-9a-f]{16}\.so", lib.name)  # content-addressed name
        with open(lib, "r+b") as fh:  # truncated (e.g. a crash while copying): detected by the stored hash
            fh.truncate(lib.stat().st_size // 2)
        with pytest.raises(BuildError, match="sha256"):
            load_function(lib, "anything")
        start = len(BUILD_EVENTS)
        again = build_shared_library(sources, name_hint="logistic")
        assert again == lib and [e for e, _ in BUILD_EVENTS[start:]] == ["discard", "compile"]
        assert sorted(p.name for p in lib.parent.iterdir()) == sorted([".lock", lib.name, lib.name + ".sha256"])


# ---------------------------------------------------------------------------------------------------------------
# 11. Finite-time blow-up: every route raises IntegrationError naming t ~ 1

BLOWUP = spec_text(name="blowup", rhs=("z**2",), z0=("1",), t1='"2"', params={}, terminal="z**2")
BLOWUP_P = spec_text(name="blowup_p", rhs=("a*z**2",), z0=("1",), t1='"2"', params={"a": '"1"'}, terminal="z**2")


class TestItem11BlowUp:
    @pytest.mark.slow
    @pytest.mark.parametrize("method", list(METHODS))
    def test_every_route_raises_near_the_singularity(self, method):
        # z = 1/(1 - a t) with a = 1: singular at t = 1 (closed form by hand); t1 = 2 lies beyond it.
        missing = get_route(method).missing()
        if missing:  # a registered route whose optional dependency is not installed here
            pytest.skip("; ".join(missing))
        m = load_spec(BLOWUP_P)
        kw = {"scheme": "rk4", "steps": 100} if method in ("discrete", "forward", "adjoint", "adjoint-stored") \
            else {}
        with pytest.raises(IntegrationError) as info:
            r = compute(m, method, **kw)
            pytest.fail(f"{method} returned a result past the singularity: {r.to_json()}")
        t = info.value.time
        assert t is not None and abs(t - 1.0) < TOL["blowup_time"], (method, t, str(info.value))

    @pytest.mark.slow
    def test_cli_every_method_on_the_issue_spec(self, tmp_path):
        path = write(tmp_path, "blowup.toml", BLOWUP)
        methods = [m for m in METHODS if m != "cvodes" and not get_route(m).missing()]
        results = cli_batch(tmp_path, [["grad", path, "--method", m, "--json"] for m in methods])
        problems = []  # every method is checked; all failures are reported together
        for m, r in zip(methods, results):
            try:
                line = assert_clear_cli_error(r["rc"], r["out"], r["err"], label=m)
                t = first_time(line)
                assert t is not None and abs(t - 1.0) < TOL["blowup_time"], f"[{m}] time {t}: {line}"
            except AssertionError as exc:
                problems.append(str(exc).splitlines()[0][:400])
        # CVODES in a process of its own: its C-level chatter must not reach the terminal
        rc, out, err = cli(tmp_path, "grad", path, "--method", "cvodes", "--json")
        line = assert_clear_cli_error(rc, out, err, "CV_TOO_MUCH_WORK")
        assert abs(first_time(line) - 1.0) < TOL["blowup_time"]
        assert not problems, "\n".join(problems)
        assert_nothing_written(tmp_path)


# ---------------------------------------------------------------------------------------------------------------
# 12. Stiff model with an explicit scheme: an error suggesting an implicit scheme or CVODES

STIFF = spec_text(name="stiff", rhs=("-k*z",), z0=("1",), params={"k": '"1000"'}, terminal="z**2")


class TestItem12Stiff:
    @pytest.mark.slow
    def test_explicit_scheme_on_a_stiff_model(self, tmp_path):
        path = write(tmp_path, "stiff.toml", STIFF)
        argvs = [["grad", path, "--method", m, "--scheme", "rk4", "--steps", "10"]
                 for m in ("discrete", "adjoint-stored")]
        argvs.append(["grad", path, "--method", "discrete", "--scheme", "backward_euler", "--steps", "10",
                      "--json"])
        results = cli_batch(tmp_path, argvs)
        for r in results[:2]:
            # RK4's stability function at hλ = -100 is 1 - 100 + 5000 - 166666.7 + 4166666.7 (Σ w^k/k!): > 1
            line = assert_clear_cli_error(r["rc"], r["out"], r["err"], "stiff", "implicit", "cvodes")
            t = first_time(line)
            assert t is not None and 0 <= t <= 1
        # the suggested remedy works: backward Euler, z_{n+1} = z_n / (1 + h k) = z_n / 101, so
        # L = z_10² = 101^-20 exactly (textbook one-step formula)
        r = results[2]
        assert r["rc"] == 0, r["err"]
        loss = float(json.loads(r["out"])["loss"])
        assert math.isclose(loss, float(Fraction(1, 101 ** 20)), rel_tol=TOL["backward_euler_rel"])


# ---------------------------------------------------------------------------------------------------------------
# 13. CVODES flags become plain messages; statistics are attached; C-level chatter is captured

#: z = 1 - t crosses 0 at t = 1 with sqrt(z) / log(z) in the rhs (neutral model names: messages are searched for
#: the words sqrt, log and domain)
CROSS_SQRT = spec_text(name="crossing_one", states=("z", "w"), rhs=("-1", "sqrt(z)"), z0=("1", "0"), t1='"2"',
                       params={}, terminal="w**2")
CROSS_LOG = spec_text(name="crossing_two", states=("z", "w"), rhs=("-1", "log(z)"), z0=("1", "0"), t1='"2"',
                      params={}, terminal="w**2")


class TestItem13Cvodes:
    def test_too_much_work_is_a_plain_message_with_the_time(self):
        with pytest.raises(IntegrationError) as info:
            compute(get_model("logistic"), "cvodes", max_num_steps=3)
        msg = str(info.value)
        assert "CV_TOO_MUCH_WORK" in msg and "maximum number of internal steps (3)" in msg
        assert info.value.time is not None and 0 <= info.value.time < 3

    def test_domain_failure_flags_are_plain_messages(self, capfd):
        for text, flag, words in ((CROSS_SQRT, "CV_REPTD_RHSFUNC_ERR", "domain"),
                                  (CROSS_LOG, "CV_CONV_FAILURE", "Newton iteration")):
            with pytest.raises(IntegrationError) as info:
                compute(load_spec(text), "cvodes")
            msg = str(info.value)
            assert flag in msg and words in msg, msg
            assert abs(info.value.time - 1.0) < TOL["domain_time"]
        # CVODES printed ~1,000 warnings from C for each solve: captured, none reached file descriptors 1/2
        out, err = capfd.readouterr()
        assert "WARNING" not in out + err and "CVODE" not in out + err, (out + err)[:500]

    def test_failure_at_the_first_rhs_call_is_a_plain_message(self):
        # sqrt(z) at z0 = -1: CVODES's very first right-hand-side call fails (CV_FIRST_RHSFUNC_ERR)
        m = load_spec(spec_text(rhs=("sqrt(z)",), z0=("-1",)))
        with pytest.raises(IntegrationError) as info:
            compute(m, "cvodes")
        msg = str(info.value)
        assert "Consult CVODES documentation" not in msg and ".cpp:" not in msg.split("CVODES said")[0], msg
        assert info.value.time == 0.0 or "t = 0" in msg, msg

    @pytest.mark.slow
    def test_statistics_are_attached_and_chatter_stays_off_the_terminal(self, tmp_path):
        r = compute(get_model("logistic"), "cvodes")
        for key in ("steps", "steps_backward", "error_test_failures", "convergence_failures"):
            assert isinstance(r.stats[key], int), key
        assert r.stats["steps"] > 0
        path = write(tmp_path, "one.toml", CROSS_SQRT)
        rc, out, err = cli(tmp_path, "grad", path, "--method", "cvodes", "--json")
        # one line on stderr although CVODES printed ~1,000 warnings from C (captured, quoted in short)
        assert_clear_cli_error(rc, out, err, "CV_REPTD_RHSFUNC_ERR")
        rc, out, err = cli(tmp_path, "grad", "logistic", "--method", "cvodes", "--json")
        assert rc == 0 and err == "", err
        assert json.loads(out)["stats"]["steps"] > 0


# ---------------------------------------------------------------------------------------------------------------
# 14. Leaving the domain (sqrt/log of z with z crossing 0): a clear error with the time

class TestItem14Domain:
    def _run(self, tmp_path):
        paths = [write(tmp_path, "one.toml", CROSS_SQRT), write(tmp_path, "two.toml", CROSS_LOG)]
        argvs = [["grad", p, "--method", m, *extra] for p in paths
                 for m, extra in (("oracle", []), ("discrete", ["--scheme", "rk4", "--steps", "100"]),
                                  ("adjoint-stored", ["--scheme", "rk4", "--steps", "7"]))]
        return argvs, cli_batch(tmp_path, argvs)

    @pytest.mark.slow
    def test_every_route_names_the_time(self, tmp_path):
        # z = 1 - t crosses 0 at t = 1 (exact); sqrt(z) and log(z) are undefined beyond it
        argvs, results = self._run(tmp_path)
        for argv, r in zip(argvs, results):
            line = assert_clear_cli_error(r["rc"], r["out"], r["err"], label=" ".join(argv[2:4]))
            t = first_time(line)
            # rk4 with 7 steps on [0, 2]: the first node past t = 1 is 8/7, one step h = 2/7 after it
            slack = 2 / 7 if "7" in argv else 0.0
            assert t is not None and abs(t - 1.0) < slack + TOL["domain_time"], (argv, line)
        assert_nothing_written(tmp_path)

    @pytest.mark.slow
    def test_the_message_says_the_solution_left_the_domain(self, tmp_path):
        argvs, results = self._run(tmp_path)
        unclear = []
        for argv, r in zip(argvs, results):
            func = "sqrt" if argv[1].endswith("one.toml") else "log"
            if func not in r["err"] and "domain" not in r["err"]:
                unclear.append((Path(argv[1]).name, argv[3], r["err"].strip()[:200]))
        assert not unclear, unclear


# ---------------------------------------------------------------------------------------------------------------
# 15. Non-differentiable points are flagged; singularities SymPy simplified away are reported

KINK = spec_text(name="kink", rhs=("-abs(a)*z",), params={"a": '"0"'})


class TestItem15NonDifferentiable:
    def test_kinks_at_the_evaluation_point_are_found(self):
        from symode.check.compare import check_differentiable
        found = check_differentiable(load_spec(KINK))
        assert len(found) == 1 and "rhs[0]" in found[0] and "convention" in found[0]
        # a ReLU (Max) kink exactly at the parameters, through the Python API
        z, a = _sym("z"), _sym("a")
        relu = Model(name="relu", states=[z], params=[a], rhs=[-sympy.Max(a, 0) * z], z0=[1], t0=0, t1=1,
                     param_values={a: 0}, terminal=z ** 2)
        found = check_differentiable(relu)
        assert len(found) == 1 and "Max" in found[0] and "convention" in found[0]
        # away from the kink: nothing to flag
        assert check_differentiable(load_spec(KINK.replace('a = "0"', 'a = "0.5"'))) == []

    @pytest.mark.parametrize("method", ["exact", "oracle", "discrete"])
    def test_the_result_itself_is_flagged(self, method):
        kw = {"scheme": "rk4", "steps": 10} if method == "discrete" else {}
        r = compute(load_spec(KINK), method, **kw)
        text = json.dumps(r.to_dict()).lower()
        assert "non-differentiable" in text and "convention" in text, text[:500]

    def test_removed_singularities_are_reported_when_the_candidate_disagrees(self):
        from symode.check.compare import model_removed_singularities, removed_singularities
        m = load_spec(spec_text(rhs=("0*log(z) - a*z",), z0=("0",)))
        found = model_removed_singularities(m)
        assert len(found) == 1 and "rhs[0]" in found[0] and "log" in found[0]
        # z/z at z = 0: SymPy made it 1; a candidate returning NaN there disagrees, one returning 1 does not
        assert removed_singularities("z/z", {"z": 0}, candidate=float("nan"))
        assert removed_singularities("z/z", {"z": 0}, candidate=1.0) == []


# ---------------------------------------------------------------------------------------------------------------
# 16. Comparisons

class TestItem16Compare:
    def test_route_against_closed_form_with_derived_tolerance_in_the_report(self):
        from symode.check.compare import compare
        from symode.check.tolerances import fixed_step_tolerance, solver_tolerance
        m = get_model("logistic")
        ref = compute(m, "exact", digits=30)
        cand = compute(m, "discrete", scheme="rk4", steps=50)
        tol = fixed_step_tolerance(4, 50, float(m.t1 - m.t0))
        c = compare(cand, ref, tolerance=tol)
        assert c.ok, c.summary()
        report = c.to_markdown()
        assert "h = 3/50" in report and "order-4" in report  # the derivation of the tolerance is printed
        assert c.worst is not None and c.worst.name in c.summary()
        cv = compare(compute(m, "cvodes"), ref, tolerance=solver_tolerance(1e-12, 1e-12))
        assert cv.ok and "rtol=1e-12" in cv.to_markdown()
        # NaN never passes, not even against NaN; a shape mismatch is a failure naming both shapes
        vals = np.array([float(v) for v in cand.values()])
        poisoned = vals.copy()
        poisoned[1] = math.nan
        assert not compare(poisoned, poisoned, rtol=1.0, atol=1.0).ok
        bad = compare(poisoned, vals, rtol=1.0, atol=1.0)
        assert not bad.ok and "nan" in bad.summary().lower()
        short = compare(vals[:-1], vals, rtol=1.0, atol=1.0)
        assert not short.ok and str(vals[:-1].shape) in short.summary() and str(vals.shape) in short.summary()
        # symmetric metric: swapping candidate and reference gives the same verdict and error
        x, y = np.array([1.0, 1e-12]), np.array([1.0 + 2e-9, 0.0])
        a, b = compare(x, y, rtol=1e-9, atol=1e-12), compare(y, x, rtol=1e-9, atol=1e-12)
        assert a.ok == b.ok and [r.error for r in a.rows] == [r.error for r in b.rows]
        # float32 candidates are held to the float32 floor, and the report says so
        f32 = compare(vals.astype(np.float32), vals, rtol=1e-15, atol=0.0)
        assert f32.ok and any("float32" in n for n in f32.notes)


# ---------------------------------------------------------------------------------------------------------------
# 17. Finite differences: h ≈ tol^(1/3)·max(1, |θ|), the plateau of a sweep

class TestItem17FD:
    def test_fd_of_a_route_reports_a_plateau_that_matches_its_derivative(self):
        from symode.casadi.routes import batch_gradient
        from symode.check.fd import fd_gradient
        m = get_model("logistic")
        theta = [float(v) for v in m.theta]

        def loss(th):
            return float(batch_gradient(m, [th], method="discrete", steps=100)[0][0])

        # reverse-mode AD of the same discrete loss: an independent derivative of the same function
        _, g = batch_gradient(m, [theta], method="discrete", steps=100)
        tol = 1e-14
        res = fd_gradient(loss, theta, tol=tol, names=m.param_names)
        assert res.ok, res.to_markdown()
        for j, comp in enumerate(res.components):
            centre = comp.hs[len(comp.hs) // 2]
            assert math.isclose(centre, tol ** (1 / 3) * max(1.0, abs(theta[j])), rel_tol=1e-6)
            lo, hi = comp.h_range
            assert hi > lo  # a plateau over several steps, not one h
            assert math.isclose(comp.value, float(g[0, j]), rel_tol=TOL["fd_vs_ad_rel"])
        assert "plateau" in res.to_markdown().lower()
