"""Capture of C-level output around a call: CasADi's and SUNDIALS's messages are quoted in errors, not printed.

Output capture redirects the process's file descriptors 1 and 2 (and Python's ``sys.stdout``/``sys.stderr``)
for the duration of a call.  Both are process-wide, so captures are serialized by one re-entrant lock
(:data:`_CAPTURE_LOCK`): without it two threads' swaps interleave, and the second to finish "restores" the
first one's temporary file, leaving the process's stdout and stderr pointing at a deleted file for good.  A
thread that captures waits for another thread's capture to end (a nested capture in the same thread does
not); output that other threads print in a capture's window is captured with it.
"""
from __future__ import annotations

import contextlib
import ctypes
import io
import os
import sys
import tempfile
import threading

try:
    _LIBC = ctypes.CDLL(None)
except OSError:  # pragma: no cover - every Linux/macOS Python has a C library to load
    _LIBC = None


def _flush_all():
    """Flush Python's and C's stdio buffers (C++ iostreams are synced to stdio), so that nothing written
    while the descriptors were redirected comes out later, and nothing from before gets captured."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, ValueError):
            pass
    if _LIBC is not None:
        _LIBC.fflush(None)


#: Held for the whole of every capture: the descriptor swap and its undoing are one critical section.
_CAPTURE_LOCK = threading.RLock()


@contextlib.contextmanager
def _captured_output():
    """Redirect file descriptors 1 and 2 (C-level stdout/stderr) to a temporary file; yields a box whose
    "text" holds what was written once the block has ended.  Serialized across threads (see the module
    docstring)."""
    with _CAPTURE_LOCK:
        with _swapped() as box:
            yield box


@contextlib.contextmanager
def _swapped():
    _flush_all()
    tmp = tempfile.TemporaryFile(mode="w+b")
    saved = [os.dup(1), os.dup(2)]
    box = {"text": ""}
    # CasADi's own messages go through Python's sys.stdout/sys.stderr objects (which need not write to fd 1
    # or 2, e.g. under pytest), SUNDIALS's through C stdio: capture both
    py_text = io.StringIO()
    try:
        os.dup2(tmp.fileno(), 1)
        os.dup2(tmp.fileno(), 2)
        with contextlib.redirect_stdout(py_text), contextlib.redirect_stderr(py_text):
            yield box
    finally:
        _flush_all()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])
        tmp.seek(0)
        box["text"] = tmp.read().decode("utf-8", "replace") + py_text.getvalue()
        tmp.close()

