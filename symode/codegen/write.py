"""Write a directory of generated files all at once (second of three stages: text -> files -> build).

:func:`write_directory` puts every file into a fresh temporary directory next to the target, flushes them to
disk, and only then moves the temporary directory onto the target.  A failure at any point before that move
(an unwritable location, a bad file name, an exception while producing the files, a full disk) leaves the
target exactly as it was -- absent, or the previous complete output -- and removes the temporary directory.

An existing target is replaced by one atomic exchange of the two directories (Linux ``renameat2`` with
``RENAME_EXCHANGE``): at every instant the target is the complete old output or the complete new one, even if
the process is killed.  Where the kernel or file system cannot exchange, two renames are used (target -> a
temporary name, new -> target); a kill between them leaves the old output at the temporary name, and the next
write into the same directory moves it back first.

A process killed while writing leaves temporary directories (``.symode-tmp-<name>-new-XXXXXXXX`` and, with the
two-rename fallback, ``.symode-tmp-<name>-old-XXXXXXXX``).  Every write holds an exclusive ``flock`` on the
parent directory, so when a write starts no other write is running there and every temporary directory it
finds is a leftover: an old output whose target is missing is moved back, the rest are removed.

Only directories that symode wrote are replaced: an existing target must be empty or hold the marker file
:data:`MARKER` that every write puts there, so a mistyped ``--out`` cannot wipe an unrelated directory.
"""
from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import re
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Mapping

from ..errors import BuildError

__all__ = ["MARKER", "MARKER_TEXT", "TEMP_PREFIX", "write_directory", "clean_leftovers"]

#: Written at the top of every directory :func:`write_directory` creates; its presence allows replacing it.
MARKER = "SYMODE-GENERATED"
MARKER_TEXT = (b"This directory was written by symode (symode.codegen.write) and is replaced as a whole\n"
               b"when it is generated again: do not edit files here, and keep nothing else in it.\n")

#: Temporary directories next to the target start with this (followed by the target's name).
TEMP_PREFIX = ".symode-tmp-"

_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,99}")
# A temporary directory: TEMP_PREFIX, the target's name, "-new-" or "-old-", tempfile's 8 random characters.
# (Older versions wrote "<name>-XXXXXXXX" for new ones; those are recognized as leftovers too.)
_LEFTOVER = re.compile(r"(?P<name>.+?)(?:-(?P<kind>new|old))?-[a-z0-9_]{8}", re.DOTALL)


