"""Process helpers that outlive nothing: :func:`die_with_parent`, and a supervisor for one compiler command.

A neutral module (standard library only; every layer may use it): the budget's child processes
(:mod:`symode.symbolic.budget`) and the compiler (:mod:`symode.codegen.compiler`) both die with their parent.

Run as a script, it supervises one compiler command so that neither it nor anything it starts outlives the
process that asked for it.  Started by :func:`symode.codegen.compiler.run_supervised` as ``python -I -S supervise.py PARENT CPU CMD...``
in a new process group that it leads.  It

1. asks the kernel for SIGTERM when its parent dies (``PR_SET_PDEATHSIG``, Linux), for any reason, SIGKILL
   included, and checks that the parent ``PARENT`` has not died already;
2. limits every process of the group to ``CPU`` seconds of CPU time (``RLIMIT_CPU`` is inherited by the
   compiler's own children: ``cc1``, ``as``, ``ld``), a backstop behind the caller's wall-time limit;
3. starts ``CMD`` in this process group (the compiler's children stay in it too) and waits for it;
4. on SIGTERM (its parent died, or the caller is stopping the compile) kills the whole group with SIGKILL,
   itself included.

It exits with the compiler's exit status, or dies by the signal that killed the compiler, so the caller sees
the compiler's status.  If ``CMD`` cannot be started it prints ``symode-supervise: cannot run ...`` and exits
with status 127.  Standard library only (it runs with ``-I -S``, outside symode's environment).
"""
from __future__ import annotations

import os
import signal
import sys

#: First words of the line printed when the command cannot be started.
CANNOT_RUN = "symode-supervise: cannot run"


def _stop(signum, frame) -> None:
    """Kill the whole process group (the compiler, its children and this process)."""
    os.killpg(0, signal.SIGKILL)
    os._exit(128 + signum)  # not reached: SIGKILL above includes this process


def die_with_parent(parent: int, sig: int) -> bool:
    """Linux: have the kernel send ``sig`` to this process when its parent dies (even by SIGKILL, which skips
    the parent's cleanup).  Returns False if the parent ``parent`` has already died (then the request came too
    late and the caller must act itself)."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, int(sig), 0, 0, 0)  # PR_SET_PDEATHSIG = 1
        except (OSError, AttributeError):
            pass
    return os.getppid() == parent


def main(argv: list[str]) -> int:
    parent, cpu_seconds, cmd = int(argv[1]), int(argv[2]), argv[3:]
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGHUP, _stop)
    if not die_with_parent(parent, signal.SIGTERM):
        _stop(signal.SIGTERM, None)
    try:
        import resource
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 5))
    except (ImportError, ValueError, OSError):
        pass
    try:
        pid = os.posix_spawn(cmd[0], cmd, os.environ)
    except OSError as exc:
        print(f"{CANNOT_RUN} {cmd[0]}: {exc.strerror or exc}", flush=True)
        return 127
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):  # die the same way, so the caller sees the compiler's signal
        sig = os.WTERMSIG(status)
        signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
