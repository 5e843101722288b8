"""Compile generated C text into a shared library in a content-addressed cache, and load functions from it.

This is the last of three separate stages (C text -> files -> compiled library); it takes C source *text* and
knows nothing about how that text was produced::

    sources = {"f.c": text}                      # file name -> C source (str or bytes)
    lib = build_shared_library(sources, name_hint="f")
    f = load_function(lib, "f")                  # a casadi.Function backed by the compiled code

Cache layout (the key is :func:`build_key`, a sha256 hex digest over everything that determines the bytes)::

    cache_dir()/<key[:32]>/.lock                        flock held around check + build
    cache_dir()/<key[:32]>/<name_hint>-<key[:16]>.so    the library, moved into place atomically
    cache_dir()/<key[:32]>/<name_hint>-<key[:16]>.so.sha256   sha256 of the .so bytes, written after it

The library's name carries the hash, so a rebuilt library with different content never reuses a path that a
process has already ``dlopen``-ed (the dynamic loader would silently hand back the old one).  A library whose
sidecar is missing or does not match its bytes is deleted and rebuilt.  Temporary files start with
:data:`TEMP_PREFIX`; since every builder holds the entry lock while they exist, any found by a lock holder are
leftovers of an interrupted build and are removed.

Floating point: the compiled code must give IEEE double results (the oracle comparisons and finiteness checks
rely on NaN, Inf, signed zeros and subnormals), so flags that relax IEEE semantics are refused
(:data:`FORBIDDEN_FLAGS`).
"""
from __future__ import annotations

import fcntl
import functools
import hashlib
import logging
import math
import os
import platform
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Mapping, Sequence

from ..errors import BuildError, CompilerNotFound

__all__ = [
    "DEFAULT_FLAGS",
    "FORBIDDEN_FLAGS",
    "BUILD_EVENTS",
    "TEMP_PREFIX",
    "cache_dir",
    "find_compiler",
    "compiler_identity",
    "build_key",
    "build_shared_library",
    "load_function",
]

_log = logging.getLogger(__name__)

#: Flags used when none are given.  ``-std=c99`` (ISO mode) also makes gcc default to ``-ffp-contract=off``,
#: so no fused multiply-add changes the rounding relative to CasADi's in-memory evaluation.
DEFAULT_FLAGS: tuple[str, ...] = ("-O2", "-fPIC", "-shared", "-Wall", "-Werror", "-std=c99")

#: Flags refused by :func:`build_shared_library`, each with the reason given to the user.  Refused even if a
#: later flag would undo them: the check stays a plain lookup.
FORBIDDEN_FLAGS: dict[str, str] = {
    "-ffast-math": (
        "it implies -ffinite-math-only (isnan(NaN) becomes false) and, in a shared library built by gcc 12, "
        "links crtfastmath.o, which flushes subnormals to zero for the whole Python process once loaded"
    ),
    "-Ofast": "it implies -ffast-math (isnan(NaN) becomes false; subnormals flushed process-wide when loaded)",
    "-funsafe-math-optimizations": (
        "it reassociates and replaces divisions by reciprocals (different rounding) and, with gcc, links "
        "crtfastmath.o, which flushes subnormals to zero process-wide when loaded"
    ),
    "-ffinite-math-only": "it lets the compiler assume no NaN or Inf: isnan/isinf checks are folded to false",
    "-fno-honor-nans": "it lets the compiler assume no NaN: isnan checks are folded to false",
    "-fno-honor-infinities": "it lets the compiler assume no Inf: isinf checks are folded to false",
    "-fassociative-math": "it reassociates floating-point sums and products, which changes rounding",
    "-freciprocal-math": "it replaces x/y by x*(1/y), an extra rounding",
    # Decided: forbidden.  Without signed zeros the compiler may fold 0.0*x to 0 and x+0.0 to x, so 1/x,
    # atan2 and copysign at an exact zero can flip sign (+Inf vs -Inf), and gradients are evaluated at exact
    # zeros (ReLU kinks, sqrt at 0, zero initial states).
    "-fno-signed-zeros": "it lets the compiler ignore the sign of zero, so 1/(-0.0) and atan2 at 0 can flip sign",
    "-fcx-limited-range": "it drops the Inf/NaN handling of complex multiplication and division",
    "-fapprox-func": "it allows approximate math library functions (clang)",
    "-fsingle-precision-constant": "it rounds floating-point constants to single precision",
    "-mdaz-ftz": "it sets flush-to-zero/denormals-are-zero for the whole process when the library is loaded",
    "-ffp-model=fast": "it implies -ffast-math (clang)",
    "-ffp-model=aggressive": "it implies -ffast-math (clang)",
    # x87 arithmetic keeps 80-bit intermediates: results are rounded twice and differ from IEEE double.
    "-mfpmath=387": "x87 80-bit intermediates round twice; results differ from IEEE double arithmetic",
    "-mfpmath=387+sse": "x87 80-bit intermediates round twice; results differ from IEEE double arithmetic",
    "-mfpmath=sse+387": "x87 80-bit intermediates round twice; results differ from IEEE double arithmetic",
    "-mfpmath=both": "x87 80-bit intermediates round twice; results differ from IEEE double arithmetic",
    "-fexcess-precision=fast": "where x87 is used, intermediates keep excess precision unpredictably",
}
# Deliberately allowed: -fno-math-errno and -fno-trapping-math (they change whether errno is set or which FP
# exceptions are raised, never a value); -O3 and -march=... (value-preserving); -ffp-contract=fast (fused
# multiply-add is an IEEE 754-2008 operation; it changes rounding at the 1-ulp level, so a comparison with
# CasADi's in-memory evaluation must then allow for it).  Note that -march=native code is specific to this
# CPU, which the cache key does not record: do not share such a cache between different machines.

