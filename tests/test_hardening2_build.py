"""Acceptance tests of hardening round two (issue 11), the build and file-writing items:

* item 3, ``TestR2Item03CompilerEnvironment``: the compile cache cannot be poisoned by the caller's environment,
  by a library without its sidecar, or by a symbolic link or foreign-owned file at any level of the cache;
* item 6, ``TestR2Item06KilledWrites``: a write killed at any point never leaves the target missing or broken,
  and the next write cleans up what was left;
* item 7, ``TestR2Item07CompilerChildren``: compiler processes die with the process that started them, with
  the budget that ran them, and at their time limit.

Real compiler (cc), real CasADi, real processes killed with real signals.  Fake compilers are shell scripts that
only add the behaviour under test (hanging, spawning a child, failing).  Expected values come from CasADi's
in-memory evaluation of the same function and from Python's math library, never from the compiled code.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import casadi
import pytest

from symode.codegen.build import build_key, build_shared_library, cache_dir, find_compiler, load_function
from symode.errors import BuildError
from tests.build_log import BUILD_EVENTS

ROOT = Path(__file__).resolve().parents[1]

#: Tolerances and time limits used below, each with its reason.
TOL = {
    # Compiled C vs Python's math.sin(x)*x: the same libm sin and one multiplication (-std=c99: no FMA
    # contraction), so equal to a few ulps; a float build (the poisoned header) is off by ~1e-8 relative.
    "compiled_vs_libm_rel": 1e-14,
}
LIMIT = {
    # How long a killed process may take to disappear (or become a zombie) after the kill that should end it.
    "reap_s": 10.0,
    # How long to wait for a child script to reach the point where it is killed (imports on a loaded machine).
    "ready_s": 120.0,
    # Budget given to a hanging compile run under call_with_budget (the budget, not the compiler, must end it).
    "budget_s": 2.0,
}

POISON_HEADER = "#define casadi_real float\n#include_next <math.h>\n"


def _f_source() -> dict[str, str]:
    x = casadi.SX.sym("x")
    f = casadi.Function("f", [x], [casadi.sin(x) * x])
    cg = casadi.CodeGenerator("f.c", {"with_header": False})
    cg.add(f)
    return {"f.c": cg.dump()}


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("SYMODE_CACHE_DIR", str(root))
    for var in ("SYMODE_CC", "CC", "CPATH", "C_INCLUDE_PATH", "COMPILER_PATH", "GCC_EXEC_PREFIX", "LIBRARY_PATH"):
        monkeypatch.delenv(var, raising=False)
    BUILD_EVENTS.clear()
    return root


def _script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


def _value(lib: Path) -> float:
    return float(load_function(lib, "f")(0.5))


def _process_gone(pid: int) -> bool:
    """True if pid no longer runs (absent, or a zombie waiting to be reaped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


def _wait_gone(pids: list[int]) -> list[int]:
    deadline = time.monotonic() + LIMIT["reap_s"]
    while time.monotonic() < deadline and not all(_process_gone(p) for p in pids):
        time.sleep(0.05)
    return [p for p in pids if not _process_gone(p)]


def _wait_file(path: Path, proc: subprocess.Popen | None = None) -> str:
    deadline = time.monotonic() + LIMIT["ready_s"]
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text()
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"child exited early ({proc.returncode}): {proc.stderr.read()[-3000:]}")
        time.sleep(0.05)
    raise AssertionError(f"{path} never written")


def _kill_all(pids: list[int]) -> None:
    for p in pids:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


# ---------------------------------------------------------------------------------------------------------------
# 3. The compile cache and the compiler's environment


