"""Exact integers as spec-expression text that the spec reader accepts back (writer side of the caps).

The reader refuses a literal with more than ``LIMITS['max_significant_digits']`` significant digits or a
magnitude beyond ``10**LIMITS['max_decimal_exponent']``, but SymPy folds constants while parsing, so a model
read from a spec can hold a constant no single literal may spell (the product of two 60-digit literals has
118 digits; ``1.5e-300`` has the denominator ``2*10**300``).  :func:`integer_text` writes such an integer as
a sum of products of literals, each within the caps, which the reader folds back into exactly the same
integer::

    integer_text(10**400)          == "(1e299*1e101)"
    integer_text(2 * 10**300)      == "(2e299*1e1)"
    integer_text(123...(118 digits)) == "(<18 digits>e100 + <100 digits>)"
"""
from __future__ import annotations

from .expr import LIMITS

__all__ = ["integer_text"]


def _fits(digits: str, exponent: int) -> bool:
    """True if the integer ``digits * 10**exponent`` (no trailing zeros in digits) is one readable literal."""
    magnitude = len(digits) - 1 + exponent  # the integer lies in [10**magnitude, 10**(magnitude + 1))
    max_exp = LIMITS["max_decimal_exponent"]
    return (len(digits) <= LIMITS["max_significant_digits"]
            and (magnitude < max_exp or (magnitude == max_exp and digits == "1")))


def _literal(digits: str, exponent: int) -> str:
    return digits + "0" * exponent if exponent < 3 else f"{digits}e{exponent}"


def _scaled(chunk: str, exponent: int) -> str:
    """``chunk * 10**exponent`` (chunk: at most the significant-digit cap) as a product of readable literals."""
    max_exp = LIMITS["max_decimal_exponent"]
    first = min(exponent, max_exp - len(chunk))  # chunk*10**first < 10**max_exp
    factors = [_literal(chunk, first)]
    rest = exponent - first
    while rest > 0:
        k = min(rest, max_exp)
        factors.append(f"1e{k}")
        rest -= k
    return "*".join(factors)


def integer_text(n: int) -> str:
    """Text for the integer ``n`` that :func:`symode.expr.parse_expression` reads back as exactly ``n``.

    One literal when the caps allow it, else a parenthesized sum of chunks of at most
    ``LIMITS['max_significant_digits']`` digits, each scaled by a product of powers of ten within range.
    """
    n = int(n)
    if n < 0:
        return "-" + integer_text(-n)
    text = str(n)  # a constant the reader built has at most LIMITS['max_constant_digits'] digits
    digits = text.rstrip("0") or "0"
    exponent = len(text) - len(digits) if n else 0
    if _fits(digits, exponent):
        return _literal(digits, exponent)
    step = LIMITS["max_significant_digits"]
    terms = []
    for end in range(len(digits), 0, -step):
        chunk = digits[max(0, end - step):end]
        scale = exponent + len(digits) - end
        stripped = chunk.rstrip("0")
        if stripped.lstrip("0"):
            terms.append(_scaled(stripped.lstrip("0"), scale + len(chunk) - len(stripped)))
    return "(" + " + ".join(reversed(terms)) + ")"
