"""Parameter values of arrays: from spec tables, JSON and ``.npz`` files, all exact.

A value is a SymPy Rational (a scalar) or a nested list of them: a list for a vector, a list of equal-length rows
for a matrix.  Text numbers are exact decimals (``"0.1"`` is 1/10; a JSON number is read as the decimal it
spells); an ``.npz`` file's float64 (or float32) numbers are taken as their exact binary values (the 0.1 stored
there is 0.1000000000000000055511151231257827...), integers exactly.  Non-finite values and magnitudes outside
1e-300 .. 1e300 are refused, as in spec text.
"""
from __future__ import annotations

import json
import math
import os
import stat
from decimal import Decimal
from pathlib import Path

import sympy

from ..errors import SpecError
from ..expr import LIMITS, parse_decimal
from ..inputs import no_duplicate_keys

__all__ = ["array_value", "dims_of", "read_json_values", "read_params_file", "MAX_PARAMS_FILE_BYTES"]

#: Largest parameter file read (a 4,360-parameter MLP written as JSON decimals is ~100 kB).
MAX_PARAMS_FILE_BYTES = 64 * 1024 * 1024


def dims_of(value, field: str) -> tuple:
    """() for a scalar, (n,) for a list of numbers, (m, n) for a list of m rows of n numbers."""
    if not isinstance(value, list):
        return ()
    if not value:
        raise SpecError(f"{field}: an array needs at least one element")
    if all(isinstance(r, list) for r in value):
        n = len(value[0])
        if n == 0 or any(len(r) != n for r in value):
            raise SpecError(f"{field}: a matrix is a list of rows of equal, nonzero length")
        if any(isinstance(x, list) for r in value for x in r):
            raise SpecError(f"{field}: arrays have at most two dimensions")
        return (len(value), n)
    if any(isinstance(x, list) for x in value):
        raise SpecError(f"{field}: mix of numbers and rows; a matrix is a list of rows, a vector a list of numbers")
    return (len(value),)


def array_value(value, field: str, number=parse_decimal):
    """``value`` (a number, a list or a list of rows) with every number converted by ``number(x, field)``."""
    dims = dims_of(value, field)
    if not dims:
        return number(value, field)
    if len(dims) == 1:
        return [number(x, f"{field}[{i}]") for i, x in enumerate(value)]
    return [[number(x, f"{field}[{i}][{j}]") for j, x in enumerate(r)] for i, r in enumerate(value)]


def _refuse_constant(name: str):
    raise SpecError(f"{name} is not a number; give finite decimals")


def read_json_values(data: bytes | str, source: str) -> dict:
    """A JSON object ``name -> value`` (numbers, decimal strings, nested lists) as exact values."""
    try:
        # integers as Decimal too: int() refuses more than 4300 digits with advice about Python internals,
        # while parse_decimal names the parameter and the 100-digit cap
        obj = json.loads(data, parse_float=Decimal, parse_int=Decimal, parse_constant=_refuse_constant,
                         object_pairs_hook=no_duplicate_keys)
    except SpecError as exc:
        raise SpecError(f"{source}: {exc}") from None
    except RecursionError:
        raise SpecError(f"{source}: JSON nested too deeply; give one object of name: value") from None
    except ValueError as exc:  # JSONDecodeError, bad UTF-8
        raise SpecError(f"{source}: invalid JSON ({str(exc).splitlines()[0][:120]})") from None
    if not isinstance(obj, dict):
        raise SpecError(f"{source}: expected a JSON object of name: value")
    return {k: array_value(v, f"{source} {k}") for k, v in obj.items()}


def _float_number(x, field: str) -> sympy.Rational:
    """The exact value of a binary floating-point or integer number (an .npz entry)."""
    if isinstance(x, bool):
        raise SpecError(f"{field}: booleans are not numbers")
    if isinstance(x, int):
        return parse_decimal(x, field)
    f = float(x)
    if not math.isfinite(f):
        raise SpecError(f"{field}: {f} is not a finite number")
    bound = 10.0 ** LIMITS["max_decimal_exponent"]
    if f != 0 and not (1 / bound <= abs(f) <= bound):
        raise SpecError(f"{field}: {f!r} is outside 1e-300 .. 1e300 in magnitude; rescale the model")
    return sympy.Rational(*f.as_integer_ratio())


def _read_npz(path: Path, source: str) -> dict:
    import numpy as np
    out = {}
    try:
        with np.load(path, allow_pickle=False) as npz:  # never unpickle: an .npz may come from anywhere
            for name in npz.files:
                arr = npz[name]
                if arr.dtype.kind not in "iuf":
                    raise SpecError(f"{source} {name}: expected numbers, got dtype {arr.dtype}")
                if arr.ndim > 2:
                    raise SpecError(f"{source} {name}: arrays have at most two dimensions, got {arr.ndim}")
                conv = (lambda v: int(v)) if arr.dtype.kind in "iu" else (lambda v: float(v))
                out[name] = array_value(arr.tolist() if arr.ndim else conv(arr[()]), f"{source} {name}",
                                        _float_number)
    except SpecError:
        raise
    except Exception as exc:  # numpy raises ValueError/OSError/zipfile errors for a bad archive
        raise SpecError(f"{source}: not a readable .npz file ({type(exc).__name__}: {exc})") from None
    return out


def read_params_file(path: Path, source: str) -> dict:
    """Parameter values from a ``.json`` or ``.npz`` file (a regular file of at most
    :data:`MAX_PARAMS_FILE_BYTES`)."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise SpecError(f"{source}: cannot read {path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise SpecError(f"{source}: {path} is not a regular file")
    if st.st_size > MAX_PARAMS_FILE_BYTES:
        raise SpecError(f"{source}: {path} is larger than {MAX_PARAMS_FILE_BYTES} bytes")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return _read_npz(path, source)
    if suffix != ".json":
        raise SpecError(f"{source}: {path.name}: give a .json or .npz file")
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_PARAMS_FILE_BYTES + 1)
    except OSError as exc:
        raise SpecError(f"{source}: cannot read {path}: {exc.strerror or exc}") from None
    return read_json_values(data, source)
