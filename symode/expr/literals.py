"""User-written names and exact decimal numbers: :func:`check_name`, :func:`make_symbol`, :func:`parse_decimal`.

Nothing here calls ``eval``, ``sympify`` or ``parse_expr``: names are matched against :data:`NAME_RE`, numbers
against a strict decimal-literal pattern, and decimals are converted exactly (``"0.1"`` is
``Rational(1, 10)``, never the binary double).  Refusals raise :class:`~symode.errors.SpecError` naming the
field; the caps on digits and range are in :data:`~symode.expr.limits.LIMITS`.
"""
from __future__ import annotations

import decimal
import re
import unicodedata
from decimal import Decimal

import sympy

from symode.errors import SpecError

from .limits import LIMITS

__all__ = ["NAME_RE", "check_name", "make_symbol", "parse_decimal"]

#: A user name: an ASCII letter, then up to 63 ASCII letters, digits or underscores.  ``\Z``, not ``$``:
#: ``$`` also matches before a trailing newline, so ``NAME_RE.match("x\n")`` would succeed.
NAME_RE: re.Pattern = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}\Z", re.ASCII)

# Strict decimal literal: optional sign, digits with optional fraction (or a bare fraction), optional
# exponent.  ASCII digits only ([0-9], not \d, which also matches e.g. Arabic-Indic digits), no
# underscores, no spaces, no hex/octal/binary, no nan/inf.  Used with fullmatch (``$`` would accept a
# trailing newline).
_DECIMAL_RE = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")

_QUOTE_MAX = 60


def _quote(text: str) -> str:
    """``repr`` of ``text`` cut to about 60 characters, for messages."""
    if len(text) > _QUOTE_MAX:
        text = text[: _QUOTE_MAX - 3] + "..."
    return repr(text)


def _describe_char(ch: str) -> str:
    name = unicodedata.name(ch, "unnamed character")
    return f"{ch!r} (U+{ord(ch):04X} {name})"


def _first_bad_char(text: str) -> tuple[int, str] | None:
    """Index and description of the first non-ASCII or control character (tab/newline/CR allowed)."""
    for i, ch in enumerate(text):
        o = ord(ch)
        if o > 127:
            return i, "non-ASCII character " + _describe_char(ch)
        if (o < 32 and ch not in "\t\n\r") or o == 127:
            return i, "control character " + _describe_char(ch)
    return None


def check_name(name: object, field: str) -> str:
    """Return ``name`` if it is a valid user name, else raise SpecError naming ``field``.

    Valid: a ``str`` of ASCII letters, digits and underscores, starting with a letter, at most 64
    characters (:data:`NAME_RE`).  Non-ASCII text is refused outright, so look-alikes such as the
    Cyrillic ``а`` or the fullwidth ``ｘ`` can never pose as ``a`` or ``x``.  Python keywords (``lambda``)
    and function names (``sin``) are valid names; the reserved time name ``t`` is not checked here.
    """
    if not isinstance(name, str):
        raise SpecError(f"{field}: a name must be a string, got {type(name).__name__} {_quote(repr(name))}")
    bad = _first_bad_char(name)
    if bad is None:
        # tab/newline/CR are tolerated in expressions (whitespace) but never in a name
        bad = next(((i, "control character " + _describe_char(c)) for i, c in enumerate(name) if c in "\t\n\r"), None)
    if bad is not None:
        pos, what = bad
        raise SpecError(
            f"{field}: name {_quote(name)} contains a {what} at position {pos + 1}; "
            "names use ASCII letters, digits and '_' only"
        )
    if not NAME_RE.fullmatch(name):
        if not name:
            why = "is empty"
        elif len(name) > 64:
            why = f"is {len(name)} characters long (at most 64)"
        elif not name[0].isalpha():
            why = "must start with a letter"
        else:
            why = "may contain only letters, digits and '_'"
        raise SpecError(
            f"{field}: name {_quote(name)} {why}; write a name such as 'beta' or 'x_1' "
            "(an ASCII letter, then letters, digits or '_', at most 64 characters)"
        )
    return name


def make_symbol(name: str) -> sympy.Symbol:
    """``sympy.Symbol(name, real=True)`` after :func:`check_name` (field ``"name"``)."""
    return sympy.Symbol(check_name(name, "name"), real=True)