class TestR2Item03CompilerEnvironment:
    @pytest.mark.parametrize("variable", ["CPATH", "C_INCLUDE_PATH"])
    def test_a_poisoned_header_path_changes_nothing(self, tmp_path, monkeypatch, variable):
        # The issue's attack: a math.h that turns casadi_real into float.  Building under it must give the
        # same library (the same cache entry) as a clean build, with double results (math.sin, independent).
        inc = tmp_path / "inc"
        inc.mkdir()
        (inc / "math.h").write_text(POISON_HEADER)
        monkeypatch.setenv(variable, str(inc))
        poisoned = build_shared_library(_f_source(), name_hint="f")
        assert _value(poisoned) == pytest.approx(math.sin(0.5) * 0.5, rel=TOL["compiled_vs_libm_rel"], abs=0)
        monkeypatch.delenv(variable)
        clean = build_shared_library(_f_source(), name_hint="f")
        assert clean == poisoned
        assert [e for e, _ in BUILD_EVENTS] == ["compile", "hit"]

    def test_a_fake_assembler_on_compiler_path_is_not_used(self, tmp_path, monkeypatch):
        # gcc looks for `as` in COMPILER_PATH first: a fake one that fails would break (or could change) the
        # library.  The compiler never sees that variable.
        fake = tmp_path / "fakebin"
        fake.mkdir()
        _script(fake / "as", "echo poisoned-assembler >&2\nexit 1\n")
        monkeypatch.setenv("COMPILER_PATH", str(fake))
        monkeypatch.setenv("GCC_EXEC_PREFIX", str(fake) + "/")
        lib = build_shared_library(_f_source(), name_hint="f")
        assert _value(lib) == pytest.approx(math.sin(0.5) * 0.5, rel=TOL["compiled_vs_libm_rel"], abs=0)

    def test_what_the_compiler_does_see_is_in_the_key(self, tmp_path, monkeypatch):
        src = {"f.c": b"int f;\n"}
        cc = find_compiler()
        key = build_key(src, cc, ("-shared",))
        monkeypatch.setenv("CPATH", str(tmp_path))  # not passed to the compiler: no effect on the key
        assert build_key(src, cc, ("-shared",)) == key
        monkeypatch.setenv("PATH", str(tmp_path) + os.pathsep + os.environ["PATH"])  # passed: part of the key
        assert build_key(src, cc, ("-shared",)) != key

    @pytest.mark.parametrize("flag", ["-I/tmp", "-include", "-isystem/tmp", "-L/tmp", "-lfoo", "-B/tmp",
                                      "--sysroot=/tmp", "-specs=x", "-Wl,-T,script", "-Wp,-include,x",
                                      "-fplugin=x.so", "-fprofile-use=x"])
    def test_flags_that_read_outside_files_are_refused(self, flag, private_cache):
        with pytest.raises(BuildError, match="outside the sources"):
            build_shared_library(_f_source(), flags=("-O2", "-fPIC", "-shared", flag))
        assert not private_cache.exists()

    def test_a_library_without_its_sidecar_is_never_loaded(self):
        lib = build_shared_library(_f_source(), name_hint="f")
        Path(str(lib) + ".sha256").unlink()
        with pytest.raises(BuildError, match="sidecar"):
            load_function(lib, "f")

    @staticmethod
    def _evil_copy(tmp_path: Path, lib: Path) -> Path:
        """A directory outside the cache holding a different library (sin -> cos) under the same name, with a
        matching sidecar: what an attacker would plant."""
        x = casadi.SX.sym("x")
        g = casadi.Function("f", [x], [casadi.cos(x) * x])
        cg = casadi.CodeGenerator("f.c", {"with_header": False})
        cg.add(g)
        other = build_shared_library({"f.c": cg.dump()}, name_hint="g")
        evil = tmp_path / "evil"
        evil.mkdir(mode=0o700)
        shutil.copy(other, evil / lib.name)
        (evil / (lib.name + ".sha256")).write_text(hashlib.sha256((evil / lib.name).read_bytes()).hexdigest() + "\n")
        (evil / ".lock").touch()
        return evil

    @pytest.mark.slow
    @pytest.mark.parametrize("level", ["entry", "library", "sidecar", "lock"])
    def test_a_symlink_at_any_level_is_refused(self, tmp_path, level):
        lib = build_shared_library(_f_source(), name_hint="f")
        entry = lib.parent
        evil = self._evil_copy(tmp_path, lib)
        target = {"entry": entry, "library": lib, "sidecar": Path(str(lib) + ".sha256"), "lock": entry / ".lock"}
        victim = target[level]
        planted = evil if level == "entry" else evil / victim.name
        if level == "entry":
            shutil.rmtree(entry)
        else:
            victim.unlink()
        victim.symlink_to(planted)
        BUILD_EVENTS.clear()
        with pytest.raises(BuildError, match="symbolic link"):
            build_shared_library(_f_source(), name_hint="f")
        assert not BUILD_EVENTS  # neither a "hit" on the planted library nor a compile next to it
        with pytest.raises(BuildError):
            load_function(lib, "f")

    @pytest.mark.slow
    @pytest.mark.skipif(os.geteuid() != 0, reason="making a file owned by another user needs root")
    @pytest.mark.parametrize("level", ["entry", "library", "sidecar", "lock", "leftover"])
    def test_a_foreign_owned_file_at_any_level_is_refused(self, level):
        lib = build_shared_library(_f_source(), name_hint="f")
        entry = lib.parent
        if level == "leftover":
            victim = entry / ".tmp-out-x.so"
            victim.write_bytes(b"")
        else:
            victim = {"entry": entry, "library": lib, "sidecar": Path(str(lib) + ".sha256"),
                      "lock": entry / ".lock"}[level]
        os.chown(victim, 65534, 65534)  # nobody
        BUILD_EVENTS.clear()
        with pytest.raises(BuildError, match="owned by user id 65534"):
            build_shared_library(_f_source(), name_hint="f")
        assert not BUILD_EVENTS

    def test_a_group_writable_entry_is_refused(self):
        lib = build_shared_library(_f_source(), name_hint="f")
        lib.parent.chmod(0o770)
        with pytest.raises(BuildError, match="writable"):
            build_shared_library(_f_source(), name_hint="f")
        with pytest.raises(BuildError, match="writable"):
            load_function(lib, "f")

    def test_a_symlinked_cache_root_is_refused(self, tmp_path, monkeypatch):
        real = tmp_path / "real"
        real.mkdir(mode=0o700)
        (tmp_path / "link").symlink_to(real)
        monkeypatch.setenv("SYMODE_CACHE_DIR", str(tmp_path / "link"))
        with pytest.raises(BuildError, match="symbolic link"):
            cache_dir()