# clang's -fdenormal-fp-math=<mode> flushes subnormals for every mode except "ieee".
_DENORMAL_PREFIX = "-fdenormal-fp-math"

#: Names of temporary files and directories inside a cache entry start with this.
TEMP_PREFIX = ".tmp-"

#: One ``(event, key)`` per decision of :func:`build_shared_library` in this process, in order: ``"hit"``
#: (returned a cached library without compiling), ``"discard"`` (deleted a library whose sidecar hash was
#: missing or did not match), ``"compile"`` (ran the compiler).  Only appended to; tests and callers may read
#: or clear it.
BUILD_EVENTS: list[tuple[str, str]] = []

# Part of the key: bump when the command template, file layout or anything else here that affects the
# library's bytes changes, so old entries are not reused.
_LAYOUT_VERSION = "symode-build-1"

_SOURCE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,99}\.[ch]")
_NAME_HINT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_\-]{0,63}")
_C_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_VERSION_TIMEOUT_S = 30.0
_AFTER_KILL_WAIT_S = 5.0  # after killing the group, wait this long for its output pipe to close
_NOTE_LINES = 40  # compiler log lines shown in a traceback note; ``.log`` always has all of them


def cache_dir() -> Path:
    """The root of the build cache, created with mode 0700 if missing.

    ``$SYMODE_CACHE_DIR`` if set and non-empty, else ``$XDG_CACHE_HOME/symode`` (when that is an absolute
    path, as the XDG specification requires), else ``~/.cache/symode``.

    Raises BuildError if the directory is not a directory, is group- or world-writable, or is not owned by
    the current user: anyone who can write there could substitute a library that this process then loads.
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
        st = os.stat(root)
    except OSError as exc:
        raise BuildError(
            f"cannot create the build cache directory {root}: {exc.strerror}; set SYMODE_CACHE_DIR to a "
            "writable directory of your own"
        ) from exc
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


@functools.lru_cache(maxsize=None)
def compiler_identity(cc: str) -> str:
    """``"<path>\\n<first line of `cc --version`>"``, cached per process; part of the cache key.

    Raises CompilerNotFound if ``cc`` cannot be run, BuildError if it does not answer ``--version``.
    """
    try:
        proc = subprocess.run(
            [cc, "--version"], stdin=subprocess.DEVNULL, capture_output=True, timeout=_VERSION_TIMEOUT_S,
            env={**os.environ, "LC_ALL": "C"},
        )
    except OSError as exc:
        raise CompilerNotFound(
            f"cannot run the C compiler {cc!r}: {exc.strerror}; set SYMODE_CC to a working compiler"
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise BuildError(
            f"the C compiler {cc!r} did not answer `--version` within {_VERSION_TIMEOUT_S:g} s; set SYMODE_CC "
            "to a working compiler"
        ) from exc
    out = proc.stdout.decode("utf-8", "replace").strip()
    if proc.returncode != 0 or not out:
        raise BuildError(
            f"the C compiler {cc!r} failed `--version` (exit status {proc.returncode}); set SYMODE_CC to a "
            "working compiler",
            log=out + proc.stderr.decode("utf-8", "replace"),
        )
    return f"{cc}\n{out.splitlines()[0].strip()}"


def _symode_version() -> str:
    try:
        import symode
    except ImportError:  # pragma: no cover - this module lives inside symode
        return "0.1.0"
    return str(getattr(symode, "__version__", "0.1.0"))


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


def _check_flags(flags: Sequence[str]) -> tuple[str, ...]:
    """Refuse flags that break IEEE semantics or the build's own conventions; return them as a tuple."""
    if isinstance(flags, (str, bytes)):
        raise TypeError("flags must be a sequence of strings such as DEFAULT_FLAGS, not a single string")
    flags = tuple(flags)
    for flag in flags:
        if not isinstance(flag, str):
            raise TypeError(f"compiler flag {flag!r} is not a string")
        # A flag with embedded spaces is one argv element to the compiler, but check its words as well.
        for word in flag.split() or [flag]:
            if word in FORBIDDEN_FLAGS:
                raise BuildError(
                    f"compiler flag {word!r} is not allowed: {FORBIDDEN_FLAGS[word]}. symode compares compiled "
                    "code against a high-precision oracle, which needs IEEE arithmetic; remove the flag"
                )
            if word.startswith(_DENORMAL_PREFIX) and word.partition("=")[2] not in ("", "ieee"):
                raise BuildError(
                    f"compiler flag {word!r} is not allowed: it flushes subnormals to zero; symode needs IEEE "
                    "arithmetic; remove the flag"
                )
            if word.startswith("@"):
                raise BuildError(
                    f"compiler flag {word!r} (a response file) is not allowed: its contents would escape the "
                    "flag check and the cache key; give the flags directly"
                )
            if word.startswith("-o"):
                raise BuildError(
                    f"compiler flag {word!r} is not allowed: the output file is chosen by the cache; remove it"
                )
    if "-shared" not in flags:
        raise BuildError(f"flags {list(flags)} lack '-shared': the output must be a shared library; add it")
    return flags


