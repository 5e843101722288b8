"""Tests of symode.codegen.build: compiling C text into a cached shared library and loading it.

Real compiler (cc), real CasADi, no mocks.  Where a fake compiler appears (timeout, concurrency) it is a shell
script that either sleeps (to exercise the timeout) or delays and then runs the real cc (to force builds to
overlap); the fake only adds the behaviour under test.
"""
from __future__ import annotations

import concurrent.futures
import hashlib
import math
import multiprocessing
import os
import shutil
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import casadi
import numpy as np
import pytest

from symode.codegen.build import (
    DEFAULT_FLAGS,
    FORBIDDEN_FLAGS,
    TEMP_PREFIX,
    build_key,
    build_shared_library,
    cache_dir,
    find_compiler,
    load_function,
)
from symode.errors import BuildError, CompilerNotFound
from tests.build_log import BUILD_EVENTS

# Tolerances and time limits used below, each with its reason.
TOL = {
    # Compiled C vs CasADi's in-memory evaluation of the same expression: identical operations in the same
    # order (-std=c99 turns off FMA contraction), so only compiler reassociation could differ; in practice
    # the results are bit-identical, 1e-14 relative allows a few ulp.
    "compiled_vs_inmemory_rel": 1e-14,
    # Compiled C vs Python's math.sin(x)*x: the same libm sin and one multiplication, so the same bound.
    "compiled_vs_libm_rel": 1e-14,
    # A build with timeout=1 s must return within this many seconds: 1 s timeout, group kill, reaping; the
    # rest is slack for a loaded 2-core machine.  (A missing process-group kill is detected by the liveness
    # check of the compiler's child, not by this bound.)
    "timeout_return_s": 10.0,
    # How long a killed process may take to disappear (or become a zombie) after the build returned.
    "reap_wait_s": 5.0,
}

# Inputs where sin(x)*x is evaluated: signs, zero, large argument (range reduction), and 1e-160, whose
# result 1e-320 is subnormal (a flush-to-zero build would return 0).
POINTS = [-3.7, -1e-3, 0.0, 0.5, 1.0, 2.5, 1e3, 1e-160]


def _casadi_f(name: str = "f", op=casadi.sin) -> casadi.Function:
    x = casadi.SX.sym("x")
    return casadi.Function(name, [x], [op(x) * x])


def _c_text(f: casadi.Function) -> str:
    cg = casadi.CodeGenerator(f"{f.name()}.c", {"with_header": False})
    cg.add(f)
    return cg.dump()


@pytest.fixture(scope="module")
def f_source() -> dict[str, str]:
    return {"f.c": _c_text(_casadi_f())}


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch) -> Path:
    """Every test gets its own empty cache and starts with no recorded build events."""
    root = tmp_path / "cache"
    monkeypatch.setenv("SYMODE_CACHE_DIR", str(root))
    monkeypatch.delenv("SYMODE_CC", raising=False)
    monkeypatch.delenv("CC", raising=False)
    BUILD_EVENTS.clear()
    return root


def _events(kind: str) -> list[str]:
    return [key for event, key in BUILD_EVENTS if event == kind]


def _entry_for(sources, flags=DEFAULT_FLAGS) -> Path:
    key = build_key({k: v.encode() if isinstance(v, str) else v for k, v in sources.items()},
                    find_compiler(), flags)
    return cache_dir() / key[:32]


def _process_gone(pid: int) -> bool:
    """True if pid no longer runs (absent, or a zombie waiting to be reaped)."""
    if not Path("/proc/self/stat").exists():  # no procfs (macOS): signal 0 probes existence
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")


def _write_script(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o700)
    return path


# --- building, loading, numerical agreement -----------------------------------------------------------------

