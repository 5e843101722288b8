"""Compile generated C text into a shared library in a content-addressed cache, and load functions from it.

This is the last of three separate stages (C text -> files -> compiled library); it takes C source *text* and
knows nothing about how that text was produced::

    sources = {"f.c": text}                      # file name -> C source (str or bytes)
    lib = build_shared_library(sources, name_hint="f")
    f = load_function(lib, "f")                  # a casadi.Function backed by the compiled code

The cache (:mod:`symode.codegen.cache`: layout, ownership checks, sha256 sidecars) is keyed by
:func:`build_key`, a sha256 over everything that determines the library's bytes.  The library's name carries
the hash, so a rebuilt library with different content never reuses a path that a process has already
``dlopen``-ed (the dynamic loader would silently hand back the old one).  A library whose sidecar is missing
or does not match its bytes is deleted and rebuilt, and never loaded.  Temporary files start with
:data:`TEMP_PREFIX`; since every builder holds the entry lock while they exist, any found by a lock holder are
leftovers of an interrupted build and are removed.

The compiler (:mod:`symode.codegen.compiler`) runs in a clean, fixed environment, under a supervisor that
kills it and everything it started on timeout or when this process dies.  Flags that relax IEEE arithmetic or
read files outside the sources are refused (:mod:`symode.codegen.flags`).
"""
from __future__ import annotations

import fcntl
import hashlib
import logging
import math
import os
import platform
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Mapping, Sequence

from ..errors import BuildError
from . import cache
from .cache import TEMP_PREFIX, cache_dir, sidecar
from .compiler import (compiler_identity, find_compiler, first_error_line, key_environment, native_cpu_identity,
                       run_supervised)
from .flags import DEFAULT_FLAGS, FORBIDDEN_FLAGS, check_flags, uses_native_cpu

__all__ = [
    "DEFAULT_FLAGS",
    "FORBIDDEN_FLAGS",
    "TEMP_PREFIX",
    "cache_dir",
    "find_compiler",
    "compiler_identity",
    "build_key",
    "build_shared_library",
    "load_function",
]

_log = logging.getLogger(__name__)



def _event(kind: str, key: str) -> None:
    """One decision of :func:`build_shared_library`, as a DEBUG record of this module's logger
    (``symode.codegen.build``) carrying ``build_event`` and ``build_key``: ``"hit"`` (returned a cached library
    without compiling), ``"discard"`` (deleted a library whose sidecar hash was missing or did not match),
    ``"compile"`` (ran the compiler)."""
    _log.debug("build cache %s: %s", kind, key, extra={"build_event": kind, "build_key": key})

# Part of the key: bump when the command template, file layout, compiler environment or anything else here
# that affects the library's bytes changes, so old entries are not reused.  (2: the compiler runs in a clean
# environment; entries of version 1 may have been built from a poisoned one.)
_LAYOUT_VERSION = "symode-build-2"

_SOURCE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,99}\.[ch]")
_NAME_HINT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_\-]{0,63}")
_C_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NOTE_LINES = 40  # compiler log lines shown in a traceback note; ``.log`` always has all of them


def _symode_version() -> str:
    from .._version import __version__
    return __version__


def _casadi_version() -> str:
    import casadi

    return str(casadi.__version__)


def _normalize_sources(sources: Mapping[str, str | bytes]) -> dict[str, bytes]:
    """Check file names (plain ``*.c``/``*.h`` names that cannot be read as compiler options) and encode."""
    if not isinstance(sources, Mapping):
        raise TypeError(f"sources must be a mapping of file name -> C text, not {type(sources).__name__}")
    out: dict[str, bytes] = {}
    for name, text in sources.items():
        if not isinstance(name, str) or not _SOURCE_NAME.fullmatch(name):
            raise BuildError(
                f"source file name {name!r} is not allowed; use a plain name of letters, digits, '_', '-', '.' "
                "ending in .c or .h (no directories, not starting with '-' or '.')"
            )
        if isinstance(text, str):
            data = text.encode("utf-8")
        elif isinstance(text, (bytes, bytearray, memoryview)):
            data = bytes(text)
        else:
            raise TypeError(f"source {name!r} must be str or bytes, not {type(text).__name__}")
        out[name] = data
    if not any(name.endswith(".c") for name in out):
        raise BuildError(f"no .c file among the sources {sorted(out)}; give at least one C file to compile")
    return out