def build_key(sources: Mapping[str, bytes], cc: str, flags: Sequence[str]) -> str:
    """sha256 hex digest identifying a build.

    Hashed, each field length-prefixed so no two different inputs serialize alike: a layout version, the
    sources sorted by file name (name, bytes), :func:`compiler_identity` (path and version line), the flags in
    order, the CasADi and symode versions, and the platform (``sys.platform``, ``platform.machine()``).
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
    for flag in flags:
        field("flag", flag.encode())
    field("casadi", _casadi_version().encode())
    field("symode", _symode_version().encode())
    field("platform", f"{sys.platform}\n{platform.machine()}".encode())
    return h.hexdigest()


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _sidecar(library: Path) -> Path:
    return library.with_name(library.name + ".sha256")


def _library_intact(library: Path) -> bool:
    """True if the library and its sidecar exist and the sidecar's hash matches the library's bytes."""
    try:
        stored = _sidecar(library).read_text(encoding="ascii").strip()
        return bool(stored) and stored == _sha256_file(library)
    except (OSError, UnicodeDecodeError):
        return False


def _unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _remove_stale_temps(entry: Path) -> None:
    """Remove temporary files of interrupted builds.  Caller holds the entry lock, so none is in use."""
    for child in entry.iterdir():
        if not child.name.startswith(TEMP_PREFIX):
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            _unlink(child)


def _note(exc: BaseException, text: str) -> None:
    if hasattr(exc, "add_note"):  # Python >= 3.11
        exc.add_note(text)


def _first_error_line(log: str) -> str:
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    for line in lines:
        if re.search(r"\berror\b", line, re.IGNORECASE):
            return line
    return lines[0] if lines else "(the compiler printed nothing)"


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _compile(cc: str, flags: tuple[str, ...], c_files: list[str], src_dir: Path, out: Path,
             timeout: float, name_hint: str) -> str:
    """Run the compiler in its own process group; return its log.  Raise BuildError on failure or timeout."""
    cmd = [cc, *flags, "-o", str(out), *c_files, "-lm"]
    # LC_ALL=C: plain-ASCII, English diagnostics, so the first error line is found and readable.
    proc = subprocess.Popen(
        cmd, cwd=src_dir, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True, env={**os.environ, "LC_ALL": "C"},
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
        log = raw.decode("utf-8", "replace")
        err = BuildError(
            f"compiling {name_hint} with {cc} exceeded the timeout of {timeout:g} s and was stopped. Generated C "
            "this large usually comes from an unrolled loop: keep the time loop a loop (a step Function with "
            "mapaccum), or lower the optimisation (flags with -O1 or -O0 instead of -O2), or pass a larger "
            "timeout=, or evaluate the CasADi function in process instead of compiling (an explicit opt-in)",
            log=log,
        )
        _note(err, "compiler command: " + " ".join(cmd))
        raise err from None
    except BaseException:  # e.g. KeyboardInterrupt: leave no compiler running
        _kill_group(proc)
        proc.wait()
        raise
    log = raw.decode("utf-8", "replace")
    if proc.returncode != 0:
        status = (f"was killed by signal {-proc.returncode}" if proc.returncode < 0
                  else f"exited with status {proc.returncode}")
        err = BuildError(
            f"compiling {name_hint} ({', '.join(c_files)}) with {cc} failed: {_first_error_line(log)} "
            f"(the compiler {status}; the full log is in this error's .log)",
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

    Raises BuildError (forbidden flag, bad file name, compile error with the full log in ``.log``, timeout)
    or CompilerNotFound.  On failure nothing is left at the library's path and temporary files are removed.
    """
    flags = _check_flags(flags)
    if not isinstance(name_hint, str) or not _NAME_HINT.fullmatch(name_hint):
        raise BuildError(
            f"name_hint {name_hint!r} is not allowed; use 1-64 letters, digits, '_' or '-', not starting with '-'"
        )
    if not (isinstance(timeout, (int, float)) and math.isfinite(timeout) and timeout > 0):
        raise BuildError(f"timeout={timeout!r} must be a positive number of seconds")
    norm = _normalize_sources(sources)
    cc = find_compiler()
    key = build_key(norm, cc, flags)
    root = cache_dir()
    entry = root / key[:32]
    library = entry / f"{name_hint}-{key[:16]}.so"
    sidecar = _sidecar(library)
    try:
        entry.mkdir(mode=0o700, exist_ok=True)
        lock_fd = os.open(entry / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise BuildError(f"cannot create the cache entry {entry}: {exc.strerror}; check {root}") from exc
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        _remove_stale_temps(entry)
        if _library_intact(library):
            BUILD_EVENTS.append(("hit", key))
            return library
        if library.exists() or sidecar.exists():
            _log.warning("discarding damaged cached library %s (missing or mismatched sha256)", library)
            BUILD_EVENTS.append(("discard", key))
            _unlink(sidecar)
            _unlink(library)
        return _build_locked(norm, cc, flags, entry, library, key, timeout, name_hint)
    finally:
        os.close(lock_fd)  # releases the flock


def _build_locked(norm: dict[str, bytes], cc: str, flags: tuple[str, ...], entry: Path, library: Path,
                  key: str, timeout: float, name_hint: str) -> Path:
    sidecar = _sidecar(library)
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
        BUILD_EVENTS.append(("compile", key))
        log = _compile(cc, flags, c_files, src_dir, tmp_out, timeout, name_hint)
        if tmp_out.stat().st_size == 0:
            raise BuildError(f"the compiler {cc} reported success but wrote an empty library for {name_hint}",
                             log=log)
        if log.strip():
            _log.warning("compiler output for %s:\n%s", library.name, log)
        with open(tmp_out, "rb+") as fh:  # the rename must not land before the bytes do
            os.fsync(fh.fileno())
        digest = _sha256_file(tmp_out)
        os.replace(tmp_out, library)
        fd, sum_name = tempfile.mkstemp(prefix=TEMP_PREFIX + "sum-", dir=entry)
        tmp_sum = Path(sum_name)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(digest + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_sum, sidecar)
        done = True
        return library
    except BuildError as exc:
        _note(exc, f"cache entry: {entry}")
        raise
    finally:
        shutil.rmtree(src_dir, ignore_errors=True)
        if tmp_out is not None:
            _unlink(tmp_out)
        if tmp_sum is not None:
            _unlink(tmp_sum)
        if not done:  # nothing half-written: no library without its sidecar
            _unlink(sidecar)
            _unlink(library)


def load_function(library: Path, function_name: str) -> "casadi.Function":  # noqa: F821
    """Load ``function_name`` from a compiled library as a ``casadi.Function`` (``casadi.external``).

    If the library has a ``.sha256`` sidecar (every library :func:`build_shared_library` returns does), its
    bytes are checked against it first, so a library damaged or replaced after the build is never loaded.
    Raises BuildError if the library is missing or damaged, or the function is not in it.
    """
    import casadi

    library = Path(library)
    if not isinstance(function_name, str) or not _C_IDENTIFIER.fullmatch(function_name):
        raise BuildError(f"function name {function_name!r} is not a C identifier")
    if not library.is_file():
        raise BuildError(f"compiled library {library} does not exist; build it with build_shared_library")
    if _sidecar(library).exists() and not _library_intact(library):
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
