"""The build cache on disk: where it is, who may own what in it, and the sha256 sidecars.

Layout (the key is :func:`symode.codegen.build.build_key`)::

    cache_dir()/<key[:32]>/.lock                              flock held around check + build
    cache_dir()/<key[:32]>/<name_hint>-<key[:16]>.so          the library, moved into place atomically
    cache_dir()/<key[:32]>/<name_hint>-<key[:16]>.so.sha256   sha256 of the .so bytes, written after it

Libraries in the cache are loaded into this process, so every level is checked before it is used: the root,
each entry directory and each file in an entry must be owned by the current user, must not be writable by
group or others, and must not be a symbolic link (:func:`check_private`).  A library is loaded only with a
sidecar whose hash matches its bytes (:func:`library_intact`).  Files are opened with ``O_NOFOLLOW``.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import stat
from pathlib import Path

from ..errors import BuildError

__all__ = ["TEMP_PREFIX", "cache_dir", "check_private", "check_entry", "open_lock", "sidecar",
           "library_intact", "remove_stale_temps"]

#: Names of temporary files and directories inside a cache entry start with this.
TEMP_PREFIX = ".tmp-"


def cache_dir() -> Path:
    """The root of the build cache, created with mode 0700 if missing.

    ``$SYMODE_CACHE_DIR`` if set and non-empty, else ``$XDG_CACHE_HOME/symode`` (when that is an absolute
    path, as the XDG specification requires), else ``~/.cache/symode``.

    Raises BuildError if the directory is a symbolic link or not a directory, is group- or world-writable, or
    is not owned by the current user: anyone who can write there could substitute a library that this process
    then loads.
    """
    env = os.environ.get("SYMODE_CACHE_DIR", "")
    if env:
        root = Path(env).expanduser()
    else:
        xdg = os.environ.get("XDG_CACHE_HOME", "")
        base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
        root = base / "symode"
    try:
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = os.lstat(root)
    except OSError as exc:
        raise BuildError(
            f"cannot create the build cache directory {root}: {exc.strerror}; set SYMODE_CACHE_DIR to a "
            "writable directory of your own"
        ) from exc
    if stat.S_ISLNK(st.st_mode):
        raise BuildError(
            f"the build cache {root} is a symbolic link; libraries there are loaded into this process, so set "
            "SYMODE_CACHE_DIR to the real directory (a private one of your own)"
        )
    if not stat.S_ISDIR(st.st_mode):
        raise BuildError(
            f"the build cache {root} is not a directory; set SYMODE_CACHE_DIR to a directory of your own"
        )
    if st.st_uid != os.geteuid():
        raise BuildError(
            f"the build cache {root} is owned by user id {st.st_uid}, not by you (user id {os.geteuid()}); "
            "libraries there are loaded into this process, so set SYMODE_CACHE_DIR to a directory you own"
        )
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise BuildError(
            f"the build cache {root} is group- or world-writable (mode {stat.S_IMODE(st.st_mode):04o}); "
            f"libraries there are loaded into this process, so run `chmod 700 {root}` or set SYMODE_CACHE_DIR "
            "to a private directory"
        )
    return root


def check_private(path: Path, st: os.stat_result, *, directory: bool) -> None:
    """Raise BuildError unless ``st`` (an ``lstat`` of ``path``) is a directory (or a regular file) owned by the
    current user, not a symbolic link and not writable by group or others."""
    kind = "directory" if directory else "regular file"
    why = "a symbolic link" if stat.S_ISLNK(st.st_mode) else None
    if why is None and not (stat.S_ISDIR(st.st_mode) if directory else stat.S_ISREG(st.st_mode)):
        why = f"not a {kind}"
    if why is None and st.st_uid != os.geteuid():
        why = f"owned by user id {st.st_uid}, not by you (user id {os.geteuid()})"
    if why is None and st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        why = f"group- or world-writable (mode {stat.S_IMODE(st.st_mode):04o})"
    if why is not None:
        raise BuildError(
            f"refusing the build cache entry {path}: it is {why}, which symode never creates, so someone else "
            f"put it there; libraries in the cache are loaded into this process: remove {path} and build again"
        )


def check_entry(entry: Path) -> None:
    """:func:`check_private` on a cache entry directory and on everything directly inside it."""
    try:
        check_private(entry, os.lstat(entry), directory=True)
        with os.scandir(entry) as it:
            for child in it:
                st = child.stat(follow_symlinks=False)
                check_private(Path(child.path), st, directory=stat.S_ISDIR(st.st_mode))
    except OSError as exc:
        raise BuildError(f"cannot read the build cache entry {entry}: {exc.strerror}; remove it") from exc


def open_lock(entry: Path) -> int:
    """Create the entry directory (0700) if needed, check it, and open its lock file (no symlink followed)."""
    try:
        entry.mkdir(mode=0o700, exist_ok=True)
        check_private(entry, os.lstat(entry), directory=True)
        fd = os.open(entry / ".lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise BuildError(f"cannot use the cache entry {entry}: {exc.strerror}; remove it and build again") from exc
    try:
        check_private(entry / ".lock", os.fstat(fd), directory=False)
    except BuildError:
        os.close(fd)
        raise
    return fd


def sidecar(library: Path) -> Path:
    """The file holding the sha256 of ``library``'s bytes."""
    return library.with_name(library.name + ".sha256")


def sha256_file(path: Path) -> str:
    """sha256 hex digest of a regular file, opened without following a symbolic link."""
    h = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def library_intact(library: Path) -> bool:
    """True if the library and its sidecar are regular files (no links) and the sidecar's hash matches."""
    try:
        side = sidecar(library)
        if not (stat.S_ISREG(os.lstat(library).st_mode) and stat.S_ISREG(os.lstat(side).st_mode)):
            return False
        fd = os.open(side, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as fh:
            stored = fh.read(200).decode("ascii").strip()
        return bool(stored) and stored == sha256_file(library)
    except (OSError, UnicodeDecodeError):
        return False


def unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def remove_stale_temps(entry: Path) -> None:
    """Remove temporary files of interrupted builds.  Caller holds the entry lock, so none is in use."""
    for child in entry.iterdir():
        if not child.name.startswith(TEMP_PREFIX):
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            unlink(child)
