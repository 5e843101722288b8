"""Reading files a user names (spec files, parameter JSON, golden files): bounded, regular files only.

:func:`read_user_file` opens without blocking (a FIFO with no writer would otherwise hang the open), refuses
anything that is not a regular file (``/dev/zero``, a FIFO, a socket, a directory, a terminal) before reading a
byte, and reads at most ``max_bytes`` (a growing file or a ``/proc`` file reporting size 0 cannot make it read
more).  :func:`user_text` decodes UTF-8 with an optional byte-order mark.  (The parameter files' JSON is read
by :func:`symode.arrays.values.read_json_values`.)
"""
from __future__ import annotations

import os
import stat

from .errors import SpecError

__all__ = ["read_user_file", "user_text"]

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def read_user_file(path, what: str, max_bytes: int) -> bytes:
    """The bytes of the regular file ``path``, at most ``max_bytes`` of them (else :class:`SpecError`).

    ``what`` names the file in messages (``"spec file"``, ``"--params-json"``).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise SpecError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = next((name for test, name in _KINDS if test(st.st_mode)), "not a regular file")
            raise SpecError(f"{what} {path} is {kind}, not a regular file; give the path of a file")
        if st.st_size > max_bytes:
            raise SpecError(f"{what} {path} is larger than {max_bytes} bytes")
        chunks, total = [], 0
        while total <= max_bytes:
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > max_bytes:
            raise SpecError(f"{what} {path} is larger than {max_bytes} bytes")
        return b"".join(chunks)
    except OSError as exc:
        raise SpecError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def user_text(data: bytes, source: str) -> str:
    """UTF-8 text of ``data``; a leading byte-order mark (as some editors write) is dropped."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SpecError(f"{source}: not UTF-8 text (byte {exc.start}: {data[exc.start:exc.start + 1]!r}); "
                        "save the file as UTF-8") from None
