"""Write a directory of generated files all at once (second of three stages: text -> files -> build).

:func:`write_directory` puts every file into a fresh temporary directory next to the target, flushes them to
disk, and only then renames the temporary directory onto the target.  A failure at any point before that
rename (an unwritable location, a bad file name, an exception while producing the files, a full disk) leaves
the target exactly as it was -- absent, or the previous complete output -- and removes the temporary
directory.

Replacing an existing target takes two renames (target -> a temporary name, new -> target; then the old copy
is removed), because POSIX ``rename`` cannot replace a non-empty directory: between the two renames the target
is briefly absent, never half-written.  If the second rename fails the old copy is moved back.

Only directories that symode wrote are replaced: an existing target must be empty or hold the marker file
:data:`MARKER` that every write puts there, so a mistyped ``--out`` cannot wipe an unrelated directory.
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Mapping

from ..errors import BuildError

__all__ = ["MARKER", "MARKER_TEXT", "TEMP_PREFIX", "write_directory"]

#: Written at the top of every directory :func:`write_directory` creates; its presence allows replacing it.
MARKER = "SYMODE-GENERATED"
MARKER_TEXT = (b"This directory was written by symode (symode.codegen.write) and is replaced as a whole\n"
               b"when it is generated again: do not edit files here, and keep nothing else in it.\n")

#: Temporary directories next to the target start with this (followed by the target's name).
TEMP_PREFIX = ".symode-tmp-"

_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,99}")


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


def write_directory(files: Mapping[str, bytes], target, *, replace: bool = True) -> Path:
    """Write ``files`` (relative path -> bytes) as the directory ``target``, all or nothing; return its path.

    The directory also receives :data:`MARKER`.  An existing ``target`` is replaced when ``replace`` is true and
    it is empty or a previous output (holds :data:`MARKER`); otherwise :class:`BuildError` is raised and nothing
    changes.  Any failure leaves ``target`` as it was and no temporary directory behind.
    """
    target = Path(os.path.abspath(os.fspath(target)))
    if not isinstance(files, Mapping):
        raise BuildError(f"files must be a mapping of relative path -> bytes, not {type(files).__name__}")
    checked = [(name, _check_relpath(name)) for name in files]
    if os.path.lexists(target):
        if not replace:
            raise BuildError(f"{target} already exists; remove it or choose another output directory")
        if not _replaceable(target):
            raise BuildError(f"{target} exists and is not a directory written by symode (no {MARKER} file in it, "
                             "and not empty); choose another output directory or remove it yourself")
    parent = target.parent
    if not parent.is_dir():
        raise BuildError(f"cannot write {target}: its parent {parent} is not an existing directory; create it first")
    try:
        tmp = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX + target.name + "-", dir=parent))
    except OSError as exc:
        raise BuildError(f"cannot write in {parent}: {exc.strerror}; choose a writable output directory") from exc
    old: Path | None = None
    try:
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
        if os.path.lexists(target):
            old = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX + target.name + "-old-", dir=parent))
            os.rename(target, old / "d")
        try:
            os.rename(tmp, target)
        except OSError:
            if old is not None:
                os.rename(old / "d", target)
            raise
        _fsync_dir(parent)
        tmp = None
    except OSError as exc:
        raise BuildError(f"cannot write {target}: {exc.strerror or exc}; nothing was changed there") from exc
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not (old / "d").exists():
            shutil.rmtree(old, ignore_errors=True)
        elif old is not None and os.path.lexists(target):
            shutil.rmtree(old, ignore_errors=True)
        # else: the previous output could not be moved back; it stays at old/d rather than being deleted
    return target