# ---------------------------------------------------------------------------------------------------------------
# 6. Writes killed at any point

# Runs write_directory(NEW, target) in a child process that SIGKILLs itself just before the N-th call of any
# step that changes the disk (fsync, rename, the atomic exchange, rmtree), or never if N = 0.  With
# FALLBACK = 1 the atomic exchange reports "unsupported", as on file systems without RENAME_EXCHANGE.
_KILLER = textwrap.dedent(r"""
    import json, os, shutil, signal, sys
    import symode.codegen.write as w
    n, fallback, target, files = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], json.loads(sys.argv[4])
    calls = [0]
    def wrap(fn):
        def inner(*a, **k):
            calls[0] += 1
            if calls[0] == n:
                os.kill(os.getpid(), signal.SIGKILL)
            return fn(*a, **k)
        return inner
    os.fsync, os.rename, shutil.rmtree = wrap(os.fsync), wrap(os.rename), wrap(shutil.rmtree)
    if hasattr(w, "_exchange"):
        w._exchange = (lambda a, b: False) if fallback else wrap(w._exchange)
    w.write_directory({k: v.encode() for k, v in files.items()}, target)
    print("completed")
""")

OLD = {"a.c": "old a", "sub/b.h": "old b"}
NEW = {"a.c": "new a", "sub/b.h": "new b", "c.json": "new c"}
THIRD = {"a.c": "third"}