def build_key(sources: Mapping[str, bytes], cc: str, flags: Sequence[str]) -> str:
    """sha256 hex digest identifying a build.

    Hashed, each field length-prefixed so no two different inputs serialize alike: a layout version, the
    sources sorted by file name (name, bytes), :func:`compiler_identity` (path, resolved path and version
    line), the compiler's environment (:func:`symode.codegen.compiler.key_environment`: ``PATH`` and the fixed
    locale; nothing else reaches the compiler), the flags in order, this CPU when a flag says ``=native``, the
    CasADi and symode versions, and the platform (``sys.platform``, ``platform.machine()``).
    """
    norm = _normalize_sources(sources)
    h = hashlib.sha256()

    def field(tag: str, data: bytes) -> None:
        h.update(tag.encode() + b"\0" + str(len(data)).encode() + b"\0" + data)

    field("layout", _LAYOUT_VERSION.encode())
    for name in sorted(norm):
        field("file", name.encode())
        field("source", norm[name])
    field("compiler", compiler_identity(cc).encode())
    field("environment", key_environment().encode())
    for flag in flags:
        field("flag", flag.encode())
    if uses_native_cpu(flags):
        field("cpu", native_cpu_identity().encode())
    field("casadi", _casadi_version().encode())
    field("symode", _symode_version().encode())
    field("platform", f"{sys.platform}\n{platform.machine()}".encode())
    return h.hexdigest()


def _note(exc: BaseException, text: str) -> None:
    if hasattr(exc, "add_note"):  # Python >= 3.11
        exc.add_note(text)


def _compile(cc: str, flags: tuple[str, ...], c_files: list[str], src_dir: Path, out: Path,
             timeout: float, name_hint: str) -> str:
    """Run the compiler (supervised, clean environment); return its log.  Raise BuildError on failure/timeout."""
    cmd = [cc, *flags, "-o", str(out), *c_files, "-lm"]
    status, log = run_supervised(cmd, cwd=src_dir, timeout=timeout)
    if status is None:
        err = BuildError(
            f"compiling {name_hint} with {cc} exceeded the timeout of {timeout:g} s and was stopped. Generated C "
            "this large usually comes from an unrolled loop: keep the time loop a loop (a step Function with "
            "mapaccum), or lower the optimisation (flags with -O1 or -O0 instead of -O2), or pass a larger "
            "timeout=, or evaluate the CasADi function in process instead of compiling (an explicit opt-in)",
            log=log,
        )
        _note(err, "compiler command: " + " ".join(cmd))
        raise err
    if status != 0:
        how = f"was killed by signal {-status}" if status < 0 else f"exited with status {status}"
        err = BuildError(
            f"compiling {name_hint} ({', '.join(c_files)}) with {cc} failed: {first_error_line(log)} "
            f"(the compiler {how}; the full log is in this error's .log)",
            log=log,
        )
        _note(err, "compiler command: " + " ".join(cmd))
        lines = log.splitlines()
        head = "\n".join(lines[:_NOTE_LINES])
        more = f"\n... ({len(lines) - _NOTE_LINES} more lines in .log)" if len(lines) > _NOTE_LINES else ""
        _note(err, "compiler log:\n" + head + more)
        raise err
    return log


def build_shared_library(
    sources: Mapping[str, str | bytes],
    *,
    name_hint: str = "lib",
    flags: Sequence[str] = DEFAULT_FLAGS,
    timeout: float = 300.0,
) -> Path:
    """Compile C sources into a shared library in the cache and return its path; reuse an intact cached one.

    ``sources`` maps plain file names (``*.c`` compiled, ``*.h`` only written) to C text (str as UTF-8, or
    bytes).  The result is ``cache_dir()/<key[:32]>/<name_hint>-<key[:16]>.so`` with ``key`` =
    :func:`build_key`.  Concurrent calls (threads or processes) for the same key compile once; the others wait
    for the lock and get the same path.

    Raises BuildError (forbidden flag, bad file name, compile error with the full log in ``.log``, timeout,
    a symbolic link or foreign-owned file in the cache) or CompilerNotFound.  On failure nothing is left at
    the library's path and temporary files are removed.
    """
    flags = check_flags(flags)
    if not isinstance(name_hint, str) or not _NAME_HINT.fullmatch(name_hint):
        raise BuildError(
            f"name_hint {name_hint!r} is not allowed; use 1-64 letters, digits, '_' or '-', not starting with '-'"
        )
    if not (isinstance(timeout, (int, float)) and math.isfinite(timeout) and timeout > 0):
        raise BuildError(f"timeout={timeout!r} must be a positive number of seconds")
    norm = _normalize_sources(sources)
    cc = find_compiler()
    key = build_key(norm, cc, flags)
    entry = cache_dir() / key[:32]
    library = entry / f"{name_hint}-{key[:16]}.so"
    lock_fd = cache.open_lock(entry)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        cache.check_entry(entry)
        cache.remove_stale_temps(entry)
        if cache.library_intact(library):
            _event("hit", key)
            return library
        if os.path.lexists(library) or os.path.lexists(sidecar(library)):
            _log.warning("discarding damaged cached library %s (missing or mismatched sha256)", library)
            _event("discard", key)
            cache.unlink(sidecar(library))
            cache.unlink(library)
        return _build_locked(norm, cc, flags, entry, library, key, timeout, name_hint)
    finally:
        os.close(lock_fd)  # releases the flock


