"""Compiler flags for :func:`symode.codegen.build.build_shared_library`: the defaults and the refusals.

Two kinds of flags are refused, each with the reason given to the user:

* flags that relax IEEE double arithmetic (:data:`FORBIDDEN_FLAGS`): the compiled code is compared against a
  high-precision oracle and checked for NaN/Inf, which needs IEEE semantics;
* flags that make the compiler read files other than the sources (:data:`EXTERNAL_FILE_FLAGS`: include and
  library directories, forced includes, specs, plugins, profiles, options passed through to the assembler,
  preprocessor or linker): the bytes of those files would change the library without changing the cache
  key, so a cached library could be reused after they changed (or be poisoned by them).
"""
from __future__ import annotations

from typing import Sequence

from ..errors import BuildError

__all__ = ["DEFAULT_FLAGS", "FORBIDDEN_FLAGS", "EXTERNAL_FILE_FLAGS", "check_flags", "uses_native_cpu"]

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
# CasADi's in-memory evaluation must then allow for it).  -march=native code is specific to this CPU: with
# such a flag the cache key records the CPU (see symode.codegen.compiler.native_cpu_identity).

# clang's -fdenormal-fp-math=<mode> flushes subnormals for every mode except "ieee".
_DENORMAL_PREFIX = "-fdenormal-fp-math"

#: Prefixes of flags that make the compiler read a file or directory outside the sources, each with what it
#: reads.  A prefix matches the flag itself and its joined forms (``-I/dir``, ``-Wl,-T,script``).
EXTERNAL_FILE_FLAGS: dict[str, str] = {
    "-I": "an include directory", "-iquote": "an include directory", "-isystem": "an include directory",
    "-idirafter": "an include directory", "-iprefix": "an include directory prefix",
    "-iwithprefix": "an include directory", "-isysroot": "a system root", "--sysroot": "a system root",
    "-include": "a file included before the sources", "-imacros": "a file of macros",
    "--include": "a file included before the sources", "-B": "a directory of compiler programs",
    "-L": "a library directory", "-l": "a library", "-specs": "a specs file", "--specs": "a specs file",
    "-fplugin": "a compiler plugin", "-wrapper": "a wrapper program", "-fprofile-use": "a profile",
    "-fauto-profile": "a profile", "-fprofile-sample-use": "a profile", "-fprofile-instr-use": "a profile",
    "-fsanitize-ignorelist": "a file of exceptions", "-fsanitize-blacklist": "a file of exceptions",
    "-Wl,": "linker options (scripts, libraries)", "-Xlinker": "linker options (scripts, libraries)",
    "-Wa,": "assembler options (included files)", "-Xassembler": "assembler options (included files)",
    "-Wp,": "preprocessor options (included files)", "-Xpreprocessor": "preprocessor options (included files)",
}


def uses_native_cpu(flags: Sequence[str]) -> bool:
    """True if a flag tunes the code for the CPU the compiler runs on (``-march=native``, ``-mtune=native``,
    ``-mcpu=native``): the library then depends on this machine's CPU, which the cache key must record."""
    return any(word.endswith("=native") for flag in flags for word in flag.split())


def check_flags(flags: Sequence[str]) -> tuple[str, ...]:
    """Refuse flags that break IEEE semantics, read files outside the sources, or break the build's own
    conventions (output name, response files, ``-shared``); return the flags as a tuple."""
    if isinstance(flags, (str, bytes)):
        raise TypeError("flags must be a sequence of strings such as DEFAULT_FLAGS, not a single string")
    flags = tuple(flags)
    for flag in flags:
        if not isinstance(flag, str):
            raise TypeError(f"compiler flag {flag!r} is not a string")
        # A flag with embedded spaces is one argv element to the compiler, but check its words as well.
        for word in flag.split() or [flag]:
            _check_word(word)
    if "-shared" not in flags:
        raise BuildError(f"flags {list(flags)} lack '-shared': the output must be a shared library; add it")
    return flags


def _check_word(word: str) -> None:
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
    for prefix, what in EXTERNAL_FILE_FLAGS.items():
        if word.startswith(prefix):
            raise BuildError(
                f"compiler flag {word!r} is not allowed: it makes the compiler read {what} outside the "
                "sources, whose contents the build cache cannot see (a cached library could then be reused "
                "after they change); put everything the code needs into the sources"
            )