def _tree(path: Path) -> dict[str, str]:
    from symode.codegen.write import MARKER
    return {str(p.relative_to(path)): p.read_text() for p in sorted(path.rglob("*"))
            if p.is_file() and p.name != MARKER}


def _leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith(".symode-tmp-"))


class TestR2Item06KilledWrites:
    def _kill_at(self, n: int, fallback: bool, target: Path) -> bool:
        """Run the killer; True if the write completed (n past the last step)."""
        p = subprocess.run([sys.executable, "-c", _KILLER, str(n), str(int(fallback)), str(target), json.dumps(NEW)],
                           capture_output=True, text=True, timeout=120, cwd=ROOT)
        if p.returncode == 0:
            assert "completed" in p.stdout
            return True
        assert p.returncode == -signal.SIGKILL, p.stderr
        return False

    @pytest.mark.slow
    @pytest.mark.parametrize("fallback", [False, True], ids=["exchange", "two-renames"])
    def test_a_kill_at_every_step_never_loses_the_output(self, tmp_path, fallback):
        from symode.codegen.write import write_directory
        target = tmp_path / "out"
        n = 0
        while True:
            n += 1
            assert n < 100, "the write never completed"
            if target.exists():
                shutil.rmtree(target)
            write_directory({k: v.encode() for k, v in OLD.items()}, target)
            completed = self._kill_at(n, fallback, target)
            if not completed and not target.exists():
                # Only the fallback may leave the target missing (between its two renames); the old output is
                # then at a temporary name and the cleanup that starts every write moves it back.
                assert fallback, f"killed before step {n}: {target} is missing"
                from symode.codegen.write import clean_leftovers
                clean_leftovers(tmp_path)
                assert _tree(target) == OLD, f"killed before step {n}: the old output was not restored"
            else:
                assert _tree(target) in (OLD, NEW), f"killed before step {n}: {_tree(target)}"
            write_directory({k: v.encode() for k, v in THIRD.items()}, target)  # the next run
            assert _tree(target) == THIRD
            assert _leftovers(tmp_path) == [], f"killed before step {n}: leftovers {_leftovers(tmp_path)}"
            if completed:
                break
        assert n > 4, "the kill points did not cover the write"

    def test_the_leftovers_of_the_issue_are_repaired(self, tmp_path):
        # The state the issue describes (old version's names): out/ gone, the old output under a hidden name,
        # and a half-written new directory.
        from symode.codegen.write import write_directory
        old = tmp_path / ".symode-tmp-out-old-abc12345"
        (old / "d").mkdir(parents=True)
        (old / "d" / "a.c").write_text("old a")
        (tmp_path / ".symode-tmp-out-x1y2z3w4").mkdir()
        write_directory({"a.c": b"new"}, tmp_path / "other")  # any write into the same directory repairs it
        assert (tmp_path / "out" / "a.c").read_text() == "old a"
        assert _leftovers(tmp_path) == []

    @pytest.mark.slow
    def test_a_killed_cache_build_leaves_nothing_after_the_next_build(self, tmp_path, monkeypatch):
        # A real kill during a real build (a compiler wrapper that reports its pid, then waits to be killed).
        ready = tmp_path / "ready"
        slow = _script(tmp_path / "slowcc", f'if [ "$1" != "--version" ]; then echo $$ > "{ready}"; sleep 300; fi\n'
                                            f'exec "{shutil.which("cc")}" "$@"\n')
        env = {**os.environ, "SYMODE_CC": str(slow)}
        code = ("import json, sys; from symode.codegen.build import build_shared_library; "
                "build_shared_library(json.loads(sys.argv[1]), name_hint='f')")
        p = subprocess.Popen([sys.executable, "-c", code, json.dumps(_f_source())], env=env, cwd=ROOT,
                             stderr=subprocess.PIPE, text=True)
        try:
            _wait_file(ready, p)
            entry = next(cache_dir().iterdir())
            assert any(c.name.startswith(".tmp-") for c in entry.iterdir())
        finally:
            p.kill()
            p.wait()
        lib = build_shared_library(_f_source(), name_hint="f")  # the real cc this time
        assert sorted(c.name for c in lib.parent.iterdir()) == sorted([".lock", lib.name, lib.name + ".sha256"])


