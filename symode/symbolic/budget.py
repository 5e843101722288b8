"""Run a symbolic computation under a wall-time and memory budget.

SymPy can take unbounded time and memory on hostile or merely unlucky input (``dsolve`` on a hard equation, an
expansion that explodes).  :func:`call_with_budget` runs the function in a forked child process with an address
space limit and kills it when the time is up, so a derivation of an untrusted spec always ends.
"""
from __future__ import annotations

import functools
import math
import multiprocessing
import os
import pickle
import signal
import sys
import traceback

from ..errors import DerivationError

#: Defaults for one budgeted derivation step; each is overridable per call.
DEFAULT_SECONDS = 120.0   # dsolve / integrate on the built-in models finish in a few seconds each
DEFAULT_MEMORY_MB = 4096  # a legitimate derivation here stays far below; an explosion hits this quickly

#: True inside a budgeted child: nested budgets then stay in the outermost child's process group, so the
#: outermost parent's killpg ends every descendant (a nested group leader would escape it and run on).
_IN_BUDGET = False


#: Largest budget accepted (30 days): beyond it the value is a typo, and the waits cannot represent it anyway.
MAX_SECONDS = 30 * 24 * 3600.0
MAX_MEMORY_MB = 1 << 30  # 1 PiB: far above any machine, below the address-space limit's overflow


def budget_from_env(default_seconds: float = 300.0, default_memory_mb: int = DEFAULT_MEMORY_MB) -> tuple:
    """(seconds, MiB) for work on untrusted input: SYMODE_DERIVE_SECONDS and SYMODE_DERIVE_MEMORY_MB.

    Unset or empty means the default.  Seconds must be a finite number in (0, MAX_SECONDS]; MiB a whole
    number in [1, MAX_MEMORY_MB].  Anything else (``nan``, ``inf``, ``1e309``, ``0``, ``-1``, ``4.5`` MiB,
    text) is a SpecError naming the variable: a budget never silently turns off.
    """
    return (_env_number("SYMODE_DERIVE_SECONDS", default_seconds, integer=False, high=MAX_SECONDS),
            _env_number("SYMODE_DERIVE_MEMORY_MB", default_memory_mb, integer=True, high=MAX_MEMORY_MB))


def _env_number(name: str, default, *, integer: bool, high: float):
    from ..errors import SpecError
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    unit = "a whole number of MiB" if integer else "a number of seconds"
    try:
        value = int(text) if integer else float(text)
    except ValueError:
        value = None
    if value is None or not math.isfinite(value) or not 0 < value <= high:
        raise SpecError(f"{name}={text[:40]!r} is not a valid budget: give {unit} greater than 0 and at most "
                        f"{high:.0f}, or unset it for the default ({default:g})")
    return value


class BudgetExceeded(DerivationError):
    """The computation ran past its time or memory budget."""


def _die_with_parent(parent: int) -> None:
    """SIGKILL this process when its parent dies, so a killed CLI never leaves a budgeted computation running."""
    from ..supervise import die_with_parent
    if not die_with_parent(parent, signal.SIGKILL):
        os._exit(1)


def _address_space() -> int:
    """This process's address space in bytes (Linux /proc; 0 where it cannot be read)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _child(conn, fn, args, memory_mb, parent):
    global _IN_BUDGET
    _die_with_parent(parent)
    if not _IN_BUDGET:
        os.setpgid(0, 0)  # the outermost child leads a process group: its parent kills all descendants at once
        _IN_BUDGET = True
    try:
        if memory_mb and sys.platform.startswith("linux"):
            import resource
            limit = memory_mb * 1024 * 1024
            _, hard = resource.getrlimit(resource.RLIMIT_AS)
            if hard != resource.RLIM_INFINITY:  # already limited (ulimit -v): a budget only ever tightens it
                limit = min(limit, hard)
            if _address_space() >= limit:
                # the forked child already holds more than the budget: every allocation would fail somewhere,
                # some inside C code that reports it as another error; the budget is exhausted before any work
                raise MemoryError
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        result = ("ok", fn(*args))
    except MemoryError:
        result = ("memory", None)
    except BaseException as exc:  # report every failure to the parent, which re-raises it
        result = ("error", (exc, traceback.format_exc()))
    try:
        conn.send_bytes(pickle.dumps(result))
    except Exception as exc:  # an unpicklable result: say so instead of dying silently
        conn.send_bytes(pickle.dumps(("error", (DerivationError(f"result not transferable: {exc}"), ""))))
    conn.close()


def call_with_budget(fn, *args, seconds: float = DEFAULT_SECONDS, memory_mb: int = DEFAULT_MEMORY_MB,
                     what: str = "symbolic derivation", kwargs: dict | None = None):
    """``fn(*args, **kwargs)`` in a forked child limited to ``seconds`` of wall time and ``memory_mb`` of address space.

    Raises :class:`BudgetExceeded` naming ``what`` and the budget when a limit is hit; re-raises the child's own
    exception otherwise.  Where ``fork`` is unavailable the call runs in process without limits.
    """
    if kwargs:
        fn = functools.partial(fn, **kwargs)
    if "fork" not in multiprocessing.get_all_start_methods():
        return fn(*args)
    ctx = multiprocessing.get_context("fork")
    recv, send = ctx.Pipe(duplex=False)
    # not a daemon: a budgeted step may itself run budgeted steps (derive -> closed form); the parent
    # always kills and reaps it in the finally block below
    proc = ctx.Process(target=_child, args=(send, fn, args, memory_mb, os.getpid()), daemon=False)
    proc.start()
    send.close()
    try:
        if not recv.poll(seconds):
            raise BudgetExceeded(f"{what} exceeded its time budget of {seconds:g} s: simplify the model or raise "
                                 f"the budget (SYMODE_DERIVE_SECONDS)")
        try:
            status, payload = pickle.loads(recv.recv_bytes())
        except EOFError:
            raise BudgetExceeded(f"{what} died (out of its {memory_mb} MiB memory budget or killed); "
                                 f"simplify the model or raise the budget") from None
    finally:
        if not _IN_BUDGET:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # the child and everything it started
            except (ProcessLookupError, PermissionError):
                pass
        try:
            os.kill(proc.pid, signal.SIGKILL)  # nested: our own child only (the outer parent's killpg covers the rest)
        except (ProcessLookupError, PermissionError):
            pass
        proc.join()
        recv.close()
    if status == "ok":
        return payload
    if status == "memory":
        raise BudgetExceeded(f"{what} exceeded its memory budget of {memory_mb} MiB: simplify the model or "
                             f"raise the budget (SYMODE_DERIVE_MEMORY_MB)")
    exc, tb = payload
    if hasattr(exc, "add_note") and tb:
        exc.add_note(f"raised in the budgeted child process:\n{tb}")
    raise exc