def _decimal_to_rational(value: Decimal, field: str, shown: str) -> sympy.Rational:
    """Exact Rational of a finite Decimal, after the significant-digit and range checks."""
    if not value.is_finite():
        raise SpecError(
            f"{field}: {shown} is not a finite number (nan/inf are not allowed); write a decimal such as \"0.1\""
        )
    sign, digits, exponent = value.as_tuple()
    # Strip leading and trailing zeros of the digit string: what is left is the exact value's significant
    # digits (the trailing zeros move into the exponent, so huge zero runs never become huge integers).
    ds = "".join(map(str, digits)).lstrip("0")
    if not ds:
        return sympy.Integer(0)
    stripped = ds.rstrip("0")
    exponent += len(ds) - len(stripped)
    ds = stripped
    max_sig = LIMITS["max_significant_digits"]
    if len(ds) > max_sig:
        raise SpecError(
            f"{field}: {shown} has {len(ds)} significant digits, more than the cap of {max_sig} "
            f"(LIMITS['max_significant_digits']); round it to at most {max_sig} digits"
        )
    # value = ±0.d1d2... * 10**adjusted+1; |value| in [10**adjusted, 10**(adjusted+1))
    adjusted = exponent + len(ds) - 1
    max_exp = LIMITS["max_decimal_exponent"]
    too_big = adjusted > max_exp or (adjusted == max_exp and ds != "1")
    too_small = adjusted < -max_exp
    if too_big or too_small:
        raise SpecError(
            f"{field}: {shown} is unrepresentable: nonzero numbers must lie between 1e-{max_exp} and "
            f"1e{max_exp} in magnitude (float64's finite normal range, with margin); rescale the model"
        )
    n = int(ds)
    if sign:
        n = -n
    if exponent >= 0:
        return sympy.Integer(n * 10**exponent)
    return sympy.Rational(n, 10 ** (-exponent))


def parse_decimal(value: object, field: str) -> sympy.Rational:
    """Exact decimal ``value`` -> ``sympy.Rational`` (``"0.1"`` -> ``Rational(1, 10)``).

    Accepts a ``str`` plain decimal literal (``"0.1"``, ``"-2.5e-3"``, ``"3"``), an ``int``, or a
    ``decimal.Decimal`` (TOML floats read with ``tomllib.load(..., parse_float=Decimal)``).  Refuses, with
    a SpecError naming ``field``: ``bool``; ``float`` (already rounded to binary: quote it as a decimal
    string); nan/inf in any form; empty or non-literal strings (expressions, underscores, spaces, hex);
    nonzero values outside ``1e-300 <= |x| <= 1e300``; more than 100 significant digits.
    """
    if isinstance(value, bool):
        raise SpecError(f"{field}: expected a number, got the boolean {value!r}; write a decimal such as \"1\" or \"0\"")
    if isinstance(value, float):
        raise SpecError(
            f"{field}: got the binary float {value!r}, which is not exact; quote the number as a decimal "
            f"string (e.g. \"{value!r}\") or, in TOML, read floats with parse_float=decimal.Decimal"
        )
    if isinstance(value, int):
        bound = 10 ** LIMITS["max_decimal_exponent"]
        if abs(value) > bound:
            # do not str() it: Python refuses int->str beyond 4,300 digits
            raise SpecError(
                f"{field}: integer of about {int(abs(value).bit_length() * 0.30103)} digits is unrepresentable: "
                f"magnitudes above 1e{LIMITS['max_decimal_exponent']} are not allowed; rescale the model"
            )
        return _decimal_to_rational(Decimal(value), field, repr(value))
    if isinstance(value, Decimal):
        return _decimal_to_rational(value, field, _quote(str(value)))
    if isinstance(value, str):
        shown = _quote(value)
        if not value.strip():
            raise SpecError(f"{field}: empty string where a number was expected; write a decimal such as \"0.1\"")
        if not _DECIMAL_RE.fullmatch(value):
            if value.strip().lower().lstrip("+-") in ("nan", "inf", "infinity", "snan"):
                raise SpecError(f"{field}: {shown} is not a finite number; write a finite decimal such as \"0.1\"")
            raise SpecError(
                f"{field}: {shown} is not a plain decimal literal; write digits with an optional sign, "
                "decimal point and exponent, e.g. \"0.1\", \"-2.5e-3\" or \"3\" (no spaces, '_', hex or expressions)"
            )
        try:
            dec = Decimal(value)
        except decimal.InvalidOperation:  # pragma: no cover - the regex admits only valid literals
            raise SpecError(f"{field}: {shown} is not a decimal number") from None
        return _decimal_to_rational(dec, field, shown)
    raise SpecError(
        f"{field}: expected a decimal number, got {type(value).__name__}; write a decimal string such as \"0.1\""
    )