def _check_relpath(name: str) -> tuple[str, ...]:
    if not isinstance(name, str):
        raise BuildError(f"file name {name!r} is not a string")
    parts = tuple(name.split("/"))
    if not all(_PART.fullmatch(p) for p in parts) or any(p in (".", "..") for p in parts) or name == MARKER:
        raise BuildError(f"file name {name!r} is not allowed: use relative paths of plain names (letters, digits, "
                         f"'_', '-', '.', not starting with '.' or '-'), separated by '/', other than {MARKER}")
    return parts


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _replaceable(target: Path) -> bool:
    """True if ``target`` is a directory that is empty or carries :data:`MARKER` (a previous symode output)."""
    if target.is_symlink() or not target.is_dir():
        return False
    try:
        entries = os.listdir(target)
    except OSError:
        return False
    return not entries or (target / MARKER).is_file()


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap the directories ``a`` and ``b``; False if this kernel or file system cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    rc = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _ours(path: Path) -> bool:
    """A real directory (not a link) owned by this user: the only kind of leftover that is touched."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid()


def clean_leftovers(parent: Path) -> None:
    """Repair and remove what killed writes left in ``parent``.  The caller holds the parent's lock.

    An ``-old-`` directory whose target is missing holds the only copy of that target (killed between the two
    renames of the fallback): it is moved back.  Every other temporary directory is removed.
    """
    try:
        names = [n for n in os.listdir(parent) if n.startswith(TEMP_PREFIX)]
    except OSError:
        return
    for n in sorted(names):
        path = parent / n
        m = _LEFTOVER.fullmatch(n[len(TEMP_PREFIX):])
        if m is None or not _ours(path):
            continue
        saved = path / "d"
        target = parent / m["name"]
        if m["kind"] == "old" and _ours(saved) and not os.path.lexists(target):
            try:
                os.rename(saved, target)
            except OSError:
                continue  # leave it: it is someone's only copy
        shutil.rmtree(path, ignore_errors=True)


class _ParentLock:
    """Exclusive ``flock`` on the parent directory for one write (no lock file is created)."""

    def __init__(self, parent: Path):
        self.fd: int | None = None
        try:
            self.fd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        except OSError:  # unreadable parent: write without the lock (and without cleaning)
            self.close()

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _write_tree(tmp: Path, files: Mapping[str, bytes], checked: list) -> None:
    os.chmod(tmp, 0o755)  # mkdtemp makes 0700; the output is an ordinary directory
    for name, parts in [(MARKER, (MARKER,)), *checked]:
        data = MARKER_TEXT if name == MARKER else files[name]
        if not isinstance(data, (bytes, bytearray)):
            raise BuildError(f"content of {name!r} must be bytes, not {type(data).__name__}")
        path = tmp.joinpath(*parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    for d in sorted({tmp.joinpath(*parts[:-1]) for _, parts in checked}, key=lambda p: -len(p.parts)):
        _fsync_dir(d)
    _fsync_dir(tmp)


def _move_into_place(tmp: Path, target: Path) -> Path | None:
    """Put ``tmp`` at ``target``; return the directory that now holds the old output (to remove), if any."""
    parent = target.parent
    if not os.path.lexists(target):
        os.rename(tmp, target)
        return None
    if _exchange(tmp, target):
        return tmp  # the old output now lives at tmp's name
    old = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX + target.name + "-old-", dir=parent))
    os.rename(target, old / "d")
    try:
        os.rename(tmp, target)
    except OSError:
        os.rename(old / "d", target)
        raise
    return old


def write_directory(files: Mapping[str, bytes], target, *, replace: bool = True) -> Path:
    """Write ``files`` (relative path -> bytes) as the directory ``target``, all or nothing; return its path.

    The directory also receives :data:`MARKER`.  An existing ``target`` is replaced when ``replace`` is true and
    it is empty or a previous output (holds :data:`MARKER`); otherwise :class:`BuildError` is raised and nothing
    changes.  Any failure leaves ``target`` as it was and no temporary directory behind; leftovers of killed
    writes in the same parent are repaired or removed first.
    """
    target = Path(os.path.abspath(os.fspath(target)))
    if not isinstance(files, Mapping):
        raise BuildError(f"files must be a mapping of relative path -> bytes, not {type(files).__name__}")
    checked = [(name, _check_relpath(name)) for name in files]
    parent = target.parent
    if not parent.is_dir():
        raise BuildError(f"cannot write {target}: its parent {parent} is not an existing directory; create it first")
    lock = _ParentLock(parent)
    try:
        if lock.fd is not None:
            clean_leftovers(parent)
        if os.path.lexists(target):
            if not replace:
                raise BuildError(f"{target} already exists; remove it or choose another output directory")
            if not _replaceable(target):
                raise BuildError(f"{target} exists and is not a directory written by symode (no {MARKER} file in "
                                 "it, and not empty); choose another output directory or remove it yourself")
        _write_locked(files, checked, target)
    finally:
        lock.close()
    return target


def _write_locked(files: Mapping[str, bytes], checked: list, target: Path) -> None:
    parent = target.parent
    try:
        tmp: Path | None = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX + target.name + "-new-", dir=parent))
    except OSError as exc:
        raise BuildError(f"cannot write in {parent}: {exc.strerror}; choose a writable output directory") from exc
    old: Path | None = None
    try:
        _write_tree(tmp, files, checked)
        old = _move_into_place(tmp, target)
        tmp = None
        _fsync_dir(parent)
    except OSError as exc:
        raise BuildError(f"cannot write {target}: {exc.strerror or exc}; nothing was changed there") from exc
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
