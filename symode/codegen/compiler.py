"""The C compiler: which one, in what environment, and how it is run.

* :func:`find_compiler` -- ``$SYMODE_CC``, else ``$CC``, else ``cc``, looked up on ``PATH``.
* :func:`compiler_environment` -- the compiler never sees the caller's environment.  It runs with ``PATH``
  (where it finds ``as`` and ``ld``), ``TMPDIR`` (its scratch files) and ``LC_ALL=LANG=C`` (plain English
  diagnostics), nothing else: variables that change what it compiles (``CPATH``, ``C_INCLUDE_PATH``,
  ``LIBRARY_PATH``, ``GCC_EXEC_PREFIX``, ``COMPILER_PATH``, ``LD_LIBRARY_PATH``, ``LD_PRELOAD``, ...) are
  dropped, so a library built from a poisoned shell is the same library a clean shell builds.
  :func:`key_environment` (everything passed but ``TMPDIR``) is part of the cache key.
* :func:`compiler_identity` -- path, resolved path and first ``--version`` line; part of the cache key.
* :func:`run_supervised` -- runs a compiler command under :mod:`symode.supervise` in a process group
  of its own with a wall-time limit: on timeout, on an exception here, or when this process dies (even by
  SIGKILL), the whole group (driver, ``cc1``, ``as``, ``ld``) is killed.
"""
from __future__ import annotations

import functools
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from ..errors import BuildError, CompilerNotFound
from .. import supervise
from ..supervise import CANNOT_RUN

__all__ = ["find_compiler", "compiler_environment", "key_environment", "compiler_identity",
           "native_cpu_identity", "run_supervised", "first_error_line"]

_SUPERVISOR = str(Path(supervise.__file__))
_VERSION_TIMEOUT_S = 30.0
_AFTER_KILL_WAIT_S = 5.0  # after killing the group, wait this long for its output pipe to close
_CPU_GRACE_S = 5  # RLIMIT_CPU of compiler processes = wall-time limit + this (a backstop, see supervise.py)


def find_compiler() -> str:
    """Absolute path of the C compiler: ``$SYMODE_CC`` if set, else ``$CC``, else ``cc``, looked up on PATH.

    Raises CompilerNotFound naming the compiler and the setting that chose it.
    """
    for setting in ("SYMODE_CC", "CC"):
        value = os.environ.get(setting, "")
        if value:
            break
    else:
        setting, value = "", "cc"
    found = shutil.which(value)
    if found is None:
        chosen = f"${setting}={value!r}" if setting else "the default 'cc'"
        raise CompilerNotFound(
            f"C compiler {value!r} not found (chosen by {chosen}); install a C compiler or set SYMODE_CC to "
            "the path of one (a single executable, no arguments)"
        )
    return os.path.abspath(found)


def compiler_environment() -> dict[str, str]:
    """The whole environment the compiler runs with (see the module docstring)."""
    env = {"PATH": os.environ.get("PATH") or os.defpath, "LC_ALL": "C", "LANG": "C"}
    if os.environ.get("TMPDIR"):
        env["TMPDIR"] = os.environ["TMPDIR"]
    return env


def key_environment() -> str:
    """The part of :func:`compiler_environment` that can change the compiler's output, as text for the key."""
    return "\n".join(f"{k}={v}" for k, v in sorted(compiler_environment().items()) if k != "TMPDIR")


def native_cpu_identity() -> str:
    """This CPU's vendor, model and feature flags (what ``-march=native`` compiles for)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return f"{platform.machine()}\n{platform.processor()}"
    first = text.split("\n\n", 1)[0]
    wanted = ("vendor_id", "model name", "cpu family", "model", "flags", "Features", "CPU part")
    return "\n".join(line.strip() for line in first.splitlines() if line.split(":", 1)[0].strip() in wanted)


def compiler_identity(cc: str) -> str:
    """``"<path>\\n<resolved path>\\n<first line of `cc --version`>"``; part of the cache key.

    Cached per process and environment.  Raises CompilerNotFound if ``cc`` cannot be run, BuildError if it
    does not answer ``--version``.
    """
    return _identity(cc, key_environment())


@functools.lru_cache(maxsize=None)
def _identity(cc: str, _env_key: str) -> str:
    status, out = run_supervised([cc, "--version"], cwd=None, timeout=_VERSION_TIMEOUT_S)
    if status is None:
        raise BuildError(
            f"the C compiler {cc!r} did not answer `--version` within {_VERSION_TIMEOUT_S:g} s; set SYMODE_CC "
            "to a working compiler"
        )
    if status == 127 and out.startswith(CANNOT_RUN):
        raise CompilerNotFound(
            f"cannot run the C compiler {cc!r}: {out.strip().rpartition(': ')[2]}; set SYMODE_CC to a working "
            "compiler"
        )
    first = out.strip().splitlines()[0].strip() if out.strip() else ""
    if status != 0 or not first:
        raise BuildError(
            f"the C compiler {cc!r} failed `--version` (exit status {status}); set SYMODE_CC to a working "
            "compiler",
            log=out,
        )
    return f"{cc}\n{os.path.realpath(cc)}\n{first}"


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run_supervised(cmd: list[str], *, cwd, timeout: float) -> tuple[int | None, str]:
    """Run ``cmd`` (stdout and stderr together) in :func:`compiler_environment` under the supervisor.

    Returns ``(status, output)``: the exit status (negative: killed by that signal), or None if it ran past
    ``timeout`` seconds of wall time and was killed with every process it started.
    """
    cpu = int(timeout) + 1 + _CPU_GRACE_S
    proc = subprocess.Popen(
        [sys.executable, "-I", "-S", _SUPERVISOR, str(os.getpid()), str(cpu), *cmd], cwd=cwd,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        env=compiler_environment(),
    )
    try:
        raw, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        # Kill the whole group: the driver's children (cc1, as, ld) would otherwise keep running and keep
        # the output pipe open.
        _kill_group(proc)
        try:
            raw, _ = proc.communicate(timeout=_AFTER_KILL_WAIT_S)
        except subprocess.TimeoutExpired:  # something left the group and holds the pipe; stop waiting
            proc.kill()
            raw = b""
        return None, raw.decode("utf-8", "replace")
    except BaseException:  # e.g. KeyboardInterrupt: leave no compiler running
        _kill_group(proc)
        proc.wait()
        raise
    return proc.returncode, raw.decode("utf-8", "replace")


def first_error_line(log: str) -> str:
    """The first line of a compiler log that mentions an error (else its first line)."""
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    for line in lines:
        if re.search(r"\berror\b", line, re.IGNORECASE):
            return line
    return lines[0] if lines else "(the compiler printed nothing)"