def _build_locked(norm: dict[str, bytes], cc: str, flags: tuple[str, ...], entry: Path, library: Path,
                  key: str, timeout: float, name_hint: str) -> Path:
    side = sidecar(library)
    src_dir = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX + "src-", dir=entry))
    tmp_out: Path | None = None
    tmp_sum: Path | None = None
    done = False
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=TEMP_PREFIX + "out-", suffix=".so", dir=entry)
        os.close(fd)
        tmp_out = Path(tmp_name)
        for name, data in norm.items():
            (src_dir / name).write_bytes(data)
        c_files = sorted(name for name in norm if name.endswith(".c"))
        _event("compile", key)
        log = _compile(cc, flags, c_files, src_dir, tmp_out, timeout, name_hint)
        if tmp_out.stat().st_size == 0:
            raise BuildError(f"the compiler {cc} reported success but wrote an empty library for {name_hint}",
                             log=log)
        if log.strip():
            _log.warning("compiler output for %s:\n%s", library.name, log)
        os.chmod(tmp_out, 0o755)  # whatever the compiler's umask: never group/world-writable
        with open(tmp_out, "rb+") as fh:  # the rename must not land before the bytes do
            os.fsync(fh.fileno())
        digest = cache.sha256_file(tmp_out)
        os.replace(tmp_out, library)
        fd, sum_name = tempfile.mkstemp(prefix=TEMP_PREFIX + "sum-", dir=entry)
        tmp_sum = Path(sum_name)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(digest + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_sum, side)
        done = True
        return library
    except BuildError as exc:
        _note(exc, f"cache entry: {entry}")
        raise
    finally:
        shutil.rmtree(src_dir, ignore_errors=True)
        if tmp_out is not None:
            cache.unlink(tmp_out)
        if tmp_sum is not None:
            cache.unlink(tmp_sum)
        if not done:  # nothing half-written: no library without its sidecar
            cache.unlink(side)
            cache.unlink(library)


def load_function(library: Path, function_name: str) -> "casadi.Function":  # noqa: F821
    """Load ``function_name`` from a compiled library as a ``casadi.Function`` (``casadi.external``).

    Only a library with its ``.sha256`` sidecar (every library :func:`build_shared_library` returns has one)
    whose hash matches the library's bytes is loaded, so a library damaged, replaced or planted after the
    build is never loaded; the library's directory and every file in it must be yours, not symbolic links and
    not writable by others.  Raises BuildError if the library is missing, unverifiable or damaged, or the
    function is not in it.
    """
    import casadi

    library = Path(library)
    if not isinstance(function_name, str) or not _C_IDENTIFIER.fullmatch(function_name):
        raise BuildError(f"function name {function_name!r} is not a C identifier")
    if not os.path.lexists(library):
        raise BuildError(f"compiled library {library} does not exist; build it with build_shared_library")
    if not os.path.lexists(sidecar(library)):
        raise BuildError(
            f"compiled library {library} has no {sidecar(library).name} sidecar, so its bytes cannot be checked; "
            "only libraries returned by build_shared_library are loaded: build it with that"
        )
    cache.check_entry(library.parent)  # the directory and everything in it: ours, no links, not shared
    if not cache.library_intact(library):
        raise BuildError(
            f"compiled library {library} does not match its recorded sha256 (damaged or replaced after the "
            "build); build it again with build_shared_library, which replaces it"
        )
    try:
        return casadi.external(function_name, str(library))
    except RuntimeError as exc:
        raise BuildError(
            f"cannot load function {function_name!r} from {library}: "
            f"{str(exc).strip().splitlines()[-1].rstrip('.')}; "
            "check the name the C code was generated with"
        ) from exc