def test_build_load_and_agree_with_inmemory(f_source):
    lib = build_shared_library(f_source, name_hint="f")
    key = _events("compile")[0]
    assert lib == cache_dir() / key[:32] / f"f-{key[:16]}.so"
    assert lib.is_file()
    # The sidecar holds sha256 of the library's bytes (checked with hashlib here, independently).
    assert Path(str(lib) + ".sha256").read_text().strip() == hashlib.sha256(lib.read_bytes()).hexdigest()

    compiled = load_function(lib, "f")
    inmemory = _casadi_f()
    for x in POINTS:
        got = float(compiled(x))
        want_casadi = float(inmemory(x))
        want_libm = math.sin(x) * x  # independent: Python's libm and one multiplication
        assert got == pytest.approx(want_casadi, rel=TOL["compiled_vs_inmemory_rel"], abs=0.0), x
        assert got == pytest.approx(want_libm, rel=TOL["compiled_vs_libm_rel"], abs=0.0), x
    # The subnormal result survives (no flush to zero in the compiled code).
    assert 0.0 < float(compiled(1e-160)) < sys.float_info.min
    # NaN propagates and sin(inf) is NaN (IEEE 754), i.e. no finite-math assumptions in the code.
    assert math.isnan(float(compiled(float("nan"))))
    assert math.isnan(float(compiled(float("inf"))))
    # Loading did not change this process's floating-point environment: subnormal arithmetic still works.
    assert sys.float_info.min * 0.5 > 0.0
    assert np.float64(1e-310) * np.float64(0.5) > 0.0


def test_load_function_unknown_name(f_source):
    lib = build_shared_library(f_source, name_hint="f")
    with pytest.raises(BuildError, match="'nope'"):
        load_function(lib, "nope")