# ---------------------------------------------------------------------------------------------------------------
# 7. Compiler processes never outlive what started them


def _hanging_compiler(tmp_path: Path) -> tuple[Path, Path]:
    """A compiler that starts a child (like cc1) and both sleep; it writes "child driver" pids when ready."""
    pids = tmp_path / "pids"
    fake = _script(tmp_path / "hangcc", (
        'if [ "$1" = "--version" ]; then echo "hangcc 1.0"; exit 0; fi\n'
        "sleep 300 &\n"
        f'echo "$! $$" > "{pids}"\n'
        "sleep 300\n"
    ))
    return fake, pids


def _build_in_budget(seconds):
    from symode.symbolic.budget import call_with_budget
    return call_with_budget(build_shared_library, _f_source(), seconds=seconds, memory_mb=0,
                            what="compiling", kwargs={"name_hint": "f"})


class TestR2Item07CompilerChildren:
    @pytest.mark.slow
    def test_killing_the_caller_kills_the_compiler_and_its_children(self, tmp_path):
        fake, pids = _hanging_compiler(tmp_path)
        env = {**os.environ, "SYMODE_CC": str(fake)}
        code = ("import json, sys; from symode.codegen.build import build_shared_library; "
                "build_shared_library(json.loads(sys.argv[1]), name_hint='f')")
        p = subprocess.Popen([sys.executable, "-c", code, json.dumps(_f_source())], env=env, cwd=ROOT,
                             stderr=subprocess.PIPE, text=True)
        procs = []
        try:
            procs = [int(x) for x in _wait_file(pids, p).split()]
            p.send_signal(signal.SIGKILL)  # no cleanup code of the caller runs
            p.wait()
            alive = _wait_gone(procs)
            assert alive == [], f"compiler processes {alive} outlived the killed caller"
        finally:
            _kill_all(procs)
            if p.poll() is None:
                p.kill()

    @pytest.mark.slow
    def test_the_budget_that_runs_a_compile_ends_it(self, tmp_path, monkeypatch):
        from symode.symbolic.budget import BudgetExceeded
        fake, pids = _hanging_compiler(tmp_path)
        monkeypatch.setenv("SYMODE_CC", str(fake))
        procs = []
        try:
            with pytest.raises(BudgetExceeded, match="time budget"):
                _build_in_budget(LIMIT["budget_s"])
            procs = [int(x) for x in _wait_file(pids).split()]
            alive = _wait_gone(procs)
            assert alive == [], f"compiler processes {alive} outlived the budget"
        finally:
            _kill_all(procs)

    @pytest.mark.slow
    def test_a_child_that_leaves_the_group_still_meets_the_time_limit(self, tmp_path, monkeypatch):
        # A compiler child that escapes the process group (setsid) survives the group kill; the CPU-time limit
        # every compiler process inherits still ends it.  The grace is set to 0 to keep the test short: the
        # limit is then int(timeout) + 1 = 1 s of CPU.
        import symode.codegen.compiler as compiler
        monkeypatch.setattr(compiler, "_CPU_GRACE_S", 0)
        pid_file = tmp_path / "spinner"
        spin = _script(tmp_path / "spincc", f'setsid sh -c \'echo $$ > "{pid_file}"; while :; do :; done\' &\n'
                                            "sleep 300\n")
        spinner = None
        try:
            status, _ = compiler.run_supervised([str(spin)], cwd=tmp_path, timeout=0.5)
            assert status is None  # the wall-time limit stopped the compiler itself
            spinner = int(_wait_file(pid_file))
            assert _wait_gone([spinner]) == [], "the escaped child ran past its CPU-time limit"
        finally:
            if spinner is not None:
                _kill_all([spinner])
