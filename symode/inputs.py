"""Reading files a user names (spec files, parameter JSON, golden files): bounded, regular files only.

:func:`read_user_file` opens without blocking (a FIFO with no writer would otherwise hang the open), refuses
anything that is not a regular file (``/dev/zero``, a FIFO, a socket, a directory, a terminal) before reading a
byte, and reads at most ``max_bytes`` (a growing file or a ``/proc`` file reporting size 0 cannot make it read
more).  :func:`user_text` decodes UTF-8 with an optional byte-order mark.  (The parameter files' JSON is read
by :func:`symode.arrays.values.read_json_values`.)  :func:`read_json_file` reads a JSON file that way and parses
it strictly: numbers as exact decimals, no NaN/Infinity, no key given twice, nesting and integer sizes bounded.
"""
from __future__ import annotations

import json
import os
import stat
from decimal import Decimal

from .errors import SpecError

__all__ = ["read_user_file", "user_text", "read_json_file", "no_duplicate_keys"]

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


def no_duplicate_keys(pairs) -> dict:
    """``object_pairs_hook`` for :func:`json.loads`: a key given twice is an error, not "the last one wins"."""
    out = {}
    for k, v in pairs:
        if k in out:
            raise SpecError(f"the name {k!r} is given twice")
        out[k] = v
    return out


def _not_a_number(name: str):
    raise SpecError(f"{name} is not a finite number; give finite decimals")


def read_json_file(path, what: str, max_bytes: int):
    """The JSON value in the regular file ``path`` (read as :func:`read_user_file` does), parsed strictly:
    non-integer numbers as exact :class:`~decimal.Decimal`, integers as int (more than Python's 4300 digits is
    an error), NaN/Infinity refused, a key given twice refused, nesting beyond the parser's recursion refused.
    Every failure is a :class:`SpecError` naming ``what`` and ``path``."""
    text = user_text(read_user_file(path, what, max_bytes), f"{what} {path}")
    try:
        return json.loads(text, parse_float=Decimal, parse_constant=_not_a_number, object_pairs_hook=no_duplicate_keys)
    except SpecError as exc:
        raise SpecError(f"{what} {path}: {exc}") from None
    except RecursionError:
        raise SpecError(f"{what} {path}: JSON nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, an integer beyond Python's digit limit
        raise SpecError(f"{what} {path}: invalid JSON ({str(exc).splitlines()[0][:120]})") from None