def test_load_function_refuses_damaged_library(f_source):
    lib = build_shared_library(f_source, name_hint="f")
    with open(lib, "r+b") as fh:  # never loaded in this test, so truncating it in place is safe
        fh.truncate(lib.stat().st_size // 2)
    with pytest.raises(BuildError, match="sha256"):
        load_function(lib, "f")


# --- cache behaviour ----------------------------------------------------------------------------------------

def test_second_build_is_a_cache_hit(f_source):
    first = build_shared_library(f_source, name_hint="f")
    inode = first.stat().st_ino
    second = build_shared_library(f_source, name_hint="f")
    assert second == first
    assert [event for event, _ in BUILD_EVENTS] == ["compile", "hit"]
    assert second.stat().st_ino == inode  # the file was not rewritten either


def test_bytes_and_str_sources_are_the_same_build(f_source):
    a = build_shared_library(f_source, name_hint="f")
    b = build_shared_library({"f.c": f_source["f.c"].encode("utf-8")}, name_hint="f")
    assert a == b
    assert [event for event, _ in BUILD_EVENTS] == ["compile", "hit"]


def test_different_flags_or_source_give_different_keys_and_paths(f_source):
    base = build_shared_library(f_source, name_hint="f")
    o1_flags = ("-O1",) + DEFAULT_FLAGS[1:]
    other_flags = build_shared_library(f_source, name_hint="f", flags=o1_flags)
    other_source = build_shared_library({"f.c": _c_text(_casadi_f(op=casadi.cos))}, name_hint="f")
    assert len({base, other_flags, other_source}) == 3
    assert len({base.parent, other_flags.parent, other_source.parent}) == 3
    assert len(set(_events("compile"))) == 3 and not _events("hit")
    for lib in (base, other_flags, other_source):
        assert lib.is_file()
    # The -O1 build computes the same function.
    assert float(load_function(other_flags, "f")(0.5)) == pytest.approx(
        math.sin(0.5) * 0.5, rel=TOL["compiled_vs_libm_rel"], abs=0.0)


def test_build_key_properties(f_source):
    cc = find_compiler()
    src = {"a.c": b"int a;\n", "b.c": b"int b;\n"}
    key = build_key(src, cc, DEFAULT_FLAGS)
    assert len(key) == 64 and int(key, 16) >= 0
    # Insertion order of the mapping does not matter (sorted by file name) ...
    assert build_key({"b.c": b"int b;\n", "a.c": b"int a;\n"}, cc, DEFAULT_FLAGS) == key
    # ... but file names, contents, flags and flag order all do.
    assert build_key({"a.c": b"int b;\n", "b.c": b"int a;\n"}, cc, DEFAULT_FLAGS) != key
    assert build_key({"a.c": b"int a;\n", "b.c": b"int b; \n"}, cc, DEFAULT_FLAGS) != key
    assert build_key(src, cc, DEFAULT_FLAGS + ("-g",)) != key
    assert build_key(src, cc, tuple(reversed(DEFAULT_FLAGS))) != key


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["truncate", "flip_byte", "no_sidecar", "bad_sidecar"])
def test_damaged_library_is_detected_and_rebuilt(f_source, damage):
    lib = build_shared_library(f_source, name_hint="f")
    sidecar = Path(str(lib) + ".sha256")
    # The library has not been loaded in this test, so changing it in place cannot disturb the process.
    if damage == "truncate":
        with open(lib, "r+b") as fh:
            fh.truncate(lib.stat().st_size // 3)
    elif damage == "flip_byte":
        data = bytearray(lib.read_bytes())
        data[len(data) // 2] ^= 0xFF
        lib.write_bytes(bytes(data))
    elif damage == "no_sidecar":
        sidecar.unlink()
    else:
        sidecar.write_text("0" * 64 + "\n")
    again = build_shared_library(f_source, name_hint="f")
    assert again == lib
    assert [event for event, _ in BUILD_EVENTS] == ["compile", "discard", "compile"]
    assert float(load_function(again, "f")(0.5)) == pytest.approx(
        math.sin(0.5) * 0.5, rel=TOL["compiled_vs_libm_rel"], abs=0.0)


def test_stale_temporaries_are_cleaned(f_source):
    # Leftovers of an interrupted build before the library ever existed ...
    entry = _entry_for(f_source)
    entry.mkdir(mode=0o700)
    (entry / f"{TEMP_PREFIX}out-stale.so").write_bytes(b"half a library")
    (entry / f"{TEMP_PREFIX}src-stale").mkdir()
    (entry / f"{TEMP_PREFIX}src-stale" / "f.c").write_text("int x;\n")
    lib = build_shared_library(f_source, name_hint="f")
    assert lib.parent == entry
    assert sorted(p.name for p in entry.iterdir()) == sorted([".lock", lib.name, lib.name + ".sha256"])
    # ... and ones that appear later are removed on a cache hit too.
    (entry / f"{TEMP_PREFIX}sum-stale").write_text("x")
    assert build_shared_library(f_source, name_hint="f") == lib
    assert [event for event, _ in BUILD_EVENTS] == ["compile", "hit"]
    assert sorted(p.name for p in entry.iterdir()) == sorted([".lock", lib.name, lib.name + ".sha256"])


# --- concurrency --------------------------------------------------------------------------------------------

def _build_in_child(sources, barrier, queue):
    """Runs in a spawned process: wait for the others, build, report the path and this process's events."""
    from symode.codegen import build as child_build

    barrier.wait(timeout=120)
    try:
        path = child_build.build_shared_library(sources, name_hint="f")
        queue.put((str(path), list(BUILD_EVENTS), None))
    except Exception as exc:  # reported to the parent, which fails the test
        queue.put((None, list(BUILD_EVENTS), repr(exc)))


@pytest.mark.slow
def test_concurrent_builds_compile_once(f_source, tmp_path, monkeypatch):
    # A compiler wrapper that records each compile (not --version) and takes >= 1 s, so the three builds,
    # released together by the barrier, certainly overlap; the real cc does the compiling.
    calls = tmp_path / "compile-calls.log"
    real_cc = shutil.which("cc")
    wrapper = _write_script(tmp_path / "slowcc", (
        "#!/bin/sh\n"
        f'if [ "$1" != "--version" ]; then echo "$$" >> "{calls}"; sleep 1; fi\n'
        f'exec "{real_cc}" "$@"\n'
    ))
    monkeypatch.setenv("SYMODE_CC", str(wrapper))
    n = 3
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(n)
    queue = ctx.Queue()
    procs = [ctx.Process(target=_build_in_child, args=(f_source, barrier, queue)) for _ in range(n)]
    for p in procs:
        p.start()
    try:
        results = [queue.get(timeout=180) for _ in range(n)]
    finally:
        for p in procs:
            p.join(timeout=60)
    assert all(p.exitcode == 0 for p in procs)
    assert [err for _, _, err in results] == [None] * n
    assert len({path for path, _, _ in results}) == 1
    kinds = sorted(event for _, events, _ in results for event, _ in events)
    assert kinds == ["compile", "hit", "hit"]
    # Observed independently of the module's own events: the compiler ran exactly once.
    assert len(calls.read_text().split()) == 1
    lib = Path(results[0][0])
    assert float(load_function(lib, "f")(0.5)) == pytest.approx(
        math.sin(0.5) * 0.5, rel=TOL["compiled_vs_libm_rel"], abs=0.0)


@pytest.mark.slow
def test_concurrent_builds_in_threads_compile_once(f_source, tmp_path, monkeypatch):
    # Same as above within one process: each call opens the lock file itself, so flock serializes threads too.
    calls = tmp_path / "compile-calls.log"
    wrapper = _write_script(tmp_path / "slowcc", (
        "#!/bin/sh\n"
        f'if [ "$1" != "--version" ]; then echo "$$" >> "{calls}"; sleep 1; fi\n'
        f'exec "{shutil.which("cc")}" "$@"\n'
    ))
    monkeypatch.setenv("SYMODE_CC", str(wrapper))
    n = 3
    barrier = threading.Barrier(n)

    def run():
        barrier.wait(timeout=60)
        return build_shared_library(f_source, name_hint="f")

    with concurrent.futures.ThreadPoolExecutor(n) as pool:
        paths = [fut.result(timeout=120) for fut in [pool.submit(run) for _ in range(n)]]
    assert len(set(paths)) == 1
    assert sorted(event for event, _ in BUILD_EVENTS) == ["compile", "hit", "hit"]
    assert len(calls.read_text().split()) == 1


# --- compiler lookup and failures ---------------------------------------------------------------------------

def test_missing_compiler(f_source, monkeypatch):
    monkeypatch.setenv("SYMODE_CC", "/nonexistent/cc")
    with pytest.raises(CompilerNotFound) as info:
        find_compiler()
    assert "/nonexistent/cc" in str(info.value) and "SYMODE_CC" in str(info.value)
    with pytest.raises(CompilerNotFound, match="SYMODE_CC"):
        build_shared_library(f_source)
    assert not BUILD_EVENTS


def test_missing_compiler_from_cc_variable(monkeypatch):
    monkeypatch.setenv("CC", "/nonexistent/gcc")
    with pytest.raises(CompilerNotFound) as info:
        find_compiler()
    assert "/nonexistent/gcc" in str(info.value) and "SYMODE_CC" in str(info.value)


def test_symode_cc_overrides_cc(monkeypatch):
    monkeypatch.setenv("CC", "/nonexistent/gcc")
    monkeypatch.setenv("SYMODE_CC", shutil.which("cc"))
    assert find_compiler() == os.path.abspath(shutil.which("cc"))


def _cc_log(tmp_path: Path, name: str, text: str, flags) -> str:
    """Compile directly with the real cc, as an independent reference for the expected compiler log."""
    d = tmp_path / "direct"
    d.mkdir(exist_ok=True)
    (d / name).write_text(text)
    proc = subprocess.run([shutil.which("cc"), *flags, "-o", str(d / "out.so"), name, "-lm"], cwd=d,
                          capture_output=True, env={**os.environ, "LC_ALL": "C"})
    assert proc.returncode != 0
    return (proc.stdout + proc.stderr).decode()


BAD_SYNTAX = "double f(double x) { return x +; }\n\ndouble g(double x) { return y; }\n"
ONLY_A_WARNING = "double f(double x) { int unused; return x; }\n"


@pytest.mark.parametrize("text", [BAD_SYNTAX, ONLY_A_WARNING], ids=["syntax_error", "warning_as_error"])
def test_compile_failure_keeps_full_log_and_leaves_nothing(tmp_path, text):
    sources = {"bad.c": text}
    with pytest.raises(BuildError) as info:
        build_shared_library(sources, name_hint="bad")
    err = info.value
    reference = _cc_log(tmp_path, "bad.c", text, DEFAULT_FLAGS)
    assert err.log == reference  # the full log, exactly what cc prints
    first_error = next(line.strip() for line in reference.splitlines() if "error" in line)
    assert first_error in str(err)
    if text is BAD_SYNTAX:  # both errors are in the log, though only the first is in the message
        assert "expected expression" in err.log and "'y' undeclared" in err.log
    entry = _entry_for(sources)
    assert [p.name for p in entry.iterdir()] == [".lock"]


def test_warning_alone_compiles_without_werror():
    # The contrast to the test above: the same code is accepted once -Werror is dropped, so it was the
    # warning (turned into an error by the default flags) that failed it.
    flags = tuple(f for f in DEFAULT_FLAGS if f != "-Werror")
    lib = build_shared_library({"warn.c": ONLY_A_WARNING}, name_hint="warn", flags=flags)
    assert lib.is_file()


@pytest.mark.slow
def test_compile_timeout_kills_process_group(f_source, tmp_path, monkeypatch):
    pids = tmp_path / "pids"
    fake = _write_script(tmp_path / "hangcc", (
        "#!/bin/sh\n"
        'if [ "$1" = "--version" ]; then echo "hangcc 1.0"; exit 0; fi\n'
        "sleep 300 &\n"
        f'echo "$! $$" > "{pids}"\n'
        "sleep 300\n"
    ))
    monkeypatch.setenv("SYMODE_CC", str(fake))
    start = time.monotonic()
    with pytest.raises(BuildError) as info:
        build_shared_library(f_source, name_hint="f", timeout=1)
    elapsed = time.monotonic() - start
    assert elapsed < TOL["timeout_return_s"]
    message = str(info.value)
    assert "timeout of 1 s" in message and "-O1" in message and "in process" in message
    child, shell = (int(p) for p in pids.read_text().split())
    deadline = time.monotonic() + TOL["reap_wait_s"]
    while not (_process_gone(child) and _process_gone(shell)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _process_gone(shell), "the compiler process survived the timeout"
    assert _process_gone(child), "the compiler's child survived: the process group was not killed"
    entry = _entry_for(f_source)
    assert [p.name for p in entry.iterdir()] == [".lock"]


# --- flags --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("flag", sorted(FORBIDDEN_FLAGS) + ["-fdenormal-fp-math=preserve-sign"])
def test_forbidden_flags_are_refused(f_source, flag, private_cache):
    with pytest.raises(BuildError) as info:
        build_shared_library(f_source, flags=DEFAULT_FLAGS + (flag,))
    assert repr(flag) in str(info.value)
    assert not BUILD_EVENTS and not private_cache.exists()  # refused before anything was written


def test_forbidden_flag_hidden_in_a_word_list_is_refused(f_source):
    with pytest.raises(BuildError, match="-ffast-math"):
        build_shared_library(f_source, flags=("-O2 -ffast-math",) + DEFAULT_FLAGS[1:])


@pytest.mark.parametrize("flags", [("-O2", "-fPIC", "-std=c99"), DEFAULT_FLAGS + ("-o", "x.so"),
                                   DEFAULT_FLAGS + ("@flags.txt",)], ids=["no_shared", "output", "response_file"])
def test_flags_that_break_the_build_conventions_are_refused(f_source, flags):
    with pytest.raises(BuildError):
        build_shared_library(f_source, flags=flags)
    assert not BUILD_EVENTS


@pytest.mark.parametrize("name", ["../f.c", "sub/f.c", "-f.c", ".f.c", "f.txt", "f"])
def test_bad_source_names_are_refused(f_source, name):
    with pytest.raises(BuildError, match="source file name"):
        build_shared_library({name: f_source["f.c"]})


# --- cache directory ----------------------------------------------------------------------------------------

def test_cache_dir_created_private(tmp_path, monkeypatch):
    root = tmp_path / "new" / "cache"
    monkeypatch.setenv("SYMODE_CACHE_DIR", str(root))
    assert cache_dir() == root
    assert stat.S_IMODE(root.stat().st_mode) == 0o700


def test_cache_dir_fallbacks(tmp_path, monkeypatch):
    monkeypatch.delenv("SYMODE_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "symode"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "symode"
    assert stat.S_IMODE((tmp_path / "home" / ".cache" / "symode").stat().st_mode) == 0o700


@pytest.mark.parametrize("mode", [0o770, 0o707, 0o777])
def test_writable_cache_dir_refused(f_source, tmp_path, monkeypatch, mode):
    root = tmp_path / "shared-cache"
    root.mkdir()
    root.chmod(mode)
    monkeypatch.setenv("SYMODE_CACHE_DIR", str(root))
    with pytest.raises(BuildError) as info:
        cache_dir()
    assert str(root) in str(info.value) and "chmod 700" in str(info.value)
    with pytest.raises(BuildError, match="writable"):
        build_shared_library(f_source)
    assert list(root.iterdir()) == []


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0,
                    reason="creating a directory owned by another user needs root")
def test_cache_dir_owned_by_another_user_refused(tmp_path, monkeypatch):
    root = tmp_path / "foreign"
    root.mkdir(mode=0o700)
    os.chown(root, 65534, 65534)  # nobody
    monkeypatch.setenv("SYMODE_CACHE_DIR", str(root))
    with pytest.raises(BuildError, match="SYMODE_CACHE_DIR to a directory you own"):
        cache_dir()
